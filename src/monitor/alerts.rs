//! `check --notify`: every check of a run becomes an [`Alert`] with the check's id, and goes
//! through [`Notifier::observe`], whose firing policy (fire on a change, repeat after the
//! interval, recovery when ok again) decides whether anything is sent. The policy's memory is the
//! state store ([`crate::store::Store`] implements [`AlertMemory`]), so a second run that finds
//! the same failure sends nothing.
//!
//! A check that is no longer made (a host dropped from the MX RRset) keeps its last state in the
//! store: no recovery is sent for it.

use crate::notify::{Alert, AlertMemory, Notifier};

use super::{Check, CheckKind, RunReport};

/// What `--notify` did.
#[derive(Debug, Default)]
pub struct NotifySummary {
    /// Checks for which something was sent: `(check id, title, delivered to at least one
    /// channel)`.
    pub sent: Vec<(String, String, bool)>,
    /// Channel failures, as text (never holding a secret).
    pub failures: Vec<String>,
}

/// The alert for a check: its id, subject, status and message, and what it means for mail.
pub fn alert_for(check: &Check) -> Alert {
    let mut detail = check.message.clone();
    if let Some(note) = &check.note {
        detail.push_str("\n(");
        detail.push_str(note);
        detail.push(')');
    }
    let advice = match check.kind {
        CheckKind::TlsaMatch => {
            "DANE senders defer mail to this host while no record matches, and bounce it when \
             their queue lifetime ends. Publish a record for the key that is live (dane-roll tlsa \
             FILE), or put back the certificate whose key is published."
        }
        CheckKind::TlsaSecure | CheckKind::TcpParent => {
            "A SERVFAIL on the TLSA lookup makes DANE senders defer mail; no secure TLSA record \
             means DANE is not in effect (senders fall back to unauthenticated TLS). Check the \
             zone's signatures and every authoritative server (dig +dnssec _25._tcp.HOST TLSA)."
        }
        CheckKind::MxSecure => {
            "Without a DNSSEC-secure MX RRset senders do not look for TLSA records at all."
        }
        CheckKind::RrsigExpiry => {
            "When the signatures expire the TLSA lookup fails validation and DANE senders defer \
             mail: make sure the zone is re-signed."
        }
        CheckKind::TlsaStale | CheckKind::TlsaRecords => {
            "Records that match nothing pile up after rollovers; remove the stale ones once no \
             certificate with their key is served."
        }
        CheckKind::CertExpiry => {
            "Renew the certificate; under DANE-EE an expired certificate still matches, but other \
             senders (and DANE-TA) check dates."
        }
        CheckKind::Resolver | CheckKind::Target | CheckKind::Addresses | CheckKind::TlsaTtl => "",
    };
    if !advice.is_empty() && check.status.is_bad() {
        detail.push_str("\n\n");
        detail.push_str(advice);
    }
    let summary = match check.status {
        crate::notify::Severity::Ok => format!("{}: {}", check.kind.as_str(), check.message),
        _ => check.message.clone(),
    };
    Alert::new(
        check.id.clone(),
        check.subject.clone(),
        check.status,
        summary,
        detail,
    )
}

/// Apply the firing policy to every check of `run`, sending through `notifier` and remembering
/// in `memory`.
pub async fn notify<M: AlertMemory>(
    notifier: &Notifier,
    memory: &mut M,
    run: &RunReport,
) -> Result<NotifySummary, M::Error> {
    let mut summary = NotifySummary::default();
    for check in &run.checks {
        let alert = alert_for(check);
        if let Some(delivery) = notifier.observe(memory, &alert).await? {
            summary
                .sent
                .push((check.id.clone(), alert.title(), delivery.delivered()));
            for failure in delivery.failures() {
                if let Err(err) = &failure.result {
                    summary.failures.push(format!(
                        "alert channel \"{}\" ({}): {err}",
                        failure.channel, failure.kind
                    ));
                }
            }
        }
    }
    Ok(summary)
}
