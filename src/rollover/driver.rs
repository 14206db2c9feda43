//! The rollover driver: the real-world counterpart of the pure engine ([`super::step`]).
//!
//! A [`Driver`] holds the configuration, the store and a clock. [`Driver::deploy`] checks a
//! [`DeployRequest`] (key matches certificate, the key slot from the key's algorithm), and either
//! installs a renewal that kept its key (DNS unchanged) or copies key and chain into
//! `<state-dir>/staged/<service>/<slot>/<hash>.pem` (0600), stages a rollover and drives it until
//! it waits (the records are published at once: a hook never sleeps through the TTL).
//! [`Driver::run`] drives every unfinished rollover as far as it can go now, or, with `wait`,
//! to the end, sleeping until each [`Action::Wait`]'s time with a progress bar.
//!
//! One pass over a rollover, under its service's lock (invariant 5): step → save (phase, events,
//! in one transaction) → perform the actions → feed the outcomes to the next step, until the step
//! is settled. Every external change is recorded before it is made where a crash could otherwise
//! leak it: a record is stored as ours *before* the provider adds it (so it can never be left
//! published and untracked), a removal is stored right after the provider confirms it, a
//! generated next key is stored the moment it is on disk, and installs and reloads leave an event
//! before they run. Because the engine changes phase only on observed outcomes and every action
//! is idempotent, a process killed anywhere resumes correctly at the next `run`.
//!
//! An idle smtpd can serve the old certificate for about a second after a reload (LAB.md): the
//! engine treats an old-key match as "wait", and the driver probes again a few times within the
//! same pass after short pauses instead of settling for a whole timer period.
//!
//! Submodules: [`deploy`] (checking and staging a request, renewals), `actions` (each
//! [`Action`] performed for real), [`maintain`] (`next-key`, `prune`, `plan`, `status --live`),
//! `observe` (DNS and probe reports in the engine's words), `alerts` (stderr and the alert
//! channels, once per check), [`owners`] (every owner name keeps a record of the key served
//! there, checked on every `run`), `drift` (a served key the store does not know: alerted and
//! adopted), `rate_limit` (a provider's Retry-After remembered between runs), [`reconcile`]
//! (the ACME client's current certificate picked up by `run` when its hook was missed).

mod abort;
mod actions;
mod alerts;
mod alias;
pub mod deploy;
mod drift;
mod foreign;
pub mod maintain;
mod observe;
pub mod owners;
mod rate_limit;
mod real;
pub mod reconcile;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use dane_roll_providers::{Change, ProviderError};

use crate::config::{Config, Protocol, Scheme, Service};
use crate::install::{self, InstallError};
use crate::lock::{self, LockError, ServiceLock};
use crate::notify::{Alert, Severity};
use crate::pki::{self, PkiError};
use crate::store::{KeyEntry, KeyRole, RecordChange, Store, StoreError};

use super::effects::{Effects, ProviderFailure, Served};
use super::engine::gate;
use super::{
    Action, Clock, DeployOptions, DeployRequest, DnsReport, EngineError, Event, KeyHash,
    Observations, Outcome, Phase, PhaseName, ProbeResult, Reporter, Rollover, Silent, Slot,
    StageRequest, Step, SystemClock, Timestamp, TlsaAt, stage, step,
};

use actions::failure_of;
pub use alias::owner_lines;
use deploy::installed_key;
pub use deploy::{Prepared, prepare, slot_for};
pub use drift::Mismatch;
pub use maintain::{PruneOptions, PruneReport};
pub use observe::family_of_slot;
pub use real::RealEffects;

/// The directory under the state directory that holds staged key+chain files and next keys.
pub const STAGED_DIR: &str = "staged";

/// How long a command waits for another process's lock on a service by default.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(60);

/// Pauses before probing again within one pass when the old certificate is still served.
const QUICK_REPROBE_MS: [u64; 4] = [250, 500, 1000, 1500];

/// The most engine steps one pass makes (a guard: a whole rollover takes about a dozen).
const MAX_STEPS: usize = 64;

/// What stopped the driver. Each names the service or file and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The request names a service the configuration does not have.
    #[error("no service \"{service}\" in {file}; the services are: {known}")]
    UnknownService {
        /// The name asked for.
        service: String,
        /// The configuration file.
        file: String,
        /// The configured names.
        known: String,
    },
    /// A certificate, chain or key file could not be used.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The certificate file holds no certificate.
    #[error("{} holds no certificate: pass the certificate (or full chain, leaf first) with --cert", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The service has `chain-files` without a file for this key algorithm.
    #[error(
        "service \"{service}\" has no chain file for {slot} keys; add `{slot} = \"/path/to/file\"` \
         to its `chain-files`, or deploy a certificate of an algorithm it has"
    )]
    NoChainFile {
        /// The service.
        service: String,
        /// The key slot (algorithm).
        slot: String,
    },
    /// The key's algorithm has no key slot (DSA, Ed448, …).
    #[error(
        "{}: a {key_type} key cannot be rolled (use RSA, ECDSA or Ed25519)",
        path.display()
    )]
    UnsupportedKey {
        /// The key file.
        path: PathBuf,
        /// Its type.
        key_type: String,
    },
    /// A rollover to another key is under way for this slot.
    #[error(
        "service {service} ({slot}): a rollover to key {new} is in progress (phase {phase}); \
         finish it first (`dane-roll run --wait {service}`), then deploy key {requested}"
    )]
    InProgress {
        /// The service.
        service: String,
        /// The key slot.
        slot: Slot,
        /// The key being rolled to.
        new: String,
        /// Its phase.
        phase: PhaseName,
        /// The key asked for now.
        requested: String,
    },
    /// The engine refused to begin.
    #[error(transparent)]
    Stage(#[from] EngineError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another process holds the service.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A staged file could not be written.
    #[error(
        "cannot write {}: {}",
        path.display(),
        crate::exit::write_problem(path, source, "check that the state directory is writable")
    )]
    Staging {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A renewal's install failed.
    #[error("service {service}: {source}")]
    Install {
        /// The service.
        service: String,
        /// Why.
        source: InstallError,
    },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
    /// No rollover is stored for this service and slot.
    #[error("service {service} ({slot}): no rollover is stored; deploy a certificate first")]
    NoRollover {
        /// The service.
        service: String,
        /// The key slot.
        slot: Slot,
    },
    /// `dane-roll abort` cannot abandon this rollover.
    #[error(transparent)]
    Abort(#[from] super::AbortRefused),
    /// A configured owner name's CNAME chain cannot be used (a loop, too long).
    #[error("service {service}: {source}")]
    Alias {
        /// The service.
        service: String,
        /// Why (boxed: the error is large).
        source: Box<crate::dns::AliasError>,
    },
    /// A configured owner name is a CNAME to a name the service's provider cannot write.
    #[error(
        "service {service}: owner name {owner} is a CNAME to {target}, where the TLSA records \
         live, but provider {provider} cannot write {target}: {why}. Publish the records at \
         {target} by hand (provider kind \"manual\"), configure a provider for the zone of \
         {target}, or remove the CNAME and publish at {owner}"
    )]
    AliasTarget {
        /// The service.
        service: String,
        /// The configured owner name (the CNAME's owner).
        owner: String,
        /// Where the chain ends.
        target: String,
        /// The provider's name in the configuration.
        provider: String,
        /// Why it cannot write there.
        why: String,
    },
    /// The engine kept asking for actions without settling (a bug guard).
    #[error(
        "service {service} ({slot}): the rollover did not settle after {MAX_STEPS} steps; \
         `dane-roll status --history {service}` shows what happened"
    )]
    Stuck {
        /// The service.
        service: String,
        /// The key slot.
        slot: Slot,
    },
}

/// The configured services, or only the one named `service`.
fn selected<'a>(config: &'a Config, service: Option<&'a str>) -> impl Iterator<Item = &'a Service> {
    config
        .services
        .iter()
        .filter(move |s| service.is_none_or(|n| n == s.name))
}

fn find_service<'a>(config: &'a Config, name: &str) -> Result<&'a Service, DriverError> {
    config
        .service(name)
        .ok_or_else(|| DriverError::UnknownService {
            service: name.to_owned(),
            file: config.file.clone(),
            known: if config.services.is_empty() {
                "(none)".to_owned()
            } else {
                config
                    .services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        })
}

/// How one rollover stands after the driver moved it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// The service.
    pub service: String,
    /// The key slot.
    pub slot: Slot,
    /// The phase now.
    pub phase: PhaseName,
    /// When the next step can make progress, if known.
    pub wait_until: Option<Timestamp>,
    /// What it waits for, if it waits.
    pub waiting_for: Option<String>,
    /// Actions that failed in this run (the next run retries them).
    pub failures: Vec<String>,
}

impl Standing {
    /// Whether the rollover ended badly or an action failed in this run.
    pub fn is_failure(&self) -> bool {
        self.phase == PhaseName::RolledBack || !self.failures.is_empty()
    }
}

/// What a deploy did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeployOutcome {
    /// The key did not change: the certificate was installed, DNS left as it is.
    Renewed {
        /// The service.
        service: String,
        /// The key slot.
        slot: Slot,
        /// The (unchanged) key.
        key: KeyHash,
        /// Whether the live handshake showed the key and matched the validated records.
        verified: bool,
        /// Why not, when not.
        problem: Option<String>,
    },
    /// A rollover was staged (or resumed) and driven.
    Rollover(Standing),
}

/// Drives rollovers against the world its [`Effects`] act on (the real one by default:
/// [`RealEffects`]). See the [module docs](self).
pub struct Driver<E: Effects = RealEffects<SystemClock>> {
    config: Config,
    store: Store,
    effects: E,
    /// Each service's owner names followed through CNAMEs, once per process (`alias`).
    aliases: HashMap<String, Vec<crate::dns::Alias>>,
    progress: Box<dyn Reporter>,
    command: String,
    lock_wait: Duration,
}

impl<E: Effects> std::fmt::Debug for Driver<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("config", &self.config.file)
            .field("store", &self.store.path())
            .finish_non_exhaustive()
    }
}

impl<C: Clock> Driver<RealEffects<C>> {
    /// A driver over `config` and `store` acting on the real world, on `clock`.
    pub fn new(
        config: Config,
        store: Store,
        clock: C,
    ) -> Result<Driver<RealEffects<C>>, DriverError> {
        let effects = RealEffects::new(&config, clock).map_err(DriverError::Runtime)?;
        Ok(Driver::with_effects(config, store, effects))
    }
}

impl<E: Effects> Driver<E> {
    /// A driver over `config` and `store` acting through `effects` (tests script a world).
    pub fn with_effects(config: Config, store: Store, effects: E) -> Driver<E> {
        Driver {
            config,
            store,
            effects,
            aliases: HashMap::new(),
            progress: Box::new(Silent),
            command: "dane-roll".to_owned(),
            lock_wait: DEFAULT_LOCK_WAIT,
        }
    }

    /// Tell the operator how it goes through `progress` (by default it says nothing).
    pub fn with_progress(mut self, progress: impl Reporter + 'static) -> Driver<E> {
        self.progress = Box::new(progress);
        self
    }

    /// The command written into lock files (`dane-roll run`).
    pub fn with_command(mut self, command: &str) -> Driver<E> {
        command.clone_into(&mut self.command);
        self
    }

    /// How long to wait for another process's lock on a service.
    pub fn with_lock_wait(mut self, wait: Duration) -> Driver<E> {
        self.lock_wait = wait;
        self
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The effects it acts through.
    pub fn effects(&self) -> &E {
        &self.effects
    }

    fn now(&self) -> Timestamp {
        self.effects.now()
    }

    fn lock(&self, service: &str) -> Result<ServiceLock, DriverError> {
        Ok(lock::acquire(
            &self.config.state_dir,
            service,
            &self.command,
            self.lock_wait,
        )?)
    }

    fn say(&self, service: &str, slot: &Slot, text: &str) {
        self.progress.line(&format!("{service} ({slot}): {text}"));
    }

    /// Record (and show) what is about to be done, before it is done.
    fn note(&mut self, r: &Rollover, detail: String) -> Result<(), DriverError> {
        self.say(
            &r.service,
            &r.slot,
            &format!("{}: {detail}", r.phase.name()),
        );
        let event = Event {
            time: self.now(),
            phase: r.phase.name(),
            detail,
        };
        self.store.add_events(&r.service, &r.slot, &[event])?;
        Ok(())
    }

    /// The key this slot serves now: the store's current key, else the key in the installed
    /// chain file when it is of this slot's algorithm.
    pub fn current_key(
        &self,
        service: &Service,
        slot: &Slot,
    ) -> Result<Option<KeyHash>, DriverError> {
        if let Some(k) = self.store.key(&service.name, slot, KeyRole::Current)? {
            return Ok(Some(k.hash));
        }
        Ok(chain_file(service, slot)
            .ok()
            .and_then(|file| installed_key(file, slot)))
    }

    // ----- run -----

    /// Drive every unfinished rollover (of `service`, or all) as far as it can go now; with
    /// `options.wait`, until each is done or rolled back.
    pub fn run(
        &mut self,
        service: Option<&str>,
        options: DeployOptions,
    ) -> Result<Vec<Standing>, DriverError> {
        if let Some(name) = service {
            find_service(&self.config, name)?;
        }
        // Every owner name of every service first: the live key's record where it lacks, drift
        // (see `owners`, `drift`).
        let owner_failures = self.keep_owners(service)?;
        let mut targets = Vec::new();
        for r in self.store.rollovers()? {
            if service.is_some_and(|s| s != r.service) {
                continue;
            }
            if r.is_final() {
                if self.keys_behind(&r)? {
                    let _held = self.lock(&r.service)?;
                    self.settle_keys(&r.service, &r.slot)?;
                }
                continue;
            }
            if self.config.service(&r.service).is_none() {
                tracing::warn!(
                    "the stored rollover of service {} ({}) is left alone: \
                     the service is no longer in {}",
                    r.service,
                    r.slot,
                    self.config.file
                );
                continue;
            }
            targets.push((r.service, r.slot));
        }
        if options.force {
            for (service, slot) in &targets {
                self.forced(service, slot)?;
            }
        }
        let mut standings = self.drive(&targets, options)?;
        self.confirm_next_keys(service)?;
        owners::fold_failures(&mut standings, owner_failures);
        Ok(standings)
    }

    /// Pass over `targets` until each settles (without wait) or is final (with wait).
    fn drive(
        &mut self,
        targets: &[(String, Slot)],
        options: DeployOptions,
    ) -> Result<Vec<Standing>, DriverError> {
        let mut standings: BTreeMap<(String, Slot), Standing> = BTreeMap::new();
        let mut backoff: HashMap<(String, Slot), u32> = HashMap::new();
        // `--timeout`: a deadline for the wait on the driver's clock (each pass saves the state,
        // so giving up between passes loses nothing).
        let deadline = options.timeout.map(|t| self.now().plus(t));
        loop {
            let mut wake: Option<(Timestamp, Duration, String)> = None;
            for (service, slot) in targets {
                let key = (service.clone(), slot.clone());
                if standings.get(&key).is_some_and(|s| s.phase.is_final()) {
                    continue;
                }
                let standing = {
                    let _held = self.lock(service)?;
                    self.pass(service, slot, options.force)?
                };
                if !standing.phase.is_final() {
                    let ttl = self
                        .config
                        .service(service)
                        .map_or(crate::config::DEFAULT_TTL, |s| s.ttl);
                    let now = self.now();
                    let failures = backoff.entry(key.clone()).or_insert(0);
                    let delay = match standing.wait_until {
                        Some(t) if standing.failures.is_empty() => {
                            *failures = 0;
                            self.until_instant(t)
                        }
                        _ if !standing.failures.is_empty() => {
                            *failures = failures.saturating_add(1);
                            poll_interval(ttl) * 2u32.saturating_pow((*failures).min(5))
                        }
                        _ => poll_interval(ttl),
                    };
                    let label = format!(
                        "{service} ({slot}) {}: {}",
                        standing.phase,
                        standing.waiting_for.as_deref().unwrap_or("waiting")
                    );
                    let until = standing.wait_until.unwrap_or(now.plus(delay));
                    if wake.as_ref().is_none_or(|(_, d, _)| delay < *d) {
                        wake = Some((until, delay, label));
                    }
                }
                standings.insert(key, standing);
            }
            let all_final = standings.values().all(|s| s.phase.is_final());
            if !options.wait || all_final || targets.is_empty() {
                self.progress.end_wait();
                return Ok(standings.into_values().collect());
            }
            let left = deadline.map(|d| self.now().until(d));
            if left.is_some_and(|l| l.is_zero()) {
                self.progress.end_wait();
                return Ok(standings.into_values().collect());
            }
            if let Some((until, delay, label)) = wake {
                let delay = left.map_or(delay, |l| delay.min(l));
                self.sleep(&label, until, delay);
            }
        }
    }

    /// Sleep `delay` (until about `until`), showing progress.
    fn sleep(&mut self, label: &str, until: Timestamp, delay: Duration) {
        let start = self.now();
        if delay >= Duration::from_secs(2) {
            self.progress.wait(label, start, until, start);
        }
        let end = start.plus(delay);
        loop {
            let left = self.now().until(end);
            if left.is_zero() {
                break;
            }
            self.effects.sleep(left.min(Duration::from_millis(250)));
            self.progress.tick(start, self.now());
        }
    }

    /// How long until `t` on the driver's clock (plus a little, so that `t` has surely passed).
    fn until_instant(&self, t: Timestamp) -> Duration {
        self.now().until(t) + Duration::from_millis(20)
    }

    /// One pass over one rollover: step, save, act, until the step settles.
    fn pass(&mut self, service: &str, slot: &Slot, force: bool) -> Result<Standing, DriverError> {
        let Some(svc) = self.config.service(service).cloned() else {
            return Err(find_service(&self.config, service).err().unwrap_or(
                DriverError::NoRollover {
                    service: service.to_owned(),
                    slot: slot.clone(),
                },
            ));
        };
        let mut outcomes: Vec<Outcome> = Vec::new();
        let mut live: Vec<KeyHash> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        let mut quick = 0usize;
        let mut old_served = false;
        let mut abandoned_served = false;
        for _ in 0..MAX_STEPS {
            let Some(rollover) = self.store.rollover(service, slot)? else {
                return Err(DriverError::NoRollover {
                    service: service.to_owned(),
                    slot: slot.clone(),
                });
            };
            // Milliseconds: the moment the records are first confirmed is recorded as it is,
            // nothing rounded, so the 2×TTL wait is neither short nor needlessly long.
            let now = self.now();
            let before = rollover.phase.name();
            let observations = Observations {
                outcomes: std::mem::take(&mut outcomes),
                ours: self.store.ours(service, slot)?,
                protected: std::mem::take(&mut live),
                stored_next: self
                    .store
                    .key(service, slot, KeyRole::Next)?
                    .map(|k| k.hash),
                force,
            };
            let s = step(rollover, &observations, now);
            self.store.save(&s.next, &s.events, &[], now)?;
            self.show_events(&s);
            let after = s.next.phase.name();
            if after != before {
                self.finish_keys(&s.next)?;
                // The phase moved on: what held it is over. A rollback is no recovery; a
                // completed rollover closes every alert this slot's rollovers left open
                // (also a rollback's, once a later rollover succeeds).
                if after == PhaseName::Done || after == PhaseName::Aborted {
                    self.recover_alerts(
                        service,
                        slot,
                        &PhaseName::ALL,
                        &if after == PhaseName::Done {
                            format!(
                                "{service} ({slot}): rollover complete, {} is live",
                                s.next.new.short()
                            )
                        } else {
                            format!("{service} ({slot}): rollover aborted by the operator")
                        },
                    );
                } else if after != PhaseName::RolledBack {
                    self.recover_alerts(
                        service,
                        slot,
                        &[before],
                        &format!("{service} ({slot}): {before} passed, now {after}"),
                    );
                }
            }
            for action in &s.actions {
                if let Some(outcome) = self.perform(&svc, &s.next, action)? {
                    if let Some(why) = failure_of(&outcome) {
                        failures.push(why);
                    }
                    if let Outcome::Dns(report) = &outcome
                        && matches!(
                            s.next.phase.name(),
                            PhaseName::Staged | PhaseName::Published
                        )
                    {
                        // The TTLs that may govern the wait, kept for `status`.
                        let seen = super::ttl::observed(&s.next.owners, report);
                        self.store
                            .record_ttls(service, slot, s.next.started, seen, self.now())?;
                    }
                    if let Outcome::Probed(results) = &outcome {
                        live = results.iter().filter_map(|p| p.live_key).collect();
                        // The old certificate still served by a matching handshake: an smtpd
                        // that was idle at the reload (about a second). Worth a quick look
                        // again; an unreachable address is not.
                        old_served = results.iter().any(|p| {
                            matches!(p.verdict, super::ProbeVerdict::Match)
                                && p.live_key.is_some_and(|k| k != s.next.new)
                        });
                        // The same after an abort's reload, the other way round.
                        abandoned_served = results.iter().any(|p| p.live_key == Some(s.next.new));
                    }
                    outcomes.push(outcome);
                }
            }
            if !s.is_settled() {
                continue;
            }
            let stale_served = match s.next.phase {
                Phase::Installed { reloaded: true, .. } => old_served,
                Phase::Aborting { .. } => abandoned_served,
                _ => false,
            };
            if stale_served && quick < QUICK_REPROBE_MS.len() {
                self.effects
                    .sleep(Duration::from_millis(QUICK_REPROBE_MS[quick]));
                quick += 1;
                continue;
            }
            let waiting_for = s.actions.iter().find_map(|a| match a {
                Action::Wait { reason, .. } => Some(reason.clone()),
                _ => None,
            });
            return Ok(Standing {
                service: service.to_owned(),
                slot: slot.clone(),
                phase: s.next.phase.name(),
                wait_until: s.wait_until(),
                waiting_for,
                failures,
            });
        }
        Err(DriverError::Stuck {
            service: service.to_owned(),
            slot: slot.clone(),
        })
    }

    /// Whether the store's keys still lag behind a final rollover: its phase was saved, then
    /// the process died before [`Driver::finish_keys`] (two writes; found by the chaos run,
    /// tests/chaos.rs). The key that is live would then be missed as current by the next
    /// deploy, which would take the retired key as the old one and publish its record again.
    fn keys_behind(&self, r: &Rollover) -> Result<bool, DriverError> {
        let key = |role| -> Result<Option<KeyHash>, DriverError> {
            Ok(self.store.key(&r.service, &r.slot, role)?.map(|k| k.hash))
        };
        Ok(match r.phase.name() {
            PhaseName::Done => {
                key(KeyRole::Current)? != Some(r.new) || key(KeyRole::New)?.is_some()
            }
            PhaseName::RolledBack | PhaseName::Aborted => key(KeyRole::New)? == Some(r.new),
            _ => false,
        })
    }

    /// Under the service's lock: finish the keys of the stored rollover of `service`/`slot` if
    /// it is final and they lag behind it.
    fn settle_keys(&mut self, service: &str, slot: &Slot) -> Result<(), DriverError> {
        if let Some(r) = self.store.rollover(service, slot)?
            && r.is_final()
            && self.keys_behind(&r)?
        {
            self.finish_keys(&r)?;
        }
        Ok(())
    }

    /// The store's keys follow the rollover's end: the new key becomes current.
    fn finish_keys(&mut self, r: &Rollover) -> Result<(), DriverError> {
        match r.phase.name() {
            PhaseName::Done => {
                self.store.set_key(&KeyEntry {
                    service: r.service.clone(),
                    slot: r.slot.clone(),
                    role: KeyRole::Current,
                    hash: r.new,
                    path: Some(r.chain.clone()),
                    created: self.now(),
                })?;
                self.store.clear_key(&r.service, &r.slot, KeyRole::New)?;
            }
            PhaseName::RolledBack | PhaseName::Aborted => {
                self.store.clear_key(&r.service, &r.slot, KeyRole::New)?;
            }
            _ => {}
        }
        Ok(())
    }

    fn show_events(&self, s: &Step) {
        for e in &s.events {
            if e.detail.starts_with("alert: ") {
                continue; // printed on stderr by the alert itself
            }
            self.say(
                &s.next.service,
                &s.next.slot,
                &format!("{}: {}", e.phase, e.detail),
            );
        }
    }
}

fn first(mut standings: Vec<Standing>, service: &str) -> Standing {
    standings.pop().unwrap_or_else(|| Standing {
        service: service.to_owned(),
        slot: Slot::default(),
        phase: PhaseName::Staged,
        wait_until: None,
        waiting_for: None,
        failures: Vec::new(),
    })
}

/// How often to look again when the wait has no known end (DNS catching up): a tenth of the
/// TTL, between 200 ms and 30 s. The 2×TTL wait counts from the look that sees the records
/// everywhere, so a look that comes late lengthens it by as much.
pub fn poll_interval(ttl: u32) -> Duration {
    Duration::from_millis(u64::from(ttl) * 100)
        .clamp(Duration::from_millis(200), Duration::from_secs(30))
}

/// The file `service` reads `slot`'s key and chain from (its `chain-file`, or the slot's entry of
/// `chain-files`).
pub(crate) fn chain_file<'a>(service: &'a Service, slot: &Slot) -> Result<&'a Path, DriverError> {
    service
        .chain_files
        .for_algorithm(slot.as_str())
        .ok_or_else(|| DriverError::NoChainFile {
            service: service.name.clone(),
            slot: slot.to_string(),
        })
}
