//! How a rollover shows its progress on the command line (the driver's [`Reporter`]): on a
//! terminal, a progress bar with an ETA while it waits (indicatif) and log lines above it;
//! otherwise (cron, systemd, a pipe) one plain line per step and one line when a wait begins,
//! so a log reads as the history of the rollover.
//!
//! Lines go to standard output; alerts go through `tracing` to standard error.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::rollover::{Reporter, Timestamp};

/// Where progress goes.
#[derive(Debug)]
pub(super) struct Progress {
    terminal: bool,
    quiet: bool,
    bar: Option<ProgressBar>,
    announced: bool,
}

impl Progress {
    /// Progress for this process: a bar when standard error is a terminal, lines otherwise;
    /// nothing but waits' start when `quiet`.
    pub(super) fn new(quiet: bool) -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            quiet,
            bar: None,
            announced: false,
        }
    }
}

impl Reporter for Progress {
    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        // Lines may quote input (an error a server sent): escaped, one line each, and a closed
        // output does not stop the rollover.
        let text = crate::output::escape(text);
        match &self.bar {
            Some(bar) => bar.println(text),
            None => crate::output::line(&text),
        }
    }

    /// A bar on a terminal, one line otherwise (only when the wait is new).
    fn wait(&mut self, label: &str, start: Timestamp, until: Timestamp, now: Timestamp) {
        let total = start.until(until).as_secs().max(1);
        let done = start.until(now).as_secs().min(total);
        if self.terminal && !self.quiet {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = ProgressBar::new(total);
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {msg} [{bar:30}] {pos}/{len} s, ETA {eta}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
                );
                bar.enable_steady_tick(Duration::from_millis(200));
                bar
            });
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(label.to_owned());
        } else if !self.announced {
            self.line(&format!(
                "{label}: waiting until {until} ({} s)",
                now.until(until).as_secs()
            ));
            self.announced = true;
        }
    }

    fn tick(&self, start: Timestamp, now: Timestamp) {
        if let Some(bar) = &self.bar {
            bar.set_position(start.until(now).as_secs());
        }
    }

    fn end_wait(&mut self) {
        self.announced = false;
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.end_wait();
    }
}
