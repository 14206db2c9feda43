//! The 2×TTL wait counts the TTL resolvers really hold (issue 12), on the lab: real BIND +
//! Knot, a validating Unbound that caches up to a minute here (the lab's default is 5 s), the
//! receiving Postfix whose certificate is rolled, and the DANE-enforcing sending Postfix as the
//! judge. The service says `ttl = 2`, but the owner's TLSA RRset was served with 10 s before
//! the rollover: a resolver may keep the old RRset, without the new record, 10 s, so the
//! install must wait 2×10 s after every nameserver serves the new record, not 2×2 s. And a
//! provider that publishes with a larger TTL than configured (a minimum TTL, here an `exec`
//! provider with a 6 s floor) is named once as a warning, and its TTL counted.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;

use dane_roll_lab::conf::{quote, rollover_tools};
use dane_roll_lab::dns::Server;
use dane_roll_lab::require;
use dane_roll_lab::world::{
    JUDGE, Setup, World, assert_history_in_order, read_until, rfc3339_millis, spawn, text,
};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
/// The configured TTL.
const TTL: u32 = 2;
/// The TTL the owner's RRset was served with before the rollover (set by hand).
const SERVED_TTL: u32 = 10;

/// The old certificate live, its `3 1 1` published by hand with TTL `served_ttl`, a resolver
/// that holds what it is served up to a minute (the lab caps at 5 s to keep tests short);
/// records by RFC 2136 UPDATE, or through a provider that never publishes below `min_ttl`.
fn start(served_ttl: u32, min_ttl: Option<u32>) -> World {
    let mut w = World::start_with(Setup {
        served_ttl,
        resolver_max_ttl: Some(60),
        ..Setup::new(BIN, TTL)
    });
    if let Some(min) = min_ttl {
        let script = w.files.join("clamping-provider");
        std::fs::write(
            &script,
            clamping_provider(w.dns.addr(Server::Bind), &w.dns.tsig().file, min),
        )
        .unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let provider = format!(
            "kind = \"exec\"\ncommand = [{}]\n",
            quote(&script.display().to_string())
        );
        w.rewrite(|c| c.provider = provider);
    }
    w
}

/// An `exec` provider that behaves like a DNS host with a minimum TTL (deSEC's is 3600 s): it
/// adds records by UPDATE to BIND with the TTL asked for, raised to `min`.
fn clamping_provider(server: std::net::Ipv4Addr, tsig: &std::path::Path, min: u32) -> String {
    format!(
        r#"#!/bin/sh
set -eu
action=$1 owner=$2
update() {{
    printf 'server {server}\nzone example.test.\n%s\nsend\n' "$1" | nsupdate -k '{key}'
}}
case $action in
list) dig +short +nosplit @{server} "$owner" TLSA ;;
add) ttl=$3; [ "$ttl" -lt {min} ] && ttl={min}; update "update add $owner $ttl IN TLSA $4" ;;
remove) update "update delete $owner IN TLSA $4" ;;
esac
"#,
        key = tsig.display()
    )
}

/// The time of the first history event whose detail contains `needle`.
fn event_time(status: &Value, needle: &str) -> f64 {
    let history = status["history"].as_array().unwrap();
    let e = history
        .iter()
        .find(|e| e["detail"].as_str().unwrap_or("").contains(needle))
        .unwrap_or_else(|| panic!("no event {needle:?} in {status:#}"));
    rfc3339_millis(e["time"].as_str().unwrap()) as f64 / 1000.0
}

#[test]
fn a_larger_ttl_served_before_the_change_governs_the_wait_and_mail_stays_verified() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start(SERVED_TTL, None);
    // The sender's resolver now holds the old RRset (old record only) for SERVED_TTL.
    let before = w.judge();
    assert!(before.is_verified(), "before: {before:?}");
    let (new, cert, key) = w.new_leaf("new");
    let mut child = spawn(&mut w.cmd(&World::deploy_args(&cert, &key, &["--wait"])));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut log = read_until(&mut lines, "reload");
    // The new certificate is live: a DANE sender must still verify it.
    w.rx.wait_serving(&new.spki_sha256_hex().unwrap(), JUDGE)
        .unwrap();
    let at_install = w.judge();
    log.extend(lines.map_while(Result::ok));
    let status = child.wait().unwrap();
    let stderr = std::io::read_to_string(child.stderr.take().unwrap()).unwrap();
    assert!(status.success(), "{log:#?}\n{stderr}");
    let st = w.status_json();
    // The install came 2×(the TTL served before the change) after served-everywhere.
    let served = event_time(&st, "served by every nameserver");
    let installed = event_time(&st, "installing ");
    assert!(
        installed - served >= f64::from(2 * SERVED_TTL),
        "installed {:.1} s after served-everywhere, not 2×{SERVED_TTL} s\n{log:#?}",
        installed - served
    );
    assert!(
        at_install.is_verified(),
        "mail right after the install: {at_install:?}\n{log:#?}\n{}",
        w.tx.instance().log_tail(20)
    );
    // Nothing rounded: the history never runs backwards.
    assert_history_in_order(&st);
    // status says which TTL governed the wait and where it was seen.
    let wait = &st["services"][0]["wait"];
    assert_eq!(wait["ttl"], SERVED_TTL, "{wait:#}");
    assert_eq!(wait["configured_ttl"], TTL, "{wait:#}");
    let source = wait["governed_by"]["source"].as_str().unwrap_or("");
    assert!(source.contains("127.53."), "{wait:#}");
    assert!(
        wait["observed"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["ttl"] == SERVED_TTL),
        "{wait:#}"
    );
    let out = w.run(&["status"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("TTL {SERVED_TTL} s served by")),
        "{}",
        text(&out)
    );
    let after = w.judge();
    assert!(after.is_verified(), "after: {after:?}");
    assert_eq!(w.tx.deferred_count().unwrap(), 0);
}

#[test]
fn a_provider_that_raises_the_ttl_is_named_once_and_its_ttl_counted() {
    if !require(&rollover_tools(true)) {
        return;
    }
    // The RRset is served with the configured 2 s before; the provider publishes with 6 s.
    const MIN: u32 = 6;
    let w = start(TTL, Some(MIN));
    let (new, cert, key) = w.new_leaf("new");
    let out = w.deploy(&cert, &key, &["--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let st = w.status_json();
    assert_eq!(st["services"][0]["phase"], "done", "{st:#}");
    let served = event_time(&st, "served by every nameserver");
    let installed = event_time(&st, "installing ");
    assert!(
        installed - served >= f64::from(2 * MIN),
        "installed {:.1} s after served-everywhere, not 2×{MIN} s\n{}",
        installed - served,
        text(&out)
    );
    let warnings: Vec<&Value> = st["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let d = e["detail"].as_str().unwrap_or("");
            d.starts_with("warning:")
                && d.contains(&format!("TTL {MIN} s, not the configured {TTL} s"))
        })
        .collect();
    assert_eq!(warnings.len(), 1, "{st:#}");
    assert_eq!(st["services"][0]["wait"]["ttl"], MIN, "{st:#}");
    w.rx.wait_serving(&new.spki_sha256_hex().unwrap(), JUDGE)
        .unwrap();
    let v = w.judge();
    assert!(v.is_verified(), "after: {v:?}");
    assert_eq!(w.tx.deferred_count().unwrap(), 0);
}
