//! The receive part of the TCB: RFC 9293 §3.3.1's receive sequence space
//! (IRS, RCV.NXT in the queue, the advertised window's edge), the peer's
//! FIN, what RFC 7323 §4.3 keeps for timestamps, and the ACK owed to the
//! peer (RFC 1122 §4.2.3.2, ECN echo of RFC 3168 §6.1.3).

use super::rcv_space::RcvSpace;
use crate::io::Frame;
use crate::tcp::recv::RecvBuffer;
use crate::tcp::SeqNumber;
use crate::time::Instant;

/// Receive sequence space and receive queue (RFC 9293 §3.3.1).
pub(super) struct RecvSide<F: Frame> {
    pub irs: SeqNumber,
    pub queue: RecvBuffer<F>,
    /// RCV.NXT + RCV.WND as last advertised (never moves left).
    pub adv: SeqNumber,
    /// Frame memory the receive side may hold: `Config::rcv_buf`, grown
    /// by autotuning up to `Config::rcv_buf_max` (`rcv_space`).
    pub buf: usize,
    pub space: RcvSpace,
    /// Largest segment seen from the peer (delayed-ACK "full-sized").
    pub mss: usize,
    /// Sequence number of the peer's FIN, once seen.
    pub fin: Option<SeqNumber>,
    pub fin_done: bool,
    /// RFC 7323 §4.3: TS.Recent, and when it was taken.
    pub ts_recent: u32,
    pub ts_recent_at: Instant,
    pub last_ack_sent: SeqNumber,
    /// RFC 3168 §6.1.3: echo ECE until CWR arrives.
    pub ece_echo: bool,
    /// An ACK is owed now.
    pub ack_now: bool,
    /// In-order bytes received since the last ACK.
    pub unacked: usize,
}

impl<F: Frame> RecvSide<F> {
    pub(super) fn new(buf: usize, mss: usize, now: Instant) -> Self {
        RecvSide {
            irs: SeqNumber(0),
            queue: RecvBuffer::new(SeqNumber(0)),
            adv: SeqNumber(0),
            buf,
            space: RcvSpace::new(now),
            mss,
            fin: None,
            fin_done: false,
            ts_recent: 0,
            ts_recent_at: now,
            last_ack_sent: SeqNumber(0),
            ece_echo: false,
            ack_now: false,
            unacked: 0,
        }
    }
}

impl<F: Frame> RecvSide<F> {
    /// RCV.WND from the free receive memory (before the MPTCP cap and the
    /// window-scale limit).
    #[inline]
    pub(super) fn wnd(&self) -> usize {
        self.queue.window(self.buf)
    }

    /// The right edge of the advertised window, RCV.NXT + RCV.WND as last
    /// sent (RFC 9293 §3.8.6.2.1: it never moves left), at least RCV.NXT.
    #[inline]
    pub(super) fn edge(&self) -> SeqNumber {
        self.adv.max(self.queue.nxt)
    }

    /// RFC 7323 §5.3 R1: `tsval` is not older than TS.Recent.
    #[inline]
    pub(super) fn ts_not_older(&self, tsval: u32) -> bool {
        (tsval.wrapping_sub(self.ts_recent) as i32) >= 0
    }

    /// RFC 7323 §4.3 (R3): TS.Recent is taken from a segment that is not
    /// older and covers Last.ACK.sent.
    #[inline]
    pub(super) fn note_ts_recent(&mut self, tsval: u32, seq: SeqNumber, now: Instant) {
        if self.ts_not_older(tsval) && seq <= self.last_ack_sent {
            self.ts_recent = tsval;
            self.ts_recent_at = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::test_frame::VecFrame as V;

    #[test]
    fn edge_never_below_rcv_nxt() {
        let mut r = RecvSide::<V>::new(64 * 1024, 1000, Instant::ZERO);
        r.queue = RecvBuffer::new(SeqNumber(5000));
        r.adv = SeqNumber(4000);
        assert_eq!(r.edge(), SeqNumber(5000));
        r.adv = SeqNumber(9000);
        assert_eq!(r.edge(), SeqNumber(9000));
        assert_eq!(r.wnd(), r.queue.window(r.buf));
    }

    #[test]
    fn ts_recent_taken_only_when_not_older_and_covering_last_ack_sent() {
        let mut r = RecvSide::<V>::new(64 * 1024, 1000, Instant::ZERO);
        r.last_ack_sent = SeqNumber(100);
        r.note_ts_recent(u32::MAX - 20, SeqNumber(100), Instant::ZERO);
        assert_eq!(
            r.ts_recent, 0,
            "older than TS.Recent 0 (half the space behind)"
        );
        r.ts_recent = u32::MAX - 10;
        r.note_ts_recent(u32::MAX - 5, SeqNumber(100), Instant::ZERO);
        assert_eq!(r.ts_recent, u32::MAX - 5);
        // Newer across the wrap of the 32-bit clock.
        assert!(r.ts_not_older(3));
        assert!(!r.ts_not_older(u32::MAX - 6));
        // Not older, but beyond Last.ACK.sent: not taken (RFC 7323 §4.3).
        r.note_ts_recent(3, SeqNumber(101), Instant::ZERO);
        assert_eq!(r.ts_recent, u32::MAX - 5);
        // Older: not taken.
        r.note_ts_recent(u32::MAX - 9, SeqNumber(100), Instant::ZERO);
        assert_eq!(r.ts_recent, u32::MAX - 5);
        r.note_ts_recent(3, SeqNumber(100), Instant::ZERO);
        assert_eq!(r.ts_recent, 3);
    }
}
