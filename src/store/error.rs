//! [`StoreError`]: what went wrong with the store, each naming the file and what to do, and
//! how SQLite's errors map onto it.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::ErrorCode;

use super::BUSY_TIMEOUT;

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

/// Turn SQLite's error into one that says what to do.
pub(super) fn classify(path: &Path, e: rusqlite::Error) -> StoreError {
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
