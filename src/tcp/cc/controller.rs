//! The connection's congestion controller as one enum over the three
//! algorithms: the sender asks for cwnd on every ACK and transmit, and a
//! `Box<dyn CongestionControl>` made each of those an indirect call the
//! compiler could not inline (`bench/echo_vs_linux.md`, branch ic7).

use super::cubic::Cubic;
use super::lia::Lia;
use super::newreno::NewReno;
use super::{CcKind, CongestionControl};
use crate::time::Instant;
use core::time::Duration;

/// NewReno (RFC 5681/6582), CUBIC (RFC 9438) or a coupled MPTCP subflow
/// (RFC 6356); each call is the algorithm's [`CongestionControl`] method.
#[derive(Debug)]
pub enum Controller {
    NewReno(NewReno),
    Cubic(Cubic),
    Lia(Lia),
}

/// One method of the algorithm in use, dispatched statically.
macro_rules! each {
    ($self:ident, $c:ident => $e:expr) => {
        match $self {
            Controller::NewReno($c) => $e,
            Controller::Cubic($c) => $e,
            Controller::Lia($c) => $e,
        }
    };
}

impl Controller {
    /// The controller for `kind` with initial window `iw_segments`·`mss`
    /// (RFC 6928).
    pub fn new(kind: CcKind, mss: usize, iw_segments: u32) -> Self {
        match kind {
            CcKind::NewReno => Controller::NewReno(NewReno::new(mss, iw_segments)),
            CcKind::Cubic => Controller::Cubic(Cubic::new(mss, iw_segments)),
        }
    }
}

/// The same methods without the trait in scope (callers need no import).
impl Controller {
    #[inline(always)]
    pub fn cwnd(&self) -> usize {
        each!(self, c => c.cwnd())
    }
    #[inline(always)]
    pub fn ssthresh(&self) -> usize {
        each!(self, c => c.ssthresh())
    }
    #[inline]
    pub fn on_ack(&mut self, now: Instant, acked: usize, in_flight: usize, rtt: Option<Duration>) {
        each!(self, c => c.on_ack(now, acked, in_flight, rtt))
    }
    pub fn on_congestion_event(&mut self, now: Instant, in_flight: usize) {
        each!(self, c => c.on_congestion_event(now, in_flight))
    }
    pub fn on_recovery_exit(&mut self, now: Instant) {
        each!(self, c => c.on_recovery_exit(now))
    }
    pub fn on_rto(&mut self, now: Instant, in_flight: usize) {
        each!(self, c => c.on_rto(now, in_flight))
    }
    pub fn on_spurious(&mut self, now: Instant) {
        each!(self, c => c.on_spurious(now))
    }
    pub fn on_idle_restart(&mut self, now: Instant) {
        each!(self, c => c.on_idle_restart(now))
    }
    pub fn set_mss(&mut self, mss: usize) {
        each!(self, c => c.set_mss(mss))
    }
    pub fn penalise(&mut self, now: Instant) {
        each!(self, c => c.penalise(now))
    }
}

impl CongestionControl for Controller {
    fn cwnd(&self) -> usize {
        Controller::cwnd(self)
    }
    fn ssthresh(&self) -> usize {
        Controller::ssthresh(self)
    }
    fn on_ack(&mut self, now: Instant, acked: usize, in_flight: usize, rtt: Option<Duration>) {
        Controller::on_ack(self, now, acked, in_flight, rtt)
    }
    fn on_congestion_event(&mut self, now: Instant, in_flight: usize) {
        Controller::on_congestion_event(self, now, in_flight)
    }
    fn on_recovery_exit(&mut self, now: Instant) {
        Controller::on_recovery_exit(self, now)
    }
    fn on_rto(&mut self, now: Instant, in_flight: usize) {
        Controller::on_rto(self, now, in_flight)
    }
    fn on_spurious(&mut self, now: Instant) {
        Controller::on_spurious(self, now)
    }
    fn on_idle_restart(&mut self, now: Instant) {
        Controller::on_idle_restart(self, now)
    }
    fn set_mss(&mut self, mss: usize) {
        Controller::set_mss(self, mss)
    }
    fn penalise(&mut self, now: Instant) {
        Controller::penalise(self, now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: usize = 1000;

    /// Each variant answers as the algorithm alone does, through a
    /// sequence of every event.
    #[test]
    fn dispatches_to_the_algorithm() {
        fn run(cc: &mut dyn CongestionControl) -> Vec<(usize, usize)> {
            let t = |ms| Instant::from_millis(ms);
            let rtt = Some(Duration::from_millis(10));
            let mut out = vec![];
            for i in 0..40 {
                let w = cc.cwnd();
                cc.on_ack(t(i * 10), MSS, w, rtt);
                out.push((cc.cwnd(), cc.ssthresh()));
            }
            cc.on_congestion_event(t(500), 40 * MSS);
            out.push((cc.cwnd(), cc.ssthresh()));
            cc.on_spurious(t(510));
            out.push((cc.cwnd(), cc.ssthresh()));
            cc.on_rto(t(600), 30 * MSS);
            out.push((cc.cwnd(), cc.ssthresh()));
            cc.on_recovery_exit(t(700));
            cc.set_mss(1400);
            out.push((cc.cwnd(), cc.ssthresh()));
            cc.penalise(t(800));
            cc.on_idle_restart(t(900));
            out.push((cc.cwnd(), cc.ssthresh()));
            out
        }
        for kind in [CcKind::NewReno, CcKind::Cubic] {
            let mut enum_cc = Controller::new(kind, MSS, 10);
            let got = run(&mut enum_cc);
            let want = match kind {
                CcKind::NewReno => run(&mut NewReno::new(MSS, 10)),
                CcKind::Cubic => run(&mut Cubic::new(MSS, 10)),
            };
            assert_eq!(got, want, "{kind:?}");
            assert!(got[39].0 > 10 * MSS, "{kind:?} grew: {got:?}");
        }
        let group = super::super::lia::LiaGroup::new();
        let mut enum_cc = Controller::Lia(Lia::new(group, MSS, 10));
        let got = run(&mut enum_cc);
        let want = run(&mut Lia::new(super::super::lia::LiaGroup::new(), MSS, 10));
        assert_eq!(got, want);
    }
}
