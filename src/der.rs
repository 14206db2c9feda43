//! The DER the crate reads without OpenSSL: where one element ends (to split concatenated DER
//! and spot a truncated file), and of a certificate its SubjectPublicKeyInfo (as it was sent),
//! its notAfter and the named curve of an EC key.
//!
//! Through `x509-parser` (pure Rust, zero-copy, fuzzed upstream) rather than OpenSSL, because
//! OpenSSL's `d2i` functions do not say how many bytes they used (splitting concatenated DER and
//! spotting truncation need the announced length), and OpenSSL 3's decoders and key encoders
//! cost more than everything else the probe and `status` do with a certificate (measured:
//! `benches/probe.sh`, `benches/rollover.sh`; this module against the hand-written reader it
//! replaced: `benches/der.sh`).
//!
//! Malformed input of any kind is `None`, never a panic; callers fall back to OpenSSL or say the
//! file is damaged.
//!
//! This file uses nothing of the crate but `x509-parser`, so `benches/der.sh` can build it alone.

use x509_parser::asn1_rs::{FromDer, Header, Length};
use x509_parser::certificate::X509CertificateParser;
use x509_parser::nom::Parser;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_KEY_TYPE_EC_PUBLIC_KEY, OID_NIST_EC_P384, OID_NIST_EC_P521,
};
use x509_parser::x509::SubjectPublicKeyInfo;

/// What the crate reads of one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CertificateFacts<'a> {
    /// The SubjectPublicKeyInfo, as it was sent: the data `3 1 x` records hash.
    pub spki: &'a [u8],
    /// The end of validity, in seconds since the epoch.
    pub not_after: i64,
    /// The start of validity, in seconds since the epoch.
    pub not_before: i64,
}

/// The total length (header included) that the element at the start of `input` announces,
/// whether or not `input` holds that many bytes; `None` when there is no DER header (or an
/// indefinite length, which DER forbids).
pub(crate) fn announced_length(input: &[u8]) -> Option<usize> {
    let (rest, header) = Header::from_der(input).ok()?;
    let Length::Definite(content) = header.length() else {
        return None;
    };
    (input.len() - rest.len()).checked_add(content)
}

/// The SubjectPublicKeyInfo and notAfter of the certificate at the start of `der` (bytes after
/// it are ignored); `None` when it is not a certificate.
pub(crate) fn certificate(der: &[u8]) -> Option<CertificateFacts<'_>> {
    // Extensions are not read: their structure is checked, their contents are not decoded.
    let (_, cert) = X509CertificateParser::new()
        .with_deep_parse_extensions(false)
        .parse(der)
        .ok()?;
    Some(CertificateFacts {
        spki: cert.tbs_certificate.subject_pki.raw,
        not_after: cert.tbs_certificate.validity.not_after.timestamp(),
        not_before: cert.tbs_certificate.validity.not_before.timestamp(),
    })
}

/// The SubjectPublicKeyInfo inside a certificate's DER, as it was sent.
pub(crate) fn certificate_spki(der: &[u8]) -> Option<&[u8]> {
    certificate(der).map(|c| c.spki)
}

/// A certificate's notAfter, in seconds since the epoch.
pub(crate) fn certificate_not_after(der: &[u8]) -> Option<i64> {
    certificate(der).map(|c| c.not_after)
}

/// The curve of an `id-ecPublicKey` SubjectPublicKeyInfo with one of the named curves that DANE
/// deployments use (`P-256`, `P-384`, `P-521`); `None` for any other key or curve.
pub(crate) fn named_ec_curve(spki: &[u8]) -> Option<&'static str> {
    let (_, spki) = SubjectPublicKeyInfo::from_der(spki).ok()?;
    if spki.algorithm.algorithm != OID_KEY_TYPE_EC_PUBLIC_KEY {
        return None;
    }
    let curve = spki.algorithm.parameters.as_ref()?.as_oid().ok()?;
    [
        (OID_EC_P256, "P-256"),
        (OID_NIST_EC_P384, "P-384"),
        (OID_NIST_EC_P521, "P-521"),
    ]
    .into_iter()
    .find(|(oid, _)| *oid == curve)
    .map(|(_, name)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::pkey::PKey;
    use openssl::x509::{X509, X509Builder, X509NameBuilder};

    /// A self-signed EC P-256 certificate with `not_after` as ASN.1 time text (`YYMMDDHHMMSSZ`
    /// or `YYYYMMDDHHMMSSZ`), its DER and its key's SPKI DER.
    fn certificate_until(not_after: &str) -> (Vec<u8>, Vec<u8>) {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", "mx.example").unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_str("20250101000000Z").unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_str(not_after).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        let cert: X509 = b.build();
        (cert.to_der().unwrap(), key.public_key_to_der().unwrap())
    }

    #[test]
    fn spki_and_not_after_in_both_time_forms() {
        for (text, secs) in [
            ("300101000000Z", 1_893_456_000),   // UTCTime
            ("491231235959Z", 2_524_607_999),   // UTCTime: 49 is 2049
            ("20500101000000Z", 2_524_608_000), // GeneralizedTime
            ("99991231235959Z", 253_402_300_799),
        ] {
            let (der, spki) = certificate_until(text);
            let facts = certificate(&der).unwrap();
            assert_eq!(facts.not_after, secs, "{text}");
            assert_eq!(facts.spki, spki.as_slice());
            assert_eq!(certificate_not_after(&der), Some(secs));
            assert_eq!(certificate_spki(&der), Some(spki.as_slice()));
            assert_eq!(named_ec_curve(facts.spki), Some("P-256"));
            // Bytes after the certificate are not its business.
            let mut longer = der.clone();
            longer.extend_from_slice(&der);
            assert_eq!(certificate(&longer), Some(facts));
            assert_eq!(announced_length(&longer), Some(der.len()));
        }
    }

    #[test]
    fn announced_length_of_short_and_long_forms_even_when_truncated() {
        assert_eq!(announced_length(&[0x30, 0x03, 1, 2, 3]), Some(5));
        assert_eq!(announced_length(&[0x30, 0x81, 0x80]), Some(3 + 0x80));
        assert_eq!(announced_length(&[0x30, 0x82, 0x01, 0x00]), Some(4 + 0x100));
        assert_eq!(announced_length(&[0x30, 0x80, 0, 0]), None); // indefinite: not DER
        assert_eq!(announced_length(&[0x30]), None);
        assert_eq!(announced_length(&[]), None);
    }

    /// Regression (fuzzing, on the hand-written reader): a notAfter whose third byte is inside a
    /// UTF-8 character panicked on a string slice. A server can send such a certificate to the
    /// probe: it is `None` now as then, and so is every truncation of a good certificate.
    #[test]
    fn malformed_certificates_are_none_not_a_panic() {
        let (der, spki) = certificate_until("300101000000Z");
        let at = der.windows(13).position(|w| w == b"300101000000Z").unwrap();
        for text in [
            "1\u{e9}345678901Z",
            "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}Z",
            "3001010000\u{e9}Z",
        ] {
            let mut bad = der.clone();
            bad.splice(at..at + 13, text.bytes().take(13));
            if text.len() == 13 {
                assert_eq!(certificate_not_after(&bad), None, "{text:?}");
            }
        }
        for end in 0..der.len() {
            assert_eq!(certificate(&der[..end]), None);
            let _ = announced_length(&der[..end]);
        }
        for end in 0..spki.len() {
            let _ = named_ec_curve(&spki[..end]);
        }
        assert_eq!(certificate(&[0x30, 0x82, 0xff]), None);
        assert_eq!(certificate(&[]), None);
    }
}
