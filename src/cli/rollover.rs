//! The arguments of the commands that drive rollovers: naming a service, `publish`, the hooks,
//! `rotate`, `deploy`, `run`, `status`, `plan`, `next-key`, `prune`, `abort`.

use std::path::PathBuf;

use clap::{Args, Subcommand};

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
    /// The name given either way, if any ([`super::Cli::settle`] has checked that both agree).
    pub fn get(&self) -> Option<&str> {
        self.flag.as_deref().or(self.positional.as_deref())
    }

    /// The name of a command that needs one ([`super::Cli::settle`] has checked that there is one).
    pub fn name(&self) -> &str {
        self.get().unwrap_or_default()
    }

    pub(super) fn settle(&self, command: &str, required: bool) -> Result<(), String> {
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

    /// The service named either way (filled by [`super::Cli::settle`]).
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
