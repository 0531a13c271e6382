//! The ARP cache (RFC 826): resolved entries with a lifetime, pending
//! resolutions with retries and a bounded queue of packets waiting for them.
//!
//! The cache holds only next hops on our own subnets and at most
//! [`ARP_CACHE_MAX`] entries, so hostile ARP traffic cannot grow it.

use super::hasher::{KeyedHasher, Map};
use crate::time::Instant;
use crate::wire::MacAddr;
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

enum Entry<F> {
    Resolved {
        mac: MacAddr,
        /// `None` for static entries.
        expires: Option<Instant>,
        /// A revalidation request was sent and not answered yet.
        refreshing: bool,
    },
    Pending {
        /// When the next request is due (or, after the last one, when we give up).
        next: Instant,
        /// Requests still to send after the ones already sent.
        retries_left: u32,
        queue: VecDeque<Waiting<F>>,
    },
}

/// Result of [`ArpCache::enqueue`].
pub(crate) struct Enqueued<F> {
    /// The packet handed back because the queue for its next hop (or the
    /// cache) is full: the caller drops it.
    pub dropped: Option<Waiting<F>>,
    /// A new resolution started: send the first request now.
    pub start: bool,
}

pub(crate) struct ArpCache<F> {
    map: Map<Ipv4Addr, Entry<F>>,
    ttl: Duration,
    retry: Duration,
    retries: u32,
    queue_max: usize,
    /// No entry has a deadline before this (may be early, never late).
    deadline: Option<Instant>,
}

impl<F> ArpCache<F> {
    pub(crate) fn new(
        hasher: KeyedHasher,
        ttl: Duration,
        retry: Duration,
        retries: u32,
        queue_max: usize,
    ) -> Self {
        ArpCache {
            map: Map::with_hasher(hasher),
            ttl,
            retry,
            retries,
            queue_max,
            deadline: None,
        }
    }

    fn note_deadline(&mut self, at: Instant) {
        self.deadline = Some(self.deadline.map_or(at, |d| d.min(at)));
    }

    /// The resolved MAC of `ip`, if known and not expired.
    pub(crate) fn lookup(&self, ip: Ipv4Addr, now: Instant) -> Option<MacAddr> {
        match self.map.get(&ip) {
            Some(Entry::Resolved { mac, expires, .. }) if expires.is_none_or(|e| now < e) => {
                Some(*mac)
            }
            _ => None,
        }
    }

    /// Like [`ArpCache::lookup`], for a packet about to leave. When the
    /// entry is about to lapse (within the time a resolution takes), the
    /// second value is `true`, once: the caller sends a request so the entry
    /// is revalidated before it expires and traffic never stalls on ARP
    /// (RFC 1122 §2.3.2.1).
    pub(crate) fn lookup_for_tx(&mut self, ip: Ipv4Addr, now: Instant) -> (Option<MacAddr>, bool) {
        let window = self.retry.saturating_mul(self.retries.saturating_add(1));
        match self.map.get_mut(&ip) {
            Some(Entry::Resolved {
                mac,
                expires: Some(e),
                refreshing,
            }) if now < *e => {
                let refresh = !*refreshing && e.saturating_since(now) <= window;
                *refreshing |= refresh;
                (Some(*mac), refresh)
            }
            Some(Entry::Resolved {
                mac, expires: None, ..
            }) => (Some(*mac), false),
            _ => (None, false),
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
        self.map
            .values()
            .map(|e| match e {
                Entry::Pending { queue, .. } => queue.len(),
                Entry::Resolved { .. } => 0,
            })
            .sum()
    }

    /// Queue `pkt` until `ip` resolves, starting a resolution if none runs.
    pub(crate) fn enqueue(&mut self, ip: Ipv4Addr, pkt: Waiting<F>, now: Instant) -> Enqueued<F> {
        let queue_max = self.queue_max;
        if let Some(Entry::Pending { queue, .. }) = self.map.get_mut(&ip) {
            if queue.len() >= queue_max {
                return Enqueued {
                    dropped: Some(pkt),
                    start: false,
                };
            }
            queue.push_back(pkt);
            return Enqueued {
                dropped: None,
                start: false,
            };
        }
        // No entry, or an expired resolved one: resolve (again).
        if !self.map.contains_key(&ip) && self.map.len() >= ARP_CACHE_MAX {
            return Enqueued {
                dropped: Some(pkt),
                start: false,
            };
        }
        let mut queue = VecDeque::new();
        let dropped = if queue_max > 0 {
            queue.push_back(pkt);
            None
        } else {
            Some(pkt)
        };
        let next = now + self.retry;
        self.map.insert(
            ip,
            Entry::Pending {
                next,
                retries_left: self.retries,
                queue,
            },
        );
        self.note_deadline(next);
        Enqueued {
            dropped,
            start: true,
        }
    }

    /// Record `ip` is at `mac` (RFC 826: merge into an existing entry, or add
    /// one when `create`). Returns the packets that waited for it.
    pub(crate) fn learn(
        &mut self,
        ip: Ipv4Addr,
        mac: MacAddr,
        now: Instant,
        create: bool,
    ) -> Option<VecDeque<Waiting<F>>> {
        let expires = now + self.ttl;
        let room = self.map.len() < ARP_CACHE_MAX;
        match self.map.get_mut(&ip) {
            Some(e) => {
                let old = core::mem::replace(
                    e,
                    Entry::Resolved {
                        mac,
                        expires: Some(expires),
                        refreshing: false,
                    },
                );
                match old {
                    // A static entry stays static (and keeps its MAC).
                    Entry::Resolved {
                        expires: None,
                        mac: m,
                        ..
                    } => {
                        *e = Entry::Resolved {
                            mac: m,
                            expires: None,
                            refreshing: false,
                        };
                        None
                    }
                    Entry::Resolved { .. } => {
                        self.note_deadline(expires);
                        None
                    }
                    Entry::Pending { queue, .. } => {
                        self.note_deadline(expires);
                        Some(queue)
                    }
                }
            }
            None if create && room => {
                self.map.insert(
                    ip,
                    Entry::Resolved {
                        mac,
                        expires: Some(expires),
                        refreshing: false,
                    },
                );
                self.note_deadline(expires);
                None
            }
            None => None,
        }
    }

    /// A permanent entry (never expires, never overwritten by ARP).
    pub(crate) fn insert_static(
        &mut self,
        ip: Ipv4Addr,
        mac: MacAddr,
    ) -> Option<VecDeque<Waiting<F>>> {
        let e = Entry::Resolved {
            mac,
            expires: None,
            refreshing: false,
        };
        match self.map.insert(ip, e) {
            Some(Entry::Pending { queue, .. }) => Some(queue),
            _ => None,
        }
    }

    /// When [`ArpCache::poll`] next has something to do.
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.deadline
    }

    /// Expire entries and run retries due by `now`: pushes next hops that
    /// need a request onto `requests`, and the queues of given-up
    /// resolutions onto `failed`.
    pub(crate) fn poll(
        &mut self,
        now: Instant,
        requests: &mut Vec<Ipv4Addr>,
        failed: &mut Vec<Waiting<F>>,
    ) -> usize {
        if self.deadline.is_none_or(|d| now < d) {
            return 0;
        }
        let retry = self.retry;
        let mut gave_up = 0;
        let mut deadline: Option<Instant> = None;
        let mut note = |at: Instant| deadline = Some(deadline.map_or(at, |d: Instant| d.min(at)));
        self.map.retain(|ip, e| match e {
            Entry::Resolved { expires: None, .. } => true,
            Entry::Resolved {
                expires: Some(t), ..
            } => {
                if *t <= now {
                    false
                } else {
                    note(*t);
                    true
                }
            }
            Entry::Pending {
                next,
                retries_left,
                queue,
            } => {
                if *next > now {
                    note(*next);
                    true
                } else if *retries_left > 0 {
                    *retries_left -= 1;
                    *next = now + retry;
                    note(*next);
                    requests.push(*ip);
                    true
                } else {
                    failed.extend(queue.drain(..));
                    gave_up += 1;
                    false
                }
            }
        });
        // Deterministic request order whatever the table layout.
        requests.sort_unstable();
        self.deadline = deadline;
        gave_up
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(queue: usize) -> ArpCache<u32> {
        ArpCache::new(
            KeyedHasher::new(&[7; 16], 1),
            Duration::from_secs(60),
            Duration::from_secs(1),
            2,
            queue,
        )
    }

    fn w(n: u32) -> Waiting<u32> {
        Waiting {
            frame: n,
            start: 0,
            end: 0,
        }
    }

    const IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    #[test]
    fn queue_then_resolve_flushes_in_order() {
        let mut c = cache(2);
        let t = Instant::from_millis(0);
        let e = c.enqueue(IP, w(1), t);
        assert!(e.start && e.dropped.is_none());
        let e = c.enqueue(IP, w(2), t);
        assert!(!e.start && e.dropped.is_none());
        let e = c.enqueue(IP, w(3), t);
        assert!(!e.start && matches!(e.dropped, Some(Waiting { frame: 3, .. })));
        assert_eq!(c.lookup(IP, t), None);
        let q = c.learn(IP, MAC, t, false).unwrap();
        assert_eq!(q.iter().map(|w| w.frame).collect::<Vec<_>>(), vec![1, 2]);
        assert_eq!(c.lookup(IP, t), Some(MAC));
        assert_eq!(c.lookup(IP, t + Duration::from_secs(60)), None);
    }

    #[test]
    fn retries_then_give_up() {
        let mut c = cache(4);
        let t0 = Instant::from_millis(0);
        c.enqueue(IP, w(1), t0);
        let (mut req, mut failed) = (vec![], vec![]);
        assert_eq!(c.poll_at(), Some(Instant::from_millis(1000)));
        c.poll(Instant::from_millis(999), &mut req, &mut failed);
        assert!(req.is_empty());
        c.poll(Instant::from_millis(1000), &mut req, &mut failed);
        assert_eq!(req, vec![IP]);
        c.poll(Instant::from_millis(2000), &mut req, &mut failed);
        assert_eq!(req, vec![IP, IP]);
        assert_eq!(c.poll_at(), Some(Instant::from_millis(3000)));
        assert_eq!(c.poll(Instant::from_millis(3000), &mut req, &mut failed), 1);
        assert_eq!(failed.len(), 1);
        assert_eq!(c.len(), 0);
        assert_eq!(c.poll_at(), None);
    }

    #[test]
    fn merge_rule_only_creates_when_asked() {
        let mut c = cache(4);
        let t = Instant::from_millis(0);
        c.learn(IP, MAC, t, false);
        assert!(!c.contains(IP));
        c.learn(IP, MAC, t, true);
        assert_eq!(c.lookup(IP, t), Some(MAC));
        let mac2 = MacAddr([2, 0, 0, 0, 0, 9]);
        c.learn(IP, mac2, t, false);
        assert_eq!(c.lookup(IP, t), Some(mac2));
        // Expiry removes it at poll.
        let (mut r, mut f) = (vec![], vec![]);
        c.poll(t + Duration::from_secs(60), &mut r, &mut f);
        assert!(!c.contains(IP));
    }

    #[test]
    fn static_entries_survive() {
        let mut c = cache(4);
        let t = Instant::from_millis(0);
        c.insert_static(IP, MAC);
        c.learn(IP, MacAddr([9; 6]), t, true);
        assert_eq!(c.lookup(IP, t + Duration::from_secs(1000)), Some(MAC));
    }
}
