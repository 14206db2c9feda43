//! Sending one query and getting its answer: the message we build (DO, AD, RD as asked, EDNS
//! payload [`EDNS_PAYLOAD`]), UDP with a TCP retry on truncation (to the resolver), TCP (the
//! nameservers' second way: [`super::authority::transport`] asks them over UDP first), and the
//! checks that the answer belongs to the question. Transport is hickory-net's UDP client stream
//! and TCP exchange; everything runs under one overall timeout per call.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_net::NetError;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_net::xfer::{DnsHandle, DnsRequestSender, FirstAnswer};
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};

use super::EDNS_PAYLOAD;

/// What went wrong on the way to an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transport {
    /// No answer within the time allowed.
    Timeout,
    /// The TCP connection was refused (nothing listens, or a firewall rejects).
    Refused,
    /// No route to the address from this host (ENETUNREACH, EHOSTUNREACH): the connection
    /// failed at once, before a packet left, e.g. an IPv6 address on an IPv4-only host.
    Unreachable(String),
    /// Another network error.
    Network(String),
    /// An answer that is not an answer to our question.
    Malformed(String),
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Timeout => f.write_str("no answer in time"),
            Transport::Refused => f.write_str("connection refused"),
            Transport::Unreachable(e) => write!(f, "no route from this host: {e}"),
            Transport::Network(e) => write!(f, "network error: {e}"),
            Transport::Malformed(e) => write!(f, "unusable answer: {e}"),
        }
    }
}

/// A query for `name`/`rtype`: DO set; to a resolver (`recursive`) RD and AD set (RFC 6840 §5.7:
/// AD in a query asks for the AD bit in the answer even without DO); to a nameserver RD clear.
pub(crate) fn build_query(name: &Name, rtype: RecordType, recursive: bool) -> Message {
    let mut message = Message::query();
    message.queries.push(Query::query(name.clone(), rtype));
    message.metadata.recursion_desired = recursive;
    message.metadata.authentic_data = recursive;
    message.metadata.checking_disabled = false;
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD).set_dnssec_ok(true);
    message.edns = Some(edns);
    message
}

fn request(message: Message) -> DnsRequest {
    let mut options = DnsRequestOptions::default();
    options.use_edns = true;
    options.edns_payload_len = EDNS_PAYLOAD;
    options.edns_set_dnssec_ok = true;
    options.recursion_desired = message.metadata.recursion_desired;
    DnsRequest::new(message, options)
}

fn transport_error(err: NetError) -> Transport {
    match err {
        NetError::Timeout => Transport::Timeout,
        NetError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            Transport::Refused
        }
        NetError::Io(io) if io.kind() == std::io::ErrorKind::TimedOut => Transport::Timeout,
        NetError::Io(io)
            if matches!(
                io.kind(),
                std::io::ErrorKind::NetworkUnreachable | std::io::ErrorKind::HostUnreachable
            ) =>
        {
            Transport::Unreachable(io.to_string())
        }
        NetError::Proto(p) => Transport::Malformed(p.to_string()),
        other => Transport::Network(other.to_string()),
    }
}

/// Check that `answer` answers `question` (same name, type; a response).
pub(crate) fn check_answer(question: &Message, answer: &Message) -> Result<(), Transport> {
    use hickory_proto::op::MessageType;
    if answer.metadata.message_type != MessageType::Response {
        return Err(Transport::Malformed("not a response".into()));
    }
    let (Some(q), Some(a)) = (question.queries.first(), answer.queries.first()) else {
        return Err(Transport::Malformed("no question section".into()));
    };
    if q.name() != a.name() || q.query_type() != a.query_type() {
        return Err(Transport::Malformed(format!(
            "answer is for {} {}, not {} {}",
            a.name(),
            a.query_type(),
            q.name(),
            q.query_type()
        )));
    }
    Ok(())
}

/// Ask `server` over UDP; when the answer is truncated, again over TCP. One deadline for both.
pub(crate) async fn exchange_udp_tcp(
    server: SocketAddr,
    query: Message,
    timeout: Duration,
) -> Result<Message, Transport> {
    let work = async {
        let provider = TokioRuntimeProvider::new();
        let mut udp = UdpClientStream::builder(server, provider)
            .with_timeout(Some(timeout))
            .build();
        let answer = udp
            .send_message(request(query.clone()))
            .first_answer()
            .await
            .map_err(transport_error)?
            .into_message();
        check_answer(&query, &answer)?;
        if !answer.metadata.truncation {
            return Ok(answer);
        }
        let mut answers = exchange_tcp(server, std::slice::from_ref(&query), timeout).await?;
        answers
            .pop()
            .ok_or_else(|| Transport::Malformed("no answer over TCP".into()))
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(Transport::Timeout))
}

/// Ask `server` the `queries` over one TCP connection, concurrently; the answers in order.
pub(crate) async fn exchange_tcp(
    server: SocketAddr,
    queries: &[Message],
    timeout: Duration,
) -> Result<Vec<Message>, Transport> {
    let work = async {
        // The provider owns the task that drives the connection: keep it until we are done.
        let provider = TokioRuntimeProvider::new();
        let exchange = TcpClientStream::exchange(server, None, timeout, None, provider.clone())
            .await
            .map_err(transport_error)?;
        let mut pending = Vec::with_capacity(queries.len());
        for q in queries {
            pending.push(exchange.send(request(q.clone())).first_answer());
        }
        let mut answers = Vec::with_capacity(queries.len());
        for (q, fut) in queries.iter().zip(pending) {
            let answer = fut.await.map_err(transport_error)?.into_message();
            check_answer(q, &answer)?;
            answers.push(answer);
        }
        drop(exchange);
        drop(provider);
        Ok(answers)
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or(Err(Transport::Timeout))
}
