//! The receive side: in-order queue and out-of-order reassembly over the
//! frames segments arrived in (zero-copy), SACK/D-SACK block generation
//! (RFC 2018 §4, RFC 2883), and memory accounting by frame truesize with
//! collapsing under pressure.

use super::SeqNumber;
use crate::io::{Frame, Pkt};
use crate::wire::tcp::SackBlocks;
use std::collections::VecDeque;

/// Fixed-point scale of the payload/truesize ratio.
const RATIO_ONE: usize = 1024;

/// Result of inserting one segment's payload.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Inserted {
    /// Bytes added to the in-order queue (RCV.NXT advance).
    pub advanced: usize,
    /// Queued out of order.
    pub ooo: bool,
    /// Contained (some) duplicate data.
    pub dup: bool,
    /// Pulled queued out-of-order data into order (a hole was filled).
    pub filled_hole: bool,
    /// Dropped for lack of memory.
    pub dropped: bool,
}

/// Whether the byte at a sequence number may share a frame with the byte
/// before it (see `RecvBuffer::collapse_gated`).
pub(crate) type MayJoin<'a> = &'a dyn Fn(SeqNumber) -> bool;

/// In-order and out-of-order received data.
pub(crate) struct RecvBuffer<F> {
    /// RCV.NXT: next in-order sequence number expected.
    pub nxt: SeqNumber,
    inorder: VecDeque<Pkt<F>>,
    inorder_len: usize,
    /// Out-of-order segments: sorted, disjoint, all above `nxt`.
    ooo: VecDeque<(SeqNumber, Pkt<F>)>,
    /// Sum of truesize of every frame held.
    mem: usize,
    /// Left edges of the most recently received out-of-order segments,
    /// newest first (RFC 2018 §4 block order).
    recent: [Option<SeqNumber>; 4],
    /// RFC 2883: a duplicate range to report once.
    dsack: Option<(SeqNumber, SeqNumber)>,
    /// Payload/truesize of recent segments, in 1/1024.
    ratio: usize,
    pub collapsed: u64,
    pub mem_drops: u64,
}

fn truesize<F: Frame>(p: &Pkt<F>) -> usize {
    p.frame.truesize().max(1)
}

impl<F: Frame> RecvBuffer<F> {
    pub fn new(nxt: SeqNumber) -> Self {
        RecvBuffer {
            nxt,
            inorder: VecDeque::new(),
            inorder_len: 0,
            ooo: VecDeque::new(),
            mem: 0,
            recent: [None; 4],
            dsack: None,
            ratio: RATIO_ONE / 2,
            collapsed: 0,
            mem_drops: 0,
        }
    }

    /// In-order bytes ready to read.
    pub fn available(&self) -> usize {
        self.inorder_len
    }

    /// Memory held (sum of frame truesize).
    pub fn mem(&self) -> usize {
        self.mem
    }

    pub fn has_ooo(&self) -> bool {
        !self.ooo.is_empty()
    }

    /// Payload bytes the free memory `limit - mem` can hold, at the ratio
    /// of payload to truesize seen lately (Linux tcp_win_from_space).
    pub fn space_to_window(&self, space: usize) -> usize {
        space / RATIO_ONE * self.ratio + space % RATIO_ONE * self.ratio / RATIO_ONE
    }

    /// Frame memory that holds a window of `window` payload bytes, at the
    /// same ratio (the inverse of `space_to_window`).
    pub fn window_to_space(&self, window: usize) -> usize {
        window.saturating_mul(RATIO_ONE) / self.ratio.max(1)
    }

    /// Window for `limit` bytes of frame memory.
    pub fn window(&self, limit: usize) -> usize {
        self.space_to_window(limit.saturating_sub(self.mem))
    }

    fn note_ratio(&mut self, len: usize, truesize: usize) {
        let r = (len * RATIO_ONE / truesize).clamp(RATIO_ONE / 64, RATIO_ONE);
        // EWMA with gain 1/8; large segments count fully so that a bulk
        // transfer quickly opens the window.
        self.ratio = (self.ratio * 7 + r) / 8;
        if r > self.ratio {
            self.ratio = self.ratio.max(r * 7 / 8);
        }
    }

    /// Queue the payload of a segment starting at `seq`, trimmed to the
    /// window ending at `wnd_end`; `limit` is the memory budget. Inline
    /// into its caller, whose tests of the result fold away for the
    /// shortcut's constant flags.
    #[inline(always)]
    pub fn insert(
        &mut self,
        seq: SeqNumber,
        pkt: Pkt<F>,
        wnd_end: SeqNumber,
        limit: usize,
    ) -> Inserted {
        // The common segment: the next bytes expected, all inside the
        // window, memory below the budget, nothing out of order to pull
        // in after it. What `insert_gated` does for it: nothing to trim,
        // no duplicate, no hole filled.
        if seq == self.nxt
            && !pkt.is_empty()
            && seq + pkt.len() <= wnd_end
            && self.mem < limit
            && self.ooo.is_empty()
        {
            let ts = truesize(&pkt);
            self.note_ratio(pkt.len(), ts);
            return Inserted {
                advanced: self.push_inorder(pkt),
                ..Inserted::default()
            };
        }
        self.insert_gated(seq, pkt, wnd_end, limit, &|_| true)
    }

    /// `insert`, where collapsing under pressure joins two segments in one
    /// frame only where `may_join(seq)` allows it for the byte at `seq`
    /// and the one before (`collapse_gated`).
    pub fn insert_gated(
        &mut self,
        seq: SeqNumber,
        mut pkt: Pkt<F>,
        wnd_end: SeqNumber,
        limit: usize,
        may_join: MayJoin<'_>,
    ) -> Inserted {
        let mut r = Inserted::default();
        if pkt.is_empty() {
            return r;
        }
        let mut seq = seq;
        let end = seq + pkt.len();
        // RFC 2883 §4: report the duplicate part.
        if end <= self.nxt {
            self.dsack = Some((seq, end));
            r.dup = true;
            return r;
        }
        if seq < self.nxt {
            self.dsack = Some((seq, self.nxt));
            r.dup = true;
            pkt.advance(self.nxt - seq);
            seq = self.nxt;
        }
        if end > wnd_end {
            if seq >= wnd_end {
                return r;
            }
            pkt.truncate(wnd_end - seq);
        }
        self.note_ratio(pkt.len(), truesize(&pkt));
        let ts = truesize(&pkt);
        // Like Linux (tcp_try_rmem_schedule), in-order data within the
        // window may overshoot the budget by one frame: the window is in
        // bytes, memory in frames, and a short tail segment must not be
        // dropped for rounding. Out-of-order data gets no slack.
        let over = if seq == self.nxt {
            self.mem >= limit
        } else {
            self.mem + ts > limit
        };
        let room = if seq == self.nxt { limit + ts } else { limit };
        if over && !self.make_room(seq, ts, room, may_join) {
            self.mem_drops += 1;
            r.dropped = true;
            return r;
        }
        if seq == self.nxt {
            r.advanced = self.push_inorder(pkt);
            while let Some((s, _)) = self.ooo.front() {
                if *s > self.nxt {
                    break;
                }
                let Some((s, mut p)) = self.ooo.pop_front() else {
                    break;
                };
                r.filled_hole = true;
                if s + p.len() <= self.nxt {
                    self.mem -= truesize(&p);
                    continue;
                }
                p.advance(self.nxt - s);
                self.mem -= truesize(&p);
                r.advanced += self.push_inorder(p);
            }
        } else {
            r.ooo = true;
            if self.insert_ooo(seq, pkt) {
                r.dup = true;
            }
        }
        r
    }

    fn push_inorder(&mut self, p: Pkt<F>) -> usize {
        let n = p.len();
        self.mem += truesize(&p);
        self.inorder_len += n;
        self.nxt = self.nxt + n;
        self.inorder.push_back(p);
        n
    }

    /// Insert above `nxt`, trimming the new segment against what is queued
    /// (queued data wins; queued segments wholly inside the new one are
    /// replaced). Returns whether duplicate data was seen.
    fn insert_ooo(&mut self, mut seq: SeqNumber, mut pkt: Pkt<F>) -> bool {
        let mut dup = false;
        let mut end = seq + pkt.len();
        let mut i = self.ooo.partition_point(|(s, p)| *s + p.len() <= seq);
        while let Some((s, p)) = self.ooo.get(i) {
            let (s, e) = (*s, *s + p.len());
            if s >= end {
                break;
            }
            if !dup {
                self.dsack = Some((s.max(seq), e.min(end)));
                dup = true;
            }
            if s <= seq {
                if e >= end {
                    // Wholly duplicate.
                    self.note_recent(s);
                    return true;
                }
                pkt.advance(e - seq);
                seq = e;
                i += 1;
            } else if e <= end {
                if let Some((_, old)) = self.ooo.remove(i) {
                    self.mem -= truesize(&old);
                }
            } else {
                pkt.truncate(s - seq);
                end = s;
                break;
            }
        }
        let _ = end;
        self.mem += truesize(&pkt);
        self.ooo.insert(i, (seq, pkt));
        self.note_recent(seq);
        dup
    }

    fn note_recent(&mut self, seq: SeqNumber) {
        let pos = self
            .recent
            .iter()
            .position(|r| *r == Some(seq))
            .unwrap_or(3);
        self.recent.copy_within(0..pos, 1);
        self.recent[0] = Some(seq);
    }

    /// Free memory for a segment of `ts` bytes at `seq`: collapse, then drop
    /// out-of-order data above `seq`. Returns whether it now fits.
    fn make_room(
        &mut self,
        seq: SeqNumber,
        ts: usize,
        limit: usize,
        may_join: MayJoin<'_>,
    ) -> bool {
        self.collapse_gated(may_join);
        while self.mem + ts > limit {
            match self.ooo.back() {
                Some((s, _)) if *s > seq => {
                    if let Some((_, p)) = self.ooo.pop_back() {
                        self.mem -= truesize(&p);
                        self.mem_drops += 1;
                    }
                }
                _ => return false,
            }
        }
        true
    }

    /// Copy small segments together (into the frame of the first of each
    /// contiguous run, moved to offset 0) and release the emptied frames.
    pub fn collapse(&mut self) {
        self.collapse_gated(&|_| true);
    }

    /// `collapse`, joining a segment onto the one before it only where
    /// `may_join` allows it for the segment's first sequence number (an
    /// MPTCP subflow: where the peer's mappings run on, as a frame maps
    /// one contiguous range of the data level).
    pub fn collapse_gated(&mut self, may_join: MayJoin<'_>) {
        let q = core::mem::take(&mut self.inorder);
        let mut out: VecDeque<Pkt<F>> = VecDeque::with_capacity(q.len());
        let mut seq = self.nxt - self.inorder_len;
        for p in q {
            let at = seq;
            seq = seq + p.len();
            self.absorb(&mut out, p, may_join(at));
        }
        self.inorder = out;

        let q = core::mem::take(&mut self.ooo);
        let mut out: VecDeque<(SeqNumber, Pkt<F>)> = VecDeque::with_capacity(q.len());
        for (s, p) in q {
            if let Some((ls, lp)) = out.back_mut() {
                if *ls + lp.len() == s && may_join(s) && Self::merge(lp, &p) {
                    self.mem -= truesize(&p);
                    self.collapsed += 1;
                    continue;
                }
            }
            out.push_back((s, Self::compact(p)));
        }
        self.ooo = out;
    }

    fn absorb(&mut self, out: &mut VecDeque<Pkt<F>>, p: Pkt<F>, join: bool) {
        if let Some(last) = out.back_mut() {
            if join && Self::merge(last, &p) {
                self.mem -= truesize(&p);
                self.collapsed += 1;
                return;
            }
        }
        out.push_back(Self::compact(p));
    }

    /// Small segments (payload under half their truesize) move to the
    /// front of their frame so that followers can be appended.
    fn compact(mut p: Pkt<F>) -> Pkt<F> {
        if p.len() * 2 < truesize(&p) && p.start > 0 {
            let (s, e) = (p.start, p.end);
            p.frame.buf_mut().copy_within(s..e, 0);
            p.start = 0;
            p.end = e - s;
        }
        p
    }

    /// Append all of `p` to `last` if it is small and fits.
    fn merge(last: &mut Pkt<F>, p: &Pkt<F>) -> bool {
        let room = last.frame.buf().len().saturating_sub(last.end);
        if p.len() * 2 >= truesize(p) || p.len() > room {
            return false;
        }
        let e = last.end;
        last.frame.buf_mut()[e..e + p.len()].copy_from_slice(p.data());
        last.end += p.len();
        true
    }

    /// Take the first in-order packet whole (its frame leaves the queue),
    /// if it is at most `max` bytes.
    pub fn pop_inorder(&mut self, max: usize) -> Option<Pkt<F>> {
        while self.inorder.front()?.is_empty() {
            if let Some(p) = self.inorder.pop_front() {
                self.mem -= truesize(&p);
            }
        }
        if self.inorder.front()?.len() > max {
            return None;
        }
        let p = self.inorder.pop_front()?;
        self.inorder_len -= p.len();
        self.mem -= truesize(&p);
        Some(p)
    }

    /// Zero-copy read (see `Connection::recv_with`). Inline for the read
    /// of the one in-order frame (a request): `f` on its payload and the
    /// frame released at once; a longer queue the loop below.
    #[inline]
    pub fn read_with(&mut self, f: &mut dyn FnMut(&[u8]) -> usize) -> usize {
        if self.inorder.len() == 1 {
            let Some(p) = self.inorder.front_mut() else {
                return 0;
            };
            let n = p.len();
            let k = f(p.data()).min(n);
            self.inorder_len -= k;
            if k < n {
                p.advance(k);
            } else if let Some(p) = self.inorder.pop_front() {
                self.mem -= truesize(&p);
            }
            return k;
        }
        self.read_with_queue(f)
    }

    /// `read_with` over several frames.
    fn read_with_queue(&mut self, f: &mut dyn FnMut(&[u8]) -> usize) -> usize {
        let mut total = 0;
        while let Some(p) = self.inorder.front_mut() {
            let n = p.len();
            let k = f(p.data()).min(n);
            p.advance(k);
            total += k;
            self.inorder_len -= k;
            if p.is_empty() {
                if let Some(p) = self.inorder.pop_front() {
                    self.mem -= truesize(&p);
                }
            }
            if k < n {
                break;
            }
        }
        total
    }

    /// SACK blocks for the next ACK (RFC 2018 §4): the D-SACK block first
    /// (RFC 2883 §4), then the block holding the latest arrival, then the
    /// other recently reported ones, up to `max` blocks.
    pub fn sack_blocks(&self, max: usize) -> SackBlocks {
        let mut b = SackBlocks::default();
        // `max` bounds every block, the D-SACK one included: a segment
        // with no option room must carry none (else it outgrows the MTU).
        if let Some((l, r)) = self.dsack.filter(|_| max > 0) {
            b.push(l, r);
        }
        let add = |blk: (SeqNumber, SeqNumber), b: &mut SackBlocks| {
            if (b.len as usize) < max
                && !b
                    .as_slice()
                    .iter()
                    .skip(self.dsack.is_some() as usize)
                    .any(|x| *x == blk)
            {
                b.push(blk.0, blk.1);
            }
        };
        for s in self.recent.iter().flatten() {
            if let Some(blk) = self.block_containing(*s) {
                add(blk, &mut b);
            }
        }
        let mut i = 0;
        while i < self.ooo.len() && (b.len as usize) < max {
            let (l, r, next) = self.run_at(i);
            add((l, r), &mut b);
            i = next;
        }
        b
    }

    /// The maximal contiguous run starting at queue index `i`.
    fn run_at(&self, i: usize) -> (SeqNumber, SeqNumber, usize) {
        let (l, p) = &self.ooo[i];
        let mut r = *l + p.len();
        let mut j = i + 1;
        while let Some((s, p)) = self.ooo.get(j) {
            if *s != r {
                break;
            }
            r = *s + p.len();
            j += 1;
        }
        (*l, r, j)
    }

    fn block_containing(&self, seq: SeqNumber) -> Option<(SeqNumber, SeqNumber)> {
        if seq < self.nxt {
            return None;
        }
        let mut i = 0;
        while i < self.ooo.len() {
            let (l, r, next) = self.run_at(i);
            if l <= seq && seq < r {
                return Some((l, r));
            }
            if l > seq {
                return None;
            }
            i = next;
        }
        None
    }

    /// Record a duplicate range received without data insertion (e.g. a
    /// wholly old segment).
    pub fn set_dsack(&mut self, l: SeqNumber, r: SeqNumber) {
        if l < r {
            self.dsack = Some((l, r));
        }
    }

    /// The D-SACK block was reported.
    pub fn clear_dsack(&mut self) {
        self.dsack = None;
    }

    pub fn has_dsack(&self) -> bool {
        self.dsack.is_some()
    }

    /// Drop everything queued (abort/reset of the receive side is not
    /// needed: the in-order data stays readable; this frees all).
    pub fn clear_ooo(&mut self) {
        while let Some((_, p)) = self.ooo.pop_front() {
            self.mem -= truesize(&p);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::test_frame::VecFrame as V;

    const LIMIT: usize = 1 << 20;

    fn p(off: u32, len: usize) -> Pkt<V> {
        let mut v = vec![0u8; 2048];
        for i in 0..len {
            v[66 + i] = ((off as usize + i) % 251) as u8;
        }
        Pkt::new(V(v), 66, 66 + len)
    }

    fn q() -> RecvBuffer<V> {
        RecvBuffer::new(SeqNumber(0))
    }

    fn read(b: &mut RecvBuffer<V>) -> Vec<u8> {
        let mut out = Vec::new();
        b.read_with(&mut |s| {
            out.extend_from_slice(s);
            s.len()
        });
        out
    }

    fn expect(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i % 251) as u8).collect()
    }

    /// `insert`'s shortcut for the next in-window segment decides as
    /// `insert_gated` does: the same results and state over a
    /// pseudo-random mix of in-order, out-of-order, duplicate,
    /// beyond-window and over-budget segments, with reads between.
    #[test]
    fn insert_shortcut_equals_the_general_path() {
        let (mut fast, mut general) = (q(), q());
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut shortcut = 0;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let nxt = fast.nxt.0;
            let seq = match x % 8 {
                0 => nxt.wrapping_sub((x >> 8) as u32 % 300),
                1 | 2 => nxt.wrapping_add((x >> 8) as u32 % 3000),
                _ => nxt,
            };
            let len = (x >> 20) as usize % 1400;
            let wnd_end = SeqNumber(nxt.wrapping_add((x >> 32) as u32 % 8000));
            let limit = [LIMIT, 40_000, 8_000][(x >> 40) as usize % 3];
            if seq == nxt && len > 0 && fast.mem() < limit && !fast.has_ooo() {
                shortcut += 1;
            }
            let a = fast.insert(SeqNumber(seq), p(seq, len), wnd_end, limit);
            let b = general.insert_gated(SeqNumber(seq), p(seq, len), wnd_end, limit, &|_| true);
            assert_eq!(a, b);
            assert_eq!(
                (fast.nxt, fast.available(), fast.mem(), fast.ratio),
                (
                    general.nxt,
                    general.available(),
                    general.mem(),
                    general.ratio
                )
            );
            assert_eq!(
                fast.sack_blocks(4).as_slice(),
                general.sack_blocks(4).as_slice()
            );
            if x.is_multiple_of(5) {
                assert_eq!(read(&mut fast), read(&mut general));
            }
        }
        assert!(shortcut > 5_000, "{shortcut}");
    }

    #[test]
    fn collapse_joins_only_where_allowed() {
        let end = SeqNumber(100_000);
        // Ten small out-of-order segments, then pressure.
        let fill = |b: &mut RecvBuffer<V>| {
            for i in 1..=10u32 {
                b.insert(SeqNumber(i * 10), p(i * 10, 10), end, LIMIT);
            }
        };
        let mut all = q();
        fill(&mut all);
        all.collapse();
        assert_eq!(all.collapsed, 9);
        let mut gated = q();
        fill(&mut gated);
        // No frame may hold the bytes on both sides of 50.
        gated.collapse_gated(&|s| s != SeqNumber(50));
        assert_eq!(gated.collapsed, 8);
        assert_eq!(gated.ooo.len(), 2);
        assert_eq!(gated.ooo[1].0, SeqNumber(50));
        assert_eq!(
            gated.insert(SeqNumber(0), p(0, 10), end, LIMIT).advanced,
            110
        );
        assert_eq!(read(&mut gated), expect(110));
    }

    #[test]
    fn reassembly_with_overlaps() {
        let mut b = q();
        let end = SeqNumber(100_000);
        assert!(b.insert(SeqNumber(100), p(100, 100), end, LIMIT).ooo);
        assert!(b.insert(SeqNumber(300), p(300, 100), end, LIMIT).ooo);
        // Covers 100..200 entirely and overlaps 300..: trimmed, old one gone.
        let r = b.insert(SeqNumber(50), p(50, 300), end, LIMIT);
        assert!(r.ooo && r.dup);
        assert_eq!(
            b.sack_blocks(4).as_slice()[0],
            (SeqNumber(100), SeqNumber(200))
        );
        b.clear_dsack();
        assert_eq!(
            b.sack_blocks(4).as_slice(),
            &[(SeqNumber(50), SeqNumber(400))]
        );
        let r = b.insert(SeqNumber(0), p(0, 60), end, LIMIT);
        assert_eq!(r.advanced, 400);
        assert!(r.filled_hole);
        assert_eq!(read(&mut b), expect(400));
        assert_eq!(b.mem(), 0);
        // Old data: D-SACK only.
        let r = b.insert(SeqNumber(10), p(10, 20), end, LIMIT);
        assert!(r.dup && r.advanced == 0);
        assert_eq!(
            b.sack_blocks(4).as_slice(),
            &[(SeqNumber(10), SeqNumber(30))]
        );
    }

    #[test]
    fn window_trim_and_partial_reads() {
        let mut b = q();
        let r = b.insert(SeqNumber(0), p(0, 100), SeqNumber(60), LIMIT);
        assert_eq!(r.advanced, 60);
        let mut got = Vec::new();
        let n = b.read_with(&mut |s| {
            got.extend_from_slice(&s[..10]);
            10
        });
        assert_eq!(n, 10);
        assert_eq!(b.available(), 50);
        assert_eq!(b.mem(), 2048);
        assert_eq!(read(&mut b), expect(60)[10..].to_vec());
        assert_eq!(b.mem(), 0);
    }

    #[test]
    fn sack_block_order_most_recent_first() {
        let mut b = q();
        let end = SeqNumber(100_000);
        for s in [100u32, 300, 500, 700, 900] {
            b.insert(SeqNumber(s), p(s, 50), end, LIMIT);
        }
        let blocks: Vec<u32> = b.sack_blocks(3).as_slice().iter().map(|x| x.0 .0).collect();
        assert_eq!(blocks, vec![900, 700, 500]);
        // Touch 300 again (a duplicate): it moves to the front after D-SACK.
        b.insert(SeqNumber(300), p(300, 50), end, LIMIT);
        let blocks: Vec<u32> = b.sack_blocks(4).as_slice().iter().map(|x| x.0 .0).collect();
        assert_eq!(blocks, vec![300, 300, 900, 700]);
    }

    #[test]
    fn collapse_and_memory_bound() {
        let mut b = q();
        let end = SeqNumber(100_000);
        let limit = 4 * 2048;
        for i in 0..30u32 {
            let r = b.insert(SeqNumber(10 + i * 10), p(10 + i * 10, 10), end, limit);
            assert!(!r.dropped);
            assert!(b.mem() <= limit);
        }
        assert!(b.collapsed >= 26);
        // A far-away segment that does not fit makes no room for itself.
        for i in 0..10u32 {
            b.insert(SeqNumber(5000 + i * 100), p(5000 + i * 100, 10), end, limit);
        }
        assert!(b.mem() <= limit);
        assert!(b.mem_drops > 0);
        assert_eq!(b.insert(SeqNumber(0), p(0, 10), end, limit).advanced, 310);
        assert_eq!(read(&mut b), expect(310));
    }

    /// Everything a read may update, as text.
    fn read_state(b: &RecvBuffer<V>) -> String {
        let pkts: Vec<(usize, usize)> = b.inorder.iter().map(|p| (p.start, p.end)).collect();
        format!(
            "nxt {:?} len {} avail {} mem {} pkts {:?} ooo {}",
            b.nxt,
            b.inorder_len,
            b.available(),
            b.mem(),
            pkts,
            b.ooo.len()
        )
    }

    /// The read of the one in-order frame (`read_with`'s lean path) and
    /// the walk over the queue (`read_with_queue`, the general path) leave
    /// the same state and hand the reader the same bytes, whatever the
    /// reader takes: all, part, nothing, or more than offered.
    #[test]
    fn one_frame_read_agrees_with_the_queue_walk() {
        // How many bytes the reader takes of each offered slice.
        let readers: [fn(usize) -> usize; 5] = [|n| n, |n| n / 2, |_| 0, |n| n + 7, |n| n.min(3)];
        for len in [1usize, 64, 1000] {
            for (i, take) in readers.iter().enumerate() {
                let (mut lean, mut walk) = (q(), q());
                let end = SeqNumber(1 << 20);
                lean.insert(SeqNumber(0), p(0, len), end, LIMIT);
                walk.insert(SeqNumber(0), p(0, len), end, LIMIT);
                // Several reads: the later ones see what the first left.
                for round in 0..4 {
                    let (mut got_lean, mut got_walk) = (Vec::new(), Vec::new());
                    let a = lean.read_with(&mut |s| {
                        got_lean.extend_from_slice(s);
                        take(s.len())
                    });
                    let b = walk.read_with_queue(&mut |s| {
                        got_walk.extend_from_slice(s);
                        take(s.len())
                    });
                    let at = format!("len {len} reader {i} round {round}");
                    assert_eq!(a, b, "{at}");
                    assert_eq!(got_lean, got_walk, "{at}");
                    assert_eq!(read_state(&lean), read_state(&walk), "{at}");
                }
                assert_eq!(read(&mut lean), read(&mut walk));
                assert_eq!(read_state(&lean), read_state(&walk));
            }
        }
    }
}
