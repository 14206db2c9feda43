//! The driver's effects on the real world ([`RealEffects`], the one implementation of
//! [`Effects`] outside tests): the service's DNS provider, the authoritative servers and the
//! validating resolver ([`AuthorityView`], [`Resolver`]), the live TLS probe ([`Prober`]),
//! installing the key and chain and running the reload command ([`crate::install`]), a next
//! key written 0600, the alert channels ([`Notifier`]), and a [`Clock`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dane_roll_providers::{Provider, Record, Report, Settings};

use crate::config::{Config, EndpointId, KeyType, Service};
use crate::dns::{Alias, AliasError, AuthorityView, Resolver, Status as LookupStatus};
use crate::install::{self, InstallError};
use crate::notify::{Alert, Notifier};
use crate::pki;
use crate::probe::{AddressReport, KeyAlgorithm, ProbeOptions, ProbeTarget, Prober};
use crate::rollover::effects::{Effects, LiveKeys, ProviderFailure, Served};
use crate::rollover::{
    Clock, DnsReport, KeyHash, OwnerName, OwnerReport, ProbeResult, ResolverAnswer, Slot,
    Timestamp, TlsaAt,
};
use crate::store::Store;
use crate::tlsa::TlsaRecord;

use super::observe::{self, family_of_slot};
use super::owners::{endpoint_protocol, slot_of_key_type};

/// Time allowed for one probe step and one address.
const PROBE_STEP_TIMEOUT: Duration = Duration::from_secs(10);
const PROBE_ADDRESS_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a connection to an endpoint address may take before "cannot tell".
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One endpoint address's probe report, or (address, why) it could not be probed.
type Probed = Result<AddressReport, (String, String)>;

/// The real world, on clock `C`: the effects listed in the [`Effects`] trait, done for real.
pub struct RealEffects<C: Clock> {
    config: Config,
    clock: C,
    runtime: tokio::runtime::Runtime,
    resolver: Result<Resolver, String>,
    /// Each service's provider, set up on first use.
    providers: RefCell<HashMap<String, Provider>>,
    notifier: Option<Notifier>,
    /// `--skip-nameserver`: NS names the resolver question does not wait for.
    skip_nameservers: Vec<String>,
}

impl<C: Clock> std::fmt::Debug for RealEffects<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RealEffects")
            .field("config", &self.config.file)
            .finish_non_exhaustive()
    }
}

impl<C: Clock> RealEffects<C> {
    /// The real world as `config` describes it (resolver, providers, alert channels), on `clock`.
    pub fn new(config: &Config, clock: C) -> Result<RealEffects<C>, io::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let resolver = Resolver::from_settings(&config.resolver).map_err(|e| e.to_string());
        let notifier = match Notifier::new(&config.alerts) {
            Ok(n) => Some(n),
            Err(err) => {
                tracing::warn!("alerts cannot be sent: {err}");
                None
            }
        };
        Ok(RealEffects {
            config: config.clone(),
            clock,
            runtime,
            resolver,
            providers: RefCell::new(HashMap::new()),
            notifier,
            skip_nameservers: Vec::new(),
        })
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Run `f` with `svc`'s provider, set up on first use.
    fn with_provider<T>(
        &self,
        svc: &Service,
        f: impl FnOnce(&Provider) -> T,
    ) -> Result<T, ProviderFailure> {
        let mut providers = self.providers.borrow_mut();
        if !providers.contains_key(&svc.name) {
            let provider = crate::publish::provider_for(&self.config, svc, Settings::default())
                .map_err(|e| ProviderFailure::Setup(e.to_string()))?;
            providers.insert(svc.name.clone(), provider);
        }
        match providers.get(&svc.name) {
            Some(provider) => Ok(f(provider)),
            None => Err(ProviderFailure::Setup("no provider".to_owned())),
        }
    }

    /// Resolve each endpoint's validated TLSA records and addresses, and probe every address.
    fn probe_reports(
        &self,
        svc: &Service,
        endpoints: &[String],
        algorithms: Vec<KeyAlgorithm>,
    ) -> Vec<(String, Probed)> {
        let fail = |why: String| -> Vec<(String, Probed)> {
            endpoints
                .iter()
                .map(|e| (e.clone(), Err(("-".to_owned(), why.clone()))))
                .collect()
        };
        let resolver = match &self.resolver {
            Ok(r) => r.clone(),
            Err(why) => return fail(why.clone()),
        };
        let options = ProbeOptions {
            step_timeout: PROBE_STEP_TIMEOUT,
            address_timeout: PROBE_ADDRESS_TIMEOUT,
            algorithms,
            ..ProbeOptions::default()
        };
        let prober = match Prober::new(options) {
            Ok(p) => p,
            Err(err) => return fail(err.to_string()),
        };
        self.runtime.block_on(async {
            let mut results = Vec::new();
            for endpoint in endpoints {
                let mut failed = |why: String| {
                    results.push((endpoint.clone(), Err(("-".to_owned(), why))));
                };
                let id = match endpoint.parse::<EndpointId>() {
                    Ok(id) => id,
                    Err(err) => {
                        failed(err.to_string());
                        continue;
                    }
                };
                let owner = id.owner_name();
                let EndpointId { host, port } = id;
                let protocol = endpoint_protocol(svc, &host, port);
                let records = match resolver.tlsa(owner.as_str()).await {
                    Ok(l) if l.is_secure() && !l.records.is_empty() => l.records,
                    Ok(l) => {
                        failed(format!("the TLSA records at {owner} are {}", l.status));
                        continue;
                    }
                    Err(err) => {
                        failed(err.to_string());
                        continue;
                    }
                };
                let addresses = match resolver.addresses(&host).await {
                    Ok(l) if !l.records.is_empty() => l.records,
                    Ok(_) => {
                        failed(format!("{host} has no address"));
                        continue;
                    }
                    Err(err) => {
                        failed(err.to_string());
                        continue;
                    }
                };
                let targets: Vec<ProbeTarget> = addresses
                    .iter()
                    .map(|ip| ProbeTarget {
                        host: host.clone(),
                        addr: SocketAddr::new(*ip, port),
                        protocol,
                    })
                    .collect();
                for report in prober
                    .probe_many(targets, &records, crate::probe::DEFAULT_CONCURRENCY)
                    .await
                {
                    results.push((endpoint.clone(), Ok(report)));
                }
            }
            results
        })
    }
}

impl<C: Clock> Effects for RealEffects<C> {
    fn now(&self) -> Timestamp {
        self.clock.now()
    }

    fn sleep(&self, d: Duration) {
        self.clock.sleep(d);
    }

    fn change_record(
        &self,
        svc: &Service,
        record: &Record,
        add: bool,
    ) -> Result<Report, ProviderFailure> {
        self.with_provider(svc, |provider| {
            let result = self.runtime.block_on(async {
                if add {
                    provider.publish(record).await
                } else {
                    provider.retire(record).await
                }
            });
            result.map_err(|error| ProviderFailure::Failed {
                kind: provider.kind(),
                error,
            })
        })?
    }

    fn list_records(
        &self,
        svc: &Service,
        owner: &OwnerName,
    ) -> Result<Vec<Record>, ProviderFailure> {
        self.with_provider(svc, |provider| {
            self.runtime
                .block_on(provider.list(owner.as_str()))
                .map_err(|error| ProviderFailure::Failed {
                    kind: provider.kind(),
                    error,
                })
        })?
    }

    fn skip_nameservers(&mut self, names: &[String]) {
        self.skip_nameservers = names.to_vec();
    }

    fn check_dns(&self, expected: &[TlsaAt], gate: &[TlsaAt]) -> DnsReport {
        let skip = &self.skip_nameservers;
        let mut owners: Vec<&OwnerName> = expected.iter().map(|r| &r.owner).collect();
        owners.sort_unstable();
        owners.dedup();
        let resolver = match &self.resolver {
            Ok(r) => r.clone(),
            Err(why) => {
                return DnsReport {
                    owners: owners
                        .iter()
                        .map(|o| OwnerReport {
                            owner: (*o).clone(),
                            nameservers: Vec::new(),
                            validation: ResolverAnswer::Failed(why.clone()),
                            resolver_ttl: None,
                        })
                        .collect(),
                };
            }
        };
        let view = AuthorityView::new(resolver.clone());
        let reports = self.runtime.block_on(async {
            let mut out = Vec::new();
            for owner in &owners {
                let want: Vec<_> = expected
                    .iter()
                    .filter(|r| r.owner == **owner)
                    .map(|r| r.record.clone())
                    .collect();
                // The resolver is asked only once every nameserver serves the records the gate
                // waits for: asked earlier, it would cache the RRset without them for up to a
                // TTL, which would hold a --force install that long. (The next key's records,
                // which may lag, do not hold the question.)
                let authority = view.served_everywhere(owner.as_str(), &want).await;
                let validated = match &authority {
                    Ok(report)
                        if gate
                            .iter()
                            .filter(|r| r.owner == **owner)
                            .all(|r| report.serves_everywhere_but(&r.record, skip)) =>
                    {
                        Some(resolver.tlsa(owner.as_str()).await)
                    }
                    _ => None,
                };
                out.push(observe::owner_report(owner, authority, validated));
            }
            out
        });
        DnsReport { owners: reports }
    }

    fn served_everywhere(
        &self,
        owner: &OwnerName,
        candidates: &[TlsaRecord],
    ) -> Option<Vec<TlsaRecord>> {
        let resolver = self.resolver.as_ref().ok()?.clone();
        let view = AuthorityView::new(resolver);
        let report = self
            .runtime
            .block_on(view.served_everywhere(owner.as_str(), candidates))
            .ok()?;
        Some(
            candidates
                .iter()
                .filter(|r| report.serves_everywhere(r))
                .cloned()
                .collect(),
        )
    }

    fn follow_cname(&self, owner: &OwnerName) -> Option<Result<Alias, AliasError>> {
        let resolver = self.resolver.as_ref().ok()?.clone();
        let view = AuthorityView::new(resolver);
        Some(self.runtime.block_on(view.follow_cname(owner)))
    }

    fn dnssec_preflight(&self, svc: &Service) -> Option<Vec<String>> {
        let resolver = self.resolver.as_ref().ok()?.clone();
        let view = AuthorityView::new(resolver);
        let findings =
            self.runtime
                .block_on(crate::preflight::check_dnssec(&self.config, svc, &view));
        let mut problems = Vec::new();
        for finding in findings {
            // A lookup that could not be made proves nothing about the zone: the gate, which
            // needs the same resolver, still holds the rollover until it validates.
            if matches!(finding.what, crate::preflight::Check::Dns { .. }) {
                tracing::warn!("{finding}; the DNSSEC preflight is skipped");
            } else {
                problems.push(finding.what.to_string());
            }
        }
        Some(problems)
    }

    fn probe(
        &self,
        svc: &Service,
        slot: &Slot,
        endpoints: &[String],
        expect: KeyHash,
    ) -> Vec<ProbeResult> {
        let family = family_of_slot(slot.as_str());
        let algorithms = family.map_or_else(|| KeyAlgorithm::ALL.to_vec(), |f| vec![f]);
        self.probe_reports(svc, endpoints, algorithms)
            .into_iter()
            .map(|(endpoint, report)| match report {
                Ok(report) => observe::probe_result(&endpoint, &report, expect, family),
                Err((address, why)) => observe::unknown(&endpoint, &address, why),
            })
            .collect()
    }

    fn live_keys(&self, svc: &Service, endpoints: &[String]) -> Vec<LiveKeys> {
        self.probe_reports(svc, endpoints, KeyAlgorithm::ALL.to_vec())
            .into_iter()
            .map(|(endpoint, report)| match report {
                Ok(report) => {
                    let keys: Vec<KeyHash> = report
                        .keys
                        .iter()
                        .filter_map(|k| k.spki_sha256.parse().ok())
                        .collect();
                    let address = report.address.to_string();
                    if keys.is_empty() {
                        let why = report
                            .reason
                            .unwrap_or_else(|| "no certificate was presented".to_owned());
                        (endpoint, address, Err(why))
                    } else {
                        (endpoint, address, Ok(keys))
                    }
                }
                Err((address, why)) => (endpoint, address, Err(why)),
            })
            .collect()
    }

    fn served_at(&self, svc: &Service, host: &str, port: u16) -> Served {
        let resolver = match &self.resolver {
            Ok(r) => r.clone(),
            Err(why) => return Served::Unknown(why.clone()),
        };
        let protocol = endpoint_protocol(svc, host, port);
        let options = ProbeOptions {
            step_timeout: PROBE_STEP_TIMEOUT,
            address_timeout: PROBE_ADDRESS_TIMEOUT,
            algorithms: KeyAlgorithm::ALL.to_vec(),
            ..ProbeOptions::default()
        };
        let prober = match Prober::new(options) {
            Ok(p) => p,
            Err(err) => return Served::Unknown(err.to_string()),
        };
        self.runtime.block_on(async {
            let addresses = match resolver.addresses(host).await {
                Ok(l) if !l.records.is_empty() => l.records,
                Ok(l) => {
                    return match l.status {
                        LookupStatus::Missing { .. } => {
                            Served::Not(format!("{host} has no address"))
                        }
                        status => Served::Unknown(format!("{host}: {status}")),
                    };
                }
                Err(err) => return Served::Unknown(format!("{host}: {err}")),
            };
            let mut open = Vec::new();
            let mut refused = 0usize;
            for ip in &addresses {
                let addr = SocketAddr::new(*ip, port);
                match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
                    .await
                {
                    Ok(Err(e)) if e.kind() == io::ErrorKind::ConnectionRefused => refused += 1,
                    _ => open.push(addr),
                }
            }
            if open.is_empty() {
                return Served::Not(format!(
                    "every address of {host} refuses port {port} ({refused})"
                ));
            }
            let targets: Vec<ProbeTarget> = open
                .into_iter()
                .map(|addr| ProbeTarget {
                    host: host.to_owned(),
                    addr,
                    protocol,
                })
                .collect();
            let mut keys = Vec::new();
            let mut unknown = Vec::new();
            for report in prober
                .probe_many(targets, &[], crate::probe::DEFAULT_CONCURRENCY)
                .await
            {
                if report.keys.is_empty() {
                    unknown.push(format!(
                        "{}: {}",
                        report.address,
                        report
                            .reason
                            .unwrap_or_else(|| "no certificate was presented".to_owned())
                    ));
                }
                for k in &report.keys {
                    if let (Some(slot), Ok(hash)) =
                        (slot_of_key_type(&k.key_type), k.spki_sha256.parse())
                        && !keys.contains(&(slot.clone(), hash))
                    {
                        keys.push((slot, hash));
                    }
                }
            }
            if keys.is_empty() {
                Served::Unknown(unknown.join("; "))
            } else {
                Served::Keys(keys)
            }
        })
    }

    fn install(&self, svc: &Service, target: &Path, chain: &Path) -> Result<(), InstallError> {
        // The separate outputs first: the chain file is what a later run reads to know what is
        // installed, so it changes last.
        install::install_split(&svc.split_files, chain, svc.key_file)?;
        install::install_chain(target, chain, svc.key_file)
    }

    fn reload(&self, svc: &Service) -> Result<(), InstallError> {
        install::reload_all(&svc.reload, install::RELOAD_TIMEOUT)
    }

    fn generate_key(&self, kind: KeyType, dir: &Path) -> Result<(KeyHash, PathBuf), String> {
        let key = pki::generate_key(kind).map_err(|e| format!("generating a {kind} key: {e}"))?;
        let der = pki::spki_der(&key).map_err(|e| e.to_string())?;
        let hash = KeyHash::of_spki_der(&der);
        let path = dir.join(format!("next-{}.key", hash.to_hex()));
        pki::write_private_key(&path, &key)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok((hash, path))
    }

    fn has_alert_channels(&self) -> bool {
        self.notifier
            .as_ref()
            .is_some_and(|n| n.channels().next().is_some())
    }

    fn notify(&self, store: &mut Store, alert: &Alert) -> Result<Vec<String>, String> {
        let Some(notifier) = &self.notifier else {
            return Ok(Vec::new());
        };
        match self.runtime.block_on(notifier.observe(store, alert)) {
            Ok(Some(delivery)) => Ok(delivery.failures().map(|f| format!("{f:?}")).collect()),
            Ok(None) => Ok(Vec::new()),
            Err(err) => Err(err.to_string()),
        }
    }
}
