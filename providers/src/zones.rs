//! Which zone holds an owner name, for the HTTP providers: the configured zone, else the one the
//! provider's API names, asked once per owner name and kept for the provider's lifetime (not on
//! every call and read-back); and the owner name relative to that zone, as the APIs name it.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use crate::{ProviderError, ancestors, relative_to};

/// The configured zone (or zone id), and the zones found, by owner name.
#[derive(Debug)]
pub(crate) struct Zones<Z> {
    configured: Option<Z>,
    found: Mutex<HashMap<String, Z>>,
}

impl<Z: Clone> Zones<Z> {
    /// Zones that are always `configured` when it is given, else found by name.
    pub(crate) fn new(configured: Option<Z>) -> Zones<Z> {
        Zones {
            configured,
            found: Mutex::new(HashMap::new()),
        }
    }

    /// The zone holding `owner`: the configured one, the one found before, or what `find`
    /// finds (kept when found; an error is not kept, so the next call asks again).
    pub(crate) async fn get<F>(
        &self,
        owner: &str,
        find: impl FnOnce() -> F,
    ) -> Result<Z, ProviderError>
    where
        F: Future<Output = Result<Z, ProviderError>>,
    {
        if let Some(zone) = &self.configured {
            return Ok(zone.clone());
        }
        if let Some(zone) = self.found.lock().ok().and_then(|z| z.get(owner).cloned()) {
            return Ok(zone);
        }
        let zone = find().await?;
        if let Ok(mut found) = self.found.lock() {
            found.insert(owner.to_owned(), zone.clone());
        }
        Ok(zone)
    }
}

/// A configured zone name as the APIs take it: no final dot, lower case.
pub(crate) fn zone_name(zone: Option<&str>) -> Option<String> {
    zone.map(|z| z.trim_end_matches('.').to_ascii_lowercase())
}

/// The first of `owner` and its ancestors, longest first, for which `known` gives a zone;
/// `known` gets each name without its final dot. When none is a zone: [`ProviderError::NoZone`]
/// from `server` (e.g. `ovh API`) for the owner name, with `detail` (what to check or set).
pub(crate) async fn longest_known<Z, F>(
    owner: &str,
    server: &str,
    detail: &str,
    mut known: impl FnMut(String) -> F,
) -> Result<Z, ProviderError>
where
    F: Future<Output = Result<Option<Z>, ProviderError>>,
{
    for candidate in ancestors(owner) {
        let name = candidate.trim_end_matches('.').to_owned();
        if let Some(zone) = known(name).await? {
            return Ok(zone);
        }
    }
    Err(ProviderError::NoZone {
        server: server.to_owned(),
        zone: owner.to_owned(),
        detail: detail.to_owned(),
    })
}

/// `owner` relative to `zone` (empty for the apex); an error naming the `zone`, called a
/// `kind` (`zone`, `domain`) as the provider calls it, when the name is not in it.
pub(crate) fn in_zone(owner: &str, zone: &str, kind: &str) -> Result<String, ProviderError> {
    relative_to(owner, zone)
        .ok_or_else(|| ProviderError::InvalidRecord(format!("{owner} is not in {kind} {zone}")))
}

/// A relative name with the apex written `@`, as several APIs name it.
pub(crate) fn apex_as_at(sub: String) -> String {
    if sub.is_empty() { "@".to_owned() } else { sub }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    #[tokio::test]
    async fn configured_first_then_found_once_per_owner() {
        let asked = Cell::new(0);
        let find = |zone: &'static str| {
            asked.set(asked.get() + 1);
            async move { Ok::<_, ProviderError>(zone.to_owned()) }
        };
        let configured = Zones::new(zone_name(Some("Example.COM.")));
        let zone = configured.get("a.example.com.", || find("x")).await;
        assert_eq!(zone.unwrap(), "example.com");
        assert_eq!(asked.get(), 0, "the configured zone is not looked up");

        let zones = Zones::new(None);
        assert_eq!(
            zones
                .get("a.example.com.", || find("example.com"))
                .await
                .unwrap(),
            "example.com"
        );
        assert_eq!(
            zones.get("a.example.com.", || find("other")).await.unwrap(),
            "example.com"
        );
        assert_eq!(asked.get(), 1, "one lookup per owner name");
        let failed = zones
            .get("b.example.org.", || async {
                Err(ProviderError::Key("down".into()))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(
            zones
                .get("b.example.org.", || find("example.org"))
                .await
                .unwrap(),
            "example.org"
        );
        assert_eq!(asked.get(), 2, "a failed lookup is asked again");
    }

    #[tokio::test]
    async fn longest_ancestor_first_and_no_zone_names_the_owner() {
        let seen = std::sync::Mutex::new(Vec::new());
        let zone = longest_known("_25._tcp.mx.example.com.", "test API", "set it", |name| {
            seen.lock().unwrap().push(name.clone());
            async move { Ok((name == "example.com").then_some(name)) }
        })
        .await;
        assert_eq!(zone.unwrap(), "example.com");
        assert_eq!(
            *seen.lock().unwrap(),
            [
                "_25._tcp.mx.example.com",
                "_tcp.mx.example.com",
                "mx.example.com",
                "example.com"
            ]
        );
        let none = longest_known("a.b.", "test API", "set it", |_| async {
            Ok(None::<String>)
        })
        .await
        .unwrap_err();
        assert!(
            matches!(&none, ProviderError::NoZone { server, zone, detail }
            if server == "test API" && zone == "a.b." && detail == "set it")
        );
    }

    #[test]
    fn relative_names() {
        assert_eq!(
            in_zone("_25._tcp.mx.example.com.", "example.com", "zone").unwrap(),
            "_25._tcp.mx"
        );
        assert_eq!(
            apex_as_at(in_zone("example.com.", "example.com", "domain").unwrap()),
            "@"
        );
        let err = in_zone("mx.example.org.", "example.com", "domain").unwrap_err();
        assert!(
            err.to_string()
                .contains("mx.example.org. is not in domain example.com"),
            "{err}"
        );
    }
}
