//! Time as a value. The core never reads a clock: every input carries `now`.

use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time, in microseconds since an arbitrary epoch chosen by the
/// caller (virtual time in the simulator, a monotonic clock on AF_XDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

impl Instant {
    pub const ZERO: Instant = Instant(0);

    pub fn from_micros(us: u64) -> Self {
        Instant(us)
    }
    pub fn from_millis(ms: u64) -> Self {
        Instant(ms.saturating_mul(1000))
    }
    pub fn micros(self) -> u64 {
        self.0
    }
    pub fn millis(self) -> u64 {
        self.0 / 1000
    }
    /// `self + us` µs, saturating (as `+ Duration` does, without the
    /// conversion from `Duration`).
    pub fn plus_micros(self, us: u64) -> Instant {
        Instant(self.0.saturating_add(us))
    }
    /// `self - earlier`, saturating at zero.
    pub fn saturating_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// Microseconds of `d`, saturating: `as u64` would wrap a huge duration
/// (e.g. `Duration::MAX` for "never") to an arbitrary small one.
pub(crate) fn micros_of(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(micros_of(d)))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    fn sub(self, earlier: Instant) -> Duration {
        self.saturating_since(earlier)
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(micros_of(d)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Instant::from_millis(5);
        assert_eq!(t.micros(), 5000);
        assert_eq!(t + Duration::from_micros(7), Instant(5007));
        assert_eq!(t - Duration::from_millis(6), Instant::ZERO);
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        // A huge duration means "never", not a wrapped small delay.
        assert_eq!(t + Duration::MAX, Instant(u64::MAX));
        assert_eq!(t - Duration::MAX, Instant::ZERO);
        assert_eq!(Instant::from_millis(u64::MAX), Instant(u64::MAX));
    }
}
