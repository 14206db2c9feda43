//! What [`Store::open`](super::Store::open) checks before it trusts a state directory and its
//! database: the directory is private to the user dane-roll runs as (created 0700, refused when
//! group- or other-writable or owned by someone else, and reached only through directories
//! nobody else can change: [`crate::fsafe::check_private_dir`]); `state.db` is a regular file
//! (a FIFO there would hang SQLite's open); and a database without a schema beside staged key
//! files is a lost store, not a fresh one.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;

use rusqlite::Connection;

use super::StoreError;
use crate::fsafe;
use crate::rollover::driver::STAGED_DIR;

/// Create `state_dir` 0700 if missing, and check it is private and trusted.
pub(super) fn prepare_dir(state_dir: &Path) -> Result<(), StoreError> {
    let existed = fs::symlink_metadata(state_dir).is_ok();
    let dir_err = |source| StoreError::StateDir {
        dir: state_dir.to_owned(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(state_dir)
        .map_err(dir_err)?;
    if !existed {
        // Ours: make it exactly 0700 whatever the umask or a default ACL gave it.
        fs::set_permissions(state_dir, fs::Permissions::from_mode(0o700)).map_err(dir_err)?;
    }
    fsafe::check_private_dir(state_dir).map_err(StoreError::Untrusted)
}

/// Whether `path` (the database file) exists; an error when it is not a regular file.
pub(super) fn db_file(path: &Path) -> Result<bool, StoreError> {
    fsafe::regular_or_missing(path).map_err(|source| StoreError::NotRegular {
        path: path.to_owned(),
        detail: source.to_string(),
    })
}

/// How many files are staged under `<state_dir>/staged/<service>/<slot>/`.
fn staged_files(state_dir: &Path) -> usize {
    let list = |p: &Path| -> Vec<fs::DirEntry> {
        fs::read_dir(p)
            .map(|d| d.filter_map(Result::ok).collect())
            .unwrap_or_default()
    };
    let mut count = 0;
    for service in list(&state_dir.join(STAGED_DIR)) {
        for slot in list(&service.path()) {
            count += list(&slot.path())
                .iter()
                .filter(|f| f.file_type().is_ok_and(|t| t.is_file()))
                .count();
        }
    }
    count
}

/// An existing database with no table at all (a 0-byte file, or one emptied) while key files
/// are staged: the rollovers those files belong to are forgotten. Say so instead of starting
/// afresh.
pub(super) fn not_lost(conn: &Connection, path: &Path, state_dir: &Path) -> Result<(), StoreError> {
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |row| row.get(0),
        )
        .map_err(|e| super::classify(path, e))?;
    if tables > 0 {
        return Ok(());
    }
    let staged = staged_files(state_dir);
    if staged == 0 {
        return Ok(());
    }
    Err(StoreError::Lost {
        path: path.to_owned(),
        staged,
        staged_dir: state_dir.join(STAGED_DIR),
    })
}
