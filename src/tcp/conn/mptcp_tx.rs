//! Our data across subflows (RFC 8684 §3.3): the connection's send side,
//! on its first subflow, and the scheduler that hands its chunks to the
//! subflows.
//!
//! The application writes into the connection-level queue (`MetaTx::dq`),
//! frames keyed by data sequence number, released only by the peer's
//! DATA_ACK (§3.3.2). A subflow with room pulls: the scheduler
//! ([`crate::mptcp::sched`]) decides whether it takes the next chunk, and
//! the chunk's frame is lent to the subflow's send queue (`lend`), where
//! the core sends and retransmits it as plain TCP, in place; its DSN is
//! kept in the subflow's [`TxMaps`], and every segment's DSS maps its
//! bytes (relative subflow sequence, data-level length, DSS checksum when
//! negotiated). The subflow's ACK gives the frame back to the connection,
//! which frees it at the DATA_ACK. Counted as `mptcp_tx_lent_bytes`.
//!
//! A chunk is copied into the subflow's own frames instead (counted as
//! `mptcp_tx_copied_bytes`) when its frame cannot move there: the subflow
//! takes its frames from another pool (another UMEM: a frame cannot leave
//! on a socket of another UMEM), the chunk is
//! part of a frame, or the redundant scheduler sends it more than once. A
//! connection that accepts no joins (`mptcp_max_subflows` 0) keeps the
//! one-to-one path.
//!
//! Reinjection (§3.3.6): what a subflow was given and the DATA_ACK does
//! not cover yet goes back to the scheduler, with its original DSNs, when
//! the subflow stalls (`STALL_RTOS` timeouts in a row) or goes; the
//! peer's data level keeps the first copy to arrive.

use super::mptcp_rto::DataLevel;
use super::{ConnEvents, Connection};
use crate::io::Frame;
use crate::mptcp::sched::{Pick, SchedKind, Scheduler, SubflowView};
use crate::mptcp::txmap::TxMaps;
use crate::mptcp::RxDsn;
use crate::tcp::send::SendBuffer;
use crate::tcp::{SeqNumber, State};
use crate::time::Instant;
use std::collections::VecDeque;

mod lend;
mod remote;
mod taker;
pub use lend::{CopyRanges, Returned, COPY_RANGES};
use lend::{Held, LentHere, Wants};
pub use remote::{Chunk, RemoteSlot, RemoteView};
use taker::Taker;

/// Retransmission timeouts in a row after which a subflow counts as
/// stalled: the scheduler passes it by and its data goes again on
/// another one.
pub(super) const STALL_RTOS: u32 = 2;

/// How long a subflow closed because its connection ended waits for its
/// FIN to be acknowledged before it gives up (its path may be gone; the
/// connection's data is all delivered, nothing is lost).
const SUBFLOW_LINGER: core::time::Duration = core::time::Duration::from_secs(10);

/// Ranges held by fast subflows that an end-of-stream opportunistic
/// retransmission passes over in one look (bounds the work per pull).
const WALK_RANGES: usize = 64;

/// Subflows one connection schedules over (the first and up to 8 joined:
/// `--mptcp-subflows` is at most 8).
const MAX_SLOTS: usize = 16;

/// The MPTCP send state of a subflow.
pub(crate) struct MpTx<F> {
    /// Our mappings on this subflow.
    maps: TxMaps,
    /// Subflow offset (64-bit) of the end of its send queue.
    tail_rel: u64,
    /// Its place among the connection's subflows (0: the first).
    slot: usize,
    /// DSS checksums were negotiated (RFC 8684 §3.3.1).
    pub(super) csum: bool,
    /// On a joined subflow: the peer's latest DATA_ACK seen here, for the
    /// connection.
    peer_data_ack: Option<RxDsn>,
    /// On a joined subflow closing for a connection whose first subflow
    /// is gone: the DSN of the connection's DATA_FIN, carried by this
    /// subflow's FIN (RFC 8684 §3.3.3: on any subflow).
    data_fin: Option<u64>,
    /// The peer's latest DATA_ACK seen here and the window its segment
    /// advertised (relative to it), for the connection's window edge
    /// (`mptcp_rto`).
    pub(super) edge_seen: Option<(RxDsn, usize)>,
    /// On the first subflow: the connection's send side.
    pub(super) meta: Option<Box<MetaTx<F>>>,
    /// The interface under this subflow lost its carrier (the runtime's
    /// link watcher): the scheduler gives it nothing, and what it holds
    /// goes again on the others at once (RFC 8684 §3.3.6), not after its
    /// retransmission timeouts. Its own timers still run: the carrier may
    /// come back, and with it the subflow.
    link_down: bool,
    /// On the first subflow: where the data written before the
    /// connection's queue was set up, sent one to one, ends (`None`: no
    /// such data left). Only this subflow's queue holds those bytes: they
    /// are released by the DATA_ACK, and a reinjection reads them there.
    pub(super) prefix_end: Option<SeqNumber>,
    /// Its frames come from the connection's pool: chunks are lent to it,
    /// not copied (decided once, when it registers).
    lend: bool,
    /// The connection's frames lent to this subflow's queue.
    lent: LentHere<F>,
}

impl<F> MpTx<F> {
    /// A subflow's send side: `tail_rel` the subflow offset of its send
    /// queue's end, `slot` its place in the connection's scheduler.
    pub(super) fn new(tail_rel: u64, slot: usize, csum: bool) -> MpTx<F> {
        MpTx {
            maps: TxMaps::default(),
            tail_rel,
            slot,
            csum,
            peer_data_ack: None,
            data_fin: None,
            edge_seen: None,
            meta: None,
            link_down: false,
            prefix_end: None,
            lend: false,
            lent: LentHere::default(),
        }
    }
}

/// The connection-level send side (RFC 8684 §3.3.2).
pub(crate) struct MetaTx<F> {
    /// The application's data, by DSN (low 32 bits as sequence numbers),
    /// from `dq_head`: the bytes no subflow was given yet and those given
    /// as copies out of a frame still partly ungiven. The bytes before it
    /// are in `held`, down to the DATA_ACK or `dq_start` (the bytes before
    /// that, sent one to one before this queue existed, are in the first
    /// subflow's queue: `Prefix`).
    dq: SendBuffer<F>,
    /// The DSN of `dq`'s first byte.
    dq_head: u64,
    /// The chunks given from `dq_start` or the DATA_ACK up to `dq_head`,
    /// in order: lent to a subflow, or here (`lend`).
    held: VecDeque<Held<F>>,
    /// The DSN of the first byte the application wrote into `dq`.
    dq_start: u64,
    /// First DSN not DATA_ACKed.
    una: u64,
    /// First DSN no subflow was given yet.
    nxt: u64,
    sched: Box<dyn Scheduler>,
    slots: Vec<Slot>,
    /// Ranges (DSN, length) to send again on another subflow.
    reinject: VecDeque<(u64, u64)>,
    /// Opportunistic retransmission: the DSN below which the oldest data
    /// was already re-sent on a faster subflow (each byte once).
    opp_nxt: u64,
    /// The application closed its end: what is queued is all there is.
    ended: bool,
    /// Our DATA_FIN was handed to the joined subflows (the first one
    /// gone or stalled): it counts in what a DATA_ACK may cover.
    data_fin_out: bool,
    /// The peer's window edge and the data-level retransmission timer
    /// (`mptcp_rto`).
    level: DataLevel,
    /// Payload bytes `dq` may hold: the first subflow's buffer when it was
    /// set up, grown by autotuning (`snd_space`).
    pub(super) buf: usize,
    /// Autotuning's state (`snd_space`).
    pub(super) space: super::snd_space::Space,
}

/// What the connection knows of one subflow.
#[derive(Default)]
struct Slot {
    view: SubflowView,
    /// Ranges (DSN, length) given to it that the DATA_ACK does not cover.
    given: VecDeque<(u64, u64)>,
    /// Redundant: the next DSN this subflow has not had.
    red_nxt: u64,
    /// Its data went to the reinjection queue (stalled or gone).
    reinjected: bool,
    /// The DATA_ACK at which its data was last reinjected because the
    /// peer's data level did not take it (see `pull`).
    stuck_at: Option<u64>,
    gone: bool,
    /// A faster subflow found this one holding up the connection-level
    /// window: halve its window at its next pull (see `opportunistic`).
    penalty_due: bool,
    /// When it was last penalised (at most once per its RTT).
    penalised_at: Option<Instant>,
    /// The DSN ranges a reinjection needs of the chunks lent to it: it
    /// copies them at its next pull (`lend`).
    want: Wants,
}

impl<F: Frame> MetaTx<F> {
    /// Frames the connection holds (not those lent to subflows).
    pub(super) fn frames(&self) -> usize {
        self.frames_here()
    }

    /// What the connection knows of its subflows (gone ones unusable).
    pub(super) fn slots_views(&self) -> impl Iterator<Item = SubflowView> + Clone + '_ {
        self.slots.iter().map(|s| SubflowView {
            usable: s.view.usable && !s.gone,
            ..s.view
        })
    }

    /// Whether the scheduler re-sends data a slower subflow holds up
    /// (`snd_space` sizes the buffer by it).
    pub(super) fn sched_opportunistic(&self) -> bool {
        self.sched.opportunistic()
    }

    /// Bytes given to subflows that the DATA_ACK does not cover yet.
    pub(super) fn given_unacked(&self) -> usize {
        self.nxt.saturating_sub(self.una) as usize
    }

    fn end(&self) -> u64 {
        self.dq_head.wrapping_add(self.dq.len() as u64)
    }

    /// A joined subflow is registered and not gone (`usable`: and the
    /// scheduler may use it now).
    pub(super) fn joined_alive(&self, usable: bool) -> bool {
        self.slots
            .iter()
            .skip(1)
            .any(|s| !s.gone && (!usable || s.view.usable))
    }

    /// The slowest live subflow's smoothed RTT (the data-level timer's
    /// base).
    fn slowest_srtt(&self) -> core::time::Duration {
        self.slots
            .iter()
            .filter(|s| !s.gone)
            .map(|s| s.view.srtt)
            .max()
            .unwrap_or_default()
    }

    /// RFC 8684 §3.3.6: the data-level timer expired by `now` with data
    /// outstanding: its oldest range goes to the scheduler again.
    /// Returns whether it did.
    pub(super) fn data_rto(&mut self, now: Instant, stats: &mut super::ConnStats) -> bool {
        let srtt = self.slowest_srtt();
        let Some(r) = self.level.expire(now, srtt, self.una, self.nxt) else {
            return false;
        };
        self.reinject.push_front(r);
        self.want_copies_of(r.0, r.0 + r.1);
        stats.mptcp_data_rtos += 1;
        true
    }

    pub(super) fn data_rto_at(&self) -> Option<Instant> {
        self.level.deadline()
    }

    /// Every byte the application wrote is DATA_ACKed.
    pub(super) fn all_acked(&self) -> bool {
        self.una == self.end() && self.reinject.is_empty()
    }

    /// The first subflow is gone: what it was given goes to the others.
    pub(super) fn first_gone(&mut self, stats: &mut super::ConnStats) {
        self.reinject_slot(0, stats);
        if let Some(s) = self.slots.first_mut() {
            s.gone = true;
            s.view.usable = false;
        }
    }

    /// The peer's DATA_ACK (in `s`) covers our DATA_FIN, one beyond our
    /// last byte.
    pub(super) fn data_fin_acked(&self, s: &crate::mptcp::Session) -> bool {
        s.local_data_start().wrapping_add(s.data_acked()) > self.end()
    }

    /// Our DATA_FIN went to the joined subflows.
    pub(super) fn data_fin_out(&self) -> bool {
        self.data_fin_out
    }

    /// Our DATA_FIN's DSN, once, when it is due (every byte DATA_ACKed).
    pub(super) fn take_data_fin(&mut self) -> Option<u64> {
        if self.data_fin_out || !self.all_acked() {
            return None;
        }
        self.data_fin_out = true;
        Some(self.end())
    }

    /// The DATA_ACK covers up to `una`: forget what it covers.
    fn acked(&mut self, una: u64) -> usize {
        if una <= self.una {
            return 0;
        }
        let una = una.min(self.end());
        let before = self.held_start();
        self.trim_held(una);
        if una > self.dq_head {
            self.dq.ack(SeqNumber(una as u32));
            self.dq_head = una;
        }
        self.una = una;
        let freed = self.held_start().saturating_sub(before) as usize;
        self.nxt = self.nxt.max(una);
        for s in &mut self.slots {
            trim(&mut s.given, una);
        }
        trim(&mut self.reinject, una);
        freed
    }

    /// Opportunistic retransmission (Raiciu et al., NSDI 2012 §4.2): slot
    /// `me` could send but the connection-level window is exhausted. If
    /// the oldest data not yet re-sent this way (from the DATA_ACK on) is
    /// held only by slower subflows, it is what `me` sends now: the range
    /// (DSN, length) to take. Each slower holder is penalised (its window
    /// halved at its next pull), at most once per its smoothed RTT.
    ///
    /// With `walk` (the end of the stream: nothing new will come) ranges
    /// held by `me` or as fast a subflow are passed over to the next one
    /// only slower subflows hold (at most `WALK_RANGES` of them): the
    /// last bytes need not wait for the slow path's queue to drain.
    /// Without it only the oldest data is looked at, as Linux does: the
    /// slow path still carries its share.
    fn opportunistic(
        &mut self,
        me: usize,
        now: Instant,
        walk: bool,
        stats: &mut super::ConnStats,
    ) -> Option<(u64, u64)> {
        let mut d = self.una.max(self.opp_nxt);
        let my_rtt = self.slots.get(me)?.view.srtt;
        let mut hops = 0;
        let (upto, slower) = loop {
            if d >= self.nxt {
                return None;
            }
            let mut upto = u64::MAX;
            let mut slower = 0u64;
            let mut fast_end = None;
            for (j, s) in self.slots.iter().enumerate().take(MAX_SLOTS) {
                let Some(r) = s.given.iter().find(|r| r.0 <= d && d < r.0 + r.1) else {
                    continue;
                };
                // On this subflow, or on one as fast that still works: it
                // arrives soon enough.
                if j == me || s.view.srtt <= my_rtt && s.view.usable && !s.gone {
                    fast_end = Some(r.0 + r.1);
                    break;
                }
                slower |= 1 << j;
                upto = upto.min(r.0 + r.1);
            }
            match fast_end {
                None if slower != 0 => break (upto, slower),
                Some(e) if walk && hops < WALK_RANGES => {
                    hops += 1;
                    d = e;
                }
                _ => return None,
            }
        };
        for (j, s) in self.slots.iter_mut().enumerate() {
            let due = s
                .penalised_at
                .is_none_or(|t| now.saturating_since(t) >= s.view.srtt);
            if slower & (1 << j) != 0 && due && !s.gone {
                s.penalty_due = true;
                s.penalised_at = Some(now);
                stats.mptcp_penalisations += 1;
            }
        }
        Some((d, upto - d))
    }

    /// Slot `i`'s data goes back to the scheduler (once per stall).
    fn reinject_slot(&mut self, i: usize, stats: &mut super::ConnStats) {
        let Some(s) = self.slots.get_mut(i) else {
            return;
        };
        if s.reinjected {
            return;
        }
        s.reinjected = true;
        for k in 0..s.given.len() {
            let (dsn, len) = s.given[k];
            if dsn.wrapping_add(len) > self.una {
                self.reinject.push_back((dsn, len));
                stats.mptcp_reinjections += 1;
                // What it holds of ours is copied at its next pull (`lend`).
                s.want_copy(dsn, len);
            }
        }
    }
}

/// Drop the ranges wholly below `una`, trim the one straddling it.
fn trim(q: &mut VecDeque<(u64, u64)>, una: u64) {
    while let Some(r) = q.front_mut() {
        let end = r.0.wrapping_add(r.1);
        if end <= una {
            q.pop_front();
        } else {
            if r.0 < una {
                r.1 = end - una;
                r.0 = una;
            }
            break;
        }
    }
}

impl<F: Frame> Connection<F> {
    /// Set up the connection-level send side on the first subflow, once
    /// MPTCP is established and joins may come. Data the application
    /// wrote before (while the handshake ran, say) and not sent yet moves
    /// there, frames and all, so that the scheduler spreads it over the
    /// subflows to come (RFC 8684 §3.3.8); what went out already stays
    /// one to one on this subflow (`prefix_end`).
    pub(super) fn mptcp_tx_setup(&mut self) {
        if self.mptcp.tx.is_some() || self.mptcp.join.is_some() || self.cfg.mptcp_max_subflows == 0
        {
            return;
        }
        let Some(m) = self.mptcp.session.as_deref() else {
            return;
        };
        // A FIN queued but not sent is the connection's DATA_FIN to come
        // (`mptcp_fin_ok`).
        if m.phase != crate::mptcp::Phase::Established
            || self.fin_sent()
            || !matches!(
                self.state,
                State::Established | State::CloseWait | State::FinWait1 | State::LastAck
            )
        {
            return;
        }
        let unsent = self.snd.queue.split_off_from(self.snd.nxt);
        let prefix_end = self.snd.queue.tail();
        let sent = prefix_end - (self.snd.iss + 1);
        let start = m.local_data_start().wrapping_add(sent as u64);
        let mut dq = SendBuffer::new(SeqNumber(start as u32));
        dq.append(unsent);
        // What this subflow sent (not yet DATA_ACKed) counts as given to
        // it: reinjected from its queue if it stalls or goes (`Prefix`).
        let held = self.snd.queue.len() as u64;
        let una = start.wrapping_sub(held);
        let mut first = Slot::default();
        if held > 0 {
            first.given.push_back((una, held));
        }
        let mut slots = Vec::with_capacity(2);
        slots.push(first);
        self.mptcp.tx = Some(Box::new(MpTx {
            meta: Some(Box::new(MetaTx {
                dq,
                dq_head: start,
                held: VecDeque::new(),
                dq_start: start,
                una,
                nxt: start,
                sched: self.cfg.mptcp_scheduler.build(),
                slots,
                reinject: VecDeque::new(),
                opp_nxt: una,
                ended: false,
                data_fin_out: false,
                level: DataLevel::default(),
                buf: self.snd.buf,
                space: Default::default(),
            })),
            prefix_end: (held > 0).then_some(prefix_end),
            // Its own frames: the same pool.
            lend: true,
            ..MpTx::new(sent as u64, 0, m.checksum)
        }));
    }

    /// The DATA_ACK covers the data sent one to one before the
    /// connection's queue was set up (`prefix_end`) up to `covered`:
    /// where this subflow's queue may be released for a subflow ACK of
    /// `ack` (that data has no other copy: RFC 8684 §3.3.2).
    pub(super) fn mptcp_prefix_release(&mut self, ack: SeqNumber, covered: SeqNumber) -> SeqNumber {
        let Some(t) = self.mptcp.tx.as_deref_mut() else {
            return ack;
        };
        match t.prefix_end {
            Some(p) if covered < p => ack.min(covered),
            Some(_) => {
                t.prefix_end = None;
                ack
            }
            None => ack,
        }
    }

    pub(super) fn meta_tx(&self) -> Option<&MetaTx<F>> {
        self.mptcp.tx.as_deref()?.meta.as_deref()
    }

    pub(super) fn meta_tx_mut(&mut self) -> Option<&mut MetaTx<F>> {
        self.mptcp.meta_tx_mut()
    }

    /// The first subflow (this one) is gone: its data goes to the others.
    /// False when the connection does not schedule over subflows.
    pub(super) fn mptcp_tx_first_gone(&mut self) -> bool {
        let Some(m) = self.mptcp.meta_tx_mut() else {
            return false;
        };
        m.first_gone(&mut self.stats);
        true
    }

    /// The queue the application writes into and the point before which
    /// its frames are no longer topped up: the connection's queue (DSN)
    /// or this connection's own (SND.NXT).
    pub(super) fn app_sndq(&mut self) -> (&mut SendBuffer<F>, SeqNumber) {
        match self.mptcp.meta_tx_mut() {
            Some(m) => (&mut m.dq, SeqNumber(m.nxt as u32)),
            None => {
                let upto = if self.snd.nxt < self.snd.iss + 1 {
                    self.snd.iss + 1
                } else {
                    self.snd.nxt
                };
                (&mut self.snd.queue, upto)
            }
        }
    }

    /// The application's queue, read-only, with its top-up point.
    pub(super) fn app_sndq_ref(&self) -> (&SendBuffer<F>, SeqNumber) {
        match self.meta_tx() {
            Some(m) => (&m.dq, SeqNumber(m.nxt as u32)),
            None => {
                let upto = if self.snd.nxt < self.snd.iss + 1 {
                    self.snd.iss + 1
                } else {
                    self.snd.nxt
                };
                (&self.snd.queue, upto)
            }
        }
    }

    /// Whether our FIN may go now (with `with_data`: on this segment's
    /// data). On the first subflow of a connection that schedules, the FIN
    /// carries the DATA_FIN: only once the DATA_ACK covers every byte (so
    /// the first subflow can still take what another subflow failed to
    /// deliver, RFC 8684 §3.3.6), hence never on data.
    pub(super) fn mptcp_fin_ok(&self, with_data: bool) -> bool {
        let Some(t) = self.mptcp.tx.as_deref() else {
            return true;
        };
        let Some(m) = t.meta.as_deref() else {
            // A joined subflow carrying the connection's DATA_FIN sends it
            // on a bare FIN (its mapping: SSN 0, length 1).
            return !(with_data && t.data_fin.is_some());
        };
        !with_data && m.una == m.end() && m.reinject.is_empty()
    }

    /// The DSN of our data at subflow sequence `seq` when the connection's
    /// send side mapped it (`None`: one to one), or, for a bare FIN on the
    /// first subflow, the DATA_FIN's DSN.
    pub(super) fn mptcp_tx_dsn(&self, seq: SeqNumber, len: usize, fin: bool) -> Option<u64> {
        let t = self.mptcp.tx.as_deref()?;
        if len == 0 {
            return match (&t.meta, fin) {
                (Some(m), true) => Some(m.end()),
                (None, true) => t.data_fin,
                _ => None,
            };
        }
        let rel = seq - (self.snd.iss + 1);
        // Widened against the queue's end (within 4 GiB of it).
        let back = (self.snd.queue.tail() - seq) as u64;
        let rel64 = t.tail_rel.wrapping_sub(back);
        debug_assert_eq!(rel64 as u32, rel as u32);
        t.maps.dsn_of(rel64).map(|(d, _)| d)
    }

    /// Our data sent so far on the connection (64-bit, from our first
    /// data byte, the DATA_FIN included) when the connection's send side
    /// schedules: what a DATA_ACK may cover.
    pub(super) fn mptcp_tx_sent(&self) -> Option<u64> {
        self.mptcp_tx_sent_of(self.mptcp.session.as_deref()?)
    }

    /// `mptcp_tx_sent` with the session at hand.
    pub(super) fn mptcp_tx_sent_of(&self, s: &crate::mptcp::Session) -> Option<u64> {
        let m = self.meta_tx()?;
        let fin = m.data_fin_out || !self.mptcp.meta_only && self.fin_sent();
        Some(m.nxt.wrapping_sub(s.local_data_start()) + fin as u64)
    }

    /// The DATA_ACK moved (to `acked` bytes of our data): release what it
    /// covers in the connection's queue.
    pub(super) fn mptcp_tx_data_acked(&mut self) {
        let Some(start) = self
            .mptcp
            .session
            .as_deref()
            .map(|m| m.local_data_start() + m.data_acked())
        else {
            return;
        };
        // The data sent one to one before the connection's queue existed
        // waits in this subflow's queue for the DATA_ACK, which may come
        // on any subflow.
        if self
            .mptcp
            .tx
            .as_deref()
            .is_some_and(|t| t.prefix_end.is_some())
        {
            self.mptcp_snd_release(self.snd.una);
        }
        let Some(m) = self.mptcp.meta_tx_mut() else {
            return;
        };
        let before = m.una;
        let freed = m.acked(start);
        if m.una != before {
            let (srtt, out) = (m.slowest_srtt(), m.una < m.nxt);
            m.level.on_progress(self.now, srtt, out);
        }
        if freed > 0 {
            self.new_space();
        }
        self.mptcp_meta_advance();
        self.mptcp_first_done();
    }

    /// A DATA_ACK seen on a joined subflow (for the connection).
    pub(super) fn mptcp_tx_note_data_ack(&mut self, a: RxDsn) {
        if let Some(t) = self.mptcp.tx.as_deref_mut() {
            t.peer_data_ack = Some(a);
        }
    }

    /// Release this subflow's send queue up to `upto`: the connection's
    /// lent frames go back to it (`lend`), the rest to the pool. Returns
    /// bytes released.
    pub(super) fn mptcp_tx_release(&mut self, upto: SeqNumber) -> usize {
        let Some(t) = self.mptcp.tx.as_deref_mut() else {
            return self.snd.queue.ack(upto);
        };
        if t.lent.is_empty() {
            return self.snd.queue.ack(upto);
        }
        let lent = &mut t.lent;
        let n = self.snd.queue.ack_into(upto, |f| lent.give_back(f));
        if let Some(m) = t.meta.as_deref_mut() {
            // The first subflow: the connection is here.
            t.lent.collect_into(m);
        }
        n
    }

    /// The subflow's queue is dropped (reset, abort, its role ended): the
    /// connection's lent frames go back to it first.
    pub(super) fn mptcp_tx_drop_queue(&mut self) {
        let tail = self.snd.queue.tail();
        self.mptcp_tx_release(tail);
        self.snd.queue.clear();
    }

    /// Whether the connection's frames are lent to this subflow's queue.
    pub(super) fn mptcp_holds_lent(&self) -> bool {
        self.mptcp.tx.as_deref().is_some_and(|t| !t.lent.is_empty())
    }

    /// Whether this subflow has lent frames to give back.
    pub fn mptcp_has_returns(&self) -> bool {
        self.mptcp
            .tx
            .as_deref()
            .is_some_and(|t| !t.lent.back_is_empty())
    }

    /// Joined subflow `sub` gives back the lent frames its ACK freed (all
    /// it holds, with `all`: it is going).
    pub fn mptcp_collect_back(&mut self, sub: &mut Connection<F>, all: bool) {
        if all {
            sub.mptcp_tx_drop_queue();
        }
        let Some(st) = sub.mptcp.tx.as_deref_mut() else {
            return;
        };
        let Some(m) = self.mptcp.meta_tx_mut() else {
            return;
        };
        st.lent.collect_into(m);
    }

    /// This subflow is going, its connection in another stack: the lent
    /// frames it holds, for `mptcp_frames_back` there.
    pub(crate) fn mptcp_take_returns(&mut self) -> Vec<Returned<F>> {
        self.mptcp_tx_drop_queue();
        match self.mptcp.tx.as_deref_mut() {
            Some(t) => t.lent.take_back(),
            None => Vec::new(),
        }
    }

    /// This joined subflow leaves for another worker (`mptcp_migrate`):
    /// its slot and, for its connection (`mptcp_frames_back`), the lent
    /// frames its ACK freed. The frames still in its queue stay lent to
    /// it: from its new worker they come back in `Back` messages, and a
    /// reinjection asks that worker for copies (`copy_back`), as for any
    /// subflow of another worker. `None`: nothing to give back now.
    pub(crate) fn mptcp_lent_leaving(&mut self) -> Option<(usize, Vec<Returned<F>>)> {
        let t = self.mptcp.tx.as_deref_mut()?;
        if t.lent.back_is_empty() {
            return None;
        }
        Some((t.slot, t.lent.take_back()))
    }

    /// Lent frames (or copies of them) come back from a subflow of
    /// another stack or worker. Returns whether any was taken.
    pub(crate) fn mptcp_frames_back(
        &mut self,
        frames: impl ExactSizeIterator<Item = Returned<F>>,
    ) -> bool {
        let Some(m) = self.mptcp.meta_tx_mut() else {
            return false;
        };
        let any = frames.len() > 0;
        for r in frames {
            m.take_back(r);
        }
        any
    }

    /// The application's data held for the connection: bytes and frames
    /// (lent ones included), what its send buffer counts.
    pub(super) fn app_queued(&self) -> (usize, usize) {
        match self.meta_tx() {
            Some(m) => (m.app_bytes(), m.app_frames()),
            None => (self.snd.queue.len(), self.snd.queue.frames()),
        }
    }

    /// Subflow-level ACK of `ack` on a subflow whose bytes are copies:
    /// its mappings before it are done.
    pub(super) fn mptcp_tx_sub_acked(&mut self, ack: SeqNumber) {
        let tail = self.snd.queue.tail();
        if let Some(t) = self.mptcp.tx.as_deref_mut() {
            let back = if ack < tail { (tail - ack) as u64 } else { 0 };
            t.maps.ack(t.tail_rel.wrapping_sub(back));
        }
    }

    /// Whether this subflow's send queue holds copies (released at the
    /// subflow's ACK) rather than the connection's data.
    pub(super) fn mptcp_tx_copies(&self) -> bool {
        self.mptcp.tx.is_some()
    }

    /// What this subflow could take now, for the scheduler.
    /// RFC 8684 §3.3.3: close this subflow of a connection that ended,
    /// with a FIN; one still in its handshake or stalled (its path likely
    /// gone) with a RST, and any gives up after `SUBFLOW_LINGER` without
    /// an answer.
    /// `data_fin`: the connection's first subflow is gone, and this FIN
    /// carries the connection's DATA_FIN at that DSN.
    pub fn mptcp_close_subflow(&mut self, data_fin: Option<u64>) {
        if let (Some(t), Some(d)) = (self.mptcp.tx.as_deref_mut(), data_fin) {
            t.data_fin = Some(d);
        }
        let handshake = matches!(self.state, State::SynSent | State::SynReceived);
        if handshake || self.loss.rtx_count >= STALL_RTOS {
            self.abort();
            return;
        }
        let ut = self
            .cfg
            .user_timeout
            .map_or(SUBFLOW_LINGER, |u| u.min(SUBFLOW_LINGER));
        self.cfg.user_timeout = Some(ut);
        self.close();
    }

    fn mptcp_view(&self) -> SubflowView {
        let (cwnd, used) = self.cwnd_budget();
        let unsent = self.snd.queue.tail() - self.snd.nxt;
        let cwnd_room = cwnd.saturating_sub(used).saturating_sub(unsent);
        let wnd_room = self.usable_window().saturating_sub(unsent);
        let room = cwnd_room.min(wnd_room);
        // Room for less than a full segment is no room: a short chunk
        // would wait behind Nagle while another subflow could send. Except
        // on an idle subflow that only the peer's window holds back: that
        // window is the connection's, the same on every subflow (RFC 8684
        // §3.3.4), and it may stay below a segment for good (a small
        // receive buffer); nothing would ever send. (Plain TCP sends there
        // at its SWS override, RFC 9293 §3.8.6.2.1; data still in the
        // connection's queue has no such timer.)
        let idle = self.snd.una == self.snd.nxt && unsent == 0;
        let mss = self.fill_mss();
        let room = match (room >= mss, idle && cwnd_room >= mss) {
            (true, _) => room,
            // The window shut: a segment's worth all the same (data the
            // connection-level window allows), for the subflow's persist
            // timer to probe with (RFC 9293 §3.8.6.1). Kept in the
            // connection's queue nothing would ever probe, and a peer
            // that shut its window for want of exactly that data (a hole
            // at its data level) would wait for ever.
            (false, true) if wnd_room == 0 => mss,
            (false, true) => room,
            (false, false) => 0,
        };
        // Until its FIN is out a subflow may take data (the first one's
        // FIN waits for the connection's last byte, see `mptcp_fin_ok`).
        let usable = self.may_send_data()
            && !self.fin_sent()
            && self.loss.rtx_count < STALL_RTOS
            && !self.mptcp.meta_only
            && !self.mptcp.tx.as_deref().is_some_and(|t| t.link_down);
        SubflowView {
            srtt: self.loss.rtt.srtt().unwrap_or_else(|| self.loss.rtt.rto()),
            min_rtt: self.loss.rtt.min_rtt().unwrap_or_default(),
            room,
            in_flight: match self.loss.rtt.srtt() {
                Some(_) => self.snd.in_flight(),
                None => 0,
            },
            backup: self.mptcp_backup(),
            usable,
        }
    }

    /// Tell the scheduler what subflow `sub` (`None`: the first) can take
    /// now, before a scheduling pass (a pull refreshes only its own).
    pub fn mptcp_refresh_view(&mut self, sub: Option<&Connection<F>>) {
        let (slot, view) = match sub {
            Some(s) => match s.mptcp_tx_slot() {
                Some(i) => (i, s.mptcp_view()),
                None => return,
            },
            None => (0, self.mptcp_view()),
        };
        let Some(m) = self.mptcp.meta_tx_mut() else {
            return;
        };
        let Some(s) = m.slots.get_mut(slot) else {
            return;
        };
        s.view = view;
        if view.usable {
            s.reinjected = false;
        } else if !s.given.is_empty() {
            // Stalled: its data goes to the others now, even when nothing
            // new waits (RFC 8684 §3.3.6).
            m.reinject_slot(slot, &mut self.stats);
        }
    }

    /// Whether the connection schedules over its first subflow alone.
    pub(super) fn mptcp_tx_alone(&self) -> bool {
        self.meta_tx().is_some_and(|m| m.slots.len() == 1)
    }

    /// Whether the connection has data no subflow was given yet (or to
    /// reinject). At the end of the stream, data still held by subflows may go
    /// again on a faster one (see `MetaTx::opportunistic`).
    pub fn mptcp_tx_pending(&self) -> bool {
        let again = !self.mptcp_fell_back_tx();
        self.meta_tx().is_some_and(|m| {
            m.nxt < m.end()
                || again && !m.reinject.is_empty()
                || again
                    && self.snd.fin_queued
                    && m.sched.opportunistic()
                    && m.una.max(m.opp_nxt) < m.nxt
        })
    }

    /// The connection fell back to TCP (RFC 8684 §3.7), or will with its
    /// next data (the infinite mapping answering the peer's MP_FAIL), after
    /// its data went through the connection's queue: the subflow carries
    /// the data stream one to one, so nothing is sent twice (a peer such
    /// as Linux takes the bytes after the infinite mapping as the ones
    /// after its DATA_ACK).
    pub(super) fn mptcp_fell_back_tx(&self) -> bool {
        self.mptcp
            .session
            .as_deref()
            .is_some_and(|s| !s.is_mptcp() || s.fail.send_infinite)
    }

    /// After the fallback: the subflow's ACK of `ack` acknowledges the
    /// DSNs its bytes carried (no DATA_ACK comes any more).
    pub(super) fn mptcp_tx_fallback_acked(&mut self, ack: SeqNumber) {
        let tail = self.snd.queue.tail();
        let Some(t) = self.mptcp.tx.as_deref_mut() else {
            return;
        };
        let back = if ack < tail { (tail - ack) as u64 } else { 0 };
        let rel = t.tail_rel.wrapping_sub(back);
        let dsn = t
            .maps
            .dsn_of(rel)
            .map(|(d, _)| d)
            .or_else(|| t.maps.end_dsn());
        let (Some(dsn), Some(m)) = (dsn, t.meta.as_deref_mut()) else {
            return;
        };
        if m.acked(dsn) > 0 {
            self.new_space();
        }
    }

    /// The first subflow takes what the scheduler gives it of its
    /// connection's data (frames from `alloc`).
    pub fn mptcp_pull_first(&mut self, alloc: &mut dyn FnMut() -> Option<F>) -> usize {
        if self.mptcp.meta_only {
            return 0;
        }
        let Some(mut m) = self.mptcp.tx.as_deref_mut().and_then(|t| t.meta.take()) else {
            return 0;
        };
        m.ended = self.snd.fin_queued;
        let n = pull(&mut m, self, None, None, alloc);
        if let Some(t) = self.mptcp.tx.as_deref_mut() {
            t.meta = Some(m);
        }
        n
    }

    /// Joined subflow `sub` of this connection takes what the scheduler
    /// gives it (frames from `alloc`, its own stack's), after passing on
    /// the DATA_ACK it saw (`lend`: see `mptcp_register_joined`).
    pub fn mptcp_pull_joined(
        &mut self,
        sub: &mut Connection<F>,
        alloc: &mut dyn FnMut() -> Option<F>,
        lend: bool,
    ) -> usize {
        let _ = self.mptcp_joined_data_ack(sub);
        if !self.mptcp_register_joined(sub, lend) {
            return 0;
        }
        let Some(mut m) = self.mptcp.tx.as_deref_mut().and_then(|t| t.meta.take()) else {
            return 0;
        };
        m.ended = self.snd.fin_queued;
        let prefix = self.mptcp.session.as_deref().map(|s| Prefix {
            q: &self.snd.queue,
            base: self.snd.iss + 1,
            dsn0: s.local_data_start(),
        });
        let n = pull(&mut m, sub, prefix, Some(&mut self.stats), alloc);
        if let Some(t) = self.mptcp.tx.as_deref_mut() {
            t.meta = Some(m);
        }
        n
    }

    /// The DATA_ACK joined subflow `sub` saw, for the connection's send
    /// side (RFC 8684 §3.3.2: it may come on any subflow).
    /// Returns whether it moved (the connection may send more, or its
    /// FIN).
    pub fn mptcp_joined_data_ack(&mut self, sub: &mut Connection<F>) -> bool {
        let Some(a) = sub
            .mptcp
            .tx
            .as_deref_mut()
            .and_then(|t| t.peer_data_ack.take())
        else {
            return false;
        };
        self.mptcp_note_data_ack(a)
    }

    /// The DATA_ACK a joined subflow saw and did not pass on yet (it is
    /// going: its last news for the connection).
    pub fn mptcp_last_data_ack(&self) -> Option<RxDsn> {
        self.mptcp.tx.as_deref()?.peer_data_ack
    }

    /// A DATA_ACK seen on a joined subflow, for the connection's send
    /// side. Returns whether it moved.
    pub fn mptcp_note_data_ack(&mut self, a: RxDsn) -> bool {
        let sent = self.mptcp_tx_sent();
        if let (Some(m), Some(sent)) = (self.mptcp.session.as_deref_mut(), sent) {
            if m.note_data_ack(a, sent) {
                self.mptcp_tx_data_acked();
                return true;
            }
        }
        false
    }

    /// Joined subflow `sub` (verified) becomes one the scheduler knows, if
    /// it is not yet; `lend`: its frames come from this connection's pool
    /// (the same stack, or `Device::frame_pool_id` equal), so chunks are
    /// lent to it rather than copied. Returns whether it is one.
    pub fn mptcp_register_joined(&mut self, sub: &mut Connection<F>, lend: bool) -> bool {
        if sub.mptcp.tx.is_some() {
            return true;
        }
        if sub
            .mptcp
            .join
            .as_deref()
            .is_none_or(|j| j.phase != crate::mptcp::JoinPhase::Verified)
        {
            return false;
        }
        if let Some(m) = self.mptcp.session.as_deref_mut() {
            // RFC 8684 §3.7: no infinite mapping once joined.
            m.joined = true;
        }
        self.mptcp_tx_setup();
        let csum = self.mptcp.tx.as_deref().is_some_and(|t| t.csum);
        let Some(m) = self.mptcp.meta_tx_mut() else {
            return false;
        };
        if m.slots.len() >= MAX_SLOTS {
            return false;
        }
        m.slots.push(Slot {
            view: sub.mptcp_view(),
            red_nxt: m.una,
            ..Slot::default()
        });
        let tail_rel = (sub.snd.queue.tail() - (sub.snd.iss + 1)) as u64;
        sub.mptcp.tx = Some(Box::new(MpTx {
            lend,
            ..MpTx::new(tail_rel, m.slots.len() - 1, csum)
        }));
        true
    }

    /// The carrier of the interface under this subflow went down (`up`
    /// false) or came back (see `MpTx::link_down`). False when that
    /// changed nothing (not an MPTCP subflow that took part in sending,
    /// or already so).
    pub fn mptcp_set_link(&mut self, up: bool) -> bool {
        match self.mptcp.tx.as_deref_mut() {
            Some(t) if t.link_down == up => {
                t.link_down = !up;
                true
            }
            _ => false,
        }
    }

    /// A subflow joined this connection in another worker (it is not
    /// scheduled from here, `stack::mptcp_remote`): RFC 8684 §3.7, no
    /// infinite mapping once joined.
    pub fn mptcp_mark_joined(&mut self) {
        if let Some(m) = self.mptcp.session.as_deref_mut() {
            m.joined = true;
        }
    }

    /// This subflow's place among its connection's (once it took data).
    pub fn mptcp_tx_slot(&self) -> Option<usize> {
        self.mptcp.tx.as_deref().map(|t| t.slot)
    }

    /// The joined subflow in `slot` is gone (it may have lived in another
    /// stack of the worker).
    pub fn mptcp_slot_gone(&mut self, slot: usize) {
        let Some(t) = self.mptcp.tx.as_deref_mut() else {
            return;
        };
        let Some(m) = t.meta.as_deref_mut() else {
            return;
        };
        m.reinject_slot(slot, &mut self.stats);
        if let Some(s) = m.slots.get_mut(slot) {
            s.gone = true;
            s.view.usable = false;
        }
        if self.mptcp.meta_only && self.state != State::Closed && m.slots.iter().all(|s| s.gone) {
            // The last subflow of a connection whose first one died
            // before: nothing is left to carry it.
            self.events.insert(ConnEvents::RESET);
            self.enter_closed();
        }
    }
}

/// The first subflow's send queue, where the data sent one to one before
/// the connection's queue existed (below `MetaTx::dq_start`) lives: a
/// joined subflow reinjecting it copies it from there.
struct Prefix<'a, F> {
    q: &'a SendBuffer<F>,
    /// The first subflow's sequence number of our first data byte...
    base: SeqNumber,
    /// ...and its DSN (one to one from there).
    dsn0: u64,
}

impl<F: Frame> Prefix<'_, F> {
    /// Up to `max` bytes from `dsn` on, within one frame.
    fn bytes(&self, dsn: u64, max: usize) -> Option<&[u8]> {
        let seq = self.base + dsn.wrapping_sub(self.dsn0) as usize;
        let s = self.q.locate(seq, max)?;
        Some(self.q.bytes(s, max))
    }
}

/// Give subflow `to` (slot in its `MpTx`) the chunks the scheduler grants
/// it from `m` (and `prefix`, the first subflow's queue, when `to` is
/// another). `stats`: the connection's counters, when `to` is not the
/// connection itself. Returns bytes given.
fn pull<F: Frame, T: Taker<F> + ?Sized>(
    m: &mut MetaTx<F>,
    to: &mut T,
    prefix: Option<Prefix<'_, F>>,
    mut stats: Option<&mut super::ConnStats>,
    alloc: &mut dyn FnMut() -> Option<F>,
) -> usize {
    let Some(slot) = to.slot() else {
        return 0;
    };
    if slot >= m.slots.len() {
        return 0;
    }
    // Lent frames its ACK freed come back; those a reinjection needs are
    // copied from its queue (`lend`).
    to.collect_back(m);
    let mut copied = 0;
    if m.slots[slot].has_wants() {
        if to.copies_by_request() {
            let req = m.copy_request(slot);
            to.ask_copies(req);
        } else {
            copied = m.copy_lent(slot, to, alloc);
            let st = match stats.as_deref_mut() {
                Some(s) => s,
                None => to.stats(),
            };
            st.mptcp_tx_reinject_copied_bytes += copied as u64;
        }
    }
    if core::mem::take(&mut m.slots[slot].penalty_due) {
        to.penalise();
    }
    let view = to.view();
    m.slots[slot].view = view;
    // After a fallback to TCP the stream goes on in order: no byte again.
    let fallen = to.fell_back();
    if fallen {
        m.reinject.clear();
    }
    if !fallen {
        let st = match stats.as_deref_mut() {
            Some(s) => s,
            None => to.stats(),
        };
        if view.usable {
            m.slots[slot].reinjected = false;
        } else if !m.slots[slot].given.is_empty() {
            // RFC 8684 §3.3.6: a stalled subflow's data goes again on
            // another one, with its original DSNs.
            m.reinject_slot(slot, st);
        }
    }
    // The subflow delivered everything (all acknowledged on it) yet the
    // DATA_ACK waits at the first byte it was given: the peer's data level
    // dropped it (out of its window, say). RFC 8684 §3.3.6: send it again,
    // once per DATA_ACK value.
    let idle = !fallen && to.idle();
    let blocking = m.slots[slot].given.front().is_some_and(|r| r.0 <= m.una);
    if idle && blocking && m.slots[slot].stuck_at != Some(m.una) {
        m.slots[slot].stuck_at = Some(m.una);
        m.slots[slot].reinjected = false;
        let st = match stats.as_deref_mut() {
            Some(s) => s,
            None => to.stats(),
        };
        m.reinject_slot(slot, st);
    }
    // RFC 8684 §3.3.4: the peer's window is the connection's, from its
    // DATA_ACK: no subflow sends beyond that edge.
    // The largest DATA_ACK + window seen (`mptcp_rto`), not the latest
    // DATA_ACK + this subflow's window, which can be older.
    let seen = to.take_edge_seen();
    let edge = if fallen {
        // Plain TCP: the subflow's window is the connection's.
        m.una.wrapping_add(to.snd_wnd() as u64)
    } else {
        m.level.edge(m.una, m.end(), seen, to.snd_wnd())
    };
    let redundant = m.sched.kind() == SchedKind::Redundant && !fallen;
    let opportunistic = m.sched.opportunistic() && !fallen;
    let snd_buf = m.buf;
    let now = to.now();
    let mut given = 0;
    let mut views = [SubflowView::default(); MAX_SLOTS];
    loop {
        let v = m.slots[slot].view;
        if !v.usable || v.room == 0 {
            break;
        }
        let n = m.slots.len().min(MAX_SLOTS);
        for (i, s) in m.slots.iter().enumerate().take(n) {
            views[i] = s.view;
            if s.gone {
                views[i].usable = false;
            }
        }
        if !m.sched.pick(&views[..n]).contains(slot) {
            break;
        }
        // The chunk: reinjection first, then the next new data (for
        // redundant, the next this subflow has not had).
        let end = m.end();
        let (mut dsn, avail, again) = match m.reinject.front() {
            Some(&(d, l)) => (d, l, true),
            None if redundant => {
                let d = m.slots[slot].red_nxt.max(m.una).max(m.dq_start);
                (d, end.saturating_sub(d), false)
            }
            None => (m.nxt, end.saturating_sub(m.nxt), false),
        };
        let mut avail = avail.min(edge.saturating_sub(dsn));
        let mut opp = false;
        if avail == 0 && !again && opportunistic {
            // New data waits for the connection-level window (or the
            // application for room in the send buffer) while this
            // subflow could send: the data level is held up. At the end
            // of the stream likewise: nothing new will come, and the last
            // bytes are only as fast as the slowest path holding them.
            let nothing_new = dsn == end && (m.ended || m.app_bytes() + to.mss() > snd_buf);
            let blocked = dsn >= edge || nothing_new;
            let st = match stats.as_deref_mut() {
                Some(s) => s,
                None => to.stats(),
            };
            let walk = nothing_new && dsn < edge;
            if let Some((d, l)) = blocked
                .then(|| m.opportunistic(slot, now, walk, st))
                .flatten()
            {
                (dsn, avail, opp) = (d, l, true);
            }
        }
        if avail == 0 {
            break;
        }
        // The view's room is a full segment, or all an idle subflow's
        // window allows (`mptcp_view`).
        let mss = to.mss();
        let want = (avail as usize).min(v.room).min(mss);
        // New data whose frame fits whole moves to the subflow (`lend`).
        let lent = match !again && !opp && !redundant && to.can_lend() {
            true => m.lend_front(slot, dsn, want, to),
            false => None,
        };
        let below = dsn < m.dq_start;
        let bytes = match (lent, m.bytes_at(dsn, want), &prefix) {
            (Some(_), ..) => Some(&[][..]),
            (None, Ok(Some(b)), _) => Some(b),
            // Data sent one to one before the queue existed: from the
            // first subflow's queue, up to where `dq` begins.
            (None, Ok(None), Some(p)) if below => {
                p.bytes(dsn, want.min((m.dq_start - dsn) as usize))
            }
            (None, Ok(None), _) => None,
            // Lent to a subflow that still holds it: that one copies it
            // at its next pull, this one waits for it.
            (None, Err(j), _) => {
                if m.slots
                    .get_mut(j)
                    .is_some_and(|s| s.want_copy(dsn, want as u64))
                {
                    copied += 1;
                }
                break;
            }
        };
        let Some(bytes) = bytes else {
            if again && below && prefix.is_none() {
                // The first subflow retransmits its own: what lies in
                // its queue goes again on the others only.
                if let Some(r) = m.reinject.front_mut() {
                    let end = r.0 + r.1;
                    r.0 = m.dq_start.min(end);
                    r.1 = end - r.0;
                }
                m.reinject.retain(|r| r.1 > 0);
                continue;
            }
            // Below the DATA_ACK already (a stale reinjection).
            if again {
                m.reinject.pop_front();
                continue;
            }
            break;
        };
        let k = match lent {
            Some(k) => k,
            None => to.take_chunk(bytes, dsn, alloc),
        };
        if k == 0 {
            break;
        }
        let k64 = k as u64;
        let st = match stats.as_deref_mut() {
            Some(s) => s,
            None => to.stats(),
        };
        if lent.is_some() {
            st.mptcp_tx_lent_bytes += k64;
        } else {
            st.mptcp_tx_copied_bytes += k64;
        }
        if slot == 0 {
            st.mptcp_bytes_first += k64;
        } else {
            st.mptcp_bytes_joined += k64;
        }
        if opp {
            st.mptcp_opportunistic_retransmits += 1;
            m.opp_nxt = dsn + k64;
        } else if again {
            if let Some(r) = m.reinject.front_mut() {
                r.0 += k64;
                r.1 -= k64;
                if r.1 == 0 {
                    m.reinject.pop_front();
                }
            }
        } else if redundant && dsn < m.nxt {
            st.mptcp_redundant_bytes += k64.min(m.nxt - dsn);
        }
        m.sched.taken(slot);
        let sl = &mut m.slots[slot];
        match sl.given.back_mut() {
            // Runs on from the last range: one range (fewer to search).
            Some(r) if r.0 + r.1 == dsn => r.1 += k64,
            _ => sl.given.push_back((dsn, k64)),
        }
        let left = sl.view.room.saturating_sub(k);
        sl.view.room = if left < mss { 0 } else { left };
        sl.red_nxt = sl.red_nxt.max(dsn + k64);
        m.nxt = m.nxt.max(dsn + k64);
        // Frames now wholly given as copies keep their bytes here.
        m.settle_given();
        given += k;
    }
    let _ = Pick::MAX;
    if given > 0 {
        let srtt = m.slowest_srtt();
        m.level.on_given(now, srtt);
    }
    // Copies made for a reinjection count as work done: the pass goes on
    // and the reinjection takes them.
    given + copied
}
