//! Scoreboard unit tests, and the property test against the linear
//! reference.

use super::*;

const T: Instant = Instant(1000);

fn sb(n: u32) -> Scoreboard {
    let mut b = Scoreboard::default();
    for i in 0..n {
        b.push(
            SeqNumber(i * 100),
            SeqNumber(i * 100 + 100),
            false,
            Instant(i as u64),
        );
    }
    b
}

#[test]
fn pipe_and_islost() {
    let mut b = sb(10);
    assert_eq!(b.pipe(), 1000);
    // SACK segments 3 and 5..7.
    assert_eq!(b.sack(SeqNumber(300), SeqNumber(400), T, None), 100);
    assert_eq!(b.sack(SeqNumber(500), SeqNumber(700), T, None), 200);
    assert_eq!(b.pipe(), 700);
    // Three segments SACKed above 0,1,2 -> lost; 4 has two above.
    assert!(b.mark_lost(100));
    assert_eq!(b.pipe(), 400);
    assert_eq!(b.next_lost(), Some(0));
    b.on_retransmit(0, Instant(50));
    assert_eq!(b.pipe(), 500);
    assert_eq!(b.next_lost(), Some(1));
    // Rule 3 finds 4 (below high SACK, not lost).
    assert_eq!(b.next_rule3(), Some(4));
    let a = b.ack(SeqNumber(150), T, None);
    assert_eq!(a.segs, 1);
    assert!(a.any_retrans);
    assert_eq!(b.get(0).unwrap().start, SeqNumber(150));
    assert_eq!(b.pipe(), 400);
}

#[test]
fn sack_ignores_partly_covered_segments() {
    let mut b = sb(3);
    assert_eq!(b.sack(SeqNumber(150), SeqNumber(250), T, None), 0);
    assert_eq!(b.sack(SeqNumber(150), SeqNumber(300), T, None), 100);
    assert_eq!(b.len(), 3);
    assert_eq!(b.sacked_bytes(), 100);
    b.mark_all_lost();
    assert_eq!(b.sacked_bytes(), 0);
    assert_eq!(b.pipe(), 0);
}

#[test]
fn rack_marks_old_segments_lost_after_rtt_plus_reo_wnd() {
    let mut b = Scoreboard::default();
    // Segments 0..4 sent at 0, 10, 20, 30 ms.
    for i in 0..4u32 {
        b.push(
            SeqNumber(i * 100),
            SeqNumber(i * 100 + 100),
            false,
            Instant::from_millis(i as u64 * 10),
        );
    }
    // Segment 2 SACKed at 50 ms: RACK.rtt = 30 ms.
    b.sack(
        SeqNumber(200),
        SeqNumber(300),
        Instant::from_millis(50),
        None,
    );
    assert_eq!(b.rack.rtt(), Duration::from_millis(30));
    // At 50 ms with reo_wnd 5: segment 0 (0+35 <= 50) lost, 1 (10+35=45) lost.
    let (lost, timer) = b.rack_detect(Instant::from_millis(50), Duration::from_millis(5));
    assert!(lost);
    assert_eq!(timer, None);
    assert_eq!(b.next_lost(), Some(0));
    b.on_retransmit(0, Instant::from_millis(50));
    assert_eq!(b.next_lost(), Some(1));
    // Segment 3 was sent after the delivered one: not examined.
    assert!(!b.get(3).unwrap().lost);
    // Segment 1 delivered without retransmission below FACK: reordering.
    b.sack(
        SeqNumber(100),
        SeqNumber(200),
        Instant::from_millis(60),
        None,
    );
    assert!(b.rack.reordering_seen);
    // A timer for a segment not yet old enough.
    let mut c = Scoreboard::default();
    c.push(SeqNumber(0), SeqNumber(100), false, Instant::from_millis(0));
    c.push(
        SeqNumber(100),
        SeqNumber(200),
        false,
        Instant::from_millis(1),
    );
    c.sack(
        SeqNumber(100),
        SeqNumber(200),
        Instant::from_millis(11),
        None,
    );
    let (lost, timer) = c.rack_detect(Instant::from_millis(11), Duration::from_millis(2));
    assert!(!lost);
    assert_eq!(timer, Some(Instant::from_millis(12)));
}

/// Compare every answer and every segment of the fast scoreboard with
/// the linear reference over random send/SACK/ACK/loss sequences.
#[test]
fn matches_linear_reference() {
    use super::reference::RefScoreboard;
    use rand::{Rng, SeedableRng};
    for seed in 0..300u64 {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
        let mut a = Scoreboard::default();
        let mut r = RefScoreboard::default();
        // Start near the wrap point sometimes.
        let base = if seed % 3 == 0 { u32::MAX - 5000 } else { 1000 };
        let mut nxt = SeqNumber(base);
        let mut una = nxt;
        let mut now = 0u64;
        let unit = 100usize;
        for step in 0..400 {
            now += rng.gen_range(0..3u64);
            let t = Instant::from_millis(now);
            let min_rtt = if rng.gen_bool(0.5) {
                Some(Duration::from_millis(rng.gen_range(0..4)))
            } else {
                None
            };
            match rng.gen_range(0..14) {
                0..=2 => {
                    let len = rng.gen_range(1..=3) * unit - rng.gen_range(0..2) * 50;
                    let fin = rng.gen_bool(0.02);
                    a.push(nxt, nxt + len, fin, t);
                    r.push(nxt, nxt + len, fin, t);
                    nxt = nxt + len;
                }
                3..=5 => {
                    let span = nxt - una;
                    if span > 0 {
                        let mut l = una + rng.gen_range(0..span);
                        let mut rr = una + rng.gen_range(0..=span);
                        if rng.gen_bool(0.7) {
                            // Mostly on unit boundaries.
                            l = una + ((l - una) / unit * unit);
                            rr = una + ((rr - una) / unit * unit);
                        }
                        if rr < l {
                            core::mem::swap(&mut l, &mut rr);
                        }
                        // The growing-block pattern of one hole.
                        if rng.gen_bool(0.3) {
                            rr = nxt;
                        }
                        assert_eq!(a.sack(l, rr, t, min_rtt), r.sack(l, rr, t, min_rtt));
                    }
                }
                6 => {
                    let span = nxt - una;
                    if span > 0 && rng.gen_bool(0.5) {
                        let to = una + rng.gen_range(0..=span.min(4 * unit));
                        assert_eq!(a.ack(to, t, min_rtt), r.ack(to, t, min_rtt));
                        una = to;
                    }
                }
                7 => {
                    let smss = rng.gen_range(0..3) * unit;
                    assert_eq!(a.mark_lost(smss), r.mark_lost(smss), "seed {seed}");
                }
                8 => {
                    let reo = Duration::from_millis(rng.gen_range(0..3));
                    if a.rack_has_candidates() {
                        assert_eq!(a.rack_detect(t, reo), r.rack_detect(t, reo));
                    } else {
                        // `rack_run` skips the walk then: the reference
                        // must find nothing, and the later steps compare
                        // the state left without it.
                        assert_eq!(r.rack_detect(t, reo), (false, None), "seed {seed}");
                    }
                }
                9 => {
                    if let Some(i) = a.next_lost() {
                        a.on_retransmit(i, t);
                        r.on_retransmit(i, t);
                    }
                }
                10 => {
                    if let Some(i) = a.next_rule3() {
                        a.on_retransmit(i, t);
                        r.on_retransmit(i, t);
                    }
                }
                11 => match rng.gen_range(0..20) {
                    0 => {
                        a.mark_all_lost();
                        r.mark_all_lost();
                    }
                    1 => {
                        a.unmark_lost();
                        r.unmark_lost();
                    }
                    2..=5 => {
                        a.mark_head_lost();
                        r.mark_head_lost();
                    }
                    _ => {
                        a.rack.reordering = rng.gen_range(0..6);
                        r.rack.reordering = a.rack.reordering;
                    }
                },
                12 => {
                    if !a.is_empty() {
                        let i = rng.gen_range(0..a.len());
                        let s = *a.get(i).unwrap();
                        let at = s.start + rng.gen_range(0..=s.len());
                        a.split(i, at);
                        r.split(i, at);
                    }
                }
                _ => {
                    if let Some(i) = a.last() {
                        a.on_retransmit(i, t);
                        r.on_retransmit(i, t);
                    }
                }
            }
            let ctx = format!("seed {seed} step {step}");
            assert_eq!(a.len(), r.len(), "{ctx}");
            for i in 0..a.len() {
                assert_eq!(a.get(i), r.get(i), "{ctx} seg {i}");
            }
            assert_eq!(a.rack, r.rack, "{ctx}");
            assert_eq!(a.pipe(), r.pipe(), "{ctx}");
            assert_eq!(a.sacked_bytes(), r.sacked_bytes(), "{ctx}");
            assert_eq!(a.high_sacked(), r.high_sacked(), "{ctx}");
            // Not always: the cursors must also survive several steps.
            if rng.gen_bool(0.5) {
                assert_eq!(a.next_lost(), r.next_lost(), "{ctx}");
                assert_eq!(a.next_rule3(), r.next_rule3(), "{ctx}");
            }
            assert_eq!(a.last(), r.last(), "{ctx}");
        }
    }
}

/// The clean-state ACK (every ACK of a lossless path) leaves the board and
/// returns exactly what the general path does, partial ACKs included.
#[test]
fn clean_ack_matches_the_general_path() {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_pcg::Pcg64::seed_from_u64(2018);
    let mut all = 0;
    for _ in 0..300 {
        let mut b = Scoreboard::default();
        let (mut nxt, mut una) = (0u32, 0u32);
        for step in 0..40u64 {
            for _ in 0..rng.gen_range(0..4) {
                let len = rng.gen_range(1..1500);
                let fin = rng.gen_bool(0.05);
                b.push(SeqNumber(nxt), SeqNumber(nxt + len), fin, Instant(step));
                nxt += len;
            }
            // A third of the ACKs cover everything (`ack_all_clean`, one
            // segment or several).
            una = match rng.gen_range(0..3) {
                0 => nxt,
                _ => rng.gen_range(una..=nxt),
            };
            assert!(b.is_clean());
            all += usize::from(b.segs.back().is_some_and(|s| s.end <= SeqNumber(una)));
            let mut g = b.clone();
            let now = Instant(step + 10);
            let want = g.ack_general(SeqNumber(una), now, None);
            assert_eq!(b.ack(SeqNumber(una), now, None), want);
            assert_eq!(format!("{b:?}"), format!("{g:?}"));
        }
    }
    assert!(all > 3000, "the whole-board ACK was tried {all} times");
}
