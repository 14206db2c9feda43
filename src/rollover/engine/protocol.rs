//! The engine's protocol: what begins a rollover ([`StageRequest`]), what the driver is asked
//! to do ([`Action`]), what it reports back ([`ActionOutcome`], gathered in [`Observations`],
//! with the DNS and probe reports they carry), and what one call returns ([`StepResult`],
//! [`Event`]).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{Scheme, Service};
use crate::rollover::phase::{PhaseName, Rollover};
use crate::rollover::{KeyHash, OwnerName, Slot, Timestamp, TlsaAt};
use crate::tlsa::TlsaRecord;

/// What begins a rollover: the service's settings and the keys by role. The persisted
/// [`Rollover`] carries it whole (flattened, so its stored JSON keeps the same keys).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct StageRequest {
    /// The service.
    pub service: String,
    /// The key slot.
    pub slot: Slot,
    /// How the records cover the next certificate.
    #[serde(serialize_with = "serialize_scheme")]
    pub scheme: Scheme,
    /// The TTL of the records, seconds: the wait is 2×TTL.
    pub ttl: u32,
    /// The owner names (one per distinct endpoint host and port).
    pub owners: Vec<OwnerName>,
    /// The endpoints (`host:port`) that must all verify before anything is retired.
    pub endpoints: Vec<String>,
    /// The key served now, if any (its records stay until the new key is verified).
    pub old: Option<KeyHash>,
    /// The key to move to.
    pub new: KeyHash,
    /// The next key, published beside (`current+next`; ignored when it is the new key); generated
    /// after the rollover if none.
    pub next: Option<KeyHash>,
    /// The issuer keys (`current+issuer`).
    pub issuers: Vec<KeyHash>,
    /// The staged key+chain file to install (a path; never key material).
    pub chain: PathBuf,
    /// The key+chain file in use now, for a rollback.
    pub previous_chain: Option<PathBuf>,
    /// When the new key's records were first confirmed everywhere, if that happened before
    /// (a pre-published next key): the 2×TTL wait counts from then once re-checked.
    pub confirmed_since: Option<Timestamp>,
}

#[cfg(test)]
impl StageRequest {
    /// For unit tests: a `current+next` rollover of service `mx` from key 1 to key 2 at
    /// `_25._tcp.mx1.example.com.`, TTL 60; a test changes what it is about with `..`.
    pub(crate) fn example() -> StageRequest {
        StageRequest {
            service: "mx".into(),
            slot: Slot::default(),
            scheme: Scheme::CurrentNext,
            ttl: 60,
            owners: vec![OwnerName::for_endpoint("mx1.example.com", 25)],
            endpoints: vec!["mx1.example.com:25".into()],
            old: Some(KeyHash([1; 32])),
            new: KeyHash([2; 32]),
            next: None,
            issuers: Vec::new(),
            chain: "x".into(),
            previous_chain: None,
            confirmed_since: None,
        }
    }
}

fn serialize_scheme<S: serde::Serializer>(scheme: &Scheme, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(scheme)
}

impl StageRequest {
    /// A request for `service` with its scheme, TTL, owner names and endpoints.
    pub fn for_service(service: &Service, slot: Slot, new: KeyHash, chain: PathBuf) -> Self {
        StageRequest {
            service: service.name.clone(),
            slot,
            scheme: service.scheme,
            ttl: service.ttl,
            owners: service.owner_names(),
            endpoints: service.endpoint_ids(),
            old: None,
            new,
            next: None,
            issuers: Vec::new(),
            chain,
            previous_chain: None,
            confirmed_since: None,
        }
    }
}

/// One nameserver's answer for an owner name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NsAnswer {
    /// The nameserver (name and address, as shown to the operator).
    pub nameserver: String,
    /// The TLSA records it served, or why it gave none.
    pub records: Result<Vec<TlsaRecord>, String>,
    /// The TTL it served the TLSA RRset with (none when it served no RRset).
    #[serde(default)]
    pub ttl: Option<u32>,
    /// Not waited for: not checkable from here (this host has no route to the address and the
    /// same nameserver answered at another address). It does not hold the gate; `records`
    /// says why.
    #[serde(default)]
    pub not_waited_for: bool,
}

/// What the validating resolver said for an owner name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ResolverAnswer {
    /// Records with AD set: validated.
    Secure(Vec<TlsaRecord>),
    /// Records without AD.
    Insecure,
    /// SERVFAIL (a DNSSEC failure, for a validating resolver).
    Bogus(String),
    /// No records (NXDOMAIN/NODATA).
    Missing,
    /// The lookup failed (timeout, network).
    Failed(String),
}

/// The DNS view of one owner name: every authoritative server's answer and the resolver's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerReport {
    /// The owner name.
    pub owner: OwnerName,
    /// One answer per nameserver address.
    pub nameservers: Vec<NsAnswer>,
    /// The validated lookup.
    pub validation: ResolverAnswer,
    /// The TTL left on the resolver's TLSA RRset when it answered with one (a count-down: see
    /// [`crate::rollover::ttl::observed`]).
    #[serde(default)]
    pub resolver_ttl: Option<u32>,
}

/// The result of an [`Action::CheckDns`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsReport {
    /// One report per owner name checked.
    pub owners: Vec<OwnerReport>,
}

/// What the live handshake on one endpoint address showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ProbeVerdict {
    /// The chain matched the validated TLSA records.
    Match,
    /// The handshake completed but matched no validated record: mail would be deferred.
    NoMatch(String),
    /// No conclusion (unreachable, timeout, no STARTTLS).
    Unknown(String),
}

impl std::fmt::Display for ProbeVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeVerdict::Match => f.write_str("matches the validated records"),
            ProbeVerdict::NoMatch(why) => write!(f, "matches no validated record: {why}"),
            ProbeVerdict::Unknown(why) => write!(f, "not known: {why}"),
        }
    }
}

impl std::fmt::Display for ResolverAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResolverAnswer::Secure(r) => write!(f, "{} validated record(s)", r.len()),
            ResolverAnswer::Insecure => f.write_str("records not validated (no AD bit)"),
            ResolverAnswer::Bogus(why) => write!(f, "bogus: {why}"),
            ResolverAnswer::Missing => f.write_str("no records"),
            ResolverAnswer::Failed(why) => write!(f, "lookup failed: {why}"),
        }
    }
}

/// The probe of one endpoint address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeResult {
    /// The endpoint, `host:port`.
    pub endpoint: String,
    /// The address probed.
    pub address: String,
    /// The verdict.
    pub verdict: ProbeVerdict,
    /// The key of the certificate served, when the handshake got that far.
    pub live_key: Option<KeyHash>,
    /// The keys of the certificates served after it (its issuers, leaf's issuer first): what
    /// says whether a chain still holds an issuer whose record would go.
    #[serde(default)]
    pub chain: Vec<KeyHash>,
}

/// Whether a failed action can succeed when it is simply tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureKind {
    /// It may pass by itself (a timeout, a server restarting, a lock held): the next run
    /// retries. What every failure is unless the driver knows better.
    Retryable,
    /// It will fail the same way until someone changes something (a refused key, a missing
    /// zone, a read-only file): the next run still retries, but only a fix makes it pass.
    Permanent,
}

/// Why an action failed: the words to show (unchanged in every alert and event) and whether
/// trying again can help.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    kind: FailureKind,
    detail: String,
}

impl Failure {
    /// A failure that may pass by itself.
    pub fn retryable(detail: impl Into<String>) -> Failure {
        Failure {
            kind: FailureKind::Retryable,
            detail: detail.into(),
        }
    }

    /// A failure that only a change by someone makes pass.
    pub fn permanent(detail: impl Into<String>) -> Failure {
        Failure {
            kind: FailureKind::Permanent,
            detail: detail.into(),
        }
    }

    /// Whether it may pass by itself or needs a fix.
    pub fn kind(&self) -> FailureKind {
        self.kind
    }

    /// Whether trying again may help without a fix.
    pub fn is_retryable(&self) -> bool {
        self.kind == FailureKind::Retryable
    }

    /// What went wrong, in words.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// Words alone: a [`FailureKind::Retryable`] failure (what a failure was before it had a kind).
impl From<String> for Failure {
    fn from(detail: String) -> Failure {
        Failure::retryable(detail)
    }
}

/// Words alone: a [`FailureKind::Retryable`] failure.
impl From<&str> for Failure {
    fn from(detail: &str) -> Failure {
        Failure::retryable(detail)
    }
}

/// The result of an action the driver performed. Failures carry the words to show and their
/// [`FailureKind`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ActionOutcome {
    /// An [`Action::Publish`] was done (or failed).
    Published {
        /// The record.
        record: TlsaAt,
        /// Ok, or why not.
        result: Result<(), Failure>,
    },
    /// An [`Action::CheckDns`] was done.
    Dns(DnsReport),
    /// An [`Action::Install`] was done (or failed).
    Installed(Result<(), Failure>),
    /// An [`Action::Reload`] was done (or failed).
    Reloaded(Result<(), Failure>),
    /// An [`Action::Probe`] was done: one result per endpoint address.
    Probed(Vec<ProbeResult>),
    /// An [`Action::Retire`] was done (or failed).
    Retired {
        /// The record.
        record: TlsaAt,
        /// Ok, or why not.
        result: Result<(), Failure>,
    },
    /// An [`Action::ReinstallPrevious`] was done (or failed).
    Reinstalled(Result<(), Failure>),
    /// An [`Action::GenerateNextKey`] was done: the new next key, or why not.
    NextKey(Result<KeyHash, Failure>),
    /// An [`Action::Publish`] or [`Action::Retire`] was not sent: the provider's API asked to
    /// wait (a rate limit) until `retry_at`. Not a failure: the phase is kept, nothing is
    /// alerted, and no record is added or removed until then.
    RateLimited {
        /// The record.
        record: TlsaAt,
        /// When the provider may be asked again.
        retry_at: Timestamp,
        /// The provider's words.
        detail: String,
    },
}

/// Everything the engine learns, for one [`step`](crate::rollover::step).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observations {
    /// Outcomes of the actions performed since the last step (empty at the start of a run).
    pub outcomes: Vec<ActionOutcome>,
    /// The records this service and slot published and did not retire (the store).
    pub ours: Vec<TlsaAt>,
    /// Keys whose records must be kept besides the new and next keys: the store's next key for
    /// the slot, keys seen live by a probe.
    pub protected: Vec<KeyHash>,
    /// Issuer keys (`current+issuer`) whose records must be kept: the issuers every key slot of
    /// the service wants, for the chain it serves and its `issuer-ahead-file` (this slot's
    /// request's too). Key slots share their issuer records (same owner names, same record), so
    /// a rollover of one never retires an issuer another still needs. See
    /// [`stale`](super::stale), the one rule for what may go.
    pub protected_issuers: Vec<KeyHash>,
    /// The next key the store holds for this slot, if one was generated already (so a resumed
    /// run adopts it instead of generating another).
    pub stored_next: Option<KeyHash>,
    /// `--force`: skip the 2×TTL wait (never the "served everywhere and validated" check).
    pub force: bool,
}

/// What the driver is to do. Records travel one per action (invariant 4).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    /// Add one record (idempotent). Report [`ActionOutcome::Published`].
    Publish {
        /// The record.
        record: TlsaAt,
        /// Its TTL.
        ttl: u32,
    },
    /// Ask every authoritative server and the validating resolver about these records'
    /// owner names. Report [`ActionOutcome::Dns`].
    CheckDns {
        /// The records that must be there.
        expected: Vec<TlsaAt>,
    },
    /// Write the staged key+chain where the service reads it, atomically. Report
    /// [`ActionOutcome::Installed`].
    Install {
        /// The staged file.
        chain: PathBuf,
    },
    /// Run the service's reload command. Report [`ActionOutcome::Reloaded`].
    Reload,
    /// Handshake with every address of every endpoint. Report [`ActionOutcome::Probed`].
    Probe {
        /// The endpoints, `host:port`.
        endpoints: Vec<String>,
        /// The key that should be served.
        expect: KeyHash,
    },
    /// Remove one record (idempotent; only ever one of ours). Report [`ActionOutcome::Retired`].
    Retire(TlsaAt),
    /// Put the previous key+chain back. Report [`ActionOutcome::Reinstalled`].
    ReinstallPrevious {
        /// The previous file.
        chain: PathBuf,
    },
    /// Generate the next key (or return the one already stored for the slot). Report
    /// [`ActionOutcome::NextKey`].
    GenerateNextKey,
    /// Tell the operator (alert channels; nothing comes back).
    Alert(String),
    /// Nothing to do until `until` (unknown: when DNS catches up). Nothing comes back.
    Wait {
        /// When the next step can make progress, if known (for an ETA).
        until: Option<Timestamp>,
        /// What is awaited.
        reason: String,
    },
}

impl Action {
    /// Whether the engine expects an outcome for this action (all but alerts and waits).
    pub fn wants_outcome(&self) -> bool {
        !matches!(self, Action::Alert(_) | Action::Wait { .. })
    }
}

/// Something that happened, for `status --history`: stored with the phase, in one transaction.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When.
    pub time: Timestamp,
    /// The phase after it happened.
    pub phase: PhaseName,
    /// What happened, in words.
    pub detail: String,
}

/// The result of [`step`](crate::rollover::step) (and [`stage`](crate::rollover::stage)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    /// The rollover to persist.
    pub next: Rollover,
    /// What to do now, in order.
    pub actions: Vec<Action>,
    /// What happened, to persist with `next`.
    pub events: Vec<Event>,
}

impl StepResult {
    /// Whether this run can go no further: no action wants an outcome.
    pub fn is_settled(&self) -> bool {
        !self.actions.iter().any(Action::wants_outcome)
    }

    /// When the next step can make progress, if an action says.
    pub fn wait_until(&self) -> Option<Timestamp> {
        self.actions.iter().find_map(|a| match a {
            Action::Wait { until, .. } => *until,
            _ => None,
        })
    }

    /// The alerts among the actions.
    pub fn alerts(&self) -> impl Iterator<Item = &str> {
        self.actions.iter().filter_map(|a| match a {
            Action::Alert(text) => Some(text.as_str()),
            _ => None,
        })
    }
}
