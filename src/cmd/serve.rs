//! `dane-roll serve`: the Prometheus exporter ([`crate::monitor::exporter`]) for the configured
//! endpoints (and any extra targets), on a current-thread tokio runtime, until SIGTERM or SIGINT.

use anyhow::Context;

use crate::cli::{Cli, ServeArgs};
use crate::exit::Status;
use crate::monitor::exporter::{Exporter, ExporterError, shutdown_signal};
use crate::monitor::{Target, TargetMode};

use super::check::{MonitorFlags, build_monitor, configured_targets, load_config, seconds};

/// Run the command.
pub fn run(cli: &Cli, args: &ServeArgs) -> anyhow::Result<Status> {
    let interval = seconds(args.interval, "--interval")?;
    let deadline = seconds(args.timeout, "--timeout")?;
    let config = load_config(cli, args.targets.is_empty())?;
    let mut targets = configured_targets(config.as_ref());
    for text in &args.targets {
        let target = Target::parse(text, TargetMode::Auto, None)?;
        if !targets.contains(&target) {
            targets.push(target);
        }
    }
    let monitor = build_monitor(
        config.as_ref(),
        MonitorFlags {
            resolver: args.resolver.as_deref(),
            algorithms: &args.key_algorithms,
            concurrency: args.concurrency,
            deadline,
            helo: crate::probe::DEFAULT_HELO,
            records: Vec::new(),
            addresses: Vec::new(),
        },
    )?;
    let state_dir = config.as_ref().map(|c| c.state_dir.clone());
    let exporter = Exporter::new(monitor, targets, interval, state_dir);
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
