//! The ACME clients' certificates on disk: certbot's lineages (`renewal/NAME.conf`, whose
//! `privkey`/`fullchain` lines name the files, by default `live/NAME/*.pem`), acme.sh's
//! certificate directories (`DOMAIN[_ecc]/DOMAIN.key`, `fullchain.cer`, a `DOMAIN.key.next`
//! beside is its next key) and dehydrated's (`certs/NAME/privkey.pem`, `fullchain.pem`,
//! `privkey.roll.pem` the next key). Read only; a directory that is not there gives nothing.

use std::fs;
use std::path::{Path, PathBuf};

pub use crate::hooks::Client;

/// One certificate an ACME client keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeCert {
    /// The client.
    pub client: Client,
    /// Its name for the certificate: the certbot lineage, acme.sh's main domain, dehydrated's
    /// directory.
    pub name: String,
    /// The directory the client keeps it in (certbot: `live/NAME`).
    pub dir: PathBuf,
    /// The current private key.
    pub key: PathBuf,
    /// The certificate and its chain.
    pub fullchain: PathBuf,
    /// The client's next key, when it has one on disk.
    pub next_key: Option<PathBuf>,
}

/// Every certbot lineage under `letsencrypt` (`renewal/*.conf`), sorted by name.
pub fn certbot(letsencrypt: &Path) -> Vec<AcmeCert> {
    let mut found = Vec::new();
    for conf in sorted_entries(&letsencrypt.join("renewal")) {
        let Some(name) = conf
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".conf"))
        else {
            continue;
        };
        let text = fs::read_to_string(&conf).unwrap_or_default();
        let live = letsencrypt.join("live").join(name);
        let value = |key: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == key)
                .map(|(_, v)| PathBuf::from(v.trim()))
        };
        found.push(AcmeCert {
            client: Client::Certbot,
            name: name.to_owned(),
            key: value("privkey").unwrap_or_else(|| live.join("privkey.pem")),
            fullchain: value("fullchain").unwrap_or_else(|| live.join("fullchain.pem")),
            dir: live,
            next_key: None,
        });
    }
    found
}

/// Every certificate in acme.sh's home: a directory `D` or `D_ecc` holding `D.conf`.
pub fn acme_sh(home: &Path) -> Vec<AcmeCert> {
    let mut found = Vec::new();
    for dir in sorted_entries(home) {
        let Some(base) = dir.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        let domain = base.strip_suffix("_ecc").unwrap_or(base);
        if !dir.join(format!("{domain}.conf")).is_file() {
            continue;
        }
        let key = dir.join(format!("{domain}.key"));
        let next = dir.join(format!("{domain}.key.next"));
        found.push(AcmeCert {
            client: Client::AcmeSh,
            name: domain.to_owned(),
            next_key: next.is_file().then_some(next),
            key,
            fullchain: dir.join("fullchain.cer"),
            dir,
        });
    }
    found
}

/// Every certificate under dehydrated's `base/certs/`.
pub fn dehydrated(base: &Path) -> Vec<AcmeCert> {
    let mut found = Vec::new();
    for dir in sorted_entries(&base.join("certs")) {
        if !dir.join("fullchain.pem").is_file() {
            continue;
        }
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let next = dir.join("privkey.roll.pem");
        found.push(AcmeCert {
            client: Client::Dehydrated,
            name,
            key: dir.join("privkey.pem"),
            fullchain: dir.join("fullchain.pem"),
            next_key: next.is_file().then_some(next),
            dir,
        });
    }
    found
}

/// The entries of `dir`, sorted; nothing when it cannot be read.
fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    entries.sort();
    entries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certbot_lineage_from_its_renewal_conf() {
        let dir = tempfile::tempdir().unwrap();
        let le = dir.path();
        fs::create_dir_all(le.join("renewal")).unwrap();
        fs::write(
            le.join("renewal/mail.example.com.conf"),
            "version = 2.1.0\narchive_dir = /x\nprivkey = /le/live/mail.example.com/privkey.pem\n",
        )
        .unwrap();
        fs::write(le.join("renewal/notes.txt"), "").unwrap();
        let found = certbot(le);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "mail.example.com");
        assert_eq!(
            found[0].key,
            PathBuf::from("/le/live/mail.example.com/privkey.pem")
        );
        assert_eq!(
            found[0].fullchain,
            le.join("live/mail.example.com/fullchain.pem")
        );
        assert!(certbot(&le.join("absent")).is_empty());
    }

    #[test]
    fn acme_sh_ecc_directory_and_next_key() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("mail.example.com_ecc");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("mail.example.com.conf"), "").unwrap();
        fs::write(d.join("mail.example.com.key.next"), "").unwrap();
        fs::create_dir_all(dir.path().join("deploy")).unwrap();
        let found = acme_sh(dir.path());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "mail.example.com");
        assert_eq!(found[0].key, d.join("mail.example.com.key"));
        assert_eq!(found[0].next_key, Some(d.join("mail.example.com.key.next")));
    }
}
