//! The smallest value over a sliding window of time, in a few buckets
//! (Linux's `win_minmax` keeps three samples; buckets follow a window
//! whose length changes as the RTTs do). Sans-IO: time is an argument.

use crate::time::Instant;
use core::time::Duration;

/// Buckets per window: the span covered is 3/4 of the window to all of it.
const BUCKETS: usize = 4;

#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    start: Instant,
    min: usize,
}

/// Values fed over the last `window` (newest bucket first).
#[derive(Debug, Clone, Default)]
pub(crate) struct WinMin {
    b: [Bucket; BUCKETS],
    n: usize,
}

impl WinMin {
    /// Feed `v` at `now`: the smallest value fed within the last `window`
    /// (at most `v`).
    pub(crate) fn feed(&mut self, now: Instant, v: usize, window: Duration) -> usize {
        let width = window / BUCKETS as u32;
        match self.b.first_mut() {
            Some(b) if self.n > 0 && now.saturating_since(b.start) < width => b.min = b.min.min(v),
            _ => {
                self.b.rotate_right(1);
                self.b[0] = Bucket { start: now, min: v };
                self.n = (self.n + 1).min(BUCKETS);
            }
        }
        self.b[..self.n]
            .iter()
            .take_while(|b| now.saturating_since(b.start) <= window)
            .fold(v, |lo, b| lo.min(b.min))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn the_minimum_over_the_window_only() {
        let w = Duration::from_millis(100);
        let mut m = WinMin::default();
        assert_eq!(m.feed(at(0), 50, w), 50);
        // A spike within the window does not show.
        assert_eq!(m.feed(at(10), 500, w), 50);
        assert_eq!(m.feed(at(30), 60, w), 50);
        assert_eq!(m.feed(at(60), 70, w), 50);
        // 110 ms on: the bucket of 0 and 10 ms has left the window.
        assert_eq!(m.feed(at(110), 80, w), 60);
        // A level held for a window shows.
        assert_eq!(m.feed(at(140), 90, w), 70);
        assert_eq!(m.feed(at(170), 90, w), 80);
        assert_eq!(m.feed(at(215), 90, w), 90);
        // Long after: the newest value alone.
        assert_eq!(m.feed(at(1000), 400, w), 400);
    }

    #[test]
    fn a_zero_window_is_the_value_itself() {
        let mut m = WinMin::default();
        m.feed(at(0), 10, Duration::from_millis(100));
        assert_eq!(m.feed(at(1), 70, Duration::ZERO), 70);
        assert_eq!(m.feed(at(2), 7, Duration::ZERO), 7);
    }
}
