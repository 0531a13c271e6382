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
//! the aggregate rate, twice over (2 · rate · RTT_max, Raiciu et al., NSDI
//! 2012 §4), or the fast subflows starve waiting for the slow one's
//! DATA_ACKs. The rate is what the DATA_ACKs show delivered per slowest
//! round trip: it cannot outrun what the paths carry (the subflows' bytes
//! in flight did in slow start, by their lagging SRTTs, and took the
//! buffer to about 10 MB where 1–2 MB do), and while the buffer is the
//! limit it delivers about the buffer per round trip, so the buffer
//! doubles each round until the paths are full. Unlike Linux (which
//! shrinks only under memory pressure) it follows the need down too, by a
//! quarter of the excess per round trip, never below `Config::snd_buf`. Linux's MPTCP buffer, the sum of
//! its subflows' (2 · Σ cwnd_i, `__mptcp_sync_sndbuf`), is that when the
//! RTTs are equal and the windows full; with unequal RTTs it is too small.

use super::mptcp_tx::MetaTx;
use super::{ConnEvents, Connection};
use crate::io::Frame;
use crate::time::Instant;
use core::time::Duration;

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

/// Connection-level buffer for `delivered` bytes DATA_ACKed over
/// `elapsed`, the slowest live subflow's SRTT being `rtt_max`:
/// 2 · rate · RTT_max.
fn want_for_delivery(delivered: u64, elapsed: Duration, rtt_max: Duration) -> usize {
    if elapsed.is_zero() {
        return 0;
    }
    let n = u128::from(delivered) * 2 * rtt_max.as_nanos() / elapsed.as_nanos();
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// One step of the buffer toward `want`: up to it but at most doubling (a
/// burst of DATA_ACKs released by a late one is not a rate), down by a
/// quarter of the difference (a round trip's dip, a loss's halved window,
/// does not empty it), within `floor..=ceiling`.
fn step_toward(buf: usize, want: usize, floor: usize, ceiling: usize) -> usize {
    let next = if want >= buf {
        want.min(buf.saturating_mul(2))
    } else {
        buf - (buf - want) / 4
    };
    next.clamp(floor.min(ceiling), ceiling)
}

impl<F: Frame> MetaTx<F> {
    /// Size the connection-level buffer to what the paths delivered over
    /// the last slowest round trip (measured once one has passed).
    pub(super) fn resize(&mut self, now: Instant, floor: usize, ceiling: usize) {
        let rtt_max = self.live_slowest_srtt();
        if rtt_max.is_zero() {
            return;
        }
        let (t0, una0) = *self.rate_start.get_or_insert((now, self.una));
        let elapsed = now.saturating_since(t0);
        if elapsed < rtt_max {
            return;
        }
        self.rate_start = Some((now, self.una));
        let want = want_for_delivery(self.una.wrapping_sub(una0), elapsed, rtt_max);
        self.buf = step_toward(self.buf, want, floor, ceiling);
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
        let (now, floor) = (self.now, self.cfg.snd_buf);
        if let Some(m) = self.meta_tx_mut() {
            m.resize(now, floor, ceiling);
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

    #[test]
    fn twice_the_window_at_least_the_initial_window_or_reordering() {
        assert_eq!(want_for_cwnd(100 * 1000, 1000, 10, 3), 200 * 1000);
        // A small window: IW10 still counts.
        assert_eq!(want_for_cwnd(2000, 1000, 10, 3), 20 * 1000);
        // Reordering of 30 segments: 31 of them.
        assert_eq!(want_for_cwnd(2000, 1000, 10, 30), 62 * 1000);
    }

    #[test]
    fn twice_what_was_delivered_per_slowest_round_trip() {
        let ms = Duration::from_millis;
        // 40 Mbit/s (500 KB per 100 ms) measured over 100 ms: 1 MB.
        assert_eq!(want_for_delivery(500_000, ms(100), ms(100)), 1_000_000);
        // The same rate measured over 200 ms.
        assert_eq!(want_for_delivery(1_000_000, ms(200), ms(100)), 1_000_000);
        // A buffer-limited round trip delivers the buffer: twice it next.
        assert_eq!(want_for_delivery(65_536, ms(100), ms(100)), 131_072);
        assert_eq!(want_for_delivery(1, Duration::ZERO, ms(100)), 0);
    }

    #[test]
    fn up_at_once_down_by_a_quarter_within_floor_and_ceiling() {
        assert_eq!(step_toward(100, 150, 64, 1000), 150);
        assert_eq!(step_toward(100, 400, 64, 1000), 200);
        assert_eq!(step_toward(500, 100, 64, 1000), 400);
        assert_eq!(step_toward(80, 0, 64, 1000), 64);
        assert_eq!(step_toward(900, 5000, 64, 10_000), 1800);
        assert_eq!(step_toward(900, 5000, 64, 1000), 1000);
        // A floor above the ceiling: the ceiling wins.
        assert_eq!(step_toward(10, 0, 64, 32), 32);
    }
}
