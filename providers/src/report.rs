//! What a publish or retire did ([`Report`]: the [`Change`], other writers' records the write
//! lost, the TTL the record is served with when it is not the configured one).

use std::fmt;

use crate::Record;

/// What an add or remove did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The record was added, and the provider shows it.
    Added,
    /// The record was there already; nothing was sent.
    AlreadyPresent,
    /// The record was removed, and the provider no longer shows it.
    Removed,
    /// The record was not there; nothing was sent.
    AlreadyAbsent,
    /// The operator has to make the change (the `manual` provider): these lines say how.
    Pending {
        /// Zone-file and nsupdate lines for the operator.
        instructions: String,
    },
}

/// What a publish or retire did, and what the caller should know about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    /// The change.
    pub change: Change,
    /// Records at the owner name that are not the one written, seen before the write and missing
    /// after it: another writer's records lost (or removed by that writer meanwhile). Alert.
    pub vanished: Vec<Record>,
    /// The TTL the record is served with, when that is not the configured one.
    pub ttl: Option<TtlNotice>,
}

/// The record is served with another TTL than the configured one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TtlNotice {
    /// The owner name.
    pub owner: String,
    /// The configured TTL.
    pub configured: u32,
    /// The TTL the record is served with: the RRset's.
    pub served: u32,
    /// Why.
    pub why: &'static str,
}

impl fmt::Display for TtlNotice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: TLSA served with TTL {}, not the configured {}: {}",
            self.owner, self.served, self.configured, self.why
        )?;
        if self.served > self.configured {
            write!(
                f,
                "; resolvers may cache it for {} s: set the service's `ttl` to {} or more",
                self.served, self.served
            )?;
        }
        Ok(())
    }
}

impl Report {
    pub(crate) fn plain(change: Change) -> Report {
        Report {
            change,
            vanished: Vec::new(),
            ttl: None,
        }
    }
}

/// The records of `before` other than `ours` that `after` lacks.
pub(crate) fn vanished(before: &[Record], after: &[Record], ours: &Record) -> Vec<Record> {
    before
        .iter()
        .filter(|r| !r.same(ours) && !after.iter().any(|a| a.same(r)))
        .cloned()
        .collect()
}
