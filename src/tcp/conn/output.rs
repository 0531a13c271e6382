//! What to send: handshake segments, retransmissions (RFC 6675 NextSeg),
//! new data under the congestion and send windows with Nagle (RFC 1122
//! §4.2.3.4) and sender SWS avoidance, zero-window and keepalive probes,
//! and ACKs.

use super::timer_set::Timer;
use super::{Connection, State};
use crate::io::Frame;
use crate::tcp::send::Slice;
use crate::tcp::{Payload, SegmentSink, SeqNumber, TcpFlags, TcpRepr};

impl<F: Frame> Connection<F> {
    pub(super) fn transmit(&mut self, out: &mut dyn SegmentSink<F>) {
        // Looked at in place: taking the (large) `Option<TcpRepr>` out on
        // every call would copy it even when empty.
        if let Some(rst) = &self.rst_pending {
            if !out.emit(rst, Payload::None, false) {
                return;
            }
            self.rst_pending = None;
            self.stats.segs_out += 1;
        }
        match self.state {
            State::Closed | State::Listen => return,
            State::SynSent | State::SynReceived => {
                if self.syn.pending && !self.send_syn(out) {
                    return;
                }
                if self.state == State::SynSent {
                    return;
                }
            }
            _ => {}
        }
        if self.state != State::SynReceived && !self.send_data(out) {
            return;
        }
        if self.probe.keepalive_pending {
            // RFC 1122 §4.2.3.6: SEG.SEQ = SND.NXT - 1, no data.
            let seg = self.ack_repr(self.snd.nxt - 1, TcpFlags::ACK, 0);
            if !self.emit(out, &seg, None, false) {
                return;
            }
            self.probe.keepalive_pending = false;
            self.stats.keepalive_probes += 1;
        }
        if self.rcv.ack_now {
            if self.plain_tx_ok() {
                self.emit_plain(out, self.snd.nxt, TcpFlags::ACK, None, false);
            } else {
                let seg = self.ack_repr(self.snd.nxt, TcpFlags::ACK, 0);
                self.emit(out, &seg, None, false);
            }
        }
    }

    /// SYN (SYN-SENT) or SYN-ACK (SYN-RECEIVED).
    fn send_syn(&mut self, out: &mut dyn SegmentSink<F>) -> bool {
        let syn_ack = self.state == State::SynReceived;
        let mut seg = self.base_repr(self.snd.iss, TcpFlags::SYN);
        seg.options = self.syn_options(syn_ack);
        seg.window = self.syn_window();
        if syn_ack {
            seg.flags |= TcpFlags::ACK;
            seg.ack = self.rcv.queue.nxt;
            if self.opts.ecn {
                seg.flags |= TcpFlags::ECE;
            }
        } else if self.cfg.ecn {
            // RFC 3168 §6.1.1: ECN-setup SYN.
            seg.flags |= TcpFlags::ECE | TcpFlags::CWR;
        }
        if !out.emit(&seg, Payload::None, false) {
            return false;
        }
        self.stats.segs_out += 1;
        self.syn.pending = false;
        if self.syn.sent_at.is_some() {
            self.syn.retransmitted = true;
            self.stats.retransmits += 1;
        }
        self.syn.sent_at = Some(self.now);
        self.snd.nxt = self.snd.nxt.max(self.snd.iss + 1);
        if syn_ack {
            self.after_ack_sent();
        }
        if !self.timers.is_armed(Timer::Rtx) {
            self.timers.set(Timer::Rtx, Some(self.rto_deadline()));
        }
        true
    }

    /// A synchronized-state segment header: ACK, window, timestamps, SACK.
    fn ack_repr(&mut self, seq: SeqNumber, flags: TcpFlags, payload: usize) -> TcpRepr {
        let mut seg = self.base_repr(seq, flags | TcpFlags::ACK);
        seg.ack = self.rcv.queue.nxt;
        seg.window = self.advertise();
        let fin = flags.contains(TcpFlags::FIN);
        if self.mptcp_in_use() {
            seg.options.mptcp = self.mptcp_data_options(seq, payload, fin);
        }
        let left_out = self.data_options(&mut seg.options, payload);
        if self.rcv.ece_echo {
            seg.flags |= TcpFlags::ECE;
        }
        // SACK blocks that did not fit a data segment go in a pure ACK.
        if left_out && payload > 0 {
            self.rcv.ack_now = true;
        }
        seg
    }

    /// Hand a segment to the sink and do the bookkeeping of every ACK sent.
    fn emit(
        &mut self,
        out: &mut dyn SegmentSink<F>,
        seg: &TcpRepr,
        slice: Option<Slice>,
        ect: bool,
    ) -> bool {
        let sack_in_seg = !seg.options.sack.is_empty();
        // Only new data (from SND.NXT) may extend the sequence space sent.
        let len = slice.map_or(0, |s| s.len);
        let end = seg.seq + len + seg.flags.contains(TcpFlags::FIN) as usize;
        if seg.seq != self.snd.nxt && end > self.snd.nxt {
            self.stats.tx_beyond_snd_nxt += 1;
            debug_assert!(
                false,
                "segment {seg:?} ends past SND.NXT {:?}",
                self.snd.nxt
            );
        }
        let mut with_csum;
        let seg = if self.mptcp_needs_checksum(seg) {
            // RFC 8684 §3.3.1: the DSS checksum covers the payload.
            with_csum = *seg;
            let sum = match slice {
                Some(s) => crate::wire::checksum::sum(self.snd.queue.payload(s).data()),
                None => 0,
            };
            self.mptcp_fill_checksum(&mut with_csum, sum);
            &with_csum
        } else {
            seg
        };
        let payload = match slice {
            Some(s) => self.snd.queue.payload(s),
            None => Payload::None,
        };
        if !out.emit(seg, payload, ect) {
            return false;
        }
        self.stats.segs_out += 1;
        let had_data = slice.is_some_and(|s| s.len > 0);
        // A data segment whose SACK blocks were left out keeps `ack_now`.
        let keep = had_data
            && self.rcv.ack_now
            && (self.opts.sack
                && !sack_in_seg
                && (self.rcv.queue.has_ooo() || self.rcv.queue.has_dsack())
                || (self.mptcp.rx.is_some() || self.mptcp.session.is_some())
                    && self.mptcp_echo_pending());
        self.after_ack_sent();
        if keep {
            self.rcv.ack_now = true;
        }
        if sack_in_seg {
            self.rcv.queue.clear_dsack();
        }
        true
    }

    pub(super) fn after_ack_sent(&mut self) {
        self.rcv.ack_now = false;
        self.timers.set(Timer::Delack, None);
        self.rcv.unacked = 0;
        self.rcv.last_ack_sent = self.rcv.queue.nxt;
    }

    /// States in which we may send data and FIN.
    pub(super) fn may_send_data(&self) -> bool {
        matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        )
    }

    /// Retransmissions, then new data, then a zero-window probe. Returns
    /// false when the sink refused a segment.
    fn send_data(&mut self, out: &mut dyn SegmentSink<F>) -> bool {
        if !self.may_send_data() {
            return true;
        }
        // RFC 6675 §5 (C): while pipe < cwnd, NextSeg rule 1 (lost holes),
        // rule 2 (new data), rule 3.
        while let Some(i) = self.snd.sb.next_lost() {
            let (cwnd, used) = self.cwnd_budget();
            if !self.loss.rexmit_head
                && used + self.snd.mss.min(self.snd.sb.get(i).map_or(0, |s| s.len())) > cwnd
            {
                break;
            }
            match self.retransmit(out, i) {
                Some(true) => self.loss.rexmit_head = false,
                Some(false) => return false,
                None => break,
            }
        }
        self.loss.rexmit_head = false;
        if self.loss.tlp_pending {
            self.loss.tlp_pending = false;
            if !self.send_tlp(out) {
                return false;
            }
        }
        if self.probe.persist_pending {
            return self.send_probe(out);
        }
        if !self.send_new_data(out) {
            return false;
        }
        // Rule 3: in recovery with nothing new to send, retransmit segments
        // below the highest SACK not yet deemed lost.
        if self.loss.in_fast_recovery() && self.opts.sack {
            while let Some(i) = self.snd.sb.next_rule3() {
                let (cwnd, used) = self.cwnd_budget();
                if used + self.snd.mss > cwnd || self.snd.nxt < self.snd.queue.tail() {
                    break;
                }
                match self.retransmit(out, i) {
                    Some(true) => {}
                    Some(false) => return false,
                    None => break,
                }
            }
        }
        true
    }

    /// Re-send scoreboard segment `i` (at most one MSS). `None` when it has
    /// nothing left to send.
    fn retransmit(&mut self, out: &mut dyn SegmentSink<F>, i: usize) -> Option<bool> {
        let s = *self.snd.sb.get(i)?;
        self.mtu_probe_on_retransmit(s.start);
        let data_end = if s.fin { s.end - 1 } else { s.end };
        let mut slice = None;
        let mut fin = s.fin;
        if data_end > s.start {
            // Never past the segment re-sent: bytes beyond it may be unsent
            // (the queue grew since), beyond SND.NXT and unaccounted.
            let sl = self
                .snd
                .queue
                .locate(s.start, self.snd.mss.min(data_end - s.start))?;
            if s.start + sl.len < data_end {
                self.snd.sb.split(i, s.start + sl.len);
                fin = false;
            }
            slice = Some(sl);
        }
        let len = slice.map_or(0, |s| s.len);
        let mut flags = TcpFlags::ACK;
        if fin {
            flags |= TcpFlags::FIN;
        }
        if len > 0 && s.start + len == self.snd.queue.tail() {
            flags |= TcpFlags::PSH;
        }
        let seg = self.ack_repr(s.start, flags, len);
        if !self.emit(out, &seg, slice, false) {
            return Some(false);
        }
        // Remember it for D-SACK (with its distance below the highest
        // SACKed data, the reordering it would imply).
        let fack_dist = self.snd.sb.high_sacked().map_or(0, |h| {
            if h > s.start {
                (h - s.start) / self.snd.mss.max(1)
            } else {
                0
            }
        });
        self.loss
            .dsack
            .on_retransmit(s.start, s.start + len.max(1), fack_dist);
        self.snd.sb.on_retransmit(i, self.now);
        self.stats.retransmits += 1;
        self.on_sent_in_recovery(len);
        self.rto_after_retransmit();
        Some(true)
    }

    /// New data from SND.NXT, and the FIN after it.
    fn send_new_data(&mut self, out: &mut dyn SegmentSink<F>) -> bool {
        loop {
            let tail = self.snd.queue.tail();
            let unsent = if self.snd.nxt < tail {
                tail - self.snd.nxt
            } else {
                0
            };
            let fin_due =
                self.snd.fin_queued && !self.fin_sent() && unsent == 0 && self.mptcp_fin_ok(false);
            if unsent == 0 && !fin_due {
                return true;
            }
            if fin_due {
                // A bare FIN is sent whatever the windows.
                let seg = self.ack_repr(self.snd.nxt, TcpFlags::FIN, 0);
                if !self.emit(out, &seg, None, false) {
                    return false;
                }
                self.on_new_sent(self.snd.nxt, self.snd.nxt + 1, true);
                return true;
            }
            if let Some(len) = self.mtu_probe_len(out) {
                // RFC 4821 §7.4: a path MTU probe, larger than the MSS.
                let start = self.snd.nxt;
                if !self.emit_new(out, len) {
                    return false;
                }
                self.mtu_probe_sent(start, len);
                continue;
            }
            let (cwnd, used) = self.cwnd_budget();
            let cwnd_room = cwnd.saturating_sub(used);
            let wnd_room = self.usable_window();
            // Located once: `emit_new_in` sends from this slice.
            let at = self.snd.queue.locate(self.snd.nxt, usize::MAX);
            let full = at.map_or(0, |s| s.len).min(self.snd.mss);
            let len = full.min(wnd_room);
            if len == 0 || full > cwnd_room {
                return true;
            }
            if len < full && len < self.snd.max_wnd / 2 {
                // RFC 1122 §4.2.3.4 sender SWS avoidance: wait for a
                // window of at least half the largest seen (or the persist
                // timer).
                return true;
            }
            // RFC 1122 §4.2.3.4 Nagle, with Minshall's refinement (as
            // Linux): a short segment waits while another short segment is
            // unacknowledged (unless it is the last before our FIN).
            let is_last = self.snd.nxt + len == tail;
            if len < self.snd.mss
                && is_last
                && !self.snd.nodelay
                && self.snd.sml > self.snd.una
                && !self.snd.fin_queued
            {
                return true;
            }
            if !self.emit_new_in(out, len, at) {
                return false;
            }
        }
    }

    /// Send `len` new bytes from SND.NXT (one segment, within one frame),
    /// with the FIN if they are the last and the application closed.
    fn emit_new(&mut self, out: &mut dyn SegmentSink<F>, len: usize) -> bool {
        let at = self.snd.queue.locate(self.snd.nxt, usize::MAX);
        self.emit_new_in(out, len, at)
    }

    /// [`Self::emit_new`] from `at`, SND.NXT's slice of the send queue as
    /// `locate(SND.NXT, usize::MAX)` found it (the caller had it at hand).
    #[inline]
    pub(super) fn emit_new_in(
        &mut self,
        out: &mut dyn SegmentSink<F>,
        len: usize,
        at: Option<Slice>,
    ) -> bool {
        let tail = self.snd.queue.tail();
        let is_last = self.snd.nxt + len == tail;
        let idle_us = self
            .now
            .micros()
            .saturating_sub(self.snd.last_data_sent.micros());
        if self.in_flight() == 0 && idle_us > self.loss.rtt.rto_us() {
            // RFC 5681 §4.1: restart after idle.
            self.loss.cc.on_idle_restart(self.now);
        }
        let with_fin = self.snd.fin_queued && is_last && self.mptcp_fin_ok(true);
        let mut flags = TcpFlags::ACK;
        if is_last {
            flags |= TcpFlags::PSH;
        }
        if with_fin {
            flags |= TcpFlags::FIN;
        }
        if self.loss.cwr_pending {
            flags |= TcpFlags::CWR;
        }
        // What `locate(SND.NXT, len)` returns.
        let Some(slice) = at.map(|s| Slice {
            len: s.len.min(len),
            ..s
        }) else {
            return true;
        };
        let sent = if self.plain_tx_ok() {
            self.emit_plain(out, self.snd.nxt, flags, Some(slice), self.opts.ecn)
        } else {
            let seg = self.ack_repr(self.snd.nxt, flags, len);
            self.emit(out, &seg, Some(slice), self.opts.ecn)
        };
        if !sent {
            return false;
        }
        self.loss.cwr_pending = false;
        self.on_sent_in_recovery(len);
        let start = self.snd.nxt;
        if len < self.snd.mss && is_last {
            self.snd.sml = start + len;
        }
        self.on_new_sent(start, start + len + with_fin as usize, with_fin);
        true
    }

    /// RFC 8985 §7.3: the tail loss probe: one new segment if the receive
    /// window allows, else the last segment again.
    fn send_tlp(&mut self, out: &mut dyn SegmentSink<F>) -> bool {
        let wnd_room = self.usable_window();
        let len = self
            .snd
            .queue
            .frame_remaining(self.snd.nxt)
            .min(self.snd.mss)
            .min(wnd_room);
        if len > 0 {
            if !self.emit_new(out, len) {
                return false;
            }
        } else if let Some(i) = self.snd.sb.last() {
            let Some(s) = self.snd.sb.get(i).copied() else {
                return true;
            };
            if s.sacked {
                return true;
            }
            // Only the last MSS of the last segment.
            let data_end = if s.fin { s.end - 1 } else { s.end };
            if data_end > s.start && data_end - s.start > self.snd.mss {
                self.snd.sb.split(i, data_end - self.snd.mss);
            }
            let Some(i) = self.snd.sb.last() else {
                return true;
            };
            match self.retransmit(out, i) {
                Some(false) => return false,
                Some(true) => {}
                None => return true,
            }
        } else {
            return true;
        }
        self.loss.tlp_high = Some(self.snd.nxt);
        self.stats.tail_loss_probes += 1;
        // RFC 8985 §7.3: after the probe, the RTO guards the tail.
        self.timers.set(Timer::Rtx, Some(self.rto_deadline()));
        true
    }

    /// Bytes beyond SND.NXT the peer's window still allows.
    pub(super) fn usable_window(&self) -> usize {
        let wnd_edge = self.snd.una + self.snd.wnd;
        if wnd_edge > self.snd.nxt {
            wnd_edge - self.snd.nxt
        } else {
            0
        }
    }

    /// RFC 6937: count what fast recovery sends (prr_out).
    fn on_sent_in_recovery(&mut self, len: usize) {
        if self.loss.in_fast_recovery() {
            self.loss.prr.on_sent(len.max(1));
        }
    }

    fn on_new_sent(&mut self, start: SeqNumber, end: SeqNumber, fin: bool) {
        if self.snd.una == self.snd.nxt {
            self.snd.una_since = Some(self.now);
        }
        self.snd.sb.push(start, end, fin, self.now);
        self.snd.nxt = end;
        self.snd.last_data_sent = self.now;
        if !self.timers.is_armed(Timer::Rtx) && !self.probe.persisting {
            self.timers.set(Timer::Rtx, Some(self.rto_deadline()));
        }
    }

    /// RFC 9293 §3.8.6.1: a zero-window probe of one byte (new data, or the
    /// outstanding probe byte again).
    fn send_probe(&mut self, out: &mut dyn SegmentSink<F>) -> bool {
        self.probe.persist_pending = false;
        if let Some(s) = self.snd.sb.get(0).copied() {
            let Some(sl) = self.snd.queue.locate(s.start, 1) else {
                return true;
            };
            if s.len() > 1 {
                self.snd.sb.split(0, s.start + 1);
            }
            let seg = self.ack_repr(s.start, TcpFlags::ACK, 1);
            if !self.emit(out, &seg, Some(sl), false) {
                return false;
            }
            self.snd.sb.on_retransmit(0, self.now);
            // The user timeout runs from the first unanswered probe.
            if self.snd.una_since.is_none() {
                self.snd.una_since = Some(self.now);
            }
        } else {
            let wnd_room = self.usable_window();
            if wnd_room > 0 {
                // RFC 9293 §3.8.6.2.1: the window is open but below the
                // sender SWS threshold; when the override timeout fires,
                // send as much as it allows (not a one-byte probe).
                let len = self
                    .snd
                    .queue
                    .frame_remaining(self.snd.nxt)
                    .min(self.snd.mss)
                    .min(wnd_room);
                return len == 0 || self.emit_new(out, len);
            }
            let Some(sl) = self.snd.queue.locate(self.snd.nxt, 1) else {
                return true;
            };
            let seg = self.ack_repr(self.snd.nxt, TcpFlags::ACK, 1);
            if !self.emit(out, &seg, Some(sl), false) {
                return false;
            }
            self.probe.persisting = true;
            let start = self.snd.nxt;
            self.on_new_sent(start, start + 1, false);
        }
        self.stats.zero_window_probes += 1;
        true
    }

    /// After the application read: send a window update when the window
    /// opened enough and what the peer knows is small (RFC 1122 §4.2.3.3).
    pub(super) fn maybe_window_update(&mut self) {
        if !self.state.is_synchronized() || self.rcv.fin_done {
            return;
        }
        let nxt = self.rcv.queue.nxt;
        let cur = if self.rcv.adv > nxt {
            self.rcv.adv - nxt
        } else {
            0
        };
        // The cheap test first: after most reads the advertised window is
        // still more than half open and no update is due.
        if cur * 2 <= self.rcv_window_max() && self.rcv_edge_candidate() > self.rcv.adv.max(nxt) {
            self.rcv.ack_now = true;
        }
    }
}
