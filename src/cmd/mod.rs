//! One module per command; each turns validated arguments into work and a [`Status`].

mod check;
mod config;
#[allow(dead_code)] // called by `deploy` and `hook`, which arrive with the driver
mod deploy;
mod publish;
mod tlsa;

use crate::cli::{Cli, Command, ConfigCommand};
use crate::exit::Status;

/// Run the command the user asked for.
pub fn dispatch(cli: &Cli) -> anyhow::Result<Status> {
    match &cli.command {
        Command::Tlsa(args) => tlsa::run(args),
        Command::Config(ConfigCommand::Check) => config::check(cli),
        Command::Check(args) => check::run(cli, args),
        Command::Publish(args) => publish::run(cli, args),
    }
}
