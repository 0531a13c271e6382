//! Sharing a finite frame pool between connections (like Linux's `tcp_mem`
//! and `sk_stream_memory_free`).
//!
//! Transmit: application data sits in send-buffer frames until it is
//! acknowledged, so unchecked sends would drain the device's pool and leave
//! nothing for pure ACKs, FINs, RSTs, ARP, ICMP and copies — every
//! connection would then stall for good. Application data may therefore
//! only take frames while the device's free frames stay above a reserve;
//! `send` returns short (possibly 0) instead, and the connection joins a
//! FIFO of waiters. When free frames rise above the reserve plus a
//! hysteresis, waiters get `Writable` in turn, and while others wait one
//! `send` takes only its fair share of what is above the reserve.
//!
//! Receive: arrivals need free RX frames (on AF_XDP, fill-ring entries).
//! Connections hold received frames only up to their `rcv_buf` each; the
//! in-order part is freed by the application reading it, but out-of-order
//! data waits for a retransmission that itself needs a frame. Below the RX
//! reserve the stack therefore prunes out-of-order queues (collapse first,
//! which copies within frames already held and takes none from the pool),
//! round-robin over the connections. The limit that remains: in-order data
//! an application leaves unread stays held (at most its `rcv_buf`); when the
//! sum of those exceeds the RX pool less the reserve, arrivals are dropped
//! (counted by the device) until applications read — peers retransmit, and
//! nothing deadlocks while applications read.

use super::{ConnId, Stack};
use crate::app::Event;
use crate::io::Device;
use std::collections::VecDeque;

/// How a stack shares the device's frame pools (part of
/// [`StackConfig`](super::StackConfig)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PoolConfig {
    /// TX frames application data may not take: kept for control traffic
    /// and copies. `None`: [`default_reserve`] of the device's pool.
    pub tx_reserve: Option<usize>,
    /// RX frames below which out-of-order queues are pruned. `None`:
    /// [`default_reserve`] of the device's RX pool.
    pub rx_reserve: Option<usize>,
}

/// Smallest default reserve: a burst of ACKs for a few dozen connections.
pub const MIN_RESERVE: usize = 64;

/// The default reserve of a pool of `total` frames: max(64, total/16), but
/// at most a quarter of a small pool. Unknown size: 64.
pub fn default_reserve(total: Option<usize>) -> usize {
    match total {
        Some(t) => (t / 16).max(MIN_RESERVE).min(t / 4),
        None => MIN_RESERVE,
    }
}

/// Free frames above the reserve needed before waiters are woken (so that
/// a pool hovering at the reserve does not wake one writer per frame).
pub fn hysteresis(reserve: usize) -> usize {
    (reserve / 4).max(8)
}

/// Frames one woken waiter is expected to use: how many waiters one poll
/// wakes for the frames above the reserve.
const WAKE_QUANTUM: usize = 4;

/// Waiters woken per poll when the device cannot tell its free frames.
const WAKE_UNKNOWN: usize = 8;

/// The stack's pool-pressure state.
pub(crate) struct PoolState {
    pub tx_reserve: usize,
    pub rx_reserve: usize,
    /// Connections whose `send` was cut short by the pool (not by their
    /// own send buffer), oldest first. Each at most once
    /// (`ConnEntry::pool_waiting`), so bounded by the connection table.
    pub waiters: VecDeque<ConnId>,
    /// Slot where the next RX prune starts (round-robin).
    pub prune_cursor: usize,
}

impl PoolState {
    pub fn new<D: Device>(cfg: &PoolConfig, dev: &D) -> Self {
        PoolState {
            tx_reserve: cfg
                .tx_reserve
                .unwrap_or_else(|| default_reserve(dev.total_frames())),
            rx_reserve: cfg
                .rx_reserve
                .unwrap_or_else(|| default_reserve(dev.rx_total_frames())),
            waiters: VecDeque::new(),
            prune_cursor: 0,
        }
    }
}

impl<D: Device> Stack<D> {
    /// TX frames one application `send` may take now: `None` when the
    /// device cannot tell (then only its `alloc` limits). While others
    /// wait, a fair share of the frames above the reserve.
    pub(super) fn data_frame_budget(&self) -> Option<usize> {
        let free = self.iface.dev.free_frames()?;
        let usable = free.saturating_sub(self.pool.tx_reserve);
        let waiting = self.pool.waiters.len();
        Some(if waiting == 0 || usable == 0 {
            usable
        } else {
            (usable / (waiting + 1)).max(1)
        })
    }

    /// `id`'s send was cut short by the pool: count it and queue it for a
    /// `Writable` once frames free up.
    pub(super) fn pool_short_write(&mut self, id: ConnId) {
        self.iface.counters.tx_pool_short_writes += 1;
        if let Some(e) = self.conns.get_mut(id) {
            if !e.pool_waiting {
                e.pool_waiting = true;
                self.pool.waiters.push_back(id);
            }
        }
    }

    /// Whether the next `poll` would wake waiters (for `poll_at`).
    pub(super) fn pool_wake_due(&self) -> bool {
        !self.pool.waiters.is_empty()
            && self
                .iface
                .dev
                .free_frames()
                .is_some_and(|f| f >= self.pool.tx_reserve + hysteresis(self.pool.tx_reserve))
    }

    /// Wake waiters, oldest first, as far as the frames above the reserve
    /// go (about `WAKE_QUANTUM` each).
    pub(super) fn pool_wake(&mut self) {
        if self.pool.waiters.is_empty() {
            return;
        }
        let n = match self.iface.dev.free_frames() {
            Some(free) => {
                let r = self.pool.tx_reserve;
                if free < r + hysteresis(r) {
                    return;
                }
                ((free - r) / WAKE_QUANTUM).max(1)
            }
            // Unknown size: probe for one free frame (dropping it returns it).
            None => match self.iface.dev.alloc() {
                Some(_) => WAKE_UNKNOWN,
                None => return,
            },
        };
        let mut woken = 0;
        while woken < n {
            let Some(id) = self.pool.waiters.pop_front() else {
                break;
            };
            let Some(e) = self.conns.get_mut(id) else {
                continue; // Closed meanwhile.
            };
            e.pool_waiting = false;
            if !e.visible || e.detached || e.conn.send_capacity() == 0 {
                continue; // Gone for the app, or its own buffer will wake it.
            }
            woken += 1;
            if !e.writable_queued {
                e.writable_queued = true;
                self.events.push_back(Event::Writable { id });
                self.iface.counters.tx_pool_wakeups += 1;
            }
        }
    }

    /// Below the RX reserve: prune out-of-order queues, round-robin from
    /// where the last prune stopped, until the reserve plus hysteresis is
    /// free again or every connection was visited.
    pub(super) fn rx_relieve(&mut self) {
        let r = self.pool.rx_reserve;
        match self.iface.dev.rx_free_frames() {
            Some(f) if f < r => {}
            _ => return,
        }
        let target = r + hysteresis(r);
        let slots = self.conns.slot_count();
        for k in 0..slots {
            let i = (self.pool.prune_cursor + k) % slots;
            if let Some(e) = self.conns.entry_at_mut(i) {
                if e.conn.has_ooo() && e.conn.prune_ooo() > 0 {
                    self.iface.counters.rx_ooo_pruned += 1;
                }
            }
            if self.iface.dev.rx_free_frames().is_none_or(|f| f >= target) {
                self.pool.prune_cursor = (i + 1) % slots;
                return;
            }
        }
        self.iface.counters.rx_pool_starved += 1;
    }
}

#[cfg(test)]
#[path = "pool_tests.rs"]
mod tests;
