//! One TLS report from what a sender delivers: a report mail (MIME, as an alias pipe or a
//! Maildir hands it over, with an `application/tlsrpt+gzip` or `application/tlsrpt+json` part),
//! a bare report (JSON, or gzip-compressed JSON: a saved attachment, an HTTPS POST body).
//!
//! The MIME structure is read by `mail-parser` and the report by the RFC 8460 types of
//! `mail-auth` (after [`super::quirks`] has smoothed what large senders do differently); this
//! module only picks the part, bounds every size and names what is wrong. Limits: the input at
//! most [`MAX_INPUT`] bytes, the decompressed report at most [`MAX_JSON`] (a gzip bomb stops
//! there, having inflated no more than that).

use std::io::Read;

use mail_auth::report::tlsrpt::{DateRange, PolicyType, ResultType, TlsReport};
use mail_parser::{MessageParser, MimeHeaders, PartType};
use serde_json::Value;

use crate::rollover::Timestamp;

/// The largest input read (a report mail, a POST body): reports are kilobytes.
pub const MAX_INPUT: usize = 10 * 1024 * 1024;
/// The largest decompressed report accepted.
pub const MAX_JSON: usize = 10 * 1024 * 1024;

/// Why an input is not a report we keep. Each names the input.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// The input could not be read.
    #[error("{input}: cannot be read: {source}")]
    Read {
        /// The input.
        input: String,
        /// Why.
        source: std::io::Error,
    },
    /// The input is larger than [`MAX_INPUT`].
    #[error(
        "{input}: larger than {limit} bytes; a TLS report is a few kilobytes, so this is not one \
         to keep (nothing was stored)"
    )]
    TooLarge {
        /// The input.
        input: String,
        /// The limit.
        limit: usize,
    },
    /// The gzip data inflates past [`MAX_JSON`].
    #[error(
        "{input}: the gzip data inflates to more than {limit} bytes (a gzip bomb?); nothing \
         was stored"
    )]
    Bomb {
        /// The input.
        input: String,
        /// The limit.
        limit: usize,
    },
    /// The gzip data is damaged or cut short.
    #[error("{input}: the gzip data is damaged or cut short ({detail}); nothing was stored")]
    Gzip {
        /// The input.
        input: String,
        /// What the decoder said.
        detail: String,
    },
    /// Not a report at all (a mail without a report part, text that is not JSON).
    #[error("{input}: not a TLS report: {detail}; nothing was stored")]
    NotAReport {
        /// The input.
        input: String,
        /// What it is instead.
        detail: String,
    },
    /// JSON, but not an RFC 8460 report.
    #[error("{input}: not a valid TLS report (RFC 8460 §4.4): {detail}; nothing was stored")]
    Invalid {
        /// The input.
        input: String,
        /// What is wrong.
        detail: String,
    },
}

/// A report as read: RFC 8460's report (with the senders' quirks smoothed), and what the store
/// keys and orders it by.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The sending organisation (`organization-name`).
    pub organization: String,
    /// The report's id (`report-id`); with the organisation, what makes it unique.
    pub report_id: String,
    /// The start of the window the report covers.
    pub begin: Timestamp,
    /// Its end.
    pub end: Timestamp,
    /// The report itself.
    pub tls: TlsReport,
}

impl Report {
    /// The report as JSON (what the store keeps).
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.tls).unwrap_or_default()
    }

    /// A stored report read back.
    pub fn from_stored(json: &str, input: &str) -> Result<Report, ReportError> {
        parse_json(json.as_bytes(), input)
    }

    /// The day (UTC, `YYYY-MM-DD`) the report's window begins on.
    pub fn day(&self) -> String {
        self.begin.to_string().chars().take(10).collect()
    }
}

/// Read at most [`MAX_INPUT`] bytes of `reader`; more is an error naming `input`.
pub fn read_bounded(reader: impl Read, input: &str) -> Result<Vec<u8>, ReportError> {
    read_at_most(reader, MAX_INPUT)
        .map_err(|source| ReportError::Read {
            input: input.to_owned(),
            source,
        })?
        .ok_or_else(|| ReportError::TooLarge {
            input: input.to_owned(),
            limit: MAX_INPUT,
        })
}

/// All of `reader` if it holds at most `limit` bytes, `Ok(None)` if it holds more (it reads
/// one byte past `limit` to tell, no more).
fn read_at_most(reader: impl Read, limit: usize) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = Vec::new();
    reader.take(limit as u64 + 1).read_to_end(&mut buf)?;
    Ok((buf.len() <= limit).then_some(buf))
}

/// The report in `bytes`: a bare JSON report, a gzip-compressed one, or a report mail.
pub fn parse_report(bytes: &[u8], input: &str) -> Result<Report, ReportError> {
    if bytes.len() > MAX_INPUT {
        return Err(ReportError::TooLarge {
            input: input.to_owned(),
            limit: MAX_INPUT,
        });
    }
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    match &bytes[start..] {
        [] => Err(ReportError::NotAReport {
            input: input.to_owned(),
            detail: "the input is empty".to_owned(),
        }),
        [0x1f, 0x8b, ..] => parse_json(&gunzip(bytes, input)?, input),
        [b'{', ..] => parse_json(bytes, input),
        _ => parse_mail(bytes, input),
    }
}

/// The report part of a mail: `application/tlsrpt+gzip` or `+json` (RFC 8460 §5.3), or, from
/// senders that label it otherwise, an attachment named `*.json.gz` / `*.json`.
fn parse_mail(bytes: &[u8], input: &str) -> Result<Report, ReportError> {
    let not = |detail: &str| ReportError::NotAReport {
        input: input.to_owned(),
        detail: detail.to_owned(),
    };
    let message = MessageParser::new()
        .parse(bytes)
        .ok_or_else(|| not("neither JSON, gzip nor a mail message"))?;
    if message.headers().is_empty() {
        return Err(not("neither JSON, gzip nor a mail message with headers"));
    }
    let mut found = None;
    for part in &message.parts {
        let data: &[u8] = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b,
            PartType::Text(t) => t.as_bytes(),
            _ => continue,
        };
        let subtype = part
            .content_type()
            .and_then(|ct| ct.subtype())
            .unwrap_or("")
            .to_ascii_lowercase();
        let name = part.attachment_name().unwrap_or("").to_ascii_lowercase();
        let kind = match subtype.as_str() {
            "tlsrpt+gzip" => Kind::Gzip,
            "tlsrpt+json" => Kind::Json,
            _ if name.ends_with(".json.gz") || name.ends_with(".gz") => Kind::Gzip,
            _ if name.ends_with(".json") => Kind::Json,
            _ => continue,
        };
        found = Some((kind, data));
        break;
    }
    let Some((kind, data)) = found else {
        return Err(not(
            "the mail has no application/tlsrpt+gzip or application/tlsrpt+json part",
        ));
    };
    match kind {
        // Some senders label gzip data +json and the reverse: the bytes decide.
        _ if data.starts_with(&[0x1f, 0x8b]) => parse_json(&gunzip(data, input)?, input),
        Kind::Gzip if !data.trim_ascii_start().starts_with(b"{") => Err(ReportError::Gzip {
            input: input.to_owned(),
            detail: "the application/tlsrpt+gzip part is not gzip data".to_owned(),
        }),
        _ => parse_json(data, input),
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Gzip,
    Json,
}

/// Inflate `data`, stopping past [`MAX_JSON`] bytes.
fn gunzip(data: &[u8], input: &str) -> Result<Vec<u8>, ReportError> {
    read_at_most(flate2::read::GzDecoder::new(data), MAX_JSON)
        .map_err(|e| ReportError::Gzip {
            input: input.to_owned(),
            detail: match e.kind() {
                std::io::ErrorKind::UnexpectedEof => "truncated".to_owned(),
                _ => e.to_string(),
            },
        })?
        .ok_or_else(|| ReportError::Bomb {
            input: input.to_owned(),
            limit: MAX_JSON,
        })
}

/// The report in JSON text: smoothed ([`super::quirks`]), read by `mail-auth`, then checked
/// for what its types let pass (an unreadable date becomes 1970 there; an empty report id).
fn parse_json(data: &[u8], input: &str) -> Result<Report, ReportError> {
    let invalid = |detail: String| ReportError::Invalid {
        input: input.to_owned(),
        detail,
    };
    let mut value: Value = serde_json::from_slice(data).map_err(|e| {
        if e.is_eof() {
            invalid(format!("the JSON is cut short ({e})"))
        } else if e.is_syntax() {
            ReportError::NotAReport {
                input: input.to_owned(),
                detail: format!("not JSON ({e})"),
            }
        } else {
            invalid(e.to_string())
        }
    })?;
    if !value.is_object() {
        return Err(invalid("the JSON is not an object".to_owned()));
    }
    let (begin, end) = window(&value).map_err(invalid)?;
    super::quirks::smooth(&mut value);
    // Read from text, not from the value: `mail-auth` reads the dates as borrowed strings,
    // which a `serde_json::Value` cannot lend.
    let text = value.to_string();
    let mut tls: TlsReport = serde_json::from_str(&text).map_err(|e| invalid(e.to_string()))?;
    // The window as read here (a fraction or an offset mail-auth may not read), so that the
    // stored JSON says the same.
    tls.date_range = DateRange::from_timestamps(begin.as_secs(), end.as_secs());
    let organization = tls
        .organization_name
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid("no organization-name".to_owned()))?
        .to_owned();
    let report_id = tls.report_id.trim().to_owned();
    if report_id.is_empty() {
        return Err(invalid("no report-id".to_owned()));
    }
    if end < begin {
        return Err(invalid(format!(
            "date-range ends ({end}) before it begins ({begin})"
        )));
    }
    Ok(Report {
        organization,
        report_id,
        begin,
        end,
        tls,
    })
}

/// The report's `date-range`, read here: `mail-auth` turns an unreadable date into 1970.
fn window(value: &Value) -> Result<(Timestamp, Timestamp), String> {
    let range = value
        .get("date-range")
        .ok_or("missing field `date-range`")?;
    let at = |field: &str| -> Result<Timestamp, String> {
        let text = range
            .get(field)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("missing field `date-range.{field}`"))?;
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| Timestamp::from_millis(t.timestamp_millis()))
            .map_err(|_| format!("date-range.{field} \"{text}\" is not an RFC 3339 time"))
    };
    Ok((at("start-datetime")?, at("end-datetime")?))
}

/// A result type's name as RFC 8460 writes it (`other` for one `mail-auth` does not know).
pub fn result_name(result: ResultType) -> &'static str {
    match result {
        ResultType::StartTlsNotSupported => "starttls-not-supported",
        ResultType::CertificateHostMismatch => "certificate-host-mismatch",
        ResultType::CertificateExpired => "certificate-expired",
        ResultType::CertificateNotTrusted => "certificate-not-trusted",
        ResultType::ValidationFailure => "validation-failure",
        ResultType::TlsaInvalid => "tlsa-invalid",
        ResultType::DnssecInvalid => "dnssec-invalid",
        ResultType::DaneRequired => "dane-required",
        ResultType::StsPolicyFetchError => "sts-policy-fetch-error",
        ResultType::StsPolicyInvalid => "sts-policy-invalid",
        ResultType::StsWebpkiInvalid => "sts-webpki-invalid",
        ResultType::Other => "other",
    }
}

/// A policy type's name as RFC 8460 writes it.
pub fn policy_name(policy: PolicyType) -> &'static str {
    match policy {
        PolicyType::Tlsa => "tlsa",
        PolicyType::Sts => "sts",
        PolicyType::NoPolicyFound => "no-policy-found",
        PolicyType::Other => "other",
    }
}
