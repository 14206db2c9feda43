//! `dane-roll serve`: the Prometheus exporter ([`crate::monitor::exporter`]) for the configured
//! endpoints (and any extra targets), on a current-thread tokio runtime, until SIGTERM or SIGINT.
//! A --listen address other than loopback is refused unless --allow-remote, and that needs a
//! bearer token (--token-file or --token-env), read once at start and never shown.

use anyhow::{Context, bail};

use crate::cli::{Cli, ServeArgs};
use crate::config::{Secret, SecretStatus};
use crate::exit::Status;
use crate::monitor::exporter::{
    BearerToken, Exporter, ExporterError, ServeLimits, shutdown_signal,
};
use crate::monitor::{Target, TargetMode, targets_file};
use tokio::signal::unix::{SignalKind, signal};

use super::check::{MonitorFlags, build_monitor, configured_targets, load_config, seconds};

/// Run the command.
pub(super) fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<Status> {
    let interval = seconds(args.interval, "--interval")?;
    let deadline = seconds(args.timeout, "--timeout")?;
    let header_timeout = seconds(args.header_timeout, "--header-timeout")?;
    let token = bearer_token(args)?;
    if !args.listen.ip().is_loopback() {
        if !args.allow_remote {
            bail!(
                "--listen {}: not a loopback address, so anyone who can reach this host could \
                 scrape and probe through it; listen on 127.0.0.1 (or ::1), or give \
                 --allow-remote with a bearer token (--token-file PATH or --token-env VAR)",
                args.listen
            );
        }
        if token.is_none() {
            bail!(
                "--allow-remote needs a bearer token: give --token-file PATH or --token-env VAR \
                 (clients then send Authorization: Bearer <token>)"
            );
        }
    }
    let limits = ServeLimits {
        max_connections: args.max_connections,
        header_timeout,
        max_probes: args.max_probes,
        allow_private_targets: args.allow_private_targets,
        token,
    };
    let config = load_config(cli, args.targets.is_empty() && args.targets_file.is_none())?;
    let mut targets = configured_targets(config.as_ref());
    for text in &args.targets {
        let target = Target::parse(text, TargetMode::Auto, None)?;
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    // The configured and command-line targets stay; the file's come and go with SIGHUP.
    let base = targets.clone();
    if let Some(path) = &args.targets_file {
        targets = targets_file::merged(&base, targets_file::read(path)?);
    }
    let monitor = build_monitor(
        config.as_ref(),
        MonitorFlags::new(
            args.resolver.as_deref(),
            &args.key_algorithms,
            args.concurrency,
            deadline,
            args.webpki_ca_file.as_deref(),
        ),
    )?;
    let state_dir = config.as_ref().map(|c| c.state_dir.clone());
    let exporter = Exporter::new(monitor, targets, interval, state_dir, limits);
    if args.tlsrpt {
        let Some(config) = config else {
            bail!("--tlsrpt needs the configuration (its state directory and services)");
        };
        let notifier = if config.alerts.channels.is_empty() {
            None
        } else {
            Some(crate::notify::Notifier::new(&config.alerts)?)
        };
        exporter.accept_tlsrpt(crate::tlsrpt::http::Intake::new(config, notifier));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|source| ExporterError::Bind {
                addr: args.listen,
                source,
            })?;
        let shutdown = shutdown_signal()?;
        if let Some(path) = &args.targets_file {
            // Installed before "listening" is said, so that no SIGHUP can end the process.
            let hangup = signal(SignalKind::hangup()).map_err(ExporterError::Signal)?;
            tokio::spawn(targets_file::reload_on_hangup(
                std::sync::Arc::clone(&exporter),
                base,
                path.clone(),
                hangup,
            ));
        }
        crate::output::error_line(&format!(
            "dane-roll serve: listening on http://{}/metrics",
            listener.local_addr().unwrap_or(args.listen)
        ));
        exporter.serve(listener, shutdown).await?;
        crate::output::error_line("dane-roll serve: stopped");
        Ok::<_, anyhow::Error>(())
    })?;
    Ok(Status::Ok)
}

/// The bearer token of --token-file or --token-env, read now; a file others can read is
/// warned about.
fn bearer_token(args: &ServeArgs) -> anyhow::Result<Option<BearerToken>> {
    let secret = match (&args.token_file, &args.token_env) {
        (Some(path), _) => Secret::from_file(path),
        (None, Some(name)) => Secret::from_env(name),
        (None, None) => return Ok(None),
    };
    if let SecretStatus::Readable {
        world_readable: true,
    } = secret.status()
    {
        eprintln!(
            "dane-roll serve: warning: the token file can be read by every user; chmod 600 it"
        );
    }
    let value = secret
        .read()
        .context("cannot read the bearer token; fix --token-file or --token-env")?;
    Ok(Some(BearerToken::new(value.expose())))
}
