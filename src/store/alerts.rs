//! The `alert_state` table: each monitor check's state and when its alert was last sent (the
//! fire-once policy reads and writes it).

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::rollover::Timestamp;

/// A monitor check's alert state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertState {
    /// The check.
    pub check_id: String,
    /// Its state (`ok`, `warning`, `critical`, …).
    pub state: String,
    /// When an alert was last sent.
    pub last_sent: Option<Timestamp>,
    /// Since when the check is in this state.
    pub since: Timestamp,
}

impl AlertState {
    /// A row of `SELECT check_id, state, last_sent, since FROM alert_state`.
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<AlertState> {
        Ok(AlertState {
            check_id: row.get(0)?,
            state: row.get(1)?,
            last_sent: row.get::<_, Option<i64>>(2)?.map(Timestamp::from_secs),
            since: Timestamp::from_secs(row.get(3)?),
        })
    }
}

impl Store {
    /// The alert state of `check_id`.
    pub fn alert_state(&self, check_id: &str) -> Result<Option<AlertState>, StoreError> {
        self.conn
            .query_row(
                "SELECT check_id, state, last_sent, since FROM alert_state WHERE check_id = ?1",
                params![check_id],
                AlertState::read,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every stored alert state, by check id (for retiring the states of checks no longer made).
    pub fn alert_states(&self) -> Result<Vec<AlertState>, StoreError> {
        self.select(
            "SELECT check_id, state, last_sent, since FROM alert_state ORDER BY check_id",
            [],
            AlertState::read,
        )
    }

    /// Forget the alert state of a check (it is no longer made).
    pub fn clear_alert_state(&mut self, check_id: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM alert_state WHERE check_id = ?1",
                params![check_id],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Set the alert state of a check.
    pub fn set_alert_state(&mut self, state: &AlertState) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO alert_state (check_id, state, last_sent, since) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (check_id) DO UPDATE SET
                     state = excluded.state, last_sent = excluded.last_sent, since = excluded.since",
                params![
                    state.check_id,
                    state.state,
                    state.last_sent.map(Timestamp::as_secs),
                    state.since.as_secs()
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }
}
