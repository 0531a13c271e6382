//! Congestion control behind one trait (and one enum, [`Controller`]): NewReno (RFC 5681/6582) and CUBIC
//! (RFC 9438, the default). Windows are in bytes.
//!
//! The connection owns loss detection and recovery (RFC 6675 / 6582); the
//! controller only decides cwnd and ssthresh from the events it is told.

pub mod controller;
pub mod cubic;
pub mod hystart;
pub mod lia;
pub mod newreno;

use super::CcKind;
use crate::time::Instant;
use core::time::Duration;

/// A congestion controller.
pub trait CongestionControl: core::fmt::Debug + Send {
    /// Congestion window in bytes.
    fn cwnd(&self) -> usize;
    /// Slow-start threshold in bytes (`usize::MAX` before the first loss).
    fn ssthresh(&self) -> usize;
    /// `acked` new bytes were cumulatively or selectively acknowledged outside
    /// of recovery. `in_flight` is the bytes outstanding before this ACK;
    /// `rtt` the latest sample, if any. Grows cwnd (slow start / avoidance),
    /// but only while the sender uses the window: nothing grows when
    /// `in_flight` < cwnd / 2 (application-limited, RFC 7661 spirit).
    fn on_ack(&mut self, now: Instant, acked: usize, in_flight: usize, rtt: Option<Duration>);
    /// Loss detected by duplicate ACKs/SACK or an ECN echo (entering fast
    /// recovery, at most once per window): sets ssthresh and cwnd
    /// (RFC 5681 §3.2 step 2 / RFC 9438 §4.6).
    fn on_congestion_event(&mut self, now: Instant, in_flight: usize);
    /// Fast recovery ended (RFC 6582 §3.2 step 3 "full ACK"): cwnd = ssthresh.
    fn on_recovery_exit(&mut self, now: Instant);
    /// Retransmission timeout (RFC 5681 §3.1 eq. 4): ssthresh from flight
    /// size, cwnd = 1 MSS.
    fn on_rto(&mut self, now: Instant, in_flight: usize);
    /// A congestion event turned out to be spurious (optional undo).
    fn on_spurious(&mut self, _now: Instant) {}
    /// Connection was idle longer than an RTO (RFC 5681 §4.1 / RFC 9438 §5.8).
    fn on_idle_restart(&mut self, _now: Instant) {}
    /// The sender's MSS (after negotiation) changed.
    fn set_mss(&mut self, mss: usize);
    /// The MPTCP scheduler penalises this subflow: its data holds up the
    /// connection-level window while a faster subflow could send
    /// (Raiciu et al., NSDI 2012 §4.2; Linux's out-of-tree
    /// `mptcp_rcv_buf_optimization`). cwnd is halved (at least one MSS),
    /// and ssthresh too when in congestion avoidance, so that less of the
    /// connection's data waits in this path's queue; no recovery starts.
    fn penalise(&mut self, now: Instant);
}

/// `penalise` on a (cwnd, ssthresh) pair: the halved window and, when the
/// window was in congestion avoidance, the halved threshold.
pub(crate) fn penalised(cwnd: usize, ssthresh: usize, mss: usize) -> (usize, usize) {
    let half = (cwnd / 2).max(mss);
    let ssthresh = if cwnd >= ssthresh {
        (ssthresh / 2).max(2 * mss)
    } else {
        ssthresh
    };
    (half, ssthresh)
}

pub use controller::Controller;

/// Build the controller for `kind` with initial window `iw_segments`·`mss`
/// (RFC 6928).
pub fn new(kind: CcKind, mss: usize, iw_segments: u32) -> Controller {
    Controller::new(kind, mss, iw_segments)
}

/// RFC 6928 §2: IW = `iw_segments`·MSS (Linux style: no byte cap), at least
/// one segment.
pub(crate) fn initial_window(mss: usize, iw_segments: u32) -> usize {
    mss.saturating_mul(iw_segments.max(1) as usize)
}

/// RFC 5681 §3.1 slow start with RFC 3465 §2.2 appropriate byte counting
/// (L = 2·SMSS): cwnd grows by min(acked, 2·SMSS) but not beyond ssthresh.
/// Returns the new cwnd and the acked bytes left over for congestion
/// avoidance once ssthresh is reached.
pub(crate) fn slow_start(cwnd: usize, ssthresh: usize, acked: usize, mss: usize) -> (usize, usize) {
    let room = ssthresh.saturating_sub(cwnd);
    let inc = acked.min(2 * mss);
    if inc <= room {
        (cwnd + inc, 0)
    } else {
        (ssthresh, acked - room)
    }
}

/// Whether the window is actually in use, so growing it is justified
/// (RFC 7661 §4.3 spirit; Linux's `tcp_is_cwnd_limited`): at least half of
/// cwnd was outstanding when the ACK arrived.
pub(crate) fn cwnd_limited(cwnd: usize, in_flight: usize) -> bool {
    in_flight.saturating_mul(2) >= cwnd
}

/// Convert a window of `from`-byte segments to `to`-byte segments.
pub(crate) fn rescale(window: usize, from: usize, to: usize) -> usize {
    let segs = (window / from.max(1)).max(1);
    segs.saturating_mul(to)
}
