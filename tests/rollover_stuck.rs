//! Every stuck rollover has a way out, and records that are not dane-roll's yet (issue 13), on
//! the lab: real BIND + Knot (signed zone, TSIG updates), a validating Unbound, the receiving
//! Postfix whose certificate is rolled, and a sending Postfix that enforces DANE, the judge of
//! whether mail would flow (every test mail "Verified", nothing deferred at the end).
//!
//! - `deploy --wait --timeout` returns on time with the state saved, exit 3; `run` finishes;
//! - a wrong `chain-file` fails the install; once the configuration is fixed, `run` installs;
//! - `abort` from `published` and from `installed` (the new certificate live): the previous
//!   certificate back, the abandoned key's records retired only after, `status` says so;
//! - `publish` makes its records the service's own, so `prune` removes them;
//! - `prune --foreign [--dry-run]` removes a record nobody serves, keeps the served key's;
//! - `check` calls a record retired less than 2×TTL ago "retiring", not `tlsa-stale`.
//!
//! Each test starts its own lab (skipped outside CI when a server is missing; see
//! `dane_roll_lab::require`) and leaves no server behind.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dane_roll_lab::conf::{Chains, rollover_tools};
use dane_roll_lab::dns::query::normalize_rdata;
use dane_roll_lab::pki::{KeyKind, MX_HOST};
use dane_roll_lab::require;
use dane_roll_lab::world::{JUDGE, OWNER, World, rdata, text};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");

/// One lab with the OLD certificate live and its `3 1 1` published by hand, service `ttl`.
fn start(ttl: u32) -> World {
    World::start(BIN, ttl)
}

/// `check` of the configured endpoint, JSON.
fn check_json(w: &World) -> Value {
    let out = w.run(&[
        "check",
        "--key-algorithm",
        "ecdsa",
        "--timeout",
        "20",
        "--format",
        "json",
    ]);
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "check failed: {}",
        text(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

fn set(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

/// The check of `kind` in a `check --format json` report: (status, message, note).
fn check_of(json: &Value, kind: &str) -> (String, String, String) {
    let c = json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} check in {json:#}"));
    (
        c["status"].as_str().unwrap_or("").to_owned(),
        c["message"].as_str().unwrap_or("").to_owned(),
        c["note"].as_str().unwrap_or("").to_owned(),
    )
}

#[test]
fn deploy_wait_timeout_returns_with_the_state_saved_and_run_finishes() {
    if !require(&rollover_tools(true)) {
        return;
    }
    // TTL 10 s: the install is due 20 s after the records are served everywhere.
    let w = start(10);
    w.assert_mail_verified("before");
    let (new, cert, key) = w.new_leaf("new");
    let t0 = Instant::now();
    let out = w.deploy(&cert, &key, &["--wait", "--timeout", "2s"]);
    let took = t0.elapsed();
    eprintln!("deploy --wait --timeout 2s returned after {took:?}");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(
        took < Duration::from_secs(10),
        "--timeout 2s returned after {took:?}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--timeout reached") && stderr.contains("dane-roll run"),
        "{}",
        text(&out)
    );
    // The state is saved: the records are out, the certificate is not installed yet.
    assert_eq!(w.phase(), "published", "{:#?}", w.history());
    assert_eq!(w.served_spki(), w.old.spki_sha256_hex().unwrap());
    w.assert_mail_verified("after the timeout");
    // `run --wait --timeout` also returns 3 when the time runs out first.
    let out = w.run(&["run", "--wait", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    // A later `run` finishes the rollover.
    let out = w.run(&["run", "--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.phase(), "done");
    assert_eq!(w.served_spki(), new.spki_sha256_hex().unwrap());
    w.assert_mail_verified("after run");
    w.assert_nothing_deferred();
    // The same through an ACME client's hook (acme.sh's reloadcmd): it returns on time.
    let (newer, cert2, key2) = w.new_leaf("newer");
    let t0 = Instant::now();
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&w.conf_path)
        .args([
            "hook",
            "acme.sh",
            "--wait",
            "--timeout",
            "2s",
            "--service",
            "mx",
        ])
        .env("Le_Domain", MX_HOST)
        .env("CERT_KEY_PATH", &key2)
        .env("CERT_PATH", &cert2)
        .env("CERT_FULLCHAIN_PATH", &cert2)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let took = t0.elapsed();
    eprintln!("hook acme.sh --wait --timeout 2s returned after {took:?}");
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(took < Duration::from_secs(10), "the hook took {took:?}");
    let out = w.run(&["run", "--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.served_spki(), newer.spki_sha256_hex().unwrap());
    w.assert_mail_verified("after the hook's rollover");
    w.assert_nothing_deferred();
    // --timeout without --wait is refused, and nonsense is a clear error (never a panic).
    let out = w.deploy(&cert, &key, &["--timeout", "2s"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = w.run(&["run", "--wait", "--timeout", "soon"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--timeout"),
        "{}",
        text(&out)
    );
}

#[test]
fn a_wrong_chain_file_fails_the_install_and_the_next_run_installs_once_fixed() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let mut w = start(2);
    let good = w.rx.chain_file();
    let wrong = w.files.join("no-such-dir").join("chain.pem");
    w.rewrite(|c| c.chains = Chains::One(wrong.clone()));
    let (new, cert, key) = w.new_leaf("new");
    let out = w.deploy(&cert, &key, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Past the wait, the install fails on the missing directory: exit 2, the path named.
    let t0 = Instant::now();
    let failed = loop {
        let out = w.run(&["run"]);
        if out.status.code() == Some(2) {
            break out;
        }
        assert!(
            t0.elapsed() < JUDGE,
            "the install never failed: {}",
            text(&out)
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        stderr.contains("no-such-dir") && stderr.contains("install"),
        "{}",
        text(&failed)
    );
    assert_eq!(w.phase(), "aged");
    assert_eq!(w.served_spki(), w.old.spki_sha256_hex().unwrap());
    w.assert_mail_verified("while the install fails");
    // The configuration is fixed: the next run installs, verifies and finishes.
    w.rewrite(|c| c.chains = Chains::One(good.clone()));
    w.run_until("done", JUDGE);
    assert_eq!(w.served_spki(), new.spki_sha256_hex().unwrap());
    w.assert_mail_verified("after the fix");
    w.assert_nothing_deferred();
}

#[test]
fn abort_from_published_retires_the_abandoned_records_and_keeps_the_live_key() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start(10);
    let (new, cert, key) = w.new_leaf("new");
    let out = w.deploy(&cert, &key, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.phase(), "published");
    w.wait_tlsa_set(&set(&[rdata(&w.old), rdata(&new)]));
    w.assert_mail_verified("published");

    let out = w.run(&["abort", "mx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.served_spki(), w.old.spki_sha256_hex().unwrap());
    w.wait_tlsa_set(&set(&[rdata(&w.old)]));
    w.assert_mail_verified("after the abort");
    let st = w.status_json();
    let row = &st["services"][0];
    assert_eq!(row["phase"], "aborted", "{st:#}");
    assert!(
        row["next_action"]
            .as_str()
            .unwrap()
            .contains("aborted by the operator in phase published"),
        "{st:#}"
    );
    assert!(row["keys"]["stored"]["new"].is_null(), "{st:#}");
    let history = w.history().join("\n");
    assert!(
        history.contains("aborted by the operator in phase published")
            && history.contains(&format!("retiring {OWNER} TLSA {}", rdata(&new)))
            && history.contains("abort complete"),
        "{history}"
    );
    let out = w.run(&["status", "--history"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("aborted"),
        "{}",
        text(&out)
    );
    // Nothing is left for `run`, and a second abort says there is nothing to abort.
    let out = w.run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no rollover pending"));
    let out = w.run(&["abort", "mx"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to abort"),
        "{}",
        text(&out)
    );
    // A new deploy after the abort rolls normally from the old key.
    let (newer, cert, key) = w.new_leaf("newer");
    let out = w.deploy(&cert, &key, &["--wait", "--force"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.served_spki(), newer.spki_sha256_hex().unwrap());
    w.assert_mail_verified("after the next rollover");
    w.assert_nothing_deferred();
}

#[test]
fn abort_from_installed_puts_the_previous_certificate_back_before_retiring() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let mut w = start(2);
    // A reload that fails while a flag file exists: the rollover stops at `installed`.
    let flag = w.files.join("reload-fails");
    let script = w.files.join("reload.sh");
    let reload = w.conf.reload.join(" ");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ -e {} ]; then echo 'reload refused' >&2; exit 1; fi\nexec {reload}\n",
            flag.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(&flag, b"").unwrap();
    w.rewrite(|c| c.reload = vec![script.display().to_string()]);

    let (new, cert, key) = w.new_leaf("new");
    let out = w.deploy(&cert, &key, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    w.run_until("installed", JUDGE);
    // The operator reloads by hand: the new certificate is live (its records aged: Verified).
    std::fs::remove_file(&flag).unwrap();
    w.rx.reload().unwrap();
    let t0 = Instant::now();
    while w.served_spki() != new.spki_sha256_hex().unwrap() {
        assert!(t0.elapsed() < JUDGE, "the new certificate never went live");
        std::thread::sleep(Duration::from_millis(200));
    }
    w.assert_mail_verified("new certificate live, phase installed");

    let out = w.run(&["abort", "mx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.served_spki(), w.old.spki_sha256_hex().unwrap());
    w.assert_mail_verified("after the abort");
    let st = w.status_json();
    assert_eq!(st["services"][0]["phase"], "aborted", "{st:#}");
    // The previous certificate went back and was reloaded BEFORE the abandoned record went.
    let history = w.history();
    let at = |needle: &str| {
        history
            .iter()
            .position(|h| h.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} in {history:#?}"))
    };
    let reinstalled = at("previous certificate reinstalled");
    let reloaded = at("service reloaded with the previous certificate");
    let retired = at(&format!("retiring {OWNER} TLSA {}", rdata(&new)));
    assert!(
        at("aborted by the operator in phase installed") < reinstalled
            && reinstalled < reloaded
            && reloaded < retired
            && retired < at("abort complete"),
        "{history:#?}"
    );
    // The old key's record stays; the abandoned key's is gone (a next key stays if published).
    let served = w.tlsa_set();
    assert!(served.contains(&rdata(&w.old)), "{served:?}");
    assert!(!served.contains(&rdata(&new)), "{served:?}");
    w.assert_mail_verified("at the end");
    w.assert_nothing_deferred();
}

#[test]
fn published_records_are_the_services_own_and_prune_removes_them() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start(2);
    let (extra, _cert, key) = w.new_leaf("extra");
    let out = w.run(&["publish", "--service", "mx", key.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    w.wait_tlsa_set(&set(&[rdata(&w.old), rdata(&extra)]));

    let out = w.run(&["prune", "--service", "mx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&rdata(&extra)),
        "{}",
        text(&out)
    );
    let history = w.history().join("\n");
    assert!(history.contains("dane-roll publish"), "{history}");
    // The published record is gone; the served key's record (published by hand) stays.
    w.wait_tlsa_set(&set(&[rdata(&w.old)]));
    w.assert_mail_verified("after prune");
    w.assert_nothing_deferred();
}

#[test]
fn prune_foreign_dry_run_changes_nothing_then_removes_only_what_nothing_serves() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start(2);
    // Two records nobody published through dane-roll: a key nothing serves, and a `3 0 1`.
    let stray = w.ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    w.dns
        .add_tlsa(OWNER, 2, &stray.tlsa_311().unwrap())
        .unwrap();
    let full = format!("3 0 1 {}", "ab".repeat(32));
    w.dns.add_tlsa(OWNER, 2, &full).unwrap();
    let before = set(&[rdata(&w.old), rdata(&stray), normalize_rdata(&full)]);
    w.wait_tlsa_set(&before);

    // Without --foreign: none of them is dane-roll's, nothing goes.
    let out = w.run(&["prune", "--service", "mx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("nothing to remove"));

    let out = w.run(&["prune", "--service", "mx", "--foreign", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        stdout.contains(&format!("would remove  {OWNER} TLSA {}", rdata(&stray))),
        "{}",
        text(&out)
    );
    assert!(!stdout.contains(&format!("remove  {OWNER} TLSA {}", rdata(&w.old))));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(w.tlsa_set(), before, "the dry run changed DNS");

    let out = w.run(&["prune", "--service", "mx", "--foreign"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        stdout.contains(&format!("removed  {OWNER} TLSA {}", rdata(&stray))),
        "{}",
        text(&out)
    );
    assert!(stdout.contains("not a 3 1 1 record"), "{}", text(&out));
    // The served key's record and the `3 0 1` (cannot be told) stay; the stray one is gone.
    w.wait_tlsa_set(&set(&[rdata(&w.old), normalize_rdata(&full)]));
    let history = w.history().join("\n");
    assert!(history.contains("pruned foreign"), "{history}");
    w.assert_mail_verified("after prune --foreign");
    w.assert_nothing_deferred();
}

#[test]
fn a_record_retired_within_two_ttl_is_retiring_not_stale() {
    if !require(&rollover_tools(true)) {
        return;
    }
    // TTL 10 s: a retired record counts as retiring for 20 s.
    let ttl = 10;
    let w = start(ttl);
    let (new, cert, key) = w.new_leaf("new");
    // A whole rollover: its last steps retire the old key's record.
    let out = w.deploy(&cert, &key, &["--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let retired_at = Instant::now();
    assert_eq!(w.served_spki(), new.spki_sha256_hex().unwrap());
    // A resolver (or a lagging secondary) still serving it: put it back on the servers.
    w.dns
        .add_tlsa(OWNER, ttl, &w.old.tlsa_311().unwrap())
        .unwrap();
    w.dns
        .wait_served_everywhere(OWNER, &w.old.tlsa_311().unwrap(), JUDGE)
        .unwrap();
    w.dns.flush_resolver().unwrap();

    let json = check_json(&w);
    let (status, message, note) = check_of(&json, "tlsa-stale");
    assert!(
        retired_at.elapsed() < Duration::from_secs(2 * u64::from(ttl)),
        "the check came too late to judge"
    );
    assert_eq!(status, "ok", "{message} / {note}\n{json:#}");
    assert!(note.contains("retiring"), "{json:#}");

    // Past 2×TTL the same record is stale.
    let due = Duration::from_secs(2 * u64::from(ttl) + 1);
    if let Some(left) = due.checked_sub(retired_at.elapsed()) {
        std::thread::sleep(left);
    }
    w.dns.flush_resolver().unwrap();
    let json = check_json(&w);
    let (status, message, _) = check_of(&json, "tlsa-stale");
    assert_eq!(status, "warning", "{message}\n{json:#}");
    assert!(message.contains(&rdata(&w.old)[..20]), "{message}");
}
