//! One module per command; each turns validated arguments into work and a [`Status`].

mod abort;
mod check;
mod config;
mod deploy;
mod generate;
mod hook;
mod init;
pub mod log;
mod next_key;
mod plan;
mod progress;
mod prune;
mod publish;
mod reconcile;
mod reports;
mod rotate;
mod run;
mod serve;
mod status;
mod tlsa;
mod tlsrpt;

use crate::cli::{Cli, Command, ConfigCommand, TlsrptCommand};
use crate::config::Config;
use crate::exit::Status;
use crate::lock::ServiceLock;
use crate::store::Store;

/// Run the command the user asked for.
pub fn dispatch(cli: &Cli) -> anyhow::Result<Status> {
    match &cli.command {
        Command::Tlsa(args) => tlsa::run(cli, args),
        Command::Config(ConfigCommand::Check { online }) => config::check(cli, *online),
        Command::Check(args) => check::run(cli, args),
        Command::Serve(args) => serve::run(cli, args),
        Command::Publish(args) => publish::run(cli, args),
        Command::Hook(args) => hook::run(cli, &args.client),
        Command::Rotate(args) => rotate::run(cli, args),
        Command::Deploy(args) => deploy::run(cli, args),
        Command::Run(args) => run::run(cli, args),
        Command::Status(args) => status::run(cli, args),
        Command::Plan(args) => plan::run(cli, args),
        Command::NextKey(args) => next_key::run(cli, args),
        Command::Prune(args) => prune::run(cli, args),
        Command::Abort(args) => abort::run(cli, args),
        Command::Generate(what) => generate::run(what),
        Command::Init(args) => init::run(cli, args),
        Command::Tlsrpt(TlsrptCommand::Ingest(args)) => tlsrpt::ingest(cli, args),
        Command::Reports(args) => reports::run(cli, args),
    }
}

/// Take `service`'s lock for `command` (waiting as long as the driver would), then open the
/// store: how a command other than the driver changes a service's rows. Keep the lock while the
/// store is in use.
fn locked_store(
    config: &Config,
    service: &str,
    command: &str,
) -> anyhow::Result<(ServiceLock, Store)> {
    let held = crate::lock::acquire(
        &config.state_dir,
        service,
        command,
        crate::rollover::driver::DEFAULT_LOCK_WAIT,
    )?;
    let store = Store::open(&config.state_dir)?;
    Ok((held, store))
}
