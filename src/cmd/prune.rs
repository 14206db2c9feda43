//! `dane-roll prune --service NAME [--foreign] [--dry-run]`: remove the records this service
//! published that match neither the key the live handshake shows, the current key, the
//! published next key nor a key of an unfinished rollover. The live handshake is probed first;
//! if any endpoint address cannot be seen, nothing is removed (invariant 2). Only records
//! dane-roll published for this service are candidates, removed one by one; `--foreign` adds
//! the records at the service's owner names that dane-roll never published, when they are
//! `3 1 1` records that match no key of the store and no key served on any address.
//! `--dry-run` lists what would go and changes nothing.

use anyhow::bail;

use crate::cli::{Cli, PruneArgs};
use crate::config::Config;
use crate::exit::Status;
use crate::rollover::driver::PruneOptions;

use super::run::open_driver;

/// Run the command.
pub(super) fn run(cli: &Cli, args: &PruneArgs) -> anyhow::Result<Status> {
    let config = Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref())?;
    config.service_or_err(args.service.name())?;
    let mut driver = open_driver(cli, config, "dane-roll prune", Default::default())?;
    let report = driver.prune(
        args.service.name(),
        PruneOptions {
            foreign: args.foreign,
            dry_run: args.dry_run,
        },
    )?;
    if let Some(why) = report.refused {
        bail!("service {}: {why}", args.service.name());
    }
    let verb = if report.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!(
        "kept the records of key(s): {}",
        report.kept_keys.join(", ")
    );
    for r in &report.removed {
        println!("{verb}  {r}");
    }
    for r in &report.foreign {
        println!("{verb}  {r}  (foreign)");
    }
    for r in &report.kept_foreign {
        println!("kept  {r}  (foreign)");
    }
    if report.removed.is_empty() && report.foreign.is_empty() {
        println!("nothing to remove");
    } else if report.dry_run {
        println!("dry run: nothing was changed");
    }
    if !report.failed.is_empty() {
        bail!(
            "service {}: not removed (the next prune retries): {}",
            args.service.name(),
            report.failed.join("; ")
        );
    }
    Ok(Status::Ok)
}
