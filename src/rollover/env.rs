//! The clock the rollover runs on, injected so that tests (and `plan`) can run a whole rollover
//! without real time passing. Everything else the engine learns arrives as
//! [`super::ActionOutcome`]s of the actions the driver performs.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Timestamp;

/// Where "now" comes from, and how time passes.
pub trait Clock {
    /// The current time.
    fn now(&self) -> Timestamp;

    /// Wait `d`: the system clock sleeps, a fake clock moves forward at once.
    fn sleep(&self, d: Duration);
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        Timestamp::from_millis(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    fn sleep(&self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A clock that moves only when told to.
#[derive(Debug, Default)]
pub struct FakeClock(AtomicI64);

impl FakeClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> FakeClock {
        FakeClock(AtomicI64::new(start.as_millis()))
    }

    /// Move the clock forward by `d`.
    pub fn advance(&self, d: Duration) {
        let now = self.now().plus(d);
        self.0.store(now.as_millis(), Ordering::SeqCst);
    }

    /// Set the clock to `t`.
    pub fn set(&self, t: Timestamp) {
        self.0.store(t.as_millis(), Ordering::SeqCst);
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis(self.0.load(Ordering::SeqCst))
    }

    fn sleep(&self, d: Duration) {
        self.advance(d);
    }
}
