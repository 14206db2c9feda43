//! The arguments of the monitoring commands: `check` and `serve`.

use clap::{Args, ValueEnum};

/// `dane-roll check`: the monitoring checklist, once. Exit 0 ok, 1 warning, 2 critical,
/// 3 unknown (the Nagios plugin convention).
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Mail domains (every MX host, port 25), `host[:port][/protocol]` endpoints, or nothing
    /// for every endpoint of the configuration. A name without `:port` or `/protocol` is a mail
    /// domain when it has an MX RRset, else a host on port 25.
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,

    /// Read every name target as a mail domain (its MX hosts).
    #[arg(long, conflicts_with = "host")]
    pub mx: bool,

    /// Read every name target as a host (port 25 unless given).
    #[arg(long)]
    pub host: bool,

    /// How TLS starts: smtp, submission, imap, pop3 or tls (default: from the port). Makes the
    /// targets hosts.
    #[arg(long, value_name = "PROTOCOL", value_parser = clap::value_parser!(crate::config::Protocol))]
    pub protocol: Option<crate::config::Protocol>,

    /// The validating resolver (its AD bit is trusted); port 53 unless given. Default:
    /// `[resolver] address` of the configuration, else the first nameserver of /etc/resolv.conf.
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub resolver: Option<String>,

    /// How to print the outcome.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,

    /// A TLSA record to check against instead of looking them up, `"3 1 1 <hex>"` (repeat for a
    /// record set; not DNSSEC-validated).
    #[arg(long = "tlsa", value_name = "RDATA")]
    pub tlsa: Vec<crate::tlsa::TlsaRecord>,

    /// An address to probe instead of resolving the host (repeat for several).
    #[arg(long = "address", value_name = "IP")]
    pub addresses: Vec<std::net::IpAddr>,

    /// Key algorithms to probe for: rsa, ecdsa, eddsa (repeat; default: all three). Each costs
    /// one handshake per address.
    #[arg(long = "key-algorithm", value_name = "ALG")]
    pub key_algorithms: Vec<crate::probe::KeyAlgorithm>,

    /// Seconds the whole run may take; what is not done by then is UNKNOWN. Each step (connect,
    /// a reply, a handshake, a DNS query) gets at most this too.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub timeout: f64,

    /// How many addresses to probe at once (each with its key algorithms side by side).
    #[arg(long, value_name = "N", default_value_t = crate::monitor::DEFAULT_CHECK_CONCURRENCY)]
    pub concurrency: usize,

    /// The name to send in EHLO.
    #[arg(long, value_name = "NAME", default_value = crate::probe::DEFAULT_HELO)]
    pub helo: String,

    /// Send alerts for checks whose state changed (`[alerts]` channels; state in the state
    /// directory's store).
    #[arg(long)]
    pub notify: bool,

    /// Print the served chains and each handshake attempt (text format).
    #[arg(long)]
    pub details: bool,

    /// A PEM CA bundle to trust for MTA-STS (the policy fetched over HTTPS and each MX
    /// certificate under an MTA-STS policy) instead of the system's CA store.
    #[arg(long, value_name = "PATH")]
    pub webpki_ca_file: Option<std::path::PathBuf>,
}

/// Output formats of `dane-roll check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// For people.
    Text,
    /// One JSON document, for scripts.
    Json,
    /// A Nagios/Icinga plugin's output: one status line with performance data, then details.
    Nagios,
}

/// `dane-roll serve`: the Prometheus exporter.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Where to listen, `ADDR:PORT`. An address other than loopback needs --allow-remote.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:9725")]
    pub listen: std::net::SocketAddr,

    /// Allow a --listen address other than loopback (the exporter then answers the network);
    /// requires a bearer token (--token-file or --token-env).
    #[arg(long)]
    pub allow_remote: bool,

    /// A file holding the bearer token every request must carry (`Authorization: Bearer`).
    #[arg(long, value_name = "PATH", conflicts_with = "token_env")]
    pub token_file: Option<std::path::PathBuf>,

    /// An environment variable holding the bearer token every request must carry.
    #[arg(long, value_name = "VAR")]
    pub token_env: Option<String>,

    /// Let /probe connect to loopback, link-local and private addresses (refused otherwise, so
    /// that the exporter cannot scan its own network).
    #[arg(long)]
    pub allow_private_targets: bool,

    /// Also take SMTP TLS reports posted to /tlsrpt (for `rua=https://…` behind the site's
    /// HTTPS reverse proxy), stored once each like `dane-roll tlsrpt ingest`.
    #[arg(long)]
    pub tlsrpt: bool,

    /// Open connections at most; over it the connection idle the longest is closed.
    #[arg(long, value_name = "N", default_value_t = crate::monitor::exporter::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::builder::TypedValueParser::map(
              clap::value_parser!(u32).range(1..=65536), |n| n as usize))]
    pub max_connections: usize,

    /// /probe runs at once over all requests; a request over it waits 5 s, then gets 503.
    #[arg(long, value_name = "N", default_value_t = crate::monitor::exporter::DEFAULT_MAX_PROBES,
          value_parser = clap::builder::TypedValueParser::map(
              clap::value_parser!(u32).range(1..=1024), |n| n as usize))]
    pub max_probes: usize,

    /// Seconds a client may take to send a request's head before its connection is closed.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub header_timeout: f64,

    /// Seconds between two runs of the checks.
    #[arg(long, value_name = "SECS", default_value_t = 300.0)]
    pub interval: f64,

    /// Seconds one run may take.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub timeout: f64,

    /// The validating resolver; default `[resolver] address` of the configuration.
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub resolver: Option<String>,

    /// Key algorithms to probe for: rsa, ecdsa, eddsa (repeat; default: all three).
    #[arg(long = "key-algorithm", value_name = "ALG")]
    pub key_algorithms: Vec<crate::probe::KeyAlgorithm>,

    /// How many addresses to probe at once (each with its key algorithms side by side).
    #[arg(long, value_name = "N", default_value_t = crate::monitor::DEFAULT_SERVE_CONCURRENCY)]
    pub concurrency: usize,

    /// A PEM CA bundle to trust for MTA-STS (the policy fetched over HTTPS and each MX
    /// certificate under an MTA-STS policy) instead of the system's CA store.
    #[arg(long, value_name = "PATH")]
    pub webpki_ca_file: Option<std::path::PathBuf>,

    /// A file of extra targets, one per line (`#` comments, blank lines skipped), read at start
    /// and again on SIGHUP (a bad file then keeps the previous list).
    #[arg(long = "targets", value_name = "FILE")]
    pub targets_file: Option<std::path::PathBuf>,

    /// Extra targets beside the configured endpoints (mail domains or `host[:port]`).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
}
