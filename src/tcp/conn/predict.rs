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

    /// A predicted segment, timers included: an ACK of new data (with or
    /// without data) takes the straight line (`on_predicted_ack`); data
    /// that acknowledges nothing new (RFC 9293 §3.10.7.4's other
    /// predicted case) the steps of the general path.
    #[inline(always)]
    pub(super) fn predicted_segment(&mut self, seg: &TcpRepr, payload: Pkt<F>) {
        if seg.ack != self.snd.una {
            self.on_predicted_ack(seg, payload);
        } else {
            self.on_predicted_data(seg, payload);
            self.timers_after_predicted();
        }
    }

    /// RFC 9293 §3.10.7.4 for a predicted segment that acknowledges new
    /// data, in one straight line: the timestamp (RFC 7323 §4.3 R3), the
    /// ACK (fifth: the scoreboard, SND.UNA, the send queue, the RTT
    /// sample, WL1/WL2, RACK, cwnd), the text (seventh) and the timers,
    /// each field written once. What `predicted` checked (plain TCP, the
    /// open recovery state, not persisting, the window unchanged, the
    /// data in order) makes every other step of the general path
    /// (`on_ack`, `loss_recovery`, `on_data`, `update_timers`) a no-op
    /// here; the rare turns (a retransmission acknowledged, a loss RACK
    /// finds, an MTU probe, a FIN of ours acknowledged, out-of-order data
    /// held) call the general functions.
    #[inline(never)]
    fn on_predicted_ack(&mut self, seg: &TcpRepr, payload: Pkt<F>) {
        self.stats.segs_predicted += 1;
        let now = self.now;
        // RFC 7323 §4.3 (R3); `predicted` checked that it is not older.
        let ecr = match (self.opts.ts, seg.options.timestamps) {
            (true, Some((tsval, ecr))) => {
                if seg.seq <= self.rcv.last_ack_sent {
                    self.rcv.ts_recent = tsval;
                    self.rcv.ts_recent_at = now;
                }
                ecr
            }
            _ => 0,
        };
        self.probe.heard_from_peer(now);
        // RFC 8985 §6.2 step 2: RACK's test of retransmitted deliveries.
        self.snd.sb.rack.ack_ecr = ecr;
        let (ack, una, nxt) = (seg.ack, self.snd.una, self.snd.nxt);
        let flight_before = nxt - una;
        let acked = ack - una;
        let flight = nxt - ack;
        let min_rtt = self.loss.rtt.min_rtt();
        // The scoreboard and the send queue release what SEG.ACK covers;
        // the RTT sample.
        let rtt = self.release_acked(seg, now, min_rtt);
        self.loss.rtx_count = 0;
        // RFC 6298 §5.3: restart the timer; §5.2: stop it when all is
        // acknowledged. RFC 8985 §7.2: the PTO restarts (below).
        if flight == 0 {
            self.timers.set(Timer::Rtx, None);
            self.snd.una_since = None;
        } else {
            self.timers.set(Timer::Rtx, Some(self.rto_deadline()));
            self.snd.una_since = Some(now);
        }
        self.timers.set(Timer::Tlp, None);
        if self.loss.tlp_high.is_some_and(|h| ack >= h) {
            self.loss.tlp_high = None;
        }
        // `new_space`'s own first test, here: a call for nothing on most ACKs.
        if self.snd.write_blocked {
            self.new_space();
        }
        self.probe.persist_backoff = 0;
        // RFC 9293 §3.10.7.4 fifth: WL1/WL2 move (the window is the same:
        // `predicted`).
        let wnd = self.snd.wnd;
        self.snd.window_update(seg.seq, ack, wnd);
        // RFC 6675 §5 / RFC 5681 §3.2, open state, an ACK of new data: the
        // duplicate count restarts, RACK runs (RFC 8985 §6.2), cwnd grows.
        self.loss.dupacks = 0;
        if self.opts.sack {
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
        if self.state != State::Established {
            self.on_progress();
        }
        if !payload.is_empty() {
            self.predicted_text(seg.seq, payload);
        }
        self.timers_after_ack_of_new_data(flight);
    }

    /// RFC 9293 §3.10.7.4 seventh for predicted data (in order, plain
    /// TCP, inside the window): `on_data` without its MPTCP and
    /// reassembly turns when nothing is held out of order.
    #[inline(always)]
    fn predicted_text(&mut self, seq: crate::tcp::SeqNumber, payload: Pkt<F>) {
        // Plain TCP: the edge we advertised (`rcv_wnd_end`).
        let wnd_end = self.rcv.edge();
        if self.rcv.queue.has_ooo() {
            return self.on_data(seq, payload, wnd_end);
        }
        self.on_data_plain(seq, payload, wnd_end);
    }

    /// A predicted segment with data that acknowledges nothing new: the
    /// timestamp, the window's WL1/WL2, the open state's recovery step
    /// and the data (the timers follow in `timers_after_predicted`).
    fn on_predicted_data(&mut self, seg: &TcpRepr, payload: Pkt<F>) {
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
        self.snd.sb.rack.ack_ecr = self.ack_ecr(seg);
        let flight_before = self.in_flight();
        let wnd = self.snd.wnd;
        self.snd.window_update(seg.seq, seg.ack, wnd);
        self.loss_recovery(0, false, 0, flight_before, None);
        if !payload.is_empty() {
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
