//! The state machine: [`stage`] begins a rollover, [`step`] moves it through the phases, and
//! [`Ctx`] is the working state of one step that the phase handlers (`publish`, `live`,
//! `abort`) share; [`Ctx::finish`] re-checks the retire invariants on whatever they asked.

use std::collections::BTreeSet;

use crate::rollover::phase::{Phase, PhaseName, Rollover};
use crate::rollover::plan::retirable;
use crate::rollover::{KeyHash, OwnerName, Slot, Timestamp, TlsaAt};

use super::protocol::{
    Action, ActionOutcome, DnsReport, Event, Failure, Observations, StageRequest, StepResult,
};

/// After this many inconclusive probes in `installed` an alert goes out (the rollover keeps
/// waiting: with old and new records both published, either certificate is matched).
pub const PROBE_ALERT_AFTER: u32 = 5;

/// The most phase changes one [`step`] makes (a guard; a rollover has eight phases).
const MAX_TRANSITIONS: usize = 16;

/// Why a rollover cannot begin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The new key is the key served now: there is nothing to roll.
    #[error(
        "service {service} ({slot}): the new key {key} is the current key; nothing to roll \
         (a renewal that reuses the key needs no rollover)"
    )]
    SameKey {
        /// The service.
        service: String,
        /// The key slot.
        slot: Slot,
        /// The key, shortened.
        key: String,
    },
    /// The service has no endpoint, so nothing could be published or verified.
    #[error("service {service}: no endpoints; add at least one to the configuration")]
    NoEndpoints {
        /// The service.
        service: String,
    },
    /// A TTL of 0 would make the 2×TTL wait meaningless.
    #[error("service {service}: TTL 0; set a TTL (1800–3600 is advised)")]
    ZeroTtl {
        /// The service.
        service: String,
    },
}

/// Begin a rollover: check the request and return the staged rollover with its first actions
/// (publish every record of the old, new and next keys, one by one).
pub fn stage(request: StageRequest, now: Timestamp) -> Result<StepResult, EngineError> {
    if request.old == Some(request.new) {
        return Err(EngineError::SameKey {
            service: request.service,
            slot: request.slot,
            key: request.new.short(),
        });
    }
    if request.owners.is_empty() || request.endpoints.is_empty() {
        return Err(EngineError::NoEndpoints {
            service: request.service,
        });
    }
    if request.ttl == 0 {
        return Err(EngineError::ZeroTtl {
            service: request.service,
        });
    }
    let mut request = request;
    request.next = request
        .next
        .filter(|n| *n != request.new && Some(*n) != request.old);
    let rollover = Rollover {
        request,
        ttl_seen: None,
        looked: false,
        ttl_warned: false,
        nameserver_down_alerted: false,
        forced: None,
        started: now,
        phase: Phase::Staged { since: now },
    };
    let detail = format!(
        "rollover staged: {} → {} ({} records to publish at {})",
        rollover
            .request
            .old
            .map_or_else(|| "none".to_owned(), |k| k.short()),
        rollover.request.new.short(),
        rollover.publish_set().len(),
        OwnerName::join(&rollover.request.owners, ", ")
    );
    let mut step = step(rollover, &Observations::default(), now);
    step.events.insert(
        0,
        Event {
            time: now,
            phase: PhaseName::Staged,
            detail,
        },
    );
    Ok(step)
}

/// Move `rollover` as far as `observations` allow at `now`; return it with the actions to
/// perform and the events to record.
pub fn step(rollover: Rollover, observations: &Observations, now: Timestamp) -> StepResult {
    let mut ctx = Ctx {
        r: rollover,
        obs: observations,
        now,
        actions: Vec::new(),
        events: Vec::new(),
    };
    for _ in 0..MAX_TRANSITIONS {
        let moved = match ctx.r.phase.clone() {
            Phase::Staged { .. } => ctx.staged(),
            Phase::Published {
                confirmed_at,
                checks,
                ..
            } => ctx.published(confirmed_at, checks),
            Phase::Aged {
                forced,
                install_failures,
                ..
            } => ctx.aged(forced, install_failures),
            Phase::Installed {
                reloaded,
                reload_failures,
                probes,
                ..
            } => ctx.installed(reloaded, reload_failures, probes),
            Phase::Verified { .. } => ctx.verified(),
            Phase::Retired { .. } => ctx.retired(),
            Phase::Done { .. } | Phase::Aborted { .. } => false,
            Phase::RolledBack { .. } => ctx.rolled_back(),
            Phase::Aborting { .. } => ctx.aborting(),
        };
        if !moved {
            break;
        }
    }
    ctx.rate_limited();
    ctx.finish()
}

/// The keys whose records `r` never retires (invariant 2): its new and next keys, the store's
/// next key, the keys the driver protects (seen live) and the issuer keys the service's key
/// slots want ([`Observations::protected_issuers`]).
pub fn protected_keys(r: &Rollover, obs: &Observations) -> Vec<KeyHash> {
    let mut keys = vec![r.request.new];
    keys.extend(r.request.next);
    keys.extend(obs.stored_next);
    keys.extend(obs.protected.iter().copied());
    keys.extend(obs.protected_issuers.iter().copied());
    keys
}

/// The records of ours (`obs.ours`) that `r` may retire once its new key is verified: not in
/// its keep set, and no record of a [protected key](protected_keys). The one rule for what
/// goes: the `verified` phase retires these, and the driver's issuer-following retires the
/// issuer records among them of a finished rollover (after its own probe).
pub fn stale(r: &Rollover, obs: &Observations) -> Vec<TlsaAt> {
    retirable(&obs.ours, &r.keep_set(), &protected_keys(r, obs))
}

/// Records as (owner, presentation) pairs, for set membership.
pub(super) type RecordKeys = BTreeSet<(String, String)>;

/// A change to one record, as its outcome reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RecordOp {
    /// An [`ActionOutcome::Published`].
    Publish,
    /// An [`ActionOutcome::Retired`].
    Retire,
}

/// The working state of one [`step`].
pub(super) struct Ctx<'a> {
    pub(super) r: Rollover,
    pub(super) obs: &'a Observations,
    pub(super) now: Timestamp,
    pub(super) actions: Vec<Action>,
    pub(super) events: Vec<Event>,
}

impl<'a> Ctx<'a> {
    /// A provider rate limit in this step's outcomes: no record change is asked for until the
    /// latest `retry_at`; the step waits for it instead (the phase stays, no alert).
    fn rate_limited(&mut self) {
        let Some((until, detail)) = self
            .obs
            .outcomes
            .iter()
            .filter_map(|o| match o {
                ActionOutcome::RateLimited {
                    retry_at, detail, ..
                } => Some((*retry_at, detail.clone())),
                _ => None,
            })
            .max_by_key(|(t, _)| *t)
        else {
            return;
        };
        let before = self.actions.len();
        self.actions
            .retain(|a| !matches!(a, Action::Publish { .. } | Action::Retire(_)));
        if self.actions.len() != before {
            self.wait(
                Some(until),
                format!("the DNS provider asked to wait until {until} ({detail})"),
            );
        }
    }

    pub(super) fn event(&mut self, detail: String) {
        self.events.push(Event {
            time: self.now,
            phase: self.r.phase.name(),
            detail,
        });
    }

    pub(super) fn alert(&mut self, text: String) {
        self.event(format!("alert: {text}"));
        self.actions.push(Action::Alert(format!(
            "dane-roll: service {} ({}): {text}",
            self.r.request.service, self.r.request.slot
        )));
    }

    /// Change phase, with an event; returns `true` (moved).
    pub(super) fn go(&mut self, phase: Phase, detail: String) -> bool {
        self.r.phase = phase;
        self.event(detail);
        true
    }

    pub(super) fn wait(&mut self, until: Option<Timestamp>, reason: String) {
        self.actions.push(Action::Wait { until, reason });
    }

    pub(super) fn latest_dns(&self) -> Option<&'a DnsReport> {
        let obs: &'a Observations = self.obs;
        obs.outcomes.iter().rev().find_map(|o| match o {
            ActionOutcome::Dns(report) => Some(report),
            _ => None,
        })
    }

    pub(super) fn latest<T>(&self, pick: impl Fn(&ActionOutcome) -> Option<T>) -> Option<T> {
        self.obs.outcomes.iter().rev().find_map(pick)
    }

    /// This step's outcomes of one kind of record change: the records it was done to, and
    /// the failures.
    pub(super) fn record_outcomes(&self, op: RecordOp) -> (RecordKeys, Vec<(TlsaAt, Failure)>) {
        let mut ok = BTreeSet::new();
        let mut failed = Vec::new();
        for o in &self.obs.outcomes {
            let (record, result) = match (op, o) {
                (RecordOp::Publish, ActionOutcome::Published { record, result })
                | (RecordOp::Retire, ActionOutcome::Retired { record, result }) => (record, result),
                _ => continue,
            };
            match result {
                Ok(()) => {
                    ok.insert(record.sort_key());
                }
                Err(e) => failed.push((record.clone(), e.clone())),
            }
        }
        (ok, failed)
    }

    /// Publish `records` not yet published in this run; `true` when all are out.
    pub(super) fn publish_all(&mut self, records: &[TlsaAt], also_done: &[TlsaAt]) -> bool {
        let (ok, failed) = self.record_outcomes(RecordOp::Publish);
        let done: BTreeSet<_> = also_done.iter().map(TlsaAt::sort_key).collect();
        let pending: Vec<TlsaAt> = records
            .iter()
            .filter(|r| !ok.contains(&r.sort_key()) && !done.contains(&r.sort_key()))
            .cloned()
            .collect();
        let failed: Vec<_> = failed
            .into_iter()
            .filter(|(r, _)| pending.contains(r))
            .collect();
        if pending.is_empty() {
            return true;
        }
        if failed.is_empty() {
            let ttl = self.r.request.ttl;
            self.actions.extend(
                pending
                    .into_iter()
                    .map(|record| Action::Publish { record, ttl }),
            );
        } else {
            for (record, err) in failed {
                self.alert(format!(
                    "publishing {record} failed: {err}; the next run retries"
                ));
            }
        }
        false
    }
    /// Last line of defence for invariants 1–3, whatever the handlers did.
    fn finish(mut self) -> StepResult {
        let protected = protected_keys(&self.r, self.obs);
        let phase = self.r.phase.name();
        let mut refused = Vec::new();
        let abort_protected = self.abort_protected();
        let abandoned = self.r.request.new;
        self.actions.retain(|a| match a {
            // An abort retires only the abandoned key's records, never a kept key's.
            Action::Retire(record) if phase == PhaseName::Aborting => {
                let ok =
                    record.is_of(&abandoned) && !abort_protected.iter().any(|k| record.is_of(k));
                if !ok {
                    refused.push(record.clone());
                }
                ok
            }
            Action::Retire(record) => {
                let ok = phase == PhaseName::Verified && !protected.iter().any(|k| record.is_of(k));
                if !ok {
                    refused.push(record.clone());
                }
                ok
            }
            _ => true,
        });
        for record in refused {
            self.event(format!(
                "refused to retire {record}: it matches a protected key"
            ));
        }
        StepResult {
            next: self.r,
            actions: self.actions,
            events: self.events,
        }
    }
}
