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
use crate::config::{Endpoint, Service};
use crate::pki;
use crate::rollover::driver::slot_for;
use crate::rollover::{KeyHash, OwnerName, Slot, Timestamp, TlsaAt};
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
    let owners: Vec<OwnerName> = service.endpoints.iter().map(Endpoint::owner_name).collect();
    let mut records = Vec::new();
    for at in tlsa {
        let owner = &at.owner;
        if !owners.contains(owner) {
            continue;
        }
        for (record, role) in &at.records {
            let ours = match role {
                Role::LiveKey => current.matches(record),
                Role::NextKey => next.as_ref().is_some_and(|(n, _)| n.matches(record)),
                Role::Issuer | Role::Nothing => false,
            };
            let at = TlsaAt::new(owner, record.clone());
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, KeyType};
    use crate::tlsa::{Matching, Selector, Subject, TlsaRecord, Usage};
    use openssl::pkey::{PKey, Private};

    fn key() -> PKey<Private> {
        pki::generate_key(KeyType::Ec256).unwrap()
    }

    fn record(usage: Usage, matching: Matching, key: &PKey<Private>) -> TlsaRecord {
        let public = PKey::public_key_from_der(&key.public_key_to_der().unwrap()).unwrap();
        TlsaRecord::compute(
            usage,
            Selector::Spki,
            matching,
            &Subject::PublicKey(&public),
        )
        .unwrap()
    }

    #[test]
    fn only_3_1_1_records_of_the_live_and_next_keys_at_the_service_owner_names() {
        let config = Config::from_str_named(
            "version = 1\n[[service]]\nname = \"mx\"\nendpoints = [\"mail.example.com:25/smtp\"]\n\
             chain-file = \"/etc/postfix/dane-roll/mx.pem\"\nprovider = \"dns\"\n\
             acme-source = { client = \"none\" }\n[provider.dns]\nkind = \"manual\"\n",
            "t.toml",
        )
        .unwrap();
        let service = config.service("mx").unwrap();
        let (live_key, next_key, other) = (key(), key(), key());
        let dir = tempfile::tempdir().unwrap();
        let next_file = dir.path().join("mail.example.com.key.next");
        std::fs::write(&next_file, next_key.private_key_to_pem_pkcs8().unwrap()).unwrap();
        let acme = AcmeCert {
            client: crate::init::discover::acme::Client::AcmeSh,
            name: "mail.example.com".into(),
            dir: dir.path().to_owned(),
            key: PathBuf::new(),
            fullchain: PathBuf::new(),
            next_key: Some(next_file.clone()),
        };
        let live = Live {
            files: Vec::new(),
            key: live_key.clone(),
            chain: Vec::new(),
        };
        let owner = &OwnerName::for_endpoint("mail.example.com", 25);
        let live_311 = record(Usage::DaneEe, Matching::Sha256, &live_key);
        let next_311 = record(Usage::DaneEe, Matching::Sha256, &next_key);
        let tlsa = vec![
            OwnerRecords {
                owner: owner.clone(),
                status: "secure".into(),
                records: vec![
                    (live_311.clone(), Role::LiveKey),
                    // Another form of the live key (3 1 2): it stays foreign.
                    (
                        record(Usage::DaneEe, Matching::Sha512, &live_key),
                        Role::LiveKey,
                    ),
                    (next_311.clone(), Role::NextKey),
                    (
                        record(Usage::DaneEe, Matching::Sha256, &other),
                        Role::Nothing,
                    ),
                ],
            },
            // An owner name that is not the service's.
            OwnerRecords {
                owner: OwnerName::for_endpoint("other.example.com", 25),
                status: "secure".into(),
                records: vec![(live_311.clone(), Role::LiveKey)],
            },
        ];
        let a = plan(service, &live, Some(&acme), &tlsa).unwrap();
        assert_eq!(a.slot, Slot::Ec);
        assert!(a.current.matches(&live_311));
        assert_eq!(a.next.as_ref().map(|(_, p)| p), Some(&next_file));
        assert_eq!(
            a.records,
            vec![TlsaAt::new(owner, live_311), TlsaAt::new(owner, next_311)]
        );

        let mut store = Store::open_in_memory().unwrap();
        let chain = Path::new("/etc/postfix/dane-roll/mx.pem");
        let now = Timestamp::from_millis(1_000);
        adopt(&mut store, "mx", &a, chain, 300, now).unwrap();
        adopt(&mut store, "mx", &a, chain, 300, now).unwrap();
        assert_eq!(store.ours("mx", &Slot::Ec).unwrap(), a.records);
        let current = store
            .key("mx", &Slot::Ec, KeyRole::Current)
            .unwrap()
            .unwrap();
        assert_eq!(current.hash, a.current);
        assert_eq!(current.path.as_deref(), Some(chain));
        let next = store.key("mx", &Slot::Ec, KeyRole::Next).unwrap().unwrap();
        assert_eq!(Some(next.hash), a.next.map(|(h, _)| h));
    }
}
