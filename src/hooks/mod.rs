//! ACME client hooks: what certbot, acme.sh and dehydrated hand their hook, turned into one
//! [`DeployRequest`] for the rollover driver.
//!
//! - [`certbot`]: the `--deploy-hook` environment (`RENEWED_LINEAGE`, `RENEWED_DOMAINS`);
//! - [`acme_sh`]: the `--reloadcmd` environment (`CERT_KEY_PATH`, `CERT_FULLCHAIN_PATH`,
//!   `Le_Domain`, and the pre-generated `<key>.next` of `--always-force-new-domain-key`);
//! - [`dehydrated`]: the hook's arguments (`deploy_cert DOMAIN KEY CERT FULLCHAIN CHAIN TS`, the
//!   native next key `privkey.roll.pem`); every other event is ignored.
//! - [`source`]: where each client keeps a service's current certificate (recorded by the hook,
//!   or configured: `acme-source`, `lineage`), replayed by `dane-roll run` when a hook was missed.
//!
//! Everything here is pure: the environment is a map ([`Env`]), files are only looked at through
//! [`Files`], and the configuration is given. `dane-roll hook …` ([`crate::cmd`]) reads the
//! process environment and the disk, calls these, and hands the request to the driver.
//!
//! A service is found, in this order: `--service NAME`; the certbot lineage (the service's
//! `lineage`); the certificate's names (the service's `domains`, the one sharing the most).

pub mod acme_sh;
pub mod certbot;
pub mod dehydrated;
pub mod source;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::{Path, PathBuf};

use crate::config::{Config, Service};
pub use crate::rollover::{DeployRequest, Origin};

/// An ACME client dane-roll has a hook for (and whose files `init` reads).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// certbot, `--deploy-hook`.
    Certbot,
    /// acme.sh, `--reloadcmd`.
    AcmeSh,
    /// dehydrated, `HOOK=`.
    Dehydrated,
}

impl Client {
    /// Its name, as `dane-roll hook` and the configuration's `acme-source` write it.
    pub fn name(self) -> &'static str {
        match self {
            Client::Certbot => "certbot",
            Client::AcmeSh => "acme.sh",
            Client::Dehydrated => "dehydrated",
        }
    }

    /// The subcommand of `dane-roll hook` for this client.
    pub fn hook_command(self) -> &'static str {
        match self {
            Client::Certbot => "dane-roll hook certbot",
            Client::AcmeSh => "dane-roll hook acme.sh",
            Client::Dehydrated => "dane-roll hook dehydrated",
        }
    }

    /// How the client is told to run the hook, for messages.
    pub fn how_to_install(self) -> &'static str {
        match self {
            Client::Certbot => "certbot renew --deploy-hook \"dane-roll hook certbot\"",
            Client::AcmeSh => {
                "acme.sh --install-cert -d DOMAIN --reloadcmd \"dane-roll hook acme.sh\""
            }
            Client::Dehydrated => {
                "HOOK=/usr/local/bin/dane-roll-dehydrated-hook in dehydrated's config"
            }
        }
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The environment a hook runs in: variable names to values (values may be any bytes, as paths
/// may be). An empty value counts as unset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Env(BTreeMap<String, OsString>);

impl Env {
    /// The environment of this process (variables with non-UTF-8 names are left out).
    pub fn from_process() -> Env {
        Env(std::env::vars_os()
            .filter_map(|(k, v)| k.into_string().ok().map(|k| (k, v)))
            .collect())
    }

    /// An environment from pairs (tests, or a recorded hook run).
    pub fn from_pairs<K: Into<String>, V: Into<OsString>>(
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> Env {
        Env(pairs
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect())
    }

    /// The value of `name`, unless unset or empty.
    pub fn get(&self, name: &str) -> Option<&OsStr> {
        self.0
            .get(name)
            .map(OsString::as_os_str)
            .filter(|v| !v.is_empty())
    }

    /// Whether `name` is present at all (even empty).
    pub fn is_present(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// The value of `name` as a path.
    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.get(name).map(PathBuf::from)
    }

    /// The value of `name` as text (lossy: only used for domain names and flags).
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name).map(|v| v.to_string_lossy().into_owned())
    }
}

/// What a file looks like to a hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileState {
    /// Not there (or not a file).
    Missing,
    /// There, but holds nothing but white space (acme.sh blanks `<key>.next` while it renews).
    Empty,
    /// There, with content.
    Present,
}

/// How the hooks look at files: the disk ([`Disk`]) or a fake in tests.
pub trait Files {
    /// The state of the file at `path` (symbolic links followed).
    fn state(&self, path: &Path) -> FileState;

    /// Whether `path` is a file with content.
    fn present(&self, path: &Path) -> bool {
        self.state(path) == FileState::Present
    }
}

/// The real file system. A key file is at most a few kilobytes; a larger file counts as present
/// without being read in full.
#[derive(Debug, Clone, Copy, Default)]
pub struct Disk;

impl Files for Disk {
    fn state(&self, path: &Path) -> FileState {
        use std::io::Read;
        // open_regular: a FIFO planted at a key path must not hang the hook.
        let Ok(file) = crate::fsafe::open_regular(path) else {
            return FileState::Missing;
        };
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return FileState::Missing;
        }
        let mut head = Vec::new();
        if file.take(64 * 1024).read_to_end(&mut head).is_err() {
            // Unreadable (permissions): let the driver say so when it opens it.
            return FileState::Present;
        }
        if head.iter().all(u8::is_ascii_whitespace) {
            FileState::Empty
        } else {
            FileState::Present
        }
    }
}

/// Why a hook could not make a deploy request. Each says what to configure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HookError {
    /// A variable the client always sets is missing: the hook was not run by the client.
    #[error(
        "{var} is not set: `{command}` reads it from {client}, which sets it when it runs the \
         hook ({install}); {what}. To deploy a certificate by hand, use `dane-roll deploy \
         --service NAME --cert FILE --key FILE`",
        command = client.hook_command(), install = client.how_to_install()
    )]
    MissingVar {
        /// The client.
        client: Client,
        /// The variable.
        var: &'static str,
        /// What the variable holds.
        what: &'static str,
    },
    /// Arguments that are not what the client passes.
    #[error(
        "{client} hook: {problem}; dehydrated calls its hook as `deploy_cert DOMAIN KEYFILE \
             CERTFILE FULLCHAINFILE CHAINFILE TIMESTAMP`"
    )]
    BadArgs {
        /// The client.
        client: Client,
        /// What is wrong.
        problem: String,
    },
    /// A file the client should have written is not there.
    #[error("{client} hook: {what} {} is missing or empty; {hint}", path.display())]
    MissingFile {
        /// The client.
        client: Client,
        /// What it should hold ("the private key").
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// What to check.
        hint: String,
    },
    /// `--service NAME` names no configured service.
    #[error(transparent)]
    UnknownService(#[from] crate::config::UnknownService),
    /// No configured service is this certificate's.
    #[error(
        "{client} hook: no service in {config} is for {certificate}; add `{fix}` to the \
         [[service]] that serves this certificate (or pass --service NAME to the hook). The \
         certificate is issued, but no TLSA record was published for it and it was not installed"
    )]
    NoService {
        /// The client.
        client: Client,
        /// The certificate as the client named it (lineage, domains).
        certificate: String,
        /// The configuration file.
        config: String,
        /// The line to add, e.g. `lineage = "mail.example.com"`.
        fix: String,
    },
    /// Several services share this certificate's names equally.
    #[error(
        "{client} hook: services {} in {config} all match {certificate} equally; set `{fix}` in \
         the right one (or pass --service NAME to the hook)",
        list(services)
    )]
    Ambiguous {
        /// The client.
        client: Client,
        /// The certificate as the client named it.
        certificate: String,
        /// The services that match.
        services: Vec<String>,
        /// The configuration file.
        config: String,
        /// The key to set.
        fix: String,
    },
}

fn list(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_owned()
    } else {
        names.join(", ")
    }
}

/// Check that the variables `client` always sets are there (before anything else is read: without
/// them the hook was not run by the client).
pub fn check_env(client: Client, env: &Env) -> Result<(), HookError> {
    match client {
        Client::Certbot => certbot::CertbotEnv::read(env).map(drop),
        Client::AcmeSh => acme_sh::check_env(env),
        Client::Dehydrated => Ok(()),
    }
}

/// How a hook identifies its certificate, to find the service.
#[derive(Debug, Clone, Default)]
pub struct Identity<'a> {
    /// `--service NAME`, when given.
    pub service: Option<&'a str>,
    /// A certbot lineage (name or live directory) or a certificate directory.
    pub lineage: Option<&'a str>,
    /// The certificate's names.
    pub domains: &'a [String],
}

impl<'a> Identity<'a> {
    /// What a hook knows of its certificate: `--service`, the lineage (or certificate
    /// directory) and the names.
    pub fn new(service: Option<&'a str>, lineage: &'a str, domains: &'a [String]) -> Self {
        Identity {
            service,
            lineage: Some(lineage),
            domains,
        }
    }
}

/// Find the configured service for a certificate: by `--service`, by lineage, then by domains.
pub fn find_service<'c>(
    config: &'c Config,
    client: Client,
    id: &Identity<'_>,
) -> Result<&'c Service, HookError> {
    if let Some(name) = id.service {
        return Ok(config.service_or_err(name)?);
    }
    if let Some(lineage) = id.lineage
        && let Some(service) = config.service_for_lineage(lineage)
    {
        return Ok(service);
    }
    if let Some(service) = config.service_for_domains(id.domains) {
        return Ok(service);
    }
    let certificate = describe(id);
    let lineage_fix = id.lineage.map(|l| {
        let name = l.trim_end_matches('/').rsplit('/').next().unwrap_or(l);
        format!("lineage = \"{name}\"")
    });
    let domains_fix = format!(
        "domains = [{}]",
        id.domains
            .iter()
            .map(|d| format!("\"{}\"", d.trim_end_matches('.').to_ascii_lowercase()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let tied = config.services_for_domains(id.domains);
    if tied.len() > 1 {
        return Err(HookError::Ambiguous {
            client,
            certificate,
            services: tied.iter().map(|s| s.name.clone()).collect(),
            config: config.file.clone(),
            fix: lineage_fix.unwrap_or_else(|| "lineage".to_owned()),
        });
    }
    let fix = match (client, lineage_fix) {
        (Client::Certbot, Some(fix)) => fix,
        (_, fix) if id.domains.is_empty() => fix.unwrap_or(domains_fix),
        _ => domains_fix,
    };
    Err(HookError::NoService {
        client,
        certificate,
        config: config.file.clone(),
        fix,
    })
}

/// The certificate as the client named it, for messages.
fn describe(id: &Identity<'_>) -> String {
    let domains = if id.domains.is_empty() {
        "no names".to_owned()
    } else {
        id.domains.join(", ")
    };
    match id.lineage {
        Some(lineage) => format!("lineage {lineage} ({domains})"),
        None => format!("the certificate for {domains}"),
    }
}

/// `path` when it is a file with content, else a [`HookError::MissingFile`].
/// The certificate files of a hook: `fullchain` when present; else `cert` (required; `what`
/// names it in the error) with `chain` when present.
fn cert_and_chain(
    files: &dyn Files,
    client: Client,
    fullchain: PathBuf,
    (cert, what): (PathBuf, &'static str),
    chain: Option<PathBuf>,
    hint: impl Into<String>,
) -> Result<(PathBuf, Option<PathBuf>), HookError> {
    if files.present(&fullchain) {
        return Ok((fullchain, None));
    }
    let cert = require_file(files, client, cert, what, hint)?;
    Ok((cert, chain.filter(|c| files.present(c))))
}

fn require_file(
    files: &dyn Files,
    client: Client,
    path: PathBuf,
    what: &'static str,
    hint: impl Into<String>,
) -> Result<PathBuf, HookError> {
    if files.present(&path) {
        Ok(path)
    } else {
        Err(HookError::MissingFile {
            client,
            what,
            path,
            hint: hint.into(),
        })
    }
}
