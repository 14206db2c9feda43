//! Keeping every owner name deliverable (pure): given which key each endpoint serves now, what
//! every owner name of one key slot needs, in order, when no rollover of the slot is under way.
//!
//! The invariant: at an owner name dane-roll manages, a TLSA RRset it creates or changes always
//! holds a record of the key served there now, before anything else. So for each owner name of
//! the service:
//!
//! 1. the record of the live key (what the probe saw there; when the probe cannot tell, the
//!    store's current key, and [`LiveFrom`] says which) is published first when DNS lacks it;
//! 2. only then the next key's record (a new owner name would otherwise get the next key's
//!    record alone, and a DANE sender would defer: no record matches the served key);
//! 3. records of ours at an owner name no longer configured are retired only once the probe
//!    confirms nothing serves there (connection refused on every address, or the host has no
//!    address); while it is served, or when the probe cannot tell, they stay.
//!
//! A slot with a rollover under way is left to the rollover (its owner names were fixed when it
//! was staged; an owner name added since has no records of ours, which is deliverable with
//! opportunistic TLS, and is reconciled once the rollover ends).
//!
//! A key served that is not the store's current key is [`Drift`]: the driver alerts and adopts it
//! (see `driver/drift.rs`); its record is published here like any live key's, so mail flows
//! as soon as resolvers see it.

use super::{KeyHash, OwnerName, TlsaAt};
use crate::tlsa::TlsaRecord;

/// What the probe saw at one owner name's endpoint, for this slot's key algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seen {
    /// The keys presented (by every address that answered), one or more.
    Keys(Vec<KeyHash>),
    /// Nothing serves there: every address refused the connection, or the host has no address.
    NotServed(String),
    /// The probe could not tell (a timeout, a resolver failure, no key of this algorithm).
    Unknown(String),
}

/// Where the live key of an owner name is known from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveFrom {
    /// The live handshake showed it.
    Probe,
    /// The probe could not tell: the store's current key is assumed.
    Store,
}

impl std::fmt::Display for LiveFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LiveFrom::Probe => "seen by the probe",
            LiveFrom::Store => "the store's current key: the probe could not tell",
        })
    }
}

/// One owner name as the driver found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerSeen {
    /// The owner name.
    pub owner: OwnerName,
    /// Whether an endpoint of the service's configuration has this owner name (else it is an
    /// owner name of ours that was removed from the configuration).
    pub configured: bool,
    /// What its endpoint serves.
    pub seen: Seen,
    /// The TLSA records every authoritative server serves there; `None` when that could not be
    /// told (then the store's records of ours stand in for it).
    pub present: Option<Vec<TlsaRecord>>,
}

/// The input for one key slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotOwners<'a> {
    /// The store's current key of the slot.
    pub current: Option<KeyHash>,
    /// The slot's published next key.
    pub next: Option<KeyHash>,
    /// Whether dane-roll has installed a key of this service in any slot (the store has a
    /// current key): before that, a served key the store does not know is not drift.
    pub installed: bool,
    /// Whether a rollover of this slot is under way (then nothing is done here).
    pub under_way: bool,
    /// The owner names, configured ones and removed ones that still hold records of ours.
    pub owners: &'a [OwnerSeen],
    /// The records of ours (this slot's, not retired).
    pub ours: &'a [TlsaAt],
}

/// Why a record is to be published.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Because {
    /// The key served there now.
    Live(LiveFrom),
    /// The slot's next key (after the live key's record).
    Next,
}

/// A served key that is not the store's current key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// The key served.
    pub served: KeyHash,
    /// The store's current key.
    pub stored: Option<KeyHash>,
    /// Where it is served.
    pub owners: Vec<OwnerName>,
}

/// What one slot's owner names need now, in the order to do it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reconcile {
    /// Records to publish, every live key's first.
    pub publish: Vec<(TlsaAt, Because)>,
    /// Records of ours at removed owner names, confirmed not served: to retire.
    pub retire: Vec<TlsaAt>,
    /// Records of ours at removed owner names that stay, with why.
    pub kept: Vec<(TlsaAt, String)>,
    /// The live key of each configured owner name, and where it is known from.
    pub live: Vec<(OwnerName, KeyHash, LiveFrom)>,
    /// A served key that is not the store's current key, if any.
    pub drift: Option<Drift>,
}

impl Reconcile {
    /// Whether nothing is to be done or said.
    pub fn is_empty(&self) -> bool {
        self.publish.is_empty()
            && self.retire.is_empty()
            && self.kept.is_empty()
            && self.drift.is_none()
    }
}

/// What the owner names of one slot need now (see the [module docs](self)).
pub fn reconcile(input: &SlotOwners<'_>) -> Reconcile {
    let mut out = Reconcile::default();
    if input.under_way {
        return out;
    }
    let has = |o: &OwnerSeen, record: &TlsaAt| match &o.present {
        Some(present) => present.contains(&record.record),
        None => input.ours.contains(record),
    };
    let mut next_records = Vec::new();
    for o in input.owners.iter().filter(|o| o.configured) {
        let live: Vec<(KeyHash, LiveFrom)> = match &o.seen {
            Seen::Keys(keys) if !keys.is_empty() => {
                keys.iter().map(|k| (*k, LiveFrom::Probe)).collect()
            }
            _ => input
                .current
                .map(|k| (k, LiveFrom::Store))
                .into_iter()
                .collect(),
        };
        for (key, from) in &live {
            out.live.push((o.owner.clone(), *key, *from));
            let record = TlsaAt::new(&o.owner, key.dane_ee());
            if !has(o, &record) && !out.publish.iter().any(|(r, _)| *r == record) {
                out.publish.push((record, Because::Live(*from)));
            }
            // Drift needs a key dane-roll installed to differ from: a service whose first key it
            // has not installed yet (only a next key published) serves a key the store does not
            // know, and that is not drift. Its record is still ensured.
            if *from == LiveFrom::Probe && input.installed && Some(*key) != input.current {
                let drift = out.drift.get_or_insert_with(|| Drift {
                    served: *key,
                    stored: input.current,
                    owners: Vec::new(),
                });
                if drift.served == *key {
                    drift.owners.push(o.owner.clone());
                }
            }
        }
        if let Some(next) = input.next
            && !live.iter().any(|(k, _)| *k == next)
        {
            let record = TlsaAt::new(&o.owner, next.dane_ee());
            if !has(o, &record) {
                next_records.push((record, Because::Next));
            }
        }
    }
    // Every live key's record goes before any next key's.
    out.publish.extend(next_records);
    for o in input.owners.iter().filter(|o| !o.configured) {
        let owner = &o.owner;
        for record in input.ours.iter().filter(|r| r.owner == *owner) {
            match &o.seen {
                Seen::NotServed(_) => out.retire.push(record.clone()),
                Seen::Keys(keys) => out.kept.push((
                    record.clone(),
                    format!(
                        "{owner} is no longer configured but its endpoint still serves key {}",
                        keys.first().map_or_else(String::new, KeyHash::short)
                    ),
                )),
                Seen::Unknown(why) => out.kept.push((
                    record.clone(),
                    format!(
                        "{owner} is no longer configured; its records stay until the probe \
                         confirms nothing serves there ({why})"
                    ),
                )),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> KeyHash {
        KeyHash([n; 32])
    }

    const A: &str = "_25._tcp.mx1.example.com.";
    const B: &str = "_25._tcp.mx2.example.com.";

    fn n(owner: &str) -> OwnerName {
        owner.parse().expect("an owner name")
    }

    fn seen(owner: &str, configured: bool, seen: Seen, present: &[KeyHash]) -> OwnerSeen {
        OwnerSeen {
            owner: n(owner),
            configured,
            seen,
            present: Some(present.iter().map(KeyHash::dane_ee).collect()),
        }
    }

    /// Key 1, the live key, to publish at `owner`, known live from `from`.
    fn live_at(owner: &str, from: LiveFrom) -> (TlsaAt, Because) {
        (
            TlsaAt::new(&n(owner), key(1).dane_ee()),
            Because::Live(from),
        )
    }

    /// [`reconcile`] of a slot at rest: key 1 live, `next` published, nothing of ours elsewhere.
    fn at_rest(owners: &[OwnerSeen], next: Option<KeyHash>) -> Reconcile {
        reconcile(&SlotOwners {
            current: Some(key(1)),
            next,
            installed: true,
            under_way: false,
            owners,
            ours: &[],
        })
    }

    #[test]
    fn a_new_owner_name_gets_the_live_key_before_the_next_key() {
        let owners = [
            seen(A, true, Seen::Keys(vec![key(1)]), &[key(1), key(2)]),
            seen(B, true, Seen::Keys(vec![key(1)]), &[]),
        ];
        let r = at_rest(&owners, Some(key(2)));
        assert_eq!(
            r.publish,
            vec![
                live_at(B, LiveFrom::Probe),
                (TlsaAt::new(&n(B), key(2).dane_ee()), Because::Next),
            ]
        );
        assert_eq!(r.drift, None);
    }

    /// rollover_lab's `a_published_next_key_rolls_without_a_new_wait`: only a next key in the
    /// store, the key served is not dane-roll's yet; adopting it as drift raced the deploy.
    #[test]
    fn a_served_key_before_any_install_is_not_drift_but_gets_its_record() {
        let owners = [seen(A, true, Seen::Keys(vec![key(1)]), &[key(2)])];
        let r = reconcile(&SlotOwners {
            current: None,
            next: Some(key(2)),
            installed: false,
            under_way: false,
            owners: &owners,
            ours: &[],
        });
        assert_eq!(r.drift, None);
        assert_eq!(r.publish, vec![live_at(A, LiveFrom::Probe)]);
    }

    #[test]
    fn the_store_key_stands_in_when_the_probe_cannot_tell() {
        let owners = [seen(B, true, Seen::Unknown("timeout".into()), &[])];
        let r = at_rest(&owners, None);
        assert_eq!(r.publish, vec![live_at(B, LiveFrom::Store)]);
    }

    #[test]
    fn a_rollover_under_way_is_left_alone() {
        let owners = [seen(B, true, Seen::Keys(vec![key(3)]), &[])];
        let r = reconcile(&SlotOwners {
            current: Some(key(1)),
            next: Some(key(2)),
            installed: true,
            under_way: true,
            owners: &owners,
            ours: &[],
        });
        assert!(r.is_empty());
    }

    #[test]
    fn a_removed_owner_name_keeps_its_records_while_served() {
        let ours = [TlsaAt::new(&n(B), key(1).dane_ee())];
        let still = [seen(B, false, Seen::Keys(vec![key(1)]), &[key(1)])];
        let unknown = [seen(B, false, Seen::Unknown("timeout".into()), &[key(1)])];
        let gone = [seen(B, false, Seen::NotServed("refused".into()), &[key(1)])];
        for (owners, retired) in [(&still, false), (&unknown, false), (&gone, true)] {
            let r = reconcile(&SlotOwners {
                current: Some(key(1)),
                next: None,
                installed: true,
                under_way: false,
                owners,
                ours: &ours,
            });
            assert!(
                r.publish.is_empty(),
                "a removed owner name gets nothing new"
            );
            assert_eq!(r.retire.len(), usize::from(retired), "{owners:?}");
            assert_eq!(r.kept.len(), usize::from(!retired));
        }
    }

    #[test]
    fn a_served_key_other_than_the_stored_one_is_drift_and_gets_its_record() {
        let owners = [
            seen(A, true, Seen::Keys(vec![key(7)]), &[key(1), key(2)]),
            seen(B, true, Seen::Keys(vec![key(7)]), &[key(1), key(2)]),
        ];
        let r = at_rest(&owners, Some(key(2)));
        assert_eq!(
            r.drift,
            Some(Drift {
                served: key(7),
                stored: Some(key(1)),
                owners: vec![n(A), n(B)],
            })
        );
        let published: Vec<_> = r.publish.iter().map(|(r, _)| r.clone()).collect();
        assert_eq!(
            published,
            vec![
                TlsaAt::new(&n(A), key(7).dane_ee()),
                TlsaAt::new(&n(B), key(7).dane_ee())
            ]
        );
    }
}
