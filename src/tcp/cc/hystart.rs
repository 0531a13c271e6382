//! HyStart++ (RFC 9406): leave the initial slow start when the round's
//! minimum RTT rises (the queue starts to build), through a few rounds of
//! Conservative Slow Start (CSS) instead of overshooting into heavy loss.
//!
//! Rounds are delimited without sequence numbers: a round ends once the
//! bytes that were in flight when it began have been acknowledged, which is
//! RFC 9406's `windowEnd = SND.NXT` expressed in acknowledged-byte space.

use core::time::Duration;

/// RFC 9406 §4.3 constants.
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
const MIN_RTT_DIVISOR: u32 = 8;
const N_RTT_SAMPLE: u32 = 8;
const CSS_GROWTH_DIVISOR: usize = 4;
const CSS_ROUNDS: u32 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Standard slow start, watching the RTT.
    SlowStart,
    /// Conservative Slow Start, with the baseline RTT and rounds done.
    Css { baseline: Duration, rounds: u32 },
    /// HyStart++ no longer applies (left the initial slow start).
    Done,
}

/// HyStart++ state for the initial slow start.
#[derive(Debug, Clone)]
pub struct HyStart {
    phase: Phase,
    /// Bytes acknowledged since the connection began.
    acked_total: u64,
    /// `acked_total` at which the current round ends.
    window_end: u64,
    last_round_min_rtt: Option<Duration>,
    current_round_min_rtt: Option<Duration>,
    rtt_sample_count: u32,
}

/// What the controller should do with an ACK in slow start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Growth {
    /// Standard slow start increase (RFC 5681, ABC).
    SlowStart,
    /// CSS: grow by this many bytes (already divided).
    Css(usize),
    /// CSS is over: set ssthresh = cwnd and continue in congestion avoidance.
    EnterAvoidance,
}

impl Default for HyStart {
    fn default() -> Self {
        Self::new()
    }
}

impl HyStart {
    pub fn new() -> Self {
        HyStart {
            phase: Phase::SlowStart,
            acked_total: 0,
            window_end: 0,
            last_round_min_rtt: None,
            current_round_min_rtt: None,
            rtt_sample_count: 0,
        }
    }

    /// Whether the initial slow start is still governed by HyStart++.
    pub fn active(&self) -> bool {
        self.phase != Phase::Done
    }

    /// In Conservative Slow Start.
    pub fn in_css(&self) -> bool {
        matches!(self.phase, Phase::Css { .. })
    }

    /// RFC 9406 §4.2: loss, ECN or a timeout ends HyStart++ for good.
    pub fn finish(&mut self) {
        self.phase = Phase::Done;
    }

    /// An ACK of `acked` new bytes in the initial slow start, `in_flight`
    /// outstanding before it, `rtt` the latest sample.
    pub fn on_ack(
        &mut self,
        acked: usize,
        in_flight: usize,
        rtt: Option<Duration>,
        mss: usize,
    ) -> Growth {
        if self.phase == Phase::Done {
            return Growth::SlowStart;
        }
        self.acked_total += acked as u64;
        let mut round_ended = false;
        if self.acked_total >= self.window_end {
            // RFC 9406 §4.2: a new round begins.
            round_ended = self.window_end != 0;
            self.window_end = self.acked_total + in_flight.saturating_sub(acked) as u64;
            self.last_round_min_rtt = self.current_round_min_rtt;
            self.current_round_min_rtt = None;
            self.rtt_sample_count = 0;
        }
        if let Some(r) = rtt {
            self.current_round_min_rtt = Some(self.current_round_min_rtt.map_or(r, |m| m.min(r)));
            self.rtt_sample_count += 1;
        }
        let enough = self.rtt_sample_count >= N_RTT_SAMPLE;
        match self.phase {
            Phase::SlowStart => {
                if let (true, Some(cur), Some(last)) =
                    (enough, self.current_round_min_rtt, self.last_round_min_rtt)
                {
                    // RttThresh = clamp(lastRoundMinRTT / MIN_RTT_DIVISOR).
                    let thresh = (last / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH);
                    if cur >= last + thresh {
                        self.phase = Phase::Css {
                            baseline: cur,
                            rounds: 0,
                        };
                        return self.css_growth(acked, mss);
                    }
                }
                Growth::SlowStart
            }
            Phase::Css { baseline, rounds } => {
                if let (true, Some(cur)) = (enough, self.current_round_min_rtt) {
                    if cur < baseline {
                        // RFC 9406 §4.2: the RTT rise was spurious; back to
                        // standard slow start.
                        self.phase = Phase::SlowStart;
                        return Growth::SlowStart;
                    }
                }
                let rounds = rounds + u32::from(round_ended);
                if rounds >= CSS_ROUNDS {
                    self.phase = Phase::Done;
                    return Growth::EnterAvoidance;
                }
                self.phase = Phase::Css { baseline, rounds };
                self.css_growth(acked, mss)
            }
            Phase::Done => Growth::SlowStart,
        }
    }

    /// RFC 9406 §4.2: cwnd += min(N, L·SMSS) / CSS_GROWTH_DIVISOR (L = 2 as
    /// in our RFC 3465 slow start).
    fn css_growth(&self, acked: usize, mss: usize) -> Growth {
        Growth::Css(acked.min(2 * mss) / CSS_GROWTH_DIVISOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    /// One round of `segs` single-segment ACKs, all with RTT `rtt`; the
    /// sender has `segs` segments in flight besides the one acked, so the
    /// first ACK of each call starts a round.
    fn round(h: &mut HyStart, segs: usize, rtt: Duration) -> Vec<Growth> {
        (0..segs)
            .map(|_| h.on_ack(MSS, (segs + 1) * MSS, Some(rtt), MSS))
            .collect()
    }

    #[test]
    fn stays_in_slow_start_at_stable_rtt() {
        let mut h = HyStart::new();
        for _ in 0..10 {
            assert!(round(&mut h, 16, ms(50))
                .iter()
                .all(|g| *g == Growth::SlowStart));
        }
        assert!(h.active() && !h.in_css());
    }

    #[test]
    fn rtt_rise_enters_css_then_avoidance() {
        let mut h = HyStart::new();
        round(&mut h, 16, ms(50));
        round(&mut h, 16, ms(50));
        // 50 ms / 8 = 6.25 ms threshold; a 7 ms rise trips it after 8 samples.
        let g = round(&mut h, 16, ms(57));
        assert_eq!(g[..7], [Growth::SlowStart; 7]);
        assert_eq!(g[7], Growth::Css(MSS / 4));
        assert!(h.in_css());
        let mut rounds = 1;
        loop {
            let g = round(&mut h, 16, ms(57));
            if g.contains(&Growth::EnterAvoidance) {
                break;
            }
            rounds += 1;
            assert!(rounds < 10);
        }
        assert_eq!(rounds, CSS_ROUNDS);
        assert!(!h.active());
    }

    #[test]
    fn small_rise_below_threshold_is_ignored() {
        let mut h = HyStart::new();
        round(&mut h, 16, ms(50));
        round(&mut h, 16, ms(50));
        round(&mut h, 16, ms(56));
        assert!(!h.in_css());
    }

    #[test]
    fn spurious_css_returns_to_slow_start() {
        let mut h = HyStart::new();
        round(&mut h, 16, ms(50));
        round(&mut h, 16, ms(50));
        round(&mut h, 16, ms(70));
        assert!(h.in_css());
        let g = round(&mut h, 16, ms(60));
        assert_eq!(g[7], Growth::SlowStart);
        assert!(h.active() && !h.in_css());
    }
}
