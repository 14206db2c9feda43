//! The DNS view against the lab's real servers: validated lookups through Unbound (secure,
//! insecure, bogus, missing, aliases, the `_tcp` empty non-terminal), a resolver that does not
//! validate, and the authoritative view over BIND + Knot (all serve, a lagging secondary, one
//! that is down).

use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant, SystemTime};

use dane_roll::dns::{
    AuthorityView, DnsError, RecordType, Resolver, ServerFailure, Status, TcpParent,
    ValidationProbe, parse_name,
};
use dane_roll::tlsa::TlsaRecord;
use dane_roll_lab::dns::{DnsLab, Server};

const WAIT: Duration = Duration::from_secs(20);
const TIMEOUT: Duration = Duration::from_secs(3);

fn needs() -> bool {
    use dane_roll_lab::tools::{BIND_TOOLS, KNOT_TOOLS, UNBOUND_TOOLS};
    dane_roll_lab::require_all(&[BIND_TOOLS, KNOT_TOOLS, UNBOUND_TOOLS])
}

/// A current-thread runtime: the lab must stay on the thread that started it.
fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn rdata(byte: &str) -> String {
    format!("3 1 1 {}", byte.repeat(32))
}

fn record(byte: &str) -> TlsaRecord {
    rdata(byte).parse().expect("valid TLSA")
}

fn resolver(lab: &DnsLab) -> Resolver {
    Resolver::new(SocketAddr::new(lab.resolver_addr().into(), 53), TIMEOUT)
}

fn owner(lab: &DnsLab) -> String {
    format!("_25._tcp.{}", lab.mx_host())
}

#[test]
fn validated_lookups_secure_missing_insecure_bogus() {
    if !needs() {
        return;
    }
    let mut lab = DnsLab::builder().knot(false).start().expect("lab starts");
    let rt = rt();
    let r = resolver(&lab);
    let owner = owner(&lab);
    lab.add_tlsa(&owner, 300, &rdata("a1")).unwrap();
    lab.add_tlsa(&owner, 300, &rdata("a2")).unwrap();
    lab.wait_served_everywhere(&owner, &rdata("a2"), WAIT)
        .unwrap();
    lab.flush_resolver().unwrap();

    rt.block_on(async {
        // Secure TLSA, with TTL and RRSIG expiry.
        let t = r.tlsa(&owner).await.unwrap();
        assert_eq!(t.status, Status::Secure, "{t:?}");
        assert_eq!(t.records.len(), 2, "{t:?}");
        assert!(t.records.contains(&record("a1")) && t.records.contains(&record("a2")));
        assert!(t.ttl.is_some_and(|ttl| ttl > 0 && ttl <= 300), "{t:?}");
        let expiry = t.rrsig_expiry.expect("RRSIG expiry of the TLSA RRset");
        assert!(expiry > SystemTime::now(), "{expiry:?}");
        assert!(!t.is_alias() && t.owner == parse_name(&owner).unwrap());

        // MX and addresses, secure.
        let mx = r.mx(lab.zone()).await.unwrap();
        assert_eq!(mx.status, Status::Secure, "{mx:?}");
        assert_eq!(mx.records.len(), 1);
        assert_eq!(mx.records[0].host, parse_name(&lab.mx_host()).unwrap());
        let addrs = r.addresses(&lab.mx_host()).await.unwrap();
        assert_eq!(addrs.status, Status::Secure, "{addrs:?}");
        assert_eq!(
            addrs.records,
            vec![IpAddr::V4(
                lab.block().host(dane_roll_lab::LoopbackBlock::MX)
            )]
        );

        // NODATA and NXDOMAIN, both with a secure denial.
        let nodata = r.tlsa(&lab.mx_host()).await.unwrap();
        assert_eq!(
            nodata.status,
            Status::Missing {
                secure: true,
                nxdomain: false
            },
            "{nodata:?}"
        );
        assert!(nodata.records.is_empty() && nodata.ttl.is_some());
        let nx = r
            .tlsa(&format!("_25._tcp.nowhere.{}", lab.zone()))
            .await
            .unwrap();
        assert_eq!(
            nx.status,
            Status::Missing {
                secure: true,
                nxdomain: true
            },
            "{nx:?}"
        );

        // `_tcp.<host>` exists as an empty non-terminal: NODATA, not NXDOMAIN.
        let (parent, lookup) = r.tcp_parent(&lab.mx_host()).await.unwrap();
        assert!(!parent.is_problem(), "{parent}: {lookup:?}");
        assert_eq!(
            lookup.status,
            Status::Missing {
                secure: true,
                nxdomain: false
            }
        );
        // Where nothing exists below, `_tcp` is NXDOMAIN, and that is what the check flags.
        let (nowhere, _) = r
            .tcp_parent(&format!("nowhere.{}", lab.zone()))
            .await
            .unwrap();
        assert_eq!(nowhere, TcpParent::Nxdomain { secure: true });

        // Any type.
        let soa = r.lookup(lab.zone(), RecordType::SOA).await.unwrap();
        assert_eq!(soa.status, Status::Secure);
        assert_eq!(soa.records.len(), 1);

        // The resolver validates.
        let probe = r.probe_validation(lab.zone()).await.unwrap();
        assert_eq!(probe, ValidationProbe::Validating);
    });

    // Unsigned zone: records without AD.
    let insecure_owner = format!("_25._tcp.mail.{}", lab.insecure_zone());
    lab.add_tlsa(&insecure_owner, 60, &rdata("b1")).unwrap();
    lab.wait_served_everywhere(&insecure_owner, &rdata("b1"), WAIT)
        .unwrap();
    rt.block_on(async {
        let t = r.tlsa(&insecure_owner).await.unwrap();
        assert_eq!(t.status, Status::Insecure, "{t:?}");
        assert_eq!(t.records, vec![record("b1")]);
        assert_eq!(t.rrsig_expiry, None);
    });

    // A resolver that does not validate: BIND asked as if it were one.
    let bind = Resolver::new(SocketAddr::new(lab.addr(Server::Bind).into(), 53), TIMEOUT);
    rt.block_on(async {
        let probe = bind.probe_validation(lab.zone()).await.unwrap();
        assert!(!probe.is_validating(), "{probe}");
        assert_eq!(probe, ValidationProbe::NotRecursive, "{probe}");
        let t = bind.tlsa(&owner).await.unwrap();
        assert_eq!(t.status, Status::Insecure, "no AD from BIND: {t:?}");
        assert_eq!(t.records.len(), 2);
        assert!(
            t.rrsig_expiry.is_some(),
            "BIND sends the RRSIGs, unvalidated"
        );
    });

    // Tampered: SERVFAIL, bogus, with the resolver's EDE when it sends one.
    lab.tamper(&owner, "TLSA", &rdata("ff")).unwrap();
    rt.block_on(async {
        let t = r.tlsa(&owner).await.unwrap();
        assert!(t.status.is_bogus(), "{t:?}");
        assert!(
            matches!(&t.status, Status::Bogus { ede: Some(e) } if e.code == 6),
            "Unbound's EDE 6 (DNSSEC Bogus) kept: {t:?}"
        );
        assert!(t.records.is_empty());
        eprintln!("bogus: {}", t.status);
        // The rest of the zone still validates.
        assert_eq!(
            r.addresses(&lab.mx_host()).await.unwrap().status,
            Status::Secure
        );
    });
    lab.untamper().unwrap();
    rt.block_on(async {
        assert_eq!(r.tlsa(&owner).await.unwrap().status, Status::Secure);
    });

    // A resolver that does not answer: a timeout that names it.
    lab.pause(Server::Unbound).unwrap();
    let quick = Resolver::new(r.address(), Duration::from_millis(400));
    let started = Instant::now();
    let err = rt.block_on(quick.tlsa(&owner)).unwrap_err();
    lab.resume(Server::Unbound).unwrap();
    assert!(matches!(err, DnsError::Timeout { .. }), "{err}");
    assert!(err.to_string().contains(&r.address().to_string()), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn cname_owner_is_followed_and_each_hop_must_be_secure() {
    if !needs() {
        return;
    }
    let lab = DnsLab::builder().knot(false).start().expect("lab starts");
    let rt = rt();
    let r = resolver(&lab);
    let target = owner(&lab);
    let insecure_target = format!("_25._tcp.mail.{}", lab.insecure_zone());
    let alias = format!("_25._tcp.alias.{}", lab.zone());
    let alias_out = format!("_25._tcp.outside.{}", lab.zone());
    lab.add_tlsa(&target, 300, &rdata("c1")).unwrap();
    lab.add_tlsa(&insecure_target, 60, &rdata("c2")).unwrap();
    let zone = format!("zone {}.", lab.zone());
    lab.nsupdate(&[
        &zone,
        &format!("update add {alias}. 300 IN CNAME {target}."),
        &format!("update add {alias_out}. 300 IN CNAME {insecure_target}."),
    ])
    .unwrap();
    lab.wait_served_everywhere(&target, &rdata("c1"), WAIT)
        .unwrap();
    lab.wait_served_everywhere(&insecure_target, &rdata("c2"), WAIT)
        .unwrap();
    lab.wait_everywhere(&alias_out, "CNAME", WAIT, |a| {
        !a.records("CNAME").is_empty()
    })
    .unwrap();
    lab.flush_resolver().unwrap();

    rt.block_on(async {
        let t = r.tlsa(&alias).await.unwrap();
        assert_eq!(t.status, Status::Secure, "{t:?}");
        assert!(t.is_alias());
        assert_eq!(t.owner, parse_name(&target).unwrap());
        assert_eq!(
            t.chain,
            vec![parse_name(&alias).unwrap(), parse_name(&target).unwrap()]
        );
        assert_eq!(t.records, vec![record("c1")]);
        assert!(t.rrsig_expiry.is_some());

        let out = r.tlsa(&alias_out).await.unwrap();
        assert_eq!(out.owner, parse_name(&insecure_target).unwrap(), "{out:?}");
        assert_eq!(out.chain.len(), 2);
        assert_eq!(out.records, vec![record("c2")]);
        assert_eq!(
            out.status,
            Status::Insecure,
            "the target is unsigned: the chain is not secure"
        );
        assert!(!out.is_secure());
    });
}

/// Poll the authoritative view until `done` says so (or the deadline passes).
fn wait_report(
    rt: &tokio::runtime::Runtime,
    view: &AuthorityView,
    owner: &str,
    expected: &[TlsaRecord],
    done: impl Fn(&dane_roll::dns::AuthorityReport) -> bool,
) -> dane_roll::dns::AuthorityReport {
    let deadline = Instant::now() + WAIT;
    loop {
        let report = rt
            .block_on(view.served_everywhere(owner, expected))
            .expect("report");
        if done(&report) || Instant::now() > deadline {
            return report;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn authority_view_all_serve_lagging_and_down() {
    if !needs() {
        return;
    }
    let mut lab = DnsLab::start().expect("lab starts");
    let rt = rt();
    let view = AuthorityView::new(resolver(&lab)).with_timeout(Duration::from_secs(2));
    let owner = owner(&lab);
    let ns1 = IpAddr::V4(lab.addr(Server::Bind));
    let ns2 = IpAddr::V4(lab.addr(Server::Knot));

    rt.block_on(async {
        let zone = view.zone_cut(&owner).await.unwrap();
        assert_eq!(zone, parse_name(lab.zone()).unwrap());
        let apex = view.zone_cut(lab.zone()).await.unwrap();
        assert_eq!(apex, zone);
        let ns = view.nameservers(&zone).await.unwrap();
        let names: Vec<String> = ns.iter().map(|n| n.name.to_string()).collect();
        assert_eq!(names, ["ns1.example.test.", "ns2.example.test."]);
        assert_eq!(ns[0].addresses, vec![ns1]);
        assert_eq!(ns[1].addresses, vec![ns2]);
    });

    // A new record, served by both.
    lab.add_tlsa(&owner, 300, &rdata("d1")).unwrap();
    lab.wait_served_everywhere(&owner, &rdata("d1"), WAIT)
        .unwrap();
    let expected = [record("d1")];
    let report = rt
        .block_on(view.served_everywhere(&owner, &expected))
        .unwrap();
    assert!(report.all_serve(), "{report}");
    assert_eq!(report.servers.len(), 2);
    assert!(report.zone_signed());
    for s in &report.servers {
        let served = s.served().expect("answered");
        assert!(served.signed && served.records == expected, "{s}");
    }
    assert_eq!(report.servers[0].serial(), report.servers[1].serial());

    // Knot frozen: it lags with its older serial.
    lab.freeze_knot().unwrap();
    lab.add_tlsa(&owner, 300, &rdata("d2")).unwrap();
    let expected = [record("d1"), record("d2")];
    let report = wait_report(&rt, &view, &owner, &expected, |r| {
        r.servers
            .iter()
            .any(|s| s.address == Some(ns1) && s.served().is_some_and(|x| x.records.len() == 2))
    });
    assert!(!report.all_serve(), "{report}");
    let lagging = report.lagging();
    assert_eq!(lagging.len(), 1, "{report}");
    assert_eq!(lagging[0].address, Some(ns2));
    let (s1, s2) = (
        report.servers[0].serial().unwrap(),
        lagging[0].serial().unwrap(),
    );
    assert!(s2 < s1, "Knot's serial {s2} is older than BIND's {s1}");
    assert_eq!(report.missing_at(lagging[0]), vec![&record("d2")]);
    eprintln!("{report}");

    // Thawed: it catches up.
    lab.thaw_knot().unwrap();
    let report = wait_report(&rt, &view, &owner, &expected, |r| r.all_serve());
    assert!(report.all_serve(), "{report}");

    // Knot stopped: refused, reported as failed, never "all serve".
    lab.stop_knot();
    let report = rt
        .block_on(view.served_everywhere(&owner, &expected))
        .unwrap();
    assert!(!report.all_serve(), "{report}");
    let failed = report.failed();
    assert_eq!(failed.len(), 1, "{report}");
    assert_eq!(failed[0].address, Some(ns2));
    let failure = failed[0].failure().unwrap();
    assert!(
        failure.is_refused() && *failure == ServerFailure::ConnectionRefused,
        "{failure}"
    );
    assert!(
        failed[0].to_string().contains("ns2.example.test"),
        "{}",
        failed[0]
    );
    assert_eq!(report.serving().len(), 1);

    // Paused: a timeout within the per-server limit.
    lab.start_knot().unwrap();
    lab.pause(Server::Knot).unwrap();
    let quick = view.clone().with_timeout(Duration::from_millis(500));
    let started = Instant::now();
    let report = rt
        .block_on(quick.served_everywhere(&owner, &expected))
        .unwrap();
    lab.resume(Server::Knot).unwrap();
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(
        matches!(report.failed()[..], [s] if matches!(s.failure(), Some(ServerFailure::Timeout(_)))),
        "{report}"
    );
}

// ----- benchmark (benches/dns.sh) -----
//
// Two ignored tests, run as separate processes by benches/dns.sh so that `/usr/bin/time -v`
// measures the process doing the lookups and nothing else: one holds a lab, the other queries it.

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// Hold a lab (BIND + Knot + Unbound, one TLSA record) until the file named by
/// `DANE_ROLL_BENCH_LAB_FILE`, where it writes its addresses, is removed.
#[test]
#[ignore = "benchmark: run by benches/dns.sh"]
fn bench_lab_hold() {
    let Some(file) = env("DANE_ROLL_BENCH_LAB_FILE") else {
        eprintln!("DANE_ROLL_BENCH_LAB_FILE is not set: nothing to do");
        return;
    };
    if !needs() {
        return;
    }
    let lab = DnsLab::start().expect("lab starts");
    let owner = owner(&lab);
    lab.add_tlsa(&owner, 300, &rdata("be")).unwrap();
    lab.wait_served_everywhere(&owner, &rdata("be"), WAIT)
        .unwrap();
    lab.flush_resolver().unwrap();
    let text = format!(
        "RESOLVER={}\nNS1={}\nNS2={}\nOWNER={owner}\nZONE={}\n",
        lab.resolver_addr(),
        lab.addr(Server::Bind),
        lab.addr(Server::Knot),
        lab.zone()
    );
    let tmp = format!("{file}.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &file).unwrap();
    let deadline = Instant::now() + Duration::from_secs(900);
    while std::path::Path::new(&file).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The peak resident set of this process (VmHWM), in KiB.
fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// N TLSA lookups through the resolver and N per-nameserver queries (TCP, TLSA + SOA), at most
/// CONC at once, against the lab held by `bench_lab_hold` (addresses in the environment).
#[test]
#[ignore = "benchmark: run by benches/dns.sh"]
fn bench_dns_queries() {
    let (Some(resolver), Some(ns1), Some(ns2), Some(owner), Some(zone)) = (
        env("RESOLVER"),
        env("NS1"),
        env("NS2"),
        env("OWNER"),
        env("ZONE"),
    ) else {
        eprintln!("RESOLVER, NS1, NS2, OWNER, ZONE are not set: nothing to do");
        return;
    };
    let n: usize = env("N").and_then(|v| v.parse().ok()).unwrap_or(500);
    let conc: usize = env("CONC").and_then(|v| v.parse().ok()).unwrap_or(32);
    let ip = |s: &str| -> IpAddr { s.parse().expect("address") };
    let r = Resolver::new(SocketAddr::new(ip(&resolver), 53), TIMEOUT);
    let view = AuthorityView::new(r.clone());
    let (owner_name, zone_name) = (parse_name(&owner).unwrap(), parse_name(&zone).unwrap());
    let ns = [
        (parse_name("ns1.example.test").unwrap(), ip(&ns1)),
        (parse_name("ns2.example.test").unwrap(), ip(&ns2)),
    ];
    let rt = rt();
    rt.block_on(async {
        use std::sync::Arc;
        use tokio::sync::Semaphore;
        use tokio::task::JoinSet;

        let permits = Arc::new(Semaphore::new(conc));
        let t = Instant::now();
        let mut set = JoinSet::new();
        for _ in 0..n {
            let (r, owner, permits) = (r.clone(), owner.clone(), permits.clone());
            set.spawn(async move {
                let _p = permits.acquire_owned().await;
                r.tlsa(&owner).await
            });
        }
        let mut secure = 0;
        while let Some(done) = set.join_next().await {
            if done.unwrap().is_ok_and(|l| l.status == Status::Secure) {
                secure += 1;
            }
        }
        let resolver_secs = t.elapsed().as_secs_f64();
        assert_eq!(secure, n, "every lookup secure");

        let t = Instant::now();
        let mut set = JoinSet::new();
        for i in 0..n {
            let (view, permits) = (view.clone(), permits.clone());
            let (name, addr) = ns[i % ns.len()].clone();
            let (zone, owner) = (zone_name.clone(), owner_name.clone());
            set.spawn(async move {
                let _p = permits.acquire_owned().await;
                view.ask(&name, addr, &zone, &owner).await
            });
        }
        let mut served = 0;
        while let Some(done) = set.join_next().await {
            if done.unwrap().served().is_some_and(|s| s.records.len() == 1) {
                served += 1;
            }
        }
        let ns_secs = t.elapsed().as_secs_f64();
        assert_eq!(served, n, "every nameserver answer has the record");
        println!(
            "BENCH resolver_lookups={n} concurrency={conc} secs={resolver_secs:.3} per_sec={:.0}",
            n as f64 / resolver_secs
        );
        println!(
            "BENCH nameserver_queries={n} concurrency={conc} secs={ns_secs:.3} per_sec={:.0}",
            n as f64 / ns_secs
        );
        println!("BENCH vmhwm_kib={}", peak_rss_kib().unwrap_or(0));
    });
}
