//! The command-line types (clap derive). Parsing only: validation and work happen in [`crate::cmd`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// The default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/dane-roll/dane-roll.toml";

/// Safe DANE TLSA rollovers and monitoring for mail servers.
#[derive(Debug, Parser)]
#[command(name = "dane-roll", version, about, propagate_version = true)]
pub struct Cli {
    /// The configuration file.
    #[arg(short, long, global = true, env = "DANE_ROLL_CONFIG", default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,

    /// The state directory (overrides `state-dir` in the configuration).
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    /// Say more (repeat for more still).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,

    /// Say only what went wrong.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute TLSA records from certificates, chains or keys (PEM or DER).
    Tlsa(TlsaArgs),
    /// Work with the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Probe a server live: would a DANE sender deliver mail to every address of HOST?
    Check(CheckArgs),
    /// Add the `3 1 1` records for these certificates or keys to a service's owner names now
    /// (pre-publish a key deployed later); waits for nothing but the provider's read-back.
    Publish(PublishArgs),
}

/// `dane-roll tlsa`.
#[derive(Debug, Args)]
pub struct TlsaArgs {
    /// Certificate usage: 3 DANE-EE (the server's own key), 2 DANE-TA (a CA in the chain).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(0..=3))]
    pub usage: u8,

    /// Selector: 1 the public key (survives renewal with the same key), 0 the whole certificate.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub selector: u8,

    /// Matching type: 1 SHA-256, 2 SHA-512, 0 the full data.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=2))]
    pub mtype: u8,

    /// The host name the records are for (needed by `--format rr` and `nsupdate`).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,

    /// The TCP port of the service.
    #[arg(long, default_value_t = 25)]
    pub port: u16,

    /// The TTL of the records, for `--format rr` and `nsupdate`.
    #[arg(long, default_value_t = 3600)]
    pub ttl: u32,

    /// How to print the records.
    #[arg(long, value_enum, default_value_t = TlsaFormat::Rdata)]
    pub format: TlsaFormat,

    /// Certificates, chains, private keys or public keys, PEM or DER.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// Output formats of `dane-roll tlsa`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsaFormat {
    /// `3 1 1 <hex>`, one record a line.
    Rdata,
    /// A zone-file line: owner, TTL, class, type, data.
    Rr,
    /// `update add` lines for nsupdate.
    Nsupdate,
    /// JSON objects with the fields and where each record came from.
    Json,
}

/// `dane-roll config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print it resolved, with secrets masked.
    Check,
}

/// `dane-roll check`: the live DANE probe. Exit 0 when every address matches, 2 when one does
/// not, 3 when it cannot tell (timeouts, connection refused).
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The host to probe (the MX host name), and the port: 25 unless given.
    #[arg(value_name = "HOST[:PORT]")]
    pub target: String,

    /// How TLS starts: smtp, submission, imap, pop3 or tls (default: from the port).
    #[arg(long, value_name = "PROTOCOL", value_parser = clap::value_parser!(crate::config::Protocol))]
    pub protocol: Option<crate::config::Protocol>,

    /// The validating resolver (its AD bit is trusted) for the TLSA and address lookups; port 53
    /// unless given. --tlsa and --address override what it would find.
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub resolver: Option<String>,

    /// How to print the outcome.
    #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
    pub format: CheckFormat,

    /// A TLSA record to check against, `"3 1 1 <hex>"` (repeat for a record set).
    #[arg(long = "tlsa", value_name = "RDATA")]
    pub tlsa: Vec<crate::tlsa::TlsaRecord>,

    /// An address to probe instead of resolving HOST (repeat for several).
    #[arg(long = "address", value_name = "IP")]
    pub addresses: Vec<std::net::IpAddr>,

    /// Key algorithms to probe for: rsa, ecdsa, eddsa (repeat; default: all three).
    #[arg(long = "key-algorithm", value_name = "ALG")]
    pub key_algorithms: Vec<crate::probe::KeyAlgorithm>,

    /// Seconds allowed for each step (connect, each reply, the TLS handshake).
    #[arg(long, value_name = "SECS", default_value_t = 15.0)]
    pub timeout: f64,

    /// How many addresses to probe at once.
    #[arg(long, value_name = "N", default_value_t = crate::probe::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,

    /// The name to send in EHLO.
    #[arg(long, value_name = "NAME", default_value = crate::probe::DEFAULT_HELO)]
    pub helo: String,
}

/// Output formats of `dane-roll check`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CheckFormat {
    /// For people.
    Text,
    /// One JSON document, for scripts.
    Json,
}

/// `dane-roll publish`: add records now. Exit 0 when every record is there, 2 otherwise.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The service (its endpoints give the owner names, its provider the way to DNS).
    #[arg(long, value_name = "NAME")]
    pub service: String,

    /// Seconds allowed for each request to the provider.
    #[arg(long, value_name = "SECS", default_value_t = 15.0)]
    pub timeout: f64,

    /// Certificates, chains, private keys or public keys, PEM or DER.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}
