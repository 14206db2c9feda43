//! One run of the checks: a [`Monitor`] (one resolver and one [`Prober`], OpenSSL contexts built
//! once) checks the resolver's validation, turns targets into endpoints (mail domains through
//! their MX RRset), asks DNS per endpoint (cheap, many at once) and probes each endpoint's
//! addresses as soon as its answers are in (bounded: handshakes are the cost, and they overlap
//! the other endpoints' lookups), then judges each endpoint ([`super::judge`]), all within one
//! deadline.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::Semaphore;
use tokio::time::timeout_at;

use crate::config::{CheckSettings, Endpoint};
use crate::dns::{Resolver, Status as DnsStatus};
use crate::notify::Severity;
use crate::probe::{AddressReport, ProbeTarget, Prober};
use crate::rollover::KeyHash;
use crate::tlsa::TlsaRecord;

use super::beside::{self, BesideOptions};
use super::checks::{self, Check, CheckKind, Validation, worst};
use super::fence::Fence;
use super::judge::{self, EndpointDns};
use super::report::{EndpointReport, RunReport, domain_report};
use super::targets::Target;
use super::tasks::{spawn_in_order, spawn_in_order_bounded};

/// The overall time a `check` run may take unless `--timeout` says otherwise.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// How many addresses `check` probes at once unless told otherwise (each with its key
/// algorithms side by side: up to three connections).
///
/// Chosen from `benches/field.sh` (docs/BENCHMARKS.md, "Field": 1,000 endpoints behind a 50 ms
/// round trip and 1 % loss, the lab's Postfix on the same 2 shared cores): 16 at once took
/// 29.7 s, 32 took 16.3 s, 64 took 11.2 s and 128 took 10.3 s (latency bounds 18.9, 9.5, 4.8
/// and 2.4 s). 64 is the first to pass 100× the seeds' loop (106×; 1.19 s a host); past it the
/// host and the server set the pace, not the round trips, and twice the connections held open
/// on the servers probed bought 8 %.
pub const DEFAULT_CHECK_CONCURRENCY: usize = 64;
/// How many addresses `serve` probes at once unless told otherwise: half of `check`'s, because
/// it runs all the time beside the services it watches; the same figures put 1,000 endpoints at
/// 50 ms within 16.3 s at 32, well inside a scrape's minute.
pub const DEFAULT_SERVE_CONCURRENCY: usize = 32;
/// `check`'s default (the name other modules used before `check` and `serve` had their own).
pub const DEFAULT_CONCURRENCY: usize = DEFAULT_CHECK_CONCURRENCY;
/// How many DNS lookups run at once.
pub const DNS_CONCURRENCY: usize = 64;
/// How many names the resolver's validation is probed with, at most.
const VALIDATION_PROBES: usize = 4;
/// What a lookup not answered within the run's deadline says.
const LATE: &str = "no answer within the run's time limit";

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
    /// The checks beside DANE (TLSRPT, MTA-STS) for mail domains; `None`: not made.
    pub beside: Option<BesideOptions>,
}

/// One resolver and one prober for a run. Cheap to clone; `Send` and `Sync`.
#[derive(Clone)]
pub struct Monitor {
    resolver: Option<Resolver>,
    prober: Prober,
    options: Arc<MonitorOptions>,
    /// When set, addresses inside it are not probed (`serve`'s `/probe`).
    fence: Option<Arc<Fence>>,
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
    pub fn fenced(&self, fence: Arc<Fence>) -> Monitor {
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
            let probes: Vec<_> = spawn_in_order(names.into_iter().map(|name| {
                let r = resolver.clone();
                async move { within(deadline, r.probe_validation(&name)).await }
            }))
            .await
            .into_iter()
            .flatten()
            .collect();
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
        let mut domains = Vec::new();
        for (i, target) in targets.iter().enumerate() {
            match target {
                Target::Host(ep) => add(ep.clone(), None),
                Target::Auto(name) | Target::Domain(name) => {
                    if let Some(r) = resolver.clone() {
                        domains.push((i, r, name.clone()));
                    }
                }
            }
        }
        let indices: Vec<usize> = domains.iter().map(|(i, _, _)| *i).collect();
        let lookups = spawn_in_order(
            domains
                .into_iter()
                .map(|(_, r, name)| async move { within(deadline, r.mx(&name)).await }),
        )
        .await;
        let mx_results = indices
            .into_iter()
            .zip(lookups)
            .filter_map(|(i, found)| Some((i, found?)));
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
        // The records beside DANE (TLSRPT, MTA-STS) of each mail domain, meanwhile.
        let mail_domains: Vec<String> = run.domains.iter().map(|d| d.domain.clone()).collect();
        let (checked, besides) = tokio::join!(
            self.check_endpoints(resolver.as_ref(), &endpoints, deadline),
            beside::look_all(
                self.options.beside.as_ref(),
                resolver.as_ref(),
                &mail_domains,
                deadline,
                self.fence.is_some(),
            ),
        );
        for found in &besides {
            run.checks.push(checks::tlsrpt(found));
            run.checks.push(checks::mta_sts(found));
            if let Some(domain) = run.domains.iter_mut().find(|d| d.domain == found.domain) {
                domain.mta_sts = found.policy().cloned();
            }
        }

        // Judge.
        for ((ep, via), checked) in endpoints.iter().zip(checked) {
            let Checked {
                dns: d,
                plan: (records, _, problem),
                mut reports,
            } = checked;
            let (mut endpoint_checks, tlsa) =
                judge::endpoint(&self.options, ep, &d, &records, problem, &reports, now);
            if let Some(check) = beside::mta_sts_mx(
                self.options.beside.as_ref(),
                ep,
                via,
                &besides,
                &mut reports,
            ) {
                endpoint_checks.push(check);
            }
            let status = worst(endpoint_checks.iter().map(|c| c.status));
            run.endpoints.push(EndpointReport {
                host: ep.host.clone(),
                port: ep.port,
                protocol: ep.protocol.as_str(),
                mx_of: via.clone(),
                status,
                verdict: checks::endpoint_verdict(tlsa.problem.is_some(), &reports),
                tlsa,
                max_records: judge::max_records(&self.options, ep),
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
        // Makers of each endpoint's check (small: what it needs, owned), so that a check's
        // future exists only once it may run.
        let checks: Vec<_> = endpoints
            .iter()
            .map(|(ep, _)| {
                let monitor = self.clone();
                let resolver = resolver.cloned();
                let ep = ep.clone();
                let dns_permits = Arc::clone(&dns_permits);
                let probe_permits = Arc::clone(&probe_permits);
                move || async move {
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
                    Checked { dns, plan, reports }
                }
            })
            .collect();
        // Endpoints in flight: every DNS permit and every probe permit busy, and as many again
        // waiting with their DNS done, so that neither half ever idles for want of work.
        let in_flight = 2 * (DNS_CONCURRENCY + self.options.concurrency.max(1));
        // A task that panicked: nothing was seen (the judges say "not looked up").
        spawn_in_order_bounded(checks, in_flight)
            .await
            .into_iter()
            .map(|checked| {
                checked.unwrap_or_else(|| Checked {
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
        let owner = ep.owner_name();
        let tlsa = async {
            if want_tlsa {
                Some(within(deadline, r.tlsa_with_zone_ttl(owner.as_str())).await)
            } else {
                None
            }
        };
        let addresses = async {
            if want_addresses {
                Some(within(deadline, r.addresses(&ep.host)).await)
            } else {
                None
            }
        };
        let tcp = async {
            if want_tlsa {
                Some(
                    within(deadline, r.tcp_parent(&ep.host))
                        .await
                        .map(|(p, _)| p),
                )
            } else {
                None
            }
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
        spawn_in_order(addrs.iter().map(|addr| probe(*addr)))
            .await
            .into_iter()
            .zip(addrs)
            .map(|(report, addr)| {
                report.unwrap_or_else(|| {
                    late_report(&ProbeTarget {
                        host: ep.host.clone(),
                        addr: *addr,
                        protocol: ep.protocol,
                    })
                })
            })
            .collect()
    }
}

/// A lookup's answer within the run's deadline; its error, or the lateness, as text.
async fn within<T, E: std::fmt::Display>(
    deadline: tokio::time::Instant,
    lookup: impl Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match timeout_at(deadline, lookup).await {
        Ok(found) => found.map_err(|e| e.to_string()),
        Err(_) => Err(LATE.to_string()),
    }
}

/// The report for an address whose probe did not finish within the run's deadline.
fn late_report(target: &ProbeTarget) -> AddressReport {
    AddressReport::unknown(
        target,
        "the probe did not finish within the run's time limit (--timeout)".into(),
    )
}

fn finish(mut run: RunReport, started: Instant) -> RunReport {
    run.status = worst(run.checks.iter().map(|c| c.status));
    run.elapsed_seconds = started.elapsed().as_secs_f64();
    run
}
