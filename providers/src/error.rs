//! The errors of the providers, worded for the postmaster: what happened and what to check.
//!
//! No variant carries a secret: messages built from server replies go through
//! [`crate::Secret::scrub`] first, and keys are named, never shown.

use std::time::Duration;

/// Why a provider could not list, add or remove a record.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// The TSIG key's secret differs from the one the server has (TSIG error BADSIG).
    #[error(
        "{server}: the server rejected the TSIG signature: the key secret differs from the server's (key {key})"
    )]
    TsigBadSig {
        /// The server.
        server: String,
        /// The key name.
        key: String,
    },
    /// The server does not know the key name (TSIG error BADKEY).
    #[error(
        "{server}: the server does not know the TSIG key {key} (BADKEY): check the key name and that the server's configuration includes it"
    )]
    TsigBadKey {
        /// The server.
        server: String,
        /// The key name.
        key: String,
    },
    /// The clocks differ by more than the TSIG fudge (TSIG error BADTIME).
    #[error(
        "{server}: the server rejected the TSIG time (BADTIME): this machine's clock and the server's differ; check NTP"
    )]
    TsigBadTime {
        /// The server.
        server: String,
    },
    /// Another TSIG failure, or a reply whose signature does not verify.
    #[error("{server}: TSIG failure: {detail}")]
    Tsig {
        /// The server.
        server: String,
        /// What went wrong.
        detail: String,
    },
    /// The TSIG key could not be used (file syntax, algorithm, secret encoding).
    #[error("TSIG key: {0}")]
    Key(String),
    /// The server refused the update (no key, or the key may not update this zone).
    #[error(
        "{server}: the server refused the update: check allow-update for this key/zone ({zone})"
    )]
    Refused {
        /// The server.
        server: String,
        /// The zone.
        zone: String,
    },
    /// The server is not authoritative for the zone (NOTAUTH without a TSIG error).
    #[error(
        "{server}: the server is not authoritative for zone {zone} (NOTAUTH): check the zone name and that this is its primary"
    )]
    NotAuth {
        /// The server.
        server: String,
        /// The zone.
        zone: String,
    },
    /// The zone does not exist there (NXDOMAIN / NOTZONE, or no provider zone holds the name).
    #[error("{server}: no zone {zone} there: {detail}")]
    NoZone {
        /// The server or API.
        server: String,
        /// The zone or name looked for.
        zone: String,
        /// What was seen.
        detail: String,
    },
    /// Any other DNS response code.
    #[error("{server}: the server answered {rcode} to the {what}")]
    Rcode {
        /// The server.
        server: String,
        /// The response code.
        rcode: String,
        /// What was sent (update, query).
        what: &'static str,
    },
    /// No answer in time.
    #[error("{server}: no answer within {}s ({what})", after.as_secs_f64())]
    Timeout {
        /// The server or API.
        server: String,
        /// What was waited for.
        what: String,
        /// How long.
        after: Duration,
    },
    /// The connection failed.
    #[error("{server}: cannot connect: {detail}")]
    Connect {
        /// The server or API.
        server: String,
        /// What the system said.
        detail: String,
    },
    /// A reply that makes no sense.
    #[error("{server}: unexpected reply: {detail}")]
    BadReply {
        /// The server or API.
        server: String,
        /// What was wrong with it.
        detail: String,
    },
    /// HTTP 401: the credentials were refused.
    #[error("{provider}: the API refused the credentials (HTTP 401): check {what}")]
    Unauthorized {
        /// The provider kind.
        provider: &'static str,
        /// Which credential (token, API key).
        what: &'static str,
    },
    /// HTTP 403: the credentials lack a permission.
    #[error("{provider}: the credentials may not do this (HTTP 403): {detail}")]
    Forbidden {
        /// The provider kind.
        provider: &'static str,
        /// The API's message.
        detail: String,
    },
    /// HTTP 404 on something that must exist.
    #[error("{provider}: not found (HTTP 404): {what}")]
    NotFound {
        /// The provider kind.
        provider: &'static str,
        /// What was looked for.
        what: String,
    },
    /// Any other refusal by the API (400, 409, 422, …).
    #[error("{provider}: the API rejected the request (HTTP {status}): {detail}")]
    Rejected {
        /// The provider kind.
        provider: &'static str,
        /// The HTTP status.
        status: u16,
        /// The API's message.
        detail: String,
    },
    /// 429 or 5xx until the retry budget ran out.
    #[error("{provider}: still failing after {tries} tries (last: HTTP {status}): {detail}")]
    RetriesExhausted {
        /// The provider kind.
        provider: &'static str,
        /// Tries made.
        tries: u32,
        /// The last HTTP status (0: no answer).
        status: u16,
        /// The last message.
        detail: String,
    },
    /// The API asks for a longer pause (`Retry-After`) than this run's retry budget: nothing
    /// failed, the change is left for the next run (after that pause).
    #[error(
        "{provider}: rate-limited: the API asks to wait {}s, longer than this run waits; the next run retries ({detail})",
        retry_after.as_secs()
    )]
    RateLimited {
        /// The provider kind.
        provider: &'static str,
        /// The pause the API asked for.
        retry_after: Duration,
        /// The API's message.
        detail: String,
    },
    /// The TTL is outside what the provider accepts; nothing was sent.
    #[error("{provider}: TTL {ttl} cannot be published: {detail}")]
    Ttl {
        /// The provider kind.
        provider: &'static str,
        /// The TTL asked for.
        ttl: u32,
        /// The provider's rule and what to set.
        detail: String,
    },
    /// The provider accepted the change but does not show it (read-back).
    #[error(
        "{provider}: the change was accepted but is not visible: {owner} TLSA {rdata} is {state} after {}s",
        after.as_secs_f64()
    )]
    NotVisible {
        /// The provider kind.
        provider: &'static str,
        /// The owner name.
        owner: String,
        /// The record data.
        rdata: String,
        /// "still missing" or "still present".
        state: &'static str,
        /// How long it was read back for.
        after: Duration,
    },
    /// The `exec` command failed.
    #[error("exec provider: {command} {action} failed: {detail}")]
    Exec {
        /// The program.
        command: String,
        /// The action (add, remove, list).
        action: &'static str,
        /// Exit status and the end of its standard error.
        detail: String,
    },
    /// A record or name that cannot be published as given.
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// The provider cannot do this.
    #[error("{provider} provider cannot {action}: {why}")]
    Unsupported {
        /// The provider kind.
        provider: &'static str,
        /// The action.
        action: &'static str,
        /// Why, and what to do instead.
        why: &'static str,
    },
}
