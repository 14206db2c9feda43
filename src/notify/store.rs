//! The alert states kept in the SQLite store: [`AlertMemory`] for [`Store`].
//!
//! The store's `alert_state` table holds per check id the severity word (`ok`, `warning`,
//! `critical`, `unknown`), `since` and `last_sent` in whole seconds since the epoch. Times are
//! rounded down to the second on the way in.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::rollover::Timestamp;
use crate::store::{self, Store, StoreError};

use super::alert::Severity;
use super::policy::{AlertMemory, AlertState};

/// Why an alert state could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AlertStoreError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A stored state is not a severity this build knows (a newer dane-roll wrote it).
    #[error(
        "the stored alert state of {check} is \"{state}\", not ok, warning, critical or unknown; \
         was the state directory written by a newer dane-roll?"
    )]
    UnknownState {
        /// The check id.
        check: String,
        /// The stored word.
        state: String,
    },
}

impl AlertMemory for Store {
    type Error = AlertStoreError;

    fn get(&self, check: &str) -> Result<Option<AlertState>, AlertStoreError> {
        let Some(row) = self.alert_state(check)? else {
            return Ok(None);
        };
        let severity =
            row.state
                .parse::<Severity>()
                .map_err(|_| AlertStoreError::UnknownState {
                    check: check.to_owned(),
                    state: row.state.clone(),
                })?;
        Ok(Some(AlertState {
            severity,
            since: to_time(row.since),
            last_sent: row.last_sent.map(to_time),
        }))
    }

    fn put(&mut self, check: &str, state: AlertState) -> Result<(), AlertStoreError> {
        self.set_alert_state(&store::AlertState {
            check_id: check.to_owned(),
            state: state.severity.as_str().to_owned(),
            last_sent: state.last_sent.map(to_timestamp),
            since: to_timestamp(state.since),
        })?;
        Ok(())
    }

    fn checks(&self) -> Result<Vec<String>, AlertStoreError> {
        Ok(self
            .alert_states()?
            .into_iter()
            .map(|row| row.check_id)
            .collect())
    }

    fn forget(&mut self, check: &str) -> Result<(), AlertStoreError> {
        self.clear_alert_state(check)?;
        Ok(())
    }
}

fn to_timestamp(time: SystemTime) -> Timestamp {
    Timestamp::from_secs(match time.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    })
}

fn to_time(ts: Timestamp) -> SystemTime {
    let secs = Duration::from_secs(ts.as_secs().unsigned_abs());
    if ts.as_secs() >= 0 {
        UNIX_EPOCH + secs
    } else {
        UNIX_EPOCH - secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::policy::decide;

    #[test]
    fn states_round_trip_through_the_store() {
        let mut store = Store::open_in_memory().unwrap();
        let id = "tlsa-match/mail.example.com:25/192.0.2.1";
        assert_eq!(AlertMemory::get(&store, id).unwrap(), None);
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        for state in [
            AlertState {
                severity: Severity::Critical,
                since: t,
                last_sent: Some(t + Duration::from_secs(60)),
            },
            AlertState {
                severity: Severity::Unknown,
                since: t,
                last_sent: None,
            },
        ] {
            store.put(id, state).unwrap();
            assert_eq!(AlertMemory::get(&store, id).unwrap(), Some(state));
        }
    }

    #[test]
    fn the_policy_runs_on_the_store() {
        let mut store = Store::open_in_memory().unwrap();
        let id = "tlsa-lookup/mail.example.com:25";
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let hour = Duration::from_secs(3600);
        let mut notices = Vec::new();
        for (minute, severity) in [
            (0, Severity::Critical),
            (10, Severity::Critical),
            (61, Severity::Critical),
            (62, Severity::Ok),
        ] {
            let before = AlertMemory::get(&store, id).unwrap();
            let now = t + Duration::from_secs(minute * 60);
            let d = decide(before.as_ref(), severity, now, hour);
            store.put(id, d.state_after(true)).unwrap();
            notices.push(d.notice.is_some());
        }
        assert_eq!(notices, [true, false, true, true]);
    }

    #[test]
    fn states_are_listed_and_forgotten() {
        let mut store = Store::open_in_memory().unwrap();
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let state = AlertState {
            severity: Severity::Critical,
            since: t,
            last_sent: None,
        };
        for id in [
            "tlsa-match/b.example:25/192.0.2.1",
            "addresses/a.example:25",
        ] {
            store.put(id, state).unwrap();
        }
        assert_eq!(
            AlertMemory::checks(&store).unwrap(),
            [
                "addresses/a.example:25",
                "tlsa-match/b.example:25/192.0.2.1"
            ]
        );
        store.forget("addresses/a.example:25").unwrap();
        store.forget("never/stored").unwrap();
        assert_eq!(
            AlertMemory::checks(&store).unwrap(),
            ["tlsa-match/b.example:25/192.0.2.1"]
        );
        assert_eq!(
            AlertMemory::get(&store, "addresses/a.example:25").unwrap(),
            None
        );
    }

    #[test]
    fn an_unknown_stored_word_is_an_error() {
        let mut store = Store::open_in_memory().unwrap();
        store
            .set_alert_state(&store::AlertState {
                check_id: "x".into(),
                state: "purple".into(),
                last_sent: None,
                since: Timestamp::from_secs(0),
            })
            .unwrap();
        let err = AlertMemory::get(&store, "x").unwrap_err().to_string();
        assert!(err.contains("\"purple\""), "{err}");
    }
}
