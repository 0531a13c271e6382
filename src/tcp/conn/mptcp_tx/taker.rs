//! The subflows the scheduler hands chunks to ([`Taker`]): a subflow of
//! this worker ([`Connection`]) here, one of another worker in `remote`.

use super::MetaTx;
use crate::io::Frame;
use crate::mptcp::sched::SubflowView;
use crate::mptcp::RxDsn;
use crate::tcp::conn::Connection;
use crate::time::Instant;

/// A subflow the scheduler hands chunks to: one of this worker
/// ([`Connection`]) or one another worker runs (`mptcp_tx_remote`).
pub(super) trait Taker<F> {
    /// Its place among the connection's subflows.
    fn slot(&self) -> Option<usize>;
    /// Halve its window (opportunistic retransmission's penalty).
    fn penalise(&mut self);
    fn view(&self) -> SubflowView;
    fn fell_back(&self) -> bool;
    /// Everything it was given is sent and acknowledged.
    fn idle(&self) -> bool;
    fn take_edge_seen(&mut self) -> Option<(RxDsn, usize)>;
    fn snd_wnd(&self) -> usize;
    fn now(&self) -> Instant;
    fn mss(&self) -> usize;
    fn stats(&mut self) -> &mut crate::tcp::conn::ConnStats;
    /// Take a copy of `bytes` (DSN `dsn` on): bytes taken.
    fn take_chunk(&mut self, bytes: &[u8], dsn: u64, alloc: &mut dyn FnMut() -> Option<F>)
        -> usize;
    /// Its frames come from the connection's pool (`lend`).
    fn can_lend(&self) -> bool {
        false
    }
    /// Take the connection's frame `f` (DSN `dsn` on): bytes taken (all).
    fn lend(&mut self, f: crate::tcp::send::SendFrame<F>, dsn: u64) -> usize {
        let _ = (f, dsn);
        0
    }
    /// The last `len` bytes of the chunk lent to it that ends at DSN
    /// `end_dsn`.
    fn lent_bytes(&self, end_dsn: u64, len: usize) -> Option<&[u8]> {
        let _ = (end_dsn, len);
        None
    }
    /// A reinjection's copies of the bytes lent to it are made by its
    /// worker on request (a subflow of another worker, `remote`), not
    /// now by the connection (`MetaTx::copy_lent`).
    fn copies_by_request(&self) -> bool {
        false
    }
    /// Ask it to copy back the frames lent to it that overlap `want`.
    fn ask_copies(&mut self, want: super::CopyRanges) {
        let _ = want;
    }
    /// Give the lent frames its ACK freed back to `m`.
    fn collect_back(&mut self, m: &mut MetaTx<F>) {
        let _ = m;
    }
}

impl<F: Frame> Taker<F> for Connection<F> {
    fn slot(&self) -> Option<usize> {
        self.mptcp.tx.as_deref().map(|t| t.slot)
    }
    fn penalise(&mut self) {
        // Only in the Open state, as Linux's `mptcp_rcv_buf_optimization`
        // (`icsk_ca_state == TCP_CA_Open`): in recovery the window was cut
        // already and the loss, not its size, holds the data level up;
        // halving it again stops PRR's retransmissions until the RTO
        // (the slow subflow of `tests/sim_sndbuf.rs`, 35.45 Mbit/s).
        if matches!(self.loss.recovery, crate::tcp::conn::loss::Recovery::Open) {
            self.loss.cc.penalise(self.now);
        }
    }
    fn view(&self) -> SubflowView {
        self.mptcp_view()
    }
    fn fell_back(&self) -> bool {
        self.mptcp_fell_back_tx()
    }
    fn idle(&self) -> bool {
        self.snd.queue.len() == 0 && self.snd.una == self.snd.nxt
    }
    fn take_edge_seen(&mut self) -> Option<(RxDsn, usize)> {
        self.mptcp
            .tx
            .as_deref_mut()
            .and_then(|t| t.edge_seen.take())
    }
    fn snd_wnd(&self) -> usize {
        self.snd.wnd
    }
    fn now(&self) -> Instant {
        self.now
    }
    fn mss(&self) -> usize {
        self.fill_mss()
    }
    fn stats(&mut self) -> &mut crate::tcp::conn::ConnStats {
        &mut self.stats
    }
    fn take_chunk(
        &mut self,
        bytes: &[u8],
        dsn: u64,
        alloc: &mut dyn FnMut() -> Option<F>,
    ) -> usize {
        self.mptcp_take_chunk(bytes, dsn, alloc)
    }
    fn can_lend(&self) -> bool {
        self.mptcp.tx.as_deref().is_some_and(|t| t.lend)
    }
    fn lend(&mut self, f: crate::tcp::send::SendFrame<F>, dsn: u64) -> usize {
        match self.mptcp.tx.as_deref_mut() {
            Some(t) => t.lend_into(&mut self.snd.queue, f, dsn),
            // Not a subflow that schedules (never asked): dropped.
            None => 0,
        }
    }
    fn lent_bytes(&self, end_dsn: u64, len: usize) -> Option<&[u8]> {
        let t = self.mptcp.tx.as_deref()?;
        t.lent.bytes(&self.snd.queue, end_dsn, len)
    }
    fn collect_back(&mut self, m: &mut MetaTx<F>) {
        if let Some(t) = self.mptcp.tx.as_deref_mut() {
            t.lent.collect_into(m);
        }
    }
}

impl<F: Frame> Connection<F> {
    /// Append a copy of `bytes` (DSN `dsn` on) to this subflow's send
    /// queue, mapped. A frame is topped up only when the DSNs run on, so
    /// that each frame, hence each segment, maps one contiguous range.
    fn mptcp_take_chunk(
        &mut self,
        bytes: &[u8],
        dsn: u64,
        alloc: &mut dyn FnMut() -> Option<F>,
    ) -> usize {
        let seg_cap = self.fill_mss();
        let Some(t) = self.mptcp.tx.as_deref_mut() else {
            return 0;
        };
        // A lent frame is not topped up: it goes back whole.
        let runs_on = t.maps.end_dsn() == Some(dsn) && !t.lent.last_is(self.snd.queue.tail());
        let upto = if runs_on {
            self.snd.nxt
        } else {
            self.snd.queue.tail()
        };
        let n = self
            .snd
            .queue
            .write(bytes, bytes.len(), seg_cap, upto, alloc);
        if n > 0 {
            t.maps.push(t.tail_rel, dsn, n as u64);
            t.tail_rel += n as u64;
        }
        n
    }
}
