//! Store tests: migrations, one-transaction saves, "ours", keys, events, and the errors.

use std::fs;
use std::os::unix::fs::PermissionsExt;

use rusqlite::Connection;

use super::*;
use crate::rollover::{
    Event, KeyHash, PhaseName, Rollover, Slot, StageRequest, Timestamp, TlsaAt, stage,
};

fn key(n: u8) -> KeyHash {
    KeyHash([n; 32])
}

const OWNER: &str = "_25._tcp.mx1.example.com.";

fn rollover() -> (Rollover, Vec<Event>) {
    let step = stage(
        StageRequest {
            ttl: 3600,
            owners: vec![OWNER.parse().unwrap()],
            chain: "/staged/mx.pem".into(),
            previous_chain: Some("/live/mx.pem".into()),
            ..StageRequest::example()
        },
        Timestamp::from_secs(100),
    )
    .unwrap();
    (step.next, step.events)
}

#[test]
fn migrations_apply_from_zero_and_are_idempotent() {
    let mut conn = Connection::open_in_memory().unwrap();
    assert_eq!(schema::version(&conn).unwrap(), 0);
    assert_eq!(
        schema::migrate(&mut conn).unwrap(),
        Migrated::Applied { from: 0 }
    );
    assert_eq!(schema::version(&conn).unwrap(), latest_version());
    assert_eq!(schema::migrate(&mut conn).unwrap(), Migrated::Current);
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
    for table in [
        "rollovers",
        "records_published",
        "keys",
        "events",
        "alert_state",
    ] {
        let n: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1, "table {table}");
    }
    let store = Store::open_in_memory().unwrap();
    assert_eq!(store.schema_version().unwrap(), latest_version());
}

/// Two processes that open a new store at once (a `status` poll beside the `deploy` that
/// creates it) both migrate it: each step runs once, neither fails with "table … already
/// exists" (seen in CI as a `status --json` exiting 2 during a lab rollover).
#[test]
fn stores_opened_at_once_migrate_the_file_once() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("state");
        let start = std::sync::Arc::new(std::sync::Barrier::new(4));
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let (state, start) = (state.clone(), start.clone());
                std::thread::spawn(move || {
                    start.wait();
                    Store::open(&state).map(drop).map_err(|e| e.to_string())
                })
            })
            .collect();
        for opener in openers {
            assert_eq!(opener.join().unwrap(), Ok(()));
        }
    }
}

#[test]
fn a_store_on_disk_is_private_and_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (r, events) = rollover();
    {
        let mut store = Store::open(&state).unwrap();
        store
            .save(&r, &events, &[], Timestamp::from_secs(100))
            .unwrap();
    }
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&state), 0o700);
    assert_eq!(mode(&state.join(DB_FILE)), 0o600);
    let store = Store::open(&state).unwrap();
    assert_eq!(store.rollover("mx", &Slot::default()).unwrap(), Some(r));
    let journal: String = store
        .conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    assert_eq!(journal, "wal");
    let fk: i64 = store
        .conn
        .query_row("PRAGMA foreign_keys", [], |row| row.get(0))
        .unwrap();
    assert_eq!(fk, 1);
}

#[test]
fn a_phase_change_and_its_events_are_one_transaction() {
    let mut store = Store::open_in_memory().unwrap();
    let (r, events) = rollover();
    store
        .save(&r, &events, &[], Timestamp::from_secs(100))
        .unwrap();
    // Make any event with this detail fail: the rollover update must not land either.
    store
        .conn
        .execute_batch(
            "CREATE TRIGGER boom BEFORE INSERT ON events WHEN NEW.detail = 'boom'
             BEGIN SELECT RAISE(ABORT, 'boom'); END;",
        )
        .unwrap();
    let mut later = r.clone();
    later.phase = crate::rollover::Phase::Done {
        since: Timestamp::from_secs(200),
    };
    let bad = Event {
        time: Timestamp::from_secs(200),
        phase: PhaseName::Done,
        detail: "boom".into(),
    };
    let published = RecordChange::Published {
        record: TlsaAt::new(&OWNER.parse().unwrap(), key(2).dane_ee()),
        ttl: 3600,
    };
    assert!(
        store
            .save(&later, &[bad], &[published], Timestamp::from_secs(200))
            .is_err()
    );
    assert_eq!(store.rollover("mx", &Slot::default()).unwrap(), Some(r));
    assert!(store.ours("mx", &Slot::default()).unwrap().is_empty());
    assert_eq!(store.events(Some("mx"), 10).unwrap().len(), events.len());
}

/// `changes` to the records of `mx`'s `slot`, at second `at`.
fn record(store: &mut Store, slot: &Slot, changes: &[RecordChange], at: i64) {
    store
        .record_changes("mx", slot, changes, Timestamp::from_secs(at))
        .unwrap();
}

#[test]
fn ours_tracks_publish_confirm_and_retire_per_slot() {
    let mut store = Store::open_in_memory().unwrap();
    let rsa = Slot::Rsa;
    let ec = Slot::Ec;
    let a = TlsaAt::new(&OWNER.parse().unwrap(), key(1).dane_ee());
    let b = TlsaAt::new(&OWNER.parse().unwrap(), key(2).dane_ee());
    let pubd = |r: &TlsaAt| RecordChange::Published {
        record: r.clone(),
        ttl: 3600,
    };
    record(&mut store, &rsa, &[pubd(&a), pubd(&a), pubd(&b)], 10);
    record(&mut store, &ec, &[pubd(&a)], 10);
    assert_eq!(store.ours("mx", &rsa).unwrap(), vec![a.clone(), b.clone()]);
    assert_eq!(store.ours("mx", &ec).unwrap(), vec![a.clone()]);
    let confirmed_since =
        |store: &Store, records: &[TlsaAt]| store.confirmed_since("mx", &rsa, records).unwrap();
    assert_eq!(confirmed_since(&store, std::slice::from_ref(&a)), None);
    record(&mut store, &rsa, &[RecordChange::Confirmed(a.clone())], 20);
    record(&mut store, &rsa, &[RecordChange::Confirmed(a.clone())], 30);
    assert_eq!(
        confirmed_since(&store, std::slice::from_ref(&a)),
        Some(Timestamp::from_secs(20)),
        "the first confirmation counts"
    );
    assert_eq!(confirmed_since(&store, &[a.clone(), b.clone()]), None);
    record(&mut store, &rsa, &[RecordChange::Retired(a.clone())], 40);
    assert_eq!(store.ours("mx", &rsa).unwrap(), vec![b.clone()]);
    assert_eq!(
        store.ours("mx", &ec).unwrap(),
        vec![a.clone()],
        "other slot untouched"
    );
    // Published again after retirement: a new row, ours again.
    record(&mut store, &rsa, &[pubd(&a)], 50);
    assert_eq!(store.ours("mx", &rsa).unwrap().len(), 2);
    assert_eq!(store.published("mx").unwrap().len(), 4);
    assert!(store.ours("other", &rsa).unwrap().is_empty());
}

#[test]
fn keys_events_and_alert_state_round_trip() {
    let mut store = Store::open_in_memory().unwrap();
    let slot = Slot::default();
    let entry = KeyEntry {
        service: "mx".into(),
        slot: slot.clone(),
        role: KeyRole::Next,
        hash: key(7),
        path: Some("/var/lib/dane-roll/keys/mx.next.pem".into()),
        created: Timestamp::from_secs(5),
    };
    store.set_key(&entry).unwrap();
    assert_eq!(
        store.key("mx", &slot, KeyRole::Next).unwrap(),
        Some(entry.clone())
    );
    let replaced = KeyEntry {
        hash: key(8),
        ..entry.clone()
    };
    store.set_key(&replaced).unwrap();
    assert_eq!(store.keys("mx").unwrap(), vec![replaced]);
    store.clear_key("mx", &slot, KeyRole::Next).unwrap();
    assert!(store.keys("mx").unwrap().is_empty());

    let ev = |t, d: &str| Event {
        time: Timestamp::from_secs(t),
        phase: PhaseName::Published,
        detail: d.into(),
    };
    store
        .add_events("mx", &slot, &[ev(1, "a"), ev(2, "b"), ev(3, "c")])
        .unwrap();
    store.add_events("imap", &slot, &[ev(4, "d")]).unwrap();
    let last_two: Vec<_> = store
        .events(Some("mx"), 2)
        .unwrap()
        .into_iter()
        .map(|e| e.event.detail)
        .collect();
    assert_eq!(last_two, ["b", "c"]);
    assert_eq!(store.events(None, 10).unwrap().len(), 4);

    assert_eq!(store.alert_state("tlsa:mx").unwrap(), None);
    let state = AlertState {
        check_id: "tlsa:mx".into(),
        state: "critical".into(),
        last_sent: Some(Timestamp::from_secs(9)),
        since: Timestamp::from_secs(8),
    };
    store.set_alert_state(&state).unwrap();
    assert_eq!(store.alert_state("tlsa:mx").unwrap(), Some(state));
}

#[test]
fn a_newer_schema_is_refused_and_named() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let path = dir.path().join(DB_FILE);
    let conn = Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", latest_version() + 1)
        .unwrap();
    drop(conn);
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found, .. } if found == latest_version() + 1));
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("newer dane-roll"), "{text}");
}

#[test]
fn a_damaged_file_is_refused_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    fs::write(&path, vec![0x5a; 8192]).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("move it aside"), "{text}");
}

#[test]
fn an_unreadable_rollover_is_a_typed_error() {
    let mut store = Store::open_in_memory().unwrap();
    store
        .conn
        .execute(
            "INSERT INTO rollovers VALUES ('mx', 'default', 'staged', '{\"nonsense\":1}', 0, 0, 0)",
            [],
        )
        .unwrap();
    let err = store.rollover("mx", &Slot::default()).unwrap_err();
    assert!(matches!(err, StoreError::BadState { .. }), "{err:?}");
    assert!(err.to_string().contains("service mx"));
    let _ = &mut store;
}

#[test]
fn a_row_of_an_unknown_slot_is_a_typed_error() {
    let store = Store::open_in_memory().unwrap();
    store
        .conn
        .execute(
            "INSERT INTO keys (service, slot, role, spki_sha256, key_path, created)
             VALUES ('mx', 'ecdsa', 'next', ?1, NULL, 0)",
            [key(1).to_hex()],
        )
        .unwrap();
    let err = store.keys("mx").unwrap_err();
    assert!(matches!(err, StoreError::BadState { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("service mx (ecdsa)") && text.contains("unknown key slot `ecdsa`"),
        "{text}"
    );
}

#[test]
fn a_read_only_state_dir_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("ro");
    fs::create_dir(&state).unwrap();
    fs::set_permissions(&state, fs::Permissions::from_mode(0o500)).unwrap();
    if fs::write(state.join("probe"), b"").is_ok() {
        eprintln!("SKIPPED: running with privileges that ignore directory permissions");
        return;
    }
    let err = Store::open(&state).unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
    assert!(err.to_string().contains("read-only"), "{err}");
    fs::set_permissions(&state, fs::Permissions::from_mode(0o700)).unwrap();
}

#[test]
fn a_read_only_database_file_is_refused_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let path = dir.path().join(DB_FILE);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    if fs::OpenOptions::new().write(true).open(&path).is_ok() {
        eprintln!("SKIPPED: running with privileges that ignore file permissions");
        return;
    }
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, StoreError::ReadOnly { .. }), "{err:?}");
}

#[test]
fn a_version_1_store_migrates_to_milliseconds_and_its_rollover_json_still_parses() {
    let mut conn = Connection::open_in_memory().unwrap();
    let tx = conn.transaction().unwrap();
    tx.execute_batch(MIGRATIONS[0]).unwrap();
    tx.pragma_update(None, "user_version", 1).unwrap();
    tx.commit().unwrap();
    // A rollover as version 1 wrote it: no TTL fields.
    let (r, _) = rollover();
    let mut json: serde_json::Value = serde_json::to_value(&r).unwrap();
    for field in ["ttl-seen", "looked", "ttl-warned"] {
        json.as_object_mut().unwrap().remove(field);
    }
    conn.execute(
        "INSERT INTO rollovers (service, slot, phase, state, started, since, updated)
         VALUES ('mx', 'default', 'staged', ?1, 100, 100, 100)",
        [json.to_string()],
    )
    .unwrap();
    // Times as version 1 wrote them: whole seconds.
    conn.execute(
        "INSERT INTO events (time, service, slot, phase, detail)
         VALUES (100, 'mx', 'default', 'staged', 'rollover staged')",
        [],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO records_published (service, slot, owner, rdata, ttl, published_at, confirmed_at)
         VALUES ('mx', 'default', ?1, ?2, 3600, 100, 101)",
        [OWNER.to_owned(), key(2).dane_ee().to_string()],
    )
    .unwrap();
    assert_eq!(
        schema::migrate(&mut conn).unwrap(),
        Migrated::Applied { from: 1 }
    );
    let mut store = Store {
        conn,
        path: ":memory:".into(),
    };
    let back = store.rollover("mx", &Slot::default()).unwrap().unwrap();
    assert_eq!(back.governing_ttl(), 3600);
    assert_eq!(back.started, Timestamp::from_secs(100));
    let events = store.events(Some("mx"), 10).unwrap();
    assert_eq!(events[0].event.time, Timestamp::from_secs(100));
    let published = store.published("mx").unwrap();
    assert_eq!(published[0].published_at, Timestamp::from_secs(100));
    assert_eq!(published[0].confirmed_at, Some(Timestamp::from_secs(101)));
    let since: i64 = store
        .conn
        .query_row("SELECT since FROM rollovers", [], |r| r.get(0))
        .unwrap();
    assert_eq!(since, 100_000, "milliseconds");
    assert!(!back.looked);
    // Observed TTLs: one row per (owner, source, TTL), last seen updated.
    let owner = OWNER.parse().unwrap();
    let seen = [(&owner, "ns1.example.net. (192.0.2.53)", 7200u32)];
    for at in [101, 105] {
        store
            .record_ttls(
                "mx",
                &Slot::default(),
                Timestamp::from_secs(100),
                seen,
                Timestamp::from_secs(at),
            )
            .unwrap();
    }
    let ttls = store
        .ttls("mx", &Slot::default(), Timestamp::from_secs(100))
        .unwrap();
    assert_eq!(ttls.len(), 1, "{ttls:?}");
    assert_eq!(ttls[0].ttl, 7200);
    assert_eq!(ttls[0].first_seen, Timestamp::from_secs(101));
    assert_eq!(ttls[0].last_seen, Timestamp::from_secs(105));
    assert!(
        store
            .ttls("mx", &Slot::default(), Timestamp::from_secs(99))
            .unwrap()
            .is_empty()
    );
}

/// Puts `state` in the rollovers table as the row of `mx`'s default slot, staged at 100, the
/// way an earlier version of the code left it.
fn insert_staged_row(store: &Store, state: &str) {
    store
        .conn
        .execute(
            "INSERT INTO rollovers (service, slot, phase, state, started, since, updated)
             VALUES ('mx', 'default', 'staged', ?1, 100, 100, 100)",
            [state],
        )
        .unwrap();
}

/// The stored JSON of a rollover as the version before [`Rollover::request`] wrote it (the
/// request's fields at the top level): it still loads, and is written again with the same keys.
#[test]
fn a_rollover_row_in_the_flat_shape_loads_and_is_written_the_same() {
    const STORED: &str = r#"{"service":"mx","slot":"default","scheme":"current+next","ttl":3600,"owners":["_25._tcp.mx1.example.com."],"endpoints":["mx1.example.com:25"],"old":"0101010101010101010101010101010101010101010101010101010101010101","new":"0202020202020202020202020202020202020202020202020202020202020202","next":"0303030303030303030303030303030303030303030303030303030303030303","issuers":[],"chain":"/staged/mx.pem","previous-chain":"/live/mx.pem","confirmed-since":50,"looked":false,"ttl-warned":false,"nameserver-down-alerted":false,"forced":60,"started":100,"phase":{"phase":"staged","since":100}}"#;
    let store = Store::open_in_memory().unwrap();
    insert_staged_row(&store, STORED);
    let r = store.rollover("mx", &Slot::default()).unwrap().unwrap();
    let (mut want, _) = rollover();
    want.request.next = Some(key(3));
    want.request.confirmed_since = Some(Timestamp::from_secs(50));
    want.forced = Some(Timestamp::from_secs(60));
    assert_eq!(r, want);
    assert_eq!(serde_json::to_string(&r).unwrap(), STORED);
}

/// A rollover row and its records as the code before [`crate::tlsa::OwnerName`] wrote them
/// (owner names as plain strings: a configured one, a CNAME target, the TTL's owner): they load
/// as owner names, the rollover is written back byte for byte, and a record's owner name still
/// finds its row.
#[test]
fn owner_names_stored_as_strings_load_and_are_written_the_same() {
    const STORED: &str = r#"{"service":"mx","slot":"default","scheme":"current+next","ttl":3600,"owners":["_25._tcp.mx1.example.com.","_dane.example.com."],"endpoints":["mx1.example.com:25","mx2.example.com:25"],"old":"0101010101010101010101010101010101010101010101010101010101010101","new":"0202020202020202020202020202020202020202020202020202020202020202","next":null,"issuers":[],"chain":"/staged/mx.pem","previous-chain":"/live/mx.pem","confirmed-since":null,"ttl-seen":{"ttl":7200,"owner":"_dane.example.com.","source":"ns1.example.net. (192.0.2.53)","time":101},"looked":true,"ttl-warned":false,"nameserver-down-alerted":false,"forced":null,"started":100,"phase":{"phase":"staged","since":100}}"#;
    let mut store = Store::open_in_memory().unwrap();
    insert_staged_row(&store, STORED);
    for owner in [OWNER, "_dane.example.com."] {
        store
            .conn
            .execute(
                "INSERT INTO records_published (service, slot, owner, rdata, ttl, published_at)
                 VALUES ('mx', 'default', ?1, ?2, 3600, 100)",
                [owner.to_owned(), key(2).dane_ee().to_string()],
            )
            .unwrap();
    }

    let r = store.rollover("mx", &Slot::default()).unwrap().unwrap();
    let owners: Vec<&str> = r.request.owners.iter().map(|o| o.as_str()).collect();
    assert_eq!(owners, [OWNER, "_dane.example.com."]);
    assert_eq!(
        r.ttl_seen.as_ref().map(|s| s.owner.as_str()),
        Some("_dane.example.com.")
    );
    assert_eq!(serde_json::to_string(&r).unwrap(), STORED);
    let events = store.events(Some("mx"), 10).unwrap();
    store.save(&r, &[], &[], Timestamp::from_secs(102)).unwrap();
    let state: String = store
        .conn
        .query_row("SELECT state FROM rollovers", [], |row| row.get(0))
        .unwrap();
    assert_eq!(state, STORED, "written back the same");
    assert_eq!(store.events(Some("mx"), 10).unwrap(), events);

    let published = store.published("mx").unwrap();
    let at: Vec<&str> = published.iter().map(|p| p.record.owner.as_str()).collect();
    assert_eq!(at, [OWNER, "_dane.example.com."]);
    // The owner name read back names the row it came from.
    store
        .record_changes(
            "mx",
            &Slot::default(),
            &[RecordChange::Retired(published[1].record.clone())],
            Timestamp::from_secs(103),
        )
        .unwrap();
    let retired: Vec<(String, Option<i64>)> = store
        .select(
            "SELECT owner, retired_at FROM records_published ORDER BY id",
            [],
            |row| row.try_into(),
        )
        .unwrap();
    assert_eq!(
        retired,
        [
            (OWNER.to_owned(), None),
            ("_dane.example.com.".to_owned(), Some(103_000)),
        ]
    );
}

/// An owner name in the store that is no DNS name (a hand edit, a damaged file) is the store's
/// typed error naming the service, never a panic.
#[test]
fn an_owner_name_in_the_store_that_is_no_name_is_a_typed_error() {
    let store = Store::open_in_memory().unwrap();
    store
        .conn
        .execute(
            "INSERT INTO records_published (service, slot, owner, rdata, ttl, published_at)
             VALUES ('mx', 'default', '_25._tcp..example.com.', ?1, 3600, 100)",
            [key(2).dane_ee().to_string()],
        )
        .unwrap();
    let err = store.published("mx").unwrap_err();
    assert!(matches!(err, StoreError::BadState { .. }), "{err:?}");
    assert!(err.to_string().contains("empty label"), "{err}");

    store
        .conn
        .execute(
            "INSERT INTO ttl_observations
                 (service, slot, started, owner, source, ttl, first_seen, last_seen)
             VALUES ('mx', 'default', 100000, '', 'resolver', 60, 101000, 101000)",
            [],
        )
        .unwrap();
    let err = store
        .ttls("mx", &Slot::default(), Timestamp::from_secs(100))
        .unwrap_err();
    assert!(matches!(err, StoreError::BadState { .. }), "{err:?}");
    assert!(err.to_string().contains("is empty"), "{err}");

    let (r, _) = rollover();
    let json = serde_json::to_string(&r)
        .unwrap()
        .replace(OWNER, "_25._tcp.mx 1.example.com.");
    insert_staged_row(&store, &json);
    let err = store.rollover("mx", &Slot::default()).unwrap_err();
    assert!(matches!(err, StoreError::BadState { .. }), "{err:?}");
    assert!(err.to_string().contains("space or control"), "{err}");
}
