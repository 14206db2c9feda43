//! Loading certificates and keys by content (`pki::parse`, `pki::load_private_key`) and the
//! crate's DER readings (`der.rs` over `x509-parser`, through `pki::der_readings`): PEM (several
//! blocks, headers, every label), DER (one or several objects, truncated, nested lengths). Nothing
//! panics, errors can be printed, and what loads can be hashed into a TLSA record.

#![no_main]

use std::path::Path;

use dane_roll::pki;
use dane_roll::tlsa::{Matching, Selector, Subject, TlsaRecord, Usage};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    readings(data);
    match pki::parse(Path::new("fuzz.pem"), data) {
        Ok(material) => {
            for cert in material.certificates() {
                let _ = (pki::subject_line(cert), pki::is_ca(cert));
                let _ = TlsaRecord::compute(
                    Usage::DaneEe,
                    Selector::Spki,
                    Matching::Sha256,
                    &Subject::Certificate(cert),
                );
                if let Ok(der) = cert.to_der() {
                    readings(&der);
                }
            }
            let _ = material.leaf().map(|leaf| leaf.to_der());
            if let Some(key) = material.key() {
                let _ = (key.kind(), key.key_type().to_string(), key.spki_der());
                let _ = TlsaRecord::compute(
                    Usage::DaneEe,
                    Selector::Spki,
                    Matching::Sha512,
                    &Subject::PublicKey(key.public_key()),
                );
            }
            let _ = material.ca_certificates().count();
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
    // The private-key reader takes a file.
    let path = std::env::temp_dir().join(format!("dane-roll-fuzz-key-{}.pem", std::process::id()));
    std::fs::write(&path, data).expect("write the scratch file");
    match pki::load_private_key(&path) {
        Ok(key) => {
            let _ = pki::key_type(&key);
            let _ = pki::spki_der(&key);
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
});

/// The DER readings: no panic, and lengths that make sense.
fn readings(data: &[u8]) {
    let (announced, spki, not_after) = pki::der_readings(data);
    if let Some(len) = announced {
        assert!(len >= 2, "an element of {len} bytes, header included");
    }
    if let Some(spki) = spki {
        assert!(spki.len() >= 2 && spki.len() <= data.len());
        assert_eq!(spki[0], 0x30, "an SPKI that is not a SEQUENCE");
    }
    let _ = not_after;
}
