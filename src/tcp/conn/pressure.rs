//! Frame memory: the send queue's frame budget (Linux counts `sk_sndbuf`
//! in truesize, `sk_wmem_queued`), and giving frames back when the stack's
//! receive pool runs low (Linux `tcp_prune_queue` / `tcp_prune_ofo_queue`
//! under `tcp_mem` pressure).

use super::Connection;
use crate::io::Frame;

impl<F: Frame> Connection<F> {
    /// Frames the send queue may hold: the current send buffer (it
    /// follows autotuning, not its ceiling) counted at full-sized
    /// segments of our own MSS. A segment never spans frames, so counting
    /// payload bytes would let a peer that announces a tiny MSS (and keeps
    /// its window shut) pin `snd_buf / MSS` frames — thousands — per
    /// connection (issue 9 defect 2). Counted in frames, a connection holds
    /// the same memory whatever the peer's MSS; this is the per-connection
    /// frame cap.
    pub(super) fn snd_frames_max(&self) -> usize {
        let ts = if self.cfg.timestamps {
            super::options::TS_LEN
        } else {
            0
        };
        let full = (self.cfg.mss as usize).saturating_sub(ts).max(1);
        self.app_snd_buf().div_ceil(full).max(1)
    }

    /// Frames `send` may still take.
    pub(super) fn snd_frames_room(&self) -> usize {
        // The application's queue: the connection's, under MPTCP.
        self.snd_frames_max().saturating_sub(self.app_queued().1)
    }

    /// Frames the send queue holds.
    pub fn snd_frames(&self) -> usize {
        self.snd.queue.frames() + self.meta_tx().map_or(0, |m| m.frames())
    }

    /// Send memory held (sum of frame truesize).
    pub fn snd_mem(&self) -> usize {
        self.snd.queue.mem()
    }

    /// Receive-pool pressure: collapse small segments into fewer frames
    /// (no new frame is taken: they are copied into the first frame of each
    /// contiguous run), then drop the out-of-order queue. In-order data stays
    /// for the application, whose reading frees it. The dropped data was
    /// never acknowledged cumulatively, so the peer retransmits it; SACKed
    /// data may be reneged (RFC 2018 §8: the sender keeps it until it is
    /// cumulatively acknowledged and forgets SACK information on RTO).
    /// Returns the receive memory freed (frame truesize).
    pub fn prune_ooo(&mut self) -> usize {
        if !self.rcv.queue.has_ooo() {
            return 0;
        }
        let before = self.rcv.queue.mem();
        self.rcvq_collapse();
        self.rcv.queue.clear_ooo();
        before.saturating_sub(self.rcv.queue.mem())
    }

    /// Whether out-of-order data is queued.
    pub fn has_ooo(&self) -> bool {
        self.rcv.queue.has_ooo()
    }
}
