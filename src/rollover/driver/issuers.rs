//! Issuer records (`current+issuer`) follow the issuer: the `2 1 1` records of the issuer of
//! the chain a service installs, and of the CA's other intermediates its `issuer-ahead-file`
//! names, published ahead.
//!
//! A rollover to a new key carries them through the engine (they are in its gate; the old
//! issuer's go with the other stale records once every endpoint serves the new chain). A
//! renewal that keeps the key ([`Driver::renew`](super::Driver)) publishes the new chain's issuer
//! records before its install, without the gate: the live key's `3 1 1` keeps matching the
//! renewed certificate, so a DANE sender verifies by it throughout, and holding a renewed
//! certificate back for 2×TTL would buy nothing. The record of an issuer no longer wanted goes
//! only once the probe shows every endpoint address matching with the key and no served chain
//! holding that issuer, and every nameserver serves the wanted issuers' records; when the
//! renewal cannot tell, `dane-roll run` looks again ([`Driver::keep_issuers`]).
//!
//! Key slots of a service (`ec`, `rsa`) share their issuer records: the same `2 1 1` at the same
//! owner names. Which may go is decided in one place, the engine's [`stale`], from the issuer
//! keys [`Driver::protected_issuers`] says the service's key slots want: a rollover's `verified`
//! phase and the retirement here both use it, so neither retires an issuer another slot's chain
//! still needs.

use std::path::Path;

use openssl::x509::X509;

use crate::config::{Scheme, Service};
use crate::pki;
use crate::rollover::engine::stale;
use crate::rollover::{
    ActionOutcome, Effects, Event, KeyHash, Observations, PhaseName, ProbeResult, ProbeVerdict,
    Slot, TlsaAt,
};
use crate::store::{KeyRole, RecordChange};
use crate::tlsa::Usage;

use super::{Driver, DriverError, chain_file, selected};

/// The key of the leaf's issuer in `certs` (leaf first): the `2 1 1` a chain asks for.
pub(crate) fn chain_issuer(certs: &[X509]) -> Option<KeyHash> {
    let der = certs.get(1)?.public_key().ok()?.public_key_to_der().ok()?;
    Some(KeyHash::of_spki_der(&der))
}

/// The issuer keys `service` wants for a chain (leaf first): the chain's issuer, then each
/// certificate of its `issuer-ahead-file`. Empty unless the scheme is `current+issuer`.
pub(crate) fn wanted_issuers(
    service: &Service,
    certs: &[X509],
) -> Result<Vec<KeyHash>, DriverError> {
    if service.scheme != Scheme::CurrentIssuer {
        return Ok(Vec::new());
    }
    let mut out: Vec<KeyHash> = chain_issuer(certs).into_iter().collect();
    if let Some(path) = &service.issuer_ahead_file {
        for key in ahead_issuers(service, path)? {
            if !out.contains(&key) {
                out.push(key);
            }
        }
    }
    Ok(out)
}

/// The keys of the certificates in an `issuer-ahead-file`.
fn ahead_issuers(service: &Service, path: &Path) -> Result<Vec<KeyHash>, DriverError> {
    let refuse = |why: String| DriverError::IssuerAheadFile {
        service: service.name.clone(),
        path: path.to_path_buf(),
        why,
    };
    let material = pki::load(path).map_err(|e| refuse(e.to_string()))?;
    if material.certificates().is_empty() {
        return Err(refuse("it holds no certificate".to_owned()));
    }
    material
        .certificates()
        .iter()
        .map(|cert| {
            let der = cert
                .public_key()
                .and_then(|k| k.public_key_to_der())
                .map_err(|e| refuse(format!("a certificate's key cannot be read: {e}")))?;
            Ok(KeyHash::of_spki_der(&der))
        })
        .collect()
}

/// Why stale issuer records cannot go yet, from the probe: `None` when every endpoint address
/// matched while serving `key` and no served chain holds any of `stale`.
pub(super) fn still_served(
    endpoints: &[String],
    key: KeyHash,
    results: &[ProbeResult],
    stale: &[KeyHash],
) -> Option<String> {
    if results.is_empty() {
        return Some("no endpoint address was probed".to_owned());
    }
    let mut why: Vec<String> = endpoints
        .iter()
        .filter(|e| !results.iter().any(|p| &p.endpoint == *e))
        .map(|e| format!("{e}: not probed"))
        .collect();
    for p in results {
        let at = format!("{} ({})", p.endpoint, p.address);
        if !matches!(p.verdict, ProbeVerdict::Match) || p.live_key != Some(key) {
            why.push(format!("{at}: {}", p.verdict));
        } else if let Some(k) = stale.iter().find(|k| p.chain.contains(k)) {
            why.push(format!(
                "{at} still serves a chain with issuer {}",
                k.short()
            ));
        }
    }
    if why.is_empty() {
        None
    } else {
        Some(why.join("; "))
    }
}

impl<E: Effects> Driver<E> {
    /// Before a renewal's install: the `2 1 1` records of `wanted` at every owner name that are
    /// not ours yet are published (each stored as ours first), and the slot's finished rollover
    /// keeps `wanted` as its issuers from now on. Returns the records that could not be
    /// published, with why (the install goes on: the live `3 1 1` matches the renewal).
    pub(super) fn publish_issuers(
        &mut self,
        service: &Service,
        slot: &Slot,
        wanted: &[KeyHash],
    ) -> Result<Vec<String>, DriverError> {
        let ours: Vec<(String, String)> = self
            .store
            .ours(&service.name, slot)?
            .iter()
            .map(|r| TlsaAt::new(&r.owner, r.record.clone()).sort_key())
            .collect();
        let mut failed = Vec::new();
        let mut published = Vec::new();
        for owner in self.effective_owners(service)? {
            for issuer in wanted {
                let record = TlsaAt::new(&owner, issuer.dane_ta());
                if ours.contains(&record.sort_key()) {
                    continue;
                }
                match self.publish(service, slot, &record, service.ttl)? {
                    ActionOutcome::Published { result: Ok(()), .. } => {
                        published.push(record.to_string());
                    }
                    ActionOutcome::Published { result: Err(e), .. } => {
                        failed.push(format!("{record}: {e}"))
                    }
                    ActionOutcome::RateLimited { detail, .. } => {
                        failed.push(format!("{record}: {detail}"));
                    }
                    _ => {}
                }
            }
        }
        let mut events = Vec::new();
        if !published.is_empty() {
            events.push(format!(
                "issuer record(s) of the chain to install published before the install \
                 (the live key's 3 1 1 matches the renewal meanwhile): {}",
                published.join(", ")
            ));
        }
        if let Some(mut r) = self.store.rollover(&service.name, slot)?
            && r.is_final()
            && r.request.issuers != wanted
        {
            let names: Vec<String> = wanted.iter().map(KeyHash::short).collect();
            let detail = format!(
                "the issuer records follow the chain installed: issuers {}",
                if names.is_empty() {
                    "none".to_owned()
                } else {
                    names.join(", ")
                }
            );
            r.request.issuers = wanted.to_vec();
            let now = self.now();
            let event = Event {
                time: now,
                phase: r.phase.name(),
                detail,
            };
            self.store.save(&r, &[event], &[], now)?;
        }
        self.issuer_events(service, slot, events)?;
        Ok(failed)
    }

    /// The issuer keys whose records no rollover or renewal of `slot` may retire now
    /// ([`Observations::protected_issuers`]): the issuers every stored rollover of the service
    /// wants (its chain's and `issuer-ahead-file`'s, kept current by renewals; `slot`'s own
    /// included) and, for each other key slot, the issuer of the chain in its chain file and,
    /// while its rollover is under way, of the previous chain (served until the new one is
    /// verified). A chain file that cannot be read adds nothing: its slot's rollover still
    /// says what it wants.
    pub(super) fn protected_issuers(
        &self,
        service: &Service,
        slot: &Slot,
    ) -> Result<Vec<KeyHash>, DriverError> {
        let mut keys = Vec::new();
        let mut chains: Vec<&Path> = Vec::new();
        let rollovers: Vec<_> = self
            .store
            .rollovers()?
            .into_iter()
            .filter(|r| r.request.service == service.name)
            .collect();
        for r in &rollovers {
            keys.extend(r.request.issuers.iter().copied());
            if r.request.slot != *slot && !r.is_final() {
                chains.extend(r.request.previous_chain.as_deref());
            }
        }
        if service.scheme == Scheme::CurrentIssuer {
            chains.extend(
                service
                    .chain_files
                    .all()
                    .into_iter()
                    .filter(|(algorithm, _)| algorithm.is_some_and(|a| a != slot.as_str()))
                    .map(|(_, path)| path),
            );
            for path in chains {
                match pki::load(path) {
                    Ok(material) => keys.extend(chain_issuer(material.certificates())),
                    Err(e) => tracing::debug!(
                        "service {}: the issuer of {} is not known ({e}); the stored \
                         rollovers say which issuers are wanted",
                        service.name,
                        path.display()
                    ),
                }
            }
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    /// The slot's issuer records no longer wanted: the `2 x x` records among what the engine
    /// would retire for the slot's finished rollover ([`stale`]), with every key of the service
    /// and the [protected issuers](Driver::protected_issuers) kept. `None` while the slot has no
    /// finished rollover (nothing says what is wanted).
    fn stale_issuers(
        &self,
        service: &Service,
        slot: &Slot,
    ) -> Result<Option<Vec<TlsaAt>>, DriverError> {
        let Some(r) = self.store.rollover(&service.name, slot)? else {
            return Ok(None);
        };
        if r.phase.name() != PhaseName::Done {
            return Ok(None);
        }
        let obs = Observations {
            ours: self.store.ours(&service.name, slot)?,
            protected: self
                .store
                .keys(&service.name)?
                .into_iter()
                .map(|k| k.hash)
                .collect(),
            protected_issuers: self.protected_issuers(service, slot)?,
            ..Observations::default()
        };
        Ok(Some(
            stale(&r, &obs)
                .into_iter()
                .filter(|t| t.record.usage == Usage::DaneTa)
                .collect(),
        ))
    }

    /// Retire the slot's stale issuer records once that is safe (see the [module docs](self)):
    /// `results` is a probe of every endpoint expecting `key`. Returns what happened, in words
    /// (recorded in the history; why they wait only when `note_waiting`, so that a timer's
    /// `run` does not repeat it), or `None` when nothing was stale.
    pub(super) fn retire_stale_issuers(
        &mut self,
        service: &Service,
        slot: &Slot,
        key: KeyHash,
        results: &[ProbeResult],
        note_waiting: bool,
    ) -> Result<Option<String>, DriverError> {
        let Some(stale) = self.stale_issuers(service, slot)? else {
            return Ok(None);
        };
        if stale.is_empty() {
            return Ok(None);
        }
        let stale_keys: Vec<KeyHash> = stale
            .iter()
            .filter_map(|t| t.record.data.as_slice().try_into().ok().map(KeyHash))
            .collect();
        let list: Vec<String> = stale.iter().map(ToString::to_string).collect();
        let endpoints = endpoints(service);
        if let Some(why) = still_served(&endpoints, key, results, &stale_keys) {
            let detail = format!(
                "the old issuer record(s) stay until no served chain holds them ({why}): {}",
                list.join(", ")
            );
            if note_waiting {
                self.issuer_events(service, slot, vec![detail.clone()])?;
            }
            tracing::debug!("service {} ({slot}): {detail}", service.name);
            return Ok(Some(detail));
        }
        let wanted: Vec<KeyHash> = self
            .store
            .rollover(&service.name, slot)?
            .map(|r| r.request.issuers)
            .unwrap_or_default();
        let mut lagging = Vec::new();
        for owner in self.effective_owners(service)? {
            let records: Vec<_> = wanted.iter().map(KeyHash::dane_ta).collect();
            let served = self.effects.served_everywhere(&owner, &records);
            let all = served.is_some_and(|s| records.iter().all(|r| s.contains(r)));
            if !all {
                lagging.push(owner);
            }
        }
        if !lagging.is_empty() {
            let detail = format!(
                "the old issuer record(s) stay until every nameserver serves the new issuer's \
                 at {}: {}",
                lagging.join(", "),
                list.join(", ")
            );
            if note_waiting {
                self.issuer_events(service, slot, vec![detail.clone()])?;
            }
            tracing::debug!("service {} ({slot}): {detail}", service.name);
            return Ok(Some(detail));
        }
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for record in &stale {
            match self.provider_change(service, record, service.ttl, false) {
                Ok(()) => {
                    let now = self.now();
                    self.store.record_changes(
                        &service.name,
                        slot,
                        &[RecordChange::Retired(record.clone())],
                        now,
                    )?;
                    done.push(record.to_string());
                }
                Err(e) => failed.push(format!("{record}: {e}")),
            }
        }
        let mut details = Vec::new();
        if !done.is_empty() {
            details.push(format!(
                "old issuer record(s) retired: no served chain holds them: {}",
                done.join(", ")
            ));
        }
        if !failed.is_empty() {
            details.push(format!(
                "retiring old issuer record(s) failed; the next run retries: {}",
                failed.join("; ")
            ));
        }
        let detail = details.join("; ");
        self.issuer_events(service, slot, details)?;
        Ok(Some(detail))
    }

    /// `dane-roll run`: for each `current+issuer` service (or `service`), each key slot whose
    /// rollover is done and that still has issuer records no longer wanted (a renewal whose
    /// probe could not tell, or a nameserver that lagged) is probed, and they go once safe.
    pub(super) fn keep_issuers(&mut self, service: Option<&str>) -> Result<(), DriverError> {
        let services: Vec<Service> = selected(&self.config, service)
            .filter(|s| s.scheme == Scheme::CurrentIssuer)
            .cloned()
            .collect();
        for svc in services {
            let _held = self.lock(&svc.name)?;
            let slots: Vec<Slot> = self
                .store
                .rollovers()?
                .into_iter()
                .filter(|r| r.request.service == svc.name && r.phase.name() == PhaseName::Done)
                .map(|r| r.request.slot)
                .collect();
            for slot in slots {
                if self
                    .stale_issuers(&svc, &slot)?
                    .is_none_or(|s| s.is_empty())
                {
                    continue;
                }
                let Some(key) = self
                    .store
                    .key(&svc.name, &slot, KeyRole::Current)?
                    .map(|k| k.hash)
                else {
                    continue;
                };
                if chain_file(&svc, &slot).is_err() {
                    continue;
                }
                let results = self.effects.probe(&svc, &slot, &endpoints(&svc), key);
                if let Some(detail) =
                    self.retire_stale_issuers(&svc, &slot, key, &results, false)?
                {
                    self.say(&svc.name, &slot, &detail);
                }
            }
        }
        Ok(())
    }

    fn issuer_events(
        &mut self,
        service: &Service,
        slot: &Slot,
        details: Vec<String>,
    ) -> Result<(), DriverError> {
        if details.is_empty() {
            return Ok(());
        }
        let phase = self
            .store
            .rollover(&service.name, slot)?
            .map_or(PhaseName::Done, |r| r.phase.name());
        let now = self.now();
        let events: Vec<Event> = details
            .into_iter()
            .map(|detail| Event {
                time: now,
                phase,
                detail,
            })
            .collect();
        self.store.add_events(&service.name, slot, &events)?;
        Ok(())
    }
}

/// The endpoints of `service`, `host:port`.
fn endpoints(service: &Service) -> Vec<String> {
    service
        .endpoints
        .iter()
        .map(|e| format!("{}:{}", e.host, e.port))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::still_served;
    use crate::rollover::{KeyHash, ProbeResult, ProbeVerdict};

    fn probe(verdict: ProbeVerdict, key: u8, chain: &[u8]) -> ProbeResult {
        ProbeResult {
            endpoint: "mx.example.test:25".to_owned(),
            address: "192.0.2.1".to_owned(),
            verdict,
            live_key: Some(KeyHash([key; 32])),
            chain: chain.iter().map(|b| KeyHash([*b; 32])).collect(),
        }
    }

    #[test]
    fn an_old_issuer_goes_only_once_no_served_chain_holds_it() {
        let endpoints = vec!["mx.example.test:25".to_owned()];
        let (key, old, new) = (KeyHash([1; 32]), KeyHash([2; 32]), 3);
        // The new chain everywhere: it may go.
        let served = [probe(ProbeVerdict::Match, 1, &[new])];
        assert_eq!(still_served(&endpoints, key, &served, &[old]), None);
        // An address still serving the old chain (a reload not taken): it stays.
        let served = [
            probe(ProbeVerdict::Match, 1, &[new]),
            probe(ProbeVerdict::Match, 1, &[2]),
        ];
        let why = still_served(&endpoints, key, &served, &[old]).expect("stays");
        assert!(why.contains("still serves a chain with issuer"), "{why}");
        // No conclusion, or nothing probed, or an endpoint left out: it stays.
        let unknown = [probe(ProbeVerdict::Unknown("timeout".into()), 1, &[new])];
        assert!(still_served(&endpoints, key, &unknown, &[old]).is_some());
        assert!(still_served(&endpoints, key, &[], &[old]).is_some());
        let two = vec![endpoints[0].clone(), "mx2.example.test:25".to_owned()];
        let served = [probe(ProbeVerdict::Match, 1, &[new])];
        assert!(still_served(&two, key, &served, &[old]).is_some());
        // Another key served: not the renewal's; it stays.
        let other = [probe(ProbeVerdict::Match, 9, &[new])];
        assert!(still_served(&endpoints, key, &other, &[old]).is_some());
    }
}
