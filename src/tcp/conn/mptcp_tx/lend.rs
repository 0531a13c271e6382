//! Chunks lent to subflows, not copied (issue 8).
//!
//! When a subflow's frames come from the connection's pool (the same
//! stack, or another interface's stack on the same UMEM: `frame_pool_id`,
//! compared once when the subflow registers), the scheduler hands it the
//! frame holding the chunk: the frame moves from the connection's queue
//! (`MetaTx::dq`) to the end of the subflow's send queue, which sends it
//! in place like any frame of its own. The connection keeps the chunk's
//! DSN range and the slot it is lent to ([`Held`]); RFC 8684 §3.3.2 has it
//! keep the data until the DATA_ACK, so the subflow's ACK does not free
//! the frame: it comes back to the connection ([`Returned`]), which frees
//! it when the DATA_ACK covers it (usually at once: both ride the same
//! segment) or reads it for a reinjection (§3.3.6). A range to reinject
//! that a live subflow still holds (stalled, or slower for an
//! opportunistic retransmission) is copied from that subflow's queue at
//! its next pull (`Slot::want`, only the ranges wanted; rare, counted); a subflow that is reset or
//! closed gives its frames back first.
//!
//! A subflow of another worker is lent chunks the same way
//! (`remote`): its worker returns the frames by message, and copies the
//! frames a reinjection needs on request ([`CopyRanges`]: the DSN
//! ranges wanted, a few a message; only frames overlapping them are
//! copied). A subflow that moves to another worker keeps what it was
//! lent, returned from there.
//!
//! What cannot be lent is copied as before: a chunk that is part of a
//! frame (the window's edge, a smaller MSS), the redundant scheduler's
//! copies, and subflows of another pool. Those frames then stay with the
//! connection ([`Held::here`]).

use super::{MetaTx, MpTx, Slot, Taker};
use crate::io::{Frame, HEADROOM};
use crate::tcp::send::SendFrame;
use crate::tcp::SeqNumber;

/// A chunk of the connection's data given to subflows and not yet
/// DATA_ACKed (one frame's worth at most).
pub(super) struct Held<F> {
    pub(super) dsn: u64,
    pub(super) len: u64,
    /// The slot whose send queue holds its frame.
    pub(super) lent: Option<usize>,
    /// Its bytes, when the connection has them:
    /// `frame.buf()[off..off + len]`.
    pub(super) here: Option<(F, usize)>,
}

/// A lent frame that its subflow's ACK (or end) freed, or a copy of one
/// it still holds, on its way back to the connection (in this worker, or
/// in another one by message): `len` bytes from DSN `dsn` at
/// `frame.buf()[off..]`.
pub struct Returned<F> {
    pub(super) dsn: u64,
    pub(super) len: usize,
    pub(super) frame: F,
    pub(super) off: usize,
}

/// The subflow's side: the connection's frames in its send queue.
pub(super) struct LentHere<F> {
    /// Its lent frames in queue order: (subflow sequence number of the
    /// frame's end, DSN, length, copied back for a connection in another
    /// worker: each is copied once, `copy_back`).
    ledger: std::collections::VecDeque<(SeqNumber, u64, usize, bool)>,
    /// Lent frames freed by the subflow's ACK, not yet collected.
    back: Vec<Returned<F>>,
}

/// Copy-back ranges at most in one request (more go with the next).
pub const COPY_RANGES: usize = 4;

/// What a connection asks a subflow in another worker to copy back for
/// a reinjection (RFC 8684 §3.3.6): the frames it was lent that overlap
/// these DSN ranges (start, length), at most [`COPY_RANGES`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyRanges {
    n: u8,
    r: [(u64, u64); COPY_RANGES],
}

impl CopyRanges {
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The ranges, (DSN, length).
    pub fn ranges(&self) -> &[(u64, u64)] {
        &self.r[..usize::from(self.n).min(COPY_RANGES)]
    }

    /// Add a range; false when full.
    pub fn push(&mut self, dsn: u64, len: u64) -> bool {
        let Some(slot) = self.r.get_mut(usize::from(self.n)) else {
            return false;
        };
        *slot = (dsn, len);
        self.n += 1;
        true
    }

    /// Whether `len` bytes from `dsn` overlap one of the ranges.
    pub fn overlaps(&self, dsn: u64, len: u64) -> bool {
        overlaps(self.ranges(), dsn, len)
    }

    /// The last range grows to end at `end`.
    fn extend_last(&mut self, end: u64) {
        if let Some(r) = self
            .n
            .checked_sub(1)
            .and_then(|i| self.r.get_mut(usize::from(i)))
        {
            r.1 = end.saturating_sub(r.0).max(r.1);
        }
    }
}

/// Whether `len` bytes from `dsn` overlap one of `ranges`.
pub(super) fn overlaps<'a>(
    ranges: impl IntoIterator<Item = &'a (u64, u64)>,
    dsn: u64,
    len: u64,
) -> bool {
    let end = dsn.saturating_add(len);
    ranges
        .into_iter()
        .any(|&(d, l)| d < end && dsn < d.saturating_add(l))
}

impl<F> Default for LentHere<F> {
    fn default() -> Self {
        LentHere {
            ledger: Default::default(),
            back: Vec::new(),
        }
    }
}

impl<F: Frame> LentHere<F> {
    /// No frame of the connection's is lent here.
    pub(super) fn is_empty(&self) -> bool {
        self.ledger.is_empty()
    }

    pub(super) fn back_is_empty(&self) -> bool {
        self.back.is_empty()
    }

    pub(super) fn take_back(&mut self) -> Vec<Returned<F>> {
        core::mem::take(&mut self.back)
    }

    /// At most `max` of the frames to give back, oldest first, into
    /// `out` (a buffer that goes round: nothing allocated).
    pub(super) fn take_back_into(&mut self, out: &mut Vec<Returned<F>>, max: usize) {
        let n = self.back.len().min(max);
        out.extend(self.back.drain(..n));
    }

    /// Note the connection's frame `frame` (`len` bytes at `off`, DSN
    /// `dsn` on) appended to `q`, this subflow's send queue.
    pub(super) fn push(
        &mut self,
        q: &mut crate::tcp::send::SendBuffer<F>,
        frame: F,
        (off, len): (usize, usize),
        dsn: u64,
    ) {
        let end = q.tail() + len;
        q.push_frame(frame, off, off + len);
        self.ledger.push_back((end, dsn, len, false));
    }

    /// The connection, in another worker, needs bytes lent here for a
    /// reinjection (RFC 8684 §3.3.6) and cannot read this queue (`q`):
    /// copies of the lent frames overlapping `want` and not copied yet
    /// (frames from `alloc`) join those to give back; the lent frames
    /// stay (freed at the ACK). Returns the bytes copied and those it
    /// could not (no frame).
    pub(super) fn copy_back(
        &mut self,
        q: &crate::tcp::send::SendBuffer<F>,
        want: &CopyRanges,
        alloc: &mut dyn FnMut() -> Option<F>,
    ) -> (usize, usize) {
        let (mut copied, mut missed) = (0, 0);
        for (e, dsn, len, done) in self.ledger.iter_mut() {
            if *done || !want.overlaps(*dsn, *len as u64) {
                continue;
            }
            let (e, dsn, len) = (*e, *dsn, *len);
            let (Some(b), Some(mut f)) = (q.frame_tail(e, len), alloc()) else {
                missed += len;
                continue;
            };
            let Some(dst) = f.buf_mut().get_mut(HEADROOM..HEADROOM + len) else {
                missed += len;
                continue;
            };
            dst.copy_from_slice(b);
            self.back.push(Returned {
                dsn,
                len,
                frame: f,
                off: HEADROOM,
            });
            *done = true;
            copied += len;
        }
        (copied, missed)
    }

    /// Frame `f` left the subflow's queue: one of the connection's goes
    /// back, a copy of ours is dropped.
    pub(super) fn give_back(&mut self, f: SendFrame<F>) {
        let end = f.seq + (f.end - f.off);
        while let Some(&(e, dsn, len, _)) = self.ledger.front() {
            if e < end {
                // Not in the queue any more (cannot happen: lent frames
                // are neither topped up nor gathered); forgotten.
                self.ledger.pop_front();
                continue;
            }
            if e == end && f.end >= len {
                self.ledger.pop_front();
                self.back.push(Returned {
                    dsn,
                    len,
                    off: f.end - len,
                    frame: f.frame,
                });
            }
            return;
        }
    }

    /// Frame `f`, taken out of the subflow's queue whole (its bytes
    /// copied into a probe, `mptcp_probe_copy`): one of the connection's
    /// goes back, a copy of ours is dropped. Unlike `give_back`, frames
    /// before it stay in the queue.
    fn give_back_exact(&mut self, f: SendFrame<F>) {
        let end = f.seq + (f.end - f.off);
        let Some(i) = self
            .ledger
            .iter()
            .position(|&(e, _, len, _)| e == end && f.end >= len)
        else {
            return;
        };
        if let Some((_, dsn, len, _)) = self.ledger.remove(i) {
            self.back.push(Returned {
                dsn,
                len,
                off: f.end - len,
                frame: f.frame,
            });
        }
    }

    /// Whether the last frame of the queue (ending at `tail`) is lent: it
    /// is not topped up with a copy.
    pub(super) fn last_is(&self, tail: SeqNumber) -> bool {
        self.ledger.back().is_some_and(|l| l.0 == tail)
    }

    /// The lent frame's bytes whose chunk ends at DSN `end_dsn`, its last
    /// `len` of them, from `q` (the subflow's send queue).
    pub(super) fn bytes<'a>(
        &self,
        q: &'a crate::tcp::send::SendBuffer<F>,
        end_dsn: u64,
        len: usize,
    ) -> Option<&'a [u8]> {
        let &(e, _, l, _) = self
            .ledger
            .iter()
            .find(|x| x.1.wrapping_add(x.2 as u64) == end_dsn)?;
        let b = q.frame_tail(e, l)?;
        b.get(b.len().checked_sub(len)?..)
    }

    /// Hand the returned frames to `m` (the connection).
    pub(super) fn collect_into(&mut self, m: &mut MetaTx<F>) {
        for r in self.back.drain(..) {
            m.take_back(r);
        }
    }
}

impl<F: Frame> crate::tcp::conn::Connection<F> {
    /// Whether the `len` bytes from SND.NXT lie within one of this
    /// subflow's mappings: a probe of them carries one DSS mapping (RFC
    /// 8684 §3.3.1), and gathering could join frames of two ranges.
    pub(in crate::tcp::conn) fn mptcp_probe_maps_one(&self, len: usize) -> bool {
        let Some(t) = self.mptcp.tx.as_deref() else {
            return true;
        };
        let back = (self.snd.queue.tail() - self.snd.nxt) as u64;
        let rel = t.tail_rel.wrapping_sub(back);
        t.maps
            .dsn_of(rel)
            .is_some_and(|(_, left)| left >= len as u64)
    }

    /// A PLPMTUD probe of `len` bytes from SND.NXT (RFC 4821 §7.3) on this
    /// subflow, which holds frames lent by its connection: its bytes go
    /// into a fresh frame (from `alloc`) that takes their place in the
    /// queue; lent frames are left whole, those wholly copied go back to
    /// the connection. Only within one mapping (a segment maps one DSN
    /// range, RFC 8684 §3.3.1). Returns whether the probe is ready.
    pub(in crate::tcp::conn) fn mptcp_probe_copy(
        &mut self,
        len: usize,
        alloc: &mut dyn FnMut() -> Option<F>,
    ) -> bool {
        let nxt = self.snd.nxt;
        if !self.mptcp_probe_maps_one(len) {
            return false;
        }
        let Some(t) = self.mptcp.tx.as_deref_mut() else {
            return false;
        };
        let Some(taken) = self.snd.queue.probe_copy(nxt, len, alloc) else {
            return false;
        };
        for f in taken {
            t.lent.give_back_exact(f);
        }
        if let Some(m) = t.meta.as_deref_mut() {
            // The first subflow: the connection is here.
            t.lent.collect_into(m);
        }
        self.stats.mptcp_tx_copied_bytes += len as u64;
        true
    }
}

impl<F: Frame> MpTx<F> {
    /// Append the connection's frame `f` (DSN `dsn` on) to `q`, this
    /// subflow's send queue, mapped and noted as lent. Returns its length.
    pub(super) fn lend_into(
        &mut self,
        q: &mut crate::tcp::send::SendBuffer<F>,
        f: SendFrame<F>,
        dsn: u64,
    ) -> usize {
        let len = f.end - f.off;
        self.lent.push(q, f.frame, (f.off, len), dsn);
        self.maps.push(self.tail_rel, dsn, len as u64);
        self.tail_rel += len as u64;
        len
    }
}

impl<F: Frame> MetaTx<F> {
    /// The first DSN the connection still holds for the application
    /// (from the DATA_ACK, or where its queue began).
    pub(super) fn held_start(&self) -> u64 {
        self.una.max(self.dq_start)
    }

    /// Payload bytes the application's data takes, given or not, lent or
    /// not: what the connection's send buffer counts.
    pub(super) fn app_bytes(&self) -> usize {
        self.end().saturating_sub(self.held_start()) as usize
    }

    /// Frames the application's data takes (lent ones included).
    pub(super) fn app_frames(&self) -> usize {
        self.dq.frames() + self.held.len()
    }

    /// Lend the frame at the head of the queue (DSN `dsn`, the next new
    /// data) to `to` (slot `slot`), if it is whole and at most `want`
    /// bytes. Returns the bytes lent.
    pub(super) fn lend_front<T: Taker<F> + ?Sized>(
        &mut self,
        slot: usize,
        dsn: u64,
        want: usize,
        to: &mut T,
    ) -> Option<usize> {
        if dsn != self.dq_head || self.held_start() > dsn {
            return None;
        }
        let (seq, len) = self.dq.front_frame()?;
        if seq != SeqNumber(dsn as u32) || len == 0 || len > want {
            return None;
        }
        let f = self.dq.pop_front()?;
        self.dq_head += len as u64;
        let k = to.lend(f, dsn);
        self.held.push_back(Held {
            dsn,
            len: k as u64,
            lent: Some(slot),
            here: None,
        });
        Some(k)
    }

    /// The frames of the queue wholly given (below `nxt`) move to the
    /// held ranges: their bytes stay here, copies of them went out.
    pub(super) fn settle_given(&mut self) {
        while let Some((seq, len)) = self.dq.front_frame() {
            let end = self.dq_head + len as u64;
            if end > self.nxt || seq != SeqNumber(self.dq_head as u32) {
                break;
            }
            let Some(f) = self.dq.pop_front() else { break };
            self.held.push_back(Held {
                dsn: self.dq_head,
                len: len as u64,
                lent: None,
                here: Some((f.frame, f.off)),
            });
            self.dq_head = end;
        }
    }

    /// Up to `max` bytes from `dsn` on, within one chunk, if the
    /// connection has them; `Err(slot)`: they are lent to that slot.
    pub(super) fn bytes_at(&self, dsn: u64, max: usize) -> Result<Option<&[u8]>, usize> {
        if dsn >= self.dq_head {
            let Some(s) = self.dq.locate(SeqNumber(dsn as u32), usize::MAX) else {
                return Ok(None);
            };
            return Ok(Some(self.dq.bytes(s, max)));
        }
        if dsn < self.held_start() {
            return Ok(None);
        }
        let i = self.held.partition_point(|h| h.dsn + h.len <= dsn);
        let Some(h) = self.held.get(i) else {
            return Ok(None);
        };
        if h.dsn > dsn {
            return Ok(None);
        }
        match (&h.here, h.lent) {
            (Some((f, off)), _) => {
                let from = off + (dsn - h.dsn) as usize;
                let to = (off + h.len as usize).min(from.saturating_add(max));
                Ok(f.buf().get(from..to))
            }
            (None, Some(j)) => Err(j),
            (None, None) => Ok(None),
        }
    }

    /// The DATA_ACK covers up to `una`: the held ranges below it go (their
    /// frames to the pool; a lent one's when it comes back).
    pub(super) fn trim_held(&mut self, una: u64) {
        while let Some(h) = self.held.front_mut() {
            let end = h.dsn + h.len;
            if end <= una {
                self.held.pop_front();
                continue;
            }
            if h.dsn < una {
                let k = una - h.dsn;
                h.dsn = una;
                h.len -= k;
                if let Some((_, off)) = &mut h.here {
                    *off += k as usize;
                }
            }
            break;
        }
    }

    /// A lent frame (or a copy of one) came back from the subflow it was
    /// lent to. Each range is lent to one subflow only, so its DSNs name
    /// it: the subflow's slot need not (it may have moved meanwhile).
    pub(super) fn take_back(&mut self, r: Returned<F>) {
        let rend = r.dsn + r.len as u64;
        if rend <= self.held_start() {
            // DATA_ACKed meanwhile: freed.
            return;
        }
        let i = self.held.partition_point(|h| h.dsn + h.len < rend);
        let Some(h) = self.held.get_mut(i) else {
            return;
        };
        if h.dsn + h.len != rend || h.lent.is_none() || h.dsn < r.dsn {
            return;
        }
        h.lent = None;
        if h.here.is_none() {
            h.here = Some((r.frame, r.off + (h.dsn - r.dsn) as usize));
        }
    }

    /// A reinjection needs `from..to`: the chunks in it lent to a subflow
    /// that the connection has no bytes of are copied at that subflow's
    /// next pull (only those).
    pub(super) fn want_copies_of(&mut self, from: u64, to: u64) {
        let i = self.held.partition_point(|h| h.dsn + h.len <= from);
        for h in self.held.iter().skip(i) {
            if h.dsn >= to {
                break;
            }
            if let (None, Some(j)) = (&h.here, h.lent) {
                if let Some(s) = self.slots.get_mut(j) {
                    s.want_copy(h.dsn, h.len);
                }
            }
        }
    }

    /// Slot `slot` (`to`) was asked to: copy what it holds of ours that a
    /// reinjection wants and the connection has no bytes of (frames from
    /// `alloc`). Returns bytes copied.
    pub(super) fn copy_lent<T: Taker<F> + ?Sized>(
        &mut self,
        slot: usize,
        to: &T,
        alloc: &mut dyn FnMut() -> Option<F>,
    ) -> usize {
        let Some(want) = self
            .slots
            .get_mut(slot)
            .map(|s| core::mem::take(&mut s.want))
        else {
            return 0;
        };
        let mut n = 0;
        let mut all = true;
        for h in self.held.iter_mut() {
            if h.lent != Some(slot) || h.here.is_some() || !overlaps(&want.0, h.dsn, h.len) {
                continue;
            }
            let len = h.len as usize;
            let Some(b) = to.lent_bytes(h.dsn + h.len, len) else {
                continue;
            };
            let Some(mut f) = alloc() else {
                all = false;
                break;
            };
            let Some(dst) = f.buf_mut().get_mut(HEADROOM..HEADROOM + len) else {
                continue;
            };
            dst.copy_from_slice(b);
            h.here = Some((f, HEADROOM));
            n += len;
        }
        if !all {
            // No frame: asked again at the next pull.
            if let Some(s) = self.slots.get_mut(slot) {
                s.want = want;
            }
        }
        n
    }

    /// What `slot`, a subflow in another worker, is asked to copy back
    /// (RFC 8684 §3.3.6): the ranges of the chunks lent to it that its
    /// wants overlap and the connection has no bytes of, neighbours (no
    /// other chunk of it between) joined, at most [`COPY_RANGES`]; what
    /// does not fit is asked at its next pull.
    pub(super) fn copy_request(&mut self, slot: usize) -> CopyRanges {
        let mut req = CopyRanges::default();
        let Some(want) = self
            .slots
            .get_mut(slot)
            .map(|s| core::mem::take(&mut s.want))
        else {
            return req;
        };
        // Whether the last range may grow: no chunk of the slot's that is
        // not wanted came after it (the subflow would copy it too).
        let mut open = false;
        let mut served = 0u64;
        for h in &self.held {
            if h.lent != Some(slot) || h.here.is_some() {
                continue;
            }
            if !overlaps(&want.0, h.dsn, h.len) {
                open = false;
                continue;
            }
            let end = h.dsn + h.len;
            if open {
                req.extend_last(end);
            } else if !req.push(h.dsn, h.len) {
                // Full: the rest at its next pull.
                let mut rest = want;
                rest.0.retain(|&(d, l)| d + l > served);
                for r in rest.0.iter_mut().filter(|r| r.0 < served) {
                    *r = (served, r.0 + r.1 - served);
                }
                if let Some(s) = self.slots.get_mut(slot) {
                    s.want = rest;
                }
                return req;
            }
            open = true;
            served = end;
        }
        req
    }

    /// Frames held with their bytes here (lent ones are in the subflows'
    /// queues).
    pub(super) fn frames_here(&self) -> usize {
        self.dq.frames() + self.held.iter().filter(|h| h.here.is_some()).count()
    }
}

/// Wants kept per slot at most: beyond, the last grows to cover the new
/// one (a few frames more copied, never fewer).
const MAX_WANTS: usize = 16;

/// DSN ranges (start, length) a reinjection wants copies of, from the
/// chunks lent to one subflow (`Slot::want`).
#[derive(Default)]
pub(super) struct Wants(std::collections::VecDeque<(u64, u64)>);

impl Slot {
    /// A reinjection needs `len` bytes from `dsn` that this subflow was
    /// lent. Returns whether the range was new.
    pub(super) fn want_copy(&mut self, dsn: u64, len: u64) -> bool {
        if self.gone || len == 0 {
            return false;
        }
        let w = &mut self.want.0;
        let end = dsn + len;
        if let Some(r) = w.iter_mut().find(|r| r.0 <= end && dsn <= r.0 + r.1) {
            if r.0 <= dsn && end <= r.0 + r.1 {
                return false;
            }
            let e = end.max(r.0 + r.1);
            r.0 = r.0.min(dsn);
            r.1 = e - r.0;
            return true;
        }
        if w.len() >= MAX_WANTS {
            if let Some(r) = w.back_mut() {
                let (s, e) = (r.0.min(dsn), (r.0 + r.1).max(end));
                *r = (s, e - s);
            }
            return true;
        }
        w.push_back((dsn, len));
        true
    }

    pub(super) fn has_wants(&self) -> bool {
        !self.want.0.is_empty()
    }
}
