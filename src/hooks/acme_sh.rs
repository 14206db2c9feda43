//! acme.sh's `--reloadcmd`: acme.sh runs it (`cd $DOMAIN_PATH && eval "$reloadcmd"`) after it
//! copied the certificate to the `--install-cert` destinations, exporting (acme.sh `_installcert`,
//! checked against acmesh-official/acme.sh master):
//!
//! - `CERT_PATH`, `CERT_KEY_PATH`, `CA_CERT_PATH`, `CERT_FULLCHAIN_PATH`: acme.sh's own copies in
//!   its domain directory (`~/.acme.sh/<domain>[_ecc]/<domain>.cer`, `.key`, `ca.cer`,
//!   `fullchain.cer`), not the `--install-cert` destinations;
//! - `Le_Domain`: the certificate's main domain;
//! - `Le_ForceNewDomainKey` (`1` with `--always-force-new-domain-key`) and `Le_Next_Domain_Key`
//!   (`$CERT_KEY_PATH.next`), in acme.sh versions that pre-generate the next key.
//!
//! With `--always-force-new-domain-key`, acme.sh keeps the next key in `<key>.next` and uses it at
//! the next renewal whatever DNS says: when it is there, it becomes the request's `next_key`, so
//! its record is published at once. Older acme.sh versions export neither `Le_*Key` variable; the
//! hook then looks for `$CERT_KEY_PATH.next` itself. When `Le_ForceNewDomainKey` is exported and
//! is not `1`, a leftover `.next` file is not used by acme.sh and is ignored here too.

use std::ffi::OsString;
use std::path::PathBuf;

use super::{Client, DeployRequest, Env, Files, HookError, Identity, Origin, find_service};
use crate::config::Config;

/// acme.sh's copy of the private key.
pub const CERT_KEY_PATH: &str = "CERT_KEY_PATH";
/// acme.sh's copy of the leaf certificate.
pub const CERT_PATH: &str = "CERT_PATH";
/// acme.sh's copy of the intermediates.
pub const CA_CERT_PATH: &str = "CA_CERT_PATH";
/// acme.sh's copy of leaf + intermediates.
pub const CERT_FULLCHAIN_PATH: &str = "CERT_FULLCHAIN_PATH";
/// The main domain.
pub const LE_DOMAIN: &str = "Le_Domain";
/// `1` when `--always-force-new-domain-key` is on.
pub const LE_FORCE_NEW_DOMAIN_KEY: &str = "Le_ForceNewDomainKey";
/// Where the pre-generated next key is (`$CERT_KEY_PATH.next`).
pub const LE_NEXT_DOMAIN_KEY: &str = "Le_Next_Domain_Key";

/// The suffix acme.sh gives the pre-generated next key.
pub const NEXT_SUFFIX: &str = ".next";

/// Where acme.sh keeps the next key for `key`: `<key>.next`.
pub fn next_key_path(key: &std::path::Path) -> PathBuf {
    let mut name: OsString = key.as_os_str().to_owned();
    name.push(NEXT_SUFFIX);
    PathBuf::from(name)
}

/// The deploy request for acme.sh's reloadcmd environment.
pub fn request(
    config: &Config,
    env: &Env,
    files: &dyn Files,
    service: Option<&str>,
) -> Result<DeployRequest, HookError> {
    check_env(env)?;
    let missing = |var: &'static str, what: &'static str| HookError::MissingVar {
        client: Client::AcmeSh,
        var,
        what,
    };
    let (Some(domain), Some(key_path)) = (env.text(LE_DOMAIN), env.path(CERT_KEY_PATH)) else {
        return Err(missing(LE_DOMAIN, "it names the certificate's main domain"));
    };
    let domains = [domain.clone()];
    let id = Identity::new(service, &domain, &domains);
    let found = find_service(config, Client::AcmeSh, &id)?;
    let hint = "acme.sh writes it before it runs the reloadcmd; run the hook from acme.sh \
                (--reloadcmd), as the user that runs acme.sh";
    let key = super::require_file(files, Client::AcmeSh, key_path, "the private key", hint)?;
    let fullchain = env.path(CERT_FULLCHAIN_PATH);
    let (cert, chain) = match fullchain.clone().filter(|p| files.present(p)) {
        Some(fullchain) => (fullchain, None),
        None => {
            let cert = match (env.path(CERT_PATH), fullchain) {
                (Some(cert), _) => cert,
                // Set, but to nothing usable, and no CERT_PATH to fall back on: name the file.
                (None, Some(fullchain)) => {
                    return Err(super::require_file(
                        files,
                        Client::AcmeSh,
                        fullchain,
                        "the certificate and its chain (CERT_FULLCHAIN_PATH)",
                        hint,
                    )
                    .err()
                    .unwrap_or_else(|| {
                        missing(CERT_PATH, "it names acme.sh's copy of the certificate")
                    }));
                }
                (None, None) => {
                    return Err(missing(
                        CERT_FULLCHAIN_PATH,
                        "it names acme.sh's copy of the certificate and its chain",
                    ));
                }
            };
            let cert = super::require_file(files, Client::AcmeSh, cert, "the certificate", hint)?;
            let chain = env.path(CA_CERT_PATH).filter(|p| files.present(p));
            (cert, chain)
        }
    };
    let next_key = next_key(env, files, &key);
    Ok(DeployRequest {
        service: found.name.clone(),
        cert,
        key,
        chain,
        next_key,
        origin: Origin::AcmeSh { domain },
    })
}

/// Check that acme.sh's `Le_Domain` and `CERT_KEY_PATH` are set.
pub fn check_env(env: &Env) -> Result<(), HookError> {
    let missing = |var: &'static str, what: &'static str| HookError::MissingVar {
        client: Client::AcmeSh,
        var,
        what,
    };
    if env.get(LE_DOMAIN).is_none() {
        return Err(missing(LE_DOMAIN, "it names the certificate's main domain"));
    }
    if env.get(CERT_KEY_PATH).is_none() {
        return Err(missing(
            CERT_KEY_PATH,
            "it names acme.sh's copy of the private key",
        ));
    }
    Ok(())
}

/// The pre-generated next key, when acme.sh has one in use.
fn next_key(env: &Env, files: &dyn Files, key: &std::path::Path) -> Option<PathBuf> {
    if env.is_present(LE_FORCE_NEW_DOMAIN_KEY)
        && env.text(LE_FORCE_NEW_DOMAIN_KEY).as_deref() != Some("1")
    {
        return None;
    }
    let path = env
        .path(LE_NEXT_DOMAIN_KEY)
        .unwrap_or_else(|| next_key_path(key));
    files.present(&path).then_some(path)
}
