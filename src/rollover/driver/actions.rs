//! The actions, performed for real: records through the provider (stored as ours before they
//! are added), the authoritative view and the validating resolver, install and reload, the live
//! probe and the next key (alerts are in `alerts`).

use dane_roll_providers::{Change, ProviderError};

use std::path::{Path, PathBuf};

use crate::config::Service;
use crate::install::InstallError;
use crate::pki;
use crate::rollover::effects::ProviderFailure;
use crate::rollover::engine::gate;
use crate::rollover::{
    Action, ActionOutcome, Effects, Failure, KeyHash, Rollover, Slot, Timestamp, TlsaAt,
};
use crate::store::{KeyEntry, KeyRole, RecordChange};

use super::{Driver, DriverError, chain_file, rate_limit};

/// The failure an outcome reports: in words, and whether only a fix makes it pass.
pub(super) fn failure_of(outcome: &ActionOutcome) -> Option<(String, bool)> {
    let (words, failure) = match outcome {
        ActionOutcome::Published {
            record,
            result: Err(e),
        } => (format!("publishing {record}: {e}"), e),
        ActionOutcome::Retired {
            record,
            result: Err(e),
        } => (format!("retiring {record}: {e}"), e),
        ActionOutcome::Installed(Err(e)) => (format!("install: {e}"), e),
        ActionOutcome::Reloaded(Err(e)) => (format!("reload: {e}"), e),
        ActionOutcome::Reinstalled(Err(e)) => (format!("reinstall: {e}"), e),
        ActionOutcome::NextKey(Err(e)) => (format!("next key: {e}"), e),
        _ => return None,
    };
    Some((words, !failure.is_retryable()))
}

/// Whether a provider's error will repeat until someone changes something: credentials the
/// provider refuses, a zone it does not serve, a record or TTL it rejects, an operation it does
/// not support. Time-outs, refused connections, unreadable answers and records not yet visible
/// may pass by themselves.
fn provider_failure(words: String, error: &ProviderError) -> Failure {
    match error {
        ProviderError::TsigBadSig { .. }
        | ProviderError::TsigBadKey { .. }
        | ProviderError::Key(_)
        | ProviderError::Refused { .. }
        | ProviderError::NotAuth { .. }
        | ProviderError::NoZone { .. }
        | ProviderError::Unauthorized { .. }
        | ProviderError::Forbidden { .. }
        | ProviderError::NotFound { .. }
        | ProviderError::Rejected { .. }
        | ProviderError::Unsupported { .. } => Failure::permanent(words),
        _ => Failure::retryable(words),
    }
}

/// An install or reload that failed, with whether only a fix makes it pass
/// ([`InstallError::is_permanent`]).
fn install_failure(error: InstallError) -> Failure {
    if error.is_permanent() {
        Failure::permanent(error.to_string())
    } else {
        Failure::retryable(error.to_string())
    }
}

/// Why one record change through the provider did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ChangeError {
    /// It failed: alerted, and the next run retries.
    Failed(Failure),
    /// The provider asked to wait until `until`: nothing was sent; not a failure.
    RateLimited {
        /// When to ask again.
        until: Timestamp,
        /// What the provider said.
        detail: String,
    },
}

impl ChangeError {
    /// The failure as the engine sees it (a rate limit here is one that may pass by itself).
    fn into_failure(self) -> Failure {
        match self {
            ChangeError::Failed(failure) => failure,
            ChangeError::RateLimited { detail, .. } => Failure::retryable(detail),
        }
    }
}

impl std::fmt::Display for ChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeError::Failed(why) => write!(f, "{why}"),
            ChangeError::RateLimited { detail, .. } => f.write_str(detail),
        }
    }
}

/// The engine's outcome for a record change the provider's rate limit put off.
fn rate_limited(record: &TlsaAt, until: Timestamp, detail: String) -> ActionOutcome {
    ActionOutcome::RateLimited {
        record: record.clone(),
        retry_at: until,
        detail,
    }
}

impl<E: Effects> Driver<E> {
    pub(super) fn perform(
        &mut self,
        svc: &Service,
        r: &Rollover,
        action: &Action,
    ) -> Result<Option<ActionOutcome>, DriverError> {
        Ok(Some(match action {
            Action::Publish { record, ttl } => self.publish(svc, &r.request.slot, record, *ttl)?,
            Action::CheckDns { expected } => {
                let mut report = self.effects.check_dns(expected, &r.gate_set());
                super::observe::skip(&mut report, &self.skip_nameservers);
                // Each record on its own: the next key's may lag behind the new key's.
                let changes: Vec<RecordChange> = expected
                    .iter()
                    .filter(|rec| gate(std::slice::from_ref(*rec), &report).is_ok())
                    .map(|rec| RecordChange::Confirmed(rec.clone()))
                    .collect();
                if !changes.is_empty() {
                    let at = self.now();
                    self.store
                        .record_changes(&r.request.service, &r.request.slot, &changes, at)?;
                }
                ActionOutcome::Dns(report)
            }
            Action::Install { chain } => {
                ActionOutcome::Installed(self.install_chain(svc, r, chain, "installing")?)
            }
            Action::Reload => {
                self.note(r, format!("running `{}`", svc.reload_line()))?;
                ActionOutcome::Reloaded(self.effects.reload(svc).map_err(install_failure))
            }
            Action::Probe { endpoints, expect } => {
                ActionOutcome::Probed(self.effects.probe(svc, &r.request.slot, endpoints, *expect))
            }
            Action::Retire(record) => {
                self.note(r, format!("retiring {record}"))?;
                let result = match self.provider_change_typed(svc, record, svc.ttl, false) {
                    Err(ChangeError::RateLimited { until, detail }) => {
                        return Ok(Some(rate_limited(record, until, detail)));
                    }
                    other => other.map_err(ChangeError::into_failure),
                };
                if result.is_ok() {
                    self.store.record_changes(
                        &r.request.service,
                        &r.request.slot,
                        &[RecordChange::Retired(record.clone())],
                        self.now(),
                    )?;
                }
                ActionOutcome::Retired {
                    record: record.clone(),
                    result,
                }
            }
            Action::ReinstallPrevious { chain } => ActionOutcome::Reinstalled(self.install_chain(
                svc,
                r,
                chain,
                "reinstalling the previous",
            )?),
            Action::GenerateNextKey => {
                ActionOutcome::NextKey(self.generate_next(svc, r)?.map_err(Into::into))
            }
            Action::Alert(text) => {
                self.alert(&r.request.service, &r.request.slot, r.phase.name(), text);
                return Ok(None);
            }
            Action::Wait { .. } => return Ok(None),
        }))
    }

    /// Note what is done (`installing`, `reinstalling the previous`), then install the key+chain
    /// file `chain` as the slot's chain file.
    fn install_chain(
        &mut self,
        svc: &Service,
        r: &Rollover,
        chain: &Path,
        doing: &str,
    ) -> Result<Result<(), Failure>, DriverError> {
        let target = chain_file(svc, &r.request.slot)?;
        self.note(
            r,
            format!("{doing} {} as {}", chain.display(), target.display()),
        )?;
        Ok(self
            .effects
            .install(svc, target, chain)
            .map_err(install_failure))
    }

    /// Store the record as ours, then add it (so a crash can never leave it untracked).
    pub(super) fn publish(
        &mut self,
        svc: &Service,
        slot: &Slot,
        record: &TlsaAt,
        ttl: u32,
    ) -> Result<ActionOutcome, DriverError> {
        self.store.record_changes(
            &svc.name,
            slot,
            &[RecordChange::Published {
                record: record.clone(),
                ttl,
            }],
            self.now(),
        )?;
        Ok(match self.provider_change_typed(svc, record, ttl, true) {
            Err(ChangeError::RateLimited { until, detail }) => rate_limited(record, until, detail),
            result => ActionOutcome::Published {
                record: record.clone(),
                result: result.map_err(ChangeError::into_failure),
            },
        })
    }

    /// Add or remove one record through the service's provider; a rate limit is a failure here
    /// (for the commands that report each record: `prune`, `prune --foreign`).
    pub(super) fn provider_change(
        &mut self,
        svc: &Service,
        record: &TlsaAt,
        ttl: u32,
        add: bool,
    ) -> Result<(), String> {
        self.provider_change_typed(svc, record, ttl, add)
            .map_err(|e| e.to_string())
    }

    /// Add or remove one record through the service's provider. While the provider's API asked
    /// to wait (`Retry-After` beyond its retry budget, remembered in the state directory so the
    /// next run honours it too), nothing is sent and the answer is [`ChangeError::RateLimited`].
    pub(super) fn provider_change_typed(
        &mut self,
        svc: &Service,
        record: &TlsaAt,
        ttl: u32,
        add: bool,
    ) -> Result<(), ChangeError> {
        let now = self.now();
        if let Some(until) = rate_limit::read(&self.config.state_dir, &svc.provider)
            && until > now
        {
            return Err(ChangeError::RateLimited {
                until,
                detail: format!("provider {} asked to wait until {until}", svc.provider),
            });
        }
        let wire = record.to_provider(ttl);
        let result = self.effects.change_record(svc, &wire, add);
        if let Ok(report) = &result {
            // Another writer's record lost by our write (a read-modify-write race): say so loudly.
            for lost in &report.vanished {
                tracing::error!(target: crate::output::ALERT,
                    "{}: {lost} vanished with our write",
                    svc.name
                );
            }
            if let Some(notice) = &report.ttl {
                self.progress.line(&format!("{}: {notice}", svc.name));
            }
        }
        match result.map(|report| report.change) {
            Ok(Change::Pending { instructions }) => {
                // One progress line per line: each is escaped on its own.
                for line in instructions.lines() {
                    self.progress.line(line);
                }
                Ok(())
            }
            Ok(_) => Ok(()),
            // The configuration names a provider that cannot be set up: only an edit fixes it.
            Err(ProviderFailure::Setup(why)) => Err(ChangeError::Failed(Failure::permanent(why))),
            Err(ProviderFailure::Failed {
                kind,
                error:
                    ProviderError::RateLimited {
                        retry_after,
                        detail,
                        ..
                    },
            }) => {
                let until = self.now().plus(retry_after);
                if let Err(err) = rate_limit::write(&self.config.state_dir, &svc.provider, until) {
                    tracing::warn!("{err}");
                }
                Err(ChangeError::RateLimited {
                    until,
                    detail: format!(
                        "provider {} ({kind}): rate-limited, retry after {}s: {detail}",
                        svc.provider,
                        retry_after.as_secs()
                    ),
                })
            }
            Err(ProviderFailure::Failed { kind, error }) => {
                Err(ChangeError::Failed(provider_failure(
                    format!("provider {} ({kind}): {error}", svc.provider),
                    &error,
                )))
            }
        }
    }

    /// Generate the next key (same type as the new key unless `key-type` says), write it 0600
    /// beside the staged files, and record it at once.
    pub(super) fn generate_next(
        &mut self,
        svc: &Service,
        r: &Rollover,
    ) -> Result<Result<KeyHash, String>, DriverError> {
        let kind = match svc.key_type {
            Some(kind) => kind,
            None => {
                let like = pki::load(&r.request.chain)
                    .ok()
                    .and_then(|m| m.key().map(|k| k.key_type()))
                    .and_then(|t| pki::key_type_like(&t));
                match like {
                    Some(kind) => kind,
                    None => {
                        return Ok(Err(format!(
                            "cannot tell the type of the key in {}; set key-type for service {}",
                            r.request.chain.display(),
                            svc.name
                        )));
                    }
                }
            }
        };
        let (hash, path) = match self.write_next_key(svc, &r.request.slot, kind) {
            Ok(done) => done,
            Err(err) => return Ok(Err(err)),
        };
        self.store.set_key(&KeyEntry {
            service: svc.name.clone(),
            slot: r.request.slot.clone(),
            role: KeyRole::Next,
            hash,
            path: Some(path.clone()),
            created: self.now(),
        })?;
        self.note(
            r,
            format!("next key {} written to {}", hash.short(), path.display()),
        )?;
        Ok(Ok(hash))
    }

    pub(super) fn write_next_key(
        &self,
        svc: &Service,
        slot: &Slot,
        kind: crate::config::KeyType,
    ) -> Result<(KeyHash, PathBuf), String> {
        let dir = self
            .staged_dir(&svc.name, slot)
            .map_err(|e| e.to_string())?;
        self.effects.generate_key(kind, &dir)
    }
}
