//! A TSIG key (RFC 8945) for RFC 2136 updates: read from a BIND key file or
//! `algorithm:name:secret`, checked when read (a supported HMAC, a base64 secret), and the
//! signer hickory signs with. `Debug` never shows the secret.

use std::fmt;

use base64::Engine as _;
use hickory_proto::rr::Name;
use hickory_proto::rr::TSigner;
use hickory_proto::rr::rdata::tsig::TsigAlgorithm;

use crate::secret::wipe;
use crate::{ProviderError, Secret};

/// The TSIG fudge (allowed clock difference), seconds, as BIND's tools use.
pub const TSIG_FUDGE: u16 = 300;

/// The HMAC algorithms a key may use (the ones hickory can compute).
const ALGORITHMS: &[&str] = &["hmac-sha256", "hmac-sha384", "hmac-sha512"];

fn algorithm(name: &str) -> Option<TsigAlgorithm> {
    match name {
        "hmac-sha256" => Some(TsigAlgorithm::HmacSha256),
        "hmac-sha384" => Some(TsigAlgorithm::HmacSha384),
        "hmac-sha512" => Some(TsigAlgorithm::HmacSha512),
        _ => None,
    }
}

/// A TSIG key: name, algorithm, secret. `Debug` shows the name and algorithm only.
#[derive(Clone)]
pub struct TsigKey {
    name: String,
    algorithm: String,
    secret: Secret,
}

impl fmt::Debug for TsigKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TsigKey")
            .field("name", &self.name)
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret)
            .finish()
    }
}

impl TsigKey {
    /// A key from its parts; the secret is base64.
    pub fn new(name: &str, algorithm: &str, secret: Secret) -> Result<TsigKey, ProviderError> {
        let name = name.trim().trim_end_matches('.').to_ascii_lowercase();
        if name.is_empty() {
            return Err(ProviderError::Key("the key has no name".into()));
        }
        let algorithm = algorithm.trim().trim_end_matches('.').to_ascii_lowercase();
        if !ALGORITHMS.contains(&algorithm.as_str()) {
            return Err(ProviderError::Key(format!(
                "key {name}: algorithm \"{algorithm}\" is not supported; use hmac-sha256 (tsig-keygen -a hmac-sha256)"
            )));
        }
        let key = TsigKey {
            name,
            algorithm,
            secret,
        };
        let bytes = key.secret_bytes()?;
        wipe(bytes);
        Ok(key)
    }

    /// Parse a key given as text: a BIND key file (`key "name" { algorithm hmac-sha256; secret
    /// "base64"; };`, as `tsig-keygen` writes it) or `algorithm:name:secret`.
    pub fn parse(text: &Secret) -> Result<TsigKey, ProviderError> {
        let t = text.expose().trim();
        if t.starts_with("key") || t.contains('{') {
            TsigKey::from_bind(t)
        } else {
            TsigKey::from_triple(t)
        }
    }

    fn from_triple(text: &str) -> Result<TsigKey, ProviderError> {
        let mut parts = text.splitn(3, ':');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(alg), Some(name), Some(secret)) if !secret.is_empty() => {
                TsigKey::new(name, alg, Secret::new(secret))
            }
            _ => Err(ProviderError::Key(
                "expected \"algorithm:name:secret\" (e.g. hmac-sha256:dane-roll-key:<base64>) or a BIND key file".into(),
            )),
        }
    }

    fn from_bind(text: &str) -> Result<TsigKey, ProviderError> {
        let bad = |what: &str| {
            ProviderError::Key(format!(
                "not a BIND key file ({what}): expected key \"name\" {{ algorithm hmac-sha256; secret \"…\"; }};"
            ))
        };
        // Comments out, then the first `key "name" { … };` block. A comment starts only
        // outside a quoted string: a base64 secret may hold "//" (and then was cut there).
        let body: String = text.lines().map(uncommented).collect::<Vec<_>>().join("\n");
        let rest = body
            .trim_start()
            .strip_prefix("key")
            .ok_or_else(|| bad("no key statement"))?;
        let (name, rest) = rest.split_once('{').ok_or_else(|| bad("no '{'"))?;
        let name = name.trim().trim_matches('"');
        let (inner, _) = rest.split_once('}').ok_or_else(|| bad("no '}'"))?;
        let mut algorithm = None;
        let mut secret = None;
        for statement in inner.split(';') {
            let statement = statement.trim();
            if let Some(v) = statement.strip_prefix("algorithm") {
                algorithm = Some(v.trim().trim_matches('"').to_owned());
            } else if let Some(v) = statement.strip_prefix("secret") {
                secret = Some(Secret::new(v.trim().trim_matches('"')));
            }
        }
        let algorithm = algorithm.ok_or_else(|| bad("no algorithm"))?;
        let secret = secret.ok_or_else(|| bad("no secret"))?;
        TsigKey::new(name, &algorithm, secret)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The algorithm name, e.g. `hmac-sha256`.
    pub fn algorithm(&self) -> &str {
        &self.algorithm
    }

    fn secret_bytes(&self) -> Result<Vec<u8>, ProviderError> {
        base64::engine::general_purpose::STANDARD
            .decode(self.secret.expose().as_bytes())
            .map_err(|_| {
                ProviderError::Key(format!("key {}: the secret is not valid base64", self.name))
            })
    }

    pub(super) fn signer(&self) -> Result<TSigner, ProviderError> {
        let algorithm = algorithm(&self.algorithm)
            .ok_or_else(|| ProviderError::Key(format!("algorithm {}", self.algorithm)))?;
        let name = Name::from_ascii(&self.name)
            .map_err(|_| ProviderError::Key(format!("\"{}\" is not a key name", self.name)))?;
        TSigner::new(self.secret_bytes()?, algorithm, name, TSIG_FUDGE)
            .map_err(|e| ProviderError::Key(format!("key {}: {e}", self.name)))
    }
}

/// `line` up to its `//` or `#` comment, if any, looking only outside double-quoted strings.
fn uncommented(line: &str) -> &str {
    let mut quoted = false;
    let mut prev = '\0';
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '#' if !quoted => return &line[..i],
            '/' if !quoted && prev == '/' => return &line[..i - 1],
            _ => {}
        }
        prev = c;
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LTMyYnk=";

    #[test]
    fn bind_key_file() {
        let text = format!(
            "key \"dane-roll-key\" {{\n\talgorithm hmac-sha256;\n\tsecret \"{SECRET}\";\n}};\n"
        );
        let key = TsigKey::parse(&Secret::new(text)).unwrap();
        assert_eq!(key.name(), "dane-roll-key");
        assert_eq!(key.algorithm(), "hmac-sha256");
        assert!(!format!("{key:?}").contains(SECRET));
        assert!(key.signer().is_ok());
    }

    /// The lab's flake "the secret is not valid base64" (about 1 key in 100 made by
    /// `tsig-keygen`): a secret holding "//" was cut there as if a comment began.
    #[test]
    fn a_secret_with_slashes_is_not_a_comment() {
        let secret = "Af///2RhbmUtcm9sbC10ZXN0LXNlY3JldC0zMi1ieXRlcw==";
        let text = format!(
            "# made by tsig-keygen\nkey \"k\" {{ // the lab's key\n\talgorithm hmac-sha256;\n\t\
             secret \"{secret}\"; # ok\n}};\n"
        );
        let key = TsigKey::parse(&Secret::new(text)).unwrap();
        assert_eq!(key.secret.expose(), secret);
        assert!(key.signer().is_ok());
    }

    #[test]
    fn triple() {
        let key = TsigKey::parse(&Secret::new(format!("hmac-sha512:k1:{SECRET}"))).unwrap();
        assert_eq!((key.name(), key.algorithm()), ("k1", "hmac-sha512"));
        let err = TsigKey::parse(&Secret::new(format!("hmac-md5:k1:{SECRET}"))).unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
        let err = TsigKey::parse(&Secret::new("hmac-sha256:k1:not base64!")).unwrap_err();
        assert!(err.to_string().contains("base64"), "{err}");
        assert!(!err.to_string().contains("not base64!"));
        assert!(TsigKey::parse(&Secret::new("garbage")).is_err());
    }
}
