//! What the rollover driver tells the operator as it goes: a line per step and the start, the
//! course and the end of a wait. The library only says it, through a [`Reporter`]; how it is
//! shown (a progress bar on a terminal, plain lines in a log) belongs to the command line
//! (`cmd::progress`). A driver without one says nothing ([`Silent`]); its events are in the
//! store either way, and alerts go through `tracing`.

use std::time::Duration;

use super::Timestamp;

/// Where the driver's progress goes. Every method does nothing unless implemented.
pub trait Reporter {
    /// One line: a step taken, an action about to be performed (may quote input: the
    /// implementation escapes it).
    fn line(&self, text: &str) {
        let _ = text;
    }

    /// A wait begins (or goes on) at `now`: until `deadline` when the rollover knows it (the end
    /// of the 2×TTL wait once every nameserver serves the records), else until the next look.
    fn wait(&mut self, label: &str, deadline: Option<Timestamp>, now: Timestamp) {
        let _ = (label, deadline, now);
    }

    /// The time moved on to `now` during a wait.
    fn tick(&self, now: Timestamp) {
        let _ = now;
    }

    /// The wait is over.
    fn end_wait(&mut self) {}
}

/// Says nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Reporter for Silent {}

/// The course of a wait as shown: since when, and toward which deadline. A wait that goes on
/// toward the same deadline keeps its start, so the bar goes on and the time left counts down;
/// only a new deadline (or the first one becoming known) starts it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Countdown {
    /// When the wait toward this deadline began.
    pub start: Timestamp,
    /// The known deadline; `None` while the rollover waits for something without one (the
    /// nameservers to serve the records).
    pub deadline: Option<Timestamp>,
}

impl Countdown {
    /// The countdown once a wait (re)begins at `now` toward `deadline`, after `previous`.
    pub fn resume(
        previous: Option<Countdown>,
        deadline: Option<Timestamp>,
        now: Timestamp,
    ) -> Countdown {
        match previous {
            Some(p) if p.deadline == deadline => p,
            _ => Countdown {
                start: now,
                deadline,
            },
        }
    }

    /// The time left until the deadline at `now` (zero once it passed); `None` without one.
    pub fn left(&self, now: Timestamp) -> Option<Duration> {
        self.deadline.map(|d| now.until(d))
    }

    /// Seconds done and seconds in all at `now`, for a bar; `None` without a deadline.
    pub fn progress(&self, now: Timestamp) -> Option<(u64, u64)> {
        let deadline = self.deadline?;
        let total = self.start.until(deadline).as_secs().max(1);
        Some((self.start.until(now).as_secs().min(total), total))
    }
}

/// A time left as people read it: `45 s`, `2 min 05 s`, `1 h 02 min`.
pub fn eta_text(left: Duration) -> String {
    let s = left.as_secs() + u64::from(left.subsec_nanos() > 0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(secs: i64) -> Timestamp {
        Timestamp::from_millis(secs * 1000)
    }

    #[test]
    fn the_countdown_keeps_its_deadline_across_polls() {
        // Waiting for the nameservers: no deadline, no ETA.
        let waiting = Countdown::resume(None, None, t(100));
        assert_eq!(waiting.left(t(101)), None);
        assert_eq!(waiting.progress(t(101)), None);
        // Served everywhere at 110: the 2×TTL wait ends at 170.
        let c = Countdown::resume(Some(waiting), Some(t(170)), t(110));
        assert_eq!(c.start, t(110));
        assert_eq!(c.left(t(110)), Some(Duration::from_secs(60)));
        // Each later wake toward the same deadline counts down from where it was, the bar
        // going on: the time left is the deadline's, never a fresh estimate.
        let mut shown = Vec::new();
        let mut cur = c;
        for now in [120, 135, 150, 169] {
            cur = Countdown::resume(Some(cur), Some(t(170)), t(now));
            shown.push((
                cur.left(t(now)).unwrap().as_secs(),
                cur.progress(t(now)).unwrap(),
            ));
        }
        assert_eq!(
            shown,
            vec![
                (50, (10, 60)),
                (35, (25, 60)),
                (20, (40, 60)),
                (1, (59, 60))
            ]
        );
        // Past the deadline: zero left, the bar full.
        assert_eq!(cur.left(t(175)), Some(Duration::ZERO));
        assert_eq!(cur.progress(t(175)), Some((60, 60)));
        // A new deadline (the TTL seen grew) starts a new countdown.
        let moved = Countdown::resume(Some(cur), Some(t(400)), t(171));
        assert_eq!(moved.start, t(171));
        assert_eq!(moved.left(t(171)), Some(Duration::from_secs(229)));
    }

    #[test]
    fn eta_reads_as_minutes_and_seconds() {
        assert_eq!(eta_text(Duration::from_secs(45)), "45 s");
        assert_eq!(eta_text(Duration::from_millis(44_200)), "45 s");
        assert_eq!(eta_text(Duration::from_secs(125)), "2 min 05 s");
        assert_eq!(eta_text(Duration::from_secs(3720)), "1 h 02 min");
        assert_eq!(eta_text(Duration::ZERO), "0 s");
    }
}
