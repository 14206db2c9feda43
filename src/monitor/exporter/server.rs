//! The HTTP server of `serve`, bounded against its clients: at most `max_connections` open
//! connections, each closed when it has not sent a whole request head within `header_timeout`
//! (slowloris), and a bearer token on every route when one is configured.
//!
//! axum's own `serve` has neither a connection bound nor a header timeout (it gives hyper no
//! timer), so connections are served here with hyper's HTTP/1 server, which has both the header
//! read timeout and graceful shutdown (hyper-util). The connection bound is written by hand
//! because no kept crate sheds load the way a scrape target needs: a new connection over the bound
//! does not wait in the kernel's queue behind thousands of slow ones (a scrape would then time
//! out); the connection idle the longest (no request in progress, a slow head included) is closed
//! to make room for it. Only when every connection is busy with a request is the new one closed.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::Notify;
use tower::ServiceExt;

/// How many connections are open at most unless `--max-connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;
/// How long a client may take to send a request head unless `--header-timeout` says otherwise.
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connections in flight may finish after SIGTERM.
const DRAIN: Duration = Duration::from_secs(10);
/// The read buffer of one connection, at most (hyper's default is about 400 KiB); a request
/// head larger than this is refused with 431.
const MAX_BUF: usize = 64 * 1024;

/// The bearer token every request must carry, kept as its SHA-256 digest only: the token itself
/// is not held, so it cannot be logged, and digests of equal length are compared in constant
/// time.
#[derive(Clone)]
pub struct BearerToken {
    digest: [u8; 32],
}

impl BearerToken {
    /// The token clients must send as `Authorization: Bearer TOKEN`.
    pub fn new(token: &str) -> BearerToken {
        BearerToken {
            digest: openssl::sha::sha256(token.as_bytes()),
        }
    }

    /// Whether `given` is the token, in time independent of where they differ.
    pub fn matches(&self, given: &[u8]) -> bool {
        openssl::memcmp::eq(&openssl::sha::sha256(given), &self.digest)
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BearerToken(***)")
    }
}

/// Refuse a request without the bearer token: 401 with `WWW-Authenticate: Bearer`.
pub(super) async fn require_token(
    axum::extract::State(token): axum::extract::State<Arc<BearerToken>>,
    request: Request<axum::body::Body>,
    next: Next,
) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes)
        .and_then(|v| {
            let (scheme, rest) = v.split_at_checked(7)?;
            scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
        });
    match given {
        Some(given) if token.matches(given) => next.run(request).await,
        _ => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer realm=\"dane-roll\"")],
            "missing or wrong bearer token: send Authorization: Bearer <token> (the token of \
             serve's --token-file or --token-env)\n",
        )
            .into_response(),
    }
}

/// One open connection.
struct Slot {
    /// Requests in progress on it.
    busy: usize,
    /// Since when it has had no request in progress.
    idle_since: Instant,
    /// Told to close it.
    evict: Arc<Notify>,
}

/// The open connections, at most `max`.
struct Connections {
    max: usize,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    next: u64,
    open: HashMap<u64, Slot>,
}

/// A connection's place in the table, freed on drop.
struct Admitted {
    connections: Arc<Connections>,
    id: u64,
    evict: Arc<Notify>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if let Ok(mut table) = self.connections.table.lock() {
            table.open.remove(&self.id);
        }
    }
}

/// A request in progress on a connection; the connection is idle again on drop.
struct Busy {
    connections: Arc<Connections>,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut table) = self.connections.table.lock()
            && let Some(slot) = table.open.get_mut(&self.id)
        {
            slot.busy = slot.busy.saturating_sub(1);
            if slot.busy == 0 {
                slot.idle_since = Instant::now();
            }
        }
    }
}

impl Connections {
    /// A place for a new connection: over the bound, the connection idle the longest is told
    /// to close and gives its place; `None` when every connection is busy.
    fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut table = self.table.lock().ok()?;
        if table.open.len() >= self.max {
            let victim = table
                .open
                .iter()
                .filter(|(_, slot)| slot.busy == 0)
                .min_by_key(|(_, slot)| slot.idle_since)
                .map(|(id, _)| *id)?;
            if let Some(slot) = table.open.remove(&victim) {
                slot.evict.notify_one();
            }
        }
        let id = table.next;
        table.next += 1;
        let evict = Arc::new(Notify::new());
        table.open.insert(
            id,
            Slot {
                busy: 0,
                idle_since: Instant::now(),
                evict: Arc::clone(&evict),
            },
        );
        Some(Admitted {
            connections: Arc::clone(self),
            id,
            evict,
        })
    }

    /// A request starts on connection `id`.
    fn busy(self: &Arc<Self>, id: u64) -> Busy {
        if let Ok(mut table) = self.table.lock()
            && let Some(slot) = table.open.get_mut(&id)
        {
            slot.busy += 1;
        }
        Busy {
            connections: Arc::clone(self),
            id,
        }
    }
}

/// Serve `router` on `listener` until `shutdown` completes, then let the requests in flight
/// finish (at most [`DRAIN`]).
pub(super) async fn serve<F>(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    max_connections: usize,
    header_timeout: Duration,
    shutdown: F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let connections = Arc::new(Connections {
        max: max_connections.max(1),
        table: Mutex::new(Table::default()),
    });
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .max_buf_size(MAX_BUF);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(err) => {
                    // Out of file descriptors (EMFILE) and the like: wait, or the loop spins.
                    if !matches!(
                        err.kind(),
                        std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                    ) {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Some(admitted) = connections.admit() else {
            continue; // every connection is busy: this one is closed at once
        };
        let _ = stream.set_nodelay(true);
        let (router, connections, id) = (router.clone(), Arc::clone(&connections), admitted.id);
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            let busy = connections.busy(id);
            let router = router.clone();
            async move {
                let response = router.oneshot(request).await;
                drop(busy);
                response
            }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            tokio::select! {
                _ = connection => {}
                () = admitted.evict.notified() => {}
            }
            drop(admitted);
        });
        // Let the connections run before the next accept: a client whose request head is
        // already here becomes busy (not to be closed) before a burst of new connections could
        // push it out as the longest idle.
        tokio::task::yield_now().await;
    }
    drop(listener);
    let _ = tokio::time::timeout(DRAIN, graceful.shutdown()).await;
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use super::{BearerToken, Connections, Table};

    fn connections(max: usize) -> Arc<Connections> {
        Arc::new(Connections {
            max,
            table: Mutex::new(Table::default()),
        })
    }

    #[test]
    fn the_token_matches_only_itself() {
        let token = BearerToken::new("s3cret-token");
        assert!(token.matches(b"s3cret-token"));
        assert!(!token.matches(b"s3cret-tokeN"));
        assert!(!token.matches(b""));
        assert!(!format!("{token:?}").contains("s3cret"));
    }

    #[test]
    fn over_the_bound_the_longest_idle_connection_gives_way() {
        let c = connections(2);
        let first = c.admit().unwrap();
        std::thread::sleep(Duration::from_millis(2));
        let second = c.admit().unwrap();
        let _busy = c.busy(second.id);
        let third = c.admit().unwrap();
        // The first (idle) was told to close; the busy second stays.
        let table = c.table.lock().unwrap();
        assert!(!table.open.contains_key(&first.id));
        assert!(table.open.contains_key(&second.id));
        assert!(table.open.contains_key(&third.id));
    }

    #[test]
    fn when_every_connection_is_busy_a_new_one_is_refused() {
        let c = connections(1);
        let only = c.admit().unwrap();
        let busy = c.busy(only.id);
        assert!(c.admit().is_none());
        drop(busy);
        assert!(c.admit().is_some());
    }
}
