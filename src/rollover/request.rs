//! A deploy request: a new certificate and key for one service, as an ACME client's hook
//! (`dane-roll hook certbot|acme.sh|dehydrated`) or `dane-roll deploy` hands it to the engine.
//!
//! The request names files; nothing is read or installed yet. The driver stages it: it copies
//! the key and chain into the state directory, computes the records, and starts a rollover
//! (or, when the key did not change, notes a renewal that changes nothing in DNS).

use std::path::PathBuf;

/// Where a deploy request came from (for events, messages and the next-key handling).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// `dane-roll hook certbot`: the lineage directory (`RENEWED_LINEAGE`).
    Certbot {
        /// The live directory, e.g. `/etc/letsencrypt/live/mail.example.com`.
        lineage: PathBuf,
    },
    /// `dane-roll hook acme.sh`: acme.sh's main domain (`Le_Domain`).
    AcmeSh {
        /// The certificate's main domain.
        domain: String,
    },
    /// `dane-roll hook dehydrated`: the domain given to `deploy_cert`.
    Dehydrated {
        /// The certificate's main domain.
        domain: String,
    },
    /// `dane-roll deploy`, by hand or from another tool.
    Manual,
}

/// A new certificate and key for one configured service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRequest {
    /// The configured service it belongs to.
    pub service: String,
    /// The certificate: a leaf, or a full chain (leaf first).
    pub cert: PathBuf,
    /// The private key of the certificate.
    pub key: PathBuf,
    /// The intermediates, when `cert` holds only the leaf.
    pub chain: Option<PathBuf>,
    /// A next key the ACME client already holds and will use at its next key change (acme.sh's
    /// `<key>.next`, dehydrated's `privkey.roll.pem`): its `3 1 1` must be published now.
    pub next_key: Option<PathBuf>,
    /// Who asked.
    pub origin: Origin,
}

/// How a deploy request is carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeployOptions {
    /// Block until the rollover is done (progress on a terminal, a log line per step otherwise);
    /// without it the request is staged and published, and `dane-roll run` finishes the job.
    pub wait: bool,
    /// Skip the 2×TTL wait (never the "served everywhere and validated" check), loudly.
    pub force: bool,
    /// With `wait`: give up waiting after this long. The state is saved at every step, so a
    /// rollover left unfinished is where `dane-roll run` (or the timer) picks it up.
    pub timeout: Option<std::time::Duration>,
}
