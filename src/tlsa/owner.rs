//! The owner name of a TLSA RRset (`_25._tcp.mail.example.com.`): one type for every name the
//! records are published, gated and retired at, whether built from an endpoint (the
//! `_<port>._tcp.<host>.` rule, [`OwnerName::for_endpoint`], the only place it is written) or read
//! back from DNS, a CNAME chain or the store ([`OwnerName::parse`], which checks it).
//!
//! An [`OwnerName`] is absolute and in lower case, with exactly one final dot: two spellings of
//! one name compare equal. Its persisted and JSON form is the bare string, so store rows, the
//! stored rollover and `--json` output read as they did when owner names were plain strings.

use std::fmt;
use std::str::FromStr;

/// The owner name of a TLSA RRset: absolute, lower case, exactly one final dot.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OwnerName(String);

/// Text that is not an owner name. It names the text and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OwnerNameError {
    /// Nothing but the root (or nothing at all).
    #[error("owner name \"{0}\" is empty: give a DNS name such as _25._tcp.mail.example.com.")]
    Empty(String),
    /// Two dots in a row.
    #[error("owner name \"{0}\" has an empty label (two dots in a row)")]
    EmptyLabel(String),
    /// A space or control character, which no presentation form can carry.
    #[error("owner name \"{0}\" contains a space or control character")]
    BadCharacter(String),
}

impl OwnerName {
    /// The owner name of the records for `host` and `port`: `_25._tcp.mail.example.com.`
    /// (RFC 7672 §2.2.1). The host is trimmed, lower-cased, and its final dots dropped.
    pub fn for_endpoint(host: &str, port: u16) -> OwnerName {
        let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
        OwnerName(format!("_{port}._tcp.{host}."))
    }

    /// The endpoint `(host, port)` a `_<port>._tcp.<host>.` name is of (the host without its
    /// final dot); `None` for any other name (a CNAME target such as `_dane.example.com.`).
    pub fn endpoint(&self) -> Option<(&str, u16)> {
        let rest = self.0.strip_prefix('_')?;
        let (port, host) = rest.split_once("._tcp.")?;
        Some((host.trim_end_matches('.'), port.parse().ok()?))
    }

    /// Check and normalise a name read back (from DNS, a CNAME chain, the store): surrounding
    /// white space trimmed, lower case, exactly one final dot added or kept. An empty name, an
    /// empty label or a space or control character inside is an [`OwnerNameError`].
    pub fn parse(text: &str) -> Result<OwnerName, OwnerNameError> {
        let trimmed = text.trim();
        let body = trimmed.trim_end_matches('.');
        if body.is_empty() {
            return Err(OwnerNameError::Empty(text.to_owned()));
        }
        if body.split('.').any(str::is_empty) {
            return Err(OwnerNameError::EmptyLabel(text.to_owned()));
        }
        if body.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(OwnerNameError::BadCharacter(text.to_owned()));
        }
        Ok(OwnerName(format!("{}.", body.to_ascii_lowercase())))
    }

    /// The name as text, `_25._tcp.mail.example.com.`: what a provider and the store take.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }

    /// `names` written one after another with `sep` between, as `[String]::join` writes them.
    pub fn join(names: &[OwnerName], sep: &str) -> String {
        names
            .iter()
            .map(OwnerName::as_str)
            .collect::<Vec<_>>()
            .join(sep)
    }
}

impl fmt::Display for OwnerName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for OwnerName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for OwnerName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for OwnerName {
    type Err = OwnerNameError;

    fn from_str(text: &str) -> Result<OwnerName, OwnerNameError> {
        OwnerName::parse(text)
    }
}

impl TryFrom<String> for OwnerName {
    type Error = OwnerNameError;

    fn try_from(text: String) -> Result<OwnerName, OwnerNameError> {
        OwnerName::parse(&text)
    }
}

impl TryFrom<&str> for OwnerName {
    type Error = OwnerNameError;

    fn try_from(text: &str) -> Result<OwnerName, OwnerNameError> {
        OwnerName::parse(text)
    }
}

impl From<OwnerName> for String {
    fn from(name: OwnerName) -> String {
        name.0
    }
}

impl PartialEq<str> for OwnerName {
    fn eq(&self, other: &str) -> bool {
        self.0 == other
    }
}

impl PartialEq<&str> for OwnerName {
    fn eq(&self, other: &&str) -> bool {
        self.0 == *other
    }
}

impl PartialEq<String> for OwnerName {
    fn eq(&self, other: &String) -> bool {
        self.0 == *other
    }
}

impl PartialEq<OwnerName> for &str {
    fn eq(&self, other: &OwnerName) -> bool {
        *self == other.0
    }
}

impl PartialEq<OwnerName> for str {
    fn eq(&self, other: &OwnerName) -> bool {
        self == other.0
    }
}

/// The bare string, as the store and `--json` held owner names before this type.
impl serde::Serialize for OwnerName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// Checked as [`OwnerName::parse`] checks it: a name that is not one fails the load with a
/// typed error naming it.
impl<'de> serde::Deserialize<'de> for OwnerName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        OwnerName::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::{OwnerName, OwnerNameError};

    #[test]
    fn an_endpoint_gives_the_absolute_lower_case_name() {
        for (host, port, want) in [
            ("Mail.Example.COM", 25, "_25._tcp.mail.example.com."),
            ("mail.example.com.", 465, "_465._tcp.mail.example.com."),
            ("mail.example.com..", 25, "_25._tcp.mail.example.com."),
            (" mx1.example.com ", 587, "_587._tcp.mx1.example.com."),
        ] {
            let name = OwnerName::for_endpoint(host, port);
            assert_eq!(name.as_str(), want, "{host}:{port}");
            assert_eq!(name.to_string(), want);
            // What an endpoint builds reads back as itself.
            assert_eq!(want.parse::<OwnerName>(), Ok(name));
        }
    }

    #[test]
    fn a_name_maps_back_to_its_endpoint() {
        let name = OwnerName::for_endpoint("mail.example.test", 587);
        assert_eq!(name.endpoint(), Some(("mail.example.test", 587)));
        let other = OwnerName::parse("mail.example.test.").expect("a name");
        assert_eq!(other.endpoint(), None);
        let bad_port = OwnerName::parse("_x._tcp.mail.example.test.").expect("a name");
        assert_eq!(bad_port.endpoint(), None);
    }

    #[test]
    fn a_name_read_back_is_folded_to_one_spelling() {
        for text in [
            "_25._tcp.mx1.example.com.",
            "_25._tcp.MX1.Example.com",
            " _25._tcp.mx1.example.com.. ",
        ] {
            let name = OwnerName::parse(text).expect("an owner name");
            assert_eq!(name, "_25._tcp.mx1.example.com.", "{text:?}");
        }
        // A CNAME target is any name, not only `_port._tcp.`.
        assert_eq!(
            OwnerName::parse("_dane.example.com")
                .expect("a name")
                .as_str(),
            "_dane.example.com."
        );
    }

    #[test]
    fn what_is_not_a_name_is_a_typed_error() {
        assert!(matches!(
            OwnerName::parse(""),
            Err(OwnerNameError::Empty(_))
        ));
        assert!(matches!(
            OwnerName::parse("."),
            Err(OwnerNameError::Empty(_))
        ));
        assert!(matches!(
            OwnerName::parse("_25._tcp..example.com."),
            Err(OwnerNameError::EmptyLabel(_))
        ));
        assert!(matches!(
            OwnerName::parse(".example.com."),
            Err(OwnerNameError::EmptyLabel(_))
        ));
        assert!(matches!(
            OwnerName::parse("_25._tcp.mx 1.example.com."),
            Err(OwnerNameError::BadCharacter(_))
        ));
        assert!(matches!(
            OwnerName::parse("_25._tcp.mx1\n.example.com."),
            Err(OwnerNameError::BadCharacter(_))
        ));
        let err = OwnerName::parse("a..b").expect_err("not a name");
        assert!(err.to_string().contains("\"a..b\""), "{err}");
    }

    #[test]
    fn json_holds_the_bare_string_and_checks_it_on_the_way_in() {
        let name = OwnerName::for_endpoint("mx1.example.com", 25);
        let json = serde_json::to_string(&name).expect("serialise");
        assert_eq!(json, r#""_25._tcp.mx1.example.com.""#);
        assert_eq!(
            serde_json::from_str::<OwnerName>(&json).expect("deserialise"),
            name
        );
        let err = serde_json::from_str::<OwnerName>(r#""a..b""#).expect_err("not a name");
        assert!(err.to_string().contains("empty label"), "{err}");
    }

    #[test]
    fn names_order_and_compare_as_their_text() {
        let mut names = [
            OwnerName::for_endpoint("mx2.example.com", 25),
            OwnerName::for_endpoint("mx1.example.com", 25),
        ];
        names.sort();
        assert_eq!(names[0], "_25._tcp.mx1.example.com.");
        assert!("_25._tcp.mx2.example.com." == names[1]);
    }
}
