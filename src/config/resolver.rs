//! The validating resolver: its address (configured, or the system's first nameserver), timeout and
//! optional trust anchor for in-process validation.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// The DNS port, used when an address names none.
pub const DNS_PORT: u16 = 53;

/// How long one query may take before it counts as failed.
pub const DEFAULT_RESOLVER_TIMEOUT: Duration = Duration::from_secs(5);

/// Where the system names its resolvers.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

/// The address systemd-resolved's stub listens on; it validates only when told to.
const SYSTEMD_RESOLVED_STUB: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 53));

/// Where the resolver address came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResolverOrigin {
    /// `[resolver] address` in the configuration.
    Configured,
    /// The first usable `nameserver` line of /etc/resolv.conf, read when the configuration was loaded.
    System,
}

/// The resolver whose answers (and AD bit) the checks trust.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolverSettings {
    /// Where queries go.
    pub address: SocketAddr,
    /// Whether the address was configured or taken from the system.
    pub origin: ResolverOrigin,
    /// How long one query may take.
    pub timeout: Duration,
    /// A trust anchor file (DS or DNSKEY records); when set, answers are validated in process instead
    /// of trusting the resolver's AD bit.
    pub trust_anchor: Option<PathBuf>,
}

impl ResolverSettings {
    /// Whether the address is systemd-resolved's stub, which may not validate DNSSEC.
    pub fn is_systemd_stub(&self) -> bool {
        self.address.ip() == SYSTEMD_RESOLVED_STUB
    }
}

impl fmt::Display for ResolverOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResolverOrigin::Configured => f.write_str("configured"),
            ResolverOrigin::System => f.write_str("system"),
        }
    }
}

/// Parse `ADDR[:PORT]`: `192.0.2.1`, `192.0.2.1:5353`, `2001:db8::1`, `[2001:db8::1]:5353`.
pub fn parse_socket_addr(text: &str, default_port: u16) -> Result<SocketAddr, String> {
    let text = text.trim();
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, default_port));
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|t| t.strip_suffix(']'))
        && let Ok(ip) = inner.parse::<IpAddr>()
    {
        return Ok(SocketAddr::new(ip, default_port));
    }
    Err(format!(
        "\"{text}\" is not an address; write ADDR or ADDR:PORT, e.g. \"127.0.0.1\", \"127.0.0.1:5353\", \"::1\" or \"[::1]:5353\""
    ))
}

/// The first usable `nameserver` of a resolv.conf text (scoped IPv6 addresses are skipped).
pub fn first_nameserver(resolv_conf: &str) -> Option<SocketAddr> {
    resolv_conf
        .lines()
        .map(|line| line.split(['#', ';']).next().unwrap_or(""))
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("nameserver"), Some(addr)) => addr.parse::<IpAddr>().ok(),
                _ => None,
            }
        })
        .map(|ip| SocketAddr::new(ip, DNS_PORT))
        .next()
}
