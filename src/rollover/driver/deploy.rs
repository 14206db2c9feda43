//! Deploying: a request's files read and checked ([`prepare`]), then a renewal installed as it
//! is or a rollover staged (key and chain copied 0600 into the state directory, the previous
//! certificate kept for a rollback) and driven until it waits.

use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

use crate::config::{Config, Scheme, Service};
use crate::pki::PkiError;
use crate::rollover::{
    ActionOutcome, DeployOptions, DeployRequest, Effects, Event, KeyHash, PhaseName, ProbeResult,
    Slot, StageRequest, TlsaAt, stage,
};
use crate::store::{KeyEntry, KeyRole};
use crate::{install, pki};

use super::pass::first;
use super::{
    DeployOutcome, Driver, DriverError, QUICK_REPROBE_MS, STAGED_DIR, chain_file, find_service,
};

/// A deploy request whose files were read and checked: nothing is written yet.
pub struct Prepared {
    service: Service,
    slot: Slot,
    hash: KeyHash,
    key: PKey<Private>,
    certs: Vec<X509>,
    next: Option<(KeyHash, PathBuf)>,
    /// The issuer keys whose `2 1 1` records the chain needs (`current+issuer`).
    issuers: Vec<KeyHash>,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("service", &self.service.name)
            .field("slot", &self.slot)
            .field("hash", &self.hash)
            .field("certs", &self.certs.len())
            .finish_non_exhaustive()
    }
}

impl Prepared {
    /// The service.
    pub fn service(&self) -> &str {
        &self.service.name
    }

    /// The key slot.
    pub fn slot(&self) -> &Slot {
        &self.slot
    }

    /// The new key.
    pub fn hash(&self) -> KeyHash {
        self.hash
    }

    /// The leaf certificate.
    pub fn leaf(&self) -> Option<&X509> {
        self.certs.first()
    }

    /// Key first, then leaf, then intermediates (Postfix `smtpd_tls_chain_files`).
    fn key_and_chain_pem(&self) -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut out = self.key.private_key_to_pem_pkcs8()?;
        for cert in &self.certs {
            out.extend(cert.to_pem()?);
        }
        Ok(out)
    }
}

/// The key slot of a key type: `rsa`, `ec` or `ed`.
pub fn slot_for(key_type: &pki::KeyType) -> Option<Slot> {
    Some(match key_type {
        pki::KeyType::Rsa(_) | pki::KeyType::RsaPss(_) => Slot::Rsa,
        pki::KeyType::Ec(_) => Slot::Ec,
        pki::KeyType::Ed25519 => Slot::Ed,
        _ => return None,
    })
}

/// Read and check a deploy request's files against the configuration. Writes nothing.
pub fn prepare(config: &Config, request: &DeployRequest) -> Result<Prepared, DriverError> {
    let service = find_service(config, &request.service)?.clone();
    let material = pki::load(&request.cert)?;
    let mut certs: Vec<X509> = material.certificates().to_vec();
    let Some(leaf) = certs.first().cloned() else {
        return Err(DriverError::NoCertificate {
            path: request.cert.clone(),
        });
    };
    let key = pki::load_private_key(&request.key)?;
    let matches = pki::cert_matches_key(&leaf, &key).map_err(|source| PkiError::OpenSsl {
        path: request.key.clone(),
        source,
    })?;
    if !matches {
        return Err(PkiError::KeyMismatch {
            key: request.key.clone(),
            cert: request.cert.clone(),
            subject: pki::subject_line(&leaf),
        }
        .into());
    }
    if let Some(chain_path) = &request.chain {
        let chain = pki::load(chain_path)?;
        pki::append_distinct(&mut certs, chain.certificates()).map_err(|source| {
            PkiError::OpenSsl {
                path: chain_path.clone(),
                source,
            }
        })?;
    }
    let key_type = pki::key_type(&key);
    let slot = slot_for(&key_type).ok_or_else(|| DriverError::UnsupportedKey {
        path: request.key.clone(),
        key_type: key_type.to_string(),
    })?;
    // A service with `chain-files` must have a file for this algorithm: refused before
    // anything is written.
    chain_file(&service, &slot)?;
    let spki = pki::spki_der(&key).map_err(|source| PkiError::OpenSsl {
        path: request.key.clone(),
        source,
    })?;
    let next = match &request.next_key {
        Some(path) => {
            let next = pki::load(path)?;
            let Some(k) = next.key() else {
                return Err(PkiError::NoMaterial {
                    path: path.clone(),
                    found: vec!["no key".to_owned()],
                }
                .into());
            };
            let der = k.spki_der().map_err(|source| PkiError::OpenSsl {
                path: path.clone(),
                source,
            })?;
            Some((KeyHash::of_spki_der(&der), path.clone()))
        }
        None => None,
    };
    let issuers = super::issuers::wanted_issuers(&service, &certs)?;
    Ok(Prepared {
        service,
        slot,
        hash: KeyHash::of_spki_der(&spki),
        key,
        certs,
        next,
        issuers,
    })
}

/// Why a renewal's probe does not show the key matching, if it does not.
pub(super) fn renewal_problem(results: &[ProbeResult], key: KeyHash) -> Option<String> {
    if results.is_empty() {
        return Some("no endpoint address was probed".to_owned());
    }
    let bad: Vec<String> = results
        .iter()
        .filter(|p| {
            !(matches!(p.verdict, crate::rollover::ProbeVerdict::Match) && p.live_key == Some(key))
        })
        .map(|p| format!("{} ({}): {}", p.endpoint, p.address, p.verdict))
        .collect();
    if bad.is_empty() {
        None
    } else {
        Some(bad.join("; "))
    }
}

/// The key in an installed key+chain file, when it is of `slot`'s algorithm.
pub(super) fn installed_key(chain_file: &Path, slot: &Slot) -> Option<KeyHash> {
    let material = pki::load(chain_file).ok()?;
    let key = material.key()?;
    if slot_for(&key.key_type()).as_ref() != Some(slot) {
        return None;
    }
    key.spki_der().ok().map(|der| KeyHash::of_spki_der(&der))
}

impl<E: Effects> Driver<E> {
    /// Check, stage and drive a deploy request (see the [module docs](self)).
    pub fn deploy(
        &mut self,
        request: &DeployRequest,
        options: DeployOptions,
    ) -> Result<DeployOutcome, DriverError> {
        let prepared = prepare(&self.config, request)?;
        self.deploy_prepared(prepared, options)
    }

    /// [`Driver::deploy`] for a request already checked by [`prepare`].
    pub fn deploy_prepared(
        &mut self,
        p: Prepared,
        options: DeployOptions,
    ) -> Result<DeployOutcome, DriverError> {
        let service = p.service.clone();
        let slot = p.slot.clone();
        let held = self.lock(&service.name)?;
        // A process killed between a final phase and its keys left them behind: settle them
        // first, so that the current key below is the live one.
        self.settle_keys(&service.name, &slot)?;
        let now = self.now();
        let under_way = self
            .store
            .rollover(&service.name, &slot)?
            .filter(|r| !r.is_final());
        if let Some(r) = &under_way
            && r.request.new != p.hash
        {
            return Err(DriverError::InProgress {
                service: service.name.clone(),
                slot,
                new: r.request.new.short(),
                phase: r.phase.name(),
                requested: p.hash.short(),
            });
        }
        if options.force {
            self.forced(&service.name, &slot)?;
        }
        let dir = self.staged_dir(&service.name, &slot)?;

        // A next key the ACME client already holds: its records go out now (invariant 2 keeps
        // them), and it is the stored next key from here on.
        if let Some((hash, path)) = &p.next {
            self.store.set_key(&KeyEntry {
                service: service.name.clone(),
                slot: slot.clone(),
                role: KeyRole::Next,
                hash: *hash,
                path: Some(path.clone()),
                created: now,
            })?;
        }

        if under_way.is_some() {
            self.say(
                &service.name,
                &slot,
                "this key's rollover is under way; resuming it",
            );
            drop(held);
            let standing = self.drive(&[(service.name.clone(), slot)], options)?;
            return Ok(DeployOutcome::Rollover(first(standing, &service.name)));
        }

        let stored_next = self
            .store
            .key(&service.name, &slot, KeyRole::Next)?
            .map(|k| k.hash);

        let current = self.current_key(&service, &slot)?;
        if current != Some(p.hash) {
            // A first publish into a zone that cannot carry DANE is refused (driver/preflight.rs).
            self.first_publish_preflight(&service, options.force)?;
        }

        let pem = p.key_and_chain_pem().map_err(|source| PkiError::OpenSsl {
            path: PathBuf::from(&service.name),
            source,
        })?;
        let staged = dir.join(format!("{}.pem", p.hash.to_hex()));
        install::write_atomic_mode(&staged, &pem, 0o600).map_err(|source| {
            DriverError::Staging {
                path: staged.clone(),
                source,
            }
        })?;

        if current == Some(p.hash) {
            // Acted on under the lock the decision was made under: let go in between, another
            // process could stage a rollover to another key, and this install would undo it.
            let renewed = self.renew(&service, &slot, p.hash, &staged, stored_next, &p.issuers);
            drop(held);
            return renewed;
        }

        // Keep the certificate in use now for a rollback.
        let target = chain_file(&service, &slot)?;
        let previous_chain = if target.exists() {
            let name = current.map_or_else(|| "previous".to_owned(), |k| k.to_hex());
            let backup = dir.join(format!("previous-{name}.pem"));
            let data =
                crate::fsafe::read_regular(target).map_err(|source| DriverError::Staging {
                    path: target.to_path_buf(),
                    source,
                })?;
            install::write_atomic_mode(&backup, &data, 0o600).map_err(|source| {
                DriverError::Staging {
                    path: backup.clone(),
                    source,
                }
            })?;
            Some(backup)
        } else {
            None
        };

        let mut request = StageRequest::for_service(&service, slot.clone(), p.hash, staged.clone());
        // Where the records really live: a CNAME at an owner name is followed (driver/alias.rs).
        let aliases = self.aliases(&service)?;
        request.owners = super::alias::targets(&aliases);
        request.old = current;
        request.next = stored_next.filter(|n| *n != p.hash);
        request.previous_chain = previous_chain;
        // `current+issuer`: the chain's issuer and the ones named to be published ahead; they
        // are in the gate, and the old issuer's records go with the other stale ones.
        request.issuers = p.issuers.clone();
        let new_records: Vec<TlsaAt> = request
            .owners
            .iter()
            .map(|o| TlsaAt::new(o, p.hash.dane_ee()))
            .collect();
        request.confirmed_since = self
            .store
            .confirmed_since(&service.name, &slot, &new_records)?;
        let staged_step = stage(request, now)?;
        self.store
            .save(&staged_step.next, &staged_step.events, &[], now)?;
        for alias in aliases.iter().filter(|a| a.is_alias()) {
            self.note(
                &staged_step.next,
                format!("{alias}: the records are published, gated and retired there"),
            )?;
        }
        self.store.set_key(&KeyEntry {
            service: service.name.clone(),
            slot: slot.clone(),
            role: KeyRole::New,
            hash: p.hash,
            path: Some(staged),
            created: now,
        })?;
        self.show_events(&staged_step);
        drop(held);
        let standing = self.drive(&[(service.name.clone(), slot)], options)?;
        Ok(DeployOutcome::Rollover(first(standing, &service.name)))
    }

    /// A renewal that kept the key: the `3 1 1` records match already. Install, reload, and
    /// check the live handshake; DNS is not touched, except a next key the client announced
    /// and, for `current+issuer`, the issuer records of the renewed chain: published before
    /// the install, the old issuer's retired once no served chain holds it (`issuers`).
    /// The caller holds the service's lock, taken before it decided that this is a renewal.
    pub(super) fn renew(
        &mut self,
        service: &Service,
        slot: &Slot,
        key: KeyHash,
        staged: &Path,
        next: Option<KeyHash>,
        issuers: &[KeyHash],
    ) -> Result<DeployOutcome, DriverError> {
        let phase = self
            .store
            .rollover(&service.name, slot)?
            .map_or(PhaseName::Done, |r| r.phase.name());
        let event = |detail: String, time| Event {
            time,
            phase,
            detail,
        };
        if let Some(next) = next.filter(|n| *n != key) {
            let mut failed = Vec::new();
            for owner in self.effective_owners(service)? {
                let record = TlsaAt::new(&owner, next.dane_ee());
                if let ActionOutcome::Published {
                    result: Err(err), ..
                } = self.publish(service, slot, &record, service.ttl)?
                {
                    failed.push(err.to_string());
                }
            }
            if !failed.is_empty() {
                tracing::warn!(
                    "service {}: the next key's records were not all published \
                     ({}); `dane-roll next-key {}` retries",
                    service.name,
                    failed.join("; "),
                    service.name
                );
            }
        }
        // The renewed chain's issuer records go out before its install (adding a record that
        // matches is always safe). No gate: the live 3 1 1 matches the renewal throughout.
        let issuer_scheme = service.scheme == Scheme::CurrentIssuer;
        if issuer_scheme {
            let failed = self.publish_issuers(service, slot, issuers)?;
            if !failed.is_empty() {
                tracing::warn!(
                    "service {}: the renewed chain's issuer records were not all published \
                     ({}); the certificate is installed anyway (its key's 3 1 1 matches), and \
                     the old issuer's records stay until they are",
                    service.name,
                    failed.join("; ")
                );
            }
        }
        let now = self.now();
        self.store.add_events(
            &service.name,
            slot,
            &[event(
                format!(
                    "renewal with the same key {}: installing the new certificate ({})",
                    key.short(),
                    if issuer_scheme {
                        "the key's 3 1 1 unchanged"
                    } else {
                        "DNS unchanged"
                    }
                ),
                now,
            )],
        )?;
        self.effects
            .install(service, chain_file(service, slot)?, staged)
            .map_err(|source| DriverError::Install {
                service: service.name.clone(),
                source,
            })?;
        self.effects
            .reload(service)
            .map_err(|source| DriverError::Install {
                service: service.name.clone(),
                source,
            })?;
        self.store.set_key(&KeyEntry {
            service: service.name.clone(),
            slot: slot.clone(),
            role: KeyRole::Current,
            hash: key,
            path: Some(staged.to_owned()),
            created: now,
        })?;
        let endpoints = service.endpoint_ids();
        let mut problem = None;
        let mut results = Vec::new();
        for (i, pause) in std::iter::once(0).chain(QUICK_REPROBE_MS).enumerate() {
            if i > 0 {
                self.effects.sleep(Duration::from_millis(pause));
            }
            results = self.effects.probe(service, slot, &endpoints, key);
            problem = renewal_problem(&results, key);
            if problem.is_none() {
                break;
            }
        }
        let detail = match &problem {
            None => "renewal installed; the live handshake matches".to_owned(),
            Some(p) => format!("renewal installed, but the live handshake does not verify: {p}"),
        };
        self.say(&service.name, slot, &detail);
        self.store
            .add_events(&service.name, slot, &[event(detail.clone(), self.now())])?;
        if problem.is_some() {
            self.alert(
                &service.name,
                slot,
                phase,
                &format!("dane-roll: service {} ({slot}): {detail}", service.name),
            );
        } else if issuer_scheme
            && let Some(detail) = self.retire_stale_issuers(service, slot, key, &results, true)?
        {
            self.say(&service.name, slot, &detail);
        }
        Ok(DeployOutcome::Renewed {
            service: service.name.clone(),
            slot: slot.clone(),
            key,
            verified: problem.is_none(),
            problem,
        })
    }

    pub(super) fn forced(&mut self, service: &str, slot: &Slot) -> Result<(), DriverError> {
        tracing::warn!(
            "--force: service {service} may install its new certificate before \
             the 2×TTL wait is over. Resolvers that cached the old records will fail DANE for the \
             new key until it ends: mail from DANE senders may be deferred. (Served everywhere and \
             validated is still required.)"
        );
        self.operator_event(
            service,
            slot,
            "--force given by the operator: the 2×TTL wait may be skipped".to_owned(),
        )
    }

    /// `--skip-nameserver`: say it loudly and record it in each rollover's history.
    pub(super) fn skipping_nameservers(
        &mut self,
        service: &str,
        slot: &Slot,
    ) -> Result<(), DriverError> {
        let names = self.skip_nameservers.join(", ");
        tracing::warn!(
            "--skip-nameserver: service {service} ({slot}) may install its new certificate \
             without {names} serving the new records. Resolvers that ask {names} get the old \
             records only: mail from DANE senders may be deferred until it serves the zone \
             again. Every other nameserver must still serve them, and the 2×TTL wait still runs."
        );
        self.operator_event(
            service,
            slot,
            format!(
                "--skip-nameserver {names} given by the operator: the gate does not wait for it"
            ),
        )
    }

    /// Record in the rollover's history what the operator asked for, at its phase now
    /// (`staged` when it is about to begin).
    fn operator_event(
        &mut self,
        service: &str,
        slot: &Slot,
        detail: String,
    ) -> Result<(), DriverError> {
        let phase = self
            .store
            .rollover(service, slot)?
            .map_or(PhaseName::Staged, |r| r.phase.name());
        let event = Event {
            time: self.now(),
            phase,
            detail,
        };
        self.store.add_events(service, slot, &[event])?;
        Ok(())
    }

    pub(super) fn staged_dir(&self, service: &str, slot: &Slot) -> Result<PathBuf, DriverError> {
        let dir = self
            .config
            .state_dir
            .join(STAGED_DIR)
            .join(service)
            .join(slot.as_str());
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|source| DriverError::Staging {
                path: dir.clone(),
                source,
            })?;
        Ok(dir)
    }
}
