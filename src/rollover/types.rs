//! The small value types the rollover speaks in: [`Timestamp`] (seconds since the Unix epoch),
//! [`KeyHash`] (the SHA-256 of a key's SubjectPublicKeyInfo, which is the data of its `3 1 1`
//! record), [`Slot`] (one key algorithm of a service) and [`TlsaAt`] (a record at an owner name).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::tlsa::{Matching, OwnerName, Selector, TlsaRecord, Usage};

/// A point in time: milliseconds since the Unix epoch (UTC). What the store keeps and the
/// engine compares; the clock that makes one is injected ([`super::Clock`]).
///
/// Milliseconds, so that nothing is rounded: the 2×TTL wait is measured from the moment the
/// records were seen everywhere, not from the next whole second, and the history is monotone.
/// In JSON a time is seconds since the epoch, a whole number when it falls on a second (what
/// stores written before milliseconds hold) and a fraction with millisecond digits otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    /// `secs` seconds since the epoch.
    pub const fn from_secs(secs: i64) -> Timestamp {
        Timestamp(secs.saturating_mul(1000))
    }

    /// `ms` milliseconds since the epoch.
    pub const fn from_millis(ms: i64) -> Timestamp {
        Timestamp(ms)
    }

    /// The time `d` later (saturating).
    pub fn plus(self, d: Duration) -> Timestamp {
        let ms = i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Timestamp(self.0.saturating_add(ms))
    }

    /// How long from `self` until `later`; zero when `later` is not later.
    pub fn until(self, later: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(later.0.saturating_sub(self.0)).unwrap_or(0))
    }

    /// Whole seconds since the epoch (rounded down).
    pub fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Milliseconds since the epoch.
    pub fn as_millis(self) -> i64 {
        self.0
    }
}

impl fmt::Display for Timestamp {
    /// RFC 3339 in UTC, e.g. `2025-01-31T12:00:00Z`, with milliseconds when not on a whole
    /// second (`2025-01-31T12:00:00.250Z`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::rfc3339::format_millis(self.0))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.rem_euclid(1000) == 0 {
            s.serialize_i64(self.as_secs())
        } else {
            // Exact to the millisecond: 2^53 ms is far beyond any date we meet.
            #[allow(clippy::cast_precision_loss)]
            s.serialize_f64(self.0 as f64 / 1000.0)
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        struct Seconds;
        impl serde::de::Visitor<'_> for Seconds {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("seconds since the Unix epoch")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp::from_secs(v))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Timestamp, E> {
                Ok(Timestamp::from_secs(i64::try_from(v).unwrap_or(i64::MAX)))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Timestamp, E> {
                if !v.is_finite() {
                    return Err(E::custom(format!("{v} is not a time")));
                }
                // Rounded to the millisecond; the cast saturates outside i64's range.
                #[allow(clippy::cast_possible_truncation)]
                Ok(Timestamp((v * 1000.0).round() as i64))
            }
        }
        d.deserialize_any(Seconds)
    }
}

/// The SHA-256 of a public key's SubjectPublicKeyInfo DER: the key's identity, and the data of
/// its `3 1 1` (and `2 1 1`) record. Written as 64 lower-case hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyHash(pub [u8; 32]);

/// Text that is not 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not a SHA-256 key hash: write 64 hex digits")]
pub struct KeyHashError(pub String);

impl KeyHash {
    /// The hash of a SubjectPublicKeyInfo DER (see [`crate::pki::spki_der`]).
    pub fn of_spki_der(spki: &[u8]) -> KeyHash {
        KeyHash(openssl::sha::sha256(spki))
    }

    /// The `3 1 1` (DANE-EE, SPKI, SHA-256) record for this key.
    pub fn dane_ee(&self) -> TlsaRecord {
        self.record(Usage::DaneEe)
    }

    /// The `2 1 1` (DANE-TA, SPKI, SHA-256) record for this (issuer) key.
    pub fn dane_ta(&self) -> TlsaRecord {
        self.record(Usage::DaneTa)
    }

    fn record(&self, usage: Usage) -> TlsaRecord {
        TlsaRecord {
            usage,
            selector: Selector::Spki,
            matching: Matching::Sha256,
            data: self.0.to_vec(),
        }
    }

    /// Whether `record` is a SPKI SHA-256 record of this key (any usage).
    pub fn matches(&self, record: &TlsaRecord) -> bool {
        record.selector == Selector::Spki
            && record.matching == Matching::Sha256
            && record.data == self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// The first 12 hex digits, for messages.
    pub fn short(&self) -> String {
        let mut s = self.to_hex();
        s.truncate(12);
        s
    }
}

impl FromStr for KeyHash {
    type Err = KeyHashError;

    fn from_str(s: &str) -> Result<KeyHash, KeyHashError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.trim(), &mut out).map_err(|_| KeyHashError(s.to_owned()))?;
        Ok(KeyHash(out))
    }
}

impl fmt::Display for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for KeyHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyHash({})", self.short())
    }
}

impl Serialize for KeyHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for KeyHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<KeyHash, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// One key slot of a service: the key algorithm a certificate's key belongs to. A service rolls
/// each slot separately, so one that serves an RSA and an ECDSA certificate side by side
/// (`chain-files`) has two rollovers. A service with one certificate (`chain-file`) has the slot
/// of its key's algorithm too, not [`Slot::Default`]: that slot holds only records tied to no
/// key of the service (records found at its owner names and retired, records `publish` matched
/// to no key).
///
/// The string forms (`default`, `ec`, `ed`, `rsa`) are what the store, the CLI and the stored
/// JSON use, and the algorithm names of `chain-files`. The variants are in the order of their
/// names, so slots sort as their names do.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Slot {
    /// Records tied to no key of the service (`default`).
    #[default]
    Default,
    /// ECDSA keys (`ec`).
    Ec,
    /// Ed25519 keys (`ed`).
    Ed,
    /// RSA and RSA-PSS keys (`rsa`).
    Rsa,
}

impl Slot {
    /// The name of [`Slot::Default`], the slot of records tied to no key of the service (a
    /// service with one certificate has the slot of its key's algorithm, not this one).
    pub const DEFAULT: &'static str = "default";

    /// Every slot, in the order of their names.
    pub const ALL: [Slot; 4] = [Slot::Default, Slot::Ec, Slot::Ed, Slot::Rsa];

    /// The slot name, as stored and shown.
    pub fn as_str(&self) -> &'static str {
        match self {
            Slot::Default => Slot::DEFAULT,
            Slot::Ec => "ec",
            Slot::Ed => "ed",
            Slot::Rsa => "rsa",
        }
    }
}

/// A slot name that is none of the slots.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown key slot `{0}`: a key slot is `ec`, `ed` or `rsa` (the key algorithms of \
     `chain-files`), or `default`"
)]
pub struct SlotError(pub String);

impl FromStr for Slot {
    type Err = SlotError;

    fn from_str(name: &str) -> Result<Slot, SlotError> {
        Slot::ALL
            .into_iter()
            .find(|s| s.as_str() == name)
            .ok_or_else(|| SlotError(name.to_owned()))
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One TLSA record at its owner name (absolute, lower case, one final dot), without TTL: the
/// unit that is published and retired one at a time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TlsaAt {
    /// The owner name, `_25._tcp.mail.example.com.`.
    pub owner: OwnerName,
    /// The record data.
    pub record: TlsaRecord,
}

impl TlsaAt {
    /// `record` at `owner`.
    pub fn new(owner: &OwnerName, record: TlsaRecord) -> TlsaAt {
        TlsaAt {
            owner: owner.clone(),
            record,
        }
    }

    /// The record as a provider takes it.
    pub fn to_provider(&self, ttl: u32) -> dane_roll_providers::Record {
        dane_roll_providers::Record {
            owner: self.owner.to_string(),
            ttl,
            rdata: self.record.to_string(),
        }
    }

    /// Whether this is a SPKI SHA-256 record of `key` (any usage).
    pub fn is_of(&self, key: &KeyHash) -> bool {
        key.matches(&self.record)
    }

    /// A sort key: owner, then the presentation of the data.
    pub(crate) fn sort_key(&self) -> (String, String) {
        (self.owner.to_string(), self.record.to_string())
    }
}

impl fmt::Display for TlsaAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} TLSA {}", self.owner, self.record)
    }
}

/// Sort and remove duplicates.
pub(crate) fn normalize(records: &mut Vec<TlsaAt>) {
    records.sort_by_key(TlsaAt::sort_key);
    records.dedup();
}
