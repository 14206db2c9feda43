//! The little DER the crate reads by hand: one element's header, a certificate's
//! SubjectPublicKeyInfo, and a certificate's notAfter.
//!
//! Hand-written rather than through an ASN.1 crate or OpenSSL because: OpenSSL's `d2i` functions
//! do not say how many bytes they used (splitting concatenated DER and spotting truncation need
//! the announced length), and OpenSSL 3's decoders and key encoders cost more than everything else
//! the probe and `status` do with a certificate (measured: `benches/probe.sh`, `benches/rollover.sh`).
//! These three readings are all the crate needs.

/// `SEQUENCE`.
const SEQUENCE: u8 = 0x30;
/// `[0] EXPLICIT`, the optional version field of a TBSCertificate.
const VERSION: u8 = 0xa0;
/// `UTCTime`.
const UTC_TIME: u8 = 0x17;
/// `GeneralizedTime`.
const GENERALIZED_TIME: u8 = 0x18;

/// One DER element and what follows it.
pub(crate) struct Element<'a> {
    /// The tag byte.
    pub tag: u8,
    /// The content octets.
    pub content: &'a [u8],
    /// Header and content.
    pub whole: &'a [u8],
    /// The bytes after the element.
    pub rest: &'a [u8],
}

/// The tag, header length and announced content length of the element at the start of `input`
/// (the content may be missing: see [`announced_length`]).
fn header(input: &[u8]) -> Option<(u8, usize, usize)> {
    let tag = *input.first()?;
    let first = *input.get(1)?;
    if first < 0x80 {
        return Some((tag, 2, usize::from(first)));
    }
    let count = usize::from(first & 0x7f);
    if count == 0 || count > 4 {
        return None; // indefinite length (not DER) or absurdly long
    }
    let len = input
        .get(2..2 + count)?
        .iter()
        .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
    Some((tag, 2 + count, len))
}

/// The total length (header included) that the element at the start of `input` announces,
/// whether or not `input` holds that many bytes.
pub(crate) fn announced_length(input: &[u8]) -> Option<usize> {
    header(input).and_then(|(_, head, len)| head.checked_add(len))
}

/// The complete element at the start of `input`.
pub(crate) fn element(input: &[u8]) -> Option<Element<'_>> {
    let (tag, head, len) = header(input)?;
    let end = head.checked_add(len)?;
    let whole = input.get(..end)?;
    Some(Element {
        tag,
        content: &whole[head..],
        whole,
        rest: &input[end..],
    })
}

/// The TBSCertificate's fields from `serialNumber` on (the optional version skipped).
fn tbs_fields(certificate: &[u8]) -> Option<&[u8]> {
    let certificate = element(certificate).filter(|e| e.tag == SEQUENCE)?;
    let tbs = element(certificate.content).filter(|e| e.tag == SEQUENCE)?;
    let first = element(tbs.content)?;
    Some(if first.tag == VERSION {
        first.rest
    } else {
        tbs.content
    })
}

/// The SubjectPublicKeyInfo inside a certificate's DER, as it was sent.
pub(crate) fn certificate_spki(certificate: &[u8]) -> Option<&[u8]> {
    let mut rest = tbs_fields(certificate)?;
    // serialNumber, signature, issuer, validity, subject.
    for _ in 0..5 {
        rest = element(rest)?.rest;
    }
    element(rest).filter(|e| e.tag == SEQUENCE).map(|e| e.whole)
}

/// A certificate's notAfter, in seconds since the epoch.
pub(crate) fn certificate_not_after(certificate: &[u8]) -> Option<i64> {
    let mut rest = tbs_fields(certificate)?;
    // serialNumber, signature, issuer.
    for _ in 0..3 {
        rest = element(rest)?.rest;
    }
    let validity = element(rest).filter(|e| e.tag == SEQUENCE)?;
    let not_after = element(element(validity.content)?.rest)?;
    let digits = std::str::from_utf8(not_after.content)
        .ok()?
        .strip_suffix('Z')?;
    let full = match (not_after.tag, digits.len()) {
        (UTC_TIME, 12) => {
            let yy: i64 = digits[..2].parse().ok()?;
            format!("{}{digits}", if yy >= 50 { "19" } else { "20" })
        }
        (GENERALIZED_TIME, 14) => digits.to_owned(),
        _ => return None,
    };
    let n = |r: std::ops::Range<usize>| full.get(r).and_then(|t| t.parse::<i64>().ok());
    let (y, mo, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (h, mi, se) = (n(8..10)?, n(10..12)?, n(12..14)?);
    Some(days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + se)
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
