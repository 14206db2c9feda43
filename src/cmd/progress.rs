//! How a rollover shows its progress on the command line (the driver's [`Reporter`]): on a
//! terminal, a progress bar with an ETA while it waits (indicatif) and log lines above it;
//! otherwise (cron, systemd, a pipe) one plain line per step and one line when a wait begins,
//! so a log reads as the history of the rollover.
//!
//! Lines go to standard output; alerts go through `tracing` to standard error.

use std::cell::Cell;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::rollover::reporter::{Countdown, eta_text};
use crate::rollover::{Reporter, Timestamp};

/// Where progress goes.
#[derive(Debug)]
pub(super) struct Progress {
    terminal: bool,
    quiet: bool,
    bar: Option<ProgressBar>,
    /// The wait shown: its start and its known deadline (the ETA counts down to it).
    countdown: Cell<Option<Countdown>>,
    /// The deadline the last plain line announced (`Some(None)`: a wait without one).
    announced: Option<Option<Timestamp>>,
}

impl Progress {
    /// Progress for this process: a bar when standard error is a terminal, lines otherwise;
    /// nothing but waits' start when `quiet`.
    pub(super) fn new(quiet: bool) -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            quiet,
            bar: None,
            countdown: Cell::new(None),
            announced: None,
        }
    }

    /// Show the countdown at `now` on the bar: position, length, and the time left until the
    /// deadline; while no deadline is known, the time waited so far and no ETA.
    fn show(&self, now: Timestamp) {
        let (Some(bar), Some(c)) = (&self.bar, self.countdown.get()) else {
            return;
        };
        match (c.progress(now), c.left(now)) {
            (Some((done, total)), Some(left)) => {
                bar.set_style(style(
                    "{spinner} {msg} [{bar:30}] {pos}/{len} s, ETA {prefix}",
                ));
                bar.set_length(total);
                bar.set_position(done);
                bar.set_prefix(eta_text(left));
            }
            _ => bar.set_style(style("{spinner} {msg} ({elapsed})")),
        }
    }
}

/// A bar style from `template` (the ETA is ours, in the prefix: indicatif's `{eta}` estimates
/// from the rate of progress and starts again at every wake).
fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
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

    /// A bar on a terminal, counting down to the known deadline; one line otherwise, when the
    /// deadline is new.
    fn wait(&mut self, label: &str, deadline: Option<Timestamp>, now: Timestamp) {
        let countdown = Countdown::resume(self.countdown.get(), deadline, now);
        self.countdown.set(Some(countdown));
        if self.terminal && !self.quiet {
            let bar = self.bar.get_or_insert_with(|| {
                let bar = ProgressBar::new(1);
                bar.enable_steady_tick(Duration::from_millis(200));
                bar
            });
            bar.set_message(label.to_owned());
            self.show(now);
        } else if self.announced != Some(deadline) {
            match countdown.deadline {
                Some(until) => self.line(&format!(
                    "{label}: waiting until {until} ({})",
                    eta_text(now.until(until))
                )),
                None => self.line(&format!("{label}: waiting")),
            }
            self.announced = Some(deadline);
        }
    }

    fn tick(&self, now: Timestamp) {
        self.show(now);
    }

    fn end_wait(&mut self) {
        self.announced = None;
        self.countdown.set(None);
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
