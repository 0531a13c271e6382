//! The token directory: which worker holds an MPTCP connection's token
//! (RFC 8684 §3.1), shared by the workers of a run and lock-free.
//!
//! A join SYN (§3.2) names its connection by our token only, and arrives
//! on whichever queue the peer's flow hash picks: often not the queue of
//! the worker holding the connection. A worker whose stacks do not hold
//! the token looks it up here and runs the subflow with that worker
//! (`stack::mptcp_remote`). Stacks report the tokens they draw and release
//! (`Stack::drain_token_log`), and the worker records them before the
//! transmit kick that sends the first subflow's SYN/ACK (or SYN), so a
//! join for the token can never be here before its token.
//!
//! Same shape as the flow directory: open addressing over `AtomicU64`
//! slots, linear probing bounded by [`MAX_PROBE`]. A slot holds the whole
//! token in bits 8..40 and the holder (+2) in the low byte, so 0 (empty)
//! and 1 (removed) never name a token and a lookup never confuses two.
//! Only the holder writes or removes its tokens' slots; a connection
//! that moves to another worker (`stack::TcpMigrant`) has its slot
//! handed over by its new holder ([`TokenDirectory::transfer`]), in one
//! step, so a join never finds it missing or held twice meanwhile.

use super::directory::MAX_WORKERS;
use std::sync::atomic::{AtomicU64, Ordering};

const EMPTY: u64 = 0;
const REMOVED: u64 = 1;
/// Slots probed from a token's home slot at most.
pub const MAX_PROBE: usize = 64;

/// Why a token could not be recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenInsert {
    /// Recorded (or already recorded for this worker).
    Ok,
    /// Another worker holds the same token (two stacks drew it: tokens
    /// are unique per stack only). Its joins go to that worker.
    HeldElsewhere,
    /// The probe run is full: joins for it arriving elsewhere are
    /// refused as unknown tokens.
    Full,
}

/// Shared by all workers of a run.
pub struct TokenDirectory {
    slots: Box<[AtomicU64]>,
    mask: usize,
}

fn home(token: u32) -> usize {
    // Fibonacci hashing: tokens are already uniform (SHA-256 bits), but a
    // peer can pick the tokens it names, so spread them anyway.
    (u64::from(token).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize
}

fn value(token: u32, worker: usize) -> u64 {
    u64::from(token) << 8 | (worker as u64 + 2)
}

fn token_of(slot: u64) -> u32 {
    (slot >> 8) as u32
}

impl TokenDirectory {
    /// A directory with room for about `tokens` tokens (4 slots each).
    pub fn new(tokens: usize) -> TokenDirectory {
        let n = tokens
            .saturating_mul(4)
            .clamp(1024, 1 << 22)
            .next_power_of_two();
        TokenDirectory {
            slots: (0..n).map(|_| AtomicU64::new(EMPTY)).collect(),
            mask: n - 1,
        }
    }

    fn probe(&self, token: u32) -> impl Iterator<Item = &AtomicU64> {
        let h = home(token);
        (0..MAX_PROBE).map(move |i| &self.slots[(h + i) & self.mask])
    }

    /// Record that `worker` holds `token`.
    pub fn insert(&self, token: u32, worker: usize) -> TokenInsert {
        if worker >= MAX_WORKERS {
            return TokenInsert::Full;
        }
        let v = value(token, worker);
        // A few tries: a CAS lost to another worker's insert into the same
        // run starts over (its token may be this one).
        for _ in 0..4 {
            let mut free = None;
            for slot in self.probe(token) {
                let cur = slot.load(Ordering::Acquire);
                if cur > REMOVED && token_of(cur) == token {
                    return if cur == v {
                        TokenInsert::Ok
                    } else {
                        TokenInsert::HeldElsewhere
                    };
                }
                if cur <= REMOVED && free.is_none() {
                    free = Some((slot, cur));
                }
                if cur == EMPTY {
                    break;
                }
            }
            let Some((slot, cur)) = free else {
                return TokenInsert::Full;
            };
            if slot
                .compare_exchange(cur, v, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                return TokenInsert::Ok;
            }
        }
        TokenInsert::Full
    }

    /// Forget `token` if `worker` holds it.
    pub fn remove(&self, token: u32, worker: usize) {
        let v = value(token, worker);
        for slot in self.probe(token) {
            let cur = slot.load(Ordering::Acquire);
            if cur == EMPTY {
                return;
            }
            if cur == v {
                let _ = slot.compare_exchange(cur, REMOVED, Ordering::AcqRel, Ordering::Acquire);
                return;
            }
        }
    }

    /// `token`'s connection moved from worker `from` to worker `to`:
    /// its slot names `to` from now on (recorded anew if `from` had none).
    pub fn transfer(&self, token: u32, from: usize, to: usize) -> TokenInsert {
        if from >= MAX_WORKERS || to >= MAX_WORKERS {
            return TokenInsert::Full;
        }
        let (old, new) = (value(token, from), value(token, to));
        for slot in self.probe(token) {
            let cur = slot.load(Ordering::Acquire);
            if cur == EMPTY {
                break;
            }
            if cur == old {
                return match slot.compare_exchange(cur, new, Ordering::AcqRel, Ordering::Acquire) {
                    Ok(_) => TokenInsert::Ok,
                    // Only the old holder could have changed it: it
                    // released it, so record it anew.
                    Err(_) => self.insert(token, to),
                };
            }
        }
        self.insert(token, to)
    }

    /// The worker holding `token`, if recorded.
    pub fn lookup(&self, token: u32) -> Option<usize> {
        for slot in self.probe(token) {
            let cur = slot.load(Ordering::Acquire);
            if cur == EMPTY {
                return None;
            }
            if cur > REMOVED && token_of(cur) == token {
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
    fn tokens_are_found_and_forgotten() {
        let d = TokenDirectory::new(16); // 1024 slots: about half used below
        let t = |i: u32| i.wrapping_mul(0x2545_f491);
        for i in 0..500 {
            assert_eq!(d.insert(t(i), (i % 3) as usize), TokenInsert::Ok);
        }
        for i in 0..500 {
            assert_eq!(d.lookup(t(i)), Some((i % 3) as usize));
        }
        // Token 0 is a token like any other.
        assert_eq!(d.lookup(0), Some(0));
        assert_eq!(d.lookup(t(5000)), None);
        // Inserting again is idempotent; another worker's same token is
        // refused and leaves the first holder in place.
        assert_eq!(d.insert(t(7), 1), TokenInsert::Ok);
        assert_eq!(d.insert(t(7), 2), TokenInsert::HeldElsewhere);
        assert_eq!(d.lookup(t(7)), Some(1));
        // Only the holder removes its token.
        d.remove(t(7), 2);
        assert_eq!(d.lookup(t(7)), Some(1));
        d.remove(t(7), 1);
        assert_eq!(d.lookup(t(7)), None);
        // Removed slots are reused, and tokens past them are still found.
        assert_eq!(d.insert(t(7), 2), TokenInsert::Ok);
        assert_eq!(d.lookup(t(7)), Some(2));
        for i in 0..500 {
            d.remove(t(i), (i % 3) as usize);
        }
        d.remove(t(7), 2);
        assert!((0..500).all(|i| d.lookup(t(i)).is_none()));
        // Churn far beyond the capacity.
        for round in 0..50u32 {
            for i in 0..500 {
                let k = t(round * 500 + i + 10_000);
                assert_eq!(d.insert(k, 1), TokenInsert::Ok, "round {round}");
            }
            for i in 0..500 {
                d.remove(t(round * 500 + i + 10_000), 1);
            }
        }
        assert_eq!(d.insert(1, MAX_WORKERS), TokenInsert::Full);
    }

    #[test]
    fn a_moved_connections_token_names_its_new_worker() {
        let d = TokenDirectory::new(16);
        assert_eq!(d.insert(42, 0), TokenInsert::Ok);
        assert_eq!(d.transfer(42, 0, 1), TokenInsert::Ok);
        assert_eq!(d.lookup(42), Some(1));
        // The old holder's late removal leaves it with the new one.
        d.remove(42, 0);
        assert_eq!(d.lookup(42), Some(1));
        // Not recorded for `from` (it was lost, or never had room): it
        // is recorded for `to`; held by a third worker, it stays there.
        assert_eq!(d.transfer(43, 0, 1), TokenInsert::Ok);
        assert_eq!(d.lookup(43), Some(1));
        assert_eq!(d.insert(44, 2), TokenInsert::Ok);
        assert_eq!(d.transfer(44, 0, 1), TokenInsert::HeldElsewhere);
        assert_eq!(d.lookup(44), Some(2));
        assert_eq!(d.transfer(45, 0, MAX_WORKERS), TokenInsert::Full);
    }

    #[test]
    fn a_full_run_refuses_and_stays_consistent() {
        let d = TokenDirectory::new(1);
        // Twice as many tokens as slots: the table fills, the rest are
        // refused.
        let n = d.slots.len() as u32;
        let mut full = 0;
        for i in 0..n * 2 {
            match d.insert(i, 0) {
                TokenInsert::Ok => {}
                TokenInsert::Full => full += 1,
                TokenInsert::HeldElsewhere => panic!("token {i} held elsewhere"),
            }
        }
        assert!(full >= n, "{full} refused of {}", n * 2);
        // What was recorded is found; what was refused is not.
        let found = (0..n * 2).filter(|&i| d.lookup(i).is_some()).count() as u32;
        assert_eq!(found, n * 2 - full);
        assert!(found > n / 2, "{found} of {n} slots used");
        // Room again once tokens go.
        let gone = (0..n * 2).find(|&i| d.lookup(i).is_some()).unwrap();
        d.remove(gone, 0);
        assert_eq!(d.lookup(gone), None);
        assert_eq!(d.insert(gone, 1), TokenInsert::Ok);
        assert_eq!(d.lookup(gone), Some(1));
    }

    #[test]
    fn concurrent_holders_and_readers() {
        let d = std::sync::Arc::new(TokenDirectory::new(4096));
        let t = |w: u32, i: u32| (w << 24 | i).wrapping_mul(0x2545_f491);
        let writers: Vec<_> = (0..3u32)
            .map(|w| {
                let d = d.clone();
                std::thread::spawn(move || {
                    for round in 0..20 {
                        for i in 0..1000 {
                            assert_eq!(d.insert(t(w, i), w as usize), TokenInsert::Ok);
                        }
                        for i in 0..1000 {
                            assert_eq!(d.lookup(t(w, i)), Some(w as usize));
                        }
                        if round < 19 {
                            for i in 0..1000 {
                                d.remove(t(w, i), w as usize);
                            }
                        }
                    }
                })
            })
            .collect();
        // A reader meanwhile: whatever it finds names the right holder.
        let reader = {
            let d = d.clone();
            std::thread::spawn(move || {
                let mut seen = 0u64;
                for _ in 0..20 {
                    for w in 0..3 {
                        for i in 0..1000 {
                            if let Some(h) = d.lookup(t(w, i)) {
                                assert_eq!(h, w as usize);
                                seen += 1;
                            }
                        }
                    }
                }
                seen
            })
        };
        for h in writers {
            h.join().unwrap();
        }
        reader.join().unwrap();
        for w in 0..3 {
            for i in 0..1000 {
                assert_eq!(d.lookup(t(w, i)), Some(w as usize));
            }
        }
    }
}
