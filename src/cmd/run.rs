//! `dane-roll run [--wait] [--force] [SERVICE]`: move every pending rollover as far as it can
//! go now (a timer or cron runs this every minute or so), or to the end with `--wait`. First it
//! picks up what an ACME client issued when its hook was missed ([`super::reconcile`]).
//! Exit 0 when nothing failed, 2 when an action failed (the next run retries) or a rollover
//! was rolled back.

use std::time::Duration;

use anyhow::bail;

use super::progress::Progress;
use crate::cli::{Cli, RunArgs};
use crate::config::Config;
use crate::exit::Status;
use crate::rollover::driver::{Driver, Standing};
use crate::rollover::{PhaseName, SystemClock};
use crate::store::Store;

/// Run the command.
pub(super) fn run(cli: &Cli, args: &RunArgs) -> anyhow::Result<Status> {
    let config = Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref())?;
    for name in &args.skip_nameserver {
        if crate::dns::Name::from_ascii(name).is_err() || name.trim_matches('.').is_empty() {
            bail!(
                "--skip-nameserver {name:?}: not a nameserver name (give an NS name, e.g. ns2.example.net)"
            );
        }
    }
    let mut driver = open_driver(
        cli,
        config,
        "dane-roll run",
        lock_wait(args.drive.lock_wait)?,
    )?
    .skip_nameservers(args.skip_nameserver.clone());
    if args.drive.wait {
        // Ctrl-C stops the wait between passes, the state saved (exit 130).
        crate::rollover::interrupt::watch();
    }
    // The hook is a hint: pick up what a missed hook did not hand over, then drive everything.
    let reconciled = driver.reconcile(args.service.get())?;
    let mut status = super::reconcile::report(cli, &reconciled);
    let standings = driver.run(args.service.get(), args.drive.deploy_options())?;
    if standings.is_empty() && !cli.quiet {
        println!("no rollover pending");
    }
    for standing in &standings {
        match print_standing(cli, standing) {
            Err(err) => {
                crate::output::error_line(&format!("dane-roll: error: {err:#}"));
                status = Status::Failure;
            }
            Ok(_) if args.drive.wait => status = status.max(timed_out(standing)),
            Ok(_) => {}
        }
    }
    Ok(status)
}

/// After a `--wait` returned: a rollover that is not final ran out of `--timeout` (the wait
/// returns early for nothing else). Says so and gives exit 3; the state is saved.
pub(super) fn timed_out(s: &Standing) -> Status {
    if s.phase.is_final() {
        return Status::Ok;
    }
    if crate::rollover::interrupt::requested() {
        crate::output::error_line(&format!(
            "dane-roll: interrupted: service {} ({}) is in phase {}; its state is saved and \
             `dane-roll run` (or the timer) resumes it",
            s.service, s.slot, s.phase
        ));
        return Status::Interrupted;
    }
    crate::output::error_line(&format!(
        "dane-roll: --timeout reached: service {} ({}) is in phase {}; its state is saved and \
         `dane-roll run` (or the timer) resumes it",
        s.service, s.slot, s.phase
    ));
    Status::Unknown
}

/// Open the store of `config` and build a driver over it.
pub(super) fn open_driver(
    cli: &Cli,
    config: Config,
    command: &str,
    lock_wait: Duration,
) -> anyhow::Result<Driver> {
    let store = Store::open(&config.state_dir)?;
    Ok(Driver::new(config, store, SystemClock)?
        .with_progress(Progress::new(cli.quiet))
        .with_command(command)
        .with_lock_wait(lock_wait))
}

/// `--lock-wait` as a duration.
pub(super) fn lock_wait(secs: f64) -> anyhow::Result<Duration> {
    if !(secs.is_finite() && secs >= 0.0) {
        bail!("--lock-wait must be a number of seconds, 0 or more");
    }
    Ok(Duration::from_secs_f64(secs))
}

/// One line on where a rollover stands; an error (exit 2) when it failed.
pub(super) fn print_standing(cli: &Cli, s: &Standing) -> anyhow::Result<Status> {
    if !cli.quiet {
        let next = match (s.phase, s.wait_until, &s.waiting_for) {
            (PhaseName::Done, ..) => "done".to_owned(),
            (PhaseName::RolledBack, ..) => "rolled back".to_owned(),
            (PhaseName::Aborted, ..) => "aborted".to_owned(),
            (_, Some(t), _) => format!("next step at {t}"),
            (_, None, Some(why)) => format!("waiting: {why}"),
            _ => "the next run continues".to_owned(),
        };
        crate::output::line(&format!(
            "{} ({}): phase {}; {next}",
            s.service, s.slot, s.phase
        ));
    }
    if s.phase == PhaseName::RolledBack {
        bail!(
            "service {} ({}): the rollover was rolled back: the previous certificate is live and \
             its records stay; `dane-roll status --history {}` says why",
            s.service,
            s.slot,
            s.service
        );
    }
    if !s.failures.is_empty() {
        let fix = if s.needs_fix {
            "; it fails the same way until what it names is fixed (credentials, zone, \
             configuration), so waiting stopped here; once it is fixed,"
        } else {
            ";"
        };
        bail!(
            "service {} ({}): {}{fix} the next `dane-roll run` retries",
            s.service,
            s.slot,
            s.failures.join("; ")
        );
    }
    Ok(Status::Ok)
}
