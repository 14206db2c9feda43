use std::time::{Duration, UNIX_EPOCH};

use super::{
    DAY, Validation, cert_expiry, cert_lifetime, mx_secure, parse_rfc3339, resolver, rrsig_expiry,
    tcp_parent, tlsa_anchor, tlsa_match, tlsa_records, tlsa_secure, tlsa_stale, tlsa_ttl, worst,
};
use crate::config::{Endpoint, Protocol};
use crate::dns::{Ede, Lookup, MxHost, Name, Status as DnsStatus, TcpParent, ValidationProbe};
use crate::notify::Severity;
use crate::probe::{AddressReport, CertInfo, KeyAlgorithm, KeyReport, Verdict};
use crate::rollover::KeyHash;
use crate::tlsa::{Matching, Selector, TlsaRecord, Usage};

fn ep() -> Endpoint {
    Endpoint::new("mail.example.com", None, None).unwrap()
}

fn lookup<T>(status: DnsStatus, records: Vec<T>) -> Lookup<T> {
    let name = Name::from_ascii("_25._tcp.mail.example.com.").unwrap();
    Lookup {
        name: name.clone(),
        owner: name.clone(),
        chain: vec![name],
        status,
        records,
        skipped: Vec::new(),
        ttl: Some(3600),
        rrsig_expiry: None,
        ede: Vec::new(),
    }
}

fn record(usage: Usage, byte: u8) -> TlsaRecord {
    TlsaRecord::new(usage, Selector::Spki, Matching::Sha256, vec![byte; 32]).unwrap()
}

fn address(verdict: Verdict, keys: Vec<KeyReport>, unmatched: Vec<TlsaRecord>) -> AddressReport {
    AddressReport {
        host: "mail.example.com".into(),
        address: "192.0.2.1:25".parse().unwrap(),
        protocol: Protocol::Smtp,
        verdict,
        reason: (verdict != Verdict::Pass).then(|| "no TLSA record matched".into()),
        keys,
        attempts: Vec::new(),
        ignored_records: Vec::new(),
        unmatched_records: unmatched,
        elapsed_ms: 1,
    }
}

fn key(matched: Option<TlsaRecord>, not_after: &str) -> KeyReport {
    KeyReport {
        key_type: "EC P-256".into(),
        spki_sha256: "ab".repeat(32),
        algorithms: vec![KeyAlgorithm::Ecdsa],
        matched: matched.is_some(),
        match_depth: matched.as_ref().map(|_| 0),
        matched_record: matched,
        matched_by_public_key: false,
        verify_code: 0,
        reason: None,
        tls_version: "TLSv1.3".into(),
        cipher: "TLS_AES_128_GCM_SHA256".into(),
        chain: vec![CertInfo {
            subject: "CN=mail.example.com".into(),
            issuer: "CN=CA".into(),
            key_type: "EC P-256".into(),
            spki_sha256: "ab".repeat(32),
            not_after: not_after.into(),
            not_before: "2026-01-01T00:00:00Z".into(),
            expired: false,
            self_signed: false,
        }],
        chain_der: Vec::new(),
    }
}

#[test]
fn worst_ranks_critical_over_unknown_over_warning() {
    use Severity::*;
    assert_eq!(worst([Ok, Warning, Unknown]), Unknown);
    assert_eq!(worst([Unknown, Critical, Warning]), Critical);
    assert_eq!(worst([Ok, Warning]), Warning);
    assert_eq!(worst([]), Ok);
}

#[test]
fn tlsa_states_map_to_the_rfc_7672_severities() {
    let secure = Ok(lookup(DnsStatus::Secure, vec![record(Usage::DaneEe, 1)]));
    let (check, problem) = tlsa_secure(&ep(), &secure);
    assert_eq!(check.status, Severity::Ok);
    assert!(problem.is_none());
    assert_eq!(check.id, "tlsa-secure/mail.example.com:25");

    let pkix = Ok(lookup(DnsStatus::Secure, vec![record(Usage::PkixEe, 1)]));
    let (check, problem) = tlsa_secure(&ep(), &pkix);
    assert_eq!(check.status, Severity::Warning);
    assert!(problem.is_some());

    for status in [
        DnsStatus::Insecure,
        DnsStatus::Missing {
            secure: true,
            nxdomain: true,
        },
    ] {
        let (check, _) = tlsa_secure(&ep(), &Ok(lookup(status, Vec::new())));
        assert_eq!(check.status, Severity::Warning);
        assert!(check.message.contains("DANE not in effect for this host"));
    }

    let bogus = DnsStatus::Bogus {
        ede: Some(Ede {
            code: 6,
            text: String::new(),
        }),
    };
    let (check, _) = tlsa_secure(&ep(), &Ok(lookup(bogus, Vec::new())));
    assert_eq!(check.status, Severity::Critical);
    assert!(check.message.contains("defer mail"), "{}", check.message);

    let (check, _) = tlsa_secure(&ep(), &Err("timed out".into()));
    assert_eq!(check.status, Severity::Unknown);
}

#[test]
fn insecure_mx_is_dane_not_in_effect() {
    let mx = MxHost {
        preference: 10,
        host: Name::from_ascii("mail.example.com.").unwrap(),
    };
    let check = mx_secure(
        "example.com",
        &lookup(DnsStatus::Insecure, vec![mx.clone()]),
    );
    assert_eq!(check.status, Severity::Warning);
    assert!(check.message.contains("DANE not in effect for this domain"));
    assert_eq!(check.id, "mx-secure/example.com");
    let check = mx_secure("example.com", &lookup(DnsStatus::Secure, vec![mx]));
    assert_eq!(check.status, Severity::Ok);
    let null = MxHost {
        preference: 0,
        host: Name::root(),
    };
    let check = mx_secure("example.com", &lookup(DnsStatus::Secure, vec![null]));
    assert!(check.message.contains("null MX"), "{}", check.message);
}

#[test]
fn tcp_parent_nxdomain_warns_and_servfail_is_critical() {
    let nx = tcp_parent(&ep(), &Ok(TcpParent::Nxdomain { secure: true }));
    assert_eq!(nx.status, Severity::Warning);
    let bogus = tcp_parent(&ep(), &Ok(TcpParent::Bogus(DnsStatus::Bogus { ede: None })));
    assert_eq!(bogus.status, Severity::Critical);
    let ok = tcp_parent(&ep(), &Ok(TcpParent::Exists(DnsStatus::Secure)));
    assert_eq!(ok.status, Severity::Ok);
}

#[test]
fn record_count_and_duplicates() {
    let records: Vec<TlsaRecord> = (1..=5).map(|b| record(Usage::DaneEe, b)).collect();
    assert_eq!(tlsa_records(&ep(), &records, 4).status, Severity::Warning);
    assert_eq!(tlsa_records(&ep(), &records, 5).status, Severity::Ok);
    let dup = vec![record(Usage::DaneEe, 1), record(Usage::DaneEe, 1)];
    let check = tlsa_records(&ep(), &dup, 4);
    assert_eq!(check.status, Severity::Warning);
    assert!(check.message.contains("more than once"));
}

#[test]
fn stale_records_unless_the_store_knows_the_next_key() {
    let current = record(Usage::DaneEe, 1);
    let next = record(Usage::DaneEe, 2);
    let usable = vec![current.clone(), next.clone()];
    let reports = vec![address(
        Verdict::Pass,
        vec![key(Some(current), "2099-01-01T00:00:00Z")],
        vec![next.clone()],
    )];
    let check = tlsa_stale(&ep(), &usable, &reports, &[]).unwrap();
    assert_eq!(check.status, Severity::Warning);
    let known = KeyHash([2; 32]);
    let check = tlsa_stale(&ep(), &usable, &reports, &[known]).unwrap();
    assert_eq!(check.status, Severity::Ok);
    assert!(check.note.unwrap().contains("pre-published"));
    // Nothing probed: nothing can be called stale.
    assert!(tlsa_stale(&ep(), &usable, &[], &[]).is_none());
}

#[test]
fn rrsig_and_certificate_expiry() {
    let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let at =
        |days: i64| UNIX_EPOCH + Duration::from_secs((1_800_000_000 + days * DAY as i64) as u64);
    assert_eq!(rrsig_expiry(&ep(), at(10), 5, now).status, Severity::Ok);
    assert_eq!(rrsig_expiry(&ep(), at(3), 5, now).status, Severity::Warning);
    assert_eq!(
        rrsig_expiry(&ep(), now + Duration::from_secs(3600), 5, now).status,
        Severity::Critical
    );
    assert_eq!(
        rrsig_expiry(&ep(), at(-1), 5, now).status,
        Severity::Critical
    );

    let expired = "2020-01-01T00:00:00Z";
    let ee = address(
        Verdict::Pass,
        vec![key(Some(record(Usage::DaneEe, 1)), expired)],
        Vec::new(),
    );
    let check = cert_expiry(&ep(), &ee, 14, now).unwrap();
    assert_eq!(check.status, Severity::Warning, "DANE-EE: a warning only");
    assert!(check.message.contains("DANE-EE still matches"));
    let ta = address(
        Verdict::Pass,
        vec![key(Some(record(Usage::DaneTa, 1)), expired)],
        Vec::new(),
    );
    assert_eq!(
        cert_expiry(&ep(), &ta, 14, now).unwrap().status,
        Severity::Critical
    );
    let fine = address(
        Verdict::Pass,
        vec![key(Some(record(Usage::DaneEe, 1)), "2099-01-01T00:00:00Z")],
        Vec::new(),
    );
    assert_eq!(
        cert_expiry(&ep(), &fine, 14, now).unwrap().status,
        Severity::Ok
    );
}

#[test]
fn rfc3339_parses_back() {
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
    assert_eq!(parse_rfc3339("2024-02-29T23:59:59Z"), Some(1_709_251_199));
    assert_eq!(parse_rfc3339("2100-01-01T00:00:00Z"), Some(4_102_444_800));
    assert_eq!(parse_rfc3339("Jan 1 2020"), None);
}

#[test]
fn ttl_outside_the_advised_range_is_a_note() {
    let check = tlsa_ttl(&ep(), 300);
    assert_eq!(check.status, Severity::Ok);
    assert!(check.note.is_some());
    assert!(tlsa_ttl(&ep(), 3600).note.is_none());
}

#[test]
fn match_check_follows_the_probe_verdict() {
    let pass = address(
        Verdict::Pass,
        vec![key(Some(record(Usage::DaneEe, 1)), "2099-01-01T00:00:00Z")],
        Vec::new(),
    );
    let check = tlsa_match(&ep(), &pass);
    assert_eq!(check.status, Severity::Ok);
    assert_eq!(check.id, "tlsa-match/mail.example.com:25/192.0.2.1");
    let fail = address(
        Verdict::Fail,
        vec![key(None, "2099-01-01T00:00:00Z")],
        Vec::new(),
    );
    let check = tlsa_match(&ep(), &fail);
    assert_eq!(check.status, Severity::Critical);
    assert!(
        check
            .message
            .starts_with("no TLSA record matches the certificate on 192.0.2.1")
    );
    let unknown = address(Verdict::Unknown, Vec::new(), Vec::new());
    assert_eq!(tlsa_match(&ep(), &unknown).status, Severity::Unknown);
}

#[test]
fn a_resolver_that_does_not_validate_makes_the_run_unknown() {
    let (check, v) = resolver("192.0.2.53:53", &[Ok(ValidationProbe::NotRecursive)]);
    assert_eq!(check.status, Severity::Unknown);
    assert!(matches!(v, Validation::Unusable(_)));
    let (_, v) = resolver(
        "192.0.2.53:53",
        &[
            Ok(ValidationProbe::NoDnssec),
            Ok(ValidationProbe::Validating),
        ],
    );
    assert_eq!(v, Validation::Validating);
    let (check, v) = resolver("192.0.2.53:53", &[Ok(ValidationProbe::NoDnssec)]);
    assert_eq!(v, Validation::Undetermined);
    assert_eq!(check.status, Severity::Ok);
    let (_, v) = resolver("192.0.2.53:53", &[Err("timed out".into())]);
    assert!(matches!(v, Validation::Unusable(_)));
}

#[test]
fn a_protocol_failure_is_not_called_a_tlsa_mismatch() {
    // STARTTLS refused: no key was ever seen, so nothing was compared with the records.
    let mut failed = address(Verdict::Fail, Vec::new(), Vec::new());
    failed.reason = Some("the server does not offer STARTTLS".into());
    let check = tlsa_match(&ep(), &failed);
    assert_eq!(check.status, Severity::Critical);
    assert!(
        !check.message.contains("TLSA record matches"),
        "{}",
        check.message
    );
    assert!(
        check.message.contains("the server does not offer STARTTLS"),
        "{}",
        check.message
    );
    assert!(check.message.contains("192.0.2.1"), "{}", check.message);
}

/// A chain as served: the leaf (valid `days` days), then CA certificates `(subject, key byte,
/// self-signed)`.
fn chained(matched: Option<(TlsaRecord, u32)>, days: i64, cas: &[(&str, u8, bool)]) -> KeyReport {
    let from = 1_780_000_000_i64;
    let mut k = key(None, &crate::rfc3339::format_secs(from + days * DAY as i64));
    k.chain[0].not_before = crate::rfc3339::format_secs(from);
    if let Some((record, depth)) = matched {
        k.matched = true;
        k.matched_record = Some(record);
        k.match_depth = Some(depth);
    }
    for (subject, byte, self_signed) in cas {
        k.chain.push(CertInfo {
            subject: format!("CN={subject}"),
            issuer: "CN=Root".into(),
            key_type: "EC P-256".into(),
            spki_sha256: hex::encode([*byte; 32]),
            not_after: "2036-01-01T00:00:00Z".into(),
            not_before: "2026-01-01T00:00:00Z".into(),
            expired: false,
            self_signed: *self_signed,
        });
    }
    k
}

/// A passing address serving a 90-day leaf, the intermediate CN=E5 (key byte 7) and the
/// self-signed root CN=Root (key byte 8), `matched` at chain depth `depth`.
fn served_with_e5_and_root(matched: &TlsaRecord, depth: u32) -> AddressReport {
    address(
        Verdict::Pass,
        vec![chained(
            Some((matched.clone(), depth)),
            90,
            &[("E5", 7, false), ("Root", 8, true)],
        )],
        Vec::new(),
    )
}

#[test]
fn a_dane_ta_record_pinning_an_intermediate_is_a_warning_that_says_why() {
    let ta = record(Usage::DaneTa, 7);
    let served = served_with_e5_and_root(&ta, 1);
    let check = tlsa_anchor(&ep(), &[ta], &[served]).expect("a check");
    assert_eq!(check.status, Severity::Warning, "{check:?}");
    assert_eq!(check.kind.as_str(), "tlsa-anchor");
    assert!(
        check.message.contains("intermediate CN=E5"),
        "{}",
        check.message
    );
    assert!(check.message.contains("rotate"), "{}", check.message);
    assert!(check.message.contains("current+next"), "{}", check.message);
    assert!(
        check.message.contains("defer"),
        "no 3 1 1 matched: {}",
        check.message
    );
}

#[test]
fn a_dane_ta_record_pinning_a_root_is_a_note_and_none_is_no_check() {
    let ta = record(Usage::DaneTa, 8);
    let ee = record(Usage::DaneEe, 0xab);
    let served = served_with_e5_and_root(&ee, 0);
    let check =
        tlsa_anchor(&ep(), &[ee.clone(), ta], std::slice::from_ref(&served)).expect("a check");
    assert_eq!(check.status, Severity::Ok, "{check:?}");
    assert!(
        check.note.as_deref().unwrap_or("").contains("root CN=Root"),
        "{check:?}"
    );
    assert!(
        tlsa_anchor(&ep(), &[ee], &[served]).is_none(),
        "no DANE-TA record"
    );
}

#[test]
fn a_short_lived_certificate_without_a_next_key_is_a_warning() {
    let ee = record(Usage::DaneEe, 0xab);
    let next = record(Usage::DaneEe, 0xcd);
    let six_days = address(
        Verdict::Pass,
        vec![chained(Some((ee.clone(), 0)), 6, &[("E5", 7, false)])],
        Vec::new(),
    );
    let check =
        cert_lifetime(&ep(), &six_days, std::slice::from_ref(&ee), &[], 3600).expect("a check");
    assert_eq!(check.status, Severity::Warning, "{check:?}");
    assert!(check.message.contains("6.0 days"), "{}", check.message);
    assert!(check.message.contains("current+next"), "{}", check.message);
    // A next key published ahead (known to the store): said, not warned.
    let with_next = address(
        Verdict::Pass,
        vec![chained(Some((ee.clone(), 0)), 6, &[("E5", 7, false)])],
        vec![next.clone()],
    );
    let both = [ee.clone(), next];
    let known = [KeyHash([0xcd; 32])];
    let check = cert_lifetime(&ep(), &with_next, &both, &known, 3600).expect("a check");
    assert_eq!(check.status, Severity::Ok, "{check:?}");
    // A record that matches nothing and no known key is stale, not a next key.
    let check = cert_lifetime(&ep(), &with_next, &both, &[], 3600).expect("a check");
    assert_eq!(check.status, Severity::Warning, "{check:?}");
    // 90 days, TTL 1 h: nothing to say.
    let long = address(
        Verdict::Pass,
        vec![chained(Some((ee.clone(), 0)), 90, &[("E5", 7, false)])],
        Vec::new(),
    );
    assert!(cert_lifetime(&ep(), &long, std::slice::from_ref(&ee), &[], 3600).is_none());
    // 90 days, TTL 5 days: the wait is 11 % of the lifetime.
    let check = cert_lifetime(&ep(), &long, &[ee], &[], 5 * 86_400).expect("a check");
    assert_eq!(check.status, Severity::Warning, "{check:?}");
}
