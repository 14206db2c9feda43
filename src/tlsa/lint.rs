//! The lints that catch records useless or dangerous for SMTP (RFC 7671, RFC 7672).

use std::fmt;

use openssl::x509::X509Ref;

use super::{Matching, SMTP_PORT, Selector, TlsaRecord, Usage};

/// SHA-256 of empty input: a generator that hashed nothing made this.
pub(super) const SHA256_OF_NOTHING: [u8; 32] = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];
/// SHA-512 of empty input.
pub(super) const SHA512_OF_NOTHING: [u8; 64] = [
    0xcf, 0x83, 0xe1, 0x35, 0x7e, 0xef, 0xb8, 0xbd, 0xf1, 0x54, 0x28, 0x50, 0xd6, 0x6d, 0x80, 0x07,
    0xd6, 0x20, 0xe4, 0x05, 0x0b, 0x57, 0x15, 0xdc, 0x83, 0xf4, 0xa9, 0x21, 0xd3, 0x6c, 0xe9, 0xce,
    0x47, 0xd0, 0xd1, 0x3c, 0x5d, 0x85, 0xf2, 0xb0, 0xff, 0x83, 0x18, 0xd2, 0x87, 0x7e, 0xec, 0x2f,
    0x63, 0xb9, 0x31, 0xbd, 0x47, 0x41, 0x7a, 0x81, 0xa5, 0x38, 0x32, 0x7a, 0xf9, 0x27, 0xda, 0x3e,
];

impl TlsaRecord {
    /// What is wrong or risky with this record when published for `port`.
    pub fn lints(&self, port: u16) -> Vec<Lint> {
        let mut lints = Vec::new();
        let nothing: Option<&[u8]> = match self.matching {
            Matching::Sha256 => Some(&SHA256_OF_NOTHING),
            Matching::Sha512 => Some(&SHA512_OF_NOTHING),
            Matching::Full => None,
        };
        if nothing == Some(self.data.as_slice()) {
            lints.push(Lint::DigestOfNothing {
                matching: self.matching,
            });
        }
        if self.selector == Selector::Cert {
            lints.push(Lint::WholeCertificate);
        }
        // RFC 7672 §3.1.3: SMTP clients treat PKIX-TA(0) and PKIX-EE(1) records as unusable.
        if port == SMTP_PORT && !self.usage.is_usable_for_smtp() {
            lints.push(Lint::PkixUsageOnSmtp { usage: self.usage });
        }
        lints
    }
}

/// Something wrong or risky about a record. [`Lint::is_fatal`] ones must never be published.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lint {
    /// The digest is that of empty input: whatever made it hashed nothing.
    DigestOfNothing {
        /// SHA-256 or SHA-512.
        matching: Matching,
    },
    /// Selector 0: the record changes at every renewal, even with the same key.
    WholeCertificate,
    /// A PKIX usage (0 or 1) on port 25, which SMTP senders ignore.
    PkixUsageOnSmtp {
        /// The usage.
        usage: Usage,
    },
    /// A DANE-TA record that pins an intermediate: CAs rotate them.
    TrustAnchorIntermediate {
        /// The intermediate's subject.
        subject: String,
    },
    /// A DANE-TA record that pins a root: roots change less often, but they change.
    TrustAnchorRoot {
        /// The root's subject.
        subject: String,
    },
}

impl Lint {
    /// The lint of a DANE-TA record made from the CA certificate `ca`: it pins an
    /// intermediate (not self-signed) or a root (self-signed).
    pub fn for_trust_anchor(ca: &X509Ref) -> Lint {
        let subject = crate::pki::subject_line(ca);
        let self_signed = ca
            .subject_name()
            .try_cmp(ca.issuer_name())
            .is_ok_and(|o| o.is_eq())
            && ca.public_key().and_then(|k| ca.verify(&k)).unwrap_or(false);
        if self_signed {
            Lint::TrustAnchorRoot { subject }
        } else {
            Lint::TrustAnchorIntermediate { subject }
        }
    }
}

impl Lint {
    /// Whether the record must be refused rather than published with a warning.
    pub fn is_fatal(&self) -> bool {
        matches!(self, Lint::DigestOfNothing { .. })
    }

    /// A short stable name, for JSON and for tests.
    pub fn code(&self) -> &'static str {
        match self {
            Lint::DigestOfNothing { .. } => "digest-of-nothing",
            Lint::WholeCertificate => "whole-certificate",
            Lint::PkixUsageOnSmtp { .. } => "pkix-usage-on-smtp",
            Lint::TrustAnchorIntermediate { .. } => "dane-ta-intermediate",
            Lint::TrustAnchorRoot { .. } => "dane-ta-root",
        }
    }
}

impl fmt::Display for Lint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lint::DigestOfNothing { matching } => write!(
                f,
                "the data is the {} of empty input: the generator hashed nothing; refusing the record",
                matching.acronym()
            ),
            Lint::WholeCertificate => f.write_str(
                "selector 0 (the whole certificate) changes at every renewal, even with the same \
                 key; prefer --selector 1",
            ),
            Lint::PkixUsageOnSmtp { usage } => write!(
                f,
                "usage {usage} ({}) is ignored by SMTP senders (RFC 7672 §3.1.3); use 3 (DANE-EE) \
                 or 2 (DANE-TA)",
                usage.acronym()
            ),
            Lint::TrustAnchorIntermediate { subject } => write!(
                f,
                "DANE-TA(2) pins the intermediate {subject}: CAs rotate their intermediates (Let's \
                 Encrypt changed its own in 2024 and 2026), and a certificate from another one \
                 matches no such record, so DANE senders defer mail; publish 3 1 1 of the current \
                 and the next key instead (dane-roll scheme \"current+next\")"
            ),
            Lint::TrustAnchorRoot { subject } => write!(
                f,
                "DANE-TA(2) pins the root {subject}: roots change less often than intermediates, \
                 but they change too (and the server must send the root in its chain); 3 1 1 of \
                 the current and the next key (dane-roll scheme \"current+next\") depends on no CA"
            ),
        }
    }
}
