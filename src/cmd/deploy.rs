//! `dane-roll deploy`, and the entry point every hook shares: carry out a [`DeployRequest`].
//!
//! The files are read and checked before anything is written (a key that does not match its
//! certificate, an unknown service: exit 2, the store untouched); then the driver stages and
//! publishes, and with `--wait` drives the rollover to the end.

use std::time::Duration;

use anyhow::Context;

use crate::cli::{Cli, DeployArgs};
use crate::config::Config;
use crate::exit::Status;
use crate::hooks::source::AcmeSource;
use crate::rollover::driver::{self, DeployOutcome, Driver};
use crate::rollover::{DeployOptions, DeployRequest, Origin};

use super::run::{lock_wait, open_driver, print_standing, timed_out};

/// `dane-roll deploy --service NAME --cert F --key F [--chain F] [--wait] [--force]`.
pub(super) fn run(cli: &Cli, args: &DeployArgs) -> anyhow::Result<Status> {
    let request = DeployRequest {
        service: args.service.name().to_owned(),
        cert: args.cert.clone(),
        key: args.key.clone(),
        chain: args.chain.clone(),
        next_key: args.next_key.clone(),
        origin: Origin::Manual,
    };
    execute_with(
        cli,
        request,
        args.drive.deploy_options(),
        lock_wait(args.drive.lock_wait)?,
        "dane-roll deploy",
        None,
    )
}

/// Stage and publish a deploy request, then (with `--wait`) drive it to the end.
///
/// Shared by `dane-roll deploy` and `dane-roll hook …`: a hook turns its ACME client's
/// environment into a [`DeployRequest`] and calls this with the `source` it read it from, which
/// is recorded once the request's files were checked (`dane-roll run` looks there when a later
/// hook is missed).
pub(crate) fn execute(
    cli: &Cli,
    request: DeployRequest,
    options: DeployOptions,
    source: Option<&AcmeSource>,
) -> anyhow::Result<Status> {
    let command = match &request.origin {
        Origin::Certbot { .. } => "dane-roll hook certbot",
        Origin::AcmeSh { .. } => "dane-roll hook acme.sh",
        Origin::Dehydrated { .. } => "dane-roll hook dehydrated",
        _ => "dane-roll deploy",
    };
    execute_with(
        cli,
        request,
        options,
        driver::DEFAULT_LOCK_WAIT,
        command,
        source,
    )
}

fn execute_with(
    cli: &Cli,
    request: DeployRequest,
    options: DeployOptions,
    lock_wait: Duration,
    command: &str,
    source: Option<&AcmeSource>,
) -> anyhow::Result<Status> {
    let config = Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref())?;
    // Everything is checked before the store is opened: bad input writes nothing.
    let prepared = driver::prepare(&config, &request)?;
    let mut driver: Driver = open_driver(cli, config, command, lock_wait)?;
    if options.wait {
        // Ctrl-C stops the wait between passes, the state saved (exit 130).
        crate::rollover::interrupt::watch();
    }
    if let Some(source) = source
        && let Err(err) = driver.record_source(&request.service, source)
    {
        eprintln!(
            "dane-roll: warning: service {}: where {} keeps the certificate was not recorded \
             ({err}); `dane-roll run` cannot look there if a later hook is missed",
            request.service,
            source.client()
        );
    }
    let outcome = driver
        .deploy_prepared(prepared, options)
        .with_context(|| format!("deploy for service {}", request.service))?;
    match outcome {
        DeployOutcome::Renewed {
            service,
            slot,
            key,
            verified,
            problem,
        } => {
            if verified {
                if !cli.quiet {
                    println!(
                        "{service} ({slot}): renewed with the same key {}: installed, DNS unchanged",
                        key.short()
                    );
                }
                Ok(Status::Ok)
            } else {
                anyhow::bail!(
                    "service {service} ({slot}): the renewed certificate is installed, but the live \
                     handshake does not verify: {}; check the service with `dane-roll check`",
                    problem.unwrap_or_default()
                )
            }
        }
        DeployOutcome::Rollover(standing) => {
            let status = print_standing(cli, &standing)?;
            Ok(if options.wait {
                status.max(timed_out(&standing))
            } else {
                status
            })
        }
    }
}
