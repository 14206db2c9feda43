//! `lab-relay`: the lab's user-space relay ([`dane_roll_lab::relay`]) for scripts.
//!
//! ```text
//! lab-relay run [--rtt-ms N] [--jitter-ms N] [--loss P] [--seed S] LISTEN=UPSTREAM…
//! lab-relay measure [--pings N] [--megabytes N]
//! ```
//!
//! `run` relays each `LISTEN=UPSTREAM` pair (TCP and UDP) with the round trip split evenly
//! between the directions and `loss` on each, prints `ready` and relays until killed.
//! `measure` prints the relay's own overhead at 0 ms configured: the round trip of UDP and TCP
//! echoes direct and through the relay (median and 99th percentile), and TCP throughput direct
//! and through the relay.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use dane_roll_lab::relay::{Impairment, Relay, RelayConfig};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(&args[1..]),
        Some("measure") => measure(&args[1..]),
        _ => Err(
            "usage: lab-relay run [--rtt-ms N] [--jitter-ms N] [--loss P] [--seed S] \
                  LISTEN=UPSTREAM… | lab-relay measure [--pings N] [--megabytes N]"
                .to_owned(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lab-relay: {e}");
            ExitCode::from(2)
        }
    }
}

/// `--name VALUE` pairs, in the order given.
type Options = Vec<(String, String)>;

/// `--name VALUE` options and the remaining words.
fn options(args: &[String]) -> Result<(Options, Vec<String>), String> {
    let (mut opts, mut rest) = (Vec::new(), Vec::new());
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if let Some(name) = a.strip_prefix("--") {
            let v = it.next().ok_or(format!("--{name} needs a value"))?;
            opts.push((name.to_owned(), v.clone()));
        } else {
            rest.push(a.clone());
        }
    }
    Ok((opts, rest))
}

fn number<T: std::str::FromStr>(
    opts: &[(String, String)],
    name: &str,
    default: T,
) -> Result<T, String> {
    match opts.iter().rev().find(|(n, _)| n == name) {
        Some((_, v)) => v.parse().map_err(|_| format!("--{name} {v}: not a number")),
        None => Ok(default),
    }
}

fn run(args: &[String]) -> Result<(), String> {
    let (opts, pairs) = options(args)?;
    let rtt = Duration::from_secs_f64(number(&opts, "rtt-ms", 0.0)? / 1000.0);
    let jitter = Duration::from_secs_f64(number(&opts, "jitter-ms", 0.0)? / 1000.0);
    let loss: f64 = number(&opts, "loss", 0.0)?;
    let seed: u64 = number(&opts, "seed", 1)?;
    if pairs.is_empty() {
        return Err("no LISTEN=UPSTREAM pair given".into());
    }
    let mut relays = Vec::new();
    for pair in &pairs {
        let (l, u) = pair
            .split_once('=')
            .ok_or(format!("{pair}: expected LISTEN=UPSTREAM"))?;
        let listen: SocketAddr = l.parse().map_err(|e| format!("{l}: {e}"))?;
        let upstream: SocketAddr = u.parse().map_err(|e| format!("{u}: {e}"))?;
        let one_way = Impairment {
            delay: rtt / 2,
            jitter,
            loss,
        };
        let config = RelayConfig {
            listen,
            upstream,
            outbound: one_way,
            inbound: one_way,
            seed: seed.wrapping_add(relays.len() as u64),
            tcp: true,
            udp: true,
        };
        relays.push(Relay::start(config).map_err(|e| format!("{pair}: {e}"))?);
    }
    println!("ready");
    let _ = std::io::stdout().flush();
    loop {
        std::thread::park();
    }
}

fn free() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], dane_roll_lab::free_port()))
}

fn percentiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |p: f64| v[((v.len() - 1) as f64 * p).round() as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

fn measure(args: &[String]) -> Result<(), String> {
    let (opts, _) = options(args)?;
    let pings: usize = number(&opts, "pings", 2000)?;
    let megabytes: usize = number(&opts, "megabytes", 256)?;
    let e = |e: std::io::Error| e.to_string();

    // UDP echo.
    let echo = UdpSocket::bind("127.0.0.1:0").map_err(e)?;
    let udp_echo = echo.local_addr().map_err(e)?;
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = echo.recv_from(&mut buf) {
            let _ = echo.send_to(&buf[..n], from);
        }
    });
    // TCP echo (for the round trip) and sink (for throughput).
    let l = TcpListener::bind("127.0.0.1:0").map_err(e)?;
    let tcp_echo = l.local_addr().map_err(e)?;
    std::thread::spawn(move || {
        for c in l.incoming() {
            let Ok(mut c) = c else { continue };
            std::thread::spawn(move || {
                let _ = c.set_nodelay(true);
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let zero = |upstream| RelayConfig::symmetric(free(), upstream, Duration::ZERO, 0.0);
    let udp_relay = Relay::start(zero(udp_echo)).map_err(e)?;
    let tcp_relay = Relay::start(zero(tcp_echo)).map_err(e)?;

    let udp_rtt = |to: SocketAddr| -> Result<Vec<Duration>, String> {
        let c = UdpSocket::bind("127.0.0.1:0").map_err(e)?;
        c.set_read_timeout(Some(Duration::from_secs(1)))
            .map_err(e)?;
        let mut out = Vec::with_capacity(pings);
        let mut buf = [0u8; 64];
        for i in 0..pings {
            let t = Instant::now();
            c.send_to(&(i as u64).to_be_bytes(), to).map_err(e)?;
            c.recv_from(&mut buf).map_err(e)?;
            out.push(t.elapsed());
        }
        Ok(out)
    };
    let tcp_rtt = |to: SocketAddr| -> Result<Vec<Duration>, String> {
        let mut c = TcpStream::connect(to).map_err(e)?;
        c.set_nodelay(true).map_err(e)?;
        let mut out = Vec::with_capacity(pings);
        let mut buf = [0u8; 8];
        for i in 0..pings {
            let t = Instant::now();
            c.write_all(&(i as u64).to_be_bytes()).map_err(e)?;
            c.read_exact(&mut buf).map_err(e)?;
            out.push(t.elapsed());
        }
        Ok(out)
    };
    let throughput = |to: SocketAddr| -> Result<f64, String> {
        let c = TcpStream::connect(to).map_err(e)?;
        let mut r = c.try_clone().map_err(e)?;
        let total = megabytes * 1024 * 1024;
        let t = Instant::now();
        let reader = std::thread::spawn(move || {
            let mut buf = vec![0u8; 256 * 1024];
            let mut got = 0;
            while got < total {
                match r.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => got += n,
                }
            }
            got
        });
        let block = vec![0x5au8; 256 * 1024];
        let mut w = c;
        for _ in 0..total / block.len() {
            w.write_all(&block).map_err(e)?;
        }
        let got = reader.join().map_err(|_| "reader panicked".to_owned())?;
        Ok(got as f64 * 8.0 / t.elapsed().as_secs_f64() / 1e9)
    };

    let (ud50, ud99) = percentiles(udp_rtt(udp_echo)?);
    let (ur50, ur99) = percentiles(udp_rtt(udp_relay.addr())?);
    let (td50, td99) = percentiles(tcp_rtt(tcp_echo)?);
    let (tr50, tr99) = percentiles(tcp_rtt(tcp_relay.addr())?);
    let gd = throughput(tcp_echo)?;
    let gr = throughput(tcp_relay.addr())?;
    println!("RELAY udp_rtt_direct_us p50={ud50:.0} p99={ud99:.0}");
    println!("RELAY udp_rtt_relay_us p50={ur50:.0} p99={ur99:.0}");
    println!(
        "RELAY udp_added_us p50={:.0} p99={:.0}",
        ur50 - ud50,
        ur99 - ud99
    );
    println!("RELAY tcp_rtt_direct_us p50={td50:.0} p99={td99:.0}");
    println!("RELAY tcp_rtt_relay_us p50={tr50:.0} p99={tr99:.0}");
    println!(
        "RELAY tcp_added_us p50={:.0} p99={:.0}",
        tr50 - td50,
        tr99 - td99
    );
    println!("RELAY tcp_echo_gbit direct={gd:.2} relay={gr:.2}");
    println!("RELAY pings={pings} megabytes={megabytes}");
    Ok(())
}
