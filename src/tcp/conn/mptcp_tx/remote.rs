//! Our data on a subflow another worker runs (RFC 8684 §3.3.8; issue 8,
//! stage 2, `stack::mptcp_remote`).
//!
//! The connection's worker (A) holds the scheduler; the subflow's worker
//! (B) publishes what the subflow can take ([`RemoteView`]: room, RTT,
//! liveness, and the DATA_ACK it saw), A keeps it in the subflow's slot
//! ([`RemoteSlot`]) and, when the scheduler grants that slot chunks,
//! hands them to B as [`Chunk`]s, each appended as it is to the
//! subflow's send queue with its mapping. A chunk whose frame is whole
//! and of the subflow's pool (one UMEM for all workers) is lent, the
//! frame itself moving to B, as to a local subflow (`lend`): A keeps its
//! DSN range as lent to the slot, B's subflow ACK frees the frame into
//! the frames it returns ([`Returned`], `stack::mptcp_remote`'s `Back`
//! message), and A frees it at the DATA_ACK (RFC 8684 §3.3.2). A
//! reinjection of a range B holds asks B for a copy (`copy_back`, with
//! the next chunks; §3.3.6). Other chunks are copied into frames of the
//! subflow's interface. A subflow that goes returns what it holds and
//! hands its data back to the scheduler (§3.3.6), as a local one does.

use super::{pull, CopyRanges, MpTx, Returned, Slot, Taker, MAX_SLOTS};
use crate::io::{Frame, HEADROOM};
use crate::mptcp::sched::SubflowView;
use crate::mptcp::RxDsn;
use crate::tcp::conn::{ConnStats, Connection};
use crate::time::Instant;

/// What a subflow in another worker can take now, and what it saw of the
/// peer's data level since it last said (RFC 8684 §3.3.2, §3.3.4).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RemoteView {
    pub view: SubflowView,
    pub idle: bool,
    pub snd_wnd: usize,
    pub mss: usize,
    pub data_ack: Option<RxDsn>,
    pub edge_seen: Option<(RxDsn, usize)>,
}

/// One frame of our data for a subflow in another worker: `len` bytes
/// from DSN `dsn` at `frame.buf()[off..]`; `lent`: the connection's own
/// frame, to be returned (else a copy, the subflow's).
pub struct Chunk<F> {
    pub dsn: u64,
    pub frame: F,
    pub off: usize,
    pub len: usize,
    pub lent: bool,
}

impl<F> Chunk<F> {
    /// A lent chunk its subflow cannot take goes back to the connection
    /// as it is (a copy is dropped).
    pub fn into_returned(self) -> Option<Returned<F>> {
        self.lent.then(|| self.untaken())
    }

    /// A chunk that never reached its subflow (it moved on) goes back to
    /// the connection as it is, a copy too (`mptcp_chunks_untaken`).
    pub fn untaken(self) -> Returned<F> {
        Returned {
            dsn: self.dsn,
            len: self.len,
            frame: self.frame,
            off: self.off,
        }
    }
}

/// What the connection knows of a subflow another worker runs.
#[derive(Debug, Clone, Copy, Default)]
pub struct RemoteSlot {
    pub slot: usize,
    pub last: RemoteView,
    /// The scheduler penalised the subflow: its worker halves its window
    /// (told with the next `Chunks`).
    pub penalised: bool,
    /// Its stack's frames and the connection's come from one pool (one
    /// UMEM): chunks are lent to it (set by the worker before a pull).
    pub lend: bool,
    /// A reinjection needs bytes lent to it, in these DSN ranges: its
    /// worker copies them back (told with the next `Chunks`).
    pub copy_back: CopyRanges,
}

/// The scheduler's side of a remote subflow during one pull.
struct RemoteTaker<'a, F> {
    rs: &'a mut RemoteSlot,
    stats: &'a mut ConnStats,
    now: Instant,
    out: &'a mut Vec<Chunk<F>>,
}

impl<F: Frame> Taker<F> for RemoteTaker<'_, F> {
    fn slot(&self) -> Option<usize> {
        Some(self.rs.slot)
    }
    /// The penalty is the subflow's congestion window, which its worker
    /// owns: noted here, it goes there with the next chunks.
    fn penalise(&mut self) {
        self.rs.penalised = true;
    }
    fn view(&self) -> SubflowView {
        self.rs.last.view
    }
    /// A joined subflow never falls back (RFC 8684 §3.7).
    fn fell_back(&self) -> bool {
        false
    }
    fn idle(&self) -> bool {
        self.rs.last.idle
    }
    fn take_edge_seen(&mut self) -> Option<(RxDsn, usize)> {
        self.rs.last.edge_seen.take()
    }
    fn snd_wnd(&self) -> usize {
        self.rs.last.snd_wnd
    }
    fn now(&self) -> Instant {
        self.now
    }
    fn mss(&self) -> usize {
        self.rs.last.mss.max(1)
    }
    fn stats(&mut self) -> &mut ConnStats {
        self.stats
    }
    fn take_chunk(
        &mut self,
        bytes: &[u8],
        dsn: u64,
        alloc: &mut dyn FnMut() -> Option<F>,
    ) -> usize {
        let Some(mut frame) = alloc() else {
            return 0;
        };
        let room = frame.buf().len().saturating_sub(HEADROOM);
        let len = bytes.len().min(room);
        if len == 0 {
            return 0;
        }
        frame.buf_mut()[HEADROOM..HEADROOM + len].copy_from_slice(&bytes[..len]);
        self.given(len);
        self.out.push(Chunk {
            dsn,
            frame,
            off: HEADROOM,
            len,
            lent: false,
        });
        len
    }
    fn can_lend(&self) -> bool {
        self.rs.lend
    }
    fn lend(&mut self, f: crate::tcp::send::SendFrame<F>, dsn: u64) -> usize {
        let len = f.end - f.off;
        self.given(len);
        self.out.push(Chunk {
            dsn,
            frame: f.frame,
            off: f.off,
            len,
            lent: true,
        });
        len
    }
    fn copies_by_request(&self) -> bool {
        true
    }
    fn ask_copies(&mut self, want: CopyRanges) {
        // Added to one not sent yet (beyond its room, asked again when
        // the reinjection finds the bytes still missing).
        for &(d, l) in want.ranges() {
            if !self.rs.copy_back.overlaps(d, l) && !self.rs.copy_back.push(d, l) {
                break;
            }
        }
    }
}

impl<F> RemoteTaker<'_, F> {
    /// `len` bytes went to the subflow: until it says again, they fill
    /// its room.
    fn given(&mut self, len: usize) {
        self.rs.last.idle = false;
        let left = self.rs.last.view.room.saturating_sub(len);
        let mss = self.rs.last.mss.max(1);
        self.rs.last.view.room = if left < mss { 0 } else { left };
    }
}

impl<F: Frame> Connection<F> {
    /// A subflow joined this connection in another worker: the scheduler
    /// gets a slot for it (unusable until it says what it can take).
    /// Returns the slot and whether DSS checksums are on, or `None` when
    /// the connection does not schedule (no room for another).
    pub fn mptcp_register_remote(&mut self) -> Option<(usize, bool)> {
        self.mptcp_tx_setup();
        let t = self.mptcp.tx.as_deref_mut()?;
        let csum = t.csum;
        let m = t.meta.as_deref_mut()?;
        if m.slots.len() >= MAX_SLOTS {
            return None;
        }
        m.slots.push(Slot {
            red_nxt: m.una,
            ..Slot::default()
        });
        Some((m.slots.len() - 1, csum))
    }

    /// A joined subflow that was in `slot` here moved to another worker
    /// (`stack::mptcp_migrate`): it keeps the slot, with what it was
    /// given. Returns it and whether DSS checksums are on, `None` if the
    /// slot is gone meanwhile.
    pub fn mptcp_remote_slot_kept(&mut self, slot: usize) -> Option<(usize, bool)> {
        let t = self.mptcp.tx.as_deref_mut()?;
        let csum = t.csum;
        let s = t.meta.as_deref()?.slots.get(slot)?;
        (!s.gone).then_some((slot, csum))
    }

    /// The remote subflow in `slot` moved to another worker with its send
    /// queue, the frames lent to it and its mappings: it keeps the slot
    /// and what it was given, nothing is sent again (the chunks on their
    /// way to its old worker come back untaken: `mptcp_chunks_untaken`).
    /// Copies a reinjection asked of the old worker are asked again of the
    /// new one (that request is dropped there). Returns whether DSS
    /// checksums are on, `None` if there is no such slot or it is gone.
    pub fn mptcp_remote_slot_moved(&mut self, slot: usize) -> Option<bool> {
        let t = self.mptcp.tx.as_deref_mut()?;
        let csum = t.csum;
        let m = t.meta.as_deref_mut()?;
        if m.slots.get(slot)?.gone {
            return None;
        }
        for i in 0..m.reinject.len() {
            let (dsn, len) = m.reinject[i];
            m.want_copies_of(dsn, dsn + len);
        }
        Some(csum)
    }

    /// Chunks given to a subflow in another worker that never reached it
    /// (it had moved on) are back, lent frames and copies alike: their
    /// ranges go to the scheduler again, from these bytes. Not
    /// reinjections (RFC 8684 §3.3.6): they were never sent. Returns
    /// whether any came.
    pub fn mptcp_chunks_untaken(
        &mut self,
        frames: impl ExactSizeIterator<Item = Returned<F>>,
    ) -> bool {
        let Some(m) = self.mptcp.meta_tx_mut() else {
            return false;
        };
        let any = frames.len() > 0;
        for r in frames {
            let (dsn, end) = (r.dsn, r.dsn + r.len as u64);
            m.take_back(r);
            let from = dsn.max(m.una);
            if end > from {
                m.reinject.push_back((from, end - from));
            }
        }
        any
    }

    /// This joined subflow leaves for another worker: its place in the
    /// connection's scheduler is the connection's business there.
    /// Returns that place, if it had one.
    pub fn mptcp_tx_detach(&mut self) -> Option<usize> {
        let t = self.mptcp.tx.as_deref_mut()?;
        Some(core::mem::replace(&mut t.slot, usize::MAX))
    }

    /// This joined subflow, run here for a connection in another worker,
    /// becomes a subflow of that connection here (it came to this
    /// worker: `stack::mptcp_localize`): it takes `slot`, the place it
    /// had in the connection's scheduler, with its maps and what it was
    /// given; `lend`: its frames come from the connection's pool. False
    /// if it has no send side.
    pub fn mptcp_tx_attach(&mut self, slot: usize, lend: bool) -> bool {
        let Some(t) = self.mptcp.tx.as_deref_mut() else {
            return false;
        };
        t.slot = slot;
        t.lend = lend;
        true
    }

    /// What remote subflow `rs` published: its view for the scheduler,
    /// and the DATA_ACK it saw. Returns whether the DATA_ACK moved.
    pub fn mptcp_remote_view(&mut self, rs: &mut RemoteSlot, v: RemoteView) -> bool {
        let acked = v.data_ack.is_some_and(|a| self.mptcp_note_data_ack(a));
        let edge = v.edge_seen.or(rs.last.edge_seen);
        rs.last = RemoteView {
            data_ack: None,
            edge_seen: edge,
            ..v
        };
        let Some(m) = self.mptcp.meta_tx_mut() else {
            return acked;
        };
        let Some(s) = m.slots.get_mut(rs.slot) else {
            return acked;
        };
        if s.gone {
            return acked;
        }
        s.view = v.view;
        if v.view.usable {
            s.reinjected = false;
        } else if !s.given.is_empty() {
            // RFC 8684 §3.3.6: a stalled subflow's data goes again on
            // another one.
            m.reinject_slot(rs.slot, &mut self.stats);
        }
        acked
    }

    /// Remote subflow `rs` takes what the scheduler grants it, as chunks
    /// in `out` (frames from `alloc`: its interface's). Returns bytes.
    pub fn mptcp_pull_remote(
        &mut self,
        rs: &mut RemoteSlot,
        alloc: &mut dyn FnMut() -> Option<F>,
        out: &mut Vec<Chunk<F>>,
    ) -> usize {
        if self.mptcp_fell_back_tx() {
            return 0;
        }
        let Some(mut m) = self.mptcp.tx.as_deref_mut().and_then(|t| t.meta.take()) else {
            return 0;
        };
        m.ended = self.snd.fin_queued;
        let prefix = self.mptcp.session.as_deref().map(|s| super::Prefix {
            q: &self.snd.queue,
            base: self.snd.iss + 1,
            dsn0: s.local_data_start(),
        });
        let mut to = RemoteTaker {
            rs,
            stats: &mut self.stats,
            now: self.now,
            out,
        };
        let n = pull(&mut m, &mut to, prefix, None, alloc);
        if let Some(t) = self.mptcp.tx.as_deref_mut() {
            t.meta = Some(m);
        }
        n
    }

    /// This subflow, run here for a connection in another worker, sends
    /// what that connection gives it (`csum`: with DSS checksums).
    pub fn mptcp_remote_tx_setup(&mut self, csum: bool) {
        if self.mptcp.tx.is_some() {
            return;
        }
        let tail_rel = (self.snd.queue.tail() - (self.snd.iss + 1)) as u64;
        // Its slot is the connection's business.
        self.mptcp.tx = Some(Box::new(MpTx::new(tail_rel, usize::MAX, csum)));
    }

    /// The connection's scheduler, in another worker, penalised this
    /// subflow (opportunistic retransmission and penalisation, Raiciu et
    /// al., NSDI 2012 §4.2): its congestion window is halved here.
    pub fn mptcp_remote_penalise(&mut self) {
        self.loss.cc.penalise(self.now);
    }

    /// Append chunk `c` of the connection's data to this subflow's send
    /// queue, the frame as it is, mapped (RFC 8684 §3.3.1); a lent one
    /// noted as the connection's (returned when the ACK frees it). Gives
    /// it back when the subflow sends no more (the connection reinjects
    /// its range when the subflow goes; a lent frame must go back first).
    #[allow(clippy::result_large_err)]
    pub fn mptcp_push_chunk(&mut self, c: Chunk<F>) -> Result<(), Chunk<F>> {
        if !self.may_send_data() || self.snd.fin_queued {
            return Err(c);
        }
        let Some(t) = self.mptcp.tx.as_deref_mut() else {
            return Err(c);
        };
        t.maps.push(t.tail_rel, c.dsn, c.len as u64);
        t.tail_rel += c.len as u64;
        if c.lent {
            t.lent
                .push(&mut self.snd.queue, c.frame, (c.off, c.len), c.dsn);
        } else {
            self.snd.queue.push_frame(c.frame, c.off, c.off + c.len);
        }
        Ok(())
    }

    /// The connection, in another worker, asked for copies of the frames
    /// it lent to this subflow that overlap `want` (a reinjection needs
    /// their bytes, RFC 8684 §3.3.6): they join the frames to return
    /// (frames from `alloc`).
    pub fn mptcp_copy_back(&mut self, want: &CopyRanges, alloc: &mut dyn FnMut() -> Option<F>) {
        let Some(t) = self.mptcp.tx.as_deref_mut() else {
            return;
        };
        let (copied, missed) = t.lent.copy_back(&self.snd.queue, want, alloc);
        self.stats.mptcp_tx_reinject_copied_bytes += copied as u64;
        self.stats.mptcp_tx_lent_uncopied_bytes += missed as u64;
    }

    /// At most `max` of the frames (lent by a connection in another
    /// worker, or copies of them) this subflow has to return, oldest
    /// first, into `out`.
    pub fn mptcp_returns_into(&mut self, out: &mut Vec<Returned<F>>, max: usize) {
        if let Some(t) = self.mptcp.tx.as_deref_mut() {
            t.lent.take_back_into(out, max);
        }
    }

    /// What this subflow, run here for a connection in another worker,
    /// tells it (taking the DATA_ACK and window edge it saw).
    pub fn mptcp_remote_view_out(&mut self) -> Option<RemoteView> {
        self.mptcp.tx.as_ref()?;
        let view = self.mptcp_view();
        let idle = self.snd.queue.len() == 0 && self.snd.una == self.snd.nxt;
        let (snd_wnd, mss) = (self.snd.wnd, self.fill_mss());
        let t = self.mptcp.tx.as_deref_mut()?;
        Some(RemoteView {
            view,
            idle,
            snd_wnd,
            mss,
            data_ack: t.peer_data_ack.take(),
            edge_seen: t.edge_seen.take(),
        })
    }
}
