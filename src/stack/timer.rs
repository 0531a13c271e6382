//! PLACEHOLDER until `tcpparts` lands its TimerWheel (same API). A simple
//! ordered set, exact but O(log n).

use crate::time::Instant;
use core::time::Duration;
use std::collections::BTreeMap;

pub struct TimerWheel<T> {
    items: BTreeMap<(Instant, u64), T>,
    seq: u64,
}

impl<T: Copy> TimerWheel<T> {
    pub fn new(tick: Duration, slots: usize, now: Instant) -> Self {
        let _ = (tick, slots, now);
        TimerWheel {
            items: BTreeMap::new(),
            seq: 0,
        }
    }
    pub fn schedule(&mut self, at: Instant, item: T) {
        self.seq += 1;
        self.items.insert((at, self.seq), item);
    }
    pub fn expire(&mut self, now: Instant, out: &mut Vec<T>) {
        while let Some(e) = self.items.first_entry() {
            if e.key().0 > now {
                break;
            }
            out.push(e.remove());
        }
    }
    pub fn next_expiry(&self) -> Option<Instant> {
        self.items.keys().next().map(|k| k.0)
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}
