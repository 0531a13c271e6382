//! Header prediction (Van Jacobson's, as Linux's `tcp_rcv_established`
//! and BSD's `tcp_input`): while data flows, the segment that carries the
//! next expected data or a new ACK, with nothing unusual about it, takes
//! the steps of RFC 9293 §3.10.7.4 that can apply to it, without the
//! checks it cannot fail. RFC 9293 does not forbid it: the result is the
//! general path's, which `tests/tcp_loop.rs` checks segment by segment
//! and `tests/tcp_script_predict.rs` case by case.

use super::{Connection, Recovery, State, Timer};
use crate::io::{Frame, Pkt};
use crate::tcp::{TcpFlags, TcpOptions, TcpRepr};

/// Only a timestamp option (or none): no SACK blocks, no SYN-only option
/// (MSS, window scale, SACK-permitted), no MPTCP option.
#[inline(always)]
fn ts_only(o: &TcpOptions) -> bool {
    o.sack.is_empty()
        && o.mptcp.is_empty()
        && o.mss.is_none()
        && o.window_scale.is_none()
        && !o.sack_permitted
}

impl<F: Frame> Connection<F> {
    /// Whether `seg` (with `len` bytes of payload, CE-marked when `ce`) is
    /// predicted: plain TCP in a state that takes data (ESTABLISHED,
    /// FIN-WAIT-1, FIN-WAIT-2) and the open recovery state, not
    /// persisting; ACK (and PSH) only (no SYN, FIN, RST, URG, ECE, CWR);
    /// no option but timestamps, and a timestamp not older than TS.Recent
    /// when they are on (PAWS passes, RFC 7323 §5.3); SEG.SEQ = RCV.NXT
    /// with an open window for data (acceptable, RFC 9293 §3.10.7.4
    /// first); SND.UNA <= SEG.ACK <= SND.NXT, and new data or a new ACK (a
    /// duplicate ACK takes the general path); the send window unchanged
    /// (a window update takes the general path); no FIN seen out of order;
    /// no CE mark.
    pub(super) fn predicted(&self, seg: &TcpRepr, len: usize, ce: bool) -> bool {
        let ts_ok = match (self.opts.ts, seg.options.timestamps) {
            (false, _) => true,
            (true, Some((tsval, _))) => self.rcv.ts_not_older(tsval),
            (true, None) => false,
        };
        self.cfg.header_prediction
            && matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2
            )
            && seg.flags.0 & !TcpFlags::PSH.0 == TcpFlags::ACK.0
            && seg.seq == self.rcv.queue.nxt
            && self.snd.una <= seg.ack
            && seg.ack <= self.snd.nxt
            && (seg.ack != self.snd.una || len > 0)
            && (len == 0 || self.rcv.adv > self.rcv.queue.nxt)
            && (seg.window as usize) << self.opts.snd_wscale == self.snd.wnd
            && ts_only(&seg.options)
            && ts_ok
            && !ce
            && self.loss.recovery == Recovery::Open
            && !self.probe.persisting
            && self.rcv.fin.is_none()
            && self.mptcp.session.is_none()
            && self.mptcp.join.is_none()
            && self.mptcp.rx.is_none()
    }

    /// RFC 9293 §3.10.7.4 for a predicted segment, in one function: the
    /// timestamp (R3), the ACK (fifth: SND.UNA, RTT, window, congestion
    /// control), the text (seventh) and the timers. Every check it skips
    /// passes for such a segment; ECN, RST, SYN, FIN, SACK and MPTCP have
    /// nothing to do. What it does is the general path's for this case
    /// (`on_ack`, `loss_recovery` in the open state with a new ACK and no
    /// duplicate, `on_data`); the rare turns (a loss RACK detects, data
    /// without a new ACK) go to the general functions.
    pub(super) fn on_predicted(&mut self, seg: &TcpRepr, payload: Pkt<F>) {
        self.stats.segs_predicted += 1;
        let now = self.now;
        // RFC 7323 §4.3 (R3); `predicted` checked that it is not older.
        if let (true, Some((tsval, _))) = (self.opts.ts, seg.options.timestamps) {
            if seg.seq <= self.rcv.last_ack_sent {
                self.rcv.ts_recent = tsval;
                self.rcv.ts_recent_at = now;
            }
        }
        self.probe.heard_from_peer(now);
        // RFC 8985 §6.2 step 2: RACK's test of retransmitted deliveries (a
        // tail loss probe's retransmission may be acknowledged here), kept
        // for every ACK as the general path (`on_ack`) does.
        self.snd.sb.rack.ack_ecr = self.ack_ecr(seg);
        let flight_before = self.in_flight();
        let acked = seg.ack - self.snd.una;
        let wnd = self.snd.wnd;
        if acked > 0 {
            let rtt = self.advance_una_inline(seg, self.loss.rtt.min_rtt());
            self.probe.persist_backoff = 0;
            // RFC 9293 §3.10.7.4 fifth: WL1/WL2 move (the window is the
            // same; not persisting, so nothing else follows).
            self.snd.window_update(seg.seq, seg.ack, wnd);
            // RFC 6675 §5 / RFC 5681 §3.2 in the open state, for an ACK
            // of new data (never a duplicate): the count restarts, RACK
            // runs (RFC 8985 §6.2), cwnd grows.
            self.loss.dupacks = 0;
            if self.opts.sack {
                // `rack_run`, its nothing-to-examine test inline (every
                // ACK of a lossless path): no call.
                if self.snd.sb.rack_has_candidates() {
                    self.rack_run();
                } else {
                    self.timers.set(Timer::Rack, None);
                }
            }
            self.loss.cc.on_ack(now, acked, flight_before, rtt);
            // RFC 6675 §5 step 4: IsLost(HighACK + 1), as RACK found it.
            if self.opts.sack && self.snd.sb.next_lost().is_some() {
                self.predicted_loss(acked, flight_before);
            }
            // FIN-WAIT-1 ends when our FIN is acknowledged.
            self.on_progress();
        } else {
            self.snd.window_update(seg.seq, seg.ack, wnd);
            self.loss_recovery(0, false, 0, flight_before, None);
        }
        if !payload.is_empty() {
            // Plain TCP: the edge we advertised (`rcv_wnd_end`).
            let wnd_end = self.rcv.edge();
            self.on_data(seg.seq, payload, wnd_end);
        }
    }

    /// `loss_recovery`'s entry into fast recovery for a predicted ACK of
    /// new data (`dupacks` is 0, so only a loss can trigger it).
    #[cold]
    #[inline(never)]
    fn predicted_loss(&mut self, acked: usize, flight_before: usize) {
        if self.snd.una > self.loss.recover - 1
            && self.snd.una != self.snd.nxt
            && !self.mtu_probe_lost()
        {
            self.enter_fast_recovery(flight_before);
        }
        if self.loss.in_fast_recovery() {
            // RFC 6937: DeliveredData (SACK on, nothing newly SACKed).
            let pipe = self.pipe();
            let mss = self.snd.mss;
            self.loss
                .prr
                .on_ack(acked, pipe, self.loss.cc.ssthresh(), mss);
        }
    }
}
