//! `dane-roll init`: adoption of a running mail server. Discovery (read-only: Postfix's TLS
//! files, the ACME client, the MX hosts, the zone, its nameservers and provider, the live TLSA
//! records), the commented configuration written from it, the switch of Postfix (and Dovecot) to
//! dane-roll's key+chain file (`--apply`, undone by `--undo`), the ACME client's hook registered
//! ([`register`]) and what is live adopted into the store ([`adopt`]).
//!
//! Every finding says how sure it is ([`Certainty`]); nothing here fails because a tool or a
//! file is missing: that is a finding too, with what to do.

pub mod adopt;
pub mod apply;
pub mod classify;
pub mod discover;
pub mod hook;
pub mod register;
pub mod write;

use std::fmt;
use std::path::PathBuf;

/// How sure a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Certainty {
    /// Read from the system (a configuration value, a file, a validated answer).
    Found,
    /// Inferred (a name in a certificate, a nameserver's name): check it.
    Guessed,
    /// Not there; the note says what to do.
    NotFound,
}

impl fmt::Display for Certainty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Certainty::Found => "found",
            Certainty::Guessed => "guessed",
            Certainty::NotFound => "not found",
        })
    }
}

/// One line of the discovery report: what, how sure, and the detail (or what to do).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The topic: `postfix`, `certbot`, `zone`, …
    pub topic: &'static str,
    /// How sure.
    pub certainty: Certainty,
    /// The finding, or what to do when nothing was found.
    pub text: String,
}

impl Note {
    /// A note.
    pub fn new(topic: &'static str, certainty: Certainty, text: impl Into<String>) -> Note {
        Note {
            topic,
            certainty,
            text: text.into(),
        }
    }
}

/// Why `init` could not do what it was asked (discovery itself never fails: see [`Note`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InitError {
    /// A program could not be run or failed.
    #[error("{command}: {reason}")]
    Command {
        /// The command line.
        command: String,
        /// What went wrong (its own words when it said any).
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration exists already: init never overwrites one.
    #[error(
        "{} exists; init never overwrites a configuration: move it aside, write elsewhere with -c FILE, or print with --print",
        .0.display()
    )]
    Exists(PathBuf),
    /// Something `--apply` or `--undo` needs is missing or in the way.
    #[error("{0}")]
    Refused(String),
    /// Certificate or key material could not be read.
    #[error(transparent)]
    Pki(#[from] crate::pki::PkiError),
}
