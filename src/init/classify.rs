//! The live TLSA RRset at an owner name, each record classified by what it matches: the key
//! Postfix serves now, the ACME client's next key, an issuer in the served chain, or nothing.
//! `init` reports it so that the operator knows which hand-published records dane-roll's first
//! rollover keeps and which it will count as foreign.

use openssl::pkey::{PKeyRef, Public};
use openssl::x509::{X509, X509Ref};

use crate::tlsa::{Subject, TlsaRecord};

/// What a record matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The live certificate or its key.
    LiveKey,
    /// The ACME client's next key.
    NextKey,
    /// A CA certificate of the live chain.
    Issuer,
    /// None of them (an old key, a typo, another server's).
    Nothing,
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::LiveKey => "matches the live key",
            Role::NextKey => "matches the ACME client's next key",
            Role::Issuer => "matches an issuer of the live chain",
            Role::Nothing => "matches nothing known",
        })
    }
}

/// The keys and certificates a record is compared with.
#[derive(Default)]
pub struct Known<'a> {
    /// The live leaf certificate.
    pub leaf: Option<&'a X509Ref>,
    /// The CA certificates of the live chain.
    pub issuers: &'a [X509],
    /// The next key's public half.
    pub next: Option<&'a PKeyRef<Public>>,
}

/// Whether `record`'s data is computed from `subject` with its own selector and matching type.
fn matches(record: &TlsaRecord, subject: &Subject<'_>) -> bool {
    TlsaRecord::compute(record.usage, record.selector, record.matching, subject)
        .is_ok_and(|computed| computed.data == record.data)
}

/// What `record` matches, the live key first.
pub fn classify(record: &TlsaRecord, known: &Known<'_>) -> Role {
    if known
        .leaf
        .is_some_and(|leaf| matches(record, &Subject::Certificate(leaf)))
    {
        return Role::LiveKey;
    }
    if known
        .next
        .is_some_and(|key| matches(record, &Subject::PublicKey(key)))
    {
        return Role::NextKey;
    }
    if known
        .issuers
        .iter()
        .any(|ca| matches(record, &Subject::Certificate(ca)))
    {
        return Role::Issuer;
    }
    Role::Nothing
}

/// The classified RRset of one owner name.
#[derive(Debug, Clone)]
pub struct OwnerRecords {
    /// The owner name.
    pub owner: crate::tlsa::OwnerName,
    /// The lookup's DNSSEC status, in words (`secure`, `insecure`, …), or why it failed.
    pub status: String,
    /// Each record and what it matches.
    pub records: Vec<(TlsaRecord, Role)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tlsa::{Matching, Selector, Usage};
    use openssl::pkey::PKey;

    fn key() -> PKey<openssl::pkey::Private> {
        crate::pki::generate_key(crate::config::KeyType::Ec256).unwrap()
    }

    fn public(key: &PKey<openssl::pkey::Private>) -> PKey<Public> {
        PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap()
    }

    fn record(usage: Usage, matching: Matching, key: &PKeyRef<Public>) -> TlsaRecord {
        TlsaRecord::compute(usage, Selector::Spki, matching, &Subject::PublicKey(key)).unwrap()
    }

    fn cert(key: &PKey<openssl::pkey::Private>) -> X509 {
        let mut b = X509::builder().unwrap();
        b.set_pubkey(key).unwrap();
        b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(key, openssl::hash::MessageDigest::sha256()).unwrap();
        b.build()
    }

    #[test]
    fn live_next_issuer_and_nothing() {
        let (live, next, ca, other) = (key(), key(), key(), key());
        let leaf = cert(&live);
        let issuers = vec![cert(&ca)];
        let next_pub = public(&next);
        let known = Known {
            leaf: Some(&leaf),
            issuers: &issuers,
            next: Some(&next_pub),
        };
        let live_311 = record(Usage::DaneEe, Matching::Sha256, &public(&live));
        assert_eq!(classify(&live_311, &known), Role::LiveKey);
        let live_312 = record(Usage::DaneEe, Matching::Sha512, &public(&live));
        assert_eq!(classify(&live_312, &known), Role::LiveKey);
        let next_311 = record(Usage::DaneEe, Matching::Sha256, &next_pub);
        assert_eq!(classify(&next_311, &known), Role::NextKey);
        let ca_211 = record(Usage::DaneTa, Matching::Sha256, &public(&ca));
        assert_eq!(classify(&ca_211, &known), Role::Issuer);
        let stale = record(Usage::DaneEe, Matching::Sha256, &public(&other));
        assert_eq!(classify(&stale, &known), Role::Nothing);
        // Nothing known: nothing matches.
        assert_eq!(classify(&live_311, &Known::default()), Role::Nothing);
    }
}
