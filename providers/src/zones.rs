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
/// `known` gets each name without its final dot. `None` when no ancestor is a zone.
pub(crate) async fn longest_known<Z, F>(
    owner: &str,
    mut known: impl FnMut(String) -> F,
) -> Result<Option<Z>, ProviderError>
where
    F: Future<Output = Result<Option<Z>, ProviderError>>,
{
    for candidate in ancestors(owner) {
        let name = candidate.trim_end_matches('.').to_owned();
        if let Some(zone) = known(name).await? {
            return Ok(Some(zone));
        }
    }
    Ok(None)
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
