//! `dane-roll abort SERVICE [--slot SLOT]`: abandon a rollover from any phase before `verified`.
//! The previous certificate goes back if the new one was installed (reinstalled, reloaded), the
//! live handshake is probed, and only once every endpoint address shows the key in use matching
//! the records that remain are the abandoned key's records retired. Exit 0 when that is done,
//! 2 when it is refused or a step failed (the next `dane-roll run` retries), 3 when `--timeout`
//! ran out first (the state is saved; `dane-roll run` finishes it).

use anyhow::Context;

use crate::cli::{AbortArgs, Cli};
use crate::config::Config;
use crate::exit::Status;
use crate::rollover::{DeployOptions, Slot};

use super::run::{lock_wait, open_driver, print_standing, timed_out};

/// Run the command.
pub(super) fn run(cli: &Cli, args: &AbortArgs) -> anyhow::Result<Status> {
    let config = Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref())?;
    let mut driver = open_driver(cli, config, "dane-roll abort", lock_wait(args.lock_wait)?)?;
    let slot = args.slot.as_deref().map(str::parse::<Slot>).transpose()?;
    let standings = driver
        .abort(
            args.service.name(),
            slot.as_ref(),
            DeployOptions {
                wait: true,
                force: false,
                timeout: Some(args.timeout),
            },
        )
        .with_context(|| format!("abort of service {}", args.service.name()))?;
    let mut status = Status::Ok;
    for standing in &standings {
        match print_standing(cli, standing) {
            Err(err) => {
                crate::output::error_line(&format!("dane-roll: error: {err:#}"));
                status = Status::Failure;
            }
            Ok(_) => status = status.max(timed_out(standing)),
        }
    }
    Ok(status)
}
