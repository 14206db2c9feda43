//! `dane-roll tlsrpt ingest [--maildir DIR]`: TLS reports into the store, from standard input
//! (an alias pipe hands over the whole mail; a bare JSON or gzip report works too) or from every
//! new message of a Maildir. Each report is stored once; a new report with DANE failures
//! alerts once per sending organisation and day ([`crate::tlsrpt::intake`]). Input that is not
//! a report exits 2 naming it, and stores nothing; a report from standard input that the store
//! cannot take now exits 75 (`EX_TEMPFAIL`), so that an alias pipe's mail is delivered again.

use anyhow::Context;

use crate::cli::{Cli, IngestArgs};
use crate::config::Config;
use crate::exit::Status;
use crate::notify::Notifier;
use crate::output::{error_line, line};
use crate::rollover::{Clock, SystemClock};
use crate::store::Store;
use crate::tlsrpt::intake::{Taken, deliver, take};
use crate::tlsrpt::maildir::{self, Handled};
use crate::tlsrpt::{parse_report, read_bounded};

/// Run `tlsrpt ingest`.
pub(super) fn ingest(cli: &Cli, args: &IngestArgs) -> anyhow::Result<Status> {
    let config = Config::load_with_state_dir(&cli.config, cli.state_dir.as_deref())?;
    match &args.maildir {
        None => {
            let input = "standard input";
            let bytes = read_bounded(std::io::stdin().lock(), input)?;
            let report = parse_report(&bytes, input)?;
            // The report is good but cannot be kept now: exit 75 (EX_TEMPFAIL), so that the
            // mail system keeps the mail and delivers it again, instead of bouncing it.
            let kept = Store::open(&config.state_dir).and_then(|mut store| {
                take(&mut store, &config, &report, "stdin", SystemClock.now())
                    .map(|taken| (store, taken))
            });
            let (mut store, taken) = match kept {
                Ok(kept) => kept,
                Err(e) => {
                    error_line(&format!(
                        "dane-roll: error: {e}; the report of {} was not stored (exit 75: a mail \
                         system delivers it again later)",
                        report.organization
                    ));
                    return Ok(Status::TryLater);
                }
            };
            say(&taken);
            alert(&config, &mut store, &taken)?;
            Ok(Status::Ok)
        }
        Some(dir) => {
            let waiting = maildir::waiting(dir)?;
            let mut store = Store::open(&config.state_dir)?;
            let (mut stored, mut before, mut bad) = (0usize, 0usize, 0usize);
            for path in waiting {
                let input = path.display().to_string();
                let parsed = std::fs::File::open(&path)
                    .map_err(|source| crate::tlsrpt::ReportError::Read {
                        input: input.clone(),
                        source,
                    })
                    .and_then(|f| read_bounded(f, &input))
                    .and_then(|bytes| parse_report(&bytes, &input));
                let report = match parsed {
                    Ok(r) => r,
                    Err(e) => {
                        error_line(&format!("dane-roll: error: {e} (flagged in cur/)"));
                        maildir::mark(dir, &path, Handled::Flagged)?;
                        bad += 1;
                        continue;
                    }
                };
                let source = format!("maildir {input}");
                let taken = take(&mut store, &config, &report, &source, SystemClock.now())
                    .with_context(|| format!("{input}: the report was not stored"))?;
                maildir::mark(dir, &path, Handled::Seen)?;
                if taken.stored {
                    stored += 1;
                } else {
                    before += 1;
                }
                say(&taken);
                alert(&config, &mut store, &taken)?;
            }
            line(&format!(
                "{}: {stored} stored, {before} stored before, {bad} not a report",
                dir.display()
            ));
            Ok(if bad > 0 { Status::Failure } else { Status::Ok })
        }
    }
}

fn say(taken: &Taken) {
    if taken.stored {
        line(&format!(
            "stored report {} of {} ({} failed session(s))",
            taken.report_id, taken.organization, taken.failed
        ));
    } else {
        line(&format!(
            "report {} of {} was stored before: nothing changed",
            taken.report_id, taken.organization
        ));
    }
}

/// Print each alert, and send it through the configured channels once per sender and day.
fn alert(config: &Config, store: &mut Store, taken: &Taken) -> anyhow::Result<()> {
    if taken.alerts.is_empty() {
        return Ok(());
    }
    for a in &taken.alerts {
        tracing::error!(target: crate::output::ALERT, "{}", a.summary);
    }
    if config.alerts.channels.is_empty() {
        return Ok(());
    }
    let notifier = Notifier::new(&config.alerts)?;
    for problem in deliver(&notifier, store, &taken.alerts) {
        tracing::warn!("{problem}");
    }
    Ok(())
}
