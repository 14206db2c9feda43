//! The way out of a rollover the operator abandons (`dane-roll abort`): [`abort`] turns a
//! rollover in any phase before `verified` into `aborting`, and the engine's `aborting` step
//! puts the previous certificate back if the new one was installed, reloads, probes, and only
//! once the live handshake on every endpoint address shows a key other than the abandoned one
//! (and matches the validated records that remain) retires the abandoned key's records, one by
//! one; then `aborted`. The old key's records were never removed before `verified`, so mail
//! keeps verifying throughout. Like every phase, each change waits for an observed outcome, and
//! a failure is retried by the next `dane-roll run`.

use std::path::PathBuf;

use crate::rollover::phase::{Phase, PhaseName, Rollover};
use crate::rollover::{KeyHash, Slot, Timestamp, TlsaAt};

use super::machine::{Ctx, PROBE_ALERT_AFTER, RecordOp};
use super::protocol::{Action, ActionOutcome, Event, ProbeResult, ProbeVerdict, StepResult};

/// Why a rollover cannot be abandoned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AbortRefused {
    /// Nothing is under way.
    #[error("service {service} ({slot}): the rollover is {phase}; there is nothing to abort")]
    Final {
        /// The service.
        service: String,
        /// The key slot.
        slot: Slot,
        /// Its phase.
        phase: PhaseName,
    },
    /// The new key is verified live: the old records may be going already.
    #[error(
        "service {service} ({slot}): the new key {new} is verified live (phase {phase}) and the \
         old records are being retired, so the previous certificate cannot safely go back; \
         `dane-roll run {service}` finishes the rollover (only record clean-up is left)"
    )]
    PastVerify {
        /// The service.
        service: String,
        /// The key slot.
        slot: Slot,
        /// Its phase.
        phase: PhaseName,
        /// The new key, short.
        new: String,
    },
    /// The new certificate is installed and there is nothing to go back to.
    #[error(
        "service {service} ({slot}): the new certificate is installed and no previous \
         certificate was kept (the chain file did not exist when the rollover began), so there \
         is nothing to go back to; let `dane-roll run {service}` finish the rollover"
    )]
    NoPrevious {
        /// The service.
        service: String,
        /// The key slot.
        slot: Slot,
    },
}

/// Begin abandoning `rollover`: `installed` says whether the new certificate is (or may be) in
/// the service's chain file, so the previous one must go back. Returns the rollover in
/// `aborting` with its event, to be saved; the actions come from the next
/// [`step`](super::step), with the store's observations (what is "ours" decides what goes).
pub fn abort(
    rollover: Rollover,
    installed: bool,
    now: Timestamp,
) -> Result<StepResult, AbortRefused> {
    let from = rollover.phase.name();
    match from {
        PhaseName::Done | PhaseName::RolledBack | PhaseName::Aborted => {
            return Err(AbortRefused::Final {
                service: rollover.request.service,
                slot: rollover.request.slot,
                phase: from,
            });
        }
        PhaseName::Verified | PhaseName::Retired => {
            return Err(AbortRefused::PastVerify {
                service: rollover.request.service,
                slot: rollover.request.slot,
                phase: from,
                new: rollover.request.new.short(),
            });
        }
        // Aborting again (a resumed abort) keeps its progress.
        PhaseName::Aborting => {
            return Ok(StepResult {
                next: rollover,
                actions: Vec::new(),
                events: Vec::new(),
            });
        }
        _ => {}
    }
    let restore = installed || from == PhaseName::Installed;
    if restore && rollover.request.previous_chain.is_none() {
        return Err(AbortRefused::NoPrevious {
            service: rollover.request.service,
            slot: rollover.request.slot,
        });
    }
    let mut r = rollover;
    r.phase = Phase::Aborting {
        since: now,
        from,
        restore,
        reinstalled: false,
        reloaded: false,
        failures: 0,
        probes: 0,
    };
    let detail = format!(
        "aborted by the operator in phase {from}: abandoning key {}; {}",
        r.request.new.short(),
        if restore {
            "the previous certificate goes back, then the abandoned key's records are retired"
        } else {
            "the new certificate was never installed; the abandoned key's records are retired \
             once the live handshake shows the key in use"
        }
    );
    Ok(StepResult {
        next: r,
        actions: Vec::new(),
        events: vec![Event {
            time: now,
            phase: PhaseName::Aborting,
            detail,
        }],
    })
}

impl Ctx<'_> {
    /// Putting the previous certificate back from `chain` (abort, rollback): asked for, or its
    /// outcome recorded: an event and the reload asked for, or `failed` (with the error) as an
    /// alert and one more failure; the next run retries.
    pub(super) fn reinstall_previous(
        &mut self,
        chain: PathBuf,
        reinstalled: &mut bool,
        failures: &mut u32,
        failed: &str,
    ) {
        match self.latest(|o| match o {
            ActionOutcome::Reinstalled(r) => Some(r.clone()),
            _ => None,
        }) {
            None => self.actions.push(Action::ReinstallPrevious { chain }),
            Some(Ok(())) => {
                *reinstalled = true;
                self.event("previous certificate reinstalled".to_owned());
                self.actions.push(Action::Reload);
            }
            Some(Err(err)) => {
                *failures = failures.saturating_add(1);
                self.alert(format!("{failed}: {err}; the next run retries"));
            }
        }
    }

    /// The reload once the previous certificate is back (abort, rollback): asked for, or its
    /// outcome recorded: `live` as an event, or `failed` (with the error) as an alert and one
    /// more failure; the next run retries.
    pub(super) fn reload_previous(
        &mut self,
        reloaded: &mut bool,
        failures: &mut u32,
        live: &str,
        failed: &str,
    ) {
        match self.latest(|o| match o {
            ActionOutcome::Reloaded(r) => Some(r.clone()),
            _ => None,
        }) {
            None => self.actions.push(Action::Reload),
            Some(Ok(())) => {
                *reloaded = true;
                self.event(live.to_owned());
            }
            Some(Err(err)) => {
                *failures = failures.saturating_add(1);
                self.alert(format!("{failed}: {err}; the next run retries"));
            }
        }
    }

    /// The keys whose records an abort keeps: the old key, the next keys, issuers (the
    /// rollover's and those the service's key slots want), and every key a probe saw live.
    pub(super) fn abort_protected(&self) -> Vec<KeyHash> {
        let mut keys: Vec<KeyHash> = self.r.request.old.into_iter().collect();
        keys.extend(self.r.request.next);
        keys.extend(self.obs.stored_next);
        keys.extend(self.r.request.issuers.iter().copied());
        keys.extend(self.obs.protected.iter().copied());
        keys.extend(self.obs.protected_issuers.iter().copied());
        keys
    }

    pub(super) fn aborting(&mut self) -> bool {
        let Phase::Aborting {
            since,
            from,
            restore,
            mut reinstalled,
            mut reloaded,
            mut failures,
            mut probes,
        } = self.r.phase.clone()
        else {
            return false;
        };
        let mut done = false;
        if restore && !reinstalled {
            match self.r.request.previous_chain.clone() {
                None => self.alert(
                    "no previous certificate to reinstall; the abandoned key stays live and its \
                     records stay"
                        .to_owned(),
                ),
                Some(chain) => self.reinstall_previous(
                    chain,
                    &mut reinstalled,
                    &mut failures,
                    "abort: reinstalling the previous certificate failed",
                ),
            }
        } else if restore && !reloaded {
            self.reload_previous(
                &mut reloaded,
                &mut failures,
                "service reloaded with the previous certificate",
                "abort: reload after reinstalling the previous certificate failed",
            );
        }
        if !restore || (reinstalled && reloaded) {
            done = self.abort_retire(&mut failures, &mut probes);
        }
        if done {
            let retired = self
                .obs
                .outcomes
                .iter()
                .filter(|o| matches!(o, ActionOutcome::Retired { result: Ok(()), .. }))
                .count();
            return self.go(
                Phase::Aborted {
                    since: self.now,
                    from,
                },
                format!(
                    "abort complete: {} is live, key {} abandoned ({retired} record(s) retired \
                     this run)",
                    self.r
                        .request
                        .old
                        .map_or_else(|| "the previous key".to_owned(), |k| k.short()),
                    self.r.request.new.short()
                ),
            );
        }
        self.r.phase = Phase::Aborting {
            since,
            from,
            restore,
            reinstalled,
            reloaded,
            failures,
            probes,
        };
        false
    }

    /// Probe, then retire the abandoned key's records once every address shows another key
    /// that matches the records that remain. `true` when none is left.
    fn abort_retire(&mut self, failures: &mut u32, probes: &mut u32) -> bool {
        let (ok, failed) = self.record_outcomes(RecordOp::Retire);
        if !failed.is_empty() {
            *failures = failures.saturating_add(1);
            for (record, err) in failed {
                self.alert(format!(
                    "abort: retiring {record} failed: {err}; it stays published, the next run \
                     retries"
                ));
            }
            return false;
        }
        let protected = self.abort_protected();
        let abandoned: Vec<TlsaAt> = self
            .obs
            .ours
            .iter()
            .filter(|r| r.is_of(&self.r.request.new) && !protected.iter().any(|k| r.is_of(k)))
            .filter(|r| !ok.contains(&r.sort_key()))
            .cloned()
            .collect();
        if abandoned.is_empty() {
            return true;
        }
        if !ok.is_empty() {
            // Retired in this run after a matching probe; the rest follow the same probe.
            self.actions
                .extend(abandoned.into_iter().map(Action::Retire));
            return false;
        }
        let Some(results) = self.latest(|o| match o {
            ActionOutcome::Probed(r) => Some(r.clone()),
            _ => None,
        }) else {
            self.actions.push(Action::Probe {
                endpoints: self.r.request.endpoints.clone(),
                expect: self.r.request.old.unwrap_or(self.r.request.new),
            });
            return false;
        };
        match self.remaining_live(&results) {
            Ok(()) => {
                self.actions
                    .extend(abandoned.into_iter().map(Action::Retire));
                false
            }
            Err(reason) => {
                *probes = probes.saturating_add(1);
                if *probes == PROBE_ALERT_AFTER {
                    self.alert(format!(
                        "abort: {} probes did not show the remaining key live ({reason}); the \
                         abandoned key's records stay until they do",
                        *probes
                    ));
                }
                self.wait(None, reason);
                false
            }
        }
    }

    /// Every endpoint has a probed address, and every address matched the validated records
    /// with a key other than the abandoned one.
    fn remaining_live(&self, results: &[ProbeResult]) -> Result<(), String> {
        let mut waiting = Vec::new();
        for endpoint in &self.r.request.endpoints {
            if !results.iter().any(|p| &p.endpoint == endpoint) {
                waiting.push(format!("{endpoint}: not probed"));
            }
        }
        for p in results {
            match (&p.verdict, p.live_key) {
                (ProbeVerdict::Match, Some(key)) if key != self.r.request.new => {}
                (ProbeVerdict::Match, Some(key)) => waiting.push(format!(
                    "{} ({}) still serves the abandoned key {}",
                    p.endpoint,
                    p.address,
                    key.short()
                )),
                (ProbeVerdict::Match, None) => waiting.push(format!(
                    "{} ({}): served key unknown",
                    p.endpoint, p.address
                )),
                (ProbeVerdict::NoMatch(why) | ProbeVerdict::Unknown(why), _) => {
                    waiting.push(format!("{} ({}): {why}", p.endpoint, p.address));
                }
            }
        }
        if waiting.is_empty() {
            Ok(())
        } else {
            Err(waiting.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::rollover::StageRequest;
    use crate::rollover::{Observations, step};

    fn owner() -> crate::rollover::OwnerName {
        crate::rollover::OwnerName::for_endpoint("mx.example.com", 25)
    }

    fn key(n: u8) -> KeyHash {
        KeyHash([n; 32])
    }

    fn rollover(phase: Phase, previous: bool) -> Rollover {
        Rollover {
            request: StageRequest {
                slot: Slot::Ec,
                ttl: 2,
                owners: vec![owner()],
                endpoints: vec!["mx.example.com:25".to_owned()],
                next: Some(key(3)),
                chain: PathBuf::from("/state/new.pem"),
                previous_chain: previous.then(|| PathBuf::from("/state/previous.pem")),
                ..StageRequest::example()
            },
            forced: None,
            started: Timestamp::from_secs(100),
            ttl_seen: None,
            looked: true,
            ttl_warned: false,
            nameserver_down_alerted: false,
            phase,
        }
    }

    fn probed(live: KeyHash) -> ActionOutcome {
        ActionOutcome::Probed(vec![ProbeResult {
            endpoint: "mx.example.com:25".to_owned(),
            address: "192.0.2.1".to_owned(),
            verdict: ProbeVerdict::Match,
            live_key: Some(live),
            chain: Vec::new(),
        }])
    }

    fn obs(outcomes: Vec<ActionOutcome>, ours: &[u8]) -> Observations {
        Observations {
            outcomes,
            ours: ours
                .iter()
                .map(|n| TlsaAt::new(&owner(), key(*n).dane_ee()))
                .collect(),
            ..Observations::default()
        }
    }

    #[test]
    fn from_installed_the_previous_certificate_goes_back_before_any_record() {
        let installed = Phase::Installed {
            since: Timestamp::from_secs(110),
            reloaded: true,
            reload_failures: 0,
            probes: 0,
        };
        let s = abort(rollover(installed, true), false, Timestamp::from_secs(120)).unwrap();
        assert!(s.events[0].detail.contains("aborted by the operator"));
        let s = step(
            s.next,
            &obs(Vec::new(), &[1, 2, 3]),
            Timestamp::from_secs(120),
        );
        assert!(
            matches!(&s.actions[..], [Action::ReinstallPrevious { .. }]),
            "{:?}",
            s.actions
        );
        let s = step(
            s.next,
            &obs(vec![ActionOutcome::Reinstalled(Ok(()))], &[1, 2, 3]),
            Timestamp::from_secs(121),
        );
        assert_eq!(s.actions, vec![Action::Reload]);
        let s = step(
            s.next,
            &obs(vec![ActionOutcome::Reloaded(Ok(()))], &[1, 2, 3]),
            Timestamp::from_secs(122),
        );
        assert!(matches!(&s.actions[..], [Action::Probe { .. }]));
        // The abandoned key still served (an idle smtpd): nothing retired, wait.
        let s = step(
            s.next,
            &obs(vec![probed(key(2))], &[1, 2, 3]),
            Timestamp::from_secs(123),
        );
        assert!(
            s.actions.iter().all(|a| !matches!(a, Action::Retire(_))),
            "{:?}",
            s.actions
        );
        assert_eq!(s.next.phase.name(), PhaseName::Aborting);
        // The old key live: only the abandoned key's record goes (old and next stay).
        let s = step(
            s.next,
            &obs(vec![probed(key(1))], &[1, 2, 3]),
            Timestamp::from_secs(124),
        );
        assert_eq!(
            s.actions,
            vec![Action::Retire(TlsaAt::new(&owner(), key(2).dane_ee()))]
        );
        let gone = ActionOutcome::Retired {
            record: TlsaAt::new(&owner(), key(2).dane_ee()),
            result: Ok(()),
        };
        let s = step(s.next, &obs(vec![gone], &[1, 3]), Timestamp::from_secs(125));
        assert_eq!(s.next.phase.name(), PhaseName::Aborted);
        assert!(s.next.is_final());
    }

    #[test]
    fn from_published_nothing_is_reinstalled_and_a_failed_retire_is_held() {
        let published = Phase::Published {
            since: Timestamp::from_secs(110),
            confirmed_at: None,
            checks: 1,
        };
        let s = abort(rollover(published, false), false, Timestamp::from_secs(120)).unwrap();
        let s = step(s.next, &obs(Vec::new(), &[1, 2]), Timestamp::from_secs(120));
        assert!(matches!(&s.actions[..], [Action::Probe { .. }]));
        let s = step(
            s.next,
            &obs(vec![probed(key(1))], &[1, 2]),
            Timestamp::from_secs(121),
        );
        let retire = TlsaAt::new(&owner(), key(2).dane_ee());
        assert_eq!(s.actions, vec![Action::Retire(retire.clone())]);
        let failed = ActionOutcome::Retired {
            record: retire,
            result: Err("REFUSED".into()),
        };
        let s = step(
            s.next,
            &obs(vec![failed], &[1, 2]),
            Timestamp::from_secs(122),
        );
        assert_eq!(s.next.phase.name(), PhaseName::Aborting);
        assert!(s.alerts().any(|a| a.contains("REFUSED")));
        assert!(s.is_settled());
    }

    #[test]
    fn past_verify_final_or_nothing_to_go_back_to_is_refused() {
        let verified = Phase::Verified {
            since: Timestamp::from_secs(110),
        };
        assert!(matches!(
            abort(rollover(verified, true), true, Timestamp::from_secs(120)),
            Err(AbortRefused::PastVerify { .. })
        ));
        let done = Phase::Done {
            since: Timestamp::from_secs(110),
        };
        assert!(matches!(
            abort(rollover(done, true), false, Timestamp::from_secs(120)),
            Err(AbortRefused::Final { .. })
        ));
        let aged = Phase::Aged {
            since: Timestamp::from_secs(110),
            forced: false,
            install_failures: 0,
        };
        // Installed by a process killed before it recorded the outcome, no previous file.
        assert!(matches!(
            abort(rollover(aged, false), true, Timestamp::from_secs(120)),
            Err(AbortRefused::NoPrevious { .. })
        ));
    }
}
