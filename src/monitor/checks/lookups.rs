//! The checks of what the resolver answers before any TLSA record: whether it validates, the
//! mail domain's MX RRset, the host's addresses and its `_tcp` parent.

use std::net::IpAddr;

use crate::config::Endpoint;
use crate::dns::{Lookup, MxHost, Status as DnsStatus, TcpParent, ValidationProbe};
use crate::notify::Severity;

use super::{Check, CheckKind};

/// What the resolver check concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    /// AD seen: answers can be trusted.
    Validating,
    /// Only unsigned names were asked: whether it validates cannot be told (no AD expected).
    Undetermined,
    /// It does not validate, or cannot be used: the run is UNKNOWN.
    Unusable(String),
}

/// Judge the resolver from validation probes of the run's names (see
/// [`crate::dns::Resolver::probe_validation`]): one AD is enough; a resolver that does not recurse
/// or returns signed data without AD does not validate; errors everywhere mean it cannot be used.
pub fn resolver(addr: &str, probes: &[Result<ValidationProbe, String>]) -> (Check, Validation) {
    let id_check = |status, message: String| {
        Check::new(
            CheckKind::Resolver,
            format!("resolver/{addr}"),
            format!("resolver {addr}"),
            status,
            message,
        )
    };
    if probes
        .iter()
        .any(|p| p.as_ref().is_ok_and(ValidationProbe::is_validating))
    {
        return (
            id_check(
                Severity::Ok,
                format!("the resolver {addr} validates DNSSEC (AD set)"),
            ),
            Validation::Validating,
        );
    }
    let bad = probes.iter().find_map(|p| match p {
        Ok(v @ (ValidationProbe::NotRecursive | ValidationProbe::NoAdOnSignedData)) => {
            Some(v.to_string())
        }
        _ => None,
    });
    if let Some(why) = bad {
        let message = format!("cannot trust the resolver {addr}: {why}");
        return (
            id_check(Severity::Unknown, message.clone()),
            Validation::Unusable(message),
        );
    }
    if let Some(Err(err)) = probes.iter().find(|p| p.is_err())
        && probes.iter().all(|p| p.is_err())
    {
        let message = format!("cannot use the resolver {addr}: {err}");
        return (
            id_check(Severity::Unknown, message.clone()),
            Validation::Unusable(message),
        );
    }
    (
        id_check(
            Severity::Ok,
            format!("the resolver {addr} answers (no signed name asked, so no AD expected)"),
        )
        .with_note(
            "none of the names checked is in a signed zone, so whether the resolver validates \
             could not be told",
        ),
        Validation::Undetermined,
    )
}

/// The MX RRset of a mail domain. A null MX (RFC 7505) is ok: the domain takes no mail.
pub fn mx_secure(domain: &str, lookup: &Lookup<MxHost>) -> Check {
    let hosts = lookup.records.len();
    let null = hosts == 1 && lookup.records[0].host.is_root();
    let (status, message) = match &lookup.status {
        DnsStatus::Secure if null => (
            Severity::Ok,
            format!("{domain} has a null MX (RFC 7505): it accepts no mail"),
        ),
        DnsStatus::Secure => (
            Severity::Ok,
            format!("the MX RRset of {domain} is DNSSEC-secure ({hosts} hosts)"),
        ),
        DnsStatus::Insecure => (
            Severity::Warning,
            format!(
                "DANE not in effect for this domain: the MX RRset of {domain} is not \
                 DNSSEC-secure, so senders do not look for TLSA records"
            ),
        ),
        DnsStatus::Bogus { .. } => (
            Severity::Critical,
            format!(
                "the MX lookup of {domain} fails ({}): senders defer mail to this domain",
                lookup.status
            ),
        ),
        DnsStatus::Missing { nxdomain: true, .. } => (
            Severity::Critical,
            format!("{domain} does not exist (NXDOMAIN)"),
        ),
        DnsStatus::Missing { secure, .. } => (
            if *secure {
                Severity::Ok
            } else {
                Severity::Warning
            },
            format!(
                "{domain} has no MX records: mail goes to its own address (implicit MX, RFC 5321 \
                 §5.1){}",
                if *secure {
                    ""
                } else {
                    "; the denial is not DNSSEC-secure: DANE not in effect for this domain"
                }
            ),
        ),
    };
    Check::name(CheckKind::MxSecure, domain, status, message)
}

/// The host's addresses. Insecure address records mean no DANE (RFC 7672 §2.2.2: senders look
/// up TLSA records only for hosts whose address records are secure).
pub fn addresses(ep: &Endpoint, lookup: &Result<Lookup<IpAddr>, String>, given: bool) -> Check {
    let check =
        |status, message: String| Check::endpoint(CheckKind::Addresses, ep, None, status, message);
    if given {
        return check(
            Severity::Ok,
            "addresses given on the command line (not looked up)".into(),
        );
    }
    let lookup = match lookup {
        Ok(lookup) => lookup,
        Err(err) => {
            return check(
                Severity::Unknown,
                format!("cannot look up {}: {err}", ep.host),
            );
        }
    };
    let count = lookup.records.len();
    match &lookup.status {
        DnsStatus::Secure => check(
            Severity::Ok,
            format!("{} has {count} DNSSEC-secure addresses", ep.host),
        ),
        DnsStatus::Insecure => check(
            Severity::Warning,
            format!(
                "DANE not in effect for this host: the address records of {} are not \
                 DNSSEC-secure, so senders do not use its TLSA records",
                ep.host
            ),
        ),
        DnsStatus::Bogus { .. } => check(
            Severity::Critical,
            format!(
                "the address lookup of {} fails ({}): senders cannot reach it",
                ep.host, lookup.status
            ),
        ),
        DnsStatus::Missing { nxdomain, .. } => check(
            Severity::Critical,
            format!(
                "{} has no address ({}): senders cannot deliver to it",
                ep.host,
                if *nxdomain {
                    "NXDOMAIN"
                } else {
                    "no A or AAAA records"
                }
            ),
        ),
    }
}

/// `_tcp.<host>` must not be NXDOMAIN (QNAME-minimising resolvers stop there) or bogus.
pub fn tcp_parent(ep: &Endpoint, parent: &Result<TcpParent, String>) -> Check {
    let name = format!("_tcp.{}", ep.host);
    let (status, message) = match parent {
        Err(err) => (Severity::Unknown, format!("cannot look up {name}: {err}")),
        Ok(TcpParent::Exists(_)) => (Severity::Ok, format!("{name} exists (NOERROR)")),
        Ok(p @ TcpParent::Nxdomain { .. }) => (Severity::Warning, format!("{name} is {p}")),
        Ok(p @ TcpParent::Bogus(_)) => (Severity::Critical, format!("{name} is {p}")),
    };
    Check::endpoint(CheckKind::TcpParent, ep, None, status, message)
}
