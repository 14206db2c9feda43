//! `dane-roll abort`: abandon the rollover of a service (one key slot, or every slot with one
//! under way) under its lock. Whether the new certificate is installed is read from the
//! service's chain file itself (a process killed right after an install leaves the phase
//! `aged`), the rollover is saved as `aborting` (see [`crate::rollover::abort`]), and then
//! driven like any other: `dane-roll run` resumes an abort that was interrupted.

use crate::rollover::{DeployOptions, Effects, Rollover, Slot, abort};

use super::{Driver, DriverError, Standing, chain_file, find_service, installed_key};

impl<E: Effects> Driver<E> {
    /// Abandon the rollover of `service` (its `slot`, or every slot with one under way), then
    /// drive it as `options` say. Nothing is changed when one of them cannot be abandoned.
    pub fn abort(
        &mut self,
        service: &str,
        slot: Option<&Slot>,
        options: DeployOptions,
    ) -> Result<Vec<Standing>, DriverError> {
        let svc = find_service(&self.config, service)?.clone();
        let held = self.lock(service)?;
        let stored: Vec<Rollover> = self
            .store
            .rollovers()?
            .into_iter()
            .filter(|r| r.request.service == service && slot.is_none_or(|s| &r.request.slot == s))
            .collect();
        let Some(first) = stored.first().cloned() else {
            return Err(DriverError::NoRollover {
                service: service.to_owned(),
                slot: slot.cloned().unwrap_or_default(),
            });
        };
        let mut under_way: Vec<Rollover> = stored.into_iter().filter(|r| !r.is_final()).collect();
        if under_way.is_empty() {
            // Says why: the rollover is final.
            under_way.push(first);
        }
        // Check them all before saving any.
        let now = self.now();
        let mut steps = Vec::new();
        for r in under_way {
            let installed = chain_file(&svc, &r.request.slot)
                .ok()
                .and_then(|file| installed_key(file, &r.request.slot))
                == Some(r.request.new);
            steps.push(abort(r, installed, now)?);
        }
        let mut targets = Vec::new();
        for s in &steps {
            self.store.save(&s.next, &s.events, &[], now)?;
            self.show_events(s);
            targets.push((s.next.request.service.clone(), s.next.request.slot.clone()));
        }
        drop(held);
        self.drive(&targets, options)
    }
}
