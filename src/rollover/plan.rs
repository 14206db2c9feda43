//! The plan: which records a service wants at its owner names ("desired"), and which of the
//! records it published earlier ("ours", from the store) may go ("stale"). Records at its owner
//! names that it never published belong to someone else ("foreign") and are never stale.
//!
//! - scheme `current+next`: `3 1 1 <current>` + `3 1 1 <next>`, plus `3 1 1 <new>` during a rollover;
//! - scheme `current+issuer`: `3 1 1 <current>` (+ `<new>`) + `2 1 1 <issuer>` for each issuer key
//!   (Let's Encrypt picks among several intermediates: all of them, or none). A next key that is
//!   known is kept in this scheme too: a published next key is never dropped (invariant 2).
//!
//! Stale is `ours − desired`, minus every record of a protected key (current, next, new, and any
//! key seen live). Only records this service published can be stale: records of other hosts at a
//! shared owner name are not ours, whatever they hold. Too many records at an owner name is the
//! monitor's warning (`max-records`), never a reason to drop a record the service needs.

use std::collections::BTreeSet;

use crate::config::Scheme;

use super::types::normalize;
use super::{KeyHash, OwnerName, TlsaAt};

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
pub fn desired(scheme: Scheme, owners: &[OwnerName], keys: &KeySet) -> Vec<TlsaAt> {
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
    // An owner name has one spelling ([`OwnerName`]), so the records compare as they are.
    let keep: BTreeSet<(String, String)> = keep.iter().map(TlsaAt::sort_key).collect();
    let mut out: Vec<TlsaAt> = ours
        .iter()
        .filter(|r| !keep.contains(&r.sort_key()))
        .filter(|r| !protected.iter().any(|k| r.is_of(k)))
        .cloned()
        .collect();
    normalize(&mut out);
    out
}
