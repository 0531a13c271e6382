//! Packet scripts: retransmission timer (RFC 6298, Karn), SACK loss
//! recovery (RFC 6675), NewReno (RFC 6582), limited transmit (RFC 3042),
//! ECN (RFC 3168).

mod tcp_harness;
use std::time::Duration;
use tcp_harness::*;
use xdptcp::tcp::{Config, TcpFlags, TcpRepr};
use xdptcp::time::Instant;

const N: u32 = ISS + 1;
const M: u32 = PEER_ISS + 1;
const MSS: u32 = 1448;

fn sq(i: u32) -> u32 {
    N + i * MSS
}

/// Peer ACK with SACK blocks given in segment indices [a, b).
fn ack_sack(ack: u32, blocks: &[(u32, u32)], ts: u32) -> TcpRepr {
    let b: Vec<(u32, u32)> = blocks.iter().map(|&(a, b)| (sq(a), sq(b))).collect();
    seg(A, M, ack, 1000).ts(ts, 0).sack(&b)
}

fn setup(c: &Config, segs: u32) -> Script {
    let mut s = established(c);
    s.at_ms(20);
    // The peer's window from now on: 1000 << 7.
    s.io(seg(A, M, N, 1000).ts(150, 0), &[]);
    let d = pattern(0, (segs * MSS) as usize);
    assert_eq!(s.send(&d), d.len());
    s
}

#[test]
fn rto_backoff_and_karn() {
    let mut s = setup(&cfg(), 1);
    let out = s.poll();
    assert_eq!(out.len(), 1);
    assert_eq!(s.c.rto(), Duration::from_millis(200));
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(220)));
    let out = s.fire();
    check(&out[0], A | P, N, M, 1448);
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(620)));
    let out = s.fire();
    check(&out[0], A | P, N, M, 1448);
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(1420)));
    assert_eq!(s.c.stats().rto_timeouts, 2);
    assert_eq!(s.c.stats().retransmits, 2);
    // The ACK of a retransmitted segment gives no sample (Karn) and
    // carries no timestamp echo: the backed-off RTO stays.
    s.at_ms(700);
    s.io(seg(A, M, sq(1), 1000).ts(300, 0), &[]);
    assert_eq!(s.c.srtt(), Some(Duration::from_millis(10)));
    assert_eq!(s.c.rto(), Duration::from_millis(800));
    assert_eq!(s.c.poll_at(), None);
    s.send(b"x");
    s.poll();
    // A tail loss probe would fire first (1.5·SRTT + 200 ms with one
    // segment in flight); the RTO stays backed off behind it.
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(915)));
    // A fresh sample ends the backoff.
    s.at_ms(730);
    s.io(seg(A, M, sq(1) + 1, 1000).ts(301, 0), &[]);
    assert_eq!(s.c.rto(), Duration::from_millis(200));
}

#[test]
fn timestamps_give_rtt_sample_for_retransmission() {
    let mut s = setup(&cfg(), 1);
    s.poll();
    s.fire(); // retransmission at 220 ms with TSval 220
    s.at_ms(300);
    s.io(seg(A, M, sq(1), 1000).ts(300, 220), &[]);
    // RTT 80 ms from TSecr: srtt = 7/8·10 + 1/8·80 = 18.75 ms.
    assert_eq!(s.c.srtt(), Some(Duration::from_micros(18_750)));
}

#[test]
fn rto_retransmits_first_then_slow_starts() {
    let mut s = setup(&cfg(), 4);
    assert_eq!(s.poll().len(), 4);
    // RFC 8985 §7: first a tail loss probe (the last segment) at 2·SRTT.
    let out = s.fire();
    assert_eq!(s.now, Instant::from_millis(40));
    assert_eq!(out.len(), 1);
    check(&out[0], A | P, sq(3), M, 1448);
    assert_eq!(s.c.stats().tail_loss_probes, 1);
    // Then the RTO.
    let out = s.fire();
    assert_eq!(s.now, Instant::from_millis(240));
    assert_eq!(out.len(), 1, "cwnd is one segment after an RTO");
    check(&out[0], A, sq(0), M, 1448);
    assert_eq!(s.c.cwnd(), 1448);
    // ACK of the first: slow start, two more retransmissions.
    s.at_ms(300);
    let out = s.io(seg(A, M, sq(1), 1000).ts(300, 0), &[]);
    assert_eq!(out.len(), 2);
    check(&out[0], A, sq(1), M, 1448);
    check(&out[1], A, sq(2), M, 1448);
    assert_eq!(s.c.stats().retransmits, 4);
}

#[test]
fn sack_recovery_of_two_holes_in_one_window() {
    let mut s = setup(&cfg(), 10);
    let out = s.poll();
    assert_eq!(out.len(), 10, "IW10");
    assert!(out.iter().all(|o| !o.ect));
    // Segments 1 and 4 are lost.
    s.at_ms(30);
    assert!(s.io(ack_sack(sq(1), &[], 300), &[]).is_empty());
    assert!(s.io(ack_sack(sq(1), &[(2, 3)], 301), &[]).is_empty());
    assert!(s.io(ack_sack(sq(1), &[(2, 4)], 302), &[]).is_empty());
    // Third duplicate: fast retransmit of segment 1 only.
    let out = s.io(ack_sack(sq(1), &[(5, 6), (2, 4)], 303), &[]);
    assert_eq!(out.len(), 1);
    check(&out[0], A, sq(1), M, 1448);
    assert_eq!(s.c.stats().fast_recoveries, 1);
    assert_eq!(s.c.cwnd(), 9 * 1448 / 2);
    assert!(s
        .io(ack_sack(sq(1), &[(5, 7), (2, 4)], 304), &[])
        .is_empty());
    // Three SACKed segments above 4: it is lost and pipe allows it.
    let out = s.io(ack_sack(sq(1), &[(5, 8), (2, 4)], 305), &[]);
    assert_eq!(out.len(), 1);
    check(&out[0], A, sq(4), M, 1448);
    assert!(s
        .io(ack_sack(sq(1), &[(5, 9), (2, 4)], 306), &[])
        .is_empty());
    assert!(s
        .io(ack_sack(sq(1), &[(5, 10), (2, 4)], 307), &[])
        .is_empty());
    // Partial ACK then full ACK.
    assert!(s.io(ack_sack(sq(4), &[(5, 10)], 308), &[]).is_empty());
    assert!(s.io(ack_sack(sq(10), &[], 309), &[]).is_empty());
    assert_eq!(s.c.stats().retransmits, 2);
    assert_eq!(s.c.stats().rto_timeouts, 0);
    assert_eq!(s.c.cwnd(), 9 * 1448 / 2);
    assert_eq!(s.c.poll_at(), None);
}

#[test]
fn newreno_partial_ack_recovery_without_sack() {
    let mut c = cfg();
    c.sack = false;
    let mut s = setup(&c, 10);
    assert_eq!(s.poll().len(), 10);
    s.at_ms(30);
    let dup = |ts| seg(A, M, sq(1), 1000).ts(ts, 0);
    assert!(s.io(dup(300), &[]).is_empty());
    assert!(s.io(dup(301), &[]).is_empty());
    assert!(s.io(dup(302), &[]).is_empty());
    let out = s.io(dup(303), &[]);
    assert_eq!(out.len(), 1, "fast retransmit on the third duplicate");
    check(&out[0], A, sq(1), M, 1448);
    for ts in 304..308 {
        assert!(s.io(dup(ts), &[]).is_empty());
    }
    // Partial ACK (RFC 6582 §3.2 step 5): retransmit the next hole at once.
    let out = s.io(seg(A, M, sq(4), 1000).ts(308, 0), &[]);
    assert_eq!(out.len(), 1);
    check(&out[0], A, sq(4), M, 1448);
    assert!(s.io(seg(A, M, sq(10), 1000).ts(309, 0), &[]).is_empty());
    assert_eq!(s.c.stats().retransmits, 2);
    assert_eq!(s.c.stats().fast_recoveries, 1);
    assert_eq!(s.c.cwnd(), 9 * 1448 / 2);
}

#[test]
fn limited_transmit_with_and_without_sack() {
    for sack in [true, false] {
        let mut c = cfg();
        c.sack = sack;
        let mut s = setup(&c, 12);
        assert_eq!(s.poll().len(), 10);
        s.at_ms(30);
        let d1 = if sack {
            ack_sack(N, &[(1, 2)], 300)
        } else {
            seg(A, M, N, 1000).ts(300, 0)
        };
        let out = s.io(d1, &[]);
        assert_eq!(out.len(), 1, "sack={sack}");
        check(&out[0], A, sq(10), M, 1448);
        let d2 = if sack {
            ack_sack(N, &[(1, 3)], 301)
        } else {
            seg(A, M, N, 1000).ts(301, 0)
        };
        let out = s.io(d2, &[]);
        assert_eq!(out.len(), 1);
        check(&out[0], A | P, sq(11), M, 1448);
        let d3 = if sack {
            ack_sack(N, &[(1, 4)], 302)
        } else {
            seg(A, M, N, 1000).ts(302, 0)
        };
        let out = s.io(d3, &[]);
        assert_eq!(out.len(), 1);
        check(&out[0], A, sq(0), M, 1448);
        assert_eq!(s.c.stats().fast_recoveries, 1);
    }
}

#[test]
fn ecn_receiver_echoes_until_cwr() {
    let mut c = cfg();
    c.ecn = true;
    let mut s = established(&c);
    s.at_ms(20);
    let out = {
        s.input_ce(seg(A, M, N, 1000).ts(200, 0), &pattern(0, 100));
        s.poll()
    };
    assert_eq!(out.len(), 1, "CE is ACKed at once");
    assert_eq!(out[0].flags(), A | TcpFlags::ECE);
    // ECE continues on every ACK until CWR.
    s.input(seg(A, M + 100, N, 1000).ts(201, 0), &pattern(100, 1448));
    s.input(seg(A, M + 1548, N, 1000).ts(202, 0), &pattern(1548, 1448));
    let out = s.poll();
    assert_eq!(out[0].flags(), A | TcpFlags::ECE);
    s.input(
        seg(A | TcpFlags::CWR, M + 2996, N, 1000).ts(203, 0),
        &pattern(2996, 1448),
    );
    s.input(seg(A, M + 4444, N, 1000).ts(204, 0), &pattern(4444, 1448));
    let out = s.poll();
    assert_eq!(out[0].flags(), A);
}

#[test]
fn ecn_sender_reacts_once_per_window_and_sets_cwr() {
    let mut c = cfg();
    c.ecn = true;
    let mut s = setup(&c, 20);
    let out = s.poll();
    assert_eq!(out.len(), 10);
    assert!(out.iter().all(|o| o.ect), "new data is ECT");
    s.at_ms(30);
    let cwnd0 = s.c.cwnd();
    let out = s.io(seg(A | TcpFlags::ECE, M, sq(2), 1000).ts(300, 0), &[]);
    assert_eq!(s.c.stats().ecn_reactions, 1);
    assert!(s.c.cwnd() < cwnd0);
    // Flight 8 segments after the ACK; cwnd = 10·1448/2: nothing new yet.
    assert!(out.is_empty());
    // Second ECE in the same window: no further reduction.
    let cwnd1 = s.c.cwnd();
    let out = s.io(seg(A | TcpFlags::ECE, M, sq(6), 1000).ts(301, 0), &[]);
    assert_eq!(s.c.stats().ecn_reactions, 1);
    assert_eq!(s.c.cwnd(), cwnd1);
    // The first new data segment carries CWR, the next do not.
    assert!(!out.is_empty());
    assert_eq!(out[0].flags(), A | TcpFlags::CWR);
    assert!(out[0].ect);
    assert!(out[1..].iter().all(|o| !o.flags().contains(TcpFlags::CWR)));
    // A tail loss probe with new data is ECT; the RTO retransmission not.
    let out = s.fire();
    assert_eq!(s.c.stats().tail_loss_probes, 1);
    assert!(out[0].ect);
    let out = s.fire();
    assert_eq!(s.c.stats().rto_timeouts, 1);
    assert!(!out[0].ect);
}

/// RFC 3168 §6.1.2: an ECE reduced the window, then a segment of that
/// same window is lost. Fast retransmit repairs it at the third duplicate
/// ACK, without a second reduction (reduce "only once in response to a
/// series of dropped and/or CE packets from a single window"). It used to
/// wait for the RTO: the ECE had moved `recover`, so no fast recovery,
/// and the open state's window (which counts the SACKed bytes in flight)
/// had no room for the hole.
#[test]
fn loss_in_the_window_an_ece_reduced_is_fast_retransmitted() {
    let mut c = cfg();
    c.ecn = true;
    let mut s = setup(&c, 20);
    assert_eq!(s.poll().len(), 10);
    s.at_ms(30);
    let out = s.io(seg(A | TcpFlags::ECE, M, sq(2), 1000).ts(300, 0), &[]);
    assert!(out.is_empty());
    assert_eq!(s.c.stats().ecn_reactions, 1);
    let cwnd1 = s.c.cwnd();
    assert_eq!(cwnd1, 5 * 1448);
    // Segment 2 is lost; 3, 4 and 5 arrive.
    assert!(s.io(ack_sack(sq(2), &[(3, 4)], 301), &[]).is_empty());
    assert!(s.io(ack_sack(sq(2), &[(3, 5)], 302), &[]).is_empty());
    let out = s.io(ack_sack(sq(2), &[(3, 6)], 303), &[]);
    assert_eq!(
        out.len(),
        1,
        "{:?}",
        out.iter().map(|o| o.seq()).collect::<Vec<_>>()
    );
    check(&out[0], A, sq(2), M, 1448);
    assert_eq!(s.c.stats().fast_recoveries, 1);
    assert_eq!(s.c.stats().ecn_reactions, 1);
    assert_eq!(s.c.cwnd(), cwnd1, "no second reduction");
    // The repair completes the recovery; the window is the ECE's.
    s.io(ack_sack(sq(10), &[], 304), &[]);
    assert_eq!(s.c.cwnd(), cwnd1);
    assert_eq!(s.c.stats().rto_timeouts, 0);
    assert_eq!(s.c.stats().retransmits, 1);
}

/// An RTO found spurious by the timestamps (RFC 3522) is undone; then a
/// segment of the same window is genuinely lost. Fast recovery repairs it
/// at the third duplicate ACK. It used to wait for a second RTO: `recover`
/// still held the undone timeout's RecoveryPoint (RFC 6675 §5.1), and the
/// open state's window had no room for the hole.
#[test]
fn loss_after_an_undone_rto_is_fast_retransmitted() {
    let mut s = setup(&cfg(), 20);
    assert_eq!(s.poll().len(), 10);
    let out = s.fire(); // TLP at 40 ms: new data (segment 10)
    check(&out[0], A, sq(10), M, 1448);
    let out = s.fire(); // RTO at 240 ms
    check(&out[0], A, sq(0), M, 1448);
    // The ACK echoes TSval 20: the originals arrived, the RTO is undone.
    s.at_ms(250);
    s.io(seg(A, M, sq(2), 1000).ts(400, 20), &[]);
    assert_eq!(s.c.stats().spurious_rtos, 1);
    let cwnd = s.c.cwnd();
    assert!(cwnd >= 10 * 1448, "restored: {cwnd}");
    // Segment 2 is lost; 3, 4 and 5 arrive (limited transmit meanwhile).
    s.at_ms(260);
    s.io(ack_sack(sq(2), &[(3, 4)], 401), &[]);
    s.io(ack_sack(sq(2), &[(3, 5)], 402), &[]);
    let out = s.io(ack_sack(sq(2), &[(3, 6)], 403), &[]);
    assert!(!out.is_empty());
    check(&out[0], A, sq(2), M, 1448);
    assert_eq!(s.c.stats().fast_recoveries, 1);
    assert!(s.c.cwnd() < cwnd);
    assert_eq!(s.c.stats().rto_timeouts, 1);
}

/// RFC 6937 §3 sets cwnd = pipe + sndcnt on each ACK; RFC 6675 §5 (C)
/// sends while cwnd - pipe allows. A hole RACK's reordering timer deems
/// lost during fast recovery (RFC 8985 §6.3) leaves pipe, and its
/// retransmission goes out at the timer. It used to wait for an ACK that
/// never came (cwnd followed pipe down) and then for the RTO.
#[test]
fn hole_found_by_racks_timer_in_recovery_is_retransmitted_at_once() {
    let mut s = setup(&cfg(), 11);
    assert_eq!(s.poll().len(), 10);
    // Segment 0 arrives after 1: reordering seen, so RACK.reo_wnd is
    // min_rtt/4 (RFC 8985 §6.2 step 4) from now on.
    // (Limited transmit sends the last segment, 10.)
    s.at_ms(25);
    assert_eq!(s.io(ack_sack(N, &[(1, 2)], 300), &[]).len(), 1);
    s.at_ms(26);
    assert!(s.io(ack_sack(sq(2), &[], 301), &[]).is_empty());
    // Segment 2 is lost (five SACKed above it): fast recovery. Segment 7
    // has one SACKed segment above: RACK waits reo_wnd for it.
    s.at_ms(30);
    let out = s.io(ack_sack(sq(2), &[(3, 7), (8, 9)], 302), &[]);
    let seqs: Vec<u32> = out.iter().map(|o| o.seq()).collect();
    // PRR (RFC 6937 SSRB): pipe 3 segments, ssthresh 4.5, cwnd 4.5.
    assert_eq!(seqs, [sq(2)], "the hole");
    assert_eq!(s.c.stats().fast_recoveries, 1);
    // No ACK comes; RACK's timer (20 + RACK.rtt 10 + reo_wnd 1.5 ms)
    // deems segment 7 lost, and it is retransmitted then.
    let out = s.fire();
    assert_eq!(s.now, Instant::from_micros(31_500));
    assert_eq!(
        out.len(),
        1,
        "{:?}",
        out.iter().map(|o| o.seq()).collect::<Vec<_>>()
    );
    check(&out[0], A, sq(7), M, 1448);
    assert_eq!(s.c.stats().rto_timeouts, 0);
    // The repairs complete the recovery.
    s.at_ms(45);
    s.io(ack_sack(sq(11), &[], 303), &[]);
    assert_eq!(s.c.stats().rto_timeouts, 0);
    assert_eq!(s.c.stats().retransmits, 2);
}

/// An ACK that newly SACKs two blocks lists the higher first (RFC 2018
/// §4: the latest arrival's block first; the ACK before it was lost).
/// Four segments above the hole are SACKed: RFC 6675 IsLost, fast
/// retransmit at once. Taken in the order given, the lower block's
/// segments seemed delivered below newer data: RACK counted reordering
/// of five segments, DupThresh rose to 5, and the hole waited for RACK's
/// timer (with reo_wnd on for the rest of the connection).
#[test]
fn sack_blocks_listed_highest_first_are_not_reordering() {
    let mut s = setup(&cfg(), 10);
    assert_eq!(s.poll().len(), 10);
    s.at_ms(30);
    let out = s.io(ack_sack(N, &[(5, 6), (1, 4)], 300), &[]);
    assert_eq!(
        out.len(),
        1,
        "{:?}",
        out.iter().map(|o| o.seq()).collect::<Vec<_>>()
    );
    check(&out[0], A, sq(0), M, 1448);
    assert_eq!(s.c.stats().fast_recoveries, 1);
}

/// Which ACKs sample the RTT in a recovery: only those that advance
/// SND.UNA (RFC 7323 §4.1 RTTM rule, RFC 6298 §3 Karn). Duplicate ACKs
/// that SACK new data leave SRTT and the RTO alone: RFC 8985 §6.2 takes
/// RACK.rtt from them, for RACK only (Linux also feeds SRTT from newly
/// SACKed segments when an ACK has no cumulative sample; we follow the
/// RFCs). The ACK of the hole's retransmission samples its echoed
/// timestamp when it is the retransmission's, and nothing when it echoes
/// the original (which the receiver may have had all along).
#[test]
fn only_acks_advancing_snd_una_sample_the_rtt() {
    for (ecr, srtt_us) in [(23, 9_250), (20, 10_000)] {
        let mut s = setup(&cfg(), 10);
        assert_eq!(s.poll().len(), 10);
        assert_eq!(s.c.srtt(), Some(Duration::from_millis(10)));
        let rto = s.c.rto();
        // Segment 0 lost; 1 to 3 SACKed 3 ms after they left, echoing
        // TSval 20: samples of 3 ms, were they taken, would pull SRTT
        // down.
        s.at_ms(23);
        let dup = |ts, hi| seg(A, M, N, 1000).ts(ts, 20).sack(&[(sq(1), sq(hi))]);
        assert!(s.io(dup(300, 2), &[]).is_empty());
        assert!(s.io(dup(301, 3), &[]).is_empty());
        let out = s.io(dup(302, 4), &[]);
        check(&out[0], A, sq(0), M, 1448);
        assert_eq!(s.c.srtt(), Some(Duration::from_millis(10)));
        assert_eq!(s.c.rto(), rto);
        // At 27 ms the ACK of everything; ecr 23 is the retransmission's
        // (RTT 4 ms: SRTT 7/8·10 + 4/8 = 9.25 ms), ecr 20 the original's.
        s.at_ms(27);
        s.io(seg(A, M, sq(10), 1000).ts(303, ecr), &[]);
        assert_eq!(
            s.c.srtt(),
            Some(Duration::from_micros(srtt_us)),
            "ecr {ecr}"
        );
    }
}

#[test]
fn sink_refusal_does_not_lose_segments() {
    let mut s = setup(&cfg(), 3);
    s.sink.refuse = true;
    assert!(s.poll().is_empty());
    s.sink.refuse = false;
    let out = s.poll();
    assert_eq!(out.len(), 3);
    check(&out[0], A, sq(0), M, 1448);
}

#[test]
fn rack_reordering_timer_detects_loss_from_one_sack() {
    let mut s = setup(&cfg(), 3);
    assert_eq!(s.poll().len(), 3);
    // One SACK only (not enough for RFC 6675 IsLost): RACK waits
    // RACK.rtt (10 ms) + reo_wnd (min_rtt/4 = 2.5 ms) after the send.
    s.at_ms(30);
    assert!(s.io(ack_sack(N, &[(1, 2)], 300), &[]).is_empty());
    assert_eq!(s.c.poll_at(), Some(Instant::from_micros(32_500)));
    let out = s.fire();
    assert_eq!(out.len(), 1);
    check(&out[0], A, sq(0), M, 1448);
    assert_eq!(s.c.stats().fast_recoveries, 1);
    assert_eq!(s.c.stats().rto_timeouts, 0);
    // The repair completes recovery.
    assert!(s.io(ack_sack(sq(3), &[], 301), &[]).is_empty());
    assert_eq!(s.c.poll_at(), None);
}

#[test]
fn rack_detects_lost_retransmission() {
    let mut s = setup(&cfg(), 30);
    assert_eq!(s.poll().len(), 10);
    s.at_ms(30);
    // Segment 0 lost; 1..8 SACKed: fast retransmit of 0 at 30 ms, and
    // new data as the pipe allows.
    let out = s.io(ack_sack(N, &[(1, 8)], 300), &[]);
    check(&out[0], A, sq(0), M, 1448);
    let sent_after: Vec<u32> = out[1..].iter().map(|o| o.seq()).collect();
    assert!(!sent_after.is_empty());
    // The retransmission is lost too; a segment sent after it (at 30 ms)
    // is SACKed at 45 ms: RACK deems the retransmission lost once
    // 30 + RACK.rtt(15) <= now, without waiting for the RTO.
    s.at_ms(45);
    let last = *sent_after.last().unwrap();
    let blocks: Vec<(u32, u32)> = vec![(last, last + MSS), (sq(1), sq(8))];
    let out = s.io(seg(A, M, N, 1000).ts(301, 0).sack(&blocks), &[]);
    assert!(
        out.iter().any(|o| o.seq() == sq(0)),
        "{:?}",
        out.iter().map(|o| o.seq()).collect::<Vec<_>>()
    );
    assert_eq!(s.c.stats().rto_timeouts, 0);
}

#[test]
fn spurious_rto_is_undone_by_timestamps() {
    let mut s = setup(&cfg(), 4);
    assert_eq!(s.poll().len(), 4);
    let cwnd0 = s.c.cwnd();
    s.fire(); // TLP at 40 ms
    let out = s.fire(); // RTO at 240 ms
    check(&out[0], A, sq(0), M, 1448);
    assert_eq!(s.c.cwnd(), 1448);
    // The ACK echoes TSval 20: the original segments arrived.
    s.at_ms(250);
    let out = s.io(seg(A, M, sq(4), 1000).ts(400, 20), &[]);
    assert!(out.is_empty(), "nothing is retransmitted after the undo");
    assert_eq!(s.c.stats().spurious_rtos, 1);
    assert_eq!(s.c.cwnd(), cwnd0);
}

#[test]
fn genuine_rto_is_not_undone() {
    let mut s = setup(&cfg(), 4);
    s.poll();
    s.fire();
    s.fire(); // RTO at 240 ms, TSval 240
    s.at_ms(260);
    s.io(seg(A, M, sq(1), 1000).ts(400, 240), &[]);
    assert_eq!(s.c.stats().spurious_rtos, 0);
    assert!(s.c.cwnd() < 4 * 1448);
}

#[test]
fn prr_spreads_transmissions_during_recovery() {
    let mut s = setup(&cfg(), 30);
    assert_eq!(s.poll().len(), 10);
    s.at_ms(30);
    // Segment 0 lost; 1, 2 SACKed: limited transmit sends 10 and 11.
    assert_eq!(s.io(ack_sack(N, &[(1, 2)], 300), &[]).len(), 1);
    assert_eq!(s.io(ack_sack(N, &[(1, 3)], 301), &[]).len(), 1);
    // Third: recovery, the hole is retransmitted.
    let out = s.io(ack_sack(N, &[(1, 4)], 302), &[]);
    assert_eq!(out.len(), 1);
    check(&out[0], A, sq(0), M, 1448);
    // Each further ACK delivers one segment. RecoverFS = 12 segments in
    // flight, ssthresh = 5 (half of cwnd 10: limited transmit does not
    // raise the base of the reduction). PRR (RFC 6937): while pipe >
    // ssthresh, send
    // ssthresh/RecoverFS of what is delivered (the retransmission already
    // used the first share); once pipe <= ssthresh, PRR-SSRB sends what is
    // delivered plus at most one segment, never a burst.
    let mut sent = Vec::new();
    for k in 5..12u32 {
        let out = s.io(ack_sack(N, &[(1, k)], 300 + k), &[]);
        sent.push(out.len());
    }
    assert_eq!(sent, vec![0, 0, 0, 0, 1, 1, 2]);
}

#[test]
fn reordered_duplicate_ack_passes_paws() {
    let mut s = setup(&cfg(), 4);
    s.poll();
    s.at_ms(30);
    s.io(ack_sack(N, &[(2, 3)], 300), &[]);
    // An older duplicate ACK (TSval 299 < TS.Recent 300) still carries its
    // SACK block (Linux's tcp_disordered_ack).
    s.io(ack_sack(N, &[(1, 3)], 299), &[]);
    assert_eq!(s.c.stats().paws_drops, 0);
    // An old ACK that is not a plain duplicate is dropped by PAWS.
    s.io(seg(A | P, M, N, 1000).ts(298, 0), b"x");
    assert_eq!(s.c.stats().paws_drops, 1);
}

#[test]
fn dsack_of_a_retransmission_raises_dupthresh_and_undoes() {
    let mut s = setup(&cfg(), 10);
    assert_eq!(s.poll().len(), 10);
    s.at_ms(30);
    let cwnd0 = s.c.cwnd();
    // Segment 0 only delayed: three SACKs trigger a (spurious) retransmit.
    s.io(ack_sack(N, &[(1, 2)], 300), &[]);
    s.io(ack_sack(N, &[(1, 3)], 301), &[]);
    let out = s.io(ack_sack(N, &[(1, 4)], 302), &[]);
    check(&out[0], A, sq(0), M, 1448);
    assert!(s.c.cwnd() < cwnd0);
    // The original arrives: everything is acked; then the retransmission
    // arrives and the receiver reports it with a D-SACK.
    s.io(ack_sack(sq(10), &[], 303), &[]);
    s.io(ack_sack(sq(10), &[(0, 1)], 304), &[]);
    assert_eq!(s.c.stats().spurious_retransmits, 1);
    assert_eq!(s.c.stats().recovery_undos, 1);
    assert!(s.c.cwnd() >= cwnd0);
}

/// RFC 6675 §6 (the variant that restarts the retransmission timer on each
/// retransmission sent in fast recovery; Linux's tcp_xmit_retransmit_queue
/// re-arms it too): the duplicate ACKs come late (a queue built up on the
/// path), so the timer armed by the tail loss probe at 40 ms would fire at
/// 240 ms, while the retransmission sent at 150 ms is still on its way.
/// Restarted by it, the timer waits until 350 ms; the retransmission's ACK
/// at 245 ms ends the recovery with no timeout. Without the restart, the
/// RTO fires at 240 ms mid-recovery: every segment retransmitted again,
/// cwnd of one.
#[test]
fn a_retransmission_in_fast_recovery_restarts_the_rto() {
    let mut s = setup(&cfg(), 10);
    assert_eq!(s.poll().len(), 10, "IW10 at 20 ms");
    // RFC 8985 §7: the tail loss probe at 2·SRTT re-sends the last segment
    // and restarts the RTO from there (40 + 200 ms).
    let out = s.fire();
    assert_eq!(s.now, Instant::from_millis(40));
    check(&out[0], A | P, sq(9), M, 1448);
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(240)));
    // Segment 0 is lost; the SACKs of 1..3 arrive at 150 ms: the third
    // duplicate starts fast recovery and retransmits segment 0.
    s.at_ms(150);
    assert!(s.io(ack_sack(N, &[(1, 2)], 300), &[]).is_empty());
    assert!(s.io(ack_sack(N, &[(1, 3)], 301), &[]).is_empty());
    let out = s.io(ack_sack(N, &[(1, 4)], 302), &[]);
    assert_eq!(out.len(), 1, "{out:?}");
    check(&out[0], A, sq(0), M, 1448);
    assert_eq!(s.c.stats().fast_recoveries, 1);
    assert_eq!(s.c.rto(), Duration::from_millis(200));
    // RFC 6675 §6: the retransmission restarted the timer.
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(350)));
    // More SACKs, up to the end of the window, SND.UNA still at 0.
    for (i, ms) in (5..=10).zip([160, 170, 180, 190, 200, 210]) {
        s.at_ms(ms);
        assert!(s.io(ack_sack(N, &[(1, i)], 300 + i), &[]).is_empty());
    }
    // The time the un-restarted timer would have fired: nothing happens.
    s.at_ms(240);
    s.c.handle_timeout(s.now);
    assert!(s.poll().is_empty());
    assert_eq!(s.c.stats().rto_timeouts, 0);
    // The retransmission's ACK ends the recovery: nothing more to send,
    // no timer left.
    s.at_ms(245);
    assert!(s.io(ack_sack(sq(10), &[], 320), &[]).is_empty());
    assert_eq!(s.c.stats().rto_timeouts, 0);
    assert_eq!(s.c.stats().retransmits, 2, "the probe and segment 0");
    // Half of the ten segments in flight (RFC 6582), not one (RFC 5681 §3.1).
    assert_eq!(s.c.cwnd(), 5 * 1448);
    assert_eq!(s.c.poll_at(), None);
}

/// RFC 8985 §6.2 step 2: a retransmitted segment acknowledged by an ACK
/// whose TSecr is earlier than the retransmission's TSval was delivered by
/// its original transmission, and must not move RACK.xmit_ts/RACK.rtt.
/// Here the path's delay grew: the tail loss probe re-sends segment 9 at
/// 40 ms, and at 52 ms the original segment 9 is SACKed, its TSval 20
/// echoed. 12 ms after the probe is above min_RTT (10 ms), so that test
/// passes it; only the echo tells. Taken as the probe's delivery, RACK
/// would see a segment sent at 40 ms delivered in 12 ms, and segments
/// 0..8, sent at 20 ms and still on their way, lost: fast recovery and
/// spurious retransmissions.
#[test]
fn rack_ignores_a_retransmission_acked_with_an_older_echo() {
    let mut s = setup(&cfg(), 10);
    assert_eq!(s.poll().len(), 10, "IW10 at 20 ms, TSval 20");
    // The handshake's sample: SRTT and min_RTT 10 ms.
    assert_eq!(s.c.srtt(), Some(Duration::from_millis(10)));
    // RFC 8985 §7: the probe at 2·SRTT re-sends segment 9, TSval 40.
    let out = s.fire();
    assert_eq!(s.now, Instant::from_millis(40));
    check(&out[0], A | P, sq(9), M, 1448);
    assert_eq!(out[0].seg.options.timestamps.map(|t| t.0), Some(tsv(40)));
    // The original segment 9 is SACKed, echoing its TSval.
    s.at_ms(52);
    let sack = seg(A, M, N, 1000).ts(300, tsv(20)).sack(&[(sq(9), sq(10))]);
    let out = s.io(sack, &[]);
    let seqs: Vec<u32> = out.iter().map(|o| o.seq()).collect();
    assert!(seqs.is_empty(), "segments 0..8 are not lost: sent {seqs:?}");
    assert_eq!(s.c.stats().fast_recoveries, 0);
    // They arrive, in time.
    s.at_ms(55);
    assert!(s
        .io(seg(A, M, sq(10), 1000).ts(301, tsv(20)), &[])
        .is_empty());
    assert_eq!(s.c.stats().retransmits, 1, "the probe only");
    assert_eq!(s.c.stats().fast_recoveries, 0);
    assert_eq!(s.c.stats().rto_timeouts, 0);
}
