//! Receive-buffer autotuning: dynamic right-sizing (Fisher, "Dynamic
//! right-sizing in TCP", 2002; Linux's `tcp_rcv_space_adjust`). A fixed
//! receive buffer caps a connection at buffer / RTT: too small for a long
//! fat path, wasteful for a slow reader. Once per round trip the receiver
//! looks at what the application read in it; when that grew, the buffer
//! becomes the memory for twice as much (the sender's window may double
//! in slow start within the next round trip), up to
//! `Config::rcv_buf_max`. It never shrinks: the window's right edge may
//! not move left (RFC 9293 §3.8.6.2.2). On an MPTCP connection it is the
//! connection-level buffer (the data level, read by the application), and
//! joined subflows follow it (`DataLevelView::rcv_buf`).

use super::Connection;
use crate::io::Frame;
use crate::time::Instant;

/// What the application read in the current measurement round.
#[derive(Debug, Clone, Copy)]
pub(super) struct RcvSpace {
    /// Bytes read since `since`.
    copied: usize,
    since: Instant,
    /// The most read in one round so far.
    space: usize,
}

impl RcvSpace {
    pub(super) fn new(now: Instant) -> Self {
        RcvSpace {
            copied: 0,
            since: now,
            space: 0,
        }
    }
}

impl<F: Frame> Connection<F> {
    /// The application read `n` bytes: once a round trip has passed,
    /// grow the receive buffer toward twice what it read in it.
    pub(super) fn rcv_space_adjust(&mut self, n: usize) {
        if self.rcv.buf >= self.cfg.rcv_buf_max {
            return;
        }
        let r = &mut self.rcv.space;
        r.copied = r.copied.saturating_add(n);
        // The round trip as the sender side measures it (the handshake's,
        // at least; timestamps keep it current).
        let Some(rtt) = self.loss.rtt.srtt() else {
            return;
        };
        if self.now.saturating_since(r.since) < rtt {
            return;
        }
        let copied = core::mem::take(&mut r.copied);
        r.since = self.now;
        if copied <= r.space {
            return;
        }
        r.space = copied;
        let q = self.mptcp_data().unwrap_or(&self.rcv.queue);
        let want = q.window_to_space(copied.saturating_mul(2));
        self.rcv.buf = want.clamp(self.rcv.buf, self.cfg.rcv_buf_max);
    }
}
