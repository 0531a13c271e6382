//! RTT estimation and the retransmission timer (RFC 6298).

use crate::time::Instant;
use core::time::Duration;

/// SRTT/RTTVAR estimator and RTO with exponential backoff (RFC 6298 §2, §5).
#[derive(Debug, Clone)]
pub struct RttEstimator {
    // implementation-defined fields
    _private: (),
}

impl RttEstimator {
    /// `initial` is the RTO before any sample (1 s), clamped to `min..=max`.
    pub fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        let _ = (initial, min, max);
        todo!()
    }
    /// Feed one RTT measurement (RFC 6298 §2.2/2.3); resets the backoff.
    /// Karn's rule is the caller's job: never sample a retransmitted segment
    /// unless the sample comes from timestamps (RFC 7323 §4).
    pub fn sample(&mut self, rtt: Duration, now: Instant) {
        let _ = (rtt, now);
        todo!()
    }
    /// The current RTO including backoff, clamped to `max`.
    pub fn rto(&self) -> Duration {
        todo!()
    }
    /// RFC 6298 §5.5: double the RTO after a timeout.
    pub fn backoff(&mut self) {
        todo!()
    }
    /// Number of consecutive backoffs.
    pub fn backoffs(&self) -> u32 {
        todo!()
    }
    /// Smoothed RTT, if any sample was taken.
    pub fn srtt(&self) -> Option<Duration> {
        todo!()
    }
    /// RTT variance.
    pub fn rttvar(&self) -> Duration {
        todo!()
    }
    /// Smallest RTT seen (CUBIC and RACK use it).
    pub fn min_rtt(&self) -> Option<Duration> {
        todo!()
    }
    /// Latest sample.
    pub fn latest(&self) -> Option<Duration> {
        todo!()
    }
}
