//! The configuration as written: serde types that mirror the TOML file key for key.
//!
//! Nothing here is checked beyond types and key names (`deny_unknown_fields` everywhere, kebab-case);
//! [`super::build`] turns these into the validated runtime [`super::Config`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use super::endpoint::Protocol;
use super::{KeyType, Scheme};

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawConfig {
    pub version: Option<i64>,
    pub state_dir: Option<PathBuf>,
    #[serde(default)]
    pub resolver: RawResolver,
    #[serde(default, rename = "service")]
    pub services: Vec<RawService>,
    #[serde(default, rename = "provider")]
    pub providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub alerts: RawAlerts,
    #[serde(default)]
    pub check: RawCheck,
}

/// `[resolver]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawResolver {
    pub address: Option<String>,
    pub timeout: Option<RawDuration>,
    pub trust_anchor: Option<PathBuf>,
}

/// One `[[service]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawService {
    pub name: String,
    pub lineage: Option<String>,
    #[serde(default)]
    pub domains: Vec<String>,
    pub endpoints: Vec<RawEndpoint>,
    pub scheme: Option<Scheme>,
    pub chain_file: Option<PathBuf>,
    pub chain_files: Option<BTreeMap<String, PathBuf>>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub fullchain_file: Option<PathBuf>,
    pub reload: Option<RawReload>,
    pub key_mode: Option<String>,
    pub key_group: Option<String>,
    pub ttl: Option<i64>,
    pub zone: Option<String>,
    pub provider: Option<String>,
    pub key_type: Option<KeyType>,
    pub max_records: Option<i64>,
    pub acme_source: Option<super::AcmeFiles>,
    pub issuer_ahead_file: Option<PathBuf>,
}

/// `reload`: one command (`["postfix", "reload"]`) or a list of them, run in order.
#[derive(Debug, Deserialize)]
#[serde(
    untagged,
    expecting = "a command as a list of strings, [\"postfix\", \"reload\"], or a list of commands, \
                 [[\"postfix\", \"reload\"], [\"doveadm\", \"reload\"]]"
)]
pub(super) enum RawReload {
    One(Vec<String>),
    Many(Vec<Vec<String>>),
}

/// An endpoint: `"host[:port][/protocol]"` or `{ host, port, protocol }`.
#[derive(Debug)]
pub(super) enum RawEndpoint {
    Short(String),
    Table(RawEndpointTable),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawEndpointTable {
    pub host: String,
    pub port: Option<i64>,
    pub protocol: Option<Protocol>,
}

impl<'de> Deserialize<'de> for RawEndpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EndpointVisitor;
        impl<'de> Visitor<'de> for EndpointVisitor {
            type Value = RawEndpoint;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "an endpoint: \"host:port/protocol\" or { host = \"…\", port = 25, protocol = \"smtp\" }",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawEndpoint, E> {
                Ok(RawEndpoint::Short(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawEndpoint, A::Error> {
                RawEndpointTable::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawEndpoint::Table)
            }
        }
        deserializer.deserialize_any(EndpointVisitor)
    }
}

/// A duration: a string such as `"6h"`, or an integer number of seconds.
#[derive(Debug, Clone)]
pub(super) enum RawDuration {
    Seconds(i64),
    Text(String),
}

impl<'de> Deserialize<'de> for RawDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(
            match int_or_text(
                deserializer,
                "a duration such as \"30s\", \"5m\", \"6h\" or \"1d\"",
            )? {
                IntOrText::Int(v) => RawDuration::Seconds(v),
                IntOrText::Text(v) => RawDuration::Text(v),
            },
        )
    }
}

/// A value written as an integer or as a string (a duration, a chat id).
enum IntOrText {
    Int(i64),
    Text(String),
}

/// Read an integer or a string; `expecting` says what the key wants when it is neither.
fn int_or_text<'de, D: Deserializer<'de>>(
    deserializer: D,
    expecting: &'static str,
) -> Result<IntOrText, D::Error> {
    struct IntOrTextVisitor(&'static str);
    impl Visitor<'_> for IntOrTextVisitor {
        type Value = IntOrText;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.0)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<IntOrText, E> {
            Ok(IntOrText::Int(v))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<IntOrText, E> {
            // TOML integers are signed 64-bit: a larger one cannot be written.
            Ok(IntOrText::Int(i64::try_from(v).unwrap_or(i64::MAX)))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<IntOrText, E> {
            Ok(IntOrText::Text(v.to_owned()))
        }
    }
    deserializer.deserialize_any(IntOrTextVisitor(expecting))
}

/// `[provider.NAME]`: how records reach DNS, chosen by `kind`.
#[derive(Debug, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    deny_unknown_fields
)]
pub(super) enum RawProvider {
    Rfc2136 {
        server: String,
        tsig_key_file: Option<PathBuf>,
        tsig_env: Option<String>,
        zone: Option<String>,
    },
    Cloudflare {
        token_file: Option<PathBuf>,
        token_env: Option<String>,
        zone_id: Option<String>,
    },
    Powerdns {
        url: String,
        api_key_file: Option<PathBuf>,
        api_key_env: Option<String>,
        server_id: Option<String>,
    },
    Desec {
        token_file: Option<PathBuf>,
        token_env: Option<String>,
    },
    Hetzner {
        token_file: Option<PathBuf>,
        token_env: Option<String>,
    },
    Gandi {
        token_file: Option<PathBuf>,
        token_env: Option<String>,
    },
    Route53 {
        access_key_id: String,
        secret_key_file: Option<PathBuf>,
        secret_key_env: Option<String>,
        hosted_zone_id: Option<String>,
    },
    Ovh {
        endpoint: Option<String>,
        application_key: String,
        application_secret_file: Option<PathBuf>,
        application_secret_env: Option<String>,
        consumer_key_file: Option<PathBuf>,
        consumer_key_env: Option<String>,
    },
    Inwx {
        user: String,
        password_file: Option<PathBuf>,
        password_env: Option<String>,
        totp_secret_file: Option<PathBuf>,
        totp_secret_env: Option<String>,
        url: Option<String>,
    },
    Transip {
        login: String,
        private_key_file: Option<PathBuf>,
        private_key_env: Option<String>,
        global_key: Option<bool>,
    },
    Google {
        credentials_file: Option<PathBuf>,
        credentials_env: Option<String>,
        project: Option<String>,
        managed_zone: Option<String>,
    },
    Exec {
        command: Vec<String>,
    },
    Manual {},
}

/// `[alerts]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawAlerts {
    pub repeat_interval: Option<RawDuration>,
    pub timeout: Option<RawDuration>,
    #[serde(default)]
    pub channel: BTreeMap<String, RawChannel>,
}

/// `[alerts.channel.NAME]`: where alerts go, chosen by `kind`.
#[derive(Debug, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "kebab-case",
    deny_unknown_fields
)]
pub(super) enum RawChannel {
    Webhook {
        url: Option<String>,
        url_file: Option<PathBuf>,
        url_env: Option<String>,
    },
    Email {
        to: OneOrMany,
        from: String,
        via: Option<super::alerts::MailVia>,
        sendmail: Option<PathBuf>,
        smtp_server: Option<String>,
        credentials_file: Option<PathBuf>,
        credentials_env: Option<String>,
        tls_ca_file: Option<PathBuf>,
    },
    Telegram {
        token_file: Option<PathBuf>,
        token_env: Option<String>,
        chat_id: ChatId,
        api_url: Option<String>,
    },
}

/// A string or a list of strings.
#[derive(Debug)]
pub(super) struct OneOrMany(pub Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ListVisitor;
        impl<'de> Visitor<'de> for ListVisitor {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an address or a list of addresses")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![v.to_owned()]))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<OneOrMany, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<String>()? {
                    items.push(item);
                }
                Ok(OneOrMany(items))
            }
        }
        deserializer.deserialize_any(ListVisitor)
    }
}

/// A Telegram chat id: an integer (`-1001234567890`) or a string (`"@channel"`).
#[derive(Debug)]
pub(super) struct ChatId(pub String);

impl<'de> Deserialize<'de> for ChatId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(
            match int_or_text(deserializer, "a chat id: an integer or \"@channel\"")? {
                IntOrText::Int(v) => ChatId(v.to_string()),
                IntOrText::Text(v) => ChatId(v),
            },
        )
    }
}

/// `[check]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RawCheck {
    pub rrsig_warn_days: Option<i64>,
    pub cert_warn_days: Option<i64>,
    pub max_records: Option<i64>,
}
