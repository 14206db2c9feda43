//! The state store: one SQLite database, `<state-dir>/state.db`, that the hook, `run`,
//! `status` and the monitor share (rusqlite with SQLite bundled).
//!
//! It owns: the rollover of each service and key slot (the [`Rollover`] as JSON, with its phase
//! name and times as columns), the records each service published ("ours", the only ones that
//! may ever be retired), the keys by role (hash and path only, never key material), the event
//! history for `status --history`, the monitor's alert state, and where each service's ACME client
//! keeps its certificate as its hook last saw it (`acme_sources`).
//!
//! The database runs in WAL mode with a busy timeout, so a hook and the timer can read and write
//! at once; [`Store::save`] writes a phase change, its events and the record changes in one
//! transaction. The directory is created 0700 and the file 0600, and both are checked before
//! use (`guard`: a private directory, a regular file, no lost store). Errors say which file and what
//! to do: a damaged file, a schema newer than this build, a read-only directory.

mod acme_sources;
mod guard;
mod schema;
#[cfg(test)]
mod tests;
mod ttl;

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, params};

use crate::rollover::{Event, KeyHash, Rollover, Slot, Timestamp, TlsaAt};

pub use acme_sources::RecordedSource;
pub use schema::{MIGRATIONS, Migrated, latest_version};
pub use ttl::TtlObservation;

/// The database file's name in the state directory.
pub const DB_FILE: &str = "state.db";

/// How long a writer waits for another process's transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What went wrong with the store. Each names the file and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The state directory could not be created.
    #[error(
        "cannot create the state directory {dir}: {source}; create it (mode 0700, owned by the \
         user dane-roll runs as) or pass --state-dir"
    )]
    StateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The state directory may be changed by another user (or is not a private directory).
    #[error("the state directory {0}")]
    Untrusted(crate::fsafe::Untrusted),
    /// `state.db` is not a regular file (a FIFO, a device, a directory, a link).
    #[error("the state database {path} cannot be used: {detail}")]
    NotRegular {
        /// The database file.
        path: PathBuf,
        /// What it is.
        detail: String,
    },
    /// The database is empty (no schema) while key files are staged: rollovers were lost.
    #[error(
        "the state database {path} is empty (0 bytes or no schema), yet {staged} key file(s) are \
         staged under {staged_dir}: the store that tracked those rollovers is lost or was \
         truncated, which is corruption, not a fresh start. Restore state.db from a backup; or, \
         to start afresh on purpose, move state.db and {staged_dir} aside, run `dane-roll plan` \
         to see what DNS holds, and deploy again"
    )]
    Lost {
        /// The database file.
        path: PathBuf,
        /// How many staged files were found.
        staged: usize,
        /// Where.
        staged_dir: PathBuf,
    },
    /// The database (or its directory, for the WAL files) cannot be written.
    #[error(
        "cannot write the state database {path}: the file or its directory is read-only ({detail}); \
         run dane-roll as the user that owns it, or fix the permissions"
    )]
    ReadOnly {
        /// The database file.
        path: PathBuf,
        /// SQLite's words.
        detail: String,
    },
    /// The file is damaged or not an SQLite database.
    #[error(
        "the state database {path} is damaged or not a dane-roll database ({detail}): move it \
         aside and run again; a new one is created, and `dane-roll plan` shows what DNS holds"
    )]
    Corrupt {
        /// The database file.
        path: PathBuf,
        /// SQLite's words.
        detail: String,
    },
    /// A newer dane-roll wrote this database.
    #[error(
        "the state database {path} has schema version {found}, but this dane-roll knows only up \
         to {known}: run the newer dane-roll that wrote it"
    )]
    TooNew {
        /// The database file.
        path: PathBuf,
        /// The version found.
        found: u32,
        /// The newest this build knows.
        known: u32,
    },
    /// Another process kept the database busy past the busy timeout.
    #[error(
        "the state database {path} stayed locked by another process for {} s; try again",
        timeout.as_secs_f64()
    )]
    Busy {
        /// The database file.
        path: PathBuf,
        /// The busy timeout.
        timeout: Duration,
    },
    /// A stored rollover could not be read back.
    #[error(
        "the state database {path} holds an unreadable rollover for service {service} ({slot}): \
         {detail}; written by another version? `dane-roll status` shows the others"
    )]
    BadState {
        /// The database file.
        path: PathBuf,
        /// The service.
        service: String,
        /// The key slot.
        slot: String,
        /// Why.
        detail: String,
    },
    /// Any other SQLite failure.
    #[error("state database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
}

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

/// The open store.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Open (creating if needed) the store in `state_dir`, and bring its schema up to date.
    pub fn open(state_dir: &Path) -> Result<Store, StoreError> {
        guard::prepare_dir(state_dir)?;
        let path = state_dir.join(DB_FILE);
        let existed = guard::db_file(&path)?;
        if !existed {
            // Create it 0600 ourselves: SQLite would use the umask. Its -wal and -shm files
            // take the database file's permissions.
            OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
                .open(&path)
                .map(drop)
                .or_else(|err| match err.kind() {
                    io::ErrorKind::AlreadyExists => guard::db_file(&path)
                        .map(drop)
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string())),
                    _ => Err(err),
                })
                .map_err(|err| match err.kind() {
                    io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem => {
                        StoreError::ReadOnly {
                            path: path.clone(),
                            detail: err.to_string(),
                        }
                    }
                    _ => StoreError::StateDir {
                        dir: state_dir.to_owned(),
                        source: err,
                    },
                })?;
        }
        let conn = Connection::open(&path).map_err(|e| classify(&path, e))?;
        if existed {
            guard::not_lost(&conn, &path, state_dir)?;
        }
        Store::setup(conn, path, true)
    }

    /// A store in memory, for tests and `plan`.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|e| classify(&path, e))?;
        Store::setup(conn, path, false)
    }

    fn setup(mut conn: Connection, path: PathBuf, wal: bool) -> Result<Store, StoreError> {
        let err = |e| classify(&path, e);
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        if wal {
            let mode: String = conn
                .pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))
                .map_err(err)?;
            if !mode.eq_ignore_ascii_case("wal") {
                return Err(StoreError::ReadOnly {
                    path,
                    detail: format!("journal mode stayed {mode}"),
                });
            }
            conn.pragma_update(None, "synchronous", "FULL")
                .map_err(err)?;
        }
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        match schema::migrate(&mut conn).map_err(err)? {
            Migrated::TooNew { found } => {
                return Err(StoreError::TooNew {
                    path,
                    found,
                    known: latest_version(),
                });
            }
            Migrated::Applied { .. } | Migrated::Current => {}
        }
        Ok(Store { conn, path })
    }

    /// The database file (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The schema version.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        schema::version(&self.conn).map_err(|e| self.err(e))
    }

    fn err(&self, e: rusqlite::Error) -> StoreError {
        classify(&self.path, e)
    }

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
        let mut stmt = self
            .conn
            .prepare("SELECT service, slot, state FROM rollovers ORDER BY service, slot")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
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
        serde_json::from_str(json).map_err(|e| StoreError::BadState {
            path: self.path.clone(),
            service: service.to_owned(),
            slot: slot.to_owned(),
            detail: e.to_string(),
        })
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
        let json = serde_json::to_string(rollover).map_err(|e| StoreError::BadState {
            path: self.path.clone(),
            service: rollover.service.clone(),
            slot: rollover.slot.to_string(),
            detail: e.to_string(),
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
                rollover.service,
                rollover.slot.as_str(),
                rollover.phase.name().as_str(),
                json,
                rollover.started.as_millis(),
                rollover.phase.since().as_millis(),
                now.as_millis()
            ],
        )
        .map_err(err)?;
        for event in events {
            insert_event(&tx, &rollover.service, &rollover.slot, event).map_err(err)?;
        }
        for change in changes {
            apply_change(&tx, &rollover.service, &rollover.slot, change, now).map_err(err)?;
        }
        tx.commit().map_err(err)
    }

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
        let mut stmt = self
            .conn
            .prepare(
                "SELECT service, slot, owner, rdata, ttl, published_at, confirmed_at, retired_at
                 FROM records_published WHERE service = ?1 ORDER BY id",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![service], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, u32>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, Option<i64>>(6)?,
                    row.get::<_, Option<i64>>(7)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(service, slot, owner, rdata, ttl, p, c, r)| {
                let record =
                    rdata
                        .parse()
                        .map_err(|e: crate::tlsa::TlsaError| StoreError::BadState {
                            path: self.path.clone(),
                            service: service.clone(),
                            slot: slot.clone(),
                            detail: format!("record {owner} {rdata}: {e}"),
                        })?;
                Ok(PublishedRecord {
                    record: TlsaAt::new(&owner, record),
                    service,
                    slot: Slot(slot),
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
        let mut stmt = self
            .conn
            .prepare(
                "SELECT slot, role, spki_sha256, key_path, created FROM keys
                 WHERE service = ?1 ORDER BY slot, role",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![service], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, Option<String>>(3)?,
                    row.get::<_, i64>(4)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(|(slot, role, hash, path, created)| {
                let bad = |detail: String| StoreError::BadState {
                    path: self.path.clone(),
                    service: service.to_owned(),
                    slot: slot.clone(),
                    detail,
                };
                Ok(KeyEntry {
                    service: service.to_owned(),
                    role: KeyRole::parse(&role).ok_or_else(|| bad(format!("key role {role}")))?,
                    hash: hash
                        .parse()
                        .map_err(|e: crate::rollover::KeyHashError| bad(e.to_string()))?,
                    path: path.map(PathBuf::from),
                    created: Timestamp::from_secs(created),
                    slot: Slot(slot),
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

    /// The latest `limit` events, of `service` or of all, oldest first.
    pub fn events(
        &self,
        service: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, time, service, slot, phase, detail FROM events
                 WHERE ?1 IS NULL OR service = ?1 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params![service, limit], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, String>(4)?,
                    row.get::<_, String>(5)?,
                ))
            })
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, time, service, slot, phase, detail) in rows.into_iter().rev() {
            let phase =
                serde_json::from_value(serde_json::Value::String(phase.clone())).map_err(|_| {
                    StoreError::BadState {
                        path: self.path.clone(),
                        service: service.clone(),
                        slot: slot.clone(),
                        detail: format!("event {id}: unknown phase {phase}"),
                    }
                })?;
            out.push(StoredEvent {
                id,
                service,
                slot: Slot(slot),
                event: Event {
                    time: Timestamp::from_millis(time),
                    phase,
                    detail,
                },
            });
        }
        Ok(out)
    }

    /// The alert state of `check_id`.
    pub fn alert_state(&self, check_id: &str) -> Result<Option<AlertState>, StoreError> {
        self.conn
            .query_row(
                "SELECT check_id, state, last_sent, since FROM alert_state WHERE check_id = ?1",
                params![check_id],
                |row| {
                    Ok(AlertState {
                        check_id: row.get(0)?,
                        state: row.get(1)?,
                        last_sent: row.get::<_, Option<i64>>(2)?.map(Timestamp::from_secs),
                        since: Timestamp::from_secs(row.get(3)?),
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every stored alert state, by check id (for retiring the states of checks no longer made).
    pub fn alert_states(&self) -> Result<Vec<AlertState>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT check_id, state, last_sent, since FROM alert_state ORDER BY check_id")
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |row| {
                Ok(AlertState {
                    check_id: row.get(0)?,
                    state: row.get(1)?,
                    last_sent: row.get::<_, Option<i64>>(2)?.map(Timestamp::from_secs),
                    since: Timestamp::from_secs(row.get(3)?),
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
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

fn insert_event(
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

fn apply_change(
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
    let owner = dane_roll_providers::absolute(&record.owner);
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

/// Turn SQLite's error into one that says what to do.
fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(failure, message) = &e {
        let detail = message.clone().unwrap_or_else(|| failure.to_string());
        match failure.code {
            ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt => {
                return StoreError::Corrupt {
                    path: path.to_owned(),
                    detail,
                };
            }
            ErrorCode::ReadOnly | ErrorCode::CannotOpen | ErrorCode::PermissionDenied => {
                return StoreError::ReadOnly {
                    path: path.to_owned(),
                    detail,
                };
            }
            ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked => {
                return StoreError::Busy {
                    path: path.to_owned(),
                    timeout: BUSY_TIMEOUT,
                };
            }
            _ => {}
        }
    }
    StoreError::Sqlite {
        path: path.to_owned(),
        source: e,
    }
}
