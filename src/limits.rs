//! Failure counters that slow down guessing: after `max` failures within `window` seconds a key
//! (a client id and address, say) is refused until the window has passed. Kept per node in
//! memory: N nodes allow at most N times the budget, which still stops a brute force cold,
//! and a lost counter only forgets failures.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::clock::UnixTime;

/// Bounds memory when someone fails from very many addresses.
const MAX_KEYS: usize = 100_000;

#[derive(Debug)]
pub struct FailureLimiter {
    max: u32,
    window: i64,
    /// Whether the window counts from the latest failure (a run of failures) rather than the
    /// first (a budget per period).
    sliding: bool,
    /// key → (failures, start of the window)
    entries: Mutex<HashMap<String, (u32, UnixTime)>>,
}

impl FailureLimiter {
    /// At most `max` failures per `window` seconds from the first one.
    pub fn new(max: u32, window: i64) -> FailureLimiter {
        FailureLimiter {
            max,
            window,
            sliding: false,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// At most `max` failures in a row, a run being forgotten `window` seconds after its latest
    /// failure: how an account's wrong passwords are counted in the store.
    pub fn sliding(max: u32, window: i64) -> FailureLimiter {
        FailureLimiter {
            sliding: true,
            ..FailureLimiter::new(max, window)
        }
    }

    /// Seconds until `key` may try again, if it is blocked now.
    pub fn blocked_for(&self, key: &str, now: UnixTime) -> Option<i64> {
        let entries = self.entries.lock().ok()?;
        let (count, since) = entries.get(key)?;
        let left = since.0 + self.window - now.0;
        (*count >= self.max && left > 0).then_some(left)
    }

    /// Failures of `key` in its current window.
    pub fn failures(&self, key: &str, now: UnixTime) -> u32 {
        let Ok(entries) = self.entries.lock() else {
            return 0;
        };
        match entries.get(key) {
            Some((count, since)) if since.0 + self.window > now.0 => *count,
            _ => 0,
        }
    }

    pub fn record_failure(&self, key: &str, now: UnixTime) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= MAX_KEYS {
            let window = self.window;
            entries.retain(|_, (_, since)| since.0 + window > now.0);
            if entries.len() >= MAX_KEYS {
                entries.clear();
            }
        }
        let entry = entries.entry(key.to_string()).or_insert((0, now));
        if entry.1.0 + self.window <= now.0 {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
        if self.sliding {
            entry.1 = now;
        }
    }

    pub fn clear(&self, key: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_failures_until_the_window_passes() {
        let l = FailureLimiter::new(3, 60);
        let t = UnixTime(1000);
        for _ in 0..2 {
            l.record_failure("k", t);
        }
        assert_eq!(l.blocked_for("k", t), None);
        l.record_failure("k", t.plus(5));
        assert_eq!(l.blocked_for("k", t.plus(10)), Some(50));
        assert_eq!(l.blocked_for("other", t), None);
        assert_eq!(l.blocked_for("k", t.plus(60)), None);
        l.record_failure("k", t.plus(61));
        assert_eq!(
            l.blocked_for("k", t.plus(61)),
            None,
            "a new window starts over"
        );
        l.clear("k");
        assert_eq!(l.blocked_for("k", t.plus(61)), None);
    }

    #[test]
    fn a_sliding_window_forgets_a_run_only_after_its_latest_failure() {
        let l = FailureLimiter::sliding(3, 60);
        let t = UnixTime(1000);
        l.record_failure("k", t);
        l.record_failure("k", t.plus(50));
        assert_eq!(l.failures("k", t.plus(100)), 2, "50 s after the latest");
        assert_eq!(l.failures("k", t.plus(110)), 0, "60 s after the latest");
        l.record_failure("k", t.plus(120));
        l.record_failure("k", t.plus(130));
        l.record_failure("k", t.plus(195));
        assert_eq!(l.failures("k", t.plus(196)), 1, "the run started over");
        l.record_failure("k", t.plus(200));
        l.record_failure("k", t.plus(205));
        assert_eq!(l.blocked_for("k", t.plus(210)), Some(55));
    }
}
