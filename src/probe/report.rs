//! What a probe found, per endpoint address: the verdict, each distinct key the server presented
//! with its chain and DANE outcome, the records that were ignored or matched nothing, and the
//! words for OpenSSL's verification codes. Everything serialises to JSON.

use std::borrow::Cow;
use std::net::SocketAddr;

use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::x509::{X509, X509Ref, X509VerifyResult};
use serde::{Serialize, Serializer};

use crate::config::Protocol;
use crate::pki;
use crate::tlsa::TlsaRecord;

use super::KeyAlgorithm;

/// The verdict for one address: would a DANE-enforcing sender deliver mail to it?
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Every key the server presents matches a usable TLSA record.
    Pass,
    /// At least one key matches nothing, or TLS cannot start: senders would defer mail.
    Fail,
    /// The probe could not tell (timeout, connection refused or reset, temporary refusal).
    Unknown,
}

/// The outcome of probing one address.
#[derive(Debug, Clone, Serialize)]
pub struct AddressReport {
    /// The host name: SNI and the DANE base domain.
    pub host: String,
    /// The address and port probed.
    pub address: SocketAddr,
    /// How TLS was started.
    #[serde(serialize_with = "protocol_name")]
    pub protocol: Protocol,
    /// The verdict.
    pub verdict: Verdict,
    /// Why, in words, when the verdict is not [`Verdict::Pass`].
    pub reason: Option<String>,
    /// Each distinct key the server presented (deduplicated by SubjectPublicKeyInfo).
    pub keys: Vec<KeyReport>,
    /// One handshake attempt per key algorithm asked for.
    pub attempts: Vec<Attempt>,
    /// Records given that took no part in verification, and why.
    pub ignored_records: Vec<IgnoredRecord>,
    /// Usable records that matched no certificate the server presented (stale, or for a key not
    /// yet deployed).
    pub unmatched_records: Vec<TlsaRecord>,
    /// Wall-clock time of the whole probe of this address, in milliseconds.
    pub elapsed_ms: u64,
}

impl AddressReport {
    /// The report for `target` when its probe gave no outcome (it did not run or did not
    /// finish): [`Verdict::Unknown`], `reason` saying why, nothing seen.
    pub fn unknown(target: &super::ProbeTarget, reason: String) -> AddressReport {
        AddressReport {
            host: target.host.clone(),
            address: target.addr,
            protocol: target.protocol,
            verdict: Verdict::Unknown,
            reason: Some(reason),
            keys: Vec::new(),
            attempts: Vec::new(),
            ignored_records: Vec::new(),
            unmatched_records: Vec::new(),
            elapsed_ms: 0,
        }
    }
}

/// One handshake, offering only one family of signature algorithms.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    /// The family offered.
    pub algorithm: KeyAlgorithm,
    /// What happened.
    #[serde(flatten)]
    pub outcome: AttemptOutcome,
}

/// What one handshake attempt gave.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum AttemptOutcome {
    /// The server presented a key: the index into [`AddressReport::keys`].
    Key {
        /// Index into [`AddressReport::keys`].
        key: usize,
    },
    /// The server has no key for this algorithm (it refused the handshake with an alert).
    NoKey {
        /// OpenSSL's words for the refusal.
        detail: String,
    },
    /// The attempt failed before a key was seen.
    Error {
        /// What went wrong.
        error: String,
        /// Whether it means "mail would not flow" rather than "cannot tell".
        definitive: bool,
    },
    /// Not tried: an earlier attempt already failed in the clear-text dialogue, which does not
    /// depend on the algorithm.
    Skipped,
}

/// One key the server presented, with its chain and DANE outcome.
#[derive(Debug, Clone, Serialize)]
pub struct KeyReport {
    /// The key type of the leaf certificate, e.g. "EC P-256", "RSA 2048".
    pub key_type: String,
    /// SHA-256 of the leaf's SubjectPublicKeyInfo, hex (what `3 1 1` publishes).
    pub spki_sha256: String,
    /// The algorithm families for which the server presented this key.
    pub algorithms: Vec<KeyAlgorithm>,
    /// Whether OpenSSL's DANE verification accepted the chain.
    pub matched: bool,
    /// The record that matched.
    pub matched_record: Option<TlsaRecord>,
    /// The depth of the match: 0 the server's certificate, 1 its issuer…
    pub match_depth: Option<u32>,
    /// Whether the match was a bare public key (DANE-TA with the CA certificate not sent).
    pub matched_by_public_key: bool,
    /// OpenSSL's verification result code (`X509_V_*`), 0 when verified.
    pub verify_code: i32,
    /// Why the chain was not accepted, in words.
    pub reason: Option<String>,
    /// The protocol version negotiated, e.g. "TLSv1.3".
    pub tls_version: String,
    /// The cipher suite negotiated.
    pub cipher: String,
    /// The chain as served, the server's certificate first.
    pub chain: Vec<CertInfo>,
    /// The same chain in DER, for the Web PKI verdict MTA-STS needs (`check` drops it once
    /// judged; never serialised).
    #[serde(skip)]
    pub chain_der: Vec<Vec<u8>>,
}

/// One certificate of a served chain.
#[derive(Debug, Clone, Serialize)]
pub struct CertInfo {
    /// The subject, e.g. `CN=mail.example.com`.
    pub subject: String,
    /// The issuer.
    pub issuer: String,
    /// The key type.
    pub key_type: String,
    /// SHA-256 of the SubjectPublicKeyInfo, hex.
    pub spki_sha256: String,
    /// The end of validity, RFC 3339 UTC.
    pub not_after: String,
    /// The start of validity, RFC 3339 UTC (with `not_after`, the certificate's lifetime).
    pub not_before: String,
    /// Whether it has expired (a warning only under DANE-EE).
    pub expired: bool,
    /// Whether it is self-signed (a root, when it is a CA): what a DANE-TA record pins.
    pub self_signed: bool,
}

/// A record that took no part in verification.
#[derive(Debug, Clone, Serialize)]
pub struct IgnoredRecord {
    /// The record.
    pub record: TlsaRecord,
    /// Why.
    pub reason: String,
}

fn protocol_name<S: Serializer>(protocol: &Protocol, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(protocol.as_str())
}

impl CertInfo {
    /// Describe one certificate. The key's type, its hash and the end of validity are read from
    /// the certificate's DER where that is cheaper than asking OpenSSL (see `key_type`).
    pub fn of(cert: &X509Ref) -> CertInfo {
        let der = cert.to_der().ok();
        let facts = der.as_deref().and_then(crate::der::certificate);
        // See `spki_of_certificate` for the fallback.
        let spki = match facts {
            Some(f) => Some(Cow::Borrowed(f.spki)),
            None => openssl_spki(cert).map(Cow::Owned),
        };
        let spki = spki.as_deref();
        let spki_sha256 = spki
            .map(|spki| hex::encode(sha256(spki)))
            .unwrap_or_default();
        let not_after = facts.map(|f| f.not_after);
        let (not_after_text, expired) = match not_after {
            Some(secs) => (crate::rfc3339::format_secs(secs), secs < now_secs()),
            None => (
                rfc3339(cert.not_after()).unwrap_or_else(|| cert.not_after().to_string()),
                Asn1Time::days_from_now(0).is_ok_and(|now| cert.not_after() < now),
            ),
        };
        let not_before = match facts {
            Some(f) => crate::rfc3339::format_secs(f.not_before),
            None => rfc3339(cert.not_before()).unwrap_or_else(|| cert.not_before().to_string()),
        };
        // The names first: a signature check only for the rare certificate that names itself.
        let self_signed = cert
            .subject_name()
            .try_cmp(cert.issuer_name())
            .is_ok_and(|o| o.is_eq())
            && cert
                .public_key()
                .and_then(|k| cert.verify(&k))
                .unwrap_or(false);
        CertInfo {
            subject: pki::subject_line(cert),
            issuer: pki::name_line(cert.issuer_name()),
            key_type: key_type(cert, spki),
            spki_sha256,
            not_after: not_after_text,
            not_before,
            expired,
            self_signed,
        }
    }
}

/// Now, in seconds since the epoch.
fn now_secs() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
    }
}

/// The key type in [`pki::KeyType`]'s words (`EC P-256`, `RSA 2048`, `Ed25519`).
///
/// An EC key's curve is read from the SubjectPublicKeyInfo's parameters: OpenSSL 3 names it only
/// after exporting the key to a legacy `EC_KEY`, which took ~6 % of the CPU of a 500-endpoint
/// `check` (perf, `benches/monitor.sh`). Other keys (and unnamed or unusual curves) go to
/// [`pki::key_type`], which for them reads only the key's id and size.
fn key_type(cert: &X509Ref, spki: Option<&[u8]>) -> String {
    if let Some(curve) = spki.and_then(crate::der::named_ec_curve) {
        return pki::KeyType::Ec(curve.to_string()).to_string();
    }
    match cert.public_key() {
        Ok(key) => pki::key_type(&key).to_string(),
        Err(_) => "(unreadable key)".to_string(),
    }
}

/// The SubjectPublicKeyInfo inside a certificate's DER, as it was sent.
///
/// Read from the certificate's own bytes rather than re-encoded from the key: OpenSSL 3's key
/// encoders cost more than the rest of a handshake's inspection together (measured with perf in
/// `benches/probe.sh`), and the bytes are the same by definition.
///
/// When the pure-Rust reader refuses a certificate that OpenSSL took (it is stricter about some
/// fields, e.g. a malformed time, which DANE-EE does not check), the key is re-encoded by
/// OpenSSL: slower, the same bytes for any key OpenSSL can decode.
pub(crate) fn spki_of_certificate(der: &[u8]) -> Option<Cow<'_, [u8]>> {
    if let Some(spki) = crate::der::certificate_spki(der) {
        return Some(Cow::Borrowed(spki));
    }
    let cert = X509::from_der(der).ok()?;
    openssl_spki(&cert).map(Cow::Owned)
}

/// The SubjectPublicKeyInfo of `cert` encoded by OpenSSL.
fn openssl_spki(cert: &X509Ref) -> Option<Vec<u8>> {
    cert.public_key().ok()?.public_key_to_der().ok()
}

/// SHA-256 without an EVP fetch.
pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    openssl::sha::sha256(data)
}

/// An ASN.1 time as RFC 3339 UTC (`2026-11-23T08:00:00Z`).
fn rfc3339(time: &Asn1TimeRef) -> Option<String> {
    let epoch = Asn1Time::from_unix(0).ok()?;
    let diff = epoch.diff(time).ok()?;
    Some(crate::rfc3339::format_secs(
        i64::from(diff.days) * 86_400 + i64::from(diff.secs),
    ))
}

/// OpenSSL's verification code in words, for DANE: what a DANE sender would log.
pub fn verify_words(result: X509VerifyResult, host: &str) -> String {
    // The codes are X509_V_ERR_* from <openssl/x509_vfy.h>.
    match result.as_raw() {
        0 => "verified".to_string(),
        65 => "no TLSA record matched the certificate chain".to_string(),
        62 => format!("DANE-TA: host name mismatch (the certificate does not name {host})"),
        10 => "DANE-TA: a certificate in the chain has expired".to_string(),
        9 => "DANE-TA: a certificate in the chain is not yet valid".to_string(),
        2 | 20 => "DANE-TA: the chain does not lead to the trust anchor (an issuer certificate is missing)".to_string(),
        7 => "DANE-TA: a certificate signature in the chain does not verify".to_string(),
        24 => "DANE-TA: a certificate used as a CA is not a CA".to_string(),
        25 => "DANE-TA: path length constraint exceeded".to_string(),
        26 => "the certificate is not allowed for TLS servers (extended key usage)".to_string(),
        66 => "the server's key is too small for OpenSSL's security level".to_string(),
        67 => "a CA key in the chain is too small for OpenSSL's security level".to_string(),
        68 => "a CA signature in the chain uses a digest too weak for OpenSSL's security level".to_string(),
        other => format!(
            "certificate verification failed: {} (X509_V_ERR {other})",
            result.error_string()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_of_known_times() {
        let t = Asn1Time::from_unix(0).unwrap();
        assert_eq!(rfc3339(&t).unwrap(), "1970-01-01T00:00:00Z");
        let t = Asn1Time::from_unix(1_709_251_199).unwrap(); // leap day 2024
        assert_eq!(rfc3339(&t).unwrap(), "2024-02-29T23:59:59Z");
        let t = Asn1Time::from_unix(4_102_444_800).unwrap();
        assert_eq!(rfc3339(&t).unwrap(), "2100-01-01T00:00:00Z");
    }

    #[test]
    fn spki_read_from_the_certificate_is_the_encoded_key() {
        use openssl::pkey::PKey;
        let keys = [
            PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap(),
            PKey::from_ec_key(
                openssl::ec::EcKey::generate(
                    &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::SECP384R1).unwrap(),
                )
                .unwrap(),
            )
            .unwrap(),
            PKey::generate_ed25519().unwrap(),
        ];
        for key in keys {
            let mut b = openssl::x509::X509::builder().unwrap();
            b.set_version(2).unwrap();
            let mut name = openssl::x509::X509NameBuilder::new().unwrap();
            name.append_entry_by_text("CN", "spki.example").unwrap();
            let name = name.build();
            b.set_subject_name(&name).unwrap();
            b.set_issuer_name(&name).unwrap();
            b.set_pubkey(&key).unwrap();
            b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
                .unwrap();
            b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
                .unwrap();
            let digest = match key.id() {
                openssl::pkey::Id::ED25519 => openssl::hash::MessageDigest::null(),
                _ => openssl::hash::MessageDigest::sha256(),
            };
            b.sign(&key, digest).unwrap();
            let cert = b.build();
            let der = cert.to_der().unwrap();
            assert_eq!(
                spki_of_certificate(&der).unwrap(),
                key.public_key_to_der().unwrap().as_slice()
            );
            let info = CertInfo::of(&cert);
            assert_eq!(info.key_type, pki::key_type(&key).to_string());
            assert_eq!(
                info.not_after,
                rfc3339(cert.not_after()).unwrap(),
                "the end of validity read from the DER"
            );
            assert!(!info.expired);
            assert_eq!(
                info.spki_sha256,
                hex::encode(sha256(&key.public_key_to_der().unwrap()))
            );
        }
        assert_eq!(spki_of_certificate(&[0x30, 0x82, 0xff]), None);
        assert_eq!(spki_of_certificate(&[]), None);
    }

    /// A certificate OpenSSL decodes but x509-parser refuses (a notAfter that is no date, which
    /// DANE-EE never checks) still has its key read, by OpenSSL, as before x509-parser.
    #[test]
    fn spki_of_a_certificate_only_openssl_decodes() {
        let key = pki::generate_key(crate::config::KeyType::Ec256).unwrap();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::from_str("20250101000000Z").unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_str("20300101000000Z").unwrap())
            .unwrap();
        b.sign(&key, openssl::hash::MessageDigest::sha256())
            .unwrap();
        let mut der = b.build().to_der().unwrap();
        let at = der.windows(13).position(|w| w == b"300101000000Z").unwrap();
        der[at + 2..at + 4].copy_from_slice(b"13"); // month 13
        assert_eq!(crate::der::certificate(&der), None);
        let cert = X509::from_der(&der).expect("OpenSSL decodes it");
        let spki = key.public_key_to_der().unwrap();
        assert_eq!(spki_of_certificate(&der).unwrap(), spki.as_slice());
        let info = CertInfo::of(&cert);
        assert_eq!(info.spki_sha256, hex::encode(sha256(&spki)));
        assert_eq!(info.key_type, "EC P-256");
    }

    #[test]
    fn verify_words_name_the_dane_failures() {
        let other = X509VerifyResult::APPLICATION_VERIFICATION;
        assert!(verify_words(other, "mx.example").contains("X509_V_ERR 50"));
        assert_eq!(verify_words(X509VerifyResult::OK, "mx.example"), "verified");
    }
}
