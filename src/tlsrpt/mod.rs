//! SMTP TLS reports (RFC 8460): what sending MTAs saw when they delivered to our MX hosts, tied
//! to the rollover journal.
//!
//! - [`parse`]: one report from what a sender delivers (a report mail, a bare JSON or gzip
//!   report, an HTTPS POST body), bounded in size before and after decompression;
//! - [`quirks`]: what the large senders' reports need before the RFC 8460 types of `mail-auth`
//!   read them (each quirk says which sender and why);
//! - [`records`]: the TLSA set a sender saw, from a `tlsa` policy's `policy-string`;
//! - [`journal`]: the store's history (services, rollovers and their phases, our records) as a
//!   report's window sees it;
//! - [`tie`]: one failure tied to the journal: service, owner name, rollover and phase, and
//!   whether the set the sender saw was ours;
//! - [`summary`]: what `dane-roll reports` shows (per day, organisation, result, rollover);
//! - [`maildir`]: reading a Maildir once per message;
//! - [`intake`]: storing a parsed report once and alerting on DANE failures, shared by
//!   `tlsrpt ingest` and `serve`'s `POST /tlsrpt` ([`http`]).

pub mod http;
pub mod intake;
pub mod journal;
pub mod maildir;
pub mod parse;
pub mod quirks;
pub mod records;
pub mod summary;
#[cfg(test)]
mod tests;
pub mod tie;

pub use parse::{MAX_INPUT, MAX_JSON, Report, ReportError, parse_report, read_bounded};

/// The result types that are DANE failures (RFC 8460 §4.3.2.1): the ones that alert.
pub const DANE_FAILURES: [&str; 3] = ["tlsa-invalid", "dnssec-invalid", "dane-required"];
