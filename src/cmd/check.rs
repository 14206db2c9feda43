//! `dane-roll check`: run the monitoring checklist once on mail domains, endpoints or the
//! configured endpoints, print it (text, JSON or Nagios) and exit like a Nagios plugin (0 ok,
//! 1 warning, 2 critical, 3 unknown). `--notify` sends alerts for checks whose state changed.
//! The checks themselves belong to [`crate::monitor`]; this module turns flags into a
//! [`Monitor`] and the outcome into output.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::cli::{CheckArgs, CheckFormat, Cli};
use crate::config::{Config, ConfigError, RESOLV_CONF, first_nameserver, parse_socket_addr};
use crate::dns::Resolver;
use crate::exit::Status;
use crate::monitor::beside::{BesideOptions, POLICY_TIMEOUT, Trust};
use crate::monitor::report::{self, TextStyle};
use crate::monitor::{Monitor, MonitorOptions, RunReport, Target, TargetMode, alerts};
use crate::notify::{Notifier, Severity};
use crate::probe::{DEFAULT_STEP_TIMEOUT, KeyAlgorithm, ProbeOptions, Prober};
use crate::rollover::KeyHash;
use crate::store::{KeyRole, Store};
use crate::tlsa::TlsaRecord;

/// Extra time, past the run's own deadline, before the command gives up on it.
const GRACE: Duration = Duration::from_secs(2);

/// Run the command.
pub(super) fn run(cli: &Cli, args: &CheckArgs) -> anyhow::Result<Status> {
    let deadline = seconds(args.timeout, "--timeout")?;
    let config = load_config(cli, args.targets.is_empty() || args.notify)?;
    let mode = if args.mx {
        TargetMode::Domain
    } else if args.host || !args.addresses.is_empty() || !args.tlsa.is_empty() {
        // Addresses and records given belong to a host.
        TargetMode::Host
    } else {
        TargetMode::Auto
    };
    let mut targets = Vec::new();
    for text in &args.targets {
        targets.push(Target::parse(text, mode, args.protocol)?);
    }
    if targets.is_empty() {
        targets = configured_targets(config.as_ref());
        if targets.is_empty() {
            bail!("nothing to check: give a mail domain or host, or configure services");
        }
    }
    let monitor = build_monitor(
        config.as_ref(),
        MonitorFlags {
            helo: &args.helo,
            records: args.tlsa.clone(),
            addresses: args.addresses.clone(),
            ..MonitorFlags::new(
                args.resolver.as_deref(),
                &args.key_algorithms,
                args.concurrency,
                deadline,
                args.webpki_ca_file.as_deref(),
            )
        },
    )?;

    // One thread: the handshakes are CPU work, and on a 2-core machine shared with the server a
    // multi-threaded runtime (one worker per core) cost ~10 % more CPU per endpoint for no gain
    // in rate (benches/monitor.sh, docs/BENCHMARKS.md).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let run = runtime.block_on(async {
        match tokio::time::timeout(deadline + GRACE, monitor.run(&targets)).await {
            Ok(run) => run,
            Err(_) => overdue(deadline),
        }
    });

    match args.format {
        CheckFormat::Json => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            report::write_json(&run, &mut out)?;
            writeln!(out)?;
            out.flush()?;
        }
        CheckFormat::Nagios => print!("{}", report::nagios(&run)),
        CheckFormat::Text => {
            let style = TextStyle {
                colour: report::colour_for(std::io::stdout().is_terminal()),
                quiet: cli.quiet,
                details: args.details || cli.verbose > 0 || run.endpoints.len() == 1,
            };
            print!("{}", report::text(&run, style));
        }
    }

    if args.notify {
        let Some(config) = &config else {
            bail!("--notify needs the configuration (its [alerts] channels and state directory)");
        };
        let notifier = Notifier::new(&config.alerts)?;
        let mut store = Store::open(&config.state_dir)?;
        // Without targets the run checked every configured endpoint: it speaks for every stored
        // monitoring check (a removed endpoint's alert is closed); with targets only for those.
        let scope = if args.targets.is_empty() {
            alerts::Scope::Everything
        } else {
            alerts::Scope::Checked
        };
        let summary = runtime.block_on(alerts::notify(&notifier, &mut store, &run, scope))?;
        for (check, title, delivered) in &summary.sent {
            if !delivered {
                eprintln!("dane-roll: alert for {check} reached no channel: {title}");
            } else if cli.verbose > 0 {
                eprintln!("dane-roll: sent: {title}");
            }
        }
        for failure in &summary.failures {
            eprintln!("dane-roll: warning: {failure}");
        }
    }
    Ok(exit_status(run.status))
}

/// The exit status for a run's status.
pub(super) fn exit_status(s: Severity) -> Status {
    match s {
        Severity::Ok => Status::Ok,
        Severity::Warning => Status::Warning,
        Severity::Critical => Status::Failure,
        Severity::Unknown => Status::Unknown,
    }
}

/// A run that did not end in time (the run's own deadline should have stopped it first).
fn overdue(deadline: Duration) -> RunReport {
    let check = crate::monitor::Check::name(
        crate::monitor::CheckKind::Target,
        "run",
        Severity::Unknown,
        format!(
            "the checks did not finish within {}s (--timeout)",
            deadline.as_secs_f64()
        ),
    );
    RunReport {
        status: Severity::Unknown,
        started: crate::monitor::checks::epoch_secs(std::time::SystemTime::now()),
        elapsed_seconds: (deadline + GRACE).as_secs_f64(),
        resolver: None,
        rrsig_warn_days: 0,
        cert_warn_days: 0,
        domains: Vec::new(),
        endpoints: Vec::new(),
        checks: vec![check],
    }
}

/// A positive number of seconds.
pub(super) fn seconds(value: f64, flag: &str) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(value)
        .ok()
        .filter(|d| !d.is_zero())
        .with_context(|| format!("{flag} {value}: give a positive number of seconds"))
}

/// The configuration: required when `needed`, else used when the file is there.
pub(super) fn load_config(cli: &Cli, needed: bool) -> anyhow::Result<Option<Config>> {
    match Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref()) {
        Ok(config) => Ok(Some(config)),
        Err(ConfigError::NotFound { .. }) if !needed => Ok(None),
        Err(err) => Err(err.into()),
    }
}

/// Every endpoint of the configuration, once each.
pub(super) fn configured_targets(config: Option<&Config>) -> Vec<Target> {
    let mut out: Vec<Target> = Vec::new();
    for service in config.map(|c| c.services.as_slice()).unwrap_or(&[]) {
        for ep in &service.endpoints {
            let target = Target::Host(ep.clone());
            if !out.contains(&target) {
                out.push(target);
            }
        }
    }
    out
}

/// What the flags of `check` and `serve` say about the monitor.
pub(super) struct MonitorFlags<'a> {
    pub resolver: Option<&'a str>,
    pub algorithms: &'a [KeyAlgorithm],
    pub concurrency: usize,
    pub deadline: Duration,
    pub helo: &'a str,
    pub records: Vec<TlsaRecord>,
    pub addresses: Vec<std::net::IpAddr>,
    /// `--webpki-ca-file`: the roots MTA-STS checks trust instead of the system's.
    pub webpki_ca_file: Option<&'a std::path::Path>,
}

impl<'a> MonitorFlags<'a> {
    /// The flags `check` and `serve` share; the default HELO name, records and addresses looked up.
    pub(super) fn new(
        resolver: Option<&'a str>,
        algorithms: &'a [KeyAlgorithm],
        concurrency: usize,
        deadline: Duration,
        webpki_ca_file: Option<&'a std::path::Path>,
    ) -> Self {
        MonitorFlags {
            resolver,
            algorithms,
            concurrency,
            deadline,
            helo: crate::probe::DEFAULT_HELO,
            records: Vec::new(),
            addresses: Vec::new(),
            webpki_ca_file,
        }
    }
}

/// The monitor for a run: the resolver (flag, configuration, /etc/resolv.conf), one prober for
/// the key algorithms asked, thresholds and per-service bounds from the configuration, and the
/// pre-published keys from the store (when it exists).
pub(super) fn build_monitor(
    config: Option<&Config>,
    flags: MonitorFlags<'_>,
) -> anyhow::Result<Monitor> {
    let step = flags.deadline.min(DEFAULT_STEP_TIMEOUT);
    let resolver_addr: Option<SocketAddr> = match flags.resolver {
        Some(text) => Some(
            parse_socket_addr(text, crate::config::DNS_PORT)
                .map_err(|e| anyhow::anyhow!("--resolver {text}: {e}"))?,
        ),
        None => match config {
            Some(c) => Some(c.resolver.address),
            None => std::fs::read_to_string(RESOLV_CONF)
                .ok()
                .and_then(|t| first_nameserver(&t)),
        },
    };
    let query_timeout = config
        .map(|c| c.resolver.timeout)
        .unwrap_or(crate::config::DEFAULT_RESOLVER_TIMEOUT)
        .min(flags.deadline);
    let resolver = resolver_addr.map(|a| Resolver::new(a, query_timeout));

    let mut algorithms: Vec<KeyAlgorithm> = Vec::new();
    for algorithm in flags.algorithms {
        if !algorithms.contains(algorithm) {
            algorithms.push(*algorithm);
        }
    }
    if algorithms.is_empty() {
        algorithms = KeyAlgorithm::ALL.to_vec();
    }
    let prober = Prober::new(ProbeOptions {
        helo: flags.helo.to_string(),
        step_timeout: step,
        address_timeout: flags.deadline,
        algorithms,
        ..ProbeOptions::default()
    })?;

    let mut options = MonitorOptions {
        check: config.map(|c| c.check.clone()).unwrap_or_default(),
        concurrency: flags.concurrency.max(1),
        deadline: flags.deadline,
        records: flags.records,
        addresses: flags.addresses,
        max_records: HashMap::new(),
        known_keys: HashMap::new(),
        retiring: HashMap::new(),
        beside: Some(BesideOptions {
            trust: match flags.webpki_ca_file {
                Some(path) => {
                    Trust::from_file(path).map_err(|e| anyhow::anyhow!("--webpki-ca-file: {e}"))?
                }
                None => Trust::system(),
            },
            timeout: POLICY_TIMEOUT.min(flags.deadline),
        }),
    };
    if let Some(config) = config {
        let store = if config.state_dir.join(crate::store::DB_FILE).exists() {
            match Store::open(&config.state_dir) {
                Ok(store) => Some(store),
                Err(err) => {
                    eprintln!("dane-roll: warning: pre-published keys not known: {err}");
                    None
                }
            }
        } else {
            None
        };
        for service in &config.services {
            let keys: Vec<KeyHash> = store
                .as_ref()
                .and_then(|s| s.keys(&service.name).ok())
                .unwrap_or_default()
                .into_iter()
                .filter(|k| matches!(k.role, KeyRole::Next | KeyRole::New))
                .map(|k| k.hash)
                .collect();
            let retiring = store
                .as_ref()
                .map(|s| retiring_records(s, &service.name))
                .unwrap_or_default();
            for ep in &service.endpoints {
                let key = format!("{}:{}", ep.host, ep.port);
                options.max_records.insert(key.clone(), service.max_records);
                let owner = ep.owner_name();
                let here: Vec<(TlsaRecord, std::time::SystemTime)> = retiring
                    .iter()
                    .filter(|(r, _)| r.owner == owner)
                    .map(|(r, until)| (r.record.clone(), *until))
                    .collect();
                if !here.is_empty() {
                    options
                        .retiring
                        .entry(key.clone())
                        .or_default()
                        .extend(here);
                }
                if !keys.is_empty() {
                    options
                        .known_keys
                        .entry(key)
                        .or_default()
                        .extend(keys.iter().copied());
                }
            }
        }
    }
    Ok(Monitor::new(resolver, prober, options))
}

/// The records of `service` that dane-roll retired and that are not published again, each with
/// the end of its window ([`RETIRING_TTLS`]×TTL after the retire): until then resolvers may
/// still hold them. The window is compared when the checks run (`serve` runs for long).
///
/// [`RETIRING_TTLS`]: crate::monitor::checks::RETIRING_TTLS
fn retiring_records(
    store: &Store,
    service: &str,
) -> Vec<(crate::rollover::TlsaAt, std::time::SystemTime)> {
    let Ok(published) = store.published(service) else {
        return Vec::new();
    };
    let active: Vec<&crate::rollover::TlsaAt> = published
        .iter()
        .filter(|p| p.retired_at.is_none())
        .map(|p| &p.record)
        .collect();
    published
        .iter()
        .filter(|p| !active.contains(&&p.record))
        .filter_map(|p| {
            let t = p.retired_at?;
            let window = u64::from(p.ttl) * u64::from(crate::monitor::checks::RETIRING_TTLS);
            let until = std::time::UNIX_EPOCH
                + Duration::from_secs(t.as_secs().max(0).unsigned_abs() + window);
            Some((p.record.clone(), until))
        })
        .filter(|(_, until)| *until > std::time::SystemTime::now())
        .collect()
}
