//! The owner names a service's records are written at: each configured owner name
//! (`_<port>._tcp.<host>` of an endpoint) followed through a CNAME at the authorities
//! ([`crate::dns::alias`]). Endpoints whose owner names lead to one target share its RRset, so
//! the target is published, gated and retired once for all of them. A target the provider cannot
//! write (outside its configured zone, or a zone its server does not serve) stops the step with
//! [`DriverError::AliasTarget`], which names the CNAME, its target and what to do.
//!
//! The mapping is applied where a rollover is staged (and where `next-key`, a renewal's next
//! key and `prune --foreign` write or list records): the rollover's owner names are the
//! targets, so its desired records, the provider's writes, the store's `records_published` (the
//! target is the owner of what we publish) and the gate's questions all use them. The probe
//! still asks the validating resolver at each endpoint's own owner name, as a sender does, and
//! the resolver follows the CNAME.

use dane_roll_providers::ProviderError;

use crate::config::{Config, Service};
use crate::dns::{Alias, AliasError};
use crate::rollover::effects::ProviderFailure;
use crate::rollover::{Effects, OwnerName, Rollover};
use crate::store::{Store, StoreError};

use super::{Driver, DriverError};

impl<E: Effects> Driver<E> {
    /// Each configured owner name of `svc` and where its TLSA RRset lives. When the chain cannot
    /// be followed for want of an answer (no resolver, no authoritative server answering), the
    /// owner name is taken as it is and a warning says so; a loop, a chain that is too long or a
    /// target the provider cannot write is an error. Asked once per service and process.
    pub fn aliases(&mut self, svc: &Service) -> Result<Vec<Alias>, DriverError> {
        if let Some(known) = self.aliases.get(&svc.name) {
            return Ok(known.clone());
        }
        let aliases = self.follow_owner_names(svc)?;
        self.aliases.insert(svc.name.clone(), aliases.clone());
        Ok(aliases)
    }

    fn follow_owner_names(&mut self, svc: &Service) -> Result<Vec<Alias>, DriverError> {
        let owners = svc.owner_names();
        let plain = |owner: &OwnerName| Alias {
            owner: owner.clone(),
            chain: Vec::new(),
        };
        let mut followed: Vec<(OwnerName, Result<Alias, AliasError>)> = Vec::new();
        for owner in &owners {
            match self.effects.follow_cname(owner) {
                Some(result) => followed.push((owner.clone(), result)),
                // No resolver to ask: every owner name as configured.
                None => return Ok(owners.iter().map(plain).collect()),
            }
        }
        let mut aliases = Vec::new();
        for (owner, result) in followed {
            match result {
                Ok(alias) => {
                    if alias.is_alias() {
                        self.check_alias_target(svc, &alias)?;
                    }
                    aliases.push(alias);
                }
                Err(err @ (AliasError::NoAnswer { .. } | AliasError::Dns { .. })) => {
                    tracing::warn!(
                        "service {}: {err}; the records are written at {owner} \
                         as configured",
                        svc.name
                    );
                    aliases.push(plain(&owner));
                }
                Err(source) => {
                    return Err(DriverError::Alias {
                        service: svc.name.clone(),
                        source: Box::new(source),
                    });
                }
            }
        }
        Ok(aliases)
    }

    /// The owner names `svc`'s records are written at: the targets of [`Driver::aliases`], each
    /// once, in endpoint order.
    pub fn effective_owners(&mut self, svc: &Service) -> Result<Vec<OwnerName>, DriverError> {
        Ok(targets(&self.aliases(svc)?))
    }

    /// Refuse a CNAME target the service's provider cannot write: outside the configured zone,
    /// or a name the provider finds no zone for (its server is not authoritative for it).
    fn check_alias_target(&mut self, svc: &Service, alias: &Alias) -> Result<(), DriverError> {
        let refuse = |why: String| DriverError::AliasTarget {
            service: svc.name.clone(),
            owner: alias.owner.clone(),
            target: alias.target().clone(),
            provider: svc.provider.clone(),
            why,
        };
        if let Some(zone) = configured_zone(&self.config, svc)
            && !in_zone(alias.target().as_str(), &zone)
        {
            return Err(refuse(format!(
                "it is outside zone {zone}, the zone the provider writes"
            )));
        }
        match self.effects.list_records(svc, alias.target()) {
            Ok(_)
            | Err(ProviderFailure::Failed {
                error: ProviderError::Unsupported { .. },
                ..
            }) => Ok(()),
            Err(ProviderFailure::Setup(why)) => Err(refuse(why)),
            Err(ProviderFailure::Failed { error, .. }) => {
                Err(refuse(format!("the provider cannot read it ({error})")))
            }
        }
    }
}

/// What `status` and `plan` show for a rollover's owner names, from the store alone: `owner X
/// (via CNAME → Y)` for each configured owner name the rollover followed (as its staging
/// recorded), then `owner Y` for each of its owner names that no CNAME led to.
pub fn owner_lines(store: &Store, r: &Rollover) -> Result<Vec<String>, StoreError> {
    let mut via: Vec<String> = Vec::new();
    for e in store.events(Some(&r.request.service), 10_000)? {
        if e.slot != r.request.slot || e.event.time < r.started {
            continue;
        }
        if let Some((line, _)) = e.event.detail.split_once("): ")
            && line.starts_with("owner ")
            && line.contains(" (via CNAME → ")
        {
            let line = format!("{line})");
            if !via.contains(&line) {
                via.push(line);
            }
        }
    }
    let mut out = via.clone();
    for owner in &r.request.owners {
        if !via.iter().any(|l| l.ends_with(&format!(" → {owner})"))) {
            out.push(format!("owner {owner}"));
        }
    }
    Ok(out)
}

/// The targets of `aliases`, each once, in order.
pub(super) fn targets(aliases: &[Alias]) -> Vec<OwnerName> {
    let mut out: Vec<OwnerName> = Vec::new();
    for alias in aliases {
        let target = alias.target().clone();
        if !out.contains(&target) {
            out.push(target);
        }
    }
    out
}

/// The zone the service's provider writes in when one is configured: the service's `zone`, else
/// an RFC 2136 provider's `zone` (as [`crate::publish::provider_for`] chooses it).
fn configured_zone(config: &Config, svc: &Service) -> Option<String> {
    if let Some(zone) = &svc.zone {
        return Some(zone.clone());
    }
    match config.provider_for(svc).map(|p| &p.kind) {
        Some(crate::config::ProviderKind::Rfc2136 { zone, .. }) => zone.clone(),
        _ => None,
    }
}

/// Whether `name` is `zone` or below it (case and final dots aside).
fn in_zone(name: &str, zone: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let zone = zone.trim_end_matches('.').to_ascii_lowercase();
    name == zone
        || name
            .strip_suffix(&zone)
            .is_some_and(|prefix| prefix.ends_with('.'))
}

#[cfg(test)]
mod tests {
    use super::{in_zone, targets};
    use crate::dns::Alias;
    use crate::rollover::OwnerName;

    fn name(text: &str) -> OwnerName {
        text.parse().expect("an owner name")
    }

    fn alias(owner: &str, chain: &[&str]) -> Alias {
        Alias {
            owner: name(owner),
            chain: chain.iter().map(|s| name(s)).collect(),
        }
    }

    #[test]
    fn endpoints_sharing_a_target_give_one_owner_name() {
        let aliases = [
            alias("_25._tcp.mx1.example.com.", &["_dane.example.com."]),
            alias(
                "_25._tcp.mx2.example.com.",
                &["_x.example.com.", "_dane.example.com."],
            ),
            alias("_25._tcp.mx3.example.com.", &[]),
        ];
        assert_eq!(
            targets(&aliases),
            ["_dane.example.com.", "_25._tcp.mx3.example.com."]
        );
        assert_eq!(
            aliases[1].to_string(),
            "owner _25._tcp.mx2.example.com. (via CNAME → _x.example.com. → _dane.example.com.)"
        );
        assert_eq!(aliases[2].to_string(), "owner _25._tcp.mx3.example.com.");
    }

    #[test]
    fn zone_membership_is_by_whole_labels() {
        assert!(in_zone("_dane.example.com.", "example.com"));
        assert!(in_zone("_DANE.Example.COM", "example.com."));
        assert!(in_zone("example.com.", "example.com"));
        assert!(!in_zone("_dane.badexample.com.", "example.com"));
        assert!(!in_zone("_dane.example.net.", "example.com"));
    }
}
