//! How one nameserver address is asked: UDP first, TCP on truncation, and TCP beside UDP when
//! UDP brings no answer, so that a host whose firewall drops outbound TCP/53 (common on mail
//! hosts) can still check the gate, and a nameserver reachable by neither says so.
//!
//! The policy (docs/ARCHITECTURE.md, the gate):
//! - UDP at once, on a *connected* socket: a nameserver that is down answers with an ICMP port
//!   unreachable, which a connected socket reports as "connection refused" at once (hickory's
//!   UDP client uses an unconnected socket, where the same nameserver costs the whole timeout;
//!   that is why this exchange is written here). Unanswered queries are sent again after
//!   [`UDP_FIRST_RETRY`], then at doubling intervals, until the deadline: a lost datagram costs
//!   one interval, not the timeout.
//! - TCP when UDP answers truncated (TC), when UDP fails (refused, a network error), or after
//!   [`tcp_head_start`] without an answer: then both run side by side and the first full answer
//!   wins. A dead nameserver costs one timeout, not two.
//! - No route to the address (ENETUNREACH, EHOSTUNREACH on connect): the address is not checkable
//!   from here; TCP is not tried (it has no route either).
//! - Neither answered: the failure names both ways ([`ServerFailure::Timeout`] when both timed
//!   out, [`ServerFailure::Unreached`] otherwise, [`ServerFailure::TruncatedNoTcp`] when UDP only
//!   had a truncated answer).

use std::net::SocketAddr;
use std::time::Duration;

use hickory_proto::op::Message;
use tokio::net::UdpSocket;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::super::wire::{self, Transport};
use super::ServerFailure;

/// When an unanswered UDP query is first sent again (then at doubling intervals): about what a
/// resolver waits for a nameserver it knows nothing about (Unbound starts at 376 ms).
pub const UDP_FIRST_RETRY: Duration = Duration::from_millis(400);

/// How long UDP runs alone before TCP joins it: a quarter of the timeout, at most one second.
pub fn tcp_head_start(timeout: Duration) -> Duration {
    (timeout / 4).min(Duration::from_secs(1))
}

/// Why UDP gave no full answer.
#[derive(Debug, Clone, PartialEq, Eq)]
enum UdpEnd {
    /// An answer with TC set: the rest needs TCP.
    Truncated,
    /// No answer.
    Failed(Transport),
}

/// Ask `server` every query in `queries`, UDP first (see the module docs); the answers in order.
pub(crate) async fn exchange(
    server: SocketAddr,
    queries: &[Message],
    timeout: Duration,
) -> Result<Vec<Message>, ServerFailure> {
    let deadline = Instant::now() + timeout;
    let tcp_now = Notify::new();
    let udp = udp_exchange(server, queries, deadline);
    let tcp = async {
        tokio::select! {
            _ = tokio::time::sleep(tcp_head_start(timeout)) => {}
            _ = tcp_now.notified() => {}
        }
        let left = deadline.saturating_duration_since(Instant::now());
        wire::exchange_tcp(server, queries, left).await
    };
    tokio::pin!(udp, tcp);
    let work = async {
        let (mut udp_end, mut tcp_end): (Option<UdpEnd>, Option<Transport>) = (None, None);
        loop {
            tokio::select! {
                r = &mut udp, if udp_end.is_none() => match r {
                    Ok(answers) => return Ok(answers),
                    Err(UdpEnd::Failed(Transport::Unreachable(e))) => {
                        return Err(ServerFailure::Unreachable(e));
                    }
                    Err(end) => {
                        tcp_now.notify_one();
                        udp_end = Some(end);
                    }
                },
                r = &mut tcp, if tcp_end.is_none() => match r {
                    Ok(answers) => return Ok(answers),
                    Err(t) => tcp_end = Some(t),
                },
            }
            if let (Some(u), Some(t)) = (&udp_end, &tcp_end) {
                return Err(neither(u, t, timeout));
            }
        }
    };
    // Both ways keep to the deadline themselves; this is the backstop.
    match tokio::time::timeout(timeout + Duration::from_millis(100), work).await {
        Ok(r) => r,
        Err(_) => Err(ServerFailure::Timeout(timeout)),
    }
}

/// The failure when neither UDP nor TCP brought a full answer.
fn neither(udp: &UdpEnd, tcp: &Transport, timeout: Duration) -> ServerFailure {
    match (udp, tcp) {
        (UdpEnd::Truncated, t) => ServerFailure::TruncatedNoTcp(describe(t, timeout)),
        (UdpEnd::Failed(Transport::Timeout), Transport::Timeout) => ServerFailure::Timeout(timeout),
        (UdpEnd::Failed(Transport::Refused), Transport::Refused) => {
            ServerFailure::ConnectionRefused
        }
        (UdpEnd::Failed(Transport::Malformed(e)), _) | (_, Transport::Malformed(e)) => {
            ServerFailure::Malformed(e.clone())
        }
        (UdpEnd::Failed(u), t) => ServerFailure::Unreached {
            udp: describe(u, timeout),
            tcp: describe(t, timeout),
        },
    }
}

fn describe(t: &Transport, timeout: Duration) -> String {
    match t {
        Transport::Timeout => format!("no answer within {timeout:?}"),
        Transport::Refused => "refused".to_owned(),
        other => other.to_string(),
    }
}

/// The UDP half: every query on one connected socket, sent again on the retry schedule until
/// each is answered or `deadline` passes.
async fn udp_exchange(
    server: SocketAddr,
    queries: &[Message],
    deadline: Instant,
) -> Result<Vec<Message>, UdpEnd> {
    let failed = |e: std::io::Error| UdpEnd::Failed(io_transport(e));
    // After the connect, "unreachable" is an ICMP error from the way (a firewall that rejects),
    // not a host without a route: TCP is still tried.
    let lost = |e: std::io::Error| UdpEnd::Failed(sent_transport(e));
    let local: SocketAddr = if server.is_ipv4() {
        (std::net::Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let socket = UdpSocket::bind(local).await.map_err(failed)?;
    socket.connect(server).await.map_err(failed)?;

    // Each query with an ID of its own, drawn at random (answers are matched on it; the
    // connected socket already drops datagrams from any other address).
    let mut asked = Vec::with_capacity(queries.len());
    for q in queries {
        let mut q = q.clone();
        let mut id = [0u8; 2];
        openssl::rand::rand_bytes(&mut id)
            .map_err(|e| UdpEnd::Failed(Transport::Network(e.to_string())))?;
        q.metadata.id = u16::from_be_bytes(id);
        let wire = q
            .to_vec()
            .map_err(|e| UdpEnd::Failed(Transport::Malformed(e.to_string())))?;
        asked.push((q, wire));
    }
    let mut answers: Vec<Option<Message>> = vec![None; queries.len()];
    let mut retry = UDP_FIRST_RETRY;
    let mut next_send = Instant::now();
    let mut buf = vec![0u8; 65_535];
    loop {
        if Instant::now() >= next_send {
            for ((_, wire), answer) in asked.iter().zip(&answers) {
                if answer.is_none() {
                    socket.send(wire).await.map_err(lost)?;
                }
            }
            next_send = Instant::now() + retry;
            retry *= 2;
        }
        let wake = next_send.min(deadline);
        let n = match tokio::time::timeout_at(wake, socket.recv(&mut buf)).await {
            Ok(r) => r.map_err(lost)?,
            Err(_) if Instant::now() >= deadline => {
                return Err(UdpEnd::Failed(Transport::Timeout));
            }
            Err(_) => continue,
        };
        // Anything that does not parse or answers no question of ours is ignored, as a
        // resolver would (it may be a late answer to nothing we still wait for).
        let Ok(answer) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let Some(i) = asked
            .iter()
            .position(|(q, _)| q.metadata.id == answer.metadata.id)
        else {
            continue;
        };
        if wire::check_answer(&asked[i].0, &answer).is_err() {
            continue;
        }
        if answer.metadata.truncation {
            return Err(UdpEnd::Truncated);
        }
        answers[i] = Some(answer);
        if answers.iter().all(Option::is_some) {
            return Ok(answers.into_iter().flatten().collect());
        }
    }
}

/// An error sending or receiving on the connected socket.
fn sent_transport(e: std::io::Error) -> Transport {
    use std::io::ErrorKind;
    match e.kind() {
        // A local firewall (nft/iptables drop on output) fails the send with EPERM.
        ErrorKind::PermissionDenied => {
            Transport::Network(format!("this host's firewall refused to send it ({e})"))
        }
        ErrorKind::NetworkUnreachable | ErrorKind::HostUnreachable => {
            Transport::Network(format!("unreachable ({e})"))
        }
        _ => io_transport(e),
    }
}

fn io_transport(e: std::io::Error) -> Transport {
    use nix::errno::Errno;
    use std::io::ErrorKind;
    // A host without the address family at all (IPv6 disabled in the kernel, no address of the
    // family to send from) is a host without a route to it.
    let no_family = [Errno::EAFNOSUPPORT, Errno::EADDRNOTAVAIL].map(|e| e as i32);
    if e.raw_os_error().is_some_and(|n| no_family.contains(&n)) {
        return Transport::Unreachable(e.to_string());
    }
    match e.kind() {
        ErrorKind::ConnectionRefused => Transport::Refused,
        ErrorKind::NetworkUnreachable | ErrorKind::HostUnreachable => {
            Transport::Unreachable(e.to_string())
        }
        ErrorKind::TimedOut => Transport::Timeout,
        _ => Transport::Network(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_joins_after_a_quarter_of_the_timeout_at_most_a_second() {
        assert_eq!(
            tcp_head_start(Duration::from_millis(500)),
            Duration::from_millis(125)
        );
        assert_eq!(
            tcp_head_start(Duration::from_secs(10)),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn neither_names_both_ways() {
        let t = Duration::from_secs(2);
        let f = neither(&UdpEnd::Failed(Transport::Timeout), &Transport::Timeout, t);
        assert_eq!(f, ServerFailure::Timeout(t));
        assert!(f.to_string().contains("neither UDP nor TCP"), "{f}");
        let f = neither(&UdpEnd::Failed(Transport::Refused), &Transport::Refused, t);
        assert!(f.is_refused(), "{f}");
        let f = neither(&UdpEnd::Failed(Transport::Timeout), &Transport::Refused, t);
        assert!(f.to_string().contains("neither UDP"), "{f}");
        let f = neither(&UdpEnd::Truncated, &Transport::Timeout, t);
        assert!(f.to_string().contains("truncated"), "{f}");
        assert!(f.to_string().contains("TCP"), "{f}");
    }
}
