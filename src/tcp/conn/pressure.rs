//! Giving frames back when the stack's receive pool runs low (Linux
//! `tcp_prune_queue` / `tcp_prune_ofo_queue` under `tcp_mem` pressure).

use super::Connection;
use crate::io::Frame;

impl<F: Frame> Connection<F> {
    /// Receive-pool pressure: collapse small segments into fewer frames
    /// (no new frame is taken: they are copied into the first frame of each
    /// contiguous run), then drop the out-of-order queue. In-order data stays
    /// for the application, whose reading frees it. The dropped data was
    /// never acknowledged cumulatively, so the peer retransmits it; SACKed
    /// data may be reneged (RFC 2018 §8: the sender keeps it until it is
    /// cumulatively acknowledged and forgets SACK information on RTO).
    /// Returns the receive memory freed (frame truesize).
    pub fn prune_ooo(&mut self) -> usize {
        if !self.rcvq.has_ooo() {
            return 0;
        }
        let before = self.rcvq.mem();
        self.rcvq.collapse();
        self.rcvq.clear_ooo();
        before.saturating_sub(self.rcvq.mem())
    }

    /// Whether out-of-order data is queued.
    pub fn has_ooo(&self) -> bool {
        self.rcvq.has_ooo()
    }
}
