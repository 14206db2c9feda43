//! The state store: one SQLite database, `<state-dir>/state.db`, that the hook, `run`,
//! `status` and the monitor share (rusqlite with SQLite bundled).
//!
//! It owns: the rollover of each service and key slot (the
//! [`Rollover`](crate::rollover::Rollover) as JSON, with its phase name and times as columns;
//! `rollovers`), the records each service published ("ours", the only ones that
//! may ever be retired), the keys by role (hash and path only, never key material), the event
//! history for `status --history`, the monitor's alert state, where each service's ACME client
//! keeps its certificate as its hook last saw it (`acme_sources`), and the SMTP TLS reports
//! senders sent (`tlsrpt_reports`, `tlsrpt_sessions`).
//!
//! The database runs in WAL mode with a busy timeout, so a hook and the timer can read and write
//! at once; [`Store::save`] writes a phase change, its events and the record changes in one
//! transaction. The directory is created 0700 and the file 0600, and both are checked before
//! use (`guard`: a private directory, a regular file, no lost store). Errors say which file and what
//! to do: a damaged file, a schema newer than this build, a read-only directory.

mod acme_sources;
mod alerts;
mod error;
mod events;
mod guard;
mod keys;
mod records;
mod rollovers;
mod schema;
#[cfg(test)]
mod tests;
mod tlsrpt;
mod ttl;

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;

use crate::rollover::{Slot, SlotError};

pub use acme_sources::RecordedSource;
pub use alerts::AlertState;
pub use error::StoreError;
use error::classify;
pub use events::StoredEvent;
pub use keys::{KeyEntry, KeyRole};
pub use records::{PublishedRecord, RecordChange};
pub use schema::{MIGRATIONS, Migrated, latest_version};
pub use tlsrpt::{NewTlsReport, SessionCount, StoredTlsReport};
pub use ttl::TtlObservation;

/// The database file's name in the state directory.
pub const DB_FILE: &str = "state.db";

/// How long a writer waits for another process's transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
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
        // Before the first read: another process may be creating or migrating the file.
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| classify(&path, e))?;
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
            let mode = wal_mode(&conn).map_err(err)?;
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

    /// Every row `sql` selects with `params`, each read by `read`: the prepare, query and
    /// collect every table's listing shares, its errors named by the store.
    fn select<T>(
        &self,
        sql: &str,
        params: impl rusqlite::Params,
        read: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        stmt.query_map(params, read)
            .map_err(|e| self.err(e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.err(e))
    }

    /// A row of `service`'s `slot` that cannot be read back (or a rollover that cannot be
    /// written), and why.
    fn bad_state(&self, service: &str, slot: &str, detail: impl ToString) -> StoreError {
        StoreError::BadState {
            path: self.path.clone(),
            service: service.to_owned(),
            slot: slot.to_owned(),
            detail: detail.to_string(),
        }
    }

    /// A slot column read back: one of the slots, or an unreadable row of `service`.
    fn slot(&self, service: &str, slot: &str) -> Result<Slot, StoreError> {
        slot.parse()
            .map_err(|e: SlotError| self.bad_state(service, slot, e))
    }
}

/// Switch the database to WAL, waiting for other openers. SQLite takes the exclusive lock this
/// needs without calling the busy handler (two processes creating the store at once, e.g. a
/// `status` poll beside the `deploy` that creates it, got "database is locked" at once), so
/// the wait is ours: retried every 10 ms up to the busy timeout.
fn wal_mode(conn: &Connection) -> rusqlite::Result<String> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}
