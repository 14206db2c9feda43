//! One TLSA record as a provider sees it ([`Record`]: owner name, TTL, data) and its data in
//! the one normal form every comparison uses (`u s m hex`, lower-case hex).

use std::fmt;

use crate::{ProviderError, absolute, same_name};

/// One TLSA record as a provider sees it: where it lives and its presentation-format data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Record {
    /// The owner name, absolute, e.g. `_25._tcp.mail.example.com.`.
    pub owner: String,
    /// The TTL in seconds.
    pub ttl: u32,
    /// The record data as `usage selector matching hex`, hex in lowercase.
    pub rdata: String,
}

impl Record {
    /// A record with its owner name made absolute and lower case and its data normalised
    /// (single spaces, lower-case hex); an error when the data is not `u s m hex`.
    pub fn new(owner: &str, ttl: u32, rdata: &str) -> Result<Record, ProviderError> {
        Ok(Record {
            owner: absolute(owner),
            ttl,
            rdata: normalize_rdata(rdata)?,
        })
    }

    /// The record from its fields (`data` as hex).
    pub fn from_fields(
        owner: &str,
        ttl: u32,
        usage: u8,
        selector: u8,
        matching: u8,
        data: &str,
    ) -> Result<Record, ProviderError> {
        Record::new(owner, ttl, &format!("{usage} {selector} {matching} {data}"))
    }

    /// The fields: usage, selector, matching type, data (hex).
    pub fn fields(&self) -> Result<(u8, u8, u8, String), ProviderError> {
        parse_rdata(&self.rdata)
    }

    /// Whether `other` is the same record (owner and data; the TTL is not compared).
    pub fn same(&self, other: &Record) -> bool {
        same_name(&self.owner, &other.owner)
            && normalize_rdata(&self.rdata).ok() == normalize_rdata(&other.rdata).ok()
    }

    /// `owner TTL IN TLSA rdata`, a zone-file line.
    pub fn zone_line(&self) -> String {
        format!("{} {} IN TLSA {}", self.owner, self.ttl, self.rdata)
    }
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.zone_line())
    }
}

fn parse_rdata(text: &str) -> Result<(u8, u8, u8, String), ProviderError> {
    let bad = || {
        ProviderError::InvalidRecord(format!(
            "\"{text}\" is not TLSA data: write \"usage selector matching hex\", e.g. \"3 1 1 ab…\""
        ))
    };
    let mut parts = text.split_whitespace();
    let mut number = || -> Result<u8, ProviderError> {
        parts.next().and_then(|p| p.parse().ok()).ok_or_else(bad)
    };
    let (usage, selector, matching) = (number()?, number()?, number()?);
    let data: String = parts.collect::<String>().to_ascii_lowercase();
    if data.is_empty()
        || !data.len().is_multiple_of(2)
        || !data.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(bad());
    }
    Ok((usage, selector, matching, data))
}

/// The record data normalised: `u s m hex`, single spaces, lower-case hex (data given in
/// several blocks, as zone files and some APIs show it, is joined).
pub fn normalize_rdata(text: &str) -> Result<String, ProviderError> {
    let (u, s, m, data) = parse_rdata(text)?;
    Ok(format!("{u} {s} {m} {data}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_normalise_and_compare() {
        let a = Record::new("_25._tcp.Mail.Example.com", 300, "3 1 1 ABCD").unwrap();
        assert_eq!(a.owner, "_25._tcp.mail.example.com.");
        assert_eq!(a.rdata, "3 1 1 abcd");
        let b = Record::new("_25._tcp.mail.example.com.", 60, "3  1 1 ab cd").unwrap();
        assert!(a.same(&b));
        assert!(Record::new("x.", 1, "3 1 1 abc").is_err(), "odd hex");
        assert!(Record::new("x.", 1, "3 1 1").is_err(), "no data");
        assert!(Record::new("x.", 1, "3 1 x ab").is_err());
        assert_eq!(a.fields().unwrap(), (3, 1, 1, "abcd".into()));
    }
}
