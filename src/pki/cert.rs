//! Certificates: a subject in one line, whether one is a CA, and telling two apart by their
//! DER (an encoding failure is an error, never "the same").

use openssl::error::ErrorStack;
use openssl::x509::{X509, X509NameRef, X509Ref, X509VerifyResult};

/// The subject of a certificate as one line, in certificate order: `CN=mail.example.com, O=…`.
pub fn subject_line(cert: &X509Ref) -> String {
    name_line(cert.subject_name())
}

/// A distinguished name as one line, in certificate order: `CN=mail.example.com, O=…`.
pub fn name_line(name: &X509NameRef) -> String {
    name.entries()
        .map(|entry| {
            let name = entry.object().nid().short_name().unwrap_or("?");
            let value = entry.data().to_string().unwrap_or_else(|_| "?".to_string());
            format!("{name}={value}")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a certificate is a CA: its key usage allows signing certificates, or, when it has no
/// key usage extension, it is self-issued (an old-style root).
///
/// The openssl crate exposes no basic-constraints getter (and `X509_check_ca` is not bound), so
/// this uses the key usage, which CA/Browser Forum rules require on every CA certificate.
pub fn is_ca(cert: &X509Ref) -> bool {
    use openssl::x509::X509KeyUsage;
    match cert.key_usage() {
        Some(usage) => usage.contains(X509KeyUsage::KEY_CERT_SIGN),
        None => cert.issued(cert) == X509VerifyResult::OK,
    }
}

/// Whether `a` and `b` are the same certificate: equal DER encodings. A certificate OpenSSL
/// cannot encode is an error, never "the same" as another one that cannot be encoded either.
pub fn same_certificate(a: &X509Ref, b: &X509Ref) -> Result<bool, ErrorStack> {
    Ok(a.to_der()? == b.to_der()?)
}

/// Appends to `certs` each certificate of `extra` that `certs` does not hold yet (by DER
/// encoding), in order. A certificate OpenSSL cannot encode is an error: it is not dropped.
pub fn append_distinct(certs: &mut Vec<X509>, extra: &[X509]) -> Result<(), ErrorStack> {
    let mut held = certs
        .iter()
        .map(|c| c.to_der())
        .collect::<Result<Vec<_>, _>>()?;
    for cert in extra {
        let der = cert.to_der()?;
        if !held.contains(&der) {
            held.push(der);
            certs.push(cert.clone());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyType as K;
    use crate::pki::generate_key;

    /// A certificate OpenSSL cannot encode (no issuer, no key, no signature), told apart from
    /// others of its kind by `serial`.
    fn unencodable(serial: u32) -> X509 {
        let mut b = openssl::x509::X509Builder::new().unwrap();
        let serial = openssl::bn::BigNum::from_u32(serial).unwrap();
        b.set_serial_number(&serial.to_asn1_integer().unwrap())
            .unwrap();
        let cert = b.build();
        assert!(cert.to_der().is_err());
        cert
    }

    /// Regression: two different certificates whose encoding fails both compared as the empty
    /// encoding, so one was dropped from a chain (deploy) or taken for the installed one
    /// (reconcile) without a word.
    #[test]
    fn a_certificate_that_cannot_be_encoded_is_an_error_not_a_duplicate() {
        let (a, b) = (unencodable(1), unencodable(2));
        assert!(same_certificate(&a, &b).is_err());
        let mut certs = vec![a];
        assert!(append_distinct(&mut certs, &[b]).is_err());

        let key = generate_key(K::Ec256).unwrap();
        let good = |serial: u32| {
            let mut b = openssl::x509::X509Builder::new().unwrap();
            let serial = openssl::bn::BigNum::from_u32(serial).unwrap();
            b.set_serial_number(&serial.to_asn1_integer().unwrap())
                .unwrap();
            let mut name = openssl::x509::X509NameBuilder::new().unwrap();
            name.append_entry_by_text("CN", "mx.example").unwrap();
            let name = name.build();
            b.set_subject_name(&name).unwrap();
            b.set_issuer_name(&name).unwrap();
            b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
                .unwrap();
            b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
                .unwrap();
            b.set_pubkey(&key).unwrap();
            b.sign(&key, openssl::hash::MessageDigest::sha256())
                .unwrap();
            b.build()
        };
        let (one, two) = (good(1), good(2));
        assert!(same_certificate(&one, &one.clone()).unwrap());
        assert!(!same_certificate(&one, &two).unwrap());
        let mut certs = vec![one.clone()];
        append_distinct(&mut certs, &[two.clone(), one.clone(), two.clone()]).unwrap();
        assert_eq!(certs.len(), 2);
    }
}
