//! certbot's `--deploy-hook`: certbot runs it through `/bin/sh -c` once per renewed lineage,
//! after `live/<name>/` already points at the new key and certificate, with
//!
//! - `RENEWED_LINEAGE`: the live directory, e.g. `/etc/letsencrypt/live/mail.example.com`;
//! - `RENEWED_DOMAINS`: the certificate's names, space-separated, in `-d` order.
//!
//! The request takes `fullchain.pem` (leaf and intermediates) and `privkey.pem`; a lineage
//! without `fullchain.pem` gives `cert.pem` and `chain.pem`. certbot holds no next key of its
//! own: the next key is dane-roll's (`dane-roll rotate` makes certbot use it).

use std::path::PathBuf;

use super::{Client, DeployRequest, Env, Files, HookError, Identity, Origin, find_service};
use crate::config::Config;

/// The variable with the live directory.
pub const RENEWED_LINEAGE: &str = "RENEWED_LINEAGE";
/// The variable with the certificate's names.
pub const RENEWED_DOMAINS: &str = "RENEWED_DOMAINS";

/// What certbot told the hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertbotEnv {
    /// `RENEWED_LINEAGE`.
    pub lineage: PathBuf,
    /// `RENEWED_DOMAINS`, split.
    pub domains: Vec<String>,
}

impl CertbotEnv {
    /// Read certbot's variables.
    pub fn read(env: &Env) -> Result<CertbotEnv, HookError> {
        let lineage = env.path(RENEWED_LINEAGE).ok_or(HookError::MissingVar {
            client: Client::Certbot,
            var: RENEWED_LINEAGE,
            what: "it names the renewed lineage's live directory",
        })?;
        let domains = env
            .text(RENEWED_DOMAINS)
            .map(|d| d.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        Ok(CertbotEnv { lineage, domains })
    }
}

/// The deploy request for certbot's environment.
pub fn request(
    config: &Config,
    env: &Env,
    files: &dyn Files,
    service: Option<&str>,
) -> Result<DeployRequest, HookError> {
    let cb = CertbotEnv::read(env)?;
    let lineage_text = cb.lineage.to_string_lossy();
    let id = Identity::new(service, &lineage_text, &cb.domains);
    let found = find_service(config, Client::Certbot, &id)?;
    let dir = &cb.lineage;
    let hint = format!(
        "certbot writes it into the live directory {} before it runs the deploy hook: is \
         RENEWED_LINEAGE right, and may this user read it?",
        dir.display()
    );
    let key = super::require_file(
        files,
        Client::Certbot,
        dir.join("privkey.pem"),
        "the private key",
        hint.clone(),
    )?;
    let (cert, chain) = super::cert_and_chain(
        files,
        Client::Certbot,
        dir.join("fullchain.pem"),
        (
            dir.join("cert.pem"),
            "the certificate (fullchain.pem or cert.pem)",
        ),
        Some(dir.join("chain.pem")),
        hint,
    )?;
    Ok(DeployRequest {
        service: found.name.clone(),
        cert,
        key,
        chain,
        next_key: None,
        origin: Origin::Certbot {
            lineage: cb.lineage,
        },
    })
}
