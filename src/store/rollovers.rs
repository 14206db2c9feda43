//! The `rollovers` table: one row per service and key slot, the [`Rollover`] as JSON with its
//! phase name and times as columns. [`Store::save`] writes a step (the rollover, its events,
//! the record changes) in one transaction.

use rusqlite::{OptionalExtension, params};

use super::events::insert_event;
use super::records::{RecordChange, apply_change};
use super::{Store, StoreError, classify};
use crate::rollover::{Event, Rollover, Slot, Timestamp};

impl Store {
    /// The rollover of `service`'s `slot`, if one was ever begun.
    pub fn rollover(&self, service: &str, slot: &Slot) -> Result<Option<Rollover>, StoreError> {
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT state FROM rollovers WHERE service = ?1 AND slot = ?2",
                params![service, slot.as_str()],
                |row| row.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        json.map(|j| self.parse_rollover(service, slot.as_str(), &j))
            .transpose()
    }

    /// Every stored rollover, by service and slot.
    pub fn rollovers(&self) -> Result<Vec<Rollover>, StoreError> {
        let rows: Vec<(String, String, String)> = self.select(
            "SELECT service, slot, state FROM rollovers ORDER BY service, slot",
            [],
            |row| row.try_into(),
        )?;
        rows.iter()
            .map(|(service, slot, json)| self.parse_rollover(service, slot, json))
            .collect()
    }

    fn parse_rollover(
        &self,
        service: &str,
        slot: &str,
        json: &str,
    ) -> Result<Rollover, StoreError> {
        serde_json::from_str(json).map_err(|e| self.bad_state(service, slot, e))
    }

    /// Persist a step: the rollover (its phase), its events and the record changes, in one
    /// transaction.
    pub fn save(
        &mut self,
        rollover: &Rollover,
        events: &[Event],
        changes: &[RecordChange],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let json = serde_json::to_string(rollover).map_err(|e| {
            self.bad_state(&rollover.request.service, rollover.request.slot.as_str(), e)
        })?;
        let path = self.path.clone();
        let err = |e| classify(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        tx.execute(
            "INSERT INTO rollovers (service, slot, phase, state, started, since, updated)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (service, slot) DO UPDATE SET
                 phase = excluded.phase, state = excluded.state, started = excluded.started,
                 since = excluded.since, updated = excluded.updated",
            params![
                rollover.request.service,
                rollover.request.slot.as_str(),
                rollover.phase.name().as_str(),
                json,
                rollover.started.as_millis(),
                rollover.phase.since().as_millis(),
                now.as_millis()
            ],
        )
        .map_err(err)?;
        for event in events {
            insert_event(
                &tx,
                &rollover.request.service,
                &rollover.request.slot,
                event,
            )
            .map_err(err)?;
        }
        for change in changes {
            apply_change(
                &tx,
                &rollover.request.service,
                &rollover.request.slot,
                change,
                now,
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }
}
