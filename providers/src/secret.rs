//! Secret text (TSIG secrets, API tokens) held so that no rendering shows it.
//!
//! [`Secret`] prints `***` in `Debug` and `Display`; only [`Secret::expose`] gives the text, to the
//! one place that puts it on the wire. Error messages built from server replies are passed
//! through [`Secret::scrub`] so an echoing API cannot leak it either (safety invariant 6).

use std::fmt;

/// What every rendering of a secret shows.
pub const MASK: &str = "***";

/// A secret string. Cloning copies it; the memory is overwritten (best effort) on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap secret text (surrounding white space trimmed).
    pub fn new(text: impl Into<String>) -> Secret {
        let text = text.into();
        let trimmed = text.trim();
        if trimmed.len() == text.len() {
            return Secret(text);
        }
        let secret = Secret(trimmed.to_owned());
        wipe(text.into_bytes());
        secret
    }

    /// The text, for the protocol that needs it. Never print, log or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the secret is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `text` with every occurrence of the secret replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_owned();
        }
        text.replace(&self.0, MASK)
    }
}

/// `text` with every credential a server may echo masked, whatever dane-roll knows of them: the
/// value of each `Authorization` (and `Proxy-Authorization`) header, in a header line or quoted
/// in JSON, and the `user:password` of each `scheme://user:password@host`.
pub fn mask_credentials(text: &str) -> String {
    mask_userinfo(&mask_authorization(text))
}

/// Where a quoted header value ends: the end of its line, or of the JSON string quoting it.
fn value_end(c: char) -> bool {
    matches!(
        c,
        '\r' | '\n' | '"' | '\\' | '<' | '>' | ',' | ';' | '&' | '}' | ']'
    )
}

fn mask_authorization(text: &str) -> String {
    const NAME: &str = "authorization";
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(NAME) {
        let name_end = at + found + NAME.len();
        out.push_str(&text[at..name_end]);
        at = name_end;
        // `Authorization: v`, `authorization=v`, `"authorization":"v"`, `'Authorization': 'v'`.
        let rest = &text[at..];
        let sep = rest
            .char_indices()
            .take_while(|(_, c)| matches!(c, '"' | '\'' | ' ' | ':' | '='))
            .last()
            .map_or(0, |(i, c)| i + c.len_utf8());
        if !rest[..sep].contains([':', '=']) {
            continue;
        }
        out.push_str(&rest[..sep]);
        at += sep;
        let value_len = text[at..].find(value_end).unwrap_or(text.len() - at);
        if value_len > 0 {
            out.push_str(MASK);
            at += value_len;
        }
    }
    out.push_str(&text[at..]);
    out
}

fn mask_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    while let Some(found) = text[at..].find("://") {
        let start = at + found + 3;
        out.push_str(&text[at..start]);
        at = start;
        let authority_len = text[at..]
            .find(|c: char| matches!(c, '/' | '?' | '#' | '"' | '\'' | '\\') || c.is_whitespace())
            .unwrap_or(text.len() - at);
        if let Some(userinfo) = text[at..at + authority_len].rfind('@') {
            out.push_str(MASK);
            at += userinfo;
        }
    }
    out.push_str(&text[at..]);
    out
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        wipe(std::mem::take(&mut self.0).into_bytes());
    }
}

/// Overwrite a buffer that held secret bytes before it is freed (best effort, no `unsafe`).
pub(crate) fn wipe(mut bytes: Vec<u8>) {
    bytes.iter_mut().for_each(|b| *b = 0);
    std::hint::black_box(&bytes);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_rendered() {
        let s = Secret::new(" s3cr3t-value\n");
        assert_eq!(format!("{s} {s:?}"), "*** ***");
        assert_eq!(s.expose(), "s3cr3t-value");
        assert_eq!(s.scrub("got s3cr3t-value back"), "got *** back");
    }

    #[test]
    fn credentials_in_echoed_text_are_masked() {
        assert_eq!(
            mask_credentials(
                "you sent: POST /x HTTP/1.1\r\nAuthorization: Basic YWxpY2U6cHc=\r\nHost: h"
            ),
            "you sent: POST /x HTTP/1.1\r\nAuthorization: ***\r\nHost: h"
        );
        assert_eq!(
            mask_credentials(r#"{"headers":{"authorization":"Bearer abc.def","x":1}}"#),
            r#"{"headers":{"authorization":"***","x":1}}"#
        );
        assert_eq!(
            mask_credentials("proxy-authorization=Basic Zm9v; and authorization is fine"),
            "proxy-authorization=***; and authorization is fine"
        );
        assert_eq!(
            mask_credentials("see https://alice:pw@hooks.example.com:8443/T0 and http://h/x@y"),
            "see https://***@hooks.example.com:8443/T0 and http://h/x@y"
        );
    }
}
