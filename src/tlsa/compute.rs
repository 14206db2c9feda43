//! Computing a TLSA record from a certificate or a public key.

use std::fmt;

use openssl::hash::{MessageDigest, hash};
use openssl::pkey::{PKeyRef, Public};
use openssl::x509::X509Ref;

use super::{Matching, Selector, TlsaError, TlsaRecord, Usage};

/// What a record is computed from: a certificate, or a bare public key (selector 1 only).
#[derive(Clone, Copy)]
pub enum Subject<'a> {
    /// A certificate: selector 0 takes its DER, selector 1 its SubjectPublicKeyInfo.
    Certificate(&'a X509Ref),
    /// A public key (also the public half of a private key): selector 1 only.
    PublicKey(&'a PKeyRef<Public>),
}

impl fmt::Debug for Subject<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Certificate(_) => f.write_str("Subject::Certificate"),
            Subject::PublicKey(_) => f.write_str("Subject::PublicKey"),
        }
    }
}

impl TlsaRecord {
    /// Compute the record for a certificate or a public key. The public key is hashed as its
    /// SubjectPublicKeyInfo DER whatever its type (RSA, EC, Ed25519, Ed448).
    pub fn compute(
        usage: Usage,
        selector: Selector,
        matching: Matching,
        subject: &Subject<'_>,
    ) -> Result<TlsaRecord, TlsaError> {
        let selected = match (selector, subject) {
            (Selector::Cert, Subject::Certificate(cert)) => cert.to_der()?,
            (Selector::Spki, Subject::Certificate(cert)) => {
                cert.public_key()?.public_key_to_der()?
            }
            (Selector::Spki, Subject::PublicKey(key)) => key.public_key_to_der()?,
            (Selector::Cert, Subject::PublicKey(_)) => {
                return Err(TlsaError::SelectorNeedsCertificate);
            }
        };
        if selected.is_empty() {
            return Err(TlsaError::EmptyData);
        }
        let data = match matching {
            Matching::Full => selected,
            Matching::Sha256 => hash(MessageDigest::sha256(), &selected)?.to_vec(),
            Matching::Sha512 => hash(MessageDigest::sha512(), &selected)?.to_vec(),
        };
        TlsaRecord::new(usage, selector, matching, data)
    }
}
