//! The clock the rollover runs on, injected so that tests (and `plan`) can run a whole rollover
//! without real time passing. Everything else the engine learns arrives as
//! [`super::Outcome`]s of the actions the driver performs.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Timestamp;

/// Where "now" comes from.
pub trait Clock {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let secs = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        Timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct FakeClock(AtomicI64);

impl FakeClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> FakeClock {
        FakeClock(AtomicI64::new(start.0))
    }

    /// Move the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let now = self.now().plus(d);
        self.0.store(now.0, Ordering::SeqCst);
    }

    /// Set the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.0, Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}
