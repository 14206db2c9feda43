//! Postfix, read and changed through `postconf` (never by parsing main.cf ourselves: `postconf`
//! knows the defaults, `$name` expansion and the compatibility level).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use dane_roll_providers::child::{ChildError, EnvPolicy, Job};

use crate::init::InitError;

/// How long one `postconf` may take.
const POSTCONF_TIMEOUT: Duration = Duration::from_secs(30);

/// The parameters discovery reads.
const PARAMETERS: [&str; 8] = [
    "config_directory",
    "myhostname",
    "mydomain",
    "smtpd_tls_chain_files",
    "smtpd_tls_cert_file",
    "smtpd_tls_key_file",
    "smtpd_tls_eccert_file",
    "smtpd_tls_eckey_file",
];

/// The `postconf` program and the configuration directory it is pointed at.
#[derive(Debug, Clone)]
pub struct Postconf {
    /// The program.
    pub program: PathBuf,
    /// `-c DIR`, when not Postfix's default.
    pub config_dir: Option<PathBuf>,
}

/// Where Postfix reads its server key and certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsFiles {
    /// `smtpd_tls_chain_files`: each file holds a key and its chain.
    Chains(Vec<PathBuf>),
    /// The legacy parameters: a certificate (chain) file and a key file, per algorithm.
    Pairs(Vec<(PathBuf, PathBuf)>),
    /// No server certificate is configured.
    None,
}

/// What Postfix says about itself.
#[derive(Debug, Clone)]
pub struct PostfixTls {
    /// `config_directory` (where main.cf is).
    pub config_dir: PathBuf,
    /// `myhostname`.
    pub myhostname: String,
    /// `mydomain`.
    pub mydomain: String,
    /// The server's TLS files.
    pub files: TlsFiles,
}

/// `PROGRAM [-c CONFIG] ARGS…` for `postconf` and `doveconf` (both take their configuration
/// with `-c`): the job, and its command line in words for messages.
pub(super) fn config_job(
    program: &Path,
    config: Option<&Path>,
    args: &[&str],
    timeout: Duration,
) -> (Job, String) {
    let mut all: Vec<String> = Vec::new();
    if let Some(config) = config {
        all.push("-c".into());
        all.push(config.display().to_string());
    }
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let line = format!("{} {}", program.display(), all.join(" "));
    let job = Job::new(program, EnvPolicy::Inherit, timeout).args(all);
    (job, line)
}

impl Postconf {
    /// The command line prefix: `postconf [-c DIR]`.
    fn job(&self, args: &[&str]) -> (Job, String) {
        config_job(
            &self.program,
            self.config_dir.as_deref(),
            args,
            POSTCONF_TIMEOUT,
        )
    }

    fn run(&self, args: &[&str]) -> Result<String, InitError> {
        let (job, line) = self.job(args);
        let failed = |reason: String| InitError::Command {
            command: line.clone(),
            reason,
        };
        let output = job.run().map_err(|e| match e {
            ChildError::Spawn(err) if err.kind() == std::io::ErrorKind::NotFound => {
                failed("not found (is Postfix installed? --postconf PATH names the program)".into())
            }
            other => failed(other.to_string()),
        })?;
        if !output.status.success() {
            let said = String::from_utf8_lossy(&output.stderr).trim().to_owned();
            return Err(failed(format!("{} {said}", output.status)));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// The values of `names`, `$name`s expanded (`postconf -x`).
    pub fn query(&self, names: &[&str]) -> Result<BTreeMap<String, String>, InitError> {
        let mut args = vec!["-x"];
        args.extend_from_slice(names);
        Ok(parse_lines(&self.run(&args)?))
    }

    /// Set `name = value` in main.cf (`postconf -e`).
    pub fn set(&self, name: &str, value: &str) -> Result<(), InitError> {
        let setting = format!("{name}={value}");
        self.run(&["-e", &setting]).map(|_| ())
    }

    /// Read what discovery needs.
    pub fn discover(&self) -> Result<PostfixTls, InitError> {
        let values = self.query(&PARAMETERS)?;
        let get = |name: &str| values.get(name).cloned().unwrap_or_default();
        let config_dir = match (&self.config_dir, get("config_directory")) {
            (Some(dir), _) => dir.clone(),
            (None, dir) if !dir.is_empty() => PathBuf::from(dir),
            (None, _) => PathBuf::from("/etc/postfix"),
        };
        Ok(PostfixTls {
            config_dir,
            myhostname: get("myhostname"),
            mydomain: get("mydomain"),
            files: tls_files(&values),
        })
    }
}

impl PostfixTls {
    /// main.cf.
    pub fn main_cf(&self) -> PathBuf {
        self.config_dir.join("main.cf")
    }
}

/// `name = value` lines (a value may be empty).
fn parse_lines(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// A Postfix list: separated by commas and/or white space.
fn list(value: &str) -> Vec<PathBuf> {
    value
        .split([',', ' ', '\t'])
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .collect()
}

/// The server's files, as Postfix chooses them: `smtpd_tls_chain_files` wins over the legacy
/// parameters when it is set; a legacy key file left empty means the key is in the
/// certificate file.
fn tls_files(values: &BTreeMap<String, String>) -> TlsFiles {
    let get = |name: &str| values.get(name).map(String::as_str).unwrap_or("");
    let chains = list(get("smtpd_tls_chain_files"));
    if !chains.is_empty() {
        return TlsFiles::Chains(chains);
    }
    let mut pairs = Vec::new();
    for (cert, key) in [
        ("smtpd_tls_cert_file", "smtpd_tls_key_file"),
        ("smtpd_tls_eccert_file", "smtpd_tls_eckey_file"),
    ] {
        let cert = get(cert);
        if cert.is_empty() {
            continue;
        }
        let key = match get(key) {
            "" => cert,
            key => key,
        };
        pairs.push((PathBuf::from(cert), PathBuf::from(key)));
    }
    if pairs.is_empty() {
        TlsFiles::None
    } else {
        TlsFiles::Pairs(pairs)
    }
}

/// Whether `path` is where Postfix reads its files in the default layout.
pub fn is_default_dir(dir: &Path) -> bool {
    dir == Path::new("/etc/postfix")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(lines: &str) -> BTreeMap<String, String> {
        parse_lines(lines)
    }

    #[test]
    fn chain_files_win_over_the_legacy_pair() {
        let v = values(
            "smtpd_tls_chain_files = /a/ec.pem, /a/rsa.pem\nsmtpd_tls_cert_file = /c\nsmtpd_tls_key_file = /k\n",
        );
        assert_eq!(
            tls_files(&v),
            TlsFiles::Chains(vec!["/a/ec.pem".into(), "/a/rsa.pem".into()])
        );
    }

    #[test]
    fn snakeoil_pair_and_key_in_the_certificate_file() {
        let v = values(
            "smtpd_tls_chain_files =\nsmtpd_tls_cert_file = /etc/ssl/certs/ssl-cert-snakeoil.pem\nsmtpd_tls_key_file = /etc/ssl/private/ssl-cert-snakeoil.key\nsmtpd_tls_eccert_file = /e.pem\nsmtpd_tls_eckey_file =\n",
        );
        assert_eq!(
            tls_files(&v),
            TlsFiles::Pairs(vec![
                (
                    "/etc/ssl/certs/ssl-cert-snakeoil.pem".into(),
                    "/etc/ssl/private/ssl-cert-snakeoil.key".into()
                ),
                ("/e.pem".into(), "/e.pem".into()),
            ])
        );
        assert_eq!(
            tls_files(&values("smtpd_tls_cert_file =\n")),
            TlsFiles::None
        );
    }
}
