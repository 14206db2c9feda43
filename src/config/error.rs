//! What can be wrong with a configuration, said so that the user can find and fix it: the file, the
//! line and column, the service or provider, the key.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A line and column in the configuration file, both 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// The line.
    pub line: usize,
    /// The column, in characters.
    pub column: usize,
}

/// The part of the configuration a problem belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Subject {
    /// The file as a whole, or a top-level key.
    File,
    /// `[resolver]`.
    Resolver,
    /// A `[[service]]`, by name (or `#N` when it has none).
    Service(String),
    /// A `[provider.NAME]`.
    Provider(String),
    /// `[alerts]`.
    Alerts,
    /// An `[alerts.channel.NAME]`.
    Channel(String),
    /// `[check]`.
    Check,
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::File => Ok(()),
            Subject::Resolver => f.write_str("[resolver]"),
            Subject::Service(name) => write!(f, "service \"{name}\""),
            Subject::Provider(name) => write!(f, "provider \"{name}\""),
            Subject::Alerts => f.write_str("[alerts]"),
            Subject::Channel(name) => write!(f, "alert channel \"{name}\""),
            Subject::Check => f.write_str("[check]"),
        }
    }
}

/// One error or warning about the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file's name as shown.
    pub file: String,
    /// Where in the file, when known.
    pub location: Option<Location>,
    /// The service, provider or section concerned.
    pub subject: Subject,
    /// The key concerned, e.g. `ttl` or `endpoints[2].port` (indices 1-based).
    pub key: Option<String>,
    /// What is wrong, and what to do.
    pub message: String,
    /// The offending line with a caret under it (secret values masked), for syntax and type errors.
    pub snippet: Option<String>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use std::fmt::Write as _;
        // The first line may quote input (a service name, a key): escaped, so it stays one
        // line. The snippet's lines are the file's own, their control characters escaped.
        let mut head = self.file.clone();
        if let Some(Location { line, column }) = self.location {
            write!(head, ":{line}:{column}")?;
        }
        head.push_str(": ");
        match (&self.subject, &self.key) {
            (Subject::File, Some(key)) => write!(head, "key {key}: ")?,
            (Subject::File, None) => {}
            (subject, Some(key)) => write!(head, "{subject}, key {key}: ")?,
            (subject, None) => write!(head, "{subject}: ")?,
        }
        head.push_str(&self.message);
        f.write_str(&crate::output::escape(&head))?;
        if let Some(snippet) = &self.snippet {
            write!(f, "\n{}", crate::output::escape_lines(snippet))?;
        }
        Ok(())
    }
}

/// A service name the configuration does not have ([`super::Config::service_or_err`]): names
/// the file and the services it has, so the fix is one look away.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no service \"{name}\" in {file}; the services are: {}", names(.known))]
pub struct UnknownService {
    /// The name asked for.
    pub name: String,
    /// The configuration file.
    pub file: String,
    /// The configured services' names, in the file's order.
    pub known: Vec<String>,
}

fn names(known: &[String]) -> String {
    if known.is_empty() {
        "(none)".to_owned()
    } else {
        known.join(", ")
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file does not exist.
    #[error("configuration file {} not found; create it (see examples/) or pass -c FILE", path.display())]
    NotFound {
        /// The file looked for.
        path: PathBuf,
    },
    /// The file exists but cannot be read.
    #[error("cannot read configuration file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
    /// The file, or a directory above it, may be changed by another user.
    #[error(
        "{0}. dane-roll refuses such a configuration: it names commands run as root (`reload`, \
         `exec`)"
    )]
    Untrusted(crate::fsafe::Untrusted),
    /// The file is not UTF-8.
    #[error(
        "{file}:{line}: the configuration is not UTF-8 text (a byte at line {line} is not valid UTF-8)"
    )]
    NotUtf8 {
        /// The file.
        file: String,
        /// The line of the first invalid byte.
        line: usize,
    },
    /// The file holds nothing but white space and comments.
    #[error(
        "{file}: the configuration is empty; it needs at least one [[service]] (see examples/)"
    )]
    Empty {
        /// The file.
        file: String,
    },
    /// The file is not valid TOML.
    #[error("{0}")]
    Syntax(Box<Problem>),
    /// An unknown key, a missing key, or a value of the wrong type.
    #[error("{0}")]
    Schema(Box<Problem>),
    /// Values that parse but do not make sense together (duplicate service, unknown provider, …).
    #[error("{}", list(.problems))]
    Invalid {
        /// Every problem found, in file order where known.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The individual problems, for a caller that prints them one by one (empty for I/O errors).
    pub fn problems(&self) -> Vec<&Problem> {
        match self {
            ConfigError::Syntax(problem) | ConfigError::Schema(problem) => vec![problem],
            ConfigError::Invalid { problems } => problems.iter().collect(),
            _ => Vec::new(),
        }
    }
}

fn list(problems: &[Problem]) -> String {
    match problems {
        [one] => one.to_string(),
        many => {
            let mut out = format!("{} problems in the configuration:", many.len());
            for problem in many {
                out.push_str("\n  ");
                out.push_str(&problem.to_string());
            }
            out
        }
    }
}
