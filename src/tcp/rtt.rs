//! RTT estimation and the retransmission timer (RFC 6298).

use crate::time::Instant;
use core::time::Duration;

/// RFC 6298 §2: clock granularity G. We measure in microseconds, but keep a
/// 1 ms floor on the variance term as Linux does.
const GRANULARITY_US: u64 = 1_000;
/// RFC 6298 §2: K = 4.
const K: u64 = 4;
/// How long a minimum RTT sample stays authoritative before a newer, larger
/// sample may replace it (route changes can raise the path's base RTT).
/// Linux uses 5 minutes (`tcp_min_rtt_wlen`).
const MIN_RTT_WINDOW_US: u64 = 300_000_000;

/// RFC 7323 §5.4: our timestamp clock, 1 ms a tick: the TSval a segment
/// sent at `t` carries.
#[inline(always)]
pub(crate) fn tsval_at(t: Instant) -> u32 {
    t.millis() as u32
}

/// Whether the echo `ecr` (TSecr) is of a TSval sent before `t`: the ACK
/// was triggered by a transmission earlier than the one at `t` (RFC 7323
/// §4.1; serial arithmetic, the clock wraps). 0 (no echo) never is.
#[inline]
pub(crate) fn echo_before(ecr: u32, t: Instant) -> bool {
    ecr != 0 && (ecr.wrapping_sub(tsval_at(t)) as i32) < 0
}

/// SRTT/RTTVAR estimator and RTO with exponential backoff (RFC 6298 §2, §5).
#[derive(Debug, Clone)]
pub struct RttEstimator {
    /// Smoothed RTT in µs; `None` until the first sample.
    srtt_us: Option<u64>,
    /// RTT variance in µs.
    rttvar_us: u64,
    /// RTO before backoff, already clamped to `min..=max`, in µs.
    base_rto_us: u64,
    min_us: u64,
    max_us: u64,
    /// Consecutive backoffs since the last sample (RFC 6298 §5.5).
    backoffs: u32,
    /// Latest sample in µs (samples are differences of µs `Instant`s:
    /// kept in µs, a sample is integer work, not `Duration`'s).
    latest_us: Option<u64>,
    /// Windowed minimum in µs: the smallest sample and when it was taken.
    min_rtt: Option<(u64, Instant)>,
}

impl RttEstimator {
    /// `initial` is the RTO before any sample (1 s), clamped to `min..=max`.
    pub fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        use crate::time::micros_of;
        let min_us = micros_of(min);
        let max_us = micros_of(max).max(min_us);
        RttEstimator {
            srtt_us: None,
            rttvar_us: 0,
            base_rto_us: micros_of(initial).clamp(min_us, max_us),
            min_us,
            max_us,
            backoffs: 0,
            latest_us: None,
            min_rtt: None,
        }
    }

    /// Feed one RTT measurement (RFC 6298 §2.2/2.3); resets the backoff.
    /// Karn's rule is the caller's job: never sample a retransmitted segment
    /// unless the sample comes from timestamps (RFC 7323 §4).
    pub fn sample(&mut self, rtt: Duration, now: Instant) {
        self.sample_us(crate::time::micros_of(rtt), now);
    }

    /// [`Self::sample`] of `rtt_us` µs (an ACK's sample: `now` less a
    /// send time).
    #[inline]
    pub fn sample_us(&mut self, rtt_us: u64, now: Instant) {
        let r = rtt_us.min(u64::MAX / 8);
        match self.srtt_us {
            None => {
                // RFC 6298 §2.2: SRTT <- R, RTTVAR <- R/2.
                self.srtt_us = Some(r);
                self.rttvar_us = r / 2;
            }
            Some(srtt) => {
                // RFC 6298 §2.3: RTTVAR <- (1 - beta)·RTTVAR + beta·|SRTT - R'|
                // then SRTT <- (1 - alpha)·SRTT + alpha·R', beta = 1/4,
                // alpha = 1/8 (RTTVAR first: it uses the old SRTT).
                self.rttvar_us = (3 * self.rttvar_us + srtt.abs_diff(r)) / 4;
                self.srtt_us = Some((7 * srtt + r) / 8);
            }
        }
        // RFC 6298 §2.2/2.3: RTO <- SRTT + max(G, K·RTTVAR); §2.4 and §2.5
        // bound it by the configured floor and ceiling.
        let srtt = self.srtt_us.unwrap_or(r);
        let rto = srtt.saturating_add(GRANULARITY_US.max(K.saturating_mul(self.rttvar_us)));
        self.base_rto_us = rto.clamp(self.min_us, self.max_us);
        // Karn's algorithm (RFC 6298 §5 note after 5.7): the backed-off RTO
        // is kept until a valid sample arrives; this is one.
        self.backoffs = 0;
        self.latest_us = Some(rtt_us);
        self.min_rtt = match self.min_rtt {
            Some((m, at)) if m <= rtt_us && now.0.saturating_sub(at.0) <= MIN_RTT_WINDOW_US => {
                Some((m, at))
            }
            _ => Some((rtt_us, now)),
        };
    }

    /// The current RTO including backoff, clamped to `max`.
    pub fn rto(&self) -> Duration {
        Duration::from_micros(self.rto_us())
    }

    /// [`RttEstimator::rto`] in µs: timers are armed on every ACK, and
    /// `Instant` is µs too, so no `Duration` round trip on that path.
    pub fn rto_us(&self) -> u64 {
        // RFC 6298 §5.5: RTO <- RTO·2 per timeout; §2.5: a maximum may be placed.
        let rto = 1u64
            .checked_shl(self.backoffs)
            .and_then(|m| self.base_rto_us.checked_mul(m))
            .unwrap_or(u64::MAX);
        rto.min(self.max_us)
    }

    /// RFC 6298 §5.5: double the RTO after a timeout.
    pub fn backoff(&mut self) {
        self.backoffs = self.backoffs.saturating_add(1);
    }

    /// Number of consecutive backoffs.
    pub fn backoffs(&self) -> u32 {
        self.backoffs
    }

    /// Smoothed RTT, if any sample was taken.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt_us.map(Duration::from_micros)
    }

    /// Smoothed RTT in µs, once sampled.
    pub fn srtt_us(&self) -> Option<u64> {
        self.srtt_us
    }

    /// RTT variance.
    pub fn rttvar(&self) -> Duration {
        Duration::from_micros(self.rttvar_us)
    }

    /// Smallest RTT seen (CUBIC and RACK use it), over a 5-minute window:
    /// a larger sample replaces the minimum once the minimum is older.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt.map(|(m, _)| Duration::from_micros(m))
    }

    /// [`Self::min_rtt`] in µs.
    #[inline]
    pub fn min_rtt_us(&self) -> Option<u64> {
        self.min_rtt.map(|(m, _)| m)
    }

    /// Latest sample.
    pub fn latest(&self) -> Option<Duration> {
        self.latest_us.map(Duration::from_micros)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn est() -> RttEstimator {
        RttEstimator::new(ms(1000), ms(200), ms(60_000))
    }

    #[test]
    fn initial_rto_and_clamping() {
        let e = est();
        assert_eq!(e.rto(), ms(1000));
        assert_eq!(e.srtt(), None);
        assert_eq!(e.min_rtt(), None);
        assert_eq!(e.latest(), None);
        assert_eq!(RttEstimator::new(ms(100), ms(200), ms(500)).rto(), ms(200));
        assert_eq!(RttEstimator::new(ms(900), ms(200), ms(500)).rto(), ms(500));
    }

    #[test]
    fn first_sample_rfc6298_2_2() {
        let mut e = est();
        e.sample(ms(100), Instant::ZERO);
        // SRTT = 100, RTTVAR = 50, RTO = 100 + 4·50 = 300 ms.
        assert_eq!(e.srtt(), Some(ms(100)));
        assert_eq!(e.rttvar(), ms(50));
        assert_eq!(e.rto(), ms(300));
        assert_eq!(e.latest(), Some(ms(100)));
        assert_eq!(e.min_rtt(), Some(ms(100)));
    }

    #[test]
    fn second_sample_rfc6298_2_3() {
        let mut e = est();
        e.sample(ms(100), Instant::ZERO);
        e.sample(ms(180), Instant::from_millis(10));
        // RTTVAR = 3/4·50 + 1/4·|100 - 180| = 37.5 + 20 = 57.5 ms
        // SRTT = 7/8·100 + 1/8·180 = 110 ms; RTO = 110 + 230 = 340 ms.
        assert_eq!(e.rttvar(), Duration::from_micros(57_500));
        assert_eq!(e.srtt(), Some(ms(110)));
        assert_eq!(e.rto(), ms(340));
        assert_eq!(e.latest(), Some(ms(180)));
        assert_eq!(e.min_rtt(), Some(ms(100)));
        e.sample(ms(60), Instant::from_millis(20));
        // RTTVAR = 3/4·57.5 + 1/4·50 = 55.625; SRTT = 7/8·110 + 60/8 = 103.75
        assert_eq!(e.rttvar(), Duration::from_micros(55_625));
        assert_eq!(e.srtt(), Some(Duration::from_micros(103_750)));
        assert_eq!(e.rto(), Duration::from_micros(103_750 + 4 * 55_625));
        assert_eq!(e.min_rtt(), Some(ms(60)));
    }

    #[test]
    fn granularity_floor_and_min_clamp() {
        let mut e = RttEstimator::new(ms(1000), Duration::ZERO, ms(60_000));
        // Identical samples drive RTTVAR to 0; G = 1 ms keeps RTO > SRTT.
        for _ in 0..100 {
            e.sample(Duration::from_micros(10_000), Instant::ZERO);
        }
        assert_eq!(e.rttvar(), Duration::ZERO);
        assert_eq!(e.rto(), Duration::from_micros(11_000));
        // With the usual floor, the clamp wins.
        let mut e = est();
        e.sample(ms(10), Instant::ZERO);
        assert_eq!(e.rto(), ms(200));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut e = RttEstimator::new(ms(1000), ms(200), ms(5_000));
        e.backoff();
        assert_eq!(e.rto(), ms(2000));
        e.backoff();
        assert_eq!(e.rto(), ms(4000));
        e.backoff();
        assert_eq!(e.rto(), ms(5000));
        for _ in 0..100 {
            e.backoff();
        }
        assert_eq!(e.backoffs(), 103);
        assert_eq!(e.rto(), ms(5000));
        e.sample(ms(100), Instant::ZERO);
        assert_eq!(e.backoffs(), 0);
        assert_eq!(e.rto(), ms(300));
    }

    #[test]
    fn min_rtt_window_expires() {
        let mut e = est();
        e.sample(ms(10), Instant::ZERO);
        e.sample(ms(50), Instant::from_millis(1_000));
        assert_eq!(e.min_rtt(), Some(ms(10)));
        e.sample(ms(50), Instant::from_millis(301_000));
        assert_eq!(e.min_rtt(), Some(ms(50)));
        e.sample(ms(70), Instant::from_millis(302_000));
        assert_eq!(e.min_rtt(), Some(ms(50)));
    }
}
