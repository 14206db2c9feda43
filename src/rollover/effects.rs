//! Everything the rollover driver does to, or learns from, the world outside its store, behind
//! one trait: [`Effects`]. The driver ([`super::driver::Driver`]) is generic over it; the real
//! implementation (the DNS provider's API, the authoritative servers and the validating
//! resolver, the live TLS probe, installing the key and chain, the reload command, the alert
//! channels, the system clock) is [`super::driver::RealEffects`]. Tests script a world of their
//! own (tests/rollover_core.rs) and run the real driver loop over it on a fake clock.
//!
//! Every method answers in the engine's words (a [`DnsReport`], [`ProbeResult`]s), so that a
//! scripted world needs no DNS message or TLS handshake to say what it serves.

use std::path::{Path, PathBuf};
use std::time::Duration;

use dane_roll_providers::{ProviderError, Record, Report};

use crate::config::{KeyType, Service};
use crate::dns::{Alias, AliasError};
use crate::install::InstallError;
use crate::notify::Alert;
use crate::store::Store;
use crate::tlsa::TlsaRecord;

use super::{DnsReport, KeyHash, OwnerName, ProbeResult, Slot, Timestamp, TlsaAt};

/// What one owner name's endpoint serves: the keys by slot, or why none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// Keys presented, with the slot of each (by key type).
    Keys(Vec<(Slot, KeyHash)>),
    /// Nothing serves there (refused on every address, or no address).
    Not(String),
    /// Cannot tell.
    Unknown(String),
}

/// Every key one endpoint address presents, or why the address (or endpoint) could not be
/// seen: `(endpoint, address, keys or why)`.
pub type LiveKeys = (String, String, Result<Vec<KeyHash>, String>);

/// Why the DNS provider did not make (or list) a change.
#[derive(Debug)]
pub enum ProviderFailure {
    /// The service's provider could not be set up from the configuration.
    Setup(String),
    /// The provider (of kind `kind`, as in the configuration) answered with an error.
    Failed {
        /// The provider's kind (`rfc2136`, `powerdns`, …).
        kind: &'static str,
        /// What it said.
        error: ProviderError,
    },
}

/// The driver's effects on the world. See the [module docs](self).
pub trait Effects {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// Wait `d`: the real clock sleeps, a fake one moves forward at once.
    fn sleep(&self, d: Duration);

    /// Add (`add`) or remove one TLSA record through `svc`'s provider.
    fn change_record(
        &self,
        svc: &Service,
        record: &Record,
        add: bool,
    ) -> Result<Report, ProviderFailure>;

    /// The TLSA records `svc`'s provider holds at `owner`.
    fn list_records(
        &self,
        svc: &Service,
        owner: &OwnerName,
    ) -> Result<Vec<Record>, ProviderFailure>;

    /// What every nameserver serves of `expected` at its owner names, and what the resolver
    /// validates there once every nameserver serves the `gate` records of that owner name.
    fn check_dns(&self, expected: &[TlsaAt], gate: &[TlsaAt]) -> DnsReport;

    /// `--skip-nameserver`: NS names whose answers [`Self::check_dns`] need not wait for before
    /// asking the resolver (the driver marks them in the report). Nothing to do by default.
    fn skip_nameservers(&mut self, _names: &[String]) {}

    /// What every authoritative server serves at `owner`, among `candidates`; `None` when the
    /// servers could not be asked.
    fn served_everywhere(
        &self,
        owner: &OwnerName,
        candidates: &[TlsaRecord],
    ) -> Option<Vec<TlsaRecord>>;

    /// Where the TLSA RRset of the configured owner name `owner` lives (its CNAME chain at the
    /// authorities); `None` when there is no resolver to ask.
    fn follow_cname(&self, owner: &OwnerName) -> Option<Result<Alias, AliasError>>;

    /// Whether `svc`'s zone can carry DANE (signed, and validating through the resolver), asked
    /// before its first publish: each problem in words, saying what to fix; `None` when it
    /// cannot be asked (a scripted world without DNS).
    fn dnssec_preflight(&self, svc: &Service) -> Option<Vec<String>> {
        let _ = svc;
        None
    }

    /// Probe every address of every endpoint (`host:port`) of `svc` against the validated
    /// records at its owner name, offering only `slot`'s key algorithm; one result per address.
    fn probe(
        &self,
        svc: &Service,
        slot: &Slot,
        endpoints: &[String],
        expect: KeyHash,
    ) -> Vec<ProbeResult>;

    /// Every key each endpoint address presents (every key algorithm).
    fn live_keys(&self, svc: &Service, endpoints: &[String]) -> Vec<LiveKeys>;

    /// Which keys the endpoint `host:port` of `svc` serves now, no records needed.
    fn served_at(&self, svc: &Service, host: &str, port: u16) -> Served;

    /// Install the staged key and chain `chain` as `svc`'s chain file `target`.
    fn install(&self, svc: &Service, target: &Path, chain: &Path) -> Result<(), InstallError>;

    /// Run `svc`'s reload command.
    fn reload(&self, svc: &Service) -> Result<(), InstallError>;

    /// Generate a private key of `kind` and write it (0600) into `dir`; its hash and file.
    fn generate_key(&self, kind: KeyType, dir: &Path) -> Result<(KeyHash, PathBuf), String>;

    /// Whether any alert channel is configured.
    fn has_alert_channels(&self) -> bool;

    /// Send `alert` through the alert channels under its firing policy (its state kept in
    /// `store`); the channels that failed, in words.
    fn notify(&self, store: &mut Store, alert: &Alert) -> Result<Vec<String>, String>;
}
