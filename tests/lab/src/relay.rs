//! A user-space relay that gives loopback a network: per-direction delay, jitter and loss for UDP
//! and TCP between one listening address and one upstream address.
//!
//! ```text
//! client ──▶ 127.53.N.h:P  Relay ──(delay ± jitter, loss)──▶ upstream (BIND, Unbound, Postfix…)
//!        ◀──────────────────────(delay ± jitter, loss)──────
//! ```
//!
//! This machine's kernel has no `sch_netem`, so `tc qdisc … netem` cannot add latency; the relay
//! does it in user space. What it models (docs/LAB.md, "Field conditions", has its measured
//! overhead):
//!
//! - **UDP**: every datagram is delayed by its direction's delay plus a uniform jitter in
//!   `[-jitter, +jitter]` (datagrams may be reordered, as with netem) or dropped with the
//!   direction's loss probability. Each client address gets an upstream socket of its own, so
//!   the server sees one flow per client; a flow idle for [`UDP_IDLE`] is closed.
//! - **TCP**: the kernel completes the client's handshake at once, so the relay charges it: the
//!   upstream connection is opened one and a half round trips after the accept (SYN, SYN-ACK,
//!   ACK), so a server that speaks first (SMTP) is heard two round trips after `connect`, and a
//!   client that speaks first (DNS) gets its answer two round trips after `connect`, as on a
//!   network. Data is delayed per chunk, in order. TCP does not lose data, it retransmits: a
//!   chunk "lost" (with the direction's probability) arrives one retransmission timeout late
//!   ([`TCP_RTO_MIN`] + the round trip), and everything behind it waits (head-of-line
//!   blocking); a lost SYN or SYN-ACK costs the initial timeout of one second (RFC 6298).
//!
//! Loss and jitter come from a seeded PRNG, one stream per flow (seed, flow number, direction),
//! so a run with the same seed and the same order of flows draws the same losses.
//!
//! The relay runs on a tokio runtime of its own, on one thread; [`Relay`] stops it when dropped.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

/// A UDP flow with no datagram either way for this long is closed.
pub const UDP_IDLE: Duration = Duration::from_secs(10);
/// Linux's minimum retransmission timeout: a lost TCP segment costs this plus the round trip.
pub const TCP_RTO_MIN: Duration = Duration::from_millis(200);
/// The initial retransmission timeout (RFC 6298): what a lost SYN or SYN-ACK costs.
pub const TCP_RTO_INITIAL: Duration = Duration::from_secs(1);
/// Largest chunk read and forwarded at once.
const CHUNK: usize = 16 * 1024;
/// Chunks in flight per direction of a TCP connection before reading stops (backpressure).
const TCP_QUEUE: usize = 64;

/// What one direction does to packets.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairment {
    /// One-way delay.
    pub delay: Duration,
    /// Uniform jitter: each packet's delay is `delay ± jitter` (never below zero).
    pub jitter: Duration,
    /// Probability in `[0, 1]` that a packet is lost.
    pub loss: f64,
}

impl Impairment {
    /// `delay`, no jitter, no loss.
    pub fn delay(delay: Duration) -> Impairment {
        Impairment {
            delay,
            ..Impairment::default()
        }
    }
}

/// A relay's settings: where it listens, where it forwards, what each direction suffers.
#[derive(Debug, Clone, Copy)]
pub struct RelayConfig {
    /// Where clients connect (TCP) and send (UDP).
    pub listen: SocketAddr,
    /// Where the relay forwards.
    pub upstream: SocketAddr,
    /// Client to upstream.
    pub outbound: Impairment,
    /// Upstream to client.
    pub inbound: Impairment,
    /// The PRNG seed.
    pub seed: u64,
    /// Relay TCP.
    pub tcp: bool,
    /// Relay UDP.
    pub udp: bool,
}

impl RelayConfig {
    /// Both protocols, a round trip of `rtt` (half each way), `loss` each way, seed 1.
    pub fn symmetric(listen: SocketAddr, upstream: SocketAddr, rtt: Duration, loss: f64) -> Self {
        let one_way = Impairment {
            delay: rtt / 2,
            jitter: Duration::ZERO,
            loss,
        };
        RelayConfig {
            listen,
            upstream,
            outbound: one_way,
            inbound: one_way,
            seed: 1,
            tcp: true,
            udp: true,
        }
    }

    /// The round trip without jitter or loss.
    pub fn rtt(&self) -> Duration {
        self.outbound.delay + self.inbound.delay
    }
}

/// What the relay did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RelayStats {
    /// UDP datagrams passed on (both directions).
    pub udp_forwarded: u64,
    /// UDP datagrams dropped (both directions).
    pub udp_dropped: u64,
    /// TCP connections accepted.
    pub tcp_connections: u64,
    /// TCP chunks passed on (both directions).
    pub tcp_chunks: u64,
    /// TCP chunks and handshake packets delayed by a retransmission timeout.
    pub tcp_retransmits: u64,
    /// TCP connections whose upstream could not be reached.
    pub upstream_errors: u64,
}

#[derive(Debug, Default)]
struct Counters {
    udp_forwarded: AtomicU64,
    udp_dropped: AtomicU64,
    tcp_connections: AtomicU64,
    tcp_chunks: AtomicU64,
    tcp_retransmits: AtomicU64,
    upstream_errors: AtomicU64,
    flows: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// A running relay; stopped (every task and socket closed) when dropped.
#[derive(Debug)]
pub struct Relay {
    config: RelayConfig,
    counters: Arc<Counters>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Relay {
    /// Bind the listening sockets and start relaying.
    pub fn start(config: RelayConfig) -> io::Result<Relay> {
        for (name, imp) in [("outbound", config.outbound), ("inbound", config.inbound)] {
            if !(0.0..=1.0).contains(&imp.loss) {
                return Err(io::Error::other(format!(
                    "relay: {name} loss {} is not a probability in [0, 1]",
                    imp.loss
                )));
            }
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let counters = Arc::new(Counters::default());
        let (tcp, udp) = runtime.block_on(async {
            let tcp = match config.tcp {
                true => Some(TcpListener::bind(config.listen).await?),
                false => None,
            };
            let udp = match config.udp {
                true => Some(UdpSocket::bind(config.listen).await?),
                false => None,
            };
            io::Result::Ok((tcp, udp))
        })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let c = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name(format!("relay {}", config.listen))
            .spawn(move || {
                runtime.block_on(async move {
                    if let Some(listener) = tcp {
                        tokio::spawn(serve_tcp(listener, config, Arc::clone(&c)));
                    }
                    if let Some(socket) = udp {
                        tokio::spawn(serve_udp(socket, config, Arc::clone(&c)));
                    }
                    let _ = stopped.await;
                });
                // Dropping the runtime cancels every task and closes every socket.
                drop(runtime);
            })?;
        Ok(Relay {
            config,
            counters,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.config.listen
    }

    /// The settings.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// What the relay did so far.
    pub fn stats(&self) -> RelayStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        RelayStats {
            udp_forwarded: get(&c.udp_forwarded),
            udp_dropped: get(&c.udp_dropped),
            tcp_connections: get(&c.tcp_connections),
            tcp_chunks: get(&c.tcp_chunks),
            tcp_retransmits: get(&c.tcp_retransmits),
            upstream_errors: get(&c.upstream_errors),
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The PRNG of one direction of one flow.
fn flow_rng(seed: u64, flow: u64, direction: u64) -> SmallRng {
    SmallRng::seed_from_u64(
        seed ^ flow.wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ direction.wrapping_mul(0xD1B5_4A32_D192_ED03),
    )
}

/// One packet's delay in `imp`'s direction, jitter drawn from `rng`.
fn one_delay(imp: &Impairment, rng: &mut SmallRng) -> Duration {
    if imp.jitter.is_zero() {
        return imp.delay;
    }
    let j = imp.jitter.as_secs_f64();
    let d = imp.delay.as_secs_f64() + rng.random_range(-j..=j);
    Duration::from_secs_f64(d.max(0.0))
}

fn lost(imp: &Impairment, rng: &mut SmallRng) -> bool {
    imp.loss > 0.0 && rng.random_bool(imp.loss)
}

/// Run `send` after `delay`: at once when there is none (tokio's timer ticks in milliseconds,
/// so even a zero sleep would add one), else on a task of its own, so that later packets are not
/// held behind it.
async fn later(delay: Duration, send: impl std::future::Future<Output = ()> + Send + 'static) {
    if delay.is_zero() {
        send.await;
    } else {
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            send.await;
        });
    }
}

// ----- UDP -----

async fn serve_udp(socket: UdpSocket, config: RelayConfig, counters: Arc<Counters>) {
    let socket = Arc::new(socket);
    // Per client: the sender to its flow (which owns the upstream socket).
    let flows: Arc<Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>>> = Arc::default();
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, client)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let datagram = buf[..n].to_vec();
        let existing = flows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&client)
            .cloned();
        let tx = match existing {
            Some(tx) if !tx.is_closed() => tx,
            _ => {
                let (tx, rx) = mpsc::unbounded_channel();
                flows
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(client, tx.clone());
                let flow = counters.flows.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(udp_flow(
                    client,
                    rx,
                    Arc::clone(&socket),
                    Arc::clone(&flows),
                    config,
                    flow,
                    Arc::clone(&counters),
                ));
                tx
            }
        };
        let _ = tx.send(datagram);
    }
}

/// One client's flow: its datagrams to upstream (delayed, dropped), upstream's answers back.
async fn udp_flow(
    client: SocketAddr,
    mut from_client: mpsc::UnboundedReceiver<Vec<u8>>,
    listener: Arc<UdpSocket>,
    flows: Arc<Mutex<HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>>>>,
    config: RelayConfig,
    flow: u64,
    counters: Arc<Counters>,
) {
    let bind: SocketAddr = match config.upstream {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let upstream = match UdpSocket::bind(bind).await {
        Ok(s) if s.connect(config.upstream).await.is_ok() => Arc::new(s),
        _ => {
            Counters::add(&counters.upstream_errors);
            flows
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&client);
            return;
        }
    };
    let mut out_rng = flow_rng(config.seed, flow, 0);
    let mut in_rng = flow_rng(config.seed, flow, 1);
    let mut buf = vec![0u8; 65_536];
    loop {
        tokio::select! {
            got = from_client.recv() => {
                let Some(datagram) = got else { break };
                if lost(&config.outbound, &mut out_rng) {
                    Counters::add(&counters.udp_dropped);
                    continue;
                }
                let delay = one_delay(&config.outbound, &mut out_rng);
                let (up, c) = (Arc::clone(&upstream), Arc::clone(&counters));
                later(delay, async move {
                    if up.send(&datagram).await.is_ok() {
                        Counters::add(&c.udp_forwarded);
                    }
                })
                .await;
            }
            got = upstream.recv(&mut buf) => {
                let Ok(n) = got else { continue };
                if lost(&config.inbound, &mut in_rng) {
                    Counters::add(&counters.udp_dropped);
                    continue;
                }
                let delay = one_delay(&config.inbound, &mut in_rng);
                let datagram = buf[..n].to_vec();
                let (l, c) = (Arc::clone(&listener), Arc::clone(&counters));
                later(delay, async move {
                    if l.send_to(&datagram, client).await.is_ok() {
                        Counters::add(&c.udp_forwarded);
                    }
                })
                .await;
            }
            () = tokio::time::sleep(UDP_IDLE) => break,
        }
    }
    // Idle or closed: the next datagram from this client starts a new flow.
    flows
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&client);
}

// ----- TCP -----

async fn serve_tcp(listener: TcpListener, config: RelayConfig, counters: Arc<Counters>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        Counters::add(&counters.tcp_connections);
        let flow = counters.flows.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(tcp_connection(client, config, flow, Arc::clone(&counters)));
    }
}

/// One connection: the handshake charged, then both directions pumped with their delays.
async fn tcp_connection(
    client: TcpStream,
    config: RelayConfig,
    flow: u64,
    counters: Arc<Counters>,
) {
    let accepted = Instant::now();
    let mut out_rng = flow_rng(config.seed, flow, 0);
    let mut in_rng = flow_rng(config.seed, flow, 1);
    // SYN (out), SYN-ACK (in), ACK (out): the server hears the client 1.5 round trips after its
    // connect began.
    let mut handshake = one_delay(&config.outbound, &mut out_rng)
        + one_delay(&config.inbound, &mut in_rng)
        + one_delay(&config.outbound, &mut out_rng);
    for (imp, rng) in [
        (&config.outbound, &mut out_rng),
        (&config.inbound, &mut in_rng),
    ] {
        if lost(imp, rng) {
            handshake += TCP_RTO_INITIAL;
            Counters::add(&counters.tcp_retransmits);
        }
    }
    let _ = client.set_nodelay(true);
    let (client_read, client_write) = client.into_split();
    // Read the client from the start (it may speak first), deliver once upstream is there.
    let (out_tx, out_rx) = mpsc::channel(TCP_QUEUE);
    let reader = tokio::spawn(read_chunks(
        client_read,
        out_tx,
        config.outbound,
        config.rtt(),
        out_rng,
        Arc::clone(&counters),
    ));
    if !handshake.is_zero() {
        tokio::time::sleep_until(accepted + handshake).await;
    }
    let upstream = match TcpStream::connect(config.upstream).await {
        Ok(s) => s,
        Err(_) => {
            Counters::add(&counters.upstream_errors);
            reader.abort();
            return;
        }
    };
    let _ = upstream.set_nodelay(true);
    let (up_read, up_write) = upstream.into_split();
    let (in_tx, in_rx) = mpsc::channel(TCP_QUEUE);
    let up_reader = tokio::spawn(read_chunks(
        up_read,
        in_tx,
        config.inbound,
        config.rtt(),
        in_rng,
        Arc::clone(&counters),
    ));
    let to_upstream = write_chunks(out_rx, up_write, Arc::clone(&counters));
    let to_client = write_chunks(in_rx, client_write, Arc::clone(&counters));
    tokio::join!(to_upstream, to_client);
    reader.abort();
    up_reader.abort();
}

/// A chunk and when it is due at the other side (`None`: the end of the stream).
type Timed = (Instant, Option<Vec<u8>>);

/// Read `from` in chunks, stamping each with its due time (in order: never before the chunk
/// ahead of it); a lost chunk is due a retransmission timeout later.
async fn read_chunks(
    mut from: tokio::net::tcp::OwnedReadHalf,
    to: mpsc::Sender<Timed>,
    imp: Impairment,
    rtt: Duration,
    mut rng: SmallRng,
    counters: Arc<Counters>,
) {
    let mut last_due = Instant::now();
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = from.read(&mut buf).await.unwrap_or(0);
        let mut due = Instant::now() + one_delay(&imp, &mut rng);
        if n > 0 && lost(&imp, &mut rng) {
            due += TCP_RTO_MIN + rtt;
            Counters::add(&counters.tcp_retransmits);
        }
        due = due.max(last_due);
        last_due = due;
        let chunk = (n > 0).then(|| buf[..n].to_vec());
        let end = chunk.is_none();
        if to.send((due, chunk)).await.is_err() || end {
            return;
        }
    }
}

/// Write chunks at their due times; at the end of the stream, shut the write side down.
async fn write_chunks(
    mut from: mpsc::Receiver<Timed>,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    counters: Arc<Counters>,
) {
    while let Some((due, chunk)) = from.recv().await {
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        match chunk {
            Some(bytes) => {
                if to.write_all(&bytes).await.is_err() {
                    return;
                }
                Counters::add(&counters.tcp_chunks);
            }
            None => break,
        }
    }
    let _ = to.shutdown().await;
}

#[cfg(test)]
mod tests;
