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
            // `get`, not indexing: the text is any UTF-8 a certificate holds, and byte 2 may fall
            // inside a character (found by fuzz/fuzz_targets/der.rs).
            let yy: i64 = digits.get(..2)?.parse().ok()?;
            format!("{}{digits}", if yy >= 50 { "19" } else { "20" })
        }
        (GENERALIZED_TIME, 14) => digits.to_owned(),
        _ => return None,
    };
    let n = |r: std::ops::Range<usize>| full.get(r).and_then(|t| t.parse::<u32>().ok());
    let year = full.get(0..4)?.parse::<i32>().ok()?;
    let (mo, d) = (n(4..6)?, n(6..8)?);
    let (h, mi, se) = (n(8..10)?, n(10..12)?, n(12..14)?);
    crate::rfc3339::civil_secs(year, mo, d, h, mi, se)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One DER element (short or long length form).
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        match content.len() {
            n @ 0..=0x7f => out.push(n as u8),
            n @ 0x80..=0xff => out.extend([0x81, n as u8]),
            n => out.extend([0x82, (n >> 8) as u8, n as u8]),
        }
        out.extend_from_slice(content);
        out
    }

    /// A certificate skeleton: version, serial, signature, issuer, validity (with `not_after`),
    /// subject, SPKI; nothing else is read.
    fn certificate(not_after: &[u8]) -> Vec<u8> {
        let validity = [tlv(UTC_TIME, b"250101000000Z"), not_after.to_vec()].concat();
        let tbs = [
            tlv(VERSION, &tlv(0x02, &[2])),
            tlv(0x02, &[1]),
            tlv(SEQUENCE, &[]),
            tlv(SEQUENCE, &[]),
            tlv(SEQUENCE, &validity),
            tlv(SEQUENCE, &[]),
            tlv(SEQUENCE, &tlv(0x03, &[0, 1, 2, 3])),
        ]
        .concat();
        tlv(SEQUENCE, &tlv(SEQUENCE, &tbs))
    }

    #[test]
    fn not_after_in_both_time_forms() {
        let utc = certificate(&tlv(UTC_TIME, b"300101000000Z"));
        assert_eq!(certificate_not_after(&utc), Some(1_893_456_000));
        let generalized = certificate(&tlv(GENERALIZED_TIME, b"20500101000000Z"));
        assert_eq!(certificate_not_after(&generalized), Some(2_524_608_000));
        assert_eq!(
            certificate_spki(&utc),
            Some(&tlv(SEQUENCE, &tlv(0x03, &[0, 1, 2, 3]))[..])
        );
    }

    /// Regression (fuzzing): a notAfter whose third byte is inside a UTF-8 character panicked on
    /// a string slice. A server can send such a certificate to the probe.
    #[test]
    fn a_not_after_that_is_not_digits_is_none_not_a_panic() {
        for text in [
            "1\u{e9}345678901Z",
            "\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}\u{e9}Z",
            "3001010000\u{e9}Z",
            "2050010100000\u{e9}",
        ] {
            for tag in [UTC_TIME, GENERALIZED_TIME] {
                let cert = certificate(&tlv(tag, text.as_bytes()));
                assert_eq!(certificate_not_after(&cert), None, "{text:?}");
            }
        }
        // Truncated anywhere: never a panic.
        let cert = certificate(&tlv(UTC_TIME, b"300101000000Z"));
        for end in 0..cert.len() {
            let _ = (
                certificate_not_after(&cert[..end]),
                certificate_spki(&cert[..end]),
            );
        }
    }
}
