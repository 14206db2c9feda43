//! The tie on a journal made by hand: a rollover of `mx`'s `ec` slot from key A to key B,
//! installed at T0 + 10 min, and reports whose window covers it.

use mail_auth::report::tlsrpt::{PolicyDetails, PolicyType};

use crate::rollover::{Event, KeyHash, PhaseName, Slot, Timestamp, TlsaAt};
use crate::store::{PublishedRecord, StoredEvent};

use super::journal::{Journal, ServiceView};
use super::tie::{Seen, Tie, Verdict, tie};

const OWNER: &str = "_25._tcp.mail.example.test.";
const T0: i64 = 1_796_540_400_000; // 2026-12-06T07:00:00Z
const MIN: i64 = 60_000;

fn key(byte: u8) -> KeyHash {
    KeyHash([byte; 32])
}

fn at(minutes: i64) -> Timestamp {
    Timestamp::from_millis(T0 + minutes * MIN)
}

fn journal() -> Journal {
    let phases = [
        (0, PhaseName::Staged),
        (1, PhaseName::Published),
        (5, PhaseName::Aged),
        (10, PhaseName::Installed),
        (11, PhaseName::Verified),
        (12, PhaseName::Retired),
        (12, PhaseName::Done),
    ];
    let events: Vec<StoredEvent> = phases
        .iter()
        .enumerate()
        .map(|(i, (m, phase))| StoredEvent {
            id: i64::try_from(i).unwrap(),
            service: "mx".into(),
            slot: Slot::Ec,
            event: Event {
                time: at(*m),
                phase: *phase,
                detail: String::new(),
            },
        })
        .collect();
    let record = |k: KeyHash, published: i64, retired: Option<i64>| PublishedRecord {
        service: "mx".into(),
        slot: Slot::Ec,
        record: TlsaAt::new(&OWNER.parse().expect("an owner name"), k.dane_ee()),
        ttl: 120,
        published_at: at(published),
        confirmed_at: Some(at(published + 1)),
        retired_at: retired.map(at),
    };
    let mut j = Journal::from_parts(
        vec![ServiceView {
            name: "mx".into(),
            endpoints: vec![("mail.example.test".into(), 25)],
            domains: vec!["mail.example.test".into()],
        }],
        &events,
        vec![
            record(key(0xa), -10_000, Some(12)),
            record(key(0xb), 0, None),
        ],
    );
    assert_eq!(j.spans.len(), 1);
    assert_eq!(j.spans[0].entered(PhaseName::Installed), Some(at(10)));
    j.spans[0].keys = Some((Some(key(0xa)), key(0xb)));
    j
}

fn policy(records: &[KeyHash], mx: bool) -> PolicyDetails {
    PolicyDetails {
        policy_type: PolicyType::Tlsa,
        policy_string: records.iter().map(|k| k.dane_ee().to_string()).collect(),
        policy_domain: "example.test".into(),
        mx_host: if mx {
            vec!["mail.example.test".into()]
        } else {
            Vec::new()
        },
    }
}

fn seen<'a>(policy: &'a PolicyDetails, from: i64, to: i64) -> Seen<'a> {
    Seen {
        organization: "Microsoft Corporation",
        window: (at(from), at(to)),
        policy,
        receiving_mx: None,
    }
}

/// The tie of a report from an hour before the rollover to a day later, in which the MX host
/// showed `records`.
fn tie_across_the_rollover(records: &[KeyHash]) -> Tie {
    tie(&journal(), seen(&policy(records, true), -60, 24 * 60))
}

#[test]
fn the_old_record_alone_after_the_install_means_the_wait_was_too_short() {
    let t = tie_across_the_rollover(&[key(0xa)]);
    assert_eq!(t.verdict, Verdict::OldAfterInstall, "{t:#?}");
    assert!(
        t.explanation.starts_with(
            "Microsoft Corporation saw only the old record after the install at \
             2026-12-06T07:10:00Z: the wait was too short"
        ),
        "{}",
        t.explanation
    );
    assert_eq!(t.service.as_deref(), Some("mx"));
    assert_eq!(
        t.owner.as_ref().map(crate::tlsa::OwnerName::as_str),
        Some(OWNER)
    );
    let r = t.rollover.unwrap();
    assert_eq!((r.service.as_str(), r.slot.as_str()), ("mx", "ec"));
    let phases: Vec<&str> = r.phases.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        phases,
        [
            "staged",
            "published",
            "aged",
            "installed",
            "verified",
            "retired",
            "done"
        ]
    );
    assert_eq!(t.seen[0].key, Some("old"));
}

#[test]
fn old_and_new_records_are_ours() {
    let t = tie_across_the_rollover(&[key(0xa), key(0xb)]);
    assert_eq!(t.verdict, Verdict::Ours, "{t:#?}");
    assert!(t.explanation.starts_with("Microsoft Corporation saw ours"));
    assert!(t.seen.iter().all(|s| s.ours));
}

#[test]
fn a_record_we_never_published_is_not_ours() {
    let t = tie_across_the_rollover(&[key(0xc)]);
    assert_eq!(t.verdict, Verdict::NotOurs, "{t:#?}");
    assert!(t.explanation.contains("had not published then"));
}

#[test]
fn before_the_rollover_the_old_record_was_ours_and_no_rollover_was_under_way() {
    let j = journal();
    let p = policy(&[key(0xa)], true);
    let t = tie(&j, seen(&p, -3 * 60, -60));
    assert_eq!(t.verdict, Verdict::Ours, "{t:#?}");
    assert!(t.rollover.is_none());
    assert!(t.explanation.contains("no rollover under way"));
    // The new key's record, seen before it was published, was not ours then.
    let p = policy(&[key(0xb)], true);
    assert_eq!(tie(&j, seen(&p, -3 * 60, -60)).verdict, Verdict::NotOurs);
}

#[test]
fn without_an_mx_name_the_records_name_the_service() {
    let j = journal();
    let mut p = policy(&[key(0xa)], false);
    p.policy_domain = "example.test".into();
    let t = tie(&j, seen(&p, -60, 24 * 60));
    assert_eq!(t.service.as_deref(), Some("mx"));
    assert_eq!(
        t.owner.as_ref().map(crate::tlsa::OwnerName::as_str),
        Some(OWNER)
    );
    // A policy that names no record says so.
    let sts = PolicyDetails {
        policy_type: PolicyType::Sts,
        policy_string: vec!["version: STSv1".into()],
        policy_domain: "mail.example.test".into(),
        mx_host: Vec::new(),
    };
    let t = tie(&j, seen(&sts, -60, 24 * 60));
    assert_eq!(t.verdict, Verdict::NotSaid);
    assert_eq!(t.service.as_deref(), Some("mx"));
}

#[test]
fn one_alert_per_report_names_the_first_failures_only() {
    let failures: Vec<serde_json::Value> = (0..30)
        .map(|i| {
            serde_json::json!({"result-type": "tlsa-invalid", "failed-session-count": 1,
                "receiving-mx-hostname": format!("mx{i}.example.test")})
        })
        .collect();
    let report = serde_json::json!({
        "organization-name": "Many", "report-id": "r1",
        "date-range": {"start-datetime": "2026-12-06T00:00:00Z",
                       "end-datetime": "2026-12-06T23:59:59Z"},
        "policies": [{"policy": {"policy-type": "tlsa", "policy-domain": "example.test"},
                      "summary": {"total-successful-session-count": 0,
                                  "total-failure-session-count": 30},
                      "failure-details": failures}]
    });
    let report = super::parse_report(report.to_string().as_bytes(), "test").unwrap();
    let alerts = super::intake::dane_alerts(&journal(), &report, at(0));
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].check, "tlsrpt/many/2026-12-06");
    assert!(
        alerts[0].summary.contains("tlsa-invalid 30"),
        "{}",
        alerts[0].summary
    );
    assert!(
        alerts[0].detail.contains("… and 10 more"),
        "{}",
        alerts[0].detail
    );
    assert!(!alerts[0].detail.contains("mx25.example.test"));
}

#[test]
fn a_window_with_fractions_and_offsets_is_kept_as_read() {
    let report = serde_json::json!({
        "organization-name": "Offset", "report-id": "r1",
        "date-range": {"start-datetime": "2026-12-06T01:00:00.250+01:00",
                       "end-datetime": "2026-12-06T23:59:59.999Z"},
        "policies": []
    });
    let report = super::parse_report(report.to_string().as_bytes(), "test").unwrap();
    assert_eq!(report.begin.to_string(), "2026-12-06T00:00:00.250Z");
    assert_eq!(report.day(), "2026-12-06");
    // Stored and read back: the same window (to the second).
    let again = super::Report::from_stored(&report.to_json(), "stored").unwrap();
    assert_eq!(again.begin.as_secs(), report.begin.as_secs());
    assert_eq!(again.end.as_secs(), report.end.as_secs());
}
