//! The live DANE probe: would mail flow to this address? It connects, runs the clear-text
//! dialogue ([`starttls`]), and lets OpenSSL's own DANE code ([`dane`], the code Postfix uses)
//! verify the served chain against the TLSA records; [`report`] holds what it found. This file
//! holds the prober and one attempt's connection; `attempt.rs` reads what a handshake showed and
//! `judge.rs` turns the attempts into a verdict.
//!
//! A server may hold one key per algorithm (RSA and ECDSA side by side) and picks one by the
//! client's signature algorithms, so each address is probed once per family (RSA, ECDSA and
//! EdDSA at once, one connection each) offering only that family's signature algorithms. Every
//! distinct key found must match: a sender that negotiates the unmatched one would defer mail.
//!
//! The probe takes addresses, not names: resolving the host (and looking up the validated TLSA
//! records) belongs to the caller.

mod attempt;
pub mod dane;
mod judge;
pub mod report;
pub mod starttls;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::error::ErrorStack;
use openssl::ssl::{Ssl, SslContext, SslContextBuilder, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use serde::Serialize;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{timeout, timeout_at};
use tokio_openssl::SslStream;

use crate::config::Protocol;

use crate::tlsa::TlsaRecord;
use attempt::{Found, Outcome, dialogue_failed, handshake_failed, inspect};
use judge::{internal_failure, judge, split_records, unmatched};

pub use report::{
    AddressReport, Attempt, AttemptOutcome, CertInfo, IgnoredRecord, KeyReport, Verdict,
};
pub use starttls::{DialogueError, Limits, Step};
/// The dialogue before TLS, public for the fuzz target (`fuzz/fuzz_targets/smtp_reply.rs`).
#[doc(hidden)]
pub use starttls::{MAX_LINE, MAX_LINES, start_tls};

/// The name sent in `EHLO` unless another is given. `.invalid` cannot belong to anyone.
pub const DEFAULT_HELO: &str = "dane-roll.invalid";
/// The time allowed for each step (connect, one reply, the TLS handshake).
pub const DEFAULT_STEP_TIMEOUT: Duration = Duration::from_secs(15);
/// The time allowed for all the attempts on one address.
pub const DEFAULT_ADDRESS_TIMEOUT: Duration = Duration::from_secs(60);
/// How many addresses are probed at once by [`Prober::probe_many`] unless told otherwise.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// How long to wait for the TLS close once the verdict is made.
const SHUTDOWN_WAIT: Duration = Duration::from_millis(500);

/// A family of signature algorithms, which decides the key a server presents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    /// RSA keys (PKCS#1 v1.5 and PSS signatures).
    Rsa,
    /// ECDSA keys (P-256, P-384, P-521).
    Ecdsa,
    /// EdDSA keys (Ed25519, Ed448).
    Eddsa,
}

impl KeyAlgorithm {
    /// The families in the order they are tried.
    pub const ALL: [KeyAlgorithm; 3] =
        [KeyAlgorithm::Rsa, KeyAlgorithm::Ecdsa, KeyAlgorithm::Eddsa];

    /// The OpenSSL signature algorithm list that offers only this family (TLS 1.2 and 1.3
    /// names; `rsa_pss_pss_*` for RSA-PSS keys, `rsa_pss_rsae_*` and `rsa_pkcs1_*` for RSA).
    pub fn sigalgs(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa => {
                "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:\
                 rsa_pss_pss_sha256:rsa_pss_pss_sha384:rsa_pss_pss_sha512:\
                 rsa_pkcs1_sha256:rsa_pkcs1_sha384:rsa_pkcs1_sha512"
            }
            KeyAlgorithm::Ecdsa => {
                "ecdsa_secp256r1_sha256:ecdsa_secp384r1_sha384:ecdsa_secp521r1_sha512"
            }
            KeyAlgorithm::Eddsa => "ed25519:ed448",
        }
    }

    /// The name used on the command line and in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyAlgorithm::Rsa => "rsa",
            KeyAlgorithm::Ecdsa => "ecdsa",
            KeyAlgorithm::Eddsa => "eddsa",
        }
    }
}

impl std::fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for KeyAlgorithm {
    type Err = String;

    fn from_str(s: &str) -> Result<KeyAlgorithm, String> {
        KeyAlgorithm::ALL
            .into_iter()
            .find(|a| a.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown key algorithm \"{s}\"; use rsa, ecdsa or eddsa"))
    }
}

/// One address to probe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProbeTarget {
    /// The host name: sent as SNI and used as the DANE base domain (DANE-TA name checks).
    pub host: String,
    /// The address and port to connect to.
    pub addr: SocketAddr,
    /// How TLS starts.
    pub protocol: Protocol,
}

/// How to probe.
#[derive(Debug, Clone)]
pub struct ProbeOptions {
    /// The name sent in SMTP `EHLO`.
    pub helo: String,
    /// The time allowed for each step.
    pub step_timeout: Duration,
    /// The time allowed for all the attempts on one address.
    pub address_timeout: Duration,
    /// The key algorithm families to try, in order.
    pub algorithms: Vec<KeyAlgorithm>,
    /// The longest reply line accepted in the clear-text dialogue.
    pub max_line: usize,
}

impl Default for ProbeOptions {
    fn default() -> ProbeOptions {
        ProbeOptions {
            helo: DEFAULT_HELO.to_string(),
            step_timeout: DEFAULT_STEP_TIMEOUT,
            address_timeout: DEFAULT_ADDRESS_TIMEOUT,
            algorithms: KeyAlgorithm::ALL.to_vec(),
            max_line: starttls::MAX_LINE,
        }
    }
}

/// Why a prober could not be set up.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ProbeError {
    /// OpenSSL refused the client context for an algorithm family.
    #[error("cannot set up the OpenSSL client for {algorithm} keys: {source}")]
    Context {
        /// The family.
        algorithm: KeyAlgorithm,
        /// OpenSSL's errors.
        #[source]
        source: ErrorStack,
    },
    /// No algorithm family to try.
    #[error("no key algorithm to probe with")]
    NoAlgorithms,
}

/// Probes addresses. The OpenSSL contexts (one per algorithm family, DANE enabled) are built
/// once, here, and shared by every probe; cloning is cheap.
#[derive(Clone)]
pub struct Prober {
    inner: Arc<Inner>,
}

struct Inner {
    contexts: Vec<(KeyAlgorithm, SslContext)>,
    options: ProbeOptions,
}

impl Prober {
    /// Build the OpenSSL contexts.
    pub fn new(options: ProbeOptions) -> Result<Prober, ProbeError> {
        if options.algorithms.is_empty() {
            return Err(ProbeError::NoAlgorithms);
        }
        let mut contexts = Vec::new();
        for &algorithm in &options.algorithms {
            if contexts.iter().any(|(a, _)| *a == algorithm) {
                continue;
            }
            let context = client_context(algorithm)
                .map_err(|source| ProbeError::Context { algorithm, source })?;
            contexts.push((algorithm, context));
        }
        Ok(Prober {
            inner: Arc::new(Inner { contexts, options }),
        })
    }

    /// The options in use.
    pub fn options(&self) -> &ProbeOptions {
        &self.inner.options
    }

    /// Probe one address with every algorithm family, and judge it.
    pub async fn probe_address(
        &self,
        target: &ProbeTarget,
        records: &[TlsaRecord],
    ) -> AddressReport {
        let started = Instant::now();
        let options = &self.inner.options;
        let deadline = tokio::time::Instant::now() + options.address_timeout;
        let (usable, mut ignored) = split_records(records);

        // Every family side by side, each on its own connection: one after another, an address
        // cost three sessions' round trips (18 instead of 6: at a 50 ms round trip, 0.9 s
        // instead of 0.3 s). The outcomes are read in the families' order.
        let mut set = JoinSet::new();
        for (i, (_, context)) in self.inner.contexts.iter().enumerate() {
            let (prober, context) = (self.clone(), context.clone());
            let (target, usable) = (target.clone(), usable.clone());
            set.spawn(async move {
                let mut unusable = Vec::new();
                let attempt = prober.attempt(&context, &target, &usable, i == 0, &mut unusable);
                let outcome = match timeout_at(deadline, attempt).await {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::Failed {
                        error: format!(
                            "the time limit for the address ({}s) ran out",
                            prober.inner.options.address_timeout.as_secs_f64()
                        ),
                        definitive: false,
                        skip_rest: true,
                    },
                };
                (i, outcome, unusable)
            });
        }
        let mut outcomes: Vec<Option<Outcome>> = std::iter::repeat_with(|| None)
            .take(self.inner.contexts.len())
            .collect();
        while let Some(joined) = set.join_next().await {
            if let Ok((i, outcome, unusable)) = joined {
                ignored.extend(unusable);
                if let Some(slot) = outcomes.get_mut(i) {
                    *slot = Some(outcome);
                }
            }
        }

        let mut keys: Vec<KeyReport> = Vec::new();
        let mut chains: Vec<Vec<X509>> = Vec::new();
        let mut attempts = Vec::new();
        let mut skip = false;
        for ((algorithm, _), outcome) in self.inner.contexts.iter().zip(outcomes) {
            // After a failure that says the rest would fail alike (refused, the address's time
            // limit), the later families are reported skipped, as when they ran one by one.
            if skip {
                attempts.push(Attempt {
                    algorithm: *algorithm,
                    outcome: AttemptOutcome::Skipped,
                });
                continue;
            }
            let outcome = outcome.unwrap_or_else(|| Outcome::Failed {
                error: "internal error: the attempt's task ended without an outcome".into(),
                definitive: false,
                skip_rest: false,
            });
            let outcome = match outcome {
                Outcome::Key(found) => {
                    let Found { mut report, chain } = *found;
                    report.algorithms.push(*algorithm);
                    let index = match keys
                        .iter()
                        .position(|k| k.spki_sha256 == report.spki_sha256)
                    {
                        Some(index) => {
                            let known = &mut keys[index];
                            if known.matched && !report.matched {
                                report.algorithms = std::mem::take(&mut known.algorithms);
                                report.algorithms.push(*algorithm);
                                *known = report;
                            } else {
                                known.algorithms.push(*algorithm);
                            }
                            index
                        }
                        None => {
                            keys.push(report);
                            keys.len() - 1
                        }
                    };
                    chains.push(chain);
                    AttemptOutcome::Key { key: index }
                }
                Outcome::NoKey(detail) => AttemptOutcome::NoKey { detail },
                Outcome::Failed {
                    error,
                    definitive,
                    skip_rest,
                } => {
                    skip = skip_rest;
                    AttemptOutcome::Error { error, definitive }
                }
            };
            attempts.push(Attempt {
                algorithm: *algorithm,
                outcome,
            });
        }

        let unmatched_records = unmatched(&usable, &keys, &chains);
        let (verdict, reason) = judge(&usable, &keys, &attempts);
        AddressReport {
            host: target.host.clone(),
            address: target.addr,
            protocol: target.protocol,
            verdict,
            reason,
            keys,
            attempts,
            ignored_records: ignored,
            unmatched_records,
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        }
    }

    /// Probe many addresses, at most `concurrency` at once; the reports come back in the order
    /// of `targets`.
    pub async fn probe_many(
        &self,
        targets: Vec<ProbeTarget>,
        records: &[TlsaRecord],
        concurrency: usize,
    ) -> Vec<AddressReport> {
        let records: Arc<[TlsaRecord]> = records.into();
        let permits = Arc::new(Semaphore::new(concurrency.max(1)));
        let mut set = JoinSet::new();
        let mut slots: Vec<Option<AddressReport>> = vec![None; targets.len()];
        let mut by_task = std::collections::HashMap::new();
        for (index, target) in targets.iter().cloned().enumerate() {
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                break;
            };
            let prober = self.clone();
            let records = Arc::clone(&records);
            let handle = set.spawn(async move {
                let _permit = permit;
                (index, prober.probe_address(&target, &records).await)
            });
            by_task.insert(handle.id(), index);
        }
        while let Some(joined) = set.join_next_with_id().await {
            match joined {
                Ok((_, (index, report))) => slots[index] = Some(report),
                Err(err) => {
                    if let Some(&index) = by_task.get(&err.id()) {
                        slots[index] = Some(internal_failure(&targets[index], &err.to_string()));
                    }
                }
            }
        }
        slots
            .into_iter()
            .zip(&targets)
            .map(|(slot, target)| {
                slot.unwrap_or_else(|| internal_failure(target, "the probe did not run"))
            })
            .collect()
    }

    /// One connection: dialogue, handshake offering one family, inspection.
    async fn attempt(
        &self,
        context: &SslContext,
        target: &ProbeTarget,
        usable: &[TlsaRecord],
        first: bool,
        ignored: &mut Vec<IgnoredRecord>,
    ) -> Outcome {
        let options = &self.inner.options;
        let limits = Limits {
            step: options.step_timeout,
            max_line: options.max_line,
            max_lines: starttls::MAX_LINES,
        };
        let ssl = match new_ssl(context, &target.host, usable) {
            Ok((ssl, unusable)) => {
                if first {
                    ignored.extend(unusable);
                }
                ssl
            }
            Err(error) => {
                return Outcome::Failed {
                    error: format!("internal error setting up TLS: {error}"),
                    definitive: false,
                    skip_rest: true,
                };
            }
        };

        let mut tcp = match timeout(limits.step, TcpStream::connect(target.addr)).await {
            Err(_) => {
                return dialogue_failed(DialogueError::Timeout {
                    step: Step::Connect,
                    after: limits.step,
                });
            }
            Ok(Err(source)) => {
                return dialogue_failed(DialogueError::Io {
                    step: Step::Connect,
                    source,
                });
            }
            Ok(Ok(tcp)) => tcp,
        };
        let _ = tcp.set_nodelay(true);
        if let Err(err) =
            starttls::start_tls(&mut tcp, target.protocol, &options.helo, &limits).await
        {
            return dialogue_failed(err);
        }

        let mut tls = match SslStream::new(ssl, tcp) {
            Ok(tls) => tls,
            Err(err) => {
                return Outcome::Failed {
                    error: format!("internal error setting up TLS: {err}"),
                    definitive: false,
                    skip_rest: true,
                };
            }
        };
        match timeout(limits.step, Pin::new(&mut tls).connect()).await {
            Err(_) => {
                return Outcome::Failed {
                    error: format!(
                        "timed out after {}s in the TLS handshake",
                        limits.step.as_secs_f64()
                    ),
                    definitive: false,
                    skip_rest: false,
                };
            }
            Ok(Err(err)) => return handshake_failed(&err),
            Ok(Ok(())) => {}
        }

        let found = inspect(tls.ssl(), &target.host, usable.len());
        if matches!(target.protocol, Protocol::Smtp | Protocol::Submission) {
            starttls::smtp_quit(&mut tls, &limits).await;
        } else {
            let _ = timeout(
                limits.step.min(SHUTDOWN_WAIT),
                tokio::io::AsyncWriteExt::shutdown(&mut tls),
            )
            .await;
        }
        match found {
            Some(found) => Outcome::Key(Box::new(found)),
            None => Outcome::Failed {
                error: "the server sent no certificate".into(),
                definitive: true,
                skip_rest: false,
            },
        }
    }
}

/// Probe one address with a prober built for the occasion. To probe many, build one
/// [`Prober`] and reuse it: the OpenSSL contexts are then made once.
pub async fn probe_address(
    target: &ProbeTarget,
    records: &[TlsaRecord],
    options: &ProbeOptions,
) -> Result<AddressReport, ProbeError> {
    let prober = Prober::new(options.clone())?;
    Ok(prober.probe_address(target, records).await)
}

/// A client context offering only `algorithm`'s signature algorithms, with DANE enabled and
/// verification mode NONE: the handshake completes whatever the chain, so that every failure
/// can be read from the verification result and explained.
fn client_context(algorithm: KeyAlgorithm) -> Result<SslContext, ErrorStack> {
    let mut builder = SslContextBuilder::new(SslMethod::tls_client())?;
    builder.set_verify(SslVerifyMode::NONE);
    builder.set_sigalgs_list(algorithm.sigalgs())?;
    dane::enable_context(&mut builder)?;
    Ok(builder.build())
}

/// A connection object for `host` with DANE enabled and the usable records added. Records
/// OpenSSL declines are returned as ignored.
fn new_ssl(
    context: &SslContext,
    host: &str,
    usable: &[TlsaRecord],
) -> Result<(Ssl, Vec<IgnoredRecord>), Box<dyn std::error::Error + Send + Sync>> {
    let mut ssl = Ssl::new(context)?;
    ssl.set_hostname(host)?; // SNI; SSL_dane_enable would only default it
    dane::enable(&mut ssl, host)?;
    // RFC 7672 §3.1.1: a DANE-EE(3) match has no name checks (and no date checks, which
    // OpenSSL skips for DANE-EE at depth 0 by itself). DANE-TA(2) matches are checked against
    // the host name given to SSL_dane_enable (RFC 7672 §3.2.2).
    dane::no_dane_ee_namechecks(&mut ssl);
    let mut unusable = Vec::new();
    for record in usable {
        match dane::add_tlsa(
            &mut ssl,
            record.usage,
            record.selector,
            record.matching,
            &record.data,
        )? {
            dane::Added::Usable => {}
            dane::Added::Unusable(errors) => unusable.push(IgnoredRecord {
                record: record.clone(),
                reason: format!("OpenSSL cannot use the record: {errors}"),
            }),
        }
    }
    Ok((ssl, unusable))
}
