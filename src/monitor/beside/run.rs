//! The checks beside DANE within one run of the monitor: every mail domain's records and policy
//! looked up side by side with the endpoints' DNS and probes ([`look_all`]), and each MX judged
//! under its domains' policies once its probes are in ([`mta_sts_mx`]).

use crate::config::Endpoint;
use crate::dns::Resolver;
use crate::probe::AddressReport;

use super::super::checks::{self, Check};
use super::super::tasks::spawn_in_order;
use super::{BesideOptions, DomainBeside, Fetcher, Mode, Policy, StsFinding, look, verify_address};

/// What a lookup not answered within the run's deadline says.
const LATE: &str = "no answer within the run's time limit";

/// TLSRPT and MTA-STS of every mail domain (when `options` asks), within the deadline; in the
/// order of `domains`. `fenced`: the run is `/probe`'s, whose fence the policy fetch keeps too.
pub(in crate::monitor) async fn look_all(
    options: Option<&BesideOptions>,
    resolver: Option<&Resolver>,
    domains: &[String],
    deadline: tokio::time::Instant,
    fenced: bool,
) -> Vec<DomainBeside> {
    let (Some(options), Some(resolver)) = (options, resolver) else {
        return Vec::new();
    };
    if domains.is_empty() {
        return Vec::new();
    }
    let fetcher = Fetcher::new(resolver.clone(), &options.trust, options.timeout, fenced);
    let looks = domains.iter().map(|domain| {
        let resolver = resolver.clone();
        let fetcher = fetcher.clone();
        let domain = domain.clone();
        async move {
            let fetcher = fetcher.as_ref().map_err(String::as_str);
            match tokio::time::timeout_at(deadline, look(&resolver, fetcher, &domain)).await {
                Ok(found) => found,
                Err(_) => DomainBeside {
                    domain,
                    tlsrpt: Err(LATE.to_string()),
                    sts: StsFinding::LookupFailed(LATE.to_string()),
                },
            }
        }
    });
    spawn_in_order(looks).await.into_iter().flatten().collect()
}

/// The `mta-sts-mx` check of an endpoint that is an MX (`via`) of a domain with a policy in
/// testing or enforce mode, its chains verified under the Web PKI; the chains' DER is dropped
/// from `reports` either way, its use being over (a run of thousands keeps no chains).
pub(in crate::monitor) fn mta_sts_mx(
    options: Option<&BesideOptions>,
    ep: &Endpoint,
    via: &[String],
    besides: &[DomainBeside],
    reports: &mut [AddressReport],
) -> Option<Check> {
    let policies: Vec<(&str, &Policy)> = besides
        .iter()
        .filter(|b| via.contains(&b.domain))
        .filter_map(|b| Some((b.domain.as_str(), b.policy()?)))
        .filter(|(_, p)| p.mode != Mode::None)
        .collect();
    let check = match (options, policies.is_empty()) {
        (Some(options), false) => {
            let webpki: Vec<_> = reports
                .iter()
                .map(|r| (r.address.ip(), verify_address(&options.trust, &ep.host, r)))
                .collect();
            checks::mta_sts_mx(ep, &policies, &webpki)
        }
        _ => None,
    };
    for report in reports.iter_mut() {
        for key in &mut report.keys {
            key.chain_der = Vec::new();
        }
    }
    check
}
