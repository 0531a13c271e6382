//! The TCP connection table: a slab of connections addressed by [`ConnId`]
//! (index + generation, so a stale id never reaches a reused slot) and a
//! hash map from the 4-tuple to the slot for demux.

use super::hasher::{KeyedHasher, Map};
use super::tx_template::L2L3Template;
use super::ConnId;
use crate::io::Frame;
use crate::tcp::{Connection, FourTuple, SeqNumber, State, TcpRepr};
use crate::time::Instant;

/// A connection and what the stack knows about it.
pub(crate) struct ConnEntry<F: Frame> {
    pub conn: Connection<F>,
    pub tuple: FourTuple,
    /// The listening port of a passive open.
    pub listener: Option<u16>,
    /// Counted in its listener's SYN backlog (still SYN-RECEIVED).
    pub half_open: bool,
    /// The application holds the id (active open, or `Accepted` delivered).
    pub visible: bool,
    /// The handshake completed once.
    pub connected: bool,
    /// `Closed` was delivered while the connection lingers in TIME-WAIT:
    /// invisible to the application, removed when its timer ends.
    pub detached: bool,
    /// The application called `shutdown` (no more `send`).
    pub shutdown: bool,
    /// The application called `abort`.
    pub aborted: bool,
    /// In the stack's dirty list (poll_transmit pending).
    pub dirty: bool,
    /// A `Readable` / `Writable` event is queued and not yet taken: no
    /// duplicate is queued (one per connection per batch, and the event
    /// queue stays O(connections)).
    pub readable_queued: bool,
    pub writable_queued: bool,
    /// Deadline of this connection's live timer-wheel entry.
    pub armed_at: Option<Instant>,
    /// The end of the peer's FIN in sequence space (= RCV.NXT after it) and
    /// the TSval it carried: what a new SYN must be beyond to reopen the
    /// 4-tuple from TIME-WAIT (RFC 6191).
    pub fin_end: Option<SeqNumber>,
    pub fin_tsval: Option<u32>,
    /// In the stack's list of connections waiting for TX frames.
    pub pool_waiting: bool,
    /// Counted in the stack's TIME-WAIT total.
    pub in_time_wait: bool,
    /// Forward progress (bytes acked + bytes received in order) and RTOs
    /// already reported to ARP, and when progress last confirmed the
    /// neighbour (see `conns::nud_feedback`).
    pub nud_seen: (u64, u64),
    pub nud_confirmed: Option<Instant>,
    /// Its Ethernet and IPv4 headers, prebuilt for every segment it emits.
    pub head: L2L3Template,
    /// MPTCP (RFC 8684 §3.2): an extra subflow the peer joined to this
    /// connection (the one holding the token). Never shown to the
    /// application, which sees the connection only.
    pub subflow_of: Option<super::ConnId>,
    /// ... or to a connection of another stack of the same worker (its
    /// index in the worker's stacks, and the connection there).
    pub foreign_of: Option<(usize, super::ConnId)>,
    /// ... or to a connection of another worker (`mptcp_remote`).
    pub remote_of: Option<super::mptcp_remote::RemoteOf>,
    /// With `foreign_of` or `remote_of`: the connection's data level as
    /// it publishes it, read before each segment (RFC 8684 §3.3.4,
    /// `mptcp_refresh_level`); it follows the connection between workers.
    pub level: Option<std::sync::Arc<crate::tcp::conn::LevelCell>>,
    /// An MPTCP connection we opened, whose path manager has not started
    /// yet (`mptcp_pm`).
    pub pm_wait: bool,
    /// An MPTCP connection's other subflows were told to close.
    pub subflows_closed: bool,
    /// Segments of this flow handed over by other workers lately, and
    /// when the last came (`mptcp_migrate`).
    pub strays: (u16, Option<Instant>),
    /// When it moved here from another worker, if it did.
    pub moved_at: Option<Instant>,
}

impl<F: Frame> ConnEntry<F> {
    /// A joined subflow whose connection is in another stack of the
    /// worker or in another worker.
    pub(crate) fn is_joined(&self) -> bool {
        self.foreign_of.is_some() || self.remote_of.is_some()
    }

    /// A segment of this flow was handed over by another worker at `now`:
    /// how many came so far each within `STRAY_GAP` of the previous one.
    pub(crate) fn note_stray(&mut self, now: Instant) -> u16 {
        let (n, last) = self.strays;
        let gap = super::mptcp_migrate::STRAY_GAP;
        let n = if last.is_some_and(|l| now.saturating_since(l) <= gap) {
            n.saturating_add(1)
        } else {
            1
        };
        self.strays = (n, Some(now));
        n
    }

    /// An MPTCP connection (not a subflow of one) whose other subflows
    /// have not been told to close yet.
    pub(crate) fn mptcp_meta_open(&self) -> bool {
        !self.subflows_closed
            && self.subflow_of.is_none()
            && !self.is_joined()
            && self.conn.mptcp().is_some_and(|m| m.is_mptcp())
    }

    pub(crate) fn new(conn: Connection<F>, tuple: FourTuple, listener: Option<u16>) -> Self {
        ConnEntry {
            conn,
            tuple,
            listener,
            half_open: false,
            visible: false,
            connected: false,
            detached: false,
            shutdown: false,
            aborted: false,
            dirty: false,
            readable_queued: false,
            writable_queued: false,
            armed_at: None,
            fin_end: None,
            fin_tsval: None,
            pool_waiting: false,
            in_time_wait: false,
            nud_seen: (0, 0),
            nud_confirmed: None,
            head: L2L3Template::default(),
            subflow_of: None,
            foreign_of: None,
            remote_of: None,
            level: None,
            pm_wait: false,
            subflows_closed: false,
            strays: (0, None),
            moved_at: None,
        }
    }
}

impl<F: Frame> ConnEntry<F> {
    /// A segment with FIN went into the connection, which was in `before`:
    /// if this very segment made it take the FIN, remember where the peer's
    /// sequence space ends (the FIN was in order, so that is RCV.NXT now).
    pub(crate) fn note_fin(&mut self, before: State, seg: &TcpRepr, payload_len: usize) {
        let took_fin = |s: State| {
            matches!(
                s,
                State::CloseWait | State::Closing | State::LastAck | State::TimeWait
            )
        };
        if !took_fin(before) && took_fin(self.conn.state()) {
            self.fin_end = Some(seg.seq + seg.seg_len(payload_len));
            self.fin_tsval = seg.options.timestamps.map(|(v, _)| v);
        }
    }
}

struct Slot<F: Frame> {
    generation: u32,
    entry: Option<ConnEntry<F>>,
}

/// Slots per chunk of the slab (a connection is about 2.5 KB: a chunk is
/// about 640 KB).
const CHUNK: usize = 256;

pub(crate) struct ConnTable<F: Frame> {
    /// The slab, in chunks that never move: growing it allocates one more
    /// chunk and copies nothing (a `Vec` of slots doubled, copying tens of
    /// megabytes and faulting in twice that, in the middle of a burst of
    /// connections: `veth_datapath`'s burst of 16,000). Every slot of a
    /// chunk is written when the chunk is made, so its pages are faulted
    /// in then, not by the connections that later use it.
    chunks: Vec<Box<[Slot<F>; CHUNK]>>,
    /// Slots handed out so far (live or free); the rest of the last chunk
    /// is unused.
    used: usize,
    free: Vec<u32>,
    map: Map<TupleKey, u32>,
    /// The tuple `lookup` found last and its slot (see there).
    last: core::cell::Cell<Option<(TupleKey, u32)>>,
    /// Tuples inserted (true) and removed (false) since the last drain, if
    /// the runtime asked for it (its flow directory).
    pub(crate) flow_log: Option<Vec<(FourTuple, bool)>>,
}

/// The tuple map's key: the 4-tuple packed into one 96-bit word, hashed
/// with one write (one keyed multiply of foldhash) and compared in one
/// test. The derived `Hash` of `FourTuple` feeds the hasher field by
/// field (each address as a length-prefixed byte slice, each port):
/// several rounds for every segment's lookup. The packing is one-to-one,
/// so the map holds exactly what a `FourTuple` key would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct TupleKey(u128);

impl TupleKey {
    #[inline(always)]
    fn of(t: &FourTuple) -> Self {
        let ip = |a: &core::net::SocketAddrV4| u128::from(a.ip().to_bits());
        TupleKey(
            ip(&t.remote) << 64
                | u128::from(t.remote.port()) << 48
                | u128::from(t.local.port()) << 32
                | ip(&t.local),
        )
    }
}

impl core::hash::Hash for TupleKey {
    #[inline(always)]
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        h.write_u128(self.0);
    }
}

/// A chunk of free slots, made on the heap (640 KB would not fit a
/// stack), typed by its length so that an index within it needs no
/// bounds check.
fn new_chunk<F: Frame>() -> Box<[Slot<F>; CHUNK]> {
    let slots: Box<[Slot<F>]> = (0..CHUNK)
        .map(|_| Slot {
            generation: 0,
            entry: None,
        })
        .collect();
    match slots.try_into() {
        Ok(chunk) => chunk,
        Err(_) => unreachable!("CHUNK slots were made"),
    }
}

impl<F: Frame> ConnTable<F> {
    /// A table with room for `prealloc` connections made up front: their
    /// slots (and their share of the tuple map) are allocated and faulted
    /// in now, so that a burst of that many new connections allocates
    /// nothing. 0: everything grows on demand.
    pub(crate) fn new(hasher: KeyedHasher, prealloc: usize) -> Self {
        let chunks = (0..prealloc.div_ceil(CHUNK)).map(|_| new_chunk()).collect();
        ConnTable {
            chunks,
            used: 0,
            free: Vec::with_capacity(prealloc),
            map: Map::with_capacity_and_hasher(prealloc, hasher),
            last: core::cell::Cell::new(None),
            flow_log: None,
        }
    }

    #[inline]
    fn slot(&self, index: usize) -> Option<&Slot<F>> {
        Some(&self.chunks.get(index / CHUNK)?[index % CHUNK])
    }

    #[inline]
    fn slot_mut(&mut self, index: usize) -> Option<&mut Slot<F>> {
        Some(&mut self.chunks.get_mut(index / CHUNK)?[index % CHUNK])
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn lookup(&self, tuple: &FourTuple) -> Option<ConnId> {
        let key = TupleKey::of(tuple);
        // The last connection found: a burst of segments of one flow (a
        // receive batch, a request/response exchange) skips the hash and
        // the probe. It always names a live entry of that tuple (`remove`
        // forgets it).
        let index = match self.last.get() {
            Some((k, i)) if k == key => i,
            _ => {
                let &i = self.map.get(&key)?;
                self.last.set(Some((key, i)));
                i
            }
        };
        let generation = self.slot(index as usize)?.generation;
        Some(ConnId { index, generation })
    }

    pub(crate) fn contains(&self, tuple: &FourTuple) -> bool {
        self.map.contains_key(&TupleKey::of(tuple))
    }

    /// Insert a connection; its tuple must not be in the table.
    pub(crate) fn insert(&mut self, entry: ConnEntry<F>) -> ConnId {
        debug_assert!(!self.map.contains_key(&TupleKey::of(&entry.tuple)));
        let tuple = entry.tuple;
        let index = match self.free.pop() {
            Some(i) => i as usize,
            None => {
                if self.used == self.chunks.len() * CHUNK {
                    self.chunks.push(new_chunk());
                }
                self.used += 1;
                self.used - 1
            }
        };
        let chunk = &mut self.chunks[index / CHUNK];
        let slot = &mut chunk[index % CHUNK];
        slot.entry = Some(entry);
        let generation = slot.generation;
        self.map.insert(TupleKey::of(&tuple), index as u32);
        if let Some(log) = &mut self.flow_log {
            log.push((tuple, true));
        }
        ConnId {
            index: index as u32,
            generation,
        }
    }

    #[inline]
    pub(crate) fn get(&self, id: ConnId) -> Option<&ConnEntry<F>> {
        let s = self.slot(id.index as usize)?;
        if s.generation != id.generation {
            return None;
        }
        s.entry.as_ref()
    }

    #[inline]
    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut ConnEntry<F>> {
        let s = self.slot_mut(id.index as usize)?;
        if s.generation != id.generation {
            return None;
        }
        s.entry.as_mut()
    }

    /// Two different live connections at once (an MPTCP connection and one
    /// of its subflows).
    pub(crate) fn get2_mut(
        &mut self,
        a: ConnId,
        b: ConnId,
    ) -> Option<(&mut ConnEntry<F>, &mut ConnEntry<F>)> {
        let (i, j) = (a.index as usize, b.index as usize);
        if i == j || i >= self.used || j >= self.used {
            return None;
        }
        let (x, y) = if i < j {
            two_mut(&mut self.chunks, i, j)
        } else {
            let (y, x) = two_mut(&mut self.chunks, j, i);
            (x, y)
        };
        if x.generation != a.generation || y.generation != b.generation {
            return None;
        }
        Some((x.entry.as_mut()?, y.entry.as_mut()?))
    }

    /// Slots in the slab (live or free): the range of [`Self::entry_at_mut`].
    pub(crate) fn slot_count(&self) -> usize {
        self.used
    }

    /// Every live connection.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ConnEntry<F>> {
        self.slots().filter_map(|s| s.entry.as_ref())
    }

    /// The slots handed out so far, in index order.
    fn slots(&self) -> impl Iterator<Item = &Slot<F>> {
        self.chunks.iter().flat_map(|c| c.iter()).take(self.used)
    }

    /// The ids of the live connections.
    pub(crate) fn ids(&self) -> impl Iterator<Item = ConnId> + '_ {
        self.slots().enumerate().filter_map(|(i, s)| {
            s.entry.as_ref().map(|_| ConnId {
                index: i as u32,
                generation: s.generation,
            })
        })
    }

    /// The live connection in slot `index`, if any.
    pub(crate) fn entry_at_mut(&mut self, index: usize) -> Option<&mut ConnEntry<F>> {
        if index >= self.used {
            return None;
        }
        self.slot_mut(index)?.entry.as_mut()
    }

    /// Remove a connection that moves to another worker's table: the
    /// flow log does not see it go (the flow directory keeps naming this
    /// worker until the other one records it).
    pub(crate) fn detach(&mut self, id: ConnId) -> Option<ConnEntry<F>> {
        let log = self.flow_log.take();
        let e = self.remove(id);
        self.flow_log = log;
        e
    }

    /// Withdraw the flow log's record of `tuple`'s insertion, if not
    /// drained yet (a connection taken back out at once, see
    /// `Stack::tcp_migrate_uninstall`).
    pub(crate) fn unlog_open(&mut self, tuple: &FourTuple) {
        if let Some(log) = &mut self.flow_log {
            if let Some(i) = log.iter().rposition(|r| *r == (*tuple, true)) {
                log.remove(i);
            }
        }
    }

    /// Remove a connection; its id (and every copy) becomes stale.
    pub(crate) fn remove(&mut self, id: ConnId) -> Option<ConnEntry<F>> {
        let s = self.slot_mut(id.index as usize)?;
        if s.generation != id.generation {
            return None;
        }
        let e = s.entry.take()?;
        s.generation = s.generation.wrapping_add(1);
        let key = TupleKey::of(&e.tuple);
        self.map.remove(&key);
        if self.last.get().is_some_and(|(k, _)| k == key) {
            self.last.set(None);
        }
        self.free.push(id.index);
        if let Some(log) = &mut self.flow_log {
            log.push((e.tuple, false));
        }
        Some(e)
    }
}

/// Slots `i < j` of the chunked slab, both mutable.
fn two_mut<F: Frame>(
    chunks: &mut [Box<[Slot<F>; CHUNK]>],
    i: usize,
    j: usize,
) -> (&mut Slot<F>, &mut Slot<F>) {
    let (ci, cj) = (i / CHUNK, j / CHUNK);
    if ci == cj {
        let (l, r) = chunks[ci].split_at_mut(j % CHUNK);
        (&mut l[i % CHUNK], &mut r[0])
    } else {
        let (l, r) = chunks.split_at_mut(cj);
        (&mut l[ci][i % CHUNK], &mut r[0][j % CHUNK])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mem::HeapFrame;
    use crate::tcp::{Config, Connection};
    use std::net::{Ipv4Addr, SocketAddrV4};

    /// The packed key is one-to-one: tuples that differ in any one field
    /// (or only by swapping local and remote) get different keys, and
    /// each finds only its own connection.
    #[test]
    fn tuple_key_tells_every_field_apart() {
        let a = |o: [u8; 4], p| SocketAddrV4::new(Ipv4Addr::from(o), p);
        let base = FourTuple {
            local: a([198, 18, 0, 2], 7),
            remote: a([198, 18, 0, 1], 40000),
        };
        let variants = [
            base,
            FourTuple {
                local: a([198, 18, 0, 3], 7),
                ..base
            },
            FourTuple {
                local: a([198, 18, 0, 2], 8),
                ..base
            },
            FourTuple {
                remote: a([198, 19, 0, 1], 40000),
                ..base
            },
            FourTuple {
                remote: a([198, 18, 0, 1], 40001),
                ..base
            },
            FourTuple {
                local: base.remote,
                remote: base.local,
            },
            FourTuple {
                local: a([255, 255, 255, 255], 65535),
                remote: a([0, 0, 0, 0], 0),
            },
            FourTuple {
                local: a([0, 0, 0, 0], 0),
                remote: a([255, 255, 255, 255], 65535),
            },
        ];
        let keys: std::collections::HashSet<u128> =
            variants.iter().map(|t| TupleKey::of(t).0).collect();
        assert_eq!(keys.len(), variants.len());
        let mut t = table(0);
        let ids: Vec<ConnId> = variants
            .iter()
            .map(|&v| {
                let c = Connection::connect(&Config::default(), v, SeqNumber(1), Instant::ZERO);
                t.insert(ConnEntry::new(c, v, None))
            })
            .collect();
        for (v, id) in variants.iter().zip(&ids) {
            assert_eq!(t.lookup(v), Some(*id));
        }
    }

    fn tuple(port: u16) -> FourTuple {
        FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 7),
            remote: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), port),
        }
    }

    fn entry(port: u16) -> ConnEntry<HeapFrame> {
        let t = tuple(port);
        let c = Connection::connect(&Config::default(), t, SeqNumber(1), Instant::ZERO);
        ConnEntry::new(c, t, None)
    }

    fn table(prealloc: usize) -> ConnTable<HeapFrame> {
        ConnTable::new(KeyedHasher::new(&[9; 16], 2), prealloc)
    }

    #[test]
    fn preallocated_chunks_hold_the_connections_asked_for() {
        let t = table(CHUNK + 1);
        assert_eq!(t.chunks.len(), 2);
        assert_eq!(t.slot_count(), 0);
        assert_eq!(table(0).chunks.len(), 0);
    }

    #[test]
    fn the_table_grows_past_its_chunks_and_every_id_stays_valid() {
        let mut t = table(CHUNK);
        let n = 3 * CHUNK + 5;
        let ids: Vec<ConnId> = (0..n).map(|i| t.insert(entry(1000 + i as u16))).collect();
        assert_eq!(t.chunks.len(), 4);
        assert_eq!((t.len(), t.slot_count()), (n, n));
        for (i, &id) in ids.iter().enumerate() {
            let port = 1000 + i as u16;
            assert_eq!(t.lookup(&tuple(port)), Some(id));
            assert_eq!(t.get(id).map(|e| e.tuple), Some(tuple(port)));
        }
        // Index order, across chunks.
        let ports: Vec<u16> = t.iter().map(|e| e.tuple.remote.port()).collect();
        assert_eq!(ports, (0..n).map(|i| 1000 + i as u16).collect::<Vec<_>>());
        assert_eq!(t.ids().collect::<Vec<_>>(), ids);
        assert!(t.entry_at_mut(n - 1).is_some());
        assert!(t.entry_at_mut(n).is_none());
    }

    #[test]
    fn a_removed_slot_is_reused_with_a_new_generation() {
        let mut t = table(0);
        let a = t.insert(entry(1));
        let b = t.insert(entry(2));
        assert!(t.remove(a).is_some());
        assert!(t.get(a).is_none() && t.remove(a).is_none());
        let c = t.insert(entry(3));
        assert_eq!(c.index, a.index);
        assert_ne!(c.generation, a.generation);
        assert!(t.get(a).is_none());
        assert_eq!(t.get(b).map(|e| e.tuple), Some(tuple(2)));
        assert_eq!((t.len(), t.slot_count()), (2, 2));
    }

    /// The last-found cache never answers for a connection that is gone:
    /// a tuple looked up, removed and opened again (in the same slot, a
    /// new generation) is found as the new connection; removed, it is not
    /// found at all; another tuple's removal leaves the cache's answer
    /// right.
    #[test]
    fn the_last_found_cache_follows_removals_and_reuse() {
        let mut t = table(0);
        let a = t.insert(entry(1));
        let b = t.insert(entry(2));
        assert_eq!(t.lookup(&tuple(1)), Some(a));
        assert_eq!(t.lookup(&tuple(1)), Some(a));
        t.remove(a);
        assert_eq!(t.lookup(&tuple(1)), None);
        let a2 = t.insert(entry(1));
        assert_eq!(a2.index, a.index);
        assert_eq!(t.lookup(&tuple(1)), Some(a2));
        // Removed while cached, then its slot taken by another tuple.
        t.remove(a2);
        let c = t.insert(entry(3));
        assert_eq!(c.index, a.index);
        assert_eq!(t.lookup(&tuple(1)), None);
        assert_eq!(t.lookup(&tuple(3)), Some(c));
        // Another tuple removed: the cached one still answers.
        assert_eq!(t.lookup(&tuple(2)), Some(b));
        t.remove(c);
        assert_eq!(t.lookup(&tuple(2)), Some(b));
        assert_eq!(t.lookup(&tuple(3)), None);
    }

    #[test]
    fn two_connections_are_borrowed_at_once_within_and_across_chunks() {
        let mut t = table(0);
        let ids: Vec<ConnId> = (0..CHUNK + 2)
            .map(|i| t.insert(entry(i as u16 + 1)))
            .collect();
        for (i, j) in [
            (0, 1),
            (1, 0),
            (3, CHUNK + 1),
            (CHUNK + 1, 3),
            (CHUNK, CHUNK + 1),
        ] {
            let (x, y) = t.get2_mut(ids[i], ids[j]).expect("two live connections");
            assert_eq!(x.tuple, tuple(i as u16 + 1));
            assert_eq!(y.tuple, tuple(j as u16 + 1));
        }
        assert!(t.get2_mut(ids[2], ids[2]).is_none());
        let gone = ids[CHUNK];
        t.remove(gone);
        assert!(t.get2_mut(ids[0], gone).is_none());
    }
}
