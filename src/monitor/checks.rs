//! The monitoring checklist (DOMAIN.md, "Monitoring checklist") as pure functions: each takes
//! what DNS and the probe said and returns [`Check`]s, with a status on the Nagios scale, a stable
//! id (the alert key) and the words for a postmaster. No I/O here: [`super::Monitor`] gathers the
//! answers, these functions judge them, so every rule is unit-tested without a lab.
//!
//! The severities follow what a DANE sender does (RFC 7672): no DANE at all (no TLSA, insecure
//! records or an insecure MX RRset) is a warning, "DANE not in effect", since senders fall back
//! to unauthenticated TLS; a SERVFAIL on the TLSA RRset, or a live chain that matches no record,
//! is critical, since senders defer mail.

use std::collections::HashSet;
use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

use crate::config::{ADVISED_TTL, Endpoint};
use crate::dns::{Lookup, MxHost, Status as DnsStatus, TcpParent, ValidationProbe};
use crate::notify::{Severity, check_id};
use crate::probe::{AddressReport, KeyAlgorithm, KeyReport, Verdict};
use crate::rollover::KeyHash;
use crate::tlsa::{TlsaRecord, Usage};

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

fn severity_word<S: Serializer>(s: &Severity, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(s.as_str())
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

/// What the resolver check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    /// AD seen: answers can be trusted.
    Validating,
    /// Only unsigned names were asked: whether it validates cannot be told (no AD expected).
    Undetermined,
    /// It does not validate, or cannot be used: the run is UNKNOWN.
    Unusable(String),
}

/// Judge the resolver from validation probes of the run's names (see
/// [`crate::dns::Resolver::probe_validation`]): one AD is enough; a resolver that does not recurse
/// or returns signed data without AD does not validate; errors everywhere mean it cannot be used.
pub fn resolver(addr: &str, probes: &[Result<ValidationProbe, String>]) -> (Check, Validation) {
    let id_check = |status, message: String| {
        Check::new(
            CheckKind::Resolver,
            format!("resolver/{addr}"),
            format!("resolver {addr}"),
            status,
            message,
        )
    };
    if probes
        .iter()
        .any(|p| p.as_ref().is_ok_and(ValidationProbe::is_validating))
    {
        return (
            id_check(
                Severity::Ok,
                format!("the resolver {addr} validates DNSSEC (AD set)"),
            ),
            Validation::Validating,
        );
    }
    let bad = probes.iter().find_map(|p| match p {
        Ok(v @ (ValidationProbe::NotRecursive | ValidationProbe::NoAdOnSignedData)) => {
            Some(v.to_string())
        }
        _ => None,
    });
    if let Some(why) = bad {
        let message = format!("cannot trust the resolver {addr}: {why}");
        return (
            id_check(Severity::Unknown, message.clone()),
            Validation::Unusable(message),
        );
    }
    if let Some(Err(err)) = probes.iter().find(|p| p.is_err())
        && probes.iter().all(|p| p.is_err())
    {
        let message = format!("cannot use the resolver {addr}: {err}");
        return (
            id_check(Severity::Unknown, message.clone()),
            Validation::Unusable(message),
        );
    }
    (
        id_check(
            Severity::Ok,
            format!("the resolver {addr} answers (no signed name asked, so no AD expected)"),
        )
        .with_note(
            "none of the names checked is in a signed zone, so whether the resolver validates \
             could not be told",
        ),
        Validation::Undetermined,
    )
}

/// The MX RRset of a mail domain. A null MX (RFC 7505) is ok: the domain takes no mail.
pub fn mx_secure(domain: &str, lookup: &Lookup<MxHost>) -> Check {
    let hosts = lookup.records.len();
    let null = hosts == 1 && lookup.records[0].host.is_root();
    let (status, message) = match &lookup.status {
        DnsStatus::Secure if null => (
            Severity::Ok,
            format!("{domain} has a null MX (RFC 7505): it accepts no mail"),
        ),
        DnsStatus::Secure => (
            Severity::Ok,
            format!("the MX RRset of {domain} is DNSSEC-secure ({hosts} hosts)"),
        ),
        DnsStatus::Insecure => (
            Severity::Warning,
            format!(
                "DANE not in effect for this domain: the MX RRset of {domain} is not \
                 DNSSEC-secure, so senders do not look for TLSA records"
            ),
        ),
        DnsStatus::Bogus { .. } => (
            Severity::Critical,
            format!(
                "the MX lookup of {domain} fails ({}): senders defer mail to this domain",
                lookup.status
            ),
        ),
        DnsStatus::Missing { nxdomain: true, .. } => (
            Severity::Critical,
            format!("{domain} does not exist (NXDOMAIN)"),
        ),
        DnsStatus::Missing { secure, .. } => (
            if *secure {
                Severity::Ok
            } else {
                Severity::Warning
            },
            format!(
                "{domain} has no MX records: mail goes to its own address (implicit MX, RFC 5321 \
                 §5.1){}",
                if *secure {
                    ""
                } else {
                    "; the denial is not DNSSEC-secure: DANE not in effect for this domain"
                }
            ),
        ),
    };
    Check::name(CheckKind::MxSecure, domain, status, message)
}

/// The host's addresses. Insecure address records mean no DANE (RFC 7672 §2.2.2: senders look
/// up TLSA records only for hosts whose address records are secure).
pub fn addresses(ep: &Endpoint, lookup: &Result<Lookup<IpAddr>, String>, given: bool) -> Check {
    let check =
        |status, message: String| Check::endpoint(CheckKind::Addresses, ep, None, status, message);
    if given {
        return check(
            Severity::Ok,
            "addresses given on the command line (not looked up)".into(),
        );
    }
    let lookup = match lookup {
        Ok(lookup) => lookup,
        Err(err) => {
            return check(
                Severity::Unknown,
                format!("cannot look up {}: {err}", ep.host),
            );
        }
    };
    let count = lookup.records.len();
    match &lookup.status {
        DnsStatus::Secure => check(
            Severity::Ok,
            format!("{} has {count} DNSSEC-secure addresses", ep.host),
        ),
        DnsStatus::Insecure => check(
            Severity::Warning,
            format!(
                "DANE not in effect for this host: the address records of {} are not \
                 DNSSEC-secure, so senders do not use its TLSA records",
                ep.host
            ),
        ),
        DnsStatus::Bogus { .. } => check(
            Severity::Critical,
            format!(
                "the address lookup of {} fails ({}): senders cannot reach it",
                ep.host, lookup.status
            ),
        ),
        DnsStatus::Missing { nxdomain, .. } => check(
            Severity::Critical,
            format!(
                "{} has no address ({}): senders cannot deliver to it",
                ep.host,
                if *nxdomain {
                    "NXDOMAIN"
                } else {
                    "no A or AAAA records"
                }
            ),
        ),
    }
}

/// The records SMTP uses (RFC 7672 §3.1.3: DANE-TA and DANE-EE only).
pub fn usable(records: &[TlsaRecord]) -> Vec<TlsaRecord> {
    records
        .iter()
        .filter(|r| r.usage.is_usable_for_smtp())
        .cloned()
        .collect()
}

/// The TLSA RRset exists, validates and holds a usable record. Returns the check and, when DANE
/// cannot apply, why (the record set's `problem`).
pub fn tlsa_secure(
    ep: &Endpoint,
    lookup: &Result<Lookup<TlsaRecord>, String>,
) -> (Check, Option<String>) {
    let owner = ep.owner_name();
    let lookup = match lookup {
        Ok(lookup) => lookup,
        Err(err) => {
            let message = format!("cannot look up {owner}: {err}");
            return (
                Check::endpoint(CheckKind::TlsaSecure, ep, None, Severity::Unknown, &message),
                Some(message),
            );
        }
    };
    let total = lookup.records.len() + lookup.skipped.len();
    let usable = usable(&lookup.records).len();
    let (status, message, problem) = match &lookup.status {
        DnsStatus::Secure if usable > 0 => (
            Severity::Ok,
            format!("{total} TLSA records at {owner}, DNSSEC-secure ({usable} usable for SMTP)"),
            false,
        ),
        DnsStatus::Secure => (
            Severity::Warning,
            format!(
                "DANE not in effect for this host: none of the {total} TLSA records at {owner} is \
                 usable for SMTP (only DANE-TA(2) and DANE-EE(3) count, RFC 7672 §3.1.3)"
            ),
            true,
        ),
        DnsStatus::Insecure => (
            Severity::Warning,
            format!(
                "DANE not in effect for this host: the TLSA records at {owner} are not \
                 DNSSEC-secure, so senders ignore them"
            ),
            true,
        ),
        DnsStatus::Bogus { .. } => (
            Severity::Critical,
            format!(
                "the TLSA lookup of {owner} fails ({}): DANE senders defer mail to this host",
                lookup.status
            ),
            true,
        ),
        DnsStatus::Missing { .. } => (
            Severity::Warning,
            format!(
                "DANE not in effect for this host: no TLSA records at {owner} ({})",
                lookup.status
            ),
            true,
        ),
    };
    let check = Check::endpoint(CheckKind::TlsaSecure, ep, None, status, &message);
    (check, problem.then_some(message))
}

/// `_tcp.<host>` must not be NXDOMAIN (QNAME-minimising resolvers stop there) or bogus.
pub fn tcp_parent(ep: &Endpoint, parent: &Result<TcpParent, String>) -> Check {
    let name = format!("_tcp.{}", ep.host);
    let (status, message) = match parent {
        Err(err) => (Severity::Unknown, format!("cannot look up {name}: {err}")),
        Ok(TcpParent::Exists(_)) => (Severity::Ok, format!("{name} exists (NOERROR)")),
        Ok(p @ TcpParent::Nxdomain { .. }) => (Severity::Warning, format!("{name} is {p}")),
        Ok(p @ TcpParent::Bogus(_)) => (Severity::Critical, format!("{name} is {p}")),
    };
    Check::endpoint(CheckKind::TcpParent, ep, None, status, message)
}

/// The record count within `max`, and no record twice.
pub fn tlsa_records(ep: &Endpoint, records: &[TlsaRecord], max: usize) -> Check {
    let mut seen = HashSet::new();
    let duplicates: Vec<String> = records
        .iter()
        .filter(|r| !seen.insert((*r).clone()))
        .map(ToString::to_string)
        .collect();
    let count = records.len();
    let (status, message) = if !duplicates.is_empty() {
        (
            Severity::Warning,
            format!(
                "{count} TLSA records, some more than once: {}",
                duplicates.join(", ")
            ),
        )
    } else if count > max {
        (
            Severity::Warning,
            format!(
                "{count} TLSA records at {}, more than the bound of {max}: records pile up after \
                 rollovers; remove the stale ones",
                ep.owner_name()
            ),
        )
    } else {
        (Severity::Ok, format!("{count} TLSA records (bound {max})"))
    };
    Check::endpoint(CheckKind::TlsaRecords, ep, None, status, message)
}

/// How many TTLs after dane-roll retired a record it counts as "retiring", not stale: one TTL
/// for a resolver that fetched the RRset just before the removal, one more for a secondary
/// that served the old zone a while longer (the same margin as the rollover's 2×TTL wait).
pub const RETIRING_TTLS: u32 = 2;

/// Records that match nothing served on any address probed: stale, unless they are a key the
/// store knows as pre-published (`next` or `new`), which is how `current+next` works.
pub fn tlsa_stale(
    ep: &Endpoint,
    usable: &[TlsaRecord],
    reports: &[AddressReport],
    known: &[KeyHash],
) -> Option<Check> {
    tlsa_stale_retiring(ep, usable, reports, known, &[])
}

/// [`tlsa_stale`], where `retiring` are records dane-roll retired less than 2×TTL ago
/// ([`RETIRING_TTLS`]): resolvers (and a lagging secondary) may still serve them, so they are
/// "retiring", noted but not stale.
pub fn tlsa_stale_retiring(
    ep: &Endpoint,
    usable: &[TlsaRecord],
    reports: &[AddressReport],
    known: &[KeyHash],
    retiring: &[TlsaRecord],
) -> Option<Check> {
    let probed: Vec<&AddressReport> = reports.iter().filter(|r| !r.keys.is_empty()).collect();
    if probed.is_empty() || usable.is_empty() {
        return None;
    }
    let unmatched: Vec<&TlsaRecord> = usable
        .iter()
        .filter(|record| probed.iter().all(|r| r.unmatched_records.contains(record)))
        .collect();
    let (prepublished, unknown): (Vec<&TlsaRecord>, Vec<&TlsaRecord>) = unmatched
        .into_iter()
        .partition(|record| known.iter().any(|k| k.matches(record)));
    let (going, stale): (Vec<&TlsaRecord>, Vec<&TlsaRecord>) = unknown
        .into_iter()
        .partition(|record| retiring.contains(record));
    let mut check = if stale.is_empty() {
        Check::endpoint(
            CheckKind::TlsaStale,
            ep,
            None,
            Severity::Ok,
            "every record matches a certificate served",
        )
    } else {
        let list: Vec<String> = stale.iter().map(|r| short(r)).collect();
        Check::endpoint(
            CheckKind::TlsaStale,
            ep,
            None,
            Severity::Warning,
            format!(
                "{} stale TLSA records match no certificate served: {}",
                stale.len(),
                list.join(", ")
            ),
        )
    };
    let mut notes = Vec::new();
    if !prepublished.is_empty() {
        let list: Vec<String> = prepublished.iter().map(|r| short(r)).collect();
        notes.push(format!(
            "pre-published for the next key (known to the store): {}",
            list.join(", ")
        ));
    }
    if !going.is_empty() {
        let list: Vec<String> = going.iter().map(|r| short(r)).collect();
        notes.push(format!(
            "retiring (retired by dane-roll less than 2×TTL ago; caches may still hold it): {}",
            list.join(", ")
        ));
    }
    if !notes.is_empty() {
        check.note = Some(notes.join("; "));
    }
    Some(check)
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

/// The RRSIG over the TLSA RRset: critical when expired or under a day left, a warning under
/// `warn_days`.
pub fn rrsig_expiry(ep: &Endpoint, expiry: SystemTime, warn_days: u32, now: SystemTime) -> Check {
    let left = epoch_secs(expiry) - epoch_secs(now);
    let days = left as f64 / DAY as f64;
    let when = crate::notify::rfc3339(expiry);
    let (status, message) = if left <= 0 {
        (
            Severity::Critical,
            format!("the RRSIG over the TLSA RRset expired at {when}: validation fails"),
        )
    } else if left < DAY as i64 {
        (
            Severity::Critical,
            format!("the RRSIG over the TLSA RRset expires in {days:.1} days ({when}): re-sign"),
        )
    } else if left < i64::from(warn_days) * DAY as i64 {
        (
            Severity::Warning,
            format!("the RRSIG over the TLSA RRset expires in {days:.1} days ({when})"),
        )
    } else {
        (
            Severity::Ok,
            format!("the RRSIG over the TLSA RRset expires in {days:.1} days ({when})"),
        )
    };
    Check::endpoint(CheckKind::RrsigExpiry, ep, None, status, message)
}

/// The TTL in the advised 1800–3600 range; outside it only a note.
pub fn tlsa_ttl(ep: &Endpoint, ttl: u32) -> Check {
    let check = Check::endpoint(
        CheckKind::TlsaTtl,
        ep,
        None,
        Severity::Ok,
        format!("TTL {ttl}"),
    );
    if ADVISED_TTL.contains(&ttl) {
        check
    } else {
        check.with_note(format!(
            "TTL {ttl} is outside the advised {}–{}: short TTLs load resolvers, long ones slow \
             rollovers",
            ADVISED_TTL.start(),
            ADVISED_TTL.end()
        ))
    }
}

/// The live chain on one address: the probe's verdict, with the words for each key.
pub fn tlsa_match(ep: &Endpoint, report: &AddressReport) -> Check {
    let addr = report.address.ip();
    let keys: Vec<String> = report.keys.iter().map(key_words).collect();
    let (status, message) = match report.verdict {
        Verdict::Pass => (Severity::Ok, format!("{addr}: {}", keys.join("; "))),
        Verdict::Fail => {
            let reason = report.reason.as_deref().unwrap_or("not verified");
            // A mismatch only when a key was seen and compared; a refused STARTTLS or a failed
            // handshake is a protocol failure (senders defer all the same, for another reason).
            let message = if report.keys.iter().any(|k| !k.matched) {
                format!("no TLSA record matches the certificate on {addr}: {reason}")
            } else if report.keys.is_empty() {
                format!("TLS cannot be established on {addr}: {reason}")
            } else {
                format!("DANE verification failed on {addr}: {reason}")
            };
            (Severity::Critical, message)
        }
        Verdict::Unknown => (
            Severity::Unknown,
            format!(
                "cannot probe {addr}: {}",
                report.reason.as_deref().unwrap_or("no answer")
            ),
        ),
    };
    Check::endpoint(CheckKind::TlsaMatch, ep, Some(addr), status, message)
}

fn key_words(key: &KeyReport) -> String {
    let algorithms: Vec<&str> = key.algorithms.iter().map(|a| a.as_str()).collect();
    match (&key.matched_record, key.match_depth) {
        (Some(record), Some(depth)) if key.matched => format!(
            "{} key ({}) matches {} at depth {depth}",
            key.key_type,
            algorithms.join(", "),
            short(record)
        ),
        _ => format!(
            "{} key ({}) does not match: {}",
            key.key_type,
            algorithms.join(", "),
            key.reason.as_deref().unwrap_or("not verified")
        ),
    }
}

/// The certificate expiry of a key's leaf, as seconds since the epoch, from its RFC 3339 UTC
/// `not_after` (`2026-11-23T08:00:00Z`).
pub fn not_after_secs(key: &KeyReport) -> Option<i64> {
    parse_rfc3339(&key.chain.first()?.not_after)
}

/// `YYYY-MM-DDTHH:MM:SSZ` as seconds since the epoch.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    crate::rfc3339::parse_secs(text)
}

/// The certificates served on one address: a warning within `warn_days` of expiry. Under
/// DANE-EE an expired certificate still matches (RFC 7672 §3.1.1: no date checks), so it is a
/// warning only; under DANE-TA an expired one is critical. Keys that matched nothing are left
/// to [`tlsa_match`].
pub fn cert_expiry(
    ep: &Endpoint,
    report: &AddressReport,
    warn_days: u32,
    now: SystemTime,
) -> Option<Check> {
    let now = epoch_secs(now);
    let mut worst_status = Severity::Ok;
    let mut parts = Vec::new();
    for key in report.keys.iter().filter(|k| k.matched) {
        let Some(end) = not_after_secs(key) else {
            continue;
        };
        let ee = key
            .matched_record
            .as_ref()
            .is_some_and(|r| r.usage == Usage::DaneEe);
        let left = end - now;
        let days = left as f64 / DAY as f64;
        let status = if left <= 0 {
            if ee {
                Severity::Warning
            } else {
                Severity::Critical
            }
        } else if left < i64::from(warn_days) * DAY as i64 {
            Severity::Warning
        } else {
            Severity::Ok
        };
        worst_status = worst([worst_status, status]);
        let algorithms: Vec<&str> = key.algorithms.iter().map(|a| a.as_str()).collect();
        parts.push(if left <= 0 {
            format!(
                "{} certificate ({}) expired {:.1} days ago{}",
                key.key_type,
                algorithms.join(", "),
                -days,
                if ee {
                    " (DANE-EE still matches: senders do not check dates)"
                } else {
                    ""
                }
            )
        } else {
            format!(
                "{} certificate ({}) expires in {days:.1} days",
                key.key_type,
                algorithms.join(", ")
            )
        });
    }
    if parts.is_empty() {
        return None;
    }
    Some(Check::endpoint(
        CheckKind::CertExpiry,
        ep,
        Some(report.address.ip()),
        worst_status,
        format!("{}: {}", report.address.ip(), parts.join("; ")),
    ))
}

/// The verdict of an endpoint for `check`'s JSON (`pass` when every address passes).
pub fn endpoint_verdict(problem: bool, reports: &[AddressReport]) -> Verdict {
    if problem || reports.iter().any(|r| r.verdict == Verdict::Fail) {
        Verdict::Fail
    } else if reports.is_empty() || reports.iter().any(|r| r.verdict == Verdict::Unknown) {
        Verdict::Unknown
    } else {
        Verdict::Pass
    }
}

/// The key algorithm of each key found on an address, as `(algorithm, key)`.
pub fn keys_by_algorithm(report: &AddressReport) -> Vec<(KeyAlgorithm, &KeyReport)> {
    let mut out = Vec::new();
    for key in &report.keys {
        for algorithm in &key.algorithms {
            out.push((*algorithm, key));
        }
    }
    out
}

/// A duration in days, for messages.
pub fn days(d: Duration) -> f64 {
    d.as_secs_f64() / DAY as f64
}

#[cfg(test)]
mod tests;
