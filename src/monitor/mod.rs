//! Monitoring: the checklist of DOMAIN.md run against mail domains and endpoints, for
//! `dane-roll check` (one run, text, JSON or Nagios output) and `dane-roll serve` (a Prometheus
//! exporter running the same checks on a schedule).
//!
//! - [`Target`]: what to check: a mail domain (its MX hosts, port 25) or one endpoint;
//! - [`Monitor`]: one resolver and one [`Prober`] (OpenSSL contexts built once) for a whole run;
//!   [`Monitor::run`] asks DNS per endpoint (cheap, many at once) and probes each endpoint's
//!   addresses as soon as its answers are in (bounded: handshakes are the cost, and they overlap
//!   the other endpoints' lookups), then judges with [`checks`], all within one deadline;
//! - [`report`]: the [`RunReport`] for people, scripts and Nagios/Icinga;
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
pub mod report;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::timeout_at;

use crate::config::{CheckSettings, Endpoint, Protocol};
use crate::dns::{Lookup, MxHost, Resolver, Status as DnsStatus, TcpParent};
use crate::notify::Severity;
use crate::probe::{AddressReport, ProbeTarget, Prober, Verdict};
use crate::rollover::KeyHash;
use crate::tlsa::TlsaRecord;

pub use checks::{Check, CheckKind, Validation, worst};

/// The overall time a `check` run may take unless `--timeout` says otherwise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// How many handshakes run at once unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// How many DNS lookups run at once.
pub const DNS_CONCURRENCY: usize = 64;
/// How many names the resolver's validation is probed with, at most.
const VALIDATION_PROBES: usize = 4;

/// Why a target cannot be checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// The target is not a name, `host:port` or `host:port/protocol`.
    #[error("target \"{target}\": {reason}")]
    BadTarget {
        /// What was given.
        target: String,
        /// What is wrong.
        reason: String,
    },
}

/// How a target without `:port` or `/protocol` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetMode {
    /// A mail domain when it has an MX RRset, else a host on port 25.
    #[default]
    Auto,
    /// Always a mail domain (`--mx`).
    Domain,
    /// Always a host (`--host`).
    Host,
}

/// What to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A mail domain when it has an MX RRset, else a host on port 25.
    Auto(String),
    /// A mail domain: every MX host on port 25.
    Domain(String),
    /// One endpoint.
    Host(Endpoint),
}

impl Target {
    /// Read a target: `name`, `host:port`, `host/protocol` or `host:port/protocol`. `protocol`
    /// (from `--protocol`) makes it a host and overrides the port's usual protocol.
    pub fn parse(
        text: &str,
        mode: TargetMode,
        protocol: Option<Protocol>,
    ) -> Result<Target, MonitorError> {
        let bad = |reason: String| MonitorError::BadTarget {
            target: text.to_string(),
            reason,
        };
        let text = text.trim().trim_end_matches('.');
        let explicit = text.contains(':') || text.contains('/');
        if explicit || protocol.is_some() || mode == TargetMode::Host {
            let mut ep = if protocol.is_some() && !text.contains('/') {
                let (host, port) = match text.rsplit_once(':') {
                    Some((host, port)) => match port.parse::<u16>() {
                        Ok(port) if port != 0 => (host, Some(port)),
                        _ => return Err(bad(format!("\"{port}\" is not a port (1–65535)"))),
                    },
                    None => (text, None),
                };
                Endpoint::new(host, port, protocol).map_err(bad)?
            } else {
                Endpoint::parse_short(text).map_err(bad)?
            };
            if let Some(p) = protocol {
                ep.protocol = p;
            }
            if mode == TargetMode::Domain {
                return Err(bad(
                    "--mx takes a mail domain, without :port or /protocol".into()
                ));
            }
            return Ok(Target::Host(ep));
        }
        let name = Endpoint::new(text, None, None).map_err(bad)?.host;
        Ok(match mode {
            TargetMode::Domain => Target::Domain(name),
            _ => Target::Auto(name),
        })
    }

    /// The name DNS is asked about.
    pub fn name(&self) -> &str {
        match self {
            Target::Auto(name) | Target::Domain(name) => name,
            Target::Host(ep) => &ep.host,
        }
    }
}

/// How a run checks.
#[derive(Debug, Clone, Default)]
pub struct MonitorOptions {
    /// Thresholds.
    pub check: CheckSettings,
    /// Handshakes at once.
    pub concurrency: usize,
    /// The whole run's time limit.
    pub deadline: Duration,
    /// Records to check against instead of looking them up (`--tlsa`; not validated).
    pub records: Vec<TlsaRecord>,
    /// Addresses to probe instead of looking them up (`--address`).
    pub addresses: Vec<IpAddr>,
    /// The record-count bound per endpoint (`host:port`) from its service, when not the default.
    pub max_records: HashMap<String, usize>,
    /// Keys the store knows as pre-published (next, new) per endpoint (`host:port`): their
    /// records are not stale.
    pub known_keys: HashMap<String, Vec<KeyHash>>,
    /// Records dane-roll retired per endpoint (`host:port`), from the store, each with the end
    /// of its 2×TTL window: until then still in caches, so "retiring", not stale.
    pub retiring: HashMap<String, Vec<(TlsaRecord, SystemTime)>>,
}

/// One resolver and one prober for a run. Cheap to clone; `Send` and `Sync`.
#[derive(Clone)]
pub struct Monitor {
    resolver: Option<Resolver>,
    prober: Prober,
    options: Arc<MonitorOptions>,
    /// When set, addresses inside it are not probed (`serve`'s `/probe`).
    fence: Option<Arc<fence::Fence>>,
}

/// The TLSA record set an endpoint was checked against, and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct RecordSet {
    /// The owner name, `_25._tcp.host.`.
    pub owner: String,
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

fn severity_word<S: serde::Serializer>(s: &Severity, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(s.as_str())
}

/// The records to match, the addresses to probe, and why DANE cannot apply (then nothing is
/// probed), for one endpoint.
type Plan = (Vec<TlsaRecord>, Vec<SocketAddr>, Option<String>);

/// One endpoint's DNS, plan and probe reports.
struct Checked {
    dns: EndpointDns,
    plan: Plan,
    reports: Vec<AddressReport>,
}

/// What DNS said about one endpoint.
#[derive(Default)]
struct EndpointDns {
    tlsa: Option<Result<Lookup<TlsaRecord>, String>>,
    addresses: Option<Result<Lookup<IpAddr>, String>>,
    tcp_parent: Option<Result<TcpParent, String>>,
    /// The TTL the zone gives the TLSA RRset (the RRSIG's original TTL): a resolver's answer
    /// carries what is left of its cached copy.
    original_ttl: Option<u32>,
}

/// The TLSA records at `owner` and, when they are secure, the TTL the zone gives them (the
/// RRSIG's original TTL), from one query: [`Resolver::tlsa`] and a second query for the RRSIG
/// were a sixth of a check's DNS work. An alias (CNAME) goes through [`Resolver::tlsa`], which
/// follows chains the resolver left incomplete.
async fn tlsa_lookup(
    resolver: &Resolver,
    owner: &str,
) -> Result<(Lookup<TlsaRecord>, Option<u32>), String> {
    use crate::dns::RecordType;
    let name = crate::dns::parse_name(owner).map_err(|e| e.to_string())?;
    let answer = resolver
        .raw(&name, RecordType::TLSA)
        .await
        .map_err(|e| e.to_string())?;
    let lookup = crate::dns::resolve::classify(&answer, &name, RecordType::TLSA);
    if lookup.is_alias() {
        let lookup = resolver.tlsa(owner).await.map_err(|e| e.to_string())?;
        let ttl = if lookup.status == DnsStatus::Secure {
            match resolver.raw(&lookup.owner, RecordType::TLSA).await {
                Ok(answer) => original_ttl(&answer, &lookup.owner),
                Err(_) => None,
            }
        } else {
            None
        };
        return Ok((lookup, ttl));
    }
    let ttl = if lookup.status == DnsStatus::Secure {
        original_ttl(&answer, &lookup.owner)
    } else {
        None
    };
    let mut records = Vec::new();
    let mut skipped = Vec::new();
    for rdata in &lookup.records {
        match rdata {
            hickory_proto::rr::RData::TLSA(t) => match crate::dns::resolve::tlsa_from_rdata(t) {
                Ok(r) => records.push(r),
                Err(why) => skipped.push(why),
            },
            other => skipped.push(format!("{other}")),
        }
    }
    let lookup = Lookup {
        name: lookup.name,
        owner: lookup.owner,
        chain: lookup.chain,
        status: lookup.status,
        records,
        skipped,
        ttl: lookup.ttl,
        rrsig_expiry: lookup.rrsig_expiry,
        ede: lookup.ede,
    };
    Ok((lookup, ttl))
}

/// The original TTL of the signed TLSA RRset at `owner` in `answer`, from its RRSIG.
fn original_ttl(answer: &hickory_proto::op::Message, owner: &crate::dns::Name) -> Option<u32> {
    use crate::dns::RecordType;
    use hickory_proto::dnssec::rdata::DNSSECRData;
    use hickory_proto::rr::RData;
    answer.answers.iter().find_map(|r| match &r.data {
        RData::DNSSEC(DNSSECRData::RRSIG(sig))
            if r.name == *owner && sig.input().type_covered == RecordType::TLSA =>
        {
            Some(sig.input().original_ttl)
        }
        _ => None,
    })
}

impl Monitor {
    /// A monitor asking `resolver` (none: only `--tlsa` with `--address` can work) and probing
    /// with `prober`.
    pub fn new(resolver: Option<Resolver>, prober: Prober, options: MonitorOptions) -> Monitor {
        Monitor {
            resolver,
            prober,
            options: Arc::new(options),
            fence: None,
        }
    }

    /// The options.
    pub fn options(&self) -> &MonitorOptions {
        &self.options
    }

    /// The same monitor with another time limit for a run (the exporter's `/probe?timeout=`).
    pub fn with_deadline(&self, deadline: Duration) -> Monitor {
        let mut options = (*self.options).clone();
        options.deadline = deadline;
        Monitor {
            resolver: self.resolver.clone(),
            prober: self.prober.clone(),
            options: Arc::new(options),
            fence: self.fence.clone(),
        }
    }

    /// The same monitor, never connecting to an address inside `fence` (loopback, link-local,
    /// private); the fence collects what it refused.
    pub fn fenced(&self, fence: Arc<fence::Fence>) -> Monitor {
        Monitor {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// Check every target within the deadline. Never fails: what cannot be told is UNKNOWN.
    pub async fn run(&self, targets: &[Target]) -> RunReport {
        let started = Instant::now();
        let now = SystemTime::now();
        let deadline = tokio::time::Instant::now() + self.options.deadline;
        let mut run = RunReport {
            status: Severity::Ok,
            started: checks::epoch_secs(now),
            elapsed_seconds: 0.0,
            resolver: self.resolver.as_ref().map(|r| r.address().to_string()),
            rrsig_warn_days: self.options.check.rrsig_warn_days,
            cert_warn_days: self.options.check.cert_warn_days,
            domains: Vec::new(),
            endpoints: Vec::new(),
            checks: Vec::new(),
        };
        let given_records = !self.options.records.is_empty();
        let given_addresses = !self.options.addresses.is_empty();
        let needs_dns = !(given_records && given_addresses);
        let resolver = match (&self.resolver, needs_dns) {
            (_, false) => None,
            (Some(r), true) => Some(r.clone()),
            (None, true) => {
                run.checks.push(Check::name(
                    CheckKind::Resolver,
                    "resolver",
                    Severity::Unknown,
                    "no resolver to ask: give --resolver ADDR or [resolver] address",
                ));
                return finish(run, started);
            }
        };

        // The resolver must validate, or nothing it says about DNSSEC means anything.
        if let Some(resolver) = &resolver
            && !given_records
        {
            let mut names: Vec<String> = Vec::new();
            for t in targets {
                if !names.iter().any(|n| n == t.name()) && names.len() < VALIDATION_PROBES {
                    names.push(t.name().to_string());
                }
            }
            let mut set = JoinSet::new();
            for (i, name) in names.into_iter().enumerate() {
                let r = resolver.clone();
                set.spawn(async move {
                    let probe = match timeout_at(deadline, r.probe_validation(&name)).await {
                        Ok(result) => result.map_err(|e| e.to_string()),
                        Err(_) => Err("no answer within the run's time limit".to_string()),
                    };
                    (i, probe)
                });
            }
            let mut probes = Vec::new();
            while let Some(joined) = set.join_next().await {
                if let Ok(found) = joined {
                    probes.push(found);
                }
            }
            probes.sort_by_key(|(i, _)| *i);
            let probes: Vec<_> = probes.into_iter().map(|(_, p)| p).collect();
            let (check, validation) = checks::resolver(&resolver.address().to_string(), &probes);
            run.checks.push(check);
            if let Validation::Unusable(_) = validation {
                return finish(run, started);
            }
        }

        // Targets to endpoints: mail domains through their MX RRset.
        let mut endpoints: Vec<(Endpoint, Vec<String>)> = Vec::new();
        let mut add =
            |ep: Endpoint, via: Option<&str>| match endpoints.iter_mut().find(|(e, _)| *e == ep) {
                Some((_, vias)) => vias.extend(via.map(str::to_string)),
                None => endpoints.push((ep, via.map(str::to_string).into_iter().collect())),
            };
        let mut mx_lookups = JoinSet::new();
        for (i, target) in targets.iter().enumerate() {
            match target {
                Target::Host(ep) => add(ep.clone(), None),
                Target::Auto(name) | Target::Domain(name) => {
                    let Some(r) = resolver.clone() else {
                        continue;
                    };
                    let name = name.clone();
                    mx_lookups.spawn(async move {
                        let found = match timeout_at(deadline, r.mx(&name)).await {
                            Ok(result) => result.map_err(|e| e.to_string()),
                            Err(_) => Err("no answer within the run's time limit".to_string()),
                        };
                        (i, found)
                    });
                }
            }
        }
        let mut mx_results = Vec::new();
        while let Some(joined) = mx_lookups.join_next().await {
            if let Ok(found) = joined {
                mx_results.push(found);
            }
        }
        mx_results.sort_by_key(|(i, _)| *i);
        for (i, found) in mx_results {
            let (name, forced) = match &targets[i] {
                Target::Auto(name) => (name.as_str(), false),
                Target::Domain(name) => (name.as_str(), true),
                Target::Host(_) => continue,
            };
            let lookup = match found {
                Ok(lookup) => lookup,
                Err(err) => {
                    run.checks.push(Check::name(
                        CheckKind::Target,
                        name,
                        Severity::Unknown,
                        format!("cannot look up the MX records of {name}: {err}"),
                    ));
                    continue;
                }
            };
            let nodata = matches!(
                lookup.status,
                DnsStatus::Missing {
                    nxdomain: false,
                    ..
                }
            );
            let nxdomain = matches!(lookup.status, DnsStatus::Missing { nxdomain: true, .. });
            if nxdomain && !forced {
                run.checks.push(Check::name(
                    CheckKind::Target,
                    name,
                    Severity::Critical,
                    format!("{name} does not exist (NXDOMAIN, {})", lookup.status),
                ));
                continue;
            }
            if nodata && !forced {
                // Not a mail domain: a host, port 25.
                if let Ok(ep) = Endpoint::new(name, None, None) {
                    add(ep, None);
                }
                continue;
            }
            run.checks.push(checks::mx_secure(name, &lookup));
            run.domains.push(domain_report(name, &lookup));
            if nodata {
                // Implicit MX (RFC 5321 §5.1): the domain itself.
                if let Ok(ep) = Endpoint::new(name, None, None) {
                    add(ep, Some(name));
                }
            }
            for mx in &lookup.records {
                if mx.host.is_root() {
                    continue;
                }
                let host = mx.host.to_ascii();
                if let Ok(ep) = Endpoint::new(host.trim_end_matches('.'), None, None) {
                    add(ep, Some(name));
                }
            }
        }

        // Per endpoint: its DNS, then at once its probes. The handshakes of the first endpoints
        // overlap the lookups of the others: with every lookup first, the server sat idle for
        // the DNS part of a run (a tenth of it with 500 endpoints).
        let checked = self
            .check_endpoints(resolver.as_ref(), &endpoints, deadline)
            .await;

        // Judge.
        for ((ep, via), checked) in endpoints.iter().zip(checked) {
            let Checked {
                dns: d,
                plan: (records, _, problem),
                reports,
            } = checked;
            let (endpoint_checks, tlsa) =
                self.judge_endpoint(ep, &d, &records, problem, &reports, now);
            let status = worst(endpoint_checks.iter().map(|c| c.status));
            run.endpoints.push(EndpointReport {
                host: ep.host.clone(),
                port: ep.port,
                protocol: ep.protocol.as_str(),
                mx_of: via.clone(),
                status,
                verdict: checks::endpoint_verdict(tlsa.problem.is_some(), &reports),
                tlsa,
                max_records: self.max_records(ep),
                addresses: reports,
            });
            run.checks.extend(endpoint_checks);
        }
        finish(run, started)
    }

    /// Every endpoint's DNS (at most [`DNS_CONCURRENCY`] at once) and, as soon as it is known,
    /// its probes (at most `concurrency` handshakes at once over all endpoints), within the
    /// deadline. In the order of `endpoints`.
    async fn check_endpoints(
        &self,
        resolver: Option<&Resolver>,
        endpoints: &[(Endpoint, Vec<String>)],
        deadline: tokio::time::Instant,
    ) -> Vec<Checked> {
        let dns_permits = Arc::new(Semaphore::new(DNS_CONCURRENCY));
        let probe_permits = Arc::new(Semaphore::new(self.options.concurrency.max(1)));
        let mut set = JoinSet::new();
        for (i, (ep, _)) in endpoints.iter().enumerate() {
            let monitor = self.clone();
            let resolver = resolver.cloned();
            let ep = ep.clone();
            let dns_permits = Arc::clone(&dns_permits);
            let probe_permits = Arc::clone(&probe_permits);
            set.spawn(async move {
                let dns = match &resolver {
                    Some(r) => {
                        let _permit = dns_permits.acquire_owned().await.ok();
                        monitor.endpoint_dns(r, &ep, deadline).await
                    }
                    None => EndpointDns::default(),
                };
                let plan = monitor.plan(&ep, &dns);
                let reports = monitor
                    .probe_endpoint(&ep, &plan, probe_permits, deadline)
                    .await;
                (i, Checked { dns, plan, reports })
            });
        }
        let mut out: Vec<Option<Checked>> = endpoints.iter().map(|_| None).collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, checked)) = joined
                && let Some(slot) = out.get_mut(i)
            {
                *slot = Some(checked);
            }
        }
        // A task that panicked: nothing was seen (the judges say "not looked up").
        out.into_iter()
            .map(|slot| {
                slot.unwrap_or_else(|| Checked {
                    dns: EndpointDns::default(),
                    plan: (Vec::new(), Vec::new(), None),
                    reports: Vec::new(),
                })
            })
            .collect()
    }

    /// What DNS says about one endpoint: TLSA (with the zone's TTL), addresses, `_tcp` parent.
    async fn endpoint_dns(
        &self,
        r: &Resolver,
        ep: &Endpoint,
        deadline: tokio::time::Instant,
    ) -> EndpointDns {
        let want_tlsa = self.options.records.is_empty();
        let want_addresses = self.options.addresses.is_empty();
        let late = || "no answer within the run's time limit".to_string();
        let owner = ep.owner_name();
        let tlsa = async {
            if !want_tlsa {
                return None;
            }
            Some(match timeout_at(deadline, tlsa_lookup(r, &owner)).await {
                Ok(found) => found,
                Err(_) => Err(late()),
            })
        };
        let addresses = async {
            if !want_addresses {
                return None;
            }
            Some(match timeout_at(deadline, r.addresses(&ep.host)).await {
                Ok(found) => found.map_err(|e| e.to_string()),
                Err(_) => Err(late()),
            })
        };
        let tcp = async {
            if !want_tlsa {
                return None;
            }
            Some(match timeout_at(deadline, r.tcp_parent(&ep.host)).await {
                Ok(found) => found.map(|(p, _)| p).map_err(|e| e.to_string()),
                Err(_) => Err(late()),
            })
        };
        let (tlsa, addresses, tcp_parent) = tokio::join!(tlsa, addresses, tcp);
        let (tlsa, original_ttl) = match tlsa {
            Some(Ok((lookup, ttl))) => (Some(Ok(lookup)), ttl),
            Some(Err(err)) => (Some(Err(err)), None),
            None => (None, None),
        };
        EndpointDns {
            tlsa,
            addresses,
            tcp_parent,
            original_ttl,
        }
    }

    /// The records to match and the addresses to probe for one endpoint, and why DANE cannot
    /// apply when it cannot (then nothing is probed).
    fn plan(&self, ep: &Endpoint, dns: &EndpointDns) -> Plan {
        let (records, problem) = if !self.options.records.is_empty() {
            (self.options.records.clone(), None)
        } else {
            match &dns.tlsa {
                Some(tlsa) => {
                    let (_, problem) = checks::tlsa_secure(ep, tlsa);
                    let records = tlsa.as_ref().map(|l| l.records.clone()).unwrap_or_default();
                    (records, problem)
                }
                None => (Vec::new(), None),
            }
        };
        let addrs: Vec<SocketAddr> = if !self.options.addresses.is_empty() {
            self.options
                .addresses
                .iter()
                .map(|ip| SocketAddr::new(*ip, ep.port))
                .collect()
        } else {
            match &dns.addresses {
                Some(Ok(lookup)) if !lookup.status.is_bogus() => {
                    let mut out: Vec<SocketAddr> = Vec::new();
                    for ip in &lookup.records {
                        let sa = SocketAddr::new(*ip, ep.port);
                        if let Some(fence) = &self.fence
                            && !fence.admits(&ep.host, sa)
                        {
                            continue;
                        }
                        if !out.contains(&sa) {
                            out.push(sa);
                        }
                    }
                    out
                }
                _ => Vec::new(),
            }
        };
        (records, addrs, problem)
    }

    /// Probe every planned address of one endpoint (each waits for one of `permits`), within
    /// the deadline; in the order of the plan.
    async fn probe_endpoint(
        &self,
        ep: &Endpoint,
        plan: &Plan,
        permits: Arc<Semaphore>,
        deadline: tokio::time::Instant,
    ) -> Vec<AddressReport> {
        let (records, addrs, problem) = plan;
        // No DANE here (no records, insecure, SERVFAIL): nothing to match, no handshake.
        if problem.is_some() {
            return Vec::new();
        }
        let records: Arc<[TlsaRecord]> = records.as_slice().into();
        let probe = |addr: SocketAddr| {
            let target = ProbeTarget {
                host: ep.host.clone(),
                addr,
                protocol: ep.protocol,
            };
            let prober = self.prober.clone();
            let records = Arc::clone(&records);
            let permits = Arc::clone(&permits);
            async move {
                let probed = timeout_at(deadline, async {
                    let _permit = permits.acquire_owned().await.ok();
                    prober.probe_address(&target, &records).await
                })
                .await;
                probed.unwrap_or_else(|_| late_report(&target))
            }
        };
        if let [addr] = addrs.as_slice() {
            return vec![probe(*addr).await];
        }
        let mut set = JoinSet::new();
        for (j, addr) in addrs.iter().enumerate() {
            let probing = probe(*addr);
            set.spawn(async move { (j, probing.await) });
        }
        let mut out: Vec<Option<AddressReport>> = vec![None; addrs.len()];
        while let Some(joined) = set.join_next().await {
            if let Ok((j, report)) = joined
                && let Some(slot) = out.get_mut(j)
            {
                *slot = Some(report);
            }
        }
        out.into_iter()
            .zip(addrs)
            .map(|(slot, addr)| {
                slot.unwrap_or_else(|| {
                    late_report(&ProbeTarget {
                        host: ep.host.clone(),
                        addr: *addr,
                        protocol: ep.protocol,
                    })
                })
            })
            .collect()
    }

    fn max_records(&self, ep: &Endpoint) -> usize {
        self.options
            .max_records
            .get(&format!("{}:{}", ep.host, ep.port))
            .copied()
            .unwrap_or(self.options.check.max_records)
    }

    fn judge_endpoint(
        &self,
        ep: &Endpoint,
        dns: &EndpointDns,
        records: &[TlsaRecord],
        problem: Option<String>,
        reports: &[AddressReport],
        now: SystemTime,
    ) -> (Vec<Check>, RecordSet) {
        let key = format!("{}:{}", ep.host, ep.port);
        let mut out = Vec::new();
        let given_records = !self.options.records.is_empty();
        let given_addresses = !self.options.addresses.is_empty();
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
                            self.options.check.rrsig_warn_days,
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
            let max = self.max_records(ep);
            out.push(checks::tlsa_records(ep, records, max));
            let usable = checks::usable(records);
            let known = self
                .options
                .known_keys
                .get(&key)
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let now = SystemTime::now();
            let retiring: Vec<TlsaRecord> = self
                .options
                .retiring
                .get(&key)
                .into_iter()
                .flatten()
                .filter(|(_, until)| now < *until)
                .map(|(record, _)| record.clone())
                .collect();
            if let Some(check) = checks::tlsa_stale_retiring(ep, &usable, reports, known, &retiring)
            {
                out.push(check);
            }
        }
        for report in reports {
            out.push(checks::tlsa_match(ep, report));
            if let Some(check) =
                checks::cert_expiry(ep, report, self.options.check.cert_warn_days, now)
            {
                out.push(check);
            }
        }
        (out, set)
    }
}

fn domain_report(name: &str, lookup: &Lookup<MxHost>) -> DomainReport {
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
    }
}

/// The report for an address whose probe did not finish within the run's deadline.
fn late_report(target: &ProbeTarget) -> AddressReport {
    AddressReport {
        host: target.host.clone(),
        address: target.addr,
        protocol: target.protocol,
        verdict: Verdict::Unknown,
        reason: Some("the probe did not finish within the run's time limit (--timeout)".into()),
        keys: Vec::new(),
        attempts: Vec::new(),
        ignored_records: Vec::new(),
        unmatched_records: Vec::new(),
        elapsed_ms: 0,
    }
}

fn finish(mut run: RunReport, started: Instant) -> RunReport {
    run.status = worst(run.checks.iter().map(|c| c.status));
    run.elapsed_seconds = started.elapsed().as_secs_f64();
    run
}
