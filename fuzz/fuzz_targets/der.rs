//! The crate's DER readings alone (`der.rs` over `x509-parser`, through `pki::der_readings`): an
//! element's header and announced length, a certificate's SubjectPublicKeyInfo and its notAfter
//! (UTCTime and GeneralizedTime). `pem_der` covers them too, behind OpenSSL's decoders, which
//! take most of its time; this target runs the pure-Rust part a thousand times faster.
//!
//! An input starting with `T` is the tag and content of a notAfter, put into a certificate
//! skeleton, so the date parser sees any text soon (a slice of UTF-8 at a byte index panicked
//! there); any other input is read as DER as it is.

#![no_main]

use dane_roll::pki;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match data {
        [b'T', tag, content @ ..] => check(&skeleton(*tag, content)),
        _ => check(data),
    }
});

fn check(data: &[u8]) {
    let (announced, spki, not_after) = pki::der_readings(data);
    if let Some(len) = announced {
        assert!(len >= 2, "an element of {len} bytes, header included");
    }
    if let Some(spki) = spki {
        assert!(spki.len() >= 2 && spki.len() <= data.len());
        assert_eq!(spki[0], 0x30, "an SPKI that is not a SEQUENCE");
    }
    let _ = not_after;
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let n = content.len();
    if n < 0x80 {
        out.push(n as u8);
    } else {
        out.extend([0x82, (n >> 8) as u8, n as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// A certificate whose notAfter is `tag` `content` (tag 0x17 UTCTime, 0x18 GeneralizedTime).
fn skeleton(tag: u8, content: &[u8]) -> Vec<u8> {
    let content = &content[..content.len().min(0xffff)];
    let validity = [tlv(0x17, b"250101000000Z"), tlv(tag, content)].concat();
    let tbs = [
        tlv(0xa0, &tlv(0x02, &[2])),
        tlv(0x02, &[1]),
        tlv(0x30, &[]),
        tlv(0x30, &[]),
        tlv(0x30, &validity),
        tlv(0x30, &[]),
        tlv(0x30, &tlv(0x03, &[0, 1, 2, 3])),
    ]
    .concat();
    tlv(0x30, &tlv(0x30, &tbs))
}
