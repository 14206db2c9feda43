//! Making certbot renew a lineage with dane-roll's published next key (`dane-roll rotate`).
//!
//! certbot has no next key of its own, but with `--reuse-key` it renews with whatever
//! `live/<name>/privkey.pem` points at. So (the method tested on these machines, docs/LAB.md, "ACME clients"):
//!
//! 1. copy the next key to `archive/<name>/privkey<N+1>.pem` (0600, N the highest version there),
//! 2. re-point `live/<name>/privkey.pem` at it atomically (a new link renamed over the old one),
//! 3. run `certbot renew --cert-name <name> --force-renewal --reuse-key
//!    --no-random-sleep-on-renew`,
//! 4. check that the new certificate's SPKI is the next key's.
//!
//! When certbot fails, the link is pointed back and the staged copy deleted ([`Staged::undo`]):
//! the lineage is as it was. certbot's deploy hook (`dane-roll hook certbot`) then sees a new key
//! whose record was published long ago, so the rollover needs no wait.
//!
//! During the renewal `live/` holds the new key beside the old certificate for seconds: the mail
//! server must read the key+chain file dane-roll installs, never `live/` itself.

use std::ffi::OsStr;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::pki;

mod derive;
use crate::rollover::KeyHash;
pub use derive::{Derived, lineage_for_domains};

/// certbot's configuration directory when `--config-dir` is not passed.
pub const DEFAULT_CERTBOT_CONFIG_DIR: &str = "/etc/letsencrypt";

/// The arguments `rotate` always gives `certbot renew` (after `--cert-name NAME`).
pub const RENEW_ARGS: &[&str] = &[
    "--force-renewal",
    "--reuse-key",
    "--no-random-sleep-on-renew",
];

/// The four kinds of file in a certbot archive directory.
const KINDS: &[&str] = &["cert", "chain", "fullchain", "privkey"];

/// What went wrong while staging or checking a rotation. Each names the path.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RotateError {
    /// The live directory is not a certbot lineage.
    #[error(
        "{} is not a certbot lineage ({reason}); is the service's `lineage` right, and does \
         certbot keep its files there (pass --certbot-arg=--config-dir=DIR otherwise)? A \
         certificate from acme.sh or dehydrated rotates natively: see `dane-roll rotate --help`",
        live.display()
    )]
    NotALineage {
        /// The live directory looked at.
        live: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A file operation failed.
    #[error("cannot {what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// The path.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The next key is not a PEM private key (certbot reads PEM only).
    #[error(
        "the next key {} is not a PEM private key; certbot reads PEM only. Generate a new next \
         key with `dane-roll next-key SERVICE`",
        path.display()
    )]
    NotPem {
        /// The key file.
        path: PathBuf,
    },
    /// A key or certificate could not be read.
    #[error(transparent)]
    Pki(#[from] pki::PkiError),
    /// A file that should hold a key or certificate holds neither.
    #[error("{} holds no {what}", path.display())]
    Nothing {
        /// The file.
        path: PathBuf,
        /// What was expected.
        what: &'static str,
    },
    /// OpenSSL could not encode a public key.
    #[error("{}: cannot encode the public key: {source}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// OpenSSL's reason.
        source: openssl::error::ErrorStack,
    },
}

fn io_err<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> RotateError + 'p {
    move |source| RotateError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// certbot's `--config-dir` among arguments passed through to it (`--config-dir DIR` or
/// `--config-dir=DIR`; the last one wins, as in certbot), else [`DEFAULT_CERTBOT_CONFIG_DIR`].
pub fn certbot_config_dir(args: &[String]) -> PathBuf {
    let mut found = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        if arg == "--config-dir" {
            found = it.next().cloned();
        } else if let Some(dir) = arg.strip_prefix("--config-dir=") {
            found = Some(dir.to_owned());
        }
    }
    PathBuf::from(found.unwrap_or_else(|| DEFAULT_CERTBOT_CONFIG_DIR.to_owned()))
}

/// The live directory of a configured lineage: a path as given, a name under
/// `<config_dir>/live/`.
pub fn live_dir(lineage: &str, config_dir: &Path) -> PathBuf {
    if lineage.contains('/') {
        PathBuf::from(lineage)
    } else {
        config_dir.join("live").join(lineage)
    }
}

/// The deploy hook stored in certbot's renewal configuration of `name` (`renew_hook = …` in
/// `<config_dir>/renewal/<name>.conf`), if any.
pub fn stored_deploy_hook(config_dir: &Path, name: &str) -> Option<String> {
    let text = fs::read_to_string(config_dir.join("renewal").join(format!("{name}.conf"))).ok()?;
    text.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "renew_hook")
            .then(|| value.trim().to_owned())
            .filter(|v| !v.is_empty())
    })
}

/// A dane-roll hook in certbot's deploy-hook directory (`<config_dir>/renewal-hooks/deploy/`,
/// run for every lineage; the Debian package installs one there): an executable file that names
/// dane-roll.
pub fn directory_deploy_hook(config_dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let dir = config_dir.join("renewal-hooks").join("deploy");
    let mut found: Vec<PathBuf> = fs::read_dir(&dir)
        .ok()?
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let meta = fs::metadata(&path).ok()?;
            let executable = meta.is_file() && meta.permissions().mode() & 0o111 != 0;
            // A hook script is small; a large file is not ours.
            (executable && meta.len() < 64 * 1024)
                .then(|| fs::read_to_string(&path).ok())
                .flatten()
                .filter(|text| text.contains("dane-roll"))
                .map(|_| path)
        })
        .collect();
    found.sort();
    found.into_iter().next()
}

/// The SPKI SHA-256 of the private or public key in `path`.
pub fn key_hash(path: &Path) -> Result<KeyHash, RotateError> {
    let material = pki::load(path)?;
    let key = material.key().ok_or_else(|| nothing(path, "key"))?;
    let der = key.spki_der().map_err(|source| encode(path, source))?;
    Ok(KeyHash::of_spki_der(&der))
}

/// The SPKI SHA-256 of the first certificate in `path`.
pub fn cert_key_hash(path: &Path) -> Result<KeyHash, RotateError> {
    let material = pki::load(path)?;
    let leaf = material
        .leaf()
        .ok_or_else(|| nothing(path, "certificate"))?;
    let public = leaf.public_key().map_err(|source| encode(path, source))?;
    let der = pki::spki_der(&public).map_err(|source| encode(path, source))?;
    Ok(KeyHash::of_spki_der(&der))
}

fn nothing(path: &Path, what: &'static str) -> RotateError {
    RotateError::Nothing {
        path: path.to_path_buf(),
        what,
    }
}

fn encode(path: &Path, source: openssl::error::ErrorStack) -> RotateError {
    RotateError::Encode {
        path: path.to_path_buf(),
        source,
    }
}

/// A certbot lineage: its live directory and the archive its links point into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lineage {
    /// `live/<name>`.
    pub live: PathBuf,
    /// `archive/<name>` (where `live/<name>/privkey.pem` points).
    pub archive: PathBuf,
}

impl Lineage {
    /// Open the lineage at `live`: `privkey.pem` there must be a link into an archive directory.
    pub fn open(live: &Path) -> Result<Lineage, RotateError> {
        let not = |reason: String| RotateError::NotALineage {
            live: live.to_path_buf(),
            reason,
        };
        if !live.is_dir() {
            return Err(not("no such directory".into()));
        }
        let link = live.join("privkey.pem");
        let target = fs::read_link(&link)
            .map_err(|e| not(format!("privkey.pem is not a symbolic link: {e}")))?;
        let target = if target.is_absolute() {
            target
        } else {
            live.join(target)
        };
        let archive = target
            .parent()
            .filter(|p| p.is_dir())
            .ok_or_else(|| not(format!("privkey.pem points at {}", target.display())))?
            .to_path_buf();
        Ok(Lineage {
            live: live.to_path_buf(),
            archive,
        })
    }

    /// The lineage's name (the live directory's last component).
    pub fn name(&self) -> String {
        self.live
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// `live/<name>/privkey.pem`.
    pub fn privkey_link(&self) -> PathBuf {
        self.live.join("privkey.pem")
    }

    /// `live/<name>/cert.pem`.
    pub fn cert(&self) -> PathBuf {
        self.live.join("cert.pem")
    }

    /// The highest version number of any file in the archive (`privkey3.pem` → 3).
    pub fn max_version(&self) -> Result<u32, RotateError> {
        let mut max = 0;
        for entry in fs::read_dir(&self.archive).map_err(io_err("read", &self.archive))? {
            let entry = entry.map_err(io_err("read", &self.archive))?;
            if let Some(n) = version_of(&entry.file_name()) {
                max = max.max(n);
            }
        }
        Ok(max)
    }

    /// Copy `next_key` into the archive as the next version and point `privkey.pem` at it.
    pub fn stage(&self, next_key: &Path) -> Result<Staged, RotateError> {
        let bytes = crate::fsafe::read_regular(next_key).map_err(io_err("read", next_key))?;
        if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
            return Err(RotateError::NotPem {
                path: next_key.to_path_buf(),
            });
        }
        let link = self.privkey_link();
        let old_target = fs::read_link(&link).map_err(io_err("read the link", &link))?;
        let version = self.max_version()? + 1;
        let file_name = format!("privkey{version}.pem");
        let staged_file = self.archive.join(&file_name);
        {
            // O_EXCL|O_NOFOLLOW: a file or link planted at the next version's name is refused.
            let mut file = crate::fsafe::create_new(&staged_file, 0o600)
                .map_err(io_err("create", &staged_file))?;
            let written = file.write_all(&bytes).and_then(|()| file.sync_all());
            if let Err(e) = written {
                let _ = fs::remove_file(&staged_file);
                return Err(io_err("write", &staged_file)(e));
            }
        }
        // The same form as certbot's own links: relative when the old one was.
        let new_target = if old_target.is_absolute() {
            staged_file.clone()
        } else {
            old_target
                .parent()
                .map(|p| p.join(&file_name))
                .unwrap_or_else(|| PathBuf::from(&file_name))
        };
        if let Err(e) = replace_link(&link, &new_target) {
            let _ = fs::remove_file(&staged_file);
            return Err(e);
        }
        Ok(Staged {
            link,
            old_target,
            new_target,
            staged_file,
        })
    }
}

/// `privkey12.pem` → 12 (any of the four kinds).
fn version_of(name: &OsStr) -> Option<u32> {
    let name = name.to_str()?.strip_suffix(".pem")?;
    KINDS.iter().find_map(|kind| {
        let digits = name.strip_prefix(kind)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse().ok()
    })
}

/// Point the symbolic link `link` at `target` atomically: a new link beside it, renamed over it.
fn replace_link(link: &Path, target: &Path) -> Result<(), RotateError> {
    let dir = match link.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = link
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    // A new link under an unpredictable name (symlink(2) never follows or replaces what is
    // there; a taken name is retried), then renamed over the old one.
    let tmp = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".dane-roll.tmp")
        .rand_bytes(12)
        .make_in(dir, |p| std::os::unix::fs::symlink(target, p))
        .map_err(io_err("create a link in", dir))?;
    // From here the name is removed by hand, only when the rename failed.
    let tmp = tmp
        .into_temp_path()
        .keep()
        .map_err(|e| io_err("keep", link)(e.error))?;
    if let Err(e) = fs::rename(&tmp, link) {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("replace the link", link)(e));
    }
    // Best effort: the rename is what must be atomic; the directory sync makes it durable.
    if let Ok(d) = fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// A staged next key: `privkey.pem` points at it until certbot renews or [`Staged::undo`].
#[derive(Debug)]
#[must_use = "a staged key must be undone or finished"]
pub struct Staged {
    link: PathBuf,
    old_target: PathBuf,
    new_target: PathBuf,
    staged_file: PathBuf,
}

impl Staged {
    /// The copy of the next key in the archive.
    pub fn staged_file(&self) -> &Path {
        &self.staged_file
    }

    /// Where `privkey.pem` pointed before.
    pub fn old_target(&self) -> &Path {
        &self.old_target
    }

    /// Put the lineage back as it was: `privkey.pem` to its old target (only when it still
    /// points at the staged key: a link certbot moved on is certbot's), the copy deleted.
    pub fn undo(self) -> Result<(), RotateError> {
        let now = fs::read_link(&self.link).map_err(io_err("read the link", &self.link))?;
        if now == self.new_target {
            replace_link(&self.link, &self.old_target)?;
        }
        if !self.still_used()? {
            fs::remove_file(&self.staged_file).map_err(io_err("remove", &self.staged_file))?;
        }
        Ok(())
    }

    /// After certbot renewed: certbot wrote the key as a version of its own, so the staged copy
    /// is deleted unless something in the archive or `live/` still points at it. Returns whether
    /// it was deleted.
    pub fn finish(self) -> Result<bool, RotateError> {
        if self.still_used()? {
            return Ok(false);
        }
        fs::remove_file(&self.staged_file).map_err(io_err("remove", &self.staged_file))?;
        Ok(true)
    }

    /// Whether `privkey.pem` or a link in the archive resolves to the staged file.
    fn still_used(&self) -> Result<bool, RotateError> {
        let staged =
            fs::canonicalize(&self.staged_file).map_err(io_err("resolve", &self.staged_file))?;
        let resolves_here = |p: &Path| fs::canonicalize(p).is_ok_and(|c| c == staged);
        if resolves_here(&self.link) {
            return Ok(true);
        }
        let archive = self.staged_file.parent().unwrap_or(Path::new("."));
        for entry in fs::read_dir(archive).map_err(io_err("read", archive))? {
            let path = entry.map_err(io_err("read", archive))?.path();
            if path != self.staged_file && path.is_symlink() && resolves_here(&path) {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

#[cfg(test)]
mod tests;
