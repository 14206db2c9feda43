//! The TOML configuration: its model, its validation, and secrets named in it.
//!
//! Loading goes in two steps, like ripgrep's flags: the file is parsed into a raw serde spec
//! (`raw`, key for key, `deny_unknown_fields`, kebab-case), then checked and turned into the
//! runtime [`Config`] (`build`, one file per section) with defaults filled in. Errors name the
//! file, line and column, the service or provider, and the key. Secrets are never in the file:
//! only a file path or an environment variable name ([`Secret`]); writing one in is an error.
//! Checks of the machine (secrets available, directories present) are separate
//! ([`Config::check_environment`]), for `dane-roll config check`.
//!
//! The keys are documented in docs/CONFIG.md.

mod alerts;
mod build;
mod duration;
mod endpoint;
mod environment;
mod error;
#[cfg(test)]
mod output_tests;
mod provider;
mod raw;
mod resolver;
mod secret;
mod source;
#[cfg(test)]
pub(crate) mod test_toml;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::tlsa::OwnerName;

pub use alerts::{
    Alerts, Channel, CheckSettings, DEFAULT_CERT_WARN_DAYS, DEFAULT_MAX_RECORDS,
    DEFAULT_REPEAT_INTERVAL, DEFAULT_RRSIG_WARN_DAYS, DEFAULT_SENDMAIL, EmailChannel, MailVia,
    WebhookUrl,
};
pub use duration::{format_duration, parse_duration};
pub use endpoint::{DEFAULT_PORT, Endpoint, EndpointId, EndpointIdError, Protocol};
pub use environment::EnvironmentReport;
pub use error::{ConfigError, Location, Problem, Subject, UnknownService};
pub use provider::{
    DEFAULT_POWERDNS_SERVER_ID, PROVIDER_KINDS, Provider, ProviderKind, ServerAddr, Tsig,
};
pub use resolver::{
    DEFAULT_RESOLVER_TIMEOUT, DNS_PORT, RESOLV_CONF, ResolverOrigin, ResolverSettings,
    first_nameserver, parse_socket_addr,
};
pub use secret::{Secret, SecretError, SecretSource, SecretStatus, SecretValue};

/// The configuration format version this build reads.
pub const CONFIG_VERSION: u32 = 1;

/// Where rollover state is kept when `state-dir` is not set.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/dane-roll";

/// The TTL of published TLSA records when a service sets none.
pub const DEFAULT_TTL: u32 = 3600;

/// The advised TTL range for TLSA records; outside it `config check` warns.
pub const ADVISED_TTL: RangeInclusive<u32> = 1800..=3600;

/// The largest TTL DNS allows (RFC 2181 §8).
pub const MAX_TTL: u32 = 2_147_483_647;

/// The command that makes the service read its new certificate, when a service sets none.
pub const DEFAULT_RELOAD: &[&str] = &["postfix", "reload"];

/// The fewest records per owner name a rollover can work with: the current key and the next one.
pub const MIN_MAX_RECORDS: usize = 2;

/// How a service's records cover the next certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
pub enum Scheme {
    /// `3 1 1` of the current key plus `3 1 1` of a pre-generated next key.
    #[serde(rename = "current+next")]
    CurrentNext,
    /// `3 1 1` of the current key plus `2 1 1` of the issuing CA's key(s).
    #[serde(rename = "current+issuer")]
    CurrentIssuer,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::CurrentNext => "current+next",
            Scheme::CurrentIssuer => "current+issuer",
        })
    }
}

/// The key algorithm for generated next keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyType {
    /// RSA, 2048 bits.
    Rsa2048,
    /// RSA, 3072 bits.
    Rsa3072,
    /// RSA, 4096 bits.
    Rsa4096,
    /// ECDSA on P-256.
    Ec256,
    /// ECDSA on P-384.
    Ec384,
    /// Ed25519.
    Ed25519,
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyType::Rsa2048 => "rsa2048",
            KeyType::Rsa3072 => "rsa3072",
            KeyType::Rsa4096 => "rsa4096",
            KeyType::Ec256 => "ec256",
            KeyType::Ec384 => "ec384",
            KeyType::Ed25519 => "ed25519",
        })
    }
}

/// One service: a certificate (one per key algorithm) served on a set of endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Unique name, `[a-z0-9._-]+`.
    pub name: String,
    /// The certbot lineage (name, or directory under /etc/letsencrypt/live), no trailing slash.
    pub lineage: Option<String>,
    /// The ACME certificate names this service's certificate carries (lower case, no final dot).
    pub domains: Vec<String>,
    /// Where the certificate is served; at least one.
    pub endpoints: Vec<Endpoint>,
    /// How the records cover the next certificate.
    pub scheme: Scheme,
    /// The file(s) the service reads its key and chain from; dane-roll installs there.
    pub chain_files: ChainFiles,
    /// `cert-file`, `key-file`, `fullchain-file`: the same key and chain written again as
    /// separate files, for a service that reads them apart (Dovecot `ssl_cert`/`ssl_key`).
    pub split_files: SplitFiles,
    /// The reload commands (`reload`), each program first, run in order.
    pub reload: Vec<Vec<String>>,
    /// The mode and group of the installed key+chain file (`key-mode`, `key-group`; 0600 and
    /// the writer's group unless configured).
    pub key_file: crate::fsafe::FileMode,
    /// The TTL of the TLSA records, seconds.
    pub ttl: u32,
    /// The zone to publish in, when it should not be discovered.
    pub zone: Option<String>,
    /// The name of the provider (a key of [`Config::providers`]).
    pub provider: String,
    /// The algorithm of generated next keys; `None` means the current key's.
    pub key_type: Option<KeyType>,
    /// The most records an owner name may hold.
    pub max_records: usize,
    /// Where the ACME client keeps this service's current certificate (`acme-source`), for
    /// `dane-roll run` to look at when a hook was missed (it wins over the source a hook recorded
    /// and over the `lineage`).
    pub acme_source: Option<AcmeFiles>,
    /// `issuer-ahead-file` (`current+issuer` only): the CA's other intermediates, whose `2 1 1`
    /// records are published ahead of a certificate from them.
    pub issuer_ahead_file: Option<PathBuf>,
}

/// `acme-source`: where an ACME client keeps a service's current key and certificate, for
/// `dane-roll run` to look at when a hook was missed; or `none`, not to look at all.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    tag = "client",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    deny_unknown_fields
)]
pub enum AcmeFiles {
    /// certbot: the live directory (wins over the `lineage` and a recorded source).
    Certbot {
        /// `/etc/letsencrypt/live/<name>` (`privkey.pem`, `fullchain.pem`).
        dir: PathBuf,
    },
    /// acme.sh: its copies in the domain directory (`CERT_KEY_PATH`, `CERT_FULLCHAIN_PATH`).
    #[serde(rename = "acme.sh")]
    AcmeSh {
        /// `~/.acme.sh/<domain>[_ecc]/<domain>.key`.
        key_file: PathBuf,
        /// `~/.acme.sh/<domain>[_ecc]/fullchain.cer`.
        fullchain_file: PathBuf,
    },
    /// dehydrated: the certificate directory `certs/<name>/` (`privkey.pem`, `fullchain.pem`).
    Dehydrated {
        /// The directory.
        dir: PathBuf,
    },
    /// Never look: the certificate is deployed by hand or by another tool.
    None,
}

/// Where a service reads its key and chain from (Postfix `smtpd_tls_chain_files`), which is
/// where dane-roll installs a new certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainFiles {
    /// `chain-file`: one file, for a service with one certificate.
    One(PathBuf),
    /// `chain-files`: one file per key algorithm (`rsa`, `ec`, `ed`), for a service that serves
    /// an RSA and an ECDSA certificate side by side. Each is a key slot with its own records.
    PerAlgorithm(BTreeMap<String, PathBuf>),
}

impl ChainFiles {
    /// The algorithm names `chain-files` accepts (the key slots).
    pub const ALGORITHMS: [&'static str; 3] = ["rsa", "ec", "ed"];

    /// The file for keys of `algorithm` (a slot name): the one file, or that algorithm's.
    pub fn for_algorithm(&self, algorithm: &str) -> Option<&Path> {
        match self {
            ChainFiles::One(path) => Some(path),
            ChainFiles::PerAlgorithm(map) => map.get(algorithm).map(PathBuf::as_path),
        }
    }

    /// Every file, with its algorithm when there is one per algorithm.
    pub fn all(&self) -> Vec<(Option<&str>, &Path)> {
        match self {
            ChainFiles::One(path) => vec![(None, path.as_path())],
            ChainFiles::PerAlgorithm(map) => map
                .iter()
                .map(|(a, p)| (Some(a.as_str()), p.as_path()))
                .collect(),
        }
    }

    /// The configuration key these files came from.
    pub fn key(&self) -> &'static str {
        match self {
            ChainFiles::One(_) => "chain-file",
            ChainFiles::PerAlgorithm(_) => "chain-files",
        }
    }
}

impl fmt::Display for ChainFiles {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChainFiles::One(path) => write!(f, "{}", path.display()),
            ChainFiles::PerAlgorithm(map) => {
                for (i, (algorithm, path)) in map.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{algorithm}: {}", path.display())?;
                }
                Ok(())
            }
        }
    }
}

/// Outputs besides the key+chain file, each optional: written from the same staged key and
/// chain before the reload (a service such as Dovecot reads the key and the certificate apart).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SplitFiles {
    /// `cert-file`: the leaf certificate alone (public, 0644).
    pub cert: Option<PathBuf>,
    /// `key-file`: the private key alone (the service's `key-mode`/`key-group`, 0600 by default).
    pub key: Option<PathBuf>,
    /// `fullchain-file`: the leaf and the intermediates, no key (public, 0644).
    pub fullchain: Option<PathBuf>,
}

impl SplitFiles {
    /// Each configured file with its configuration key.
    pub fn all(&self) -> Vec<(&'static str, &Path)> {
        [
            ("cert-file", &self.cert),
            ("key-file", &self.key),
            ("fullchain-file", &self.fullchain),
        ]
        .into_iter()
        .filter_map(|(k, p)| p.as_deref().map(|p| (k, p)))
        .collect()
    }
}

impl Service {
    /// The reload commands as one line for messages: `postfix reload; doveadm reload`.
    pub fn reload_line(&self) -> String {
        self.reload
            .iter()
            .map(|c| c.join(" "))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The ids (`host:port`) of the endpoints, in endpoint order: what a rollover stores and
    /// probes.
    pub fn endpoint_ids(&self) -> Vec<String> {
        self.endpoints.iter().map(|e| e.id().to_string()).collect()
    }

    /// The distinct TLSA owner names of the endpoints, in endpoint order.
    pub fn owner_names(&self) -> Vec<OwnerName> {
        let mut names: Vec<OwnerName> = Vec::new();
        for name in self.endpoints.iter().map(Endpoint::owner_name) {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        names
    }

    /// Whether this service is the certbot lineage `lineage` (a name, or a directory path as in
    /// `RENEWED_LINEAGE`). A configured name matches the directory's last component; a configured
    /// path must match the whole path.
    pub fn matches_lineage(&self, lineage: &str) -> bool {
        let Some(own) = &self.lineage else {
            return false;
        };
        let given = lineage.trim_end_matches('/');
        if own.contains('/') {
            own == given
        } else {
            given.rsplit('/').next() == Some(own.as_str())
        }
    }

    /// How many of `domains` this service's `domains` holds (case and final dot ignored).
    fn shared_domains(&self, domains: &[String]) -> usize {
        domains
            .iter()
            .map(|d| d.trim_end_matches('.').to_ascii_lowercase())
            .filter(|d| self.domains.contains(d))
            .count()
    }
}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The file it came from, as shown in messages.
    pub file: String,
    /// The format version (always [`CONFIG_VERSION`] once loaded).
    pub version: u32,
    /// Where rollover state is kept.
    pub state_dir: PathBuf,
    /// The validating resolver.
    pub resolver: ResolverSettings,
    /// The services, in file order.
    pub services: Vec<Service>,
    /// The providers, by name.
    pub providers: BTreeMap<String, Provider>,
    /// Alert channels.
    pub alerts: Alerts,
    /// Monitoring thresholds.
    pub check: CheckSettings,
    /// Warnings found while loading (a TTL outside the advised range, an unused provider, …).
    pub warnings: Vec<Problem>,
    /// The text, kept to locate problems found later (it holds no secret: those are refused).
    text: String,
}

impl Config {
    /// Load and validate the file at `path`. Relative paths in it are taken from its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        if fs::metadata(path).is_err_and(|e| e.kind() == io::ErrorKind::NotFound) {
            return Err(ConfigError::NotFound {
                path: path.to_owned(),
            });
        }
        // Before a byte is read: a file another user can change must not steer root.
        crate::fsafe::check_trusted(path).map_err(ConfigError::Untrusted)?;
        // A FIFO or a device is refused at once instead of hanging the read.
        let bytes = crate::fsafe::read_regular(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound => ConfigError::NotFound {
                path: path.to_owned(),
            },
            _ => ConfigError::Read {
                path: path.to_owned(),
                source,
            },
        })?;
        let name = path.display().to_string();
        let text = match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(err) => {
                let valid = err.utf8_error().valid_up_to();
                let line = err.as_bytes()[..valid]
                    .iter()
                    .filter(|b| **b == b'\n')
                    .count()
                    + 1;
                return Err(ConfigError::NotUtf8 { file: name, line });
            }
        };
        let base = path.parent().filter(|p| !p.as_os_str().is_empty());
        Config::parse(&text, &name, base, system_resolver)
    }

    /// Load and validate, then apply `--state-dir` when given.
    pub fn load_with_state_dir(
        path: &Path,
        state_dir: Option<&Path>,
    ) -> Result<Config, ConfigError> {
        let mut config = Config::load(path)?;
        if let Some(dir) = state_dir {
            config.state_dir = dir.to_owned();
        }
        Ok(config)
    }

    /// Validate configuration text; `name` is shown in messages. Relative paths stay relative.
    pub fn from_str_named(text: &str, name: &str) -> Result<Config, ConfigError> {
        Config::parse(text, name, None, system_resolver)
    }

    /// The two steps: raw spec, then validated settings. `system` gives the resolver when none is set.
    fn parse(
        text: &str,
        name: &str,
        base_dir: Option<&Path>,
        system: impl FnOnce() -> Option<SocketAddr>,
    ) -> Result<Config, ConfigError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let src = source::Source::parse(name, text).map_err(ConfigError::Syntax)?;
        if is_blank(text) {
            return Err(ConfigError::Empty {
                file: name.to_owned(),
            });
        }
        let secrets = src.literal_secrets();
        if !secrets.is_empty() {
            return Err(ConfigError::Invalid { problems: secrets });
        }
        let raw: raw::RawConfig = toml::from_str(text).map_err(|err| {
            ConfigError::Schema(Box::new(src.schema_problem(err.span(), err.message())))
        })?;
        let config = build::build(raw, &src, base_dir, system)
            .map_err(|problems| ConfigError::Invalid { problems })?;
        // From now on no child of this process sees a variable that holds one of its secrets.
        dane_roll_providers::child::hide_env(config.secret_env_names());
        Ok(config)
    }

    /// The environment variables that hold secrets of this configuration (its `*-env` keys).
    pub fn secret_env_names(&self) -> Vec<String> {
        let providers = self.providers.values().flat_map(|p| p.kind.secrets());
        let channels = self.alerts.channels.values().flat_map(|c| c.secrets());
        providers
            .chain(channels)
            .filter_map(|(_, secret)| match secret.source() {
                SecretSource::Env(name) => Some(name.clone()),
                SecretSource::File(_) => None,
            })
            .collect()
    }

    /// The service called `name`.
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }

    /// The service called `name`, or the error that names the file and the services it has.
    pub fn service_or_err(&self, name: &str) -> Result<&Service, UnknownService> {
        self.service(name).ok_or_else(|| UnknownService {
            name: name.to_owned(),
            file: self.file.clone(),
            known: self.services.iter().map(|s| s.name.clone()).collect(),
        })
    }

    /// The service for a certbot lineage (a name or a `RENEWED_LINEAGE` directory).
    pub fn service_for_lineage(&self, lineage: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.matches_lineage(lineage))
    }

    /// The services whose `domains` share at least one name with `domains`, most shared first.
    pub fn services_for_domains(&self, domains: &[String]) -> Vec<&Service> {
        let mut found: Vec<(usize, &Service)> = self
            .services
            .iter()
            .map(|s| (s.shared_domains(domains), s))
            .filter(|(n, _)| *n > 0)
            .collect();
        found.sort_by_key(|(n, _)| std::cmp::Reverse(*n));
        found.into_iter().map(|(_, s)| s).collect()
    }

    /// The one service that shares the most names with `domains` (an ACME certificate's names);
    /// `None` when no service shares any, or when two share equally many (ambiguous: use the lineage
    /// or `--service`).
    pub fn service_for_domains(&self, domains: &[String]) -> Option<&Service> {
        let best: Vec<(usize, &Service)> = self
            .services
            .iter()
            .map(|s| (s.shared_domains(domains), s))
            .filter(|(n, _)| *n > 0)
            .collect();
        let top = best.iter().map(|(n, _)| *n).max()?;
        let mut at_top = best.into_iter().filter(|(n, _)| *n == top);
        match (at_top.next(), at_top.next()) {
            (Some((_, service)), None) => Some(service),
            _ => None,
        }
    }

    /// The provider called `name`.
    pub fn provider(&self, name: &str) -> Option<&Provider> {
        self.providers.get(name)
    }

    /// The provider a service publishes through.
    pub fn provider_for(&self, service: &Service) -> Option<&Provider> {
        self.providers.get(&service.provider)
    }

    /// Check the machine: secrets available (never read into output), directories present, programs
    /// found. Loading does not do this; `config check` does.
    pub fn check_environment(&self) -> EnvironmentReport {
        environment::check(self)
    }
}

/// Whether a TOML text holds nothing but white space and comments.
fn is_blank(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|line| line.is_empty() || line.starts_with('#'))
}

/// The first nameserver of /etc/resolv.conf.
fn system_resolver() -> Option<SocketAddr> {
    fs::read_to_string(RESOLV_CONF)
        .ok()
        .and_then(|text| first_nameserver(&text))
}
