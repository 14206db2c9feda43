//! Loading certificates, chains and keys from PEM or DER, detected by content (not by the file
//! name), describing keys ("EC P-256", "RSA 2048"), and telling whether a certificate and a key
//! belong together.
//!
//! OpenSSL never asks for a passphrase here: PEM blocks are split by the `pem` crate and each is
//! decoded from DER by a function that takes no passphrase; encrypted keys are recognised first
//! and refused, and the one probe that could reach a passphrase callback gets one that refuses.

use std::cell::Cell;
use std::fmt;
use std::path::{Path, PathBuf};

use openssl::ec::EcKey;
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private, Public};
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509Ref, X509Req, X509VerifyResult};

/// Whether a key came as a private key or as a public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A private key (only its public half is kept).
    Private,
    /// A public key (SubjectPublicKeyInfo or PKCS#1 RSA).
    Public,
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyKind::Private => "private key",
            KeyKind::Public => "public key",
        })
    }
}

/// A key found in a file. Only the public half is kept, whatever was given.
pub struct Key {
    public: PKey<Public>,
    kind: KeyKind,
}

impl Key {
    /// The public key.
    pub fn public_key(&self) -> &PKeyRef<Public> {
        &self.public
    }

    /// Whether the file held a private or a public key.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// The key type, e.g. "EC P-256".
    pub fn key_type(&self) -> KeyType {
        key_type(&self.public)
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> Result<Vec<u8>, ErrorStack> {
        spki_der(&self.public)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} {})", self.key_type(), self.kind)
    }
}

/// The type and size of a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyType {
    /// RSA with its modulus size in bits.
    Rsa(u32),
    /// RSA-PSS with its modulus size in bits.
    RsaPss(u32),
    /// EC on a named curve: "P-256", "P-384", "P-521" or OpenSSL's short name.
    Ec(String),
    /// Ed25519.
    Ed25519,
    /// Ed448.
    Ed448,
    /// DSA with its size in bits.
    Dsa(u32),
    /// Anything else, by OpenSSL's numeric id.
    Other(i32),
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyType::Rsa(bits) => write!(f, "RSA {bits}"),
            KeyType::RsaPss(bits) => write!(f, "RSA-PSS {bits}"),
            KeyType::Ec(curve) => write!(f, "EC {curve}"),
            KeyType::Ed25519 => f.write_str("Ed25519"),
            KeyType::Ed448 => f.write_str("Ed448"),
            KeyType::Dsa(bits) => write!(f, "DSA {bits}"),
            KeyType::Other(id) => write!(f, "unknown key type (OpenSSL id {id})"),
        }
    }
}

/// The type of a key.
pub fn key_type<T: HasPublic>(key: &PKeyRef<T>) -> KeyType {
    match key.id() {
        Id::RSA => KeyType::Rsa(key.bits()),
        Id::RSA_PSS => KeyType::RsaPss(key.bits()),
        Id::DSA => KeyType::Dsa(key.bits()),
        Id::ED25519 => KeyType::Ed25519,
        Id::ED448 => KeyType::Ed448,
        Id::EC => {
            let curve = key.ec_key().ok().and_then(|ec| ec.group().curve_name());
            KeyType::Ec(match curve {
                Some(Nid::X9_62_PRIME256V1) => "P-256".to_string(),
                Some(Nid::SECP384R1) => "P-384".to_string(),
                Some(Nid::SECP521R1) => "P-521".to_string(),
                Some(nid) => nid.short_name().unwrap_or("(unnamed curve)").to_string(),
                None => "(explicit curve)".to_string(),
            })
        }
        other => KeyType::Other(other.as_raw()),
    }
}

/// The SubjectPublicKeyInfo DER of any key type, what selector 1 hashes.
pub fn spki_der<T: HasPublic>(key: &PKeyRef<T>) -> Result<Vec<u8>, ErrorStack> {
    key.public_key_to_der()
}

/// Whether the certificate holds this public key (compared as SubjectPublicKeyInfo DER).
pub fn cert_matches_key<T: HasPublic>(
    cert: &X509Ref,
    key: &PKeyRef<T>,
) -> Result<bool, ErrorStack> {
    Ok(cert.public_key()?.public_key_to_der()? == key.public_key_to_der()?)
}

/// The subject of a certificate as one line, in certificate order: `CN=mail.example.com, O=…`.
pub fn subject_line(cert: &X509Ref) -> String {
    cert.subject_name()
        .entries()
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

/// What one file holds: certificates in file order and/or one key.
#[derive(Debug)]
pub struct Material {
    path: PathBuf,
    certificates: Vec<X509>,
    key: Option<Key>,
}

impl Material {
    /// The file it came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The certificates, in file order (for a chain: leaf first).
    pub fn certificates(&self) -> &[X509] {
        &self.certificates
    }

    /// The first certificate: the leaf of a chain.
    pub fn leaf(&self) -> Option<&X509Ref> {
        self.certificates.first().map(|c| &**c)
    }

    /// The key, if the file holds one.
    pub fn key(&self) -> Option<&Key> {
        self.key.as_ref()
    }

    /// The CA certificates (see [`is_ca`]), in file order.
    pub fn ca_certificates(&self) -> impl Iterator<Item = &X509Ref> {
        self.certificates.iter().map(|c| &**c).filter(|c| is_ca(c))
    }
}

/// Why a file gave no certificate or key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PkiError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is empty.
    #[error("{} is empty: pass a certificate, chain or key (PEM or DER)", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The private key is encrypted.
    #[error(
        "{} holds an encrypted private key; dane-roll needs the unencrypted key (openssl pkey -in \
         KEY -out PLAIN), or pass the certificate instead",
        path.display()
    )]
    Encrypted {
        /// The file.
        path: PathBuf,
    },
    /// PEM blocks, none of them a certificate or a key.
    #[error(
        "{} holds no certificate or key (found: {}): pass the certificate, chain or key",
        path.display(), found.join(", ")
    )]
    NoMaterial {
        /// The file.
        path: PathBuf,
        /// What was found instead, e.g. "a certificate request (CSR)".
        found: Vec<String>,
    },
    /// Neither PEM nor DER.
    #[error(
        "{} is neither a PEM nor a DER certificate or key: pass the certificate, chain or key",
        path.display()
    )]
    Garbage {
        /// The file.
        path: PathBuf,
    },
    /// DER whose outer length runs past the end of the file.
    #[error(
        "{} is truncated DER: it announces {announced} bytes but holds {available}; copy the \
         file again",
        path.display()
    )]
    Truncated {
        /// The file.
        path: PathBuf,
        /// The length the DER header announces, header included.
        announced: usize,
        /// The bytes there are from that header on.
        available: usize,
    },
    /// A PEM block or DER object of a known kind that OpenSSL cannot decode.
    #[error("{}: the {what} is damaged: {source}", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What it claimed to be, e.g. "PEM block CERTIFICATE #2".
        what: String,
        /// OpenSSL's reason.
        source: ErrorStack,
    },
    /// More than one key in one file.
    #[error("{} holds {count} keys: give one key per file", path.display())]
    SeveralKeys {
        /// The file.
        path: PathBuf,
        /// How many.
        count: usize,
    },
    /// A key and a certificate that do not belong together.
    #[error(
        "the key in {} does not belong to the certificate in {} ({}): pass the key and \
         certificate of the same service",
        key.display(), cert.display(), subject
    )]
    KeyMismatch {
        /// The file with the key.
        key: PathBuf,
        /// The file with the certificate.
        cert: PathBuf,
        /// The certificate's subject.
        subject: String,
    },
    /// OpenSSL failed on data it had decoded.
    #[error("{}: OpenSSL failed: {source}", path.display())]
    OpenSsl {
        /// The file.
        path: PathBuf,
        /// OpenSSL's reason.
        source: ErrorStack,
    },
}

/// Read a file and find its certificates and key.
pub fn load(path: &Path) -> Result<Material, PkiError> {
    let bytes = crate::fsafe::read_regular(path).map_err(|source| PkiError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(path, &bytes)
}

/// Find the certificates and key in a file's bytes; `path` names it in errors.
///
/// PEM when the bytes hold a `-----BEGIN ` line, DER otherwise (one or several concatenated
/// objects). A key beside certificates must belong to the first certificate.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<Material, PkiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(PkiError::Empty {
            path: path.to_path_buf(),
        });
    }
    let mut found = Found::default();
    if contains(bytes, b"-----BEGIN ") {
        parse_pem(path, bytes, &mut found)?;
    } else {
        parse_der(path, bytes, &mut found)?;
    }
    found.into_material(path)
}

/// What a file held, while it is being read.
#[derive(Default)]
struct Found {
    certificates: Vec<X509>,
    keys: Vec<Key>,
    encrypted: bool,
    other: Vec<String>,
}

impl Found {
    fn into_material(mut self, path: &Path) -> Result<Material, PkiError> {
        if self.encrypted {
            return Err(PkiError::Encrypted {
                path: path.to_path_buf(),
            });
        }
        if self.keys.len() > 1 {
            return Err(PkiError::SeveralKeys {
                path: path.to_path_buf(),
                count: self.keys.len(),
            });
        }
        if self.certificates.is_empty() && self.keys.is_empty() {
            if self.other.is_empty() {
                return Err(PkiError::Garbage {
                    path: path.to_path_buf(),
                });
            }
            return Err(PkiError::NoMaterial {
                path: path.to_path_buf(),
                found: self.other,
            });
        }
        let key = self.keys.pop();
        if let (Some(key), Some(leaf)) = (&key, self.certificates.first()) {
            let matches =
                cert_matches_key(leaf, key.public_key()).map_err(|source| PkiError::OpenSsl {
                    path: path.to_path_buf(),
                    source,
                })?;
            if !matches {
                return Err(PkiError::KeyMismatch {
                    key: path.to_path_buf(),
                    cert: path.to_path_buf(),
                    subject: subject_line(leaf),
                });
            }
        }
        Ok(Material {
            path: path.to_path_buf(),
            certificates: self.certificates,
            key,
        })
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Keep only the public half of a key.
fn public_half<T: HasPublic>(key: &PKeyRef<T>) -> Result<PKey<Public>, ErrorStack> {
    PKey::public_key_from_der(&key.public_key_to_der()?)
}

fn parse_pem(path: &Path, bytes: &[u8], found: &mut Found) -> Result<(), PkiError> {
    let blocks = pem::parse_many(bytes).map_err(|err| PkiError::Damaged {
        path: path.to_path_buf(),
        what: format!("PEM text ({err})"),
        source: ErrorStack::get(),
    })?;
    for (n, block) in blocks.iter().enumerate() {
        let label = block.tag();
        let der = block.contents();
        let damaged = |source: ErrorStack| PkiError::Damaged {
            path: path.to_path_buf(),
            what: format!("PEM block {label} #{}", n + 1),
            source,
        };
        // Traditional ("OpenSSL legacy") PEM encryption is marked by headers, not by the label.
        let proc_type = block.headers().get("Proc-Type").unwrap_or_default();
        if proc_type.contains("ENCRYPTED") || label == "ENCRYPTED PRIVATE KEY" {
            found.encrypted = true;
            continue;
        }
        match label {
            "CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE" => {
                found
                    .certificates
                    .push(X509::from_der(der).map_err(damaged)?);
            }
            "PRIVATE KEY" => {
                let key = PKey::private_key_from_pkcs8(der).map_err(damaged)?;
                found.keys.push(private(&key).map_err(damaged)?);
            }
            "RSA PRIVATE KEY" => {
                let key = Rsa::private_key_from_der(der).and_then(PKey::from_rsa);
                found
                    .keys
                    .push(private(&*key.map_err(damaged)?).map_err(damaged)?);
            }
            "EC PRIVATE KEY" => {
                let key = EcKey::private_key_from_der(der).and_then(PKey::from_ec_key);
                found
                    .keys
                    .push(private(&*key.map_err(damaged)?).map_err(damaged)?);
            }
            "PUBLIC KEY" => {
                let key = PKey::public_key_from_der(der).map_err(damaged)?;
                found.keys.push(Key {
                    public: key,
                    kind: KeyKind::Public,
                });
            }
            "RSA PUBLIC KEY" => {
                let key = Rsa::public_key_from_der_pkcs1(der)
                    .and_then(PKey::from_rsa)
                    .map_err(damaged)?;
                found.keys.push(Key {
                    public: key,
                    kind: KeyKind::Public,
                });
            }
            // Written by `openssl ecparam -genkey` before the key itself: not worth mentioning.
            "EC PARAMETERS" => {}
            other => found.other.push(describe_label(other)),
        }
    }
    if blocks.is_empty() {
        return Err(PkiError::Garbage {
            path: path.to_path_buf(),
        });
    }
    if found.certificates.is_empty() && found.keys.is_empty() && found.other.is_empty() {
        found
            .other
            .push("EC PARAMETERS (curve parameters, not a key)".to_string());
    }
    Ok(())
}

fn private<T: HasPublic>(key: &PKeyRef<T>) -> Result<Key, ErrorStack> {
    Ok(Key {
        public: public_half(key)?,
        kind: KeyKind::Private,
    })
}

/// A PEM label that is neither a certificate nor a key, said in words.
fn describe_label(label: &str) -> String {
    let words = match label {
        "CERTIFICATE REQUEST" | "NEW CERTIFICATE REQUEST" => "a certificate request (CSR)",
        "DH PARAMETERS" | "X9.42 DH PARAMETERS" => "Diffie-Hellman parameters",
        "X509 CRL" => "a certificate revocation list",
        "PKCS7" | "CMS" => "a PKCS#7/CMS structure",
        _ => return format!("a PEM block '{label}'"),
    };
    format!("{words} (PEM block '{label}')")
}

fn parse_der(path: &Path, bytes: &[u8], found: &mut Found) -> Result<(), PkiError> {
    let mut rest = bytes;
    let mut n = 0;
    while !rest.is_empty() {
        n += 1;
        // Every certificate and key is a SEQUENCE (0x30).
        let Some(len) = crate::der::announced_length(rest).filter(|_| rest[0] == 0x30) else {
            return Err(PkiError::Garbage {
                path: path.to_path_buf(),
            });
        };
        if len > rest.len() {
            return Err(PkiError::Truncated {
                path: path.to_path_buf(),
                announced: len,
                available: rest.len(),
            });
        }
        let (object, tail) = rest.split_at(len);
        parse_der_object(path, object, n, found)?;
        rest = tail;
    }
    Ok(())
}

fn parse_der_object(path: &Path, der: &[u8], n: usize, found: &mut Found) -> Result<(), PkiError> {
    if let Ok(cert) = X509::from_der(der) {
        found.certificates.push(cert);
        return Ok(());
    }
    if let Ok(key) = PKey::public_key_from_der(der) {
        found.keys.push(Key {
            public: key,
            kind: KeyKind::Public,
        });
        return Ok(());
    }
    // An encrypted PKCS#8 key: the probe's callback refuses, and remembers it was asked.
    let asked = Cell::new(false);
    let probe = PKey::private_key_from_pkcs8_callback(der, |_buf: &mut [u8]| {
        asked.set(true);
        Ok(0)
    });
    if asked.get() {
        found.encrypted = true;
        return Ok(());
    }
    let key = match probe {
        Ok(key) => Ok(key),
        Err(_) => PKey::private_key_from_der(der),
    };
    if let Ok(key) = key {
        let key = private(&key).map_err(|source| PkiError::OpenSsl {
            path: path.to_path_buf(),
            source,
        })?;
        found.keys.push(key);
        return Ok(());
    }
    if let Ok(key) = Rsa::public_key_from_der_pkcs1(der).and_then(PKey::from_rsa) {
        found.keys.push(Key {
            public: key,
            kind: KeyKind::Public,
        });
        return Ok(());
    }
    if X509Req::from_der(der).is_ok() {
        found.other.push("a certificate request (CSR)".to_string());
    } else if openssl::dh::Dh::params_from_der(der).is_ok() {
        found.other.push("Diffie-Hellman parameters".to_string());
    } else {
        found.other.push(format!(
            "DER object #{n} that is neither a certificate nor a key"
        ));
    }
    Ok(())
}

// ----- Private keys: reading one to stage it, and generating the next key -----

/// Read the private key in `path` (PEM or DER, PKCS#8, PKCS#1 RSA or SEC1 EC; never encrypted:
/// [`load`] refuses those first and no passphrase is ever asked for).
pub fn load_private_key(path: &Path) -> Result<PKey<Private>, PkiError> {
    let material = load(path)?;
    match material.key().map(Key::kind) {
        Some(KeyKind::Private) => {}
        _ => {
            return Err(PkiError::NoMaterial {
                path: path.to_path_buf(),
                found: vec!["no private key".to_string()],
            });
        }
    }
    let bytes = crate::fsafe::read_regular(path).map_err(|source| PkiError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let damaged = |what: &str| {
        let what = what.to_owned();
        move |source: ErrorStack| PkiError::Damaged {
            path: path.to_path_buf(),
            what,
            source,
        }
    };
    if contains(&bytes, b"-----BEGIN ") {
        let blocks = pem::parse_many(&bytes).map_err(|err| PkiError::Damaged {
            path: path.to_path_buf(),
            what: format!("PEM text ({err})"),
            source: ErrorStack::get(),
        })?;
        for block in &blocks {
            let der = block.contents();
            let key = match block.tag() {
                "PRIVATE KEY" => PKey::private_key_from_pkcs8(der),
                "RSA PRIVATE KEY" => Rsa::private_key_from_der(der).and_then(PKey::from_rsa),
                "EC PRIVATE KEY" => EcKey::private_key_from_der(der).and_then(PKey::from_ec_key),
                _ => continue,
            };
            return key.map_err(damaged("private key"));
        }
    } else {
        let mut rest: &[u8] = &bytes;
        while let Some(len) = crate::der::announced_length(rest).filter(|l| *l <= rest.len()) {
            let (object, tail) = rest.split_at(len);
            if let Ok(key) = PKey::private_key_from_pkcs8_callback(object, |_b: &mut [u8]| Ok(0))
                .or_else(|_| PKey::private_key_from_der(object))
            {
                return Ok(key);
            }
            rest = tail;
        }
    }
    Err(PkiError::NoMaterial {
        path: path.to_path_buf(),
        found: vec!["no private key".to_string()],
    })
}

/// A new private key of `kind` (a configured `key-type`).
pub fn generate_key(kind: crate::config::KeyType) -> Result<PKey<Private>, ErrorStack> {
    use crate::config::KeyType as K;
    let ec = |nid: Nid| -> Result<PKey<Private>, ErrorStack> {
        let mut group = openssl::ec::EcGroup::from_curve_name(nid)?;
        // Named-curve encoding, as every CA and TLS library expects.
        group.set_asn1_flag(openssl::ec::Asn1Flag::NAMED_CURVE);
        PKey::from_ec_key(EcKey::generate(&group)?)
    };
    match kind {
        K::Rsa2048 => PKey::from_rsa(Rsa::generate(2048)?),
        K::Rsa3072 => PKey::from_rsa(Rsa::generate(3072)?),
        K::Rsa4096 => PKey::from_rsa(Rsa::generate(4096)?),
        K::Ec256 => ec(Nid::X9_62_PRIME256V1),
        K::Ec384 => ec(Nid::SECP384R1),
        K::Ed25519 => PKey::generate_ed25519(),
    }
}

/// The configured key type that makes a key like this one (same algorithm and size), if there
/// is one: RSA 2048/3072/4096, EC P-256/P-384, Ed25519.
pub fn key_type_like(key: &KeyType) -> Option<crate::config::KeyType> {
    use crate::config::KeyType as K;
    Some(match key {
        KeyType::Rsa(bits) | KeyType::RsaPss(bits) => match bits {
            0..=2048 => K::Rsa2048,
            2049..=3072 => K::Rsa3072,
            _ => K::Rsa4096,
        },
        KeyType::Ec(curve) if curve == "P-256" => K::Ec256,
        KeyType::Ec(curve) if curve == "P-384" => K::Ec384,
        KeyType::Ed25519 => K::Ed25519,
        _ => return None,
    })
}

/// Write a private key as PKCS#8 PEM to `path`, atomically, mode 0600 (temporary file in the
/// same directory, fsync, rename, directory fsync).
pub fn write_private_key(path: &Path, key: &PKeyRef<Private>) -> std::io::Result<()> {
    let pem = key
        .private_key_to_pem_pkcs8()
        .map_err(std::io::Error::other)?;
    crate::install::write_atomic_mode(path, &pem, 0o600)
}

/// The crate's DER readings of `bytes` through `x509-parser` (the announced length of the first
/// element, a certificate's SubjectPublicKeyInfo and its notAfter), public only for the fuzz targets
/// `fuzz/fuzz_targets/pem_der.rs` and `der.rs`.
#[doc(hidden)]
pub fn der_readings(bytes: &[u8]) -> (Option<usize>, Option<&[u8]>, Option<i64>) {
    (
        crate::der::announced_length(bytes),
        crate::der::certificate_spki(bytes),
        crate::der::certificate_not_after(bytes),
    )
}

#[cfg(test)]
mod generate_tests {
    use super::*;
    use crate::config::KeyType as K;

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

    #[test]
    fn generated_keys_have_the_asked_type_and_round_trip_0600() {
        let dir = tempfile::tempdir().unwrap();
        for (kind, want) in [
            (K::Ec256, KeyType::Ec("P-256".into())),
            (K::Ec384, KeyType::Ec("P-384".into())),
            (K::Ed25519, KeyType::Ed25519),
            (K::Rsa2048, KeyType::Rsa(2048)),
        ] {
            let key = generate_key(kind).unwrap();
            assert_eq!(key_type(&key), want);
            assert_eq!(key_type_like(&want), Some(kind));
            let path = dir.path().join(format!("{kind}.key"));
            write_private_key(&path, &key).unwrap();
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
            let back = load_private_key(&path).unwrap();
            assert_eq!(spki_der(&back).unwrap(), spki_der(&key).unwrap());
        }
        assert_eq!(key_type_like(&KeyType::Ed448), None);
    }

    #[test]
    fn a_certificate_is_not_a_private_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = generate_key(K::Ec256).unwrap();
        let path = dir.path().join("pub.pem");
        std::fs::write(&path, key.public_key_to_pem().unwrap()).unwrap();
        assert!(load_private_key(&path).is_err());
    }
}
