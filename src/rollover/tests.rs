//! Unit tests of the plan (property tests), the gate and the value types.

use proptest::prelude::*;

use super::engine::gate;
use super::plan::{desired, retirable};
use super::*;
use crate::config::Scheme;
use crate::tlsa::TlsaRecord;

fn key(n: u8) -> KeyHash {
    KeyHash([n; 32])
}

const OWNERS: [&str; 3] = [
    "_25._tcp.mx1.example.com.",
    "_25._tcp.mx2.example.com.",
    "_465._tcp.mx1.example.com.",
];

fn owner(name: &str) -> OwnerName {
    name.parse().expect("an owner name")
}

fn owners(n: usize) -> Vec<OwnerName> {
    OWNERS[..n].iter().map(|s| owner(s)).collect()
}

#[test]
fn timestamps_print_as_rfc3339_utc() {
    assert_eq!(Timestamp::from_secs(0).to_string(), "1970-01-01T00:00:00Z");
    assert_eq!(
        Timestamp::from_secs(1_709_251_199).to_string(),
        "2024-02-29T23:59:59Z"
    );
    assert_eq!(
        Timestamp::from_secs(951_782_400).to_string(),
        "2000-02-29T00:00:00Z"
    );
    assert_eq!(
        Timestamp::from_secs(10)
            .until(Timestamp::from_secs(4))
            .as_secs(),
        0
    );
}

#[test]
fn key_hash_text_round_trips_and_rejects_short_text() {
    let k = KeyHash::of_spki_der(b"not really a key");
    let text = k.to_string();
    assert_eq!(text.len(), 64);
    assert_eq!(text.parse::<KeyHash>().unwrap(), k);
    assert!("abcd".parse::<KeyHash>().is_err());
    assert_eq!(k.dane_ee().to_string(), format!("3 1 1 {text}"));
    assert_eq!(k.dane_ta().to_string(), format!("2 1 1 {text}"));
    let json = serde_json::to_string(&k).unwrap();
    assert_eq!(serde_json::from_str::<KeyHash>(&json).unwrap(), k);
}

#[test]
fn slots_keep_their_stored_and_cli_names() {
    // The names the store, the CLI and stored rollovers (JSON) have always used.
    for (slot, name) in [
        (Slot::Default, "default"),
        (Slot::Ec, "ec"),
        (Slot::Ed, "ed"),
        (Slot::Rsa, "rsa"),
    ] {
        assert_eq!(slot.to_string(), name);
        assert_eq!(name.parse::<Slot>(), Ok(slot.clone()));
        assert_eq!(serde_json::to_string(&slot).unwrap(), format!("\"{name}\""));
        assert_eq!(
            serde_json::from_str::<Slot>(&format!("\"{name}\"")).unwrap(),
            slot
        );
    }
    assert_eq!(Slot::default().as_str(), Slot::DEFAULT);
    // Sorted as their names sort (`status` lists slots in this order).
    let mut names: Vec<&str> = Slot::ALL.iter().map(Slot::as_str).collect();
    names.sort_unstable();
    assert_eq!(names, Slot::ALL.map(|s| s.as_str()));
    let err = "ecdsa".parse::<Slot>().unwrap_err().to_string();
    assert!(
        err.contains("unknown key slot `ecdsa`") && err.contains("`rsa`"),
        "{err}"
    );
    assert!(serde_json::from_str::<Slot>("\"ecdsa\"").is_err());
}

#[test]
fn current_next_plan_has_both_keys_at_every_owner_and_no_issuer() {
    let keys = KeySet {
        current: Some(key(1)),
        next: Some(key(2)),
        new: None,
        issuers: vec![key(9)],
    };
    let d = desired(Scheme::CurrentNext, &owners(2), &keys);
    assert_eq!(d.len(), 4);
    assert!(
        d.iter()
            .all(|r| r.record.usage == crate::tlsa::Usage::DaneEe)
    );
    let d = desired(Scheme::CurrentIssuer, &owners(2), &keys);
    assert_eq!(
        d.len(),
        6,
        "current, next and the issuer at each owner: {d:?}"
    );
    assert_eq!(
        d.iter()
            .filter(|r| r.record.usage == crate::tlsa::Usage::DaneTa)
            .count(),
        2
    );
}

#[test]
fn records_of_other_hosts_at_a_shared_owner_are_never_stale() {
    let owners = owners(1);
    let keys = KeySet {
        current: Some(key(1)),
        next: Some(key(2)),
        ..KeySet::default()
    };
    let old_ours = TlsaAt::new(&owners[0], key(3).dane_ee());
    // Another host's record at the shared owner name is not ours: it is never handed to
    // retirable, and what is handed to it is all it can return.
    let ours = vec![old_ours.clone()];
    let wanted = desired(Scheme::CurrentNext, &owners, &keys);
    assert_eq!(wanted.len(), 2);
    assert_eq!(retirable(&ours, &wanted, &keys.protected()), vec![old_ours]);
}

#[test]
fn gate_needs_every_nameserver_and_a_validated_answer() {
    let owner = owner(OWNERS[0]);
    let want = vec![TlsaAt::new(&owner, key(1).dane_ee())];
    let served = |records: Vec<TlsaRecord>| NsAnswer {
        nameserver: "ns1".into(),
        records: Ok(records),
        ttl: None,
        not_waited_for: false,
    };
    let mut report = DnsReport {
        owners: vec![OwnerReport {
            owner,
            nameservers: vec![served(vec![key(1).dane_ee()]), served(vec![])],
            validation: ResolverAnswer::Secure(vec![key(1).dane_ee()]),
            resolver_ttl: None,
        }],
    };
    let reasons = gate(&want, &report).unwrap_err();
    assert!(reasons[0].contains("lags"), "{reasons:?}");
    report.owners[0].nameservers[1] = served(vec![key(1).dane_ee(), key(5).dane_ee()]);
    assert!(gate(&want, &report).is_ok());
    report.owners[0].validation = ResolverAnswer::Insecure;
    assert!(gate(&want, &report).is_err());
    report.owners[0].validation = ResolverAnswer::Secure(vec![]);
    assert!(gate(&want, &report).is_err());
    report.owners[0].validation = ResolverAnswer::Secure(vec![key(1).dane_ee()]);
    report.owners[0].nameservers.clear();
    assert!(
        gate(&want, &report).is_err(),
        "no nameserver is not 'all serve'"
    );
    assert!(gate(&want, &DnsReport::default()).is_err());
}

#[test]
fn rollover_state_round_trips_through_json() {
    let step = stage(
        StageRequest {
            ttl: 3600,
            chain: "/var/lib/dane-roll/staged/mx.pem".into(),
            ..one_owner_request()
        },
        Timestamp::from_secs(1000),
    )
    .unwrap();
    let json = serde_json::to_string(&step.next).unwrap();
    assert!(json.contains("\"phase\":\"staged\""), "{json}");
    assert!(json.contains("current+next"), "{json}");
    let back: Rollover = serde_json::from_str(&json).unwrap();
    assert_eq!(back, step.next);
}

#[test]
fn staging_the_current_key_is_refused() {
    let err = stage(
        StageRequest {
            ttl: 3600,
            new: key(1),
            ..one_owner_request()
        },
        Timestamp::from_secs(0),
    )
    .unwrap_err();
    assert!(matches!(err, EngineError::SameKey { .. }));
}

/// A current+next rollover from key 1 to key 2 at one owner name, TTL 60.
fn one_owner_request() -> StageRequest {
    StageRequest {
        owners: owners(1),
        ..StageRequest::example()
    }
}

#[test]
fn a_rate_limited_publish_keeps_the_phase_waits_and_alerts_nothing() {
    let request = one_owner_request();
    // Past the look at the TLSA RRsets before publishing (the TTL the wait counts).
    let mut staged = stage(request, Timestamp::from_secs(100)).unwrap();
    staged.next.looked = true;
    let staged = step(
        staged.next,
        &Observations::default(),
        Timestamp::from_secs(100),
    );
    let records: Vec<TlsaAt> = staged
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish { record, .. } => Some(record.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(records.len(), 2, "old and new at one owner name");
    // The first record went out; the provider rate-limited the second.
    let observations = Observations {
        outcomes: vec![
            ActionOutcome::Published {
                record: records[0].clone(),
                result: Ok(()),
            },
            ActionOutcome::RateLimited {
                record: records[1].clone(),
                retry_at: Timestamp::from_secs(400),
                detail: "retry after 300s".into(),
            },
        ],
        ..Observations::default()
    };
    let s = step(
        staged.next.clone(),
        &observations,
        Timestamp::from_secs(101),
    );
    assert_eq!(s.next.phase.name(), PhaseName::Staged, "the phase is kept");
    assert_eq!(s.alerts().count(), 0, "a rate limit is not alerted: {s:?}");
    assert!(s.is_settled(), "nothing is sent before retry_after: {s:?}");
    assert_eq!(s.wait_until(), Some(Timestamp::from_secs(400)));
    // The next run (no outcomes yet) asks for the record again.
    let again = step(s.next, &Observations::default(), Timestamp::from_secs(400));
    assert!(
        again
            .actions
            .iter()
            .any(|a| matches!(a, Action::Publish { record, .. } if *record == records[1]))
    );
    // A failure, by contrast, is alerted.
    let failed = Observations {
        outcomes: vec![ActionOutcome::Published {
            record: records[1].clone(),
            result: Err("SERVFAIL".into()),
        }],
        ..Observations::default()
    };
    let s = step(staged.next, &failed, Timestamp::from_secs(101));
    assert_eq!(s.alerts().count(), 1);
}

/// Chaos seed 956221311: the next key's record failed to publish at `retired` (five HTTP 500s)
/// and the rollover still went to `done`, because the record, stored as ours before the
/// provider was asked, counted as published: the next rollover would then have installed a
/// key without a record. Stored as ours is not published; only the provider's answer is.
#[test]
fn a_next_key_record_that_failed_to_publish_holds_the_rollover_at_retired() {
    let request = one_owner_request();
    let mut r = stage(request, Timestamp::from_secs(100)).unwrap().next;
    r.phase = Phase::Retired {
        since: Timestamp::from_secs(200),
    };
    r.request.next = Some(key(3));
    let next_record = TlsaAt::new(&owners(1)[0], key(3).dane_ee());
    let ours = vec![
        TlsaAt::new(&owners(1)[0], key(2).dane_ee()),
        next_record.clone(),
    ];
    let failed = Observations {
        outcomes: vec![ActionOutcome::Published {
            record: next_record.clone(),
            result: Err("HTTP 500".into()),
        }],
        ours: ours.clone(),
        ..Observations::default()
    };
    let s = step(r.clone(), &failed, Timestamp::from_secs(201));
    assert_eq!(s.next.phase.name(), PhaseName::Retired, "{s:?}");
    assert_eq!(s.alerts().count(), 1, "{s:?}");
    // The next run asks the provider again (an add of a present record sends nothing).
    let again = step(
        s.next,
        &Observations {
            ours,
            ..Observations::default()
        },
        Timestamp::from_secs(260),
    );
    assert!(
        again
            .actions
            .iter()
            .any(|a| matches!(a, Action::Publish { record, .. } if *record == next_record)),
        "{again:?}"
    );
    assert_eq!(again.next.phase.name(), PhaseName::Retired);
}

fn arb_record() -> impl Strategy<Value = TlsaAt> {
    // Owners 0..4 (index 3 is an owner name the service no longer has), keys 0..8, usage 2 or 3.
    (0usize..4, 0u8..8, prop::bool::ANY).prop_map(|(o, k, ta)| {
        let owner = owner(if o < 3 {
            OWNERS[o]
        } else {
            "_25._tcp.old.example.com."
        });
        let record = if ta {
            key(k).dane_ta()
        } else {
            key(k).dane_ee()
        };
        TlsaAt::new(&owner, record)
    })
}

proptest! {
    /// Whatever the store and DNS say, the desired set keeps the current and next keys at every
    /// owner name, stale ⊆ ours − desired, and nothing stale is a record of a protected key.
    #[test]
    fn planner_never_drops_live_or_next(
        n_owners in 1usize..=3,
        current in prop::option::of(0u8..8),
        next in prop::option::of(0u8..8),
        new in prop::option::of(0u8..8),
        issuers in prop::collection::vec(0u8..8, 0..3),
        live in prop::collection::vec(0u8..8, 0..2),
        ours in prop::collection::vec(arb_record(), 0..12),
        issuer_scheme in prop::bool::ANY,
    ) {
        let owners = owners(n_owners);
        let keys = KeySet {
            current: current.map(key),
            next: next.map(key),
            new: new.map(key),
            issuers: issuers.into_iter().map(key).collect(),
        };
        let live: Vec<KeyHash> = live.into_iter().map(key).collect();
        let scheme = if issuer_scheme { Scheme::CurrentIssuer } else { Scheme::CurrentNext };
        let wanted = desired(scheme, &owners, &keys);
        for owner in &owners {
            for k in [keys.current, keys.next].into_iter().flatten() {
                let r = TlsaAt::new(owner, k.dane_ee());
                prop_assert!(wanted.contains(&r), "desired lacks {r}");
            }
        }
        let protected: Vec<KeyHash> =
            keys.protected().into_iter().chain(live.iter().copied()).collect();
        let stale = retirable(&ours, &wanted, &protected);
        for r in &stale {
            prop_assert!(ours.contains(r), "stale {r} is not ours");
            prop_assert!(!wanted.contains(r), "stale {r} is desired");
            prop_assert!(!protected.iter().any(|k| r.is_of(k)), "stale {r} is protected");
        }
        // retire is idempotent and stays within what it was given
        let again = retirable(&stale, &wanted, &protected);
        prop_assert_eq!(&again, &stale);
    }
}

#[test]
fn times_keep_milliseconds_and_old_whole_seconds_still_parse() {
    let t = Timestamp::from_millis(1_700_000_000_250);
    assert_eq!(t.to_string(), "2023-11-14T22:13:20.250Z");
    assert_eq!(
        Timestamp::from_secs(1_700_000_000).to_string(),
        "2023-11-14T22:13:20Z"
    );
    assert_eq!(serde_json::to_string(&t).unwrap(), "1700000000.25");
    let back: Timestamp = serde_json::from_str("1700000000.25").unwrap();
    assert_eq!(back, t);
    // What stores written before milliseconds hold: whole seconds.
    let old: Timestamp = serde_json::from_str("1700000000").unwrap();
    assert_eq!(old, Timestamp::from_secs(1_700_000_000));
    assert_eq!(serde_json::to_string(&old).unwrap(), "1700000000");
    assert!(serde_json::from_str::<Timestamp>("\"soon\"").is_err());
    // Nothing rounded: 2×TTL after a confirmation at .250 is due at .250.
    let due = t.plus(std::time::Duration::from_secs(4));
    assert_eq!(due.as_millis(), 1_700_000_004_250);
    assert_eq!(t.until(due), std::time::Duration::from_secs(4));
}

#[test]
fn a_failure_keeps_its_words_whatever_its_kind() {
    assert_eq!(
        Failure::from("timed out".to_owned()).kind(),
        FailureKind::Retryable
    );
    assert!(Failure::from("timed out").is_retryable());
    assert!(!Failure::permanent("read-only").is_retryable());
    let request = StageRequest {
        slot: Slot::Ec,
        ..one_owner_request()
    };
    let mut aged = stage(request, Timestamp::from_secs(100)).unwrap().next;
    aged.phase = Phase::Aged {
        since: Timestamp::from_secs(110),
        forced: false,
        install_failures: 0,
    };
    let failed = |failure: Failure| {
        let obs = Observations {
            outcomes: vec![ActionOutcome::Installed(Err(failure))],
            ..Observations::default()
        };
        step(aged.clone(), &obs, Timestamp::from_secs(120))
    };
    let retryable = failed(Failure::retryable("/etc/postfix: Read-only file system"));
    let permanent = failed(Failure::permanent("/etc/postfix: Read-only file system"));
    assert_eq!(
        retryable, permanent,
        "the kind changes no word and no phase"
    );
    assert_eq!(
        retryable.alerts().collect::<Vec<_>>(),
        [
            "dane-roll: service mx (ec): install failed: /etc/postfix: Read-only file system; \
          the next run retries"
        ]
    );
    assert!(matches!(
        retryable.next.phase,
        Phase::Aged {
            install_failures: 1,
            ..
        }
    ));
}

#[test]
fn a_failed_reinstall_is_alerted_counted_and_retried_in_a_rollback_and_an_abort() {
    let request = StageRequest {
        slot: Slot::Ec,
        previous_chain: Some("/state/previous.pem".into()),
        ..one_owner_request()
    };
    let staged = stage(request, Timestamp::from_secs(100)).unwrap().next;
    let failed = Observations {
        outcomes: vec![ActionOutcome::Reinstalled(Err("disk full".into()))],
        ..Observations::default()
    };
    let ok = Observations {
        outcomes: vec![ActionOutcome::Reinstalled(Ok(()))],
        ..Observations::default()
    };
    let now = Timestamp::from_secs(120);

    let mut rolled_back = staged.clone();
    rolled_back.phase = Phase::RolledBack {
        since: Timestamp::from_secs(110),
        reason: "no match".into(),
        reinstalled: false,
        reloaded: false,
        failures: 0,
    };
    let s = step(rolled_back.clone(), &Observations::default(), now);
    assert!(
        matches!(&s.actions[..], [Action::ReinstallPrevious { chain }] if chain.ends_with("previous.pem"))
    );

    let aborting = abort(staged, true, Timestamp::from_secs(110)).unwrap().next;
    // The reinstall's failures and whether it is done, in either phase.
    let reinstall = |phase: &Phase| match phase {
        Phase::RolledBack {
            failures,
            reinstalled,
            ..
        }
        | Phase::Aborting {
            failures,
            reinstalled,
            ..
        } => Some((*failures, *reinstalled)),
        _ => None,
    };
    for (start, alert) in [
        (
            rolled_back,
            "dane-roll: service mx (ec): reinstalling the previous certificate failed: disk full; \
             the next run retries",
        ),
        (
            aborting,
            "dane-roll: service mx (ec): abort: reinstalling the previous certificate failed: disk \
             full; the next run retries",
        ),
    ] {
        let s = step(start.clone(), &failed, now);
        assert_eq!(s.alerts().collect::<Vec<_>>(), [alert]);
        assert_eq!(s.next.phase.name(), start.phase.name());
        assert_eq!(reinstall(&s.next.phase), Some((1, false)));
        let s = step(start.clone(), &ok, now);
        assert_eq!(s.actions, vec![Action::Reload]);
        assert_eq!(s.next.phase.name(), start.phase.name());
        assert!(matches!(reinstall(&s.next.phase), Some((_, true))));
    }
}

#[test]
fn a_verified_rollover_retires_no_issuer_record_another_key_slot_wants() {
    // `ec` rolled from key 1 (issued by 40) to key 2 (issued by 41); `rsa`'s chain is issued
    // by 40, so the driver passes 40 as a protected issuer.
    let owner = &owner(OWNERS[0]);
    let mut r = stage(
        StageRequest {
            slot: Slot::Ec,
            scheme: Scheme::CurrentIssuer,
            issuers: vec![key(41)],
            ..one_owner_request()
        },
        Timestamp::from_secs(100),
    )
    .unwrap()
    .next;
    r.phase = Phase::Verified {
        since: Timestamp::from_secs(110),
    };
    let ours: Vec<TlsaAt> = [
        key(1).dane_ee(),
        key(2).dane_ee(),
        key(40).dane_ta(),
        key(41).dane_ta(),
    ]
    .into_iter()
    .map(|record| TlsaAt::new(owner, record))
    .collect();
    let retired = |protected_issuers: Vec<KeyHash>| {
        let obs = Observations {
            ours: ours.clone(),
            protected_issuers,
            ..Observations::default()
        };
        let s = step(r.clone(), &obs, Timestamp::from_secs(120));
        assert!(
            !s.events.iter().any(|e| e.detail.contains("refused")),
            "{:?}",
            s.events
        );
        s.actions
            .into_iter()
            .filter_map(|a| match a {
                Action::Retire(record) => Some(record),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    // Wanted by `rsa`: only the old key's record goes, the rollover moves on.
    assert_eq!(
        retired(vec![key(40), key(41)]),
        [TlsaAt::new(owner, key(1).dane_ee())]
    );
    // Wanted by no slot: the old issuer's record goes with it.
    assert_eq!(
        retired(vec![key(41)]),
        [
            TlsaAt::new(owner, key(40).dane_ta()),
            TlsaAt::new(owner, key(1).dane_ee())
        ]
    );
}
