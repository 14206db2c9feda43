//! `dane-roll config check`: validate the configuration and print it with secrets masked.

use crate::cli::Cli;
use crate::exit::Status;

/// Validate the configuration file and print the resolved configuration.
pub fn check(_cli: &Cli) -> anyhow::Result<Status> {
    anyhow::bail!("not built yet")
}
