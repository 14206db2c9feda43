//! The arguments of `tlsrpt ingest` and `reports`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

/// `dane-roll tlsrpt ...`.
#[derive(Debug, Subcommand)]
pub enum TlsrptCommand {
    /// Store TLS reports: one from standard input (a report mail as an alias pipe delivers it,
    /// or a bare JSON or gzip report), or every new message of a Maildir (--maildir). Each
    /// report is stored once; DANE failures alert once per sender and day.
    Ingest(IngestArgs),
}

/// `dane-roll tlsrpt ingest`.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Read the messages in DIR/new instead of standard input; each one handled moves to
    /// DIR/cur (flag S when stored, F when it is not a report).
    #[arg(long, value_name = "DIR")]
    pub maildir: Option<PathBuf>,
}

/// `dane-roll reports`.
#[derive(Debug, Args)]
pub struct ReportsArgs {
    /// Only reports whose window ends within the last DAYS days.
    #[arg(long, value_name = "DAYS")]
    pub days: Option<u32>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}
