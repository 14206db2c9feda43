//! Property tests of the desired record set and of retirement through the public API (issue 8,
//! safety invariant 2): whatever the store ("ours") and DNS say, in whatever spelling,
//!
//! - the desired record set never drops a record that matches the live key, the current key, a
//!   rollover's new key or the published next key, at any of the service's owner names;
//! - nothing stale is a record of such a key (any usage, any owner name), and stale ⊆ ours;
//! - retire never removes another host's record at a shared owner name: not in what
//!   `retirable` returns, and not in a whole rollover driven through the engine against a
//!   scripted zone.
//!
//! `src/rollover/tests.rs` holds the unit-level property over small key and owner sets; these
//! widen the inputs (owner spellings, any usage/selector/matching, records of other hosts at
//! shared owner names, keys seen live) and add the engine-level run.

use std::collections::BTreeSet;

use dane_roll::config::Scheme;
use dane_roll::rollover::plan::{desired, retirable};
use dane_roll::rollover::{
    Action, ActionOutcome, DnsReport, KeyHash, KeySet, NsAnswer, Observations, OwnerName,
    OwnerReport, PhaseName, ProbeResult, ProbeVerdict, ResolverAnswer, Slot, StageRequest,
    Timestamp, TlsaAt, stage, step,
};
use dane_roll::tlsa::{Matching, Selector, TlsaRecord, Usage};
use proptest::prelude::*;

/// Owner names, `A` only, `B` only, and shared by both hosts (index 1).
const OWNERS: [&str; 4] = [
    "_25._tcp.mx1.example.com.",
    "_25._tcp.mx.example.com.",
    "_465._tcp.mx1.example.com.",
    "_25._tcp.mx2.example.com.",
];
/// Host A's owner names (the service under test) and host B's (another service, or another
/// operator's host, publishing at the shared `_25._tcp.mx.example.com.`).
const A_OWNERS: [usize; 3] = [0, 1, 2];
const B_OWNERS: [usize; 2] = [1, 3];

/// Keys 0..32 belong to A, 100..132 to B: no key is both hosts'.
fn key(n: u8) -> KeyHash {
    let mut bytes = [n; 32];
    bytes[0] = 0xd5; // no key hash is all one byte: a bug that mixes bytes shows
    KeyHash(bytes)
}

/// An owner name as a store or a nameserver might spell it (any case, with or without the
/// final dot), read back as the code reads such a name: [`OwnerName::parse`].
fn spelled(owner: &str, upper: bool, dot: bool) -> OwnerName {
    let base = owner.trim_end_matches('.');
    let base = if upper {
        base.to_ascii_uppercase()
    } else {
        base.to_owned()
    };
    let text = if dot { format!("{base}.") } else { base };
    OwnerName::parse(&text).expect("an owner name")
}

fn usage(n: u8) -> Usage {
    [Usage::PkixTa, Usage::PkixEe, Usage::DaneTa, Usage::DaneEe][usize::from(n % 4)]
}

/// Any record: mostly SPKI SHA-256 of a key (what the planner cares about), else other
/// selector/matching combinations whose data may even equal a key hash.
fn arb_tlsa(keys: std::ops::Range<u8>) -> impl Strategy<Value = TlsaRecord> {
    (keys, 0u8..4, 0u8..6).prop_map(|(k, u, form)| {
        let hash = key(k).0.to_vec();
        let (selector, matching, data) = match form {
            0..=2 => (Selector::Spki, Matching::Sha256, hash),
            3 => (Selector::Cert, Matching::Sha256, hash),
            4 => (
                Selector::Spki,
                Matching::Sha512,
                [hash.clone(), hash].concat(),
            ),
            _ => (Selector::Spki, Matching::Full, hash),
        };
        TlsaRecord::new(usage(u), selector, matching, data).expect("a valid record")
    })
}

fn arb_at(owners: &'static [usize], keys: std::ops::Range<u8>) -> impl Strategy<Value = TlsaAt> {
    (
        prop::sample::select(owners),
        arb_tlsa(keys),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(o, record, upper, dot)| TlsaAt {
            // Built raw: the store or DNS may hand back any spelling.
            owner: spelled(OWNERS[o], upper, dot),
            record,
        })
}

/// `r` as the planner compares it: owner normalised.
fn norm(r: &TlsaAt) -> TlsaAt {
    TlsaAt::new(&r.owner, r.record.clone())
}

fn norm_set(records: &[TlsaAt]) -> BTreeSet<String> {
    records.iter().map(|r| norm(r).to_string()).collect()
}

fn a_owner_names(upper: bool, dot: bool) -> Vec<OwnerName> {
    A_OWNERS
        .iter()
        .map(|&i| spelled(OWNERS[i], upper, dot))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// The records host A wants and may retire, whatever its store and DNS hold.
    #[test]
    fn desired_and_retirable_keep_live_current_new_and_next(
        current in prop::option::of(0u8..6),
        next in prop::option::of(0u8..6),
        new in prop::option::of(0u8..6),
        issuers in prop::collection::vec(20u8..24, 0..3),
        live in prop::collection::vec(0u8..6, 0..3),
        a_ours in prop::collection::vec(arb_at(&[0, 1, 2, 3], 0..8), 0..16),
        b_ours in prop::collection::vec(arb_at(&B_OWNERS, 100..106), 0..8),
        issuer_scheme in any::<bool>(),
        upper in any::<bool>(),
        dot in any::<bool>(),
    ) {
        let owners = a_owner_names(upper, dot);
        let keys = KeySet {
            current: current.map(key),
            next: next.map(key),
            new: new.map(key),
            issuers: issuers.into_iter().map(key).collect(),
        };
        let live: Vec<KeyHash> = live.into_iter().map(key).collect();
        let scheme = if issuer_scheme { Scheme::CurrentIssuer } else { Scheme::CurrentNext };
        let wanted = desired(scheme, &owners, &keys);

        // Desired: every protected key's `3 1 1` at every owner name, however spelled.
        let desired_set = norm_set(&wanted);
        for owner in &owners {
            for k in [keys.current, keys.next, keys.new].into_iter().flatten() {
                let r = TlsaAt::new(owner, k.dane_ee());
                prop_assert!(desired_set.contains(&r.to_string()), "desired lacks {r}");
            }
        }
        prop_assert_eq!(desired_set.len(), wanted.len(), "duplicates in desired");

        // Stale: ours only, never desired, never a record of a protected or live key.
        let ours_set = norm_set(&a_ours);
        let protected: Vec<KeyHash> =
            keys.protected().into_iter().chain(live.iter().copied()).collect();
        let stale = retirable(&a_ours, &wanted, &protected);
        for r in &stale {
            prop_assert!(ours_set.contains(&r.to_string()), "stale {r} is not ours");
            prop_assert!(!desired_set.contains(&r.to_string()), "stale {r} is desired");
            for k in &protected {
                prop_assert!(!r.is_of(k), "stale {r} is a record of protected key {k:?}");
            }
        }
        // Retire never reaches another host's record: B's records that A never published are
        // never stale.
        let stale_set = norm_set(&stale);
        for r in &b_ours {
            let r = norm(r);
            if !ours_set.contains(&r.to_string()) {
                prop_assert!(!stale_set.contains(&r.to_string()), "B's {r} is stale for A");
            }
        }
        // Retiring is idempotent and never grows.
        let again = retirable(&stale, &wanted, &protected);
        prop_assert_eq!(&again, &stale);
    }

    /// A whole rollover of host A through the engine, against one zone that B shares: every
    /// Retire is one of A's records, never one of the new, next or live key, and at the end B's
    /// records are all still there and A's live and next keys are published at every owner.
    #[test]
    fn a_rollover_never_retires_another_hosts_record(
        old in prop::option::of(0u8..4),
        new in 4u8..8,
        next in prop::option::of(8u8..12),
        stale_ours in prop::collection::vec(arb_at(&A_OWNERS, 12..16), 0..6),
        b_records in prop::collection::vec(arb_at(&B_OWNERS, 100..106), 1..8),
        issuer_scheme in any::<bool>(),
        issuers in prop::collection::vec(20u8..24, 0..2),
        upper in any::<bool>(),
    ) {
        let owners = a_owner_names(upper, true);
        let scheme = if issuer_scheme { Scheme::CurrentIssuer } else { Scheme::CurrentNext };
        let mut world = World::default();
        let mut ours: Vec<TlsaAt> = stale_ours.iter().map(norm).collect();
        // The old key's records are out (A published them in an earlier rollover).
        let old_records: Vec<TlsaAt> = old
            .iter()
            .flat_map(|&o| owners.iter().map(move |owner| TlsaAt::new(owner, key(o).dane_ee())))
            .collect();
        ours.extend(old_records.iter().cloned());
        for r in ours.iter().chain(&b_records) {
            world.zone.insert(norm(r).to_string());
        }
        let b_set = norm_set(&b_records);
        let request = StageRequest {
            service: "a".into(),
            slot: Slot::default(),
            scheme,
            ttl: 60,
            owners: owners.clone(),
            endpoints: vec!["mx1.example.com:25".into(), "mx.example.com:25".into()],
            old: old.map(key),
            new: key(new),
            next: next.map(key),
            issuers: issuers.iter().copied().map(key).collect(),
            chain: "/staged/a.pem".into(),
            previous_chain: old.map(|_| "/backup/a.pem".into()),
            confirmed_since: None,
        };
        world.served = old.map(key);
        world.staged = Some(key(new));
        let mut now = Timestamp::from_secs(1_700_000_000);
        let mut s = stage(request, now).expect("stage");
        let mut stored_next = next.map(key);
        for _ in 0..200 {
            let mut outcomes = Vec::new();
            for action in &s.actions {
                if let Action::Retire(r) = action {
                    let shown = norm(r).to_string();
                    prop_assert!(
                        norm_set(&ours).contains(&shown),
                        "retire of {r}, which is not A's"
                    );
                    prop_assert!(!b_set.contains(&shown), "retire of B's {r}");
                    for k in [Some(key(new)), stored_next, world.served].into_iter().flatten() {
                        prop_assert!(!r.is_of(&k), "retire of {r}, a record of a kept key");
                    }
                }
                if let Some(o) = world.perform(action, &owners, &mut stored_next) {
                    match &o {
                        ActionOutcome::Published { record, result: Ok(()) } => ours.push(norm(record)),
                        ActionOutcome::Retired { record, result: Ok(()) } => {
                            let gone = norm(record);
                            ours.retain(|r| norm(r) != gone);
                        }
                        _ => {}
                    }
                    outcomes.push(o);
                }
            }
            if s.next.is_final() {
                break;
            }
            if s.is_settled() {
                // Nothing to do until later: the timer's next run.
                now = Timestamp::from_secs(now.as_secs() + 61);
            }
            let obs = Observations {
                outcomes,
                ours: ours.clone(),
                protected: stored_next.into_iter().collect(),
                protected_issuers: Vec::new(),
                stored_next,
                force: false,
            };
            s = step(s.next, &obs, now);
        }
        prop_assert_eq!(s.next.phase.name(), PhaseName::Done, "the rollover did not finish");
        for r in &b_records {
            let shown = norm(r).to_string();
            prop_assert!(world.zone.contains(&shown), "B's {shown} was removed");
        }
        for owner in &owners {
            for k in [Some(key(new)), stored_next].into_iter().flatten() {
                let r = TlsaAt::new(owner, k.dane_ee()).to_string();
                prop_assert!(world.zone.contains(&r), "{r} is not published at the end");
            }
        }
        // And A's own stale records, the old key's among them, did go: retire did run.
        for r in stale_ours.iter().chain(&old_records) {
            let shown = norm(r).to_string();
            prop_assert!(!world.zone.contains(&shown), "A's stale {shown} is still there");
        }
    }
}

/// One zone served alike by every nameserver and validated; a service that reloads; a probe
/// that matches what is served when its record is out.
#[derive(Default)]
struct World {
    /// Records as `owner TLSA rdata`, owners normalised.
    zone: BTreeSet<String>,
    staged: Option<KeyHash>,
    installed: Option<KeyHash>,
    served: Option<KeyHash>,
    generated: u8,
}

impl World {
    fn records_at(&self, owner: &str) -> Vec<TlsaRecord> {
        let prefix = format!("{owner} TLSA ");
        self.zone
            .iter()
            .filter_map(|r| r.strip_prefix(&prefix))
            .map(|rdata| rdata.parse().expect("zone rdata"))
            .collect()
    }

    fn perform(
        &mut self,
        action: &Action,
        owners: &[OwnerName],
        stored_next: &mut Option<KeyHash>,
    ) -> Option<ActionOutcome> {
        Some(match action {
            Action::Publish { record, .. } => {
                self.zone.insert(norm(record).to_string());
                ActionOutcome::Published {
                    record: record.clone(),
                    result: Ok(()),
                }
            }
            Action::Retire(record) => {
                self.zone.remove(&norm(record).to_string());
                ActionOutcome::Retired {
                    record: record.clone(),
                    result: Ok(()),
                }
            }
            Action::CheckDns { .. } => ActionOutcome::Dns(DnsReport {
                owners: owners
                    .iter()
                    .map(|owner| {
                        let records = self.records_at(owner.as_str());
                        OwnerReport {
                            owner: owner.clone(),
                            nameservers: vec![
                                NsAnswer {
                                    nameserver: "ns1.example.net".into(),
                                    records: Ok(records.clone()),
                                    ttl: None,
                                    not_waited_for: false,
                                },
                                NsAnswer {
                                    nameserver: "ns2.example.org".into(),
                                    records: Ok(records.clone()),
                                    ttl: None,
                                    not_waited_for: false,
                                },
                            ],
                            validation: ResolverAnswer::Secure(records),
                            resolver_ttl: None,
                        }
                    })
                    .collect(),
            }),
            Action::Install { .. } => {
                self.installed = self.staged;
                ActionOutcome::Installed(Ok(()))
            }
            Action::ReinstallPrevious { .. } => ActionOutcome::Reinstalled(Ok(())),
            Action::Reload => {
                self.served = self.installed;
                ActionOutcome::Reloaded(Ok(()))
            }
            Action::Probe { endpoints, .. } => {
                let served = self.served;
                let matched = served.is_some_and(|k| {
                    owners
                        .iter()
                        .all(|o| self.zone.contains(&TlsaAt::new(o, k.dane_ee()).to_string()))
                });
                ActionOutcome::Probed(
                    endpoints
                        .iter()
                        .map(|e| ProbeResult {
                            endpoint: e.clone(),
                            address: "192.0.2.25".into(),
                            verdict: if matched {
                                ProbeVerdict::Match
                            } else {
                                ProbeVerdict::NoMatch("no TLSA record matched".into())
                            },
                            live_key: served,
                            chain: Vec::new(),
                        })
                        .collect(),
                )
            }
            Action::GenerateNextKey => {
                let k = stored_next.unwrap_or_else(|| {
                    self.generated += 1;
                    key(40 + self.generated)
                });
                *stored_next = Some(k);
                ActionOutcome::NextKey(Ok(k))
            }
            Action::Alert(_) | Action::Wait { .. } => return None,
            other => panic!("unexpected action {other:?}"),
        })
    }
}
