//! Wall-clock time as the store keeps it, and the clock it reads.
//!
//! Times are whole milliseconds since the Unix epoch: one integer column sorts, compares and
//! subtracts the same way in SQLite and PostgreSQL, and a millisecond is finer than anything a
//! training run reports. The clock is injected ([`Clock`]) so that crash detection, which compares a
//! heartbeat with "now", is tested by moving a [`ManualClock`] instead of sleeping.

use std::fmt;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A moment, in milliseconds since 1970-01-01T00:00:00Z.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// The current system time.
    pub fn now() -> Timestamp {
        Timestamp::from_system(SystemTime::now())
    }

    /// Converts a [`SystemTime`]; times before 1970 count backwards.
    pub fn from_system(time: SystemTime) -> Timestamp {
        match time.duration_since(UNIX_EPOCH) {
            Ok(after) => Timestamp(i64::try_from(after.as_millis()).unwrap_or(i64::MAX)),
            Err(before) => Timestamp(-i64::try_from(before.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// Parses an RFC 3339 time such as `2024-05-01T12:00:00Z` (as written in `RunStart::started_at`).
    pub fn parse_rfc3339(text: &str) -> Option<Timestamp> {
        humantime::parse_rfc3339_weak(text).ok().map(Timestamp::from_system)
    }

    /// This moment plus a duration.
    pub fn plus(self, duration: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)))
    }

    /// The time from `earlier` to this moment; zero if `earlier` is later.
    pub fn since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(u64::try_from(self.0.saturating_sub(earlier.0)).unwrap_or(0))
    }
}

/// As its RFC 3339 text (the `Display` form), which is what JSON readers expect of a time.
impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for Timestamp {
    /// Formats as RFC 3339 in UTC with milliseconds, e.g. `2024-05-01T12:00:00.000Z`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = if self.0 >= 0 {
            UNIX_EPOCH + Duration::from_millis(self.0.unsigned_abs())
        } else {
            UNIX_EPOCH - Duration::from_millis(self.0.unsigned_abs())
        };
        write!(f, "{}", humantime::format_rfc3339_millis(time))
    }
}

/// Where the store and the sink read the current time.
///
/// Contract: `now` is cheap, callable from any thread, and never goes backwards by more than the
/// system clock does.
pub trait Clock: Send + Sync + fmt::Debug {
    /// The current time.
    fn now(&self) -> Timestamp;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to, for tests of time-dependent behaviour.
#[derive(Debug)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock(AtomicI64::new(start.0))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let by = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.0.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock.
    pub fn set(&self, to: Timestamp) {
        self.0.store(to.0, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips_at_millisecond_precision() {
        let t = Timestamp::parse_rfc3339("2024-05-01T12:00:00.250Z").expect("valid time");
        assert_eq!(t.to_string(), "2024-05-01T12:00:00.250Z");
        assert_eq!(Timestamp::parse_rfc3339(&t.to_string()), Some(t));
        assert_eq!(Timestamp::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let clock = ManualClock::new(Timestamp(1_000));
        assert_eq!(clock.now(), Timestamp(1_000));
        clock.advance(Duration::from_secs(2));
        assert_eq!(clock.now(), Timestamp(3_000));
        assert_eq!(clock.now().since(Timestamp(1_000)), Duration::from_secs(2));
        assert_eq!(Timestamp(1_000).since(clock.now()), Duration::ZERO);
    }
}
