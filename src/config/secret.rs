//! Secrets named by the configuration: a file path or an environment variable name, never the value.
//!
//! A [`Secret`] only says where a secret lives. The value is read when it is needed ([`Secret::read`])
//! and comes back as a [`SecretValue`], whose `Debug` and `Display` print `***`. Availability can be
//! checked ([`Secret::status`]) without reading the value, so `config check` can report a missing file or
//! an unset variable without ever printing what they hold.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// What every rendering of a secret's value shows.
pub(super) const MASK: &str = "***";

/// Where a secret lives.
#[derive(Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// A file whose content (surrounding white space trimmed) is the secret.
    File(PathBuf),
    /// An environment variable whose value is the secret.
    Env(String),
}

/// A reference to a secret: where to find it. It never holds the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret {
    source: SecretSource,
}

/// Whether a secret can be read, told without reading it into the program's output.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SecretStatus {
    /// The file exists, is a regular file and can be opened for reading.
    Readable {
        /// The file can be read by every user of the machine (mode `o+r`).
        world_readable: bool,
    },
    /// The file does not exist.
    Missing,
    /// The path exists but is not a regular file.
    NotAFile,
    /// The file exists but is empty.
    Empty,
    /// The file cannot be opened.
    Unreadable(io::ErrorKind),
    /// The environment variable is set and not empty.
    Set,
    /// The environment variable is not set.
    Unset,
    /// The environment variable is set to the empty string.
    EmptyVar,
    /// The environment variable's value is not valid Unicode.
    NotUnicode,
}

impl SecretStatus {
    /// Whether the secret can be read.
    pub fn is_available(&self) -> bool {
        matches!(self, SecretStatus::Readable { .. } | SecretStatus::Set)
    }
}

impl fmt::Display for SecretStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretStatus::Readable {
                world_readable: false,
            } => f.write_str("readable"),
            SecretStatus::Readable {
                world_readable: true,
            } => f.write_str("readable, also by every user"),
            SecretStatus::Missing => f.write_str("not found"),
            SecretStatus::NotAFile => f.write_str("not a regular file"),
            SecretStatus::Empty => f.write_str("empty"),
            SecretStatus::Unreadable(kind) => write!(f, "unreadable: {}", io::Error::from(*kind)),
            SecretStatus::Set => f.write_str("set"),
            SecretStatus::Unset => f.write_str("not set"),
            SecretStatus::EmptyVar => f.write_str("set but empty"),
            SecretStatus::NotUnicode => f.write_str("set but not valid Unicode"),
        }
    }
}

/// Why a secret could not be read. The messages name the file or variable, never a value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    /// The file could not be read.
    #[error("cannot read secret file {}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The file is not UTF-8 text.
    #[error("secret file {} is not UTF-8 text", path.display())]
    FileNotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// The file holds nothing but white space.
    #[error("secret file {} is empty", path.display())]
    FileEmpty {
        /// The file.
        path: PathBuf,
    },
    /// The environment variable is not usable.
    #[error("environment variable {name} is {status}")]
    Env {
        /// The variable.
        name: String,
        /// Unset, empty or not Unicode.
        status: SecretStatus,
    },
}

impl Secret {
    /// A secret held in a file.
    pub fn from_file(path: impl Into<PathBuf>) -> Secret {
        Secret {
            source: SecretSource::File(path.into()),
        }
    }

    /// A secret held in an environment variable.
    pub fn from_env(name: impl Into<String>) -> Secret {
        Secret {
            source: SecretSource::Env(name.into()),
        }
    }

    /// Where the secret lives.
    pub fn source(&self) -> &SecretSource {
        &self.source
    }

    /// Whether the secret can be read now, without reading it.
    pub fn status(&self) -> SecretStatus {
        match &self.source {
            SecretSource::File(path) => file_status(path),
            SecretSource::Env(name) => match std::env::var_os(name) {
                None => SecretStatus::Unset,
                Some(value) if value.is_empty() => SecretStatus::EmptyVar,
                Some(value) if value.to_str().is_none() => SecretStatus::NotUnicode,
                Some(_) => SecretStatus::Set,
            },
        }
    }

    /// Read the secret. Surrounding white space (a final newline) is trimmed.
    pub fn read(&self) -> Result<SecretValue, SecretError> {
        match &self.source {
            SecretSource::File(path) => {
                let bytes =
                    crate::fsafe::read_regular(path).map_err(|source| SecretError::File {
                        path: path.clone(),
                        source,
                    })?;
                let text = String::from_utf8(bytes).map_err(|err| {
                    wipe(err.into_bytes());
                    SecretError::FileNotUtf8 { path: path.clone() }
                })?;
                let value = SecretValue::trimmed(text);
                if value.0.is_empty() {
                    return Err(SecretError::FileEmpty { path: path.clone() });
                }
                Ok(value)
            }
            SecretSource::Env(name) => {
                let status = self.status();
                if status != SecretStatus::Set {
                    return Err(SecretError::Env {
                        name: name.clone(),
                        status,
                    });
                }
                match std::env::var(name) {
                    Ok(value) => Ok(SecretValue::trimmed(value)),
                    Err(_) => Err(SecretError::Env {
                        name: name.clone(),
                        status: SecretStatus::Unset,
                    }),
                }
            }
        }
    }
}

impl fmt::Display for Secret {
    /// Where the secret lives (`file /path` or `env NAME`); the value is never shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            SecretSource::File(path) => write!(f, "file {}", path.display()),
            SecretSource::Env(name) => write!(f, "env {name}"),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            SecretSource::File(path) => write!(f, "Secret(file {path:?}, {MASK})"),
            SecretSource::Env(name) => write!(f, "Secret(env {name:?}, {MASK})"),
        }
    }
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretSource::File(path) => write!(f, "File({path:?})"),
            SecretSource::Env(name) => write!(f, "Env({name:?})"),
        }
    }
}

/// The value of a secret. Shown as `***` by `Debug` and `Display`; [`SecretValue::expose`] gives the text
/// to the one place that needs it. The memory is overwritten (best effort) when the value is dropped.
pub struct SecretValue(String);

impl SecretValue {
    fn trimmed(text: String) -> SecretValue {
        let trimmed = text.trim();
        if trimmed.len() == text.len() {
            return SecretValue(text);
        }
        let value = SecretValue(trimmed.to_owned());
        wipe(text.into_bytes());
        value
    }

    /// The secret text. Hand it to the protocol that needs it; never print or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Drop for SecretValue {
    fn drop(&mut self) {
        wipe(std::mem::take(&mut self.0).into_bytes());
    }
}

/// Overwrite a buffer that held secret bytes before it is freed (best effort, no `unsafe`).
fn wipe(mut bytes: Vec<u8>) {
    bytes.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(&bytes);
}

fn file_status(path: &Path) -> SecretStatus {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return SecretStatus::Missing,
        Err(err) => return SecretStatus::Unreadable(err.kind()),
    };
    if !meta.is_file() {
        return SecretStatus::NotAFile;
    }
    if let Err(err) = fs::File::open(path) {
        return SecretStatus::Unreadable(err.kind());
    }
    if meta.len() == 0 {
        return SecretStatus::Empty;
    }
    SecretStatus::Readable {
        world_readable: world_readable(&meta),
    }
}

/// Whether every user of the machine may read the file (Unix mode bit `o+r`).
pub(super) fn world_readable(meta: &fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o004 != 0
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

/// Whether `name` can be an environment variable name (`[A-Za-z_][A-Za-z0-9_]*`).
pub(super) fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
