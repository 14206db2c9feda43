//! `dane-roll reports [--days N] [--json]`: what senders saw. The stored TLS reports counted
//! per day, sending organisation, result type and rollover, and each failure tied to the
//! journal ([`crate::tlsrpt::summary`]). Reads the store only.

use crate::cli::{Cli, ReportsArgs};
use crate::config::Config;
use crate::exit::Status;
use crate::output::line;
use crate::rollover::{Clock, SystemClock};
use crate::store::Store;
use crate::tlsrpt::journal::Journal;
use crate::tlsrpt::summary::{Counts, overview};

/// Run the command.
pub(super) fn run(cli: &Cli, args: &ReportsArgs) -> anyhow::Result<Status> {
    let config = Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref())?;
    let (journal, stored) = if config.state_dir.join(crate::store::DB_FILE).exists() {
        let store = Store::open(&config.state_dir)?;
        let since = args.days.map(|d| {
            SystemClock
                .now()
                .as_millis()
                .saturating_sub(i64::from(d) * 86_400_000)
        });
        let since = since.map(crate::rollover::Timestamp::from_millis);
        (Journal::load(&config, &store)?, store.tls_reports(since)?)
    } else {
        (Journal::default(), Vec::new())
    };
    let view = overview(&journal, &stored);
    if args.json {
        // JSON escapes every control character itself.
        println!("{}", serde_json::to_string_pretty(&view)?);
        return Ok(Status::Ok);
    }
    if view.reports == 0 && view.unreadable.is_empty() {
        line("no TLS reports stored (see `dane-roll tlsrpt ingest`)");
        return Ok(Status::Ok);
    }
    let counts = |c: &Counts| format!("successful {:>7}  failed {:>5}", c.successful, c.failed);
    line(&format!("TLS reports: {}", view.reports));
    line("per day:");
    for (day, c) in &view.by_day {
        line(&format!("  {day}  {}", counts(c)));
    }
    line("per sending organisation:");
    for (org, c) in &view.by_organization {
        line(&format!("  {org}  {}", counts(c)));
    }
    line("per result:");
    for (result, n) in &view.by_result {
        line(&format!("  {result}  {n}"));
    }
    line("per rollover:");
    for (rollover, c) in &view.by_rollover {
        line(&format!("  {rollover}  {}", counts(c)));
    }
    if !view.failures.is_empty() {
        line("failures:");
    }
    for f in &view.failures {
        let mx = f
            .receiving_mx
            .as_deref()
            .map(|m| format!(", mx {m}"))
            .unwrap_or_default();
        line(&format!(
            "  {} {} {} {} session(s) ({} policy {}{mx}): {}",
            f.day,
            f.organization,
            f.result,
            f.sessions,
            f.policy_type,
            f.policy_domain,
            f.tie.explanation
        ));
    }
    for u in &view.unreadable {
        line(&format!("  unreadable: {u}"));
    }
    Ok(Status::Ok)
}
