//! Segment arrival (RFC 9293 §3.10.7) with the RFC 5961 protections, PAWS
//! (RFC 7323 §5) and the receive path (reassembly, delayed ACKs, FIN).

use super::mptcp::MptcpRx;
use super::timer_set::Timer;
use super::{ConnEvents, Connection, State};
use crate::io::{Frame, Pkt};
use crate::tcp::recv::Inserted;
use crate::tcp::{reset_for, SeqNumber, TcpFlags, TcpRepr};
use core::time::Duration;

/// RFC 7323 §5.5: TS.Recent is invalid after 24 days idle.
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

impl<F: Frame> Connection<F> {
    pub(super) fn on_segment(&mut self, seg: &TcpRepr, payload: Pkt<F>, ce: bool) {
        match self.state {
            State::Closed => {
                // RFC 9293 §3.10.7.1.
                self.rst_pending = reset_for(seg, payload.len());
            }
            State::Listen => self.on_listen(seg, payload.len()),
            State::SynSent => self.on_syn_sent(seg),
            _ => self.on_synchronized(seg, payload, ce),
        }
    }

    /// RFC 9293 §3.10.7.2.
    fn on_listen(&mut self, seg: &TcpRepr, len: usize) {
        if seg.flags.rst() {
            return;
        }
        if seg.flags.ack() {
            self.rst_pending = reset_for(seg, len);
            return;
        }
        if seg.flags.syn() {
            let now = self.now;
            self.on_passive_syn(seg, now);
            self.from_listen = true;
        }
    }

    /// RFC 9293 §3.10.7.3.
    fn on_syn_sent(&mut self, seg: &TcpRepr) {
        let f = seg.flags;
        if f.ack() && (seg.ack <= self.snd.iss || seg.ack > self.snd.nxt) {
            if !f.rst() {
                let mut r = self.base_repr(seg.ack, TcpFlags::RST);
                r.ack = SeqNumber(0);
                self.rst_pending = Some(r);
            }
            return;
        }
        if f.rst() {
            if f.ack() {
                self.events.insert(ConnEvents::RESET);
                self.enter_closed();
            }
            return;
        }
        if !f.syn() {
            return;
        }
        self.rcv.irs = seg.seq;
        self.rcv.queue = crate::tcp::recv::RecvBuffer::new(seg.seq + 1);
        if f.ack() {
            self.mptcp_on_syn_ack(seg);
            if !self.join_on_syn_ack(seg) {
                return;
            }
        }
        self.negotiate(seg);
        self.probe.last_rx = self.now;
        if f.ack() {
            // RFC 3168 §6.1.1: ECN-setup SYN-ACK has ECE without CWR.
            self.opts.ecn = self.cfg.ecn && f.contains(TcpFlags::ECE) && !f.contains(TcpFlags::CWR);
            self.snd.una = seg.ack;
            self.rcv.adv = seg.seq + 1;
            self.rcv.ack_now = true;
            self.establish(seg, self.now);
        } else {
            // Simultaneous open (RFC 9293 §3.5 figure 7).
            self.mptcp_simultaneous_open();
            self.opts.ecn = self.cfg.ecn && f.contains(TcpFlags::ECE) && f.contains(TcpFlags::CWR);
            self.state = State::SynReceived;
            self.snd.wnd = seg.window as usize;
            self.snd.max_wnd = self.snd.wnd;
            self.snd.wl1 = seg.seq;
            self.rcv.adv = seg.seq + 1;
            self.syn.pending = true;
            // Our SYN is still unacknowledged: the SYN-ACK retransmits it.
        }
    }

    /// The handshake completed: ESTABLISHED (or FIN-WAIT-1 if the
    /// application already closed).
    pub(super) fn establish(&mut self, seg: &TcpRepr, now: crate::time::Instant) {
        // RFC 7323 §2.2: the window of the segment completing the handshake
        // is scaled unless it is a SYN.
        let shift = if seg.flags.syn() {
            0
        } else {
            self.opts.snd_wscale
        };
        self.snd
            .take_window(seg.seq, seg.ack, (seg.window as usize) << shift);
        self.state = State::Established;
        self.events.insert(ConnEvents::CONNECTED);
        self.syn.pending = false;
        self.timers.set(Timer::Rtx, None);
        self.loss.rtx_count = 0;
        self.snd.queue.reset_head(self.snd.iss + 1);
        // RTT of the handshake: Karn, or the echoed timestamp.
        if let (Some(at), false) = (self.syn.sent_at, self.syn.retransmitted) {
            self.loss.rtt.sample(now.saturating_since(at), now);
        } else if let Some(r) = self.ts_rtt(seg) {
            self.loss.rtt.sample(r, now);
        }
        // RFC 6928 / RFC 5681 §3.1: IW of one segment after a lost SYN.
        let iw = if self.syn.retransmitted {
            1
        } else {
            self.cfg.initial_window
        };
        self.loss.cc = crate::tcp::cc::new(self.cfg.cc, self.snd.mss, iw);
        self.mptcp_couple_cc(iw);
        self.loss.recover = self.snd.una;
        self.loss.ecn_recover = self.snd.una;
        self.probe.last_rx = now;
        self.snd.last_data_sent = now;
        if self.snd.fin_queued {
            self.state = State::FinWait1;
        }
    }

    /// RTT from the echoed timestamp (RFC 7323 §4.1), if any.
    pub(super) fn ts_rtt(&self, seg: &TcpRepr) -> Option<Duration> {
        if !self.opts.ts {
            return None;
        }
        let (_, ecr) = seg.options.timestamps?;
        if ecr == 0 {
            return None;
        }
        let d = self.tsval().wrapping_sub(ecr);
        // Ignore echoes from the future or absurdly old ones.
        (d < 1 << 30).then(|| Duration::from_millis(d as u64))
    }

    /// RFC 9293 §3.10.7.4: SYN-RECEIVED and the synchronized states.
    fn on_synchronized(&mut self, seg: &TcpRepr, mut payload: Pkt<F>, ce: bool) {
        let f = seg.flags;
        let len = payload.len();
        let seg_len = seg.seg_len(len);

        // RFC 7323 §5.3 R1: PAWS (RST excepted).
        if self.opts.ts && !f.rst() {
            if let Some((tsval, _)) = seg.options.timestamps {
                let older = !self.rcv.ts_not_older(tsval);
                if older
                    && self.now.saturating_since(self.rcv.ts_recent_at) < PAWS_IDLE
                    && !self.disordered_ack(seg, len, tsval)
                {
                    self.stats.paws_drops += 1;
                    self.rate_limited_ack();
                    return;
                }
            }
        }

        if self.state == State::SynReceived && f.syn() && !f.ack() && seg.seq == self.rcv.irs {
            // A retransmitted SYN: our SYN-ACK was lost (RFC 9293 §3.10.7.4
            // would challenge it; Linux resends the SYN-ACK).
            self.syn.pending = true;
            return;
        }

        // RFC 5961 §4.2: a SYN in a synchronized state, whatever its
        // sequence number, gets a challenge ACK.
        if f.syn() && !f.rst() {
            self.challenge_ack();
            return;
        }

        // First: sequence number acceptability.
        let nxt = self.rcv.queue.nxt;
        let wnd_end = self.rcv_wnd_end(seg, len);
        let wnd = wnd_end - nxt;
        let in_wnd = |s: SeqNumber| nxt <= s && s < nxt + wnd;
        let mut acceptable = match (seg_len, wnd) {
            (0, 0) => seg.seq == nxt,
            (0, _) => in_wnd(seg.seq),
            // A bare FIN at RCV.NXT is taken even with a zero window (as
            // Linux: some peers resend it in a loop otherwise).
            (_, 0) => len == 0 && seg.seq == nxt,
            (_, _) => in_wnd(seg.seq) || in_wnd(seg.seq + (seg_len - 1)),
        };
        // RFC 9293: with a zero window, still process the ACK (and RST) of a
        // segment at RCV.NXT; its data is dropped.
        let mut drop_data = false;
        if !acceptable && wnd == 0 && seg.seq == nxt && len > 0 {
            acceptable = true;
            drop_data = true;
        }
        // RFC 8684 §3.3.4: the peer sends up to the connection-level edge
        // on any subflow, so its SND.NXT, the SEG.SEQ of its pure ACKs,
        // may lie beyond this subflow's window (closed, even) while its
        // data waits for room: such a pure ACK is acceptable up to that
        // edge, its ACK and window taken. Dropped, our sends stalled on
        // it, and so did the echo that would open our window (issue 8).
        if !acceptable && seg_len == 0 && f.ack() && !f.rst() && nxt <= seg.seq {
            if let Some(room) = self.mptcp_conn_room() {
                acceptable = seg.seq <= nxt + room;
            }
        }
        if !acceptable {
            self.stats.out_of_window += 1;
            if f.rst() {
                return;
            }
            // RFC 8684 §3.3.2: a window probe's DATA_ACK; a pure ACK
            // that Linux's wider test takes, its MPTCP signals (`mptcp`).
            // A stray pure ACK may lie up to the connection-level edge,
            // beyond this subflow's own (`mptcp_conn_room`), and a segment
            // further: RFC 9293 §3.8.6.1, a peer probing our closed window
            // sends past it, and its pure ACKs carry that SND.NXT after
            // (Linux's MPTCP-level probe, `MPTcpExtWinProbe`, then its
            // REMOVE_ADDR). Only its signals are taken, its ACK field
            // acceptable (RFC 5961 §5.2); its ACK and window are not.
            let probe = len <= 1 && seg.seq + 1 == nxt && f.ack();
            let stray_end = nxt + wnd.max(self.mptcp_conn_room().unwrap_or(0)) + self.rcv.mss;
            let stray = seg_len == 0
                && f.ack()
                && self.rcv.last_ack_sent <= seg.seq
                && seg.seq <= stray_end;
            if (probe || stray) && self.snd.una <= seg.ack && seg.ack <= self.snd.nxt {
                self.mptcp_on_window_probe(seg);
                if stray {
                    self.mptcp_on_stray_ack(seg);
                }
            }
            if self.state == State::TimeWait && f.fin() && seg.seq + seg_len == nxt {
                // RFC 9293 §3.10.7.4: a retransmitted FIN restarts 2·MSL.
                self.timers
                    .set(Timer::TimeWait, Some(self.now + self.cfg.msl * 2));
                self.rcv.ack_now = true;
                return;
            }
            if len > 0 && seg.seq + len <= nxt {
                // Wholly old data: our ACK was lost; ACK with D-SACK.
                self.stats.dup_segs_in += 1;
                self.rcv.queue.set_dsack(seg.seq, seg.seq + len);
                self.rcv.ack_now = true;
            } else {
                self.rate_limited_ack();
            }
            return;
        }

        // Second: RST (RFC 5961 §3.2). RFC 1337: a RST must not end
        // TIME-WAIT early (TIME-WAIT assassination); the timer does.
        if f.rst() && self.state == State::TimeWait {
            return;
        }
        if f.rst() {
            if seg.seq == nxt {
                if self.state == State::SynReceived && self.from_listen {
                    self.back_to_listen();
                } else if !self.mptcp_first_reset(seg) {
                    self.events.insert(ConnEvents::RESET);
                    self.enter_closed();
                }
            } else {
                self.challenge_ack();
            }
            return;
        }

        self.note_ts_recent(seg);
        self.probe.heard_from_peer(self.now);

        // Fifth: ACK. "if the ACK bit is off, drop the segment".
        if !f.ack() {
            self.stats.no_ack_drops += 1;
            return;
        }
        let establishing = self.state == State::SynReceived;
        if self.state == State::SynReceived {
            if self.snd.una < seg.ack && seg.ack <= self.snd.nxt {
                self.snd.una = seg.ack;
                self.establish(seg, self.now);
            } else {
                let mut r = self.base_repr(seg.ack, TcpFlags::RST);
                r.ack = SeqNumber(0);
                self.rst_pending = Some(r);
                return;
            }
        }
        if seg.ack > self.snd.nxt {
            // RFC 9293 §3.10.7.4: ACK for something not yet sent.
            self.stats.acks_of_unsent += 1;
            self.rate_limited_ack();
            return;
        }
        // RFC 5961 §5.2: too old to be acceptable.
        if self.snd.ack_too_old(seg.ack) {
            self.stats.old_ack_drops += 1;
            self.rate_limited_ack();
            return;
        }
        self.on_ack(seg, len);
        if self.state == State::Closed {
            if self.mptcp.join.is_some() {
                self.mptcp_closing_data_ack(seg);
            }
            return;
        }

        // RFC 3168 §6.1.3: CWR ends the echo; a CE mark (re)starts it.
        if self.opts.ecn {
            if f.contains(TcpFlags::CWR) {
                self.rcv.ece_echo = false;
            }
            if ce && seg_len > 0 {
                self.rcv.ece_echo = true;
                self.rcv.ack_now = true;
            }
        }

        // RFC 8684: the MPTCP options (mapping, DATA_FIN, fallback).
        if self.mptcp.session.is_some()
            && self.mptcp_on_segment(seg, payload.data(), establishing) == MptcpRx::Stop
        {
            return;
        }
        if self.mptcp.join.is_some() && !self.join_on_segment(seg, payload.data()) {
            return;
        }

        // Seventh: segment text.
        let fin_seq = seg.seq + len;
        if len > 0 && !drop_data {
            if matches!(
                self.state,
                State::Established | State::FinWait1 | State::FinWait2
            ) && !self.rcv.fin_done
            {
                self.drop_overtaken_fin(seg.seq + len);
                self.on_data(seg.seq, payload, wnd_end);
            } else {
                payload.truncate(0);
            }
        } else if drop_data && len > 0 {
            self.rcv.ack_now = true;
        }

        // Eighth: FIN. An out-of-order FIN is remembered until in-order
        // data reaches it; the lowest one seen wins (as Linux's ofo queue,
        // where the first FIN reached is processed).
        if f.fin() && !drop_data && !self.rcv.fin_done {
            self.rcv.fin = Some(self.rcv.fin.map_or(fin_seq, |fs| fs.min(fin_seq)));
            // RFC 5681 §4.2: an out-of-order segment is ACKed at once.
            self.rcv.ack_now = true;
        }
        self.maybe_process_fin();
        self.mptcp_after_data();
    }

    /// RFC 7323 §4.3 (R3): remember the peer's timestamp.
    pub(super) fn note_ts_recent(&mut self, seg: &TcpRepr) {
        if self.opts.ts {
            if let Some((tsval, _)) = seg.options.timestamps {
                self.rcv.note_ts_recent(tsval, seg.seq, self.now);
            }
        }
    }

    /// The right edge of the receive window for a segment of `len`
    /// payload bytes: RCV.NXT + RCV.WND as advertised, or, on an MPTCP
    /// subflow, further where the connection-level window allows the
    /// segment's data (RFC 8684 §3.3.4, `mptcp_window_end`).
    pub(super) fn rcv_wnd_end(&self, seg: &TcpRepr, len: usize) -> SeqNumber {
        let own = self.rcv.edge();
        if len == 0 || self.mptcp.rx.is_none() || seg.seq + len <= own {
            return own;
        }
        self.mptcp_window_end(seg, len).map_or(own, |e| e.max(own))
    }

    /// A reordered duplicate ACK (as Linux's tcp_disordered_ack): a pure
    /// ACK at RCV.NXT for SND.UNA that does not move the window, at most
    /// an RTO older than TS.Recent. PAWS lets it through so its SACK
    /// information is not lost; it cannot harm the byte stream.
    fn disordered_ack(&self, seg: &TcpRepr, len: usize, tsval: u32) -> bool {
        let f = seg.flags;
        len == 0
            && f.ack()
            && !f.syn()
            && !f.fin()
            && seg.seq == self.rcv.queue.nxt
            && seg.ack == self.snd.una
            && (seg.window as usize) << self.opts.snd_wscale == self.snd.wnd
            && (self.rcv.ts_recent.wrapping_sub(tsval) as u64)
                <= self.loss.rtt.rto().as_millis() as u64
    }

    /// Queue data and decide on the ACK (RFC 9293 §3.10.7.4 seventh, RFC
    /// 1122 §4.2.3.2 delayed ACKs, RFC 5681 §4.2 immediate ACKs), trimmed
    /// to the window ending at `wnd_end` (`rcv_wnd_end`).
    pub(super) fn on_data(&mut self, seq: SeqNumber, payload: Pkt<F>, wnd_end: SeqNumber) {
        let len = payload.len();
        let before_dup = self.rcv.queue.has_dsack();
        let r = self.rcvq_insert(seq, payload, wnd_end);
        // MPTCP: readable once the data level has it (`mptcp_rx`).
        let readable = self.mptcp.rx.is_none();
        self.after_insert(&r, len, before_dup, readable);
    }

    /// `on_data` for plain TCP with nothing held out of order (header
    /// prediction's data): the same queue insert and `after_insert`,
    /// inline, without the MPTCP and reassembly turns that cannot apply.
    #[inline(always)]
    pub(super) fn on_data_plain(&mut self, seq: SeqNumber, payload: Pkt<F>, wnd_end: SeqNumber) {
        debug_assert!(self.mptcp.rx.is_none() && !self.rcv.queue.has_ooo());
        let len = payload.len();
        let before_dup = self.rcv.queue.has_dsack();
        let r = self.rcv.queue.insert(seq, payload, wnd_end, self.rcv.buf);
        self.after_insert(&r, len, before_dup, true);
    }

    /// After `len` bytes went into the receive queue (`r`): the counters,
    /// the READABLE event (when `readable`) and the ACK decision (RFC
    /// 1122 §4.2.3.2 delayed ACKs, RFC 5681 §4.2 immediate ACKs).
    /// `before_dup`: whether a D-SACK was already pending before.
    #[inline(always)]
    fn after_insert(&mut self, r: &Inserted, len: usize, before_dup: bool, readable: bool) {
        self.stats.collapsed = self.rcv.queue.collapsed;
        self.stats.rcv_mem_drops = self.rcv.queue.mem_drops;
        if len > self.rcv.mss {
            self.rcv.mss = len.min(self.cfg.mss as usize);
        }
        if r.dup && r.advanced == 0 && !r.ooo {
            self.stats.dup_segs_in += 1;
        }
        if r.ooo {
            self.stats.ooo_segs_in += 1;
        }
        if r.advanced > 0 {
            self.stats.bytes_received += r.advanced as u64;
            self.events.set(ConnEvents::READABLE, readable);
            self.rcv.unacked += r.advanced;
        }
        if r.ooo || r.filled_hole || r.dropped || (r.dup && !before_dup) || self.rcv.queue.has_ooo()
        {
            // RFC 5681 §4.2: out-of-order, hole-filling: ACK at once.
            self.rcv.ack_now = true;
        } else if self.rcv.unacked >= 2 * self.rcv.mss {
            // RFC 5681 §4.2: at least every second full-sized segment.
            self.rcv.ack_now = true;
        } else if r.advanced > 0 && !self.timers.is_armed(Timer::Delack) {
            // RFC 1122 §4.2.3.2: the delayed ACK.
            self.timers
                .set(Timer::Delack, Some(self.now + self.cfg.delayed_ack));
        }
    }

    /// Data ending at `end` runs past an out-of-order FIN not yet reached:
    /// that FIN was stale (the peer resent its stream differently, or it was
    /// forged). Linux drops such a FIN from its out-of-order queue
    /// (tcp_ofo_queue: "ofo packet was already received"); do the same, so
    /// the data is kept and the peer's real FIN can still close (RFC 9293
    /// §3.10.7.4 eighth: a FIN is processed only once RCV.NXT reaches it).
    fn drop_overtaken_fin(&mut self, end: SeqNumber) {
        if let Some(fs) = self.rcv.fin {
            if !self.rcv.fin_done && end > fs {
                self.rcv.fin = None;
                self.stats.stale_fins += 1;
            }
        }
    }

    /// The peer's FIN, once everything before it arrived.
    pub(super) fn maybe_process_fin(&mut self) {
        let Some(fs) = self.rcv.fin else { return };
        if self.rcv.fin_done || self.rcv.queue.nxt != fs {
            return;
        }
        self.rcv.fin_done = true;
        self.rcv.queue.nxt = fs + 1;
        self.rcv.queue.clear_ooo();
        self.events.insert(ConnEvents::READ_CLOSED);
        self.rcv.ack_now = true;
        match self.state {
            State::SynReceived | State::Established => self.state = State::CloseWait,
            State::FinWait1 => {
                if self.our_fin_acked() {
                    self.enter_time_wait();
                } else {
                    self.state = State::Closing;
                }
            }
            State::FinWait2 => self.enter_time_wait(),
            State::TimeWait => self.enter_time_wait(),
            _ => {}
        }
    }

    pub(super) fn our_fin_acked(&self) -> bool {
        // All sent was acknowledged, FIN included (MPTCP may still hold
        // the data for the DATA_ACK: the subflow is done with it).
        self.snd.fin_queued && self.snd.una == self.snd.nxt && self.fin_sent()
    }

    /// Whether the FIN went out (it is the last sequence number sent).
    pub(super) fn fin_sent(&self) -> bool {
        self.snd.fin_queued && self.snd.nxt == self.snd.queue.tail() + 1
    }

    pub(super) fn enter_time_wait(&mut self) {
        self.state = State::TimeWait;
        self.timers
            .set(Timer::TimeWait, Some(self.now + self.cfg.msl * 2));
        self.timers.set(Timer::Rtx, None);
        self.timers.set(Timer::Persist, None);
        self.snd.sb.clear();
    }

    /// RFC 9293 §3.10.7.4: a RST in SYN-RECEIVED of a passive open.
    fn back_to_listen(&mut self) {
        let cfg = self.cfg.clone();
        let mut fresh = Self::listen(&cfg, self.tuple, self.snd.iss);
        fresh.now = self.now;
        fresh.stats = self.stats;
        *self = fresh;
    }
}
