//! Loading certificates, chains and keys from PEM or DER, detected by content (not by the file
//! name). Keys, their types and the rollover's private key are in `key.rs`, certificate helpers
//! in `cert.rs`; both are re-exported here.
//!
//! OpenSSL never asks for a passphrase here: PEM blocks are split by the `pem` crate and each is
//! decoded from DER by a function that takes no passphrase; encrypted keys are recognised first
//! and refused, and the one probe that could reach a passphrase callback gets one that refuses.

mod cert;
mod key;

use std::cell::Cell;
use std::path::{Path, PathBuf};

use openssl::ec::EcKey;
use openssl::error::ErrorStack;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::{X509, X509Ref, X509Req};

pub use cert::{append_distinct, is_ca, name_line, same_certificate, subject_line};
use key::private;
pub use key::{
    Key, KeyKind, KeyType, cert_matches_key, generate_key, key_type, key_type_like,
    load_private_key, spki_der, write_private_key,
};

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
