//! The preflight: before anything is published, whether publishing TLSA records for a service
//! would give working DANE, with each problem said as one line naming what to fix. Nothing is
//! written; every call is a read.
//!
//! For each service ([`check_service`]):
//! - [`dnssec`]: the zone is signed and validates through the configured resolver;
//! - [`provider`]: the provider's read-only listing works (credentials, rights, zone), and a
//!   provider with a server of its own serves the zone the public NS set delegates;
//! - [`owners`]: each owner name is inside the zone, and no CNAME or wildcard there surprises
//!   the gate;
//! - [`ttl`]: the TTL the provider will apply, when it is not the configured one.
//!
//! `dane-roll config check --online` prints the [`Finding`]s; the rollover driver runs
//! [`check_dnssec`] before a service's first publish and refuses to stage on a problem.

pub mod dnssec;
pub mod owners;
mod problem;
pub mod provider;
pub mod ttl;

pub use problem::{Check, Finding, Severity};

use dane_roll_providers::{Provider, Settings};

use crate::config::{Config, ProviderKind, Service};
use crate::dns::{AuthorityView, Name, parse_name};

/// The zone of `svc`: its `zone`, else its rfc2136 provider's `zone`, else the zone cut the
/// resolver names for its first owner name.
pub async fn zone_of(config: &Config, svc: &Service, view: &AuthorityView) -> Result<Name, Check> {
    let configured = svc.zone.clone().or_else(|| match config.provider_for(svc) {
        Some(p) => match &p.kind {
            ProviderKind::Rfc2136 { zone, .. } => zone.clone(),
            _ => None,
        },
        None => None,
    });
    if let Some(zone) = configured {
        return parse_name(&zone).map_err(|source| Check::Dns {
            what: format!("zone {zone}"),
            source: Box::new(source),
        });
    }
    let owners = svc.owner_names();
    let Some(first) = owners.first() else {
        return Err(Check::Setup(format!(
            "service {} has no endpoint, so no owner name",
            svc.name
        )));
    };
    view.zone_cut(first.as_str())
        .await
        .map_err(|source| Check::Dns {
            what: format!("the zone of {first}"),
            source: Box::new(source),
        })
}

/// The provider kind of `svc`, as in the configuration.
fn kind_of(config: &Config, svc: &Service) -> &'static str {
    config.provider_for(svc).map_or("", |p| p.kind.name())
}

/// The DNSSEC part alone: `svc`'s zone is signed and validates.
pub async fn check_dnssec(config: &Config, svc: &Service, view: &AuthorityView) -> Vec<Finding> {
    let problem = |what| Finding {
        service: svc.name.clone(),
        severity: Severity::Problem,
        what,
    };
    let zone = match zone_of(config, svc, view).await {
        Ok(zone) => zone,
        Err(what) => return vec![problem(what)],
    };
    let who = dnssec::operator(kind_of(config, svc));
    match dnssec::check_zone(view, &zone, who).await {
        Ok(()) => Vec::new(),
        Err(what) => vec![problem(what)],
    }
}

/// Every check for `svc` (see the [module docs](self)).
pub async fn check_service(config: &Config, svc: &Service, view: &AuthorityView) -> Vec<Finding> {
    let mut found = Vec::new();
    let mut push = |severity, what| {
        found.push(Finding {
            service: svc.name.clone(),
            severity,
            what,
        })
    };
    let zone = match zone_of(config, svc, view).await {
        Ok(zone) => zone,
        Err(what) => {
            push(Severity::Problem, what);
            return found;
        }
    };
    let kind = kind_of(config, svc);
    if let Err(what) = dnssec::check_zone(view, &zone, dnssec::operator(kind)).await {
        push(Severity::Problem, what);
    }

    let owners = svc.owner_names();
    let mut inside = Vec::new();
    for owner in &owners {
        match owners::check_inside(owner, &zone) {
            Ok(()) => inside.push(owner.clone()),
            Err(what) => push(Severity::Problem, what),
        }
    }
    for owner in &inside {
        match owners::check_cname(view, owner).await {
            Ok(Some(notice)) => push(Severity::Notice, notice),
            Ok(None) => {}
            Err(what) => push(Severity::Problem, what),
        }
        if let Err(what) = owners::check_wildcard(view, owner, &zone).await {
            push(Severity::Problem, what);
        }
    }

    let provider = match crate::publish::provider_for(config, svc, Settings::default()) {
        Ok(p) => p,
        Err(err) => {
            push(Severity::Problem, Check::Setup(err.to_string()));
            return found;
        }
    };
    if matches!(provider, Provider::Manual(_)) {
        return found;
    }
    let name = svc.provider.as_str();
    let mut works = true;
    for owner in &inside {
        match provider::check_credentials(&provider, name, owner).await {
            Ok(existing) => {
                if let Some(notice) = ttl::ttl_notice(kind, owner, svc.ttl, &existing) {
                    push(Severity::Notice, Check::Ttl(notice));
                }
            }
            Err(what) => {
                push(Severity::Problem, what);
                works = false;
                // One failed listing says it: the others would fail alike.
                break;
            }
        }
    }
    if works
        && let Some(configured) = config.provider_for(svc)
        && let Ok(public) = view.served_in_zone(&zone, &zone, &[]).await
        && let Err(what) =
            provider::check_served_zone(view, &configured.kind, name, &zone, &public).await
    {
        push(Severity::Problem, what);
    }
    found
}
