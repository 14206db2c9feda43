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
}
