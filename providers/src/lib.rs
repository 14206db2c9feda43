//! How dane-roll's TLSA records reach DNS.
//!
//! A [`Provider`] lists, adds and removes single records at an owner name; it never replaces a
//! whole RRset with one of its own making, so other hosts' records at a shared owner name survive
//! (safety invariant 4). [`Provider::add`] of a record already there and [`Provider::remove`] of one
//! that is not are no-ops, so the rollover engine can retry after a crash; after a write the
//! provider reads the owner name back and reports a change it cannot see ([`ProviderError::NotVisible`]).
//!
//! Publishing never destroys what is not ours: a reply that cannot be read or lacks its record
//! list is an error before anything is written; [`Provider::publish`] and [`Provider::retire`]
//! compare the owner name before and after the write and report, as [`Report::vanished`], any
//! record of another writer that the write lost; [`Report::ttl`] says when the record went out with
//! another TTL than the configured one (an existing RRset keeps its TTL).
//!
//! The kinds ([`Provider`] is an enum: async methods of a trait cannot be called through `dyn`):
//! - [`rfc2136`]: DNS UPDATE (RFC 2136) with TSIG: add by §2.5.1, delete ONE record by §2.5.4
//!   (class NONE, by RDATA), list by a TCP query to the same server;
//! - [`powerdns`], [`cloudflare`], [`desec`], [`hetzner`], [`gandi`], [`route53`], [`ovh`],
//!   [`inwx`], [`transip`], [`google`]: thin HTTP clients ([`http`]) with retries ([`retry`]);
//! - [`exec`]: the operator's command; [`manual`]: prints what to change and reports it pending.
//!
//! [`child`] runs every command dane-roll starts (the exec provider here; the reload command and
//! sendmail in the main crate, which cannot be a dependency of this one): scrubbed environment,
//! process group killed at the timeout, bounded output.
//!
//! What the HTTP providers share is written once, in crate-private modules: `zones` (the
//! configured zone, else the one the API names, once per owner name), `listing` (a listed TTL,
//! a listing's records), `rrset` (an RRset plus or minus one record), `token_api` (a
//! token-header API's set-up).
//!
//! Why not dns-update (the library first chosen, with its ~70 providers): its RFC 2136 code can
//! delete one record by RDATA, but it turns every failure into a string, so BADSIG, BADKEY,
//! BADTIME, REFUSED and NOTAUTH cannot be told apart or explained, and hickory's message for a
//! BADSIG reply (its MAC check fails first) is misleading. Its Cloudflare and deSEC clients keep the
//! base URL crate-private (they cannot be tested against local fakes), the Cloudflare listing reads
//! one page of 100, and the retry count is fixed. A generic `dns-update` kind for the other
//! providers is left out: their `add_to_rrset`/`remove_from_rrset` are built differently per
//! provider (several by rewriting the whole RRset from a listing), which could not be checked
//! against invariant 4 provider by provider.
//!
//! Reconsidered for the seven providers added since (Hetzner, Gandi, Route 53, OVH, INWX,
//! TransIP, Google Cloud DNS), all of which dns-update 0.6 lists: its `Error` (as published up to
//! 0.5) is still a handful of string-carrying variants (`Api(String)`, `Response(String)`, …) beside `Unauthorized`,
//! `NotFound` and `BadRequest`, so a 429 with its `Retry-After`, a missing right (403) and an
//! unknown zone cannot be told apart and acted on (rate-limited vs failed, "set zone-id"), and a
//! change built from a whole-RRset listing (Route 53, Google, Gandi) has no concurrency guard we
//! could check. Each provider here is its own module on the shared [`http`] client, tested
//! against a fake of its documented API.
#![warn(unreachable_pub, clippy::print_stdout, clippy::print_stderr)]
#![cfg_attr(not(test), warn(clippy::unwrap_used, clippy::expect_used))]

pub mod child;
pub mod cloudflare;
pub mod desec;
mod error;
pub mod exec;
pub mod gandi;
pub mod google;
pub mod hetzner;
pub mod http;
pub mod inwx;
mod listing;
pub mod manual;
mod name;
pub mod ovh;
pub mod powerdns;
mod provider;
mod record;
mod report;
pub mod retry;
pub mod rfc2136;
pub mod route53;
mod rrset;
mod secret;
mod token_api;
pub mod transip;
mod zones;

use std::time::Duration;

pub use error::ProviderError;
pub use name::{absolute, ancestors, relative_to, same_name};
pub use provider::{CLOUDFLARE_AUTO_TTL, Provider};
pub use record::{Record, normalize_rdata};
pub use report::{Change, Report, TtlNotice};
pub use retry::RetryPolicy;
pub use secret::{MASK, Secret, mask_credentials};

/// How long one request (DNS exchange, HTTP request, command) may take, by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a write is read back for before it is reported as not visible, by default.
/// BIND's inline signing can lag behind an accepted UPDATE.
pub const DEFAULT_READBACK: Duration = Duration::from_secs(10);
/// The longest pause between two read-backs.
pub const READBACK_INTERVAL: Duration = Duration::from_millis(250);
/// The first pause between two read-backs; it doubles up to [`READBACK_INTERVAL`]. A primary
/// usually shows its write within tens of milliseconds; an API that lags gets few requests.
pub const READBACK_FIRST: Duration = Duration::from_millis(20);

/// Settings every provider shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// How long one request may take.
    pub timeout: Duration,
    /// How HTTP requests are retried.
    pub retry: RetryPolicy,
    /// How long a write is read back for.
    pub readback: Duration,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            timeout: DEFAULT_TIMEOUT,
            retry: RetryPolicy::default(),
            readback: DEFAULT_READBACK,
        }
    }
}
