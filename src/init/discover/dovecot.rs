//! Dovecot, read through `doveconf` (`ssl_cert`, `ssl_key`, `protocols`; `-c FILE` for another
//! configuration), and the drop-in `--apply` writes to point it at dane-roll's `chain-file`.
//! Dovecot reads a key and a certificate chain from one PEM file that holds both (each read
//! takes the blocks of its own type), so the Postfix `chain-file` serves it too.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dane_roll_providers::child::ChildError;

use super::postfix::config_job;
use crate::init::InitError;

const DOVECONF_TIMEOUT: Duration = Duration::from_secs(30);

/// The file name of the drop-in `--apply` writes in `conf.d/`.
pub const DROP_IN: &str = "99-dane-roll.conf";

/// The `doveconf` program and the configuration it reads.
#[derive(Debug, Clone)]
pub struct Doveconf {
    /// The program.
    pub program: PathBuf,
    /// `-c FILE`, when not Dovecot's default.
    pub config: Option<PathBuf>,
}

/// What Dovecot says about its TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DovecotTls {
    /// The main configuration file.
    pub config: PathBuf,
    /// `ssl_cert` (the file after `<`).
    pub cert: PathBuf,
    /// `ssl_key` (the file after `<`).
    pub key: PathBuf,
    /// `protocols`.
    pub protocols: Vec<String>,
}

impl DovecotTls {
    /// The drop-in file `--apply` writes (`conf.d/99-dane-roll.conf` beside the configuration).
    pub fn drop_in(&self) -> PathBuf {
        self.config
            .parent()
            .unwrap_or(Path::new("/etc/dovecot"))
            .join("conf.d")
            .join(DROP_IN)
    }
}

/// Whether `doveconf` could not be started because it is not installed.
#[derive(Debug)]
pub enum DoveconfError {
    /// Not installed (or not at `--doveconf`).
    Missing,
    /// It ran and failed, or could not be run.
    Failed(InitError),
}

impl Doveconf {
    /// The configuration file read.
    pub fn config_file(&self) -> PathBuf {
        self.config
            .clone()
            .unwrap_or_else(|| PathBuf::from("/etc/dovecot/dovecot.conf"))
    }

    /// `doveconf [-c FILE] NAMES…` as `name = value`.
    pub fn query(&self, names: &[&str]) -> Result<BTreeMap<String, String>, DoveconfError> {
        let (job, line) = config_job(
            &self.program,
            self.config.as_deref(),
            names,
            DOVECONF_TIMEOUT,
        );
        let output = match job.run() {
            Ok(output) => output,
            Err(ChildError::Spawn(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(DoveconfError::Missing);
            }
            Err(other) => {
                return Err(DoveconfError::Failed(InitError::Command {
                    command: line,
                    reason: other.to_string(),
                }));
            }
        };
        if !output.status.success() {
            return Err(DoveconfError::Failed(InitError::Command {
                command: line,
                reason: format!(
                    "{} {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            }));
        }
        Ok(String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            .collect())
    }

    /// Read Dovecot's TLS files. `Ok(None)`: Dovecot configures no certificate.
    pub fn discover(&self) -> Result<Option<DovecotTls>, DoveconfError> {
        let values = self.query(&["ssl_cert", "ssl_key", "protocols"])?;
        let file = |name: &str| {
            values
                .get(name)
                .and_then(|v| v.strip_prefix('<'))
                .map(|v| PathBuf::from(v.trim()))
        };
        let (Some(cert), Some(key)) = (file("ssl_cert"), file("ssl_key")) else {
            return Ok(None);
        };
        Ok(Some(DovecotTls {
            config: self.config_file(),
            cert,
            key,
            protocols: values
                .get("protocols")
                .map(|p| p.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
        }))
    }
}

/// The drop-in's text: both settings read the one key+chain file.
pub fn drop_in_text(chain_file: &Path) -> String {
    format!(
        "# Written by `dane-roll init --apply`: Dovecot reads its key and chain from dane-roll's\n\
         # file. `dane-roll init --undo` removes this file.\n\
         ssl_cert = <{f}\n\
         ssl_key = <{f}\n",
        f = chain_file.display()
    )
}
