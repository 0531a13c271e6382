//! The Linked Increases Algorithm (RFC 6356): congestion control coupled
//! across the subflows of one MPTCP connection, so that the connection
//! takes no more from a bottleneck its subflows share than one TCP flow
//! would, and moves its traffic to its least congested paths.
//!
//! Each subflow keeps Reno's slow start and its own window reductions
//! (RFC 6356 §3: "as in standard TCP"); only the congestion-avoidance
//! increase is coupled. The subflows publish their window and smoothed
//! RTT into a [`LiaGroup`] (atomics: subflows may live in different
//! stacks, or workers), and each ACK reads the others.

use super::newreno::NewReno;
use super::CongestionControl;
use crate::time::Instant;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::sync::Arc;

/// Subflows one group couples, at most (Linux's MPTCP allows 8).
pub const MAX_SUBFLOWS: usize = 8;

/// One subflow's published state.
#[derive(Debug, Default)]
struct Slot {
    used: AtomicBool,
    /// Congestion window, bytes.
    cwnd: AtomicU64,
    /// Smoothed RTT, µs; 0 before the first sample.
    srtt_us: AtomicU64,
}

/// The subflows of one MPTCP connection, as LIA couples them.
#[derive(Debug, Default)]
pub struct LiaGroup {
    slots: [Slot; MAX_SUBFLOWS],
}

impl LiaGroup {
    pub fn new() -> Arc<Self> {
        Arc::new(LiaGroup::default())
    }

    /// Take a free slot (`None`: the group is full; the subflow then runs
    /// uncoupled Reno).
    fn join(&self) -> Option<usize> {
        self.slots.iter().position(|s| {
            s.used
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        })
    }

    fn publish(&self, slot: usize, cwnd: usize, srtt: Option<Duration>) {
        let s = &self.slots[slot];
        s.cwnd.store(cwnd as u64, Ordering::Relaxed);
        if let Some(r) = srtt {
            s.srtt_us
                .store((r.as_micros() as u64).max(1), Ordering::Relaxed);
        }
    }

    fn leave(&self, slot: usize) {
        let s = &self.slots[slot];
        s.cwnd.store(0, Ordering::Relaxed);
        s.srtt_us.store(0, Ordering::Relaxed);
        s.used.store(false, Ordering::Release);
    }

    /// Subflows in the group now.
    pub fn len(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.used.load(Ordering::Relaxed))
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// RFC 6356 §3: the increase per acknowledged byte is
    /// `min(alpha / cwnd_total, 1 / cwnd_i)` MSS, with
    /// `alpha = cwnd_total · max_i(cwnd_i / rtt_i²) / (Σ_i cwnd_i / rtt_i)²`.
    /// So `cwnd_total / alpha = (Σ_i cwnd_i / rtt_i)² / max_i(cwnd_i / rtt_i²)`
    /// acknowledged bytes earn one MSS; returned here (the caller takes the
    /// larger of it and its own cwnd). Subflows without an RTT sample yet
    /// are left out; `None` when none has one.
    fn bytes_per_mss(&self) -> Option<f64> {
        let mut sum = 0.0f64;
        let mut best = 0.0f64;
        for s in &self.slots {
            let (c, r) = (
                s.cwnd.load(Ordering::Relaxed) as f64,
                s.srtt_us.load(Ordering::Relaxed) as f64,
            );
            if !s.used.load(Ordering::Relaxed) || c == 0.0 || r == 0.0 {
                continue;
            }
            sum += c / r;
            best = best.max(c / (r * r));
        }
        (best > 0.0).then(|| sum * sum / best)
    }
}

/// A subflow's controller under LIA.
#[derive(Debug)]
pub struct Lia {
    reno: NewReno,
    group: Arc<LiaGroup>,
    slot: Option<usize>,
    /// RFC 6298 §2 smoothing of the RTT samples the connection reports.
    srtt: Option<Duration>,
}

impl Lia {
    /// A subflow joining `group`, starting at `iw_segments`·`mss`.
    pub fn new(group: Arc<LiaGroup>, mss: usize, iw_segments: u32) -> Self {
        let slot = group.join();
        let l = Lia {
            reno: NewReno::new(mss, iw_segments),
            group,
            slot,
            srtt: None,
        };
        l.publish();
        l
    }

    fn publish(&self) {
        if let Some(s) = self.slot {
            self.group.publish(s, self.reno.cwnd(), self.srtt);
        }
    }
}

impl Drop for Lia {
    fn drop(&mut self) {
        if let Some(s) = self.slot {
            self.group.leave(s);
        }
    }
}

impl CongestionControl for Lia {
    fn cwnd(&self) -> usize {
        self.reno.cwnd()
    }

    fn ssthresh(&self) -> usize {
        self.reno.ssthresh()
    }

    fn on_ack(&mut self, _now: Instant, acked: usize, in_flight: usize, rtt: Option<Duration>) {
        if let Some(r) = rtt {
            // RFC 6298 §2.3: SRTT ← 7/8 SRTT + 1/8 R'.
            self.srtt = Some(self.srtt.map_or(r, |s| (s * 7 + r) / 8));
        }
        self.publish();
        let per_mss = match (self.slot, self.group.bytes_per_mss()) {
            (Some(_), Some(b)) if b.is_finite() => b.min(usize::MAX as f64 / 2.0) as usize,
            _ => self.reno.cwnd(),
        };
        self.reno.grow(acked, in_flight, per_mss);
        self.publish();
    }

    fn on_congestion_event(&mut self, now: Instant, in_flight: usize) {
        self.reno.on_congestion_event(now, in_flight);
        self.publish();
    }

    fn on_recovery_exit(&mut self, now: Instant) {
        self.reno.on_recovery_exit(now);
        self.publish();
    }

    fn on_rto(&mut self, now: Instant, in_flight: usize) {
        self.reno.on_rto(now, in_flight);
        self.publish();
    }

    fn on_spurious(&mut self, now: Instant) {
        self.reno.on_spurious(now);
        self.publish();
    }

    fn on_idle_restart(&mut self, now: Instant) {
        self.reno.on_idle_restart(now);
        self.publish();
    }

    fn penalise(&mut self, now: Instant) {
        self.reno.penalise(now);
        self.publish();
    }

    fn set_mss(&mut self, mss: usize) {
        self.reno.set_mss(mss);
        self.publish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;
    const T: Instant = Instant::ZERO;

    /// Leave slow start at `cwnd` segments (a loss at twice that).
    fn in_avoidance(group: &Arc<LiaGroup>, segs: usize) -> Lia {
        let mut l = Lia::new(group.clone(), MSS, 10);
        l.on_congestion_event(T, 2 * segs * MSS);
        assert_eq!(l.cwnd(), segs * MSS);
        l
    }

    /// Ack one whole window (cwnd-limited), with RTT samples `rtt`.
    fn ack_window(l: &mut Lia, rtt: Duration) {
        let mut left = l.cwnd();
        while left > 0 {
            let a = MSS.min(left);
            l.on_ack(T, a, l.cwnd(), Some(rtt));
            left -= a;
        }
    }

    #[test]
    fn one_subflow_is_reno() {
        let g = LiaGroup::new();
        let mut l = in_avoidance(&g, 10);
        for _ in 0..5 {
            ack_window(&mut l, Duration::from_millis(10));
        }
        // One MSS per window, as NewReno.
        assert_eq!(l.cwnd(), 15 * MSS);
    }

    #[test]
    fn two_equal_subflows_grow_a_quarter_mss_per_round_trip_each() {
        // RFC 6356 §3 with equal windows c and RTTs r: alpha = 2c·(c/r²) /
        // (2c/r)² = 1/2, so a byte earns alpha / cwnd_total = 1 / (4c) MSS:
        // each subflow grows a quarter MSS per round trip (and halves only
        // its own window on a loss), so the pair takes a single TCP flow's
        // share of a bottleneck they share (cwnd_i = sqrt(1 / 2p) each,
        // sqrt(2 / p) together).
        let g = LiaGroup::new();
        let mut a = in_avoidance(&g, 20);
        let mut b = in_avoidance(&g, 20);
        let r = Duration::from_millis(10);
        // Both publish an RTT before the measurement.
        a.on_ack(T, 0, a.cwnd(), Some(r));
        b.on_ack(T, 0, b.cwnd(), Some(r));
        for _ in 0..16 {
            ack_window(&mut a, r);
            ack_window(&mut b, r);
        }
        let (ga, gb) = ((a.cwnd() - 20 * MSS) / MSS, (b.cwnd() - 20 * MSS) / MSS);
        // 16 round trips: 4 MSS each at the start's window, a little less
        // as the windows grow (one MSS per 4·cwnd bytes); Reno: 16 each.
        assert!(
            (3..=4).contains(&ga) && (3..=4).contains(&gb),
            "{ga} and {gb} MSS"
        );
    }

    #[test]
    fn a_subflow_is_never_more_aggressive_than_reno_on_its_path() {
        // A long-RTT subflow beside a short one: its increase is capped at
        // 1/cwnd_i per byte (the min of RFC 6356 §3).
        let g = LiaGroup::new();
        let mut fast = in_avoidance(&g, 10);
        let mut slow = in_avoidance(&g, 40);
        ack_window(&mut fast, Duration::from_millis(5));
        for _ in 0..4 {
            ack_window(&mut slow, Duration::from_millis(200));
        }
        assert!(slow.cwnd() <= 44 * MSS, "{}", slow.cwnd());
        let alone = {
            let g2 = LiaGroup::new();
            let mut s = in_avoidance(&g2, 40);
            for _ in 0..4 {
                ack_window(&mut s, Duration::from_millis(200));
            }
            s.cwnd()
        };
        assert!(slow.cwnd() <= alone);
    }

    #[test]
    fn slots_are_freed_and_a_full_group_falls_back_to_reno() {
        let g = LiaGroup::new();
        let subs: Vec<Lia> = (0..MAX_SUBFLOWS)
            .map(|_| Lia::new(g.clone(), MSS, 10))
            .collect();
        assert_eq!(g.len(), MAX_SUBFLOWS);
        let mut extra = Lia::new(g.clone(), MSS, 10);
        assert_eq!(extra.slot, None);
        extra.on_congestion_event(T, 20 * MSS);
        ack_window(&mut extra, Duration::from_millis(10));
        assert_eq!(extra.cwnd(), 11 * MSS, "uncoupled Reno");
        drop(subs);
        assert!(g.is_empty());
    }

    #[test]
    fn losses_and_slow_start_are_per_subflow() {
        let g = LiaGroup::new();
        let mut a = Lia::new(g.clone(), MSS, 10);
        let b = in_avoidance(&g, 30);
        // Slow start: doubling per window whatever the other subflow does.
        ack_window(&mut a, Duration::from_millis(10));
        assert_eq!(a.cwnd(), 20 * MSS);
        a.on_rto(T, 20 * MSS);
        assert_eq!(a.cwnd(), MSS);
        assert_eq!(b.cwnd(), 30 * MSS);
    }
}
