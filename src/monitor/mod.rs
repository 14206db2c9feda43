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
//! - `judge`: one endpoint's answers and probes turned into its checks, by the rules of [`checks`];
//! - [`report`]: the [`RunReport`] and its renderings for people, scripts and Nagios/Icinga;
//! - [`exporter`]: the metrics and the HTTP server of `serve`; [`fence`]: the addresses its
//!   `/probe` may not connect to;
//! - [`alerts`]: each check as an [`crate::notify::Alert`], sent through the firing policy; the
//!   alerts of checks no longer made are closed.
//!
//! A target without `:port` or `/protocol` is a mail domain when it has an MX RRset, a host
//! otherwise ([`TargetMode`] forces one reading). A resolver that does not validate makes the
//! whole run UNKNOWN: its answers cannot say whether DANE is in effect.

pub mod alerts;
pub mod checks;
pub mod exporter;
pub mod fence;
mod judge;
pub mod report;
mod run;
mod targets;
mod tasks;

pub use checks::{Check, CheckKind, Validation, worst};
pub use report::{DomainReport, EndpointReport, MxEntry, RecordSet, RecordSource, RunReport};
pub use run::{
    DEFAULT_CHECK_CONCURRENCY, DEFAULT_CONCURRENCY, DEFAULT_DEADLINE, DEFAULT_SERVE_CONCURRENCY,
    DNS_CONCURRENCY, Monitor, MonitorOptions,
};
pub use targets::{MonitorError, Target, TargetMode};
