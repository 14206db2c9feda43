//! The `keys` table: the keys of each service and slot by role (current, next, new), as the
//! SPKI hash and the private key file's path only, never key material.

use std::path::PathBuf;

use rusqlite::params;

use super::{Store, StoreError};
use crate::rollover::{KeyHash, Slot, Timestamp};

/// The role of a key in a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeyRole {
    /// Served now.
    Current,
    /// Pre-generated and published, for the next rollover.
    Next,
    /// Being rolled to.
    New,
}

impl KeyRole {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRole::Current => "current",
            KeyRole::Next => "next",
            KeyRole::New => "new",
        }
    }

    fn parse(text: &str) -> Option<KeyRole> {
        match text {
            "current" => Some(KeyRole::Current),
            "next" => Some(KeyRole::Next),
            "new" => Some(KeyRole::New),
            _ => None,
        }
    }
}

/// A key as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// The service.
    pub service: String,
    /// The key slot.
    pub slot: Slot,
    /// Its role.
    pub role: KeyRole,
    /// Its SPKI SHA-256.
    pub hash: KeyHash,
    /// Where the private key file is (a path only).
    pub path: Option<PathBuf>,
    /// When it was recorded.
    pub created: Timestamp,
}

impl Store {
    /// Set the key of `role` in `service`'s `slot` (replacing any).
    pub fn set_key(&mut self, entry: &KeyEntry) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO keys (service, slot, role, spki_sha256, key_path, created)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (service, slot, role) DO UPDATE SET
                     spki_sha256 = excluded.spki_sha256, key_path = excluded.key_path,
                     created = excluded.created",
                params![
                    entry.service,
                    entry.slot.as_str(),
                    entry.role.as_str(),
                    entry.hash.to_hex(),
                    entry
                        .path
                        .as_ref()
                        .map(|p| p.to_string_lossy().into_owned()),
                    entry.created.as_secs()
                ],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// Forget the key of `role` in `service`'s `slot`.
    pub fn clear_key(
        &mut self,
        service: &str,
        slot: &Slot,
        role: KeyRole,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM keys WHERE service = ?1 AND slot = ?2 AND role = ?3",
                params![service, slot.as_str(), role.as_str()],
            )
            .map(drop)
            .map_err(|e| self.err(e))
    }

    /// The keys of `service`, every slot and role.
    pub fn keys(&self, service: &str) -> Result<Vec<KeyEntry>, StoreError> {
        let rows: Vec<(String, String, String, Option<String>, i64)> = self.select(
            "SELECT slot, role, spki_sha256, key_path, created FROM keys
             WHERE service = ?1 ORDER BY slot, role",
            params![service],
            |row| row.try_into(),
        )?;
        rows.into_iter()
            .map(|(slot, role, hash, path, created)| {
                let bad = |detail: String| self.bad_state(service, &slot, detail);
                Ok(KeyEntry {
                    service: service.to_owned(),
                    role: KeyRole::parse(&role).ok_or_else(|| bad(format!("key role {role}")))?,
                    hash: hash
                        .parse()
                        .map_err(|e: crate::rollover::KeyHashError| bad(e.to_string()))?,
                    path: path.map(PathBuf::from),
                    created: Timestamp::from_secs(created),
                    slot: self.slot(service, &slot)?,
                })
            })
            .collect()
    }

    /// The key of `role` in `service`'s `slot`.
    pub fn key(
        &self,
        service: &str,
        slot: &Slot,
        role: KeyRole,
    ) -> Result<Option<KeyEntry>, StoreError> {
        Ok(self
            .keys(service)?
            .into_iter()
            .find(|k| &k.slot == slot && k.role == role))
    }
}
