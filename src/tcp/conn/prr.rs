//! Proportional Rate Reduction (RFC 6937): how much may be sent on each ACK
//! during fast recovery, so that the flight shrinks smoothly to ssthresh
//! instead of pausing and then bursting.

/// PRR state for one recovery episode (RFC 6937 §3 variables).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Prr {
    /// RecoverFS: flight size when recovery started.
    recover_fs: usize,
    /// prr_delivered: bytes delivered to the receiver since then.
    delivered: usize,
    /// prr_out: bytes sent since then.
    out: usize,
    /// sndcnt left for the current ACK.
    sndcnt: usize,
    /// cwnd = pipe + sndcnt, set on each ACK and held until the next.
    cwnd: usize,
}

impl Prr {
    /// RFC 6937 §3 "Initialization on entering recovery".
    pub fn start(flight: usize) -> Prr {
        Prr {
            recover_fs: flight.max(1),
            ..Prr::default()
        }
    }

    /// RFC 6937 §3 "On every ACK during recovery": `delivered` bytes newly
    /// cumulatively or selectively acknowledged; `pipe` after this ACK.
    pub fn on_ack(&mut self, delivered: usize, pipe: usize, ssthresh: usize, mss: usize) {
        self.delivered += delivered;
        let sndcnt = if pipe > ssthresh {
            // Proportional part: CEIL(prr_delivered·ssthresh/RecoverFS) - prr_out.
            let target =
                (self.delivered as u128 * ssthresh as u128).div_ceil(self.recover_fs as u128);
            (target as usize).saturating_sub(self.out)
        } else {
            // Slow-start reduction bound (PRR-SSRB).
            let limit = self.delivered.saturating_sub(self.out).max(delivered) + mss;
            (ssthresh - pipe).min(limit)
        };
        self.sndcnt = sndcnt;
        // RFC 6937 §3: "cwnd = pipe + sndcnt". Held until the next ACK:
        // what is sent raises pipe against it, and segments a timer
        // marks lost meanwhile (RFC 8985 §6.3) leave pipe, making room
        // for their retransmission (RFC 6675 §5 (C): cwnd - pipe). Were
        // cwnd to follow pipe, those waited for an ACK that may never
        // come, and the RTO fired with the repair due.
        self.cwnd = pipe + sndcnt;
    }

    /// The congestion window during fast recovery.
    pub fn cwnd(&self) -> usize {
        self.cwnd
    }

    /// Bytes that may still be sent on this ACK.
    #[cfg(test)]
    pub fn allowance(&self) -> usize {
        self.sndcnt
    }

    /// `n` bytes were (re)transmitted.
    pub fn on_sent(&mut self, n: usize) {
        self.out += n;
        self.sndcnt = self.sndcnt.saturating_sub(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proportional_then_ssrb() {
        // Flight 20 segments, ssthresh 10: one segment out per two delivered.
        let mut p = Prr::start(20_000);
        p.on_ack(1000, 18_000, 10_000, 1000);
        assert_eq!(p.allowance(), 500);
        assert_eq!(p.cwnd(), 18_500);
        p.on_sent(500);
        // Held until the next ACK (the sender's pipe grew by what it sent).
        assert_eq!(p.cwnd(), 18_500);
        p.on_ack(1000, 17_000, 10_000, 1000);
        assert_eq!(p.allowance(), 500);
        p.on_sent(500);
        // Pipe below ssthresh: catch up, at most delivered + 1 MSS.
        p.on_ack(1000, 7_000, 10_000, 1000);
        assert_eq!(p.allowance(), 3000);
        p.on_sent(2000);
        assert_eq!(p.allowance(), 1000);
    }
}
