//! Where each service's ACME client keeps its current certificate, as its hook last saw it: one
//! row per service in `acme_sources` (migration 2). The source itself is opaque here (JSON made
//! and read by [`crate::hooks::source`]); it holds paths and names, never key material.

use rusqlite::{OptionalExtension, params};

use super::{Store, StoreError};
use crate::rollover::Timestamp;

/// A source as a hook recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedSource {
    /// The service.
    pub service: String,
    /// The ACME client (`certbot`, `acme.sh`, `dehydrated`).
    pub client: String,
    /// The source, as JSON.
    pub source: String,
    /// When the hook recorded it.
    pub recorded: Timestamp,
}

impl Store {
    /// Record (replacing any) where `service`'s ACME client keeps its certificate.
    pub fn set_acme_source(&mut self, entry: &RecordedSource) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO acme_sources (service, client, source, recorded)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (service) DO UPDATE SET
                     client = excluded.client, source = excluded.source,
                     recorded = excluded.recorded",
                params![
                    entry.service,
                    entry.client,
                    entry.source,
                    entry.recorded.as_millis()
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Where `service`'s ACME client keeps its certificate, as its hook last recorded it.
    pub fn acme_source(&self, service: &str) -> Result<Option<RecordedSource>, StoreError> {
        self.conn
            .query_row(
                "SELECT client, source, recorded FROM acme_sources WHERE service = ?1",
                params![service],
                |row| {
                    Ok(RecordedSource {
                        service: service.to_owned(),
                        client: row.get(0)?,
                        source: row.get(1)?,
                        recorded: Timestamp::from_millis(row.get(2)?),
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }
}
