//! The hook is a hint; the timer reconciles. Under cron an ACME client's hook can fail before it
//! reads anything (a bare environment, no configuration) and the client exits 0 all the same, so
//! `dane-roll run` looks at each service's ACME source itself ([`crate::hooks::source`]: its
//! `acme-source`, the one its last hook recorded, or its certbot `lineage`). It reads the client's current key and
//! certificate read-only, through the hook's own request code and [`prepare`], and compares them
//! with what is installed and what is under way:
//!
//! - the installed certificate, or the key of the rollover under way: nothing to do;
//! - a new key: the rollover starts exactly as the hook would have started it
//!   ([`Driver::deploy_prepared`], so the same gate), with an event saying the hook was missed;
//! - the installed key with a newer certificate (a renewal that kept its key): installed as the
//!   hook would (DNS unchanged);
//! - a certificate not newer than the installed one (one deployed by hand since): left alone;
//! - a key whose last rollover was rolled back: left alone, with a warning (the timer would
//!   otherwise retry a failing rollover every run; the hook or `dane-roll deploy` retries it);
//! - a key other than the one of a rollover under way: looked at again once that rollover ends;
//! - a source that cannot be read: a warning, nothing changes.

use std::cmp::Ordering;

use crate::config::Service;
use crate::hooks::source::AcmeSource;
use crate::hooks::{Client, Disk, Files};
use crate::pki;
use crate::rollover::{DeployOptions, Effects, Event, KeyHash, PhaseName, Slot};
use crate::store::RecordedSource;

use super::{
    DeployOutcome, Driver, DriverError, Prepared, Standing, chain_file, find_service, prepare,
};

/// What `run` makes of one service's ACME source.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The ACME client's certificate is the installed one.
    Installed,
    /// Its key is the one of the rollover under way: `run` drives it.
    UnderWay,
    /// Another key than the one of the rollover under way (`behind`): looked at again once
    /// that rollover ends.
    Queued {
        /// The key of the rollover under way.
        behind: KeyHash,
    },
    /// A key nothing installed or staged: start its rollover (the hook was missed).
    NewKey(KeyHash),
    /// The installed key with a newer certificate: install it (the hook was missed).
    Renewal(KeyHash),
    /// The installed certificate is newer than the ACME client's: left alone.
    Older,
    /// Not the installed certificate, but left alone for the reason given (a warning).
    Held(String),
    /// The source could not be read: nothing changes (a warning).
    Unreadable(String),
}

/// One service's ACME source as `run` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Look {
    /// The service.
    pub service: String,
    /// The ACME client.
    pub client: Client,
    /// Where the client keeps the certificate (for messages).
    pub location: String,
    /// Whether the source was recorded by a hook (else it is the configured lineage).
    pub recorded: bool,
    /// What to do.
    pub verdict: Verdict,
}

/// What `run` did about one service's ACME source.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reconciled {
    /// Nothing was done (see the look's verdict).
    Left,
    /// The hook was missed: the rollover to the new key was started and driven until it waits.
    Started(Standing),
    /// The hook was missed: the renewal was installed.
    Renewed {
        /// The key slot.
        slot: Slot,
        /// Whether the live handshake showed the key and matched the validated records.
        verified: bool,
        /// Why not, when not.
        problem: Option<String>,
    },
    /// Starting or installing failed (the next run tries again).
    Failed(String),
}

impl<E: Effects> Driver<E> {
    /// Record where `service`'s ACME client keeps its certificate (a hook calls this with its
    /// own input, once the request it made was checked).
    pub fn record_source(&mut self, service: &str, source: &AcmeSource) -> Result<(), DriverError> {
        let entry = RecordedSource {
            service: service.to_owned(),
            client: source.client().to_string(),
            source: source.to_json(),
            recorded: self.now(),
        };
        Ok(self.store.set_acme_source(&entry)?)
    }

    /// The ACME source of `svc`: its `acme-source`, else the one its hook last recorded, else
    /// its certbot lineage. A recorded source that cannot be read is reported as unreadable.
    fn source_of(&self, svc: &Service) -> Result<Option<(AcmeSource, bool)>, Look> {
        if let Some(configured) = AcmeSource::from_config(svc) {
            return Ok(configured.map(|source| (source, false)));
        }
        let recorded = self.store.acme_source(&svc.name).map_err(|e| Look {
            service: svc.name.clone(),
            client: Client::Certbot,
            location: self.store.path().display().to_string(),
            recorded: true,
            verdict: Verdict::Unreadable(e.to_string()),
        })?;
        if let Some(r) = recorded {
            match AcmeSource::from_json(&r.source) {
                Ok(source) => return Ok(Some((source, true))),
                Err(e) => {
                    if let Some(source) = AcmeSource::from_lineage(svc) {
                        return Ok(Some((source, false)));
                    }
                    return Err(Look {
                        service: svc.name.clone(),
                        client: Client::Certbot,
                        location: self.store.path().display().to_string(),
                        recorded: true,
                        verdict: Verdict::Unreadable(format!(
                            "the {} source recorded by the last hook cannot be read ({e}); the \
                             next successful hook records it again",
                            r.client
                        )),
                    });
                }
            }
        }
        Ok(AcmeSource::from_lineage(svc).map(|s| (s, false)))
    }

    /// Look at the ACME source of every service (or of `service`) without changing anything.
    pub fn reconcile_look(&self, service: Option<&str>) -> Result<Vec<Look>, DriverError> {
        Ok(self
            .look_all(service, &Disk)?
            .into_iter()
            .map(|(look, _)| look)
            .collect())
    }

    fn look_all(
        &self,
        service: Option<&str>,
        files: &dyn Files,
    ) -> Result<Vec<(Look, Option<Prepared>)>, DriverError> {
        if let Some(name) = service {
            find_service(&self.config, name)?;
        }
        let mut out = Vec::new();
        for svc in &self.config.services {
            if service.is_some_and(|s| s != svc.name) {
                continue;
            }
            let (source, recorded) = match self.source_of(svc) {
                Ok(Some(found)) => found,
                Ok(None) => continue,
                Err(look) => {
                    out.push((look, None));
                    continue;
                }
            };
            let (verdict, prepared) = self.look(svc, &source, files)?;
            out.push((
                Look {
                    service: svc.name.clone(),
                    client: source.client(),
                    location: source.location(),
                    recorded,
                    verdict,
                },
                prepared,
            ));
        }
        Ok(out)
    }

    /// The verdict on one source, with the checked request when there is something to do.
    fn look(
        &self,
        svc: &Service,
        source: &AcmeSource,
        files: &dyn Files,
    ) -> Result<(Verdict, Option<Prepared>), DriverError> {
        let unreadable = |why: String| Ok((Verdict::Unreadable(why), None));
        let request = match source.request(&self.config, &svc.name, files) {
            Ok(request) => request,
            Err(e) => return unreadable(e.to_string()),
        };
        let p = match prepare(&self.config, &request) {
            Ok(p) => p,
            Err(e) => return unreadable(e.to_string()),
        };
        let (slot, key) = (p.slot().clone(), p.hash());
        let Some(leaf) = p.leaf() else {
            return unreadable("no certificate".to_owned());
        };
        let installed = chain_file(svc, &slot)
            .ok()
            .and_then(|f| pki::load(f).ok())
            .and_then(|m| m.leaf().map(ToOwned::to_owned));
        let same = match installed.as_deref().map(|i| pki::same_certificate(i, leaf)) {
            Some(Err(e)) => return unreadable(format!("a certificate cannot be encoded: {e}")),
            same => matches!(same, Some(Ok(true))),
        };
        if same {
            return Ok((Verdict::Installed, None));
        }
        let stored = self.store.rollover(&svc.name, &slot)?;
        if let Some(r) = stored.as_ref().filter(|r| !r.is_final()) {
            if r.request.new == key {
                return Ok((Verdict::UnderWay, None));
            }
            return Ok((
                Verdict::Queued {
                    behind: r.request.new,
                },
                None,
            ));
        }
        if let Some(installed) = &installed
            && leaf.not_before().compare(installed.not_before()).ok() != Some(Ordering::Greater)
        {
            return Ok((Verdict::Older, None));
        }
        if self.current_key(svc, &slot)? == Some(key) {
            return Ok((Verdict::Renewal(key), Some(p)));
        }
        if stored.is_some_and(|r| r.phase.name() == PhaseName::RolledBack && r.request.new == key) {
            return Ok((
                Verdict::Held(format!(
                    "the rollover to its key {} was rolled back (`dane-roll status --history {}` \
                     says why), and the timer does not retry it; once the cause is fixed, run the \
                     hook again or `dane-roll deploy --service {} --cert … --key …`",
                    key.short(),
                    svc.name,
                    svc.name
                )),
                None,
            ));
        }
        Ok((Verdict::NewKey(key), Some(p)))
    }

    /// Look at every service's ACME source (or `service`'s) and act as the hook would have: start
    /// the rollover to a new key, install a renewal. Nothing is waited for here: `run` drives
    /// what was started.
    pub fn reconcile(
        &mut self,
        service: Option<&str>,
    ) -> Result<Vec<(Look, Reconciled)>, DriverError> {
        self.reconcile_with(service, &Disk)
    }

    /// [`Driver::reconcile`] looking at files through `files`.
    pub fn reconcile_with(
        &mut self,
        service: Option<&str>,
        files: &dyn Files,
    ) -> Result<Vec<(Look, Reconciled)>, DriverError> {
        let mut out = Vec::new();
        for (look, prepared) in self.look_all(service, files)? {
            let Some(p) = prepared else {
                out.push((look, Reconciled::Left));
                continue;
            };
            let slot = p.slot().clone();
            let phase = self
                .store
                .rollover(&look.service, &slot)?
                .map_or(PhaseName::Done, |r| r.phase.name());
            let what = match look.verdict {
                Verdict::Renewal(_) => "a renewal with the installed key",
                _ => "a new key",
            };
            let detail = format!(
                "the hook was missed: {}'s certificate in {} ({what} {}) was never handed over; \
                 the timer picked it up",
                look.client,
                look.location,
                p.hash().short()
            );
            self.store.add_events(
                &look.service,
                &slot,
                &[Event {
                    time: self.now(),
                    phase,
                    detail,
                }],
            )?;
            let done = match self.deploy_prepared(p, DeployOptions::default()) {
                Ok(DeployOutcome::Rollover(standing)) => Reconciled::Started(standing),
                Ok(DeployOutcome::Renewed {
                    slot,
                    verified,
                    problem,
                    ..
                }) => Reconciled::Renewed {
                    slot,
                    verified,
                    problem,
                },
                Err(e) => Reconciled::Failed(e.to_string()),
            };
            out.push((look, done));
        }
        Ok(out)
    }
}
