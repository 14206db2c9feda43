//! `[provider.NAME]`: each DNS provider's kind, server, credentials and their secrets.

use std::collections::BTreeMap;

use super::Builder;
use crate::config::endpoint::dns_name;
use crate::config::provider::{
    DEFAULT_POWERDNS_SERVER_ID, Provider, ProviderKind, Tsig, parse_server,
};
use crate::config::raw::RawProvider;
use crate::config::resolver::DNS_PORT;
use crate::config::source::kpath;

impl Builder<'_, '_> {
    pub(super) fn providers(
        &mut self,
        raw: BTreeMap<String, RawProvider>,
    ) -> BTreeMap<String, Provider> {
        let mut providers = BTreeMap::new();
        for (name, raw) in raw {
            let table = kpath!["provider", &name];
            self.name(table.clone(), "a provider", &name);
            let at = |key: &str| kpath!["provider", &name, key];
            let kind = match raw {
                RawProvider::Rfc2136 {
                    server,
                    tsig_key_file,
                    tsig_env,
                    zone,
                } => {
                    let server = parse_server(&server, DNS_PORT)
                        .map_err(|message| self.error(at("server"), message))
                        .ok();
                    let tsig = match (tsig_key_file, tsig_env) {
                        (None, None) => {
                            self.warn(
                                table.clone(),
                                "has no TSIG key (`tsig-key-file` or `tsig-env`): updates go unsigned, \
                                 which works only where the server allows updates by address",
                            );
                            None
                        }
                        (file, env) => {
                            let is_file = file.is_some();
                            self.secret(&table, ("tsig-key-file", "tsig-env"), file, env, true)
                                .map(|s| {
                                    if is_file {
                                        Tsig::KeyFile(s)
                                    } else {
                                        Tsig::Env(s)
                                    }
                                })
                        }
                    };
                    let zone = zone.and_then(|z| {
                        dns_name(&z, false)
                            .map_err(|message| self.error(at("zone"), message))
                            .ok()
                    });
                    server.map(|server| ProviderKind::Rfc2136 { server, tsig, zone })
                }
                RawProvider::Cloudflare {
                    token_file,
                    token_env,
                    zone_id,
                } => {
                    let token = self.token(&table, token_file, token_env);
                    if zone_id.as_deref().is_some_and(|z| z.trim().is_empty()) {
                        self.error(
                            at("zone-id"),
                            "is empty; remove it to look the zone up by name",
                        );
                    }
                    token.map(|token| ProviderKind::Cloudflare { token, zone_id })
                }
                RawProvider::Powerdns {
                    url,
                    api_key_file,
                    api_key_env,
                    server_id,
                } => {
                    let url = self.url(at("url"), url);
                    let api_key = self.secret(
                        &table,
                        ("api-key-file", "api-key-env"),
                        api_key_file,
                        api_key_env,
                        true,
                    );
                    let server_id =
                        server_id.unwrap_or_else(|| DEFAULT_POWERDNS_SERVER_ID.to_owned());
                    match (url, api_key) {
                        (Some(url), Some(api_key)) => Some(ProviderKind::PowerDns {
                            url,
                            api_key,
                            server_id,
                        }),
                        _ => None,
                    }
                }
                RawProvider::Desec {
                    token_file,
                    token_env,
                } => self
                    .token(&table, token_file, token_env)
                    .map(|token| ProviderKind::Desec { token }),
                RawProvider::Hetzner {
                    token_file,
                    token_env,
                } => self
                    .token(&table, token_file, token_env)
                    .map(|token| ProviderKind::Hetzner { token }),
                RawProvider::Gandi {
                    token_file,
                    token_env,
                } => self
                    .token(&table, token_file, token_env)
                    .map(|token| ProviderKind::Gandi { token }),
                RawProvider::Route53 {
                    access_key_id,
                    secret_key_file,
                    secret_key_env,
                    hosted_zone_id,
                } => {
                    let secret_key = self.secret(
                        &table,
                        ("secret-key-file", "secret-key-env"),
                        secret_key_file,
                        secret_key_env,
                        true,
                    );
                    let key_ok = !access_key_id.trim().is_empty()
                        && access_key_id.bytes().all(|b| b.is_ascii_alphanumeric());
                    if !key_ok {
                        self.error(
                            at("access-key-id"),
                            "is not an AWS access key id (letters and digits, e.g. AKIA…); the \
                             secret access key goes in `secret-key-file` or `secret-key-env`",
                        );
                    }
                    if hosted_zone_id
                        .as_deref()
                        .is_some_and(|z| z.trim().is_empty())
                    {
                        self.error(
                            at("hosted-zone-id"),
                            "is empty; remove it to look the zone up by name",
                        );
                    }
                    secret_key
                        .filter(|_| key_ok)
                        .map(|secret_key| ProviderKind::Route53 {
                            access_key_id,
                            secret_key,
                            hosted_zone_id,
                        })
                }
                RawProvider::Ovh {
                    endpoint,
                    application_key,
                    application_secret_file,
                    application_secret_env,
                    consumer_key_file,
                    consumer_key_env,
                } => {
                    let secret = self.secret(
                        &table,
                        ("application-secret-file", "application-secret-env"),
                        application_secret_file,
                        application_secret_env,
                        true,
                    );
                    let consumer = self.secret(
                        &table,
                        ("consumer-key-file", "consumer-key-env"),
                        consumer_key_file,
                        consumer_key_env,
                        true,
                    );
                    let endpoint = endpoint.unwrap_or_else(|| "ovh-eu".to_owned());
                    let named = dane_roll_providers::ovh::ENDPOINTS
                        .iter()
                        .any(|(name, _)| *name == endpoint);
                    let endpoint = if named {
                        Some(endpoint)
                    } else if endpoint.starts_with("https://") {
                        self.url(at("endpoint"), endpoint)
                    } else {
                        self.error(
                            at("endpoint"),
                            "is not ovh-eu, ovh-ca, ovh-us or an https:// URL of the API",
                        );
                        None
                    };
                    if application_key.trim().is_empty() {
                        self.error(at("application-key"), "is empty");
                    }
                    match (endpoint, secret, consumer) {
                        (Some(endpoint), Some(application_secret), Some(consumer_key))
                            if !application_key.trim().is_empty() =>
                        {
                            Some(ProviderKind::Ovh {
                                endpoint,
                                application_key,
                                application_secret,
                                consumer_key,
                            })
                        }
                        _ => None,
                    }
                }
                RawProvider::Inwx {
                    user,
                    password_file,
                    password_env,
                    totp_secret_file,
                    totp_secret_env,
                    url,
                } => {
                    let password = self.secret(
                        &table,
                        ("password-file", "password-env"),
                        password_file,
                        password_env,
                        true,
                    );
                    let has_totp = totp_secret_file.is_some() || totp_secret_env.is_some();
                    let totp_secret = self.secret(
                        &table,
                        ("totp-secret-file", "totp-secret-env"),
                        totp_secret_file,
                        totp_secret_env,
                        false,
                    );
                    let url = match url {
                        Some(url) => self.url(at("url"), url).map(Some),
                        None => Some(None),
                    };
                    if user.trim().is_empty() {
                        self.error(at("user"), "is empty");
                    }
                    match (password, url) {
                        (Some(password), Some(url))
                            if !user.trim().is_empty() && (totp_secret.is_some() || !has_totp) =>
                        {
                            Some(ProviderKind::Inwx {
                                user,
                                password,
                                totp_secret,
                                url,
                            })
                        }
                        _ => None,
                    }
                }
                RawProvider::Transip {
                    login,
                    private_key_file,
                    private_key_env,
                    global_key,
                } => {
                    let private_key = self.secret(
                        &table,
                        ("private-key-file", "private-key-env"),
                        private_key_file,
                        private_key_env,
                        true,
                    );
                    if login.trim().is_empty() {
                        self.error(at("login"), "is empty");
                    }
                    private_key
                        .filter(|_| !login.trim().is_empty())
                        .map(|private_key| ProviderKind::Transip {
                            login,
                            private_key,
                            global_key: global_key.unwrap_or(false),
                        })
                }
                RawProvider::Google {
                    credentials_file,
                    credentials_env,
                    project,
                    managed_zone,
                } => self
                    .secret(
                        &table,
                        ("credentials-file", "credentials-env"),
                        credentials_file,
                        credentials_env,
                        true,
                    )
                    .map(|credentials| ProviderKind::Google {
                        credentials,
                        project,
                        managed_zone,
                    }),
                RawProvider::Exec { command } => self
                    .command(at("command"), command)
                    .map(|command| ProviderKind::Exec { command }),
                RawProvider::Manual {} => Some(ProviderKind::Manual),
            };
            if let Some(kind) = kind {
                providers.insert(name.clone(), Provider { name, kind });
            }
        }
        providers
    }
}
