//! Reading a resolver's answer: its status, TTL and RRSIG expiry ([`classify`]), the alias
//! chain that led to the data, its Extended DNS Errors, TLSA data in our type, and A with AAAA
//! merged into one lookup.

use std::net::IpAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::Lookup;
use crate::dns::{Ede, MAX_CNAME_HOPS, Status};
use crate::tlsa::{Matching, Selector, TlsaRecord, Usage};

/// The EDNS option code of Extended DNS Errors (RFC 8914).
const EDE_OPTION: u16 = 15;

/// Whether an answer ends at a CNAME target without data or a denial for it.
pub(super) fn chain_incomplete(
    answer: &Message,
    lookup: &Lookup<RData>,
    rtype: RecordType,
) -> bool {
    rtype != RecordType::CNAME
        && lookup.is_alias()
        && lookup.records.is_empty()
        && answer.metadata.response_code == ResponseCode::NoError
        && !has_soa(answer)
}

fn has_soa(answer: &Message) -> bool {
    answer
        .authorities
        .iter()
        .any(|r| r.record_type() == RecordType::SOA)
}

/// Convert hickory's TLSA data into ours; the reason as text when it cannot be.
pub(crate) fn tlsa_from_rdata(t: &hickory_proto::rr::rdata::TLSA) -> Result<TlsaRecord, String> {
    let (u, s, m) = (
        u8::from(t.cert_usage),
        u8::from(t.selector),
        u8::from(t.matching),
    );
    let text = || format!("{u} {s} {m} {}", hex::encode(&t.cert_data));
    let usage = Usage::try_from(u).map_err(|e| format!("{}: {e}", text()))?;
    let selector = Selector::try_from(s).map_err(|e| format!("{}: {e}", text()))?;
    let matching = Matching::try_from(m).map_err(|e| format!("{}: {e}", text()))?;
    TlsaRecord::new(usage, selector, matching, t.cert_data.clone())
        .map_err(|e| format!("{}: {e}", text()))
}

/// The Extended DNS Errors of an answer.
pub(crate) fn edes(answer: &Message) -> Vec<Ede> {
    let Some(edns) = &answer.edns else {
        return Vec::new();
    };
    edns.options()
        .get_all(EdnsCode::from(EDE_OPTION))
        .into_iter()
        .filter_map(|opt| match opt {
            EdnsOption::Unknown(EDE_OPTION, data) if data.len() >= 2 => Some(Ede {
                code: u16::from_be_bytes([data[0], data[1]]),
                text: String::from_utf8_lossy(&data[2..])
                    .trim_end_matches('\0')
                    .to_string(),
            }),
            _ => None,
        })
        .collect()
}

/// Follow the CNAMEs in `records` from `name`; the chain of names (first = `name`).
fn follow_chain(records: &[Record], name: &Name, rtype: RecordType) -> Vec<Name> {
    let mut chain = vec![name.clone()];
    if rtype == RecordType::CNAME {
        return chain;
    }
    let mut current = name.clone();
    for _ in 0..MAX_CNAME_HOPS {
        if records
            .iter()
            .any(|r| r.name == current && r.record_type() == rtype)
        {
            break;
        }
        let next = records.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name == current => Some(target.0.clone()),
            _ => None,
        });
        match next {
            Some(target) if !chain.contains(&target) => {
                chain.push(target.clone());
                current = target;
            }
            _ => break,
        }
    }
    chain
}

/// The expiry of the RRSIGs over `owner`/`rtype` in `records` (the earliest), as a time.
fn rrsig_expiry(
    records: &[Record],
    owner: &Name,
    rtype: RecordType,
    now: SystemTime,
) -> Option<SystemTime> {
    records
        .iter()
        .filter(|r| r.name == *owner)
        .filter_map(|r| match &r.data {
            RData::DNSSEC(hickory_proto::dnssec::rdata::DNSSECRData::RRSIG(sig))
                if sig.input().type_covered == rtype =>
            {
                Some(rrsig_time(sig.input().sig_expiration.get(), now))
            }
            _ => None,
        })
        .min()
}

/// An RRSIG time field (seconds modulo 2³², RFC 4034 §3.1.5) as the absolute time closest to
/// `now`.
pub fn rrsig_time(field: u32, now: SystemTime) -> SystemTime {
    const WRAP: i128 = 1 << 32;
    let now_secs = match now.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::from(d.as_secs()),
        Err(e) => -i128::from(e.duration().as_secs()),
    };
    let base = now_secs - now_secs.rem_euclid(WRAP) + i128::from(field);
    let best = [base - WRAP, base, base + WRAP]
        .into_iter()
        .min_by_key(|t| (t - now_secs).abs())
        .unwrap_or(base);
    if best >= 0 {
        UNIX_EPOCH + Duration::from_secs(u64::try_from(best).unwrap_or(0))
    } else {
        UNIX_EPOCH - Duration::from_secs(u64::try_from(-best).unwrap_or(0))
    }
}

/// Classify the resolver's answer to `name`/`rtype` (rcode NOERROR, NXDOMAIN or SERVFAIL).
pub fn classify(answer: &Message, name: &Name, rtype: RecordType) -> Lookup<RData> {
    classify_at(answer, name, rtype, SystemTime::now())
}

pub(crate) fn classify_at(
    answer: &Message,
    name: &Name,
    rtype: RecordType,
    now: SystemTime,
) -> Lookup<RData> {
    let ede = edes(answer);
    let ad = answer.metadata.authentic_data;
    let chain = follow_chain(&answer.answers, name, rtype);
    let owner = chain.last().cloned().unwrap_or_else(|| name.clone());
    let matching: Vec<&Record> = answer
        .answers
        .iter()
        .filter(|r| r.name == owner && r.record_type() == rtype)
        .collect();
    let records: Vec<RData> = matching.iter().map(|r| r.data.clone()).collect();
    let status = match answer.metadata.response_code {
        ResponseCode::ServFail => Status::Bogus {
            ede: ede.first().cloned(),
        },
        ResponseCode::NXDomain => Status::Missing {
            secure: ad,
            nxdomain: true,
        },
        _ if records.is_empty() => Status::Missing {
            secure: ad,
            nxdomain: false,
        },
        _ if ad => Status::Secure,
        _ => Status::Insecure,
    };
    let (ttl, rrsig) = if records.is_empty() {
        // RFC 2308 §5: the negative TTL is the smaller of the SOA's TTL and its MINIMUM.
        let negative = answer.authorities.iter().find_map(|r| match &r.data {
            RData::SOA(soa) => Some(r.ttl.min(soa.minimum)),
            _ => None,
        });
        (negative, None)
    } else {
        (
            matching.iter().map(|r| r.ttl).min(),
            rrsig_expiry(&answer.answers, &owner, rtype, now),
        )
    };
    Lookup {
        name: name.clone(),
        owner,
        chain,
        status,
        records,
        skipped: Vec::new(),
        ttl,
        rrsig_expiry: rrsig,
        ede,
    }
}

/// A and AAAA answers as one lookup of addresses.
pub(crate) fn merge_addresses(v4: Lookup<RData>, v6: Lookup<RData>) -> Lookup<IpAddr> {
    let mut records: Vec<IpAddr> = Vec::new();
    for r in v4.records.iter().chain(&v6.records) {
        match r {
            RData::A(a) => records.push(IpAddr::V4(a.0)),
            RData::AAAA(a) => records.push(IpAddr::V6(a.0)),
            _ => {}
        }
    }
    let status = match (&v4.status, &v6.status) {
        (Status::Bogus { .. }, _) => v4.status.clone(),
        (_, Status::Bogus { .. }) => v6.status.clone(),
        _ if records.is_empty() => Status::Missing {
            secure: v4.status.is_secure() && v6.status.is_secure(),
            nxdomain: matches!(v4.status, Status::Missing { nxdomain: true, .. })
                && matches!(v6.status, Status::Missing { nxdomain: true, .. }),
        },
        _ if v4.status.is_secure() && v6.status.is_secure() => Status::Secure,
        _ => Status::Insecure,
    };
    let ttl = match (v4.records.is_empty(), v6.records.is_empty()) {
        (false, true) => v4.ttl,
        (true, false) => v6.ttl,
        _ => v4.ttl.into_iter().chain(v6.ttl).min(),
    };
    let rrsig_expiry = v4.rrsig_expiry.into_iter().chain(v6.rrsig_expiry).min();
    let mut ede = v4.ede;
    ede.extend(v6.ede);
    let (owner, chain) = if v4.records.is_empty() && !v6.records.is_empty() {
        (v6.owner, v6.chain)
    } else {
        (v4.owner, v4.chain)
    };
    Lookup {
        name: v4.name,
        owner,
        chain,
        status,
        records,
        skipped: Vec::new(),
        ttl,
        rrsig_expiry,
        ede,
    }
}
