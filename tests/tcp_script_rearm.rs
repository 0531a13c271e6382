//! The stack's wheel re-arm asks `Connection::deadline_may_precede`
//! instead of computing the next deadline after every operation. Here a
//! wheel entry is kept as the stack keeps it (`stack::conns::rearm_inline`)
//! through a request/response exchange, and after every operation: when
//! the connection says its deadline cannot precede the entry, it does not
//! (`poll_at` is not earlier); the skip is taken in the steady state; and
//! an operation that arms a timer below the entry (the delayed ACK under
//! the RTO) is reported. With a derived deadline possibly on (keepalive),
//! it is always asked again.

mod tcp_harness;
use std::time::Duration;
use tcp_harness::*;
use xdptcp::tcp::{Config, Keepalive};
use xdptcp::time::Instant;

const N: u32 = ISS + 1;
const M: u32 = PEER_ISS + 1;

/// A wheel entry as the stack keeps it, and how often the skip was taken.
#[derive(Default)]
struct Wheel {
    armed: Option<Instant>,
    skipped: usize,
    asked: usize,
}

impl Wheel {
    /// The re-arm after an operation on `s`; whether it was skipped.
    fn rearm(&mut self, s: &mut Script) -> bool {
        if let Some(a) = self.armed {
            if !s.c.deadline_may_precede(a) {
                // The claim: no deadline before the entry.
                assert!(
                    s.c.poll_at().is_none_or(|p| p >= a),
                    "deadline {:?} before the entry {a:?}",
                    s.c.poll_at()
                );
                self.skipped += 1;
                return true;
            }
        }
        self.asked += 1;
        if let Some(at) = s.c.poll_at_mark() {
            if self.armed.is_none_or(|a| at < a) {
                self.armed = Some(at);
            }
        }
        false
    }
}

fn exchange(cfg: &Config) -> Wheel {
    let mut s = established(cfg);
    let mut w = Wheel::default();
    w.rearm(&mut s);
    let mut ours = N;
    let mut theirs = M;
    for i in 0..30u32 {
        let ms = 20 + 10 * i as u64;
        s.at_ms(ms);
        // The wheel's entry fires when due (the stack's `run_timers`).
        if w.armed.is_some_and(|a| a <= s.now) {
            w.armed = None;
            if s.c.poll_at().is_some_and(|p| p <= s.now) {
                s.c.handle_timeout(s.now);
                s.poll();
            }
            w.rearm(&mut s);
        }
        assert_eq!(s.send(&[9; 100]), 100);
        w.rearm(&mut s);
        assert_eq!(s.poll().len(), 1);
        w.rearm(&mut s);
        ours += 100;
        // The answer: acknowledges ours, brings data (arms the delayed
        // ACK, below the RTO's entry).
        s.at_ms(ms + 2);
        let d = pattern(theirs.wrapping_sub(M) as usize, 64);
        s.input(
            seg(fl(&[A, P]), theirs, ours, 1000).ts(300 + i, ms as u32),
            &d,
        );
        w.rearm(&mut s);
        theirs += 64;
        assert_eq!(s.read_all(), d);
        w.rearm(&mut s);
    }
    w
}

/// The entry is the RTO of our request; the answer's data arms the
/// delayed ACK below it: reported, and the entry moves to it.
#[test]
fn a_timer_armed_below_the_entry_is_reported() {
    let mut s = established(&cfg());
    s.at_ms(20);
    let mut w = Wheel::default();
    w.rearm(&mut s);
    assert_eq!(s.send(&[9; 100]), 100);
    assert_eq!(s.poll().len(), 1);
    w.rearm(&mut s);
    let rto = w.armed.expect("the RTO");
    assert!(rto >= Instant::from_millis(220), "{rto:?}");
    s.at_ms(22);
    s.input(seg(fl(&[A, P]), M, N + 100, 1000).ts(300, 20), &[1; 64]);
    assert!(s.c.deadline_may_precede(rto));
    assert!(!w.rearm(&mut s));
    assert_eq!(w.armed, Some(Instant::from_millis(62)), "the delayed ACK");
    // Nothing new armed: skipped from now on.
    assert!(!s.c.deadline_may_precede(w.armed.unwrap()));
    assert!(w.rearm(&mut s));
}

#[test]
fn the_rearm_is_skipped_only_when_no_deadline_moved_earlier() {
    let w = exchange(&cfg());
    // Of the four re-arms a step, the send's and the poll's find nothing
    // armed below the entry.
    assert!(w.skipped >= 40, "skipped {} asked {}", w.skipped, w.asked);
    // A derived deadline may be on: always asked.
    let w = exchange(&Config {
        keepalive: Some(Keepalive {
            idle: Duration::from_secs(7200),
            interval: Duration::from_secs(75),
            probes: 9,
        }),
        ..cfg()
    });
    assert_eq!(w.skipped, 0);
}
