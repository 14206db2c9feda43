//! Served-key drift: a key served on an endpoint that is not the store's current key of its
//! slot (the chain file replaced behind dane-roll's back, a certificate of another algorithm
//! deployed by hand). By the time this runs, `owners` has published the served key's record at
//! every owner name where it is served (stored as ours), so mail flows again as soon as the
//! resolvers see it. Here the drift is alerted once (check `drift/<service>/<slot>`, through the
//! firing policy) and adopted the safe way: when the slot's chain file holds the served key, a
//! rollover to it is staged from that file, exactly as a deploy would — its records are
//! published, the usual gate waits (every nameserver, then 2×TTL), the "install" rewrites the
//! same file, the probe verifies, and only then the old key's records are retired. When it
//! cannot be adopted (the chain file holds another key, the service has no chain file for the
//! key's algorithm) the alert says exactly what to do. An orphaned slot (its current key served
//! nowhere while every endpoint presents other keys) is said too; its records stay.

use std::path::Path;

use crate::config::Service;
use crate::notify::Severity;
use crate::rollover::{DeployOptions, DeployRequest, Effects, Event, PhaseName, Slot};

use super::owners::SlotLook;
use super::{Driver, DriverError, chain_file, installed_key, prepare, selected};

/// The check id of a slot's drift alert.
fn drift_check(service: &str, slot: &Slot) -> String {
    format!("drift/{service}/{slot}")
}

/// A mismatch between the key served and the store, in words (for `status --live`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The service.
    pub service: String,
    /// The key slot.
    pub slot: Slot,
    /// What is wrong and what happens or is to be done.
    pub text: String,
}

impl<E: Effects> Driver<E> {
    /// After the owner names of `svc` were reconciled: alert a drifted slot once and adopt its
    /// served key, or say what to do; close the alert once the drift is over.
    pub(super) fn handle_drift(
        &mut self,
        svc: &Service,
        look: &SlotLook,
    ) -> Result<(), DriverError> {
        let slot = &look.slot;
        let check = drift_check(&svc.name, slot);
        let subject = format!("{} ({slot})", svc.name);
        if let Some(stored) = look.orphaned {
            tracing::warn!(
                "service {} ({slot}): its current key {} is served on no \
                 endpoint (every endpoint presents keys of other algorithms only); its records \
                 stay. Deploy a {slot} certificate again to serve it, or leave them: a record of a \
                 key nobody serves harms no sender",
                svc.name,
                stored.short()
            );
        }
        let Some(drift) = &look.reconcile.drift else {
            let under_way = self
                .store
                .rollover(&svc.name, slot)?
                .is_some_and(|r| !r.is_final());
            if !under_way && self.alert_open(&check) {
                self.alert_as(
                    check,
                    &subject,
                    Severity::Ok,
                    &format!("{subject}: the served key is the stored current key again"),
                );
            }
            return Ok(());
        };
        let served = drift.served;
        let stored = drift
            .stored
            .map_or_else(|| "none".to_owned(), |k| k.short());
        let file = chain_file(svc, slot).ok().map(Path::to_path_buf);
        let in_file = file.as_deref().and_then(|f| installed_key(f, slot));
        let mut text = format!(
            "service {} ({slot}): the key served at {} is {}, not the stored current key {stored} \
             (changed outside dane-roll?); its record was published so mail flows once resolvers \
             see it",
            svc.name,
            crate::tlsa::OwnerName::join(&drift.owners, ", "),
            served.short()
        );
        let adopt = match (&file, in_file) {
            (Some(f), Some(k)) if k == served => Some(f.clone()),
            (Some(f), other) => {
                text.push_str(&format!(
                    "; it cannot be adopted: {} holds {} — reload the service if that file is \
                     what it should serve (`{}`), or deploy the served certificate with \
                     `dane-roll deploy --service {} --cert CERT --key KEY`",
                    f.display(),
                    other.map_or_else(
                        || format!("no {slot} key"),
                        |k| format!("key {}", k.short())
                    ),
                    svc.reload_line(),
                    svc.name
                ));
                None
            }
            (None, _) => {
                text.push_str(&format!(
                    "; it cannot be adopted: service {} has no chain file for {slot} keys — add \
                     `{slot} = \"/path/to/the/served/file\"` to its chain-files and run \
                     `dane-roll run` again, or deploy a certificate of the algorithm it is \
                     configured for",
                    svc.name
                ));
                None
            }
        };
        if adopt.is_some() {
            text.push_str(
                "; adopting it: a rollover to it is staged (its records wait the usual 2×TTL, \
                 the old key's records go once the handshake is verified)",
            );
        }
        if self.alert_open(&check) {
            self.say(&svc.name, slot, &text);
        } else {
            self.alert_as(check, &subject, Severity::Critical, &text);
        }
        let Some(file) = adopt else {
            return Ok(());
        };
        let request = DeployRequest {
            service: svc.name.clone(),
            cert: file.clone(),
            key: file,
            chain: None,
            next_key: None,
            origin: super::super::Origin::Manual,
        };
        let event = Event {
            time: self.now(),
            phase: PhaseName::Staged,
            detail: format!(
                "served key {} adopted (drift from {stored}): rollover staged",
                served.short()
            ),
        };
        match prepare(&self.config, &request).and_then(|p| {
            if p.hash() == served {
                self.deploy_prepared(p, DeployOptions::default())
            } else {
                Err(DriverError::NoCertificate {
                    path: request.cert.clone(),
                })
            }
        }) {
            Ok(_) => self.store.add_events(&svc.name, slot, &[event])?,
            Err(err) => tracing::error!(
                "service {} ({slot}): adopting the served key {} failed: {err}",
                svc.name,
                served.short()
            ),
        }
        Ok(())
    }

    /// Every key served that differs from the store's current key of its slot, for `status
    /// --live` (of `service`, or all). A rollover under way accounts for its new key once it
    /// installed it (phase installed or later) and for its old key before. Changes nothing.
    pub fn mismatches(&self, service: Option<&str>) -> Result<Vec<Mismatch>, DriverError> {
        let mut out = Vec::new();
        for svc in selected(&self.config, service) {
            for look in self.look_owners(svc)? {
                let rollover = self
                    .store
                    .rollover(&svc.name, &look.slot)?
                    .filter(|r| !r.is_final());
                for key in &look.served {
                    if Some(*key) == look.current {
                        continue;
                    }
                    let accounted = rollover.as_ref().is_some_and(|r| {
                        (r.request.old == Some(*key))
                            || (r.request.new == *key
                                && matches!(
                                    r.phase.name(),
                                    PhaseName::Installed
                                        | PhaseName::Verified
                                        | PhaseName::Retired
                                        | PhaseName::Aborting
                                ))
                    });
                    if accounted {
                        continue;
                    }
                    out.push(Mismatch {
                        service: svc.name.clone(),
                        slot: look.slot.clone(),
                        text: format!(
                            "key {} is served but the stored current key is {}{}",
                            key.short(),
                            look.current
                                .map_or_else(|| "none".to_owned(), |k| k.short()),
                            match &rollover {
                                Some(r) if r.request.new == *key => format!(
                                    " (being adopted: rollover in phase {})",
                                    r.phase.name()
                                ),
                                _ => "; `dane-roll run` adopts it or says what to do".to_owned(),
                            }
                        ),
                    });
                }
                if let Some(k) = look.orphaned {
                    out.push(Mismatch {
                        service: svc.name.clone(),
                        slot: look.slot.clone(),
                        text: format!("the stored current key {} is served nowhere", k.short()),
                    });
                }
            }
        }
        Ok(out)
    }
}
