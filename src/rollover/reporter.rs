//! What the rollover driver tells the operator as it goes: a line per step and the start, the
//! course and the end of a wait. The library only says it, through a [`Reporter`]; how it is
//! shown (a progress bar on a terminal, plain lines in a log) belongs to the command line
//! (`cmd::progress`). A driver without one says nothing ([`Silent`]); its events are in the
//! store either way, and alerts go through `tracing`.

use super::Timestamp;

/// Where the driver's progress goes. Every method does nothing unless implemented.
pub trait Reporter {
    /// One line: a step taken, an action about to be performed (may quote input: the
    /// implementation escapes it).
    fn line(&self, text: &str) {
        let _ = text;
    }

    /// A wait from `start` until `until` begins (or goes on), at `now`.
    fn wait(&mut self, label: &str, start: Timestamp, until: Timestamp, now: Timestamp) {
        let _ = (label, start, until, now);
    }

    /// The time moved on to `now` during a wait that began at `start`.
    fn tick(&self, start: Timestamp, now: Timestamp) {
        let _ = (start, now);
    }

    /// The wait is over.
    fn end_wait(&mut self) {}
}

/// Says nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Reporter for Silent {}
