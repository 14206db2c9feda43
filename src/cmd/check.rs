//! `dane-roll check`: probe every address of a host live and say whether a DANE sender would
//! deliver mail there. The records come from [`records_for`] (`--tlsa`, or the validated lookup
//! through `--resolver`), the addresses from [`addresses_for`] (`--address`, the validating
//! resolver, or the system resolver); the probing and the verdict belong to [`crate::probe`].

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};
use serde::Serialize;

use crate::cli::{CheckArgs, CheckFormat, Cli};
use crate::config::{Endpoint, Protocol};
use crate::dns::{Resolver, Status as DnsStatus};
use crate::exit::Status;
use crate::probe::{
    AddressReport, AttemptOutcome, KeyAlgorithm, ProbeOptions, ProbeTarget, Prober, Verdict,
};
use crate::tlsa::TlsaRecord;

/// Where the records checked against came from, and whether DNSSEC vouches for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordSource {
    /// Given with `--tlsa`: not looked up, not validated.
    CommandLine,
    /// Looked up through a validating resolver and DNSSEC-secure (the AD bit).
    DnsSecure,
    /// Looked up, but not DNSSEC-secure (or SERVFAIL, or none): a sender would not use them.
    DnsInsecure,
}

/// The TLSA record set for an endpoint, and where it came from.
#[derive(Debug, Clone, Serialize)]
pub struct RecordSet {
    /// The owner name, `_25._tcp.host.`.
    pub owner: String,
    /// Where the records came from.
    pub source: RecordSource,
    /// The records.
    pub records: Vec<TlsaRecord>,
    /// What the validating resolver said (`secure`, `bogus (SERVFAIL)`, …), when it was asked.
    pub dns_status: Option<String>,
    /// Why the record set cannot give DANE, when it cannot: the host fails whatever the probe
    /// finds.
    pub problem: Option<String>,
}

/// The whole outcome, as printed in JSON.
#[derive(Debug, Serialize)]
struct CheckReport<'a> {
    host: &'a str,
    port: u16,
    protocol: &'static str,
    verdict: Verdict,
    tlsa: &'a RecordSet,
    addresses: &'a [AddressReport],
}

/// Run the command.
pub fn run(cli: &Cli, args: &CheckArgs) -> anyhow::Result<Status> {
    let endpoint = endpoint_of(args)?;
    let step = Duration::try_from_secs_f64(args.timeout)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| {
            format!(
                "--timeout {}: give a positive number of seconds",
                args.timeout
            )
        })?;
    let mut algorithms: Vec<KeyAlgorithm> = Vec::new();
    for algorithm in &args.key_algorithms {
        if !algorithms.contains(algorithm) {
            algorithms.push(*algorithm);
        }
    }
    if algorithms.is_empty() {
        algorithms = KeyAlgorithm::ALL.to_vec();
    }
    let options = ProbeOptions {
        helo: args.helo.clone(),
        step_timeout: step,
        // Every attempt may take a connect, three replies and a handshake.
        address_timeout: step * 5 * u32::try_from(algorithms.len()).unwrap_or(3),
        algorithms,
        ..ProbeOptions::default()
    };
    let prober = Prober::new(options)?;

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let resolver = match &args.resolver {
            Some(text) => Some(Resolver::new(resolver_address(text)?, step)),
            None => None,
        };
        let records = match records_for(args, &endpoint, resolver.as_ref()).await {
            Ok(records) => records,
            Err(err) => {
                eprintln!("dane-roll: cannot tell: {err:#}");
                return Ok(Status::Unknown);
            }
        };
        let addresses = match addresses_for(args, &endpoint, resolver.as_ref()).await {
            Ok(addresses) => addresses,
            Err(err) => {
                eprintln!("dane-roll: cannot tell: {err:#}");
                return Ok(Status::Unknown);
            }
        };
        let targets: Vec<ProbeTarget> = addresses
            .into_iter()
            .map(|addr| ProbeTarget {
                host: endpoint.host.clone(),
                addr,
                protocol: endpoint.protocol,
            })
            .collect();
        let reports = prober
            .probe_many(targets, &records.records, args.concurrency)
            .await;
        let verdict = match records.problem {
            Some(_) => Verdict::Fail,
            None => overall(&reports),
        };
        match args.format {
            CheckFormat::Json => {
                let report = CheckReport {
                    host: &endpoint.host,
                    port: endpoint.port,
                    protocol: endpoint.protocol.as_str(),
                    verdict,
                    tlsa: &records,
                    addresses: &reports,
                };
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            CheckFormat::Text => print!("{}", text(&endpoint, &records, &reports, cli.quiet)),
        }
        Ok(match verdict {
            Verdict::Pass => Status::Ok,
            Verdict::Fail => Status::Failure,
            Verdict::Unknown => Status::Unknown,
        })
    })
}

/// `HOST[:PORT]` and `--protocol` as an endpoint.
fn endpoint_of(args: &CheckArgs) -> anyhow::Result<Endpoint> {
    let (host, port) = match args.target.rsplit_once(':') {
        Some((host, port)) => match port.parse::<u16>() {
            Ok(port) if port != 0 => (host, Some(port)),
            _ => bail!("{}: \"{port}\" is not a port (1–65535)", args.target),
        },
        None => (args.target.as_str(), None),
    };
    let port = port.unwrap_or(crate::config::DEFAULT_PORT);
    let protocol = match args.protocol.or_else(|| Protocol::default_for_port(port)) {
        Some(protocol) => protocol,
        None => bail!(
            "port {port} has no usual protocol; say which with --protocol smtp, submission, imap, pop3 or tls"
        ),
    };
    Endpoint::new(host, Some(port), Some(protocol))
        .map_err(|err| anyhow::anyhow!("{}: {err}", args.target))
}

/// `ADDR[:PORT]` of the validating resolver; port 53 unless given.
fn resolver_address(text: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .with_context(|| format!("--resolver {text}: give an IP address, with :PORT if not 53"))?;
    Ok(SocketAddr::new(ip, 53))
}

/// The TLSA records to check against: `--tlsa` when given (not validated), else the validated
/// lookup of the owner name through `--resolver`. An error means "cannot tell" (the resolver did
/// not answer); an answer that cannot give DANE (insecure, SERVFAIL, none) is a
/// [`RecordSet::problem`].
pub async fn records_for(
    args: &CheckArgs,
    endpoint: &Endpoint,
    resolver: Option<&Resolver>,
) -> anyhow::Result<RecordSet> {
    let owner = endpoint.owner_name();
    if !args.tlsa.is_empty() {
        return Ok(RecordSet {
            owner,
            source: RecordSource::CommandLine,
            records: args.tlsa.clone(),
            dns_status: None,
            problem: None,
        });
    }
    let Some(resolver) = resolver else {
        bail!(
            "no TLSA records to check against: give --resolver ADDR (a validating resolver) to \
             look up {owner}, or the records with --tlsa \"3 1 1 <hex>\""
        );
    };
    let lookup = resolver.tlsa(&owner).await?;
    let status = lookup.status.clone();
    // RFC 7672 §2.2: only DNSSEC-secure TLSA records count; SERVFAIL makes senders defer mail;
    // no records (or insecure ones) mean no DANE, so senders fall back to unauthenticated TLS.
    let problem = match &status {
        DnsStatus::Secure if lookup.records.is_empty() => {
            Some(format!("{owner} has no TLSA record this tool understands"))
        }
        DnsStatus::Secure => None,
        DnsStatus::Insecure => Some(format!(
            "the TLSA records at {owner} are not DNSSEC-secure: senders ignore them"
        )),
        DnsStatus::Bogus { .. } => Some(format!(
            "the TLSA lookup of {owner} fails ({status}): DANE senders defer mail to this host"
        )),
        DnsStatus::Missing { .. } => Some(format!("{owner} has no TLSA records ({status})")),
    };
    Ok(RecordSet {
        owner,
        source: if status.is_secure() && !lookup.records.is_empty() {
            RecordSource::DnsSecure
        } else {
            RecordSource::DnsInsecure
        },
        records: lookup.records,
        dns_status: Some(status.to_string()),
        problem,
    })
}

/// The addresses to probe: `--address`, or every A and AAAA address of the host from the
/// validating resolver (`--resolver`), or from the system resolver.
pub async fn addresses_for(
    args: &CheckArgs,
    endpoint: &Endpoint,
    resolver: Option<&Resolver>,
) -> anyhow::Result<Vec<SocketAddr>> {
    if !args.addresses.is_empty() {
        return Ok(args
            .addresses
            .iter()
            .map(|ip: &IpAddr| SocketAddr::new(*ip, endpoint.port))
            .collect());
    }
    let mut found: Vec<SocketAddr> = Vec::new();
    if let Some(resolver) = resolver {
        let lookup = resolver.addresses(&endpoint.host).await?;
        if lookup.status.is_bogus() {
            bail!(
                "the address lookup of {} fails ({})",
                endpoint.host,
                lookup.status
            );
        }
        for ip in lookup.records {
            let addr = SocketAddr::new(ip, endpoint.port);
            if !found.contains(&addr) {
                found.push(addr);
            }
        }
    } else {
        let resolved = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port))
            .await
            .with_context(|| format!("cannot resolve {}", endpoint.host))?;
        for addr in resolved {
            if !found.contains(&addr) {
                found.push(addr);
            }
        }
    }
    if found.is_empty() {
        bail!("{} has no address", endpoint.host);
    }
    Ok(found)
}

/// The worst verdict: one failing address fails the host; otherwise one unknown makes it unknown.
fn overall(reports: &[AddressReport]) -> Verdict {
    if reports.iter().any(|r| r.verdict == Verdict::Fail) {
        Verdict::Fail
    } else if reports.is_empty() || reports.iter().any(|r| r.verdict == Verdict::Unknown) {
        Verdict::Unknown
    } else {
        Verdict::Pass
    }
}

/// The report for people.
fn text(
    endpoint: &Endpoint,
    records: &RecordSet,
    reports: &[AddressReport],
    quiet: bool,
) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let source = match (&records.source, &records.dns_status) {
        (RecordSource::CommandLine, _) => "given on the command line, not DNSSEC-validated",
        (_, Some(status)) => status.as_str(),
        (_, None) => "looked up",
    };
    if !quiet || records.problem.is_some() {
        let _ = writeln!(out, "{endpoint}: TLSA {} ({source})", records.owner);
        for record in &records.records {
            let _ = writeln!(out, "  {record}");
        }
    }
    if let Some(problem) = &records.problem {
        let _ = writeln!(out, "FAIL: {problem}");
    }
    for report in reports {
        if quiet && report.verdict == Verdict::Pass {
            continue;
        }
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
    if !quiet {
        let passed = reports
            .iter()
            .filter(|r| r.verdict == Verdict::Pass)
            .count();
        let _ = writeln!(out, "{passed} of {} addresses pass", reports.len());
    }
    out
}
