//! One TCP connection (the TCB of RFC 9293 §3.3.1) and its state machine.
//!
//! Inputs: [`Connection::handle_segment`], [`Connection::handle_timeout`] and
//! the application calls. Outputs: segments through [`SegmentSink`] from
//! [`Connection::poll_transmit`], and [`ConnEvents`] for the application.
//!
//! The work is split by concern: `input` (segment arrival, RFC 9293
//! §3.10.7), `ack` (ACK processing, SACK scoreboard, loss recovery RFC
//! 6675/6582, ECN reaction), `output` (what to send), `timers` (RTO,
//! delayed ACK, persist, keepalive, TIME-WAIT, user timeout), `options`
//! (negotiation and option building), `types` (the public vocabulary).
//! Buffers live in `tcp::send`, `tcp::recv` and `tcp::sack` (RFC 6675
//! scoreboard plus RACK, RFC 8985).
//!
//! The TCB's state is grouped into owned parts, each with the logic that
//! touches only its own fields: `send_side` (send sequence space, send
//! queue, scoreboard), `recv_side` (receive sequence space, receive
//! queue, timestamps, the ACK owed), `loss` (RTT, congestion control,
//! recovery), `handshake`, `timer_set` (deadlines) with `probes` (persist
//! and keepalive), and `mptcp_parts`. What needs several parts stays on
//! [`Connection`].
//!
//! Driving contract: call `poll_transmit` after every `handle_segment`,
//! `handle_timeout` and application call (`send`, `recv_with`, `shutdown`,
//! `abort`), and again when the sink has room after refusing a segment;
//! `poll_at` reports timers only (retransmission, RACK reordering, tail
//! loss probe, delayed ACK, persist, keepalive, TIME-WAIT, user timeout).

mod ack;
mod control;
mod digest;
mod dsack;
mod handshake;
mod input;
mod loss;
mod mptcp;
mod mptcp_early;
mod mptcp_first;
mod mptcp_join;
mod mptcp_level;
mod mptcp_parts;
mod mptcp_rto;
mod mptcp_rx;
mod mptcp_tx;
mod options;
mod output;
mod plain_tx;
mod plpmtud;
mod pmtu;
mod predict;
mod pressure;
mod probes;
mod prr;
mod rcv_space;
mod recv_side;
mod send_now;
mod send_side;
mod snd_space;
mod timer_set;
mod timers;
mod types;

pub use mptcp_level::LevelCell;
pub use mptcp_rx::{DataLevelView, MappedQueue};
pub use mptcp_tx::{Chunk, CopyRanges, RemoteSlot, RemoteView, Returned, COPY_RANGES};
pub use pmtu::{IcmpClass, IcmpNotice};
pub use send_now::SendNow;
pub use types::{ConnEvents, ConnStats, Payload, PlainHeader, SegmentSink, State};

pub(crate) use loss::Recovery;

use super::{Config, FourTuple, SeqNumber, TcpRepr};
use crate::io::{Frame, Pkt};
use crate::time::Instant;
use timer_set::Timer;

/// Negotiated options (RFC 9293 §3.7.1, RFC 7323, RFC 2018, RFC 3168).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Negotiated {
    pub ws: bool,
    pub snd_wscale: u8,
    pub rcv_wscale: u8,
    pub sack: bool,
    pub ts: bool,
    pub ecn: bool,
    /// The peer's MSS option (or 536).
    pub peer_mss: usize,
}

/// One TCP connection over frames of type `F`.
pub struct Connection<F: Frame> {
    cfg: Config,
    tuple: FourTuple,
    state: State,
    /// Created by `listen`: a RST in SYN-RECEIVED returns to LISTEN.
    from_listen: bool,
    /// Latest time seen.
    now: Instant,
    opts: Negotiated,

    /// Send sequence space, send queue and scoreboard (RFC 9293 §3.3.1).
    snd: send_side::SendSide<F>,
    /// Receive sequence space and receive queue (RFC 9293 §3.3.1).
    rcv: recv_side::RecvSide<F>,
    /// RTT, congestion control and loss recovery.
    loss: loss::LossRecovery,
    /// Our SYN or SYN-ACK (RFC 9293 §3.5).
    syn: handshake::Handshake,
    /// The timers with an absolute deadline, and the earliest of them.
    timers: timer_set::TimerSet,
    /// Persist and keepalive probes (RFC 9293 §3.8.6.1, RFC 1122 §4.2.3.6).
    probe: probes::Probes,
    /// MPTCP (RFC 8684); all empty on a plain TCP connection.
    mptcp: mptcp_parts::MptcpParts<F>,

    // Output requests.
    rst_pending: Option<TcpRepr>,
    /// Rate limit of the ACKs that answer invalid segments (RFC 5961 §7).
    answers: control::AnswerState,

    /// What was learned about the path (PMTU, ICMP errors).
    path: pmtu::PathState,
    /// Closed for good by the application (FIN-WAIT-2 timeout).
    orphan: timers::Orphan,

    events: ConnEvents,
    stats: ConnStats,
}

/// RFC 9293 §3.7.1: MSS assumed when the peer sends none.
const DEFAULT_MSS: usize = 536;
/// RFC 7323 §2.3: largest shift.
const MAX_WSCALE: u8 = 14;
/// RFC 5961 §7: challenge ACKs per second per connection.
const CHALLENGE_ACK_LIMIT: u32 = 10;

impl<F: Frame> Connection<F> {
    fn new_tcb(cfg: &Config, tuple: FourTuple, iss: SeqNumber, state: State, now: Instant) -> Self {
        let mss = (cfg.mss as usize).max(64);
        Connection {
            cfg: cfg.clone(),
            tuple,
            state,
            from_listen: false,
            now,
            opts: Negotiated {
                peer_mss: DEFAULT_MSS,
                ..Negotiated::default()
            },
            snd: send_side::SendSide::new(iss, mss.min(DEFAULT_MSS), cfg.snd_buf, cfg.nodelay, now),
            rcv: recv_side::RecvSide::new(cfg.rcv_buf, mss.min(DEFAULT_MSS), now),
            loss: loss::LossRecovery::new(cfg, iss, mss),
            syn: handshake::Handshake::default(),
            timers: timer_set::TimerSet::default(),
            probe: probes::Probes::new(now),
            mptcp: mptcp_parts::MptcpParts::default(),
            rst_pending: None,
            answers: control::AnswerState::new(now),
            path: pmtu::PathState::default(),
            orphan: timers::Orphan::default(),
            events: ConnEvents::default(),
            stats: ConnStats::default(),
        }
    }

    /// Active open (RFC 9293 §3.10.1): SYN-SENT; the SYN leaves on the next
    /// `poll_transmit`.
    pub fn connect(cfg: &Config, tuple: FourTuple, iss: SeqNumber, now: Instant) -> Self {
        let mut c = Self::new_tcb(cfg, tuple, iss, State::SynSent, now);
        c.syn.pending = true;
        c
    }

    /// A passive TCB in LISTEN (RFC 9293 §3.10.1) for `tuple.local`; the
    /// remote part of `tuple` is filled in by the first SYN. The stack's
    /// listeners use [`Connection::accept`] instead; this exists so the whole
    /// state machine can be driven segment by segment.
    pub fn listen(cfg: &Config, tuple: FourTuple, iss: SeqNumber) -> Self {
        let mut c = Self::new_tcb(cfg, tuple, iss, State::Listen, Instant::ZERO);
        c.from_listen = true;
        c
    }

    /// Passive open from a received SYN (RFC 9293 §3.10.7.2): SYN-RECEIVED;
    /// the SYN-ACK leaves on the next `poll_transmit`.
    pub fn accept(
        cfg: &Config,
        tuple: FourTuple,
        syn: &TcpRepr,
        iss: SeqNumber,
        now: Instant,
    ) -> Self {
        let mut c = Self::new_tcb(cfg, tuple, iss, State::SynReceived, now);
        c.on_passive_syn(syn, now);
        c
    }

    /// ESTABLISHED straight from the ACK that completed a SYN-cookie
    /// handshake (RFC 4987 §3.1): `syn` holds what the cookie encoded (the
    /// peer's ISN in `seq`, and its MSS, window scale, SACK-permitted and
    /// timestamps options); `iss` is our ISN (the cookie).
    pub fn from_cookie(
        cfg: &Config,
        tuple: FourTuple,
        syn: &TcpRepr,
        iss: SeqNumber,
        ack: &TcpRepr,
        now: Instant,
    ) -> Self {
        let mut c = Self::new_tcb(cfg, tuple, iss, State::SynReceived, now);
        c.on_passive_syn(syn, now);
        // The cookie SYN-ACK carried no ECN negotiation.
        c.opts.ecn = false;
        c.syn.pending = false;
        c.snd.nxt = iss + 1;
        if let Some((tsval, _)) = ack.options.timestamps {
            if c.opts.ts {
                c.rcv.ts_recent = tsval;
                c.rcv.ts_recent_at = now;
            }
        }
        c.snd.una = iss + 1;
        // The cookie SYN-ACK offered our usual unscaled initial window.
        c.rcv.adv = c.rcv.queue.nxt + c.rcv.queue.window(cfg.rcv_buf).min(65535);
        c.establish(ack, now);
        c
    }

    /// Process one arriving segment (RFC 9293 §3.10.7). `payload` holds its
    /// data (possibly empty) and is kept without copying if accepted. `ce`
    /// is set when the IP header carried ECN Congestion Experienced.
    pub fn handle_segment(&mut self, now: Instant, seg: &TcpRepr, payload: Pkt<F>, ce: bool) {
        self.now = self.now.max(now);
        self.stats.segs_in += 1;
        if self.mptcp.meta_only {
            self.mptcp_dead_subflow_input(seg, payload.len());
            return;
        }
        if self.predicted(seg, payload.len(), ce) {
            self.predicted_segment(seg, payload);
        } else {
            self.on_segment(seg, payload, ce);
            self.update_timers();
        }
    }

    /// Whether `seg` (`len` bytes of payload, CE-marked when `ce`) takes
    /// header prediction at `now` (the clock moves to `now` either way).
    /// Such a segment is then given to [`Self::handle_predicted`] instead
    /// of [`Self::handle_segment`]: it raises no answer ACK (RFC 5961
    /// §7's budget has nothing to count) and carries no FIN, which lets
    /// the stack skip that bookkeeping.
    #[inline(always)]
    pub fn predicts(&mut self, now: Instant, seg: &TcpRepr, len: usize, ce: bool) -> bool {
        self.now = self.now.max(now);
        !self.mptcp.meta_only && self.predicted(seg, len, ce)
    }

    /// [`Self::handle_segment`] for a segment [`Self::predicts`] just
    /// accepted (same clock, nothing changed in between).
    #[inline(always)]
    pub fn handle_predicted(&mut self, seg: &TcpRepr, payload: Pkt<F>) {
        self.stats.segs_in += 1;
        self.predicted_segment(seg, payload);
    }

    /// Emit every segment that is due at `now`: handshake, data allowed by
    /// the windows, retransmissions, ACKs, window updates, probes, RST.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut dyn SegmentSink<F>) {
        self.now = self.now.max(now);
        if self.mptcp.meta_only {
            self.mptcp_dead_subflow_output(out);
            return;
        }
        self.plpmtud_raise_timer();
        self.transmit(out);
        self.timers_after_transmit();
    }

    /// Run the timers that expired by `now` (retransmission, delayed ACK,
    /// persist, keepalive, TIME-WAIT, user timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.run_timers();
        self.update_timers();
    }

    /// The earliest instant at which `handle_timeout` or `poll_transmit`
    /// has something to do, if any.
    #[inline]
    pub fn poll_at(&self) -> Option<Instant> {
        self.next_deadline()
    }

    /// Zero-copy read: call `f` with consecutive in-order slices; `f` returns
    /// how many bytes of the slice it consumed (fewer stops the read).
    /// Frames are released when fully consumed. Returns bytes consumed.
    pub fn recv_with(&mut self, f: &mut dyn FnMut(&[u8]) -> usize) -> usize {
        let n = match self.mptcp.rx.is_some() {
            // MPTCP: the connection's data, reassembled by DSN.
            true => self.mptcp_data_mut().map_or(0, |d| d.read_with(f)),
            false => self.rcv.queue.read_with(f),
        };
        if n > 0 {
            self.rcv_space_adjust(n);
            self.maybe_window_update();
        }
        n
    }

    /// Copying read into `buf`. Returns bytes read.
    pub fn recv(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        self.recv_with(&mut |s| {
            let k = s.len().min(buf.len() - n);
            buf[n..n + k].copy_from_slice(&s[..k]);
            n += k;
            k
        });
        n
    }

    /// In-order bytes ready to read.
    pub fn recv_available(&self) -> usize {
        match self.mptcp.rx.is_some() {
            true => self.mptcp_data().map_or(0, |d| d.available()),
            false => self.rcv.queue.available(),
        }
    }

    /// Whether the application may still queue data.
    fn can_send(&self) -> bool {
        !self.snd.fin_queued
            && matches!(
                self.state,
                State::SynSent | State::SynReceived | State::Established | State::CloseWait
            )
    }

    /// Queue `data` for sending, written into frames from `alloc` (with
    /// `io::HEADROOM` reserved). Returns bytes accepted (short when the send
    /// buffer is full; `writable` fires when space frees up). Generic over
    /// the allocator (a `&mut dyn FnMut` works too), so that the stack's
    /// is inlined into the small write's one call.
    pub fn send<A>(&mut self, data: &[u8], alloc: &mut A) -> usize
    where
        A: FnMut() -> Option<F> + ?Sized,
    {
        if !self.can_send() || data.is_empty() {
            return 0;
        }
        if self.mptcp.session.is_some() {
            self.mptcp_tx_setup();
        }
        let seg_cap = self.fill_mss();
        // The small write of the steady state: plain TCP, everything
        // written before acknowledged (the queue holds no frame), at most
        // a segment and the buffer. `send_capacity` is then at least
        // min(buffer, a frame's segment) (one frame's room, nothing to top
        // up) and `snd_frames_room` at least one, so neither would cut
        // `data`: one frame, copied into at once.
        if self.mptcp.tx.is_none()
            && self.snd.queue.frames() == 0
            && data.len() <= seg_cap.min(self.snd.buf)
        {
            let n = alloc().map_or(0, |f| self.snd.queue.write_frame(f, data, seg_cap));
            if n < data.len() {
                self.snd.write_blocked = true;
            }
            return n;
        }
        self.send_general(data, seg_cap, &mut || alloc())
    }

    /// [`Self::send`] past the small write of the steady state.
    fn send_general(
        &mut self,
        data: &[u8],
        seg_cap: usize,
        alloc: &mut dyn FnMut() -> Option<F>,
    ) -> usize {
        let cap = self.send_capacity();
        // Send memory is counted in frames (truesize), not payload bytes.
        let mut frames = self.snd_frames_room();
        let mut limited = || {
            frames = frames.checked_sub(1)?;
            alloc()
        };
        let (q, upto) = self.app_sndq();
        let n = q.write(data, cap, seg_cap, upto, &mut limited);
        if n < data.len() {
            self.snd.write_blocked = true;
        }
        if self.mptcp_tx_alone() {
            // No joined subflow: the first takes it now (with joined
            // ones, the stack's scheduling pass hands it out).
            self.mptcp_pull_first(alloc);
        }
        n
    }

    /// Queue data written by `fill` straight into send frames (see
    /// [`SendBuffer::write_with`](super::send::SendBuffer::write_with)).
    /// Returns bytes accepted.
    pub fn send_with(
        &mut self,
        alloc: &mut dyn FnMut() -> Option<F>,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) -> usize {
        if !self.can_send() {
            return 0;
        }
        if self.mptcp.session.is_some() {
            self.mptcp_tx_setup();
        }
        let cap = self.send_capacity();
        let seg_cap = self.fill_mss();
        // The app had more to write unless `fill` stopped short by itself.
        let mut done = false;
        let (q, upto) = self.app_sndq();
        let n = q.write_with(cap, seg_cap, upto, alloc, &mut |dst| {
            let k = fill(dst);
            done |= k < dst.len();
            k
        });
        if !done {
            self.snd.write_blocked = true;
        }
        if self.mptcp_tx_alone() {
            // No joined subflow: the first takes it now (with joined
            // ones, the stack's scheduling pass hands it out).
            self.mptcp_pull_first(alloc);
        }
        n
    }

    /// Send back what was received, in order (an echo): each whole received
    /// packet moves, frame and all, from the receive queue to the end of
    /// the send queue, headers to be written in the room in front of its
    /// payload; no byte is copied. Stops at the send buffer's byte or frame
    /// limit (the rest stays readable). Returns bytes moved.
    pub fn echo_received(&mut self) -> usize {
        // MPTCP: data goes through the connection-level mapping (and its
        // checksum) by the copying path.
        if !self.can_send() || self.mptcp.session.is_some() {
            return 0;
        }
        let mut moved = 0;
        while self.snd_frames_room() > 0 {
            let cap = self.snd.buf.saturating_sub(self.snd.queue.len());
            let Some(mut p) = self.rcv.queue.pop_inorder(cap) else {
                break;
            };
            p.reclaim_headroom();
            moved += p.len();
            self.snd.queue.push_frame(p.frame, p.start, p.end);
        }
        if moved > 0 {
            self.rcv_space_adjust(moved);
            self.maybe_window_update();
        }
        if self.rcv.queue.available() > 0 {
            self.snd.write_blocked = true;
        }
        moved
    }

    /// Payload bytes per send frame: the sender MSS once known, else our
    /// own MSS less the timestamps option we will probably use.
    fn fill_mss(&self) -> usize {
        if self.state.is_synchronized() {
            self.snd.mss
        } else {
            let ts = if self.cfg.timestamps { 12 } else { 0 };
            (self.cfg.mss as usize).saturating_sub(ts).max(1)
        }
    }

    /// Bytes `send` would accept now.
    pub fn send_capacity(&self) -> usize {
        if !self.can_send() {
            return 0;
        }
        let (q, upto) = self.app_sndq_ref();
        // Under MPTCP, chunks lent to subflows count too.
        let bytes = self.app_snd_buf().saturating_sub(self.app_queued().0);
        let seg = self.fill_mss();
        let topup = q.topup_room(seg, upto);
        bytes.min(self.snd_frames_room().saturating_mul(seg) + topup)
    }

    /// Half-close (RFC 9293 §3.10.4 CLOSE): FIN after all queued data; the
    /// receive side stays open.
    pub fn shutdown(&mut self) {
        match self.state {
            State::Listen | State::SynSent => self.enter_closed(),
            // RFC 9293 §3.10.4: queued until ESTABLISHED.
            State::SynReceived => self.snd.fin_queued = true,
            State::Established => {
                self.snd.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.snd.fin_queued = true;
                self.state = State::LastAck;
            }
            _ => {}
        }
        self.update_timers();
    }

    /// Close for good (RFC 9293 §3.10.4 CLOSE, as Linux's close()): FIN
    /// after the queued data like `shutdown`, and the application reads
    /// nothing more, so FIN-WAIT-2 ends after `fin_wait2_timeout` even if
    /// the peer never sends its FIN.
    pub fn close(&mut self) {
        self.orphan.orphaned = true;
        self.shutdown();
    }

    /// Abort (RFC 9293 §3.10.5): RST to the peer, queues discarded, CLOSED.
    pub fn abort(&mut self) {
        self.abort_with(false);
    }

    /// [`Connection::abort`]; `fastclose`: an MPTCP connection (or one of
    /// its subflows) is abandoned as a whole, and its RST carries
    /// MP_FASTCLOSE (RFC 8684 §3.5).
    pub fn abort_with(&mut self, fastclose: bool) {
        if matches!(
            self.state,
            State::SynReceived
                | State::Established
                | State::FinWait1
                | State::FinWait2
                | State::CloseWait
        ) {
            self.queue_active_reset();
            if fastclose {
                self.mptcp_fastclose_option();
            }
        }
        self.enter_closed();
    }

    /// Keepalive (RFC 1122 §4.2.3.6) for this connection, as the
    /// application asks ("MUST default to off"); `None` turns it off.
    pub fn set_keepalive(&mut self, ka: Option<super::Keepalive>) {
        self.cfg.keepalive = ka;
        self.probe.keepalive_sent = 0;
        self.update_timers();
    }

    /// Whether the stack-wide budget of answer ACKs (RFC 5961 §7) allows
    /// one more; the stack sets it before each segment and charges what
    /// `stats().answer_acks` grew by.
    pub fn set_answer_allowed(&mut self, ok: bool) {
        self.answers.global_ok = ok;
    }

    /// Nagle on/off (RFC 1122 §4.2.3.4).
    pub fn set_nodelay(&mut self, nodelay: bool) {
        self.snd.nodelay = nodelay;
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn tuple(&self) -> FourTuple {
        self.tuple
    }

    /// Events since the last `take_events`, left in place.
    #[inline]
    pub fn events(&self) -> ConnEvents {
        self.events
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> ConnEvents {
        core::mem::take(&mut self.events)
    }

    pub fn stats(&self) -> &ConnStats {
        &self.stats
    }

    /// Congestion window (bytes).
    pub fn cwnd(&self) -> usize {
        self.loss.cc.cwnd()
    }

    /// The peer's current send window (bytes, scaled).
    pub fn snd_wnd(&self) -> usize {
        self.snd.wnd
    }

    /// Payload bytes per full-sized segment we send.
    pub fn snd_mss(&self) -> usize {
        self.snd.mss
    }

    /// Bytes sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.snd.in_flight()
    }

    /// Receive memory held (sum of frame truesize).
    pub fn rcv_mem(&self) -> usize {
        self.rcv.queue.mem()
    }

    /// Smoothed RTT, once sampled.
    pub fn srtt(&self) -> Option<core::time::Duration> {
        self.loss.rtt.srtt()
    }

    /// The current retransmission timeout (with backoff).
    pub fn rto(&self) -> core::time::Duration {
        self.loss.rtt.rto()
    }

    /// Bytes the application wrote that the peer has not acknowledged
    /// yet, sent or not: for an MPTCP connection, not covered by its
    /// DATA_ACK (RFC 8684 §3.3.2), whichever subflows carried them.
    pub fn send_unacked(&self) -> usize {
        self.app_queued().0
    }

    /// Everything sent has been acknowledged and nothing is queued.
    pub fn send_queue_empty(&self) -> bool {
        self.snd.queue.len() == 0
    }

    /// The invariants every connection keeps between calls (checked by the
    /// simulator's swarm after every poll): SND.UNA ≤ SND.NXT; data in
    /// flight always has a timer that will act on it (retransmission,
    /// persist, tail loss probe or RACK); nothing beyond SND.NXT was ever
    /// sent except as new data. `Err` names the first one broken.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.snd.una > self.snd.nxt {
            return Err(format!(
                "SND.UNA {:?} beyond SND.NXT {:?}",
                self.snd.una, self.snd.nxt
            ));
        }
        if self.stats.tx_beyond_snd_nxt > 0 {
            return Err(format!(
                "{} segment(s) sent beyond SND.NXT",
                self.stats.tx_beyond_snd_nxt
            ));
        }
        // A first subflow whose role ended (`mptcp_first`) has nothing in
        // flight any more: its data went to the other subflows.
        let data_state =
            !self.mptcp.meta_only && (self.may_send_data() || self.state == State::FinWait2);
        let timer = [Timer::Rtx, Timer::Persist, Timer::Tlp, Timer::Rack]
            .into_iter()
            .any(|t| self.timers.is_armed(t));
        if data_state && self.in_flight() > 0 && !timer {
            return Err(format!(
                "{} bytes in flight in {:?} and no timer armed",
                self.in_flight(),
                self.state
            ));
        }
        Ok(())
    }

    /// Clamp a received window-scale shift (RFC 7323 §2.3).
    fn clamp_wscale(ws: u8) -> u8 {
        ws.min(MAX_WSCALE)
    }
}
