//! Monitoring: the DANE checklist (a validating resolver; the MX RRset, the addresses and the
//! TLSA RRset secure; a usable record, not too many, none stale; the `_tcp` parent; RRSIG expiry
//! and TTL; the live chain matching a record; certificate expiry) run against mail domains and
//! endpoints, for `dane-roll check` (one run, text, JSON or Nagios output) and `dane-roll serve`
//! (a Prometheus exporter running the same checks on a schedule).
//!
//! - `targets`: [`Target`], what to check: a mail domain (its MX hosts, port 25) or one endpoint;
//! - `run`: [`Monitor`], one resolver and one prober (OpenSSL contexts built once) for a whole
//!   run; [`Monitor::run`] asks DNS per endpoint (cheap, many at once) and probes each endpoint's
//!   addresses as soon as its answers are in, all within one deadline (`tasks`: the fan-out that
//!   keeps the order);
//! - [`beside`]: what a mail domain publishes beside DANE (TLSRPT, MTA-STS and its policy) and
//!   the Web PKI verdict MTA-STS needs of each MX certificate;
//! - `judge`: one endpoint's answers and probes turned into its checks, by the rules of [`checks`];
//! - [`report`]: the [`RunReport`] and its renderings for people, scripts and Nagios/Icinga;
//! - [`exporter`]: the metrics and the HTTP server of `serve`; [`fence`]: the addresses its
//!   `/probe` may not connect to;
//! - [`targets_file`]: `serve --targets FILE`, extra targets read from a file and again on
//!   SIGHUP;
//! - [`alerts`]: one [`crate::notify::Alert`] per endpoint (its incident: every failing check
//!   named) and per check about a name, sent through the firing policy; the alerts no longer
//!   made are closed.
//!
//! A target without `:port` or `/protocol` is a mail domain when it has an MX RRset, a host
//! otherwise ([`TargetMode`] forces one reading). A resolver that does not validate makes the
//! whole run UNKNOWN: its answers cannot say whether DANE is in effect.

pub mod alerts;
pub mod beside;
pub mod checks;
pub mod exporter;
pub mod fence;
mod judge;
pub mod report;
mod run;
mod targets;
pub mod targets_file;
mod tasks;

pub use checks::{Check, CheckKind, Validation, worst};
pub use report::{DomainReport, EndpointReport, MxEntry, RecordSet, RecordSource, RunReport};
pub use run::{
    DEFAULT_CHECK_CONCURRENCY, DEFAULT_CONCURRENCY, DEFAULT_DEADLINE, DEFAULT_SERVE_CONCURRENCY,
    DNS_CONCURRENCY, Monitor, MonitorOptions,
};
pub use targets::{MonitorError, Target, TargetMode};
