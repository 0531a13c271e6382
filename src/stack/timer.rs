//! A hierarchical hashed timer wheel (Varghese & Lauck, as in Linux and
//! tokio): O(1) schedule, expiry cost proportional to the timers that fire
//! or cascade, and cheap jumps over idle time.
//!
//! Level 0 has `slots` slots of one tick each; level `l` has `slots` slots
//! of `slots^l` ticks. A deadline `d` lives on the level of the highest
//! digit (base `slots`) in which it differs from the current tick, so a
//! level never needs a rounds counter: when the wheel reaches a slot of a
//! higher level, its timers cascade to lower levels (each timer cascades at
//! most once per level). Occupied slots are tracked in bitmaps, so empty
//! time is skipped without visiting it.
//!
//! There is no cancel: the stack checks whether a fired item is still
//! current (lazy deletion), so rescheduling is one O(1) push.

use crate::time::Instant;
use core::time::Duration;

/// One level of the wheel.
#[derive(Debug)]
struct Level<T> {
    /// `(deadline tick, item)` per slot.
    slots: Vec<Vec<(u64, T)>>,
    /// Bit `i` set when slot `i` is non-empty.
    occupied: Vec<u64>,
    /// Bit `i` set when `occupied[i]` is non-zero.
    summary: Vec<u64>,
    /// Timers on this level.
    count: usize,
}

impl<T> Level<T> {
    fn new(slots: usize) -> Self {
        let words = slots.div_ceil(64);
        Level {
            slots: (0..slots).map(|_| Vec::new()).collect(),
            occupied: vec![0; words],
            summary: vec![0; words.div_ceil(64)],
            count: 0,
        }
    }

    fn set(&mut self, slot: usize) {
        self.occupied[slot / 64] |= 1 << (slot % 64);
        let w = slot / 64;
        self.summary[w / 64] |= 1 << (w % 64);
    }

    fn clear(&mut self, slot: usize) {
        let w = slot / 64;
        self.occupied[w] &= !(1 << (slot % 64));
        if self.occupied[w] == 0 {
            self.summary[w / 64] &= !(1 << (w % 64));
        }
    }

    /// Lowest occupied slot.
    fn first(&self) -> Option<usize> {
        if self.count == 0 {
            return None;
        }
        for (si, &s) in self.summary.iter().enumerate() {
            if s != 0 {
                let w = si * 64 + s.trailing_zeros() as usize;
                let bits = self.occupied[w];
                return Some(w * 64 + bits.trailing_zeros() as usize);
            }
        }
        None
    }
}

/// A timer wheel of `T` items (typically a connection handle plus a timer
/// kind or generation, checked for validity when it fires).
#[derive(Debug)]
pub struct TimerWheel<T> {
    start: Instant,
    tick_us: u64,
    /// log2(slots).
    bits: u32,
    /// slots - 1.
    mask: u64,
    /// The wheel's current tick: every timer with a deadline at or before it
    /// has fired; stored timers all have later deadlines.
    elapsed: u64,
    levels: Vec<Level<T>>,
    /// Timers scheduled at or before `elapsed`: they fire on the next expire.
    ready: Vec<T>,
    len: usize,
    /// Never later than the start tick of the earliest occupied slot (what
    /// `next_slot` would find; `u64::MAX` when none): `expire` before it
    /// has nothing to fire or cascade and skips the scan of the levels.
    /// The stack polls far more often than its timers fire.
    earliest: u64,
}

impl<T: Copy> TimerWheel<T> {
    /// `tick` granularity (e.g. 1 ms), `slots` (power of two, e.g. 4096), starting at `now`.
    ///
    /// `slots` is rounded up to a power of two (at least 2); a zero `tick`
    /// counts as 1 µs.
    pub fn new(tick: Duration, slots: usize, now: Instant) -> Self {
        let slots = slots.max(2).next_power_of_two();
        let bits = slots.trailing_zeros();
        let nlevels = 64u32.div_ceil(bits) as usize;
        TimerWheel {
            start: now,
            tick_us: (tick.as_micros() as u64).max(1),
            bits,
            mask: slots as u64 - 1,
            elapsed: 0,
            levels: (0..nlevels).map(|_| Level::new(slots)).collect(),
            ready: Vec::new(),
            len: 0,
            earliest: u64::MAX,
        }
    }

    /// Fire `item` at `at` (rounded up to the next tick; a time in the past fires on the next expire). O(1). No cancel: callers check validity when an item fires (lazy deletion).
    pub fn schedule(&mut self, at: Instant, item: T) {
        let us = at.saturating_since(self.start).as_micros() as u64;
        let tick = us.div_ceil(self.tick_us);
        // Rounding up must not pass the last representable instant.
        let last = (u64::MAX - self.start.micros()) / self.tick_us;
        let tick = tick.min(last);
        self.len += 1;
        if tick <= self.elapsed {
            self.ready.push(item);
        } else {
            self.insert(tick, item);
        }
    }

    /// Push every item due by `now` onto `out` (caller reuses the Vec). Cost O(items fired + ticks elapsed), and bounded when `now` jumps far ahead (virtual time jumps of hours must be cheap: skip empty slots, e.g. by tracking the occupied count or jumping straight to the next deadline).
    ///
    /// Items come out in deadline order (past-scheduled ones first).
    ///
    /// Inline up to the check against `earliest`: most calls (a poll
    /// between deadlines) end there, and the call itself cost as much.
    #[inline]
    pub fn expire(&mut self, now: Instant, out: &mut Vec<T>) {
        let now_tick = now.micros().saturating_sub(self.start.micros()) / self.tick_us;
        if !self.ready.is_empty() {
            self.len -= self.ready.len();
            out.append(&mut self.ready);
        }
        if now_tick < self.earliest {
            // Nothing stored starts by `now_tick` (as the loop would find).
            self.elapsed = self.elapsed.max(now_tick);
            return;
        }
        self.expire_stored(now_tick, out);
    }

    /// `expire`'s scan of the levels, once `earliest` is due.
    #[inline(never)]
    fn expire_stored(&mut self, now_tick: u64, out: &mut Vec<T>) {
        self.earliest = u64::MAX;
        while let Some((level, slot, deadline)) = self.next_slot() {
            if deadline > now_tick {
                self.earliest = deadline;
                break;
            }
            self.process(level, slot, deadline, out);
        }
        self.elapsed = self.elapsed.max(now_tick);
    }

    /// Never later than the earliest pending deadline (exact or slightly early), cheap (amortised O(1)); None when empty. The simulator jumps virtual time to it, so it must also make progress: after expire(next_expiry()) either something fired or next_expiry() moved forward.
    ///
    /// Exact when the earliest timer is within one revolution of level 0;
    /// otherwise the start of the higher-level slot holding it (reaching it
    /// cascades the slot, so each timer causes at most one early wake-up
    /// per level).
    pub fn next_expiry(&self) -> Option<Instant> {
        if !self.ready.is_empty() {
            return Some(self.tick_instant(self.elapsed));
        }
        self.next_slot().map(|(_, _, d)| self.tick_instant(d))
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn tick_instant(&self, tick: u64) -> Instant {
        Instant(
            self.start
                .micros()
                .saturating_add(tick.saturating_mul(self.tick_us)),
        )
    }

    /// The level for a deadline `d > elapsed`: the base-`slots` digit where
    /// they first differ.
    fn level_for(&self, d: u64) -> usize {
        let masked = (self.elapsed ^ d) | self.mask;
        let significant = 63 - masked.leading_zeros();
        (significant / self.bits) as usize
    }

    fn insert(&mut self, d: u64, item: T) {
        debug_assert!(d > self.elapsed);
        let level = self.level_for(d);
        let shift = self.bits * level as u32;
        let slot = ((d >> shift) & self.mask) as usize;
        // The slot starts at `d` with the digits below its level cleared
        // (the same block as `elapsed`, by the choice of level).
        self.earliest = self.earliest.min(d >> shift << shift);
        let l = &mut self.levels[level];
        l.slots[slot].push((d, item));
        l.set(slot);
        l.count += 1;
    }

    /// The earliest occupied slot (lowest non-empty level: every timer of a
    /// level is due before every timer of the levels above) and the tick at
    /// which it starts.
    fn next_slot(&self) -> Option<(usize, usize, u64)> {
        for (level, l) in self.levels.iter().enumerate() {
            if let Some(slot) = l.first() {
                let shift = self.bits * level as u32;
                let block_shift = shift + self.bits;
                let base = if block_shift >= 64 {
                    0
                } else {
                    (self.elapsed >> block_shift) << block_shift
                };
                return Some((level, slot, base + ((slot as u64) << shift)));
            }
        }
        None
    }

    /// Advance to `deadline`, the start of `slot` on `level`: fire its due
    /// timers and cascade the others to lower levels.
    fn process(&mut self, level: usize, slot: usize, deadline: u64, out: &mut Vec<T>) {
        self.elapsed = deadline;
        let l = &mut self.levels[level];
        let mut items = core::mem::take(&mut l.slots[slot]);
        l.clear(slot);
        l.count -= items.len();
        for &(d, item) in &items {
            if d <= deadline {
                self.len -= 1;
                out.push(item);
            } else {
                self.insert(d, item);
            }
        }
        items.clear();
        // Keep the allocation for the slot's next use.
        let l = &mut self.levels[level];
        if l.slots[slot].is_empty() {
            l.slots[slot] = items;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use std::collections::BTreeMap;

    const MS: u64 = 1000;

    fn wheel(slots: usize) -> TimerWheel<u64> {
        TimerWheel::new(Duration::from_millis(1), slots, Instant::ZERO)
    }

    fn ms(v: u64) -> Instant {
        Instant::from_millis(v)
    }

    /// Drive the wheel by jumping to next_expiry until `until`, collecting
    /// (time fired, item), and count the wake-ups.
    fn run(w: &mut TimerWheel<u64>, until: Instant) -> (Vec<(Instant, u64)>, usize) {
        let mut fired = Vec::new();
        let mut out = Vec::new();
        let mut wakeups = 0;
        while let Some(t) = w.next_expiry() {
            if t > until {
                break;
            }
            wakeups += 1;
            w.expire(t, &mut out);
            fired.extend(out.drain(..).map(|i| (t, i)));
        }
        (fired, wakeups)
    }

    #[test]
    fn fires_in_order_at_rounded_deadline() {
        let mut w = wheel(64);
        w.schedule(ms(30), 3);
        w.schedule(ms(10), 1);
        w.schedule(Instant::from_micros(19_001), 2); // rounds up to 20 ms
        w.schedule(ms(10), 11);
        assert_eq!(w.len(), 4);
        assert_eq!(w.next_expiry(), Some(ms(10)));
        let mut out = Vec::new();
        w.expire(Instant::from_micros(9_999), &mut out);
        assert!(out.is_empty());
        w.expire(ms(10), &mut out);
        assert_eq!(out, vec![1, 11]);
        assert_eq!(w.next_expiry(), Some(ms(20)));
        out.clear();
        w.expire(Instant::from_micros(19_999), &mut out);
        assert!(out.is_empty());
        w.expire(ms(100), &mut out);
        assert_eq!(out, vec![2, 3]);
        assert!(w.is_empty());
        assert_eq!(w.next_expiry(), None);
    }

    #[test]
    fn past_deadlines_fire_on_next_expire() {
        let mut w = wheel(64);
        let mut out = Vec::new();
        w.expire(ms(500), &mut out);
        w.schedule(ms(100), 7);
        w.schedule(ms(500), 8);
        assert!(w.next_expiry().unwrap() <= ms(500));
        w.expire(ms(500), &mut out);
        assert_eq!(out, vec![7, 8]);
        assert!(w.is_empty());
        // Before the wheel's start: also "in the past".
        let mut w = TimerWheel::new(Duration::from_millis(1), 64, ms(1000));
        w.schedule(ms(3), 1);
        w.expire(ms(1000), &mut out);
        assert_eq!(out, vec![7, 8, 1]);
    }

    #[test]
    fn far_future_deadlines_need_few_wakeups() {
        let mut w = wheel(4096);
        let hour = 3_600_000;
        let year = 365 * 24 * hour;
        w.schedule(ms(hour), 1);
        w.schedule(ms(24 * hour), 2);
        w.schedule(ms(year), 3);
        w.schedule(Instant(u64::MAX), 4);
        let (fired, wakeups) = run(&mut w, ms(2 * year));
        assert_eq!(
            fired,
            vec![(ms(hour), 1), (ms(24 * hour), 2), (ms(year), 3)]
        );
        assert!(wakeups <= 3 * 6, "{wakeups} wake-ups");
        assert_eq!(w.len(), 1);
        assert!(w.next_expiry().unwrap() <= Instant(u64::MAX));
        let mut out = Vec::new();
        w.expire(Instant(u64::MAX), &mut out);
        assert_eq!(out, vec![4]);
    }

    #[test]
    fn big_jump_fires_everything_in_order() {
        let mut w = wheel(256);
        let mut rng = rand_pcg::Pcg64::seed_from_u64(1);
        let mut expect = Vec::new();
        for i in 0..5_000u64 {
            let at = rng.gen_range(1..10 * 3_600_000u64);
            w.schedule(ms(at), i);
            expect.push((at, i));
        }
        w.schedule(ms(11 * 3_600_000), 99_999);
        let mut out = Vec::new();
        w.expire(ms(10 * 3_600_000), &mut out);
        assert_eq!(out.len(), 5_000);
        let times: Vec<u64> = out.iter().map(|&i| expect[i as usize].0).collect();
        assert!(times.windows(2).all(|p| p[0] <= p[1]));
        assert_eq!(w.len(), 1);
        assert!(w.next_expiry().unwrap() <= ms(11 * 3_600_000));
        let (fired, _) = run(&mut w, ms(12 * 3_600_000));
        assert_eq!(fired, vec![(ms(11 * 3_600_000), 99_999)]);
    }

    #[test]
    fn hundred_thousand_timers() {
        let mut w = wheel(4096);
        let mut rng = rand_pcg::Pcg64::seed_from_u64(2);
        let mut deadline = Vec::new();
        for i in 0..100_000u64 {
            let at = rng.gen_range(0..600_000 * MS);
            w.schedule(Instant(at), i);
            deadline.push(at.div_ceil(MS) * MS);
        }
        assert_eq!(w.len(), 100_000);
        let (fired, _) = run(&mut w, ms(600_000));
        assert_eq!(fired.len(), 100_000);
        assert!(w.is_empty());
        for (t, i) in fired {
            assert_eq!(t.micros(), deadline[i as usize]);
        }
    }

    /// Random operations against a BTreeMap reference.
    #[test]
    fn matches_reference_model() {
        for seed in 0..40u64 {
            let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
            let slots = 1usize << rng.gen_range(1..=12);
            let tick = rng.gen_range(1..=2000u64);
            let start = Instant(rng.gen_range(0..1u64 << 40));
            let mut w = TimerWheel::new(Duration::from_micros(tick), slots, start);
            // (deadline tick, id) -> ()
            let mut model: BTreeMap<(u64, u64), ()> = BTreeMap::new();
            let mut now = start;
            let mut out = Vec::new();
            let tick_of = |at: Instant| {
                let us = at.saturating_since(start).as_micros() as u64;
                us.div_ceil(tick)
            };
            let mut elapsed = 0u64;
            let mut id = 0u64;
            for _ in 0..2_000 {
                match rng.gen_range(0..10) {
                    0..=4 => {
                        let at = match rng.gen_range(0..4) {
                            0 => now - Duration::from_micros(rng.gen_range(0..100 * tick)),
                            1 => now + Duration::from_micros(rng.gen_range(0..20 * tick)),
                            2 => now + Duration::from_micros(rng.gen_range(0..5000 * tick)),
                            _ => now + Duration::from_micros(rng.gen_range(0..1u64 << 45)),
                        };
                        w.schedule(at, id);
                        model.insert((tick_of(at).max(elapsed), id), ());
                        id += 1;
                    }
                    5..=7 => {
                        let dt = match rng.gen_range(0..3) {
                            0 => rng.gen_range(0..3 * tick),
                            1 => rng.gen_range(0..10_000 * tick),
                            _ => rng.gen_range(0..1u64 << 44),
                        };
                        now += Duration::from_micros(dt);
                        step(&mut w, &mut model, now, start, tick, &mut out, &mut elapsed);
                    }
                    _ => {
                        // Jump to next_expiry: progress and lower-bound checks.
                        let before = w.next_expiry();
                        let min = model.keys().next().map(|&(t, _)| t);
                        assert_eq!(before.is_some(), min.is_some());
                        if let (Some(b), Some(m)) = (before, min) {
                            assert!(b.micros() <= start.micros() + m * tick, "seed {seed}: late");
                            let b = b.max(now);
                            now = b;
                            let fired =
                                step(&mut w, &mut model, now, start, tick, &mut out, &mut elapsed);
                            let after = w.next_expiry();
                            assert!(
                                fired > 0 || after.is_none_or(|a| a > b),
                                "seed {seed}: no progress"
                            );
                        }
                    }
                }
                assert_eq!(w.len(), model.len());
            }
        }
    }

    fn step(
        w: &mut TimerWheel<u64>,
        model: &mut BTreeMap<(u64, u64), ()>,
        now: Instant,
        start: Instant,
        tick: u64,
        out: &mut Vec<u64>,
        elapsed: &mut u64,
    ) -> usize {
        let now_tick = now.saturating_since(start).as_micros() as u64 / tick;
        *elapsed = (*elapsed).max(now_tick);
        out.clear();
        w.expire(now, out);
        let due: Vec<(u64, u64)> = model.range(..(now_tick + 1, 0)).map(|(&k, _)| k).collect();
        for k in &due {
            model.remove(k);
        }
        let mut got: Vec<u64> = out.clone();
        let mut want: Vec<u64> = due.iter().map(|&(_, i)| i).collect();
        // Deadline order: the fired sequence's ticks never decrease.
        let tick_of: BTreeMap<u64, u64> = due.iter().map(|&(t, i)| (i, t)).collect();
        let ticks: Vec<u64> = got.iter().map(|i| tick_of[i]).collect();
        assert!(ticks.windows(2).all(|p| p[0] <= p[1]), "out of order");
        got.sort_unstable();
        want.sort_unstable();
        assert_eq!(got, want);
        got.len()
    }
}
