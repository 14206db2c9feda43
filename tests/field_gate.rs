//! The gate from ordinary hosts (issue 17) on the lab: real BIND + Knot, a validating Unbound,
//! the receiving and the DANE-enforcing sending Postfix, the real `dane-roll` binary with
//! service `ttl = 2`.
//!
//! An IPv4-only host asking a dual-stack nameserver: ns2 gets an AAAA record at an address this
//! host has no route to (`ip -6 route replace unreachable fd00:53:N::/64`, removed at
//! teardown; no packet leaves the machine).

use std::time::{Duration, Instant};

use dane_roll_lab::conf::rollover_tools;
use dane_roll_lab::dns::Server;
use dane_roll_lab::field::UnreachableRoute;
use dane_roll_lab::ports::LoopbackBlock;
use dane_roll_lab::require;
use dane_roll_lab::world::{JUDGE, World, text};

mod gate_support;

use gate_support::{assert_completes, assert_not_checkable, deploy_published, live_nameservers};

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
const TTL: u32 = 2;

/// The lab with the OLD certificate live and its `3 1 1` published; the provider updates BIND.
fn start() -> World {
    let mut w = World::start(BIN, TTL);
    w.provider_rfc2136(w.dns.addr(Server::Bind));
    w
}

/// Give `ns2` an AAAA record at `v6` and wait until both servers serve it and the resolver
/// gives it.
fn add_aaaa_to_ns2(w: &World, v6: std::net::Ipv6Addr) {
    let zone = w.dns.zone();
    let name = format!("ns2.{zone}.");
    let out = w
        .dns
        .nsupdate(&[
            &format!("zone {zone}."),
            &format!("update add {name} {TTL} IN AAAA {v6}"),
        ])
        .unwrap();
    assert!(out.is_ok(), "{}", out.text());
    let t0 = Instant::now();
    loop {
        let everywhere = w.dns.authoritative().iter().all(|s| {
            w.dns
                .query(*s, &name, "AAAA")
                .is_ok_and(|a| a.contains("AAAA", &v6.to_string()))
        });
        w.dns.flush_resolver().unwrap();
        let resolved = w
            .dns
            .resolve(&name, "AAAA")
            .is_ok_and(|a| a.contains("AAAA", &v6.to_string()));
        if everywhere && resolved {
            return;
        }
        assert!(t0.elapsed() < JUDGE, "ns2 AAAA {v6} never served");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Before: the unreachable AAAA address failed like a nameserver down, and the rollover stayed
/// `published` for ever. Now it is "not checkable from here" (named in `status --live`) and the
/// rollover completes on ns2's IPv4 answer, mail verified throughout.
#[test]
fn a_nameserver_address_without_a_route_is_not_checkable_and_does_not_hold_the_gate() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start();
    let route = UnreachableRoute::add(w.dns.block()).unwrap();
    let v6 = route.address(LoopbackBlock::NS2);
    add_aaaa_to_ns2(&w, v6);

    let new = deploy_published(&w);

    assert_not_checkable(&w, &v6.to_string());
    // The address does not hold the gate.
    assert_completes(&w, &new);
    drop(route);
}

/// A nameserver whose every address has no route still holds the gate: that is a nameserver
/// down, not a host without IPv6.
#[test]
fn a_nameserver_with_no_reachable_address_still_holds_the_gate() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let w = start();
    let route = UnreachableRoute::add(w.dns.block()).unwrap();
    let v6 = route.address(7);
    let zone = w.dns.zone();
    // A third NS whose only address has no route.
    let out = w
        .dns
        .nsupdate(&[
            &format!("zone {zone}."),
            &format!("update add ns3.{zone}. {TTL} IN AAAA {v6}"),
            &format!("update add {zone}. {TTL} IN NS ns3.{zone}."),
        ])
        .unwrap();
    assert!(out.is_ok(), "{}", out.text());
    let t0 = Instant::now();
    while !w
        .dns
        .resolve(&format!("{zone}."), "NS")
        .is_ok_and(|a| a.contains("NS", &format!("ns3.{zone}.")))
    {
        assert!(t0.elapsed() < JUDGE, "ns3 never in the NS set");
        w.dns.flush_resolver().unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }

    let (_new, cert, key) = w.new_leaf("new");
    let out = w.run(&World::deploy_args(&cert, &key, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // Well past 2×TTL: still published.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3 * u64::from(TTL)) {
        let _ = w.run(&["run"]);
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(w.phase(), "published");
    let seen = live_nameservers(&w, &v6.to_string());
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let why = seen[0]["records"]["error"].as_str().unwrap_or_default();
    assert!(why.contains("holds the gate"), "{why}");
    assert_eq!(w.served_spki(), w.old.spki_sha256_hex().unwrap());
    drop(route);
}

/// One nameserver down for hours (the Knot secondary stopped). Before: the rollover waited
/// silently for ever. Now: one alert naming it (once, however many runs), `status --live`
/// shows it, and `run --skip-nameserver NAME` proceeds without it, loudly and recorded.
#[test]
fn a_nameserver_down_alerts_once_and_skip_nameserver_proceeds_loudly() {
    if !require(&rollover_tools(true)) {
        return;
    }
    let mut w = start();
    let ns2 = format!("ns2.{}", w.dns.zone());
    w.dns.stop_knot();

    let (new, cert, key) = w.new_leaf("new");
    let out = w.run(&World::deploy_args(&cert, &key, &[]));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_eq!(w.phase(), "published", "{}", text(&out));

    // Runs well past 2×TTL (4 s): the alert once, the rollover still published.
    let mut alerts = Vec::new();
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(4 * u64::from(TTL)) {
        let out = w.run(&["run"]);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        alerts.extend(
            stderr
                .lines()
                .filter(|l| l.contains("ALERT") && l.contains("gave no usable answer"))
                .map(str::to_owned),
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert!(alerts[0].contains(&ns2), "{}", alerts[0]);
    assert!(alerts[0].contains("--skip-nameserver"), "{}", alerts[0]);
    assert_eq!(w.phase(), "published");
    let seen = live_nameservers(&w, &ns2);
    assert!(
        !seen.is_empty() && seen.iter().all(|n| n["records"]["error"].is_string()),
        "{seen:#?}"
    );

    // A bad name: a clear error, nothing recorded.
    let events = w.history().len();
    let out = w.run(&["run", "--skip-nameserver", "not a name!"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert_eq!(w.history().len(), events);
    assert!(text(&out).contains("--skip-nameserver"), "{}", text(&out));

    // The operator's way out: loud, recorded, and only that nameserver is skipped.
    let t0 = Instant::now();
    let mut warned = false;
    while w.phase() != "done" {
        let out = w.run(&["run", "--skip-nameserver", &ns2]);
        assert!(t0.elapsed() < JUDGE, "never done: {}", text(&out));
        warned |= String::from_utf8_lossy(&out.stderr).contains("warning: --skip-nameserver");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(warned);
    let history = w.history().join("\n");
    assert!(
        history.contains(&format!("--skip-nameserver {ns2} given by the operator")),
        "{history}"
    );
    assert_eq!(w.served_spki(), new.spki_sha256_hex().unwrap());
}
