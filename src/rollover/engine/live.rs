//! The phases after the install: `installed` (reload, probe every endpoint address),
//! `verified` (retire the stale records, one by one), `retired` (publish the next key) and
//! `rolled-back` (a failed verification puts the previous certificate back).

use crate::config::Scheme;
use crate::rollover::phase::Phase;
use crate::rollover::{KeyHash, TlsaAt};

use super::machine::{Ctx, PROBE_ALERT_AFTER, RecordOp, stale};
use super::protocol::{Action, ActionOutcome, ProbeResult, ProbeVerdict};

impl Ctx<'_> {
    pub(super) fn installed(&mut self, reloaded: bool, reload_failures: u32, probes: u32) -> bool {
        let since = self.r.phase.since();
        let set = |reloaded, reload_failures, probes| Phase::Installed {
            since,
            reloaded,
            reload_failures,
            probes,
        };
        if !reloaded {
            match self.latest(|o| match o {
                ActionOutcome::Reloaded(r) => Some(r.clone()),
                _ => None,
            }) {
                None => self.actions.push(Action::Reload),
                Some(Ok(())) => {
                    self.r.phase = set(true, reload_failures, probes);
                    self.event("service reloaded".to_owned());
                    self.probe();
                }
                Some(Err(err)) => {
                    self.r.phase = set(false, reload_failures.saturating_add(1), probes);
                    self.alert(format!(
                        "reload failed: {err}; the new certificate is installed and its records \
                         validate, the next run retries the reload"
                    ));
                }
            }
            return false;
        }
        let Some(results) = self.latest(|o| match o {
            ActionOutcome::Probed(r) => Some(r.clone()),
            _ => None,
        }) else {
            self.probe();
            return false;
        };
        match verify(&self.r.request.endpoints, self.r.request.new, &results) {
            Verdict::Verified => self.go(
                Phase::Verified { since: self.now },
                format!(
                    "live handshake on {} address(es) matches the new key {}",
                    results.len(),
                    self.r.request.new.short()
                ),
            ),
            Verdict::Failed(reason) => {
                self.r.phase = Phase::RolledBack {
                    since: self.now,
                    reason: reason.clone(),
                    reinstalled: false,
                    reloaded: false,
                    failures: 0,
                };
                self.alert(format!(
                    "verification failed ({reason}): rolling back to the previous certificate; \
                     no record was removed"
                ));
                true
            }
            Verdict::Inconclusive(reason) => {
                let probes = probes.saturating_add(1);
                self.r.phase = set(true, reload_failures, probes);
                if probes == PROBE_ALERT_AFTER {
                    self.alert(format!(
                        "{probes} probes could not verify the new key ({reason}); still waiting, \
                         old and new records both stay published"
                    ));
                }
                self.wait(None, reason);
                false
            }
        }
    }

    fn probe(&mut self) {
        self.actions.push(Action::Probe {
            endpoints: self.r.request.endpoints.clone(),
            expect: self.r.request.new,
        });
    }

    pub(super) fn verified(&mut self) -> bool {
        let (ok, failed) = self.record_outcomes(RecordOp::Retire);
        let stale: Vec<TlsaAt> = stale(&self.r, self.obs)
            .into_iter()
            .filter(|r| !ok.contains(&r.sort_key()))
            .collect();
        if stale.is_empty() {
            return self.go(
                Phase::Retired { since: self.now },
                format!("stale records retired ({} this run)", ok.len()),
            );
        }
        if failed.is_empty() {
            self.actions.extend(stale.into_iter().map(Action::Retire));
        } else {
            for (record, err) in failed {
                self.alert(format!(
                    "retiring {record} failed: {err}; it stays published, the next run retries"
                ));
            }
        }
        false
    }

    pub(super) fn retired(&mut self) -> bool {
        if self.r.request.scheme == Scheme::CurrentNext && self.r.request.next.is_none() {
            let adopt = self
                .obs
                .stored_next
                .filter(|k| *k != self.r.request.new && Some(*k) != self.r.request.old);
            let generated = self.latest(|o| match o {
                ActionOutcome::NextKey(r) => Some(r.clone()),
                _ => None,
            });
            match (adopt, generated) {
                (Some(key), _) | (None, Some(Ok(key))) if key != self.r.request.new => {
                    self.r.request.next = Some(key);
                    self.event(format!("next key {} ready", key.short()));
                }
                (None, Some(Ok(_))) => {
                    self.alert(
                        "the generated next key is the key just installed; not publishing it"
                            .to_owned(),
                    );
                    return false;
                }
                (None, Some(Err(err))) => {
                    self.alert(format!(
                        "generating the next key failed: {err}; the next run retries \
                         (until then, the next rollover will need the full wait)"
                    ));
                    return false;
                }
                _ => {
                    self.actions.push(Action::GenerateNextKey);
                    return false;
                }
            }
        }
        if let (Scheme::CurrentNext, Some(next)) = (self.r.request.scheme, self.r.request.next) {
            let records: Vec<TlsaAt> = self
                .r
                .request
                .owners
                .iter()
                .map(|o| TlsaAt::new(o, next.dane_ee()))
                .collect();
            // Only the provider's answer in this run counts as published, never "stored as
            // ours" (stored before the provider is asked, so also after a failed add): an add of
            // a record already there sends nothing, so asking again after a resume is cheap.
            if !self.publish_all(&records, &[]) {
                return false;
            }
        }
        self.go(
            Phase::Done { since: self.now },
            format!("rollover complete: {} is live", self.r.request.new.short()),
        )
    }

    pub(super) fn rolled_back(&mut self) -> bool {
        let Phase::RolledBack {
            since,
            reason,
            mut reinstalled,
            mut reloaded,
            mut failures,
        } = self.r.phase.clone()
        else {
            return false;
        };
        if !reinstalled {
            match self.r.request.previous_chain.clone() {
                None => {
                    reinstalled = true;
                    reloaded = true;
                    self.alert(
                        "no previous certificate to reinstall: the new one stays in place"
                            .to_owned(),
                    );
                }
                Some(chain) => self.reinstall_previous(
                    chain,
                    &mut reinstalled,
                    &mut failures,
                    "reinstalling the previous certificate failed",
                ),
            }
        } else if !reloaded {
            self.reload_previous(
                &mut reloaded,
                &mut failures,
                "rollback complete: previous certificate live",
                "reload after rollback failed",
            );
        }
        self.r.phase = Phase::RolledBack {
            since,
            reason,
            reinstalled,
            reloaded,
            failures,
        };
        false
    }
}

enum Verdict {
    Verified,
    Failed(String),
    Inconclusive(String),
}

/// Invariant 3: every endpoint has at least one probed address, and every address matched the
/// validated records while serving the new key.
fn verify(endpoints: &[String], new: KeyHash, results: &[ProbeResult]) -> Verdict {
    let failures: Vec<String> = results
        .iter()
        .filter_map(|p| match &p.verdict {
            ProbeVerdict::NoMatch(why) => Some(format!("{} ({}): {why}", p.endpoint, p.address)),
            _ => None,
        })
        .collect();
    if !failures.is_empty() {
        return Verdict::Failed(failures.join("; "));
    }
    let mut waiting = Vec::new();
    for endpoint in endpoints {
        if !results.iter().any(|p| &p.endpoint == endpoint) {
            waiting.push(format!("{endpoint}: not probed"));
        }
    }
    for p in results {
        match (&p.verdict, p.live_key) {
            (ProbeVerdict::Match, Some(key)) if key == new => {}
            (ProbeVerdict::Match, Some(key)) => waiting.push(format!(
                "{} ({}) still serves {}",
                p.endpoint,
                p.address,
                key.short()
            )),
            (ProbeVerdict::Match, None) => {
                waiting.push(format!(
                    "{} ({}): served key unknown",
                    p.endpoint, p.address
                ));
            }
            (ProbeVerdict::Unknown(why), _) => {
                waiting.push(format!("{} ({}): {why}", p.endpoint, p.address));
            }
            (ProbeVerdict::NoMatch(_), _) => {}
        }
    }
    if waiting.is_empty() {
        Verdict::Verified
    } else {
        Verdict::Inconclusive(waiting.join("; "))
    }
}
