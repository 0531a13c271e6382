//! CUBIC congestion control (RFC 9438).
//!
//! Windows are kept in bytes (as f64 so the cubic function's fractional
//! growth is not lost between ACKs); the cubic function itself works in
//! segments, as in the RFC.

use super::hystart::{Growth, HyStart};
use super::{initial_window, slow_start, CongestionControl};
use crate::time::Instant;
use core::time::Duration;

/// RFC 9438 §5.1: C = 0.4 (segments / s³).
pub const C: f64 = 0.4;
/// RFC 9438 §4.6: β_cubic = 0.7.
pub const BETA_CUBIC: f64 = 0.7;
/// RFC 9438 §4.3: α_cubic = 3·(1 - β_cubic) / (1 + β_cubic).
pub const ALPHA_CUBIC: f64 = 3.0 * (1.0 - BETA_CUBIC) / (1.0 + BETA_CUBIC);

/// State saved before a reduction so a spurious one can be undone (§4.9).
#[derive(Debug, Clone, Copy)]
struct Saved {
    cwnd: f64,
    ssthresh: usize,
    w_max: f64,
    cwnd_prior: f64,
}

/// CUBIC window state.
#[derive(Debug)]
pub struct Cubic {
    mss: usize,
    iw_segments: u32,
    /// Congestion window in bytes (written only by `set_cwnd`).
    cwnd: f64,
    /// `cwnd` as whole bytes, kept with it: the sender reads the window on
    /// every ACK and transmit, and an `f64` to `usize` conversion costs
    /// about thirty instructions (`bench/echo_vs_linux.md`).
    cwnd_bytes: usize,
    ssthresh: usize,
    /// RFC 9438 §4.1: window just before the last reduction (bytes), after
    /// fast convergence (§4.7).
    w_max: f64,
    /// cwnd when ssthresh was last set (bytes): α_cubic switches to 1 once
    /// W_est reaches it (§4.3).
    cwnd_prior: f64,
    /// RFC 9438 §4.2: start of the current congestion avoidance stage.
    t_epoch: Option<Instant>,
    /// cwnd at `t_epoch` (bytes).
    cwnd_epoch: f64,
    /// RFC 9438 §4.2 eq. 2: seconds to reach W_max from `cwnd_epoch`.
    k: f64,
    /// RFC 9438 §4.3: Reno-friendly estimate (bytes).
    w_est: f64,
    /// Set by an RTO: the next epoch uses K = 0, W_max = cwnd_epoch (§4.8).
    after_rto: bool,
    min_rtt: Option<Duration>,
    saved: Option<Saved>,
    /// RFC 9406 HyStart++ for the initial slow start (`None`: disabled).
    hystart: Option<HyStart>,
}

impl Cubic {
    pub fn new(mss: usize, iw_segments: u32) -> Self {
        let mss = mss.max(1);
        Cubic {
            mss,
            iw_segments,
            cwnd: initial_window(mss, iw_segments) as f64,
            cwnd_bytes: initial_window(mss, iw_segments),
            ssthresh: usize::MAX,
            w_max: 0.0,
            cwnd_prior: 0.0,
            t_epoch: None,
            cwnd_epoch: 0.0,
            k: 0.0,
            w_est: 0.0,
            after_rto: false,
            min_rtt: None,
            saved: None,
            hystart: Some(HyStart::new()),
        }
    }

    /// Use HyStart++ (RFC 9406) in the initial slow start (on by default).
    pub fn set_hystart(&mut self, on: bool) {
        self.hystart = on.then(HyStart::new);
    }

    /// RFC 9406: HyStart++ applies only to the initial slow start.
    fn hystart_growth(&mut self, acked: usize, in_flight: usize, rtt: Option<Duration>) -> Growth {
        match self.hystart.as_mut() {
            Some(h) if self.ssthresh == usize::MAX => h.on_ack(acked, in_flight, rtt, self.mss),
            _ => Growth::SlowStart,
        }
    }

    fn finish_hystart(&mut self) {
        if let Some(h) = self.hystart.as_mut() {
            h.finish();
        }
    }

    /// W_max in bytes (0 before the first congestion event).
    pub fn w_max(&self) -> f64 {
        self.w_max
    }

    /// K in seconds of the current epoch (0 outside congestion avoidance).
    pub fn k(&self) -> f64 {
        self.k
    }

    /// RFC 9438 §4.2 eq. 1: W_cubic(t) = C·(t - K)³ + W_max, in bytes, for
    /// `t` seconds since the epoch.
    pub fn w_cubic(&self, t: f64) -> f64 {
        let w_max_segs = self.w_max / self.mss as f64;
        (C * (t - self.k).powi(3) + w_max_segs) * self.mss as f64
    }

    /// The only write of `cwnd`: `cwnd_bytes` follows it.
    #[inline(always)]
    fn set_cwnd(&mut self, cwnd: f64) {
        self.cwnd = cwnd;
        self.cwnd_bytes = cwnd as usize;
    }

    fn mss_f(&self) -> f64 {
        self.mss as f64
    }

    /// RFC 9438 §4.2: a new congestion avoidance stage begins.
    fn start_epoch(&mut self, now: Instant) {
        self.t_epoch = Some(now);
        self.cwnd_epoch = self.cwnd;
        self.w_est = self.cwnd;
        if self.after_rto || self.w_max <= self.cwnd {
            // §4.8 (and growth beyond a stale W_max): K = 0, W_max = cwnd_epoch.
            self.w_max = self.cwnd;
            self.k = 0.0;
        } else {
            // §4.2 eq. 2: K = cubic_root((W_max - cwnd_epoch) / C), in segments.
            self.k = ((self.w_max - self.cwnd_epoch) / self.mss_f() / C).cbrt();
        }
        self.after_rto = false;
    }

    /// Congestion avoidance for `acked` bytes (§4.3–§4.5).
    fn avoid(&mut self, now: Instant, acked: usize) {
        let t_epoch = match self.t_epoch {
            Some(t) => t,
            None => {
                self.start_epoch(now);
                now
            }
        };
        let t = now.saturating_since(t_epoch).as_secs_f64();
        let rtt = self.min_rtt.unwrap_or(Duration::ZERO).as_secs_f64();
        let mss = self.mss_f();
        let segs_acked = acked as f64 / mss;
        let cwnd_segs = self.cwnd / mss;

        // §4.3: W_est += α_cubic · segments_acked / cwnd; α_cubic becomes 1
        // once W_est reaches cwnd_prior.
        let alpha = if self.w_est >= self.cwnd_prior {
            1.0
        } else {
            ALPHA_CUBIC
        };
        self.w_est += alpha * segs_acked / cwnd_segs * mss;

        if self.w_cubic(t) < self.w_est {
            // §4.3: Reno-friendly region: cwnd = W_est.
            self.set_cwnd(self.cwnd.max(self.w_est));
        } else {
            // §4.4/§4.5: concave and convex regions: target = W_cubic(t + RTT)
            // bounded to [cwnd, 1.5·cwnd]; cwnd += (target - cwnd) / cwnd per
            // acknowledged segment (a stretch ACK of more than a window
            // reaches the target, not beyond).
            let target = self.w_cubic(t + rtt).clamp(self.cwnd, 1.5 * self.cwnd);
            self.set_cwnd(self.cwnd + (target - self.cwnd) * (segs_acked / cwnd_segs).min(1.0));
        }
    }

    /// `on_ack` for a window in use: slow start (HyStart++) or congestion
    /// avoidance; out of line, an application-limited ACK does not get here.
    #[inline(never)]
    fn grow(&mut self, now: Instant, acked: usize, in_flight: usize, rtt: Option<Duration>) {
        let mut acked = acked;
        if self.cwnd() < self.ssthresh {
            match self.hystart_growth(acked, in_flight, rtt) {
                Growth::SlowStart => {
                    // §4.10: slow start as RFC 5681 with RFC 3465 byte counting.
                    let (cwnd, left) = slow_start(self.cwnd(), self.ssthresh, acked, self.mss);
                    self.set_cwnd(cwnd as f64 + self.cwnd.fract());
                    acked = left;
                    if acked == 0 {
                        return;
                    }
                }
                Growth::Css(inc) => {
                    // RFC 9406 §4.2: Conservative Slow Start.
                    self.set_cwnd(self.cwnd + inc as f64);
                    return;
                }
                Growth::EnterAvoidance => {
                    // RFC 9406 §4.2: after CSS_ROUNDS, ssthresh = cwnd.
                    self.ssthresh = self.cwnd();
                }
            }
        }
        self.avoid(now, acked);
    }

    fn save(&mut self) {
        self.saved = Some(Saved {
            cwnd: self.cwnd,
            ssthresh: self.ssthresh,
            w_max: self.w_max,
            cwnd_prior: self.cwnd_prior,
        });
    }

    /// §4.6: ssthresh = flight_size · β_cubic, at least 2 segments.
    fn reduced_ssthresh(&self, in_flight: usize) -> usize {
        ((in_flight as f64 * BETA_CUBIC) as usize).max(2 * self.mss)
    }
}

impl CongestionControl for Cubic {
    #[inline(always)]
    fn cwnd(&self) -> usize {
        self.cwnd_bytes
    }

    fn ssthresh(&self) -> usize {
        self.ssthresh
    }

    #[inline]
    fn on_ack(&mut self, now: Instant, acked: usize, in_flight: usize, rtt: Option<Duration>) {
        if let Some(r) = rtt {
            self.min_rtt = Some(self.min_rtt.map_or(r, |m| m.min(r)));
        }
        if !super::cwnd_limited(self.cwnd(), in_flight) || acked == 0 {
            // §5.8: an application-limited flow does not grow its window.
            return;
        }
        self.grow(now, acked, in_flight, rtt);
    }

    fn on_congestion_event(&mut self, _now: Instant, in_flight: usize) {
        self.save();
        self.cwnd_prior = self.cwnd;
        // §4.7 fast convergence: release bandwidth when W_max keeps falling.
        self.w_max = if self.cwnd < self.w_max {
            self.cwnd * (1.0 + BETA_CUBIC) / 2.0
        } else {
            self.cwnd
        };
        self.finish_hystart();
        // §4.6 multiplicative decrease.
        self.ssthresh = self.reduced_ssthresh(in_flight);
        self.set_cwnd(self.ssthresh as f64);
        self.t_epoch = None;
    }

    fn on_recovery_exit(&mut self, _now: Instant) {
        self.set_cwnd(self.ssthresh as f64);
    }

    fn on_rto(&mut self, _now: Instant, in_flight: usize) {
        // §4.8: Reno's loss window, ssthresh with β_cubic; the next epoch
        // starts with K = 0 and W_max = cwnd_epoch. Repeated RTOs keep the
        // state saved by the first.
        if self.cwnd > self.mss_f() || self.saved.is_none() {
            self.save();
            self.cwnd_prior = self.cwnd;
        }
        self.finish_hystart();
        self.ssthresh = self.reduced_ssthresh(in_flight);
        self.set_cwnd(self.mss_f());
        self.t_epoch = None;
        self.after_rto = true;
    }

    fn on_spurious(&mut self, _now: Instant) {
        // §4.9: restore the state before the spurious reduction.
        if let Some(s) = self.saved.take() {
            self.set_cwnd(self.cwnd.max(s.cwnd));
            self.ssthresh = self.ssthresh.max(s.ssthresh);
            self.w_max = s.w_max;
            self.cwnd_prior = s.cwnd_prior;
            self.t_epoch = None;
            self.after_rto = false;
        }
    }

    fn on_idle_restart(&mut self, _now: Instant) {
        // RFC 5681 §4.1 restart window; RFC 9438 §5.8: the idle time must
        // not count as growth time, so a new epoch begins.
        self.set_cwnd(
            self.cwnd
                .min(initial_window(self.mss, self.iw_segments) as f64),
        );
        self.t_epoch = None;
    }

    fn penalise(&mut self, _now: Instant) {
        let prior = self.cwnd;
        let (cwnd, ssthresh) = super::penalised(self.cwnd(), self.ssthresh, self.mss);
        self.set_cwnd(cwnd as f64);
        if ssthresh != self.ssthresh {
            // In congestion avoidance: a new epoch from the halved window
            // back towards the one it had (§4.2, W_max as after a loss).
            self.ssthresh = ssthresh;
            self.w_max = prior;
            self.cwnd_prior = prior;
            self.t_epoch = None;
        }
    }

    fn set_mss(&mut self, mss: usize) {
        let mss = mss.max(1);
        let f = mss as f64 / self.mss as f64;
        self.set_cwnd((self.cwnd * f).max(mss as f64));
        if self.ssthresh != usize::MAX {
            self.ssthresh = ((self.ssthresh as f64 * f) as usize).max(2 * mss);
        }
        self.w_max *= f;
        self.cwnd_prior *= f;
        self.cwnd_epoch *= f;
        self.w_est *= f;
        self.mss = mss;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    fn at(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() <= eps
    }

    /// A CUBIC sender at `w` segments that just saw a loss with a full window
    /// in flight.
    fn after_loss(w: usize) -> Cubic {
        let mut cc = Cubic::new(MSS, w as u32);
        cc.on_congestion_event(at(0), w * MSS);
        cc
    }

    #[test]
    fn alpha_matches_rfc() {
        assert!(close(ALPHA_CUBIC, 0.9 / 1.7, 1e-12));
    }

    #[test]
    fn slow_start_doubles_per_rtt() {
        let mut cc = Cubic::new(MSS, 10);
        assert_eq!(cc.cwnd(), 10 * MSS);
        assert_eq!(cc.ssthresh(), usize::MAX);
        for round in 0..3u64 {
            let w = cc.cwnd();
            // Delayed ACKs: 2 segments each; ABC counts both.
            for i in 0..w / (2 * MSS) {
                cc.on_ack(at(round * 100), 2 * MSS, w + 2 * MSS * i, None);
            }
            assert_eq!(cc.cwnd(), 2 * w);
        }
        // Stretch ACK capped at L = 2·SMSS.
        let w = cc.cwnd();
        cc.on_ack(at(400), 8 * MSS, w, None);
        assert_eq!(cc.cwnd(), w + 2 * MSS);
    }

    #[test]
    fn penalised_halves_and_starts_an_epoch_back_to_the_old_window() {
        let mut cc = after_loss(100);
        cc.penalise(at(10));
        assert_eq!((cc.cwnd(), cc.ssthresh()), (35 * MSS, 35 * MSS));
        assert!(close(cc.w_max(), 70.0 * MSS as f64, 1e-9));
        // Grows back along a new cubic curve, not at once.
        cc.on_ack(at(20), MSS, 35 * MSS, Some(Duration::from_millis(10)));
        assert!(cc.cwnd() < 36 * MSS, "{}", cc.cwnd());
    }

    #[test]
    fn multiplicative_decrease_and_fast_convergence() {
        let mut cc = after_loss(100);
        assert_eq!(cc.ssthresh(), 70 * MSS);
        assert_eq!(cc.cwnd(), 70 * MSS);
        assert!(close(cc.w_max(), 100.0 * MSS as f64, 1e-9));
        // A second loss below W_max: fast convergence, W_max = cwnd·(1+β)/2.
        cc.on_congestion_event(at(10), 70 * MSS);
        assert!(close(cc.w_max(), 70.0 * 0.85 * MSS as f64, 1e-6));
        assert_eq!(cc.cwnd(), 49 * MSS);
        // ssthresh never below 2 segments.
        cc.on_congestion_event(at(20), MSS);
        assert_eq!(cc.ssthresh(), 2 * MSS);
        assert_eq!(cc.cwnd(), 2 * MSS);
        cc.on_recovery_exit(at(30));
        assert_eq!(cc.cwnd(), 2 * MSS);
    }

    #[test]
    fn k_matches_equation_2() {
        let mut cc = after_loss(100);
        cc.on_ack(at(1), MSS, 70 * MSS, Some(Duration::from_millis(100)));
        // K = cbrt((100 - 70) / 0.4) = cbrt(75)
        assert!(close(cc.k(), 75f64.cbrt(), 1e-9), "K = {}", cc.k());
        assert!(close(cc.w_cubic(0.0), 70.0 * MSS as f64, 1e-6));
        assert!(close(cc.w_cubic(cc.k()), 100.0 * MSS as f64, 1e-6));
    }

    #[test]
    fn window_follows_w_cubic() {
        // Large RTT so the cubic region dominates. The first ACK opens the
        // epoch at t = 0; afterwards each round acknowledges a whole window in
        // one ACK at t, which moves cwnd exactly to W_cubic(t + RTT).
        let rtt = Duration::from_millis(100);
        let mut cc = after_loss(1000);
        cc.on_ack(at(0), MSS, 700 * MSS, Some(rtt));
        let mut t_ms = 100u64;
        for _ in 0..120 {
            let w = cc.cwnd;
            cc.on_ack(at(t_ms), w as usize, w as usize, Some(rtt));
            let t = t_ms as f64 / 1000.0;
            assert!(cc.w_cubic(t) >= cc.w_est, "t={t_ms}: Reno region");
            let expect = cc.w_cubic(t + 0.1).min(1.5 * w);
            // Whole-byte acks of a fractional window: within a byte.
            assert!(
                close(cc.cwnd, expect, 1.0),
                "t={t_ms} cwnd={} W_cubic={expect}",
                cc.cwnd
            );
            t_ms += 100;
        }
        // Concave then convex: past K (9.1 s) the window exceeds W_max.
        assert!(cc.cwnd() > 1000 * MSS);
        // After the ack at 12 s: W_cubic(12.1) = 0.4·(12.1 - K)³ + 1000 segments.
        let k = 750f64.cbrt();
        let w = (0.4 * (12.1 - k).powi(3) + 1000.0) * MSS as f64;
        assert!(close(cc.cwnd, w, 1.0), "{} vs {w}", cc.cwnd);
    }

    #[test]
    fn target_clamped_to_one_and_a_half_cwnd() {
        let rtt = Duration::from_millis(100);
        let mut cc = after_loss(100);
        let w = cc.cwnd();
        // Jump far into the convex region: W_cubic is huge, growth is capped.
        cc.on_ack(at(0), MSS, w, Some(rtt));
        let w = cc.cwnd;
        cc.on_ack(at(60_000), w as usize, w as usize, Some(rtt));
        assert!(close(cc.cwnd, 1.5 * w, 1.0), "{} vs {}", cc.cwnd, 1.5 * w);
    }

    #[test]
    fn huge_stretch_ack_stops_at_target() {
        let rtt = Duration::from_millis(100);
        let mut cc = after_loss(1000);
        cc.on_ack(at(0), MSS, 700 * MSS, Some(rtt));
        let w = cc.cwnd as usize;
        // Two windows in one ACK: cwnd reaches W_cubic(t + RTT), no further.
        cc.on_ack(at(100), 2 * w, w, Some(rtt));
        assert!(cc.w_cubic(0.1) > cc.w_est);
        assert!(close(cc.cwnd, cc.w_cubic(0.2), 1e-6), "{}", cc.cwnd);
    }

    #[test]
    fn reno_friendly_region_at_small_rtt() {
        // Small W_max and a 1 ms RTT: Reno's linear growth beats the cubic
        // curve, so cwnd follows W_est.
        let rtt = Duration::from_millis(1);
        let mut cc = after_loss(20);
        let mut t_us = 0u64;
        for _ in 0..200 {
            let w = cc.cwnd();
            // One ACK per segment for a window each RTT.
            let mut left = w;
            while left >= MSS {
                cc.on_ack(Instant::from_micros(t_us), MSS, w, Some(rtt));
                left -= MSS;
            }
            t_us += 1000;
        }
        let t = t_us as f64 / 1e6;
        assert!(
            cc.w_cubic(t) < cc.w_est,
            "cubic {} est {}",
            cc.w_cubic(t),
            cc.w_est
        );
        assert!(close(cc.cwnd, cc.w_est, 1e-6));
        // α_cubic ≈ 0.53 segments per RTT until W_est reaches cwnd_prior
        // (20 segments), then 1 per RTT: well above 14 + 0.53·200 / 2.
        assert!(cc.cwnd() > 40 * MSS, "cwnd {}", cc.cwnd());
        assert!(cc.cwnd() < 14 * MSS + 200 * MSS, "cwnd {}", cc.cwnd());
    }

    #[test]
    fn rto_loss_window_then_k_zero() {
        let mut cc = Cubic::new(MSS, 50);
        cc.on_rto(at(0), 50 * MSS);
        assert_eq!(cc.cwnd(), MSS);
        assert_eq!(cc.ssthresh(), 35 * MSS);
        // Slow start back to ssthresh, then the epoch starts with K = 0.
        while cc.cwnd() < cc.ssthresh() {
            let w = cc.cwnd();
            cc.on_ack(at(1), MSS, w, Some(Duration::from_millis(50)));
        }
        cc.on_ack(at(2), MSS, 35 * MSS, None);
        assert_eq!(cc.k(), 0.0);
        assert!(close(cc.w_max(), 35.0 * MSS as f64, 1e-9));
        // Undo restores the pre-RTO window.
        cc.on_spurious(at(3));
        assert_eq!(cc.cwnd(), 50 * MSS);
        assert_eq!(cc.ssthresh(), usize::MAX);
    }

    #[test]
    fn idle_restart_resets_epoch() {
        let mut cc = after_loss(100);
        cc.on_ack(at(0), MSS, 70 * MSS, None);
        assert!(cc.t_epoch.is_some());
        let w = cc.cwnd();
        cc.on_idle_restart(at(10_000));
        assert!(cc.t_epoch.is_none());
        // IW is 100 segments here: the restart window does not cut.
        assert_eq!(cc.cwnd(), w);
        let mut cc = Cubic::new(MSS, 10);
        cc.on_congestion_event(at(0), 100 * MSS);
        cc.on_idle_restart(at(1));
        assert_eq!(cc.cwnd(), 10 * MSS);
    }

    #[test]
    fn hystart_leaves_slow_start_on_rtt_rise() {
        let mut cc = Cubic::new(MSS, 10);
        let mut t = 0u64;
        let mut rtt = 50u64;
        // Two rounds at a stable RTT double the window twice.
        for _ in 0..2 {
            let w = cc.cwnd();
            for _ in 0..w / MSS {
                cc.on_ack(at(t), MSS, w + MSS, Some(Duration::from_millis(rtt)));
            }
            t += rtt;
        }
        assert_eq!(cc.cwnd(), 40 * MSS);
        // The queue builds: +10 ms. CSS after 8 samples, then 5 CSS rounds
        // at a quarter of the growth, then congestion avoidance.
        rtt = 60;
        let mut rounds = 0;
        while cc.ssthresh() == usize::MAX {
            let w = cc.cwnd();
            for _ in 0..w / MSS {
                cc.on_ack(at(t), MSS, w + MSS, Some(Duration::from_millis(rtt)));
            }
            t += rtt;
            rounds += 1;
            assert!(rounds < 10, "cwnd {}", cc.cwnd());
        }
        assert_eq!(rounds, 6);
        // First 60 ms round: 7 slow-start ACKs (+7 MSS), the 8th sample trips
        // CSS: 33 ACKs at a quarter segment: 55.25 segments. Then 4 CSS rounds
        // of +25 %: 69, 86.25, 107.75, 134.5. The test acks whole segments
        // only, so the fifth CSS round ends 4 ACKs into the next loop (three
        // more CSS ACKs), where ssthresh = cwnd.
        assert_eq!(cc.ssthresh(), 135_250);
        // Plain slow start would have reached 40 · 2^6 segments.
        assert!(cc.cwnd() < 140 * MSS, "cwnd {}", cc.cwnd());
    }

    #[test]
    fn hystart_disabled_is_plain_slow_start() {
        let mut cc = Cubic::new(MSS, 10);
        cc.set_hystart(false);
        for rtt in [50u64, 50, 90, 90] {
            let w = cc.cwnd();
            for _ in 0..w / MSS {
                cc.on_ack(at(0), MSS, w, Some(Duration::from_millis(rtt)));
            }
        }
        assert_eq!(cc.cwnd(), 160 * MSS);
        assert_eq!(cc.ssthresh(), usize::MAX);
    }

    #[test]
    fn app_limited_does_not_grow() {
        let mut cc = Cubic::new(MSS, 10);
        cc.on_ack(at(0), MSS, 3 * MSS, None);
        assert_eq!(cc.cwnd(), 10 * MSS);
    }

    #[test]
    fn factory_builds_both() {
        let c = super::super::new(crate::tcp::CcKind::Cubic, 1460, 10);
        assert_eq!(c.cwnd(), 14_600);
        let r = super::super::new(crate::tcp::CcKind::NewReno, 1460, 4);
        assert_eq!(r.cwnd(), 4 * 1460);
    }
}
