//! Unit tests of the pure parts: classifying answers, EDE, RRSIG times, alias chains, the
//! authoritative answers, the report's verdicts. No network.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::dnssec::Algorithm;
use hickory_proto::dnssec::rdata::{DNSSECRData, RRSIG, SigInput};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::rdata::{A, CNAME, SOA, TLSA};
use hickory_proto::rr::{Name, RData, Record, RecordType, SerialNumber};

use super::authority::{
    AuthorityReport, NOT_WAITED_FOR, Served, ServerFailure, ServerReport, classify_served,
    soa_owner_above,
};
use super::resolve::{TcpParent, ValidationProbe, classify_at, merge_addresses, rrsig_time};
use super::wire::{build_query, check_answer};
use super::{Ede, Status, parse_name};
use crate::tlsa::TlsaRecord;

fn n(s: &str) -> Name {
    parse_name(s).unwrap()
}

fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_750_000_000)
}

fn response(qname: &str, qtype: RecordType, rcode: ResponseCode, ad: bool) -> Message {
    let mut m = Message::new(7, MessageType::Response, OpCode::Query);
    m.queries.push(Query::query(n(qname), qtype));
    m.metadata.response_code = rcode;
    m.metadata.authentic_data = ad;
    m.metadata.recursion_available = true;
    m
}

fn tlsa_rdata(byte: u8) -> RData {
    RData::TLSA(TLSA::new(3.into(), 1.into(), 1.into(), vec![byte; 32]))
}

fn tlsa_record(byte: u8) -> TlsaRecord {
    TlsaRecord::from_str(&format!("3 1 1 {}", hex::encode([byte; 32]))).unwrap()
}

fn rec(name: &str, ttl: u32, data: RData) -> Record {
    Record::from_rdata(n(name), ttl, data)
}

fn rrsig(name: &str, covered: RecordType, expiration: u32) -> Record {
    let input = SigInput {
        type_covered: covered,
        algorithm: Algorithm::ECDSAP256SHA256,
        num_labels: 4,
        original_ttl: 300,
        sig_expiration: SerialNumber::new(expiration),
        sig_inception: SerialNumber::new(expiration - 86_400),
        key_tag: 1,
        signer_name: n("example.test"),
    };
    rec(
        name,
        300,
        RData::DNSSEC(DNSSECRData::RRSIG(RRSIG::from_sig(input, vec![0; 64]))),
    )
}

fn soa(zone: &str, serial: u32) -> Record {
    rec(
        zone,
        60,
        RData::SOA(SOA::new(
            n(&format!("ns1.{zone}")),
            n(&format!("hostmaster.{zone}")),
            serial,
            60,
            10,
            3600,
            5,
        )),
    )
}

fn ede_option(code: u16, text: &str) -> Edns {
    let mut data = code.to_be_bytes().to_vec();
    data.extend_from_slice(text.as_bytes());
    let mut edns = Edns::new();
    edns.options_mut().insert(EdnsOption::Unknown(15, data));
    edns
}

const OWNER: &str = "_25._tcp.mail.example.test";

#[test]
fn query_sets_do_ad_and_rd_for_a_resolver_and_clears_rd_for_a_nameserver() {
    let q = build_query(&n(OWNER), RecordType::TLSA, true);
    assert!(q.metadata.recursion_desired && q.metadata.authentic_data);
    assert!(!q.metadata.checking_disabled);
    assert!(q.edns.as_ref().unwrap().flags().dnssec_ok);
    let q = build_query(&n(OWNER), RecordType::TLSA, false);
    assert!(!q.metadata.recursion_desired);
    assert!(q.edns.as_ref().unwrap().flags().dnssec_ok);
    // Round trip through the wire format keeps the bits.
    let back = Message::from_vec(&q.to_vec().unwrap()).unwrap();
    assert!(back.edns.unwrap().flags().dnssec_ok);
}

#[test]
fn answer_to_another_question_is_refused() {
    let q = build_query(&n(OWNER), RecordType::TLSA, true);
    let good = response(OWNER, RecordType::TLSA, ResponseCode::NoError, true);
    assert!(check_answer(&q, &good).is_ok());
    let other = response(
        "mail.example.test",
        RecordType::TLSA,
        ResponseCode::NoError,
        true,
    );
    assert!(check_answer(&q, &other).is_err());
    let other_type = response(OWNER, RecordType::A, ResponseCode::NoError, true);
    assert!(check_answer(&q, &other_type).is_err());
    let mut not_response = good.clone();
    not_response.metadata.message_type = MessageType::Query;
    assert!(check_answer(&q, &not_response).is_err());
}

#[test]
fn secure_answer_with_ttl_and_rrsig_expiry() {
    let mut m = response(OWNER, RecordType::TLSA, ResponseCode::NoError, true);
    let exp = 1_750_100_000u32;
    m.answers.push(rec(OWNER, 300, tlsa_rdata(0xab)));
    m.answers.push(rec(OWNER, 120, tlsa_rdata(0xcd)));
    m.answers.push(rrsig(OWNER, RecordType::TLSA, exp));
    m.answers.push(rrsig(OWNER, RecordType::A, exp - 5000)); // covers something else
    let l = classify_at(&m, &n(OWNER), RecordType::TLSA, now());
    assert_eq!(l.status, Status::Secure);
    assert_eq!(l.records.len(), 2);
    assert_eq!(l.ttl, Some(120));
    assert_eq!(
        l.rrsig_expiry,
        Some(UNIX_EPOCH + Duration::from_secs(u64::from(exp)))
    );
    assert_eq!(l.chain, vec![n(OWNER)]);
    assert!(l.is_secure() && !l.is_alias());
}

#[test]
fn no_ad_is_insecure() {
    let mut m = response(OWNER, RecordType::TLSA, ResponseCode::NoError, false);
    m.answers.push(rec(OWNER, 300, tlsa_rdata(0xab)));
    let l = classify_at(&m, &n(OWNER), RecordType::TLSA, now());
    assert_eq!(l.status, Status::Insecure);
    assert!(!l.is_secure());
    assert_eq!(l.rrsig_expiry, None);
}

#[test]
fn servfail_is_bogus_with_its_ede() {
    let mut m = response(OWNER, RecordType::TLSA, ResponseCode::ServFail, false);
    m.edns = Some(ede_option(
        6,
        "validation failure <_25._tcp.mail.example.test. TLSA IN>",
    ));
    let l = classify_at(&m, &n(OWNER), RecordType::TLSA, now());
    let Status::Bogus { ede: Some(ede) } = &l.status else {
        panic!("{:?}", l.status)
    };
    assert_eq!(ede.code, 6);
    assert!(ede.text.contains("validation failure"));
    assert!(ede.to_string().starts_with("EDE 6 DNSSEC Bogus: "), "{ede}");
    assert!(l.status.is_bogus() && !l.is_secure());
    let mut plain = response(OWNER, RecordType::TLSA, ResponseCode::ServFail, false);
    plain.edns = Some(Edns::new());
    assert_eq!(
        classify_at(&plain, &n(OWNER), RecordType::TLSA, now()).status,
        Status::Bogus { ede: None }
    );
}

#[test]
fn ede_with_short_data_is_ignored_not_a_panic() {
    let mut m = response(OWNER, RecordType::TLSA, ResponseCode::ServFail, false);
    let mut edns = Edns::new();
    edns.options_mut().insert(EdnsOption::Unknown(15, vec![1]));
    m.edns = Some(edns);
    assert_eq!(
        classify_at(&m, &n(OWNER), RecordType::TLSA, now()).status,
        Status::Bogus { ede: None }
    );
    let _ = EdnsCode::from(15);
}

#[test]
fn nodata_and_nxdomain_are_missing_with_negative_ttl() {
    for (code, secure, nxdomain) in [
        (ResponseCode::NoError, true, false),
        (ResponseCode::NXDomain, false, true),
    ] {
        let mut m = response(OWNER, RecordType::TLSA, code, secure);
        m.authorities.push(soa("example.test", 5));
        let l = classify_at(&m, &n(OWNER), RecordType::TLSA, now());
        assert_eq!(l.status, Status::Missing { secure, nxdomain });
        assert_eq!(l.ttl, Some(5), "min(SOA TTL 60, MINIMUM 5)");
    }
}

#[test]
fn cname_chain_is_followed_to_the_final_owner() {
    let alias = "_25._tcp.alias.example.test";
    let target = "_25._tcp.mail.insecure.test";
    let mut m = response(alias, RecordType::TLSA, ResponseCode::NoError, false);
    m.answers
        .push(rec(alias, 300, RData::CNAME(CNAME(n(target)))));
    m.answers
        .push(rrsig(alias, RecordType::CNAME, 1_750_100_000));
    m.answers.push(rec(target, 60, tlsa_rdata(0x66)));
    let l = classify_at(&m, &n(alias), RecordType::TLSA, now());
    assert_eq!(l.owner, n(target));
    assert_eq!(l.chain, vec![n(alias), n(target)]);
    assert!(l.is_alias());
    assert_eq!(l.records.len(), 1);
    assert_eq!(l.status, Status::Insecure, "no AD: the chain is not secure");
    assert_eq!(l.rrsig_expiry, None, "the CNAME's RRSIG is not the TLSA's");
}

#[test]
fn cname_loop_in_an_answer_stops() {
    let (a, b) = ("a.example.test", "b.example.test");
    let mut m = response(a, RecordType::TLSA, ResponseCode::NoError, true);
    m.answers.push(rec(a, 300, RData::CNAME(CNAME(n(b)))));
    m.answers.push(rec(b, 300, RData::CNAME(CNAME(n(a)))));
    let l = classify_at(&m, &n(a), RecordType::TLSA, now());
    assert_eq!(l.chain.len(), 2);
    assert!(l.records.is_empty());
}

#[test]
fn downgrade_makes_secure_insecure() {
    assert_eq!(Status::Secure.downgraded(false), Status::Insecure);
    assert_eq!(Status::Secure.downgraded(true), Status::Secure);
    assert_eq!(
        Status::Missing {
            secure: true,
            nxdomain: true
        }
        .downgraded(false),
        Status::Missing {
            secure: false,
            nxdomain: true
        }
    );
}

#[test]
fn rrsig_times_wrap_around_2106() {
    let t = rrsig_time(1_750_100_000, now());
    assert_eq!(t, UNIX_EPOCH + Duration::from_secs(1_750_100_000));
    // Just after the 2³² wrap, a small field value is in the future, not 1970.
    let after_wrap = UNIX_EPOCH + Duration::from_secs((1u64 << 32) + 100);
    assert_eq!(
        rrsig_time(5000, after_wrap),
        UNIX_EPOCH + Duration::from_secs((1u64 << 32) + 5000)
    );
    // Just before the wrap, a large value stays before it.
    let before_wrap = UNIX_EPOCH + Duration::from_secs((1u64 << 32) - 100);
    assert_eq!(
        rrsig_time(u32::MAX - 10, before_wrap),
        UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX - 10))
    );
}

#[test]
fn tcp_parent_nxdomain_is_the_pitfall() {
    let nx = TcpParent::from_status(&Status::Missing {
        secure: true,
        nxdomain: true,
    });
    assert_eq!(nx, TcpParent::Nxdomain { secure: true });
    assert!(nx.is_problem());
    assert!(nx.to_string().contains("QNAME-minimising"));
    let ok = TcpParent::from_status(&Status::Missing {
        secure: true,
        nxdomain: false,
    });
    assert!(!ok.is_problem());
    assert!(TcpParent::from_status(&Status::Bogus { ede: None }).is_problem());
}

#[test]
fn validation_probe_tells_a_validating_resolver_from_others() {
    let mut m = response("example.test", RecordType::SOA, ResponseCode::NoError, true);
    m.answers.push(soa("example.test", 1));
    assert_eq!(
        ValidationProbe::from_answer(&m),
        ValidationProbe::Validating
    );

    m.metadata.authentic_data = false;
    m.answers
        .push(rrsig("example.test", RecordType::SOA, 1_750_100_000));
    assert_eq!(
        ValidationProbe::from_answer(&m),
        ValidationProbe::NoAdOnSignedData
    );
    m.metadata.recursion_available = false;
    let p = ValidationProbe::from_answer(&m);
    assert_eq!(p, ValidationProbe::NotRecursive);
    assert!(!p.is_validating());

    let mut stripped = response(
        "example.test",
        RecordType::SOA,
        ResponseCode::NoError,
        false,
    );
    stripped.answers.push(soa("example.test", 1));
    assert_eq!(
        ValidationProbe::from_answer(&stripped),
        ValidationProbe::NoDnssec
    );
}

#[test]
fn addresses_merge_a_and_aaaa() {
    const HOST: &str = "mail.example.test";
    let mut a = response(HOST, RecordType::A, ResponseCode::NoError, true);
    a.answers
        .push(rec(HOST, 60, RData::A(A(Ipv4Addr::new(192, 0, 2, 1)))));
    let mut aaaa = response(HOST, RecordType::AAAA, ResponseCode::NoError, true);
    aaaa.authorities.push(soa("example.test", 1));
    let name = n(HOST);
    let merged = |a: &Message, aaaa: &Message| {
        merge_addresses(
            classify_at(a, &name, RecordType::A, now()),
            classify_at(aaaa, &name, RecordType::AAAA, now()),
        )
    };
    let l = merged(&a, &aaaa);
    assert_eq!(l.status, Status::Secure);
    assert_eq!(
        l.records,
        vec![std::net::IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1))]
    );
    assert_eq!(l.ttl, Some(60));

    // An insecure AAAA denial makes the whole set insecure; a SERVFAIL makes it bogus.
    aaaa.metadata.authentic_data = false;
    assert_eq!(merged(&a, &aaaa).status, Status::Insecure);
    aaaa.metadata.response_code = ResponseCode::ServFail;
    assert!(merged(&a, &aaaa).status.is_bogus());
}

fn auth(qname: &str, qtype: RecordType, rcode: ResponseCode) -> Message {
    let mut m = response(qname, qtype, rcode, false);
    m.metadata.authoritative = true;
    m.metadata.recursion_available = false;
    m
}

#[test]
fn nameserver_answers_are_classified() {
    let zone = n("example.test");
    let owner = n(OWNER);
    let mut soa_answer = auth("example.test", RecordType::SOA, ResponseCode::NoError);
    soa_answer.answers.push(soa("example.test", 42));
    let mut tlsa = auth(OWNER, RecordType::TLSA, ResponseCode::NoError);
    tlsa.answers.push(rec(OWNER, 300, tlsa_rdata(0x11)));
    tlsa.answers.push(rec(
        OWNER,
        300,
        RData::TLSA(TLSA::new(9.into(), 1.into(), 1.into(), vec![1; 32])),
    ));
    tlsa.answers
        .push(rrsig(OWNER, RecordType::TLSA, 1_750_100_000));
    let s = classify_served(&tlsa, &soa_answer, &owner, &zone).unwrap();
    assert_eq!(s.serial, 42);
    assert_eq!(s.records, vec![tlsa_record(0x11)]);
    assert_eq!(s.skipped.len(), 1, "usage 9 is skipped, not a panic");
    assert!(s.signed && !s.nxdomain);

    // Not authoritative.
    let mut no_aa = tlsa.clone();
    no_aa.metadata.authoritative = false;
    assert!(matches!(
        classify_served(&no_aa, &soa_answer, &owner, &zone),
        Err(ServerFailure::NotAuthoritative { .. })
    ));
    // REFUSED and SERVFAIL.
    let refused = auth(OWNER, RecordType::TLSA, ResponseCode::Refused);
    let e = classify_served(&refused, &soa_answer, &owner, &zone).unwrap_err();
    assert!(e.is_refused(), "{e}");
    let servfail = auth("example.test", RecordType::SOA, ResponseCode::ServFail);
    let e = classify_served(&tlsa, &servfail, &owner, &zone).unwrap_err();
    assert!(
        matches!(&e, ServerFailure::Rcode { rcode, .. } if rcode == "SERVFAIL"),
        "{e}"
    );
    assert!(!e.is_refused());
    // No SOA.
    let empty_soa = auth("example.test", RecordType::SOA, ResponseCode::NoError);
    assert!(matches!(
        classify_served(&tlsa, &empty_soa, &owner, &zone),
        Err(ServerFailure::NoSerial { .. })
    ));
    // Signed NXDOMAIN.
    let mut nx = auth(OWNER, RecordType::TLSA, ResponseCode::NXDomain);
    nx.authorities.push(soa("example.test", 42));
    nx.authorities
        .push(rrsig("example.test", RecordType::SOA, 1_750_100_000));
    let s = classify_served(&nx, &soa_answer, &owner, &zone).unwrap();
    assert!(s.nxdomain && s.signed && s.records.is_empty());
}

#[test]
fn zone_cut_from_soa_in_answer_or_authority() {
    let owner = n(OWNER);
    let mut m = response(OWNER, RecordType::SOA, ResponseCode::NoError, true);
    m.authorities.push(soa("example.test", 1));
    assert_eq!(soa_owner_above(&m, &owner), Some(n("example.test")));
    let mut apex = response("example.test", RecordType::SOA, ResponseCode::NoError, true);
    apex.answers.push(soa("example.test", 1));
    assert_eq!(
        soa_owner_above(&apex, &n("example.test")),
        Some(n("example.test"))
    );
    // An SOA of another zone (after a CNAME) is not the owner's zone.
    let mut elsewhere = response(OWNER, RecordType::SOA, ResponseCode::NoError, true);
    elsewhere.authorities.push(soa("insecure.test", 1));
    assert_eq!(soa_owner_above(&elsewhere, &owner), None);
}

fn served(serial: u32, records: &[u8], signed: bool) -> Result<Served, ServerFailure> {
    Ok(Served {
        serial,
        records: records.iter().map(|b| tlsa_record(*b)).collect(),
        ttl: (!records.is_empty()).then_some(300),
        signed,
        nxdomain: false,
        alias: None,
        skipped: Vec::new(),
    })
}

fn report(results: Vec<Result<Served, ServerFailure>>, expected: &[u8]) -> AuthorityReport {
    AuthorityReport {
        owner: n(OWNER),
        zone: n("example.test"),
        expected: expected.iter().map(|b| tlsa_record(*b)).collect(),
        servers: results
            .into_iter()
            .enumerate()
            .map(|(i, result)| ServerReport {
                nameserver: n(&format!("ns{}.example.test", i + 1)),
                address: Some(Ipv4Addr::new(192, 0, 2, i as u8 + 1).into()),
                result,
            })
            .collect(),
    }
}

#[test]
fn report_verdicts() {
    let r = report(
        vec![served(3, &[1, 2], true), served(3, &[1, 2], true)],
        &[2],
    );
    assert!(r.all_serve());
    assert!(r.lagging().is_empty() && r.failed().is_empty());

    let r = report(vec![served(3, &[1, 2], true), served(2, &[1], true)], &[2]);
    assert!(!r.all_serve());
    let lag = r.lagging();
    assert_eq!(lag.len(), 1);
    assert_eq!(lag[0].serial(), Some(2));
    assert_eq!(r.newest_serial(), Some(3));
    assert_eq!(r.missing_at(lag[0]), vec![&tlsa_record(2)]);
    assert!(
        r.to_string().contains("NOT served by every nameserver"),
        "{r}"
    );

    // Unsigned where the zone is signed: lagging too.
    let r = report(vec![served(3, &[2], true), served(3, &[2], false)], &[2]);
    assert!(!r.all_serve() && r.lagging().len() == 1);
    // Unsigned zone: fine.
    let r = report(vec![served(3, &[2], false), served(3, &[2], false)], &[2]);
    assert!(r.all_serve());

    let r = report(
        vec![served(3, &[2], true), Err(ServerFailure::ConnectionRefused)],
        &[2],
    );
    assert!(!r.all_serve());
    assert_eq!(r.failed().len(), 1);
    assert!(
        r.failed()[0]
            .to_string()
            .contains("refused the TCP connection"),
        "{}",
        r.failed()[0]
    );
    // No servers at all is never "all serve".
    assert!(!report(vec![], &[2]).all_serve());
    let _ = Ede {
        code: 0,
        text: String::new(),
    };
}

/// Issue 17: an address this host has no route to (an IPv6 address on an IPv4-only host) does
/// not hold the gate while the same nameserver answered at another address; a nameserver none
/// of whose addresses answered still does.
#[test]
fn an_address_without_a_route_is_not_checkable_and_waits_only_when_it_is_the_only_one() {
    let unreachable = || Err(ServerFailure::Unreachable("Network is unreachable".into()));
    let at = |ns: &str, last: u16, result| ServerReport {
        nameserver: n(ns),
        address: Some(IpAddr::V6(std::net::Ipv6Addr::new(
            0xfd00, 0x53, 0, 0, 0, 0, 0, last,
        ))),
        result,
    };
    let mut r = report(vec![served(3, &[2], true), served(3, &[2], true)], &[2]);
    r.servers.push(at("ns2.example.test", 2, unreachable()));
    assert!(r.not_checkable(&r.servers[2]), "{r}");
    assert!(r.all_serve() && r.serves_everywhere(&tlsa_record(2)), "{r}");
    assert!(r.failed().is_empty() && r.unchecked().len() == 1, "{r}");
    assert!(r.to_string().contains("is not checkable from here"), "{r}");
    assert!(r.to_string().contains(NOT_WAITED_FOR), "{r}");

    // Another failure of an address (a timeout) still holds: only "no route" is not checkable.
    r.servers[2].result = Err(ServerFailure::Timeout(Duration::from_secs(1)));
    assert!(!r.all_serve() && r.failed().len() == 1, "{r}");

    // A nameserver whose only address has no route holds the gate: a nameserver down.
    let mut r = report(vec![served(3, &[2], true)], &[2]);
    r.servers.push(at("ns3.example.test", 3, unreachable()));
    assert!(!r.not_checkable(&r.servers[1]));
    assert!(
        !r.all_serve() && !r.serves_everywhere(&tlsa_record(2)),
        "{r}"
    );
    assert_eq!(r.failed().len(), 1, "{r}");

    // The answering address lags: the gate waits for it, whatever the other address.
    let mut r = report(vec![served(3, &[2], true), served(2, &[1], true)], &[2]);
    r.servers.push(at("ns2.example.test", 2, unreachable()));
    assert!(!r.all_serve() && r.lagging().len() == 1, "{r}");
}
