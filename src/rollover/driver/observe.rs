//! What the real world said, turned into the engine's words: an [`AuthorityReport`] and a
//! validated [`Lookup`] (when the resolver was asked) become an [`OwnerReport`]; a probe's [`AddressReport`] becomes a
//! [`ProbeResult`] for the key slot being rolled.

use crate::dns::{AuthorityReport, DnsError, Lookup, NOT_WAITED_FOR, ServerFailure, Status};
use crate::probe::{AddressReport, KeyAlgorithm, Verdict};
use crate::rollover::{
    DnsReport, KeyHash, NsAnswer, OwnerName, OwnerReport, ProbeResult, ProbeVerdict, ResolverAnswer,
};
use crate::tlsa::TlsaRecord;

/// One owner name's DNS view: every nameserver address's answer, and the resolver's.
pub(super) fn owner_report(
    owner: &OwnerName,
    authority: Result<AuthorityReport, DnsError>,
    validated: Option<Result<Lookup<TlsaRecord>, DnsError>>,
) -> OwnerReport {
    let nameservers = match authority {
        Ok(report) => {
            let signed = report.zone_signed();
            report
                .servers
                .iter()
                .map(|s| {
                    let name = match s.address {
                        Some(a) => format!("{} ({a})", s.nameserver),
                        None => s.nameserver.to_string(),
                    };
                    let ttl = s.result.as_ref().ok().and_then(|served| served.ttl);
                    let records = match &s.result {
                        // A server that serves the records unsigned in a signed zone lags: a
                        // validating resolver that asks it gets a bogus answer.
                        Ok(served) if signed && !served.signed => {
                            Err("serves the TLSA records without RRSIG in a signed zone".to_owned())
                        }
                        Ok(served) => Ok(served.records.clone()),
                        Err(failure) if report.not_checkable(s) => {
                            Err(format!("{failure}; {NOT_WAITED_FOR}"))
                        }
                        Err(failure @ ServerFailure::Unreachable(_)) => Err(format!(
                            "{failure}, and no other address of this nameserver answered: it \
                             holds the gate (a nameserver down, or not reachable from this host)"
                        )),
                        Err(failure) => Err(failure.to_string()),
                    };
                    NsAnswer {
                        nameserver: name,
                        records,
                        ttl,
                        not_waited_for: report.not_checkable(s),
                    }
                })
                .collect()
        }
        Err(err) => vec![NsAnswer {
            nameserver: "(authoritative servers)".to_owned(),
            records: Err(err.to_string()),
            ttl: None,
            not_waited_for: false,
        }],
    };
    // The resolver's answer TTL is what is left of its cached copy (it counts down from the TTL
    // it was served with), not that TTL: see `rollover::ttl::observed`.
    let resolver_ttl = match &validated {
        Some(Ok(lookup)) if !lookup.records.is_empty() => lookup.ttl,
        _ => None,
    };
    let validation = match validated {
        None => ResolverAnswer::Failed(
            "not asked yet: the resolver is asked once every nameserver serves the new records"
                .to_owned(),
        ),
        Some(Err(err)) => ResolverAnswer::Failed(err.to_string()),
        Some(Ok(lookup)) => match lookup.status {
            Status::Secure => ResolverAnswer::Secure(lookup.records),
            Status::Insecure => ResolverAnswer::Insecure,
            Status::Bogus { ede } => ResolverAnswer::Bogus(
                ede.map_or_else(|| "no extended error".to_owned(), |e| e.to_string()),
            ),
            Status::Missing { .. } => ResolverAnswer::Missing,
        },
    };
    OwnerReport {
        owner: owner.clone(),
        nameservers,
        validation,
        resolver_ttl,
    }
}

/// `--skip-nameserver`: mark every address of the NS names in `skip` as not waited for (the
/// operator's word, recorded as an event by the driver), saying so where it is shown.
pub(super) fn skip(report: &mut DnsReport, skip: &[String]) {
    if skip.is_empty() {
        return;
    }
    for ns in report.owners.iter_mut().flat_map(|o| &mut o.nameservers) {
        let name = ns.nameserver.split(" (").next().unwrap_or_default();
        if !skip.iter().any(|s| dane_roll_providers::same_name(s, name)) {
            continue;
        }
        ns.not_waited_for = true;
        if let Err(why) = &mut ns.records {
            why.push_str("; skipped by --skip-nameserver (recorded)");
        }
    }
}

/// The algorithm family a key slot's certificate is chosen by.
pub fn family_of_slot(slot: &str) -> Option<KeyAlgorithm> {
    match slot {
        "rsa" => Some(KeyAlgorithm::Rsa),
        "ec" => Some(KeyAlgorithm::Ecdsa),
        "ed" => Some(KeyAlgorithm::Eddsa),
        _ => None,
    }
}

/// One endpoint address's probe as the engine wants it: the key the server presented for this
/// slot (the expected key if it presented that one, else the slot's family, else the first), and
/// whether that key's chain matched the validated records.
pub(super) fn probe_result(
    endpoint: &str,
    report: &AddressReport,
    expect: KeyHash,
    family: Option<KeyAlgorithm>,
) -> ProbeResult {
    let address = report.address.to_string();
    let hashes: Vec<Option<KeyHash>> = report
        .keys
        .iter()
        .map(|k| k.spki_sha256.parse().ok())
        .collect();
    let chosen = hashes
        .iter()
        .position(|h| *h == Some(expect))
        .or_else(|| family.and_then(|f| report.keys.iter().position(|k| k.algorithms.contains(&f))))
        .or(if report.keys.is_empty() {
            None
        } else {
            Some(0)
        });
    let Some(index) = chosen else {
        let why = report
            .reason
            .clone()
            .unwrap_or_else(|| "no certificate was presented".to_owned());
        let verdict = match report.verdict {
            // TLS cannot start, or the server refused every handshake: a DANE sender defers.
            Verdict::Fail => ProbeVerdict::NoMatch(why),
            Verdict::Pass | Verdict::Unknown => ProbeVerdict::Unknown(why),
        };
        return ProbeResult {
            endpoint: endpoint.to_owned(),
            address,
            verdict,
            live_key: None,
            chain: Vec::new(),
        };
    };
    let key = &report.keys[index];
    let verdict = if key.matched {
        ProbeVerdict::Match
    } else {
        ProbeVerdict::NoMatch(
            key.reason
                .clone()
                .unwrap_or_else(|| "the chain matched no validated TLSA record".to_owned()),
        )
    };
    ProbeResult {
        endpoint: endpoint.to_owned(),
        address,
        verdict,
        live_key: hashes[index],
        chain: key
            .chain
            .iter()
            .skip(1)
            .filter_map(|c| c.spki_sha256.parse().ok())
            .collect(),
    }
}

/// A probe that could not be made (no address, no validated records): no conclusion.
pub(super) fn unknown(endpoint: &str, address: &str, why: String) -> ProbeResult {
    ProbeResult {
        endpoint: endpoint.to_owned(),
        address: address.to_owned(),
        verdict: ProbeVerdict::Unknown(why),
        live_key: None,
        chain: Vec::new(),
    }
}
