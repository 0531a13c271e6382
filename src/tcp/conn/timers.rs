//! Timers: retransmission (RFC 6298 §5, SYN retries), delayed ACK (RFC 1122
//! §4.2.3.2), persist (RFC 9293 §3.8.6.1), keepalive (RFC 1122 §4.2.3.6),
//! TIME-WAIT (RFC 9293 §3.4.2), user timeout (RFC 5482), FIN-WAIT-2
//! timeout (Linux tcp_fin_timeout).

use super::timer_set::Timer;
use super::{Connection, Recovery, State};

/// The application closed the connection for good (Linux: an orphan).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Orphan {
    pub orphaned: bool,
    /// When FIN-WAIT-2 is given up (armed on entering it).
    pub fw2_deadline: Option<Instant>,
}
use crate::io::Frame;
use crate::time::Instant;
use core::time::Duration;

/// Linux's bounds for the persist interval.
const PERSIST_MIN: Duration = Duration::from_millis(200);

impl<F: Frame> Connection<F> {
    /// The carrier under this connection came back after it was lost (the
    /// runtime's link watcher). A retransmission timer that backed off
    /// during the outage would keep the path idle for up to its whole
    /// backoff (seconds): it fires at the next poll instead, and the ACK
    /// of that retransmission ends the backoff (RFC 6298 §5.7). Returns
    /// whether it was armed so.
    pub fn link_restored(&mut self) -> bool {
        if self.loss.rtx_count == 0 || !self.timers.is_armed(Timer::Rtx) {
            return false;
        }
        self.timers.set(Timer::Rtx, Some(self.now));
        true
    }

    pub(super) fn run_timers(&mut self) {
        let now = self.now;
        let due = |t: Option<Instant>| t.is_some_and(|t| t <= now);
        if self.state == State::Closed {
            return;
        }
        // The connection's own timer runs on, its first subflow gone or not.
        self.mptcp_data_rto();
        if self.mptcp.meta_only {
            return;
        }
        if due(self.timers.get(Timer::TimeWait)) {
            self.timers.set(Timer::TimeWait, None);
            self.enter_closed();
            return;
        }
        if due(self.user_deadline()) {
            self.timeout_close(true);
            return;
        }
        if due(self.timers.get(Timer::Rtx)) {
            self.timers.set(Timer::Rtx, None);
            self.on_rto();
            if self.state == State::Closed {
                return;
            }
        }
        if due(self.timers.get(Timer::Rack)) {
            self.timers.set(Timer::Rack, None);
            if self.opts.sack
                && self.rack_run()
                && self.loss.recovery == Recovery::Open
                && self.snd.una >= self.loss.recover
                && !self.mtu_probe_lost()
            {
                let flight = self.in_flight();
                self.enter_fast_recovery(flight);
            }
        }
        if due(self.timers.get(Timer::Tlp)) {
            self.timers.set(Timer::Tlp, None);
            self.loss.tlp_pending = true;
        }
        if due(self.timers.get(Timer::Delack)) {
            self.timers.set(Timer::Delack, None);
            self.rcv.ack_now = true;
        }
        if due(self.join_deadline()) {
            self.join_third_ack_due();
            if self.state == State::Closed {
                return;
            }
        }
        if due(self.mptcp_announce_deadline()) {
            // RFC 8684 §3.4: an ADD_ADDR (re)transmission or a REMOVE_ADDR
            // rides on a pure ACK.
            self.rcv.ack_now = true;
        }
        if due(self.timers.get(Timer::Persist)) {
            self.timers.set(Timer::Persist, None);
            // RFC 1122 §4.2.2.17: give up only when probes go unanswered.
            if self.probe.unanswered >= self.cfg.max_retries && self.probe.persisting {
                self.timeout_close(true);
                return;
            }
            // RFC 1122 §4.2.2.17: zero-window probes back off; the sender
            // SWS override (a window open but small, RFC 9293 §3.8.6.2.1)
            // is a plain timeout that sends data and must not.
            if self.usable_window() == 0 {
                self.probe.persist_backoff = (self.probe.persist_backoff + 1).min(16);
                self.probe.unanswered += 1;
            }
            self.probe.persist_pending = true;
        }
        if due(self.fin_wait2_deadline()) {
            self.stats.fin_wait2_timeouts += 1;
            self.timeout_close(true);
            return;
        }
        if due(self.keepalive_deadline()) {
            let Some(ka) = self.cfg.keepalive else { return };
            if self.probe.keepalive_sent >= ka.probes {
                self.timeout_close(true);
                return;
            }
            self.probe.keepalive_sent += 1;
            self.probe.last_keepalive = now;
            self.probe.keepalive_pending = true;
        }
    }

    /// RFC 6298 §5.4-5.6 and RFC 6675 §5.1.
    fn on_rto(&mut self) {
        let now = self.now;
        self.stats.rto_timeouts += 1;
        match self.state {
            State::SynSent | State::SynReceived => {
                if self.loss.rtx_count >= self.cfg.syn_retries {
                    self.timeout_close(false);
                    return;
                }
                self.loss.rtx_count += 1;
                self.loss.rtt.backoff();
                self.syn.pending = true;
            }
            _ => {
                if self.snd.sb.is_empty() {
                    return;
                }
                if self.loss.rtx_count >= self.cfg.max_retries {
                    self.timeout_close(false);
                    return;
                }
                self.loss.rtx_count += 1;
                let flight = self.in_flight();
                // RFC 5681 §3.1: ssthresh is held when the same segment times
                // out again.
                if self.loss.rtx_count == 1 {
                    let base = self.reduction_base(flight);
                    self.loss.cc.on_rto(now, base);
                    self.loss.rto_tsval = self.opts.ts.then(|| self.tsval());
                }
                self.loss.rtt.backoff();
                self.snd.sb.mark_all_lost();
                self.mtu_probe_on_rto();
                self.black_hole_check();
                self.loss.dsack.end_episode();
                self.loss.recovery = Recovery::Loss {
                    point: self.snd.nxt,
                };
                self.loss.recover = self.snd.nxt;
                self.loss.dupacks = 0;
                self.loss.rexmit_head = true;
                self.timers.set(Timer::Tlp, None);
                self.loss.tlp_high = None;
                self.loss.tlp_pending = false;
                self.timers.set(Timer::Rack, None);
            }
        }
    }

    /// The retransmission timer after a retransmission was sent. RFC 6298
    /// §5.1: started if not running. RFC 6675 §6: in fast recovery,
    /// restarted on each retransmission (its "more careful variant"; Linux
    /// re-arms for the head in tcp_xmit_retransmit_queue): SACK recovery
    /// keeps the ACK clock going without SND.UNA moving, and a repair
    /// lasting longer than an RTO would otherwise end in a spurious
    /// timeout (go-back-N, cwnd of one) while the retransmissions are
    /// still on their way. Not after an RTO: RFC 6298 §5.5-5.6 restarted
    /// it there, and each ACK of that go-back-N advances SND.UNA.
    pub(super) fn rto_after_retransmit(&mut self) {
        if self.probe.persisting {
            return;
        }
        if self.loss.in_fast_recovery() || !self.timers.is_armed(Timer::Rtx) {
            self.timers.set(Timer::Rtx, Some(self.rto_deadline()));
        }
    }

    /// RFC 8985 §7.2: PTO = 2·SRTT, plus a delayed-ACK allowance when one
    /// segment is in flight; none when the RTO would fire first.
    /// In µs (re-armed on every ACK of new data: no `Duration` arithmetic).
    fn pto_us(&self) -> Option<u64> {
        let srtt = self.loss.rtt.srtt_us()?;
        let mut pto = srtt.saturating_mul(2);
        if self.in_flight() <= self.snd.mss {
            pto = pto.max((srtt.saturating_mul(3) / 2).saturating_add(200_000));
        }
        Some(pto.max(1_000))
    }

    /// RFC 6298 §5.1/§5.3: when the retransmission timer started now fires.
    pub(super) fn rto_deadline(&self) -> Instant {
        self.now.plus_micros(self.loss.rtt.rto_us())
    }

    /// RFC 8985 §7.2: the PTO armed when `ok` (not already armed or a
    /// probe pending, and only if it fires before the RTO), else disarmed.
    #[inline(always)]
    fn arm_tlp(&mut self, ok: bool) {
        if !ok {
            self.timers.set(Timer::Tlp, None);
        } else if !self.timers.is_armed(Timer::Tlp) && !self.loss.tlp_pending {
            if let Some(p) = self.pto_us() {
                let t = self.now.plus_micros(p);
                if self.timers.get(Timer::Rtx).is_none_or(|r| t < r) {
                    self.timers.set(Timer::Tlp, Some(t));
                }
            }
        }
    }

    /// Deadline of the user timeout: oldest unacknowledged data waiting.
    fn user_deadline(&self) -> Option<Instant> {
        let ut = self.cfg.user_timeout?;
        if !self.state.is_synchronized() && self.state != State::SynReceived {
            return None;
        }
        Some(self.snd.una_since? + ut)
    }

    /// Linux's tcp_fin_timeout: a connection the application closed
    /// for good (`close`, not the half-close `shutdown`: it reads nothing
    /// more) leaves FIN-WAIT-2 after this long, counted from entering it,
    /// whatever the peer still sends (zero-window probes would otherwise
    /// keep it forever). A half-closed connection waits for the peer's FIN
    /// as RFC 9293 says: its application may still be reading.
    fn fin_wait2_deadline(&self) -> Option<Instant> {
        self.orphan.fw2_deadline
    }

    /// Arm the FIN-WAIT-2 deadline of an orphan on entering the state.
    fn arm_fin_wait2(&mut self) {
        let o = &mut self.orphan;
        if o.orphaned && self.state == State::FinWait2 && o.fw2_deadline.is_none() {
            o.fw2_deadline = self.cfg.fin_wait2_timeout.map(|t| self.now + t);
        } else if self.state != State::FinWait2 {
            o.fw2_deadline = None;
        }
    }

    fn keepalive_deadline(&self) -> Option<Instant> {
        let ka = self.cfg.keepalive?;
        if !matches!(
            self.state,
            State::Established | State::CloseWait | State::FinWait2
        ) {
            return None;
        }
        if self.snd.una != self.snd.nxt || self.snd.queue.len() > 0 {
            return None;
        }
        Some(self.probe.keepalive_due(&ka))
    }

    fn persist_interval(&self) -> Duration {
        let base = self.loss.rtt.rto().max(PERSIST_MIN);
        let d = base
            .checked_mul(1u32 << self.probe.persist_backoff.min(16))
            .unwrap_or(self.cfg.rto_max);
        d.min(self.cfg.rto_max.max(PERSIST_MIN))
    }

    /// Arm or disarm the timers that follow from the current state.
    pub(super) fn update_timers(&mut self) {
        if self.state == State::Closed || self.mptcp.meta_only {
            return;
        }
        self.arm_fin_wait2();
        let flight = self.in_flight();
        let unsent = self.snd.queue.tail() > self.snd.nxt;
        // Persist: unsent data, nothing in flight (so not cwnd or Nagle
        // bound): the send window stops us.
        let data_state = matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::LastAck
                | State::Closing
        );
        let need_persist = data_state && unsent && (flight == 0 || self.probe.persisting);
        if need_persist {
            if !self.timers.is_armed(Timer::Persist) && !self.probe.persist_pending {
                self.timers
                    .set(Timer::Persist, Some(self.now + self.persist_interval()));
            }
            if self.probe.persisting {
                self.timers.set(Timer::Rtx, None);
            }
        } else {
            self.timers.set(Timer::Persist, None);
            if !unsent {
                self.probe.window_opened();
            }
        }
        // RFC 8985 §7.2: arm the PTO in the open state with data in flight.
        let tlp_ok = self.opts.sack
            && data_state
            && flight > 0
            && self.loss.recovery == Recovery::Open
            && self.loss.tlp_high.is_none()
            && !self.probe.persisting;
        self.arm_tlp(tlp_ok);
        if flight == 0 || !self.opts.sack {
            self.timers.set(Timer::Rack, None);
        }
        if matches!(self.state, State::SynSent | State::SynReceived)
            && !self.timers.is_armed(Timer::Rtx)
        {
            // A SYN the sink refused still gets retried by the timer.
            self.timers.set(Timer::Rtx, Some(self.rto_deadline()));
        }
        if self.state.is_synchronized() {
            if flight == 0 {
                self.timers.set(Timer::Rtx, None);
                self.snd.una_since = None;
            } else if !self.probe.persisting {
                if !self.timers.is_armed(Timer::Rtx) && self.state != State::TimeWait {
                    self.timers.set(Timer::Rtx, Some(self.rto_deadline()));
                }
                if self.snd.una_since.is_none() {
                    self.snd.una_since = Some(self.now);
                }
            }
        }
    }

    /// `update_timers` after `poll_transmit`: in ESTABLISHED, FIN-WAIT-1
    /// or FIN-WAIT-2, not persisting, plain or MPTCP subflow alike, the
    /// decisions are those of `timers_after_predicted` (which checks the
    /// recovery state itself); every other case takes `update_timers`.
    #[inline]
    pub(super) fn timers_after_transmit(&mut self) {
        if matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) && !self.probe.persisting
            && !self.mptcp.meta_only
        {
            self.timers_after_predicted();
        } else {
            self.update_timers();
        }
    }

    /// `update_timers` after a predicted segment (`predict`), which leaves
    /// the connection synchronized in ESTABLISHED, FIN-WAIT-1 or
    /// FIN-WAIT-2, not persisting, plain TCP: the same decisions without
    /// the tests those states decide (the deadlines the segment moved
    /// were set where it moved them: `advance_una`, `on_data`). Anything
    /// else (fast recovery entered) takes `update_timers`.
    pub(super) fn timers_after_predicted(&mut self) {
        if self.loss.recovery != Recovery::Open {
            return self.update_timers();
        }
        debug_assert!(matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ));
        debug_assert!(!self.probe.persisting && !self.mptcp.meta_only);
        self.arm_fin_wait2();
        let flight = self.in_flight();
        let unsent = self.snd.queue.tail() > self.snd.nxt;
        let data_state = self.state != State::FinWait2;
        // Persist (not persisting: only with nothing in flight).
        if data_state && unsent && flight == 0 {
            if !self.timers.is_armed(Timer::Persist) && !self.probe.persist_pending {
                self.timers
                    .set(Timer::Persist, Some(self.now + self.persist_interval()));
            }
        } else {
            self.timers.set(Timer::Persist, None);
            if !unsent {
                self.probe.window_opened();
            }
        }
        // RFC 8985 §7.2: the PTO in the open state with data in flight.
        let tlp_ok = self.opts.sack && data_state && flight > 0 && self.loss.tlp_high.is_none();
        self.arm_tlp(tlp_ok);
        if flight == 0 {
            // RFC 6298 §5.2: all acknowledged.
            self.timers.set(Timer::Rack, None);
            self.timers.set(Timer::Rtx, None);
            self.snd.una_since = None;
        } else {
            if !self.opts.sack {
                self.timers.set(Timer::Rack, None);
            }
            if !self.timers.is_armed(Timer::Rtx) {
                self.timers.set(Timer::Rtx, Some(self.rto_deadline()));
            }
            if self.snd.una_since.is_none() {
                self.snd.una_since = Some(self.now);
            }
        }
    }

    /// `timers_after_predicted` after a predicted ACK of new data
    /// (`on_predicted_ack`), which already set the retransmission timer
    /// and `una_since` for the `flight` left (RFC 6298 §5.2/§5.3) and
    /// cancelled the PTO: only what that leaves open is decided here.
    #[inline(always)]
    pub(super) fn timers_after_ack_of_new_data(&mut self, flight: usize) {
        if self.loss.recovery != Recovery::Open {
            return self.update_timers();
        }
        if self.state != State::Established {
            self.arm_fin_wait2();
        }
        let data_state = self.state != State::FinWait2;
        if flight == 0 {
            // RFC 9293 §3.8.6.1: unsent data and nothing in flight: the
            // window stops us (persist).
            let unsent = self.snd.queue.tail() > self.snd.nxt;
            if data_state && unsent {
                if !self.timers.is_armed(Timer::Persist) && !self.probe.persist_pending {
                    self.timers
                        .set(Timer::Persist, Some(self.now + self.persist_interval()));
                }
            } else {
                self.timers.set(Timer::Persist, None);
            }
            self.timers.set(Timer::Rack, None);
        } else {
            self.timers.set(Timer::Persist, None);
            if !self.opts.sack {
                self.timers.set(Timer::Rack, None);
            }
            // RFC 8985 §7.2: the PTO in the open state with data in flight.
            self.arm_tlp(self.opts.sack && data_state && self.loss.tlp_high.is_none());
        }
    }

    #[inline]
    pub(super) fn next_deadline(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        if self.mptcp.meta_only {
            return self.mptcp_data_rto_at();
        }
        // Asked after every operation on the connection: the TCB's own
        // timers are one array (`TimerSet`); the deadlines derived from
        // other state (user timeout, FIN-WAIT-2, keepalive, MPTCP) are
        // mostly off, and looked at only when one may be on.
        let min = self.timers.next_us();
        let min = if self.derived_deadlines() {
            self.derived_deadline(min)
        } else {
            min
        };
        (min != u64::MAX).then(|| Instant::from_micros(min))
    }

    /// Whether a deadline derived from other state (user timeout,
    /// FIN-WAIT-2, keepalive, MPTCP) may be on: mostly not.
    #[inline(always)]
    fn derived_deadlines(&self) -> bool {
        self.cfg.user_timeout.is_some()
            | self.cfg.keepalive.is_some()
            | self.orphan.fw2_deadline.is_some()
            | self.mptcp.session.is_some()
            | self.mptcp.join.is_some()
            | self.mptcp.tx.is_some()
    }

    /// Whether the next deadline may now be earlier than `at`, where it
    /// was not when last read by [`Self::poll_at_mark`]: false only when
    /// no timer was armed below `at` since and no derived deadline (whose
    /// moves the timers do not see) may be on. The stack's re-arm asks
    /// this instead of computing the deadline after every operation.
    #[inline(always)]
    pub fn deadline_may_precede(&self, at: Instant) -> bool {
        self.timers.low_us() < at.micros() || self.derived_deadlines() || self.mptcp.meta_only
    }

    /// [`Self::poll_at`], and from now on [`Self::deadline_may_precede`]
    /// looks only at what is armed after this call.
    #[inline]
    pub fn poll_at_mark(&mut self) -> Option<Instant> {
        self.timers.reset_low();
        self.next_deadline()
    }

    /// `min` lowered to the derived deadlines (µs, `u64::MAX`: none).
    #[inline(never)]
    fn derived_deadline(&self, min: u64) -> u64 {
        let at = |d: Option<Instant>| d.map_or(u64::MAX, Instant::micros);
        min.min(at(self.user_deadline()))
            .min(at(self.fin_wait2_deadline()))
            .min(at(self.keepalive_deadline()))
            .min(at(self.mptcp_deadline()))
            .min(at(self.mptcp_data_rto_at()))
    }
}
