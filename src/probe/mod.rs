//! The live DANE probe: would mail flow to this address? It connects, runs the clear-text
//! dialogue ([`starttls`]), and lets OpenSSL's own DANE code ([`dane`], the code Postfix uses)
//! verify the served chain against the TLSA records; [`report`] holds what it found.
//!
//! A server may hold one key per algorithm (RSA and ECDSA side by side) and picks one by the
//! client's signature algorithms, so each address is probed once per family (RSA, then ECDSA,
//! then EdDSA) offering only that family's signature algorithms. Every distinct key found must
//! match: a sender that negotiates the unmatched one would defer mail.
//!
//! The probe takes addresses, not names: resolving the host (and looking up the validated TLSA
//! records) belongs to the caller.

pub mod dane;
pub mod report;
pub mod starttls;

use std::borrow::Cow;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::error::ErrorStack;
use openssl::ssl::{ErrorCode, Ssl, SslContext, SslContextBuilder, SslMethod, SslVerifyMode};
use openssl::x509::X509;
use serde::Serialize;
use thiserror::Error;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::{timeout, timeout_at};
use tokio_openssl::SslStream;

use crate::config::Protocol;
use crate::tlsa::{Matching, Selector, TlsaRecord, Usage};

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

/// What one handshake attempt gave, before it is folded into the report.
enum Outcome {
    Key(Box<Found>),
    NoKey(String),
    Failed {
        error: String,
        definitive: bool,
        skip_rest: bool,
    },
}

/// A key seen in a completed handshake.
struct Found {
    report: KeyReport,
    chain: Vec<X509>,
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

        let mut keys: Vec<KeyReport> = Vec::new();
        let mut chains: Vec<Vec<X509>> = Vec::new();
        let mut attempts = Vec::new();
        let mut skip = false;
        for (i, (algorithm, context)) in self.inner.contexts.iter().enumerate() {
            if skip {
                attempts.push(Attempt {
                    algorithm: *algorithm,
                    outcome: AttemptOutcome::Skipped,
                });
                continue;
            }
            let attempt = self.attempt(context, target, &usable, i == 0, &mut ignored);
            let outcome = match timeout_at(deadline, attempt).await {
                Ok(outcome) => outcome,
                Err(_) => Outcome::Failed {
                    error: format!(
                        "the time limit for the address ({}s) ran out",
                        options.address_timeout.as_secs_f64()
                    ),
                    definitive: false,
                    skip_rest: true,
                },
            };
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

/// Split the records into those SMTP uses and those it ignores.
fn split_records(records: &[TlsaRecord]) -> (Vec<TlsaRecord>, Vec<IgnoredRecord>) {
    let mut usable = Vec::new();
    let mut ignored = Vec::new();
    for record in records {
        // RFC 7672 §3.1.3: SMTP clients treat PKIX-TA(0) and PKIX-EE(1) records as unusable;
        // a record set of only those means no DANE (the sender falls back to unauthenticated TLS).
        if record.usage.is_usable_for_smtp() {
            if !usable.contains(record) {
                usable.push(record.clone());
            }
        } else {
            ignored.push(IgnoredRecord {
                record: record.clone(),
                reason: format!(
                    "usage {} ({}) is ignored by SMTP (RFC 7672 §3.1.3)",
                    record.usage,
                    record.usage.acronym()
                ),
            });
        }
    }
    (usable, ignored)
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

fn dialogue_failed(err: DialogueError) -> Outcome {
    Outcome::Failed {
        definitive: err.is_definitive(),
        error: err.to_string(),
        skip_rest: true,
    }
}

/// Sort a failed handshake: the server has no key for the offered algorithms (an alert), the
/// connection went away (cannot tell), or TLS is broken (mail would not flow).
fn handshake_failed(err: &openssl::ssl::Error) -> Outcome {
    // Reason codes from <openssl/sslerr.h>: alerts received (1000 + alert number), and the
    // client's own refusals of what the server chose.
    const HANDSHAKE_FAILURE_ALERT: i32 = 1040;
    const INSUFFICIENT_SECURITY_ALERT: i32 = 1071;
    const NO_SUITABLE_SIGNATURE_ALGORITHM: i32 = 118;
    const WRONG_SIGNATURE_TYPE: i32 = 370;
    const NO_SHARED_SIGNATURE_ALGORITHMS: i32 = 376;
    const UNEXPECTED_EOF_WHILE_READING: i32 = 294;
    let reasons: Vec<i32> = err
        .ssl_error()
        .map(|stack| stack.errors().iter().map(|e| e.reason_code()).collect())
        .unwrap_or_default();
    let words = describe_ssl_error(err);
    if reasons.iter().any(|r| {
        matches!(
            *r,
            HANDSHAKE_FAILURE_ALERT
                | INSUFFICIENT_SECURITY_ALERT
                | NO_SUITABLE_SIGNATURE_ALGORITHM
                | WRONG_SIGNATURE_TYPE
                | NO_SHARED_SIGNATURE_ALGORITHMS
        )
    }) {
        return Outcome::NoKey(words);
    }
    let gone = err.code() == ErrorCode::SYSCALL
        || err.code() == ErrorCode::ZERO_RETURN
        || reasons.contains(&UNEXPECTED_EOF_WHILE_READING);
    Outcome::Failed {
        error: if gone {
            format!("the connection closed during the TLS handshake ({words})")
        } else {
            format!("TLS handshake failed: {words}")
        },
        definitive: !gone,
        skip_rest: false,
    }
}

/// OpenSSL's reasons, without the file and line noise.
fn describe_ssl_error(err: &openssl::ssl::Error) -> String {
    if let Some(stack) = err.ssl_error() {
        let reasons: Vec<String> = stack
            .errors()
            .iter()
            .map(|e| e.reason().unwrap_or("unknown reason").to_string())
            .collect();
        if !reasons.is_empty() {
            return reasons.join("; ");
        }
    }
    match err.io_error() {
        Some(io) => io.to_string(),
        None => "unexpected end of stream".to_string(),
    }
}

/// Read the outcome of a completed handshake: the chain, the DANE verdict, the session.
fn inspect(ssl: &openssl::ssl::SslRef, host: &str, usable: usize) -> Option<Found> {
    let chain: Vec<X509> = ssl
        .peer_cert_chain()
        .map(|stack| stack.iter().map(|c| c.to_owned()).collect())
        .unwrap_or_default();
    let leaf = ssl.peer_certificate().or_else(|| chain.first().cloned())?;
    let served: Vec<CertInfo> = chain.iter().map(|c| CertInfo::of(c)).collect();
    let leaf_info = match served.first() {
        Some(info) => info.clone(),
        None => CertInfo::of(&leaf),
    };
    let result = ssl.verify_result();
    let code = result.as_raw();
    let authority = dane::authority(ssl);
    let matched_tlsa = dane::matched_tlsa(ssl);
    let matched = usable > 0 && code == 0 && matched_tlsa.is_some();
    let reason = if matched {
        None
    } else if usable == 0 {
        Some("no usable TLSA record to match".to_string())
    } else {
        Some(report::verify_words(result, host))
    };
    let report = KeyReport {
        key_type: leaf_info.key_type,
        spki_sha256: leaf_info.spki_sha256,
        algorithms: Vec::new(),
        matched,
        match_depth: matched_tlsa
            .as_ref()
            .map(|(depth, _)| *depth)
            .or(authority.as_ref().map(|a| a.depth)),
        matched_record: matched_tlsa.map(|(_, record)| record),
        matched_by_public_key: authority
            .is_some_and(|a| a.by_public_key && a.certificate.is_none()),
        verify_code: code,
        reason,
        tls_version: ssl.version_str().to_string(),
        cipher: ssl
            .current_cipher()
            .map(|c| c.name().to_string())
            .unwrap_or_default(),
        chain: served,
    };
    Some(Found { report, chain })
}

/// Usable records that match no certificate served (for any key): stale records, or records
/// for a key not deployed yet. Informational only: the verdict is OpenSSL's.
fn unmatched(usable: &[TlsaRecord], keys: &[KeyReport], chains: &[Vec<X509>]) -> Vec<TlsaRecord> {
    // The DER of every served certificate and its depth, made only if a record needs it.
    let mut served: Option<Vec<(usize, Vec<u8>)>> = None;
    usable
        .iter()
        .filter(|record| {
            if keys
                .iter()
                .any(|k| k.matched_record.as_ref() == Some(*record))
            {
                return false;
            }
            let served = served.get_or_insert_with(|| {
                chains
                    .iter()
                    .flat_map(|chain| chain.iter().enumerate())
                    .filter_map(|(depth, cert)| Some((depth, cert.to_der().ok()?)))
                    .collect()
            });
            !served.iter().any(|(depth, der)| {
                // DANE-EE(3) is the server's own certificate; DANE-TA(2) a CA in the chain.
                let fits = match record.usage {
                    Usage::DaneEe => *depth == 0,
                    _ => *depth > 0,
                };
                fits && matches_record(record, der)
            })
        })
        .cloned()
        .collect()
}

/// Whether `record` matches the certificate `der` (selector and matching type applied).
fn matches_record(record: &TlsaRecord, der: &[u8]) -> bool {
    let selected = match record.selector {
        Selector::Cert => Cow::Borrowed(der),
        Selector::Spki => match report::spki_of_certificate(der) {
            Some(spki) => spki,
            None => return false,
        },
    };
    let selected: &[u8] = &selected;
    match record.matching {
        Matching::Full => selected == record.data.as_slice(),
        Matching::Sha256 => report::sha256(selected).as_slice() == record.data.as_slice(),
        Matching::Sha512 => openssl::sha::sha512(selected).as_slice() == record.data.as_slice(),
    }
}

/// The verdict for an address from its keys and attempts.
fn judge(
    usable: &[TlsaRecord],
    keys: &[KeyReport],
    attempts: &[Attempt],
) -> (Verdict, Option<String>) {
    if usable.is_empty() {
        return (
            Verdict::Fail,
            Some("no usable TLSA record (DANE-TA or DANE-EE): DANE does not apply".into()),
        );
    }
    if let Some(key) = keys.iter().find(|k| !k.matched) {
        return (
            Verdict::Fail,
            Some(format!(
                "{} key {}…: {}",
                key.key_type,
                key.spki_sha256.get(..16).unwrap_or(&key.spki_sha256),
                key.reason.as_deref().unwrap_or("not verified")
            )),
        );
    }
    let errors = attempts.iter().filter_map(|a| match &a.outcome {
        AttemptOutcome::Error { error, definitive } => Some((error, *definitive)),
        _ => None,
    });
    let mut unknown = None;
    for (error, definitive) in errors {
        if definitive {
            return (Verdict::Fail, Some(error.clone()));
        }
        unknown.get_or_insert_with(|| error.clone());
    }
    if let Some(error) = unknown {
        return (Verdict::Unknown, Some(error));
    }
    if keys.is_empty() {
        let detail = attempts.iter().find_map(|a| match &a.outcome {
            AttemptOutcome::NoKey { detail } => Some(detail.as_str()),
            _ => None,
        });
        return (
            Verdict::Fail,
            Some(format!(
                "the TLS handshake failed with every key algorithm tried{}",
                detail.map(|d| format!(" ({d})")).unwrap_or_default()
            )),
        );
    }
    (Verdict::Pass, None)
}

/// A report for a probe that could not run (a panicked task).
fn internal_failure(target: &ProbeTarget, why: &str) -> AddressReport {
    AddressReport {
        host: target.host.clone(),
        address: target.addr,
        protocol: target.protocol,
        verdict: Verdict::Unknown,
        reason: Some(format!("internal error: {why}")),
        keys: Vec::new(),
        attempts: Vec::new(),
        ignored_records: Vec::new(),
        unmatched_records: Vec::new(),
        elapsed_ms: 0,
    }
}
