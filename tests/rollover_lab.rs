//! The rollover driver on the lab (issue 6): real BIND + Knot (signed zone, TSIG updates),
//! a validating Unbound, the receiving Postfix whose certificate is rolled, and a sending
//! Postfix that enforces DANE: the judge of whether mail would flow. Every test runs the real
//! `dane-roll` binary with service `ttl = 2` (so 2×TTL = 4 s).
//!
//! Each test starts its own lab (skipped outside CI when a server is missing; see
//! `dane_roll_lab::require`) and leaves no server behind.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use dane_roll_lab::conf::rollover_tools;
use dane_roll_lab::dns::Server;
use dane_roll_lab::dns::query::normalize_rdata;
use dane_roll_lab::pki::{KeyKind, MX_HOST};
use dane_roll_lab::require;
use dane_roll_lab::world::{
    JUDGE, OWNER, World, assert_history_in_order, rdata, read_until, rfc3339_secs, spawn, text,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
const TTL: u32 = 2;

/// The lab with the OLD certificate live on the receiver and its `3 1 1` published (by hand,
/// as an operator would have done before dane-roll); the provider reads a copy of the lab's
/// TSIG key (`files/tsig.key`) that a test can break and repair.
fn start() -> World {
    let mut w = World::start(BIN, TTL);
    w.provider_rfc2136(w.dns.addr(Server::Bind));
    w
}

/// Give the provider a TSIG key with the right name and a wrong secret (BADSIG).
fn break_tsig(w: &World) {
    let good = &w.dns.tsig().secret;
    let text = std::fs::read_to_string(&w.dns.tsig().file).unwrap();
    let wrong = format!("{}=", "A".repeat(43));
    assert_ne!(good, &wrong);
    std::fs::write(
        w.files.join("tsig.key"),
        text.replace(good.as_str(), &wrong),
    )
    .unwrap();
}

fn fix_tsig(w: &World) {
    std::fs::copy(&w.dns.tsig().file, w.files.join("tsig.key")).unwrap();
}

/// The `3 1 1` of the next key dane-roll generated, from the status.
fn next_rdata(status: &Value) -> String {
    let hex = status["services"][0]["keys"]["next"]
        .as_str()
        .expect("a next key");
    format!("3 1 1 {hex}")
}

#[test]
fn a_whole_rollover_with_wait_keeps_mail_verified_at_every_phase() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start();
    w.assert_mail_verified("before");
    let (new, cert, key) = w.new_leaf("new");
    let t0 = Instant::now();
    let mut child = spawn(&mut w.cmd(&World::deploy_args(&cert, &key, &["--wait"])));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut verdicts = Vec::new();
    let mut install_at = None;
    let mut log = Vec::new();
    for phase in [
        "published: ",
        "aged: ",
        "installed: ",
        "verified: ",
        "retired: ",
        "done: ",
    ] {
        log.extend(read_until(&mut lines, phase));
        if phase == "aged: " {
            install_at = Some(t0.elapsed());
        }
        verdicts.push((phase, w.judge()));
    }
    log.extend(lines.map_while(Result::ok));
    let status = child.wait().unwrap();
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(status.success(), "{log:#?}\n{stderr}");
    for (phase, v) in &verdicts {
        assert!(
            v.is_verified(),
            "mail at {phase}{v:?}\n{log:#?}\n{}",
            w.tx.instance().log_tail(20)
        );
    }
    // 2×TTL respected: the install came at least 4 s after the records were confirmed.
    assert!(install_at.unwrap() >= Duration::from_secs(2 * u64::from(TTL)));
    assert_eq!(w.served_spki(), new.spki_sha256_hex().unwrap());
    assert_eq!(w.tx.deferred_count().unwrap(), 0);
    // The RRset is exactly new + next; the old record is gone.
    let st = w.status_json();
    let want: BTreeSet<String> = [rdata(&new), normalize_rdata(&next_rdata(&st))]
        .into_iter()
        .collect();
    w.wait_tlsa_set(&want);
    assert!(!w.tlsa_set().contains(&rdata(&w.old)));
    // The store and status agree.
    assert_eq!(st["services"][0]["phase"], "done", "{st:#}");
    assert_eq!(st["services"][0]["next_key_published"], true);
    assert_eq!(
        st["services"][0]["keys"]["stored"]["current"].as_str(),
        Some(new.spki_sha256_hex().unwrap().as_str())
    );
    // The next key file is 0600 under the state directory.
    let next_hex = st["services"][0]["keys"]["next"].as_str().unwrap();
    let next_file = w.state.join(format!("staged/mx/ec/next-{next_hex}.key"));
    let mode = std::fs::metadata(&next_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // status --live: every nameserver serves new + next, the resolver validates them, and
    // the live handshake on the endpoint's address matches with the new key.
    let out = w.run(&["status", "--live", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let live: Value = serde_json::from_slice(&out.stdout).unwrap();
    let live = &live["services"][0]["live"];
    let owner = &live["dns"][0];
    assert_eq!(
        owner["nameservers"].as_array().unwrap().len(),
        2,
        "{live:#}"
    );
    for ns in owner["nameservers"].as_array().unwrap() {
        assert_eq!(ns["records"].as_array().map(Vec::len), Some(2), "{live:#}");
    }
    assert_eq!(
        owner["validated"].as_array().map(Vec::len),
        Some(2),
        "{live:#}"
    );
    assert_eq!(live["endpoints"][0]["match"], true, "{live:#}");
    assert_eq!(
        live["endpoints"][0]["live_key"].as_str(),
        Some(new.spki_sha256_hex().unwrap().as_str())
    );
    // The mail still flows after the rollover.
    w.assert_mail_verified("after");
    eprintln!("rollover with --wait took {:?}", t0.elapsed());
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn without_wait_deploy_returns_published_and_runs_finish_after_two_ttl() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start();
    let (new, cert, key) = w.new_leaf("new");
    let t0 = Instant::now();
    let out = w.run(&World::deploy_args(&cert, &key, &[]));
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        took < Duration::from_secs(2 * u64::from(TTL)),
        "deploy took {took:?}"
    );
    assert_eq!(w.phase(), "published", "{}", text(&out));
    // Published beside the old record (the Knot secondary may take a moment); nothing installed.
    w.dns
        .wait_served_everywhere(OWNER, &new.tlsa_311().unwrap(), JUDGE)
        .unwrap();
    let set = w.tlsa_set();
    assert!(
        set.contains(&rdata(&w.old)) && set.contains(&rdata(&new)),
        "{set:?}"
    );
    assert_eq!(w.served_spki(), w.old.spki_sha256_hex().unwrap());
    w.assert_mail_verified("published");

    // Repeated runs advance it; none installs before the install time the store announced.
    let mut eta: Option<i64> = None;
    let t1 = Instant::now();
    loop {
        let status = w.status_json();
        let svc = &status["services"][0];
        if let Some(e) = svc["eta"].as_str() {
            eta = Some(rfc3339_secs(e));
        }
        let before = now_secs();
        let out = w.run(&["run"]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        if w.served_spki() == new.spki_sha256_hex().unwrap() {
            let eta = eta.expect("an install time was announced");
            assert!(
                before >= eta - 1 && now_secs() >= eta,
                "installed before {eta}"
            );
            break;
        }
        assert!(t1.elapsed() < JUDGE, "{:#?}", w.history());
        std::thread::sleep(Duration::from_millis(400));
    }
    w.run_until("done", JUDGE);
    let st = w.status_json();
    let want: BTreeSet<String> = [rdata(&new), normalize_rdata(&next_rdata(&st))]
        .into_iter()
        .collect();
    w.wait_tlsa_set(&want);
    w.assert_mail_verified("done");
    assert_eq!(w.tx.deferred_count().unwrap(), 0);
    let history = w.history().join("\n");
    for p in [
        "staged",
        "published",
        "aged",
        "installed",
        "verified",
        "retired",
        "done",
    ] {
        assert!(
            history.contains(&format!("[\"{p}\"]")),
            "no {p} event:\n{history}"
        );
    }
    // plan changes nothing and says there is nothing to do.
    let out = w.run(&["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to do"),
        "{}",
        text(&out)
    );
}

#[test]
fn killed_between_phases_a_new_run_completes_and_mail_flows() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start();
    let (new, cert, key) = w.new_leaf("new");
    let out = w.run(&World::deploy_args(&cert, &key, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut kills = Vec::new();
    for needle in [
        "published: ",
        "aged: ",
        "installing ",
        "installed: ",
        "verified: ",
        "retired: ",
    ] {
        if w.phase() == "done" {
            break;
        }
        let mut child = spawn(&mut w.cmd(&["run", "--wait"]));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut seen = Vec::new();
        let mut hit = false;
        for line in lines.by_ref() {
            let line = line.unwrap();
            hit = line.contains(needle);
            seen.push(line);
            if hit {
                break;
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        kills.push((needle, hit, w.phase()));
        // Mail flows whatever the phase the kill left behind.
        if w.phase() != "installed" {
            w.assert_mail_verified(needle);
        } else {
            // An idle smtpd may serve either certificate for a moment; both are published.
            std::thread::sleep(Duration::from_millis(1500));
            w.assert_mail_verified(needle);
        }
    }
    eprintln!("kills: {kills:?}");
    assert!(kills.iter().filter(|k| k.1).count() >= 3, "{kills:?}");
    let out = w.run(&["run", "--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.phase(), "done");
    assert_eq!(w.served_spki(), new.spki_sha256_hex().unwrap());
    let st = w.status_json();
    let want: BTreeSet<String> = [rdata(&new), normalize_rdata(&next_rdata(&st))]
        .into_iter()
        .collect();
    w.wait_tlsa_set(&want);
    // The store's "ours" agrees with DNS: nothing stale, nothing missing.
    let published: BTreeSet<String> = st["services"][0]["records"]["published"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| normalize_rdata(r.as_str().unwrap().split(" TLSA ").nth(1).unwrap()))
        .collect();
    assert_eq!(published, want);
    w.assert_mail_verified("after");
    assert_eq!(w.tx.deferred_count().unwrap(), 0);
}

#[test]
fn a_failed_verification_rolls_back_and_keeps_the_old_records() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start();
    // The reload installs a third, unpublished key once (someone else's change racing ours).
    let rogue = w.ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let rogue_file = w.files.join("rogue.pem");
    std::fs::write(&rogue_file, rogue.key_and_chain_pem().unwrap()).unwrap();
    let flag = w.files.join("once");
    std::fs::write(&flag, "").unwrap();
    let text_conf = std::fs::read_to_string(&w.conf_path).unwrap();
    let etc = w.rx.instance().etc();
    let script = format!(
        "if [ -e {flag} ]; then rm {flag}; cp {rogue} {chain}; fi; exec postfix -c {etc} reload",
        flag = flag.display(),
        rogue = rogue_file.display(),
        chain = w.rx.chain_file().display(),
        etc = etc.display()
    );
    let conf = text_conf.replace(
        &format!(
            "reload = [\"postfix\", \"-c\", \"{}\", \"reload\"]",
            etc.display()
        ),
        &format!("reload = [\"sh\", \"-c\", {script:?}]"),
    );
    assert_ne!(conf, text_conf);
    std::fs::write(&w.conf_path, conf).unwrap();

    let (new, cert, key) = w.new_leaf("new");
    let out = w.run(&World::deploy_args(&cert, &key, &["--wait"]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rolled back"), "{}", text(&out));
    assert!(stderr.contains("ALERT"), "{}", text(&out));
    assert_eq!(w.phase(), "rolled-back");
    // The old certificate is back and its records never went.
    w.rx.wait_serving(&w.old.spki_sha256_hex().unwrap(), JUDGE)
        .unwrap();
    let set = w.tlsa_set();
    assert!(set.contains(&rdata(&w.old)), "{set:?}");
    assert!(set.contains(&rdata(&new)), "{set:?}");
    assert!(!set.contains(&rdata(&rogue)));
    std::thread::sleep(Duration::from_millis(1200));
    w.assert_mail_verified("after the rollback");
    // A later run leaves it alone.
    let out = w.run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no rollover pending"));
    // prune removes the rolled-back key's record (not live, not a next key) and keeps the live
    // one; another host's record at the owner name is never touched.
    let foreign = format!("3 1 1 {}", "0f".repeat(32));
    w.dns.add_tlsa(OWNER, TTL, &foreign).unwrap();
    let out = w.run(&["prune", "--service", "mx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("removed"),
        "{}",
        text(&out)
    );
    let want: BTreeSet<String> = [rdata(&w.old), normalize_rdata(&foreign)]
        .into_iter()
        .collect();
    w.wait_tlsa_set(&want);
    w.assert_mail_verified("after prune");
    // Nothing left to prune; and with the live handshake out of sight, prune refuses.
    let out = w.run(&["prune", "--service", "mx"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing to remove"),
        "{}",
        text(&out)
    );
    let mut w = w;
    w.rx.stop();
    let out = w.run(&["prune", "--service", "mx"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("could not be seen"),
        "{}",
        text(&out)
    );
    assert_eq!(w.tlsa_set(), want);
}

#[test]
fn a_published_next_key_rolls_without_a_new_wait() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start();
    let out = w.run(&["next-key", "mx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("generated"),
        "{}",
        text(&out)
    );
    let st = w.status_json();
    let next_hex = st["services"][0]["keys"]["stored"]["next"]
        .as_str()
        .expect("a stored next key")
        .to_owned();
    let next = format!("3 1 1 {next_hex}");
    let want: BTreeSet<String> = [rdata(&w.old), next.clone()].into_iter().collect();
    w.wait_tlsa_set(&want);
    // Again: the same key, nothing new.
    let out = w.run(&["next-key", "mx"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already present"),
        "{}",
        text(&out)
    );
    assert_eq!(w.tlsa_set(), want);
    // A run sees it served everywhere and validated, and records when.
    let t = Instant::now();
    loop {
        let out = w.run(&["run"]);
        if String::from_utf8_lossy(&out.stdout).contains("served by every nameserver") {
            break;
        }
        assert!(t.elapsed() < JUDGE, "{}", text(&out));
        std::thread::sleep(Duration::from_millis(300));
    }
    std::thread::sleep(Duration::from_secs(2 * u64::from(TTL) + 1));
    // The ACME client renews with the next key: one deploy, no wait, done.
    let key_file = w.state.join(format!("staged/mx/ec/next-{next_hex}.key"));
    let key =
        openssl::pkey::PKey::private_key_from_pem(&std::fs::read(&key_file).unwrap()).unwrap();
    let leaf =
        w.ca.leaf_for_key(&[MX_HOST], key, dane_roll_lab::pki::Validity::Days(90))
            .unwrap();
    let (cert, keyf) = w.write_leaf("next", &leaf);
    let t0 = Instant::now();
    let out = w.run(&World::deploy_args(&cert, &keyf, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.phase(), "done", "{}\n{:#?}", text(&out), w.history());
    assert!(
        t0.elapsed() < Duration::from_secs(2 * u64::from(TTL)),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(w.served_spki(), next_hex);
    let st = w.status_json();
    // Nothing rounded (issue 12): the history never runs backwards. (A confirmation time
    // rounded up to the next second came before the phase change made within that second.)
    assert_history_in_order(&st);
    let after: BTreeSet<String> = [next.clone(), normalize_rdata(&next_rdata(&st))]
        .into_iter()
        .collect();
    assert_ne!(next_rdata(&st), next, "a fresh next key");
    w.wait_tlsa_set(&after);
    w.assert_mail_verified("after");
}

#[test]
fn a_deploy_and_a_run_are_serialized_by_the_lock() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start();
    let (new, cert, key) = w.new_leaf("new");
    let out = w.run(&World::deploy_args(&cert, &key, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Someone holds the service: a run with a short lock wait says who, and fails.
    let held = dane_roll::lock::acquire(&w.state, "mx", "test holder", Duration::ZERO).unwrap();
    let out = w.run(&["run", "--lock-wait", "0.3"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("PID {} (test holder)", std::process::id())),
        "{stderr}"
    );
    // A run with the default wait waits for the holder, then goes on.
    let mut child = spawn(&mut w.cmd(&["run"]));
    std::thread::sleep(Duration::from_millis(800));
    assert!(child.try_wait().unwrap().is_none(), "the run did not wait");
    drop(held);
    let status = child.wait().unwrap();
    assert!(status.success());
    // A deploy --wait and a run --wait started together both succeed; one drives at a time.
    let mut a = spawn(&mut w.cmd(&World::deploy_args(&cert, &key, &["--wait"])));
    let mut b = spawn(&mut w.cmd(&["run", "--wait"]));
    let (sa, sb) = (a.wait().unwrap(), b.wait().unwrap());
    assert!(sa.success() && sb.success(), "deploy {sa}, run {sb}");
    assert_eq!(w.phase(), "done");
    assert_eq!(w.served_spki(), new.spki_sha256_hex().unwrap());
    // Exactly one install and one reload happened (the lock let one process act).
    let history = w.history();
    let installs = history.iter().filter(|h| h.contains("installing ")).count();
    assert_eq!(installs, 1, "{history:#?}");
    w.assert_mail_verified("after");
}

#[test]
fn a_provider_failure_is_retried_by_the_next_run_with_nothing_missing() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start();
    let before = w.tlsa_set();
    let (new, cert, key) = w.new_leaf("new");
    // The TSIG key is wrong: nothing can be published; clear error, exit 2.
    break_tsig(&w);
    let out = w.run(&World::deploy_args(&cert, &key, &[]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("provider lab"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(&w.dns.tsig().secret), "secret printed");
    assert_eq!(w.phase(), "staged");
    assert_eq!(w.tlsa_set(), before);
    assert_eq!(w.served_spki(), w.old.spki_sha256_hex().unwrap());
    // Repaired: the next run publishes.
    fix_tsig(&w);
    let out = w.run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.phase(), "published");
    // Broken again midway: the runs install and verify (DNS is only read), but the retire
    // fails; the old record stays, nothing is missing, mail flows.
    break_tsig(&w);
    let outs = w.run_until("verified", JUDGE);
    assert!(outs.iter().any(|o| o.status.code() == Some(2)));
    assert_eq!(w.served_spki(), new.spki_sha256_hex().unwrap());
    let set = w.tlsa_set();
    assert!(
        set.contains(&rdata(&w.old)) && set.contains(&rdata(&new)),
        "{set:?}"
    );
    w.assert_mail_verified("retire failing");
    fix_tsig(&w);
    let out = w.run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.phase(), "done");
    let st = w.status_json();
    let want: BTreeSet<String> = [rdata(&new), normalize_rdata(&next_rdata(&st))]
        .into_iter()
        .collect();
    w.wait_tlsa_set(&want);
    w.assert_mail_verified("after");
}

#[test]
fn a_renewal_with_the_same_key_installs_and_leaves_dns_alone() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start();
    let before = w.tlsa_set();
    let renewed =
        w.ca.leaf_for_key(
            &[MX_HOST],
            w.old.key.clone(),
            dane_roll_lab::pki::Validity::Days(60),
        )
        .unwrap();
    let (cert, key) = w.write_leaf("renewed", &renewed);
    let out = w.run(&World::deploy_args(&cert, &key, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("renewed with the same key"),
        "{}",
        text(&out)
    );
    let served = w.rx.served_chain().unwrap();
    assert_eq!(
        served[0].to_der().unwrap(),
        renewed.cert.to_der().unwrap(),
        "the renewed certificate is live"
    );
    assert_eq!(w.tlsa_set(), before, "DNS unchanged");
    w.assert_mail_verified("after the renewal");
}

#[test]
fn bad_input_fails_clearly_and_writes_nothing() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start();
    let (_, cert, key) = w.new_leaf("new");
    let (_, _, other_key) = w.new_leaf("other");
    // Unknown service.
    let out = w.run(&[
        "deploy",
        "--service",
        "nope",
        "--cert",
        cert.to_str().unwrap(),
        "--key",
        key.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no service \"nope\"") && err.contains("mx"),
        "{err}"
    );
    // A key that is not the certificate's.
    let out = w.run(&World::deploy_args(&cert, &other_key, &[]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("does not belong to the certificate")
            && err.contains(other_key.to_str().unwrap())
            && err.contains(cert.to_str().unwrap()),
        "{err}"
    );
    // A missing file.
    let missing = w.files.join("missing.crt");
    let out = w.run(&World::deploy_args(&missing, &key, &[]));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.crt"));
    // Nothing was written: no state database, no staged file.
    assert!(!w.state.join("state.db").exists());
    assert!(!w.state.join("staged").exists());
    // A configuration error.
    let bad = w.files.join("bad.toml");
    std::fs::write(&bad, "version = 1\n[[service]]\nname = \"mx\"\n").unwrap();
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&bad)
        .args(World::deploy_args(&cert, &key, &[]))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.toml"),
        "{}",
        text(&out)
    );
    // With a store in place, bad input leaves it as it was.
    assert_eq!(
        w.run(&World::deploy_args(&cert, &key, &[])).status.code(),
        Some(0)
    );
    let before = w.status_json();
    let out = w.run(&World::deploy_args(&cert, &other_key, &[]));
    assert_eq!(out.status.code(), Some(2));
    let out = w.run(&["run", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(w.status_json()["history"], before["history"]);
    // status of an unknown service too.
    let out = w.run(&["status", "nope"]);
    assert_eq!(out.status.code(), Some(2));
}

/// Benchmark (`benches/rollover.sh`): whole rollovers with `deploy --wait` in the lab, TTL 2 s.
/// Prints per run the wall time, the wall time minus 2×TTL, the DNS propagation (publish until
/// every nameserver serves and the resolver validates, which includes the resolver's cache of
/// the previous RRset, up to one TTL), and the driver's own work (wall time minus the whole
/// publish-to-install wait).
#[test]
#[ignore = "a benchmark: run by benches/rollover.sh"]
fn bench_rollover_wall_time() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start();
    let runs: usize = std::env::var("DANE_ROLL_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let wait = Duration::from_secs(2 * u64::from(TTL));
    let mut overheads = Vec::new();
    let mut works = Vec::new();
    let mut beyond = Vec::new();
    for i in 0..runs {
        let (_, cert, key) = w.new_leaf(&format!("bench{i}"));
        let t0 = Instant::now();
        let mut child = spawn(&mut w.cmd(&World::deploy_args(&cert, &key, &["--wait"])));
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut marks = Vec::new();
        let (mut published, mut validated, mut aged) = (None, None, None);
        for line in lines.map_while(Result::ok) {
            let at = t0.elapsed();
            if line.contains("records published") && published.is_none() {
                published = Some(at);
            }
            if line.contains("served by every nameserver at") {
                validated = Some(at);
            }
            if line.contains("aged: served everywhere for 2×TTL") {
                aged = Some(at);
            }
            marks.push(format!("{:>6.0} ms  {line}", at.as_secs_f64() * 1000.0));
        }
        assert!(child.wait().unwrap().success(), "{marks:#?}");
        let wall = t0.elapsed();
        let overhead = wall.saturating_sub(wait);
        let (published, validated, aged) = (published.unwrap(), validated.unwrap(), aged.unwrap());
        let propagation = validated.saturating_sub(published);
        let work = wall.saturating_sub(aged.saturating_sub(published));
        eprintln!(
            "run {i}: wall {wall:?}; minus 2×TTL {overhead:?}; DNS propagation {propagation:?}; \
             gate wait after served everywhere {:?}; driver work {work:?}",
            aged.saturating_sub(validated)
        );
        if std::env::var_os("DANE_ROLL_BENCH_VERBOSE").is_some() {
            for m in &marks {
                eprintln!("  {m}");
            }
        }
        overheads.push(overhead);
        works.push(work);
        beyond.push(overhead.saturating_sub(propagation));
        w.assert_mail_verified("bench");
    }
    overheads.sort();
    works.sort();
    beyond.sort();
    let mid = runs / 2;
    eprintln!(
        "BENCH rollover: runs {runs}; wall minus 2×TTL: min {:?}, median {:?}, max {:?}",
        overheads[0],
        overheads[mid],
        overheads[runs - 1]
    );
    eprintln!(
        "BENCH rollover: driver work (wall minus the publish-to-install wait): min {:?}, \
         median {:?}, max {:?}",
        works[0],
        works[mid],
        works[runs - 1]
    );
    eprintln!(
        "BENCH rollover: beyond propagation + 2×TTL: min {:?}, median {:?}, max {:?}",
        beyond[0],
        beyond[mid],
        beyond[runs - 1]
    );
}

/// Write a configuration with `n` services and a store holding one rollover per service (in
/// varied phases, with published records and keys) under `dir`; returns the configuration file.
fn status_fixture(dir: &Path, n: usize) -> PathBuf {
    use dane_roll::rollover::{Slot, StageRequest, Timestamp, TlsaAt, stage};
    use dane_roll::store::{KeyEntry, KeyRole, RecordChange, Store};
    let leaf = dane_roll_lab::pki::self_signed(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let mut conf = format!(
        "version = 1\nstate-dir = \"{}\"\n\n[resolver]\naddress = \"127.0.0.1\"\n\n\
         [provider.m]\nkind = \"manual\"\n",
        dir.join("state").display()
    );
    for i in 0..n {
        conf.push_str(&format!(
            "\n[[service]]\nname = \"mx{i}\"\nendpoints = [\"mx{i}.example.test:25/smtp\"]\n\
             chain-file = \"{}\"\nttl = 3600\nprovider = \"m\"\n",
            dir.join(format!("chain{i}.pem")).display()
        ));
    }
    let path = dir.join("dane-roll.toml");
    std::fs::write(&path, conf).unwrap();
    let config = dane_roll::config::Config::load(&path).unwrap();
    let mut store = Store::open(&dir.join("state")).unwrap();
    let t0 = Timestamp::from_secs(1_790_000_000);
    for (i, service) in config.services.iter().enumerate() {
        let staged = dir.join(format!("staged{i}.pem"));
        std::fs::write(&staged, leaf.key_and_chain_pem().unwrap()).unwrap();
        let key = |b: u8| dane_roll::rollover::KeyHash([b.wrapping_add(i as u8); 32]);
        let mut req = StageRequest::for_service(service, Slot::Ec, key(2), staged);
        req.old = Some(key(1));
        req.next = Some(key(3));
        let s = stage(req, t0).unwrap();
        store.save(&s.next, &s.events, &[], t0).unwrap();
        let changes: Vec<RecordChange> = s
            .next
            .publish_set()
            .into_iter()
            .map(|record: TlsaAt| RecordChange::Published { record, ttl: 3600 })
            .collect();
        store
            .record_changes(&service.name, &Slot::Ec, &changes, t0)
            .unwrap();
        for (role, b) in [(KeyRole::Current, 1), (KeyRole::New, 2), (KeyRole::Next, 3)] {
            store
                .set_key(&KeyEntry {
                    service: service.name.clone(),
                    slot: Slot::Ec,
                    role,
                    hash: key(b),
                    path: None,
                    created: t0,
                })
                .unwrap();
        }
    }
    path
}

#[test]
fn status_of_50_services_reads_only_the_store_and_is_fast() {
    let dir = tempfile::tempdir().unwrap();
    let conf = status_fixture(dir.path(), 50);
    let run = || {
        Command::new(BIN)
            .arg("-c")
            .arg(&conf)
            .args(["status", "--json"])
            .output()
            .unwrap()
    };
    let _ = run(); // warm the page cache
    let t0 = Instant::now();
    let out = run();
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    let rows = doc["services"].as_array().unwrap();
    assert_eq!(rows.len(), 50);
    assert!(rows.iter().all(|r| r["phase"] == "staged"), "{doc:#}");
    assert_eq!(rows[7]["records"]["published"].as_array().unwrap().len(), 3);
    assert_eq!(rows[7]["next_key_published"], true);
    assert!(rows[7]["certificate"]["not_after"].is_string());
    // No resolver at 127.0.0.1 is needed: nothing but the store was read. A debug build is
    // slower than the release build hyperfine measures; this only catches a gross regression.
    assert!(took < Duration::from_millis(1000), "status took {took:?}");
    let out = Command::new(BIN)
        .arg("-c")
        .arg(&conf)
        .args(["status", "mx3", "--history"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("mx3 (ec): staged") && stdout.contains("rollover staged"),
        "{stdout}"
    );
    assert!(!stdout.contains("mx4 "), "{stdout}");
}

/// For `benches/rollover.sh`: write the 50-service status fixture to `DANE_ROLL_BENCH_DIR`.
#[test]
#[ignore = "a benchmark fixture: run by benches/rollover.sh"]
fn bench_status_fixture() {
    let Some(dir) = std::env::var_os("DANE_ROLL_BENCH_DIR") else {
        return;
    };
    let conf = status_fixture(Path::new(&dir), 50);
    println!("FIXTURE {}", conf.display());
}

#[test]
fn force_skips_only_the_wait_loudly() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start();
    let (new, cert, key) = w.new_leaf("new");
    let t0 = Instant::now();
    let out = w.run(&World::deploy_args(&cert, &key, &["--wait", "--force"]));
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("warning: --force"), "{stderr}");
    assert!(stderr.contains("FORCED"), "{stderr}");
    // Done without the 2×TTL wait, yet only once every nameserver served the records.
    assert!(took < Duration::from_secs(2 * u64::from(TTL)), "{took:?}");
    assert_eq!(w.phase(), "done");
    assert_eq!(w.served_spki(), new.spki_sha256_hex().unwrap());
    let history = w.history().join("\n");
    assert!(
        history.contains("--force given by the operator"),
        "{history}"
    );
    assert!(
        history.contains("served by every nameserver at"),
        "{history}"
    );
    std::thread::sleep(Duration::from_secs(u64::from(TTL)));
    w.assert_mail_verified("after");
}
