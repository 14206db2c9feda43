//! The command-line types (clap derive). Parsing only: validation and work happen in [`crate::cmd`].

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

mod init;
mod monitor;
mod rollover;
mod tlsrpt;

pub use init::InitArgs;
pub use monitor::{CheckArgs, CheckFormat, ServeArgs};
pub use rollover::{
    AbortArgs, DehydratedArgs, DeployArgs, DriveArgs, HookArgs, HookClient, HookOptions,
    NextKeyArgs, PlanArgs, PruneArgs, PublishArgs, RotateArgs, RunArgs, ServiceName, StatusArgs,
};
pub use tlsrpt::{IngestArgs, ReportsArgs, TlsrptCommand};

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

impl Cli {
    /// What clap cannot say: a service named as the first argument and with `--service` must
    /// be the same; a command that needs one has one; `publish`'s first file is the service
    /// unless `--service` names it. A usage error (exit 2) otherwise.
    pub fn settle(&mut self) -> Result<(), clap::Error> {
        let usage = |message: String| {
            use clap::CommandFactory;
            Cli::command().error(clap::error::ErrorKind::ArgumentConflict, message)
        };
        let (name, required, service) = match &mut self.command {
            Command::Publish(args) => {
                args.service = match args.service_flag.clone() {
                    Some(name) => name,
                    None if args.files.len() >= 2 => {
                        args.files.remove(0).to_string_lossy().into_owned()
                    }
                    None => {
                        return Err(usage(
                            "name the service: `dane-roll publish NAME FILE…` or `dane-roll \
                             publish --service NAME FILE…`"
                                .to_owned(),
                        ));
                    }
                };
                return Ok(());
            }
            Command::Rotate(a) => ("rotate", true, &a.service),
            Command::Deploy(a) => ("deploy", true, &a.service),
            Command::Prune(a) => ("prune", true, &a.service),
            Command::Abort(a) => ("abort", true, &a.service),
            Command::Run(a) => ("run", false, &a.service),
            Command::Status(a) => ("status", false, &a.service),
            Command::Plan(a) => ("plan", false, &a.service),
            Command::NextKey(a) => ("next-key", false, &a.service),
            _ => return Ok(()),
        };
        service.settle(name, required).map_err(usage)
    }
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Compute TLSA records from certificates, chains or keys (PEM or DER).
    Tlsa(TlsaArgs),
    /// Work with the configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run the monitoring checklist on mail domains or endpoints (or the configured ones):
    /// DNSSEC, TLSA records, the live chain on every address; exit 0/1/2/3 like a Nagios plugin.
    Check(CheckArgs),
    /// Serve Prometheus metrics from the checks of the configured endpoints, run on a schedule.
    Serve(ServeArgs),
    /// Add the `3 1 1` records for these certificates or keys to a service's owner names now
    /// (pre-publish a key deployed later); waits for nothing but the provider's read-back.
    Publish(PublishArgs),
    /// Hand a certificate an ACME client just issued to dane-roll (run by the client: certbot's
    /// --deploy-hook, acme.sh's --reloadcmd, dehydrated's HOOK). Publishes the new key's record,
    /// then installs the certificate only once DNS has it everywhere for 2×TTL.
    Hook(HookArgs),
    /// Make certbot renew SERVICE's certificate with the published next key, so that the
    /// rollover needs no wait (acme.sh and dehydrated rotate natively).
    Rotate(RotateArgs),
    /// Deploy a certificate and key: a renewal with the same key is installed at once; a new
    /// key's record is published now and the certificate installed once DNS has it everywhere
    /// for 2×TTL (by `run`, or here with --wait).
    Deploy(DeployArgs),
    /// Advance pending rollovers as far as they can go now (from a timer or cron), or to the
    /// end with --wait.
    Run(RunArgs),
    /// Where each service's rollover stands (from the state store; --live asks DNS and probes).
    Status(StatusArgs),
    /// What `run` would do now; changes nothing.
    Plan(PlanArgs),
    /// Generate the next key of a service now (if it has none) and publish its record.
    NextKey(NextKeyArgs),
    /// Remove a service's records that match neither the live key nor the published next key
    /// (--foreign: also records dane-roll never published; --dry-run: only say what would go).
    Prune(PruneArgs),
    /// Abandon SERVICE's rollover from any phase before `verified`: the previous certificate
    /// goes back if the new one was installed, then the abandoned key's records are retired
    /// once the live handshake matches the records that remain.
    Abort(AbortArgs),
    /// SMTP TLS reports (RFC 8460) that senders send to the `rua` of `_smtp._tls.DOMAIN`.
    #[command(subcommand)]
    Tlsrpt(TlsrptCommand),
    /// What senders saw: the stored TLS reports per day, sending organisation, result type and
    /// rollover, each failure tied to the rollover journal.
    Reports(ReportsArgs),
    /// Find Postfix's TLS files, the ACME client, the MX hosts, the zone and its provider, and
    /// the live TLSA records; write a commented configuration (never over an existing one).
    /// `--apply` then switches Postfix to dane-roll's key+chain file, checked by a live
    /// handshake; `--undo` switches back.
    Init(InitArgs),
    /// Write the man pages or a shell completion script, generated from these definitions
    /// (for packagers: packaging/build-deb runs it; nothing generated is committed).
    #[command(hide = true, subcommand)]
    Generate(GenerateCommand),
}

/// `dane-roll generate ...` (hidden).
#[derive(Debug, Subcommand)]
pub enum GenerateCommand {
    /// Write dane-roll.1 and one page per command (dane-roll-run.1, ...) into DIR.
    Man {
        /// The directory (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Print the bash completion script.
    CompleteBash,
    /// Print the zsh completion script.
    CompleteZsh,
    /// Print the fish completion script.
    CompleteFish,
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

    /// For `--format nsupdate`: the primary server to send the update to, `HOST[:PORT]`
    /// (default: the `rfc2136` provider of the configured service with this owner name, if any).
    #[arg(long, value_name = "HOST[:PORT]")]
    pub server: Option<String>,

    /// For `--format nsupdate`: the zone to update (default: the configured service's `zone`
    /// or its provider's, if any).
    #[arg(long, value_name = "ZONE")]
    pub zone: Option<String>,

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
    /// An nsupdate script: `server` and `zone` when known, `update add` lines, `send`.
    Nsupdate,
    /// JSON objects with the fields and where each record came from.
    Json,
}

/// `dane-roll config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print it resolved, with secrets masked.
    Check {
        /// Also check each service against the world, reading only: the zone is signed and
        /// validates through the resolver, the provider's credentials work and it serves the
        /// delegated zone, the owner names are inside the zone (no CNAME or wildcard surprises),
        /// and the TTL the provider will apply. Each problem is one line saying what to fix.
        #[arg(long)]
        online: bool,
    },
}
