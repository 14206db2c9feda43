//! The pure state machine: [`stage`] begins a rollover, [`step`] moves it as far as the
//! observations allow and says what to do next. No I/O, no clock: the driver performs the
//! [`Action`]s, reports each result as an [`Outcome`] in the next call's [`Observations`], and
//! persists [`Step::next`] with [`Step::events`] in one transaction after every call.
//!
//! A phase changes only on an observed outcome, never on issuing an action: a process killed
//! after an action but before its outcome was recorded repeats the action on resume, and every
//! action is idempotent (adding a present record or removing an absent one changes nothing,
//! installing the same file twice is harmless). An action whose outcome was a failure is not
//! repeated in the same call: the run settles with an alert and the next run retries.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::config::{Scheme, Service};
use crate::tlsa::TlsaRecord;

use super::phase::{Phase, PhaseName, Rollover};
use super::plan::retirable;
use super::ttl;
use super::{KeyHash, Slot, Timestamp, TlsaAt};

pub mod abort;

/// After this many inconclusive probes in `installed` an alert goes out (the rollover keeps
/// waiting: with old and new records both published, either certificate is matched).
pub const PROBE_ALERT_AFTER: u32 = 5;

/// The most phase changes one [`step`] makes (a guard; a rollover has eight phases).
const MAX_TRANSITIONS: usize = 16;

/// Why a rollover cannot begin.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The new key is the key served now: there is nothing to roll.
    #[error(
        "service {service} ({slot}): the new key {key} is the current key; nothing to roll \
         (a renewal that reuses the key needs no rollover)"
    )]
    SameKey {
        /// The service.
        service: String,
        /// The key slot.
        slot: Slot,
        /// The key, shortened.
        key: String,
    },
    /// The service has no endpoint, so nothing could be published or verified.
    #[error("service {service}: no endpoints; add at least one to the configuration")]
    NoEndpoints {
        /// The service.
        service: String,
    },
    /// A TTL of 0 would make the 2×TTL wait meaningless.
    #[error("service {service}: TTL 0; set a TTL (1800–3600 is advised)")]
    ZeroTtl {
        /// The service.
        service: String,
    },
}

/// What begins a rollover: the service's settings and the keys by role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageRequest {
    /// The service.
    pub service: String,
    /// The key slot.
    pub slot: Slot,
    /// The scheme.
    pub scheme: Scheme,
    /// The records' TTL.
    pub ttl: u32,
    /// The owner names.
    pub owners: Vec<String>,
    /// The endpoints, `host:port`.
    pub endpoints: Vec<String>,
    /// The key served now, if any.
    pub old: Option<KeyHash>,
    /// The key to move to.
    pub new: KeyHash,
    /// The published next key, if any (ignored when it is the new key).
    pub next: Option<KeyHash>,
    /// Issuer keys (`current+issuer`).
    pub issuers: Vec<KeyHash>,
    /// The staged key+chain file (a path).
    pub chain: PathBuf,
    /// The key+chain file in use now, for a rollback.
    pub previous_chain: Option<PathBuf>,
    /// When the new key's records were first confirmed everywhere, if that happened before
    /// (a pre-published next key): the 2×TTL wait counts from then once re-checked.
    pub confirmed_since: Option<Timestamp>,
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
            endpoints: service
                .endpoints
                .iter()
                .map(|e| format!("{}:{}", e.host, e.port))
                .collect(),
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
}

/// What the validating resolver said for an owner name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Validation {
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
    pub owner: String,
    /// One answer per nameserver address.
    pub nameservers: Vec<NsAnswer>,
    /// The validated lookup.
    pub validation: Validation,
    /// The TTL left on the resolver's TLSA RRset when it answered with one (a count-down: see
    /// [`super::ttl::observed`]).
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

impl std::fmt::Display for Validation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Validation::Secure(r) => write!(f, "{} validated record(s)", r.len()),
            Validation::Insecure => f.write_str("records not validated (no AD bit)"),
            Validation::Bogus(why) => write!(f, "bogus: {why}"),
            Validation::Missing => f.write_str("no records"),
            Validation::Failed(why) => write!(f, "lookup failed: {why}"),
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
}

/// The result of an action the driver performed. Failures carry the message to show.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// An [`Action::Publish`] was done (or failed).
    Published {
        /// The record.
        record: TlsaAt,
        /// Ok, or why not.
        result: Result<(), String>,
    },
    /// An [`Action::CheckDns`] was done.
    Dns(DnsReport),
    /// An [`Action::Install`] was done (or failed).
    Installed(Result<(), String>),
    /// An [`Action::Reload`] was done (or failed).
    Reloaded(Result<(), String>),
    /// An [`Action::Probe`] was done: one result per endpoint address.
    Probed(Vec<ProbeResult>),
    /// An [`Action::Retire`] was done (or failed).
    Retired {
        /// The record.
        record: TlsaAt,
        /// Ok, or why not.
        result: Result<(), String>,
    },
    /// An [`Action::ReinstallPrevious`] was done (or failed).
    Reinstalled(Result<(), String>),
    /// An [`Action::GenerateNextKey`] was done: the new next key, or why not.
    NextKey(Result<KeyHash, String>),
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

/// Everything the engine learns, for one [`step`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observations {
    /// Outcomes of the actions performed since the last step (empty at the start of a run).
    pub outcomes: Vec<Outcome>,
    /// The records this service and slot published and did not retire (the store).
    pub ours: Vec<TlsaAt>,
    /// Keys whose records must be kept besides the new and next keys: the store's next key for
    /// the slot, keys seen live by a probe.
    pub protected: Vec<KeyHash>,
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
    /// Add one record (idempotent). Report [`Outcome::Published`].
    Publish {
        /// The record.
        record: TlsaAt,
        /// Its TTL.
        ttl: u32,
    },
    /// Ask every authoritative server and the validating resolver about these records'
    /// owner names. Report [`Outcome::Dns`].
    CheckDns {
        /// The records that must be there.
        expected: Vec<TlsaAt>,
    },
    /// Write the staged key+chain where the service reads it, atomically. Report
    /// [`Outcome::Installed`].
    Install {
        /// The staged file.
        chain: PathBuf,
    },
    /// Run the service's reload command. Report [`Outcome::Reloaded`].
    Reload,
    /// Handshake with every address of every endpoint. Report [`Outcome::Probed`].
    Probe {
        /// The endpoints, `host:port`.
        endpoints: Vec<String>,
        /// The key that should be served.
        expect: KeyHash,
    },
    /// Remove one record (idempotent; only ever one of ours). Report [`Outcome::Retired`].
    Retire(TlsaAt),
    /// Put the previous key+chain back. Report [`Outcome::Reinstalled`].
    ReinstallPrevious {
        /// The previous file.
        chain: PathBuf,
    },
    /// Generate the next key (or return the one already stored for the slot). Report
    /// [`Outcome::NextKey`].
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

/// The result of [`step`] (and [`stage`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The rollover to persist.
    pub next: Rollover,
    /// What to do now, in order.
    pub actions: Vec<Action>,
    /// What happened, to persist with `next`.
    pub events: Vec<Event>,
}

impl Step {
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

/// Begin a rollover: check the request and return the staged rollover with its first actions
/// (publish every record of the old, new and next keys, one by one).
pub fn stage(request: StageRequest, now: Timestamp) -> Result<Step, EngineError> {
    if request.old == Some(request.new) {
        return Err(EngineError::SameKey {
            service: request.service,
            slot: request.slot,
            key: request.new.short(),
        });
    }
    if request.owners.is_empty() || request.endpoints.is_empty() {
        return Err(EngineError::NoEndpoints {
            service: request.service,
        });
    }
    if request.ttl == 0 {
        return Err(EngineError::ZeroTtl {
            service: request.service,
        });
    }
    let next = request
        .next
        .filter(|n| *n != request.new && Some(*n) != request.old);
    let rollover = Rollover {
        service: request.service,
        slot: request.slot,
        scheme: request.scheme,
        ttl: request.ttl,
        owners: request
            .owners
            .iter()
            .map(|o| dane_roll_providers::absolute(o))
            .collect(),
        endpoints: request.endpoints,
        old: request.old,
        new: request.new,
        next,
        issuers: request.issuers,
        chain: request.chain,
        previous_chain: request.previous_chain,
        confirmed_since: request.confirmed_since,
        ttl_seen: None,
        looked: false,
        ttl_warned: false,
        forced: None,
        started: now,
        phase: Phase::Staged { since: now },
    };
    let detail = format!(
        "rollover staged: {} → {} ({} records to publish at {})",
        rollover
            .old
            .map_or_else(|| "none".to_owned(), |k| k.short()),
        rollover.new.short(),
        rollover.publish_set().len(),
        rollover.owners.join(", ")
    );
    let mut step = step(rollover, &Observations::default(), now);
    step.events.insert(
        0,
        Event {
            time: now,
            phase: PhaseName::Staged,
            detail,
        },
    );
    Ok(step)
}

/// Move `rollover` as far as `observations` allow at `now`; return it with the actions to
/// perform and the events to record.
pub fn step(rollover: Rollover, observations: &Observations, now: Timestamp) -> Step {
    let mut ctx = Ctx {
        r: rollover,
        obs: observations,
        now,
        actions: Vec::new(),
        events: Vec::new(),
    };
    for _ in 0..MAX_TRANSITIONS {
        let moved = match ctx.r.phase.clone() {
            Phase::Staged { .. } => ctx.staged(),
            Phase::Published {
                confirmed_at,
                checks,
                ..
            } => ctx.published(confirmed_at, checks),
            Phase::Aged {
                forced,
                install_failures,
                ..
            } => ctx.aged(forced, install_failures),
            Phase::Installed {
                reloaded,
                reload_failures,
                probes,
                ..
            } => ctx.installed(reloaded, reload_failures, probes),
            Phase::Verified { .. } => ctx.verified(),
            Phase::Retired { .. } => ctx.retired(),
            Phase::Done { .. } | Phase::Aborted { .. } => false,
            Phase::RolledBack { .. } => ctx.rolled_back(),
            Phase::Aborting { .. } => ctx.aborting(),
        };
        if !moved {
            break;
        }
    }
    ctx.rate_limited();
    ctx.finish()
}

/// Records as (owner, presentation) pairs, for set membership.
type RecordKeys = BTreeSet<(String, String)>;

/// The working state of one [`step`].
struct Ctx<'a> {
    r: Rollover,
    obs: &'a Observations,
    now: Timestamp,
    actions: Vec<Action>,
    events: Vec<Event>,
}

impl<'a> Ctx<'a> {
    /// A provider rate limit in this step's outcomes: no record change is asked for until the
    /// latest `retry_at`; the step waits for it instead (the phase stays, no alert).
    fn rate_limited(&mut self) {
        let Some((until, detail)) = self
            .obs
            .outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::RateLimited {
                    retry_at, detail, ..
                } => Some((*retry_at, detail.clone())),
                _ => None,
            })
            .max_by_key(|(t, _)| *t)
        else {
            return;
        };
        let before = self.actions.len();
        self.actions
            .retain(|a| !matches!(a, Action::Publish { .. } | Action::Retire(_)));
        if self.actions.len() != before {
            self.wait(
                Some(until),
                format!("the DNS provider asked to wait until {until} ({detail})"),
            );
        }
    }

    fn event(&mut self, detail: String) {
        self.events.push(Event {
            time: self.now,
            phase: self.r.phase.name(),
            detail,
        });
    }

    fn alert(&mut self, text: String) {
        self.event(format!("alert: {text}"));
        self.actions.push(Action::Alert(format!(
            "dane-roll: service {} ({}): {text}",
            self.r.service, self.r.slot
        )));
    }

    /// Change phase, with an event; returns `true` (moved).
    fn go(&mut self, phase: Phase, detail: String) -> bool {
        self.r.phase = phase;
        self.event(detail);
        true
    }

    fn wait(&mut self, until: Option<Timestamp>, reason: String) {
        self.actions.push(Action::Wait { until, reason });
    }

    fn latest_dns(&self) -> Option<&'a DnsReport> {
        let obs: &'a Observations = self.obs;
        obs.outcomes.iter().rev().find_map(|o| match o {
            Outcome::Dns(report) => Some(report),
            _ => None,
        })
    }

    fn latest<T>(&self, pick: impl Fn(&Outcome) -> Option<T>) -> Option<T> {
        self.obs.outcomes.iter().rev().find_map(pick)
    }

    /// Published outcomes: the records that went out, and failures.
    fn publish_outcomes(&self) -> (RecordKeys, Vec<(TlsaAt, String)>) {
        let mut ok = BTreeSet::new();
        let mut failed = Vec::new();
        for o in &self.obs.outcomes {
            if let Outcome::Published { record, result } = o {
                match result {
                    Ok(()) => {
                        ok.insert(record.sort_key());
                    }
                    Err(e) => failed.push((record.clone(), e.clone())),
                }
            }
        }
        (ok, failed)
    }

    /// Publish `records` not yet published in this run; `true` when all are out.
    fn publish_all(&mut self, records: &[TlsaAt], also_done: &[TlsaAt]) -> bool {
        let (ok, failed) = self.publish_outcomes();
        let done: BTreeSet<_> = also_done.iter().map(TlsaAt::sort_key).collect();
        let pending: Vec<TlsaAt> = records
            .iter()
            .filter(|r| !ok.contains(&r.sort_key()) && !done.contains(&r.sort_key()))
            .cloned()
            .collect();
        let failed: Vec<_> = failed
            .into_iter()
            .filter(|(r, _)| pending.contains(r))
            .collect();
        if pending.is_empty() {
            return true;
        }
        if failed.is_empty() {
            let ttl = self.r.ttl;
            self.actions.extend(
                pending
                    .into_iter()
                    .map(|record| Action::Publish { record, ttl }),
            );
        } else {
            for (record, err) in failed {
                self.alert(format!(
                    "publishing {record} failed: {err}; the next run retries"
                ));
            }
        }
        false
    }

    fn staged(&mut self) -> bool {
        if !self.r.looked {
            // Look at the TLSA RRsets as resolvers may hold them now, before our first change:
            // a TTL larger than the configured one lengthens the wait.
            let Some(dns) = self.latest_dns() else {
                let expected = self.r.publish_set();
                self.actions.push(Action::CheckDns { expected });
                return false;
            };
            let owners = self.r.owners.clone();
            let mut seen = self.r.ttl_seen.take();
            ttl::fold(&mut seen, &owners, dns, self.now);
            self.r.ttl_seen = seen;
            self.r.looked = true;
            let detail = match &self.r.ttl_seen {
                Some(s) => format!(
                    "before publishing: {} serves the TLSA RRset at {} with TTL {} s",
                    s.source, s.owner, s.ttl
                ),
                None => "before publishing: no TLSA RRset is served at the owner names".to_owned(),
            };
            self.event(detail);
        }
        let set = self.r.publish_set();
        if !self.publish_all(&set, &[]) {
            return false;
        }
        let confirmed_at = self.r.confirmed_since;
        self.go(
            Phase::Published {
                since: self.now,
                confirmed_at,
                checks: 0,
            },
            format!("all {} records published", set.len()),
        )
    }

    fn published(&mut self, confirmed_at: Option<Timestamp>, checks: u32) -> bool {
        let Some(dns) = self.latest_dns() else {
            let expected = self.r.publish_set();
            self.actions.push(Action::CheckDns { expected });
            return false;
        };
        let wanted = self.r.gate_set();
        let served = served_everywhere(&wanted, dns);
        let valid = validated(&wanted, dns);
        let since = self.r.phase.since();
        let checks = checks.saturating_add(1);
        let gate_owners: Vec<String> = self.r.gate_set().into_iter().map(|r| r.owner).collect();
        if confirmed_at.is_none() {
            // Every TTL seen until the records are confirmed (this look included) counts.
            let before = self.r.wait();
            let mut seen = self.r.ttl_seen.take();
            ttl::fold(&mut seen, &gate_owners, dns, self.now);
            self.r.ttl_seen = seen;
            if self.r.wait() > before
                && let Some(s) = &self.r.ttl_seen
            {
                let detail = format!(
                    "{} serves the TLSA RRset at {} with TTL {} s: the wait is 2×{} s",
                    s.source, s.owner, s.ttl, s.ttl
                );
                self.event(detail);
            }
        }
        if served.is_ok()
            && !self.r.ttl_warned
            && let Some((t, owner, ns)) = ttl::served_after_change(&gate_owners, dns, self.r.ttl)
        {
            self.r.ttl_warned = true;
            let configured = self.r.ttl;
            self.event(format!(
                "warning: {ns} serves {owner} with TTL {t} s, not the configured {configured} s \
                 (the provider or an operator set it); the wait counts {} s",
                self.r.governing_ttl()
            ));
        }
        if let Err(reasons) = served {
            let reason = reasons.join("; ");
            if confirmed_at.is_some() {
                self.alert(format!(
                    "the records are no longer served everywhere ({reason}); the 2×TTL wait \
                     starts again once they are"
                ));
            }
            if self.obs.force {
                self.alert(format!(
                    "--force skips only the 2×TTL wait; it cannot install before every \
                     nameserver serves the records and they validate ({reason})"
                ));
            }
            self.r.phase = Phase::Published {
                since,
                confirmed_at: None,
                checks,
            };
            self.wait(None, reason);
            return false;
        }
        // Served everywhere: the wait counts from the first time that was seen.
        let t = confirmed_at.unwrap_or(self.now);
        let due = t.plus(self.r.wait());
        if confirmed_at.is_none() {
            self.event(format!(
                "served by every nameserver at {t}; install due at {due} once the resolver \
                 validates them"
            ));
        }
        self.r.phase = Phase::Published {
            since,
            confirmed_at: Some(t),
            checks,
        };
        if let Err(reasons) = valid {
            let reason = reasons.join("; ");
            if self.obs.force {
                self.alert(format!(
                    "--force skips only the 2×TTL wait; it cannot install before every \
                     nameserver serves the records and they validate ({reason})"
                ));
            }
            if self.now >= due {
                // Past the wait and still not validated: something is wrong (signing,
                // DS, the resolver); hold without a due time and say why.
                self.wait(None, reason);
            } else {
                // Caches of the RRset without the new record expire within the wait.
                self.wait(
                    Some(due),
                    format!("2×TTL ({} s) after {t}; {reason}", self.r.wait().as_secs()),
                );
            }
            return false;
        }
        if self.now >= due {
            return self.go(
                Phase::Aged {
                    since: self.now,
                    forced: false,
                    install_failures: 0,
                },
                format!("served everywhere for 2×TTL since {t}, and validated"),
            );
        }
        if self.obs.force {
            self.r.forced = Some(self.now);
            self.alert(format!(
                "FORCED: installing {} before the 2×TTL wait ended (due {due}); \
                 resolvers that cached the old records may fail DANE until then",
                self.r.new.short()
            ));
            return self.go(
                Phase::Aged {
                    since: self.now,
                    forced: true,
                    install_failures: 0,
                },
                format!(
                    "wait skipped by --force ({} s early)",
                    self.now.until(due).as_secs()
                ),
            );
        }
        self.wait(
            Some(due),
            format!("2×TTL ({} s) after {t}", self.r.wait().as_secs()),
        );
        false
    }

    fn aged(&mut self, forced: bool, install_failures: u32) -> bool {
        let since = self.r.phase.since();
        if let Some(result) = self.latest(|o| match o {
            Outcome::Installed(r) => Some(r.clone()),
            _ => None,
        }) {
            return match result {
                Ok(()) => self.go(
                    Phase::Installed {
                        since: self.now,
                        reloaded: false,
                        reload_failures: 0,
                        probes: 0,
                    },
                    format!("key and chain installed from {}", self.r.chain.display()),
                ),
                Err(err) => {
                    self.r.phase = Phase::Aged {
                        since,
                        forced,
                        install_failures: install_failures.saturating_add(1),
                    };
                    self.alert(format!("install failed: {err}; the next run retries"));
                    false
                }
            };
        }
        let Some(dns) = self.latest_dns() else {
            let expected = self.r.publish_set();
            self.actions.push(Action::CheckDns { expected });
            return false;
        };
        match gate(&self.r.gate_set(), dns) {
            Ok(()) => {
                self.actions.push(Action::Install {
                    chain: self.r.chain.clone(),
                });
                false
            }
            Err(reasons) => {
                self.alert(format!(
                    "the records are no longer served everywhere or no longer validate ({}); \
                     back to waiting",
                    reasons.join("; ")
                ));
                self.go(
                    Phase::Published {
                        since: self.now,
                        confirmed_at: None,
                        checks: 0,
                    },
                    "install held: records not confirmed".to_owned(),
                )
            }
        }
    }

    fn installed(&mut self, reloaded: bool, reload_failures: u32, probes: u32) -> bool {
        let since = self.r.phase.since();
        let set = |reloaded, reload_failures, probes| Phase::Installed {
            since,
            reloaded,
            reload_failures,
            probes,
        };
        if !reloaded {
            match self.latest(|o| match o {
                Outcome::Reloaded(r) => Some(r.clone()),
                _ => None,
            }) {
                None => self.actions.push(Action::Reload),
                Some(Ok(())) => {
                    self.r.phase = set(true, reload_failures, probes);
                    self.event("service reloaded".to_owned());
                    self.probe();
                }
                Some(Err(err)) => {
                    self.r.phase = set(false, reload_failures.saturating_add(1), probes);
                    self.alert(format!(
                        "reload failed: {err}; the new certificate is installed and its records \
                         validate, the next run retries the reload"
                    ));
                }
            }
            return false;
        }
        let Some(results) = self.latest(|o| match o {
            Outcome::Probed(r) => Some(r.clone()),
            _ => None,
        }) else {
            self.probe();
            return false;
        };
        match verify(&self.r.endpoints, self.r.new, &results) {
            Verdict::Verified => self.go(
                Phase::Verified { since: self.now },
                format!(
                    "live handshake on {} address(es) matches the new key {}",
                    results.len(),
                    self.r.new.short()
                ),
            ),
            Verdict::Failed(reason) => {
                self.r.phase = Phase::RolledBack {
                    since: self.now,
                    reason: reason.clone(),
                    reinstalled: false,
                    reloaded: false,
                    failures: 0,
                };
                self.alert(format!(
                    "verification failed ({reason}): rolling back to the previous certificate; \
                     no record was removed"
                ));
                true
            }
            Verdict::Inconclusive(reason) => {
                let probes = probes.saturating_add(1);
                self.r.phase = set(true, reload_failures, probes);
                if probes == PROBE_ALERT_AFTER {
                    self.alert(format!(
                        "{probes} probes could not verify the new key ({reason}); still waiting, \
                         old and new records both stay published"
                    ));
                }
                self.wait(None, reason);
                false
            }
        }
    }

    fn probe(&mut self) {
        self.actions.push(Action::Probe {
            endpoints: self.r.endpoints.clone(),
            expect: self.r.new,
        });
    }

    fn protected(&self) -> Vec<KeyHash> {
        let mut keys = vec![self.r.new];
        keys.extend(self.r.next);
        keys.extend(self.obs.stored_next);
        keys.extend(self.obs.protected.iter().copied());
        keys
    }

    fn verified(&mut self) -> bool {
        let mut ok = BTreeSet::new();
        let mut failed = Vec::new();
        for o in &self.obs.outcomes {
            if let Outcome::Retired { record, result } = o {
                match result {
                    Ok(()) => {
                        ok.insert(record.sort_key());
                    }
                    Err(e) => failed.push((record.clone(), e.clone())),
                }
            }
        }
        let stale: Vec<TlsaAt> = retirable(&self.obs.ours, &self.r.keep_set(), &self.protected())
            .into_iter()
            .filter(|r| !ok.contains(&r.sort_key()))
            .collect();
        if stale.is_empty() {
            return self.go(
                Phase::Retired { since: self.now },
                format!("stale records retired ({} this run)", ok.len()),
            );
        }
        if failed.is_empty() {
            self.actions.extend(stale.into_iter().map(Action::Retire));
        } else {
            for (record, err) in failed {
                self.alert(format!(
                    "retiring {record} failed: {err}; it stays published, the next run retries"
                ));
            }
        }
        false
    }

    fn retired(&mut self) -> bool {
        if self.r.scheme == Scheme::CurrentNext && self.r.next.is_none() {
            let adopt = self
                .obs
                .stored_next
                .filter(|k| *k != self.r.new && Some(*k) != self.r.old);
            let generated = self.latest(|o| match o {
                Outcome::NextKey(r) => Some(r.clone()),
                _ => None,
            });
            match (adopt, generated) {
                (Some(key), _) | (None, Some(Ok(key))) if key != self.r.new => {
                    self.r.next = Some(key);
                    self.event(format!("next key {} ready", key.short()));
                }
                (None, Some(Ok(_))) => {
                    self.alert(
                        "the generated next key is the key just installed; not publishing it"
                            .to_owned(),
                    );
                    return false;
                }
                (None, Some(Err(err))) => {
                    self.alert(format!(
                        "generating the next key failed: {err}; the next run retries \
                         (until then, the next rollover will need the full wait)"
                    ));
                    return false;
                }
                _ => {
                    self.actions.push(Action::GenerateNextKey);
                    return false;
                }
            }
        }
        if let (Scheme::CurrentNext, Some(next)) = (self.r.scheme, self.r.next) {
            let records: Vec<TlsaAt> = self
                .r
                .owners
                .iter()
                .map(|o| TlsaAt::new(o, next.dane_ee()))
                .collect();
            // Only the provider's answer in this run counts as published, never "stored as
            // ours" (stored before the provider is asked, so also after a failed add): an add of
            // a record already there sends nothing, so asking again after a resume is cheap.
            if !self.publish_all(&records, &[]) {
                return false;
            }
        }
        self.go(
            Phase::Done { since: self.now },
            format!("rollover complete: {} is live", self.r.new.short()),
        )
    }

    fn rolled_back(&mut self) -> bool {
        let Phase::RolledBack {
            since,
            reason,
            mut reinstalled,
            mut reloaded,
            mut failures,
        } = self.r.phase.clone()
        else {
            return false;
        };
        if !reinstalled {
            match (
                &self.r.previous_chain,
                self.latest(|o| match o {
                    Outcome::Reinstalled(r) => Some(r.clone()),
                    _ => None,
                }),
            ) {
                (None, _) => {
                    reinstalled = true;
                    reloaded = true;
                    self.alert(
                        "no previous certificate to reinstall: the new one stays in place"
                            .to_owned(),
                    );
                }
                (Some(chain), None) => {
                    let chain = chain.clone();
                    self.actions.push(Action::ReinstallPrevious { chain });
                }
                (Some(_), Some(Ok(()))) => {
                    reinstalled = true;
                    self.event("previous certificate reinstalled".to_owned());
                    self.actions.push(Action::Reload);
                }
                (Some(_), Some(Err(err))) => {
                    failures = failures.saturating_add(1);
                    self.alert(format!(
                        "reinstalling the previous certificate failed: {err}; the next run retries"
                    ));
                }
            }
        } else if !reloaded {
            self.reload_previous(
                &mut reloaded,
                &mut failures,
                "rollback complete: previous certificate live",
                "reload after rollback failed",
            );
        }
        self.r.phase = Phase::RolledBack {
            since,
            reason,
            reinstalled,
            reloaded,
            failures,
        };
        false
    }

    /// Last line of defence for invariants 1–3, whatever the handlers did.
    fn finish(mut self) -> Step {
        let protected = self.protected();
        let phase = self.r.phase.name();
        let mut refused = Vec::new();
        let abort_protected = self.abort_protected();
        let abandoned = self.r.new;
        self.actions.retain(|a| match a {
            // An abort retires only the abandoned key's records, never a kept key's.
            Action::Retire(record) if phase == PhaseName::Aborting => {
                let ok =
                    record.is_of(&abandoned) && !abort_protected.iter().any(|k| record.is_of(k));
                if !ok {
                    refused.push(record.clone());
                }
                ok
            }
            Action::Retire(record) => {
                let ok = phase == PhaseName::Verified && !protected.iter().any(|k| record.is_of(k));
                if !ok {
                    refused.push(record.clone());
                }
                ok
            }
            _ => true,
        });
        for record in refused {
            self.event(format!(
                "refused to retire {record}: it matches a protected key"
            ));
        }
        Step {
            next: self.r,
            actions: self.actions,
            events: self.events,
        }
    }
}

/// The gate of invariant 1: every expected record is served by every nameserver that answered
/// (at least one per owner name, and none failing) and the resolver validated all of them.
/// `Err` lists what holds it.
pub fn gate(expected: &[TlsaAt], dns: &DnsReport) -> Result<(), Vec<String>> {
    let mut reasons = served_everywhere(expected, dns).err().unwrap_or_default();
    reasons.extend(validated(expected, dns).err().unwrap_or_default());
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// The expected records of each owner name, with that owner's report (a reason when the
/// owner was not checked).
fn by_owner<'a>(
    expected: &'a [TlsaAt],
    dns: &'a DnsReport,
    reasons: &mut Vec<String>,
) -> Vec<(&'a str, Vec<&'a TlsaRecord>, &'a OwnerReport)> {
    let owners: BTreeSet<&str> = expected.iter().map(|r| r.owner.as_str()).collect();
    let mut out = Vec::new();
    for owner in owners {
        let want: Vec<&TlsaRecord> = expected
            .iter()
            .filter(|r| r.owner == owner)
            .map(|r| &r.record)
            .collect();
        match dns
            .owners
            .iter()
            .find(|o| dane_roll_providers::same_name(&o.owner, owner))
        {
            Some(report) => out.push((owner, want, report)),
            None => reasons.push(format!("{owner}: not checked")),
        }
    }
    out
}

/// The first half of the gate, the one the 2×TTL wait counts from (DOMAIN.md: "wait until
/// every authoritative server serves it, then at least 2×TTL more"): every nameserver serves
/// every expected record.
pub fn served_everywhere(expected: &[TlsaAt], dns: &DnsReport) -> Result<(), Vec<String>> {
    let mut reasons = Vec::new();
    for (owner, want, report) in by_owner(expected, dns, &mut reasons) {
        if report.nameservers.is_empty() {
            reasons.push(format!("{owner}: no nameserver answered"));
        }
        for ns in &report.nameservers {
            match &ns.records {
                Err(err) => reasons.push(format!("{owner}: {} failed: {err}", ns.nameserver)),
                Ok(served) => {
                    let lacking = want.iter().filter(|w| !served.contains(w)).count();
                    if lacking > 0 {
                        reasons.push(format!(
                            "{owner}: {} lags ({lacking} record(s) missing)",
                            ns.nameserver
                        ));
                    }
                }
            }
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// The second half of the gate: the resolver validates every expected record. Needed before
/// the install, but not the start of the wait: a resolver's cache of the RRset without the
/// new record expires within one TTL of the records being served everywhere, inside the wait.
pub fn validated(expected: &[TlsaAt], dns: &DnsReport) -> Result<(), Vec<String>> {
    let mut reasons = Vec::new();
    for (owner, want, report) in by_owner(expected, dns, &mut reasons) {
        match &report.validation {
            Validation::Secure(records) => {
                let lacking = want.iter().filter(|w| !records.contains(w)).count();
                if lacking > 0 {
                    reasons.push(format!(
                        "{owner}: the resolver does not validate {lacking} record(s) yet"
                    ));
                }
            }
            Validation::Insecure => reasons.push(format!(
                "{owner}: the resolver's answer is not DNSSEC-validated (no AD)"
            )),
            Validation::Bogus(why) => {
                reasons.push(format!(
                    "{owner}: the resolver says bogus (SERVFAIL): {why}"
                ));
            }
            Validation::Missing => {
                reasons.push(format!("{owner}: the resolver has no TLSA records"))
            }
            Validation::Failed(why) => reasons.push(format!("{owner}: lookup failed: {why}")),
        }
    }
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

enum Verdict {
    Verified,
    Failed(String),
    Inconclusive(String),
}

/// Invariant 3: every endpoint has at least one probed address, and every address matched the
/// validated records while serving the new key.
fn verify(endpoints: &[String], new: KeyHash, results: &[ProbeResult]) -> Verdict {
    let failures: Vec<String> = results
        .iter()
        .filter_map(|p| match &p.verdict {
            ProbeVerdict::NoMatch(why) => Some(format!("{} ({}): {why}", p.endpoint, p.address)),
            _ => None,
        })
        .collect();
    if !failures.is_empty() {
        return Verdict::Failed(failures.join("; "));
    }
    let mut waiting = Vec::new();
    for endpoint in endpoints {
        if !results.iter().any(|p| &p.endpoint == endpoint) {
            waiting.push(format!("{endpoint}: not probed"));
        }
    }
    for p in results {
        match (&p.verdict, p.live_key) {
            (ProbeVerdict::Match, Some(key)) if key == new => {}
            (ProbeVerdict::Match, Some(key)) => waiting.push(format!(
                "{} ({}) still serves {}",
                p.endpoint,
                p.address,
                key.short()
            )),
            (ProbeVerdict::Match, None) => {
                waiting.push(format!(
                    "{} ({}): served key unknown",
                    p.endpoint, p.address
                ));
            }
            (ProbeVerdict::Unknown(why), _) => {
                waiting.push(format!("{} ({}): {why}", p.endpoint, p.address));
            }
            (ProbeVerdict::NoMatch(_), _) => {}
        }
    }
    if waiting.is_empty() {
        Verdict::Verified
    } else {
        Verdict::Inconclusive(waiting.join("; "))
    }
}
