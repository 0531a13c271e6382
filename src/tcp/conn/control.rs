//! Closing, resets and challenge ACKs: the helpers shared by input,
//! timers and the application calls (RFC 9293 §3.10.5, RFC 5961 §7).

use super::{ConnEvents, Connection, State, CHALLENGE_ACK_LIMIT};
use crate::io::Frame;
use crate::tcp::{SeqNumber, TcpFlags, TcpRepr};
use crate::time::Instant;

/// The per-connection limit of answer ACKs and the stack's verdict.
#[derive(Debug, Clone, Copy)]
pub(super) struct AnswerState {
    start: Instant,
    count: u32,
    /// The stack-wide budget allows one more (set by the stack).
    pub global_ok: bool,
}

impl AnswerState {
    pub(super) fn new(now: Instant) -> Self {
        AnswerState {
            start: now,
            count: 0,
            global_ok: true,
        }
    }
}

impl<F: Frame> Connection<F> {
    pub(super) fn enter_closed(&mut self) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.events.insert(ConnEvents::CLOSED);
        }
        self.drop_queues_and_timers();
        self.snd.fin_queued = false;
        self.syn.pending = false;
    }

    /// Forget what the TCB still had to send and every timer: the TCB
    /// sends nothing more (closed, or an MPTCP first subflow become the
    /// connection only, `mptcp_first`).
    pub(super) fn drop_queues_and_timers(&mut self) {
        // MPTCP: the connection's lent frames go back to it.
        self.mptcp_tx_drop_queue();
        self.snd.sb.clear();
        self.rcv.queue.clear_ooo();
        self.timers.clear();
        self.snd.una_since = None;
        self.rcv.ack_now = false;
        self.probe.persist_pending = false;
        self.probe.keepalive_pending = false;
    }

    /// Close because of a timeout; tell the peer with a RST when it may
    /// still be there (keepalive, user timeout).
    pub(super) fn timeout_close(&mut self, send_rst: bool) {
        // RFC 8684 §3.3.6: an MPTCP connection's first subflow timing out
        // ends that subflow only, while another lives (`mptcp_first`).
        if self.mptcp_first_timed_out() {
            return;
        }
        if send_rst && self.state.is_synchronized() {
            self.queue_active_reset();
        }
        self.events.insert(ConnEvents::TIMED_OUT);
        self.enter_closed();
    }

    /// RFC 9293 §3.10.5: <SEQ=SND.NXT><CTL=RST> (with ACK as Linux does).
    pub(super) fn queue_active_reset(&mut self) {
        let mut rst = self.base_repr(self.snd.nxt, TcpFlags::RST | TcpFlags::ACK);
        rst.ack = self.rcv.queue.nxt;
        rst.window = 0;
        rst.options = Default::default();
        self.rst_pending = Some(rst);
    }

    /// A bare header from us to the peer.
    pub(super) fn base_repr(&self, seq: SeqNumber, flags: TcpFlags) -> TcpRepr {
        TcpRepr {
            src_port: self.tuple.local.port(),
            dst_port: self.tuple.remote.port(),
            seq,
            ack: SeqNumber(0),
            flags,
            ..TcpRepr::default()
        }
    }

    /// RFC 5961 §7: send a challenge ACK unless over the rate limit.
    pub(super) fn challenge_ack(&mut self) {
        if self.rate_limited_ack() {
            self.stats.challenge_acks += 1;
        }
    }

    /// Queue an ACK subject to the per-connection rate limit (challenge
    /// ACKs, PAWS and out-of-window answers). Returns whether it was queued.
    pub(super) fn rate_limited_ack(&mut self) -> bool {
        let a = &mut self.answers;
        if self.now.saturating_since(a.start) >= core::time::Duration::from_secs(1) {
            a.start = self.now;
            a.count = 0;
        }
        if a.count >= CHALLENGE_ACK_LIMIT {
            return false;
        }
        if !a.global_ok {
            // RFC 5961 §7: the stack-wide limit.
            self.stats.answer_acks_limited += 1;
            return false;
        }
        a.count += 1;
        self.stats.answer_acks += 1;
        self.rcv.ack_now = true;
        true
    }
}
