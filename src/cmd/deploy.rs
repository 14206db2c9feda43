//! `dane-roll deploy`, and the entry point every hook shares: carry out a [`DeployRequest`].

use crate::cli::Cli;
use crate::exit::Status;
use crate::rollover::{DeployOptions, DeployRequest};

/// Stage and publish a deploy request, then (with `--wait`) drive it to the end.
///
/// Shared by `dane-roll deploy` and `dane-roll hook …`: a hook turns its ACME client's
/// environment into a [`DeployRequest`] and calls this.
pub(crate) fn execute(
    _cli: &Cli,
    _request: DeployRequest,
    _options: DeployOptions,
) -> anyhow::Result<Status> {
    anyhow::bail!("the rollover driver is not built yet")
}
