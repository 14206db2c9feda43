//! The actions, performed for real: records through the provider (stored as ours before they
//! are added), the authoritative view and the validating resolver, install and reload, the live
//! probe and the next key (alerts are in `alerts`).

use super::*;

/// One endpoint address's probe report, or (address, why) it could not be probed.
type Probed = Result<AddressReport, (String, String)>;

/// The failure an outcome reports, in words.
pub(super) fn failure_of(outcome: &ActionOutcome) -> Option<String> {
    match outcome {
        ActionOutcome::Published {
            record,
            result: Err(e),
        } => Some(format!("publishing {record}: {e}")),
        ActionOutcome::Retired {
            record,
            result: Err(e),
        } => Some(format!("retiring {record}: {e}")),
        ActionOutcome::Installed(Err(e)) => Some(format!("install: {e}")),
        ActionOutcome::Reloaded(Err(e)) => Some(format!("reload: {e}")),
        ActionOutcome::Reinstalled(Err(e)) => Some(format!("reinstall: {e}")),
        ActionOutcome::NextKey(Err(e)) => Some(format!("next key: {e}")),
        _ => None,
    }
}

/// Why one record change through the provider did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ChangeError {
    /// It failed: alerted, and the next run retries.
    Failed(String),
    /// The provider asked to wait until `until`: nothing was sent; not a failure.
    RateLimited {
        /// When to ask again.
        until: Timestamp,
        /// What the provider said.
        detail: String,
    },
}

impl std::fmt::Display for ChangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChangeError::Failed(why) => f.write_str(why),
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

impl<C: Clock> Driver<C> {
    pub(super) fn perform(
        &mut self,
        svc: &Service,
        r: &Rollover,
        action: &Action,
    ) -> Result<Option<ActionOutcome>, DriverError> {
        Ok(Some(match action {
            Action::Publish { record, ttl } => self.publish(svc, &r.slot, record, *ttl)?,
            Action::CheckDns { expected } => {
                let report = self.check_dns(expected, &r.gate_set());
                // Each record on its own: the next key's may lag behind the new key's.
                let changes: Vec<RecordChange> = expected
                    .iter()
                    .filter(|rec| gate(std::slice::from_ref(*rec), &report).is_ok())
                    .map(|rec| RecordChange::Confirmed(rec.clone()))
                    .collect();
                if !changes.is_empty() {
                    let at = self.now();
                    self.store
                        .record_changes(&r.service, &r.slot, &changes, at)?;
                }
                ActionOutcome::Dns(report)
            }
            Action::Install { chain } => {
                let target = chain_file(svc, &r.slot)?;
                self.note(
                    r,
                    format!("installing {} as {}", chain.display(), target.display()),
                )?;
                ActionOutcome::Installed(
                    install::install_chain(target, chain, svc.key_file)
                        .map_err(|e| e.to_string().into()),
                )
            }
            Action::Reload => {
                self.note(r, format!("running `{}`", svc.reload.join(" ")))?;
                ActionOutcome::Reloaded(
                    install::reload(&svc.reload, install::RELOAD_TIMEOUT)
                        .map_err(|e| e.to_string().into()),
                )
            }
            Action::Probe { endpoints, expect } => {
                ActionOutcome::Probed(self.probe(svc, &r.slot, endpoints, *expect))
            }
            Action::Retire(record) => {
                self.note(r, format!("retiring {record}"))?;
                let result = match self.provider_change_typed(svc, record, svc.ttl, false) {
                    Err(ChangeError::RateLimited { until, detail }) => {
                        return Ok(Some(rate_limited(record, until, detail)));
                    }
                    other => other.map_err(|e| e.to_string().into()),
                };
                if result.is_ok() {
                    self.store.record_changes(
                        &r.service,
                        &r.slot,
                        &[RecordChange::Retired(record.clone())],
                        self.now(),
                    )?;
                }
                ActionOutcome::Retired {
                    record: record.clone(),
                    result,
                }
            }
            Action::ReinstallPrevious { chain } => {
                let target = chain_file(svc, &r.slot)?;
                self.note(
                    r,
                    format!(
                        "reinstalling the previous {} as {}",
                        chain.display(),
                        target.display()
                    ),
                )?;
                ActionOutcome::Reinstalled(
                    install::install_chain(target, chain, svc.key_file)
                        .map_err(|e| e.to_string().into()),
                )
            }
            Action::GenerateNextKey => {
                ActionOutcome::NextKey(self.generate_next(svc, r)?.map_err(Into::into))
            }
            Action::Alert(text) => {
                self.alert(&r.service, &r.slot, r.phase.name(), text);
                return Ok(None);
            }
            Action::Wait { .. } => return Ok(None),
        }))
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
                result: result.map_err(|e| e.to_string().into()),
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
        if !self.io.providers.contains_key(&svc.name) {
            let provider = crate::publish::provider_for(&self.config, svc, Settings::default())
                .map_err(|e| ChangeError::Failed(e.to_string()))?;
            self.io.providers.insert(svc.name.clone(), provider);
        }
        let Some(provider) = self.io.providers.get(&svc.name) else {
            return Err(ChangeError::Failed("no provider".to_owned()));
        };
        let wire = record.to_provider(ttl);
        let result = self.runtime.block_on(async {
            if add {
                provider.publish(&wire).await
            } else {
                provider.retire(&wire).await
            }
        });
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
            Err(ProviderError::RateLimited {
                retry_after,
                detail,
                ..
            }) => {
                let until = self.now().plus(retry_after);
                if let Err(err) = rate_limit::write(&self.config.state_dir, &svc.provider, until) {
                    tracing::warn!("{err}");
                }
                Err(ChangeError::RateLimited {
                    until,
                    detail: format!(
                        "provider {} ({}): rate-limited, retry after {}s: {detail}",
                        svc.provider,
                        provider.kind(),
                        retry_after.as_secs()
                    ),
                })
            }
            Err(err) => Err(ChangeError::Failed(format!(
                "provider {} ({}): {err}",
                svc.provider,
                provider.kind()
            ))),
        }
    }

    /// Every nameserver's answer and the validated lookup, per owner name of `expected`.
    /// What every nameserver serves of `expected` at its owner names, and what the resolver
    /// validates there once every nameserver serves the `gate` records of that owner name.
    pub(super) fn check_dns(&self, expected: &[TlsaAt], gate: &[TlsaAt]) -> DnsReport {
        let mut owners: Vec<&str> = expected.iter().map(|r| r.owner.as_str()).collect();
        owners.sort_unstable();
        owners.dedup();
        let resolver = match &self.io.resolver {
            Ok(r) => r.clone(),
            Err(why) => {
                return DnsReport {
                    owners: owners
                        .iter()
                        .map(|o| crate::rollover::OwnerReport {
                            owner: (*o).to_owned(),
                            nameservers: Vec::new(),
                            validation: crate::rollover::ResolverAnswer::Failed(why.clone()),
                            resolver_ttl: None,
                        })
                        .collect(),
                };
            }
        };
        let view = AuthorityView::new(resolver.clone());
        let reports = self.runtime.block_on(async {
            let mut out = Vec::new();
            for owner in &owners {
                let want: Vec<_> = expected
                    .iter()
                    .filter(|r| r.owner == *owner)
                    .map(|r| r.record.clone())
                    .collect();
                // The resolver is asked only once every nameserver serves the records the gate
                // waits for: asked earlier, it would cache the RRset without them for up to a
                // TTL, which would hold a --force install that long. (The next key's records,
                // which may lag, do not hold the question.)
                let authority = view.served_everywhere(owner, &want).await;
                let validated = match &authority {
                    Ok(report)
                        if gate
                            .iter()
                            .filter(|r| r.owner == *owner)
                            .all(|r| report.serves_everywhere(&r.record)) =>
                    {
                        Some(resolver.tlsa(owner).await)
                    }
                    _ => None,
                };
                out.push(observe::owner_report(owner, authority, validated));
            }
            out
        });
        DnsReport { owners: reports }
    }

    /// Probe every address of every endpoint against the validated records at its owner name,
    /// offering only the slot's key algorithm; one result per address for the engine.
    pub(super) fn probe(
        &self,
        svc: &Service,
        slot: &Slot,
        endpoints: &[String],
        expect: KeyHash,
    ) -> Vec<ProbeResult> {
        let family = family_of_slot(slot.as_str());
        let algorithms = family.map_or_else(|| KeyAlgorithm::ALL.to_vec(), |f| vec![f]);
        self.probe_reports(svc, endpoints, algorithms)
            .into_iter()
            .map(|(endpoint, report)| match report {
                Ok(report) => observe::probe_result(&endpoint, &report, expect, family),
                Err((address, why)) => observe::unknown(&endpoint, &address, why),
            })
            .collect()
    }

    /// Resolve each endpoint's validated TLSA records and addresses, and probe every address.
    pub(super) fn probe_reports(
        &self,
        svc: &Service,
        endpoints: &[String],
        algorithms: Vec<KeyAlgorithm>,
    ) -> Vec<(String, Probed)> {
        let fail = |why: String| -> Vec<(String, Probed)> {
            endpoints
                .iter()
                .map(|e| (e.clone(), Err(("-".to_owned(), why.clone()))))
                .collect()
        };
        let resolver = match &self.io.resolver {
            Ok(r) => r.clone(),
            Err(why) => return fail(why.clone()),
        };
        let options = ProbeOptions {
            step_timeout: PROBE_STEP_TIMEOUT,
            address_timeout: PROBE_ADDRESS_TIMEOUT,
            algorithms,
            ..ProbeOptions::default()
        };
        let prober = match Prober::new(options) {
            Ok(p) => p,
            Err(err) => return fail(err.to_string()),
        };
        self.runtime.block_on(async {
            let mut results = Vec::new();
            for endpoint in endpoints {
                let mut failed = |why: String| {
                    results.push((endpoint.clone(), Err(("-".to_owned(), why))));
                };
                let Some((host, port)) = endpoint
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
                else {
                    failed("not host:port".to_owned());
                    continue;
                };
                let protocol = owners::endpoint_protocol(svc, &host, port);
                let owner = format!("_{port}._tcp.{host}.");
                let records = match resolver.tlsa(&owner).await {
                    Ok(l) if l.is_secure() && !l.records.is_empty() => l.records,
                    Ok(l) => {
                        failed(format!("the TLSA records at {owner} are {}", l.status));
                        continue;
                    }
                    Err(err) => {
                        failed(err.to_string());
                        continue;
                    }
                };
                let addresses = match resolver.addresses(&host).await {
                    Ok(l) if !l.records.is_empty() => l.records,
                    Ok(_) => {
                        failed(format!("{host} has no address"));
                        continue;
                    }
                    Err(err) => {
                        failed(err.to_string());
                        continue;
                    }
                };
                let targets: Vec<ProbeTarget> = addresses
                    .iter()
                    .map(|ip| ProbeTarget {
                        host: host.clone(),
                        addr: std::net::SocketAddr::new(*ip, port),
                        protocol,
                    })
                    .collect();
                for report in prober
                    .probe_many(targets, &records, crate::probe::DEFAULT_CONCURRENCY)
                    .await
                {
                    results.push((endpoint.clone(), Ok(report)));
                }
            }
            results
        })
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
                let like = pki::load(&r.chain)
                    .ok()
                    .and_then(|m| m.key().map(|k| k.key_type()))
                    .and_then(|t| pki::key_type_like(&t));
                match like {
                    Some(kind) => kind,
                    None => {
                        return Ok(Err(format!(
                            "cannot tell the type of the key in {}; set key-type for service {}",
                            r.chain.display(),
                            svc.name
                        )));
                    }
                }
            }
        };
        let (hash, path) = match self.write_next_key(svc, &r.slot, kind) {
            Ok(done) => done,
            Err(err) => return Ok(Err(err)),
        };
        self.store.set_key(&KeyEntry {
            service: svc.name.clone(),
            slot: r.slot.clone(),
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
        let key = pki::generate_key(kind).map_err(|e| format!("generating a {kind} key: {e}"))?;
        let der = pki::spki_der(&key).map_err(|e| e.to_string())?;
        let hash = KeyHash::of_spki_der(&der);
        let dir = self
            .staged_dir(&svc.name, slot)
            .map_err(|e| e.to_string())?;
        let path = dir.join(format!("next-{}.key", hash.to_hex()));
        pki::write_private_key(&path, &key)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        Ok((hash, path))
    }
}
