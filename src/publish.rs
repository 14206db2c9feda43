//! From the configuration to a provider: which `dane_roll_providers::Provider` a service's
//! records go through, with its secret read (from the file or variable the configuration names)
//! only now, and handed to the provider wrapped so that no rendering shows it.
//!
//! The zone is the service's `zone`, else the provider's (rfc2136), else the provider finds it.

use dane_roll_providers::rfc2136::{Rfc2136, TsigKey};
use dane_roll_providers::{
    Provider, ProviderError, Secret as ProviderSecret, Settings, cloudflare, desec, exec, gandi,
    google, hetzner, inwx, manual, ovh, powerdns, route53, transip,
};

use crate::config::{Config, ProviderKind, Secret, SecretError, Service};

/// Why no provider could be set up for a service.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    /// The service names a provider the configuration does not have (cannot happen after load).
    #[error("service {service}: no provider \"{provider}\" in the configuration")]
    NoProvider {
        /// The service.
        service: String,
        /// The provider name.
        provider: String,
    },
    /// A secret could not be read.
    #[error("provider {provider}: {source}")]
    Secret {
        /// The provider name.
        provider: String,
        /// Why.
        source: SecretError,
    },
    /// The provider refused its settings (a malformed TSIG key, …).
    #[error("provider {provider}: {source}")]
    Provider {
        /// The provider name.
        provider: String,
        /// Why.
        source: ProviderError,
    },
}

/// The provider for `service`, with `settings`.
pub fn provider_for(
    config: &Config,
    service: &Service,
    settings: Settings,
) -> Result<Provider, SetupError> {
    let configured = config
        .provider_for(service)
        .ok_or_else(|| SetupError::NoProvider {
            service: service.name.clone(),
            provider: service.provider.clone(),
        })?;
    let name = configured.name.as_str();
    let read = |secret: &Secret| -> Result<ProviderSecret, SetupError> {
        secret
            .read()
            .map(|value| ProviderSecret::new(value.expose()))
            .map_err(|source| SetupError::Secret {
                provider: name.to_owned(),
                source,
            })
    };
    let wrap = |source: ProviderError| SetupError::Provider {
        provider: name.to_owned(),
        source,
    };
    let zone = service.zone.as_deref();
    // Each constructor's refusal is the provider's: `wrap` names it, once, below.
    let built = match &configured.kind {
        ProviderKind::Rfc2136 {
            server,
            tsig,
            zone: provider_zone,
        } => {
            let key = match tsig {
                Some(tsig) => Some(TsigKey::parse(&read(tsig.secret())?).map_err(wrap)?),
                None => None,
            };
            Ok(Provider::Rfc2136(Rfc2136::new(
                &server.host,
                server.port,
                zone.or(provider_zone.as_deref()),
                key,
                settings,
            )))
        }
        ProviderKind::Cloudflare { token, zone_id } => {
            cloudflare::Cloudflare::new(read(token)?, zone_id.as_deref(), None, settings)
                .map(Provider::Cloudflare)
        }
        ProviderKind::PowerDns {
            url,
            api_key,
            server_id,
        } => powerdns::PowerDns::new(url, read(api_key)?, server_id, zone, settings)
            .map(Provider::PowerDns),
        ProviderKind::Desec { token } => {
            desec::Desec::new(read(token)?, zone, None, settings).map(Provider::Desec)
        }
        ProviderKind::Hetzner { token } => {
            hetzner::Hetzner::new(read(token)?, zone, None, settings).map(Provider::Hetzner)
        }
        ProviderKind::Gandi { token } => {
            gandi::Gandi::new(read(token)?, zone, None, settings).map(Provider::Gandi)
        }
        ProviderKind::Route53 {
            access_key_id,
            secret_key,
            hosted_zone_id,
        } => route53::Route53::new(
            access_key_id,
            read(secret_key)?,
            hosted_zone_id.as_deref(),
            None,
            settings,
        )
        .map(Provider::Route53),
        ProviderKind::Ovh {
            endpoint,
            application_key,
            application_secret,
            consumer_key,
        } => ovh::Ovh::new(
            endpoint,
            ovh::Credentials {
                application_key: application_key.clone(),
                application_secret: read(application_secret)?,
                consumer_key: read(consumer_key)?,
            },
            zone,
            settings,
        )
        .map(Provider::Ovh),
        ProviderKind::Inwx {
            user,
            password,
            totp_secret,
            url,
        } => inwx::Inwx::new(
            inwx::Credentials {
                user: user.clone(),
                password: read(password)?,
                totp: totp_secret.as_ref().map(read).transpose()?,
            },
            zone,
            url.as_deref(),
            settings,
        )
        .map(Provider::Inwx),
        ProviderKind::Transip {
            login,
            private_key,
            global_key,
        } => transip::Transip::new(
            transip::Credentials {
                login: login.clone(),
                private_key: read(private_key)?,
                global_key: *global_key,
            },
            zone,
            None,
            settings,
        )
        .map(Provider::Transip),
        ProviderKind::Google {
            credentials,
            project,
            managed_zone,
        } => google::Google::new(
            &read(credentials)?,
            project.as_deref(),
            managed_zone.as_deref(),
            None,
            settings,
        )
        .map(Provider::Google),
        ProviderKind::Exec { command } => {
            exec::Exec::new(command.clone(), settings).map(Provider::Exec)
        }
        ProviderKind::Manual => Ok(Provider::Manual(manual::Manual)),
    };
    built.map_err(wrap)
}
