//! One process per service (invariant 5): an exclusive advisory lock on
//! `<state-dir>/locks/<service>.lock`, taken with `flock(2)` through std's [`File::try_lock`].
//!
//! The holder writes its PID, command and start time into the file, so a second process that
//! cannot get the lock says who has it. The lock belongs to the open file: it goes when the
//! [`ServiceLock`] is dropped or the process dies, so a lock file left by a killed process is
//! harmless (the file stays; the lock does not).
//!
//! dane-roll runs as root: the lock file is opened `O_NOFOLLOW`, and written (truncated) only when
//! it is a regular file owned by this user with a single link, in a `locks/` directory that is
//! ours and private. Anything else planted there is refused ([`LockError::NotOurs`]).

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;

use crate::rollover::{Clock, SystemClock, Timestamp};

/// How often a waiting process tries again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// The directory under the state directory that holds the lock files.
pub const LOCK_DIR: &str = "locks";

/// Why a service could not be locked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Another process holds the lock, and did not let go within the wait.
    #[error(
        "service {service} is being driven by {holder}; waited {} s. Try again when it is \
         done, or pass a longer wait (lock file {path})",
        waited.as_secs_f64().round()
    )]
    Busy {
        /// The service.
        service: String,
        /// Who holds it, as written in the lock file.
        holder: Holder,
        /// How long this process waited.
        waited: Duration,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file or its directory could not be created or opened.
    #[error(
        "cannot open the lock file {}: {}",
        path.display(),
        crate::exit::write_problem(path, source, "check that the state directory is writable")
    )]
    Open {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// `flock` itself failed.
    #[error("cannot lock {path}: {source}")]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The lock file (or its directory) is not a file this user made: a symbolic link, a hard
    /// link, another user's file. It is never written through.
    #[error(
        "refusing the lock file {path}: {why}; dane-roll only writes a lock file it created. \
         Remove it (and check who put it there)"
    )]
    NotOurs {
        /// The file or directory.
        path: PathBuf,
        /// What it is.
        why: String,
    },
    /// A service name that cannot be a file name.
    #[error("service name {0:?} cannot name a lock file")]
    BadName(String),
}

/// Who holds a lock, as its holder wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Holder {
    /// The process id.
    pub pid: Option<u32>,
    /// The command (`dane-roll hook certbot`).
    pub command: Option<String>,
    /// Since when.
    pub since: Option<Timestamp>,
}

impl Holder {
    fn parse(text: &str) -> Holder {
        let mut holder = Holder::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("pid", v)) => holder.pid = v.trim().parse().ok(),
                Some(("command", v)) => holder.command = Some(v.trim().to_owned()),
                Some(("since", v)) => {
                    holder.since = v.trim().parse().ok().map(Timestamp::from_secs)
                }
                _ => {}
            }
        }
        holder
    }

    fn render(&self) -> String {
        format!(
            "pid={}\ncommand={}\nsince={}\n",
            self.pid.map_or_else(String::new, |p| p.to_string()),
            self.command.as_deref().unwrap_or(""),
            self.since
                .map_or_else(String::new, |t| t.as_secs().to_string()),
        )
    }
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.pid {
            Some(pid) => write!(f, "PID {pid}")?,
            None => f.write_str("another process (it wrote no PID)")?,
        }
        if let Some(command) = &self.command {
            write!(f, " ({command})")?;
        }
        if let Some(since) = self.since {
            write!(f, " since {since}")?;
        }
        Ok(())
    }
}

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct ServiceLock {
    file: File,
    path: PathBuf,
    service: String,
}

impl ServiceLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The service locked.
    pub fn service(&self) -> &str {
        &self.service
    }

    /// Release now (the same as dropping).
    pub fn release(self) {
        // Clear the holder lines so a reader does not blame this process; the lock itself goes
        // with the file descriptor. Failures here change nothing: the lock is released anyway.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// The lock file of `service` under `state_dir`.
pub fn lock_path(state_dir: &Path, service: &str) -> Result<PathBuf, LockError> {
    let valid = !service.is_empty()
        && service != "."
        && service != ".."
        && service
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !valid {
        return Err(LockError::BadName(service.to_owned()));
    }
    Ok(state_dir.join(LOCK_DIR).join(format!("{service}.lock")))
}

/// Lock `service` for this process, running `command`; wait up to `wait` for another holder to
/// let go (zero: try once).
pub fn acquire(
    state_dir: &Path,
    service: &str,
    command: &str,
    wait: Duration,
) -> Result<ServiceLock, LockError> {
    let path = lock_path(state_dir, service)?;
    let open_err = |source| LockError::Open {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(open_err)?;
        // The lock directory itself, not a link to elsewhere, private and ours.
        let meta = fs::symlink_metadata(dir).map_err(open_err)?;
        if !meta.is_dir() || meta.uid() != crate::fsafe::euid() || meta.mode() & 0o022 != 0 {
            return Err(LockError::NotOurs {
                path: dir.to_owned(),
                why: format!(
                    "it is {} owned by uid {} with mode {:04o}, not a directory private to this \
                     user",
                    if meta.is_dir() {
                        "a directory"
                    } else {
                        "not a directory"
                    },
                    meta.uid(),
                    meta.mode() & 0o7777
                ),
            });
        }
    }
    // O_NOFOLLOW: a symbolic link planted at the lock file's name is refused, never followed
    // (the lock file is written to, so a link would make root write wherever it points).
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags((OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).bits())
        .open(&path)
        .map_err(|source| match source.raw_os_error() {
            Some(code) if code == nix::libc::ELOOP => LockError::NotOurs {
                path: path.clone(),
                why: "it is a symbolic link".to_owned(),
            },
            _ => open_err(source),
        })?;
    // Never truncate or write a file that is not ours: a regular file, owned by this user, with
    // no other name (a hard link to another file would be overwritten through it).
    let meta = file.metadata().map_err(open_err)?;
    if !meta.is_file() || meta.uid() != crate::fsafe::euid() || meta.nlink() != 1 {
        return Err(LockError::NotOurs {
            path: path.clone(),
            why: if !meta.is_file() {
                "it is not a regular file".to_owned()
            } else if meta.nlink() != 1 {
                format!("it has {} hard links", meta.nlink())
            } else {
                format!("it is owned by uid {}", meta.uid())
            },
        });
    }
    let started = Instant::now();
    loop {
        match file.try_lock() {
            Ok(()) => break,
            Err(TryLockError::WouldBlock) => {
                if started.elapsed() >= wait {
                    let mut text = String::new();
                    // Best effort: an unreadable holder line only makes the message vaguer.
                    let _ = file.seek(SeekFrom::Start(0));
                    let _ = file.read_to_string(&mut text);
                    return Err(LockError::Busy {
                        service: service.to_owned(),
                        holder: Holder::parse(&text),
                        waited: started.elapsed(),
                        path,
                    });
                }
                thread::sleep(POLL_INTERVAL.min(wait.saturating_sub(started.elapsed())));
            }
            Err(TryLockError::Error(source)) => return Err(LockError::Lock { path, source }),
        }
    }
    let holder = Holder {
        pid: Some(std::process::id()),
        command: Some(command.to_owned()),
        since: Some(SystemClock.now()),
    };
    let write = |file: &mut File| -> io::Result<()> {
        file.set_len(0)?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(holder.render().as_bytes())?;
        file.flush()
    };
    write(&mut file).map_err(|source| LockError::Lock {
        path: path.clone(),
        source,
    })?;
    Ok(ServiceLock {
        file,
        path,
        service: service.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_open_in_the_same_process_is_refused_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = acquire(dir.path(), "mx", "dane-roll run", Duration::ZERO).unwrap();
        let err = acquire(
            dir.path(),
            "mx",
            "dane-roll hook certbot",
            Duration::from_millis(250),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains(&format!("PID {}", std::process::id())),
            "{text}"
        );
        assert!(text.contains("(dane-roll run)"), "{text}");
        assert!(text.contains("service mx is being driven by"), "{text}");
        match err {
            LockError::Busy { waited, .. } => assert!(waited >= Duration::from_millis(250)),
            other => panic!("expected Busy, got {other:?}"),
        }
        first.release();
        let again = acquire(dir.path(), "mx", "dane-roll run", Duration::ZERO).unwrap();
        // Another service is independent.
        let other = acquire(dir.path(), "imap", "dane-roll run", Duration::ZERO).unwrap();
        drop((again, other));
    }

    #[test]
    fn lock_files_and_dir_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let lock = acquire(dir.path(), "mx", "t", Duration::ZERO).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(lock.path()), 0o600);
        assert_eq!(mode(&dir.path().join(LOCK_DIR)), 0o700);
    }

    #[test]
    fn service_names_cannot_escape_the_lock_dir() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", "..", "a/b", "../x"] {
            assert!(matches!(
                acquire(dir.path(), bad, "t", Duration::ZERO),
                Err(LockError::BadName(_))
            ));
        }
    }
}
