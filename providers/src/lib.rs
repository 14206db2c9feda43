//! How dane-roll's TLSA records reach DNS.
//!
//! A provider lists, adds and removes single records at an owner name; it never replaces a whole
//! RRset, so other hosts' records at a shared owner name survive (safety invariant 4). The
//! implementations (RFC 2136 with TSIG, provider APIs, `exec`, `manual`) arrive with the DNS work;
//! this crate holds the contract they share.

/// One TLSA record as a provider sees it: where it lives and its presentation-format data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// The owner name, absolute, e.g. `_25._tcp.mail.example.com.`.
    pub owner: String,
    /// The TTL in seconds.
    pub ttl: u32,
    /// The record data as `usage selector matching hex`, hex in lowercase.
    pub rdata: String,
}
