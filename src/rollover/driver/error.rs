//! What stops the driver ([`DriverError`]): each error names the service or file and says what
//! to do.

use std::io;
use std::path::PathBuf;

use crate::install::InstallError;
use crate::lock::LockError;
use crate::pki::PkiError;
use crate::rollover::{EngineError, PhaseName, Slot};
use crate::store::StoreError;

use super::MAX_STEPS;

/// What stopped the driver. Each names the service or file and says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The request names a service the configuration does not have.
    #[error("no service \"{service}\" in {file}; the services are: {known}")]
    UnknownService {
        /// The name asked for.
        service: String,
        /// The configuration file.
        file: String,
        /// The configured names.
        known: String,
    },
    /// A certificate, chain or key file could not be used.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The certificate file holds no certificate.
    #[error("{} holds no certificate: pass the certificate (or full chain, leaf first) with --cert", path.display())]
    NoCertificate {
        /// The file.
        path: PathBuf,
    },
    /// The service has `chain-files` without a file for this key algorithm.
    #[error(
        "service \"{service}\" has no chain file for {slot} keys; add `{slot} = \"/path/to/file\"` \
         to its `chain-files`, or deploy a certificate of an algorithm it has"
    )]
    NoChainFile {
        /// The service.
        service: String,
        /// The key slot (algorithm).
        slot: String,
    },
    /// The key's algorithm has no key slot (DSA, Ed448, …).
    #[error(
        "{}: a {key_type} key cannot be rolled (use RSA, ECDSA or Ed25519)",
        path.display()
    )]
    UnsupportedKey {
        /// The key file.
        path: PathBuf,
        /// Its type.
        key_type: String,
    },
    /// A rollover to another key is under way for this slot.
    #[error(
        "service {service} ({slot}): a rollover to key {new} is in progress (phase {phase}); \
         finish it first (`dane-roll run --wait {service}`), then deploy key {requested}"
    )]
    InProgress {
        /// The service.
        service: String,
        /// The key slot.
        slot: Slot,
        /// The key being rolled to.
        new: String,
        /// Its phase.
        phase: PhaseName,
        /// The key asked for now.
        requested: String,
    },
    /// The engine refused to begin.
    #[error(transparent)]
    Stage(#[from] EngineError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another process holds the service.
    #[error(transparent)]
    Lock(#[from] LockError),
    /// A staged file could not be written.
    #[error(
        "cannot write {}: {}",
        path.display(),
        crate::exit::write_problem(path, source, "check that the state directory is writable")
    )]
    Staging {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// A renewal's install failed.
    #[error("service {service}: {source}")]
    Install {
        /// The service.
        service: String,
        /// Why.
        source: InstallError,
    },
    /// The async runtime could not start.
    #[error("cannot start the async runtime: {0}")]
    Runtime(io::Error),
    /// No rollover is stored for this service and slot.
    #[error("service {service} ({slot}): no rollover is stored; deploy a certificate first")]
    NoRollover {
        /// The service.
        service: String,
        /// The key slot.
        slot: Slot,
    },
    /// `dane-roll abort` cannot abandon this rollover.
    #[error(transparent)]
    Abort(#[from] crate::rollover::AbortRefused),
    /// The DNSSEC preflight before a service's first publish found its zone cannot carry DANE.
    #[error(
        "service {service}: nothing staged, its zone cannot carry DANE: {problems}. Fix this \
         and deploy again (`dane-roll config check --online` checks it; --force publishes anyway)"
    )]
    Preflight {
        /// The service.
        service: String,
        /// Each problem, in words, joined by "; ".
        problems: String,
    },
    /// A configured owner name's CNAME chain cannot be used (a loop, too long).
    #[error("service {service}: {source}")]
    Alias {
        /// The service.
        service: String,
        /// Why (boxed: the error is large).
        source: Box<crate::dns::AliasError>,
    },
    /// A configured owner name is a CNAME to a name the service's provider cannot write.
    #[error(
        "service {service}: owner name {owner} is a CNAME to {target}, where the TLSA records \
         live, but provider {provider} cannot write {target}: {why}. Publish the records at \
         {target} by hand (provider kind \"manual\"), configure a provider for the zone of \
         {target}, or remove the CNAME and publish at {owner}"
    )]
    AliasTarget {
        /// The service.
        service: String,
        /// The configured owner name (the CNAME's owner).
        owner: crate::tlsa::OwnerName,
        /// Where the chain ends.
        target: crate::tlsa::OwnerName,
        /// The provider's name in the configuration.
        provider: String,
        /// Why it cannot write there.
        why: String,
    },
    /// A service's `issuer-ahead-file` cannot be used.
    #[error(
        "service {service}: issuer-ahead-file {}: {why}; give a PEM file of the CA's \
         intermediates, or remove the key",
        path.display()
    )]
    IssuerAheadFile {
        /// The service.
        service: String,
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
    /// The engine kept asking for actions without settling (a bug guard).
    #[error(
        "service {service} ({slot}): the rollover did not settle after {MAX_STEPS} steps; \
         `dane-roll status --history {service}` shows what happened"
    )]
    Stuck {
        /// The service.
        service: String,
        /// The key slot.
        slot: Slot,
    },
}
