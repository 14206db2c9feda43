//! The monitoring checklist as pure functions: each takes what DNS and the probe said and returns
//! [`Check`]s, with a status on the Nagios scale, a stable id (the alert key) and the words for a
//! postmaster. No I/O here: [`super::Monitor`] gathers the
//! answers, these functions judge them, so every rule is unit-tested without a lab.
//!
//! The severities follow what a DANE sender does (RFC 7672): no DANE at all (no TLSA, insecure
//! records or an insecure MX RRset) is a warning, "DANE not in effect", since senders fall back
//! to unauthenticated TLS; a SERVFAIL on the TLSA RRset, or a live chain that matches no record,
//! is critical, since senders defer mail.
//!
//! Here: [`Check`] and its scale; the rules by what they look at: `lookups` (resolver, MX,
//! addresses, `_tcp` parent), `tlsa` (the RRset), `chain` (the live chain on each address),
//! `beside` (TLSRPT and MTA-STS, beside DANE).

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::config::Endpoint;
use crate::notify::{Severity, check_id};
use crate::tlsa::TlsaRecord;

use super::report::severity_word;

mod anchor;
mod beside;
mod chain;
mod lookups;
mod tlsa;

pub use anchor::{cert_lifetime, tlsa_anchor};
pub use beside::{mta_sts, mta_sts_mx, tlsrpt};

pub use chain::{
    cert_expiry, endpoint_verdict, keys_by_algorithm, not_after_secs, parse_rfc3339, tlsa_match,
};
pub use lookups::{Validation, addresses, mx_secure, resolver, tcp_parent};
pub use tlsa::{
    RETIRING_TTLS, rrsig_expiry, tlsa_records, tlsa_secure, tlsa_stale, tlsa_stale_retiring,
    tlsa_ttl, usable,
};

const DAY: u64 = 86_400;

/// What a check looks at; its kebab-case name is the first part of the check id and the `check`
/// label of `dane_check_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// The resolver validates DNSSEC (the whole run depends on it).
    Resolver,
    /// The name given exists and could be looked up.
    Target,
    /// The domain's MX RRset is DNSSEC-secure.
    MxSecure,
    /// The host has addresses, and they are DNSSEC-secure.
    Addresses,
    /// The TLSA RRset exists, is secure and has a record usable for SMTP.
    TlsaSecure,
    /// `_tcp.<host>` is not NXDOMAIN or bogus (the empty non-terminal pitfall).
    TcpParent,
    /// The record count is within the bound and there are no duplicates.
    TlsaRecords,
    /// No record matches nothing that is served (stale records).
    TlsaStale,
    /// The RRSIG over the TLSA RRset does not expire soon.
    RrsigExpiry,
    /// The TTL of the TLSA RRset is in the advised range (a note only).
    TlsaTtl,
    /// The live chain on an address matches a usable record, for every key algorithm found.
    TlsaMatch,
    /// The served certificates do not expire soon.
    CertExpiry,
    /// No DANE-TA record pins an intermediate the CA may rotate.
    TlsaAnchor,
    /// A short-lived certificate has a next key published ahead (the wait is a small share).
    CertLifetime,
    /// The mail domain publishes a usable TLSRPT record (RFC 8460).
    Tlsrpt,
    /// The mail domain's MTA-STS record and policy, when it has one (RFC 8461).
    MtaSts,
    /// The endpoint under its domains' MTA-STS policies: covered, certificate valid under the
    /// Web PKI.
    MtaStsMx,
}

impl CheckKind {
    /// The kebab-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckKind::Resolver => "resolver",
            CheckKind::Target => "target",
            CheckKind::MxSecure => "mx-secure",
            CheckKind::Addresses => "addresses",
            CheckKind::TlsaSecure => "tlsa-secure",
            CheckKind::TcpParent => "tcp-parent",
            CheckKind::TlsaRecords => "tlsa-records",
            CheckKind::TlsaStale => "tlsa-stale",
            CheckKind::RrsigExpiry => "rrsig-expiry",
            CheckKind::TlsaTtl => "tlsa-ttl",
            CheckKind::TlsaMatch => "tlsa-match",
            CheckKind::CertExpiry => "cert-expiry",
            CheckKind::TlsaAnchor => "tlsa-anchor",
            CheckKind::CertLifetime => "cert-lifetime",
            CheckKind::Tlsrpt => "tlsrpt",
            CheckKind::MtaSts => "mta-sts",
            CheckKind::MtaStsMx => "mta-sts-mx",
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// The stable key: `KIND/HOST:PORT[/ADDRESS]`, `KIND/DOMAIN` or `resolver/ADDR`.
    pub id: String,
    /// What was checked.
    pub kind: CheckKind,
    /// What it is about, for people: `example.com`, `mail.example.com:25`, …
    pub subject: String,
    /// The host (or domain) name, when the check is about one.
    pub host: Option<String>,
    /// The port, when the check is about an endpoint.
    pub port: Option<u16>,
    /// The address, when the check is about one.
    pub address: Option<IpAddr>,
    /// `ok`, `warning`, `critical` or `unknown`.
    #[serde(serialize_with = "severity_word")]
    pub status: Severity,
    /// One line: what was found.
    pub message: String,
    /// An additional remark that does not change the status (e.g. a TTL outside the advised range).
    pub note: Option<String>,
}

impl Check {
    fn new(
        kind: CheckKind,
        id: String,
        subject: String,
        status: Severity,
        message: String,
    ) -> Check {
        Check {
            id,
            kind,
            subject,
            host: None,
            port: None,
            address: None,
            status,
            message,
            note: None,
        }
    }

    /// A check about an endpoint (host and port), or one of its addresses.
    pub fn endpoint(
        kind: CheckKind,
        ep: &Endpoint,
        address: Option<IpAddr>,
        status: Severity,
        message: impl Into<String>,
    ) -> Check {
        let mut check = Check::new(
            kind,
            check_id(kind.as_str(), &ep.host, ep.port, address),
            format!("{}:{}", ep.host, ep.port),
            status,
            message.into(),
        );
        check.host = Some(ep.host.clone());
        check.port = Some(ep.port);
        check.address = address;
        check
    }

    /// A check about a name (a mail domain, or a target that could not be resolved).
    pub fn name(
        kind: CheckKind,
        name: &str,
        status: Severity,
        message: impl Into<String>,
    ) -> Check {
        let mut check = Check::new(
            kind,
            format!("{}/{name}", kind.as_str()),
            name.to_string(),
            status,
            message.into(),
        );
        check.host = Some(name.to_string());
        check
    }

    /// The same check with a note.
    pub fn with_note(mut self, note: impl Into<String>) -> Check {
        self.note = Some(note.into());
        self
    }
}

/// How bad, for "the worst wins": critical > unknown > warning > ok. An unknown outcome may hide
/// a failure, so it ranks above a warning (Icinga's order for the worst state).
pub fn rank(s: Severity) -> u8 {
    match s {
        Severity::Ok => 0,
        Severity::Warning => 1,
        Severity::Unknown => 2,
        Severity::Critical => 3,
    }
}

/// The worst of some statuses; ok when there are none.
pub fn worst<I: IntoIterator<Item = Severity>>(statuses: I) -> Severity {
    statuses
        .into_iter()
        .max_by_key(|s| rank(*s))
        .unwrap_or(Severity::Ok)
}

/// A record in short: `3 1 1 ab12cd34…`.
pub fn short(record: &TlsaRecord) -> String {
    let text = record.to_string();
    match text.char_indices().nth(22) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// Seconds since the epoch (negative before it).
pub fn epoch_secs(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// A duration in days, for messages.
pub fn days(d: Duration) -> f64 {
    d.as_secs_f64() / DAY as f64
}

#[cfg(test)]
mod tests;
