//! `dane-roll serve`: a Prometheus exporter. The configured targets are checked in the
//! background every `interval` (a scrape never triggers handshakes); `/metrics` serves the
//! exposition of the last run. `/probe?target=host[:port]&timeout=S` checks one ad-hoc target now
//! (blackbox_exporter style) and returns its metrics only. Metrics are built with
//! prometheus-client ([`encode_run`]), routed by axum and served by hyper (the `server`
//! submodule) on the caller's tokio runtime; the server stops on SIGTERM or SIGINT, letting
//! requests in flight finish.
//!
//! Bounded against its clients ([`ServeLimits`]): at most `max_connections` open connections and
//! a header read timeout (`server`); at most `max_probes` `/probe` runs at once over all
//! requests, a request over it waiting [`PROBE_QUEUE_WAIT`] then answered 503 with
//! `Retry-After`; `/probe` refuses (403) a target resolving to a loopback, link-local or private
//! address unless `allow_private_targets` ([`super::fence`]); and, when a [`BearerToken`] is set,
//! every route answers 401 without it.
//!
//! Metrics (gauges unless said otherwise):
//!
//! | name | labels | value |
//! | --- | --- | --- |
//! | `dane_status` | | worst check: 0 ok, 1 warning, 2 critical, 3 unknown |
//! | `dane_check_status` | host, port, check | worst of that check kind for the endpoint (same scale) |
//! | `dane_tlsa_records` | host, port | records at the owner name |
//! | `dane_tlsa_secure` | host, port | 1 when DNSSEC-secure with a usable record |
//! | `dane_tlsa_ttl_seconds` | host, port | TTL of the TLSA RRset |
//! | `dane_rrsig_expiry_timestamp_seconds` | host, port | expiry of the RRSIG over the TLSA RRset |
//! | `dane_endpoint_probe_success` | host, port, address | 1 when a key was seen (the probe could tell) |
//! | `dane_endpoint_match` | host, port, address, algorithm | 1 when that key matches a record |
//! | `dane_cert_expiry_timestamp_seconds` | host, port, address, algorithm | leaf certificate's notAfter |
//! | `dane_mta_sts_policy` | domain, mode | 1 for the mode of the domain's MTA-STS policy (when one was fetched), 0 for the others |
//! | `dane_mta_sts_max_age_seconds` | domain | the policy's `max_age` |
//! | `dane_rollover_phase` | service, slot, phase | 1 for the phase a rollover is in, 0 for the others |
//! | `dane_rollover_phase_read_timestamp_seconds` | | when those phases were read from the store (kept from the last good read when a read fails) |
//! | `dane_tlsrpt_sessions_total` (counter) | result, policy_type | sessions the stored TLS reports count (`result` is `successful` or an RFC 8460 result type) |
//! | `dane_check_duration_seconds` | | how long the run took |
//! | `dane_last_check_timestamp_seconds` | | when it started |
//!
//! Before the first run ends `/metrics` is an empty exposition. There is no run counter: a
//! counter's OpenMetrics family name lacks the `_total` of its sample, which `promtool check
//! metrics` (a Prometheus text-format linter) reports as a metric without help. The one
//! counter, `dane_tlsrpt_sessions_total`, is a total the senders counted (it only grows as
//! reports arrive); it appears once a report is stored.
//!
//! When [`Exporter::accept_tlsrpt`] was given an intake, `POST /tlsrpt` takes TLS reports
//! ([`crate::tlsrpt::http`]) behind the same limits and token.

mod encode;
mod phases;
mod server;

pub use phases::{KnownPhases, RolloverPhase};
pub use server::{BearerToken, DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS};

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;
use serde::Deserialize;
use tokio::sync::Semaphore;

pub use encode::{code, encode_run};
use phases::PhaseReader;

use super::fence::Fence;
use super::{Monitor, RunReport, Target, TargetMode};

/// The content type of the exposition (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The longest `/probe` run allowed, whatever `?timeout=` says.
pub const MAX_PROBE_TIMEOUT: Duration = Duration::from_secs(120);
/// The `/probe` time limit when `?timeout=` is not given.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(30);

/// How many `/probe` runs go at once unless `--max-probes` says otherwise.
pub const DEFAULT_MAX_PROBES: usize = 4;
/// How long a `/probe` request waits for a run to finish before it is answered 503.
pub const PROBE_QUEUE_WAIT: Duration = Duration::from_secs(5);

/// How `serve` bounds the work its clients can cause.
#[derive(Debug, Clone)]
pub struct ServeLimits {
    /// Open connections at most; over it the connection idle the longest is closed.
    pub max_connections: usize,
    /// How long a client may take to send a request head.
    pub header_timeout: Duration,
    /// `/probe` runs at once, over all requests.
    pub max_probes: usize,
    /// Whether `/probe` may connect to loopback, link-local and private addresses.
    pub allow_private_targets: bool,
    /// The token every request must carry, if any.
    pub token: Option<BearerToken>,
}

impl Default for ServeLimits {
    fn default() -> ServeLimits {
        ServeLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            max_probes: DEFAULT_MAX_PROBES,
            allow_private_targets: false,
            token: None,
        }
    }
}

/// Why the exporter stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExporterError {
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}; is another process using it?")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The HTTP server failed.
    #[error("the HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// The signal handlers could not be installed.
    #[error("cannot install the SIGTERM handler: {0}")]
    Signal(#[source] std::io::Error),
}

/// What the exporter runs and serves.
pub struct Exporter {
    monitor: Monitor,
    /// What the schedule checks; replaced whole by [`Exporter::set_targets`] (`--targets`
    /// reloaded on SIGHUP).
    targets: RwLock<Arc<Vec<Target>>>,
    /// Wakes the schedule for a run at once (new targets).
    wake: tokio::sync::Notify,
    interval: Duration,
    /// The rollover phases, read from the store off the runtime.
    phases: PhaseReader,
    last: RwLock<Option<String>>,
    limits: ServeLimits,
    /// The `/probe` runs allowed at once.
    probes: Arc<Semaphore>,
    /// Where `POST /tlsrpt` stores reports, when it is served.
    tlsrpt: OnceLock<Arc<crate::tlsrpt::http::Intake>>,
}

impl Exporter {
    /// Check `targets` with `monitor` every `interval`; rollover phases come from the store in
    /// `state_dir` when given (and readable); serve within `limits`.
    pub fn new(
        monitor: Monitor,
        targets: Vec<Target>,
        interval: Duration,
        state_dir: Option<PathBuf>,
        limits: ServeLimits,
    ) -> Arc<Exporter> {
        Arc::new(Exporter {
            monitor,
            targets: RwLock::new(Arc::new(targets)),
            wake: tokio::sync::Notify::new(),
            interval,
            phases: PhaseReader::new(state_dir),
            last: RwLock::new(None),
            probes: Arc::new(Semaphore::new(limits.max_probes.max(1))),
            limits,
            tlsrpt: OnceLock::new(),
        })
    }

    /// Serve `POST /tlsrpt` too, storing reports through `intake` (set once, before serving).
    pub fn accept_tlsrpt(&self, intake: crate::tlsrpt::http::Intake) {
        let _ = self.tlsrpt.set(Arc::new(intake));
    }

    /// Run the checks once and keep the exposition.
    pub async fn run_once(&self) -> RunReport {
        let targets = self.targets();
        let (run, phases) = tokio::join!(self.monitor.run(&targets), self.phases.refresh());
        let text = encode_run(&run, phases.as_ref());
        if let Ok(mut last) = self.last.write() {
            *last = Some(text);
        }
        run
    }

    /// The targets the schedule checks now.
    pub fn targets(&self) -> Arc<Vec<Target>> {
        match self.targets.read() {
            Ok(t) => Arc::clone(&t),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Check `targets` from now on, starting a run at once (the one under way finishes with
    /// the old list).
    pub fn set_targets(&self, targets: Vec<Target>) {
        let mut slot = self.targets.write().unwrap_or_else(|p| p.into_inner());
        *slot = Arc::new(targets);
        drop(slot);
        self.wake.notify_one();
    }

    /// The schedule: a run now, then one every interval (and one at once after
    /// [`Exporter::set_targets`]), until the task is dropped.
    pub async fn schedule(self: Arc<Exporter>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = self.wake.notified() => ticker.reset(),
            }
            let run = self.run_once().await;
            tracing::info!(
                "serve: {} checks, status {}, {:.2}s",
                run.checks.len(),
                run.status,
                run.elapsed_seconds
            );
        }
    }

    /// The HTTP routes: `/metrics`, `/probe`, and `/` (a short page); each behind the bearer
    /// token when one is set.
    pub fn router(self: &Arc<Exporter>) -> axum::Router {
        let router = axum::Router::new()
            .route("/metrics", get(metrics))
            .route("/probe", get(probe))
            .route("/", get(index))
            .with_state(Arc::clone(self));
        let router = match self.tlsrpt.get() {
            Some(intake) => router.merge(crate::tlsrpt::http::router(Arc::clone(intake))),
            None => router,
        };
        match &self.limits.token {
            Some(token) => router.layer(axum::middleware::from_fn_with_state(
                Arc::new(token.clone()),
                server::require_token,
            )),
            None => router,
        }
    }

    /// Serve on `listener` with the schedule running beside, until `shutdown` completes.
    pub async fn serve<F>(
        self: Arc<Exporter>,
        listener: tokio::net::TcpListener,
        shutdown: F,
    ) -> Result<(), ExporterError>
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let schedule = tokio::spawn(Arc::clone(&self).schedule());
        server::serve(
            listener,
            self.router(),
            self.limits.max_connections,
            self.limits.header_timeout,
            shutdown,
        )
        .await;
        schedule.abort();
        Ok(())
    }
}

/// Completes on SIGTERM or SIGINT.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static, ExporterError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(ExporterError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ExporterError::Signal)?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

async fn index() -> &'static str {
    "dane-roll exporter: /metrics (the configured targets, checked in the background), \
     /probe?target=host[:port][&timeout=S] (one target, checked now)\n"
}

async fn metrics(State(exporter): State<Arc<Exporter>>) -> Response {
    let text = exporter.last.read().ok().and_then(|l| l.clone());
    match text {
        Some(text) => ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response(),
        None => {
            // No run finished yet: an empty exposition.
            let mut out = String::new();
            let _ = encode(&mut out, &Registry::default());
            ([(header::CONTENT_TYPE, CONTENT_TYPE)], out).into_response()
        }
    }
}

/// `/probe` parameters.
#[derive(Debug, Deserialize)]
struct ProbeQuery {
    target: Option<String>,
    timeout: Option<f64>,
}

async fn probe(State(exporter): State<Arc<Exporter>>, Query(query): Query<ProbeQuery>) -> Response {
    let Some(text) = query.target.filter(|t| !t.trim().is_empty()) else {
        return (
            StatusCode::BAD_REQUEST,
            "give ?target=host[:port] or a mail domain\n",
        )
            .into_response();
    };
    let target = match Target::parse(&text, TargetMode::Auto, None) {
        Ok(t) => t,
        Err(err) => return (StatusCode::BAD_REQUEST, format!("{err}\n")).into_response(),
    };
    let deadline = match query.timeout {
        None => DEFAULT_PROBE_TIMEOUT,
        Some(s) => match Duration::try_from_secs_f64(s) {
            Ok(d) if !d.is_zero() => d.min(MAX_PROBE_TIMEOUT),
            _ => {
                return (
                    StatusCode::BAD_REQUEST,
                    "timeout: give a positive number of seconds\n",
                )
                    .into_response();
            }
        },
    };
    // One permit per run over all requests: handshakes and lookups are the cost.
    let waited = tokio::time::timeout(
        PROBE_QUEUE_WAIT,
        Arc::clone(&exporter.probes).acquire_owned(),
    )
    .await;
    let Ok(Ok(_permit)) = waited else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, PROBE_QUEUE_WAIT.as_secs().to_string())],
            format!(
                "busy: {} /probe runs are in progress (serve's --max-probes) and none finished \
                 within {}s; retry later\n",
                exporter.limits.max_probes,
                PROBE_QUEUE_WAIT.as_secs()
            ),
        )
            .into_response();
    };
    let mut monitor = exporter.monitor.with_deadline(deadline);
    let fence = Arc::new(Fence::default());
    if !exporter.limits.allow_private_targets {
        monitor = monitor.fenced(Arc::clone(&fence));
    }
    let run = monitor.run(&[target]).await;
    let refused = fence.refused();
    if !refused.is_empty() {
        let addresses: Vec<String> = refused
            .iter()
            .take(4)
            .map(|r| format!("{} is {} ({})", r.host, r.addr.ip(), r.range))
            .collect();
        return (
            StatusCode::FORBIDDEN,
            format!(
                "refused /probe target \"{text}\": {}; /probe does not connect to loopback, \
                 link-local or private addresses unless serve runs with --allow-private-targets\n",
                addresses.join(", ")
            ),
        )
            .into_response();
    }
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        encode_run(&run, None),
    )
        .into_response()
}
