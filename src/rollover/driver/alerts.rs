//! Alerts of the rollover driver: printed on stderr always, and sent through the alert channels
//! under a check id (`rollover/<service>/<slot>/<phase>`, `drift/<service>/<slot>`) so that the
//! firing policy sends each once until its state changes; recoveries when the problem is over.

use std::time::{Duration, SystemTime};

use crate::notify::{Alert, AlertMemory, Severity};
use crate::rollover::{Effects, PhaseName, Slot};

use super::Driver;

impl<E: Effects> Driver<E> {
    /// Send the recovery of every alert raised at one of `phases` of this slot's rollover that
    /// is still open: the problem it reported is over (the phase moved on, or the rollover is
    /// done). The firing policy sends one recovery message per open alert, and nothing for a
    /// phase that never alerted.
    pub(super) fn recover_alerts(
        &mut self,
        service: &str,
        slot: &Slot,
        phases: &[PhaseName],
        text: &str,
    ) {
        // Nothing to look up when no channel would carry a recovery.
        if !self.effects.has_alert_channels() {
            return;
        }
        for phase in phases {
            let check = alert_check(service, slot, *phase);
            if self.alert_open(&check) {
                self.alert_as(check, &format!("{service} ({slot})"), Severity::Ok, text);
            }
        }
    }

    /// Print an alert on stderr (always) and send it through the alert channels, once per
    /// service, slot and phase until it changes (the store remembers what was sent).
    pub(super) fn alert(&mut self, service: &str, slot: &Slot, phase: PhaseName, text: &str) {
        self.alert_as(
            alert_check(service, slot, phase),
            &format!("{service} ({slot})"),
            Severity::Critical,
            text,
        );
    }

    /// Print an alert (or, with [`Severity::Ok`], a recovery) on stderr and send it through the
    /// alert channels under the check id `check`: the firing policy sends it once until the
    /// check's state changes.
    pub(super) fn alert_as(
        &mut self,
        check: String,
        subject: &str,
        severity: Severity,
        text: &str,
    ) {
        if severity.is_bad() {
            tracing::error!(target: crate::output::ALERT, "{text}");
        }
        if !self.effects.has_alert_channels() {
            return;
        }
        let alert = Alert::new(
            check,
            subject.to_owned(),
            severity,
            text.chars().take(160).collect::<String>(),
            text,
        )
        .at(SystemTime::UNIX_EPOCH
            + Duration::from_millis(self.now().as_millis().max(0).unsigned_abs()));
        match self.effects.notify(&mut self.store, &alert) {
            Ok(failures) => {
                for f in failures {
                    tracing::warn!("alert channel failed: {f}");
                }
            }
            Err(err) => tracing::warn!("alert state not stored: {err}"),
        }
    }

    /// Whether the alert check `check` is open (a bad state was sent and not recovered).
    pub(super) fn alert_open(&self, check: &str) -> bool {
        AlertMemory::get(&self.store, check)
            .ok()
            .flatten()
            .is_some_and(|state| state.severity.is_bad())
    }
}

/// The alert check id of a rollover's phase: alerts fire once per service, slot and phase.
fn alert_check(service: &str, slot: &Slot, phase: PhaseName) -> String {
    format!("rollover/{service}/{slot}/{phase}")
}
