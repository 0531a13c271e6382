//! The TCP connection table: a slab of connections addressed by [`ConnId`]
//! (index + generation, so a stale id never reaches a reused slot) and a
//! hash map from the 4-tuple to the slot for demux.

use super::hasher::{KeyedHasher, Map};
use super::ConnId;
use crate::io::Frame;
use crate::tcp::{Connection, FourTuple};
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
    /// Deadline of this connection's live timer-wheel entry.
    pub armed_at: Option<Instant>,
    /// Per-connection counters already added to the stack's sums
    /// (retransmits, rto_timeouts, fast_recoveries).
    pub seen: [u64; 3],
}

impl<F: Frame> ConnEntry<F> {
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
            armed_at: None,
            seen: [0; 3],
        }
    }
}

struct Slot<F: Frame> {
    generation: u32,
    entry: Option<ConnEntry<F>>,
}

pub(crate) struct ConnTable<F: Frame> {
    slots: Vec<Slot<F>>,
    free: Vec<u32>,
    map: Map<FourTuple, u32>,
}

impl<F: Frame> ConnTable<F> {
    pub(crate) fn new(hasher: KeyedHasher) -> Self {
        ConnTable {
            slots: Vec::new(),
            free: Vec::new(),
            map: Map::with_hasher(hasher),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    pub(crate) fn lookup(&self, tuple: &FourTuple) -> Option<ConnId> {
        let &index = self.map.get(tuple)?;
        let generation = self.slots.get(index as usize)?.generation;
        Some(ConnId { index, generation })
    }

    pub(crate) fn contains(&self, tuple: &FourTuple) -> bool {
        self.map.contains_key(tuple)
    }

    /// Insert a connection; its tuple must not be in the table.
    pub(crate) fn insert(&mut self, entry: ConnEntry<F>) -> ConnId {
        debug_assert!(!self.map.contains_key(&entry.tuple));
        let tuple = entry.tuple;
        let index = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize].entry = Some(entry);
                i
            }
            None => {
                self.slots.push(Slot {
                    generation: 0,
                    entry: Some(entry),
                });
                (self.slots.len() - 1) as u32
            }
        };
        self.map.insert(tuple, index);
        ConnId {
            index,
            generation: self.slots[index as usize].generation,
        }
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<&ConnEntry<F>> {
        let s = self.slots.get(id.index as usize)?;
        if s.generation != id.generation {
            return None;
        }
        s.entry.as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut ConnEntry<F>> {
        let s = self.slots.get_mut(id.index as usize)?;
        if s.generation != id.generation {
            return None;
        }
        s.entry.as_mut()
    }

    /// Remove a connection; its id (and every copy) becomes stale.
    pub(crate) fn remove(&mut self, id: ConnId) -> Option<ConnEntry<F>> {
        let s = self.slots.get_mut(id.index as usize)?;
        if s.generation != id.generation {
            return None;
        }
        let e = s.entry.take()?;
        s.generation = s.generation.wrapping_add(1);
        self.map.remove(&e.tuple);
        self.free.push(id.index);
        Some(e)
    }
}
