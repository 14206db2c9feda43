//! The commands around rollovers: `next-key` (generate and publish), `prune` (remove stale
//! records, never one the live handshake or the next key needs; `--foreign` in `foreign`), `plan` (the next step, not
//! taken), `status --live` (what DNS and the handshake show), and confirming a published next
//! key so that the rollover to it needs no new wait.

use std::collections::BTreeSet;
use std::io;
use std::path::Path;
use std::time::Duration;

use crate::config::Service;
use crate::pki;
use crate::rollover::engine::gate;
use crate::rollover::{
    ActionOutcome, DnsReport, Effects, Event, KeyHash, Observations, PhaseName, ProbeResult,
    Rollover, Slot, StepResult, TlsaAt, step,
};
use crate::store::{KeyEntry, KeyRole, RecordChange};

use super::{Driver, DriverError, chain_file, find_service, selected};

/// What `prune` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// Records removed.
    pub removed: Vec<String>,
    /// Records whose removal failed, with why.
    pub failed: Vec<String>,
    /// The keys whose records were kept (short hashes).
    pub kept_keys: Vec<String>,
    /// Why nothing was done, when refused.
    pub refused: Option<String>,
    /// Whether this was a dry run: `removed` and `foreign` say what would go; nothing went.
    pub dry_run: bool,
    /// Records at the service's owner names that were never ours and match no key: removed
    /// (with `--foreign`).
    pub foreign: Vec<String>,
    /// Records at the service's owner names that were never ours and stay, with why.
    pub kept_foreign: Vec<String>,
}

/// How `prune` goes about it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneOptions {
    /// Also records at the service's owner names that dane-roll never published.
    pub foreign: bool,
    /// Say what would be removed; change nothing.
    pub dry_run: bool,
}

pub(super) fn installed_key_type(path: &Path) -> Option<crate::config::KeyType> {
    let material = pki::load(path).ok()?;
    pki::key_type_like(&material.key()?.key_type())
}

impl<E: Effects> Driver<E> {
    /// For every stored next key (of `service`, or all) whose records dane-roll published but
    /// never saw on every nameserver and validated, look now and record when they are: a later
    /// rollover to that key counts its 2×TTL from then (and needs no wait when that is past).
    /// Slots with a rollover under way are left to it.
    pub(super) fn confirm_next_keys(&mut self, service: Option<&str>) -> Result<(), DriverError> {
        let services: Vec<Service> = selected(&self.config, service).cloned().collect();
        for svc in services {
            for key in self.store.keys(&svc.name)? {
                if key.role != KeyRole::Next {
                    continue;
                }
                if self
                    .store
                    .rollover(&svc.name, &key.slot)?
                    .is_some_and(|r| !r.is_final())
                {
                    continue;
                }
                // Where the records live (a CNAME followed); if that cannot be told now, the
                // next run looks again.
                let Ok(owners) = self.effective_owners(&svc) else {
                    continue;
                };
                let records: Vec<TlsaAt> = owners
                    .iter()
                    .map(|o| TlsaAt::new(o, key.hash.dane_ee()))
                    .collect();
                let ours = self.store.ours(&svc.name, &key.slot)?;
                if !records.iter().all(|rec| ours.contains(rec))
                    || self
                        .store
                        .confirmed_since(&svc.name, &key.slot, &records)?
                        .is_some()
                {
                    continue;
                }
                let report = self.effects.check_dns(&records, &records);
                if gate(&records, &report).is_ok() {
                    let changes: Vec<RecordChange> = records
                        .iter()
                        .map(|rec| RecordChange::Confirmed(rec.clone()))
                        .collect();
                    let at = self.now().plus(Duration::from_secs(1));
                    self.store
                        .record_changes(&svc.name, &key.slot, &changes, at)?;
                    self.say(
                        &svc.name,
                        &key.slot,
                        &format!(
                            "next key {} served by every nameserver and validated",
                            key.hash.short()
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// Generate (or reuse) the next key of `service`'s `slot` and publish its records now.
    /// Returns the key and the failures of publishing.
    pub fn next_key(
        &mut self,
        service: &str,
        slot: &Slot,
    ) -> Result<(KeyHash, bool, Vec<String>), DriverError> {
        let svc = find_service(&self.config, service)?.clone();
        let _held = self.lock(service)?;
        let existing = self.store.key(service, slot, KeyRole::Next)?;
        let (hash, fresh) = match existing {
            Some(k) => (k.hash, false),
            None => {
                let kind = match svc.key_type {
                    Some(k) => Some(k),
                    None => chain_file(&svc, slot)
                        .ok()
                        .and_then(installed_key_type)
                        .or_else(|| {
                            self.store
                                .key(service, slot, KeyRole::Current)
                                .ok()
                                .flatten()
                                .and_then(|k| k.path)
                                .and_then(|p| installed_key_type(&p))
                        }),
                };
                let Some(kind) = kind else {
                    return Err(DriverError::UnsupportedKey {
                        path: svc.chain_files.to_string().into(),
                        key_type: "unknown".to_owned(),
                    });
                };
                let (hash, path) =
                    self.write_next_key(&svc, slot, kind)
                        .map_err(|e| DriverError::Staging {
                            path: svc.chain_files.to_string().into(),
                            source: io::Error::other(e),
                        })?;
                self.store.set_key(&KeyEntry {
                    service: service.to_owned(),
                    slot: slot.clone(),
                    role: KeyRole::Next,
                    hash,
                    path: Some(path),
                    created: self.now(),
                })?;
                (hash, true)
            }
        };
        // Every owner name holds the live key's record before the next key's goes there.
        let mut failures = Vec::new();
        let _ = self.aliases(&svc);
        for look in self.look_owners(&svc)?.iter().filter(|l| l.slot == *slot) {
            failures.extend(self.reconcile_owners(&svc, look)?.failures);
        }
        if !failures.is_empty() {
            return Ok((hash, fresh, failures));
        }
        for owner in self.effective_owners(&svc)? {
            let record = TlsaAt::new(&owner, hash.dane_ee());
            match self.publish(&svc, slot, &record, svc.ttl)? {
                ActionOutcome::Published {
                    result: Err(err), ..
                } => failures.push(err.to_string()),
                ActionOutcome::RateLimited { detail, .. } => {
                    failures.push(format!("{record} not published yet: {detail}"));
                }
                _ => {}
            }
        }
        let event = Event {
            time: self.now(),
            phase: self
                .store
                .rollover(service, slot)?
                .map_or(PhaseName::Done, |r| r.phase.name()),
            detail: format!(
                "next key {} {} and its records published",
                hash.short(),
                if fresh { "generated" } else { "kept" }
            ),
        };
        self.store.add_events(service, slot, &[event])?;
        Ok((hash, fresh, failures))
    }

    /// Remove the records of `service` that match neither a live key (probed now), the current
    /// key, the published next key, nor a key of an unfinished rollover. Refuses when an
    /// endpoint address could not be probed. Returns the records removed and those that failed.
    pub fn prune(
        &mut self,
        service: &str,
        options: PruneOptions,
    ) -> Result<PruneReport, DriverError> {
        let svc = find_service(&self.config, service)?.clone();
        let _held = self.lock(service)?;
        let mut report = PruneReport {
            dry_run: options.dry_run,
            ..PruneReport::default()
        };
        let mut slots: BTreeSet<Slot> = self
            .store
            .published(service)?
            .into_iter()
            .filter(|p| p.retired_at.is_none())
            .map(|p| p.slot)
            .collect();
        slots.extend(self.store.keys(service)?.into_iter().map(|k| k.slot));
        let endpoints = svc.endpoint_ids();
        // Invariant 2: every key the live handshake shows (any algorithm) is kept, and nothing
        // goes unless every endpoint address could be seen.
        let live = self.effects.live_keys(&svc, &endpoints);
        let unprobed: Vec<String> = live
            .iter()
            .filter_map(|(e, a, keys)| keys.as_ref().err().map(|why| format!("{e} ({a}): {why}")))
            .collect();
        if !unprobed.is_empty() || live.is_empty() {
            report.refused = Some(format!(
                "the live key could not be seen on {}; nothing was removed (a record the live \
                 handshake matches must never go)",
                if unprobed.is_empty() {
                    "any endpoint".to_owned()
                } else {
                    unprobed.join(", ")
                }
            ));
            return Ok(report);
        }
        let mut keep: Vec<KeyHash> = live
            .iter()
            .filter_map(|(_, _, keys)| keys.as_ref().ok())
            .flatten()
            .copied()
            .collect();
        for k in self.store.keys(service)? {
            keep.push(k.hash);
        }
        for slot in &slots {
            if let Some(r) = self.store.rollover(service, slot)? {
                keep.extend(r.request.next);
                keep.extend(r.request.issuers.iter().copied());
                match r.phase.name() {
                    // Rolled back: the old key is live again; the new one's records may go.
                    PhaseName::RolledBack | PhaseName::Aborted => keep.extend(r.request.old),
                    PhaseName::Done => keep.push(r.request.new),
                    // Under way: every record it published is still needed.
                    _ => {
                        keep.push(r.request.new);
                        keep.extend(r.request.old);
                    }
                }
            }
        }
        report.kept_keys = keep.iter().map(KeyHash::short).collect();
        report.kept_keys.sort();
        report.kept_keys.dedup();
        for slot in slots {
            for record in self.store.ours(service, &slot)? {
                if keep.iter().any(|k| record.is_of(k)) {
                    continue;
                }
                if options.dry_run {
                    report.removed.push(record.to_string());
                    continue;
                }
                let result = self.provider_change(&svc, &record, svc.ttl, false);
                match result {
                    Ok(()) => {
                        let now = self.now();
                        self.store.record_changes(
                            service,
                            &slot,
                            &[RecordChange::Retired(record.clone())],
                            now,
                        )?;
                        let phase = self
                            .store
                            .rollover(service, &slot)?
                            .map_or(PhaseName::Done, |r| r.phase.name());
                        self.store.add_events(
                            service,
                            &slot,
                            &[Event {
                                time: now,
                                phase,
                                detail: format!("pruned {record}"),
                            }],
                        )?;
                        report.removed.push(record.to_string());
                    }
                    Err(err) => report.failed.push(format!("{record}: {err}")),
                }
            }
        }
        if options.foreign {
            self.prune_foreign(&svc, keep, &mut report)?;
        }
        Ok(report)
    }

    /// What `run` would do now for each stored rollover (of `service`, or all): the step the
    /// engine would take with nothing new observed. Changes nothing.
    pub fn plan(&self, service: Option<&str>) -> Result<Vec<(Rollover, StepResult)>, DriverError> {
        if let Some(name) = service {
            find_service(&self.config, name)?;
        }
        let now = self.now();
        let mut out = Vec::new();
        for r in self.store.rollovers()? {
            if service.is_some_and(|s| s != r.request.service) {
                continue;
            }
            let protected_issuers = match self.config.service(&r.request.service) {
                Some(svc) => self.protected_issuers(svc, &r.request.slot)?,
                None => Vec::new(),
            };
            let obs = Observations {
                ours: self.store.ours(&r.request.service, &r.request.slot)?,
                protected_issuers,
                stored_next: self
                    .store
                    .key(&r.request.service, &r.request.slot, KeyRole::Next)?
                    .map(|k| k.hash),
                ..Observations::default()
            };
            let s = step(r.clone(), &obs, now);
            out.push((r, s));
        }
        Ok(out)
    }

    /// What DNS and the live handshake show now for a rollover (for `status --live`): every
    /// nameserver's and the resolver's answer for the records the rollover wants, and the probe
    /// of every endpoint address against the validated records.
    pub fn observe_live(&self, r: &Rollover) -> Result<(DnsReport, Vec<ProbeResult>), DriverError> {
        let svc = find_service(&self.config, &r.request.service)?;
        let expected = match r.phase.name() {
            PhaseName::Aborting | PhaseName::Aborted => r.abandon_set(),
            _ if r.is_final() => r.keep_set(),
            _ => r.publish_set(),
        };
        let dns = self.effects.check_dns(&expected, &expected);
        let probed = self
            .effects
            .probe(svc, &r.request.slot, &r.request.endpoints, r.request.new);
        Ok((dns, probed))
    }
}
