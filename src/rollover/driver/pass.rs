//! Driving rollovers: [`Driver::run`] picks every unfinished rollover, `drive` passes over
//! them until each settles (or, with `wait`, until each is final, sleeping on the driver's
//! clock in between), and one pass steps the engine, saves, performs the actions and feeds
//! their outcomes back until the step settles. The store's keys follow a rollover's end.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use crate::rollover::{
    Action, ActionOutcome, DeployOptions, Effects, KeyHash, Observations, Phase, PhaseName,
    Rollover, Slot, StepResult, Timestamp, step,
};
use crate::store::{KeyEntry, KeyRole};

use super::{
    Driver, DriverError, MAX_STEPS, QUICK_REPROBE_MS, Standing, failure_of, find_service, owners,
};

impl<E: Effects> Driver<E> {
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
            if service.is_some_and(|s| s != r.request.service) {
                continue;
            }
            if r.is_final() {
                if self.keys_behind(&r)? {
                    let _held = self.lock(&r.request.service)?;
                    self.settle_keys(&r.request.service, &r.request.slot)?;
                }
                continue;
            }
            if self.config.service(&r.request.service).is_none() {
                tracing::warn!(
                    "the stored rollover of service {} ({}) is left alone: \
                     the service is no longer in {}",
                    r.request.service,
                    r.request.slot,
                    self.config.file
                );
                continue;
            }
            targets.push((r.request.service, r.request.slot));
        }
        if options.force {
            for (service, slot) in &targets {
                self.forced(service, slot)?;
            }
        }
        if !self.skip_nameservers.is_empty() {
            for (service, slot) in &targets {
                self.skipping_nameservers(service, slot)?;
            }
        }
        let mut standings = self.drive(&targets, options)?;
        self.confirm_next_keys(service)?;
        // `current+issuer`: an old issuer's records that a renewal could not retire yet.
        self.keep_issuers(service)?;
        owners::fold_failures(&mut standings, owner_failures);
        Ok(standings)
    }

    /// Pass over `targets` until each settles (without wait) or is final (with wait).
    pub(super) fn drive(
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
            let mut wake: Option<(Option<Timestamp>, Duration, String)> = None;
            for (service, slot) in targets {
                let key = (service.clone(), slot.clone());
                if standings.get(&key).is_some_and(Standing::is_settled) {
                    continue;
                }
                let standing = {
                    let _held = self.lock(service)?;
                    let standing = self.pass(service, slot, options.force)?;
                    if standing.phase == crate::rollover::PhaseName::Done {
                        self.retire_old_keys(service, slot)?;
                    }
                    standing
                };
                if !standing.is_settled() {
                    let ttl = self
                        .config
                        .service(service)
                        .map_or(crate::config::DEFAULT_TTL, |s| s.ttl);
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
                    if wake.as_ref().is_none_or(|(_, d, _)| delay < *d) {
                        wake = Some((standing.wait_until, delay, label));
                    }
                }
                standings.insert(key, standing);
            }
            let all_final = standings.values().all(Standing::is_settled);
            // Ctrl-C: every pass above saved its state, so the wait stops here losing nothing.
            let interrupted = crate::rollover::interrupt::requested();
            if !options.wait || all_final || targets.is_empty() || interrupted {
                self.progress.end_wait();
                return Ok(standings.into_values().collect());
            }
            let left = deadline.map(|d| self.now().until(d));
            if left.is_some_and(|l| l.is_zero()) {
                self.progress.end_wait();
                return Ok(standings.into_values().collect());
            }
            if let Some((deadline, delay, label)) = wake {
                let delay = left.map_or(delay, |l| delay.min(l));
                self.sleep(&label, deadline, delay);
            }
        }
    }

    /// Sleep `delay` (toward `deadline`, when the rollover knows one), showing progress.
    pub(super) fn sleep(&mut self, label: &str, deadline: Option<Timestamp>, delay: Duration) {
        let start = self.now();
        if delay >= Duration::from_secs(2) {
            self.progress.wait(label, deadline, start);
        }
        let end = start.plus(delay);
        loop {
            let left = self.now().until(end);
            if left.is_zero() || crate::rollover::interrupt::requested() {
                break;
            }
            self.effects.sleep(left.min(Duration::from_millis(250)));
            self.progress.tick(self.now());
        }
    }

    /// How long until `t` on the driver's clock (plus a little, so that `t` has surely passed).
    pub(super) fn until_instant(&self, t: Timestamp) -> Duration {
        self.now().until(t) + Duration::from_millis(20)
    }

    /// One pass over one rollover: step, save, act, until the step settles.
    pub(super) fn pass(
        &mut self,
        service: &str,
        slot: &Slot,
        force: bool,
    ) -> Result<Standing, DriverError> {
        let Some(svc) = self.config.service(service).cloned() else {
            return Err(find_service(&self.config, service).err().unwrap_or(
                DriverError::NoRollover {
                    service: service.to_owned(),
                    slot: slot.clone(),
                },
            ));
        };
        let mut outcomes: Vec<ActionOutcome> = Vec::new();
        let mut live: Vec<KeyHash> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        let mut needs_fix = false;
        let mut quick = 0usize;
        let mut old_served = false;
        let mut abandoned_served = false;
        // Issuer records shared with the service's other key slots stay while one wants them.
        let protected_issuers = self.protected_issuers(&svc, slot)?;
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
                protected_issuers: protected_issuers.clone(),
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
                                s.next.request.new.short()
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
                    if let Some((why, permanent)) = failure_of(&outcome) {
                        failures.push(why);
                        needs_fix |= permanent;
                    }
                    if let ActionOutcome::Dns(report) = &outcome
                        && matches!(
                            s.next.phase.name(),
                            PhaseName::Staged | PhaseName::Published
                        )
                    {
                        // The TTLs that may govern the wait, kept for `status`.
                        let seen = crate::rollover::ttl::observed(&s.next.request.owners, report);
                        self.store
                            .record_ttls(service, slot, s.next.started, seen, self.now())?;
                    }
                    if let ActionOutcome::Probed(results) = &outcome {
                        live = results.iter().filter_map(|p| p.live_key).collect();
                        // The old certificate still served by a matching handshake: an smtpd
                        // that was idle at the reload (about a second). Worth a quick look
                        // again; an unreachable address is not.
                        old_served = results.iter().any(|p| {
                            matches!(p.verdict, crate::rollover::ProbeVerdict::Match)
                                && p.live_key.is_some_and(|k| k != s.next.request.new)
                        });
                        // The same after an abort's reload, the other way round.
                        abandoned_served = results
                            .iter()
                            .any(|p| p.live_key == Some(s.next.request.new));
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
                needs_fix,
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
    pub(super) fn keys_behind(&self, r: &Rollover) -> Result<bool, DriverError> {
        let key = |role| -> Result<Option<KeyHash>, DriverError> {
            Ok(self
                .store
                .key(&r.request.service, &r.request.slot, role)?
                .map(|k| k.hash))
        };
        Ok(match r.phase.name() {
            PhaseName::Done => {
                key(KeyRole::Current)? != Some(r.request.new) || key(KeyRole::New)?.is_some()
            }
            PhaseName::RolledBack | PhaseName::Aborted => key(KeyRole::New)? == Some(r.request.new),
            _ => false,
        })
    }

    /// Under the service's lock: finish the keys of the stored rollover of `service`/`slot` if
    /// it is final and they lag behind it.
    pub(super) fn settle_keys(&mut self, service: &str, slot: &Slot) -> Result<(), DriverError> {
        if let Some(r) = self.store.rollover(service, slot)?
            && r.is_final()
            && self.keys_behind(&r)?
        {
            self.finish_keys(&r)?;
        }
        Ok(())
    }

    /// The store's keys follow the rollover's end: the new key becomes current.
    pub(super) fn finish_keys(&mut self, r: &Rollover) -> Result<(), DriverError> {
        match r.phase.name() {
            PhaseName::Done => {
                self.store.set_key(&KeyEntry {
                    service: r.request.service.clone(),
                    slot: r.request.slot.clone(),
                    role: KeyRole::Current,
                    hash: r.request.new,
                    path: Some(r.request.chain.clone()),
                    created: self.now(),
                })?;
                self.store
                    .clear_key(&r.request.service, &r.request.slot, KeyRole::New)?;
            }
            PhaseName::RolledBack | PhaseName::Aborted => {
                self.store
                    .clear_key(&r.request.service, &r.request.slot, KeyRole::New)?;
            }
            _ => {}
        }
        Ok(())
    }

    pub(super) fn show_events(&self, s: &StepResult) {
        for e in &s.events {
            if e.detail.starts_with("alert: ") {
                continue; // printed on stderr by the alert itself
            }
            self.say(
                &s.next.request.service,
                &s.next.request.slot,
                &format!("{}: {}", e.phase, e.detail),
            );
        }
    }
}

pub(super) fn first(mut standings: Vec<Standing>, service: &str) -> Standing {
    standings.pop().unwrap_or_else(|| Standing {
        service: service.to_owned(),
        slot: Slot::default(),
        phase: PhaseName::Staged,
        wait_until: None,
        waiting_for: None,
        failures: Vec::new(),
        needs_fix: false,
    })
}

/// How often to look again when the wait has no known end (DNS catching up): a tenth of the
/// TTL, between 200 ms and 30 s. The 2×TTL wait counts from the look that sees the records
/// everywhere, so a look that comes late lengthens it by as much.
pub fn poll_interval(ttl: u32) -> Duration {
    Duration::from_millis(u64::from(ttl) * 100)
        .clamp(Duration::from_millis(200), Duration::from_secs(30))
}
