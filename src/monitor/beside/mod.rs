//! What a mail domain publishes beside DANE, looked up for `check` and `serve`: its SMTP TLS
//! Reporting record (RFC 8460) and its MTA-STS record and policy (RFC 8461), and whether its MX
//! certificates pass the Web PKI, which MTA-STS senders require and DANE-EE does not.
//!
//! - `records`: the `_smtp._tls` and `_mta-sts` TXT records, parsed;
//! - `policy`: the policy file and its `mx:` patterns;
//! - `fetch`: the policy fetched over HTTPS as senders fetch it (no redirect, bounded);
//! - `webpki`: the [`Trust`] the fetch and the MX certificates are checked against;
//! - `run`: all of it within one run of the monitor, beside the endpoints' probes.
//!
//! This module gathers (DNS, HTTPS, certificate verification); the rules that turn its
//! findings into checks are in [`super::checks`] (`tlsrpt`, `mta-sts`, `mta-sts-mx`).

mod fetch;
pub mod policy;
pub mod records;
mod run;
mod webpki;

use std::time::Duration;

use hickory_proto::rr::{RData, RecordType};

use crate::dns::{Resolver, Status as DnsStatus};
use crate::probe::AddressReport;

pub use fetch::{Fetcher, POLICY_MAX_BYTES, POLICY_TIMEOUT};
pub use policy::{Mode, Policy};
pub use records::{StsRecord, TlsrptRecord};
pub(super) use run::{look_all, mta_sts_mx};
pub use webpki::Trust;

/// What MTA-STS looks like for one domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StsFinding {
    /// No `v=STSv1` record: no MTA-STS (nothing wrong).
    Absent,
    /// The TXT lookup failed (SERVFAIL, no answer).
    LookupFailed(String),
    /// A record senders cannot use.
    BadRecord(String),
    /// The record is there, the policy could not be fetched.
    NoPolicy {
        /// The record's id.
        id: String,
        /// Why, in words.
        why: String,
    },
    /// The policy was fetched but senders would not use it.
    BadPolicy {
        /// The record's id.
        id: String,
        /// Why, in words.
        why: String,
    },
    /// A usable policy.
    Policy {
        /// The record's id.
        id: String,
        /// The policy.
        policy: Policy,
    },
}

/// The records beside DANE of one mail domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainBeside {
    /// The domain.
    pub domain: String,
    /// The TLSRPT record: none, one, or why it cannot be used (or looked up).
    pub tlsrpt: Result<Option<TlsrptRecord>, String>,
    /// MTA-STS.
    pub sts: StsFinding,
}

impl DomainBeside {
    /// The usable policy, when there is one.
    pub fn policy(&self) -> Option<&Policy> {
        match &self.sts {
            StsFinding::Policy { policy, .. } => Some(policy),
            _ => None,
        }
    }
}

/// The TXT records at `name`, each record's strings joined; an error in words when the answer
/// cannot be used (SERVFAIL, bogus).
async fn txt(resolver: &Resolver, name: &str) -> Result<Vec<String>, String> {
    let lookup = resolver
        .lookup(name, RecordType::TXT)
        .await
        .map_err(|e| format!("cannot look up {name} TXT: {e}"))?;
    if lookup.status.is_bogus() {
        return Err(format!("{name} TXT: {}", lookup.status));
    }
    if matches!(lookup.status, DnsStatus::Missing { .. }) {
        return Ok(Vec::new());
    }
    Ok(lookup
        .records
        .iter()
        .filter_map(|r| match r {
            RData::TXT(txt) => Some(
                txt.txt_data
                    .iter()
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect::<String>(),
            ),
            _ => None,
        })
        .collect())
}

/// Look up `domain`'s TLSRPT and MTA-STS records and fetch its policy (through `fetcher`; none
/// when the HTTPS client could not be set up, said in `no_fetcher`).
pub async fn look(
    resolver: &Resolver,
    fetcher: Result<&Fetcher, &str>,
    domain: &str,
) -> DomainBeside {
    let domain = domain.trim_end_matches('.');
    let tlsrpt_name = format!("_smtp._tls.{domain}");
    let sts_name = format!("_mta-sts.{domain}");
    let (tlsrpt, sts) = tokio::join!(txt(resolver, &tlsrpt_name), txt(resolver, &sts_name));
    let tlsrpt = tlsrpt.and_then(|texts| records::tlsrpt(&texts));
    let sts = match sts.map(|texts| records::sts(&texts)) {
        Err(why) => StsFinding::LookupFailed(why),
        Ok(Err(why)) => StsFinding::BadRecord(why),
        Ok(Ok(None)) => StsFinding::Absent,
        Ok(Ok(Some(StsRecord { id }))) => match fetcher {
            Err(why) => StsFinding::NoPolicy {
                id,
                why: why.to_string(),
            },
            Ok(fetcher) => match fetcher.policy(domain).await {
                Err(why) => StsFinding::NoPolicy { id, why },
                Ok(text) => match policy::parse(&text) {
                    Ok(policy) => StsFinding::Policy { id, policy },
                    Err(why) => StsFinding::BadPolicy { id, why },
                },
            },
        },
    };
    DomainBeside {
        domain: domain.to_string(),
        tlsrpt,
        sts,
    }
}

/// How the checks beside DANE run: the trust for the policy fetch and the MX certificates,
/// and the fetch's time limit.
#[derive(Debug, Clone)]
pub struct BesideOptions {
    /// The roots.
    pub trust: Trust,
    /// One fetch's time limit.
    pub timeout: Duration,
}

/// The Web PKI verdict of every key an address served: `(key type, verdict)`.
pub type AddressWebPki = Vec<(String, Result<(), String>)>;

/// Verify every chain `report` saw for `host` under `trust`.
pub fn verify_address(trust: &Trust, host: &str, report: &AddressReport) -> AddressWebPki {
    report
        .keys
        .iter()
        .map(|key| (key.key_type.clone(), trust.verify(host, &key.chain_der)))
        .collect()
}
