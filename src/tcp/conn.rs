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
//! Driving contract: call `poll_transmit` after every `handle_segment`,
//! `handle_timeout` and application call (`send`, `recv_with`, `shutdown`,
//! `abort`), and again when the sink has room after refusing a segment;
//! `poll_at` reports timers only (retransmission, RACK reordering, tail
//! loss probe, delayed ACK, persist, keepalive, TIME-WAIT, user timeout).

mod ack;
mod control;
mod dsack;
mod input;
mod mptcp;
mod mptcp_early;
mod mptcp_first;
mod mptcp_join;
mod mptcp_rto;
mod mptcp_rx;
mod mptcp_tx;
mod options;
mod output;
mod plpmtud;
mod pmtu;
mod predict;
mod pressure;
mod prr;
mod rcv_space;
mod timer_set;
mod timers;
mod types;

pub use mptcp_rx::{DataLevelView, MappedQueue};
pub use mptcp_tx::{Chunk, RemoteSlot, RemoteView};
pub use pmtu::{IcmpClass, IcmpNotice};
pub use types::{ConnEvents, ConnStats, Payload, SegmentSink, State};

use super::cc::{self, CongestionControl};
use super::recv::RecvBuffer;
use super::rtt::RttEstimator;
use super::sack::Scoreboard;
use super::send::SendBuffer;
use super::{Config, FourTuple, SeqNumber, TcpRepr};
use crate::io::{Frame, Pkt};
use crate::time::Instant;
use timer_set::Timer;

/// Loss recovery phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recovery {
    Open,
    /// Fast recovery (RFC 6675 §5 / RFC 6582) until `point` is acked.
    Fast {
        point: SeqNumber,
    },
    /// After an RTO, until `point` is acked (RFC 6675 §5.1).
    Loss {
        point: SeqNumber,
    },
}

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

    // Send sequence space (RFC 9293 §3.3.1).
    iss: SeqNumber,
    snd_una: SeqNumber,
    /// Next new sequence number (retransmissions do not move it, so it is
    /// also the highest sent, "HighData" of RFC 6675).
    snd_nxt: SeqNumber,
    snd_wnd: usize,
    snd_wl1: SeqNumber,
    snd_wl2: SeqNumber,
    /// RFC 5961 §5: MAX.SND.WND.
    max_snd_wnd: usize,
    /// Payload bytes per segment (MSS less fixed options).
    snd_mss: usize,
    sndq: SendBuffer<F>,
    sb: Scoreboard,
    /// The application called `shutdown`: FIN after the queued data.
    fin_queued: bool,
    /// `send` returned short: report `writable` when space frees.
    write_blocked: bool,
    nodelay: bool,
    /// End of the last short segment sent (Minshall's Nagle variant).
    snd_sml: SeqNumber,

    // Receive sequence space.
    irs: SeqNumber,
    rcvq: RecvBuffer<F>,
    /// RCV.NXT + RCV.WND as last advertised (never moves left).
    rcv_adv: SeqNumber,
    /// Frame memory the receive side may hold: `Config::rcv_buf`, grown
    /// by autotuning up to `Config::rcv_buf_max` (`rcv_space`).
    rcv_buf: usize,
    rcv_space: rcv_space::RcvSpace,
    /// Largest segment seen from the peer (delayed-ACK "full-sized").
    rcv_mss: usize,
    /// Sequence number of the peer's FIN, once seen.
    fin_rcvd: Option<SeqNumber>,
    fin_done: bool,

    // Timestamps (RFC 7323 §4.3).
    ts_recent: u32,
    ts_recent_at: Instant,
    last_ack_sent: SeqNumber,

    rtt: RttEstimator,
    cc: Box<dyn CongestionControl>,
    recovery: Recovery,
    /// RFC 6582 "recover": at most one window reduction per window of data.
    recover: SeqNumber,
    dupacks: u32,
    /// Retransmit the first lost segment even if the window is full (entry
    /// into recovery, NewReno partial ACK, RTO).
    rexmit_head: bool,
    /// RFC 6937 state of the current fast recovery.
    prr: prr::Prr,
    /// D-SACK evidence of spurious retransmissions.
    dsack: dsack::Dsack,
    /// Our TSval when the first RTO of the episode fired (Eifel detection).
    rto_tsval: Option<u32>,

    // ECN (RFC 3168 §6.1).
    /// Receiver: echo ECE until CWR arrives.
    ece_echo: bool,
    /// Sender: set CWR on the next new data segment.
    cwr_pending: bool,
    ecn_recover: SeqNumber,

    // Handshake.
    syn_pending: bool,
    syn_sent_at: Option<Instant>,
    syn_retransmitted: bool,

    /// The timers with an absolute deadline, and the earliest of them.
    timers: timer_set::TimerSet,
    /// Consecutive RTO expirations without progress.
    rtx_count: u32,
    /// SND.NXT when the outstanding tail loss probe was sent.
    tlp_high: Option<SeqNumber>,
    tlp_pending: bool,
    persist_backoff: u32,
    /// Zero-window probes sent since the peer last answered.
    probes_unanswered: u32,
    /// A zero-window probe is (or was) outstanding: persist, not RTO.
    persisting: bool,
    probe_pending: bool,
    last_rx: Instant,
    keepalive_sent: u32,
    keepalive_pending: bool,
    last_keepalive: Instant,
    /// Since when the oldest outstanding data has been waiting (user timeout).
    una_since: Option<Instant>,
    last_data_sent: Instant,

    /// MPTCP (RFC 8684): the connection-level state when MPTCP was asked
    /// for or offered; `None` for plain TCP. Boxed: most connections are
    /// plain.
    mp: Option<Box<crate::mptcp::Session>>,
    /// MPTCP (RFC 8684 §3.2): this is an extra subflow the peer joined to
    /// one of our connections; `None` otherwise. Boxed as `mp`.
    join: Option<Box<crate::mptcp::Join>>,
    /// MPTCP receive across subflows (RFC 8684 §3.3): this subflow's
    /// mappings, and on the first subflow the connection-level queue by
    /// DSN that the application reads. `None` for plain TCP.
    mpx: Option<Box<mptcp_rx::MpRx<F>>>,
    /// MPTCP with `MptcpCc::Lia`: the connection's coupled subflows
    /// (created by the first subflow, given to joined ones).
    lia: Option<std::sync::Arc<crate::tcp::cc::lia::LiaGroup>>,
    /// MPTCP send across subflows (RFC 8684 §3.3): this subflow's
    /// mappings of our data, and on the first subflow the connection's
    /// send queue and scheduler. `None`: plain TCP, or our data one to
    /// one on the first subflow.
    mtx: Option<Box<mptcp_tx::MpTx<F>>>,
    /// MPTCP (RFC 8684 §3.3.6): this first subflow died (reset, timed out,
    /// or its path gone) while a joined subflow lives, so the TCB only
    /// holds the connection-level state the application uses: it sends
    /// nothing, runs no timer and takes no segment (`mptcp_tx`).
    meta_only: bool,

    // Output requests.
    ack_now: bool,
    /// In-order bytes received since the last ACK.
    rcv_unacked: usize,
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
            iss,
            snd_una: iss,
            snd_nxt: iss,
            snd_wnd: 0,
            snd_wl1: SeqNumber(0),
            snd_wl2: iss,
            max_snd_wnd: 0,
            snd_mss: mss.min(DEFAULT_MSS),
            sndq: SendBuffer::new(iss + 1),
            sb: Scoreboard::default(),
            fin_queued: false,
            write_blocked: false,
            nodelay: cfg.nodelay,
            snd_sml: iss,
            irs: SeqNumber(0),
            rcvq: RecvBuffer::new(SeqNumber(0)),
            rcv_adv: SeqNumber(0),
            rcv_buf: cfg.rcv_buf,
            rcv_space: rcv_space::RcvSpace::new(now),
            rcv_mss: mss.min(DEFAULT_MSS),
            fin_rcvd: None,
            fin_done: false,
            ts_recent: 0,
            ts_recent_at: now,
            last_ack_sent: SeqNumber(0),
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            cc: cc::new(cfg.cc, mss, cfg.initial_window),
            recovery: Recovery::Open,
            recover: iss,
            dupacks: 0,
            rexmit_head: false,
            prr: prr::Prr::default(),
            dsack: dsack::Dsack::default(),
            rto_tsval: None,
            ece_echo: false,
            cwr_pending: false,
            ecn_recover: iss,
            syn_pending: false,
            syn_sent_at: None,
            syn_retransmitted: false,
            timers: timer_set::TimerSet::default(),
            rtx_count: 0,
            tlp_high: None,
            tlp_pending: false,
            persist_backoff: 0,
            probes_unanswered: 0,
            persisting: false,
            probe_pending: false,
            last_rx: now,
            keepalive_sent: 0,
            keepalive_pending: false,
            last_keepalive: now,
            una_since: None,
            last_data_sent: now,
            ack_now: false,
            rcv_unacked: 0,
            rst_pending: None,
            answers: control::AnswerState::new(now),
            path: pmtu::PathState::default(),
            orphan: timers::Orphan::default(),
            events: ConnEvents::default(),
            stats: ConnStats::default(),
            mp: None,
            join: None,
            mpx: None,
            lia: None,
            mtx: None,
            meta_only: false,
        }
    }

    /// Active open (RFC 9293 §3.10.1): SYN-SENT; the SYN leaves on the next
    /// `poll_transmit`.
    pub fn connect(cfg: &Config, tuple: FourTuple, iss: SeqNumber, now: Instant) -> Self {
        let mut c = Self::new_tcb(cfg, tuple, iss, State::SynSent, now);
        c.syn_pending = true;
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
        c.syn_pending = false;
        c.snd_nxt = iss + 1;
        if let Some((tsval, _)) = ack.options.timestamps {
            if c.opts.ts {
                c.ts_recent = tsval;
                c.ts_recent_at = now;
            }
        }
        c.snd_una = iss + 1;
        // The cookie SYN-ACK offered our usual unscaled initial window.
        c.rcv_adv = c.rcvq.nxt + c.rcvq.window(cfg.rcv_buf).min(65535);
        c.establish(ack, now);
        c
    }

    /// Process one arriving segment (RFC 9293 §3.10.7). `payload` holds its
    /// data (possibly empty) and is kept without copying if accepted. `ce`
    /// is set when the IP header carried ECN Congestion Experienced.
    pub fn handle_segment(&mut self, now: Instant, seg: &TcpRepr, payload: Pkt<F>, ce: bool) {
        self.now = self.now.max(now);
        self.stats.segs_in += 1;
        if self.meta_only {
            self.mptcp_dead_subflow_input(seg, payload.len());
            return;
        }
        if self.predicted(seg, payload.len(), ce) {
            self.on_predicted(seg, payload);
        } else {
            self.on_segment(seg, payload, ce);
        }
        self.update_timers();
    }

    /// Emit every segment that is due at `now`: handshake, data allowed by
    /// the windows, retransmissions, ACKs, window updates, probes, RST.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut dyn SegmentSink<F>) {
        self.now = self.now.max(now);
        if self.meta_only {
            self.mptcp_dead_subflow_output(out);
            return;
        }
        self.plpmtud_raise_timer();
        self.transmit(out);
        self.update_timers();
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
        let n = match self.mpx.is_some() {
            // MPTCP: the connection's data, reassembled by DSN.
            true => self.mptcp_data_mut().map_or(0, |d| d.read_with(f)),
            false => self.rcvq.read_with(f),
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
        match self.mpx.is_some() {
            true => self.mptcp_data().map_or(0, |d| d.available()),
            false => self.rcvq.available(),
        }
    }

    /// Whether the application may still queue data.
    fn can_send(&self) -> bool {
        !self.fin_queued
            && matches!(
                self.state,
                State::SynSent | State::SynReceived | State::Established | State::CloseWait
            )
    }

    /// Queue `data` for sending, written into frames from `alloc` (with
    /// `io::HEADROOM` reserved). Returns bytes accepted (short when the send
    /// buffer is full; `writable` fires when space frees up).
    pub fn send(&mut self, data: &[u8], alloc: &mut dyn FnMut() -> Option<F>) -> usize {
        if !self.can_send() || data.is_empty() {
            return 0;
        }
        if self.mp.is_some() {
            self.mptcp_tx_setup();
        }
        let cap = self.send_capacity();
        let seg_cap = self.fill_mss();
        // Send memory is counted in frames (truesize), not payload bytes.
        let mut frames = self.snd_frames_room();
        let mut limited = || {
            frames = frames.checked_sub(1)?;
            alloc()
        };
        let (q, upto) = self.app_sndq();
        let n = q.write(data, cap, seg_cap, upto, &mut limited);
        if n < data.len() {
            self.write_blocked = true;
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
        if self.mp.is_some() {
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
            self.write_blocked = true;
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
        if !self.can_send() || self.mp.is_some() {
            return 0;
        }
        let mut moved = 0;
        while self.snd_frames_room() > 0 {
            let cap = self.cfg.snd_buf.saturating_sub(self.sndq.len());
            let Some(mut p) = self.rcvq.pop_inorder(cap) else {
                break;
            };
            p.reclaim_headroom();
            moved += p.len();
            self.sndq.push_frame(p.frame, p.start, p.end);
        }
        if moved > 0 {
            self.rcv_space_adjust(moved);
            self.maybe_window_update();
        }
        if self.rcvq.available() > 0 {
            self.write_blocked = true;
        }
        moved
    }

    /// Payload bytes per send frame: the sender MSS once known, else our
    /// own MSS less the timestamps option we will probably use.
    fn fill_mss(&self) -> usize {
        if self.state.is_synchronized() {
            self.snd_mss
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
        let bytes = self.cfg.snd_buf.saturating_sub(q.len());
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
            State::SynReceived => self.fin_queued = true,
            State::Established => {
                self.fin_queued = true;
                self.state = State::FinWait1;
            }
            State::CloseWait => {
                self.fin_queued = true;
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
        self.keepalive_sent = 0;
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
        self.nodelay = nodelay;
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn tuple(&self) -> FourTuple {
        self.tuple
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
        self.cc.cwnd()
    }

    /// The peer's current send window (bytes, scaled).
    pub fn snd_wnd(&self) -> usize {
        self.snd_wnd
    }

    /// Payload bytes per full-sized segment we send.
    pub fn snd_mss(&self) -> usize {
        self.snd_mss
    }

    /// Bytes sent and not yet acknowledged.
    pub fn in_flight(&self) -> usize {
        self.snd_nxt - self.snd_una
    }

    /// Receive memory held (sum of frame truesize).
    pub fn rcv_mem(&self) -> usize {
        self.rcvq.mem()
    }

    /// Smoothed RTT, once sampled.
    pub fn srtt(&self) -> Option<core::time::Duration> {
        self.rtt.srtt()
    }

    /// The current retransmission timeout (with backoff).
    pub fn rto(&self) -> core::time::Duration {
        self.rtt.rto()
    }

    /// Bytes the application wrote that the peer has not acknowledged
    /// yet, sent or not: for an MPTCP connection, not covered by its
    /// DATA_ACK (RFC 8684 §3.3.2), whichever subflows carried them.
    pub fn send_unacked(&self) -> usize {
        self.app_sndq_ref().0.len()
    }

    /// Everything sent has been acknowledged and nothing is queued.
    pub fn send_queue_empty(&self) -> bool {
        self.sndq.len() == 0
    }

    /// The invariants every connection keeps between calls (checked by the
    /// simulator's swarm after every poll): SND.UNA ≤ SND.NXT; data in
    /// flight always has a timer that will act on it (retransmission,
    /// persist, tail loss probe or RACK); nothing beyond SND.NXT was ever
    /// sent except as new data. `Err` names the first one broken.
    pub fn check_invariants(&self) -> Result<(), String> {
        if self.snd_una > self.snd_nxt {
            return Err(format!(
                "SND.UNA {:?} beyond SND.NXT {:?}",
                self.snd_una, self.snd_nxt
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
        let data_state = !self.meta_only && (self.may_send_data() || self.state == State::FinWait2);
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
