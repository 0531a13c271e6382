//! Packet scripts: closing (RFC 9293 §3.6), resets and RFC 5961, PAWS
//! (RFC 7323 §5), keepalive, user timeout, abort.

mod tcp_harness;
use std::time::Duration;
use tcp_harness::*;
use xdptcp::tcp::{Keepalive, State};
use xdptcp::time::Instant;

const N: u32 = ISS + 1; // our SND.NXT after the handshake
const M: u32 = PEER_ISS + 1; // our RCV.NXT after the handshake

#[test]
fn active_close_through_time_wait() {
    let mut s = established(&cfg());
    s.at_ms(20);
    s.c.shutdown();
    assert_eq!(s.c.state(), State::FinWait1);
    let out = s.poll();
    assert_eq!(out.len(), 1);
    check(&out[0], F | A, N, M, 0);
    assert!(s.poll().is_empty());
    s.at_ms(30);
    assert!(s.io(pack(N + 1), &[]).is_empty());
    assert_eq!(s.c.state(), State::FinWait2);
    let out = s.io(seg(F | A, M, N + 1, 1000).ts(201, 20), &[]);
    assert_eq!(s.c.state(), State::TimeWait);
    check(&out[0], A, N + 1, M + 1, 0);
    assert!(s.c.take_events().read_closed());
    // 2·MSL = 60 s.
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(60_030)));
    // A retransmitted FIN is ACKed and restarts the timer.
    s.at_ms(1030);
    let out = s.io(seg(F | A, M, N + 1, 1000).ts(202, 20), &[]);
    check(&out[0], A, N + 1, M + 1, 0);
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(61_030)));
    assert!(s.fire().is_empty());
    assert_eq!(s.c.state(), State::Closed);
    assert!(s.c.take_events().closed());
    assert_eq!(s.c.poll_at(), None);
}

#[test]
fn fin_retransmitted_on_rto() {
    let mut s = established(&cfg());
    s.at_ms(20);
    s.c.shutdown();
    s.poll();
    // RTT 10 ms from the SYN: RTO = max(200 ms, 10 + 4·5) = 200 ms.
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(220)));
    let out = s.fire();
    assert_eq!(out.len(), 1);
    check(&out[0], F | A, N, M, 0);
    assert_eq!(s.c.stats().retransmits, 1);
}

#[test]
fn simultaneous_close() {
    let mut s = established(&cfg());
    s.at_ms(20);
    s.c.shutdown();
    s.poll();
    // The peer's FIN crosses ours (does not ACK it).
    let out = s.io(seg(F | A, M, N, 1000).ts(201, 10), &[]);
    assert_eq!(s.c.state(), State::Closing);
    check(&out[0], A, N + 1, M + 1, 0);
    let out = s.io(seg(A, M + 1, N + 1, 1000).ts(202, 20), &[]);
    assert!(out.is_empty());
    assert_eq!(s.c.state(), State::TimeWait);
}

#[test]
fn half_close_peer_first_then_we_send_and_close() {
    let mut s = established(&cfg());
    s.at_ms(20);
    let out = s.io(seg(F | A | P, M, N, 1000).ts(201, 10), b"bye");
    assert_eq!(s.c.state(), State::CloseWait);
    check(&out[0], A, N, M + 4, 0);
    let ev = s.c.take_events();
    assert!(ev.readable() && ev.read_closed());
    assert_eq!(s.read_all(), b"bye");
    // We can still send.
    assert_eq!(s.send(b"response"), 8);
    let out = s.poll();
    check(&out[0], A | P, N, M + 4, 8);
    assert_eq!(out[0].data, b"response");
    s.c.shutdown();
    assert_eq!(s.c.state(), State::LastAck);
    let out = s.poll();
    check(&out[0], F | A, N + 8, M + 4, 0);
    s.io(seg(A, M + 4, N + 9, 1000).ts(202, 20), &[]);
    assert_eq!(s.c.state(), State::Closed);
    assert!(s.c.take_events().closed());
}

#[test]
fn half_close_we_first_peer_keeps_sending() {
    let mut s = established(&cfg());
    s.at_ms(20);
    s.send(b"req");
    s.c.shutdown();
    let out = s.poll();
    // Data and FIN in one segment.
    check(&out[0], F | A | P, N, M, 3);
    s.io(seg(A, M, N + 4, 1000).ts(201, 20), &[]);
    assert_eq!(s.c.state(), State::FinWait2);
    assert_eq!(s.send(b"x"), 0, "no sending after shutdown");
    s.io(
        seg(A | P, M, N + 4, 1000).ts(202, 20),
        b"data after our FIN",
    );
    assert!(s.c.take_events().readable());
    assert_eq!(s.read_all(), b"data after our FIN");
    let out = s.io(seg(F | A, M + 18, N + 4, 1000).ts(203, 20), &[]);
    check(&out[0], A, N + 4, M + 19, 0);
    assert_eq!(s.c.state(), State::TimeWait);
}

#[test]
fn rst_exact_in_window_and_out_of_window() {
    for state in 0..4 {
        let mut s = established(&cfg());
        s.at_ms(20);
        let want = match state {
            0 => State::Established,
            1 => {
                s.c.shutdown();
                s.poll();
                s.io(pack(N + 1), &[]);
                State::FinWait2
            }
            2 => {
                s.io(seg(F | A, M, N, 1000).ts(201, 10), &[]);
                State::CloseWait
            }
            _ => {
                s.io(seg(F | A, M, N, 1000).ts(201, 10), &[]);
                s.c.shutdown();
                s.poll();
                State::LastAck
            }
        };
        assert_eq!(s.c.state(), want);
        let nxt = if state >= 2 { M + 1 } else { M };
        let snd = if state == 1 || state == 3 { N + 1 } else { N };
        // Out of window: silently dropped.
        assert!(s.io(seg(R, nxt + 10_000_000, 0, 0), &[]).is_empty());
        assert_eq!(s.c.state(), want);
        // In window but not exact: challenge ACK (RFC 5961 §3.2).
        let out = s.io(seg(R, nxt + 100, 0, 0), &[]);
        assert_eq!(out.len(), 1, "{want:?}");
        check(&out[0], A, snd, nxt, 0);
        assert_eq!(s.c.stats().challenge_acks, 1);
        assert_eq!(s.c.state(), want);
        // Exact: reset.
        assert!(s.io(seg(R, nxt, 0, 0), &[]).is_empty());
        assert_eq!(s.c.state(), State::Closed, "{want:?}");
        let ev = s.c.take_events();
        assert!(ev.closed() && ev.reset());
    }
}

#[test]
fn rst_in_time_wait_is_ignored_rfc1337() {
    let mut s = established(&cfg());
    s.c.shutdown();
    s.poll();
    s.io(seg(F | A, M, N + 1, 1000).ts(201, 20), &[]);
    assert_eq!(s.c.state(), State::TimeWait);
    // RFC 1337: ignored; TIME-WAIT ends by its timer only.
    assert!(s.io(seg(R, M + 1, 0, 0), &[]).is_empty());
    assert_eq!(s.c.state(), State::TimeWait);
    assert!(!s.c.take_events().reset());
}

#[test]
fn syn_in_established_gets_challenge_ack() {
    let mut s = established(&cfg());
    s.at_ms(20);
    for seq in [M, M + 1000, 123] {
        let out = s.io(seg(S, seq, 0, 1000).ts(201, 0), &[]);
        assert_eq!(out.len(), 1);
        check(&out[0], A, N, M, 0);
    }
    assert_eq!(s.c.state(), State::Established);
    assert_eq!(s.c.stats().challenge_acks, 3);
}

#[test]
fn challenge_acks_are_rate_limited() {
    let mut s = established(&cfg());
    s.at_ms(20);
    let mut sent = 0;
    for i in 0..50 {
        sent += s.io(seg(R, M + 1 + i, 0, 0), &[]).len();
    }
    assert_eq!(sent, 10);
    assert_eq!(s.c.stats().challenge_acks, 10);
    s.at_ms(1100);
    assert_eq!(s.io(seg(R, M + 5, 0, 0), &[]).len(), 1);
}

#[test]
fn unacceptable_ack_numbers() {
    let mut s = established(&cfg());
    s.at_ms(20);
    // ACK of data never sent: ACK back, data dropped.
    let out = s.io(seg(A, M, N + 5000, 1000).ts(201, 0), b"zz");
    assert_eq!(out.len(), 1);
    check(&out[0], A, N, M, 0);
    assert_eq!(s.c.recv_available(), 0);
}

#[test]
fn paws_rejects_old_timestamp_but_not_rst() {
    let mut s = established(&cfg());
    s.at_ms(20);
    // TS.Recent is 100 (from the SYN-ACK).
    let out = s.io(seg(A | P, M, N, 1000).ts(50, 10), b"old");
    assert_eq!(out.len(), 1);
    check(&out[0], A, N, M, 0);
    assert_eq!(out[0].seg.options.timestamps, Some((20, 100)));
    assert_eq!(s.c.stats().paws_drops, 1);
    assert_eq!(s.c.recv_available(), 0);
    // A newer timestamp passes and becomes TS.Recent.
    s.io(seg(A | P, M, N, 1000).ts(150, 10), b"new");
    assert_eq!(s.c.recv_available(), 3);
    let out = s.fire();
    assert_eq!(s.now, Instant::from_millis(60));
    assert_eq!(out[0].seg.options.timestamps, Some((60, 150)));
    // RST is exempt from PAWS.
    s.io(seg(R, M + 3, 0, 0).ts(1, 0), &[]);
    assert_eq!(s.c.state(), State::Closed);
}

#[test]
fn paws_idle_24_days_exception() {
    let mut s = established(&cfg());
    s.at(Instant::from_millis(10) + Duration::from_secs(25 * 24 * 3600));
    s.io(seg(A | P, M, N, 1000).ts(50, 10), b"late");
    assert_eq!(s.c.stats().paws_drops, 0);
    assert_eq!(s.c.recv_available(), 4);
}

#[test]
fn abort_sends_rst() {
    let mut s = established(&cfg());
    s.at_ms(20);
    s.send(b"pending");
    s.c.abort();
    assert_eq!(s.c.state(), State::Closed);
    assert!(s.c.take_events().closed());
    let out = s.poll();
    assert_eq!(out.len(), 1);
    check(&out[0], R | A, N, M, 0);
    assert!(s.poll().is_empty());
    assert_eq!(s.c.poll_at(), None);
    // A closed connection answers with RST.
    let out = s.io(seg(A, M, N, 10), b"x");
    check(&out[0], R, N, 0, 0);
}

#[test]
fn keepalive_probes_then_timeout() {
    let mut c = cfg();
    c.keepalive = Some(Keepalive {
        idle: Duration::from_secs(10),
        interval: Duration::from_secs(1),
        probes: 2,
    });
    let mut s = established(&c);
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(10_010)));
    let out = s.fire();
    assert_eq!(out.len(), 1);
    // RFC 1122 §4.2.3.6: SEG.SEQ = SND.NXT - 1, no data.
    check(&out[0], A, N - 1, M, 0);
    // The peer answers: idle timer restarts from now.
    s.io(pack(N), &[]);
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(20_010)));
    let out = s.fire();
    check(&out[0], A, N - 1, M, 0);
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(21_010)));
    let out = s.fire();
    check(&out[0], A, N - 1, M, 0);
    assert_eq!(s.c.stats().keepalive_probes, 3);
    // Two unanswered probes: abort with RST.
    let out = s.fire();
    assert_eq!(s.c.state(), State::Closed);
    check(&out[0], R | A, N, M, 0);
    let ev = s.c.take_events();
    assert!(ev.closed() && ev.timed_out());
}

#[test]
fn user_timeout_aborts() {
    let mut c = cfg();
    c.user_timeout = Some(Duration::from_secs(2));
    let mut s = established(&c);
    s.at_ms(100);
    s.send(b"data");
    s.poll();
    // RTOs at 300, 700, 1500 ms; the user timeout at 2100 ms.
    assert_eq!(s.fire().len(), 1);
    assert_eq!(s.now, Instant::from_millis(300));
    assert_eq!(s.fire().len(), 1);
    assert_eq!(s.now, Instant::from_millis(700));
    assert_eq!(s.fire().len(), 1);
    assert_eq!(s.now, Instant::from_millis(1500));
    let out = s.fire();
    assert_eq!(s.now, Instant::from_millis(2100));
    assert_eq!(s.c.state(), State::Closed);
    check(&out[0], R | A, N + 4, M, 0);
    assert!(s.c.take_events().timed_out());
}

#[test]
fn data_retries_exhausted_times_out() {
    let mut c = cfg();
    c.max_retries = 2;
    let mut s = established(&c);
    s.send(b"data");
    s.poll();
    s.fire();
    s.fire();
    assert_eq!(s.c.state(), State::Established);
    let out = s.fire();
    assert!(out.is_empty());
    assert_eq!(s.c.state(), State::Closed);
    assert!(s.c.take_events().timed_out());
}

#[test]
fn rst_in_fin_wait1_and_closing() {
    for closing in [false, true] {
        let mut s = established(&cfg());
        s.at_ms(20);
        s.c.shutdown();
        s.poll();
        let mut nxt = M;
        if closing {
            s.io(seg(F | A, M, N, 1000).ts(201, 10), &[]);
            assert_eq!(s.c.state(), State::Closing);
            nxt = M + 1;
        } else {
            assert_eq!(s.c.state(), State::FinWait1);
        }
        let out = s.io(seg(R, nxt + 1, 0, 0), &[]);
        check(&out[0], A, N + 1, nxt, 0);
        s.io(seg(R, nxt, 0, 0), &[]);
        assert_eq!(s.c.state(), State::Closed);
        assert!(s.c.take_events().reset());
    }
}

#[test]
fn sender_sws_avoidance_waits_for_a_useful_window() {
    let mut s = established(&cfg());
    s.at_ms(20);
    // The largest window seen is 65535; the peer opens only 1000 bytes.
    s.io(seg(A, M, N, 0).ts(201, 10), &[]);
    s.send(&pattern(0, 5000));
    assert!(s.poll().is_empty());
    s.io(seg(A, M, N, 1000 >> 7).ts(202, 10), &[]);
    // 7 << 7 = 896 bytes < 65535 / 2: wait (RFC 1122 §4.2.3.4).
    assert!(s.poll().is_empty());
    // Half the maximum window: send.
    let out = s.io(seg(A, M, N, 256).ts(203, 10), &[]);
    assert!(!out.is_empty());
    check(&out[0], A, N, M, 1448);
}

#[test]
fn too_old_ack_is_answered_and_dropped() {
    let mut s = established(&cfg());
    s.at_ms(20);
    // RFC 5961 §5.2: SEG.ACK < SND.UNA - MAX.SND.WND (65535 here).
    let out = s.io(
        seg(A | P, M, N.wrapping_sub(70_000), 1000).ts(201, 0),
        b"data",
    );
    assert_eq!(out.len(), 1);
    check(&out[0], A, N, M, 0);
    assert_eq!(s.c.recv_available(), 0);
    // Within MAX.SND.WND below SND.UNA: an old duplicate ACK, data taken.
    s.io(seg(A | P, M, N.wrapping_sub(100), 1000).ts(202, 0), b"data");
    assert_eq!(s.c.recv_available(), 4);
}

/// Issue 9 defect 1: an out-of-order FIN that data later overtakes is
/// dropped (as Linux's ofo queue drops it); the peer's real FIN closes.
#[test]
fn stale_out_of_order_fin_overtaken_by_data_is_dropped() {
    let mut s = established(&cfg());
    s.at_ms(20);
    // A FIN at offset 10, out of order: ACKed at RCV.NXT, nothing closes.
    let out = s.io(seg(F | A, M + 10, N, 1000).ts(201, 10), &[]);
    check(&out[0], A, N, M, 0);
    assert_eq!(s.c.state(), State::Established);
    // 20 bytes from offset 0 run past that FIN: the data wins.
    s.io(seg(A | P, M, N, 1000).ts(202, 10), &pattern(0, 20));
    assert_eq!(s.c.state(), State::Established);
    assert_eq!(s.read_all(), pattern(0, 20));
    // 10 more bytes and the real FIN at offset 30.
    let out = s.io(
        seg(F | A | P, M + 20, N, 1000).ts(203, 10),
        &pattern(20, 10),
    );
    assert_eq!(s.read_all(), pattern(20, 10));
    assert_eq!(s.c.state(), State::CloseWait);
    check(out.last().unwrap(), A, N, M + 31, 0);
    assert!(s.c.take_events().read_closed());
    assert_eq!(s.c.stats().stale_fins, 1);
}

/// A FIN that in-order data reaches exactly is honoured, even when it
/// arrived first (out of order) and data after it arrives later.
#[test]
fn out_of_order_fin_reached_by_data_closes() {
    let mut s = established(&cfg());
    s.at_ms(20);
    s.io(seg(F | A, M + 10, N, 1000).ts(201, 10), &[]);
    let out = s.io(seg(A | P, M, N, 1000).ts(202, 10), &pattern(0, 10));
    check(out.last().unwrap(), A, N, M + 11, 0);
    assert_eq!(s.c.state(), State::CloseWait);
    assert_eq!(s.read_all(), pattern(0, 10));
}

/// Linux tcp_fin_timeout: after `close` (not the half-close `shutdown`),
/// a peer that ACKs our FIN and never sends its own does not hold the
/// connection in FIN-WAIT-2 forever: 60 s after entering it (whatever the
/// peer still sends), a RST and CLOSED.
#[test]
fn fin_wait_2_times_out_after_close() {
    let mut c = cfg();
    c.fin_wait2_timeout = Some(Duration::from_secs(60));
    let mut s = established(&c);
    s.at_ms(20);
    s.c.close();
    s.poll();
    s.at_ms(30);
    s.io(pack(N + 1), &[]);
    assert_eq!(s.c.state(), State::FinWait2);
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(60_030)));
    // Data from the peer does not extend it.
    s.at_ms(1_000);
    s.io(seg(A | P, M, N + 1, 1000).ts(201, 20), b"more");
    let out = s.fire();
    check(&out[0], A, N + 1, M + 4, 0); // the delayed ACK
    let out = s.fire();
    assert_eq!(s.now, Instant::from_millis(60_030));
    assert_eq!(s.c.state(), State::Closed);
    check(&out[0], R | A, N + 1, M + 4, 0);
    let ev = s.c.take_events();
    assert!(ev.closed() && ev.timed_out());
    assert_eq!(s.c.stats().fin_wait2_timeouts, 1);
}

/// After the half-close `shutdown` the application may still read: the
/// peer's FIN is awaited however long it takes (RFC 9293).
#[test]
fn half_closed_fin_wait_2_has_no_timeout() {
    let mut s = established(&cfg());
    s.at_ms(20);
    s.c.shutdown();
    s.poll();
    s.at_ms(30);
    s.io(pack(N + 1), &[]);
    assert_eq!(s.c.state(), State::FinWait2);
    assert_eq!(s.c.poll_at(), None);
}

/// Keepalive switched on for one connection by the application.
#[test]
fn keepalive_enabled_per_connection() {
    let mut s = established(&cfg());
    assert_eq!(s.c.poll_at(), None);
    s.c.set_keepalive(Some(Keepalive {
        idle: Duration::from_secs(5),
        interval: Duration::from_secs(1),
        probes: 1,
    }));
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(5_010)));
    let out = s.fire();
    check(&out[0], A, N - 1, M, 0);
    s.c.set_keepalive(None);
    assert_eq!(s.c.poll_at(), None);
}
