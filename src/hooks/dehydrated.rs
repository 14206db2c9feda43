//! dehydrated's hook: dehydrated calls its `HOOK` script with an event name and its arguments,
//! and aborts on a non-zero exit. Only one event concerns dane-roll:
//!
//! ```text
//! deploy_cert DOMAIN KEYFILE CERTFILE FULLCHAINFILE CHAINFILE TIMESTAMP
//! ```
//!
//! run after `certs/<name>/` points at the new files. Every other event (`deploy_challenge`,
//! `clean_challenge`, `sync_cert`, `deploy_ocsp`, `unchanged_cert`, `invalid_challenge`,
//! `request_failure`, `generate_csr`, `startup_hook`, `exit_hook`, and the ones later versions
//! add) is ignored: the hook prints nothing (dehydrated reads `generate_csr`'s output as a CSR)
//! and exits 0.
//!
//! With `PRIVATE_KEY_ROLLOVER=yes`, dehydrated keeps the key for the next renewal in
//! `privkey.roll.pem` beside `privkey.pem` and uses it as-is: a native next key, published at
//! once as the request's `next_key`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::{Client, DeployRequest, Files, HookError, Identity, Origin, find_service};
use crate::config::Config;

/// The event that deploys a certificate.
pub const DEPLOY_CERT: &str = "deploy_cert";

/// dehydrated's next key, in the certificate directory.
pub const ROLL_KEY: &str = "privkey.roll.pem";

/// What a dehydrated hook call asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `deploy_cert`: a new certificate to roll to.
    Deploy(DeployRequest),
    /// Any other event: nothing to do.
    Ignore {
        /// The event's name (empty when none was given).
        event: String,
    },
}

/// The event name of a hook call (first argument), without reading the configuration.
pub fn event_name(args: &[OsString]) -> String {
    args.first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Whether a hook call concerns dane-roll (it is `deploy_cert`).
pub fn is_deploy(args: &[OsString]) -> bool {
    event_name(args) == DEPLOY_CERT
}

/// Turn a hook call into an [`Event`].
pub fn request(
    config: &Config,
    args: &[OsString],
    files: &dyn Files,
    service: Option<&str>,
) -> Result<Event, HookError> {
    let event = event_name(args);
    if event != DEPLOY_CERT {
        return Ok(Event::Ignore { event });
    }
    // deploy_cert DOMAIN KEYFILE CERTFILE FULLCHAINFILE CHAINFILE [TIMESTAMP]
    let rest = &args[1..];
    if rest.len() < 4 {
        return Err(HookError::BadArgs {
            client: Client::Dehydrated,
            problem: format!(
                "deploy_cert needs at least DOMAIN KEYFILE CERTFILE FULLCHAINFILE, got {} \
                 argument{}",
                rest.len(),
                if rest.len() == 1 { "" } else { "s" }
            ),
        });
    }
    let domain = rest[0].to_string_lossy().into_owned();
    let key = PathBuf::from(&rest[1]);
    let fullchain = PathBuf::from(&rest[3]);
    let cert_dir = key
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let cert_dir_text = cert_dir.to_string_lossy();
    let domains = [domain.clone()];
    let id = Identity::new(service, &cert_dir_text, &domains);
    let found = find_service(config, Client::Dehydrated, &id)?;
    let hint =
        "dehydrated writes it before deploy_cert; is this hook run by dehydrated, as its user?";
    let key = super::require_file(files, Client::Dehydrated, key, "the private key", hint)?;
    let (cert, chain) = super::cert_and_chain(
        files,
        Client::Dehydrated,
        fullchain,
        (
            PathBuf::from(&rest[2]),
            "the certificate (FULLCHAINFILE or CERTFILE)",
        ),
        rest.get(4).map(PathBuf::from),
        hint,
    )?;
    let roll = cert_dir.join(ROLL_KEY);
    let next_key = files.present(&roll).then_some(roll);
    Ok(Event::Deploy(DeployRequest {
        service: found.name.clone(),
        cert,
        key,
        chain,
        next_key,
        origin: Origin::Dehydrated { domain },
    }))
}
