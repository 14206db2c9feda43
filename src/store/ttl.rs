//! The TTLs seen for a rollover's TLSA RRsets, one row per rollover, owner name, source and
//! TTL with when it was first and last seen: what `status` shows beside the TTL that governs
//! the wait (the rollover's own [`crate::rollover::TtlSeen`]).

use rusqlite::params;

use super::{Store, StoreError, classify};
use crate::rollover::{Slot, Timestamp};
use crate::tlsa::{OwnerName, OwnerNameError};

/// One TTL seen for an owner name's TLSA RRset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlObservation {
    /// The owner name.
    pub owner: OwnerName,
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
        let rows: Vec<(String, String, u32, i64, i64)> = self.select(
            "SELECT owner, source, ttl, first_seen, last_seen FROM ttl_observations
             WHERE service = ?1 AND slot = ?2 AND started = ?3
             ORDER BY ttl DESC, first_seen, owner, source",
            params![service, slot.as_str(), started.as_millis()],
            |row| row.try_into(),
        )?;
        rows.into_iter()
            .map(|(owner, source, ttl, first, last)| {
                let owner = owner.parse().map_err(|e: OwnerNameError| {
                    self.bad_state(
                        service,
                        slot.as_str(),
                        format!("TTL seen from {source}: {e}"),
                    )
                })?;
                Ok(TtlObservation {
                    owner,
                    source,
                    ttl,
                    first_seen: Timestamp::from_millis(first),
                    last_seen: Timestamp::from_millis(last),
                })
            })
            .collect()
    }
}
