//! Connection-level receive across subflows (RFC 8684 §3.3): each
//! subflow reassembles its own bytes by subflow sequence number (the
//! core's receive queue), then hands its in-order frames over, mapped by
//! the peer's DSS mappings ([`RxMaps`]) to data sequence numbers. The
//! connection (the first subflow, which holds the [`Session`]) keeps a
//! second receive queue keyed by DSN: it reassembles what arrives over
//! all subflows, trims data-level duplicates and overlaps (a peer's
//! connection-level reinjection, Linux's zero-window probe), and is what
//! the application reads. Frames move from queue to queue; no byte is
//! copied.
//!
//! A joined subflow (a separate connection in the stack) queues its mapped
//! frames in `out`; the stack moves them to the connection
//! ([`Connection::mptcp_take_joined`], [`Connection::mptcp_data_in`]) and
//! gives the subflow the connection's DATA_ACK and window back.
//!
//! [`Session`]: crate::mptcp::Session

use super::{ConnEvents, Connection};
use crate::io::{Frame, Pkt};
use crate::mptcp::{MapError, RxDsn, RxMapping, RxMaps};
use crate::tcp::recv::{Inserted, RecvBuffer};
use crate::tcp::SeqNumber;
use std::collections::VecDeque;

/// Mapped in-order data of a joined subflow, on its way to the data level.
pub type MappedQueue<F> = VecDeque<(RxDsn, Pkt<F>)>;

/// The data level: the connection's receive queue by DSN. `RecvBuffer`
/// works on 32-bit sequence numbers: the low 32 bits of the DSN serve,
/// as the window is far below 2^31; `nxt` keeps all 64.
pub(crate) struct DataRecv<F> {
    buf: RecvBuffer<F>,
    /// The next in-order DSN (the DATA_ACK without the DATA_FIN).
    nxt: u64,
    /// The DSN of the peer's DATA_FIN, once seen.
    fin: Option<u64>,
    /// The DATA_FIN was reached in order: the application's end of data.
    pub fin_done: bool,
    /// The right edge of the connection-level window (DSN) as far as any
    /// subflow advertised it: the peer may send up to it (RFC 8684 §3.3.4;
    /// Linux's `rcv_wnd_sent`), even once out-of-order data narrowed the
    /// free space.
    edge: u64,
}

/// What one insert did at the data level.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct DataIn {
    pub advanced: usize,
    pub dup: bool,
    pub ooo: bool,
    pub filled_hole: bool,
    pub dropped: bool,
    /// The DSN lies outside any window (a broken 64-bit mapping).
    pub invalid: bool,
}

impl DataIn {
    /// Fold one insert's outcome into a batch's (`invalid` is the caller's).
    fn absorb(&mut self, r: &DataIn) {
        self.advanced += r.advanced;
        self.dup |= r.dup;
        self.ooo |= r.ooo;
        self.filled_hole |= r.filled_hole;
        self.dropped |= r.dropped;
    }
}

impl<F: Frame> DataRecv<F> {
    fn new(nxt: u64) -> Self {
        DataRecv {
            buf: RecvBuffer::new(SeqNumber(nxt as u32)),
            nxt,
            fin: None,
            fin_done: false,
            edge: nxt,
        }
    }

    /// A window of `wnd` bytes from the DATA_ACK was advertised: the
    /// right edge, as far as advertised (see `edge`).
    fn advertise_edge(&mut self, wnd: usize) -> u64 {
        self.edge = later(self.edge, self.ack().wrapping_add(wnd as u64));
        self.edge
    }

    /// Queue `p`, whose first byte is `dsn`; `limit` is the memory
    /// budget (the connection's receive buffer).
    fn insert(&mut self, dsn: RxDsn, p: Pkt<F>, limit: usize) -> DataIn {
        let d = dsn.widen(self.nxt);
        // A DSN more than the window away is no data of ours.
        let off = d.wrapping_sub(self.nxt) as i64;
        if off.unsigned_abs() > (1 << 30) {
            return DataIn {
                invalid: true,
                ..DataIn::default()
            };
        }
        let wnd_end = self.buf.nxt + limit.saturating_mul(2).min(1 << 30);
        // Data up to the edge we advertised was let in by its subflow,
        // which acknowledged it: dropped here for memory, only the peer's
        // data-level timeout (200 ms and more, backing off) would bring it
        // back. The window is bytes and the budget frame memory, so what
        // the window promised may overshoot the budget: it gets
        // `EDGE_SLACK` times the budget before anything is dropped.
        let end = d.wrapping_add(p.len() as u64);
        let budget = if (self.edge.wrapping_sub(end) as i64) >= 0 {
            limit.saturating_mul(EDGE_SLACK)
        } else {
            limit
        };
        let r = self.buf.insert(SeqNumber(d as u32), p, wnd_end, budget);
        self.nxt = self.nxt.wrapping_add(r.advanced as u64);
        DataIn {
            advanced: r.advanced,
            dup: r.dup,
            ooo: r.ooo,
            filled_hole: r.filled_hole,
            dropped: r.dropped,
            invalid: false,
        }
    }

    fn note_fin(&mut self, dsn: RxDsn) {
        if self.fin.is_none() {
            self.fin = Some(dsn.widen(self.nxt));
        }
    }

    /// Whether the DATA_FIN was reached just now (reported once).
    fn fin_reached(&mut self) -> bool {
        if !self.fin_done && self.fin == Some(self.nxt) {
            self.fin_done = true;
            // Data beyond the DATA_FIN cannot belong to the stream.
            self.buf.clear_ooo();
            return true;
        }
        false
    }

    /// The DATA_ACK (RFC 8684 §3.3.2): the in-order point, the DATA_FIN
    /// counted once reached.
    pub fn ack(&self) -> u64 {
        self.nxt.wrapping_add(self.fin_done as u64)
    }
}

/// How far the data level's frame memory may exceed the receive buffer
/// for data within the connection-level window already advertised
/// (`DataRecv::insert`), before it drops anything its subflows acknowledged.
const EDGE_SLACK: usize = 2;

/// The later of two DSNs (modulo 2^64).
fn later(a: u64, b: u64) -> u64 {
    if (b.wrapping_sub(a) as i64) > 0 {
        b
    } else {
        a
    }
}

/// The connection's receive side as a joined subflow is told it: the
/// DATA_ACK, the free window, and the right edge advertised so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataLevelView {
    pub ack: u64,
    pub window: usize,
    pub edge: u64,
    /// The connection's receive buffer (autotuned: `rcv_space`).
    pub rcv_buf: usize,
}

/// The MPTCP receive state of one subflow.
pub(crate) struct MpRx<F> {
    maps: RxMaps,
    /// The data level, on the connection's first subflow only.
    data: Option<DataRecv<F>>,
    /// A joined subflow's mapped in-order data, for the connection.
    out: MappedQueue<F>,
    /// A joined subflow saw the DATA_FIN (its DSN), for the connection.
    out_fin: Option<RxDsn>,
    /// On a joined subflow: the connection's DATA_ACK and free window, as
    /// the stack last gave them.
    pub meta_ack: Option<u64>,
    pub meta_window: usize,
    /// The connection-level right edge as last told (`DataRecv::edge`).
    pub meta_edge: u64,
    /// ADD_ADDR / REMOVE_ADDR received here, for the path manager.
    pub signals: crate::mptcp::pm::Signals,
    /// On a joined subflow: the peer's mapping whose DSS checksum is
    /// being summed (RFC 8684 §3.3.1), and the last mapping's subflow
    /// offset, near which 32-bit offsets are widened.
    pub csum: Option<crate::mptcp::rxcsum::RxChecksum>,
    pub csum_hint: u64,
}

impl<F: Frame> MpRx<F> {
    fn new(data: Option<DataRecv<F>>) -> Self {
        MpRx {
            maps: RxMaps::default(),
            data,
            out: VecDeque::new(),
            out_fin: None,
            meta_ack: None,
            meta_window: usize::MAX,
            meta_edge: 0,
            signals: Default::default(),
            csum: None,
            csum_hint: 0,
        }
    }
}

/// What the MPTCP layer makes of a segment's mapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MapVerdict {
    Ok,
    /// Drop the segment (no room for its mapping; the peer resends).
    Drop,
    /// An invalid mapping: reset the subflow (RFC 8684 §3.3.1).
    Invalid,
}

impl<F: Frame> Connection<F> {
    /// Set up the data level on the first subflow once the peer's IDSN is
    /// known (its first data is at IDSN + 1, RFC 8684 §3.1).
    pub(super) fn mptcp_rx_meta(&mut self) -> Option<&mut MpRx<F>> {
        if self.mptcp.rx.is_none() {
            let idsn = self.mptcp.session.as_ref()?.remote_idsn()?;
            let d = DataRecv::new(idsn.wrapping_add(1));
            self.mptcp.rx = Some(Box::new(MpRx::new(Some(d))));
        }
        self.mptcp.rx.as_deref_mut()
    }

    /// RFC 8684 §3.7: the peer's infinite mapping, from subflow offset
    /// `start` (DSN `dsn`) on.
    pub(super) fn mptcp_rx_infinite(&mut self, start: u32, dsn: RxDsn) {
        if let Some(x) = self.mptcp_rx_meta() {
            x.maps.set_infinite(start, dsn);
        }
    }

    /// Our infinite mapping went out: the peer's bytes after its last
    /// mapping run on one to one (`RxMaps::follow_tail`).
    pub(super) fn mptcp_rx_follow_tail(&mut self) {
        if let Some(x) = self.mptcp_rx_meta() {
            x.maps.follow_tail();
        }
    }

    /// The peer fell back without its infinite mapping reaching us: one is
    /// implied where its mappings end. False when none ever came.
    pub(super) fn mptcp_rx_infinite_at_tail(&mut self) -> bool {
        self.mptcp_rx_meta()
            .is_some_and(|x| x.maps.set_infinite_at_tail())
    }

    /// After the infinite mapping, the subflow's FIN (at subflow offset
    /// `rel`) is the end of the data stream.
    pub(super) fn mptcp_rx_fin_at(&mut self, rel: u32) {
        if let Some(x) = self.mptcp.rx.as_deref_mut() {
            if let (Some(d), Some(dsn)) = (x.data.as_mut(), x.maps.infinite_dsn(rel)) {
                d.note_fin(dsn);
            }
        }
    }

    /// A joined subflow's receive state (set up when it is accepted).
    pub(super) fn mptcp_rx_joined(&mut self) {
        self.mptcp.rx = Some(Box::new(MpRx::new(None)));
    }

    /// Remember a received mapping and DATA_FIN (both subflow kinds).
    pub(super) fn mptcp_note(
        &mut self,
        mapping: Option<RxMapping>,
        data_fin: Option<RxDsn>,
    ) -> MapVerdict {
        let joined = self.mptcp.join.is_some();
        let x = if joined {
            self.mptcp.rx.as_deref_mut()
        } else if mapping.is_some() || data_fin.is_some() {
            self.mptcp_rx_meta()
        } else {
            None
        };
        let Some(x) = x else { return MapVerdict::Ok };
        if let Some(f) = data_fin {
            match &mut x.data {
                Some(d) => d.note_fin(f),
                None => x.out_fin = Some(f),
            }
        }
        let Some(m) = mapping else {
            return MapVerdict::Ok;
        };
        match x.maps.note(m) {
            Ok(()) => MapVerdict::Ok,
            Err(MapError::Full) => MapVerdict::Drop,
            Err(_) => {
                self.stats.mptcp_mapping_mismatches += 1;
                MapVerdict::Invalid
            }
        }
    }

    /// Move the subflow's in-order data to the data level (or, on a
    /// joined subflow, to `out` for the connection), each frame mapped to
    /// its DSN. Returns false when bytes had no valid mapping (RFC 8684
    /// §3.3.1: the subflow is reset).
    pub(super) fn mptcp_drain(&mut self) -> bool {
        let Some(x) = self.mptcp.rx.as_deref_mut() else {
            return true;
        };
        let limit = self.rcv.buf;
        let meta = x.data.is_some();
        let mut got = DataIn::default();
        let mut ok = true;
        while let Some(p) = self.rcv.queue.pop_inorder(usize::MAX) {
            let len = p.len() as u32;
            match x.maps.take(len) {
                Ok((dsn, n)) if n == len => match &mut x.data {
                    Some(d) => {
                        let r = d.insert(dsn, p, limit);
                        got.absorb(&r);
                        if r.invalid {
                            ok = false;
                            break;
                        }
                    }
                    None => x.out.push_back((dsn, p)),
                },
                // Bytes without a mapping, or a frame spanning mappings
                // whose DSNs do not run on: invalid (a frame holds one
                // contiguous range of the data level).
                _ => {
                    ok = false;
                    break;
                }
            }
        }
        if meta && self.mp_seen_data(got) {
            self.rcv.ack_now = true;
        }
        // The peer's DATA_FIN reached on this first subflow, ours DATA_ACKed
        // and our FIN ACKed: the connection is done (`mptcp_first_done`:
        // only TIME-WAIT is entered from FIN-WAIT-2, safe mid-segment).
        if meta && self.state == crate::tcp::State::FinWait2 {
            self.mptcp_first_done();
        }
        if !ok {
            self.stats.mptcp_mapping_mismatches += 1;
        }
        ok
    }

    /// Account for what reached the data level; the DATA_FIN reached in
    /// order is the application's end of data. Returns whether the Data
    /// ACK should go out at once (on the subflow the data came by).
    fn mp_seen_data(&mut self, got: DataIn) -> bool {
        let s = &mut self.stats;
        s.mptcp_data_dups += got.dup as u64;
        s.mptcp_data_ooo += got.ooo as u64;
        if got.advanced > 0 {
            self.events.insert(ConnEvents::READABLE);
        }
        // As RFC 5681 §4.2 for a subflow: the peer learns of a gap, or of
        // its filling, from the Data ACK at once.
        let mut ack = got.ooo || got.filled_hole || got.dup;
        let Some(d) = self.mptcp.rx.as_deref_mut().and_then(|x| x.data.as_mut()) else {
            return ack;
        };
        // Out-of-order data holds all the data level's memory (its slack
        // for data within the advertised edge too), the window is shut,
        // and nothing in order waits for the application (or in-order
        // data just came, `mptcp_fills_data_hole`): the hole's bytes
        // could never come in, being beyond every subflow's window. Drop
        // the out-of-order data, as Linux prunes its out-of-order queue
        // under memory pressure, so the window opens; the peer's
        // data-level retransmission brings it again.
        let shut = d.buf.has_ooo() && d.buf.window(self.rcv.buf * EDGE_SLACK) == 0;
        if shut && (got.advanced > 0 || d.buf.available() == 0) {
            d.buf.clear_ooo();
            d.buf.mem_drops += 1;
        }
        s.mptcp_data_mem_drops = d.buf.mem_drops;
        let nxt = d.nxt;
        let fin = d.fin_reached();
        if let Some(m) = &mut self.mptcp.session {
            m.set_data_hint(nxt);
        }
        if fin {
            self.events.insert(ConnEvents::READ_CLOSED);
            ack = true;
        }
        self.mptcp_republish();
        ack
    }

    /// Queue a segment's payload in the subflow's receive queue (see
    /// `RecvBuffer::insert`). On an MPTCP subflow, collapsing under
    /// memory pressure joins segments only where the peer's mappings run
    /// on: a frame spanning two mappings whose DSNs do not would be
    /// taken for an invalid mapping at the data level, and the subflow
    /// reset (`mptcp_drain`).
    pub(super) fn rcvq_insert(
        &mut self,
        seq: SeqNumber,
        payload: Pkt<F>,
        wnd_end: SeqNumber,
    ) -> Inserted {
        let limit = self.rcv.buf;
        let base = self.rcv.irs.0.wrapping_add(1);
        match self.mptcp.rx.as_deref() {
            Some(x) => {
                let maps = &x.maps;
                let may_join = |s: SeqNumber| maps.runs_on(s.0.wrapping_sub(base));
                self.rcv
                    .queue
                    .insert_gated(seq, payload, wnd_end, limit, &may_join)
            }
            None => self.rcv.queue.insert(seq, payload, wnd_end, limit),
        }
    }

    /// RFC 8684 §3.3.4: "such a check is done using only the
    /// connection-level window": where the connection-level window ends
    /// for this segment's bytes, as a subflow sequence number, from the
    /// DSN its mapping gives them (`None`: unknown). A subflow's data is
    /// acceptable up to there even beyond the subflow's own advertised
    /// window (the peer learnt the edge on another subflow; Linux sends
    /// up to it on any subflow, `MPTcpExtSndWndShared`). The data
    /// level's next byte is always taken whole: the data level makes room
    /// for in-order data by dropping out-of-order data (`mp_seen_data`),
    /// so a window shut by out-of-order data behind a hole (a dead
    /// path's) cannot keep the hole's reinjection out for good.
    pub(super) fn mptcp_window_end(
        &self,
        seg: &crate::tcp::TcpRepr,
        len: usize,
    ) -> Option<SeqNumber> {
        let x = self.mptcp.rx.as_deref()?;
        let whole = seg.seq + len;
        // Out-of-order data alone holds the data level's memory: it is
        // dropped for anything that comes (`mp_seen_data`).
        if let Some(d) = &x.data {
            if d.buf.has_ooo() && d.buf.available() == 0 {
                return Some(whole);
            }
        }
        let (next, edge) = self.mptcp_level_edge()?;
        let rel = seg.seq.0.wrapping_sub(self.rcv.irs.0.wrapping_add(1));
        let own = crate::mptcp::session::mapping_in(seg.options.mptcp.as_slice());
        let dsn = own
            .and_then(|m| {
                let off = rel.wrapping_sub(m.start);
                (off < m.len).then(|| m.dsn.plus(off as u64))
            })
            .or_else(|| x.maps.dsn_at(rel))?
            .widen(next);
        if dsn == next {
            return Some(whole);
        }
        // Data-level duplicates (below `next`) are within it too: the
        // subflow must take them to move on; the data level trims them.
        let room = edge.wrapping_sub(dsn) as i64;
        (room > 0).then(|| seg.seq + room.min(1 << 30) as usize)
    }

    /// The data level's next byte and the connection-level right edge
    /// (here, or as a joined subflow was last told).
    fn mptcp_level_edge(&self) -> Option<(u64, u64)> {
        let x = self.mptcp.rx.as_deref()?;
        match (&x.data, x.meta_ack) {
            (Some(d), _) => {
                let now = d.ack().wrapping_add(d.buf.window(self.rcv.buf) as u64);
                Some((d.nxt, later(d.edge, now)))
            }
            (None, Some(a)) => Some((a, x.meta_edge)),
            (None, None) => None,
        }
    }

    /// The connection-level window as seen from the data level's next
    /// byte (RFC 8684 §3.3.4: the largest DATA_ACK + window offered on
    /// any subflow, less what arrived): how far beyond RCV.NXT the peer
    /// may have sent on this subflow, since it sends up to the
    /// connection's edge on any of them (Linux's `SndWndShared`). A pure
    /// ACK carries no mapping to check; `None` without MPTCP data.
    pub(super) fn mptcp_conn_room(&self) -> Option<usize> {
        let (next, edge) = self.mptcp_level_edge()?;
        let room = edge.wrapping_sub(next) as i64;
        Some(room.clamp(0, 1 << 30) as usize)
    }

    /// Collapse the subflow's receive queue (as `rcvq_insert` does).
    pub(super) fn rcvq_collapse(&mut self) {
        let base = self.rcv.irs.0.wrapping_add(1);
        match self.mptcp.rx.as_deref() {
            Some(x) => {
                let maps = &x.maps;
                self.rcv
                    .queue
                    .collapse_gated(&|s: SeqNumber| maps.runs_on(s.0.wrapping_sub(base)));
            }
            None => self.rcv.queue.collapse(),
        }
    }

    /// The joined subflow's mapped data and DATA_FIN for the connection
    /// (the stack moves them; `q` is handed back empty with
    /// [`Connection::mptcp_return_queue`] to keep its capacity).
    pub fn mptcp_take_joined(&mut self) -> Option<(MappedQueue<F>, Option<RxDsn>)> {
        let x = self.mptcp.rx.as_deref_mut()?;
        if x.data.is_some() || x.out.is_empty() && x.out_fin.is_none() {
            return None;
        }
        Some((std::mem::take(&mut x.out), x.out_fin.take()))
    }

    /// Hand an emptied queue back (see `mptcp_take_joined`).
    pub fn mptcp_return_queue(&mut self, q: MappedQueue<F>) {
        if let Some(x) = self.mptcp.rx.as_deref_mut() {
            if x.out.is_empty() {
                x.out = q;
            }
        }
    }

    /// Data a joined subflow received, into the data level (drained from
    /// `q`). Returns `(valid, ack_now)`: false when a DSN was invalid (the
    /// caller resets the joined subflow); whether the joined subflow
    /// should send the Data ACK at once.
    pub fn mptcp_data_in(&mut self, q: &mut MappedQueue<F>, fin: Option<RxDsn>) -> (bool, bool) {
        let limit = self.rcv.buf;
        let Some(d) = self.mptcp_rx_meta().and_then(|x| x.data.as_mut()) else {
            q.clear();
            return (true, false);
        };
        if let Some(f) = fin {
            d.note_fin(f);
        }
        let mut got = DataIn::default();
        let mut ok = true;
        for (dsn, p) in q.drain(..) {
            let r = d.insert(dsn, p, limit);
            got.absorb(&r);
            ok &= !r.invalid;
        }
        self.stats.mptcp_joined_bytes += got.advanced as u64;
        self.stats.mptcp_mapping_mismatches += !ok as u64;
        let ack = self.mp_seen_data(got);
        // Without its first subflow, the peer's DATA_FIN moves the
        // connection's state (`mptcp_first`).
        self.mptcp_meta_advance();
        self.mptcp_first_done();
        (ok, ack)
    }

    /// Send an ACK on the next `poll_transmit` (a joined subflow carrying
    /// news of the data level).
    pub fn mptcp_ack_now(&mut self) {
        self.rcv.ack_now = true;
    }

    /// The connection's DATA_ACK and free receive window (RFC 8684
    /// §3.3.4: one window for all subflows, relative to the DATA_ACK), for
    /// its joined subflows, which may advertise it: its edge is recorded.
    /// Published for joined subflows in the worker's other stacks too
    /// (`mptcp_level`).
    pub fn mptcp_data_level(&mut self) -> Option<DataLevelView> {
        let v = self.mptcp_level_now()?;
        self.mptcp_publish(v);
        Some(v)
    }

    /// See `mptcp_data_level`: the level now, its edge recorded.
    fn mptcp_level_now(&mut self) -> Option<DataLevelView> {
        let limit = self.rcv.buf;
        match self.mptcp.rx.as_deref_mut() {
            Some(x) => {
                let d = x.data.as_mut()?;
                let window = d.buf.window(limit);
                let edge = d.advertise_edge(window);
                Some(DataLevelView {
                    ack: d.ack(),
                    window,
                    edge,
                    rcv_buf: limit,
                })
            }
            // No data yet: the data level starts at the peer's IDSN + 1.
            None => {
                let m = self.mptcp.session.as_ref().filter(|m| m.is_mptcp())?;
                let ack = m.remote_idsn()?.wrapping_add(1);
                let window = self.rcv.queue.window(limit);
                Some(DataLevelView {
                    ack,
                    window,
                    edge: ack.wrapping_add(window as u64),
                    rcv_buf: limit,
                })
            }
        }
    }

    /// A joined subflow learns the connection's DATA_ACK, window and edge.
    /// From messages and from the connection's cell (`mptcp_level`), which
    /// may be newer than the messages still on their way: it only moves
    /// forward (RFC 8684 §3.3.4: the DATA_ACK and the edge only grow).
    pub fn mptcp_set_data_level(&mut self, v: DataLevelView) {
        // Its own buffer (out-of-order data) follows the connection's.
        self.rcv.buf = self.rcv.buf.max(v.rcv_buf.min(self.cfg.rcv_buf_max));
        if let Some(x) = self.mptcp.rx.as_deref_mut() {
            x.meta_edge = match x.meta_ack {
                Some(_) => later(x.meta_edge, v.edge),
                None => v.edge,
            };
            // The window goes with its DATA_ACK (advertised from it): an
            // older DATA_ACK's pair leaves the newer one in place.
            if x.meta_ack.is_none_or(|a| later(a, v.ack) == v.ack) {
                x.meta_ack = Some(v.ack);
                x.meta_window = v.window;
            }
        }
    }

    /// The first subflow advertised `wnd` bytes: the connection-level
    /// edge it names (from the DATA_ACK) is one the peer may send up to.
    pub(super) fn mptcp_note_advertised(&mut self, wnd: usize) {
        if let Some(d) = self.mptcp.rx.as_deref_mut().and_then(|x| x.data.as_mut()) {
            d.advertise_edge(wnd);
        }
        // The peer may now send up to it on a subflow of another stack.
        self.mptcp_republish();
    }

    /// The window this subflow may advertise from the data level's free
    /// space (RFC 8684 §3.3.4): the least of its own and the
    /// connection's.
    pub(super) fn mptcp_window_cap(&self, w: usize) -> usize {
        match self.mptcp.rx.as_deref() {
            Some(x) => match &x.data {
                Some(d) => w.min(d.buf.window(self.rcv.buf)),
                None => w.min(x.meta_window),
            },
            None => w,
        }
    }

    /// The DATA_ACK to send on this subflow, if known.
    pub(super) fn mptcp_data_ack(&self) -> Option<u64> {
        match self.mptcp.rx.as_deref() {
            Some(x) => match &x.data {
                Some(d) => Some(d.ack()),
                None => x.meta_ack,
            },
            None => self
                .mptcp
                .session
                .as_ref()?
                .remote_idsn()
                .map(|i| i.wrapping_add(1)),
        }
    }

    /// The data level's queue, if this is an MPTCP connection with one.
    pub(super) fn mptcp_data_mut(&mut self) -> Option<&mut RecvBuffer<F>> {
        Some(&mut self.mptcp.rx.as_deref_mut()?.data.as_mut()?.buf)
    }

    pub(super) fn mptcp_data(&self) -> Option<&RecvBuffer<F>> {
        Some(&self.mptcp.rx.as_deref()?.data.as_ref()?.buf)
    }

    /// Whether the peer's DATA_FIN was reached (the end of data).
    pub(super) fn mptcp_data_fin_done(&self) -> bool {
        self.mptcp
            .rx
            .as_deref()
            .and_then(|x| x.data.as_ref())
            .is_some_and(|d| d.fin_done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::test_frame::VecFrame as V;

    /// A 1,000-byte segment at DSN `dsn` in a 2,048-byte frame.
    fn seg(dsn: u64) -> (RxDsn, Pkt<V>) {
        let at = RxDsn {
            value: dsn,
            wide: true,
        };
        (at, Pkt::new(V(vec![0u8; 2048]), 66, 1066))
    }

    #[test]
    fn data_within_the_advertised_edge_is_not_dropped_for_memory() {
        // Eight frames of budget; a window of 30,000 bytes was advertised
        // (at a better payload ratio than these segments have). Another
        // subflow brings 14 segments out of order, each after a hole (so
        // none can be collapsed with the next): every one was
        // acknowledged by its subflow, and all are kept (loadgen over two
        // workers stalled 1-2 s on such drops, waiting for Linux's
        // data-level retransmission).
        let limit = 8 * 2048;
        let mut d = DataRecv::<V>::new(0);
        d.advertise_edge(30_000);
        for i in 1..15 {
            let (at, p) = seg(i * 2000);
            assert!(!d.insert(at, p, limit).dropped, "segment {i} dropped");
        }
        let (at, p) = seg(0);
        let r = d.insert(at, p, limit);
        assert!(!r.dropped);
        assert_eq!(r.advanced, 1000);
        assert_eq!(d.buf.mem(), 15 * 2048);
        // Beyond the advertised edge the budget holds as before.
        let (at, p) = seg(31_000);
        assert!(d.insert(at, p, limit).dropped);
    }
}
