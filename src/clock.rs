//! The one source of time. Everything else takes `now: UnixTime` as an argument, so tests
//! advance a [`FixedClock`] instead of sleeping (clippy's `disallowed-methods` enforces it).

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// Seconds since the Unix epoch; the only time type the store and the protocols use, because it
/// means the same on SQLite and PostgreSQL.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct UnixTime(pub i64);

impl UnixTime {
    pub fn plus(self, seconds: i64) -> UnixTime {
        UnixTime(self.0.saturating_add(seconds))
    }

    pub fn seconds(self) -> i64 {
        self.0
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match time::OffsetDateTime::from_unix_timestamp(self.0) {
            Ok(t) => {
                let format = time::macros::format_description!(
                    "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
                );
                match t.format(&format) {
                    Ok(s) => f.write_str(&s),
                    Err(_) => write!(f, "@{}", self.0),
                }
            }
            Err(_) => write!(f, "@{}", self.0),
        }
    }
}

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> UnixTime;
}

/// Shared handle to whichever clock the process runs on.
pub type SharedClock = Arc<dyn Clock>;

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place that reads the wall clock"
    )]
    fn now(&self) -> UnixTime {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        UnixTime(secs)
    }
}

/// A clock that only moves when a test tells it to.
#[derive(Debug)]
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn new(at: UnixTime) -> Self {
        FixedClock(AtomicI64::new(at.0))
    }

    pub fn advance(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }

    pub fn set(&self, at: UnixTime) {
        self.0.store(at.0, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now(&self) -> UnixTime {
        UnixTime(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fixed_clock_moves_only_when_told() {
        let clock = FixedClock::new(UnixTime(1_700_000_000));
        assert_eq!(clock.now(), UnixTime(1_700_000_000));
        clock.advance(61);
        assert_eq!(clock.now(), UnixTime(1_700_000_061));
    }

    #[test]
    fn displays_as_rfc3339_utc() {
        assert_eq!(UnixTime(0).to_string(), "1970-01-01T00:00:00Z");
    }
}
