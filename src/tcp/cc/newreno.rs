//! NewReno congestion control (RFC 5681, RFC 6582, with RFC 3465 ABC).

use super::{initial_window, slow_start, CongestionControl};
use crate::time::Instant;
use core::time::Duration;

/// NewReno window state.
#[derive(Debug)]
pub struct NewReno {
    mss: usize,
    iw_segments: u32,
    cwnd: usize,
    ssthresh: usize,
    /// RFC 3465 §2.1: bytes acknowledged in congestion avoidance since cwnd
    /// last grew.
    bytes_acked: usize,
    /// (cwnd, ssthresh) before the last reduction, for [`on_spurious`].
    ///
    /// [`on_spurious`]: CongestionControl::on_spurious
    prior: Option<(usize, usize)>,
}

impl NewReno {
    pub fn new(mss: usize, iw_segments: u32) -> Self {
        let mss = mss.max(1);
        NewReno {
            mss,
            iw_segments,
            cwnd: initial_window(mss, iw_segments),
            ssthresh: usize::MAX,
            bytes_acked: 0,
            prior: None,
        }
    }

    /// Slow start, or congestion avoidance growing cwnd by one SMSS per
    /// `per_mss` acknowledged bytes: cwnd for Reno (RFC 5681 §3.1 eq. 3),
    /// more for a coupled subflow (RFC 6356 §3, see [`super::lia`]).
    pub(crate) fn grow(&mut self, acked: usize, in_flight: usize, per_mss: usize) {
        if !super::cwnd_limited(self.cwnd, in_flight) {
            return;
        }
        let mut acked = acked;
        if self.cwnd < self.ssthresh {
            // RFC 5681 §3.1 / RFC 3465 §2.2: slow start, byte counted with L = 2·SMSS.
            let (cwnd, left) = slow_start(self.cwnd, self.ssthresh, acked, self.mss);
            self.cwnd = cwnd;
            acked = left;
        }
        if acked == 0 || self.cwnd < self.ssthresh {
            return;
        }
        // RFC 5681 §3.1 eq. 3 / RFC 3465 §2.1: in congestion avoidance grow by
        // one SMSS per cwnd of acknowledged bytes (exact for stretch ACKs);
        // never faster (RFC 6356 §3: a subflow takes no more than a single
        // TCP flow would on its path).
        self.bytes_acked += acked;
        while self.bytes_acked >= per_mss.max(self.cwnd) {
            self.bytes_acked -= per_mss.max(self.cwnd);
            self.cwnd += self.mss;
        }
    }

    /// RFC 5681 §3.1 eq. 4: ssthresh = max(FlightSize / 2, 2·SMSS).
    fn halve(&self, in_flight: usize) -> usize {
        (in_flight / 2).max(2 * self.mss)
    }
}

impl CongestionControl for NewReno {
    fn cwnd(&self) -> usize {
        self.cwnd
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    fn on_ack(&mut self, _now: Instant, acked: usize, in_flight: usize, _rtt: Option<Duration>) {
        self.grow(acked, in_flight, self.cwnd);
    }

    fn on_congestion_event(&mut self, _now: Instant, in_flight: usize) {
        // RFC 5681 §3.2 step 2 (without the 3·SMSS inflation: the connection
        // runs RFC 6675 pipe-based recovery).
        self.prior = Some((self.cwnd, self.ssthresh));
        self.ssthresh = self.halve(in_flight);
        self.cwnd = self.ssthresh;
        self.bytes_acked = 0;
    }

    fn on_recovery_exit(&mut self, _now: Instant) {
        // RFC 6582 §3.2 step 3: deflate the window to ssthresh.
        self.cwnd = self.ssthresh;
        self.bytes_acked = 0;
    }

    fn on_rto(&mut self, _now: Instant, in_flight: usize) {
        // RFC 5681 §3.1 eq. 4 and the loss window LW = 1·SMSS.
        if self.prior.is_none() || self.cwnd > self.mss {
            self.prior = Some((self.cwnd, self.ssthresh));
        }
        self.ssthresh = self.halve(in_flight);
        self.cwnd = self.mss;
        self.bytes_acked = 0;
    }

    fn on_spurious(&mut self, _now: Instant) {
        // Undo the last reduction (as Linux's tcp_undo_cwnd_reduction).
        if let Some((cwnd, ssthresh)) = self.prior.take() {
            self.cwnd = self.cwnd.max(cwnd);
            self.ssthresh = self.ssthresh.max(ssthresh);
        }
    }

    fn on_idle_restart(&mut self, _now: Instant) {
        // RFC 5681 §4.1: cwnd = min(RW, cwnd) with RW = min(IW, cwnd).
        self.cwnd = self.cwnd.min(initial_window(self.mss, self.iw_segments));
        self.bytes_acked = 0;
    }

    fn penalise(&mut self, _now: Instant) {
        (self.cwnd, self.ssthresh) = super::penalised(self.cwnd, self.ssthresh, self.mss);
        self.bytes_acked = 0;
    }

    fn set_mss(&mut self, mss: usize) {
        let mss = mss.max(1);
        self.cwnd = super::rescale(self.cwnd, self.mss, mss);
        if self.ssthresh != usize::MAX {
            self.ssthresh = super::rescale(self.ssthresh, self.mss, mss).max(2 * mss);
        }
        self.mss = mss;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;
    const T: Instant = Instant::ZERO;

    /// Ack a whole cwnd, `per_ack` bytes at a time, as a cwnd-limited sender
    /// (which refills the window after every ACK).
    fn ack_round(cc: &mut NewReno, per_ack: usize) {
        let mut left = cc.cwnd();
        while left > 0 {
            let a = per_ack.min(left);
            cc.on_ack(T, a, cc.cwnd(), None);
            left -= a;
        }
    }

    #[test]
    fn initial_window() {
        let cc = NewReno::new(MSS, 10);
        assert_eq!(cc.cwnd(), 10 * MSS);
        assert_eq!(cc.ssthresh(), usize::MAX);
    }

    #[test]
    fn slow_start_doubles_per_rtt() {
        let mut cc = NewReno::new(MSS, 10);
        ack_round(&mut cc, MSS);
        assert_eq!(cc.cwnd(), 20 * MSS);
        // Delayed ACKs (2 segments each) still double: L = 2·SMSS.
        ack_round(&mut cc, 2 * MSS);
        assert_eq!(cc.cwnd(), 40 * MSS);
        // A stretch ACK of 4 segments is capped at 2·SMSS (RFC 3465 §2.2).
        ack_round(&mut cc, 4 * MSS);
        assert_eq!(cc.cwnd(), 60 * MSS);
    }

    #[test]
    fn slow_start_stops_at_ssthresh_and_leftover_goes_to_avoidance() {
        let mut cc = NewReno::new(MSS, 10);
        cc.on_congestion_event(T, 30 * MSS); // ssthresh = cwnd = 15 MSS
        cc.on_rto(T, 30 * MSS); // ssthresh 15 MSS, cwnd 1 MSS
        assert_eq!((cc.cwnd(), cc.ssthresh()), (MSS, 15 * MSS));
        for _ in 0..7 {
            cc.on_ack(T, 2 * MSS, cc.cwnd(), None);
        }
        assert_eq!(cc.cwnd(), 15 * MSS);
        assert_eq!(cc.bytes_acked, 0);
        cc.on_ack(T, 2 * MSS, cc.cwnd(), None);
        assert_eq!(cc.cwnd(), 15 * MSS);
        assert_eq!(cc.bytes_acked, 2 * MSS);
    }

    #[test]
    fn congestion_avoidance_one_mss_per_rtt() {
        let mut cc = NewReno::new(MSS, 10);
        cc.on_congestion_event(T, 40 * MSS);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (20 * MSS, 20 * MSS));
        ack_round(&mut cc, MSS);
        assert_eq!(cc.cwnd(), 21 * MSS);
        // Stretch ACKs: same growth, byte counted.
        ack_round(&mut cc, 7 * MSS);
        assert_eq!(cc.cwnd(), 22 * MSS);
        // Less than a window: no growth yet.
        cc.on_ack(T, 21 * MSS, 22 * MSS, None);
        assert_eq!(cc.cwnd(), 22 * MSS);
        cc.on_ack(T, MSS, 22 * MSS, None);
        assert_eq!(cc.cwnd(), 23 * MSS);
    }

    #[test]
    fn no_growth_when_application_limited() {
        let mut cc = NewReno::new(MSS, 10);
        cc.on_ack(T, MSS, 2 * MSS, None);
        assert_eq!(cc.cwnd(), 10 * MSS);
        cc.on_ack(T, MSS, 5 * MSS, None);
        assert_eq!(cc.cwnd(), 11 * MSS);
    }

    #[test]
    fn penalised_halves_cwnd_and_in_avoidance_ssthresh() {
        let mut cc = NewReno::new(MSS, 10);
        // Slow start: the window halves, slow start goes on.
        cc.penalise(T);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (5 * MSS, usize::MAX));
        // Congestion avoidance: both halve.
        cc.on_congestion_event(T, 16 * MSS);
        cc.penalise(T);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (4 * MSS, 4 * MSS));
        // Never below one segment, ssthresh never below two.
        for _ in 0..4 {
            cc.penalise(T);
        }
        assert_eq!((cc.cwnd(), cc.ssthresh()), (MSS, 2 * MSS));
    }

    #[test]
    fn congestion_event_and_recovery_exit() {
        let mut cc = NewReno::new(MSS, 10);
        cc.on_congestion_event(T, 10 * MSS);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (5 * MSS, 5 * MSS));
        cc.on_recovery_exit(T);
        assert_eq!(cc.cwnd(), 5 * MSS);
        // Floor of 2·SMSS.
        cc.on_congestion_event(T, MSS);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (2 * MSS, 2 * MSS));
    }

    #[test]
    fn rto_and_undo() {
        let mut cc = NewReno::new(MSS, 10);
        cc.on_rto(T, 9 * MSS);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (MSS, 4500));
        cc.on_spurious(T);
        assert_eq!((cc.cwnd(), cc.ssthresh()), (10 * MSS, usize::MAX));
    }

    #[test]
    fn idle_restart_and_mss_change() {
        let mut cc = NewReno::new(MSS, 10);
        ack_round(&mut cc, MSS);
        cc.on_idle_restart(T);
        assert_eq!(cc.cwnd(), 10 * MSS);
        cc.set_mss(1460);
        assert_eq!(cc.cwnd(), 14_600);
    }
}
