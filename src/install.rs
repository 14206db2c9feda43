//! Putting a certificate where the service reads it, and telling the service.
//!
//! [`write_atomic`] is the one way dane-roll writes a file another program reads: a temporary
//! file with an unpredictable name created O_EXCL|O_NOFOLLOW in the same directory, written and
//! fsynced, given the mode (and group) asked for, never the old file's, renamed over the target,
//! and the directory fsynced ([`crate::fsafe`] owns these rules). A reader (Postfix at reload)
//! sees the old file or the new one, never half of one; a crash leaves at most a
//! `.<name>.*.dane-roll.tmp` file.
//!
//! [`install_chain`] copies a staged key+chain file (Postfix `smtpd_tls_chain_files` format:
//! private key, leaf, intermediates) to the service's `chain-file`; [`install_split`] writes the
//! same key and chain again as the separate `cert-file`, `key-file` and `fullchain-file` a
//! service such as Dovecot reads; [`reload`] runs one reload command (`postfix reload` unless
//! configured) with a time limit and reports its output when it fails, [`reload_all`] each of a
//! service's commands in order. Key material is never printed: errors name files, not contents.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::SplitFiles;
use crate::fsafe::{self, FileMode};

/// The mode of a key+chain file dane-roll creates (it holds a private key).
pub const NEW_FILE_MODE: u32 = 0o600;

/// The mode of a `cert-file` or `fullchain-file` (certificates only: public).
pub const CERT_FILE_MODE: u32 = 0o644;

/// How long a reload command may run before it is killed and reported.
pub const RELOAD_TIMEOUT: Duration = Duration::from_secs(120);

/// How much of a failed reload command's output is shown.
const OUTPUT_TAIL: usize = 600;

/// What went wrong while installing or reloading.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InstallError {
    /// The staged file cannot be read.
    #[error("cannot read the staged key and chain {}: {source}; run `dane-roll deploy` again", path.display())]
    ReadStaged {
        /// The staged file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The target cannot be written.
    #[error(
        "cannot write {}: {}",
        path.display(),
        crate::exit::write_problem(
            path,
            source,
            "check that the directory exists and is writable by the user dane-roll runs as"
        )
    )]
    Write {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The staged file lacks what a separate output needs (a key, a certificate).
    #[error(
        "the staged key and chain {} holds no {what}, so {} cannot be written; run \
         `dane-roll deploy` again",
        path.display(),
        target.display()
    )]
    Incomplete {
        /// The staged file.
        path: PathBuf,
        /// The output that cannot be written.
        target: PathBuf,
        /// What is missing: `private key` or `certificate`.
        what: &'static str,
    },
    /// The reload command is empty.
    #[error("the reload command is empty; set `reload` of the service (default: postfix reload)")]
    EmptyCommand,
    /// The reload command could not be started.
    #[error("cannot run the reload command `{command}`: {source}; is it installed and in PATH?")]
    Spawn {
        /// The command line.
        command: String,
        /// Why.
        source: io::Error,
    },
    /// The reload command failed.
    #[error("the reload command `{command}` failed ({status}){}", tail(output))]
    Failed {
        /// The command line.
        command: String,
        /// Its exit status, in words.
        status: String,
        /// The end of its output.
        output: String,
    },
    /// The reload command ran too long.
    #[error(
        "the reload command `{command}` did not finish within {} s; it was killed with its \
         process group",
        after.as_secs_f64()
    )]
    Timeout {
        /// The command line.
        command: String,
        /// The limit.
        after: Duration,
    },
}

impl InstallError {
    /// Whether it fails the same way until someone changes something: a staged file that is
    /// gone or incomplete, a target directory that is missing, read-only or not writable, a
    /// reload command that is empty or cannot be found or run. A reload that failed or ran
    /// too long, or another I/O error, may pass by itself.
    pub fn is_permanent(&self) -> bool {
        let lasting = |e: &io::Error| {
            matches!(
                e.kind(),
                io::ErrorKind::NotFound
                    | io::ErrorKind::PermissionDenied
                    | io::ErrorKind::ReadOnlyFilesystem
                    | io::ErrorKind::NotADirectory
                    | io::ErrorKind::IsADirectory
            )
        };
        match self {
            InstallError::ReadStaged { source, .. }
            | InstallError::Write { source, .. }
            | InstallError::Spawn { source, .. } => lasting(source),
            InstallError::Incomplete { .. } | InstallError::EmptyCommand => true,
            InstallError::Failed { .. } | InstallError::Timeout { .. } => false,
        }
    }
}

fn tail(output: &str) -> String {
    let output = output.trim();
    if output.is_empty() {
        String::new()
    } else {
        format!(": {output}")
    }
}

/// Write `data` to `path` atomically with exactly `mode` and the writer as owner (see
/// [`fsafe::write_atomic`]: an unpredictable O_EXCL|O_NOFOLLOW temporary, fsync, rename,
/// directory fsync). Nothing is taken from the file it replaces: a key never inherits 0644.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    fsafe::write_atomic(path, data, FileMode::mode(mode))
}

/// Write `data` to `path` atomically with exactly `mode` (a private key: always 0600).
pub fn write_atomic_mode(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    write_with_mode(path, data, FileMode::mode(mode))
}

/// Write `data` to `path` atomically with `mode`'s permission bits and group.
pub fn write_with_mode(path: &Path, data: &[u8], mode: FileMode) -> io::Result<()> {
    fsafe::write_atomic(path, data, mode)
}

/// Install the staged key+chain file at `target` (the service's `chain-file`), atomically, with
/// the service's `key-mode` and `key-group` ([`FileMode::PRIVATE`], 0600, unless configured).
///
/// When `target` is a symbolic link, the link is replaced by a regular file: its target is never
/// written, so a link planted there cannot make root overwrite another file.
pub fn install_chain(target: &Path, staged: &Path, mode: FileMode) -> Result<(), InstallError> {
    let data = fsafe::read_regular(staged).map_err(|source| InstallError::ReadStaged {
        path: staged.to_owned(),
        source,
    })?;
    write_with_mode(target, &data, mode).map_err(|source| InstallError::Write {
        path: target.to_owned(),
        source,
    })
}

/// Write the separate outputs of `files` from the staged key+chain file `staged`: `key-file`
/// (the private key, with `key_mode`), `cert-file` (the leaf) and `fullchain-file` (leaf and
/// intermediates), both [`CERT_FILE_MODE`]. Each is written atomically like the chain file, and
/// all are written before the caller installs the chain file and reloads.
pub fn install_split(
    files: &SplitFiles,
    staged: &Path,
    key_mode: FileMode,
) -> Result<(), InstallError> {
    if files.all().is_empty() {
        return Ok(());
    }
    let read_err = |source| InstallError::ReadStaged {
        path: staged.to_owned(),
        source,
    };
    let data = fsafe::read_regular(staged).map_err(read_err)?;
    // pem::encode writes CRLF by default; these files are read on Unix.
    let config = pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF);
    let blocks = pem::parse_many(&data)
        .map_err(|e| read_err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())))?;
    let encode = |tag: fn(&str) -> bool| -> String {
        blocks
            .iter()
            .filter(|b| tag(b.tag()))
            .map(|b| pem::encode_config(b, config))
            .collect()
    };
    let key = encode(|t| t.ends_with("PRIVATE KEY"));
    let chain = encode(|t| t == "CERTIFICATE");
    let leaf = blocks
        .iter()
        .find(|b| b.tag() == "CERTIFICATE")
        .map(|b| pem::encode_config(b, config))
        .unwrap_or_default();
    for (target, text, what, mode) in [
        (&files.key, &key, "private key", key_mode),
        (
            &files.cert,
            &leaf,
            "certificate",
            FileMode::mode(CERT_FILE_MODE),
        ),
        (
            &files.fullchain,
            &chain,
            "certificate",
            FileMode::mode(CERT_FILE_MODE),
        ),
    ] {
        let Some(target) = target else { continue };
        if text.is_empty() {
            return Err(InstallError::Incomplete {
                path: staged.to_owned(),
                target: target.clone(),
                what,
            });
        }
        write_with_mode(target, text.as_bytes(), mode).map_err(|source| InstallError::Write {
            path: target.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Run each reload command in order, each with the time limit `timeout`. A failed command does
/// not stop the ones after it (the files are in place for every service); the first failure is
/// returned, later ones are logged.
pub fn reload_all(commands: &[Vec<String>], timeout: Duration) -> Result<(), InstallError> {
    if commands.is_empty() {
        return Err(InstallError::EmptyCommand);
    }
    let mut first = None;
    for command in commands {
        if let Err(err) = reload(command, timeout) {
            if first.is_none() {
                first = Some(err);
            } else {
                tracing::warn!("{err}");
            }
        }
    }
    first.map_or(Ok(()), Err)
}

/// Run the reload command (program first) and wait for it, at most `timeout`.
///
/// It runs through [`dane_roll_providers::child`]: without the configuration's secret
/// variables, in a process group killed whole at the timeout, and a grandchild it leaves
/// holding its output (`sleep 400 &`) is not waited for.
pub fn reload(command: &[String], timeout: Duration) -> Result<(), InstallError> {
    use dane_roll_providers::child::{ChildError, EnvPolicy, Job};
    let (program, args) = command.split_first().ok_or(InstallError::EmptyCommand)?;
    let line = command.join(" ");
    let output = match Job::new(program, EnvPolicy::Inherit, timeout)
        .args(args)
        .run()
    {
        Ok(output) => output,
        Err(ChildError::Timeout(after)) => {
            return Err(InstallError::Timeout {
                command: line,
                after,
            });
        }
        Err(ChildError::Spawn(source) | ChildError::Wait(source)) => {
            return Err(InstallError::Spawn {
                command: line,
                source,
            });
        }
        Err(other) => {
            return Err(InstallError::Spawn {
                command: line,
                source: io::Error::other(other.to_string()),
            });
        }
    };
    if output.status.success() {
        return Ok(());
    }
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let mut output_text = text.trim().to_owned();
    if output_text.len() > OUTPUT_TAIL {
        let cut = output_text.len() - OUTPUT_TAIL;
        let cut = (cut..output_text.len())
            .find(|i| output_text.is_char_boundary(*i))
            .unwrap_or(output_text.len());
        output_text = format!("…{}", &output_text[cut..]);
    }
    Err(InstallError::Failed {
        command: line,
        status: output.status.to_string(),
        output: output_text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fsafe::test_support::{mode, temporaries};

    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn install_errors_say_whether_only_a_fix_clears_them() {
        let io = |kind| io::Error::new(kind, "x");
        let write = |kind| InstallError::Write {
            path: "/etc/postfix/mx.pem".into(),
            source: io(kind),
        };
        assert!(write(io::ErrorKind::NotFound).is_permanent());
        assert!(write(io::ErrorKind::PermissionDenied).is_permanent());
        assert!(write(io::ErrorKind::ReadOnlyFilesystem).is_permanent());
        assert!(!write(io::ErrorKind::Interrupted).is_permanent());
        assert!(InstallError::EmptyCommand.is_permanent());
        assert!(
            InstallError::Spawn {
                command: "postfix reload".into(),
                source: io(io::ErrorKind::NotFound),
            }
            .is_permanent()
        );
        assert!(
            !InstallError::Failed {
                command: "postfix reload".into(),
                status: "exit status: 1".into(),
                output: String::new(),
            }
            .is_permanent()
        );
        assert!(
            !InstallError::Timeout {
                command: "postfix reload".into(),
                after: Duration::from_secs(60),
            }
            .is_permanent()
        );
    }

    #[test]
    fn atomic_write_sets_exactly_the_mode_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("chain.pem");
        write_atomic(&p, b"one", NEW_FILE_MODE).unwrap();
        assert_eq!(mode(&p), 0o600);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&p, b"two", NEW_FILE_MODE).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        // Never inherited from the file replaced.
        assert_eq!(mode(&p), 0o600);
        write_atomic_mode(&p, b"three", 0o600).unwrap();
        assert_eq!(mode(&p), 0o600);
        assert_eq!(temporaries(dir.path()), Vec::<PathBuf>::new());
    }

    #[test]
    fn install_copies_and_a_missing_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let staged = dir.path().join("staged.pem");
        fs::write(&staged, b"key+chain").unwrap();
        let target = dir.path().join("chain.pem");
        install_chain(&target, &staged, FileMode::PRIVATE).unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"key+chain");
        let err = install_chain(
            &dir.path().join("nope/chain.pem"),
            &staged,
            FileMode::PRIVATE,
        )
        .unwrap_err();
        assert!(err.to_string().contains("nope/chain.pem"), "{err}");
        let err =
            install_chain(&target, &dir.path().join("gone.pem"), FileMode::PRIVATE).unwrap_err();
        assert!(matches!(err, InstallError::ReadStaged { .. }));
    }

    #[test]
    fn split_outputs_get_key_leaf_and_chain_with_their_modes() {
        let dir = tempfile::tempdir().unwrap();
        let block = |tag: &str, body: &[u8]| {
            pem::encode_config(
                &pem::Pem::new(tag, body.to_vec()),
                pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
            )
        };
        let (key, leaf, issuer) = (
            block("PRIVATE KEY", b"secret"),
            block("CERTIFICATE", b"leaf"),
            block("CERTIFICATE", b"issuer"),
        );
        let staged = dir.path().join("staged.pem");
        fs::write(&staged, format!("{key}{leaf}{issuer}")).unwrap();
        let files = SplitFiles {
            cert: Some(dir.path().join("cert.pem")),
            key: Some(dir.path().join("key.pem")),
            fullchain: Some(dir.path().join("fullchain.pem")),
        };
        // A key the service's group may read (key-mode 0640) stays 0640; certificates 0644.
        install_split(&files, &staged, FileMode::mode(0o640)).unwrap();
        let read = |name: &str| fs::read_to_string(dir.path().join(name)).unwrap();
        assert_eq!(read("key.pem"), key);
        assert_eq!(read("cert.pem"), leaf);
        assert_eq!(read("fullchain.pem"), format!("{leaf}{issuer}"));
        assert_eq!(mode(&dir.path().join("key.pem")), 0o640);
        assert_eq!(mode(&dir.path().join("cert.pem")), 0o644);
        assert_eq!(mode(&dir.path().join("fullchain.pem")), 0o644);
        install_split(&files, &staged, FileMode::PRIVATE).unwrap();
        assert_eq!(mode(&dir.path().join("key.pem")), 0o600);
        assert_eq!(temporaries(dir.path()), Vec::<PathBuf>::new());

        // A staged file without a key: the key output is refused by name, nothing printed of it.
        fs::write(&staged, format!("{leaf}{issuer}")).unwrap();
        let err = install_split(&files, &staged, FileMode::PRIVATE).unwrap_err();
        assert!(
            matches!(
                err,
                InstallError::Incomplete {
                    what: "private key",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("key.pem"), "{err}");
        // Nothing configured: nothing read.
        install_split(
            &SplitFiles::default(),
            &dir.path().join("gone"),
            FileMode::PRIVATE,
        )
        .unwrap();
    }

    #[test]
    fn reload_all_runs_every_command_in_order_and_reports_the_first_failure() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let append = |word: &str, status: u8| {
            vec![
                "sh".to_owned(),
                "-c".to_owned(),
                format!("echo {word} >> {}; exit {status}", log.display()),
            ]
        };
        reload_all(&[append("one", 0), append("two", 0)], RELOAD_TIMEOUT).unwrap();
        assert_eq!(fs::read_to_string(&log).unwrap(), "one\ntwo\n");
        fs::remove_file(&log).unwrap();
        let err = reload_all(&[append("one", 3), append("two", 0)], RELOAD_TIMEOUT).unwrap_err();
        assert!(err.to_string().contains("echo one"), "{err}");
        // The second still ran: Dovecot reloads even when Postfix did not.
        assert_eq!(fs::read_to_string(&log).unwrap(), "one\ntwo\n");
        assert!(matches!(
            reload_all(&[], RELOAD_TIMEOUT),
            Err(InstallError::EmptyCommand)
        ));
    }

    #[test]
    fn reload_reports_failure_output_and_missing_programs() {
        reload(&["true".into()], RELOAD_TIMEOUT).unwrap();
        let err = reload(
            &[
                "sh".into(),
                "-c".into(),
                "echo fatal: not running >&2; exit 1".into(),
            ],
            RELOAD_TIMEOUT,
        )
        .unwrap_err();
        assert!(err.to_string().contains("fatal: not running"), "{err}");
        let err = reload(&["/nonexistent/reload".into()], RELOAD_TIMEOUT).unwrap_err();
        assert!(matches!(err, InstallError::Spawn { .. }));
        let err = reload(&["sleep".into(), "5".into()], Duration::from_millis(100)).unwrap_err();
        assert!(matches!(err, InstallError::Timeout { .. }));
        assert!(matches!(
            reload(&[], RELOAD_TIMEOUT),
            Err(InstallError::EmptyCommand)
        ));
    }
}
