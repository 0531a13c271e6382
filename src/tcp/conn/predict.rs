//! Header prediction (Van Jacobson's, as Linux's `tcp_rcv_established`
//! and BSD's `tcp_input`): while data flows, the segment that carries the
//! next expected data or a new ACK, with nothing unusual about it, takes
//! the steps of RFC 9293 §3.10.7.4 that can apply to it, without the
//! checks it cannot fail. RFC 9293 does not forbid it: the result is the
//! general path's, which `tests/tcp_loop.rs` checks segment by segment.

use super::{Connection, Recovery, State};
use crate::io::{Frame, Pkt};
use crate::tcp::{TcpFlags, TcpRepr};

impl<F: Frame> Connection<F> {
    /// Whether `seg` (with `len` bytes of payload, CE-marked when `ce`) is
    /// predicted: plain TCP in a state that takes data (ESTABLISHED,
    /// FIN-WAIT-1, FIN-WAIT-2) and the open recovery state, not
    /// persisting; ACK (and PSH) only; no SACK blocks; a timestamp not
    /// older than TS.Recent when they are on (PAWS passes, RFC 7323 §5.3);
    /// SEG.SEQ = RCV.NXT with an open window for data (acceptable, RFC 9293
    /// §3.10.7.4 first); SND.UNA <= SEG.ACK <= SND.NXT, and new data or a
    /// new ACK (a duplicate ACK or window update takes the general path);
    /// no FIN seen out of order; no CE mark.
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
            && seg.options.sack.is_empty()
            && ts_ok
            && !ce
            && self.loss.recovery == Recovery::Open
            && !self.probe.persisting
            && self.rcv.fin.is_none()
            && self.mptcp.session.is_none()
            && self.mptcp.join.is_none()
            && self.mptcp.rx.is_none()
    }

    /// RFC 9293 §3.10.7.4 for a predicted segment: the timestamp (R3), the
    /// ACK (fifth: SND.UNA, RTT, window, congestion control) and the text
    /// (seventh). Every check it skips passes for such a segment; ECN,
    /// RST, SYN, FIN and MPTCP have nothing to do.
    pub(super) fn on_predicted(&mut self, seg: &TcpRepr, payload: Pkt<F>) {
        self.stats.segs_predicted += 1;
        self.note_ts_recent(seg);
        self.probe.heard_from_peer(self.now);
        let flight_before = self.in_flight();
        let acked = seg.ack - self.snd.una;
        let mut rtt = None;
        if acked > 0 {
            rtt = self.advance_una(seg, self.loss.rtt.min_rtt());
            self.probe.persist_backoff = 0;
        }
        self.update_snd_wnd(seg, (seg.window as usize) << self.opts.snd_wscale);
        // Not a duplicate ACK: it acknowledges new data or carries some.
        self.loss_recovery(acked, false, 0, flight_before, rtt);
        if acked > 0 {
            // FIN-WAIT-1 ends when our FIN is acknowledged.
            self.on_progress();
        }
        if !payload.is_empty() {
            let wnd_end = self.rcv_wnd_end(seg, payload.len());
            self.on_data(seg.seq, payload, wnd_end);
        }
    }
}
