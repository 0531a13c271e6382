//! ACK processing (RFC 9293 §3.10.7.4 fifth), RTT sampling (RFC 6298,
//! RFC 7323 §4), the SACK scoreboard and loss recovery (RFC 6675, RFC 6582
//! without SACK, RFC 3042 limited transmit), and the ECN reaction
//! (RFC 3168 §6.1.2).

use super::timer_set::Timer;
use super::{Connection, Recovery, State};
use crate::io::Frame;
use crate::tcp::sack::DUP_THRESH;
use crate::tcp::{TcpFlags, TcpRepr};

impl<F: Frame> Connection<F> {
    /// An acceptable ACK (SND.UNA - MAX.SND.WND <= SEG.ACK <= SND.NXT).
    pub(super) fn on_ack(&mut self, seg: &TcpRepr, len: usize) {
        let now = self.now;
        let ack = seg.ack;
        let flight_before = self.in_flight();
        let old_wnd = self.snd.wnd;
        let wnd = (seg.window as usize) << self.opts.snd_wscale;

        // RFC 2018 / RFC 6675: SACK blocks above SND.UNA (D-SACK blocks
        // below it or inside already SACKed data change nothing).
        let mut newly_sacked = 0;
        let min_rtt = self.loss.rtt.min_rtt();
        // RFC 8985 §6.2 step 2: RACK's test of retransmitted deliveries.
        self.snd.sb.rack.ack_ecr = self.ack_ecr(seg);
        if self.opts.sack {
            // RFC 2883 §4: a D-SACK block comes first, below the ACK or
            // inside the second block.
            let blocks = seg.options.sack.as_slice();
            if let Some(&(l, r)) = blocks.first() {
                let inside_second = blocks.get(1).is_some_and(|&(l2, r2)| l2 <= l && r <= r2);
                if l < r && (r <= ack || inside_second) {
                    self.on_dsack(l, r);
                }
            }
        }
        if self.opts.sack {
            // Lowest block first. RFC 2018 §4 names the block of the
            // latest arrival first, so an ACK that newly covers two blocks
            // (the one before it lost) lists the higher first; taken in
            // that order, the lower block's segments seem delivered below
            // newer data and RACK counts reordering that never happened
            // (raising DupThresh and reo_wnd). Linux sorts them too.
            let mut sorted = seg.options.sack;
            let n = sorted.as_slice().len();
            let blocks = &mut sorted.blocks[..n];
            if n > 1 {
                blocks.sort_unstable_by_key(|&(l, _)| l.diff(self.snd.una));
            }
            for &(l, r) in blocks.iter() {
                if l < r && l >= self.snd.una && r <= self.snd.nxt && r - l <= self.snd.in_flight()
                {
                    newly_sacked += self.snd.sb.sack(l, r, now, min_rtt);
                }
            }
        }

        let acked = if ack > self.snd.una {
            ack - self.snd.una
        } else {
            0
        };
        let rtt_sample = match acked > 0 {
            true => self.advance_una(seg, min_rtt),
            false => None,
        };

        // RFC 5681 §2 DUPLICATE ACKNOWLEDGMENT (RFC 6675 §2 with SACK: it
        // must SACK new data).
        let is_dupack = acked == 0
            && ack == self.snd.una
            && flight_before > 0
            && if self.opts.sack {
                newly_sacked > 0
            } else {
                len == 0 && !seg.flags.fin() && wnd == old_wnd
            };

        if acked > 0 {
            // Progress: the next persist or SWS-override wait starts short.
            self.probe.persist_backoff = 0;
        }
        if self.probe.persisting {
            // RFC 1122 §4.2.2.17: the receiver answers our probes; keep
            // probing (the user timeout counts from the last answer).
            self.probe.unanswered = 0;
            self.snd.una_since = None;
        }

        self.update_snd_wnd(seg, wnd);

        // RFC 3522 (Eifel detection): the first ACK of new data after an
        // RTO echoes a timestamp older than the retransmission: the
        // original transmission arrived, the timeout was spurious.
        if let (Recovery::Loss { .. }, Some(rto_ts), true) =
            (self.loss.recovery, self.loss.rto_tsval, acked > 0)
        {
            self.loss.rto_tsval = None;
            if let Some((_, ecr)) = seg.options.timestamps.filter(|_| self.opts.ts) {
                if ecr != 0 && (ecr.wrapping_sub(rto_ts) as i32) < 0 {
                    self.undo_rto();
                }
            }
        }
        self.loss_recovery(acked, is_dupack, newly_sacked, flight_before, rtt_sample);

        // RFC 3168 §6.1.2: react to ECE once per window of data.
        if self.opts.ecn
            && seg.flags.contains(TcpFlags::ECE)
            && self.loss.recovery == Recovery::Open
            && self.snd.una > self.loss.ecn_recover
        {
            let base = self.reduction_base(flight_before);
            self.loss.cc.on_congestion_event(now, base);
            // Not `recover`: a loss in this window must still be repaired
            // by fast recovery (`enter_fast_recovery` skips the second
            // reduction); refused, it waited for the RTO.
            self.loss.ecn_recover = self.snd.nxt;
            self.loss.cwr_pending = true;
            self.stats.ecn_reactions += 1;
        }

        if acked > 0 {
            self.on_progress();
        }
    }

    /// SND.UNA advanced to SEG.ACK: the scoreboard and the send queue
    /// release what it covers and the RTT is sampled (RFC 6298 §3 Karn,
    /// or RFC 7323 §4.1 timestamps). Returns the sample, if any. Shared
    /// by the general path and header prediction (`on_predicted_ack`).
    #[inline(always)]
    pub(super) fn release_acked(
        &mut self,
        seg: &TcpRepr,
        now: crate::time::Instant,
        min_rtt: Option<core::time::Duration>,
    ) -> Option<core::time::Duration> {
        let ack = seg.ack;
        let acked = ack - self.snd.una;
        let a = self.snd.sb.ack(ack, now, min_rtt);
        self.note_delivered(a.largest);
        if self.mptcp.session.is_none() && self.mptcp.tx.is_none() {
            self.snd.queue.ack(ack);
        } else {
            // MPTCP: released once the DATA_ACK covers it too; a joined
            // subflow gives the connection's lent frames back.
            self.mptcp_snd_release(ack);
        }
        self.snd.una = ack;
        self.mtu_probe_on_ack();
        self.stats.bytes_acked += acked as u64;
        match a.rtt_sent_at {
            Some(at) if !a.any_retrans => {
                // The common case in µs (`sample_us`), its `Duration`
                // made once for the caller.
                let us = now.micros().saturating_sub(at.micros());
                self.loss.rtt.sample_us(us, now);
                Some(core::time::Duration::from_micros(us))
            }
            _ => self.rtt_of_retransmitted(seg, &a),
        }
    }

    /// The RTT of an ACK that covers a retransmission (or no sample), out
    /// of line. The echoed timestamp must come from the latest
    /// transmission: an older echo (the receiver had the data and our
    /// ACKs were lost) would measure the whole retransmission gap,
    /// inflating SRTT and the RTO for good.
    #[cold]
    #[inline(never)]
    fn rtt_of_retransmitted(
        &mut self,
        seg: &TcpRepr,
        a: &crate::tcp::sack::Acked,
    ) -> Option<core::time::Duration> {
        let r = self.ts_rtt(seg).filter(|_| {
            let ecr = seg.options.timestamps.map_or(0, |(_, e)| e);
            a.latest_sent
                .is_none_or(|t| (ecr.wrapping_sub(t.millis() as u32) as i32) >= 0)
        });
        if let Some(r) = r {
            self.loss.rtt.sample(r, self.now);
        }
        r
    }

    /// `advance_una_inline`, out of line (the general path's call).
    pub(super) fn advance_una(
        &mut self,
        seg: &TcpRepr,
        min_rtt: Option<core::time::Duration>,
    ) -> Option<core::time::Duration> {
        self.advance_una_inline(seg, min_rtt)
    }

    /// SEG.ACK acknowledged new data (SND.UNA < SEG.ACK <= SND.NXT): the
    /// scoreboard and send queue release it, SND.UNA moves, the RTT is
    /// sampled and the timers restart. Returns the RTT sample, if any.
    /// Inline into its out-of-line wrapper `advance_una`.
    #[inline(always)]
    pub(super) fn advance_una_inline(
        &mut self,
        seg: &TcpRepr,
        min_rtt: Option<core::time::Duration>,
    ) -> Option<core::time::Duration> {
        let now = self.now;
        let rtt_sample = self.release_acked(seg, now, min_rtt);
        self.loss.rtx_count = 0;
        // RFC 6298 §5.3: restart the timer; §5.2: stop it when all is acked.
        let rtx = if self.snd.una == self.snd.nxt || self.probe.persisting {
            None
        } else {
            Some(self.rto_deadline())
        };
        self.timers.set(Timer::Rtx, rtx);
        self.snd.una_since = (self.snd.una != self.snd.nxt).then_some(now);
        // RFC 8985 §7.2: restart the PTO on every ACK of new data.
        self.timers.set(Timer::Tlp, None);
        if self.loss.tlp_high.is_some_and(|h| self.snd.una >= h) {
            self.loss.tlp_high = None;
        }
        self.new_space();
        rtt_sample
    }

    /// The TSecr of `seg` when timestamps are in use (0: none).
    #[inline(always)]
    pub(super) fn ack_ecr(&self, seg: &TcpRepr) -> u32 {
        match (self.opts.ts, seg.options.timestamps) {
            (true, Some((_, ecr))) => ecr,
            _ => 0,
        }
    }

    /// RFC 9293 §3.10.7.4: SND.WND update with the WL1/WL2 guard
    /// (`SendSide::window_update`, which says why an ACK of new data
    /// passes it too); `wnd` is SEG.WND scaled.
    pub(super) fn update_snd_wnd(&mut self, seg: &TcpRepr, wnd: usize) {
        // The update itself always runs (first operand).
        if self.snd.window_update(seg.seq, seg.ack, wnd) && wnd > 0 && self.probe.persisting {
            self.probe.window_opened();
            self.timers.set(Timer::Persist, None);
            if self.snd.una != self.snd.nxt {
                self.timers.set(Timer::Rtx, Some(self.rto_deadline()));
            }
        }
    }

    /// Recovery state machine for one ACK.
    pub(super) fn loss_recovery(
        &mut self,
        acked: usize,
        is_dupack: bool,
        newly_sacked: usize,
        flight_before: usize,
        rtt: Option<core::time::Duration>,
    ) {
        let now = self.now;
        let mss = self.snd.mss;
        self.loss.count_dupack(is_dupack, acked);
        if self.opts.sack {
            if newly_sacked > 0 {
                self.snd.sb.mark_lost(mss);
            }
            self.rack_run();
        }
        match self.loss.recovery {
            Recovery::Open => {
                if acked > 0 {
                    self.loss.cc.on_ack(now, acked, flight_before, rtt);
                }
                // RFC 6675 §5 step 4 / RFC 6582 §3.2 step 2: enter recovery
                // on DupThresh duplicates (or IsLost(HighACK+1)), once per
                // window ("recover").
                let lost = self.opts.sack && self.snd.sb.next_lost().is_some();
                let trigger = self.loss.dupacks as usize >= self.snd.sb.dupthresh() || lost;
                if trigger
                    && self.snd.una > self.loss.recover - 1
                    && self.snd.una != self.snd.nxt
                    && !self.mtu_probe_lost()
                {
                    self.enter_fast_recovery(flight_before);
                }
            }
            Recovery::Fast { point } => {
                if self.snd.una >= point {
                    // RFC 6675 §5 / RFC 6582 step 3: full ACK.
                    self.loss.recovery = Recovery::Open;
                    self.loss.dupacks = 0;
                    self.loss.cc.on_recovery_exit(now);
                } else if acked > 0 && !self.opts.sack {
                    // RFC 6582 §3.2 step 5: a partial ACK; retransmit the
                    // next hole. Acked segments eat the duplicate count.
                    let segs = acked.div_ceil(mss) as u32;
                    self.loss.dupacks = self.loss.dupacks.saturating_sub(segs.saturating_sub(1));
                    self.snd.sb.mark_head_lost();
                    self.loss.rexmit_head = true;
                }
            }
            Recovery::Loss { point } => {
                if acked > 0 {
                    self.loss.cc.on_ack(now, acked, flight_before, rtt);
                    self.loss.dupacks = 0;
                }
                if self.snd.una >= point {
                    self.loss.recovery = Recovery::Open;
                    self.loss.dupacks = 0;
                } else if !self.opts.sack
                    && self.loss.dupacks as usize == DUP_THRESH
                    && self.loss.cc.cwnd() > mss
                {
                    // RFC 6582 §4.2 ACK heuristic: duplicates right after
                    // progress in go-back-N mean a retransmission was lost
                    // again (with SACK, RACK catches it).
                    self.enter_fast_recovery(flight_before);
                }
            }
        }
        if self.loss.in_fast_recovery() {
            // RFC 6937: DeliveredData; a duplicate ACK without SACK stands
            // for one segment.
            let delivered = if self.opts.sack {
                acked + newly_sacked
            } else if is_dupack {
                mss
            } else {
                acked
            };
            let pipe = self.pipe();
            self.loss
                .prr
                .on_ack(delivered, pipe, self.loss.cc.ssthresh(), mss);
        }
    }

    /// A spurious RTO: restore the window (RFC 4015 spirit) and stop
    /// retransmitting what was delivered.
    fn undo_rto(&mut self) {
        self.loss.cc.on_spurious(self.now);
        self.snd.sb.unmark_lost();
        self.loss.recovery = Recovery::Open;
        // RFC 6675 §5.1 holds fast recovery back until the timeout's
        // RecoveryPoint is acknowledged; this timeout was spurious (RFC
        // 3522), so a genuine loss in its window is repaired by fast
        // recovery (as Linux after an undo), not by a second RTO.
        self.loss.recover = self.snd.una;
        self.loss.dupacks = 0;
        self.loss.rexmit_head = false;
        self.stats.spurious_rtos += 1;
    }

    /// RFC 3708: a D-SACK for one of our retransmissions.
    fn on_dsack(&mut self, l: crate::tcp::SeqNumber, r: crate::tcp::SeqNumber) {
        let Some(dist) = self.loss.dsack.on_dsack(l, r) else {
            return;
        };
        self.stats.spurious_retransmits += 1;
        let rack = &mut self.snd.sb.rack;
        rack.reordering_seen = true;
        rack.reordering = rack.reordering.max((dist + 1).min(300));
        if self.loss.recovery == Recovery::Open && self.loss.dsack.all_spurious() {
            // Every retransmission of the last fast recovery was needless:
            // undo its window reduction (as Linux's DSACK undo).
            self.loss.dsack.end_episode();
            self.loss.cc.on_spurious(self.now);
            self.stats.recovery_undos += 1;
        }
    }

    /// RFC 8985 §6.2: RACK loss detection; arms the reordering timer.
    /// Returns whether a segment was newly deemed lost.
    pub(super) fn rack_run(&mut self) -> bool {
        // Nothing sent before the newest delivered segment is outstanding
        // (every ACK on a lossless path): nothing to mark, no timer, and
        // RACK.reo_wnd need not be computed.
        if !self.snd.sb.rack_has_candidates() {
            self.timers.set(Timer::Rack, None);
            return false;
        }
        let reo = self.reo_wnd();
        let (lost, timer) = self.snd.sb.rack_detect(self.now, reo);
        self.timers.set(Timer::Rack, timer);
        lost
    }

    /// RFC 8985 §6.2 step 4: RACK.reo_wnd.
    fn reo_wnd(&self) -> core::time::Duration {
        let r = &self.snd.sb.rack;
        if !r.reordering_seen
            && (self.loss.recovery != Recovery::Open
                || self.loss.dupacks as usize >= self.snd.sb.dupthresh())
        {
            return core::time::Duration::ZERO;
        }
        let m =
            self.loss.rtt.min_rtt().unwrap_or_default() / 4 * self.loss.dsack.reo_wnd_mult.max(1);
        m.min(self.loss.rtt.srtt().unwrap_or(m))
    }

    pub(super) fn enter_fast_recovery(&mut self, flight: usize) {
        // RFC 3168 §6.1.2: "the congestion window should be reduced only
        // once in response to a series of dropped and/or CE packets from
        // a single window of data": a loss in the window an ECE already
        // reduced is repaired at that window (as Linux from CWR).
        let reduced = self.snd.una < self.loss.ecn_recover;
        // RFC 6675 §5 step 4.
        let point = self.snd.nxt;
        self.loss.recovery = Recovery::Fast { point };
        self.loss.recover = point;
        self.loss.ecn_recover = point;
        self.stats.fast_recoveries += 1;
        if reduced {
            // Nothing of this episode to undo (a D-SACK undo would undo
            // the ECN reduction).
            self.loss.dsack.end_episode();
        } else {
            let base = self.reduction_base(flight);
            self.loss.cc.on_congestion_event(self.now, base);
            self.loss.dsack.start_episode();
        }
        self.loss.prr = super::prr::Prr::start(self.in_flight());
        self.snd.sb.mark_head_lost();
        self.loss.rexmit_head = true;
        if self.opts.ecn {
            self.loss.cwr_pending = true;
        }
    }

    /// The "flight size" a window reduction starts from: what is outstanding,
    /// but never more than cwnd. After a recovery, SND.NXT - SND.UNA still
    /// counts the SACKed data above the holes (and what PRR sent), which
    /// would make each reduction start above the window it reduces (Linux
    /// likewise reduces from cwnd).
    pub(super) fn reduction_base(&self, flight: usize) -> usize {
        flight.min(self.loss.cc.cwnd())
    }

    /// RFC 6675 §4 pipe, with NewReno's duplicate ACKs standing in for SACKed
    /// segments when SACK is off (as Linux does).
    pub(super) fn pipe(&self) -> usize {
        let p = self.snd.sb.pipe();
        if self.opts.sack {
            p
        } else {
            p.saturating_sub(self.loss.dupacks as usize * self.snd.mss)
        }
    }

    /// (bytes the congestion window allows in flight, bytes counted in flight)
    pub(super) fn cwnd_budget(&self) -> (usize, usize) {
        match self.loss.recovery {
            Recovery::Open => {
                // RFC 3042: the first two duplicate ACKs each allow one new
                // segment beyond cwnd.
                let lt = (self.loss.dupacks as usize).min(2) * self.snd.mss;
                (self.loss.cc.cwnd() + lt, self.in_flight())
            }
            Recovery::Fast { .. } => {
                // RFC 6937: cwnd = pipe + sndcnt, as of the last ACK.
                (self.loss.prr.cwnd(), self.pipe())
            }
            Recovery::Loss { .. } => (self.loss.cc.cwnd(), self.pipe()),
        }
    }

    /// SND.UNA advanced: state transitions that wait for our FIN's ACK.
    pub(super) fn on_progress(&mut self) {
        if !self.our_fin_acked() {
            return;
        }
        match self.state {
            State::FinWait1 => self.state = State::FinWait2,
            State::Closing => self.enter_time_wait(),
            State::LastAck => self.enter_closed(),
            _ => {}
        }
    }
}
