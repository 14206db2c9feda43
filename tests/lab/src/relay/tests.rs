//! The relay against echo servers on loopback: delay, seeded loss, the TCP handshake's cost.
use super::*;
use std::io::{Read, Write};
use std::net::{TcpListener as StdTcpListener, UdpSocket as StdUdpSocket};
use std::time::Instant as StdInstant;

fn free_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], crate::free_port()))
}

/// A UDP echo server on a thread; returns its address.
fn udp_echo() -> SocketAddr {
    let s = StdUdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = s.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            let _ = s.send_to(&buf[..n], from);
        }
    });
    addr
}

/// A TCP echo server on a thread; returns its address.
fn tcp_echo() -> SocketAddr {
    let l = StdTcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut c) = conn else { continue };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn udp_is_delayed_by_the_round_trip() {
    let relay = Relay::start(RelayConfig::symmetric(
        free_addr(),
        udp_echo(),
        Duration::from_millis(80),
        0.0,
    ))
    .unwrap();
    let c = StdUdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let t = StdInstant::now();
    c.send_to(b"ping", relay.addr()).unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = c.recv_from(&mut buf).unwrap();
    let took = t.elapsed();
    assert_eq!(&buf[..n], b"ping");
    assert!(took >= Duration::from_millis(80), "{took:?}");
    assert!(took < Duration::from_millis(400), "{took:?}");
    // The answer's own count may land just after the client has it.
    assert!(relay.stats().udp_forwarded >= 1);
}

#[test]
fn udp_loss_follows_the_seed() {
    let drops = |seed: u64| {
        let mut config = RelayConfig::symmetric(free_addr(), udp_echo(), Duration::ZERO, 0.3);
        config.seed = seed;
        let relay = Relay::start(config).unwrap();
        let c = StdUdpSocket::bind("127.0.0.1:0").unwrap();
        c.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut got = Vec::new();
        for i in 0..100u8 {
            c.send_to(&[i], relay.addr()).unwrap();
            let mut buf = [0u8; 4];
            got.push(c.recv_from(&mut buf).is_ok());
        }
        (got, relay.stats().udp_dropped)
    };
    let (a, dropped) = drops(7);
    let (b, _) = drops(7);
    assert_eq!(a, b, "the same seed loses the same datagrams");
    let lost = a.iter().filter(|ok| !**ok).count();
    // 1 - 0.7² = 51 % of round trips lose a datagram, give or take.
    assert!((30..=70).contains(&lost), "{lost} of 100 lost");
    assert!(dropped as usize >= lost);
}

#[test]
fn tcp_connect_and_echo_cost_two_round_trips() {
    let rtt = Duration::from_millis(60);
    let relay = Relay::start(RelayConfig::symmetric(free_addr(), tcp_echo(), rtt, 0.0)).unwrap();
    let t = StdInstant::now();
    let mut c = std::net::TcpStream::connect(relay.addr()).unwrap();
    c.write_all(b"hello").unwrap();
    let mut buf = [0u8; 5];
    c.read_exact(&mut buf).unwrap();
    let took = t.elapsed();
    assert_eq!(&buf, b"hello");
    assert!(took >= 2 * rtt, "{took:?}");
    assert!(took < 2 * rtt + Duration::from_millis(200), "{took:?}");
    // A second exchange on the open connection: one round trip.
    let t = StdInstant::now();
    c.write_all(b"again").unwrap();
    c.read_exact(&mut buf).unwrap();
    let took = t.elapsed();
    assert!(
        took >= rtt && took < rtt + Duration::from_millis(150),
        "{took:?}"
    );
    drop(c);
    assert_eq!(relay.stats().tcp_connections, 1);
}

#[test]
fn a_bad_loss_is_refused() {
    let mut config = RelayConfig::symmetric(free_addr(), free_addr(), Duration::ZERO, 0.0);
    config.inbound.loss = 1.5;
    let err = Relay::start(config).unwrap_err();
    assert!(err.to_string().contains("inbound loss 1.5"), "{err}");
}
