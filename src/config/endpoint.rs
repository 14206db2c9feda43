//! Endpoints (host, port, protocol), their TLSA owner names, and the checks on DNS names.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use serde::Deserialize;

use crate::tlsa::OwnerName;

/// The port an endpoint uses when none is given: SMTP.
pub const DEFAULT_PORT: u16 = 25;

/// How a client reaches TLS on an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// SMTP with STARTTLS (port 25, MX traffic; also 587).
    Smtp,
    /// Mail submission with STARTTLS (port 587).
    Submission,
    /// IMAP with STARTTLS (port 143).
    Imap,
    /// POP3 with STLS (port 110).
    Pop3,
    /// TLS from the first byte (465, 993, 995, 443).
    Tls,
}

impl Protocol {
    /// Every protocol, in the order the documentation lists them.
    pub const ALL: [Protocol; 5] = [
        Protocol::Smtp,
        Protocol::Submission,
        Protocol::Imap,
        Protocol::Pop3,
        Protocol::Tls,
    ];

    /// The protocol a well-known port speaks: 25/587 smtp, 143 imap, 110 pop3, 465/993/995/443 tls.
    pub fn default_for_port(port: u16) -> Option<Protocol> {
        match port {
            25 | 587 => Some(Protocol::Smtp),
            143 => Some(Protocol::Imap),
            110 => Some(Protocol::Pop3),
            465 | 993 | 995 | 443 => Some(Protocol::Tls),
            _ => None,
        }
    }

    /// Whether TLS starts by a command in the clear (STARTTLS, STLS).
    pub fn starttls(self) -> bool {
        !matches!(self, Protocol::Tls)
    }

    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Smtp => "smtp",
            Protocol::Submission => "submission",
            Protocol::Imap => "imap",
            Protocol::Pop3 => "pop3",
            Protocol::Tls => "tls",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Protocol {
    type Err = String;

    fn from_str(s: &str) -> Result<Protocol, String> {
        Protocol::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| {
                format!("unknown protocol \"{s}\"; use one of smtp, submission, imap, pop3, tls")
            })
    }
}

/// An endpoint's id: host and port, written `host:port` (the protocol follows from the
/// service's configuration). A rollover stores its endpoints in this form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointId {
    /// The host name.
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl EndpointId {
    /// The TLSA owner name of its records, absolute: `_25._tcp.mail.example.com.`.
    pub fn owner_name(&self) -> OwnerName {
        OwnerName::for_endpoint(&self.host, self.port)
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Text that is not an endpoint id `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("endpoint \"{0}\" is not host:port (a host name, a colon and a port from 1 to 65535)")]
pub struct EndpointIdError(String);

impl FromStr for EndpointId {
    type Err = EndpointIdError;

    fn from_str(text: &str) -> Result<EndpointId, EndpointIdError> {
        text.rsplit_once(':')
            .and_then(|(host, port)| {
                let port = port.parse::<u16>().ok().filter(|p| *p != 0)?;
                (!host.is_empty()).then(|| EndpointId {
                    host: host.to_owned(),
                    port,
                })
            })
            .ok_or_else(|| EndpointIdError(text.to_owned()))
    }
}

/// One place a service is reached: a host name, a TCP port and how TLS starts there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// The host name, lower case, without a final dot (the MX target for SMTP).
    pub host: String,
    /// The TCP port.
    pub port: u16,
    /// How TLS starts.
    pub protocol: Protocol,
}

impl Endpoint {
    /// The TLSA owner name, absolute: `_25._tcp.mail.example.com.`.
    pub fn owner_name(&self) -> OwnerName {
        OwnerName::for_endpoint(&self.host, self.port)
    }

    /// Its id, `host:port`: what a rollover stores and what probe results and reports name.
    pub fn id(&self) -> EndpointId {
        EndpointId {
            host: self.host.clone(),
            port: self.port,
        }
    }

    /// Parse the short form `host[:port][/protocol]`, e.g. `mail.example.com:25/smtp`.
    pub fn parse_short(text: &str) -> Result<Endpoint, String> {
        let (rest, protocol) = match text.split_once('/') {
            Some((rest, protocol)) => (rest, Some(protocol.parse::<Protocol>()?)),
            None => (text, None),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((host, port)) => (host, Some(parse_port(port)?)),
            None => (rest, None),
        };
        Endpoint::new(host, port, protocol)
    }

    /// An endpoint from its parts, with the defaults filled in and the host checked.
    pub fn new(
        host: &str,
        port: Option<u16>,
        protocol: Option<Protocol>,
    ) -> Result<Endpoint, String> {
        let host = host_name(host)?;
        let port = port.unwrap_or(DEFAULT_PORT);
        if port == 0 {
            return Err("port 0 is not a usable port".into());
        }
        let protocol = match protocol.or_else(|| Protocol::default_for_port(port)) {
            Some(protocol) => protocol,
            None => {
                return Err(format!(
                    "port {port} has no usual protocol; say which with protocol = \"smtp\", \"submission\", \"imap\", \"pop3\" or \"tls\""
                ));
            }
        };
        Ok(Endpoint {
            host,
            port,
            protocol,
        })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}/{}", self.host, self.port, self.protocol)
    }
}

/// Parse a TCP port number, 1–65535.
pub(super) fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) => Err("port 0 is not a usable port".into()),
        Ok(port) => Ok(port),
        Err(_) => Err(format!("\"{text}\" is not a port (1–65535)")),
    }
}

/// Check a port number given as a TOML integer.
pub(super) fn port_from_int(value: i64) -> Result<u16, String> {
    match u16::try_from(value) {
        Ok(0) | Err(_) => Err(format!("{value} is not a port (1–65535)")),
        Ok(port) => Ok(port),
    }
}

/// Check and normalise a host name: lower case, no final dot, letters/digits/hyphens, not an address.
pub(super) fn host_name(text: &str) -> Result<String, String> {
    if text.parse::<IpAddr>().is_ok() || text.starts_with('[') {
        return Err(format!(
            "\"{text}\" is an IP address; TLSA records are published under the host name (the MX target)"
        ));
    }
    dns_name(text, false)
}

/// Check and normalise a DNS name (a zone or a host): lower case, no final dot.
///
/// With `wildcard`, a leading `*.` label is allowed (ACME certificate names).
pub(super) fn dns_name(text: &str, wildcard: bool) -> Result<String, String> {
    let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    if name.is_empty() {
        return Err("is empty; write a DNS name such as \"mail.example.com\"".into());
    }
    if name.len() > 253 {
        return Err(format!("\"{text}\" is longer than 253 characters"));
    }
    let body = match name.strip_prefix("*.") {
        Some(rest) if wildcard => rest,
        _ => name.as_str(),
    };
    for label in body.split('.') {
        if label.is_empty() {
            return Err(format!(
                "\"{text}\" has an empty label (two dots in a row?)"
            ));
        }
        if label.len() > 63 {
            return Err(format!("\"{text}\" has a label longer than 63 characters"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
        {
            return Err(format!(
                "\"{text}\" contains '{c}'; a host name has letters, digits, hyphens and dots"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "\"{text}\" has a label that starts or ends with '-'"
            ));
        }
    }
    Ok(name)
}

/// Whether `name` is `zone` or below it (both normalised by [`dns_name`]).
pub(super) fn in_zone(name: &str, zone: &str) -> bool {
    name == zone
        || name
            .strip_suffix(zone)
            .is_some_and(|prefix| prefix.ends_with('.'))
}
