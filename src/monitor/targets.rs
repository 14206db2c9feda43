//! What the monitor checks: a [`Target`] read from the command line (`name`, `host:port`,
//! `host/protocol`, `host:port/protocol`), and how a name without port or protocol is read
//! ([`TargetMode`]). A mail domain is turned into its MX hosts' endpoints by the run.

use crate::config::{Endpoint, Protocol};

/// Why a target cannot be checked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MonitorError {
    /// The target is not a name, `host:port` or `host:port/protocol`.
    #[error("target \"{target}\": {reason}")]
    BadTarget {
        /// What was given.
        target: String,
        /// What is wrong.
        reason: String,
    },
}

/// How a target without `:port` or `/protocol` is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetMode {
    /// A mail domain when it has an MX RRset, else a host on port 25.
    #[default]
    Auto,
    /// Always a mail domain (`--mx`).
    Domain,
    /// Always a host (`--host`).
    Host,
}

/// What to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A mail domain when it has an MX RRset, else a host on port 25.
    Auto(String),
    /// A mail domain: every MX host on port 25.
    Domain(String),
    /// One endpoint.
    Host(Endpoint),
}

impl Target {
    /// Read a target: `name`, `host:port`, `host/protocol` or `host:port/protocol`. `protocol`
    /// (from `--protocol`) makes it a host and overrides the port's usual protocol.
    pub fn parse(
        text: &str,
        mode: TargetMode,
        protocol: Option<Protocol>,
    ) -> Result<Target, MonitorError> {
        let bad = |reason: String| MonitorError::BadTarget {
            target: text.to_string(),
            reason,
        };
        let text = text.trim().trim_end_matches('.');
        let explicit = text.contains(':') || text.contains('/');
        if explicit || protocol.is_some() || mode == TargetMode::Host {
            let mut ep = if protocol.is_some() && !text.contains('/') {
                let (host, port) = match text.rsplit_once(':') {
                    Some((host, port)) => match port.parse::<u16>() {
                        Ok(port) if port != 0 => (host, Some(port)),
                        _ => return Err(bad(format!("\"{port}\" is not a port (1–65535)"))),
                    },
                    None => (text, None),
                };
                Endpoint::new(host, port, protocol).map_err(bad)?
            } else {
                Endpoint::parse_short(text).map_err(bad)?
            };
            if let Some(p) = protocol {
                ep.protocol = p;
            }
            if mode == TargetMode::Domain {
                return Err(bad(
                    "--mx takes a mail domain, without :port or /protocol".into()
                ));
            }
            return Ok(Target::Host(ep));
        }
        let name = Endpoint::new(text, None, None).map_err(bad)?.host;
        Ok(match mode {
            TargetMode::Domain => Target::Domain(name),
            _ => Target::Auto(name),
        })
    }

    /// The name DNS is asked about.
    pub fn name(&self) -> &str {
        match self {
            Target::Auto(name) | Target::Domain(name) => name,
            Target::Host(ep) => &ep.host,
        }
    }
}
