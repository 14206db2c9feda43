//! TLSA presentation text (`3 1 1 <hex>`, RFC 7218 acronyms, split and mixed-case hex): parsing
//! never panics, and what parses prints back to text that parses to the same record.

#![no_main]

use dane_roll::tlsa::{self, TlsaRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(record) = text.parse::<TlsaRecord>() else {
        return;
    };
    let shown = record.to_string();
    let again: TlsaRecord = shown
        .parse()
        .unwrap_or_else(|e| panic!("{shown:?}, printed from {text:?}, does not parse: {e}"));
    assert_eq!(again, record, "{text:?} -> {shown:?}");
    assert_eq!(record.data_hex().len(), record.data.len() * 2);
    for port in [25, 465, 587, 443, 0] {
        for lint in record.lints(port) {
            let _ = (lint.to_string(), lint.code(), lint.is_fatal());
        }
    }
    let _ = (
        record.usage.acronym(),
        record.selector.acronym(),
        record.matching.acronym(),
    );
    let _ = tlsa::owner_name(text, u16::try_from(data.len()).unwrap_or(u16::MAX));
});
