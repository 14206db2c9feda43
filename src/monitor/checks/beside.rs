//! The rules beside DANE: TLSRPT (`tlsrpt`), the MTA-STS record and policy (`mta-sts`), and
//! each MX under the policy (`mta-sts-mx`).
//!
//! Severities: none of this stops a DANE sender. TLSRPT is optional, so a domain without the
//! record is ok with a word on what to publish (a warning for every such domain would teach
//! postmasters to ignore `check`'s warnings); a broken TLSRPT record, or an MTA-STS record
//! without a usable policy, is a warning: someone meant it to work. MTA-STS in `enforce` mode is the
//! exception: senders that apply it refuse an MX its `mx:` patterns do not cover, or whose
//! certificate fails the Web PKI, whatever DANE says; so a DANE-EE self-signed certificate
//! under an `enforce` policy is critical (in `testing` mode the same is a warning: senders
//! deliver and report).

use std::net::IpAddr;

use crate::config::Endpoint;
use crate::notify::Severity;

use super::super::beside::{
    AddressWebPki, DomainBeside, Mode, POLICY_MAX_BYTES, Policy, StsFinding,
};
use super::{Check, CheckKind};

/// `tlsrpt/DOMAIN`: a usable TLSRPT record; none: ok, saying what to publish; a broken one: a
/// warning.
pub fn tlsrpt(found: &DomainBeside) -> Check {
    let domain = &found.domain;
    let (status, message) = match &found.tlsrpt {
        Ok(Some(record)) => (
            Severity::Ok,
            format!("TLS reports for {domain} go to {}", record.rua.join(", ")),
        ),
        Ok(None) => (
            Severity::Ok,
            format!(
                "no TLSRPT record at _smtp._tls.{domain}: senders cannot report TLS or DANE \
                 failures to you (publish \"v=TLSRPTv1; rua=mailto:tls-reports@{domain}\")"
            ),
        ),
        Err(why) => (
            Severity::Warning,
            format!("the TLSRPT record at _smtp._tls.{domain} cannot be used: {why}"),
        ),
    };
    Check::name(CheckKind::Tlsrpt, domain, status, message)
}

/// `mta-sts/DOMAIN`: the MTA-STS record and policy.
pub fn mta_sts(found: &DomainBeside) -> Check {
    let domain = &found.domain;
    let (status, message) = match &found.sts {
        StsFinding::Absent => (
            Severity::Ok,
            format!("no MTA-STS record at _mta-sts.{domain} (DANE alone)"),
        ),
        StsFinding::LookupFailed(why) => (Severity::Warning, why.clone()),
        StsFinding::BadRecord(why) => (
            Severity::Warning,
            format!("the MTA-STS record at _mta-sts.{domain} cannot be used: {why}"),
        ),
        StsFinding::NoPolicy { id, why } => (
            Severity::Warning,
            format!(
                "MTA-STS record id {id} but no policy: {why} (senders without a cached policy \
                 apply none; at most {} KiB, text/plain, no redirect)",
                POLICY_MAX_BYTES / 1024
            ),
        ),
        StsFinding::BadPolicy { id, why } => (
            Severity::Warning,
            format!("the MTA-STS policy of {domain} (id {id}) cannot be used: {why}"),
        ),
        StsFinding::Policy { id, policy } => {
            let mut message = format!(
                "MTA-STS policy id {id}: mode {}, max_age {} s, mx {}",
                policy.mode.as_str(),
                policy.max_age,
                policy.mx.join(", ")
            );
            let short = policy.max_age < super::super::beside::policy::MAX_AGE_SHORT
                && policy.mode != Mode::None;
            if short {
                message.push_str(" (max_age under a day: senders forget the policy soon)");
            }
            let status = if short {
                Severity::Warning
            } else {
                Severity::Ok
            };
            (status, message)
        }
    };
    Check::name(CheckKind::MtaSts, domain, status, message)
}

/// `mta-sts-mx/HOST:PORT`: the endpoint under the policies of the domains it is an MX of
/// (`policies`: domain and policy, `testing` or `enforce` only): covered by an `mx:` pattern,
/// and every key served on every address valid under the Web PKI for the host (`webpki`, per
/// address probed). `None` when no policy applies.
pub fn mta_sts_mx(
    ep: &Endpoint,
    policies: &[(&str, &Policy)],
    webpki: &[(IpAddr, AddressWebPki)],
) -> Option<Check> {
    let policies: Vec<&(&str, &Policy)> = policies
        .iter()
        .filter(|(_, p)| p.mode != Mode::None)
        .collect();
    if policies.is_empty() {
        return None;
    }
    let enforce = policies.iter().any(|(_, p)| p.mode == Mode::Enforce);
    let bad = if enforce {
        Severity::Critical
    } else {
        Severity::Warning
    };
    let mut problems = Vec::new();
    for (domain, policy) in &policies {
        if policy.covering(&ep.host).is_none() {
            problems.push(format!(
                "{} is not covered by the MTA-STS policy of {domain} (mode {}; mx {}): senders \
                 applying it refuse this MX",
                ep.host,
                policy.mode.as_str(),
                policy.mx.join(", ")
            ));
        }
    }
    let mut verified = 0;
    for (address, keys) in webpki {
        for (key_type, verdict) in keys {
            match verdict {
                Ok(()) => verified += 1,
                Err(why) => problems.push(format!(
                    "{address} ({key_type}): the certificate is not valid under the Web PKI for \
                     {}: {why}; MTA-STS senders refuse it (a DANE-EE self-signed certificate \
                     satisfies DANE only)",
                    ep.host
                )),
            }
        }
    }
    let modes: Vec<String> = policies
        .iter()
        .map(|(d, p)| format!("{d}: {}", p.mode.as_str()))
        .collect();
    let check = if problems.is_empty() {
        let status = Severity::Ok;
        let message = if verified == 0 {
            format!(
                "covered by MTA-STS ({}); no certificate seen to check (no handshake)",
                modes.join(", ")
            )
        } else {
            format!(
                "covered by MTA-STS ({}); {verified} certificate(s) valid under the Web PKI",
                modes.join(", ")
            )
        };
        Check::endpoint(CheckKind::MtaStsMx, ep, None, status, message)
    } else {
        Check::endpoint(CheckKind::MtaStsMx, ep, None, bad, problems.join("; "))
    };
    Some(check)
}
