//! The connection's data level published for its joined subflows in the
//! worker's other stacks and in other workers (RFC 8684 §3.3.4: "such a
//! check is done using only the connection-level window"). A joined
//! subflow checks its incoming data against the connection-level window
//! before its level can come from the connection by the worker's routing
//! between its stacks (`mptcp_route`) or by a message from another worker
//! (`mptcp_remote`'s `Reply`), so the edge the peer may have learnt since
//! on another subflow must reach it without that round: the connection
//! writes its level into a cell each time it changes (advertised, told to
//! a subflow, data in) and the subflow's stack reads it before each of
//! its segments. The cell is the connection's (its TCB holds the `Arc`
//! and takes it along when it moves to another worker); a subflow gets
//! it when it joins (`JoinAnswer`) or becomes one of a connection
//! elsewhere, and keeps it when it moves (`mptcp_migrate`).
//!
//! One writer at a time (the TCB runs on one thread at a time; a move
//! hands it over through a ring, which orders the writes of the two
//! workers); readers on any thread, with no lock. A reader may see a
//! newer level than the messages it has processed, or a mix of two
//! stores; that is sound because
//! - the DATA_ACK and the advertised edge only grow (RFC 8684 §3.3.4,
//!   RFC 9293 §3.8.6: the right edge never moves left), and the subflow
//!   keeps the later of what it knew and what it reads
//!   (`mptcp_set_data_level`): any value read was true once;
//! - the free window is not monotone, but it is only used with the
//!   DATA_ACK it goes with (the subflow advertises DATA_ACK + window).
//!   The writer stores edge, window, DATA_ACK in that order, the last two
//!   with `Release`; the reader loads them in the opposite order, the
//!   first two with `Acquire`. So a reader that takes the DATA_ACK of
//!   store `i` takes the window of a store `j >= i` and the edge of a
//!   store `k >= j`: `ack_i + window_j <= ack_j + window_j <= edge_j <=
//!   edge_k`, an edge the connection recorded as advertised (never
//!   beyond what it can take), and the subflow's own edge covers what it
//!   advertises;
//! - the receive buffer only makes the subflow's own buffer grow (max).
//!
//! On x86 `Release` stores and `Acquire` loads are plain moves: the
//! reader costs a few loads, and plain TCP (no cell) nothing.

use super::mptcp_rx::DataLevelView;
use super::Connection;
use crate::io::Frame;
use std::sync::atomic::{
    AtomicBool, AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::Arc;

/// A connection's DATA_ACK, free window, advertised edge and receive
/// buffer (a [`DataLevelView`]), as last published.
#[derive(Debug, Default)]
pub struct LevelCell {
    set: AtomicBool,
    ack: AtomicU64,
    window: AtomicU64,
    edge: AtomicU64,
    rcv_buf: AtomicU64,
}

impl LevelCell {
    fn store(&self, v: DataLevelView) {
        // Edge, window, DATA_ACK: a reader of one sees the ones stored
        // before it, or newer (the module's doc).
        self.rcv_buf.store(v.rcv_buf as u64, Relaxed);
        self.edge.store(v.edge, Relaxed);
        self.window.store(v.window as u64, Release);
        self.ack.store(v.ack, Release);
        if !self.set.load(Relaxed) {
            self.set.store(true, Release);
        }
    }

    /// The level last published (`None`: not yet), or a newer one's
    /// window and edge with it (see the module's doc).
    pub fn load(&self) -> Option<DataLevelView> {
        if !self.set.load(Acquire) {
            return None;
        }
        let ack = self.ack.load(Acquire);
        let window = self.window.load(Acquire) as usize;
        Some(DataLevelView {
            ack,
            window,
            edge: self.edge.load(Relaxed),
            rcv_buf: self.rcv_buf.load(Relaxed) as usize,
        })
    }
}

impl<F: Frame> Connection<F> {
    /// The cell where this connection (an MPTCP first subflow) publishes
    /// its data level, created on first use with the level now; `None`
    /// on a joined subflow or without MPTCP.
    pub fn mptcp_level_cell(&mut self) -> Option<Arc<LevelCell>> {
        if self.mptcp.join.is_some() {
            return None;
        }
        if let Some(c) = &self.mptcp.level {
            return Some(c.clone());
        }
        let c = Arc::new(LevelCell::default());
        self.mptcp.level = Some(c.clone());
        // Publishes into the new cell (`mptcp_data_level`).
        if self.mptcp_data_level().is_none() {
            self.mptcp.level = None;
            return None;
        }
        Some(c)
    }

    /// Publish `v`, the level just computed, when a cell exists.
    pub(super) fn mptcp_publish(&self, v: DataLevelView) {
        if let Some(c) = &self.mptcp.level {
            c.store(v);
        }
    }

    /// The level changed (an edge advertised, data in): publish it, when
    /// a subflow in another stack reads it.
    pub(super) fn mptcp_republish(&mut self) {
        if self.mptcp.level.is_some() {
            // Publishes as it computes (`mptcp_data_level`).
            let _ = self.mptcp_data_level();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cell_reads_nothing_until_published_then_the_last_value() {
        let c = LevelCell::default();
        assert_eq!(c.load(), None);
        let v = |ack, edge| DataLevelView {
            ack,
            window: 4000,
            edge,
            rcv_buf: 65536,
        };
        c.store(v(1, 4001));
        c.store(v(3000, 9000));
        assert_eq!(c.load(), Some(v(3000, 9000)));
    }
    #[test]
    fn a_reader_on_another_thread_never_sees_a_window_beyond_the_edge() {
        // The connection publishes from one thread, a subflow reads on
        // another (another worker): whatever mix of two stores it reads,
        // DATA_ACK + window lies within the edge it reads with them, and
        // the DATA_ACK and the edge never go back (the module's doc).
        const N: u64 = 4_000_000;
        let c = Arc::new(LevelCell::default());
        let w = c.clone();
        // Both start together (how often they overlap is the scheduler's:
        // with the stores out of order, 3 runs in 9 failed here).
        let go = Arc::new(std::sync::Barrier::new(2));
        let g = go.clone();
        let writer = std::thread::spawn(move || {
            g.wait();
            let mut edge = 0u64;
            for i in 0..N {
                let ack = i * 10;
                // Not monotone: the application reads in bursts.
                let window = if i % 2 == 0 { 0 } else { 5000 };
                edge = edge.max(ack + window as u64);
                w.store(DataLevelView {
                    ack,
                    window,
                    edge,
                    rcv_buf: 65536,
                });
            }
        });
        // Until the last store is seen (bounded: 20 s at most).
        let start = std::time::Instant::now();
        let (mut last_ack, mut last_edge) = (0, 0);
        go.wait();
        while start.elapsed() < std::time::Duration::from_secs(20) {
            let Some(v) = c.load() else { continue };
            assert!(v.ack + v.window as u64 <= v.edge, "{v:?}");
            assert!(v.ack >= last_ack && v.edge >= last_edge, "{v:?}");
            (last_ack, last_edge) = (v.ack, v.edge);
            if v.ack == (N - 1) * 10 {
                break;
            }
        }
        writer.join().unwrap();
        assert_eq!(last_ack, (N - 1) * 10, "the last store was seen");
    }
}
