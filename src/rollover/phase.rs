//! The phases of one rollover and the persisted [`Rollover`] (one per service and key slot).
//!
//! `staged` → `published` → `aged` → `installed` → `verified` → `retired` → `done`; a failed
//! verification goes to `rolled-back`; the operator's `dane-roll abort` goes from any phase
//! before `verified` to `aborting` → `aborted`. Each phase carries what it has to remember across runs
//! (timestamps, attempt counters), and the whole [`Rollover`] is stored as JSON by the store, so a
//! process killed anywhere resumes from the last persisted step.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::engine::StageRequest;
use super::plan::{KeySet, desired};
use super::ttl::TtlSeen;
use super::{Timestamp, TlsaAt};

/// Where a rollover stands, with what that phase has to remember.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "kebab-case")]
pub enum Phase {
    /// The new key and chain are held back; the records are being published.
    Staged {
        /// When the phase began.
        since: Timestamp,
    },
    /// Records added; waiting until every nameserver serves them, then 2×TTL more, and until
    /// the resolver validates them.
    Published {
        /// When the phase began.
        since: Timestamp,
        /// When the records were first seen on every nameserver (T), validated or not yet; the
        /// wait runs to T + 2×TTL. Reset when a later check finds a nameserver without them (or,
        /// once `aged`, records that no longer validate).
        confirmed_at: Option<Timestamp>,
        /// How many DNS checks were made in this phase.
        checks: u32,
    },
    /// T + 2×TTL passed (or forced): the certificate may be installed.
    Aged {
        /// When the phase began.
        since: Timestamp,
        /// Whether the wait was skipped by `--force`.
        forced: bool,
        /// Failed install attempts.
        install_failures: u32,
    },
    /// Key and chain installed; reloading the service, then probing every endpoint address.
    Installed {
        /// When the phase began.
        since: Timestamp,
        /// Whether the reload succeeded.
        reloaded: bool,
        /// Failed reload attempts (each alerts; the next run retries).
        reload_failures: u32,
        /// Probes that could not conclude (address unreachable, old key still served).
        probes: u32,
    },
    /// The live handshake on every endpoint address matched the new key: stale records go.
    Verified {
        /// When the phase began.
        since: Timestamp,
    },
    /// Stale records removed; publishing the next key where the scheme wants one.
    Retired {
        /// When the phase began.
        since: Timestamp,
    },
    /// The rollover is complete.
    Done {
        /// When the phase began.
        since: Timestamp,
    },
    /// Verification failed: the previous certificate goes back; no record was removed.
    RolledBack {
        /// When the phase began.
        since: Timestamp,
        /// Why.
        reason: String,
        /// Whether the previous key and chain were reinstalled.
        reinstalled: bool,
        /// Whether the service was reloaded after that.
        reloaded: bool,
        /// Failed reinstall or reload attempts.
        failures: u32,
    },
    /// The operator abandons the rollover (`dane-roll abort`): the previous certificate goes
    /// back if the new one was installed, then, once the live handshake on every endpoint
    /// address matches the records that remain, the abandoned key's records are retired.
    Aborting {
        /// When the phase began.
        since: Timestamp,
        /// The phase the rollover was abandoned in.
        from: PhaseName,
        /// Whether the previous certificate must go back (the new one was installed).
        restore: bool,
        /// Whether it was reinstalled.
        reinstalled: bool,
        /// Whether the service was reloaded after that.
        reloaded: bool,
        /// Failed reinstall, reload or retire attempts.
        failures: u32,
        /// Probes that did not yet show the remaining key on every address.
        probes: u32,
    },
    /// Abandoned: the key served before the rollover is live, the abandoned key's records
    /// are retired (unless it is the published next key).
    Aborted {
        /// When the phase began.
        since: Timestamp,
        /// The phase the rollover was abandoned in.
        from: PhaseName,
    },
}

/// The name of a phase, without its data: for events, status and the store's index column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PhaseName {
    /// See [`Phase::Staged`].
    Staged,
    /// See [`Phase::Published`].
    Published,
    /// See [`Phase::Aged`].
    Aged,
    /// See [`Phase::Installed`].
    Installed,
    /// See [`Phase::Verified`].
    Verified,
    /// See [`Phase::Retired`].
    Retired,
    /// See [`Phase::Done`].
    Done,
    /// See [`Phase::RolledBack`].
    RolledBack,
    /// See [`Phase::Aborting`].
    Aborting,
    /// See [`Phase::Aborted`].
    Aborted,
}

impl PhaseName {
    /// Every phase, in order.
    pub const ALL: [PhaseName; 10] = [
        PhaseName::Staged,
        PhaseName::Published,
        PhaseName::Aged,
        PhaseName::Installed,
        PhaseName::Verified,
        PhaseName::Retired,
        PhaseName::Done,
        PhaseName::RolledBack,
        PhaseName::Aborting,
        PhaseName::Aborted,
    ];

    /// The kebab-case name, as stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            PhaseName::Staged => "staged",
            PhaseName::Published => "published",
            PhaseName::Aged => "aged",
            PhaseName::Installed => "installed",
            PhaseName::Verified => "verified",
            PhaseName::Retired => "retired",
            PhaseName::Done => "done",
            PhaseName::RolledBack => "rolled-back",
            PhaseName::Aborting => "aborting",
            PhaseName::Aborted => "aborted",
        }
    }

    /// Whether a rollover in this phase is finished (nothing more will happen by itself).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            PhaseName::Done | PhaseName::RolledBack | PhaseName::Aborted
        )
    }
}

impl fmt::Display for PhaseName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Phase {
    /// The phase's name.
    pub fn name(&self) -> PhaseName {
        match self {
            Phase::Staged { .. } => PhaseName::Staged,
            Phase::Published { .. } => PhaseName::Published,
            Phase::Aged { .. } => PhaseName::Aged,
            Phase::Installed { .. } => PhaseName::Installed,
            Phase::Verified { .. } => PhaseName::Verified,
            Phase::Retired { .. } => PhaseName::Retired,
            Phase::Done { .. } => PhaseName::Done,
            Phase::RolledBack { .. } => PhaseName::RolledBack,
            Phase::Aborting { .. } => PhaseName::Aborting,
            Phase::Aborted { .. } => PhaseName::Aborted,
        }
    }

    /// When the phase began.
    pub fn since(&self) -> Timestamp {
        match self {
            Phase::Staged { since }
            | Phase::Published { since, .. }
            | Phase::Aged { since, .. }
            | Phase::Installed { since, .. }
            | Phase::Verified { since }
            | Phase::Retired { since }
            | Phase::Done { since }
            | Phase::RolledBack { since, .. }
            | Phase::Aborting { since, .. }
            | Phase::Aborted { since, .. } => *since,
        }
    }
}

/// One rollover of one key slot of a service: what moves where, and its phase.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Rollover {
    /// What it was asked to do: the service and key slot, the records' owner names and TTL,
    /// the endpoints, the keys by role and the key+chain files.
    #[serde(flatten)]
    pub request: StageRequest,
    /// The largest TTL seen for the gate's TLSA RRsets, from the look before the first record
    /// was published until the records were confirmed served everywhere: when larger than
    /// [`StageRequest::ttl`], it governs the wait (see [`super::ttl`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seen: Option<TtlSeen>,
    /// Whether the TLSA RRsets were looked at before the first record was published.
    #[serde(default)]
    pub looked: bool,
    /// Whether the operator was told that the nameservers serve another TTL than configured.
    #[serde(default)]
    pub ttl_warned: bool,
    /// Whether the operator was told that a nameserver gives no answer and holds the gate.
    #[serde(default)]
    pub nameserver_down_alerted: bool,
    /// When the operator skipped the wait with `--force`.
    pub forced: Option<Timestamp>,
    /// When the rollover began.
    pub started: Timestamp,
    /// Where it stands.
    pub phase: Phase,
}

impl Rollover {
    /// The TTL the wait counts: the configured one, or the largest seen if larger.
    pub fn governing_ttl(&self) -> u32 {
        self.ttl_seen
            .as_ref()
            .map_or(self.request.ttl, |s| s.ttl.max(self.request.ttl))
    }

    /// Where the governing TTL was seen, when it is not the configured one.
    pub fn ttl_source(&self) -> Option<&TtlSeen> {
        self.ttl_seen.as_ref().filter(|s| s.ttl > self.request.ttl)
    }

    /// 2×TTL: how long the records must be served everywhere (and then validate) before the
    /// install; the TTL is [`Rollover::governing_ttl`].
    pub fn wait(&self) -> Duration {
        Duration::from_secs(2 * u64::from(self.governing_ttl()))
    }

    /// The records that must be out during the rollover: old, new and next keys (and issuers).
    pub fn publish_set(&self) -> Vec<TlsaAt> {
        let keys = KeySet {
            current: self.request.old,
            next: self.request.next,
            new: Some(self.request.new),
            issuers: self.request.issuers.clone(),
        };
        desired(self.request.scheme, &self.request.owners, &keys)
    }

    /// The records the gate waits for (invariant 1): the new key's (and, for `current+issuer`,
    /// the issuers'). The old key's are already out, and a next key published beside does not
    /// hold the install: it is not used before the next rollover, whose gate waits for it then.
    pub fn gate_set(&self) -> Vec<TlsaAt> {
        let keys = KeySet {
            current: None,
            next: None,
            new: Some(self.request.new),
            issuers: self.request.issuers.clone(),
        };
        desired(self.request.scheme, &self.request.owners, &keys)
    }

    /// The records the service keeps once the new key is live: new, next (and issuers).
    pub fn keep_set(&self) -> Vec<TlsaAt> {
        desired(
            self.request.scheme,
            &self.request.owners,
            &self.keys_after(),
        )
    }

    /// The records the service keeps once the rollover is abandoned: old, next (and issuers).
    pub fn abandon_set(&self) -> Vec<TlsaAt> {
        let keys = KeySet {
            current: self.request.old,
            next: self.request.next,
            new: None,
            issuers: self.request.issuers.clone(),
        };
        desired(self.request.scheme, &self.request.owners, &keys)
    }

    /// The keys by role once the new key is live.
    pub fn keys_after(&self) -> KeySet {
        KeySet {
            current: Some(self.request.new),
            next: self.request.next,
            new: None,
            issuers: self.request.issuers.clone(),
        }
    }

    /// When the install may happen: T + 2×TTL, once T is known.
    pub fn eta(&self) -> Option<Timestamp> {
        match &self.phase {
            Phase::Published {
                confirmed_at: Some(t),
                ..
            } => Some(t.plus(self.wait())),
            _ => None,
        }
    }

    /// Whether the rollover is finished (done or rolled back).
    pub fn is_final(&self) -> bool {
        self.phase.name().is_final()
    }
}
