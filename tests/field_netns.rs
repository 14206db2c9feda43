//! The gate from ordinary hosts (issue 17) in the field lab: two network namespaces joined by a
//! veth pair (tests/lab/src/netns.rs). BIND, Knot, the validating Unbound and the receiving
//! Postfix in one; the real `dane-roll` binary, the DANE-enforcing sending Postfix and the
//! test's own `dig` in the other ("the host"), with `nft` rules per test. Service `ttl = 2`.
//! Judged by the real servers and the sender's verdict on a real mail.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::time::{Duration, Instant};

use dane_roll_lab::conf::rollover_tools;
use dane_roll_lab::dns::Server;
use dane_roll_lab::netns::{self, FieldNet};
use dane_roll_lab::ports::LoopbackBlock;
use dane_roll_lab::world::{JUDGE, OWNER, Setup, World, text};
use dane_roll_lab::{in_ci, require};

mod gate_support;

use gate_support::{assert_completes, assert_not_checkable, deploy_published, live_nameservers};

const BIN: &str = env!("CARGO_BIN_EXE_dane-roll");
const TTL: u32 = 2;

/// A world in the field lab. The world drops first (servers stopped), then the namespaces.
struct Field {
    w: World,
    net: FieldNet,
}

impl Field {
    /// The provider's UPDATEs go to the primary at an address of its own (a hidden primary, as
    /// a DNS host's API would be), not to a nameserver's: that address.
    fn hidden_primary(&mut self) -> Ipv4Addr {
        self.net
            .forward_dns(FieldNet::UPDATE, LoopbackBlock::NS1)
            .unwrap();
        let update = self.net.v4(FieldNet::UPDATE);
        self.w.provider_rfc2136(update);
        update
    }
}

/// The field lab with the OLD certificate live and its `3 1 1` published; the provider updates
/// BIND. `None` (skipped) where the tools or network namespaces are missing, outside CI.
fn start(host_ipv6: bool) -> Option<Field> {
    let mut tools = rollover_tools(true);
    tools.push("nft");
    if !require(&tools) {
        return None;
    }
    if let Err(why) = netns::available() {
        assert!(!in_ci(), "the field lab cannot run in CI: {why}");
        eprintln!("skipped: {why}");
        return None;
    }
    let net = FieldNet::new(host_ipv6).expect("field lab network");
    let mut w = World::start_in(Setup::new(BIN, TTL), &net);
    w.provider_rfc2136(w.dns.addr(Server::Bind));
    Some(Field { w, net })
}

/// `dig +tcp` from the host to `server`, one try of one second: whether it got an answer.
fn tcp_answers(server: std::net::Ipv4Addr) -> bool {
    Command::new("dig")
        .arg(format!("@{server}"))
        .args([
            "+tcp",
            "+time=1",
            "+tries=1",
            "+norec",
            "example.test",
            "SOA",
        ])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `run` for `period`, with every run's stderr.
fn run_for(w: &World, period: Duration) -> String {
    let mut stderr = String::new();
    let t0 = Instant::now();
    while t0.elapsed() < period {
        let out = w.run(&["run"]);
        stderr.push_str(&String::from_utf8_lossy(&out.stderr));
        std::thread::sleep(Duration::from_millis(300));
    }
    stderr
}

/// (a) An IPv4-only host (IPv6 disabled in its namespace) while both nameservers have AAAA
/// records (addresses that live in the servers' namespace): the rollover completes on the IPv4
/// answers, and `status --live` names the IPv6 addresses as not checkable from here.
#[test]
fn an_ipv4_only_host_rolls_and_names_the_ipv6_addresses_not_checkable() {
    let Some(f) = start(false) else { return };
    let (w, net) = (&f.w, &f.net);
    let zone = w.dns.zone();
    let v6 = [net.v6(LoopbackBlock::NS1), net.v6(LoopbackBlock::NS2)];
    let out = w
        .dns
        .nsupdate(&[
            &format!("zone {zone}."),
            &format!("update add ns1.{zone}. {TTL} IN AAAA {}", v6[0]),
            &format!("update add ns2.{zone}. {TTL} IN AAAA {}", v6[1]),
        ])
        .unwrap();
    assert!(out.is_ok(), "{}", out.text());
    for (ns, addr) in ["ns1", "ns2"].iter().zip(v6) {
        w.dns
            .wait_everywhere(&format!("{ns}.{zone}"), "AAAA", JUDGE, |a| {
                a.contains("AAAA", &addr.to_string())
            })
            .unwrap();
    }
    w.dns.flush_resolver().unwrap();

    let new = deploy_published(w);
    for addr in v6 {
        assert_not_checkable(w, &addr.to_string());
    }
    // The IPv6 addresses do not hold the gate.
    assert_completes(w, &new);
}

/// (b) Outbound TCP/53 dropped by the host's firewall: the gate asks over UDP and the rollover
/// completes. Before (the gate asked over TCP only): every nameserver timed out and the
/// rollover stayed `published`.
#[test]
fn with_outbound_tcp_53_dropped_the_gate_works_over_udp() {
    let Some(mut f) = start(true) else { return };
    // Only the nameservers are behind the dropped TCP/53.
    let update = f.hidden_primary();
    let (w, net) = (&f.w, &f.net);
    let ns1 = w.dns.addr(Server::Bind);
    assert!(tcp_answers(ns1), "TCP/53 answers before the firewall");
    let _fw = net
        .firewall(&[
            &format!("ip daddr != {update} tcp dport 53 drop"),
            "meta nfproto ipv6 tcp dport 53 drop",
        ])
        .unwrap();
    assert!(!tcp_answers(ns1), "the firewall drops TCP/53");
    assert!(tcp_answers(update), "UPDATEs still reach the primary");

    let new = deploy_published(w);
    assert_completes(w, &new);
}

/// (c) UDP/53 and TCP/53 both dropped to one nameserver: it holds the gate, `status --live` says
/// it could be reached by neither, one alert names it; once the firewall is gone the rollover
/// completes.
#[test]
fn a_nameserver_reachable_by_neither_udp_nor_tcp_holds_the_gate_and_says_so() {
    let Some(f) = start(true) else { return };
    let (w, net) = (&f.w, &f.net);
    let ns2 = w.dns.addr(Server::Knot);
    let new = deploy_published(w);
    let fw = net
        .firewall(&[&format!(
            "ip daddr {ns2} meta l4proto {{ tcp, udp }} th dport 53 drop"
        )])
        .unwrap();

    // Well past 2×TTL (4 s): still published, one alert naming ns2.
    let stderr = run_for(w, Duration::from_secs(4 * u64::from(TTL)));
    assert_eq!(w.phase(), "published", "{stderr}");
    let name = format!("ns2.{}", w.dns.zone());
    // (The gate may also have seen every server serve before the rule came in: then the
    // "no longer served everywhere" alert comes too.)
    let alerts: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("ALERT") && l.contains("gave no usable answer"))
        .collect();
    assert_eq!(alerts.len(), 1, "{stderr}");
    assert!(alerts[0].contains(&name), "{}", alerts[0]);
    let seen = live_nameservers(w, &IpAddr::V4(ns2).to_string());
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let why = seen[0]["records"]["error"].as_str().unwrap_or_default();
    assert!(why.contains("could be reached over neither UDP"), "{why}");
    assert!(why.contains("TCP"), "{why}");
    assert_eq!(w.served_spki(), w.old.spki_sha256_hex().unwrap());

    drop(fw);
    assert_completes(w, &new);
}

/// (d) One nameserver down (Knot stopped) in the field lab: its address answers UDP with a port
/// unreachable and refuses TCP, so each run learns it at once (not after the timeout); it holds
/// the gate and says so; started again, the rollover completes.
#[test]
fn a_nameserver_down_is_known_at_once_and_holds_the_gate() {
    let Some(mut f) = start(true) else { return };
    let ns2 = f.w.dns.addr(Server::Knot);
    let new = deploy_published(&f.w);
    f.w.dns.stop_knot();

    let t0 = Instant::now();
    let out = f.w.run(&["run"]);
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "a refused nameserver cost {:?}: {}",
        t0.elapsed(),
        text(&out)
    );
    assert_eq!(f.w.phase(), "published");
    let seen = live_nameservers(&f.w, &IpAddr::V4(ns2).to_string());
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let why = seen[0]["records"]["error"].as_str().unwrap_or_default();
    assert!(why.contains("neither UDP nor TCP"), "{why}");
    assert!(why.contains("refused the TCP connection"), "{why}");

    // Knot starts where the servers live, then the thread goes back to the host.
    f.net.enter_servers().unwrap();
    f.w.dns.start_knot().unwrap();
    f.net.enter_host().unwrap();
    f.w.run_until("done", Duration::from_secs(30));
    assert_eq!(f.w.served_spki(), new.spki_sha256_hex().unwrap());
    drop(f);
}

/// (e) An answer too large for UDP (40 more `3 1 1` records at the owner: past the 1232-byte
/// EDNS payload): truncated over UDP, asked again over TCP. With TCP/53 dropped to the
/// nameservers, the gate holds and says the answer needs TCP; once TCP is open again, the
/// rollover completes over it.
#[test]
fn a_truncated_answer_is_asked_again_over_tcp_and_says_so_when_tcp_is_dropped() {
    let Some(mut f) = start(true) else { return };
    let update = f.hidden_primary();
    let (w, net) = (&f.w, &f.net);
    let zone = w.dns.zone();
    let mut lines = vec![format!("zone {zone}.")];
    let mut last = String::new();
    for i in 0..40u32 {
        last = format!("3 1 1 {:064x}", 0xfeed_0000u64 + u64::from(i));
        lines.push(format!("update add {OWNER} {TTL} IN TLSA {last}"));
    }
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = w.dns.nsupdate(&lines).unwrap();
    assert!(out.is_ok(), "{}", out.text());
    w.dns.wait_served_everywhere(OWNER, &last, JUDGE).unwrap();
    // The answer really is truncated over UDP at the gate's payload size.
    let ns1 = w.dns.addr(Server::Bind);
    let dig = Command::new("dig")
        .arg(format!("@{ns1}"))
        .args([
            "+norec",
            "+dnssec",
            "+ignore",
            "+bufsize=1232",
            OWNER,
            "TLSA",
        ])
        .output()
        .unwrap();
    let dig = String::from_utf8_lossy(&dig.stdout);
    assert!(
        dig.lines()
            .any(|l| l.contains("flags:") && l.contains(" tc")),
        "{dig}"
    );

    let new = deploy_published(w);
    let fw = net
        .firewall(&[
            &format!("ip daddr != {update} tcp dport 53 drop"),
            "meta nfproto ipv6 tcp dport 53 drop",
        ])
        .unwrap();
    let stderr = run_for(w, Duration::from_secs(4 * u64::from(TTL)));
    assert_eq!(w.phase(), "published", "{stderr}");
    let seen = live_nameservers(w, &IpAddr::V4(ns1).to_string());
    assert_eq!(seen.len(), 1, "{seen:#?}");
    let why = seen[0]["records"]["error"].as_str().unwrap_or_default();
    assert!(why.contains("answered over UDP truncated"), "{why}");
    assert!(why.contains("TCP port 53"), "{why}");

    drop(fw);
    assert_completes(w, &new);
}
