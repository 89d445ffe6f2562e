//! The clock every age limit is measured on: transaction ages, compaction horizons.
//!
//! Production reads `tokio::time::Instant::now()` and the server's own clock (a write's `mtime`).
//! Tests move a [`Clock`] forward with [`Clock::advance`] instead of waiting or shrinking a
//! production limit: a 10-minute compaction horizon is crossed in microseconds of test time, and
//! the limits that guard it stay exactly what they are in production.
//!
//! An advance is a jump of virtual time at one real moment: everything that happened before it
//! (a transaction's first read, a tombstone's write) looks that much older afterwards, and
//! everything after it ages normally. Server timestamps are mapped the same way, by the real
//! moment of each advance (tests run the server on this machine's clock).

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The largest total advance: far past every limit, and far from overflowing an `Instant`.
const MAX_OFFSET_MS: u64 = 100 * 365 * 24 * 3600 * 1000;

/// A monotonic clock that tests can move forward. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    /// Each advance: the real time it happened (ms since the epoch) and how far it jumped (ms).
    advances: Arc<Mutex<Vec<(i64, u64)>>>,
}

impl Clock {
    /// A clock at real time.
    pub fn new() -> Self {
        Self::default()
    }

    fn total_ms(&self) -> u64 {
        self.advances.lock().map(|a| a.iter().map(|(_, by)| by).sum()).unwrap_or(0)
    }

    /// Now, on this clock.
    pub fn now(&self) -> tokio::time::Instant {
        let now = tokio::time::Instant::now();
        now.checked_add(Duration::from_millis(self.total_ms())).unwrap_or(now)
    }

    /// How long since `earlier` (a value of [`Clock::now`]).
    pub fn elapsed(&self, earlier: tokio::time::Instant) -> Duration {
        self.now().saturating_duration_since(earlier)
    }

    /// A server timestamp (ms since the epoch, such as a znode's `mtime`) on this clock: later
    /// by every advance made since before that moment.
    pub fn server_ms(&self, real_ms: i64) -> i64 {
        let by: u64 = self.advances.lock().map(|a| a.iter().filter(|(at, _)| *at <= real_ms).map(|(_, by)| by).sum()).unwrap_or(0);
        real_ms.saturating_add(i64::try_from(by).unwrap_or(i64::MAX))
    }

    /// Moves this clock forward by `by`. For tests only: every age limit of this client passes
    /// sooner for what happened before the call. Waits 2 ms on each side of the jump, so that
    /// millisecond timestamps tell "before" from "after".
    pub fn advance(&self, by: Duration) {
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX).min(MAX_OFFSET_MS);
        std::thread::sleep(Duration::from_millis(2));
        let at = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        if let Ok(mut a) = self.advances.lock() {
            let total: u64 = a.iter().map(|(_, b)| b).sum();
            a.push((at, by.min(MAX_OFFSET_MS - total)));
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_advance_ages_what_came_before_it_only() {
        let c = Clock::new();
        let t0 = c.now();
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        c.advance(Duration::from_secs(600));
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        assert!(c.elapsed(t0) >= Duration::from_secs(600));
        assert!(c.elapsed(c.now()) < Duration::from_secs(1));
        assert_eq!(c.server_ms(before), before, "an event before the jump keeps its time: it is older now");
        assert_eq!(c.server_ms(after), after + 600_000, "an event after the jump is that much later");
        let shared = c.clone();
        shared.advance(Duration::from_millis(1));
        assert_eq!(c.server_ms(after), after + 600_000, "a later advance does not age 'after' less");
        assert_eq!(c.server_ms(i64::MAX / 2), i64::MAX / 2 + 600_001);
        c.advance(Duration::MAX);
        assert!(c.elapsed(t0) > Duration::from_secs(600));
    }
}
