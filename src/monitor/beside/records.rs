//! The two TXT records beside DANE, parsed by hand (each is a few `key=value` fields; no
//! maintained crate parses them without pulling a whole mail stack): SMTP TLS Reporting's
//! `_smtp._tls.DOMAIN` (RFC 8460 §3: `v=TLSRPTv1; rua=URI[,URI]`) and MTA-STS's
//! `_mta-sts.DOMAIN` (RFC 8461 §3.1: `v=STSv1; id=ID`).
//!
//! Both RFCs say the same about several records: when more than one TXT record at the name
//! starts with the version, senders treat the domain as having none.

/// A TLSRPT record, valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsrptRecord {
    /// The reporting URIs (`mailto:` or `https:`), as published.
    pub rua: Vec<String>,
}

/// An MTA-STS TXT record, valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StsRecord {
    /// The policy id (1 to 32 letters and digits).
    pub id: String,
}

/// The `key=value` fields of a record, `;`-separated, whitespace around each trimmed; an empty
/// last field (a trailing `;`) is allowed.
fn fields(text: &str) -> Result<Vec<(&str, &str)>, String> {
    let mut out = Vec::new();
    for part in text.split(';') {
        let part = part.trim_matches([' ', '\t']);
        if part.is_empty() {
            continue;
        }
        let Some((key, value)) = part.split_once('=') else {
            return Err(format!("\"{part}\" is not a key=value field"));
        };
        out.push((key.trim(), value.trim()));
    }
    Ok(out)
}

/// The records among `texts` (each TXT record's strings joined) that start with `version`.
fn versioned<'a>(texts: &'a [String], version: &str) -> Vec<&'a str> {
    texts
        .iter()
        .map(String::as_str)
        .filter(|t| {
            let t = t.trim_start();
            t.strip_prefix(version).is_some_and(|rest| {
                rest.trim_start().is_empty() || rest.trim_start().starts_with(';')
            })
        })
        .collect()
}

/// The value of the field `key` in the one record among `texts` that starts with `version`:
/// `Ok(None)` when no record starts with it; an error when several do (senders then use none;
/// `name` names the record in the message), when a field is not `key=value`, or `missing` when
/// the record has no `key` field.
fn required_field<'a>(
    texts: &'a [String],
    version: &str,
    name: &str,
    key: &str,
    missing: &str,
) -> Result<Option<&'a str>, String> {
    let found = versioned(texts, version);
    let text = match found.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => {
            return Err(format!(
                "{} {name} records: senders use none when there is more than one",
                found.len()
            ));
        }
    };
    let value = fields(text)?
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
        .ok_or(missing)?;
    Ok(Some(value))
}

/// The TLSRPT record among the TXT records at `_smtp._tls.DOMAIN`: `Ok(None)` when there is
/// none, an error (in words) when it cannot be used.
pub fn tlsrpt(texts: &[String]) -> Result<Option<TlsrptRecord>, String> {
    let Some(rua) = required_field(
        texts,
        "v=TLSRPTv1",
        "TLSRPT",
        "rua",
        "no rua= field: senders have nowhere to send reports",
    )?
    else {
        return Ok(None);
    };
    let mut uris = Vec::new();
    for uri in rua.split(',').map(str::trim) {
        usable_uri(uri)?;
        uris.push(uri.to_string());
    }
    Ok(Some(TlsrptRecord { rua: uris }))
}

/// Whether a `rua` URI is one senders can use: `mailto:local@domain` or an `https:` URL with a
/// host (RFC 8460 §3: those two schemes only).
fn usable_uri(uri: &str) -> Result<(), String> {
    if let Some(address) = uri.strip_prefix("mailto:") {
        let address = address.split('!').next().unwrap_or(address);
        let ok = address.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && domain
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        });
        if ok {
            return Ok(());
        }
        return Err(format!(
            "rua \"{uri}\" is not a mailto: address (mailto:local@domain)"
        ));
    }
    if uri.starts_with("https:") {
        return match reqwest::Url::parse(uri) {
            Ok(url) if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
            Ok(_) => Err(format!("rua \"{uri}\" has no host")),
            Err(e) => Err(format!("rua \"{uri}\" is not a URL: {e}")),
        };
    }
    Err(format!(
        "rua \"{uri}\" is neither mailto: nor https: (the only schemes senders report to)"
    ))
}

/// The MTA-STS record among the TXT records at `_mta-sts.DOMAIN`: `Ok(None)` when there is
/// none, an error (in words) when senders cannot use it.
pub fn sts(texts: &[String]) -> Result<Option<StsRecord>, String> {
    let Some(id) = required_field(texts, "v=STSv1", "MTA-STS", "id", "no id= field")? else {
        return Ok(None);
    };
    if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(format!("id \"{id}\" is not 1 to 32 letters and digits"));
    }
    Ok(Some(StsRecord { id: id.to_string() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(texts: &[&str]) -> Vec<String> {
        texts.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn tlsrpt_records() {
        assert_eq!(tlsrpt(&t(&["v=spf1 -all"])), Ok(None));
        let ok = tlsrpt(&t(&[
            "v=TLSRPTv1; rua=mailto:tls@example.com,https://r.example.com/x",
        ]));
        assert_eq!(ok.unwrap().unwrap().rua.len(), 2);
        assert!(
            tlsrpt(&t(&["v=TLSRPTv1;rua=mailto:tls@example.com;"]))
                .unwrap()
                .is_some()
        );
        assert!(tlsrpt(&t(&["v=TLSRPTv1;"])).unwrap_err().contains("rua"));
        assert!(
            tlsrpt(&t(&["v=TLSRPTv1; rua=http://x.example/"]))
                .unwrap_err()
                .contains("neither")
        );
        assert!(
            tlsrpt(&t(&["v=TLSRPTv1; rua=mailto:nobody"]))
                .unwrap_err()
                .contains("mailto")
        );
        assert!(tlsrpt(&t(&["v=TLSRPTv1; rua=https://"])).is_err());
        let two = t(&[
            "v=TLSRPTv1; rua=mailto:a@b.example",
            "v=TLSRPTv1; rua=mailto:c@d.example",
        ]);
        assert!(tlsrpt(&two).unwrap_err().contains("more than one"));
        // A longer version is another record, not ours.
        assert_eq!(
            tlsrpt(&t(&["v=TLSRPTv10; rua=mailto:a@b.example"])),
            Ok(None)
        );
    }

    #[test]
    fn sts_records() {
        assert_eq!(sts(&t(&[])), Ok(None));
        assert_eq!(
            sts(&t(&["v=STSv1; id=20260101T000000"]))
                .unwrap()
                .unwrap()
                .id,
            "20260101T000000"
        );
        assert!(sts(&t(&["v=STSv1;"])).unwrap_err().contains("id"));
        assert!(sts(&t(&["v=STSv1; id=a-b"])).is_err());
        assert!(
            sts(&t(&["v=STSv1; id=1", "v=STSv1; id=2"]))
                .unwrap_err()
                .contains("more than one")
        );
        assert!(sts(&t(&["v=STSv1; junk"])).is_err());
    }
}
