//! The send part of the TCB: RFC 9293 §3.3.1's send sequence space
//! (SND.UNA, SND.NXT, SND.WND, SND.WL1, SND.WL2, ISS) with the send
//! buffer and the RFC 6675 scoreboard over it, and what decides when the
//! application's data may leave (Nagle, RFC 1122 §4.2.3.4).

use crate::io::Frame;
use crate::tcp::sack::Scoreboard;
use crate::tcp::send::SendBuffer;
use crate::tcp::SeqNumber;
use crate::time::Instant;

/// Send sequence space and send queue (RFC 9293 §3.3.1).
pub(super) struct SendSide<F: Frame> {
    pub iss: SeqNumber,
    pub una: SeqNumber,
    /// Next new sequence number (retransmissions do not move it, so it is
    /// also the highest sent, "HighData" of RFC 6675).
    pub nxt: SeqNumber,
    pub wnd: usize,
    pub wl1: SeqNumber,
    pub wl2: SeqNumber,
    /// RFC 5961 §5: MAX.SND.WND.
    pub max_wnd: usize,
    /// Payload bytes per segment (MSS less fixed options).
    pub mss: usize,
    pub queue: SendBuffer<F>,
    /// Payload bytes the send queue may hold now: `Config::snd_buf`,
    /// grown by autotuning up to `Config::snd_buf_max` (`snd_space`).
    pub buf: usize,
    pub sb: Scoreboard,
    /// The application called `shutdown`: FIN after the queued data.
    pub fin_queued: bool,
    /// `send` returned short: report `writable` when space frees.
    pub write_blocked: bool,
    pub nodelay: bool,
    /// End of the last short segment sent (Minshall's Nagle variant).
    pub sml: SeqNumber,
    pub last_data_sent: Instant,
    /// Since when the oldest outstanding data has been waiting (user timeout).
    pub una_since: Option<Instant>,
}

impl<F: Frame> SendSide<F> {
    pub(super) fn new(iss: SeqNumber, mss: usize, buf: usize, nodelay: bool, now: Instant) -> Self {
        SendSide {
            iss,
            una: iss,
            nxt: iss,
            wnd: 0,
            wl1: SeqNumber(0),
            wl2: iss,
            max_wnd: 0,
            mss,
            queue: SendBuffer::new(iss + 1),
            buf,
            sb: Scoreboard::default(),
            fin_queued: false,
            write_blocked: false,
            nodelay,
            sml: iss,
            last_data_sent: now,
            una_since: None,
        }
    }
}

impl<F: Frame> SendSide<F> {
    /// Bytes sent and not yet acknowledged (SND.NXT - SND.UNA).
    #[inline]
    pub(super) fn in_flight(&self) -> usize {
        self.nxt - self.una
    }

    /// RFC 9293 §3.10.7.4 (fifth, ESTABLISHED): "If SND.WL1 < SEG.SEQ or
    /// (SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK), set SND.WND <- SEG.WND,
    /// set SND.WL1 <- SEG.SEQ, and set SND.WL2 <- SEG.ACK" (`wnd` scaled).
    /// Returns whether the window was taken.
    ///
    /// The guard "prevents using old segments to update the window"; a
    /// segment acknowledging more than SND.WL2 is not old (the peer's
    /// RCV.NXT never goes back), whatever its SEG.SEQ, and updates it too
    /// (as Linux's `tcp_may_update_window`). Without that, SND.WL1 can
    /// stay ahead of every sequence number the peer will use again: data
    /// taken as acceptable at an MPTCP connection-level edge beyond this
    /// subflow's window (RFC 8684 §3.3.4) and then dropped for memory
    /// sets it, the peer goes back to RCV.NXT, which our closed window
    /// pins, and its window updates were ignored while it answered every
    /// zero-window probe: both sides stalled (issue 8).
    #[inline]
    pub(super) fn window_update(&mut self, seq: SeqNumber, ack: SeqNumber, wnd: usize) -> bool {
        if self.wl1 < seq || (self.wl1 == seq && self.wl2 <= ack) || self.wl2 < ack {
            self.take_window(seq, ack, wnd);
            true
        } else {
            false
        }
    }

    /// The window of the segment that synchronized us (RFC 9293 §3.10.7.3),
    /// or an acceptable window update: SND.WND, WL1, WL2, and MAX.SND.WND
    /// (RFC 5961 §5).
    #[inline]
    pub(super) fn take_window(&mut self, seq: SeqNumber, ack: SeqNumber, wnd: usize) {
        self.wnd = wnd;
        self.wl1 = seq;
        self.wl2 = ack;
        self.max_wnd = self.max_wnd.max(wnd);
    }

    /// RFC 5961 §5.2: an ACK below SND.UNA - MAX.SND.WND is too old to be
    /// acceptable.
    #[inline]
    pub(super) fn ack_too_old(&self, ack: SeqNumber) -> bool {
        ack < self.una - self.max_wnd.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::test_frame::VecFrame as V;

    fn side() -> SendSide<V> {
        let mut s = SendSide::<V>::new(SeqNumber(1000), 1000, 1 << 16, false, Instant::ZERO);
        s.take_window(SeqNumber(500), SeqNumber(1001), 8000);
        s
    }

    #[test]
    fn window_update_follows_wl1_then_wl2() {
        let mut s = side();
        // An older segment (SEG.SEQ < SND.WL1) acknowledging nothing new
        // is not taken.
        assert!(!s.window_update(SeqNumber(499), SeqNumber(1001), 100));
        assert_eq!(
            (s.wnd, s.wl1, s.wl2),
            (8000, SeqNumber(500), SeqNumber(1001))
        );
        // Same SEG.SEQ, an older ACK: not taken.
        assert!(!s.window_update(SeqNumber(500), SeqNumber(1000), 100));
        assert_eq!(s.wnd, 8000);
        // Same SEG.SEQ, same or newer ACK: taken (a window may shrink).
        assert!(s.window_update(SeqNumber(500), SeqNumber(1001), 100));
        assert_eq!((s.wnd, s.max_wnd), (100, 8000));
        // A newer SEG.SEQ is taken whatever its ACK; MAX.SND.WND grows.
        assert!(s.window_update(SeqNumber(501), SeqNumber(900), 9000));
        assert_eq!(
            (s.wnd, s.wl1, s.wl2, s.max_wnd),
            (9000, SeqNumber(501), SeqNumber(900), 9000)
        );
        // An older SEG.SEQ that acknowledges more than SND.WL2 is taken
        // (the peer's RCV.NXT never goes back).
        assert!(s.window_update(SeqNumber(400), SeqNumber(950), 50));
        assert_eq!((s.wnd, s.wl1, s.wl2), (50, SeqNumber(400), SeqNumber(950)));
    }

    #[test]
    fn ack_too_old_is_below_una_less_the_largest_window() {
        let mut s = side();
        // The window shrank since: MAX.SND.WND (8000) still counts.
        assert!(s.window_update(SeqNumber(501), SeqNumber(1001), 100));
        s.una = SeqNumber(20_000);
        assert!(!s.ack_too_old(SeqNumber(12_000)));
        assert!(s.ack_too_old(SeqNumber(11_999)));
        s.nxt = SeqNumber(20_500);
        assert_eq!(s.in_flight(), 500);
    }
}
