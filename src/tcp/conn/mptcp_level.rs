//! The connection's data level published for its joined subflows in the
//! worker's other stacks (RFC 8684 §3.3.4: "such a check is done using
//! only the connection-level window"). A subflow in another interface's
//! stack checks its incoming data against the connection-level window
//! before the worker routes between the stacks (`mptcp_route`), so the
//! edge the peer may have learnt since on another subflow must reach it
//! without that round: the connection writes its level into a cell each
//! time it changes (advertised, told to a subflow, data in) and the
//! subflow's stack reads it before each of its segments.
//!
//! Atomics rather than a `Cell`: the TCB moves between workers whole
//! (`TcpMigrant`), so it must be `Send`. Writer and reader run on one
//! thread at a time; `Relaxed` is enough, and costs plain loads and
//! stores.

use super::mptcp_rx::DataLevelView;
use super::Connection;
use crate::io::Frame;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
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
        self.ack.store(v.ack, Relaxed);
        self.window.store(v.window as u64, Relaxed);
        self.edge.store(v.edge, Relaxed);
        self.rcv_buf.store(v.rcv_buf as u64, Relaxed);
        self.set.store(true, Relaxed);
    }

    /// The level last published (`None`: not yet).
    pub fn load(&self) -> Option<DataLevelView> {
        if !self.set.load(Relaxed) {
            return None;
        }
        Some(DataLevelView {
            ack: self.ack.load(Relaxed),
            window: self.window.load(Relaxed) as usize,
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
}
