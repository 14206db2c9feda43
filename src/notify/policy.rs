//! When to send: the firing policy, pure and without I/O.
//!
//! Per check id, the last known [`AlertState`] (severity, since when, last time an alert went
//! out) is kept by an [`AlertMemory`] (the SQLite store's `alert_state` table in production,
//! [`MemoryAlerts`] in tests). [`decide`] takes that state and a new observation and says what to
//! send and what to remember:
//!
//! | before            | now                    | send                                |
//! | ----------------- | ---------------------- | ----------------------------------- |
//! | none or ok        | ok                     | nothing                             |
//! | none, ok or bad A | bad B (B ≠ A)          | [`Notice::Fired`] at once           |
//! | bad A             | bad A                  | [`Notice::Repeat`] once per interval |
//! | bad A, never sent | bad A                  | [`Notice::Fired`] (a retry)         |
//! | bad A             | ok                     | [`Notice::Recovered`]               |
//!
//! "Bad" is every severity but ok; `unknown` is a state of its own, so critical → unknown and
//! unknown → critical are changes and fire. Flapping sends one message per change: a recovery
//! followed by a new failure are both news, and suppressing either would leave the postmaster
//! believing the wrong thing. The repeat interval only throttles a state that holds.
//!
//! A notice that reached no channel must not be remembered as sent: [`Decision::state_after`]
//! gives the state to store either way, so the next run retries.

use std::collections::HashMap;
use std::convert::Infallible;
use std::time::{Duration, SystemTime};

use super::alert::Severity;

/// What is remembered about one check between runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AlertState {
    /// The last observed severity.
    pub severity: Severity,
    /// When the check entered that severity.
    pub since: SystemTime,
    /// When an alert for that severity last reached a channel; `None` if none did.
    pub last_sent: Option<SystemTime>,
}

/// Where the alert states live, keyed by check id.
pub trait AlertMemory {
    /// Why the memory could not be read or written (the store's error; never for memory).
    type Error;
    /// The state of `check`, if one was stored.
    fn get(&self, check: &str) -> Result<Option<AlertState>, Self::Error>;
    /// Store the state of `check`.
    fn put(&mut self, check: &str, state: AlertState) -> Result<(), Self::Error>;
    /// The ids of every check with a stored state, sorted.
    fn checks(&self) -> Result<Vec<String>, Self::Error>;
    /// Forget the state of `check`: it is no longer made (see [`retire`]).
    fn forget(&mut self, check: &str) -> Result<(), Self::Error>;
}

/// An [`AlertMemory`] in a map: for tests and one-shot runs.
#[derive(Debug, Clone, Default)]
pub struct MemoryAlerts {
    states: HashMap<String, AlertState>,
}

impl MemoryAlerts {
    /// An empty memory.
    pub fn new() -> MemoryAlerts {
        MemoryAlerts::default()
    }
}

impl AlertMemory for MemoryAlerts {
    type Error = Infallible;
    fn get(&self, check: &str) -> Result<Option<AlertState>, Infallible> {
        Ok(self.states.get(check).copied())
    }
    fn put(&mut self, check: &str, state: AlertState) -> Result<(), Infallible> {
        self.states.insert(check.to_owned(), state);
        Ok(())
    }
    fn checks(&self) -> Result<Vec<String>, Infallible> {
        let mut ids: Vec<String> = self.states.keys().cloned().collect();
        ids.sort();
        Ok(ids)
    }
    fn forget(&mut self, check: &str) -> Result<(), Infallible> {
        self.states.remove(check);
        Ok(())
    }
}

/// What to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// The check entered a bad state (or one that was never announced).
    Fired {
        /// The state before, if any was known.
        from: Option<Severity>,
    },
    /// The bad state still holds and the repeat interval has passed.
    Repeat {
        /// Since when it holds.
        since: SystemTime,
    },
    /// The check is ok again.
    Recovered {
        /// The bad state that ended.
        was: Severity,
        /// Since when it had held.
        since: SystemTime,
    },
}

/// What [`decide`] says: what to send, and the states to remember.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// The message to send, if any.
    pub notice: Option<Notice>,
    sent: AlertState,
    unsent: AlertState,
}

impl Decision {
    /// The state to store once the notice was (`delivered`) or was not sent to any channel.
    /// Without a notice both are the same.
    pub fn state_after(&self, delivered: bool) -> AlertState {
        if delivered || self.notice.is_none() {
            self.sent
        } else {
            self.unsent
        }
    }
}

/// Decide what to send for a check that was `before` and is now `now_severity`, at `now`.
pub fn decide(
    before: Option<&AlertState>,
    now_severity: Severity,
    now: SystemTime,
    repeat_interval: Duration,
) -> Decision {
    let fresh = |last_sent| AlertState {
        severity: now_severity,
        since: now,
        last_sent,
    };
    let nothing = |state: AlertState| Decision {
        notice: None,
        sent: state,
        unsent: state,
    };
    match before {
        // Same severity as before.
        Some(prev) if prev.severity == now_severity => {
            if !now_severity.is_bad() {
                return nothing(*prev);
            }
            let notice = match prev.last_sent {
                None => Notice::Fired { from: None },
                Some(last) if elapsed(last, now) >= repeat_interval => {
                    Notice::Repeat { since: prev.since }
                }
                Some(_) => return nothing(*prev),
            };
            Decision {
                notice: Some(notice),
                sent: AlertState {
                    last_sent: Some(now),
                    ..*prev
                },
                unsent: *prev,
            }
        }
        // Bad before, ok now.
        Some(prev) if !now_severity.is_bad() => Decision {
            notice: Some(Notice::Recovered {
                was: prev.severity,
                since: prev.since,
            }),
            sent: fresh(Some(now)),
            // Stay bad until the recovery is told, so the next run tries again.
            unsent: *prev,
        },
        // Nothing known and ok: remember it, say nothing.
        None if !now_severity.is_bad() => nothing(fresh(None)),
        // A change into a bad state.
        _ => Decision {
            notice: Some(Notice::Fired {
                from: before.map(|prev| prev.severity),
            }),
            sent: fresh(Some(now)),
            unsent: fresh(None),
        },
    }
}

/// What to send for a check that is no longer made (its endpoint left the configuration or the
/// MX RRset, its address left the host's A/AAAA RRset): without this its last state would stay in
/// the memory forever, and a bad one would never see its recovery.
///
/// A bad state gets a [`Notice::Recovered`] (the problem it reported can no longer be seen, and
/// the postmaster must not be left believing it holds); the state is forgotten once that was
/// told ([`Decision::state_after`] keeps it when no channel took it, so the next run retries). An
/// ok state is forgotten without a word.
pub fn retire(before: &AlertState) -> Decision {
    if before.severity.is_bad() {
        Decision {
            notice: Some(Notice::Recovered {
                was: before.severity,
                since: before.since,
            }),
            sent: AlertState {
                severity: Severity::Ok,
                ..*before
            },
            unsent: *before,
        }
    } else {
        Decision {
            notice: None,
            sent: *before,
            unsent: *before,
        }
    }
}

/// `now - then`, zero when the clock went back.
fn elapsed(then: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(then).unwrap_or(Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    const HOUR: Duration = Duration::from_secs(3600);
    const ID: &str = "tlsa-match/mail.example.com:25/192.0.2.1";

    fn at(minutes: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + minutes * 60)
    }

    /// The notice of a first bad state, or of a change from `from`.
    fn fired(from: Option<Severity>) -> Option<Notice> {
        Some(Notice::Fired { from })
    }

    /// The notice of a recovery from `was`, bad since minute `since`.
    fn recovered(was: Severity, since: u64) -> Option<Notice> {
        Some(Notice::Recovered {
            was,
            since: at(since),
        })
    }

    /// A state: `severity` since minute `since`, last told at minute `told` (`None`: never).
    fn state(severity: Severity, since: u64, told: Option<u64>) -> AlertState {
        AlertState {
            severity,
            since: at(since),
            last_sent: told.map(at),
        }
    }

    /// Run one observation through a memory, as the notifier does, assuming delivery works.
    fn step(memory: &mut MemoryAlerts, severity: Severity, minutes: u64) -> Option<Notice> {
        step_with(memory, severity, minutes, true)
    }

    fn step_with(
        memory: &mut MemoryAlerts,
        severity: Severity,
        minutes: u64,
        delivered: bool,
    ) -> Option<Notice> {
        let before = memory.get(ID).unwrap();
        let decision = decide(before.as_ref(), severity, at(minutes), HOUR);
        memory.put(ID, decision.state_after(delivered)).unwrap();
        decision.notice
    }

    #[test]
    fn nothing_while_good() {
        let mut m = MemoryAlerts::new();
        for minute in [0, 5, 60, 600, 6000] {
            assert_eq!(step(&mut m, Severity::Ok, minute), None);
        }
        let state = m.get(ID).unwrap().unwrap();
        assert_eq!(state.since, at(0), "ok since the first observation");
        assert_eq!(state.last_sent, None);
    }

    /// Run `steps` (a severity at a minute, and the notice it must give) through a new memory.
    fn script(steps: &[(Severity, u64, Option<Notice>)]) {
        let mut m = MemoryAlerts::new();
        for (severity, minute, notice) in steps {
            assert_eq!(
                &step(&mut m, *severity, *minute),
                notice,
                "{severity:?} at minute {minute}"
            );
        }
    }

    #[test]
    fn state_change_fires_once_then_repeats_after_the_interval() {
        let repeat = Some(Notice::Repeat { since: at(5) });
        script(&[
            (Severity::Ok, 0, None),
            (Severity::Critical, 5, fired(Some(Severity::Ok))),
            (Severity::Critical, 10, None),
            (Severity::Critical, 64, None), // 59 min < 1 h
            (Severity::Critical, 65, repeat),
            (Severity::Critical, 100, None),
            (Severity::Critical, 125, repeat),
        ]);
    }

    #[test]
    fn first_observation_bad_fires() {
        script(&[(Severity::Warning, 0, fired(None))]);
    }

    #[test]
    fn recovery_message_then_silence() {
        script(&[
            (Severity::Critical, 0, fired(None)),
            (Severity::Ok, 30, recovered(Severity::Critical, 0)),
            (Severity::Ok, 31, None),
            (Severity::Ok, 300, None),
        ]);
    }

    #[test]
    fn flapping_sends_one_message_per_change() {
        let mut m = MemoryAlerts::new();
        let mut sent = Vec::new();
        for (i, severity) in [
            Severity::Ok,
            Severity::Critical,
            Severity::Critical,
            Severity::Ok,
            Severity::Ok,
            Severity::Critical,
            Severity::Ok,
        ]
        .into_iter()
        .enumerate()
        {
            if let Some(notice) = step(&mut m, severity, i as u64) {
                sent.push(notice);
            }
        }
        assert_eq!(
            sent,
            vec![
                Notice::Fired {
                    from: Some(Severity::Ok)
                },
                Notice::Recovered {
                    was: Severity::Critical,
                    since: at(1)
                },
                Notice::Fired {
                    from: Some(Severity::Ok)
                },
                Notice::Recovered {
                    was: Severity::Critical,
                    since: at(5)
                },
            ]
        );
    }

    #[test]
    fn unknown_is_its_own_state() {
        script(&[
            (Severity::Critical, 0, fired(None)),
            (Severity::Unknown, 1, fired(Some(Severity::Critical))),
            (Severity::Unknown, 2, None),
            (Severity::Critical, 3, fired(Some(Severity::Unknown))),
            (Severity::Warning, 4, fired(Some(Severity::Critical))),
            (Severity::Unknown, 5, fired(Some(Severity::Warning))),
            (Severity::Ok, 6, recovered(Severity::Unknown, 5)),
        ]);
    }

    #[test]
    fn undelivered_alerts_are_retried() {
        let mut m = MemoryAlerts::new();
        // The first alert reaches no channel: the next run tries again, as a first alert.
        assert!(step_with(&mut m, Severity::Critical, 0, false).is_some());
        assert_eq!(m.get(ID).unwrap().unwrap().last_sent, None);
        assert_eq!(step(&mut m, Severity::Critical, 1), fired(None));
        assert_eq!(step(&mut m, Severity::Critical, 2), None);
        // A recovery that reached nobody is retried too.
        assert!(step_with(&mut m, Severity::Ok, 3, false).is_some());
        assert_eq!(m.get(ID).unwrap().unwrap().severity, Severity::Critical);
        assert_eq!(
            step(&mut m, Severity::Ok, 4),
            recovered(Severity::Critical, 0)
        );
        assert_eq!(step(&mut m, Severity::Ok, 5), None);
    }

    #[test]
    fn a_retired_bad_check_recovers_once_an_ok_one_silently() {
        let bad = state(Severity::Critical, 0, Some(0));
        let d = retire(&bad);
        assert_eq!(d.notice, recovered(Severity::Critical, 0));
        assert!(!d.state_after(true).severity.is_bad());
        assert_eq!(d.state_after(false), bad, "kept until the recovery is told");
        let ok = state(Severity::Ok, 0, None);
        assert_eq!(retire(&ok).notice, None);
        let mut m = MemoryAlerts::new();
        m.put(ID, bad).unwrap();
        m.put("b", ok).unwrap();
        assert_eq!(m.checks().unwrap(), vec!["b".to_string(), ID.to_string()]);
        m.forget(ID).unwrap();
        assert_eq!(m.get(ID).unwrap(), None);
    }

    #[test]
    fn a_clock_going_back_does_not_repeat() {
        let before = state(Severity::Critical, 100, Some(100));
        let d = decide(Some(&before), Severity::Critical, at(10), HOUR);
        assert_eq!(d.notice, None);
        assert_eq!(d.state_after(true), before);
    }
}
