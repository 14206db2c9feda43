//! `dane-roll publish --service NAME FILE...`: add the `3 1 1` records of these certificates or
//! keys at every owner name of the service, now, one record at a time (other records at the
//! owner names stay), and say what was added and what was there already. It waits for nothing
//! but the provider's read-back: the rollover gate is what waits for the authoritative servers.

use std::time::Duration;

use anyhow::{Context, bail};
use dane_roll_providers::{Change, Record, Settings};

use crate::cli::{Cli, PublishArgs};
use crate::config::Config;
use crate::exit::Status;
use crate::pki;
use crate::tlsa::{Matching, Selector, Usage};

/// Compute the records, publish them, and report.
pub fn run(cli: &Cli, args: &PublishArgs) -> anyhow::Result<Status> {
    let config = Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref())?;
    let Some(service) = config.service(&args.service) else {
        let known: Vec<&str> = config.services.iter().map(|s| s.name.as_str()).collect();
        bail!(
            "no service \"{}\" in {}; the services are: {}",
            args.service,
            config.file,
            if known.is_empty() {
                "(none)".to_string()
            } else {
                known.join(", ")
            }
        );
    };
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }

    let materials = args
        .files
        .iter()
        .map(|path| pki::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    let mut records: Vec<Record> = Vec::new();
    let mut warned: Vec<String> = Vec::new();
    for endpoint in &service.endpoints {
        let computed = super::tlsa::compute(
            &materials,
            Usage::DaneEe,
            Selector::Spki,
            Matching::Sha256,
            endpoint.port,
        )?;
        for c in &computed {
            for lint in &c.lints {
                let text = lint.to_string();
                if !warned.contains(&text) {
                    eprintln!("dane-roll: warning: {text}");
                    warned.push(text);
                }
            }
            let record = Record::new(&endpoint.owner_name(), service.ttl, &c.record.to_string())?;
            if !records.iter().any(|r| r.same(&record)) {
                records.push(record);
            }
        }
    }
    if records.is_empty() {
        bail!("the files hold no certificate or key to publish");
    }

    let settings = Settings {
        timeout: Duration::from_secs_f64(args.timeout),
        ..Settings::default()
    };
    let provider = crate::publish::provider_for(&config, service, settings)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut failed = 0usize;
    runtime.block_on(async {
        for record in &records {
            match provider.add(record).await {
                Ok(Change::Added) => println!("added    {record}"),
                Ok(Change::AlreadyPresent) => println!("present  {record}"),
                Ok(Change::Pending { instructions }) => {
                    println!("pending  {record}");
                    print!("{instructions}");
                }
                // `add` never removes; should a provider say so, it is shown in words.
                Ok(_) => println!("absent   {record}"),
                Err(err) => {
                    failed += 1;
                    eprintln!("dane-roll: error: {record}: {err}");
                }
            }
        }
    });
    if failed > 0 {
        bail!(
            "{failed} of {} record(s) not published through provider {} ({})",
            records.len(),
            service.provider,
            provider.kind()
        );
    }
    Ok(Status::Ok)
}
