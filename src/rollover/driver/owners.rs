//! Keeping every owner name deliverable, for real: on every `run` (and, without changing
//! anything, for `plan` and `status --live`), each owner name of each service is looked at —
//! which key its endpoint serves (the probe, every key algorithm), what every authoritative server
//! serves there — and [`crate::rollover::owners::reconcile`] says what it needs. `run` then
//! publishes the live key's records first (stored as ours before they are added), then the next
//! key's, and retires records of ours at owner names removed from the configuration once nothing
//! serves there any more. Served-key drift is handed to `drift`.

use std::collections::BTreeSet;

use crate::config::{Protocol, Service};
use crate::rollover::effects::Served;
use crate::rollover::owners::{self, Because, OwnerSeen, Reconcile, Seen, SlotOwners};
use crate::rollover::{ActionOutcome, Effects, Event, KeyHash, OwnerName, PhaseName, Slot, TlsaAt};
use crate::store::{KeyRole, RecordChange};
use crate::tlsa::TlsaRecord;

use super::{Driver, DriverError, Standing, find_service, selected};

/// One key slot's owner names, as looked at now, and what they need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotLook {
    /// The service.
    pub service: String,
    /// The key slot.
    pub slot: Slot,
    /// What the owner names need.
    pub reconcile: Reconcile,
    /// The store's current key of the slot.
    pub current: Option<KeyHash>,
    /// The keys of this slot's algorithm the configured endpoints serve (the probe).
    pub served: Vec<KeyHash>,
    /// Set when the slot's stored current key is served on no configured endpoint although every
    /// endpoint showed a key: an orphaned slot (e.g. an RSA certificate replaced an EC one).
    pub orphaned: Option<KeyHash>,
}

/// What `run` did to one slot's owner names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OwnersDone {
    /// Records published.
    pub published: Vec<String>,
    /// Records retired.
    pub retired: Vec<String>,
    /// Failures (the next run retries).
    pub failures: Vec<String>,
}

/// The key slot of a key type as the probe words it (`RSA 2048`, `EC P-256`, `Ed25519`).
pub(super) fn slot_of_key_type(key_type: &str) -> Option<Slot> {
    let slot = if key_type.starts_with("RSA") {
        Slot::Rsa
    } else if key_type.starts_with("EC") {
        Slot::Ec
    } else if key_type.starts_with("Ed25519") {
        Slot::Ed
    } else {
        return None;
    };
    Some(slot)
}

/// The protocol of the endpoint `host:port`: as configured, else the port's usual one, else
/// SMTP.
pub(super) fn endpoint_protocol(svc: &Service, host: &str, port: u16) -> Protocol {
    svc.endpoints
        .iter()
        .find(|e| e.host == host && e.port == port)
        .map(|e| e.protocol)
        .or_else(|| Protocol::default_for_port(port))
        .unwrap_or(Protocol::Smtp)
}

impl<E: Effects> Driver<E> {
    /// Look at every owner name of `svc` (configured, and removed ones that still hold records
    /// of ours) and say what each key slot needs. Changes nothing.
    pub fn look_owners(&self, svc: &Service) -> Result<Vec<SlotLook>, DriverError> {
        // Where the records really live: an owner name that is a CNAME has its records at the
        // target (known once `aliases` followed them in this process; `run` and `next-key` do
        // that first). A target is no `_port._tcp.host` name, so its endpoint cannot be probed
        // from it: the store's current key stands in there.
        let configured = match self.aliases.get(&svc.name) {
            Some(aliases) => super::alias::targets(aliases),
            None => svc.owner_names(),
        };
        let ours_all: Vec<_> = self
            .store
            .published(&svc.name)?
            .into_iter()
            .filter(|p| p.retired_at.is_none())
            .collect();
        let mut all_owners: Vec<OwnerName> = configured.clone();
        for p in &ours_all {
            if !all_owners.contains(&p.record.owner) {
                all_owners.push(p.record.owner.clone());
            }
        }
        let keys = self.store.keys(&svc.name)?;
        if keys.is_empty() && ours_all.is_empty() {
            // Nothing deployed or published yet: the service's owner names are not managed
            // (its records, if any, are the operator's), so nothing is probed or published.
            return Ok(Vec::new());
        }
        let mut slots: BTreeSet<Slot> = keys.iter().map(|k| k.slot.clone()).collect();
        slots.extend(ours_all.iter().map(|p| p.slot.clone()));
        // Each owner name's endpoint, probed once.
        let mut served: Vec<(OwnerName, bool, Served)> = Vec::new();
        for owner in &all_owners {
            let is_configured = configured.contains(owner);
            let seen = match owner.endpoint() {
                Some((host, port)) => self.effects.served_at(svc, host, port),
                None => Served::Unknown(format!("{owner} is not a _port._tcp.host name")),
            };
            if let Served::Keys(k) = &seen {
                slots.extend(k.iter().map(|(s, _)| s.clone()));
            }
            served.push((owner.clone(), is_configured, seen));
        }
        let mut out = Vec::new();
        for slot in slots {
            let key_of = |role| {
                keys.iter()
                    .find(|k| k.slot == slot && k.role == role)
                    .map(|k| k.hash)
            };
            let current = key_of(KeyRole::Current);
            let next = key_of(KeyRole::Next);
            let under_way = self
                .store
                .rollover(&svc.name, &slot)?
                .is_some_and(|r| !r.is_final());
            let ours: Vec<TlsaAt> = ours_all
                .iter()
                .filter(|p| p.slot == slot)
                .map(|p| p.record.clone())
                .collect();
            let mut seen_owners = Vec::new();
            let mut served_keys: Vec<KeyHash> = Vec::new();
            let mut every_endpoint_showed_keys = true;
            let mut slot_served = false;
            for (owner, is_configured, s) in &served {
                let seen = match s {
                    Served::Keys(k) => {
                        let mine: Vec<KeyHash> = k
                            .iter()
                            .filter(|(ks, _)| *ks == slot)
                            .map(|(_, h)| *h)
                            .collect();
                        if mine.is_empty() {
                            Seen::Unknown(format!("no {slot} key was presented"))
                        } else {
                            if *is_configured {
                                slot_served = true;
                                for k in &mine {
                                    if !served_keys.contains(k) {
                                        served_keys.push(*k);
                                    }
                                }
                            }
                            Seen::Keys(mine)
                        }
                    }
                    Served::Not(why) => Seen::NotServed(why.clone()),
                    Served::Unknown(why) => Seen::Unknown(why.clone()),
                };
                if *is_configured && !matches!(s, Served::Keys(_)) {
                    every_endpoint_showed_keys = false;
                }
                let mut candidates: Vec<TlsaRecord> = Vec::new();
                if let Seen::Keys(k) = &seen {
                    candidates.extend(k.iter().map(KeyHash::dane_ee));
                }
                candidates.extend(current.iter().map(KeyHash::dane_ee));
                candidates.extend(next.iter().map(KeyHash::dane_ee));
                let present = if *is_configured && !under_way {
                    self.effects.served_everywhere(owner, &candidates)
                } else {
                    None
                };
                seen_owners.push(OwnerSeen {
                    owner: owner.clone(),
                    configured: *is_configured,
                    seen,
                    present,
                });
            }
            let reconcile = owners::reconcile(&SlotOwners {
                current,
                next,
                installed: keys.iter().any(|k| k.role == KeyRole::Current),
                under_way,
                owners: &seen_owners,
                ours: &ours,
            });
            let orphaned = current.filter(|_| {
                !under_way && !slot_served && every_endpoint_showed_keys && !served.is_empty()
            });
            out.push(SlotLook {
                service: svc.name.clone(),
                slot,
                reconcile,
                current,
                served: served_keys,
                orphaned,
            });
        }
        Ok(out)
    }

    /// [`Driver::look_owners`] for every service (or `service`): what `run` would do to the
    /// owner names now (for `plan`). Changes nothing.
    pub fn look_all_owners(&self, service: Option<&str>) -> Result<Vec<SlotLook>, DriverError> {
        if let Some(name) = service {
            find_service(&self.config, name)?;
        }
        let mut out = Vec::new();
        for svc in selected(&self.config, service) {
            out.extend(self.look_owners(svc)?);
        }
        Ok(out)
    }

    /// Under the service's lock: do what `look` says for one slot's owner names — every live
    /// key's record first, then the next key's (none once a live key's record failed), then
    /// the retirements of removed owner names.
    pub(super) fn reconcile_owners(
        &mut self,
        svc: &Service,
        look: &SlotLook,
    ) -> Result<OwnersDone, DriverError> {
        let mut done = OwnersDone::default();
        let slot = &look.slot;
        let phase = self
            .store
            .rollover(&svc.name, slot)?
            .map_or(PhaseName::Done, |r| r.phase.name());
        let mut events = Vec::new();
        let mut live_failed = false;
        for (record, because) in &look.reconcile.publish {
            if live_failed {
                break;
            }
            let why = match because {
                Because::Live(from) => format!("the key served there ({from})"),
                Because::Next => "the next key".to_owned(),
            };
            self.say(&svc.name, slot, &format!("publishing {record}: {why}"));
            let failure = match self.publish(svc, slot, record, svc.ttl)? {
                ActionOutcome::Published { result: Ok(()), .. } => None,
                ActionOutcome::Published {
                    result: Err(err), ..
                } => Some(err.to_string()),
                ActionOutcome::RateLimited { detail, .. } => Some(detail),
                _ => None,
            };
            match failure {
                None => {
                    done.published.push(record.to_string());
                    events.push(Event {
                        time: self.now(),
                        phase,
                        detail: format!("published {record} ({why})"),
                    });
                }
                Some(err) => {
                    done.failures.push(format!("publishing {record}: {err}"));
                    live_failed = matches!(because, Because::Live(_));
                }
            }
        }
        for record in &look.reconcile.retire {
            self.say(
                &svc.name,
                slot,
                &format!(
                    "retiring {record}: its owner name is no longer configured and nothing \
                     serves there"
                ),
            );
            match self.provider_change(svc, record, svc.ttl, false) {
                Ok(()) => {
                    self.store.record_changes(
                        &svc.name,
                        slot,
                        &[RecordChange::Retired(record.clone())],
                        self.now(),
                    )?;
                    done.retired.push(record.to_string());
                    events.push(Event {
                        time: self.now(),
                        phase,
                        detail: format!(
                            "retired {record}: owner name removed and not served any more"
                        ),
                    });
                }
                Err(err) => done.failures.push(format!("retiring {record}: {err}")),
            }
        }
        for (record, why) in &look.reconcile.kept {
            self.say(&svc.name, slot, &format!("keeping {record}: {why}"));
        }
        if !events.is_empty() {
            self.store.add_events(&svc.name, slot, &events)?;
        }
        Ok(done)
    }

    /// Every service's (or `service`'s) owner names, looked at and reconciled; then the
    /// drift of each slot handled (alerted once, adopted or explained). Returns the failures.
    pub(super) fn keep_owners(
        &mut self,
        service: Option<&str>,
    ) -> Result<Vec<(String, Slot, String)>, DriverError> {
        let services: Vec<Service> = selected(&self.config, service).cloned().collect();
        let mut failures = Vec::new();
        for svc in services {
            // CNAMEs at owner names followed first, so that records go to their targets; a
            // chain that cannot be followed is reported by the rollover that needs it.
            let _ = self.aliases(&svc);
            let looks = {
                let _held = self.lock(&svc.name)?;
                // A final rollover whose keys lag behind it (a crash) is settled first, so that
                // the current key below is the live one.
                for r in self.store.rollovers()? {
                    if r.request.service == svc.name && r.is_final() {
                        self.settle_keys(&svc.name, &r.request.slot)?;
                    }
                }
                let looks = self.look_owners(&svc)?;
                for look in &looks {
                    let done = self.reconcile_owners(&svc, look)?;
                    failures.extend(
                        done.failures
                            .into_iter()
                            .map(|f| (svc.name.clone(), look.slot.clone(), f)),
                    );
                }
                looks
            };
            // The lock is released: adopting a drifted key stages a rollover, which takes it.
            for look in &looks {
                self.handle_drift(&svc, look)?;
            }
        }
        Ok(failures)
    }
}

/// The owner names' failures of a run, as standings (exit 2; the next run retries): added to
/// the standing of the same service and slot, or as a standing of their own.
pub(super) fn fold_failures(standings: &mut Vec<Standing>, failures: Vec<(String, Slot, String)>) {
    for (service, slot, failure) in failures {
        if let Some(s) = standings
            .iter_mut()
            .find(|s| s.service == service && s.slot == slot)
        {
            s.failures.push(failure);
        } else {
            standings.push(Standing {
                service,
                slot,
                phase: PhaseName::Done,
                wait_until: None,
                waiting_for: None,
                failures: vec![failure],
                needs_fix: false,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::slot_of_key_type;
    use crate::rollover::Slot;

    /// Owner names map back to endpoints in [`crate::tlsa::OwnerName::endpoint`].
    #[test]
    fn key_types_map_to_slots() {
        assert_eq!(slot_of_key_type("EC P-256"), Some(Slot::Ec));
        assert_eq!(slot_of_key_type("RSA 2048"), Some(Slot::Rsa));
        assert_eq!(slot_of_key_type("RSA-PSS 2048"), Some(Slot::Rsa));
        assert_eq!(slot_of_key_type("Ed448"), None);
    }
}
