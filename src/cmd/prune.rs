//! `dane-roll prune --service NAME`: remove the records this service published that match
//! neither the key the live handshake shows, the current key, the published next key nor a key
//! of an unfinished rollover. The live handshake is probed first; if any endpoint address cannot
//! be seen, nothing is removed (invariant 2). Other hosts' records are never touched: only
//! records dane-roll published for this service are candidates, removed one by one.

use anyhow::bail;

use crate::cli::{Cli, PruneArgs};
use crate::config::Config;
use crate::exit::Status;

use super::run::open_driver;

/// Run the command.
pub fn run(cli: &Cli, args: &PruneArgs) -> anyhow::Result<Status> {
    let config = Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref())?;
    if config.service(&args.service).is_none() {
        bail!("no service \"{}\" in {}", args.service, config.file);
    }
    let mut driver = open_driver(cli, config, "dane-roll prune", Default::default())?;
    let report = driver.prune(&args.service)?;
    if let Some(why) = report.refused {
        bail!("service {}: {why}", args.service);
    }
    println!(
        "kept the records of key(s): {}",
        report.kept_keys.join(", ")
    );
    for r in &report.removed {
        println!("removed  {r}");
    }
    if report.removed.is_empty() {
        println!("nothing to remove");
    }
    if !report.failed.is_empty() {
        bail!(
            "service {}: not removed (the next prune retries): {}",
            args.service,
            report.failed.join("; ")
        );
    }
    Ok(Status::Ok)
}
