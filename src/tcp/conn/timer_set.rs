//! The TCB's own timers (retransmission, delayed ACK, RACK reordering,
//! tail loss probe, persist, TIME-WAIT) as absolute deadlines in one
//! array: the stack asks for the connection's next deadline after every
//! operation, and a branch-free minimum over six words is cheaper than
//! keeping it current as timers are armed and cancelled (several per
//! operation; measured, `bench/echo_vs_linux.md`). What it keeps is the
//! earliest deadline armed since the stack last asked (`low`), which
//! tells the stack whether asking again can find an earlier one.

use crate::time::Instant;

/// One of the TCB's timers (see the fields they replaced in `Connection`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// RFC 6298 §5 retransmission (and SYN retries).
    Rtx,
    /// RFC 1122 §4.2.3.2 delayed ACK.
    Delack,
    /// RFC 8985 §6.2 reordering timer.
    Rack,
    /// RFC 8985 §7 probe timeout.
    Tlp,
    /// RFC 9293 §3.8.6.1 persist.
    Persist,
    /// RFC 9293 §3.4.2 TIME-WAIT.
    TimeWait,
}

const COUNT: usize = 6;
/// Not armed.
const NONE: u64 = u64::MAX;

/// Deadlines in µs (`NONE`: not armed).
#[derive(Debug, Clone, Copy)]
pub(super) struct TimerSet {
    at: [u64; COUNT],
    /// The earliest deadline armed since `reset_low` (`NONE`: none): the
    /// next deadline can have moved earlier only by an arm (a cancel only
    /// moves it later), so the stack re-arms its wheel only when this is
    /// below the wheel's entry, not after every operation.
    low: u64,
}

impl Default for TimerSet {
    fn default() -> Self {
        TimerSet {
            at: [NONE; COUNT],
            low: NONE,
        }
    }
}

impl TimerSet {
    pub fn get(&self, t: Timer) -> Option<Instant> {
        let at = self.at[t as usize];
        (at != NONE).then_some(Instant::from_micros(at))
    }

    pub fn is_armed(&self, t: Timer) -> bool {
        self.at[t as usize] != NONE
    }

    /// Arm (`Some`) or cancel (`None`) `t`.
    pub fn set(&mut self, t: Timer, at: Option<Instant>) {
        let us = at.map_or(NONE, Instant::micros);
        self.at[t as usize] = us;
        // A cancel (`NONE`) leaves it as it was.
        self.low = self.low.min(us);
    }

    /// Cancel every timer (`low` kept: cancelling moves nothing earlier).
    pub fn clear(&mut self) {
        self.at = [NONE; COUNT];
    }

    /// The earliest deadline armed since the last `reset_low`, in µs.
    #[inline]
    pub fn low_us(&self) -> u64 {
        self.low
    }

    /// Forget what was armed so far (the caller has just read the next
    /// deadline).
    #[inline]
    pub fn reset_low(&mut self) {
        self.low = NONE;
    }

    /// The earliest armed deadline in µs (`u64::MAX`: none): a
    /// branch-free minimum over the array, cheaper than keeping it current
    /// in `set` (several timers move per operation, this is asked once).
    pub fn next_us(&self) -> u64 {
        let a = &self.at;
        a[0].min(a[1]).min(a[2].min(a[3])).min(a[4].min(a[5]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Timer; COUNT] = [
        Timer::Rtx,
        Timer::Delack,
        Timer::Rack,
        Timer::Tlp,
        Timer::Persist,
        Timer::TimeWait,
    ];

    /// The minimum equals the earliest armed timer (none: `u64::MAX`)
    /// after every arm and cancel of a pseudo-random sequence.
    #[test]
    fn next_is_the_minimum() {
        let mut s = TimerSet::default();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let t = ALL[(x % COUNT as u64) as usize];
            let at = !(x >> 8).is_multiple_of(4);
            s.set(t, at.then(|| Instant::from_micros((x >> 16) % 50)));
            let min = ALL.iter().filter_map(|&t| s.get(t)).min();
            assert_eq!(min.map_or(u64::MAX, Instant::micros), s.next_us());
        }
        s.clear();
        assert_eq!(s.next_us(), u64::MAX);
        assert!(!s.is_armed(Timer::Rtx));
    }

    /// `low_us` is the earliest deadline armed since `reset_low`, cancels
    /// and `clear` aside; so a next deadline below a bound `b` it was not
    /// below at the reset means `low_us() < b`.
    #[test]
    fn low_is_the_earliest_armed_since_the_reset() {
        let mut s = TimerSet::default();
        assert_eq!(s.low_us(), u64::MAX);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut low = u64::MAX;
        for i in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 7 == 0 {
                s.reset_low();
                low = u64::MAX;
            }
            if i % 97 == 0 {
                s.clear();
            }
            let t = ALL[(x % COUNT as u64) as usize];
            let at = (!(x >> 8).is_multiple_of(3)).then(|| Instant::from_micros((x >> 16) % 50));
            s.set(t, at);
            if let Some(a) = at {
                low = low.min(a.micros());
            }
            assert_eq!(s.low_us(), low);
        }
        s.clear();
        assert_eq!(s.next_us(), u64::MAX);
        assert!(!s.is_armed(Timer::Rtx));
    }
}
