//! The rollover driver: the real-world counterpart of the pure engine ([`super::step`]).
//!
//! A [`Driver`] holds the configuration, the store and the [`Effects`] it acts through (the real
//! world, [`RealEffects`], or a scripted one in tests). [`Driver::deploy`] checks a
//! [`DeployRequest`](super::DeployRequest) (key matches certificate, the key slot from the key's
//! algorithm), and either installs a renewal that kept its key (DNS unchanged) or copies key and chain into
//! `<state-dir>/staged/<service>/<slot>/<hash>.pem` (0600), stages a rollover and drives it until
//! it waits (the records are published at once: a hook never sleeps through the TTL).
//! [`Driver::run`] drives every unfinished rollover as far as it can go now, or, with `wait`,
//! to the end, sleeping on the effects' clock until each `Action::Wait`'s time and telling a
//! [`Reporter`] how it goes.
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
//! An idle smtpd can serve the old certificate for about a second after a reload: the
//! engine treats an old-key match as "wait", and the driver probes again a few times within the
//! same pass after short pauses instead of settling for a whole timer period.
//!
//! Submodules: `pass` (`run`, the passes and the waits between them), `error` (what stops the
//! driver), `real` (the effects on the real world), [`deploy`] (checking and staging a request,
//! renewals), `actions` (each `Action` performed through the effects), [`maintain`] (`next-key`, `prune`, `plan`, `status --live`),
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
mod error;
mod foreign;
mod issuers;
pub mod maintain;
mod observe;
pub mod owners;
mod pass;
mod preflight;
mod rate_limit;
mod real;
pub mod reconcile;
mod retention;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use crate::config::{Config, Service};
use crate::lock::{self, ServiceLock};
use crate::store::{KeyRole, Store};

use super::effects::Effects;
use super::{
    Clock, Event, KeyHash, PhaseName, Reporter, Rollover, Silent, Slot, SystemClock, Timestamp,
};

use actions::failure_of;
pub use alias::owner_lines;
use deploy::installed_key;
pub use deploy::{Prepared, prepare, slot_for};
pub use drift::Mismatch;
pub use error::DriverError;
pub use maintain::{PruneOptions, PruneReport};
pub use observe::family_of_slot;
pub use pass::poll_interval;
pub use real::RealEffects;

/// The directory under the state directory that holds staged key+chain files and next keys.
pub const STAGED_DIR: &str = "staged";

/// How long a command waits for another process's lock on a service by default.
pub const DEFAULT_LOCK_WAIT: Duration = Duration::from_secs(60);

/// Pauses before probing again within one pass when the old certificate is still served.
const QUICK_REPROBE_MS: [u64; 4] = [250, 500, 1000, 1500];

/// The most engine steps one pass makes (a guard: a whole rollover takes about a dozen).
const MAX_STEPS: usize = 64;

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
    /// Whether one of them fails the same way until someone fixes something (credentials a
    /// provider refuses, a zone it does not serve, a chain file's directory that is missing or
    /// read-only, a reload command that cannot run): `--wait` stops waiting on this rollover
    /// and says so instead of retrying until its time runs out.
    pub needs_fix: bool,
}

impl Standing {
    /// Whether waiting longer cannot move it: it is final, or it needs a fix first.
    pub fn is_settled(&self) -> bool {
        self.phase.is_final() || self.needs_fix
    }

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
    /// `--skip-nameserver`: NS names the gate does not wait for, by the operator's word.
    skip_nameservers: Vec<String>,
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
            skip_nameservers: Vec::new(),
        }
    }

    /// `--skip-nameserver`: the gate does not wait for these NS names (a nameserver down for
    /// hours). Loud and recorded: every rollover driven gets an event naming them.
    pub fn skip_nameservers(mut self, names: Vec<String>) -> Driver<E> {
        self.effects.skip_nameservers(&names);
        self.skip_nameservers = names;
        self
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
            &r.request.service,
            &r.request.slot,
            &format!("{}: {detail}", r.phase.name()),
        );
        let event = Event {
            time: self.now(),
            phase: r.phase.name(),
            detail,
        };
        self.store
            .add_events(&r.request.service, &r.request.slot, &[event])?;
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
