//! Reading report mails from a Maildir once each: the messages in `new/` are read, and each
//! one handled is moved to `cur/` with the Maildir info `:2,S` (seen: stored, or stored
//! before) or `:2,F` (flagged: not a report, left for the postmaster to look at), so the next
//! run (a timer) does not read it again. Messages already in `cur/` are never read. Written by
//! hand: the Maildir convention is two directories and a rename.

use std::path::{Path, PathBuf};

/// Why a Maildir cannot be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MaildirError {
    /// Not a Maildir.
    #[error(
        "{}: not a Maildir (no new/ and cur/ inside); give the directory that holds them",
        dir.display()
    )]
    NotAMaildir {
        /// The directory.
        dir: PathBuf,
    },
    /// A directory or message could not be read or moved.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// The messages waiting in `dir/new`, oldest name first.
pub fn waiting(dir: &Path) -> Result<Vec<PathBuf>, MaildirError> {
    let new = dir.join("new");
    if !new.is_dir() || !dir.join("cur").is_dir() {
        return Err(MaildirError::NotAMaildir {
            dir: dir.to_owned(),
        });
    }
    let io = |source| MaildirError::Io {
        path: new.clone(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&new).map_err(io)? {
        let entry = entry.map_err(io)?;
        let name = entry.file_name();
        // Dot files are not messages (a delivery agent's temporaries live in tmp/ anyway).
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        if entry.file_type().map_err(io)?.is_file() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// How a message was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Stored (or stored before): seen.
    Seen,
    /// Not a report: flagged for the postmaster.
    Flagged,
}

/// Move `message` (in `dir/new`) to `dir/cur` with the flag of `how`; the new path.
pub fn mark(dir: &Path, message: &Path, how: Handled) -> Result<PathBuf, MaildirError> {
    let name = message
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let base = name.split(":2,").next().unwrap_or(&name).to_owned();
    let flag = match how {
        Handled::Seen => "S",
        Handled::Flagged => "F",
    };
    let to = dir.join("cur").join(format!("{base}:2,{flag}"));
    std::fs::rename(message, &to).map_err(|source| MaildirError::Io {
        path: message.to_owned(),
        source,
    })?;
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_waiting_until_marked() {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        std::fs::write(dir.path().join("new/1.host"), "x").unwrap();
        let waiting_now = waiting(dir.path()).unwrap();
        assert_eq!(waiting_now.len(), 1);
        let moved = mark(dir.path(), &waiting_now[0], Handled::Seen).unwrap();
        assert!(moved.ends_with("cur/1.host:2,S"));
        assert!(waiting(dir.path()).unwrap().is_empty());
        assert!(matches!(
            waiting(&dir.path().join("cur")),
            Err(MaildirError::NotAMaildir { .. })
        ));
    }
}
