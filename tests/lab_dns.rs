//! Self-tests of the DNS lab: every property the rollover and monitoring tests rely on, checked
//! against the real servers (BIND, Knot, Unbound, PowerDNS) on loopback.

use std::time::{Duration, Instant};

use dane_roll_lab::dns::{DnsLab, Server, UpdateAuth, UpdateOutcome};
use dane_roll_lab::require_all;
use dane_roll_lab::tools::{BIND_TOOLS, KNOT_TOOLS, PDNS_TOOLS, UNBOUND_TOOLS};

const WAIT: Duration = Duration::from_secs(20);

/// A TLSA 3 1 1 record whose hash is `byte` repeated.
fn tlsa(byte: &str) -> String {
    format!("3 1 1 {}", byte.repeat(32))
}

fn owner(lab: &DnsLab) -> String {
    format!("_25._tcp.{}", lab.mx_host())
}

#[test]
fn zone_is_signed_and_validates_through_unbound() {
    if !require_all(&[BIND_TOOLS, KNOT_TOOLS, UNBOUND_TOOLS]) {
        return;
    }
    let lab = DnsLab::start().expect("lab starts");
    eprintln!("start: {:?}", lab.timings());

    let keys = lab
        .query(lab.addr(Server::Bind), lab.zone(), "DNSKEY")
        .unwrap();
    assert!(
        keys.aa() && keys.signed("DNSKEY"),
        "BIND serves a signed DNSKEY: {keys:?}"
    );
    assert!(
        lab.trust_anchor_ds().contains(" DS "),
        "anchor: {}",
        lab.trust_anchor_ds()
    );

    let a = lab.resolve(&lab.mx_host(), "A").unwrap();
    assert_eq!(a.rcode, "NOERROR");
    assert!(a.ad(), "AD for the MX host's A: {a:?}");
    assert!(
        a.contains(
            "A",
            &lab.block()
                .host(dane_roll_lab::LoopbackBlock::MX)
                .to_string()
        )
    );

    let mx = lab.resolve(lab.zone(), "MX").unwrap();
    assert!(
        mx.ad() && mx.contains("MX", &format!("10 {}.", lab.mx_host())),
        "{mx:?}"
    );

    let rdata = tlsa("ab");
    lab.add_tlsa(&owner(&lab), 300, &rdata).unwrap();
    lab.wait_served_everywhere(&owner(&lab), &rdata, WAIT)
        .unwrap();
    lab.flush_resolver().unwrap();
    let t = lab.resolve(&owner(&lab), "TLSA").unwrap();
    assert!(t.ad(), "AD for the added TLSA: {t:?}");
    assert!(t.contains("TLSA", &rdata) && t.signed("TLSA"), "{t:?}");

    lab.delete_tlsa(&owner(&lab), &rdata).unwrap();
    lab.wait_gone_everywhere(&owner(&lab), &rdata, WAIT)
        .unwrap();
    lab.flush_resolver().unwrap();
    let gone = lab.resolve(&owner(&lab), "TLSA").unwrap();
    assert!(
        gone.ad() && gone.records("TLSA").is_empty(),
        "signed denial after delete: {gone:?}"
    );
}

#[test]
fn updates_need_the_tsig_key() {
    if !require_all(&[BIND_TOOLS]) {
        return;
    }
    let lab = DnsLab::builder()
        .knot(false)
        .resolver(false)
        .start()
        .expect("lab starts");
    let name = format!("_25._tcp.{}", lab.mx_host());
    let add = |r: &str| format!("update add {name} 300 IN TLSA {r}");
    let zone = format!("zone {}.", lab.zone());

    let ok = lab.nsupdate(&[&zone, &add(&tlsa("01"))]).unwrap();
    assert_eq!(ok, UpdateOutcome::Ok);

    let cases = [
        (UpdateAuth::Unsigned, "REFUSED", "02"),
        (UpdateAuth::WrongSecret, "NOTAUTH(BADSIG)", "03"),
        (UpdateAuth::UnknownKey, "NOTAUTH(BADKEY)", "04"),
    ];
    for (auth, rcode, byte) in cases {
        let out = lab.nsupdate_as(auth, &[&zone, &add(&tlsa(byte))]).unwrap();
        assert_eq!(out, UpdateOutcome::Rejected(rcode.to_string()), "{auth:?}");
    }
    // A zone BIND does not serve.
    let other = lab.nsupdate(&[
        "zone nowhere.test.",
        "update add x.nowhere.test. 60 A 192.0.2.1",
    ]);
    assert_eq!(other.unwrap(), UpdateOutcome::Rejected("NOTAUTH".into()));

    lab.wait_served_everywhere(&name, &tlsa("01"), WAIT)
        .unwrap();
    let served = lab.query(lab.addr(Server::Bind), &name, "TLSA").unwrap();
    assert_eq!(
        served.records("TLSA").len(),
        1,
        "only the signed update landed: {served:?}"
    );
}

#[test]
fn secondary_follows_lags_and_catches_up() {
    if !require_all(&[BIND_TOOLS, KNOT_TOOLS]) {
        return;
    }
    let mut lab = DnsLab::builder()
        .resolver(false)
        .start()
        .expect("lab starts");
    let ns1 = lab.addr(Server::Bind);
    let ns2 = lab.addr(Server::Knot);
    let name = owner(&lab);

    // Follows: NOTIFY + IXFR, signed.
    lab.add_tlsa(&name, 300, &tlsa("11")).unwrap();
    let took = lab
        .wait_served_everywhere(&name, &tlsa("11"), WAIT)
        .unwrap();
    eprintln!("update reached Knot signed in {took:?}");
    let k = lab.query(ns2, &name, "TLSA").unwrap();
    assert!(
        k.aa() && k.contains("TLSA", &tlsa("11")) && k.signed("TLSA"),
        "{k:?}"
    );

    // Frozen: Knot answers, with the old data.
    lab.freeze_knot().unwrap();
    lab.add_tlsa(&name, 300, &tlsa("22")).unwrap();
    dane_roll_lab::dns::poll("BIND serving the new record", WAIT, || {
        Ok(lab.query(ns1, &name, "TLSA")?.contains("TLSA", &tlsa("22")))
    })
    .unwrap();
    let lagging = lab.wait_served_everywhere(&name, &tlsa("22"), Duration::from_millis(1500));
    assert!(
        lagging.is_err(),
        "a frozen Knot must not serve the new record"
    );
    let k = lab.query(ns2, &name, "TLSA").unwrap();
    assert!(
        k.contains("TLSA", &tlsa("11")) && !k.contains("TLSA", &tlsa("22")),
        "{k:?}"
    );
    assert!(lab.serial(ns2, lab.zone()).unwrap() < lab.serial(ns1, lab.zone()).unwrap());
    lab.thaw_knot().unwrap();
    lab.wait_served_everywhere(&name, &tlsa("22"), WAIT)
        .unwrap();

    // Paused: no answer at all, then catches up after SIGCONT.
    lab.pause(Server::Knot).unwrap();
    let e = lab.query(ns2, &name, "TLSA").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::TimedOut, "{e}");
    lab.add_tlsa(&name, 300, &tlsa("33")).unwrap();
    assert!(
        lab.wait_served_everywhere(&name, &tlsa("33"), Duration::from_millis(1500))
            .is_err()
    );
    lab.resume(Server::Knot).unwrap();
    lab.wait_served_everywhere(&name, &tlsa("33"), WAIT)
        .unwrap();

    // Stopped: refused; restarted, it serves its journal and catches up.
    lab.stop_knot();
    let e = lab.query(ns2, &name, "TLSA").unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused, "{e}");
    lab.add_tlsa(&name, 300, &tlsa("44")).unwrap();
    let restart = lab.start_knot().unwrap();
    eprintln!("Knot restarted and caught up in {restart:?}");
    lab.wait_served_everywhere(&name, &tlsa("44"), WAIT)
        .unwrap();
    let k = lab.query(ns2, &name, "TLSA").unwrap();
    assert_eq!(k.records("TLSA").len(), 4, "{k:?}");
}

#[test]
fn tampered_answer_is_servfail_at_the_resolver() {
    if !require_all(&[BIND_TOOLS, UNBOUND_TOOLS]) {
        return;
    }
    let mut lab = DnsLab::builder().knot(false).start().expect("lab starts");
    let name = owner(&lab);
    lab.add_tlsa(&name, 300, &tlsa("5a")).unwrap();
    lab.wait_served_everywhere(&name, &tlsa("5a"), WAIT)
        .unwrap();
    lab.flush_resolver().unwrap();
    assert!(lab.resolve(&name, "TLSA").unwrap().ad());

    lab.tamper(&name, "TLSA", &tlsa("5b")).unwrap();
    let bad = lab.resolve(&name, "TLSA").unwrap();
    assert_eq!(
        bad.rcode, "SERVFAIL",
        "tampered TLSA must be bogus: {bad:?}"
    );
    assert!(!bad.contains("TLSA", &tlsa("5b")));
    eprintln!("tampered: EDE {:?}", bad.ede);
    // The rest of the zone still validates from the rogue copy.
    assert!(lab.resolve(&lab.mx_host(), "A").unwrap().ad());

    lab.untamper().unwrap();
    let good = lab.resolve(&name, "TLSA").unwrap();
    assert!(good.ad() && good.contains("TLSA", &tlsa("5a")), "{good:?}");
}

#[test]
fn insecure_zone_answers_without_ad() {
    if !require_all(&[BIND_TOOLS, UNBOUND_TOOLS]) {
        return;
    }
    let lab = DnsLab::builder().knot(false).start().expect("lab starts");
    let host = format!("mail.{}", lab.insecure_zone());
    let a = lab.resolve(&host, "A").unwrap();
    assert_eq!(a.rcode, "NOERROR", "{a:?}");
    assert!(!a.ad(), "insecure, not secure: {a:?}");
    assert_eq!(a.records("A").len(), 1);

    let name = format!("_25._tcp.{host}");
    lab.add_tlsa(&name, 60, &tlsa("66")).unwrap();
    lab.wait_served_everywhere(&name, &tlsa("66"), WAIT)
        .unwrap();
    let t = lab.resolve(&name, "TLSA").unwrap();
    assert_eq!(t.rcode, "NOERROR", "insecure, not bogus: {t:?}");
    assert!(!t.ad() && t.contains("TLSA", &tlsa("66")), "{t:?}");
}

#[test]
fn powerdns_api_creates_signed_zone_and_patches_tlsa() {
    if !require_all(&[BIND_TOOLS, PDNS_TOOLS]) {
        return;
    }
    let lab = DnsLab::builder()
        .knot(false)
        .resolver(false)
        .pdns(true)
        .start()
        .expect("starts");
    let pdns = lab.pdns().expect("pdns runs");
    assert!(pdns.api_url().starts_with("http://127.53."));

    let created = pdns.create_zone("provider.test", true).unwrap();
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.json()["dnssec"], true);

    let unauth = pdns
        .request("GET", "/api/v1/servers/localhost/zones", None, false)
        .unwrap();
    assert_eq!(unauth.status, 401);

    let name = "_25._tcp.mail.provider.test";
    let hex = "AB".repeat(32);
    let patched = pdns
        .patch_rrset(
            "provider.test",
            name,
            "TLSA",
            300,
            &[&format!("3 1 1 {hex}")],
        )
        .unwrap();
    assert_eq!(patched.status, 204, "{}", patched.body);
    let unauth_patch = pdns
        .request(
            "PATCH",
            "/api/v1/servers/localhost/zones/provider.test.",
            None,
            false,
        )
        .unwrap();
    assert_eq!(unauth_patch.status, 401);

    let served = lab.query(pdns.addr(), name, "TLSA").unwrap();
    assert!(served.aa(), "{served:?}");
    assert!(
        served.contains("TLSA", &format!("3 1 1 {hex}")),
        "{served:?}"
    );
    assert!(served.signed("TLSA"), "PowerDNS signs at once: {served:?}");
    let keys = lab.query(pdns.addr(), "provider.test", "DNSKEY").unwrap();
    assert!(keys.signed("DNSKEY"), "{keys:?}");
}

fn pid_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

fn lo_has(addr: std::net::Ipv4Addr) -> bool {
    let out = std::process::Command::new("ip")
        .args(["-4", "addr", "show", "dev", "lo"])
        .output();
    out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!("inet {addr}/32")))
}

#[test]
fn nothing_survives_the_lab() {
    if !require_all(&[BIND_TOOLS, KNOT_TOOLS, UNBOUND_TOOLS, PDNS_TOOLS]) {
        return;
    }
    let mut lab = DnsLab::builder().pdns(true).start().expect("lab starts");
    let name = owner(&lab);
    lab.add_tlsa(&name, 300, &tlsa("77")).unwrap();
    lab.wait_served_everywhere(&name, &tlsa("77"), WAIT)
        .unwrap();
    lab.tamper(&name, "TLSA", &tlsa("78")).unwrap();
    let pids = lab.pids();
    assert_eq!(
        pids.len(),
        5,
        "named, knotd, unbound, rogue named, pdns_server: {pids:?}"
    );
    assert!(pids.iter().all(|p| pid_alive(*p)));
    let ns1 = lab.addr(Server::Bind);
    let rogue = lab.block().host(DnsLab::ROGUE);
    let dir = lab.dir().to_path_buf();
    assert!(lo_has(ns1) && lo_has(rogue));

    let t = Instant::now();
    drop(lab);
    eprintln!("teardown of 5 servers: {:?}", t.elapsed());
    let alive: Vec<u32> = pids.iter().copied().filter(|p| pid_alive(*p)).collect();
    assert!(alive.is_empty(), "still running after drop: {alive:?}");
    assert!(!lo_has(ns1) && !lo_has(rogue), "loopback aliases removed");
    if std::env::var_os("DANE_ROLL_LAB_KEEP").is_none() {
        assert!(!dir.exists(), "lab directory removed");
    }
}

#[test]
fn a_panicking_test_leaves_nothing_running() {
    if !require_all(&[BIND_TOOLS, UNBOUND_TOOLS]) {
        return;
    }
    let pids = std::sync::Mutex::new(Vec::new());
    let result = std::panic::catch_unwind(|| {
        let lab = DnsLab::builder().knot(false).start().expect("lab starts");
        pids.lock().unwrap().extend(lab.pids());
        panic!("test failure inside a lab");
    });
    assert!(result.is_err());
    let pids = pids.into_inner().unwrap();
    assert_eq!(pids.len(), 2);
    assert!(pids.iter().all(|p| !pid_alive(*p)), "{pids:?}");
}

/// Start and teardown times, median of 5 (run with `--ignored --nocapture`).
#[test]
#[ignore = "benchmark"]
fn lab_start_and_teardown_times() {
    if !require_all(&[BIND_TOOLS, KNOT_TOOLS, UNBOUND_TOOLS, PDNS_TOOLS]) {
        return;
    }
    for (label, knot, pdns) in [
        ("bind+unbound", false, false),
        ("bind+knot+unbound", true, false),
        ("all+pdns", true, true),
    ] {
        let mut starts = Vec::new();
        let mut stops = Vec::new();
        let mut procs = 0;
        for _ in 0..5 {
            let t = Instant::now();
            let lab = DnsLab::builder()
                .knot(knot)
                .pdns(pdns)
                .start()
                .expect("lab starts");
            starts.push(t.elapsed());
            procs = lab.pids().len();
            eprintln!("{label}: {:?}", lab.timings());
            let t = Instant::now();
            drop(lab);
            stops.push(t.elapsed());
        }
        starts.sort();
        stops.sort();
        eprintln!(
            "BENCH {label}: {procs} processes, start median {:?} (min {:?} max {:?}), teardown median {:?} (min {:?} max {:?})",
            starts[2], starts[0], starts[4], stops[2], stops[0], stops[4]
        );
    }
}

/// BIND's inline signing lagged in some bursts of updates (docs/LAB.md): how long until a burst of
/// 10 updates is served signed by both servers (run with `--ignored --nocapture`).
#[test]
#[ignore = "benchmark"]
fn burst_of_updates_is_served_signed() {
    if !require_all(&[BIND_TOOLS, KNOT_TOOLS]) {
        return;
    }
    let lab = DnsLab::builder()
        .resolver(false)
        .start()
        .expect("lab starts");
    let name = owner(&lab);
    for round in 0..5 {
        let t = Instant::now();
        let records: Vec<String> = (0..10).map(|i| tlsa(&format!("{round}{i}"))).collect();
        for r in &records {
            lab.add_tlsa(&name, 300, r).unwrap();
        }
        for r in &records {
            lab.wait_served_everywhere(&name, r, Duration::from_secs(60))
                .unwrap();
        }
        eprintln!(
            "BENCH burst {round}: 10 updates served signed everywhere in {:?}",
            t.elapsed()
        );
    }
}
