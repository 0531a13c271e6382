//! The ARP cache (RFC 826) with neighbour unreachability detection (RFC
//! 1122 §2.3.2.1; the state machine of RFC 4861 §7.3, as Linux runs it for
//! ARP): an entry is REACHABLE for a randomized reachable time after a
//! confirmation (a solicited reply, or forward progress reported by TCP),
//! then STALE; a STALE entry that is used goes to DELAY, then PROBE (unicast
//! requests to the cached MAC) and, unanswered, is dropped so the next packet
//! starts a fresh broadcast resolution. A neighbour whose MAC changed without
//! a gratuitous ARP is therefore found again within seconds of the upper
//! layers noticing, not after a fixed lifetime.
//!
//! Pending resolutions keep a queue of packets waiting for them, bounded
//! by frames per next hop and in total (Linux: `unres_qlen` per neighbour,
//! oldest dropped first). The total bound matters: every SYN-ACK (or cookie
//! SYN-ACK) to a spoofed on-link source waits here for an answer that never
//! comes, so without it a spoofed-source SYN flood would hold every
//! transmit frame for the whole resolution time. Over either bound the
//! oldest waiting packet is dropped: of the same next hop, or of the
//! resolution that has waited longest (the one least likely to be
//! answered). The cache holds only next hops on our own subnets and at
//! most [`ARP_CACHE_MAX`] entries, so hostile ARP traffic cannot grow it.

use super::hasher::{KeyedHasher, Map};
use crate::time::Instant;
use crate::wire::MacAddr;
use core::hash::BuildHasher;
use core::net::Ipv4Addr;
use core::time::Duration;
use std::collections::VecDeque;

/// Most entries (resolved + pending) the cache holds.
pub const ARP_CACHE_MAX: usize = 4096;

/// A built Ethernet frame `frame[start..end]` whose destination MAC is still
/// to be filled in.
pub(crate) struct Waiting<F> {
    pub frame: F,
    pub start: usize,
    pub end: usize,
}

/// Timing of the cache (see `StackConfig`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ArpTiming {
    /// RFC 4861 BaseReachableTime: REACHABLE lasts 0.5–1.5 times this.
    pub reachable: Duration,
    /// RFC 4861 DELAY_FIRST_PROBE_TIME.
    pub delay: Duration,
    /// RFC 4861 MAX_UNICAST_SOLICIT.
    pub ucast_probes: u32,
    /// Between requests (broadcast or unicast): RFC 4861 RetransTimer.
    pub retry: Duration,
    /// Broadcast requests after the first before a resolution fails.
    pub retries: u32,
    /// A STALE entry unused this long is removed (Linux gc_staletime).
    pub stale: Duration,
}

/// RFC 4861 §7.3.2 states of a resolved entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Nud {
    /// Confirmed recently: used as is until `until`.
    Reachable { until: Instant },
    /// Not confirmed lately: used, but use starts a check.
    Stale,
    /// Used while stale: wait for a confirmation until `until`, then probe.
    Delay { until: Instant },
    /// Unicast requests; `left` more after the one due at `next`.
    Probe { next: Instant, left: u32 },
}

enum Entry<F> {
    Resolved {
        mac: MacAddr,
        /// `None` for static entries.
        nud: Option<Nud>,
        last_used: Instant,
    },
    Pending {
        /// When the next request is due (or, after the last one, when we give up).
        next: Instant,
        /// Requests still to send after the ones already sent.
        retries_left: u32,
        queue: VecDeque<Waiting<F>>,
        /// Tells this resolution from an earlier one of the same address
        /// in [`ArpCache::order`].
        gen: u32,
        /// Whether [`ArpCache::order`] lists this resolution.
        listed: bool,
    },
}

/// Result of [`ArpCache::enqueue`].
pub(crate) struct Enqueued<F> {
    /// The packet handed back because a queue bound was reached (the
    /// oldest waiting one, or the new one when the cache is full): the
    /// caller drops it.
    pub dropped: Option<Waiting<F>>,
    /// A new resolution started: send the first request now.
    pub start: bool,
}

/// A request the cache wants sent: broadcast (`unicast: None`) to resolve,
/// or unicast to the cached MAC to probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Request {
    pub ip: Ipv4Addr,
    pub unicast: Option<MacAddr>,
}

/// What [`ArpCache::poll`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Polled {
    /// Broadcast resolutions that got no answer.
    pub failed: usize,
    /// Resolved entries whose unicast probes got no answer (removed).
    pub unreachable: usize,
}

pub(crate) struct ArpCache<F> {
    map: Map<Ipv4Addr, Entry<F>>,
    /// Randomizes each entry's reachable time, deterministically.
    hasher: KeyedHasher,
    t: ArpTiming,
    /// Packets waiting per next hop.
    queue_max: usize,
    /// Packets waiting over all next hops.
    frames_max: usize,
    /// Packets waiting now, over all next hops.
    frames: usize,
    /// Resolutions with packets waiting, oldest first, as (address, gen);
    /// entries that resolved or failed meanwhile are skipped (and
    /// compacted away), so it stays bounded by the cache size.
    order: VecDeque<(Ipv4Addr, u32)>,
    /// Generation of the next pending entry.
    next_gen: u32,
    /// No entry has a deadline before this (may be early, never late).
    deadline: Option<Instant>,
    /// The last transmit lookup of a REACHABLE (or static) entry, reused
    /// without a table lookup until `TxMemo::until`; forgotten by every
    /// change to the table (and by `poll`, which runs the NUD timers).
    memo: Option<TxMemo>,
}

/// See [`ArpCache::memo`].
#[derive(Debug, Clone, Copy)]
struct TxMemo {
    ip: Ipv4Addr,
    mac: MacAddr,
    /// Before the entry leaves REACHABLE, and at most `MEMO_FOR` after the
    /// entry's `last_used` was written.
    until: Instant,
}

/// How long a memoized lookup stands in for the table's: the entry's
/// `last_used` (which only its garbage collection reads, once it is
/// STALE) is at most this late.
const MEMO_FOR: Duration = Duration::from_secs(1);

impl<F> ArpCache<F> {
    /// A cache queueing at most `queue_max` packets per next hop and
    /// `frames_max` in total while they resolve.
    pub(crate) fn new(
        hasher: KeyedHasher,
        t: ArpTiming,
        queue_max: usize,
        frames_max: usize,
    ) -> Self {
        ArpCache {
            map: Map::with_hasher(hasher.clone()),
            hasher,
            t,
            queue_max: queue_max.min(frames_max),
            frames_max,
            frames: 0,
            order: VecDeque::new(),
            next_gen: 0,
            deadline: None,
            memo: None,
        }
    }

    fn note_deadline(&mut self, at: Instant) {
        self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
    }

    /// RFC 4861 §6.3.2: ReachableTime, uniformly in [0.5, 1.5] ×
    /// BaseReachableTime, drawn per entry and confirmation.
    fn reachable_until(&mut self, ip: Ipv4Addr, now: Instant) -> Instant {
        let h = self.hasher.hash_one((ip, now.micros()));
        let base = self.t.reachable.as_micros() as u64;
        let span = (h % 1001).saturating_mul(base) / 1000;
        let until = now + Duration::from_micros(base / 2 + span);
        self.note_deadline(until);
        until
    }

    /// The resolved MAC of `ip`, if any (in whatever NUD state).
    pub(crate) fn lookup(&self, ip: Ipv4Addr) -> Option<MacAddr> {
        match self.map.get(&ip) {
            Some(Entry::Resolved { mac, .. }) => Some(*mac),
            _ => None,
        }
    }

    /// Like [`ArpCache::lookup`], for a packet about to leave: a use of a
    /// STALE entry starts its check (RFC 4861 §7.3.3: STALE → DELAY).
    #[inline]
    pub(crate) fn lookup_for_tx(&mut self, ip: Ipv4Addr, now: Instant) -> Option<MacAddr> {
        // The memo, tested here: every segment of a connection asks for
        // the same hop, and the table's lookup is a call.
        if let Some(m) = self.memo.filter(|m| m.ip == ip && now < m.until) {
            return Some(m.mac);
        }
        self.lookup_for_tx_table(ip, now)
    }

    /// [`Self::lookup_for_tx`] past the memo: the table, and the memo set
    /// again.
    #[inline(never)]
    fn lookup_for_tx_table(&mut self, ip: Ipv4Addr, now: Instant) -> Option<MacAddr> {
        let delay = self.t.delay;
        let Some(Entry::Resolved {
            mac,
            nud,
            last_used,
        }) = self.map.get_mut(&ip)
        else {
            return None;
        };
        *last_used = now;
        let mac = *mac;
        // REACHABLE (or static) stays usable as is until `until`.
        let memo_until = match nud {
            Some(Nud::Reachable { until }) => (*until).min(now + MEMO_FOR),
            None => now + MEMO_FOR,
            _ => now,
        };
        self.memo = (memo_until > now).then_some(TxMemo {
            ip,
            mac,
            until: memo_until,
        });
        let start_delay = match nud {
            Some(Nud::Reachable { until }) => *until <= now,
            Some(Nud::Stale) => true,
            _ => false,
        };
        if start_delay {
            let until = now + delay;
            *nud = Some(Nud::Delay { until });
            self.note_deadline(until);
        }
        Some(mac)
    }

    /// RFC 4861 §7.3.1: the upper layer saw forward progress to `ip` (an
    /// ACK of new data, new in-order data): the entry is REACHABLE again.
    pub(crate) fn confirm(&mut self, ip: Ipv4Addr, now: Instant) {
        // The new reachable time may end before the memoized one.
        self.memo = None;
        if let Some(Entry::Resolved { nud: Some(_), .. }) = self.map.get(&ip) {
            let until = self.reachable_until(ip, now);
            if let Some(Entry::Resolved { nud, .. }) = self.map.get_mut(&ip) {
                *nud = Some(Nud::Reachable { until });
            }
        }
    }

    /// The upper layer retransmits to `ip` without progress: a REACHABLE
    /// entry is no longer trusted (it goes STALE, so its next use checks
    /// it). Linux does the same through `dst_negative_advice`.
    pub(crate) fn reverify(&mut self, ip: Ipv4Addr) {
        self.memo = None;
        if let Some(Entry::Resolved {
            nud: Some(n @ Nud::Reachable { .. }),
            ..
        }) = self.map.get_mut(&ip)
        {
            *n = Nud::Stale;
        }
    }

    /// Whether `ip` has an entry (resolved or pending): RFC 826's "is the
    /// pair already in my translation table".
    pub(crate) fn contains(&self, ip: Ipv4Addr) -> bool {
        self.map.contains_key(&ip)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Packets waiting for resolution, over all next hops.
    pub(crate) fn queued(&self) -> usize {
        self.frames
    }

    /// Drop the oldest packet of the resolution that has waited longest,
    /// to make room under the total bound.
    fn evict_oldest(&mut self) -> Option<Waiting<F>> {
        self.memo = None;
        while let Some((ip, g)) = self.order.pop_front() {
            let Some(Entry::Pending {
                queue, gen, listed, ..
            }) = self.map.get_mut(&ip)
            else {
                continue; // Resolved or failed since.
            };
            if *gen != g {
                continue; // A later resolution of the same address.
            }
            let Some(w) = queue.pop_front() else {
                *listed = false;
                continue;
            };
            if queue.is_empty() {
                *listed = false;
            } else {
                self.order.push_front((ip, g));
            }
            self.frames -= 1;
            return Some(w);
        }
        None
    }

    /// List resolution `(ip, gen)` as waiting, dropping stale records when
    /// they outnumber the cache (amortized O(1)).
    fn list(&mut self, ip: Ipv4Addr, gen: u32) {
        self.order.push_back((ip, gen));
        if self.order.len() > 2 * ARP_CACHE_MAX {
            let map = &self.map;
            self.order.retain(|(ip, g)| {
                matches!(map.get(ip), Some(Entry::Pending { gen, listed: true, .. }) if gen == g)
            });
        }
    }

    /// Queue `pkt` until `ip` resolves, starting a resolution if none runs.
    /// Over the per-hop or the total bound the oldest waiting packet is
    /// handed back to be dropped (Linux `__neigh_event_send`).
    pub(crate) fn enqueue(&mut self, ip: Ipv4Addr, pkt: Waiting<F>, now: Instant) -> Enqueued<F> {
        self.memo = None;
        let queue_max = self.queue_max;
        let mut start = false;
        let full = self.map.len() >= ARP_CACHE_MAX;
        match self.map.get_mut(&ip) {
            Some(Entry::Pending { queue, .. }) if queue.len() >= queue_max => {
                // Per-hop bound: the oldest of this hop makes room.
                let dropped = queue.pop_front();
                if queue_max > 0 {
                    queue.push_back(pkt);
                    return Enqueued {
                        dropped,
                        start: false,
                    };
                }
                return Enqueued {
                    dropped: Some(pkt),
                    start: false,
                };
            }
            Some(Entry::Pending {
                queue, gen, listed, ..
            }) => {
                queue.push_back(pkt);
                self.frames += 1;
                if !*listed {
                    *listed = true;
                    let g = *gen;
                    self.list(ip, g);
                }
            }
            Some(Entry::Resolved { .. }) => {
                // Callers resolve first; never queue behind a known MAC.
                return Enqueued {
                    dropped: Some(pkt),
                    start: false,
                };
            }
            None if full || queue_max == 0 => {
                return Enqueued {
                    dropped: Some(pkt),
                    start: false,
                };
            }
            None => {
                let gen = self.next_gen;
                self.next_gen = self.next_gen.wrapping_add(1);
                let next = now + self.t.retry;
                self.map.insert(
                    ip,
                    Entry::Pending {
                        next,
                        retries_left: self.t.retries,
                        queue: VecDeque::from([pkt]),
                        gen,
                        listed: true,
                    },
                );
                self.list(ip, gen);
                self.frames += 1;
                self.note_deadline(next);
                start = true;
            }
        }
        // Total bound: the longest-waiting resolution gives up its oldest.
        let dropped = if self.frames > self.frames_max {
            self.evict_oldest()
        } else {
            None
        };
        Enqueued { dropped, start }
    }

    /// Record `ip` is at `mac` (RFC 826: merge into an existing entry, or add
    /// one when `create`). A `solicited` reply confirms reachability (RFC
    /// 4861 §7.3.3); other news leaves an entry STALE unless it changed
    /// nothing. Returns the packets that waited for it.
    pub(crate) fn learn(
        &mut self,
        ip: Ipv4Addr,
        mac: MacAddr,
        now: Instant,
        create: bool,
        solicited: bool,
    ) -> Option<VecDeque<Waiting<F>>> {
        self.memo = None;
        let room = self.map.len() < ARP_CACHE_MAX;
        let fresh = if solicited {
            Nud::Reachable {
                until: self.reachable_until(ip, now),
            }
        } else {
            Nud::Stale
        };
        let new = Entry::Resolved {
            mac,
            nud: Some(fresh),
            last_used: now,
        };
        match self.map.get_mut(&ip) {
            // A static entry stays static (and keeps its MAC).
            Some(Entry::Resolved { nud: None, .. }) => None,
            Some(Entry::Resolved {
                mac: old,
                nud: Some(n),
                ..
            }) => {
                if *old != mac || solicited {
                    *old = mac;
                    *n = fresh;
                }
                self.note_stale_gc(now);
                None
            }
            Some(e @ Entry::Pending { .. }) => match core::mem::replace(e, new) {
                Entry::Pending { queue, .. } => {
                    self.frames -= queue.len();
                    self.note_stale_gc(now);
                    Some(queue)
                }
                Entry::Resolved { .. } => None,
            },
            None if create && room => {
                self.map.insert(ip, new);
                self.note_stale_gc(now);
                None
            }
            None => None,
        }
    }

    fn note_stale_gc(&mut self, now: Instant) {
        self.note_deadline(now + self.t.stale);
    }

    /// A permanent entry (never expires, never overwritten by ARP).
    pub(crate) fn insert_static(
        &mut self,
        ip: Ipv4Addr,
        mac: MacAddr,
    ) -> Option<VecDeque<Waiting<F>>> {
        self.memo = None;
        let e = Entry::Resolved {
            mac,
            nud: None,
            last_used: Instant::ZERO,
        };
        match self.map.insert(ip, e) {
            Some(Entry::Pending { queue, .. }) => {
                self.frames -= queue.len();
                Some(queue)
            }
            _ => None,
        }
    }

    /// When [`ArpCache::poll`] next has something to do.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.deadline
    }

    /// Run the timers due by `now`: pushes the requests to send onto
    /// `requests` (in a deterministic order) and the queues of failed
    /// resolutions onto `failed`.
    pub(crate) fn poll(
        &mut self,
        now: Instant,
        requests: &mut Vec<Request>,
        failed: &mut Vec<Waiting<F>>,
    ) -> Polled {
        if self.deadline.is_none_or(|d| now < d) {
            return Polled::default();
        }
        self.memo = None;
        let t = self.t;
        let mut out = Polled::default();
        let mut deadline: Option<Instant> = None;
        let mut note = |at: Instant| deadline = Some(deadline.map_or(at, |d: Instant| d.min(at)));
        let mut lost = 0;
        self.map.retain(|ip, e| match e {
            Entry::Resolved { nud: None, .. } => true,
            Entry::Resolved {
                mac,
                nud: Some(nud),
                last_used,
            } => match *nud {
                Nud::Reachable { until } if until > now => {
                    note(until);
                    true
                }
                Nud::Reachable { .. } | Nud::Stale => {
                    // RFC 4861 §7.3.3: REACHABLE times out to STALE; an
                    // unused STALE entry is eventually collected.
                    *nud = Nud::Stale;
                    let gc = *last_used + t.stale;
                    note(gc);
                    gc > now
                }
                Nud::Delay { until } if until > now => {
                    note(until);
                    true
                }
                Nud::Delay { .. } => {
                    // No confirmation while delaying: probe the cached MAC.
                    let next = now + t.retry;
                    *nud = Nud::Probe {
                        next,
                        left: t.ucast_probes.saturating_sub(1),
                    };
                    note(next);
                    requests.push(Request {
                        ip: *ip,
                        unicast: Some(*mac),
                    });
                    true
                }
                Nud::Probe { next, .. } if next > now => {
                    note(next);
                    true
                }
                Nud::Probe { left, .. } if left > 0 => {
                    let next = now + t.retry;
                    *nud = Nud::Probe {
                        next,
                        left: left - 1,
                    };
                    note(next);
                    requests.push(Request {
                        ip: *ip,
                        unicast: Some(*mac),
                    });
                    true
                }
                Nud::Probe { .. } => {
                    // Unreachable: forget it; the next packet resolves anew.
                    out.unreachable += 1;
                    false
                }
            },
            Entry::Pending {
                next,
                retries_left,
                queue,
                ..
            } => {
                if *next > now {
                    note(*next);
                    true
                } else if *retries_left > 0 {
                    *retries_left -= 1;
                    *next = now + t.retry;
                    note(*next);
                    requests.push(Request {
                        ip: *ip,
                        unicast: None,
                    });
                    true
                } else {
                    lost += queue.len();
                    failed.extend(queue.drain(..));
                    out.failed += 1;
                    false
                }
            }
        });
        // Deterministic request order whatever the table layout.
        requests.sort_unstable_by_key(|r| (r.ip, r.unicast.map(|m| m.0)));
        self.frames -= lost;
        self.deadline = deadline;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing() -> ArpTiming {
        ArpTiming {
            reachable: Duration::from_secs(30),
            delay: Duration::from_secs(5),
            ucast_probes: 3,
            retry: Duration::from_secs(1),
            retries: 2,
            stale: Duration::from_secs(60),
        }
    }

    fn cache(queue: usize) -> ArpCache<u32> {
        ArpCache::new(KeyedHasher::new(&[7; 16], 1), timing(), queue, 1024)
    }

    fn w(n: u32) -> Waiting<u32> {
        Waiting {
            frame: n,
            start: 0,
            end: 0,
        }
    }

    fn s(secs: u64) -> Instant {
        Instant::from_millis(secs * 1000)
    }

    const IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
    const MAC2: MacAddr = MacAddr([2, 0, 0, 0, 0, 9]);

    fn poll(c: &mut ArpCache<u32>, t: Instant) -> (Vec<Request>, Vec<Waiting<u32>>, Polled) {
        let (mut r, mut f) = (vec![], vec![]);
        let p = c.poll(t, &mut r, &mut f);
        (r, f, p)
    }

    #[test]
    fn queue_then_resolve_flushes_in_order() {
        let mut c = cache(2);
        let t = s(0);
        let e = c.enqueue(IP, w(1), t);
        assert!(e.start && e.dropped.is_none());
        let e = c.enqueue(IP, w(2), t);
        assert!(!e.start && e.dropped.is_none());
        // Full: the oldest makes room (Linux drops the head too).
        let e = c.enqueue(IP, w(3), t);
        assert!(!e.start && matches!(e.dropped, Some(Waiting { frame: 1, .. })));
        assert_eq!(c.lookup(IP), None);
        assert_eq!(c.queued(), 2);
        let q = c.learn(IP, MAC, t, false, true).unwrap();
        assert_eq!(q.iter().map(|w| w.frame).collect::<Vec<_>>(), vec![2, 3]);
        assert_eq!(c.queued(), 0);
        assert_eq!(c.lookup_for_tx(IP, t), Some(MAC));
    }

    #[test]
    fn retries_then_give_up() {
        let mut c = cache(4);
        c.enqueue(IP, w(1), s(0));
        assert_eq!(c.poll_at(), Some(s(1)));
        assert!(poll(&mut c, Instant::from_millis(999)).0.is_empty());
        let bcast = Request {
            ip: IP,
            unicast: None,
        };
        assert_eq!(poll(&mut c, s(1)).0, vec![bcast]);
        assert_eq!(poll(&mut c, s(2)).0, vec![bcast]);
        assert_eq!(c.poll_at(), Some(s(3)));
        let (_, failed, p) = poll(&mut c, s(3));
        assert_eq!((failed.len(), p.failed), (1, 1));
        assert_eq!(c.len(), 0);
        assert_eq!(c.poll_at(), None);
    }

    #[test]
    fn reachable_time_is_randomized_within_half_to_one_and_a_half() {
        let mut c = cache(4);
        for i in 0..50u64 {
            let until = c.reachable_until(IP, s(i));
            let d = until.saturating_since(s(i));
            assert!(
                d >= Duration::from_secs(15) && d <= Duration::from_secs(45),
                "{d:?}"
            );
        }
    }

    #[test]
    fn unconfirmed_entry_goes_stale_then_delay_probe_and_is_dropped() {
        let mut c = cache(4);
        c.learn(IP, MAC, s(0), true, true);
        // Past any reachable time (≤ 45 s), then used: DELAY for 5 s.
        poll(&mut c, s(46));
        assert_eq!(c.lookup_for_tx(IP, s(46)), Some(MAC));
        assert!(poll(&mut c, s(50)).0.is_empty());
        let probe = Request {
            ip: IP,
            unicast: Some(MAC),
        };
        assert_eq!(poll(&mut c, s(51)).0, vec![probe]);
        // Still used while probing (RFC 4861 §7.3.3).
        assert_eq!(c.lookup_for_tx(IP, s(51)), Some(MAC));
        assert_eq!(poll(&mut c, s(52)).0, vec![probe]);
        assert_eq!(poll(&mut c, s(53)).0, vec![probe]);
        let (r, _, p) = poll(&mut c, s(54));
        assert!(r.is_empty());
        assert_eq!(p.unreachable, 1);
        assert!(!c.contains(IP));
    }

    #[test]
    fn confirmation_keeps_the_entry_reachable_and_a_reply_ends_probing() {
        let mut c = cache(4);
        c.learn(IP, MAC, s(0), true, true);
        for t in (10..200).step_by(10) {
            c.confirm(IP, s(t));
            poll(&mut c, s(t));
            assert_eq!(c.lookup_for_tx(IP, s(t)), Some(MAC));
            assert!(poll(&mut c, s(t)).0.is_empty(), "no probe at {t} s");
        }
        // Progress stops; the entry is re-verified and answered.
        c.reverify(IP);
        c.lookup_for_tx(IP, s(200));
        assert_eq!(poll(&mut c, s(205)).0.len(), 1);
        c.learn(IP, MAC, s(205), false, true);
        assert!(poll(&mut c, s(206)).0.is_empty());
        assert_eq!(c.lookup_for_tx(IP, s(206)), Some(MAC));
    }

    /// The memoized transmit lookup answers as the table would: it ends
    /// with REACHABLE (the next use starts DELAY), and a new MAC or a
    /// re-verification replaces it at once.
    #[test]
    fn memoized_lookup_follows_the_table() {
        let probe = Request {
            ip: IP,
            unicast: Some(MAC),
        };
        let mut c = cache(4);
        c.learn(IP, MAC, s(0), true, true);
        // Used every 0.5 s, never polled: REACHABLE ends by 45 s, so the
        // use at 46 s starts DELAY and a probe follows 5 s later.
        for ms in (0..=46_000).step_by(500) {
            assert_eq!(c.lookup_for_tx(IP, Instant::from_millis(ms)), Some(MAC));
        }
        assert_eq!(poll(&mut c, s(51)).0, vec![probe]);

        let mut c = cache(4);
        c.learn(IP, MAC, s(0), true, true);
        assert_eq!(c.lookup_for_tx(IP, s(1)), Some(MAC));
        c.reverify(IP);
        assert_eq!(c.lookup_for_tx(IP, s(1)), Some(MAC));
        assert_eq!(poll(&mut c, s(6)).0, vec![probe]);
        c.learn(IP, MAC2, s(7), false, false);
        assert_eq!(c.lookup_for_tx(IP, s(7)), Some(MAC2));
    }

    #[test]
    fn merge_rule_only_creates_when_asked_and_a_new_mac_is_stale() {
        let mut c = cache(4);
        let t = s(0);
        c.learn(IP, MAC, t, false, false);
        assert!(!c.contains(IP));
        c.learn(IP, MAC, t, true, false);
        assert_eq!(c.lookup(IP), Some(MAC));
        c.learn(IP, MAC2, t, false, false);
        assert_eq!(c.lookup(IP), Some(MAC2));
        // Unused STALE entries are collected.
        poll(&mut c, s(60));
        assert!(!c.contains(IP));
    }

    #[test]
    fn static_entries_survive() {
        let mut c = cache(4);
        c.insert_static(IP, MAC);
        c.learn(IP, MacAddr([9; 6]), s(0), true, true);
        c.reverify(IP);
        assert_eq!(c.lookup_for_tx(IP, s(1000)), Some(MAC));
        assert!(poll(&mut c, s(1000)).0.is_empty());
    }

    fn ip(i: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(IP) + i)
    }

    #[test]
    fn total_bound_drops_the_oldest_of_the_longest_waiting_hop() {
        let mut c = ArpCache::new(KeyedHasher::new(&[7; 16], 1), timing(), 4, 6);
        let t = s(0);
        // Three hops, two packets each: at the total bound.
        for i in 0..3 {
            for k in 0..2 {
                assert!(c.enqueue(ip(i), w(10 * i + k), t).dropped.is_none());
            }
        }
        assert_eq!(c.queued(), 6);
        // A fourth hop: hop 0 (waiting longest) loses its oldest, then the next.
        let e = c.enqueue(ip(3), w(30), t);
        assert!(e.start && matches!(e.dropped, Some(Waiting { frame: 0, .. })));
        let e = c.enqueue(ip(3), w(31), t);
        assert!(matches!(e.dropped, Some(Waiting { frame: 1, .. })));
        // Hop 0 is empty now (still resolving): hop 1 is next.
        let e = c.enqueue(ip(3), w(32), t);
        assert!(matches!(e.dropped, Some(Waiting { frame: 10, .. })));
        assert_eq!(c.queued(), 6);
        // Hop 0 resolves with nothing left; hop 1 keeps its newer packet.
        assert_eq!(
            c.learn(ip(0), MAC, t, false, true).map(|q| q.len()),
            Some(0)
        );
        let q = c.learn(ip(1), MAC, t, false, true).unwrap();
        assert_eq!(q.iter().map(|w| w.frame).collect::<Vec<_>>(), vec![11]);
        assert_eq!(c.queued(), 5);
        // Failed resolutions give their frames back to the count.
        for k in 1..=3 {
            poll(&mut c, s(k));
        }
        assert_eq!((c.queued(), c.len()), (0, 2));
    }

    #[test]
    fn a_flood_of_distinct_hops_stays_within_the_total() {
        let mut c = ArpCache::new(KeyedHasher::new(&[7; 16], 1), timing(), 256, 32);
        let mut dropped = 0;
        for i in 0..20_000u32 {
            let e = c.enqueue(ip(i % 4000), w(i), s(0));
            dropped += usize::from(e.dropped.is_some());
            assert!(c.queued() <= 32);
            assert!(c.order.len() <= 2 * ARP_CACHE_MAX);
        }
        assert_eq!(c.queued() + dropped, 20_000);
        // The survivors are the newest.
        for i in 0..4000 {
            c.learn(ip(i), MAC, s(0), false, true);
        }
        assert_eq!(c.queued(), 0);
    }
}
