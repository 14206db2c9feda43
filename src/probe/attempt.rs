//! One handshake attempt as the probe sees it: the key and chain a completed handshake showed
//! ([`Found`]), or why there was none, with OpenSSL's and the dialogue's errors put in words.

use openssl::ssl::ErrorCode;
use openssl::x509::X509;

use super::dane;
use super::report::{self, CertInfo, KeyReport};
use super::starttls::DialogueError;

/// What one handshake attempt gave, before it is folded into the report.
pub(super) enum Outcome {
    Key(Box<Found>),
    NoKey(String),
    Failed {
        error: String,
        definitive: bool,
        skip_rest: bool,
    },
}

/// A key seen in a completed handshake.
pub(super) struct Found {
    pub(super) report: KeyReport,
    pub(super) chain: Vec<X509>,
}

pub(super) fn dialogue_failed(err: DialogueError) -> Outcome {
    Outcome::Failed {
        definitive: err.is_definitive(),
        error: err.to_string(),
        skip_rest: true,
    }
}

/// Sort a failed handshake: the server has no key for the offered algorithms (an alert), the
/// connection went away (cannot tell), or TLS is broken (mail would not flow).
pub(super) fn handshake_failed(err: &openssl::ssl::Error) -> Outcome {
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
pub(super) fn inspect(ssl: &openssl::ssl::SslRef, host: &str, usable: usize) -> Option<Found> {
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
        chain_der: chain.iter().filter_map(|c| c.to_der().ok()).collect(),
    };
    Some(Found { report, chain })
}
