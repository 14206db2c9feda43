//! Where an ACME client keeps a service's current certificate (the service's *source*), so that
//! `dane-roll run` can look there itself: the hook is a hint, the timer reconciles. Under cron a
//! hook can fail before it reads anything (no configuration in a bare environment) while the
//! client exits 0; the certificate it issued must not be lost that way.
//!
//! A source is the hook's own input, kept: certbot's lineage directory (`RENEWED_LINEAGE`),
//! acme.sh's path variables (`CERT_KEY_PATH`, `CERT_FULLCHAIN_PATH`, …), dehydrated's
//! `deploy_cert` arguments. A hook records it in the store (`acme_sources`) each time it hands a
//! certificate over. The service's `acme-source` (a certbot live directory, acme.sh's files,
//! dehydrated's directory, or `none`: never look) wins over the recorded source; the recorded source wins over the certbot `lineage` (a name is under
//! `/etc/letsencrypt/live/`), which is mostly how hooks find the service and may not say where
//! certbot's configuration directory is. [`AcmeSource::request`] replays it through the same hook code
//! ([`super::certbot::request`], [`super::acme_sh::request`], [`super::dehydrated::request`]), so
//! the request `run` makes is the one the hook would have made. Paths and names only: never key
//! material.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::{Client, DeployRequest, Env, Files, HookError, acme_sh, certbot, dehydrated};
use crate::config::{AcmeFiles, Config, Service};

/// The acme.sh variables a source keeps (the ones its hook reads).
const ACME_SH_VARS: [&str; 7] = [
    acme_sh::LE_DOMAIN,
    acme_sh::CERT_PATH,
    acme_sh::CERT_KEY_PATH,
    acme_sh::CA_CERT_PATH,
    acme_sh::CERT_FULLCHAIN_PATH,
    acme_sh::LE_FORCE_NEW_DOMAIN_KEY,
    acme_sh::LE_NEXT_DOMAIN_KEY,
];

/// Where an ACME client keeps a service's current certificate: the hook's input, kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "client", rename_all = "kebab-case", deny_unknown_fields)]
pub enum AcmeSource {
    /// certbot: the live directory and the certificate's names.
    Certbot {
        /// `RENEWED_LINEAGE`.
        lineage: PathBuf,
        /// `RENEWED_DOMAINS`, split.
        #[serde(default)]
        domains: Vec<String>,
    },
    /// acme.sh: the variables its reloadcmd gets (paths into its domain directory).
    #[serde(rename = "acme.sh")]
    AcmeSh {
        /// Name to value, only the ones the hook reads.
        vars: BTreeMap<String, String>,
    },
    /// dehydrated: `deploy_cert DOMAIN KEYFILE CERTFILE FULLCHAINFILE CHAINFILE` (the files are
    /// the links in `certs/<name>/`; the timestamp is left out).
    Dehydrated {
        /// The arguments, `deploy_cert` first.
        args: Vec<String>,
    },
}

impl AcmeSource {
    /// The source a certbot hook saw.
    pub fn from_certbot(env: &Env) -> Option<AcmeSource> {
        let cb = certbot::CertbotEnv::read(env).ok()?;
        cb.lineage.to_str()?;
        Some(AcmeSource::Certbot {
            lineage: cb.lineage,
            domains: cb.domains,
        })
    }

    /// The source an acme.sh reloadcmd saw (`None` when a value is not UTF-8).
    pub fn from_acme_sh(env: &Env) -> Option<AcmeSource> {
        let mut vars = BTreeMap::new();
        for name in ACME_SH_VARS {
            if let Some(value) = env.get(name) {
                vars.insert(name.to_owned(), value.to_str()?.to_owned());
            }
        }
        Some(AcmeSource::AcmeSh { vars })
    }

    /// The source a dehydrated `deploy_cert` call saw (`None` for another event or a non-UTF-8
    /// argument).
    pub fn from_dehydrated(args: &[OsString]) -> Option<AcmeSource> {
        if !dehydrated::is_deploy(args) {
            return None;
        }
        let args = args
            .iter()
            .take(6)
            .map(|a| a.to_str().map(str::to_owned))
            .collect::<Option<Vec<String>>>()?;
        Some(AcmeSource::Dehydrated { args })
    }

    /// The source `service`'s `acme-source` names: it wins over a recorded one. `None` when
    /// there is no `acme-source`; `Some(None)` when it is `none` (never look).
    pub fn from_config(service: &Service) -> Option<Option<AcmeSource>> {
        Some(Some(match service.acme_source.as_ref()? {
            AcmeFiles::None => return Some(None),
            AcmeFiles::Certbot { dir } => AcmeSource::Certbot {
                lineage: dir.clone(),
                domains: service.domains.clone(),
            },
            AcmeFiles::AcmeSh {
                key_file: key,
                fullchain_file: fullchain,
            } => {
                // acme.sh names the key `<domain>.key`; its hook needs the domain.
                let domain = key
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .or_else(|| service.domains.first().map(String::as_str))
                    .unwrap_or(&service.name);
                let mut vars = BTreeMap::new();
                vars.insert(acme_sh::LE_DOMAIN.to_owned(), domain.to_owned());
                vars.insert(
                    acme_sh::CERT_KEY_PATH.to_owned(),
                    key.to_string_lossy().into_owned(),
                );
                vars.insert(
                    acme_sh::CERT_FULLCHAIN_PATH.to_owned(),
                    fullchain.to_string_lossy().into_owned(),
                );
                AcmeSource::AcmeSh { vars }
            }
            AcmeFiles::Dehydrated { dir } => {
                let file = |name: &str| dir.join(name).to_string_lossy().into_owned();
                let domain = dir.file_name().map_or_else(
                    || service.name.clone(),
                    |n| n.to_string_lossy().into_owned(),
                );
                AcmeSource::Dehydrated {
                    args: vec![
                        dehydrated::DEPLOY_CERT.to_owned(),
                        domain,
                        file("privkey.pem"),
                        file("cert.pem"),
                        file("fullchain.pem"),
                        file("chain.pem"),
                    ],
                }
            }
        }))
    }

    /// The source of `service` before any hook recorded one: its certbot `lineage` (a
    /// directory as given, a name under `/etc/letsencrypt/live/`).
    pub fn from_lineage(service: &Service) -> Option<AcmeSource> {
        let lineage = service.lineage.as_deref()?;
        let config_dir = std::path::Path::new(crate::rotate::DEFAULT_CERTBOT_CONFIG_DIR);
        Some(AcmeSource::Certbot {
            lineage: crate::rotate::live_dir(lineage, config_dir),
            domains: service.domains.clone(),
        })
    }

    /// The ACME client.
    pub fn client(&self) -> Client {
        match self {
            AcmeSource::Certbot { .. } => Client::Certbot,
            AcmeSource::AcmeSh { .. } => Client::AcmeSh,
            AcmeSource::Dehydrated { .. } => Client::Dehydrated,
        }
    }

    /// Where the certificate is, for messages: the lineage, acme.sh's key or dehydrated's key.
    pub fn location(&self) -> String {
        match self {
            AcmeSource::Certbot { lineage, .. } => lineage.display().to_string(),
            AcmeSource::AcmeSh { vars } => vars
                .get(acme_sh::CERT_FULLCHAIN_PATH)
                .or_else(|| vars.get(acme_sh::CERT_KEY_PATH))
                .cloned()
                .unwrap_or_else(|| "(no CERT_KEY_PATH)".to_owned()),
            AcmeSource::Dehydrated { args } => args
                .get(2)
                .and_then(|key| std::path::Path::new(key).parent())
                .map_or_else(|| "(no KEYFILE)".to_owned(), |d| d.display().to_string()),
        }
    }

    /// The source as stored (JSON).
    pub fn to_json(&self) -> String {
        // A map of strings and lists of strings always serializes.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A stored source.
    pub fn from_json(text: &str) -> Result<AcmeSource, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The deploy request the hook would make now for `service` from this source (the same
    /// code as the hook's, with `--service`). Looks at the files only through `files`.
    pub fn request(
        &self,
        config: &Config,
        service: &str,
        files: &dyn Files,
    ) -> Result<DeployRequest, HookError> {
        match self {
            AcmeSource::Certbot { lineage, domains } => {
                let env = Env::from_pairs([
                    (certbot::RENEWED_LINEAGE, lineage.as_os_str().to_owned()),
                    (certbot::RENEWED_DOMAINS, OsString::from(domains.join(" "))),
                ]);
                certbot::request(config, &env, files, Some(service))
            }
            AcmeSource::AcmeSh { vars } => {
                let env = Env::from_pairs(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
                acme_sh::request(config, &env, files, Some(service))
            }
            AcmeSource::Dehydrated { args } => {
                let args: Vec<OsString> = args.iter().map(OsString::from).collect();
                match dehydrated::request(config, &args, files, Some(service))? {
                    dehydrated::Event::Deploy(request) => Ok(request),
                    dehydrated::Event::Ignore { event } => Err(HookError::BadArgs {
                        client: Client::Dehydrated,
                        problem: format!("the recorded event is {event:?}, not deploy_cert"),
                    }),
                }
            }
        }
    }
}
