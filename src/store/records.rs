//! The `records_published` table: the records each service published ("ours", the only ones
//! that may ever be retired), with when each was published, first confirmed and retired.

use rusqlite::params;

use super::{Store, StoreError, classify};
use crate::rollover::{Slot, Timestamp, TlsaAt};
use crate::tlsa::{OwnerName, OwnerNameError};

/// A published record as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedRecord {
    /// The service.
    pub service: String,
    /// The key slot.
    pub slot: Slot,
    /// The record.
    pub record: TlsaAt,
    /// Its TTL.
    pub ttl: u32,
    /// When it was published.
    pub published_at: Timestamp,
    /// When it was first confirmed on every nameserver and validated.
    pub confirmed_at: Option<Timestamp>,
    /// When it was retired.
    pub retired_at: Option<Timestamp>,
}

/// A change to "ours", written with a phase change.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecordChange {
    /// A record was (or is about to be) published.
    Published {
        /// The record.
        record: TlsaAt,
        /// Its TTL.
        ttl: u32,
    },
    /// A record was first seen on every nameserver and validated.
    Confirmed(TlsaAt),
    /// A record was removed.
    Retired(TlsaAt),
}

impl Store {
    /// Record changes to "ours" outside a rollover step.
    pub fn record_changes(
        &mut self,
        service: &str,
        slot: &Slot,
        changes: &[RecordChange],
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| classify(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        for change in changes {
            apply_change(&tx, service, slot, change, now).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// The records `service`'s `slot` published and has not retired: "ours".
    pub fn ours(&self, service: &str, slot: &Slot) -> Result<Vec<TlsaAt>, StoreError> {
        Ok(self
            .published(service)?
            .into_iter()
            .filter(|p| &p.slot == slot && p.retired_at.is_none())
            .map(|p| p.record)
            .collect())
    }

    /// Every record `service` ever published (all slots), oldest first.
    pub fn published(&self, service: &str) -> Result<Vec<PublishedRecord>, StoreError> {
        type Row = (
            String,
            String,
            String,
            String,
            u32,
            i64,
            Option<i64>,
            Option<i64>,
        );
        let rows: Vec<Row> = self.select(
            "SELECT service, slot, owner, rdata, ttl, published_at, confirmed_at, retired_at
             FROM records_published WHERE service = ?1 ORDER BY id",
            params![service],
            |row| row.try_into(),
        )?;
        rows.into_iter()
            .map(|(service, slot, owner, rdata, ttl, p, c, r)| {
                let record = rdata.parse().map_err(|e: crate::tlsa::TlsaError| {
                    self.bad_state(&service, &slot, format!("record {owner} {rdata}: {e}"))
                })?;
                let owner: OwnerName = owner.parse().map_err(|e: OwnerNameError| {
                    self.bad_state(&service, &slot, format!("record {rdata}: {e}"))
                })?;
                Ok(PublishedRecord {
                    record: TlsaAt::new(&owner, record),
                    slot: self.slot(&service, &slot)?,
                    service,
                    ttl,
                    published_at: Timestamp::from_millis(p),
                    confirmed_at: c.map(Timestamp::from_millis),
                    retired_at: r.map(Timestamp::from_millis),
                })
            })
            .collect()
    }

    /// When all of `records` were confirmed (the latest of their confirmation times), if every
    /// one is ours and was confirmed: where a rollover to a pre-published key may count from.
    pub fn confirmed_since(
        &self,
        service: &str,
        slot: &Slot,
        records: &[TlsaAt],
    ) -> Result<Option<Timestamp>, StoreError> {
        let published = self.published(service)?;
        let mut latest = None;
        for record in records {
            let found = published
                .iter()
                .find(|p| &p.slot == slot && p.retired_at.is_none() && p.record == *record);
            match found.and_then(|p| p.confirmed_at) {
                Some(t) => latest = latest.max(Some(t)),
                None => return Ok(None),
            }
        }
        Ok(latest)
    }
}

pub(super) fn apply_change(
    tx: &rusqlite::Transaction<'_>,
    service: &str,
    slot: &Slot,
    change: &RecordChange,
    now: Timestamp,
) -> rusqlite::Result<()> {
    let (sql, record, ttl): (&str, &TlsaAt, Option<u32>) = match change {
        RecordChange::Published { record, ttl } => (
            "INSERT OR IGNORE INTO records_published
                 (service, slot, owner, rdata, ttl, published_at) VALUES (?1, ?2, ?3, ?4, ?6, ?5)",
            record,
            Some(*ttl),
        ),
        RecordChange::Confirmed(record) => (
            "UPDATE records_published SET confirmed_at = ?5
             WHERE service = ?1 AND slot = ?2 AND owner = ?3 AND rdata = ?4
               AND retired_at IS NULL AND confirmed_at IS NULL",
            record,
            None,
        ),
        RecordChange::Retired(record) => (
            "UPDATE records_published SET retired_at = ?5
             WHERE service = ?1 AND slot = ?2 AND owner = ?3 AND rdata = ?4 AND retired_at IS NULL",
            record,
            None,
        ),
    };
    let owner = record.owner.as_str();
    let rdata = record.record.to_string();
    match ttl {
        Some(ttl) => tx.execute(
            sql,
            params![service, slot.as_str(), owner, rdata, now.as_millis(), ttl],
        ),
        None => tx.execute(
            sql,
            params![service, slot.as_str(), owner, rdata, now.as_millis()],
        ),
    }
    .map(drop)
}
