//! The flow directory: which worker owns a TCP flow, shared by the workers
//! of a run and lock-free.
//!
//! A flow is owned where its first packet arrives (design.md, "flows owned
//! where they arrive"): the worker whose stack opens a connection records
//! it here, and removes it when the connection goes. A worker consults the
//! directory only for a packet of a flow its own stack does not know (a
//! stray: Linux re-hashed the flow to another queue after an RTO); the
//! common case touches nothing shared.
//!
//! Open addressing over `AtomicU64` slots, linear probing bounded by
//! [`MAX_PROBE`]. A slot holds the flow's 64-bit hash with its low byte
//! replaced by the owner (+2), so 0 (empty) and 1 (removed) never name a
//! flow. Only an owner writes its flows' slots; two flows that agree on 56
//! bits of hash are taken as one (a stray handed to the wrong worker gets
//! that worker's answer to an unknown segment: a reset).

use std::sync::atomic::{AtomicU64, Ordering};

const EMPTY: u64 = 0;
const REMOVED: u64 = 1;
/// Slots probed from a flow's home slot at most.
pub const MAX_PROBE: usize = 64;
/// Most workers a slot can name.
pub const MAX_WORKERS: usize = 250;

/// Shared by all workers of a run.
pub struct FlowDirectory {
    slots: Box<[AtomicU64]>,
    mask: usize,
}

fn tag(hash: u64) -> u64 {
    hash & !0xff
}

impl FlowDirectory {
    /// A directory with room for about `flows` flows (4 slots per flow, so
    /// probe runs stay short).
    pub fn new(flows: usize) -> FlowDirectory {
        let n = flows
            .saturating_mul(4)
            .clamp(1024, 1 << 22)
            .next_power_of_two();
        FlowDirectory {
            slots: (0..n).map(|_| AtomicU64::new(EMPTY)).collect(),
            mask: n - 1,
        }
    }

    fn probe(&self, hash: u64) -> impl Iterator<Item = &AtomicU64> {
        let home = (hash >> 8) as usize;
        (0..MAX_PROBE).map(move |i| &self.slots[(home + i) & self.mask])
    }

    /// Record that `owner` owns the flow `hash`. False if its probe run is
    /// full (the flow then has no entry: strays stay where they arrive).
    pub fn insert(&self, hash: u64, owner: usize) -> bool {
        if owner >= MAX_WORKERS {
            return false;
        }
        let value = tag(hash) | (owner as u64 + 2);
        for slot in self.probe(hash) {
            let cur = slot.load(Ordering::Acquire);
            if cur > REMOVED && tag(cur) == tag(hash) {
                slot.store(value, Ordering::Release);
                return true;
            }
            if cur <= REMOVED
                && slot
                    .compare_exchange(cur, value, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                return true;
            }
        }
        false
    }

    /// Forget the flow `hash` if `owner` owns it.
    pub fn remove(&self, hash: u64, owner: usize) {
        let value = tag(hash) | (owner as u64 + 2);
        for slot in self.probe(hash) {
            let cur = slot.load(Ordering::Acquire);
            if cur == EMPTY {
                return;
            }
            if cur == value {
                let _ = slot.compare_exchange(cur, REMOVED, Ordering::AcqRel, Ordering::Acquire);
                return;
            }
        }
    }

    /// The owner of the flow `hash`, if recorded.
    pub fn lookup(&self, hash: u64) -> Option<usize> {
        for slot in self.probe(hash) {
            let cur = slot.load(Ordering::Acquire);
            if cur == EMPTY {
                return None;
            }
            if cur > REMOVED && tag(cur) == tag(hash) {
                return Some((cur & 0xff) as usize - 2);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flows_are_found_moved_and_forgotten() {
        let d = FlowDirectory::new(16);
        let h = |i: u64| i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        for i in 1..=1000 {
            assert!(d.insert(h(i), (i % 4) as usize));
        }
        for i in 1..=1000 {
            assert_eq!(d.lookup(h(i)), Some((i % 4) as usize));
        }
        assert_eq!(d.lookup(h(5000)), None);
        // Only the owner removes its flow.
        d.remove(h(7), 0);
        assert_eq!(d.lookup(h(7)), Some(3));
        d.remove(h(7), 3);
        assert_eq!(d.lookup(h(7)), None);
        // Removed slots are reused, and a later flow past them is found.
        assert!(d.insert(h(7), 1));
        assert_eq!(d.lookup(h(7)), Some(1));
        for i in 1..=1000 {
            d.remove(h(i), (i % 4) as usize);
        }
        d.remove(h(7), 1);
        assert!((1..=1000).all(|i| d.lookup(h(i)).is_none()));
        // Churn far beyond the capacity: removed slots keep being reused.
        for round in 0..50u64 {
            for i in 0..1000 {
                assert!(d.insert(h(round * 1000 + i + 10_000), 2), "round {round}");
            }
            for i in 0..1000 {
                d.remove(h(round * 1000 + i + 10_000), 2);
            }
        }
    }

    #[test]
    fn concurrent_owners_and_readers() {
        let d = std::sync::Arc::new(FlowDirectory::new(4096));
        let h = |w: u64, i: u64| (w << 40 | i).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let threads: Vec<_> = (0..4u64)
            .map(|w| {
                let d = d.clone();
                std::thread::spawn(move || {
                    for round in 0..20 {
                        for i in 0..1000 {
                            assert!(d.insert(h(w, i), w as usize));
                        }
                        for i in 0..1000 {
                            assert_eq!(d.lookup(h(w, i)), Some(w as usize));
                        }
                        if round < 19 {
                            for i in 0..1000 {
                                d.remove(h(w, i), w as usize);
                            }
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        for w in 0..4 {
            for i in 0..1000 {
                assert_eq!(d.lookup(h(w, i)), Some(w as usize));
            }
        }
    }
}
