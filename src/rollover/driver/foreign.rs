//! `prune --foreign`: records at a service's owner names that dane-roll never published (an
//! operator's hand-made record, a leftover of another tool). One goes only when it is a
//! `3 1 1` record that matches no key the store knows (any service: current, next, new, the
//! keys of every stored rollover) and no key any endpoint address serves now (probed first by
//! `prune`, which refuses when an address cannot be seen). Any other form (`3 0 1`, `2 1 1`, …)
//! is kept and listed: whether it matches a served certificate cannot be told from the keys
//! alone. Removed one by one (by rdata), each stored as retired with its TTL, so the monitor
//! knows resolvers may still hold it.

use crate::config::Service;
use crate::rollover::effects::ProviderFailure;
use crate::rollover::{Effects, Event, KeyHash, PhaseName, Slot, TlsaAt};
use crate::store::RecordChange;
use crate::tlsa::{Matching, Selector, Usage};

use super::{Driver, DriverError, PruneReport};

impl<E: Effects> Driver<E> {
    pub(super) fn prune_foreign(
        &mut self,
        svc: &Service,
        mut keep: Vec<KeyHash>,
        report: &mut PruneReport,
    ) -> Result<(), DriverError> {
        for r in self.store.rollovers()? {
            keep.push(r.request.new);
            keep.extend(r.request.old);
            keep.extend(r.request.next);
            keep.extend(r.request.issuers.iter().copied());
        }
        let names: Vec<String> = self
            .config
            .services
            .iter()
            .map(|s| s.name.clone())
            .collect();
        for name in names {
            keep.extend(self.store.keys(&name)?.into_iter().map(|k| k.hash));
        }
        let ours: Vec<TlsaAt> = self
            .store
            .published(&svc.name)?
            .into_iter()
            .filter(|p| p.retired_at.is_none())
            .map(|p| p.record)
            .collect();
        for owner in self.effective_owners(svc)? {
            let listed = match self.effects.list_records(svc, &owner) {
                Ok(records) => records,
                Err(ProviderFailure::Setup(err)) => {
                    report
                        .failed
                        .push(format!("provider {}: {err}", svc.provider));
                    return Ok(());
                }
                Err(ProviderFailure::Failed { error: err, .. }) => {
                    report
                        .failed
                        .push(format!("{owner}: listing the records failed: {err}"));
                    continue;
                }
            };
            for wire in listed {
                let Ok(record) = wire.rdata.parse::<crate::tlsa::TlsaRecord>() else {
                    report.kept_foreign.push(format!(
                        "{owner} TLSA {}: not understood; left alone",
                        wire.rdata
                    ));
                    continue;
                };
                let at = TlsaAt::new(&owner, record);
                if ours.contains(&at) {
                    continue; // the service's own: pruned above, by the rules for ours
                }
                if let Some(k) = keep.iter().find(|k| at.is_of(k)) {
                    report
                        .kept_foreign
                        .push(format!("{at}: matches key {}", k.short()));
                    continue;
                }
                let r = &at.record;
                if !(r.usage == Usage::DaneEe
                    && r.selector == Selector::Spki
                    && r.matching == Matching::Sha256)
                {
                    report.kept_foreign.push(format!(
                        "{at}: not a 3 1 1 record, so whether it matches a served certificate \
                         cannot be told; remove it by hand if it is stale"
                    ));
                    continue;
                }
                if report.dry_run {
                    report.foreign.push(at.to_string());
                    continue;
                }
                match self.provider_change(svc, &at, wire.ttl, false) {
                    Ok(()) => {
                        let slot = Slot::default();
                        let now = self.now();
                        // Stored as published and retired at once: it was never ours, but the
                        // monitor learns that resolvers may hold it for its TTL.
                        self.store.record_changes(
                            &svc.name,
                            &slot,
                            &[
                                RecordChange::Published {
                                    record: at.clone(),
                                    ttl: wire.ttl,
                                },
                                RecordChange::Retired(at.clone()),
                            ],
                            now,
                        )?;
                        let phase = self
                            .store
                            .rollover(&svc.name, &slot)?
                            .map_or(PhaseName::Done, |r| r.phase.name());
                        self.store.add_events(
                            &svc.name,
                            &slot,
                            &[Event {
                                time: now,
                                phase,
                                detail: format!(
                                    "pruned foreign {at} (matched no known or served key)"
                                ),
                            }],
                        )?;
                        report.foreign.push(at.to_string());
                    }
                    Err(err) => report.failed.push(format!("{at}: {err}")),
                }
            }
        }
        Ok(())
    }
}
