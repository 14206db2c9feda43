//! The plan: which records a service wants at its owner names ("desired"), which of the
//! records it published earlier ("ours", from the store) may go ("stale"), and which records at
//! its owner names belong to someone else ("foreign", never touched).
//!
//! - scheme `current+next`: `3 1 1 <current>` + `3 1 1 <next>`, plus `3 1 1 <new>` during a rollover;
//! - scheme `current+issuer`: `3 1 1 <current>` (+ `<new>`) + `2 1 1 <issuer>` for each issuer key
//!   (Let's Encrypt picks among several intermediates: all of them, or none). A next key that is
//!   known is kept in this scheme too: a published next key is never dropped (invariant 2).
//!
//! Stale is `ours − desired`, minus every record of a protected key (current, next, new, and any
//! key seen live). Only records this service published can be stale: records of other hosts at a
//! shared owner name are not ours, whatever they hold. Too many records at an owner name is a
//! warning, never a reason to drop a record the service needs.

use std::collections::BTreeSet;

use crate::config::{Scheme, Service};

use super::types::normalize;
use super::{KeyHash, TlsaAt};

/// The keys of one key slot, by role.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeySet {
    /// The key the service serves now (before a rollover completes: the old one).
    pub current: Option<KeyHash>,
    /// The pre-generated next key, published ahead of its use (`current+next`).
    pub next: Option<KeyHash>,
    /// The key a rollover in progress moves to.
    pub new: Option<KeyHash>,
    /// The issuing CAs' keys (`current+issuer`).
    pub issuers: Vec<KeyHash>,
}

impl KeySet {
    /// The keys whose records must never be removed: current, next and new.
    pub fn protected(&self) -> Vec<KeyHash> {
        [self.current, self.next, self.new]
            .into_iter()
            .flatten()
            .collect()
    }
}

/// The desired records: for every owner name, the `3 1 1` records of the current, new and next
/// keys, and for `current+issuer` the `2 1 1` records of the issuers. Sorted, no duplicates.
pub fn desired(scheme: Scheme, owners: &[String], keys: &KeySet) -> Vec<TlsaAt> {
    let mut out = Vec::new();
    for owner in owners {
        for key in keys.protected() {
            out.push(TlsaAt::new(owner, key.dane_ee()));
        }
        if scheme == Scheme::CurrentIssuer {
            for issuer in &keys.issuers {
                out.push(TlsaAt::new(owner, issuer.dane_ta()));
            }
        }
    }
    normalize(&mut out);
    out
}

/// The records of `ours` that may be retired: not in `keep`, and not a record of any
/// `protected` key (at any owner name, with any usage). Sorted, no duplicates.
pub fn retirable(ours: &[TlsaAt], keep: &[TlsaAt], protected: &[KeyHash]) -> Vec<TlsaAt> {
    let keep: BTreeSet<(String, String)> = keep.iter().map(renormalized_key).collect();
    let mut out: Vec<TlsaAt> = ours
        .iter()
        .map(renormalized)
        .filter(|r| !keep.contains(&r.sort_key()))
        .filter(|r| !protected.iter().any(|k| r.is_of(k)))
        .collect();
    normalize(&mut out);
    out
}

fn renormalized(r: &TlsaAt) -> TlsaAt {
    TlsaAt::new(&r.owner, r.record.clone())
}

fn renormalized_key(r: &TlsaAt) -> (String, String) {
    renormalized(r).sort_key()
}

/// What the planner is given.
#[derive(Debug, Clone)]
pub struct PlanInput<'a> {
    /// How the records cover the next certificate.
    pub scheme: Scheme,
    /// The service's owner names.
    pub owners: &'a [String],
    /// The keys by role.
    pub keys: &'a KeySet,
    /// Keys seen live (probe) or otherwise known to be in use: protected like `keys.current`.
    pub live: &'a [KeyHash],
    /// The records this service published and did not retire (the store's `records_published`).
    pub ours: &'a [TlsaAt],
    /// The records DNS shows at the service's owner names (anyone's).
    pub observed: &'a [TlsaAt],
    /// The most records an owner name may hold before a warning.
    pub max_records: usize,
}

impl<'a> PlanInput<'a> {
    /// The input for `service`, whose owner names are `owners` (see [`Service::owner_names`]).
    pub fn for_service(
        service: &Service,
        owners: &'a [String],
        keys: &'a KeySet,
        ours: &'a [TlsaAt],
        observed: &'a [TlsaAt],
    ) -> PlanInput<'a> {
        PlanInput {
            scheme: service.scheme,
            owners,
            keys,
            live: &[],
            ours,
            observed,
            max_records: service.max_records,
        }
    }
}

/// Something about the plan the operator should hear of; never a reason to delete.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PlanWarning {
    /// An owner name would hold more records than `max-records`.
    TooManyRecords {
        /// The owner name.
        owner: String,
        /// How many it would hold (desired, plus stale and foreign ones still there).
        count: usize,
        /// The configured bound.
        max: usize,
    },
    /// No current key is known: the desired set covers only the next/new keys.
    NoCurrentKey,
    /// `current+issuer` without any issuer key: a key change would break DANE.
    NoIssuer,
}

impl std::fmt::Display for PlanWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanWarning::TooManyRecords { owner, count, max } => write!(
                f,
                "{owner} would hold {count} TLSA records, more than max-records = {max}: \
                 run `dane-roll prune`, or raise max-records"
            ),
            PlanWarning::NoCurrentKey => f.write_str(
                "no current key is known for this service: deploy its certificate first",
            ),
            PlanWarning::NoIssuer => f.write_str(
                "scheme current+issuer but no issuer key is known: an unplanned key change \
                 would break DANE",
            ),
        }
    }
}

/// What the service's records should be, and what to change.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordPlan {
    /// The records the service wants.
    pub desired: Vec<TlsaAt>,
    /// Desired records DNS does not show yet: to publish, one by one.
    pub missing: Vec<TlsaAt>,
    /// Our records no longer desired: may be retired, one by one (once a rollover is verified).
    pub stale: Vec<TlsaAt>,
    /// Records at our owner names that are neither ours nor desired: left alone.
    pub foreign: Vec<TlsaAt>,
    /// Things to tell the operator.
    pub warnings: Vec<PlanWarning>,
}

/// Plan the records of one key slot.
pub fn plan(input: &PlanInput<'_>) -> RecordPlan {
    let desired = desired(input.scheme, input.owners, input.keys);
    let key_set = |records: &[TlsaAt]| -> BTreeSet<(String, String)> {
        records.iter().map(renormalized_key).collect()
    };
    let desired_keys = key_set(&desired);
    let ours_keys = key_set(input.ours);
    let observed_keys = key_set(input.observed);

    let mut missing: Vec<TlsaAt> = desired
        .iter()
        .filter(|r| !observed_keys.contains(&r.sort_key()))
        .cloned()
        .collect();
    normalize(&mut missing);

    let mut protected = input.keys.protected();
    protected.extend_from_slice(input.live);
    let stale = retirable(input.ours, &desired, &protected);

    let mut foreign: Vec<TlsaAt> = input
        .observed
        .iter()
        .map(renormalized)
        .filter(|r| !ours_keys.contains(&r.sort_key()) && !desired_keys.contains(&r.sort_key()))
        .collect();
    normalize(&mut foreign);

    let mut warnings = Vec::new();
    if input.keys.current.is_none() {
        warnings.push(PlanWarning::NoCurrentKey);
    }
    if input.scheme == Scheme::CurrentIssuer && input.keys.issuers.is_empty() {
        warnings.push(PlanWarning::NoIssuer);
    }
    for owner in input.owners {
        let owner = dane_roll_providers::absolute(owner);
        let mut at_owner: BTreeSet<(String, String)> = BTreeSet::new();
        for r in desired.iter().chain(&stale).chain(&foreign) {
            if r.owner == owner {
                at_owner.insert(r.sort_key());
            }
        }
        if at_owner.len() > input.max_records {
            warnings.push(PlanWarning::TooManyRecords {
                owner,
                count: at_owner.len(),
                max: input.max_records,
            });
        }
    }

    RecordPlan {
        desired,
        missing,
        stale,
        foreign,
        warnings,
    }
}
