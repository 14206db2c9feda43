//! `init --apply` adopts what is live into the store, so that dane-roll starts from the server
//! as it is: the key served (now in the service's `chain-file`) is the slot's current key, the
//! ACME client's next key on disk (acme.sh's `DOMAIN.key.next`, dehydrated's
//! `privkey.roll.pem`) its next key, and the `3 1 1` records of either at the service's owner
//! names are ours. Then the first `run` sees no drift and no foreign record of its own keys,
//! `prune` may retire them, and the first rollover retires the old key's records after the
//! handshake verifies, as it does for records dane-roll published itself.
//!
//! Only `3 1 1` records are adopted (what dane-roll itself publishes); a record of another form
//! stays foreign (`prune --foreign` lists it). The records are stored as published, not as
//! confirmed: init saw them through the resolver, not on every nameserver, so a rollover to the
//! next key still waits its full gate.

use std::path::{Path, PathBuf};

use super::classify::{OwnerRecords, Role};
use super::discover::Live;
use super::discover::acme::AcmeCert;
use crate::config::Service;
use crate::pki;
use crate::rollover::driver::slot_for;
use crate::rollover::{KeyHash, Slot, Timestamp, TlsaAt};
use crate::store::{KeyEntry, KeyRole, RecordChange, Store, StoreError};

/// What is adopted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adoption {
    /// The key slot of the served key.
    pub slot: Slot,
    /// The served key.
    pub current: KeyHash,
    /// The ACME client's next key and its file, when it has one of the same slot.
    pub next: Option<(KeyHash, PathBuf)>,
    /// The records at the service's owner names that are `3 1 1` of one of them.
    pub records: Vec<TlsaAt>,
}

/// The hash of a key file's public key and its slot.
fn key_file(path: &Path) -> Option<(KeyHash, Slot)> {
    let material = pki::load(path).ok()?;
    let key = material.key()?;
    let slot = slot_for(&key.key_type())?;
    Some((KeyHash::of_spki_der(&key.spki_der().ok()?), slot))
}

/// What to adopt for `service` from the live key, the ACME client's files and the classified
/// live records; `None` when the live key is of no slot (say, DSA).
pub fn plan(
    service: &Service,
    live: &Live,
    acme: Option<&AcmeCert>,
    tlsa: &[OwnerRecords],
) -> Option<Adoption> {
    let slot = slot_for(&pki::key_type(&live.key))?;
    let current = KeyHash::of_spki_der(&pki::spki_der(&live.key).ok()?);
    let next = acme.and_then(|a| a.next_key.as_ref()).and_then(|path| {
        let (hash, next_slot) = key_file(path)?;
        (next_slot == slot && hash != current).then(|| (hash, path.clone()))
    });
    let owners: Vec<String> = service
        .endpoints
        .iter()
        .map(|e| dane_roll_providers::absolute(&e.owner_name()))
        .collect();
    let mut records = Vec::new();
    for at in tlsa {
        let owner = dane_roll_providers::absolute(&at.owner);
        if !owners.contains(&owner) {
            continue;
        }
        for (record, role) in &at.records {
            let ours = match role {
                Role::LiveKey => current.matches(record),
                Role::NextKey => next.as_ref().is_some_and(|(n, _)| n.matches(record)),
                Role::Issuer | Role::Nothing => false,
            };
            let at = TlsaAt::new(&owner, record.clone());
            if ours && record.usage == crate::tlsa::Usage::DaneEe && !records.contains(&at) {
                records.push(at);
            }
        }
    }
    Some(Adoption {
        slot,
        current,
        next,
        records,
    })
}

/// Store `adoption` for `service`: the keys by role (the current key's file is `chain_file`)
/// and the records as ours with `ttl`. Idempotent: an earlier adoption of the same is kept.
pub fn adopt(
    store: &mut Store,
    service: &str,
    adoption: &Adoption,
    chain_file: &Path,
    ttl: u32,
    now: Timestamp,
) -> Result<(), StoreError> {
    store.set_key(&KeyEntry {
        service: service.to_owned(),
        slot: adoption.slot.clone(),
        role: KeyRole::Current,
        hash: adoption.current,
        path: Some(chain_file.to_owned()),
        created: now,
    })?;
    if let Some((hash, path)) = &adoption.next {
        store.set_key(&KeyEntry {
            service: service.to_owned(),
            slot: adoption.slot.clone(),
            role: KeyRole::Next,
            hash: *hash,
            path: Some(path.clone()),
            created: now,
        })?;
    }
    let changes: Vec<RecordChange> = adoption
        .records
        .iter()
        .map(|record| RecordChange::Published {
            record: record.clone(),
            ttl,
        })
        .collect();
    store.record_changes(service, &adoption.slot, &changes, now)
}
