//! The arguments of `dane-roll init`.

use std::path::PathBuf;

use clap::Args;

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

    /// dehydrated's configuration file, where `--apply` registers the hook (in its `CONFIG_D`).
    #[arg(
        long,
        value_name = "FILE",
        env = "DANE_ROLL_DEHYDRATED_CONFIG",
        default_value = "/etc/dehydrated/config"
    )]
    pub dehydrated_config: PathBuf,

    /// The dehydrated hook shim `--apply` registers (the package installs it here).
    #[arg(
        long,
        value_name = "FILE",
        env = "DANE_ROLL_DEHYDRATED_HOOK",
        default_value = "/usr/lib/dane-roll/dane-roll-dehydrated-hook"
    )]
    pub dehydrated_hook: PathBuf,
}
