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

    /// How many handshakes to run at once.
    #[arg(long, value_name = "N", default_value_t = crate::monitor::DEFAULT_CONCURRENCY)]
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

    /// How many handshakes to run at once.
    #[arg(long, value_name = "N", default_value_t = crate::monitor::DEFAULT_CONCURRENCY)]
    pub concurrency: usize,

    /// Extra targets beside the configured endpoints (mail domains or `host[:port]`).
    #[arg(value_name = "TARGET")]
    pub targets: Vec<String>,
}

/// A service, named the same way by every command that takes one: as the first argument
/// (`dane-roll status mx`) or with `--service NAME`; both are accepted when they agree.
#[derive(Debug, Clone, Default, Args)]
pub struct ServiceName {
    /// The service (or --service NAME).
    #[arg(value_name = "SERVICE")]
    pub positional: Option<String>,

    /// The service (or as the first argument).
    #[arg(long = "service", value_name = "NAME")]
    pub flag: Option<String>,
}

impl ServiceName {
    /// The name given either way, if any ([`Cli::settle`] has checked that both agree).
    pub fn get(&self) -> Option<&str> {
        self.flag.as_deref().or(self.positional.as_deref())
    }

    /// The name of a command that needs one ([`Cli::settle`] has checked that there is one).
    pub fn name(&self) -> &str {
        self.get().unwrap_or_default()
    }

    fn settle(&self, command: &str, required: bool) -> Result<(), String> {
        match (&self.positional, &self.flag) {
            (Some(a), Some(b)) if a != b => Err(format!(
                "two services named: `{a}` and `--service {b}`; name one (`dane-roll {command} \
                 NAME` and `--service NAME` are the same)"
            )),
            (None, None) if required => Err(format!(
                "name the service: `dane-roll {command} NAME` or `dane-roll {command} --service NAME`"
            )),
            _ => Ok(()),
        }
    }
}

/// `dane-roll publish`: add records now. Exit 0 when every record is there, 2 otherwise.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// The service (or as the first argument, before the files).
    #[arg(long = "service", value_name = "NAME")]
    pub service_flag: Option<String>,

    /// The service named either way (filled by [`Cli::settle`]).
    #[arg(skip)]
    pub service: String,

    /// Seconds allowed for each request to the provider.
    #[arg(long, value_name = "SECS", default_value_t = 15.0)]
    pub timeout: f64,

    /// The service unless --service names it (its endpoints give the owner names, its provider
    /// the way to DNS), then certificates, chains, private keys or public keys, PEM or DER.
    #[arg(required = true, value_name = "[SERVICE] FILE")]
    pub files: Vec<PathBuf>,
}

/// `dane-roll hook CLIENT`.
#[derive(Debug, Args)]
pub struct HookArgs {
    /// The ACME client running the hook.
    #[command(subcommand)]
    pub client: HookClient,
}

/// The ACME clients `dane-roll hook` understands.
#[derive(Debug, Subcommand)]
pub enum HookClient {
    /// certbot's deploy hook: reads RENEWED_LINEAGE and RENEWED_DOMAINS.
    /// `certbot renew --deploy-hook "dane-roll hook certbot"`.
    Certbot(HookOptions),
    /// acme.sh's reloadcmd: reads CERT_KEY_PATH, CERT_FULLCHAIN_PATH, Le_Domain and the
    /// pre-generated `<key>.next`. `acme.sh --install-cert -d DOMAIN --reloadcmd "dane-roll hook
    /// acme.sh"`.
    #[command(name = "acme.sh")]
    AcmeSh(HookOptions),
    /// dehydrated's hook: acts on `deploy_cert DOMAIN KEYFILE CERTFILE FULLCHAINFILE CHAINFILE
    /// TIMESTAMP` (and publishes privkey.roll.pem), ignores every other event.
    Dehydrated(DehydratedArgs),
}

/// Options every hook takes.
#[derive(Debug, Clone, Args)]
pub struct HookOptions {
    /// Block until the rollover is done instead of leaving it to `dane-roll run`.
    #[arg(long)]
    pub wait: bool,

    /// With --wait: stop waiting after this long (`90s`, `10m`, `1h`; default 30m, so the ACME
    /// client is never held unbounded). The state is saved: `dane-roll run` finishes the
    /// rollover. Exit 3 when the time ran out.
    #[arg(long, value_name = "DURATION", value_parser = wait_timeout, requires = "wait")]
    pub timeout: Option<std::time::Duration>,

    /// Skip the 2×TTL wait (never the check that every nameserver serves the record), loudly.
    #[arg(long)]
    pub force: bool,

    /// The service, when neither its `lineage` nor its `domains` find it.
    #[arg(long, value_name = "NAME")]
    pub service: Option<String>,
}

/// `dane-roll hook dehydrated`: the options, then dehydrated's arguments as it passes them.
#[derive(Debug, Args)]
pub struct DehydratedArgs {
    #[command(flatten)]
    pub options: HookOptions,

    /// The event and its arguments, e.g. `deploy_cert DOMAIN KEYFILE CERTFILE FULLCHAINFILE
    /// CHAINFILE TIMESTAMP`.
    #[arg(
        value_name = "EVENT",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_parser = clap::value_parser!(std::ffi::OsString)
    )]
    pub args: Vec<std::ffi::OsString>,
}

/// `dane-roll rotate SERVICE`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The service (it needs a certbot `lineage`).
    #[command(flatten)]
    pub service: ServiceName,

    /// The key slot whose next key to use, when the service has several.
    #[arg(long, value_name = "SLOT")]
    pub slot: Option<String>,

    /// The certbot program.
    #[arg(long, value_name = "PATH", default_value = "certbot")]
    pub certbot: PathBuf,

    /// An argument for `certbot renew` (repeat), e.g. `--certbot-arg=--config-dir=/srv/le`;
    /// `--config-dir` also says where the lineage is.
    #[arg(long = "certbot-arg", value_name = "ARG", allow_hyphen_values = true)]
    pub certbot_args: Vec<String>,

    /// When certbot has no dane-roll deploy hook stored for the lineage, block until the
    /// rollover is done (the hook's own --wait applies otherwise).
    #[arg(long)]
    pub wait: bool,
}

/// `dane-roll deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The configured service the certificate is for.
    #[command(flatten)]
    pub service: ServiceName,

    /// The certificate: the leaf, or the full chain (leaf first).
    #[arg(long, value_name = "FILE")]
    pub cert: PathBuf,

    /// The certificate's private key (unencrypted).
    #[arg(long, value_name = "FILE")]
    pub key: PathBuf,

    /// The intermediates, when --cert holds only the leaf.
    #[arg(long, value_name = "FILE")]
    pub chain: Option<PathBuf>,

    /// A next key the ACME client will use at its next key change: published now.
    #[arg(long, value_name = "FILE")]
    pub next_key: Option<PathBuf>,

    #[command(flatten)]
    pub drive: DriveArgs,
}

/// How `deploy` and `run` drive rollovers: `--wait`, `--timeout`, `--force`, `--lock-wait`. The
/// help speaks of `deploy`'s one rollover; `run` words it for every pending one.
#[derive(Debug, Args)]
pub struct DriveArgs {
    /// Block until the rollover is done (progress bar on a terminal).
    #[arg(long)]
    pub wait: bool,

    /// With --wait: stop waiting after this long (`90s`, `10m`, `1h`). The state is saved and
    /// `dane-roll run` resumes the rollover. Exit 3 when the time ran out.
    #[arg(long, value_name = "DURATION", value_parser = wait_timeout, requires = "wait")]
    pub timeout: Option<std::time::Duration>,

    /// Skip the 2×TTL wait (never the "served everywhere and validated" check). Loud.
    #[arg(long)]
    pub force: bool,

    /// Seconds to wait for another dane-roll process working on the service.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub lock_wait: f64,
}

impl DriveArgs {
    /// What the driver is asked: wait or not, how long, and whether to skip the 2×TTL wait.
    pub fn deploy_options(&self) -> crate::rollover::DeployOptions {
        crate::rollover::DeployOptions {
            wait: self.wait,
            force: self.force,
            timeout: self.timeout,
        }
    }
}

/// `dane-roll run`.
#[derive(Debug, Args)]
#[command(
    mut_arg("wait", |a| a.help(
        "Block until every pending rollover is done (progress bar on a terminal)"
    )),
    mut_arg("timeout", |a| a.help(
        "With --wait: stop waiting after this long (`90s`, `10m`, `1h`). The state is saved and \
         the next `dane-roll run` resumes. Exit 3 when the time ran out"
    )),
    mut_arg("lock_wait", |a| a.help(
        "Seconds to wait for another dane-roll process working on a service"
    ))
)]
pub struct RunArgs {
    /// Only this service.
    #[command(flatten)]
    pub service: ServiceName,

    #[command(flatten)]
    pub drive: DriveArgs,

    /// Do not wait for this nameserver (an NS name, e.g. one down for hours): the gate needs
    /// every other one. Loud, and recorded in each rollover's history. Repeatable.
    #[arg(long = "skip-nameserver", value_name = "NAME")]
    pub skip_nameserver: Vec<String>,
}

/// `dane-roll status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Only this service.
    #[command(flatten)]
    pub service: ServiceName,

    /// One JSON document.
    #[arg(long)]
    pub json: bool,

    /// The event history too.
    #[arg(long)]
    pub history: bool,

    /// Ask every authoritative server and probe every endpoint address (slower).
    #[arg(long)]
    pub live: bool,
}

/// `dane-roll plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Only this service.
    #[command(flatten)]
    pub service: ServiceName,

    /// One JSON document.
    #[arg(long)]
    pub json: bool,
}

/// `dane-roll next-key`.
#[derive(Debug, Args)]
pub struct NextKeyArgs {
    /// Only this service (default: every service).
    #[command(flatten)]
    pub service: ServiceName,
}

/// `dane-roll prune`.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// The service.
    #[command(flatten)]
    pub service: ServiceName,

    /// Also remove records at the service's owner names that dane-roll never published, when
    /// they are `3 1 1` records matching no key of the store and no key served on any address.
    #[arg(long)]
    pub foreign: bool,

    /// Say what would be removed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `dane-roll abort SERVICE`.
#[derive(Debug, Args)]
pub struct AbortArgs {
    /// The service.
    #[command(flatten)]
    pub service: ServiceName,

    /// Only this key slot (`ec`, `rsa`, `ed`), when the service has several under way.
    #[arg(long, value_name = "SLOT")]
    pub slot: Option<String>,

    /// Stop waiting for the abort to finish after this long; the state is saved and
    /// `dane-roll run` finishes it. Exit 3 when the time ran out.
    #[arg(long, value_name = "DURATION", value_parser = wait_timeout, default_value = "2m")]
    pub timeout: std::time::Duration,

    /// Seconds to wait for another dane-roll process working on the service.
    #[arg(long, value_name = "SECS", default_value_t = 60.0)]
    pub lock_wait: f64,
}

/// `dane-roll init`: discovery, the configuration, and the switch of Postfix's files.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// Print the configuration on standard output instead of writing it to `--config`.
    #[arg(long, conflicts_with_all = ["apply", "undo"])]
    pub print: bool,

    /// Switch Postfix to the service's `chain-file`: copy the live key and chain there, back up
    /// main.cf, set `smtpd_tls_chain_files`, reload, probe; undone when the probe fails.
    #[arg(long, conflicts_with = "undo")]
    pub apply: bool,

    /// Restore main.cf from the backup `--apply` made, and reload Postfix.
    #[arg(long)]
    pub undo: bool,

    /// The name of the service to write (and to switch with --apply).
    #[arg(long, value_name = "NAME", default_value = "mx")]
    pub service: String,

    /// A mail domain whose MX hosts to look up (repeat); default: Postfix's `mydomain`.
    #[arg(long = "domain", value_name = "DOMAIN")]
    pub domains: Vec<String>,

    /// The validating resolver to ask, also written to `[resolver] address`; default: the
    /// system's first nameserver (not written).
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub resolver: Option<String>,

    /// The secret file of the guessed provider (TSIG key file for RFC 2136, token file for
    /// Cloudflare or deSEC); without it the configuration uses the `manual` provider and shows
    /// the guessed one commented out.
    #[arg(long, value_name = "FILE")]
    pub provider_secret_file: Option<PathBuf>,

    /// The `postconf` program.
    #[arg(
        long,
        value_name = "PATH",
        env = "DANE_ROLL_POSTCONF",
        default_value = "postconf"
    )]
    pub postconf: PathBuf,

    /// Postfix's configuration directory (`postconf -c DIR`); default: Postfix's own.
    #[arg(long, value_name = "DIR", env = "DANE_ROLL_POSTFIX_DIR")]
    pub postfix_dir: Option<PathBuf>,

    /// The `doveconf` program (Dovecot is looked at only when it runs).
    #[arg(
        long,
        value_name = "PATH",
        env = "DANE_ROLL_DOVECONF",
        default_value = "doveconf"
    )]
    pub doveconf: PathBuf,

    /// Dovecot's configuration file (`doveconf -c FILE`); default: Dovecot's own.
    #[arg(long, value_name = "FILE", env = "DANE_ROLL_DOVECOT_CONFIG")]
    pub dovecot_config: Option<PathBuf>,

    /// certbot's configuration directory (its `renewal/` and `live/`).
    #[arg(
        long,
        value_name = "DIR",
        env = "DANE_ROLL_LETSENCRYPT_DIR",
        default_value = "/etc/letsencrypt"
    )]
    pub letsencrypt_dir: PathBuf,

    /// acme.sh's home (one directory per certificate); default: `$HOME/.acme.sh`, then
    /// `/root/.acme.sh`.
    #[arg(long, value_name = "DIR", env = "DANE_ROLL_ACME_SH_HOME")]
    pub acme_sh_home: Option<PathBuf>,

    /// dehydrated's base directory (its `certs/`); default: `/etc/dehydrated`, then
    /// `/var/lib/dehydrated`.
    #[arg(long, value_name = "DIR", env = "DANE_ROLL_DEHYDRATED_DIR")]
    pub dehydrated_dir: Option<PathBuf>,
}

/// A `--timeout` of a wait: a duration (`90s`, `10m`, `1h30m`) or whole seconds, more than 0.
fn wait_timeout(text: &str) -> Result<std::time::Duration, String> {
    let d = match text.trim().parse::<u64>() {
        Ok(secs) => std::time::Duration::from_secs(secs),
        Err(_) => crate::config::parse_duration(text)?,
    };
    if d.is_zero() {
        return Err("must be more than 0 (\"90s\", \"10m\", \"1h\")".to_owned());
    }
    Ok(d)
}
