//! `dane-roll tlsa`: records from certificates, chains and keys.

use crate::cli::TlsaArgs;
use crate::exit::Status;

/// Compute and print the records for the given files.
pub fn run(_args: &TlsaArgs) -> anyhow::Result<Status> {
    anyhow::bail!("not built yet")
}
