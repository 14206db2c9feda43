//! The `events` table: the history `status --history` shows, written with each step or on
//! its own (`prune`, `publish`).

use rusqlite::params;

use super::{Store, StoreError, classify};
use crate::rollover::{Event, Slot, Timestamp};

/// An event as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// Its number (increasing).
    pub id: i64,
    /// The service.
    pub service: String,
    /// The key slot.
    pub slot: Slot,
    /// When, in which phase, what.
    pub event: Event,
}

impl Store {
    /// Record events outside a rollover (`prune`, `publish`).
    pub fn add_events(
        &mut self,
        service: &str,
        slot: &Slot,
        events: &[Event],
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| classify(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        for event in events {
            insert_event(&tx, service, slot, event).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// The latest `limit` events, of `service` or of all, oldest first.
    pub fn events(
        &self,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(i64, i64, String, String, String, String)> = self.select(
            "SELECT id, time, service, slot, phase, detail FROM events
             WHERE ?1 IS NULL OR service = ?1 ORDER BY id DESC LIMIT ?2",
            params![service, limit],
            |row| row.try_into(),
        )?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, time, service, slot, phase, detail) in rows.into_iter().rev() {
            let phase =
                serde_json::from_value(serde_json::Value::String(phase.clone())).map_err(|_| {
                    self.bad_state(
                        &service,
                        &slot,
                        format!("event {id}: unknown phase {phase}"),
                    )
                })?;
            out.push(StoredEvent {
                id,
                slot: self.slot(&service, &slot)?,
                service,
                event: Event {
                    time: Timestamp::from_millis(time),
                    phase,
                    detail,
                },
            });
        }
        Ok(out)
    }
}

pub(super) fn insert_event(
    tx: &rusqlite::Transaction<'_>,
    service: &str,
    slot: &Slot,
    event: &Event,
) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO events (time, service, slot, phase, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            event.time.as_millis(),
            service,
            slot.as_str(),
            event.phase.as_str(),
            event.detail
        ],
    )
    .map(drop)
}
