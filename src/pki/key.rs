//! Keys: what a file held ([`Key`], only the public half kept), a key's type and size in words
//! ("EC P-256", "RSA 2048"), its SubjectPublicKeyInfo, whether a certificate holds it, and the
//! private key of a rollover: read to stage it, generated as the next key, written 0600.

use std::fmt;
use std::path::Path;

use openssl::ec::EcKey;
use openssl::error::ErrorStack;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, Id, PKey, PKeyRef, Private, Public};
use openssl::rsa::Rsa;
use openssl::x509::X509Ref;

use super::{PkiError, contains, load};

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
    pub(super) public: PKey<Public>,
    pub(super) kind: KeyKind,
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

pub(super) fn private<T: HasPublic>(key: &PKeyRef<T>) -> Result<Key, ErrorStack> {
    Ok(Key {
        public: public_half(key)?,
        kind: KeyKind::Private,
    })
}

/// Keep only the public half of a key.
fn public_half<T: HasPublic>(key: &PKeyRef<T>) -> Result<PKey<Public>, ErrorStack> {
    PKey::public_key_from_der(&key.public_key_to_der()?)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::KeyType as K;

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
