//! Judging one endpoint: what DNS said and what the probes saw, turned into its [`Check`]s (the
//! rules themselves are in [`super::checks`]) and the [`RecordSet`] it was checked against.

use std::net::IpAddr;
use std::time::SystemTime;

use crate::config::Endpoint;
use crate::dns::{Lookup, Status as DnsStatus, TcpParent};
use crate::notify::Severity;
use crate::probe::AddressReport;
use crate::tlsa::TlsaRecord;

use super::checks::{self, Check, CheckKind};
use super::report::{RecordSet, RecordSource};
use super::run::MonitorOptions;

/// What DNS said about one endpoint.
#[derive(Default)]
pub(super) struct EndpointDns {
    /// The TLSA lookup, when asked.
    pub(super) tlsa: Option<Result<Lookup<TlsaRecord>, String>>,
    /// The host's addresses, when asked.
    pub(super) addresses: Option<Result<Lookup<IpAddr>, String>>,
    /// `_tcp.<host>`, when asked.
    pub(super) tcp_parent: Option<Result<TcpParent, String>>,
    /// The TTL the zone gives the TLSA RRset (the RRSIG's original TTL): a resolver's answer
    /// carries what is left of its cached copy.
    pub(super) original_ttl: Option<u32>,
}

/// The record-count bound of `ep`: its service's, else the `[check]` one.
pub(super) fn max_records(options: &MonitorOptions, ep: &Endpoint) -> usize {
    options
        .max_records
        .get(&format!("{}:{}", ep.host, ep.port))
        .copied()
        .unwrap_or(options.check.max_records)
}

/// Judge one endpoint from what DNS said, the records it was matched against (and why DANE
/// cannot apply, when it cannot) and its probe reports: its checks and its record set.
pub(super) fn endpoint(
    options: &MonitorOptions,
    ep: &Endpoint,
    dns: &EndpointDns,
    records: &[TlsaRecord],
    problem: Option<String>,
    reports: &[AddressReport],
    now: SystemTime,
) -> (Vec<Check>, RecordSet) {
    let key = format!("{}:{}", ep.host, ep.port);
    let mut out = Vec::new();
    let given_records = !options.records.is_empty();
    let given_addresses = !options.addresses.is_empty();
    let no_lookup = Err("not looked up".to_string());
    out.push(checks::addresses(
        ep,
        dns.addresses.as_ref().unwrap_or(&no_lookup),
        given_addresses,
    ));
    let mut set = RecordSet {
        owner: ep.owner_name(),
        source: RecordSource::CommandLine,
        records: records.to_vec(),
        dns_status: None,
        problem: problem.clone(),
        ttl: None,
        rrsig_expiry: None,
    };
    if given_records {
        out.push(Check::endpoint(
            CheckKind::TlsaSecure,
            ep,
            None,
            Severity::Ok,
            format!(
                "{} TLSA records given on the command line (not looked up, not validated)",
                records.len()
            ),
        ));
    } else if let Some(tlsa) = &dns.tlsa {
        let (check, _) = checks::tlsa_secure(ep, tlsa);
        out.push(check);
        if let Ok(lookup) = tlsa {
            set.source = if lookup.status.is_secure() && problem.is_none() {
                RecordSource::DnsSecure
            } else {
                RecordSource::DnsInsecure
            };
            set.dns_status = Some(lookup.status.to_string());
            set.ttl = dns.original_ttl.or(lookup.ttl);
            set.rrsig_expiry = lookup.rrsig_expiry.map(checks::epoch_secs);
            let present = !lookup.records.is_empty() || lookup.status.is_bogus();
            if present && let Some(parent) = &dns.tcp_parent {
                out.push(checks::tcp_parent(ep, parent));
            }
            if lookup.status == DnsStatus::Secure {
                if let Some(expiry) = lookup.rrsig_expiry {
                    out.push(checks::rrsig_expiry(
                        ep,
                        expiry,
                        options.check.rrsig_warn_days,
                        now,
                    ));
                }
                if let Some(ttl) = dns.original_ttl {
                    out.push(checks::tlsa_ttl(ep, ttl));
                }
            }
        } else {
            set.source = RecordSource::DnsInsecure;
        }
    }
    if !records.is_empty() && problem.is_none() {
        let max = max_records(options, ep);
        out.push(checks::tlsa_records(ep, records, max));
        let usable = checks::usable(records);
        let known = options
            .known_keys
            .get(&key)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        let now = SystemTime::now();
        let retiring: Vec<TlsaRecord> = options
            .retiring
            .get(&key)
            .into_iter()
            .flatten()
            .filter(|(_, until)| now < *until)
            .map(|(record, _)| record.clone())
            .collect();
        if let Some(check) = checks::tlsa_stale_retiring(ep, &usable, reports, known, &retiring) {
            out.push(check);
        }
        if let Some(check) = checks::tlsa_anchor(ep, &usable, reports) {
            out.push(check);
        }
        if let Some(ttl) = set.ttl {
            for report in reports {
                if let Some(check) = checks::cert_lifetime(ep, report, &usable, known, ttl) {
                    out.push(check);
                }
            }
        }
    }
    for report in reports {
        out.push(checks::tlsa_match(ep, report));
        if let Some(check) = checks::cert_expiry(ep, report, options.check.cert_warn_days, now) {
            out.push(check);
        }
    }
    (out, set)
}
