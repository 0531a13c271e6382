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
    }

    /// Bytes that may still be sent on this ACK.
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
        p.on_sent(500);
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
