//! What the tests of the gate on the field lab share (tests/field_gate.rs, field_netns.rs): a
//! deploy that leaves the rollover `published`, the nameservers of `status --live`, and the
//! rollover seen through to the end.

#![allow(dead_code)]

use std::time::Duration;

use dane_roll_lab::pki::Leaf;
use dane_roll_lab::world::{JUDGE, OWNER, World, text};
use serde_json::Value;

/// The live DNS view's entries (`status --live --json`) naming `needle`.
pub fn live_nameservers(w: &World, needle: &str) -> Vec<Value> {
    let out = w.run(&["status", "--live", "--json"]);
    let json: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status --live --json: {e}: {}", text(&out)));
    json["services"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["live"]["dns"].as_array().cloned().unwrap_or_default())
        .flat_map(|o| o["nameservers"].as_array().cloned().unwrap_or_default())
        .filter(|n| n["nameserver"].as_str().is_some_and(|s| s.contains(needle)))
        .collect()
}

/// Deploy a new leaf; the rollover is `published`. The leaf.
pub fn deploy_published(w: &World) -> Leaf {
    let (new, cert, key) = w.new_leaf("new");
    let out = w.run(&World::deploy_args(&cert, &key, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.phase(), "published", "{}", text(&out));
    w.dns
        .wait_served_everywhere(OWNER, &new.tlsa_311().unwrap(), JUDGE)
        .unwrap();
    new
}

/// `addr` (a nameserver's address) is in the live DNS view once, "not checkable from here" and
/// "not waited for".
pub fn assert_not_checkable(w: &World, addr: &str) {
    let seen = live_nameservers(w, addr);
    assert_eq!(seen.len(), 1, "{addr}: {seen:#?}");
    let why = seen[0]["records"]["error"].as_str().unwrap_or_default();
    assert!(why.contains("not checkable from here"), "{why}");
    assert!(why.contains("not waited for"), "{why}");
}

/// The rollover to `new` completes within 30 s (2×TTL is 4 s: well within it, unless
/// something holds the gate) and mail is Verified after it.
pub fn assert_completes(w: &World, new: &Leaf) {
    w.run_until("done", Duration::from_secs(30));
    assert_eq!(w.served_spki(), new.spki_sha256_hex().unwrap());
    w.assert_mail_verified("after");
}
