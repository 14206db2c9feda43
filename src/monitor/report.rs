//! The outcome of a run ([`RunReport`]: the domains, the endpoints with their records and
//! addresses, every check), and its renderings: a [`RunReport`] for people ([`text`]), scripts ([`json`]) and Nagios/Icinga ([`nagios`]).
//!
//! The Nagios output follows the plugin guidelines: one status line
//! `DANE CRITICAL - mail.example.com:25: no TLSA record matches … | perfdata`, then one line per
//! check (the worst first) as long output. Performance data is `label=value[UOM];warn;crit;min;max`
//! with ranges where the alert is "below": `tlsa_records=2;4;;0;`, `matched_addresses=2;;;0;2`,
//! `rrsig_expiry_days=12.5;5:;1:;0;`, `time=0.412s;;;0;`. With several endpoints each label
//! carries `[host:port]`.
//!
//! The JSON is the serialised [`RunReport`] (field names are stable) plus `summary`, the status
//! line's text. When exactly one endpoint was checked its `host`, `port`, `protocol`, `verdict`,
//! `tlsa` and `addresses` are repeated at the top level, as `check HOST` printed them before
//! domains and several targets were supported.

use std::fmt::Write;

use serde::Serialize;

use crate::dns::{Lookup, MxHost};
use crate::notify::Severity;
use crate::probe::{AddressReport, AttemptOutcome, Verdict};
use crate::tlsa::TlsaRecord;

use super::beside::Policy;
use super::checks::{self, Check, rank};

/// The TLSA record set an endpoint was checked against, and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct RecordSet {
    /// The owner name, `_25._tcp.host.`.
    pub owner: crate::tlsa::OwnerName,
    /// `command-line`, `dns-secure` or `dns-insecure`.
    pub source: RecordSource,
    /// The records.
    pub records: Vec<TlsaRecord>,
    /// What the validating resolver said (`secure`, `bogus (SERVFAIL)`, …), when asked.
    pub dns_status: Option<String>,
    /// Why DANE cannot apply, when it cannot.
    pub problem: Option<String>,
    /// The TTL of the RRset.
    pub ttl: Option<u32>,
    /// When the RRSIG over the RRset expires, seconds since the epoch.
    pub rrsig_expiry: Option<i64>,
}

/// Where the records came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordSource {
    /// Given with `--tlsa`: not looked up, not validated.
    CommandLine,
    /// Looked up and DNSSEC-secure.
    DnsSecure,
    /// Looked up, but not secure (or SERVFAIL, or none).
    DnsInsecure,
}

/// One endpoint's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct EndpointReport {
    /// The host.
    pub host: String,
    /// The port.
    pub port: u16,
    /// How TLS starts.
    pub protocol: &'static str,
    /// The mail domains whose MX this host is (empty when given as a host).
    pub mx_of: Vec<String>,
    /// The worst of its checks.
    #[serde(serialize_with = "severity_word")]
    pub status: Severity,
    /// Whether a DANE sender would deliver: every address passes.
    pub verdict: Verdict,
    /// The records.
    pub tlsa: RecordSet,
    /// The record-count bound that applies.
    pub max_records: usize,
    /// One report per address probed.
    pub addresses: Vec<AddressReport>,
}

/// One mail domain's MX RRset.
#[derive(Debug, Clone, Serialize)]
pub struct DomainReport {
    /// The domain.
    pub domain: String,
    /// What the resolver said about the MX RRset.
    pub dns_status: String,
    /// The MX hosts, by preference.
    pub mx: Vec<MxEntry>,
    /// The MTA-STS policy in effect, when one was fetched and usable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mta_sts: Option<Policy>,
}

/// One MX record.
#[derive(Debug, Clone, Serialize)]
pub struct MxEntry {
    /// The preference.
    pub preference: u16,
    /// The host, without the final dot.
    pub host: String,
}

/// The outcome of a run.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// The worst status of all checks.
    #[serde(serialize_with = "severity_word")]
    pub status: Severity,
    /// When the run started, seconds since the epoch.
    pub started: i64,
    /// How long it took, seconds.
    pub elapsed_seconds: f64,
    /// The resolver asked, if any.
    pub resolver: Option<String>,
    /// The RRSIG warning threshold, days.
    pub rrsig_warn_days: u32,
    /// The certificate warning threshold, days.
    pub cert_warn_days: u32,
    /// The mail domains checked.
    pub domains: Vec<DomainReport>,
    /// The endpoints checked.
    pub endpoints: Vec<EndpointReport>,
    /// Every check, in order: run, domains, then per endpoint.
    pub checks: Vec<Check>,
}

/// A status as its word (`OK`, `WARNING`, …) in JSON.
pub(super) fn severity_word<S: serde::Serializer>(
    s: &Severity,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(s.as_str())
}

/// A mail domain's report from its MX lookup.
pub(super) fn domain_report(name: &str, lookup: &Lookup<MxHost>) -> DomainReport {
    DomainReport {
        domain: name.to_string(),
        dns_status: lookup.status.to_string(),
        mx: lookup
            .records
            .iter()
            .map(|mx| MxEntry {
                preference: mx.preference,
                host: mx.host.to_ascii().trim_end_matches('.').to_string(),
            })
            .collect(),
        mta_sts: None,
    }
}

/// How text output is dressed.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextStyle {
    /// ANSI colours for the status words.
    pub colour: bool,
    /// Only what is not ok.
    pub quiet: bool,
    /// The served chains and each handshake attempt, per address.
    pub details: bool,
}

/// Whether to colour output for a stream: only a terminal, and never with `NO_COLOR` set.
pub fn colour_for(stream_is_terminal: bool) -> bool {
    stream_is_terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The one-line summary: the worst checks' subject and message, or what matched.
pub fn summary(run: &RunReport) -> String {
    let worst: Vec<&checks::Check> = run
        .checks
        .iter()
        .filter(|c| c.status == run.status && c.status != Severity::Ok)
        .collect();
    let text = match worst.split_first() {
        Some((first, rest)) => {
            let mut s = format!("{}: {}", first.subject, first.message);
            if !rest.is_empty() {
                let _ = write!(s, " (+{} more)", rest.len());
            }
            s
        }
        None => {
            let total: usize = run.endpoints.iter().map(|e| e.addresses.len()).sum();
            let matched = matched_addresses(&run.endpoints);
            let mut names: Vec<String> = run.domains.iter().map(|d| d.domain.clone()).collect();
            for ep in run.endpoints.iter().filter(|e| e.mx_of.is_empty()) {
                names.push(format!("{}:{}", ep.host, ep.port));
            }
            if names.len() > 3 {
                let more = names.len() - 3;
                names.truncate(3);
                names.push(format!("+{more} more"));
            }
            format!(
                "{}: TLSA matches on {matched} of {total} addresses ({} endpoints)",
                names.join(", "),
                run.endpoints.len()
            )
        }
    };
    // One line (Nagios reads the first), and no control character a server sent.
    crate::output::escape(&text.replace('|', "/").replace('\n', " ")).into_owned()
}

fn matched_addresses(endpoints: &[EndpointReport]) -> usize {
    endpoints
        .iter()
        .flat_map(|e| &e.addresses)
        .filter(|a| a.verdict == Verdict::Pass)
        .count()
}

fn label(s: Severity, colour: bool) -> String {
    let code = match s {
        Severity::Ok => "32",
        Severity::Warning => "33",
        Severity::Critical => "31",
        Severity::Unknown => "35",
    };
    if colour {
        format!("\x1b[1;{code}m{:<8}\x1b[0m", s.label())
    } else {
        format!("{:<8}", s.label())
    }
}

/// The report for people.
pub fn text(run: &RunReport, style: TextStyle) -> String {
    let mut out = String::new();
    let head = if style.colour {
        label(run.status, true).trim_end().to_string()
    } else {
        run.status.label().to_string()
    };
    let _ = writeln!(out, "DANE {head} - {}", summary(run));
    let mut ordered: Vec<&checks::Check> = run.checks.iter().collect();
    if style.quiet {
        ordered.retain(|c| c.status != Severity::Ok);
    }
    for check in ordered {
        let _ = writeln!(
            out,
            "{} {:<13} {}: {}",
            label(check.status, style.colour),
            check.kind.as_str(),
            crate::output::escape(&check.subject),
            crate::output::escape(&check.message)
        );
        if let Some(note) = &check.note {
            let _ = writeln!(out, "{:<22} note: {note}", "");
        }
    }
    if style.details {
        for ep in &run.endpoints {
            if style.quiet && ep.status == Severity::Ok {
                continue;
            }
            endpoint_details(&mut out, ep);
        }
    }
    let _ = writeln!(
        out,
        "{} checks, {:.2}s{}",
        run.checks.len(),
        run.elapsed_seconds,
        run.resolver
            .as_ref()
            .map(|r| format!(", resolver {r}"))
            .unwrap_or_default()
    );
    out
}

/// Per address: the verdict, each key with its match and chain, each attempt that found no key.
fn endpoint_details(out: &mut String, ep: &EndpointReport) {
    let _ = writeln!(
        out,
        "\n{}:{}/{}: TLSA {} ({})",
        ep.host,
        ep.port,
        ep.protocol,
        ep.tlsa.owner,
        ep.tlsa
            .dns_status
            .as_deref()
            .unwrap_or("given on the command line")
    );
    for record in &ep.tlsa.records {
        let _ = writeln!(out, "  {record}");
    }
    for report in &ep.addresses {
        let word = match report.verdict {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Unknown => "UNKNOWN",
        };
        let _ = write!(out, "{} {word}", report.address);
        match &report.reason {
            Some(reason) => {
                let _ = writeln!(out, ": {reason}");
            }
            None => out.push('\n'),
        }
        for key in &report.keys {
            let algorithms: Vec<&str> = key.algorithms.iter().map(|a| a.as_str()).collect();
            let _ = writeln!(
                out,
                "  key {} (offered for {}), {} {}",
                key.key_type,
                algorithms.join(", "),
                key.tls_version,
                key.cipher
            );
            let _ = writeln!(out, "    3 1 1 {}", key.spki_sha256);
            match (&key.matched_record, key.match_depth, key.matched) {
                (Some(record), Some(depth), true) => {
                    let _ = writeln!(out, "    matched {record} at depth {depth}");
                }
                _ => {
                    let _ = writeln!(
                        out,
                        "    NOT matched: {}",
                        key.reason.as_deref().unwrap_or("not verified")
                    );
                }
            }
            for (depth, cert) in key.chain.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "    {depth} {} [{}] issuer {} until {}{}",
                    cert.subject,
                    cert.key_type,
                    cert.issuer,
                    cert.not_after,
                    if cert.expired { " (EXPIRED)" } else { "" }
                );
            }
        }
        for attempt in &report.attempts {
            match &attempt.outcome {
                AttemptOutcome::Key { .. } | AttemptOutcome::Skipped => {}
                AttemptOutcome::NoKey { detail } => {
                    let _ = writeln!(out, "  no {} key ({detail})", attempt.algorithm);
                }
                AttemptOutcome::Error { error, .. } => {
                    let _ = writeln!(out, "  {}: {error}", attempt.algorithm);
                }
            }
        }
        for ignored in &report.ignored_records {
            let _ = writeln!(out, "  ignored {}: {}", ignored.record, ignored.reason);
        }
        for record in &report.unmatched_records {
            let _ = writeln!(
                out,
                "  {record} matches no certificate served here (stale, or for a key not deployed yet)"
            );
        }
    }
}

/// The JSON document, written as it is serialised: a run of hundreds of endpoints makes a
/// document of megabytes, and building it as a [`serde_json::Value`] first (then a `String`)
/// held it in memory three times over. Same fields as [`json`].
pub fn write_json<W: std::io::Write>(run: &RunReport, out: W) -> serde_json::Result<()> {
    #[derive(serde::Serialize)]
    struct Single<'a> {
        host: &'a str,
        port: u16,
        protocol: &'static str,
        verdict: Verdict,
        tlsa: &'a super::RecordSet,
        addresses: &'a [crate::probe::AddressReport],
    }
    #[derive(serde::Serialize)]
    struct Document<'a> {
        #[serde(flatten)]
        run: &'a RunReport,
        summary: String,
        #[serde(flatten)]
        single: Option<Single<'a>>,
    }
    let single = match run.endpoints.as_slice() {
        [ep] => Some(Single {
            host: &ep.host,
            port: ep.port,
            protocol: ep.protocol,
            verdict: ep.verdict,
            tlsa: &ep.tlsa,
            addresses: &ep.addresses,
        }),
        _ => None,
    };
    serde_json::to_writer_pretty(
        out,
        &Document {
            run,
            summary: summary(run),
            single,
        },
    )
}

/// The JSON document as a value (for callers that edit it; [`write_json`] to print it).
pub fn json(run: &RunReport) -> serde_json::Value {
    let mut value = serde_json::to_value(run)
        .unwrap_or_else(|err| serde_json::json!({ "status": "unknown", "error": err.to_string() }));
    if let Some(object) = value.as_object_mut() {
        object.insert("summary".into(), summary(run).into());
        if let [ep] = run.endpoints.as_slice()
            && let Ok(serde_json::Value::Object(fields)) = serde_json::to_value(ep)
        {
            for key in ["host", "port", "protocol", "verdict", "tlsa", "addresses"] {
                if let Some(v) = fields.get(key) {
                    object.insert(key.to_string(), v.clone());
                }
            }
        }
    }
    value
}

/// The Nagios/Icinga plugin output: the status line with performance data, then long output.
pub fn nagios(run: &RunReport) -> String {
    let mut out = format!(
        "DANE {} - {} | {}\n",
        run.status.label(),
        summary(run),
        perfdata(run)
    );
    let mut ordered: Vec<&checks::Check> = run.checks.iter().collect();
    ordered.sort_by_key(|c| std::cmp::Reverse(rank(c.status)));
    for check in ordered {
        let line = format!(
            "[{}] {}: {}{}",
            check.status.label(),
            check.subject,
            check.message,
            check
                .note
                .as_ref()
                .map(|n| format!(" (note: {n})"))
                .unwrap_or_default()
        );
        out.push_str(&line.replace('|', "/"));
        out.push('\n');
    }
    out
}

/// Performance data per the plugin guidelines.
pub fn perfdata(run: &RunReport) -> String {
    let mut parts = Vec::new();
    let many = run.endpoints.len() > 1;
    for ep in &run.endpoints {
        let sfx = if many {
            format!("[{}:{}]", ep.host, ep.port)
        } else {
            String::new()
        };
        let max = ep.max_records;
        parts.push(format!(
            "tlsa_records{sfx}={};{max};;0;",
            ep.tlsa.records.len()
        ));
        let matched = ep
            .addresses
            .iter()
            .filter(|a| a.verdict == Verdict::Pass)
            .count();
        parts.push(format!(
            "matched_addresses{sfx}={matched};;;0;{}",
            ep.addresses.len()
        ));
        if let Some(expiry) = ep.tlsa.rrsig_expiry {
            let days = (expiry - run.started) as f64 / 86_400.0;
            parts.push(format!(
                "rrsig_expiry_days{sfx}={days:.2};{}:;1:;;",
                run.rrsig_warn_days
            ));
        }
    }
    parts.push(format!("time={:.3}s;;;0;", run.elapsed_seconds));
    parts.join(" ")
}
