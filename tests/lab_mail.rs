//! Self-tests of the mail half of the lab: the test PKI, the receiving Postfix, the
//! DANE-enforcing sending Postfix (with the DNS lab), pebble with certbot and dehydrated, and
//! that a dropped lab leaves no process behind.
//!
//! Each test skips (or fails in CI) when a server is not installed; see `dane_roll_lab::require`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use dane_roll_lab::acme::{Certbot, Dehydrated, Pebble};
use dane_roll_lab::pki::{self, KeyKind, MX_HOST, TestPki};
use dane_roll_lab::postfix::{Receiver, Sender, Verdict};
use dane_roll_lab::tools::{BIND_TOOLS, UNBOUND_TOOLS};
use dane_roll_lab::{LabDir, loopback_block, require, require_all};

mod mx_lab;

use mx_lab::{publish, replace, start_dns};

const POSTFIX: &[&str] = &["postfix", "sendmail", "postqueue", "postsuper", "script"];

fn openssl(args: &[&str]) -> (bool, String) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("run openssl");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn write(path: &Path, data: &[u8]) {
    std::fs::write(path, data).unwrap();
}

/// The start time of a process (field 22 of /proc/PID/stat), if it exists and is not a zombie.
fn proc_start(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    if f.first() == Some(&"Z") {
        return None;
    }
    f.get(19)?.parse().ok()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn pki_chain_verifies_expired_leaf_and_key_file() {
    if !require(&["openssl"]) {
        return;
    }
    let lab = LabDir::new().unwrap();
    let d = lab.path();
    for kind in [KeyKind::Rsa2048, KeyKind::EcdsaP256] {
        let ca = TestPki::new(kind).unwrap();
        let leaf = ca.leaf(&[MX_HOST], kind).unwrap();
        write(&d.join("root.pem"), &ca.root_pem().unwrap());
        write(&d.join("int.pem"), &ca.intermediate.cert.to_pem().unwrap());
        write(&d.join("leaf.pem"), &leaf.cert.to_pem().unwrap());
        let (ok, out) = openssl(&[
            "verify",
            "-CAfile",
            d.join("root.pem").to_str().unwrap(),
            "-untrusted",
            d.join("int.pem").to_str().unwrap(),
            "-verify_hostname",
            MX_HOST,
            "-purpose",
            "sslserver",
            d.join("leaf.pem").to_str().unwrap(),
        ]);
        assert!(ok, "{kind:?} chain must verify: {out}");
        // Without the intermediate it must not: the chain really has three levels.
        let (ok, _) = openssl(&[
            "verify",
            "-CAfile",
            d.join("root.pem").to_str().unwrap(),
            d.join("leaf.pem").to_str().unwrap(),
        ]);
        assert!(
            !ok,
            "{kind:?} leaf must not verify without its intermediate"
        );

        let expired = ca.expired_leaf(&[MX_HOST], kind).unwrap();
        write(&d.join("expired.pem"), &expired.cert.to_pem().unwrap());
        let (ok, out) = openssl(&[
            "verify",
            "-CAfile",
            d.join("root.pem").to_str().unwrap(),
            "-untrusted",
            d.join("int.pem").to_str().unwrap(),
            d.join("expired.pem").to_str().unwrap(),
        ]);
        assert!(
            !ok && out.contains("expired"),
            "{kind:?} expired leaf: {out}"
        );

        // SPKI hash agrees with the openssl CLI's.
        let (ok, pubkey) = openssl(&[
            "x509",
            "-in",
            d.join("leaf.pem").to_str().unwrap(),
            "-pubkey",
            "-noout",
        ]);
        assert!(ok);
        write(&d.join("pub.pem"), pubkey.as_bytes());
        let (ok, _) = openssl(&[
            "pkey",
            "-pubin",
            "-in",
            d.join("pub.pem").to_str().unwrap(),
            "-outform",
            "DER",
            "-out",
            d.join("pub.der").to_str().unwrap(),
        ]);
        assert!(ok);
        let (ok, dgst) = openssl(&["dgst", "-sha256", "-r", d.join("pub.der").to_str().unwrap()]);
        assert!(ok);
        let hex = leaf.spki_sha256_hex().unwrap();
        assert_eq!(dgst.split_whitespace().next(), Some(hex.as_str()));
        assert_eq!(pki::key_spki_sha256_hex(&leaf.key).unwrap(), hex);
        assert_eq!(leaf.tlsa_311().unwrap(), format!("3 1 1 {hex}"));
        let next = pki::new_key(kind).unwrap();
        assert_ne!(
            pki::key_spki_sha256_hex(&next).unwrap(),
            hex,
            "the next key is new"
        );

        // Key+chain file: key first, then leaf, then intermediate; 0600; atomic (no temp left).
        let f = d.join(format!("chain-{kind:?}.pem"));
        leaf.write_key_and_chain(&f).unwrap();
        let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&f).unwrap();
        let blocks: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("-----BEGIN"))
            .collect();
        assert_eq!(
            blocks,
            [
                "-----BEGIN PRIVATE KEY-----",
                "-----BEGIN CERTIFICATE-----",
                "-----BEGIN CERTIFICATE-----"
            ]
        );
        let certs = openssl::x509::X509::stack_from_pem(text.as_bytes()).unwrap();
        assert_eq!(pki::spki_sha256_hex(&certs[0]).unwrap(), hex);
        assert_eq!(
            certs[1].to_der().unwrap(),
            ca.intermediate.cert.to_der().unwrap()
        );
        let leftovers = std::fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".tmp.")
            })
            .count();
        assert_eq!(leftovers, 0);
    }
    // A self-signed leaf verifies against itself only.
    let ss = pki::self_signed(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    write(&d.join("ss.pem"), &ss.cert.to_pem().unwrap());
    let ssp = d.join("ss.pem");
    let (ok, out) = openssl(&[
        "verify",
        "-CAfile",
        ssp.to_str().unwrap(),
        ssp.to_str().unwrap(),
    ]);
    assert!(ok, "{out}");
    assert!(ss.chain.is_empty());
}

#[test]
fn receiver_serves_starttls_and_reload_switches_certificate() {
    if !require(POSTFIX) {
        return;
    }
    let lab = LabDir::new().unwrap();
    let block = loopback_block();
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let a = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let b = ca.leaf(&[MX_HOST], KeyKind::Rsa2048).unwrap();
    let t0 = Instant::now();
    let rx = Receiver::start(
        &lab.sub("receiver").unwrap(),
        block,
        &a.key_and_chain_pem().unwrap(),
    )
    .unwrap();
    eprintln!("receiver up in {:?}", t0.elapsed());
    assert_eq!(rx.addr().to_string(), format!("{}:25", block.host(10)));
    let chain = rx.served_chain().unwrap();
    assert_eq!(chain.len(), 2, "leaf + intermediate served");
    assert_eq!(rx.served_spki().unwrap(), a.spki_sha256_hex().unwrap());

    rx.install_chain(&b.key_and_chain_pem().unwrap()).unwrap();
    let took = rx.reload().unwrap();
    let seen = rx
        .wait_serving(&b.spki_sha256_hex().unwrap(), Duration::from_secs(10))
        .unwrap();
    eprintln!("reload {took:?}, new certificate served {seen:?} later");
    assert_eq!(rx.served_spki().unwrap(), b.spki_sha256_hex().unwrap());
    assert!(rx.instance().log_tail(200).contains("reload -- version"));

    // reload_settled: the very first session after it gets the new certificate.
    let c = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    assert!(rx.starttls_ok()); // an idle smtpd from before the reload exists
    rx.install_chain(&c.key_and_chain_pem().unwrap()).unwrap();
    let took = rx.reload_settled().unwrap();
    eprintln!("reload_settled {took:?}");
    assert_eq!(rx.served_spki().unwrap(), c.spki_sha256_hex().unwrap());
}

#[test]
fn sender_verifies_matching_tlsa_and_defers_on_mismatch() {
    if !require(POSTFIX) || !require_all(&[BIND_TOOLS, UNBOUND_TOOLS]) || !require(&["unshare"]) {
        return;
    }
    let lab = LabDir::new().unwrap();
    let block = loopback_block();
    let t0 = Instant::now();
    let dns = start_dns(&lab, block);
    let t_dns = t0.elapsed();
    let ca = TestPki::new(KeyKind::EcdsaP256).unwrap();
    let cur = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
    let other = pki::new_key(KeyKind::EcdsaP256).unwrap();
    let cur_tlsa = cur.tlsa_311().unwrap();
    let other_tlsa = format!("3 1 1 {}", pki::key_spki_sha256_hex(&other).unwrap());
    let t1 = Instant::now();
    let _rx = Receiver::start(
        &lab.sub("receiver").unwrap(),
        block,
        &cur.key_and_chain_pem().unwrap(),
    )
    .unwrap();
    let tx = Sender::start(&lab.sub("sender").unwrap(), block, dns.resolver_addr()).unwrap();
    eprintln!("dns up {t_dns:?}; receiver + sender up {:?}", t1.elapsed());
    let judge = Duration::from_secs(30);

    // No TLSA record: DANE falls back to opportunistic TLS; delivered, but not verified.
    let v = tx.send_and_judge(judge).unwrap();
    assert!(
        matches!(v, Verdict::SentUnverified(_)),
        "no TLSA: {v:?}\n{}",
        tx.instance().log_tail(30)
    );

    // Matching 3 1 1: Verified.
    publish(&dns, &cur_tlsa);
    let v = tx.send_and_judge(judge).unwrap();
    assert!(
        v.is_verified(),
        "matching TLSA: {v:?}\n{}",
        tx.instance().log_tail(30)
    );
    eprintln!("{v:?}");

    // Only a non-matching record: deferred, "not verified"; nothing bounces.
    replace(&dns, &cur_tlsa, &other_tlsa);
    let v = tx.send_and_judge(judge).unwrap();
    match &v {
        Verdict::Deferred(reason) => assert!(reason.contains("not verified"), "{reason}"),
        other => panic!(
            "non-matching TLSA must defer: {other:?}\n{}",
            tx.instance().log_tail(30)
        ),
    }
    assert_eq!(tx.deferred_count().unwrap(), 1);

    // Matching again, no sender reload: the next mail is Verified (no stale TLSA in the smtp
    // client, destination not throttled), and the deferred one goes out on a flush.
    publish(&dns, &cur_tlsa);
    let v = tx.send_and_judge(judge).unwrap();
    assert!(
        v.is_verified(),
        "matching again: {v:?}\n{}",
        tx.instance().log_tail(30)
    );
    tx.flush().unwrap();
    let t = Instant::now();
    while !tx.queue_empty().unwrap() {
        assert!(
            t.elapsed() < judge,
            "queue not empty after flush:\n{}",
            tx.instance().log_tail(30)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(tx.bounced_count(), 0);
}

#[test]
fn pebble_issues_with_certbot_and_dehydrated() {
    if !require(&["pebble", "certbot", "dehydrated", "curl"]) {
        return;
    }
    let lab = LabDir::new().unwrap();
    let block = loopback_block();
    let pebble = Pebble::start(&lab.sub("pebble").unwrap(), block).unwrap();
    eprintln!("pebble up in {:?}", pebble.started_in());
    let root = pebble.issuing_root_pem().unwrap();
    let root = openssl::x509::X509::from_pem(root.as_bytes()).unwrap();

    // certbot, with a deploy hook that records RENEWED_LINEAGE.
    let cb = Certbot::new(&lab.sub("certbot").unwrap(), &pebble).unwrap();
    let marker = lab.path().join("deployed");
    let hook = format!("echo \"$RENEWED_LINEAGE\" >> {}", marker.display());
    let run = cb
        .certonly(&[MX_HOST], Some(&hook), &["--key-type", "ecdsa"])
        .unwrap();
    eprintln!("certbot certonly {:?}", run.elapsed);
    let live = cb.live_dir(MX_HOST);
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap().trim(),
        live.to_str().unwrap()
    );
    let pem = std::fs::read(live.join("fullchain.pem")).unwrap();
    let chain = openssl::x509::X509::stack_from_pem(&pem).unwrap();
    let san = chain[0].subject_alt_names().unwrap();
    assert!(san.iter().any(|n| n.dnsname() == Some(MX_HOST)));
    assert!(
        verifies(&chain, &root),
        "certbot's chain must verify to pebble's root"
    );
    let spki = pki::spki_sha256_hex(&chain[0]).unwrap();

    // Renewal with --reuse-key: same SPKI, hook ran again.
    cb.renew(MX_HOST, &["--force-renewal", "--reuse-key"])
        .unwrap();
    let pem = std::fs::read(live.join("cert.pem")).unwrap();
    let renewed = openssl::x509::X509::from_pem(&pem).unwrap();
    assert_ne!(
        renewed.to_der().unwrap(),
        chain[0].to_der().unwrap(),
        "a new certificate"
    );
    assert_eq!(pki::spki_sha256_hex(&renewed).unwrap(), spki, "same key");
    assert_eq!(std::fs::read_to_string(&marker).unwrap().lines().count(), 2);

    // dehydrated.
    let dh = Dehydrated::new(&lab.sub("dehydrated").unwrap(), &pebble).unwrap();
    let run = dh.issue(&[MX_HOST], &[]).unwrap();
    eprintln!("dehydrated {:?}", run.elapsed);
    let pem = std::fs::read(dh.cert_dir(MX_HOST).join("fullchain.pem")).unwrap();
    let chain = openssl::x509::X509::stack_from_pem(&pem).unwrap();
    assert!(
        chain[0]
            .subject_alt_names()
            .unwrap()
            .iter()
            .any(|n| n.dnsname() == Some(MX_HOST))
    );
    assert!(
        verifies(&chain, &root),
        "dehydrated's chain must verify to pebble's root"
    );
    let deployed = std::fs::read_to_string(dh.deployed_file()).unwrap();
    assert!(deployed.starts_with(MX_HOST), "{deployed}");
}

fn verifies(chain: &[openssl::x509::X509], root: &openssl::x509::X509) -> bool {
    use openssl::stack::Stack;
    use openssl::x509::X509StoreContext;
    use openssl::x509::store::X509StoreBuilder;
    let mut store = X509StoreBuilder::new().unwrap();
    store.add_cert(root.clone()).unwrap();
    let store = store.build();
    let mut untrusted = Stack::new().unwrap();
    for c in &chain[1..] {
        untrusted.push(c.clone()).unwrap();
    }
    let mut ctx = X509StoreContext::new().unwrap();
    ctx.init(&store, &chain[0], &untrusted, |c| c.verify_cert())
        .unwrap()
}

/// Start and stop receiver + sender (+ pebble) five times: every PID (postfix masters and all
/// their children, pebble) is gone after the drop; prints the median start and stop times.
#[test]
fn dropped_lab_leaves_no_process_and_timings() {
    if !require(POSTFIX) || !require(&["unshare", "pebble"]) {
        return;
    }
    let mut starts = Vec::new();
    let mut stops = Vec::new();
    let mut counts = Vec::new();
    for _ in 0..5 {
        let lab = LabDir::new().unwrap();
        let block = loopback_block();
        let leaf = pki::self_signed(&[MX_HOST], KeyKind::EcdsaP256).unwrap();
        let t0 = Instant::now();
        let rx = Receiver::start(
            &lab.sub("receiver").unwrap(),
            block,
            &leaf.key_and_chain_pem().unwrap(),
        )
        .unwrap();
        // The resolver need not run: the sender only has to start.
        let tx = Sender::start(&lab.sub("sender").unwrap(), block, block.host(3)).unwrap();
        starts.push(t0.elapsed());
        let pebble = Pebble::start(&lab.sub("pebble").unwrap(), block).unwrap();
        assert!(rx.starttls_ok()); // an smtpd child exists now
        let mut pids: Vec<u32> = rx.instance().pids();
        assert!(pids.len() >= 4, "receiver master + children: {pids:?}");
        let tx_pids = tx.instance().pids();
        assert!(
            tx_pids.len() >= 3,
            "sender master + pickup + qmgr: {tx_pids:?}"
        );
        pids.extend(tx_pids);
        pids.push(pebble.pid());
        counts.push(pids.len());
        let ids: Vec<(u32, u64)> = pids
            .iter()
            .map(|&p| (p, proc_start(p).expect("running")))
            .collect();
        let t1 = Instant::now();
        drop(tx);
        drop(rx);
        stops.push(t1.elapsed());
        drop(pebble);
        let left: Vec<u32> = ids
            .iter()
            .filter(|(p, start)| proc_start(*p) == Some(*start))
            .map(|(p, _)| *p)
            .collect();
        assert!(left.is_empty(), "processes left after drop: {left:?}");
    }
    eprintln!(
        "receiver+sender start median {:?} (all {starts:?}); stop median {:?} (all {stops:?}); processes {counts:?}",
        median(starts.clone()),
        median(stops.clone())
    );
    assert!(median(starts) < Duration::from_secs(10));
}
