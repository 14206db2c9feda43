//! DNS providers as validated from `[provider.NAME]`: how records reach the zone.

use std::fmt;

use super::Secret;

/// The PowerDNS server id used when none is given.
pub const DEFAULT_POWERDNS_SERVER_ID: &str = "localhost";

/// The kinds of provider this version knows, as written after `kind =`.
pub const PROVIDER_KINDS: &[&str] = &[
    "rfc2136",
    "cloudflare",
    "powerdns",
    "desec",
    "hetzner",
    "gandi",
    "route53",
    "ovh",
    "inwx",
    "transip",
    "google",
    "exec",
    "manual",
];

/// One configured provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provider {
    /// The NAME of `[provider.NAME]`.
    pub name: String,
    /// What kind it is, with its settings.
    pub kind: ProviderKind,
}

/// A provider's kind and its kind-specific settings.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderKind {
    /// RFC 2136 dynamic update, signed with TSIG when a key is given.
    Rfc2136 {
        /// The primary server to send updates to.
        server: ServerAddr,
        /// The TSIG key: a BIND key file (`key "name" { algorithm …; secret "…"; };`) or an
        /// environment variable holding `algorithm:name:secret`.
        tsig: Option<Tsig>,
        /// The zone to update, when it should not be discovered.
        zone: Option<String>,
    },
    /// The Cloudflare API.
    Cloudflare {
        /// An API token allowed to edit the zone's DNS.
        token: Secret,
        /// The zone id, when it should not be looked up by name.
        zone_id: Option<String>,
    },
    /// The PowerDNS authoritative server's HTTP API.
    PowerDns {
        /// The API base URL, e.g. `http://127.0.0.1:8081`.
        url: String,
        /// The `X-API-Key`.
        api_key: Secret,
        /// The server id in API paths.
        server_id: String,
    },
    /// The deSEC API.
    Desec {
        /// The API token.
        token: Secret,
    },
    /// The Hetzner Cloud DNS API (zones of a Hetzner Cloud project).
    Hetzner {
        /// A Read & Write API token of the project.
        token: Secret,
    },
    /// Gandi LiveDNS (a personal access token).
    Gandi {
        /// The API token.
        token: Secret,
    },
    /// Amazon Route 53, requests signed with an IAM access key (SigV4).
    Route53 {
        /// The access key id (`AKIA…`): not secret, shown.
        access_key_id: String,
        /// The secret access key.
        secret_key: Secret,
        /// The hosted zone id, when it should not be looked up by name.
        hosted_zone_id: Option<String>,
    },
    /// OVHcloud's API, each request signed with the application secret and consumer key.
    Ovh {
        /// `ovh-eu`, `ovh-ca`, `ovh-us`, or an `https://` URL of the API.
        endpoint: String,
        /// The application key (sent as it is: not secret).
        application_key: String,
        /// The application secret.
        application_secret: Secret,
        /// The consumer key.
        consumer_key: Secret,
    },
    /// INWX's JSON-RPC API, logged in as a user (with a TOTP code when the account has 2FA).
    Inwx {
        /// The account's user name.
        user: String,
        /// Its password.
        password: Secret,
        /// The base32 TOTP secret, for accounts with two-factor authentication.
        totp_secret: Option<Secret>,
        /// The API URL (INWX's test system, …), when not the default.
        url: Option<String>,
    },
    /// TransIP's REST API, with a token from a request signed by the account's key pair.
    Transip {
        /// The account's login name.
        login: String,
        /// The key pair's private key (PEM).
        private_key: Secret,
        /// Ask for tokens usable from any address (the key must allow it).
        global_key: bool,
    },
    /// Google Cloud DNS, with a service account's JSON key.
    Google {
        /// The service account key (the JSON file's text).
        credentials: Secret,
        /// The project, when not the key's `project_id`.
        project: Option<String>,
        /// The managed zone's name, when it should not be found by DNS name.
        managed_zone: Option<String>,
    },
    /// A command run with the change to make (documented in docs/CONFIG.md).
    Exec {
        /// The program and its arguments.
        command: Vec<String>,
    },
    /// No automation: dane-roll prints the records to add or remove and waits for them to appear.
    Manual,
}

impl ProviderKind {
    /// The `kind` as written in the configuration.
    pub fn name(&self) -> &'static str {
        match self {
            ProviderKind::Rfc2136 { .. } => "rfc2136",
            ProviderKind::Cloudflare { .. } => "cloudflare",
            ProviderKind::PowerDns { .. } => "powerdns",
            ProviderKind::Desec { .. } => "desec",
            ProviderKind::Hetzner { .. } => "hetzner",
            ProviderKind::Gandi { .. } => "gandi",
            ProviderKind::Route53 { .. } => "route53",
            ProviderKind::Ovh { .. } => "ovh",
            ProviderKind::Inwx { .. } => "inwx",
            ProviderKind::Transip { .. } => "transip",
            ProviderKind::Google { .. } => "google",
            ProviderKind::Exec { .. } => "exec",
            ProviderKind::Manual => "manual",
        }
    }

    /// The secrets this provider reads, each with the configuration key that names it.
    pub fn secrets(&self) -> Vec<(&'static str, &Secret)> {
        match self {
            ProviderKind::Rfc2136 {
                tsig: Some(Tsig::KeyFile(secret)),
                ..
            } => vec![("tsig-key-file", secret)],
            ProviderKind::Rfc2136 {
                tsig: Some(Tsig::Env(secret)),
                ..
            } => vec![("tsig-env", secret)],
            ProviderKind::Cloudflare { token, .. }
            | ProviderKind::Desec { token }
            | ProviderKind::Hetzner { token }
            | ProviderKind::Gandi { token } => {
                vec![(secret_key("token", token), token)]
            }
            ProviderKind::Route53 {
                secret_key: key, ..
            } => vec![(secret_key("secret-key", key), key)],
            ProviderKind::Ovh {
                application_secret,
                consumer_key,
                ..
            } => vec![
                (
                    secret_key("application-secret", application_secret),
                    application_secret,
                ),
                (secret_key("consumer-key", consumer_key), consumer_key),
            ],
            ProviderKind::Inwx {
                password,
                totp_secret,
                ..
            } => {
                let mut out = vec![(secret_key("password", password), password)];
                if let Some(totp) = totp_secret {
                    out.push((secret_key("totp-secret", totp), totp));
                }
                out
            }
            ProviderKind::Transip { private_key, .. } => {
                vec![(secret_key("private-key", private_key), private_key)]
            }
            ProviderKind::Google { credentials, .. } => {
                vec![(secret_key("credentials", credentials), credentials)]
            }
            ProviderKind::PowerDns { api_key, .. } => {
                vec![(secret_key("api-key", api_key), api_key)]
            }
            _ => Vec::new(),
        }
    }
}

/// The configuration key a secret came from: `token-file` or `token-env` for the stem `token`.
pub(super) fn secret_key(stem: &str, secret: &Secret) -> &'static str {
    let file = matches!(secret.source(), super::SecretSource::File(_));
    match (stem, file) {
        ("token", true) => "token-file",
        ("token", false) => "token-env",
        ("api-key", true) => "api-key-file",
        ("api-key", false) => "api-key-env",
        ("secret-key", true) => "secret-key-file",
        ("secret-key", false) => "secret-key-env",
        ("application-secret", true) => "application-secret-file",
        ("application-secret", false) => "application-secret-env",
        ("consumer-key", true) => "consumer-key-file",
        ("consumer-key", false) => "consumer-key-env",
        ("password", true) => "password-file",
        ("password", false) => "password-env",
        ("totp-secret", true) => "totp-secret-file",
        ("totp-secret", false) => "totp-secret-env",
        ("private-key", true) => "private-key-file",
        ("private-key", false) => "private-key-env",
        ("url", true) => "url-file",
        ("url", false) => "url-env",
        ("credentials", true) => "credentials-file",
        ("credentials", false) => "credentials-env",
        (_, true) => "file",
        (_, false) => "env",
    }
}

/// Where a TSIG key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tsig {
    /// A BIND key file (`tsig-key-file`), as written by `tsig-keygen`.
    KeyFile(Secret),
    /// An environment variable holding `algorithm:name:secret` (`tsig-env`).
    Env(Secret),
}

impl Tsig {
    /// The secret behind it.
    pub fn secret(&self) -> &Secret {
        match self {
            Tsig::KeyFile(secret) | Tsig::Env(secret) => secret,
        }
    }
}

/// A server named by host (address or name) and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddr {
    /// An IP address or a host name.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Parse `HOST[:PORT]` where HOST is an IP address (IPv6 in brackets when a port follows) or a name.
pub(super) fn parse_server(text: &str, default_port: u16) -> Result<ServerAddr, String> {
    if let Ok(addr) = super::resolver::parse_socket_addr(text, default_port) {
        return Ok(ServerAddr {
            host: addr.ip().to_string(),
            port: addr.port(),
        });
    }
    let (host, port) = match text.rsplit_once(':') {
        Some((host, port)) => (host, super::endpoint::parse_port(port)?),
        None => (text, default_port),
    };
    let host = super::endpoint::dns_name(host, false)
        .map_err(|_| format!("\"{text}\" is not HOST or HOST:PORT (an address or a name)"))?;
    Ok(ServerAddr { host, port })
}
