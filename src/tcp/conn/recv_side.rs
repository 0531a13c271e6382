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
