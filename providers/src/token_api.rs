//! An HTTP API reached with one token in the `Authorization` header (deSEC, Gandi LiveDNS): the
//! client, the API's base URL, the domains (the configured one, else those found by name) and
//! the settings, set up the same way for each.

use crate::http::{Http, base_url};
use crate::zones::{Zones, zone_name};
use crate::{ProviderError, Secret, Settings};

/// What a token-authenticated provider holds.
#[derive(Debug)]
pub(crate) struct TokenApi {
    /// The client, sending `Authorization: {scheme}{token}` with each request.
    pub(crate) http: Http,
    /// The API's base URL, without a final `/`.
    pub(crate) base: String,
    /// The configured domain (no final dot, lower case), or those found, by owner name.
    pub(crate) zones: Zones<String>,
    /// The settings.
    pub(crate) settings: Settings,
}

impl TokenApi {
    /// `provider`'s API at `base` (`default_base` unless testing) with `token` sent after
    /// `scheme` (`"Bearer "`, `"Token "`), for `zone` (found by name when `None`).
    pub(crate) fn new(
        provider: &'static str,
        scheme: &str,
        token: Secret,
        zone: Option<&str>,
        base: Option<&str>,
        default_base: &str,
        settings: Settings,
    ) -> Result<TokenApi, ProviderError> {
        Ok(TokenApi {
            http: Http::new(provider, "authorization", scheme, token, &settings)?,
            base: base_url(base, default_base),
            zones: Zones::new(zone_name(zone)),
            settings,
        })
    }
}
