//! The connection level's own send rules (RFC 8684 §3.3.4, §3.3.6): the
//! right edge of the peer's connection-level receive window, and the
//! data-level retransmission timer.
//!
//! The window a subflow segment advertises is relative to the DATA_ACK
//! it carries ("the receive window is shared by all subflows and is
//! relative to the DATA_ACK"), so the edge is that segment's DATA_ACK
//! plus its window, and, as the receiver never shrinks it (§3.3.4, as
//! Linux's `rcv_wnd_sent`), the largest such sum seen on any subflow.
//! Taking the connection's latest DATA_ACK plus a subflow's older window
//! overshoots it; Linux then drops what lies beyond (after its subflow
//! acknowledged it: `MPTcpExtNoDSSInWindow`) and only a data-level
//! retransmission brings those bytes again.
//!
//! The timer: the peer's data level may drop what a subflow delivered
//! (out of its window, or a subflow that died holding it), and no
//! subflow-level timer sees that: its bytes are acknowledged there. When
//! the DATA_ACK has not moved for a data-level timeout while data is
//! given out, the oldest unacknowledged range goes to the scheduler again
//! (reinjected, with its DSNs), backing off exponentially until the
//! DATA_ACK moves (as Linux's `mptcp_retransmit_timer`).

use super::Connection;
use crate::io::Frame;
use crate::mptcp::RxDsn;
use crate::tcp::TcpRepr;
use crate::time::Instant;
use core::time::Duration;

/// The data-level timeout never fires sooner than this (Linux's
/// `TCP_RTO_MIN`).
const DATA_RTO_MIN: Duration = Duration::from_millis(200);
/// Nor later than this, however often it backed off.
const DATA_RTO_MAX: Duration = Duration::from_secs(30);
/// Bytes one expiry sends again at most: the head of what is
/// outstanding, as a subflow RTO resends its first segment.
const DATA_RTO_BYTES: u64 = 64 * 1024;

/// The connection-level window edge and retransmission timer.
#[derive(Debug, Default, Clone)]
pub(crate) struct DataLevel {
    /// The peer's receive window's right edge (DSN): the largest DATA_ACK
    /// plus window seen; `None` before the first.
    wnd_end: Option<u64>,
    /// When the data-level timeout fires.
    rto_at: Option<Instant>,
    /// Expiries in a row without the DATA_ACK moving.
    backoffs: u32,
    /// A DATA_ACK of the peer's came: with a window (`edge`) or moving
    /// the left edge (`on_progress`), which it may do with nothing left
    /// to schedule, so that `edge` never hears of it.
    data_ack_seen: bool,
}

impl DataLevel {
    /// RFC 8684 §3.3.4: the window's right edge, with `seen` (a DATA_ACK
    /// and the window of the segment that carried it) taken in. `una`:
    /// our DATA_ACKed point; `end`: one beyond our last byte and DATA_FIN
    /// (a DATA_ACK beyond it is bogus and ignored); `fallback`: the
    /// subflow's window, used until a segment told us more.
    pub(super) fn edge(
        &mut self,
        una: u64,
        end: u64,
        seen: Option<(RxDsn, usize)>,
        fallback: usize,
    ) -> u64 {
        if let Some((a, w)) = seen {
            self.data_ack_seen = true;
            let ack = a.widen(una);
            if ack <= end.wrapping_add(1) {
                let e = ack.wrapping_add(w as u64);
                self.wnd_end = Some(self.wnd_end.map_or(e, |x| x.max(e)));
            }
        }
        match self.wnd_end {
            Some(e) => e.max(una),
            None => una.wrapping_add(fallback as u64),
        }
    }

    /// The timeout: twice the slowest live subflow's smoothed RTT, within
    /// bounds, doubled per expiry in a row.
    fn timeout(&self, srtt: Duration) -> Duration {
        let base = (srtt * 2).max(DATA_RTO_MIN);
        base.checked_mul(1 << self.backoffs.min(8))
            .unwrap_or(DATA_RTO_MAX)
            .min(DATA_RTO_MAX)
    }

    /// Data was given to a subflow: the timer runs if it did not.
    pub(super) fn on_given(&mut self, now: Instant, srtt: Duration) {
        if self.rto_at.is_none() {
            self.rto_at = Some(now + self.timeout(srtt));
        }
    }

    /// The DATA_ACK moved: the timer restarts while data is outstanding.
    pub(super) fn on_progress(&mut self, now: Instant, srtt: Duration, outstanding: bool) {
        self.backoffs = 0;
        self.data_ack_seen = true;
        self.rto_at = outstanding.then(|| now + self.timeout(srtt));
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        self.rto_at
    }

    /// If the timer expired by `now` with `una..nxt` outstanding: the
    /// range to send again; the timer backs off.
    pub(super) fn expire(
        &mut self,
        now: Instant,
        srtt: Duration,
        una: u64,
        nxt: u64,
    ) -> Option<(u64, u64)> {
        if self.rto_at.is_none_or(|t| t > now) {
            return None;
        }
        // Not before the peer's first DATA_ACK: until then the first
        // subflow's own rules resend our first data, with its MP_CAPABLE
        // (RFC 8684 §3.1), and a data-level copy only confuses that.
        if una >= nxt || !self.data_ack_seen {
            self.rto_at = None;
            return None;
        }
        self.backoffs = self.backoffs.saturating_add(1);
        self.rto_at = Some(now + self.timeout(srtt));
        Some((una, (nxt - una).min(DATA_RTO_BYTES)))
    }
}

impl<F: Frame> Connection<F> {
    /// The data-level timer (on the connection's TCB): due, the oldest
    /// data not DATA_ACKed goes to the scheduler again.
    pub(super) fn mptcp_data_rto(&mut self) {
        if self.mptcp_fell_back_tx() {
            // After a fallback to TCP nothing goes twice (`mptcp_tx`).
            return;
        }
        let now = self.now;
        let Some(m) = self.mptcp.meta_tx_mut() else {
            return;
        };
        m.data_rto(now, &mut self.stats);
    }

    pub(super) fn mptcp_data_rto_at(&self) -> Option<Instant> {
        if self.mptcp_fell_back_tx() {
            return None;
        }
        self.meta_tx()?.data_rto_at()
    }

    /// RFC 8684 §3.3.4: a segment's DATA_ACK and the window it
    /// advertises, relative to that DATA_ACK, for the connection's
    /// window edge (`DataLevel::edge`).
    pub(super) fn mptcp_tx_note_edge(&mut self, seg: &TcpRepr) {
        let wnd = (seg.window as usize) << self.opts.snd_wscale;
        if let (Some(t), Some(a)) = (
            self.mptcp.tx.as_deref_mut(),
            crate::mptcp::session::data_ack_in(seg.options.mptcp.as_slice()),
        ) {
            t.edge_seen = Some((a, wnd));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_micros(ms * 1000)
    }

    #[test]
    fn edge_is_the_largest_ack_plus_window_and_never_moves_back() {
        let mut d = DataLevel::default();
        let wide = |v| RxDsn {
            value: v,
            wide: true,
        };
        // Before any segment: the subflow's window from our DATA_ACKed point.
        assert_eq!(d.edge(1000, 9000, None, 500), 1500);
        assert_eq!(d.edge(1000, 9000, Some((wide(1000), 2000)), 0), 3000);
        // The connection's DATA_ACK moved on (another subflow) but this
        // subflow's window is from an older segment: no overshoot.
        assert_eq!(d.edge(2500, 9000, None, 2000), 3000);
        // A smaller window later does not shrink the edge.
        assert_eq!(d.edge(2500, 9000, Some((wide(2500), 100)), 0), 3000);
        assert_eq!(d.edge(2500, 9000, Some((wide(2600), 1000)), 0), 3600);
        // A DATA_ACK of what we never sent is ignored.
        assert_eq!(d.edge(2600, 9000, Some((wide(50_000), 1000)), 0), 3600);
    }

    #[test]
    fn timer_resends_the_head_and_backs_off_until_the_data_ack_moves() {
        let mut d = DataLevel::default();
        let srtt = Duration::from_millis(10);
        // Before the peer's first DATA_ACK it never fires.
        d.on_given(at(0), srtt);
        assert_eq!(d.expire(at(300), srtt, 0, 100_000), None);
        let wide = |v| RxDsn {
            value: v,
            wide: true,
        };
        d.edge(0, 100_000, Some((wide(0), 1 << 20)), 0);
        d.on_given(at(0), srtt);
        assert_eq!(d.deadline(), Some(at(200)));
        assert_eq!(d.expire(at(199), srtt, 0, 100_000), None);
        assert_eq!(d.expire(at(200), srtt, 0, 100_000), Some((0, 65_536)));
        assert_eq!(d.deadline(), Some(at(600)));
        assert_eq!(d.expire(at(600), srtt, 0, 10), Some((0, 10)));
        assert_eq!(d.deadline(), Some(at(1400)));
        d.on_progress(at(700), srtt, true);
        assert_eq!(d.deadline(), Some(at(900)));
        d.on_progress(at(800), srtt, false);
        assert_eq!(d.deadline(), None);
        // Nothing outstanding when it fires: it stops.
        d.on_given(at(1000), srtt);
        assert_eq!(d.expire(at(1200), srtt, 10, 10), None);
        assert_eq!(d.deadline(), None);
        // A DATA_ACK moving the left edge counts as seen, with no window
        // taken in (all our data given out before it came).
        let mut d = DataLevel::default();
        d.on_given(at(0), srtt);
        d.on_progress(at(100), srtt, true);
        assert_eq!(d.expire(at(300), srtt, 0, 10), Some((0, 10)));
    }
}
