//! A test PKI made at run time with the openssl crate: keys, a root → intermediate → leaf chain,
//! self-signed and expired leaves, and the files a mail server reads.
//!
//! Nothing is checked in: every lab run makes its own CA, so no test depends on a certificate
//! that expires in the repository. The leaf's name is the lab's MX host
//! (`mail.example.test`) unless told otherwise.
//!
//! - [`new_key`]: RSA 2048 or ECDSA P-256 (also "the next key" of a rollover);
//! - [`TestPki`]: root and intermediate CA, [`TestPki::leaf`] issues a [`Leaf`] with its chain;
//!   [`TestPki::another_intermediate`] and [`TestPki::leaf_from`] issue from a second one;
//! - [`self_signed`]: a leaf that is its own issuer (DANE-EE does not care);
//! - [`Leaf::key_and_chain_pem`] / [`write_key_and_chain`]: the Postfix `smtpd_tls_chain_files`
//!   format (private key FIRST, then leaf, then intermediates), written atomically with mode 0600;
//! - [`spki_sha256_hex`] / [`key_spki_sha256_hex`]: the data of a TLSA `3 1 1` record.

use std::io;
use std::net::IpAddr;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, PKey, PKeyRef, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509, X509Builder, X509NameBuilder, X509Ref};

/// The lab's MX host name, the default leaf name.
pub const MX_HOST: &str = "mail.example.test";

/// A private key.
pub type Key = PKey<Private>;

/// The key algorithms the lab makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA, 2048 bits.
    Rsa2048,
    /// ECDSA on P-256 (prime256v1).
    EcdsaP256,
}

/// How long a certificate is valid, relative to now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    /// From one day ago for `days` days.
    Days(u32),
    /// Valid from 30 days ago until yesterday: expired.
    Expired,
}

fn ossl(e: openssl::error::ErrorStack) -> io::Error {
    io::Error::other(format!("lab pki: openssl: {e}"))
}

/// A fresh private key ("the next key" of a rollover is just this).
pub fn new_key(kind: KeyKind) -> io::Result<Key> {
    match kind {
        KeyKind::Rsa2048 => PKey::from_rsa(Rsa::generate(2048).map_err(ossl)?).map_err(ossl),
        KeyKind::EcdsaP256 => {
            let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).map_err(ossl)?;
            PKey::from_ec_key(EcKey::generate(&group).map_err(ossl)?).map_err(ossl)
        }
    }
}

/// A key and its certificate.
pub struct Issued {
    /// The private key.
    pub key: Key,
    /// The certificate.
    pub cert: X509,
}

/// A leaf certificate with its key and the intermediates a server must send.
pub struct Leaf {
    /// The leaf's private key.
    pub key: Key,
    /// The leaf certificate.
    pub cert: X509,
    /// The intermediates, leaf's issuer first (empty for a self-signed leaf).
    pub chain: Vec<X509>,
}

impl Leaf {
    /// Private key first, then the leaf, then the intermediates, PEM: the format of Postfix's
    /// `smtpd_tls_chain_files` (one file).
    pub fn key_and_chain_pem(&self) -> io::Result<Vec<u8>> {
        let mut out = self.key.private_key_to_pem_pkcs8().map_err(ossl)?;
        out.extend(self.cert.to_pem().map_err(ossl)?);
        for c in &self.chain {
            out.extend(c.to_pem().map_err(ossl)?);
        }
        Ok(out)
    }

    /// The leaf and the intermediates, PEM (a "fullchain").
    pub fn fullchain_pem(&self) -> io::Result<Vec<u8>> {
        let mut out = self.cert.to_pem().map_err(ossl)?;
        for c in &self.chain {
            out.extend(c.to_pem().map_err(ossl)?);
        }
        Ok(out)
    }

    /// SHA-256 of the leaf's SubjectPublicKeyInfo, lowercase hex: TLSA `3 1 1` data.
    pub fn spki_sha256_hex(&self) -> io::Result<String> {
        spki_sha256_hex(&self.cert)
    }

    /// The TLSA `3 1 1` rdata of this leaf: `"3 1 1 <hex>"`.
    pub fn tlsa_311(&self) -> io::Result<String> {
        Ok(format!("3 1 1 {}", self.spki_sha256_hex()?))
    }

    /// Write [`Leaf::key_and_chain_pem`] to `path` atomically, mode 0600.
    pub fn write_key_and_chain(&self, path: &Path) -> io::Result<()> {
        write_key_and_chain(path, &self.key_and_chain_pem()?)
    }
}

/// A root CA and an intermediate CA that issues leaves.
pub struct TestPki {
    /// The root (self-signed trust anchor).
    pub root: Issued,
    /// The intermediate, signed by the root; it signs the leaves.
    pub intermediate: Issued,
    kind: KeyKind,
}

impl TestPki {
    /// A new root and intermediate, both with keys of `kind`.
    pub fn new(kind: KeyKind) -> io::Result<TestPki> {
        let root_key = new_key(kind)?;
        let root = build(
            "dane-roll lab root CA",
            &root_key,
            None,
            Role::Ca { pathlen: 1 },
            &[],
            Validity::Days(3650),
        )?;
        let int_key = new_key(kind)?;
        let int = build(
            "dane-roll lab intermediate CA",
            &int_key,
            Some((&root, &root_key)),
            Role::Ca { pathlen: 0 },
            &[],
            Validity::Days(3650),
        )?;
        Ok(TestPki {
            root: Issued {
                key: root_key,
                cert: root,
            },
            intermediate: Issued {
                key: int_key,
                cert: int,
            },
            kind,
        })
    }

    /// The key algorithm of the CAs (and default of the leaves).
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    /// A leaf for `names` (DNS names or IP addresses; the first is also the CN) with a new key of
    /// `kind`, valid 90 days, signed by the intermediate.
    pub fn leaf(&self, names: &[&str], kind: KeyKind) -> io::Result<Leaf> {
        self.leaf_for_key(names, new_key(kind)?, Validity::Days(90))
    }

    /// A leaf for `names` with the given key and validity (e.g. the pre-published next key).
    pub fn leaf_for_key(&self, names: &[&str], key: Key, validity: Validity) -> io::Result<Leaf> {
        self.leaf_from(&self.intermediate, names, key, validity)
    }

    /// A leaf for `names` that expired yesterday.
    pub fn expired_leaf(&self, names: &[&str], kind: KeyKind) -> io::Result<Leaf> {
        self.leaf_for_key(names, new_key(kind)?, Validity::Expired)
    }

    /// Another intermediate under the same root, as a CA issues from several (Let's Encrypt's
    /// E5/E6, R10/R11) and rotates them.
    pub fn another_intermediate(&self, cn: &str) -> io::Result<Issued> {
        let key = new_key(self.kind)?;
        let cert = build(
            cn,
            &key,
            Some((&self.root.cert, &self.root.key)),
            Role::Ca { pathlen: 0 },
            &[],
            Validity::Days(3650),
        )?;
        Ok(Issued { key, cert })
    }

    /// A leaf for `names` with the given key and validity, signed by `intermediate` (a renewal
    /// from another intermediate of the same CA).
    pub fn leaf_from(
        &self,
        intermediate: &Issued,
        names: &[&str],
        key: Key,
        validity: Validity,
    ) -> io::Result<Leaf> {
        let cn = names.first().copied().unwrap_or(MX_HOST);
        let cert = build(
            cn,
            &key,
            Some((&intermediate.cert, &intermediate.key)),
            Role::Leaf,
            names,
            validity,
        )?;
        Ok(Leaf {
            key,
            cert,
            chain: vec![intermediate.cert.clone()],
        })
    }

    /// The root, PEM (a CA file for clients).
    pub fn root_pem(&self) -> io::Result<Vec<u8>> {
        self.root.cert.to_pem().map_err(ossl)
    }
}

/// A self-signed leaf for `names` with a new key of `kind`, valid 90 days.
pub fn self_signed(names: &[&str], kind: KeyKind) -> io::Result<Leaf> {
    let key = new_key(kind)?;
    let cn = names.first().copied().unwrap_or(MX_HOST);
    let cert = build(cn, &key, None, Role::Leaf, names, Validity::Days(90))?;
    Ok(Leaf {
        key,
        cert,
        chain: Vec::new(),
    })
}

/// SHA-256 of a certificate's SubjectPublicKeyInfo, lowercase hex (TLSA `3 1 1`).
pub fn spki_sha256_hex(cert: &X509Ref) -> io::Result<String> {
    let key = cert.public_key().map_err(ossl)?;
    key_spki_sha256_hex(&key)
}

/// SHA-256 of a key's SubjectPublicKeyInfo DER, lowercase hex (TLSA `3 1 1`). Works for a
/// private key too (its public half is hashed).
pub fn key_spki_sha256_hex<T: HasPublic>(key: &PKeyRef<T>) -> io::Result<String> {
    let der = key.public_key_to_der().map_err(ossl)?;
    let digest = openssl::sha::sha256(&der);
    Ok(digest.iter().map(|b| format!("{b:02x}")).collect())
}

/// Write a Postfix key+chain file atomically: a temporary file beside `path` with mode 0600,
/// synced, then renamed over `path`. A server reloading at any moment sees the old file or the
/// new one, never half of one.
pub fn write_key_and_chain(path: &Path, pem: &[u8]) -> io::Result<()> {
    write_atomic(path, pem, 0o600)
}

/// Write `data` to `path` atomically (temporary file in the same directory + rename) with `mode`.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&tmp)?;
    // The mode given to open() is filtered by the umask; set it exactly.
    std::fs::set_permissions(&tmp, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
    f.write_all(data)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}

enum Role {
    Ca { pathlen: u32 },
    Leaf,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn build(
    cn: &str,
    key: &Key,
    issuer: Option<(&X509, &Key)>,
    role: Role,
    names: &[&str],
    validity: Validity,
) -> io::Result<X509> {
    const DAY: i64 = 86_400;
    let mut name = X509NameBuilder::new().map_err(ossl)?;
    name.append_entry_by_nid(Nid::ORGANIZATIONNAME, "dane-roll lab")
        .map_err(ossl)?;
    name.append_entry_by_nid(Nid::COMMONNAME, cn)
        .map_err(ossl)?;
    let name = name.build();

    let mut b = X509Builder::new().map_err(ossl)?;
    b.set_version(2).map_err(ossl)?;
    let mut serial = BigNum::new().map_err(ossl)?;
    serial
        .rand(64, MsbOption::MAYBE_ZERO, false)
        .map_err(ossl)?;
    let serial = serial.to_asn1_integer().map_err(ossl)?;
    b.set_serial_number(&serial).map_err(ossl)?;
    b.set_subject_name(&name).map_err(ossl)?;
    match issuer {
        Some((ca, _)) => b.set_issuer_name(ca.subject_name()).map_err(ossl)?,
        None => b.set_issuer_name(&name).map_err(ossl)?,
    }
    b.set_pubkey(key).map_err(ossl)?;
    let now = unix_now();
    let (from, until) = match validity {
        Validity::Days(d) => (now - DAY, now - DAY + i64::from(d) * DAY),
        Validity::Expired => (now - 30 * DAY, now - DAY),
    };
    let (from, until) = (
        Asn1Time::from_unix(from as _).map_err(ossl)?,
        Asn1Time::from_unix(until as _).map_err(ossl)?,
    );
    b.set_not_before(&from).map_err(ossl)?;
    b.set_not_after(&until).map_err(ossl)?;

    match role {
        Role::Ca { pathlen } => {
            b.append_extension(
                BasicConstraints::new()
                    .critical()
                    .ca()
                    .pathlen(pathlen)
                    .build()
                    .map_err(ossl)?,
            )
            .map_err(ossl)?;
            b.append_extension(
                KeyUsage::new()
                    .critical()
                    .key_cert_sign()
                    .crl_sign()
                    .build()
                    .map_err(ossl)?,
            )
            .map_err(ossl)?;
        }
        Role::Leaf => {
            b.append_extension(BasicConstraints::new().critical().build().map_err(ossl)?)
                .map_err(ossl)?;
            let mut ku = KeyUsage::new();
            ku.critical().digital_signature();
            if key.rsa().is_ok() {
                ku.key_encipherment();
            }
            b.append_extension(ku.build().map_err(ossl)?)
                .map_err(ossl)?;
            b.append_extension(
                ExtendedKeyUsage::new()
                    .server_auth()
                    .client_auth()
                    .build()
                    .map_err(ossl)?,
            )
            .map_err(ossl)?;
            let mut san = SubjectAlternativeName::new();
            let names: Vec<&str> = if names.is_empty() {
                vec![cn]
            } else {
                names.to_vec()
            };
            for n in names {
                if n.parse::<IpAddr>().is_ok() {
                    san.ip(n);
                } else {
                    san.dns(n);
                }
            }
            let ctx = b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None);
            let san = san.build(&ctx).map_err(ossl)?;
            b.append_extension(san).map_err(ossl)?;
        }
    }
    let ski = {
        let ctx = b.x509v3_context(issuer.map(|(c, _)| c.as_ref()), None);
        SubjectKeyIdentifier::new().build(&ctx).map_err(ossl)?
    };
    b.append_extension(ski).map_err(ossl)?;
    if let Some((ca, _)) = issuer {
        let ctx = b.x509v3_context(Some(ca), None);
        let aki = AuthorityKeyIdentifier::new()
            .keyid(false)
            .build(&ctx)
            .map_err(ossl)?;
        b.append_extension(aki).map_err(ossl)?;
    }
    let signer = issuer.map_or(key, |(_, k)| k);
    b.sign(signer, MessageDigest::sha256()).map_err(ossl)?;
    Ok(b.build())
}
