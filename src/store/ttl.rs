//! The TTLs seen for a rollover's TLSA RRsets, one row per rollover, owner name, source and
//! TTL with when it was first and last seen: what `status` shows beside the TTL that governs
//! the wait (the rollover's own [`crate::rollover::TtlSeen`]).

use rusqlite::params;

use super::{Store, StoreError, classify};
use crate::rollover::{OwnerName, Slot, Timestamp};

/// One TTL seen for an owner name's TLSA RRset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlObservation {
    /// The owner name.
    pub owner: String,
    /// Who served it: a nameserver (name and address) or `resolver`.
    pub source: String,
    /// The TTL, seconds (for the resolver: what was left of its cached copy).
    pub ttl: u32,
    /// When first seen.
    pub first_seen: Timestamp,
    /// When last seen.
    pub last_seen: Timestamp,
}

impl Store {
    /// Record the TTLs `seen` (owner, source, TTL) at `now` for the rollover of `service`/`slot`
    /// that began at `started`, in one transaction.
    pub fn record_ttls<'a>(
        &mut self,
        service: &str,
        slot: &Slot,
        started: Timestamp,
        seen: impl IntoIterator<Item = (&'a OwnerName, &'a str, u32)>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let path = self.path.clone();
        let err = |e| classify(&path, e);
        let tx = self.conn.transaction().map_err(err)?;
        for (owner, source, ttl) in seen {
            tx.execute(
                "INSERT INTO ttl_observations
                     (service, slot, started, owner, source, ttl, first_seen, last_seen)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)
                 ON CONFLICT (service, slot, started, owner, source, ttl)
                     DO UPDATE SET last_seen = excluded.last_seen",
                params![
                    service,
                    slot.as_str(),
                    started.as_millis(),
                    owner.as_str(),
                    source,
                    ttl,
                    now.as_millis()
                ],
            )
            .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// The TTLs seen for the rollover of `service`/`slot` that began at `started`, largest
    /// first.
    pub fn ttls(
        &self,
        service: &str,
        slot: &Slot,
        started: Timestamp,
    ) -> Result<Vec<TtlObservation>, StoreError> {
        self.select(
            "SELECT owner, source, ttl, first_seen, last_seen FROM ttl_observations
             WHERE service = ?1 AND slot = ?2 AND started = ?3
             ORDER BY ttl DESC, first_seen, owner, source",
            params![service, slot.as_str(), started.as_millis()],
            |row| {
                Ok(TtlObservation {
                    owner: row.get(0)?,
                    source: row.get(1)?,
                    ttl: row.get(2)?,
                    first_seen: Timestamp::from_millis(row.get(3)?),
                    last_seen: Timestamp::from_millis(row.get(4)?),
                })
            },
        )
    }
}
