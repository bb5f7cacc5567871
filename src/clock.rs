//! Time, injected: the session manager, the second factor and recent-authentication checks ask
//! a [`Clock`] instead of the system, so tests move time forward instead of sleeping.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told to move (tests).
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    /// Standing at the system's current time.
    pub fn starting_now() -> Arc<Self> {
        Arc::new(ManualClock { millis: AtomicI64::new(Utc::now().timestamp_millis()) })
    }

    /// Standing at `unix_secs`.
    pub fn starting_at(unix_secs: i64) -> Arc<Self> {
        Arc::new(ManualClock { millis: AtomicI64::new(unix_secs.saturating_mul(1000)) })
    }

    pub fn advance(&self, by: Duration) {
        self.millis.fetch_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.millis.load(Ordering::SeqCst)).unwrap_or_else(Utc::now)
    }
}

/// A cheaply cloned handle on a [`Clock`].
#[derive(Clone)]
pub struct SharedClock(Arc<dyn Clock>);

impl SharedClock {
    pub fn system() -> Self {
        SharedClock(Arc::new(SystemClock))
    }

    pub fn new(clock: Arc<dyn Clock>) -> Self {
        SharedClock(clock)
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.0.now()
    }

    /// Seconds since the Unix epoch (TOTP time steps, sealed-cookie expiry).
    pub fn unix(&self) -> i64 {
        self.0.now().timestamp()
    }
}

impl Default for SharedClock {
    fn default() -> Self {
        SharedClock::system()
    }
}

impl std::fmt::Debug for SharedClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SharedClock")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_told() {
        let m = ManualClock::starting_now();
        let c = SharedClock::new(m.clone());
        let t = c.now();
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.now(), t);
        m.advance(Duration::from_secs(90));
        assert_eq!((c.now() - t).num_seconds(), 90);
    }
}
