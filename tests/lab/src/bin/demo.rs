//! The lab demo: a signed zone, a validating resolver, a receiving MX and a DANE-enforcing sender
//! on loopback; the MX's TLSA `3 1 1` record is computed with the real `dane-roll tlsa`,
//! published through BIND, validated by Unbound, and a test mail goes out "Verified". Then a
//! whole rollover to a new key with the real `dane-roll deploy --wait` (TTL 2 s, so 2×TTL is
//! 4 s), printing each phase as it passes, while the sender delivers a mail about every second:
//! every one must be Verified.
//!
//! ```text
//! demo [--dane-roll PATH] [--hold]
//! ```
//! `--dane-roll` (or env `DANE_ROLL`): the dane-roll binary (default: beside this one).
//! `--hold`: keep the lab running after the last step until Ctrl-C.
//!
//! Everything is torn down at the end, also on Ctrl-C: SIGINT is blocked in every thread (and so
//! in the servers, which inherit the mask: Ctrl-C does not kill them half-way; their guards stop
//! them with SIGTERM) and taken by a thread with `sigwait`; the steps check for it and return,
//! so every guard drops. No unsafe signal handler is needed.

use std::io::{self, BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use dane_roll_lab::conf::{RolloverConf, rfc2136};
use dane_roll_lab::pki::{KeyKind, MX_HOST, TestPki};
use dane_roll_lab::postfix::{RECIPIENT, Receiver, SENDER_HOST, Sender, Verdict};
use dane_roll_lab::{DnsLab, LabDir, LoopbackBlock, loopback_block};

const STEPS: usize = 10;
const OWNER: &str = "_25._tcp.mail.example.test";
/// The records' TTL: 2 s keeps the rollover's 2×TTL wait at 4 s (production: 3600).
const TTL: u32 = 2;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

struct Demo {
    stop: Arc<AtomicBool>,
    n: usize,
}

impl Demo {
    /// Run one numbered step: print what it does, run it, print ok and the time it took.
    fn step<T>(&mut self, what: &str, f: impl FnOnce() -> Res<T>) -> Res<T> {
        self.check()?;
        self.n += 1;
        print!("{}/{STEPS} {what} … ", self.n);
        let _ = io::stdout().flush();
        let t0 = Instant::now();
        let out = f();
        match &out {
            Ok(_) => println!("ok {:.1} s", t0.elapsed().as_secs_f64()),
            Err(e) => println!("FAILED after {:.1} s\n    {e}", t0.elapsed().as_secs_f64()),
        }
        let out = out?;
        self.check()?;
        Ok(out)
    }

    fn check(&self) -> Res<()> {
        if self.stop.load(Ordering::SeqCst) {
            return Err("interrupted (Ctrl-C)".into());
        }
        Ok(())
    }
}

fn main() -> ExitCode {
    // Block SIGINT before any thread or child exists; a watcher thread takes it. Only SIGINT:
    // the servers inherit the mask, and their guards stop them with SIGTERM.
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    if let Err(e) = set.thread_block() {
        eprintln!("demo: cannot block SIGINT: {e}");
        return ExitCode::FAILURE;
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            while let Ok(sig) = set.wait() {
                if !stop.swap(true, Ordering::SeqCst) {
                    eprintln!("\n{sig:?}: stopping after the current step, then tearing down …");
                }
            }
        });
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let hold = args.iter().any(|a| a == "--hold");
    let dane_roll = args
        .iter()
        .position(|a| a == "--dane-roll")
        .and_then(|i| args.get(i + 1))
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("DANE_ROLL").map(PathBuf::from))
        .unwrap_or_else(|| {
            std::env::current_exe()
                .ok()
                .and_then(|p| p.parent().map(|d| d.join("dane-roll")))
                .unwrap_or_else(|| PathBuf::from("dane-roll"))
        });
    let mut demo = Demo {
        stop: Arc::clone(&stop),
        n: 0,
    };
    let t0 = Instant::now();
    let result = run(&mut demo, &dane_roll, hold);
    // Every guard of the lab has dropped here (run returned): the servers are stopped.
    match result {
        Ok(()) => {
            println!(
                "done in {:.1} s; everything stopped.",
                t0.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("demo: {e}\nthe lab has been torn down.");
            if stop.load(Ordering::SeqCst) {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn run(demo: &mut Demo, dane_roll: &std::path::Path, hold: bool) -> Res<()> {
    let needed = [
        "named",
        "unbound",
        "unbound-control",
        "dig",
        "nsupdate",
        "tsig-keygen",
        "dnssec-dsfromkey",
        "knotd",
        "knotc",
        "postfix",
        "sendmail",
        "unshare",
        "script",
    ];
    if !dane_roll_lab::require(&needed) {
        return Err("missing programs (see above); examples/lab/demo.sh installs them".into());
    }
    let lab = LabDir::new()?;
    let block = loopback_block();
    println!(
        "dane-roll lab demo: loopback block 127.53.{}.0/24, files in {}",
        block.n(),
        lab.path().display()
    );

    let dns = demo.step(
        "starting BIND (signed zone example.test), Knot (secondary) and Unbound (validating)",
        || Ok(DnsLab::builder().block(block).dir(lab.path()).start()?),
    )?;
    let t = dns.timings();
    println!(
        "    BIND signed in {:.2} s, Knot in sync {}, Unbound answers with AD {}",
        t.bind_signed.as_secs_f64(),
        t.knot_synced
            .map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64())),
        t.resolver_ad
            .map_or("-".into(), |d| format!("{:.2} s", d.as_secs_f64())),
    );

    let (_ca, leaf) = demo.step(
        "making a test PKI: root → intermediate → leaf mail.example.test (ECDSA P-256)",
        || {
            let ca = TestPki::new(KeyKind::EcdsaP256)?;
            let leaf = ca.leaf(&[MX_HOST], KeyKind::EcdsaP256)?;
            Ok((ca, leaf))
        },
    )?;

    let receiver = demo.step(
        &format!(
            "starting the receiving Postfix (the MX) on {}:25 with STARTTLS",
            block.host(10)
        ),
        || {
            Ok(Receiver::start(
                &lab.sub("receiver")?,
                block,
                &leaf.key_and_chain_pem()?,
            )?)
        },
    )?;
    let served = receiver.served_spki()?;
    println!("    it serves the key with SPKI SHA-256 {served}");

    let sender = demo.step(
        &format!(
            "starting the DANE-enforcing sending Postfix on {} (resolver {})",
            block.host(11),
            dns.resolver_addr()
        ),
        || {
            Ok(Sender::start(
                &lab.sub("sender")?,
                block,
                dns.resolver_addr(),
            )?)
        },
    )?;

    let cert_file = lab.path().join("mail.example.test.crt");
    std::fs::write(&cert_file, leaf.cert.to_pem()?)?;
    let updates = demo.step(
        "computing the TLSA 3 1 1 record with `dane-roll tlsa --format nsupdate`",
        || Ok(tlsa_updates(dane_roll, &cert_file, &served)),
    )?;
    for u in &updates {
        println!("    {u}");
    }

    let rdata = format!("3 1 1 {served}");
    demo.step(
        "publishing it through BIND (UPDATE with TSIG); waiting until served signed, validated by Unbound",
        || {
            let mut lines = vec![format!("zone {}.", dns.zone())];
            lines.extend(updates.iter().cloned());
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            match dns.nsupdate(&refs)? {
                dane_roll_lab::dns::UpdateOutcome::Ok => {}
                other => return Err(format!("UPDATE refused: {}", other.text()).into()),
            }
            dns.wait_served_everywhere(OWNER, &rdata, Duration::from_secs(60))?;
            dns.flush_resolver()?;
            let a = dns.resolve(OWNER, "TLSA")?;
            if !a.ad() || !a.contains("TLSA", &rdata) {
                return Err(format!("the resolver does not validate it: {a:?}").into());
            }
            Ok(())
        },
    )?;
    let a = dns.resolve(OWNER, "TLSA")?;
    println!(
        "    Unbound ({}): {} flags [{}]",
        dns.resolver_addr(),
        a.rcode,
        a.flags.join(" ")
    );
    for r in a.records("TLSA") {
        println!("    {} {} IN TLSA {}", r.name, r.ttl, r.rdata);
    }

    let verdict = demo.step(
        "sending a test mail to someone@example.test through the DANE-enforcing sender",
        || {
            let v = sender.send_and_judge(Duration::from_secs(60))?;
            match v {
                Verdict::Verified(line) => Ok(line),
                other => Err(format!(
                    "not verified: {other:?}\n    sender log:\n{}",
                    sender.instance().log_tail(15)
                )
                .into()),
            }
        },
    )?;
    println!("    {verdict}");

    let conf = demo.step(
        "writing dane-roll.toml: service mx, records by UPDATE with the lab's TSIG key, TTL 2 s",
        || write_config(&lab, &dns, &receiver, block),
    )?;

    let (new_leaf, cert, key) = demo.step(
        "the certificate changes: a new key (ECDSA P-256), a new certificate from the same CA",
        || {
            let leaf = _ca.leaf(&[MX_HOST], KeyKind::EcdsaP256)?;
            let cert = lab.path().join("new.crt");
            let key = lab.path().join("new.key");
            std::fs::write(&cert, leaf.fullchain_pem()?)?;
            std::fs::write(&key, leaf.key.private_key_to_pem_pkcs8()?)?;
            Ok((leaf, cert, key))
        },
    )?;
    let new_spki = new_leaf.spki_sha256_hex()?;
    println!("    new key SPKI SHA-256 {new_spki}");

    let stop = demo_stop(demo);
    let mails = demo.step(
        "`dane-roll deploy --wait`: publish, gate, 2×TTL, install, reload, verify, retire \
         (a test mail about every second meanwhile)",
        || rollover(stop, dane_roll, &conf, &cert, &key, &sender),
    )?;
    println!(
        "    mails during the rollover: {} sent, {} Verified, {} deferred",
        mails.sent, mails.verified, mails.deferred
    );
    let now_served = receiver.served_spki()?;
    println!(
        "    the MX now serves {now_served} ({})",
        if now_served == new_spki {
            "the new key"
        } else {
            "NOT the new key"
        }
    );
    let a = dns.query(dns.addr(dane_roll_lab::Server::Bind), OWNER, "TLSA")?;
    println!(
        "    TLSA RRset now on the primary (new key + the pre-published next key; the old one retired):"
    );
    for r in a.records("TLSA") {
        println!("    {} {} IN TLSA {}", r.name, r.ttl, r.rdata);
    }
    if now_served != new_spki {
        return Err("the rollover did not install the new key".into());
    }
    if mails.verified != mails.sent {
        return Err(format!("{} mail(s) not Verified", mails.sent - mails.verified).into());
    }

    if hold {
        let maillog = sender.instance().maillog();
        println!(
            "\nthe lab keeps running; Ctrl-C tears it down. Try:\n  \
             dig +dnssec @{} {OWNER} TLSA\n  \
             openssl s_client -starttls smtp -connect {}:25 -brief </dev/null\n\
             send a test mail through the DANE-enforcing sender (it delivers only to a key the \
             TLSA records match):\n  \
             printf 'Subject: hello\\n\\nthrough DANE\\n' | sendmail -C {} -f lab@{SENDER_HOST} \
             {RECIPIENT}\n\
             and read its log, where `Verified TLS connection established` and `status=sent` \
             say it went out under DANE (`status=deferred` says a sender would hold it):\n  \
             tail -f {}",
            dns.resolver_addr(),
            block.host(10),
            sender.instance().etc().display(),
            maillog.display()
        );
        while demo.check().is_ok() {
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    print!("tearing down (sender, receiver, DNS, lab directory) … ");
    let _ = io::stdout().flush();
    let t0 = Instant::now();
    drop(sender);
    drop(receiver);
    drop(dns);
    drop(lab);
    println!("ok {:.1} s", t0.elapsed().as_secs_f64());
    Ok(())
}

fn demo_stop(demo: &Demo) -> Arc<AtomicBool> {
    Arc::clone(&demo.stop)
}

/// The configuration of service `mx`: the receiver's chain file and reload, records published
/// by RFC 2136 UPDATE to BIND with the lab's TSIG key (a file: never in the configuration).
fn write_config(
    lab: &LabDir,
    dns: &DnsLab,
    receiver: &Receiver,
    block: LoopbackBlock,
) -> Res<PathBuf> {
    let conf = lab.path().join("dane-roll.toml");
    let mut settings = RolloverConf::new(lab.path(), dns, receiver);
    settings.ttl = TTL;
    settings.provider = rfc2136(block.host(1), &dns.tsig().file);
    settings.write(&conf)?;
    println!("    {}", conf.display());
    Ok(conf)
}

/// What the sender did during the rollover.
struct Mails {
    sent: usize,
    verified: usize,
    deferred: usize,
}

/// Run `dane-roll deploy --wait`, print its lines as they come (one per phase), and send a
/// test mail about every second until it ends.
fn rollover(
    stop: Arc<AtomicBool>,
    dane_roll: &std::path::Path,
    conf: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
    sender: &Sender,
) -> Res<Mails> {
    println!();
    let mut child = Command::new(dane_roll)
        .arg("-c")
        .arg(conf)
        .args(["deploy", "--service", "mx", "--cert"])
        .arg(cert)
        .arg("--key")
        .arg(key)
        .arg("--wait")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", dane_roll.display()))?;
    let t0 = Instant::now();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let stderr = child.stderr.take().ok_or("no stderr")?;
    let printer = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!(
                "    {:5.1} s  dane-roll: {line}",
                t0.elapsed().as_secs_f64()
            );
        }
    });
    let errors = std::thread::spawn(move || io::read_to_string(stderr).unwrap_or_default());
    let mut mails = Mails {
        sent: 0,
        verified: 0,
        deferred: 0,
    };
    let status = loop {
        if stop.load(Ordering::SeqCst) {
            let _ = child.kill();
            let _ = child.wait();
            return Err("interrupted (Ctrl-C)".into());
        }
        let started = Instant::now();
        let v = sender.send_and_judge(Duration::from_secs(30))?;
        mails.sent += 1;
        match &v {
            Verdict::Verified(_) => mails.verified += 1,
            other => {
                mails.deferred += 1;
                println!(
                    "    {:5.1} s  mail NOT verified: {other:?}",
                    t0.elapsed().as_secs_f64()
                );
            }
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_secs(1).saturating_sub(started.elapsed()));
    };
    let _ = printer.join();
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        return Err(format!("dane-roll deploy failed ({status}):\n{errors}").into());
    }
    Ok(mails)
}

/// The `update add` lines from `dane-roll tlsa`; if the binary fails (or disagrees with the
/// lab's own computation), the lab's own record, with a note.
fn tlsa_updates(dane_roll: &std::path::Path, cert: &std::path::Path, spki: &str) -> Vec<String> {
    let ours = format!("update add {OWNER}. {TTL} IN TLSA 3 1 1 {spki}");
    let out = Command::new(dane_roll)
        .args([
            "tlsa",
            "--host",
            MX_HOST,
            "--ttl",
            &TTL.to_string(),
            "--format",
            "nsupdate",
        ])
        .arg(cert)
        .output();
    match out {
        Ok(o) if o.status.success() => {
            let text = String::from_utf8_lossy(&o.stdout);
            let lines: Vec<String> = text
                .lines()
                .map(str::trim)
                .filter(|l| l.starts_with("update add"))
                .map(String::from)
                .collect();
            if !lines.is_empty() && lines.iter().all(|l| l.to_lowercase().contains(spki)) {
                return lines;
            }
            eprintln!(
                "\n    note: `dane-roll tlsa` printed no matching update line ({:?}); using the lab's own",
                text.trim()
            );
        }
        Ok(o) => eprintln!(
            "\n    note: `{} tlsa` failed ({}): {}; using the lab's own record",
            dane_roll.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr).trim()
        ),
        // TODO: drop this fallback once `dane-roll tlsa` ships in every build of the demo.
        Err(e) => eprintln!(
            "\n    note: cannot run {} ({e}); using the lab's own record",
            dane_roll.display()
        ),
    }
    vec![ours]
}
