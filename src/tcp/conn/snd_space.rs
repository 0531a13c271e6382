//! Send-buffer autotuning (Linux's `tcp_new_space` / `tcp_sndbuf_expand`;
//! RFC 9293 says nothing on it). A fixed send buffer caps a connection
//! at buffer / RTT on a long fat path, and pins its whole size in frames
//! on a short one. So the buffer starts at `Config::snd_buf` and, each
//! time an ACK frees room the application is waiting for, grows toward
//! twice the congestion window (fast recovery and the next round of slow
//! start need about that much queued behind what is in flight), never
//! beyond `Config::snd_buf_max`. Like Linux it never shrinks (its only
//! shrink is under global memory pressure; ours is the frame pool's
//! short writes, `stack`).
//!
//! On an MPTCP connection that schedules over subflows the application
//! writes into the connection-level queue, whose bytes stay until the
//! DATA_ACK covers them (RFC 8684 §3.3.2): data sent on the slowest path
//! holds every later byte for that path's round trip, while the others
//! go on at their rate. The queue must cover the slowest subflow's RTT at
//! the aggregate rate, twice over (2 · Σ rate_i · RTT_max, Raiciu et al.,
//! NSDI 2012 §4), or the fast subflows starve waiting for the slow one's
//! DATA_ACKs. Linux's MPTCP buffer, the sum of its subflows' (2 · Σ
//! cwnd_i, `__mptcp_sync_sndbuf`), is that when the RTTs are equal and
//! the windows full; with unequal RTTs it is too small.

mod window;

use super::mptcp_tx::MetaTx;
use super::{ConnEvents, Connection};
use crate::io::Frame;
use crate::mptcp::sched::SubflowView;
use crate::time::Instant;
use core::time::Duration;
use window::WinMin;

/// Bytes of send buffer a congestion window of `cwnd` bytes calls for
/// (Linux `tcp_sndbuf_expand`): twice max(cwnd, the initial window,
/// reordering + 1 segments) — "CUBIC needs 1.7, rounded to 2 to include
/// extra cushion".
fn want_for_cwnd(cwnd: usize, mss: usize, iw: u32, reordering: usize) -> usize {
    let mss = mss.max(1);
    let segs = cwnd
        .div_ceil(mss)
        .max(iw as usize)
        .max(reordering.saturating_add(1));
    segs.saturating_mul(mss).saturating_mul(2)
}

/// Connection-level buffer the subflows call for (RFC 8684 §3.3.6;
/// Raiciu et al., NSDI 2012 §4: 2 · Σ rate_i · RTT_max): twice, over
/// the usable subflows, what each keeps in flight over the longer of its
/// own round trip and RTT_max.
///
/// RTT_max is the largest *minimum* RTT among the usable subflows with a
/// sample, idle ones too (a path the scheduler has given nothing yet must
/// be covered, or it never gets any). Not the largest SRTT: that includes
/// the queue the slow subflow's own window built at its bottleneck (the
/// 10 Mbit/s, 100 ms path's ran to 300 ms), and each faster subflow's
/// rate was counted over that queue too. A subflow still counts its own
/// bytes in flight in full (its SRTT above RTT_max): they wait in this
/// queue for the DATA_ACK (counted over RTT_max alone, two equal 10
/// Mbit/s paths fell from 18.04 to 16.93 Mbit/s in `tests/sim_mptcp.rs`),
/// and equal paths get Linux's sum of 2 · cwnd_i (`__mptcp_sync_sndbuf`).
///
/// rate_i = in flight / SRTT (Little's law: both count the subflow's own
/// queue, so the ratio is its delivery rate whether that queue is full or
/// empty). Not cwnd / SRTT: a subflow starved by the connection's queue
/// keeps a large window while its own queue drains and its SRTT falls, and
/// that ratio would take it for many times its path's rate.
fn want_for_subflows(views: impl Iterator<Item = SubflowView> + Clone) -> usize {
    let usable = views.filter(|v| v.usable && !v.min_rtt.is_zero());
    let Some(rtt_max) = rtt_max(usable.clone()) else {
        return 0;
    };
    let sum: u128 = usable
        .filter(|v| v.in_flight > 0 && !v.srtt.is_zero())
        .map(|v| v.in_flight as u128 * rtt_max.max(v.srtt).as_nanos() / v.srtt.as_nanos())
        .sum();
    usize::try_from(sum.saturating_mul(2)).unwrap_or(usize::MAX)
}

/// The largest minimum RTT of the usable subflows with a sample.
fn rtt_max(views: impl Iterator<Item = SubflowView>) -> Option<Duration> {
    views
        .filter(|v| v.usable && !v.min_rtt.is_zero())
        .map(|v| v.min_rtt)
        .max()
}

/// What the subflows called for, spikes filtered out.
///
/// A subflow's rate, in flight / SRTT, holds in steady state only: one
/// that the connection starved drains its queue and its SRTT falls (the
/// fast path of `tests/sim_sndbuf.rs` to 4 ms), then sends a whole
/// window at once (116 KB: 230 Mbit/s on a 30 Mbit/s path) until its
/// SRTT catches up; in a recovery its SACKed and lost bytes count in
/// flight while its SRTT takes no sample (Karn). Such spikes last a few
/// of that subflow's round trips. The buffer grows only to what the
/// subflows called for throughout the last quarter RTT_max (the slow
/// path's round trip): on that path its peak fell from 5,052 frames to
/// 2,058 (36.93 and 36.65 Mbit/s); over all of RTT_max, 1,351 frames but
/// 35.07 Mbit/s: the headroom the opportunistic retransmission needs
/// while the slow path recovers a loss behind its full bottleneck queue
/// (README, "Send-buffer autotuning"). Only under a scheduler with
/// opportunistic retransmission: without it the slow path's hole waits
/// for its own repair, and the unfiltered growth keeps the rate.
#[derive(Debug, Clone, Default)]
pub(super) struct Space {
    want: WinMin,
}

/// The share of RTT_max a want must last for the buffer to follow it.
const SPIKE_WINDOW_DIV: u32 = 4;

impl<F: Frame> MetaTx<F> {
    /// Grow the connection-level buffer to what its subflows call for.
    pub(super) fn expand(&mut self, ceiling: usize, now: Instant) {
        if self.buf >= ceiling {
            return;
        }
        let want = want_for_subflows(self.slots_views());
        // Most of the headroom the spikes kept, the opportunistic
        // retransmission makes up for (it re-sends the hole the slow path
        // holds once the buffer runs out); a scheduler without it keeps
        // the unfiltered growth (round robin over the fast and slow
        // paths, 128M: 36.64 Mbit/s, 32.94 filtered).
        let window = match self.sched_opportunistic() {
            true => rtt_max(self.slots_views()).unwrap_or_default() / SPIKE_WINDOW_DIV,
            false => Duration::ZERO,
        };
        let lasting = self.space.want.feed(now, want, window);
        self.buf = lasting.clamp(self.buf, ceiling);
    }
}

impl<F: Frame> Connection<F> {
    /// Payload bytes the application's queue may hold: the connection's
    /// buffer under MPTCP scheduling, this connection's otherwise.
    pub(super) fn app_snd_buf(&self) -> usize {
        self.meta_tx().map_or(self.snd.buf, |m| m.buf)
    }

    /// An ACK or DATA_ACK freed send-queue room (Linux `tcp_check_space`
    /// → `tcp_new_space`): if the application waits for room, grow the
    /// buffer first, then tell it that it may write.
    pub(super) fn new_space(&mut self) {
        if !self.snd.write_blocked {
            return;
        }
        self.snd_buf_expand();
        if self.send_capacity() > 0 {
            self.snd.write_blocked = false;
            self.events.insert(ConnEvents::WRITABLE);
        }
    }

    fn snd_buf_expand(&mut self) {
        let ceiling = self.cfg.snd_buf_max;
        let now = self.now;
        if let Some(m) = self.meta_tx_mut() {
            m.expand(ceiling, now);
            return;
        }
        // Linux `tcp_should_expand_sndbuf`: "If we filled the congestion
        // window, do not expand": then the window is the limit, not the
        // buffer.
        let cwnd = self.loss.cc.cwnd();
        if self.snd.buf >= ceiling || self.pipe() >= cwnd {
            return;
        }
        let want = want_for_cwnd(
            cwnd,
            self.snd.mss,
            self.cfg.initial_window,
            self.snd.sb.dupthresh(),
        );
        self.snd.buf = want.clamp(self.snd.buf, ceiling);
    }

    /// The send buffer now (payload bytes): the connection-level one on
    /// an MPTCP connection that schedules over subflows.
    pub fn snd_buf(&self) -> usize {
        self.app_snd_buf()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    fn view(in_flight: usize, srtt_ms: u64, min_rtt_ms: u64) -> SubflowView {
        SubflowView {
            srtt: Duration::from_millis(srtt_ms),
            min_rtt: Duration::from_millis(min_rtt_ms),
            in_flight,
            usable: true,
            ..SubflowView::default()
        }
    }

    #[test]
    fn twice_the_window_at_least_the_initial_window_or_reordering() {
        assert_eq!(want_for_cwnd(100 * 1000, 1000, 10, 3), 200 * 1000);
        // A small window: IW10 still counts.
        assert_eq!(want_for_cwnd(2000, 1000, 10, 3), 20 * 1000);
        // Reordering of 30 segments: 31 of them.
        assert_eq!(want_for_cwnd(2000, 1000, 10, 30), 62 * 1000);
    }

    #[test]
    fn subflows_cover_the_slowest_unloaded_rtt_at_the_aggregate_rate() {
        // Unloaded: 30 Mbit/s at 2 ms (7.5 KB) and 10 Mbit/s at 100 ms
        // (125 KB): 40 Mbit/s over 100 ms is 500 KB, twice that 1 MB.
        let v = [view(7_500, 2, 2), view(125_000, 100, 100)];
        assert_eq!(want_for_subflows(v.into_iter()), 1_000_000);
        // Both bottleneck queues full (the fast one's 150 KB takes its
        // SRTT to 42 ms, the slow one's 250 KB to 300 ms): the fast rate
        // over the slow path's 100 ms (375 KB) and the slow subflow's own
        // 375 KB in flight, twice: 1.5 MB. Over the slow SRTT it was 3 MB.
        let v = [view(157_500, 42, 2), view(375_000, 300, 100)];
        assert_eq!(want_for_subflows(v.into_iter()), 1_500_000);
        // Equal paths, queues or not: twice what each has in flight
        // (Linux's sum of the subflows' 2 · cwnd, when they fill them).
        let v = [view(50_000, 10, 10), view(30_000, 10, 10)];
        assert_eq!(want_for_subflows(v.into_iter()), 160_000);
        let v = [view(50_000, 30, 10), view(30_000, 30, 10)];
        assert_eq!(want_for_subflows(v.into_iter()), 160_000);
        // An idle path with a sample still sets the round trip to cover.
        let v = [view(7_500, 2, 2), view(0, 100, 100)];
        assert_eq!(want_for_subflows(v.into_iter()), 750_000);
        // Unusable, or without an RTT sample: not counted at all.
        let mut stalled = view(1_000_000, 1000, 1000);
        stalled.usable = false;
        let v = [view(50_000, 10, 10), view(0, 1000, 0), stalled];
        assert_eq!(want_for_subflows(v.into_iter()), 100_000);
        assert_eq!(want_for_subflows([].into_iter()), 0);
    }
}
