//! Every owner name stays deliverable when the service changes (issue 13), on the lab: real
//! BIND + Knot (signed zone, TSIG updates), a validating Unbound, the receiving Postfix and the
//! sending Postfix that enforces DANE, the judge (every test mail "Verified", nothing deferred at
//! the end).
//!
//! - an endpoint added to a service that already rolled (a second host name, `mx2`, at the MX's
//!   address, served by the same Postfix): the new owner name gets the live key's record before
//!   the next key's, so mail to it is Verified (before, `next-key` put the next key's record
//!   there alone and the sender deferred);
//! - that endpoint removed again: its records stay while it is served, and go once its host is
//!   gone;
//! - drift: the chain file replaced behind dane-roll's back (+ `postfix reload`): `run` alerts
//!   once (a webhook into `dane_roll_lab::sink`: one alert, later one recovery), publishes the
//!   served key's record (mail Verified again), adopts the key through a rollover, and `status
//!   --live` exits 1 until it is adopted;
//! - an RSA certificate put in a file configured for EC keys only: its record is published (mail
//!   Verified), the alert says it cannot be adopted and what to add to `chain-files`, the EC
//!   slot is reported as orphaned, `status --live` exits 1.
//!
//! Each test starts its own lab (skipped outside CI when a server is missing; see
//! `dane_roll_lab::require`) and leaves no server behind.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use dane_roll_lab::conf::{Chains, rollover_tools};
use dane_roll_lab::dns::query::normalize_rdata;
use dane_roll_lab::pki::{KeyKind, Leaf, MX_HOST};
use dane_roll_lab::require;
use dane_roll_lab::sink::Sink;
use dane_roll_lab::world::{JUDGE, OWNER, World, rdata, text};

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
const MX2: &str = "mx2.example.test";
const OWNER2: &str = "_25._tcp.mx2.example.test.";

/// One lab with the OLD certificate live and its `3 1 1` published by hand, service `ttl`.
fn start(ttl: u32) -> World {
    World::start(BIN, ttl)
}

/// Roll to a new key with `deploy --wait`; the new leaf and the published next key.
fn rolled(w: &World) -> (Leaf, String) {
    let (new, cert, key) = w.new_leaf("new");
    let out = w.deploy(&cert, &key, &["--wait"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let status = w.status_json();
    let next = status["services"][0]["keys"]["next"]
        .as_str()
        .unwrap_or_else(|| panic!("no next key: {status:#}"))
        .to_owned();
    (new, next)
}

/// Retry every deferred mail until the queue is empty (each must then go Verified).
fn assert_queue_drains(w: &World) {
    let t0 = Instant::now();
    loop {
        w.tx.flush().unwrap();
        std::thread::sleep(Duration::from_millis(500));
        if w.tx.queue_empty().unwrap() {
            break;
        }
        assert!(
            t0.elapsed() < JUDGE,
            "mail stays queued: {:?}\n{}",
            w.tx.queue(),
            w.tx.instance().log_tail(20)
        );
    }
    assert_eq!(w.tx.deferred_count().unwrap(), 0, "mail deferred");
    assert_eq!(w.tx.bounced_count(), 0, "mail bounced");
}

/// A second host name for the MX's address (`mx2`, with its own MX record so mail to
/// `someone@mx2.example.test` goes there), accepted by the receiving Postfix.
fn add_mx2(w: &World) {
    let mx = w.rx.addr().ip().to_string();
    let zone = format!("zone {}.", w.dns.zone());
    let a = format!("update add {MX2}. 60 IN A {mx}");
    let m = format!("update add {MX2}. 60 IN MX 10 {MX2}.");
    let out = w.dns.nsupdate(&[&zone, &a, &m]).unwrap();
    assert!(out.is_ok(), "{out:?}");
    postconf(
        &w.rx.instance().etc(),
        &format!("mydestination = example.test, {MX_HOST}, {MX2}"),
    );
    w.rx.reload_settled().unwrap();
    // Every authoritative server has the address before anything is judged.
    let t0 = Instant::now();
    while !w.dns.authoritative().iter().all(|s| {
        w.dns
            .query(*s, MX2, "A")
            .is_ok_and(|a| !a.records("A").is_empty())
    }) {
        assert!(t0.elapsed() < JUDGE, "{MX2} never served");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn postconf(etc: &Path, setting: &str) {
    let out = Command::new("postconf")
        .arg("-c")
        .arg(etc)
        .args(["-e", setting])
        .output()
        .unwrap();
    assert!(out.status.success(), "postconf: {}", text(&out));
}

fn rdata_of(hash: &str) -> String {
    normalize_rdata(&format!("3 1 1 {hash}"))
}

fn set(items: &[String]) -> BTreeSet<String> {
    items.iter().cloned().collect()
}

#[test]
fn an_added_endpoint_gets_the_live_key_first_and_a_removed_one_keeps_its_records_while_served() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let mut w = start(2);
    let (live, next) = rolled(&w);
    let to_mx2 = format!("someone@{MX2}");
    w.assert_verified("someone@example.test", "after the rollover");

    // A second endpoint: the same Postfix under a second name.
    add_mx2(&w);
    w.rewrite(|c| c.endpoints.push(format!("{MX2}:25/smtp")));
    // `plan` says what `run` will do, the live key's record first.
    let out = w.run(&["plan"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let plan = String::from_utf8_lossy(&out.stdout).into_owned();
    let live_line = plan
        .find(&format!(
            "publish {OWNER2} TLSA 3 1 1 {}",
            live.spki_sha256_hex().unwrap()
        ))
        .unwrap_or_else(|| panic!("plan does not publish the live key at {OWNER2}:\n{plan}"));
    let next_line = plan
        .find(&format!("publish {OWNER2} TLSA 3 1 1 {next}"))
        .unwrap_or_else(|| panic!("plan does not publish the next key at {OWNER2}:\n{plan}"));
    assert!(live_line < next_line, "live key first:\n{plan}");
    assert!(plan.contains("seen by the probe"), "{plan}");

    // `next-key` (an operator, a hook) publishes the next key at every owner name: before the
    // fix, the new owner name got the next key's record alone, and the sender deferred.
    let out = w.run(&["next-key", "mx"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let both = set(&[rdata(&live), rdata_of(&next)]);
    w.wait_tlsa_set_at(OWNER2, &both);
    // The resolver may hold the owner name's earlier NXDOMAIN for the zone's negative TTL (the
    // SOA minimum, 5 s): a real sender sees new records no sooner either.
    std::thread::sleep(Duration::from_secs(6));
    w.assert_verified(&to_mx2, "after next-key at the new owner name");
    // `run` leaves it so (nothing missing) and the old owner name is untouched.
    let out = w.run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.tlsa_set_at(OWNER2), both);
    assert!(w.tlsa_set_at(OWNER).is_superset(&both));
    // The records are ours: status lists them.
    let status = w.status_json();
    assert!(
        status.to_string().contains(OWNER2),
        "the new owner name's records are not stored as ours: {status:#}"
    );

    // The endpoint removed from the configuration while its host still serves: kept.
    w.rewrite(|c| c.endpoints.retain(|e| !e.starts_with(MX2)));
    let out = w.run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("keeping")
            || String::from_utf8_lossy(&out.stderr).contains("keeping"),
        "{}",
        text(&out)
    );
    assert_eq!(w.tlsa_set_at(OWNER2), both, "records retired while served");
    w.assert_verified(&to_mx2, "after the endpoint left the configuration");

    // Its host gone: the records go.
    let zone = format!("zone {}.", w.dns.zone());
    let del_a = format!("update delete {MX2}. A");
    let del_mx = format!("update delete {MX2}. MX");
    assert!(w.dns.nsupdate(&[&zone, &del_a, &del_mx]).unwrap().is_ok());
    let t0 = Instant::now();
    while !w.dns.authoritative().iter().all(|s| {
        w.dns
            .query(*s, MX2, "A")
            .is_ok_and(|a| a.records("A").is_empty())
    }) {
        assert!(t0.elapsed() < JUDGE, "{MX2} never went");
        std::thread::sleep(Duration::from_millis(50));
    }
    w.dns.flush_resolver().unwrap();
    let out = w.run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    w.wait_tlsa_set_at(OWNER2, &BTreeSet::new());
    assert!(
        w.tlsa_set_at(OWNER).is_superset(&both),
        "the MX keeps its records"
    );
    w.assert_verified("someone@example.test", "at the end");
    assert_queue_drains(&w);
}

#[test]
fn drift_is_alerted_once_published_and_adopted() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let mut w = start(2);
    // The alert channel: a webhook into the lab's sink.
    let sink = Sink::start();
    w.rewrite(|c| {
        c.extra = format!(
            "[alerts]\nrepeat-interval = \"6h\"\n\n[alerts.channel.ops]\nkind = \"webhook\"\n\
             url = \"http://{}/hook\"\n",
            sink.addr
        );
    });
    let check = "drift/mx/ec";
    let (live, next) = rolled(&w);
    w.assert_verified("someone@example.test", "after the rollover");
    let out = w.run(&["status", "--live"]);
    assert_eq!(out.status.code(), Some(0), "no drift yet: {}", text(&out));

    // Behind dane-roll's back: another key in the chain file, and `postfix reload`.
    let rogue = w.ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    w.rx.install_chain(&rogue.key_and_chain_pem().unwrap())
        .unwrap();
    w.rx.reload_settled().unwrap();
    w.rx.wait_serving(&rogue.spki_sha256_hex().unwrap(), JUDGE)
        .unwrap();
    // The sender defers: no record matches the served key.
    let v = w.judge_to("someone@example.test");
    assert!(v.is_deferred(), "expected a deferral before run: {v:?}");
    let out = w.run(&["status", "--live"]);
    assert_eq!(out.status.code(), Some(1), "drift: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("MISMATCH"),
        "{}",
        text(&out)
    );

    // `run`: one alert, the served key's record published, its adoption staged.
    let out = w.run(&["run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let alerts = |out: &Output| {
        String::from_utf8_lossy(&out.stderr)
            .lines()
            .filter(|l| l.contains("ALERT") && l.contains("not the stored current key"))
            .count()
    };
    assert_eq!(alerts(&out), 1, "{}", text(&out));
    let sent = sink.about(check);
    assert_eq!(sent.len(), 1, "{sent:#?}");
    assert_eq!(sent[0]["severity"], "critical");
    let mut want = set(&[rdata(&live), rdata_of(&next), rdata(&rogue)]);
    w.wait_tlsa(OWNER, "served key's record published", |s| {
        s.is_superset(&want)
    });
    // Resolvers see it within a TTL: mail flows again.
    std::thread::sleep(Duration::from_secs(3));
    w.assert_verified("someone@example.test", "after run published the served key");
    let out = w.run(&["status", "--live"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "still a mismatch until adopted: {}",
        text(&out)
    );

    // The adoption finishes like any rollover; no second alert.
    let out = w.run(&["run", "--wait", "--timeout", "120"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(alerts(&out), 0, "alerted twice: {}", text(&out));
    assert_eq!(w.phase(), "done");
    let out = w.run(&["status", "--live"]);
    assert_eq!(out.status.code(), Some(0), "adopted: {}", text(&out));
    // The replaced key's records went once the served key was verified; the next key stays.
    want.remove(&rdata(&live));
    w.wait_tlsa(OWNER, "the replaced key's records retired", |s| {
        s.is_superset(&want) && !s.contains(&rdata(&live))
    });
    let out = w.run(&["run"]);
    assert_eq!(alerts(&out), 0, "{}", text(&out));
    // One alert, one recovery once the served key is the stored one again.
    let sent = sink.about(check);
    assert_eq!(sent.len(), 2, "{sent:#?}");
    assert_eq!(sent[1]["severity"], "ok");
    assert_eq!(sent[1]["recovered"], true);
    w.run(&["run"]);
    assert_eq!(sink.about(check).len(), 2, "no second recovery");
    w.assert_verified("someone@example.test", "at the end");
    assert_queue_drains(&w);
}

#[test]
fn a_certificate_of_another_algorithm_gets_its_record_and_says_what_to_do() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let mut w = start(2);
    // The service's chain file is for EC keys only.
    let file = w.rx.chain_file();
    w.rewrite(|c| c.chains = Chains::PerAlgorithm(vec![("ec".to_owned(), file)]));
    let (live, _next) = rolled(&w);
    w.assert_verified("someone@example.test", "after the rollover");

    // By hand: an RSA certificate in the EC slot's file, and `postfix reload`.
    let rsa = w.ca.leaf(&[MX_HOST], KeyKind::Rsa2048).unwrap();
    w.rx.install_chain(&rsa.key_and_chain_pem().unwrap())
        .unwrap();
    w.rx.reload_settled().unwrap();
    w.rx.wait_serving(&rsa.spki_sha256_hex().unwrap(), JUDGE)
        .unwrap();

    let out = w.run(&["run"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // It cannot be adopted (no chain file for RSA keys): the alert says exactly what to do,
    // and the EC slot is reported as orphaned.
    assert!(
        stderr.contains("ALERT")
            && stderr.contains("cannot be adopted")
            && stderr.contains("rsa = "),
        "{}",
        text(&out)
    );
    assert!(stderr.contains("served on no endpoint"), "{}", text(&out));
    // The served key's record is published all the same: mail flows.
    w.wait_tlsa(OWNER, "the RSA key's record", |s| {
        s.contains(&rdata(&rsa)) && s.contains(&rdata(&live))
    });
    std::thread::sleep(Duration::from_secs(3));
    w.assert_verified(
        "someone@example.test",
        "with the RSA key's record published",
    );
    let out = w.run(&["status", "--live"]);
    assert_eq!(out.status.code(), Some(1), "mismatch: {}", text(&out));
    assert_queue_drains(&w);
}
