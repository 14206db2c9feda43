//! The lab demo: a signed zone, a validating resolver, a receiving MX and a DANE-enforcing sender
//! on loopback; the MX's TLSA `3 1 1` record is computed with the real `dane-roll tlsa`,
//! published through BIND, validated by Unbound, and a test mail goes out "Verified".
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

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, Signal};

use dane_roll_lab::pki::{KeyKind, MX_HOST, TestPki};
use dane_roll_lab::postfix::{Receiver, Sender, Verdict};
use dane_roll_lab::{DnsLab, LabDir, loopback_block};

const STEPS: usize = 7;
const OWNER: &str = "_25._tcp.mail.example.test";
const TTL: u32 = 300;

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

    if hold {
        println!(
            "\nthe lab keeps running; Ctrl-C tears it down. Try:\n  \
             dig +dnssec @{} {OWNER} TLSA\n  \
             openssl s_client -starttls smtp -connect {}:25 -brief </dev/null\n  \
             tail -f {}",
            dns.resolver_addr(),
            block.host(10),
            sender.instance().maillog().display()
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
