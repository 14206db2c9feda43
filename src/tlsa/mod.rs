//! The TLSA record: its fields, the presentation form (parse and display) and the owner name.
//! Computing one from a certificate or a public key ([`Subject`], in `compute.rs`), the lints
//! that catch records that are useless or dangerous for SMTP ([`Lint`], in `lint.rs`) and the
//! owner name type ([`OwnerName`], in `owner.rs`) have their own files (RFC 6698, RFC 7671,
//! RFC 7672).

mod compute;
mod lint;
mod owner;

use std::fmt;
use std::str::FromStr;

pub use compute::Subject;
pub use lint::Lint;
pub use owner::{OwnerName, OwnerNameError};

/// The default usage, selector and matching type: `3 1 1`, DANE-EE of the public key's SHA-256.
pub const DEFAULT_USAGE: Usage = Usage::DaneEe;
/// See [`DEFAULT_USAGE`].
pub const DEFAULT_SELECTOR: Selector = Selector::Spki;
/// See [`DEFAULT_USAGE`].
pub const DEFAULT_MATCHING: Matching = Matching::Sha256;
/// The SMTP port, where PKIX usages are ignored (RFC 7672 §3.1.3).
pub const SMTP_PORT: u16 = 25;

/// Certificate usage (RFC 6698 §2.1.1, acronyms from RFC 7218).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Usage {
    /// 0 PKIX-TA: a CA constraint. Ignored by SMTP (RFC 7672 §3.1.3).
    PkixTa = 0,
    /// 1 PKIX-EE: a service certificate constraint. Ignored by SMTP.
    PkixEe = 1,
    /// 2 DANE-TA: a trust anchor in the chain the server sends.
    DaneTa = 2,
    /// 3 DANE-EE: the server's own certificate or key.
    DaneEe = 3,
}

/// Selector (RFC 6698 §2.1.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Selector {
    /// 0 Cert: the whole certificate (changes at every renewal).
    Cert = 0,
    /// 1 SPKI: the SubjectPublicKeyInfo (survives renewal with the same key).
    Spki = 1,
}

/// Matching type (RFC 6698 §2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum Matching {
    /// 0 Full: the selected data itself.
    Full = 0,
    /// 1 SHA2-256.
    Sha256 = 1,
    /// 2 SHA2-512.
    Sha512 = 2,
}

/// Conversions shared by the three field enums: number, RFC 7218 acronym, parsing either.
macro_rules! field_enum {
    ($ty:ident, $field:literal, $max:literal, [$($var:ident = $num:literal, $acr:literal),+]) => {
        impl $ty {
            /// The RFC 7218 acronym.
            pub fn acronym(self) -> &'static str {
                match self { $($ty::$var => $acr),+ }
            }
        }
        impl From<$ty> for u8 {
            fn from(v: $ty) -> u8 { v as u8 }
        }
        impl TryFrom<u8> for $ty {
            type Error = TlsaError;
            fn try_from(n: u8) -> Result<$ty, TlsaError> {
                match n {
                    $($num => Ok($ty::$var),)+
                    _ => Err(TlsaError::BadField { field: $field, value: n.to_string(), max: $max }),
                }
            }
        }
        impl FromStr for $ty {
            type Err = TlsaError;
            /// A number, or an RFC 7218 acronym (any case).
            fn from_str(s: &str) -> Result<$ty, TlsaError> {
                $(if s.eq_ignore_ascii_case($acr) { return Ok($ty::$var); })+
                let bad = || TlsaError::BadField { field: $field, value: s.to_string(), max: $max };
                s.parse::<u8>().map_err(|_| bad()).and_then(|n| $ty::try_from(n).map_err(|_| bad()))
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", *self as u8)
            }
        }
    };
}

field_enum!(
    Usage,
    "usage",
    3,
    [
        PkixTa = 0,
        "PKIX-TA",
        PkixEe = 1,
        "PKIX-EE",
        DaneTa = 2,
        "DANE-TA",
        DaneEe = 3,
        "DANE-EE"
    ]
);
field_enum!(
    Selector,
    "selector",
    1,
    [Cert = 0, "Cert", Spki = 1, "SPKI"]
);
field_enum!(
    Matching,
    "matching type",
    2,
    [
        Full = 0,
        "Full",
        Sha256 = 1,
        "SHA2-256",
        Sha512 = 2,
        "SHA2-512"
    ]
);

impl Usage {
    /// Whether the usage matches a trust anchor (a CA certificate) rather than the end entity.
    pub fn is_trust_anchor(self) -> bool {
        matches!(self, Usage::PkixTa | Usage::DaneTa)
    }

    /// Whether SMTP senders use the usage at all: only DANE-TA and DANE-EE (RFC 7672 §3.1.3).
    pub fn is_usable_for_smtp(self) -> bool {
        matches!(self, Usage::DaneTa | Usage::DaneEe)
    }
}

impl Matching {
    /// The length of the digest, or `None` for full data.
    pub fn digest_len(self) -> Option<usize> {
        match self {
            Matching::Full => None,
            Matching::Sha256 => Some(32),
            Matching::Sha512 => Some(64),
        }
    }
}

/// One TLSA record's data (RDATA).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsaRecord {
    /// The certificate usage.
    pub usage: Usage,
    /// The selector.
    pub selector: Selector,
    /// The matching type.
    pub matching: Matching,
    /// The association data: a digest, or the full DER for matching type 0.
    pub data: Vec<u8>,
}

impl TlsaRecord {
    /// A record from its fields, checking the data: not empty, and the digest length for
    /// matching types 1 and 2.
    pub fn new(
        usage: Usage,
        selector: Selector,
        matching: Matching,
        data: Vec<u8>,
    ) -> Result<TlsaRecord, TlsaError> {
        if data.is_empty() {
            return Err(TlsaError::EmptyData);
        }
        if let Some(expected) = matching.digest_len()
            && data.len() != expected
        {
            return Err(TlsaError::WrongDigestLength {
                matching,
                expected,
                found: data.len(),
            });
        }
        Ok(TlsaRecord {
            usage,
            selector,
            matching,
            data,
        })
    }

    /// The association data as lowercase hex.
    pub fn data_hex(&self) -> String {
        hex::encode(&self.data)
    }
}

impl fmt::Display for TlsaRecord {
    /// The presentation form `3 1 1 <lowercase hex>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {} {}",
            self.usage,
            self.selector,
            self.matching,
            self.data_hex()
        )
    }
}

impl FromStr for TlsaRecord {
    type Err = TlsaError;

    /// The presentation form: three fields (numbers or RFC 7218 acronyms), then the data in
    /// hex, which may be split by white space and use either case (RFC 6698 §2.2).
    fn from_str(s: &str) -> Result<TlsaRecord, TlsaError> {
        let mut words = s.split_whitespace();
        let mut field = |name: &'static str| words.next().ok_or(TlsaError::MissingField(name));
        let usage: Usage = field("usage")?.parse()?;
        let selector: Selector = field("selector")?.parse()?;
        let matching: Matching = field("matching type")?.parse()?;
        let hex_text: String = words.collect();
        if hex_text.is_empty() {
            return Err(TlsaError::EmptyData);
        }
        let data = hex::decode(&hex_text).map_err(|err| match err {
            hex::FromHexError::OddLength => TlsaError::OddHexLength(hex_text.len()),
            hex::FromHexError::InvalidHexCharacter { c, index } => {
                TlsaError::BadHexDigit { digit: c, index }
            }
            hex::FromHexError::InvalidStringLength => TlsaError::OddHexLength(hex_text.len()),
        })?;
        TlsaRecord::new(usage, selector, matching, data)
    }
}

impl serde::Serialize for TlsaRecord {
    /// As the presentation form, so state files and JSON stay readable.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for TlsaRecord {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The owner name of the records for `host` and `port`: `_25._tcp.mail.example.com.`, absolute,
/// lowercase, with exactly one trailing dot ([`OwnerName::for_endpoint`], kept under this path
/// for its callers).
pub fn owner_name(host: &str, port: u16) -> OwnerName {
    OwnerName::for_endpoint(host, port)
}

/// Why a record could not be parsed or computed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsaError {
    /// A field is not a number in range nor a known acronym.
    #[error("{field} '{value}' is not valid: give a number from 0 to {max}")]
    BadField {
        /// usage, selector or matching type.
        field: &'static str,
        /// What was given.
        value: String,
        /// The largest valid number.
        max: u8,
    },
    /// The presentation form ends early.
    #[error("the record has no {0}: write it as '3 1 1 <hex>'")]
    MissingField(&'static str),
    /// No association data.
    #[error("the record has no data: write it as '3 1 1 <hex>'")]
    EmptyData,
    /// An odd number of hex digits.
    #[error("the data has an odd number of hex digits ({0}): a digit is missing or extra")]
    OddHexLength(usize),
    /// Not a hex digit.
    #[error("'{digit}' at position {index} of the data is not a hex digit")]
    BadHexDigit {
        /// The offending character.
        digit: char,
        /// Its position among the data's digits (white space removed).
        index: usize,
    },
    /// A digest of the wrong length for its matching type.
    #[error(
        "matching type {matching} ({}) needs {expected} bytes of data ({} hex digits), found {found}",
        matching.acronym(), expected * 2
    )]
    WrongDigestLength {
        /// The matching type.
        matching: Matching,
        /// Its digest length in bytes.
        expected: usize,
        /// The length found, in bytes.
        found: usize,
    },
    /// Selector 0 with a bare key.
    #[error(
        "selector 0 (the whole certificate) needs a certificate, not a bare key: pass the \
         certificate, or use --selector 1"
    )]
    SelectorNeedsCertificate,
    /// OpenSSL failed to encode or hash.
    #[error("OpenSSL failed: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
}

#[cfg(test)]
mod tests {
    use super::lint::{SHA256_OF_NOTHING, SHA512_OF_NOTHING};
    use super::*;
    use openssl::hash::{MessageDigest, hash};

    const DIGEST: &str = "675c76b6250240d6d6daa991f9211cf92da9f51bc70504f87f9ec39a00f99caf";

    #[test]
    fn parse_display_round_trip() {
        let text = format!("3 1 1 {DIGEST}");
        let rec: TlsaRecord = text.parse().expect("valid record");
        assert_eq!(rec.usage, Usage::DaneEe);
        assert_eq!(rec.selector, Selector::Spki);
        assert_eq!(rec.matching, Matching::Sha256);
        assert_eq!(rec.data.len(), 32);
        assert_eq!(rec.to_string(), text);
    }

    #[test]
    fn parse_accepts_spaces_uppercase_and_acronyms() {
        let upper = DIGEST.to_uppercase();
        let spaced = format!("DANE-EE  spki SHA2-256 {} {}\n", &upper[..20], &upper[20..]);
        let rec: TlsaRecord = spaced.parse().expect("valid record");
        assert_eq!(rec.to_string(), format!("3 1 1 {DIGEST}"));
    }

    #[test]
    fn parse_full_data_any_length() {
        let rec: TlsaRecord = "2 0 0 3082 01".parse().expect("valid");
        assert_eq!(rec.data, vec![0x30, 0x82, 0x01]);
        assert_eq!(rec.to_string(), "2 0 0 308201");
    }

    #[test]
    fn parse_errors() {
        type Check = fn(&TlsaError) -> bool;
        let cases: &[(&str, Check)] = &[
            ("", |e| matches!(e, TlsaError::MissingField("usage"))),
            ("3 1", |e| {
                matches!(e, TlsaError::MissingField("matching type"))
            }),
            ("3 1 1", |e| matches!(e, TlsaError::EmptyData)),
            ("4 1 1 00", |e| {
                matches!(e, TlsaError::BadField { field: "usage", .. })
            }),
            ("3 2 1 00", |e| {
                matches!(
                    e,
                    TlsaError::BadField {
                        field: "selector",
                        ..
                    }
                )
            }),
            ("3 1 x 00", |e| {
                matches!(
                    e,
                    TlsaError::BadField {
                        field: "matching type",
                        ..
                    }
                )
            }),
            ("3 1 0 abc", |e| matches!(e, TlsaError::OddHexLength(3))),
            ("3 1 0 zz", |e| {
                matches!(
                    e,
                    TlsaError::BadHexDigit {
                        digit: 'z',
                        index: 0
                    }
                )
            }),
            ("3 1 1 00", |e| {
                matches!(
                    e,
                    TlsaError::WrongDigestLength {
                        expected: 32,
                        found: 1,
                        ..
                    }
                )
            }),
            ("3 1 2 00", |e| {
                matches!(
                    e,
                    TlsaError::WrongDigestLength {
                        expected: 64,
                        found: 1,
                        ..
                    }
                )
            }),
        ];
        for (text, check) in cases {
            let err = text.parse::<TlsaRecord>().expect_err(text);
            assert!(check(&err), "{text:?} gave {err:?}");
            assert!(!err.to_string().is_empty());
        }
        // A SHA-256 digest given as SHA-512.
        let err = format!("3 1 2 {DIGEST}")
            .parse::<TlsaRecord>()
            .expect_err("short");
        assert_eq!(
            err.to_string(),
            "matching type 2 (SHA2-512) needs 64 bytes of data (128 hex digits), found 32"
        );
    }

    #[test]
    fn field_conversions() {
        for n in 0..=3u8 {
            assert_eq!(u8::from(Usage::try_from(n).expect("in range")), n);
        }
        assert!(Usage::try_from(4).is_err());
        assert!(Selector::try_from(2).is_err());
        assert!(Matching::try_from(3).is_err());
        assert_eq!("dane-ta".parse::<Usage>().expect("acronym"), Usage::DaneTa);
        assert!(Usage::DaneTa.is_trust_anchor() && !Usage::DaneEe.is_trust_anchor());
        assert_eq!(Matching::Sha512.digest_len(), Some(64));
    }

    #[test]
    fn owner_names() {
        assert_eq!(
            owner_name("Mail.Example.COM", 25),
            "_25._tcp.mail.example.com."
        );
        assert_eq!(
            owner_name("mail.example.com.", 465),
            "_465._tcp.mail.example.com."
        );
        assert_eq!(
            owner_name("mail.example.com..", 25),
            "_25._tcp.mail.example.com."
        );
    }

    #[test]
    fn lints() {
        let empty256 = format!("3 1 1 {}", hex::encode(SHA256_OF_NOTHING));
        let rec: TlsaRecord = empty256.parse().expect("parses");
        let lints = rec.lints(25);
        assert_eq!(
            lints,
            vec![Lint::DigestOfNothing {
                matching: Matching::Sha256
            }]
        );
        assert!(lints[0].is_fatal());
        let empty512 = format!("3 1 2 {}", hex::encode(SHA512_OF_NOTHING));
        let rec: TlsaRecord = empty512.parse().expect("parses");
        assert!(rec.lints(25).iter().any(Lint::is_fatal));
        // The constants are what OpenSSL computes.
        assert_eq!(
            hash(MessageDigest::sha256(), b"").expect("sha256").to_vec(),
            SHA256_OF_NOTHING
        );
        assert_eq!(
            hash(MessageDigest::sha512(), b"").expect("sha512").to_vec(),
            SHA512_OF_NOTHING
        );

        let rec: TlsaRecord = format!("1 0 1 {DIGEST}").parse().expect("parses");
        let codes: Vec<_> = rec.lints(25).iter().map(Lint::code).collect();
        assert_eq!(codes, ["whole-certificate", "pkix-usage-on-smtp"]);
        assert_eq!(rec.lints(443).len(), 1, "PKIX is fine off port 25");
        let rec: TlsaRecord = format!("3 1 1 {DIGEST}").parse().expect("parses");
        assert!(rec.lints(25).is_empty());
    }

    #[test]
    fn compute_refuses_selector_0_for_a_key() {
        let ec = openssl::ec::EcKey::generate(
            &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                .expect("group"),
        )
        .expect("key");
        let key = openssl::pkey::PKey::from_ec_key(ec).expect("pkey");
        let public =
            openssl::pkey::PKey::public_key_from_der(&key.public_key_to_der().expect("der"))
                .expect("public");
        let subject = Subject::PublicKey(&public);
        let err = TlsaRecord::compute(Usage::DaneEe, Selector::Cert, Matching::Sha256, &subject)
            .expect_err("selector 0");
        assert!(matches!(err, TlsaError::SelectorNeedsCertificate));
        let rec = TlsaRecord::compute(Usage::DaneEe, Selector::Spki, Matching::Full, &subject)
            .expect("selector 1");
        assert_eq!(rec.data, public.public_key_to_der().expect("der"));
    }

    #[test]
    fn serde_as_presentation_form() {
        let rec: TlsaRecord = format!("3 1 1 {DIGEST}").parse().expect("parses");
        let json = serde_json::to_string(&rec).expect("serialize");
        assert_eq!(json, format!("\"3 1 1 {DIGEST}\""));
        let back: TlsaRecord = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, rec);
        assert!(serde_json::from_str::<TlsaRecord>("\"3 1 1 00\"").is_err());
    }
}
