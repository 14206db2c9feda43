//! `dane-roll publish --service NAME FILE...`: add the `3 1 1` records of these certificates or
//! keys at every owner name of the service, now, one record at a time (other records at the
//! owner names stay), and say what was added and what was there already. It waits for nothing
//! but the provider's read-back: the rollover gate is what waits for the authoritative servers.
//! The records are stored as the service's own (before they are added, under the service's
//! lock), so `dane-roll prune` removes them once no key needs them.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use dane_roll_providers::{Change, Record, Settings};

use crate::cli::{Cli, PublishArgs};
use crate::config::Config;
use crate::exit::Status;
use crate::pki;
use crate::pki::Material;
use crate::rollover::driver::slot_for;
use crate::rollover::{Clock, Event, KeyHash, PhaseName, Slot, SystemClock, TlsaAt};
use crate::store::RecordChange;
use crate::tlsa::{Matching, Selector, Usage};

/// The key slot of every key the files hold (their own key, or each certificate's), by hash.
fn slots_by_hash(materials: &[Material]) -> Vec<(KeyHash, Slot)> {
    let mut out = Vec::new();
    for m in materials {
        if let Some(key) = m.key()
            && let (Ok(der), Some(slot)) = (key.spki_der(), slot_for(&key.key_type()))
        {
            out.push((KeyHash::of_spki_der(&der), slot));
        }
        for cert in m.certificates() {
            if let Ok(public) = cert.public_key()
                && let (Ok(der), Some(slot)) =
                    (pki::spki_der(&public), slot_for(&pki::key_type(&public)))
            {
                out.push((KeyHash::of_spki_der(&der), slot));
            }
        }
    }
    out
}

/// Compute the records, publish them, and report.
pub(super) fn run(cli: &Cli, args: &PublishArgs) -> anyhow::Result<Status> {
    let config = Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref())?;
    let service = config.service_or_err(&args.service)?;
    if !(args.timeout.is_finite() && args.timeout > 0.0) {
        bail!("--timeout must be a positive number of seconds");
    }

    let materials = args
        .files
        .iter()
        .map(|path| pki::load(path))
        .collect::<Result<Vec<_>, _>>()?;
    // The key slot each record belongs to, by the key it was computed from.
    let slots = slots_by_hash(&materials);
    let mut records: Vec<(Record, TlsaAt, Slot)> = Vec::new();
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
            let record = Record::new(
                endpoint.owner_name().as_str(),
                service.ttl,
                &c.record.to_string(),
            )?;
            if !records.iter().any(|(r, ..)| r.same(&record)) {
                let at = TlsaAt::new(&endpoint.owner_name(), c.record.clone());
                let slot = slots
                    .iter()
                    .find(|(hash, _)| hash.matches(&c.record))
                    .map_or_else(Slot::default, |(_, slot)| slot.clone());
                records.push((record, at, slot));
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

    // The records become the service's own before they are added (as a rollover's are), so a
    // crash cannot leave one published and untracked, and `prune` can remove them later. A
    // record that was there already is claimed too: the operator said it is this service's.
    let (_held, mut store) = super::locked_store(&config, &service.name, "dane-roll publish")?;
    let now = SystemClock.now();
    for (_, at, slot) in &records {
        store.record_changes(
            &service.name,
            slot,
            &[RecordChange::Published {
                record: at.clone(),
                ttl: service.ttl,
            }],
            now,
        )?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let mut failed = 0usize;
    runtime.block_on(async {
        for (record, ..) in &records {
            let result = provider.publish(record).await;
            if let Ok(report) = &result {
                if let Some(notice) = &report.ttl {
                    println!("note     {notice}");
                }
                for lost in &report.vanished {
                    eprintln!("dane-roll: ALERT: {lost} vanished with our write");
                }
            }
            match result.map(|report| report.change) {
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
    let mut by_slot: BTreeMap<&Slot, Vec<String>> = BTreeMap::new();
    for (_, at, slot) in &records {
        by_slot.entry(slot).or_default().push(at.to_string());
    }
    for (slot, list) in by_slot {
        let phase = store
            .rollover(&service.name, slot)?
            .map_or(PhaseName::Done, |r| r.phase.name());
        store.add_events(
            &service.name,
            slot,
            &[Event {
                time: now,
                phase,
                detail: format!(
                    "`dane-roll publish` added {} as the service's own",
                    list.join(", ")
                ),
            }],
        )?;
    }
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
