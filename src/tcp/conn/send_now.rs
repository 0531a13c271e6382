//! `send` transmits at once, as Linux's `tcp_sendmsg` → `tcp_push` does:
//! when the segment the application just queued is the one thing
//! `poll_transmit` would send (plain TCP established, nothing unsent
//! ahead of it, nothing to retransmit or probe, no FIN), it leaves from
//! the `send` call, carrying the ACK owed, instead of waiting for the
//! stack's poll round. The decisions are `send_new_data`'s for that one
//! segment (windows, sender SWS avoidance, Nagle, RFC 1122 §4.2.3.4) and
//! the emission and its bookkeeping are `emit_new_in`'s, so the segment
//! and the TCB after it are what the poll would have produced; on any
//! doubt nothing happens here and the poll sends as before.

use super::{Connection, Recovery, State};
use crate::io::Frame;
use crate::tcp::SegmentSink;
use crate::time::Instant;

/// What [`Connection::send_now`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendNow {
    /// Not the lean case, or the windows or Nagle hold the data: nothing
    /// changed; `poll_transmit` decides as usual.
    NotTaken,
    /// Sent, and `poll_transmit` now has nothing to do.
    Done,
    /// Sent, and `poll_transmit` still has something to do (an ACK kept
    /// owed).
    More,
    /// The sink refused the segment: `poll_transmit` again later.
    Blocked,
}

impl<F: Frame> Connection<F> {
    /// Emit at `now` the data the application just queued, if
    /// `poll_transmit` would send exactly that segment and nothing before
    /// it (see the module doc).
    pub fn send_now(&mut self, now: Instant, out: &mut dyn SegmentSink<F>) -> SendNow {
        self.now = self.now.max(now);
        if !self.send_now_ok() {
            return SendNow::NotTaken;
        }
        let tail = self.snd.queue.tail();
        // The request/response turn only: nothing in flight and data
        // received that this segment acknowledges (the ACK owed rides
        // it). A bulk writer (nothing to acknowledge, or data in flight)
        // keeps its writes together for the poll: sent alone, its small
        // first write would leave a short segment whose Nagle wait holds
        // the tail after it.
        // (The handshake's ACK owed is not a request: the first write
        // after connecting waits for the poll as before.)
        if tail <= self.snd.nxt
            || self.snd.una != self.snd.nxt
            || self.rcv.last_ack_sent == self.rcv.queue.nxt
            || self.stats.bytes_received == 0
        {
            return SendNow::NotTaken;
        }
        let unsent = tail - self.snd.nxt;
        // One segment holding everything unsent (within one frame).
        let at = self.snd.queue.locate(self.snd.nxt, usize::MAX);
        let Some(slice) = at else {
            return SendNow::NotTaken;
        };
        if slice.len != unsent || unsent > self.snd.mss {
            return SendNow::NotTaken;
        }
        let (cwnd, used) = self.cwnd_budget();
        if unsent > cwnd.saturating_sub(used) || unsent > self.usable_window() {
            // Also RFC 1122 §4.2.3.4 sender SWS avoidance: the segment is
            // all that is unsent, so only a window below it can cut it.
            return SendNow::NotTaken;
        }
        // RFC 1122 §4.2.3.4 Nagle with Minshall's refinement, as
        // `send_new_data` (the segment is the last, no FIN queued).
        if unsent < self.snd.mss && !self.snd.nodelay && self.snd.sml > self.snd.una {
            return SendNow::NotTaken;
        }
        let sent = self.emit_new_in(out, unsent, at);
        // `poll_transmit`'s end, whether or not the sink took it.
        self.timers_after_transmit();
        if !sent {
            SendNow::Blocked
        } else if self.rcv.ack_now {
            SendNow::More
        } else {
            SendNow::Done
        }
    }

    /// Whether `transmit` would have nothing to do but new data from
    /// SND.NXT (and the ACK it carries): no RST, retransmission, tail loss
    /// probe, window or keepalive probe, path MTU probe or FIN due; plain
    /// TCP in ESTABLISHED, out of recovery.
    #[inline]
    fn send_now_ok(&self) -> bool {
        self.cfg.send_now
            && self.state == State::Established
            && !self.mptcp.meta_only
            && self.mptcp.tx.is_none()
            && self.mptcp.session.is_none()
            && self.mptcp.join.is_none()
            && self.mptcp.rx.is_none()
            && self.rst_pending.is_none()
            && self.loss.recovery == Recovery::Open
            && !self.loss.rexmit_head
            && !self.loss.tlp_pending
            && !self.snd.sb.lost_pending()
            && !self.probe.persist_pending
            && !self.probe.keepalive_pending
            && !self.snd.fin_queued
            && self.plpmtud_quiet()
    }
}
