//! `dane-roll next-key [SERVICE]`: make sure each service (each key slot it has a key in) has a
//! next key, generated now if there is none (the type of `key-type`, else of the current key;
//! written 0600 under the state directory), and that its `3 1 1` record is published at every
//! owner name. The next rollover to that key then needs no wait.

use std::collections::BTreeSet;

use crate::cli::{Cli, NextKeyArgs};
use crate::config::Config;
use crate::exit::Status;
use crate::rollover::Slot;
use crate::rollover::driver::slot_for;

use super::run::open_driver;

/// Run the command.
pub(super) fn run(cli: &Cli, args: &NextKeyArgs) -> anyhow::Result<Status> {
    let config = Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref())?;
    let names: Vec<String> = match args.service.get() {
        Some(name) => {
            config.service_or_err(name)?;
            vec![name.to_owned()]
        }
        None => config.services.iter().map(|s| s.name.clone()).collect(),
    };
    let mut driver = open_driver(
        cli,
        config.clone(),
        "dane-roll next-key",
        Default::default(),
    )?;
    let mut status = Status::Ok;
    for name in names {
        let Some(service) = config.service(&name) else {
            continue;
        };
        let mut slots: BTreeSet<Slot> = driver
            .store()
            .keys(&name)?
            .into_iter()
            .map(|k| k.slot)
            .collect();
        for (_, file) in service.chain_files.all() {
            if let Some(slot) = crate::pki::load(file)
                .ok()
                .and_then(|m| m.key().and_then(|k| slot_for(&k.key_type())))
            {
                slots.insert(slot);
            }
        }
        if slots.is_empty() {
            eprintln!(
                "dane-roll: error: service {name}: no current key known (no {} and nothing \
                 deployed); deploy a certificate first",
                service.chain_files
            );
            status = Status::Failure;
            continue;
        }
        for slot in slots {
            let (hash, fresh, failures) = driver.next_key(&name, &slot)?;
            println!(
                "{name} ({slot}): next key {} {}",
                hash.short(),
                if fresh {
                    "generated"
                } else {
                    "already present"
                }
            );
            for f in &failures {
                eprintln!("dane-roll: error: {name} ({slot}): {f}");
            }
            if !failures.is_empty() {
                status = Status::Failure;
            }
        }
    }
    Ok(status)
}
