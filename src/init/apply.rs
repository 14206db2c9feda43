//! `init --apply` and `--undo`: switch Postfix from the files it reads now to the service's
//! `chain-file`, and back. The switch is: main.cf backed up beside it (never over an earlier
//! backup), the live key and chain copied into `chain-file` (0600, atomically),
//! `postconf -e smtpd_tls_chain_files=FILE` (which Postfix prefers to the legacy
//! `smtpd_tls_cert_file`/`key_file`, left as they were), a reload, then a live handshake on
//! every endpoint address that must present the copied key. Anything that fails puts main.cf
//! back and reloads again. `--undo` restores main.cf from the backup the same way.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::InitError;
use super::discover::dovecot::{Doveconf, drop_in_text};
use super::discover::postfix::Postconf;
use super::write::{ensure_private_dir, write_new};
use crate::config::Endpoint;
use crate::dns::Resolver;
use crate::fsafe::{self, FileMode};
use crate::probe::{ProbeOptions, ProbeTarget, Prober};

/// The backup of main.cf, beside it.
pub fn backup_path(main_cf: &Path) -> PathBuf {
    let mut name = main_cf.file_name().unwrap_or_default().to_os_string();
    name.push(".dane-roll-init.bak");
    main_cf.with_file_name(name)
}

/// How many handshakes per address the switch is judged on, and the pause between them: an
/// smtpd idle at the reload may serve one more session with the files it had.
const PROBE_ROUNDS: usize = 3;
const PROBE_PAUSE: Duration = Duration::from_millis(700);

/// What the switch needs.
pub struct Switch<'a> {
    /// `postconf` for the Postfix to switch.
    pub postconf: &'a Postconf,
    /// Its main.cf.
    pub main_cf: PathBuf,
    /// The service's `chain-file`.
    pub chain_file: &'a Path,
    /// The live key and chain, PEM (a secret: written 0600, never printed).
    pub key_and_chain: &'a [u8],
    /// The service's reload command.
    pub reload: &'a [Vec<String>],
    /// Its time limit.
    pub timeout: Duration,
    /// Dovecot, switched too when it serves the same key: `doveconf` and the drop-in to write.
    pub dovecot: Option<(&'a Doveconf, PathBuf)>,
}

/// The first line of the Dovecot drop-in: only a file that starts with it is ever removed.
const DROP_IN_MARK: &str = "# Written by `dane-roll init --apply`";

/// Remove the Dovecot drop-in if it is there and ours.
fn remove_drop_in(drop_in: &Path) -> Result<(), InitError> {
    match fsafe::read_regular(drop_in) {
        Ok(data) if data.starts_with(DROP_IN_MARK.as_bytes()) => {
            std::fs::remove_file(drop_in).map_err(file_err(drop_in))
        }
        Ok(_) => Err(InitError::Refused(format!(
            "{} was not written by dane-roll init; left as it is",
            drop_in.display()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(file_err(drop_in)(e)),
    }
}

/// Write the drop-in and check that Dovecot takes it (a later setting would win).
fn switch_dovecot(doveconf: &Doveconf, drop_in: &Path, chain_file: &Path) -> Result<(), InitError> {
    write_new(drop_in, &drop_in_text(chain_file))?;
    let want = format!("<{}", chain_file.display());
    let values = doveconf
        .query(&["ssl_cert", "ssl_key"])
        .map_err(|e| match e {
            super::discover::dovecot::DoveconfError::Failed(err) => err,
            super::discover::dovecot::DoveconfError::Missing => {
                InitError::Refused("doveconf is gone".into())
            }
        })?;
    for name in ["ssl_cert", "ssl_key"] {
        let got = values.get(name).map(String::as_str).unwrap_or("");
        if got != want {
            return Err(InitError::Refused(format!(
                "Dovecot does not take {}: {name} is still \"{got}\" (set later in its configuration?)",
                drop_in.display()
            )));
        }
    }
    Ok(())
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> InitError + '_ {
    move |source| InitError::File {
        path: path.to_owned(),
        source,
    }
}

/// Run the service's reload commands in order; the first that fails stops the switch.
fn reload(commands: &[Vec<String>], timeout: Duration) -> Result<(), InitError> {
    for command in commands {
        crate::install::reload(command, timeout).map_err(|e| InitError::Command {
            command: command.join(" "),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// Back up main.cf, write `chain-file`, point Postfix at it, reload. On a failure after the
/// backup, main.cf is restored (and Postfix reloaded) before the error is returned.
pub fn switch(s: &Switch<'_>) -> Result<(), InitError> {
    let backup = backup_path(&s.main_cf);
    if std::fs::symlink_metadata(&backup).is_ok() {
        return Err(InitError::Refused(format!(
            "{} exists: Postfix was switched already (run `dane-roll init --undo` to go back first)",
            backup.display()
        )));
    }
    let original = fsafe::read_regular(&s.main_cf).map_err(file_err(&s.main_cf))?;
    write_new(&backup, &String::from_utf8_lossy(&original))?;
    let steps = || -> Result<(), InitError> {
        if let Some(dir) = s.chain_file.parent() {
            ensure_private_dir(dir)?;
        }
        fsafe::write_atomic(s.chain_file, s.key_and_chain, FileMode::PRIVATE)
            .map_err(file_err(s.chain_file))?;
        s.postconf
            .set("smtpd_tls_chain_files", &s.chain_file.display().to_string())?;
        if let Some((doveconf, drop_in)) = &s.dovecot {
            switch_dovecot(doveconf, drop_in, s.chain_file)?;
        }
        reload(s.reload, s.timeout)
    };
    let drop_in = s.dovecot.as_ref().map(|(_, p)| p.as_path());
    match steps() {
        Ok(()) => Ok(()),
        Err(err) => match restore(&s.main_cf, drop_in, s.reload, s.timeout) {
            Ok(()) => Err(err),
            Err(undo) => Err(InitError::Refused(format!(
                "{err}; then, putting main.cf back: {undo}"
            ))),
        },
    }
}

/// Put main.cf back from the backup (and remove Dovecot's drop-in, when it is ours), reload,
/// and remove the backup.
pub fn restore(
    main_cf: &Path,
    drop_in: Option<&Path>,
    reload_command: &[Vec<String>],
    timeout: Duration,
) -> Result<(), InitError> {
    let backup = backup_path(main_cf);
    let data = match fsafe::read_regular(&backup) {
        Ok(data) => data,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(InitError::Refused(format!(
                "no backup {}: nothing to undo (init --apply makes it)",
                backup.display()
            )));
        }
        Err(e) => return Err(file_err(&backup)(e)),
    };
    if let Some(drop_in) = drop_in {
        remove_drop_in(drop_in)?;
    }
    let mode = std::fs::metadata(main_cf)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(0o644);
    fsafe::write_atomic(main_cf, &data, FileMode::mode(mode)).map_err(file_err(main_cf))?;
    reload(reload_command, timeout)?;
    std::fs::remove_file(&backup).map_err(file_err(&backup))
}

/// Why a probe did not confirm the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unconfirmed {
    /// No handshake could be made (no address, no answer, no TLS): nothing can be judged.
    Unreachable(String),
    /// A handshake presented another key.
    OtherKey(String),
}

impl std::fmt::Display for Unconfirmed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unconfirmed::Unreachable(why) | Unconfirmed::OtherKey(why) => f.write_str(why),
        }
    }
}

/// Probe every address of every endpoint a few times: each handshake must present the key
/// whose SubjectPublicKeyInfo hashes to `spki_sha256`. The number of handshakes made, or why
/// the key is not confirmed.
pub async fn verify(
    resolver: &Resolver,
    endpoints: &[Endpoint],
    spki_sha256: &str,
) -> Result<usize, Unconfirmed> {
    let prober = Prober::new(ProbeOptions::default())
        .map_err(|e| Unconfirmed::Unreachable(e.to_string()))?;
    let mut targets = Vec::new();
    for endpoint in endpoints {
        let lookup = resolver.addresses(&endpoint.host).await.map_err(|e| {
            Unconfirmed::Unreachable(format!("the addresses of {}: {e}", endpoint.host))
        })?;
        if lookup.records.is_empty() {
            return Err(Unconfirmed::Unreachable(format!(
                "{} has no address in DNS",
                endpoint.host
            )));
        }
        for ip in &lookup.records {
            targets.push(ProbeTarget {
                host: endpoint.host.clone(),
                addr: SocketAddr::new(*ip, endpoint.port),
                protocol: endpoint.protocol,
            });
        }
    }
    let mut probes = 0;
    for round in 0..PROBE_ROUNDS {
        if round > 0 {
            tokio::time::sleep(PROBE_PAUSE).await;
        }
        for report in prober.probe_many(targets.clone(), &[], 8).await {
            probes += 1;
            let at = format!("{} ({})", report.host, report.address);
            if report.keys.is_empty() {
                return Err(Unconfirmed::Unreachable(format!(
                    "{at} presented no key: {}",
                    report.reason.unwrap_or_else(|| "no handshake".into())
                )));
            }
            if let Some(other) = report.keys.iter().find(|k| k.spki_sha256 != spki_sha256) {
                return Err(Unconfirmed::OtherKey(format!(
                    "{at} presents the key {} instead of {spki_sha256}",
                    other.spki_sha256
                )));
            }
        }
    }
    Ok(probes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_beside_main_cf() {
        assert_eq!(
            backup_path(Path::new("/etc/postfix/main.cf")),
            PathBuf::from("/etc/postfix/main.cf.dane-roll-init.bak")
        );
    }

    #[test]
    fn undo_without_backup_is_refused_and_changes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let main_cf = dir.path().join("main.cf");
        std::fs::write(&main_cf, "a = b\n").unwrap();
        let err = restore(
            &main_cf,
            None,
            &[vec!["true".into()]],
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(err.to_string().contains("nothing to undo"), "{err}");
        assert_eq!(std::fs::read_to_string(&main_cf).unwrap(), "a = b\n");
    }
}
