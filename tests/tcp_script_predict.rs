//! Packet scripts for header prediction (`tcp::conn::predict`, RFC 9293
//! §3.10.7.4 in one function for the steady state): the fast path is
//! taken by in-order data with the expected ACK and by a pure ACK of new
//! data, and does there exactly what the general path does (a twin
//! connection with `header_prediction` off is fed the same segments and
//! compared after each); every unusual segment falls back to the general
//! path: out of order, SACK, a window change, FIN, URG, an option other
//! than timestamps, a PAWS failure, no timestamp, a CE mark, a duplicate
//! ACK. MPTCP falls back too (`tcp_script_mptcp.rs`).

mod tcp_harness;
use tcp_harness::*;
use xdptcp::tcp::{CcKind, Config, TcpFlags, TcpRepr};
use xdptcp::wire::MptcpRaw;

const N: u32 = ISS + 1;
const M: u32 = PEER_ISS + 1;

/// ESTABLISHED (peer TSval 100 at 10 ms), the peer's window (1000 << 7)
/// taken from a first ACK, and 100 bytes of ours sent at 20 ms.
fn warm(cfg: &Config) -> Script {
    let mut s = established(cfg);
    s.at_ms(20);
    // A window update: the general path.
    assert!(s.io(seg(A, M, N, 1000).ts(200, 10), &[]).is_empty());
    assert_eq!(s.c.stats().segs_predicted, 0);
    assert_eq!(s.send(&[7; 100]), 100);
    let out = s.poll();
    assert_eq!(out.len(), 1);
    check(&out[0], fl(&[A, P]), N, M, 100);
    s
}

/// Feed `h` (with `data`) at `ms`; whether the fast path took it.
fn taken(s: &mut Script, ms: u64, h: TcpRepr, data: &[u8], ce: bool) -> bool {
    let (before, ins) = (s.c.stats().segs_predicted, s.c.stats().segs_in);
    s.at_ms(ms);
    match ce {
        true => s.input_ce(h, data),
        false => s.input(h, data),
    }
    assert_eq!(s.c.stats().segs_in, ins + 1);
    s.c.stats().segs_predicted == before + 1
}

/// Everything the application and the peer can tell about a connection,
/// and the TCB's own state (`tcb_digest`: every part either path may
/// update, so a fast path that skips one shows).
fn observe(s: &mut Script) -> String {
    let tcb = s.c.tcb_digest();
    let mut st = *s.c.stats();
    st.segs_predicted = 0;
    let out = s.poll();
    format!(
        "{tcb}\n{:?} {:?} cwnd {} wnd {} flight {} srtt {:?} rto {:?} at {:?} avail {} ev {:?} out {:?}",
        s.c.state(),
        st,
        s.c.cwnd(),
        s.c.snd_wnd(),
        s.c.in_flight(),
        s.c.srtt(),
        s.c.rto(),
        s.c.poll_at(),
        s.c.recv_available(),
        s.c.take_events(),
        out.iter()
            .map(|o| (o.seg, o.data.clone()))
            .collect::<Vec<_>>()
    )
}

/// The steady state of a request/response exchange: each peer segment
/// carries the next data and acknowledges ours. Every one is predicted,
/// and the twin without prediction ends each step in the same state and
/// emits the same segments (the RTT sample, SND.UNA, the send queue,
/// cwnd growth, the data, the ACK owed and the timers).
#[test]
fn steady_state_takes_the_fast_path_and_does_what_the_general_path_does() {
    let on = cfg();
    let off = Config {
        header_prediction: false,
        ..cfg()
    };
    let (mut a, mut b) = (warm(&on), warm(&off));
    let mut ours = N + 100;
    let mut theirs = M;
    let mut tsval = 200;
    for i in 0..20u32 {
        tsval += 1;
        let ms = 30 + 10 * i as u64;
        let d = pattern(theirs.wrapping_sub(M) as usize, 64);
        let h = seg(fl(&[A, P]), theirs, ours, 1000).ts(tsval, ms as u32 - 10);
        assert!(taken(&mut a, ms, h, &d, false), "step {i}");
        assert!(!taken(&mut b, ms, h, &d, false));
        assert_eq!(a.c.in_flight(), 0, "SND.UNA advanced, step {i}");
        assert_eq!(observe(&mut a), observe(&mut b), "step {i}");
        theirs += 64;
        assert_eq!(a.read_all(), d);
        assert_eq!(b.read_all(), d);
        // Our answer, then (every other step) a pure ACK of it.
        assert_eq!(a.send(&[9; 100]), 100);
        assert_eq!(b.send(&[9; 100]), 100);
        assert_eq!(observe(&mut a), observe(&mut b), "step {i}");
        ours += 100;
        if i % 2 == 0 {
            tsval += 1;
            let h = seg(A, theirs, ours, 1000).ts(tsval, ms as u32);
            assert!(taken(&mut a, ms + 5, h, &[], false), "pure ACK, step {i}");
            assert!(!taken(&mut b, ms + 5, h, &[], false));
            assert_eq!(a.c.in_flight(), 0);
            assert_eq!(observe(&mut a), observe(&mut b), "pure ACK, step {i}");
        }
    }
    assert!(a.c.srtt().is_some());
    assert_eq!(a.c.stats().segs_predicted, 30);
    // Bulk: limited by cwnd, every other segment acknowledged by a pure
    // ACK, so cwnd grows (slow start) with each predicted ACK.
    let bulk = vec![5u8; 40 * 1448];
    assert_eq!(a.send(&bulk), bulk.len());
    assert_eq!(b.send(&bulk), bulk.len());
    assert_eq!(observe(&mut a), observe(&mut b));
    let cwnd = a.c.cwnd();
    for k in 0..15u32 {
        tsval += 1;
        ours += 2 * 1448;
        let h = seg(A, theirs, ours, 1000).ts(tsval, 300);
        assert!(taken(&mut a, 300 + k as u64, h, &[], false), "bulk ACK {k}");
        assert!(!taken(&mut b, 300 + k as u64, h, &[], false));
        assert_eq!(observe(&mut a), observe(&mut b), "bulk ACK {k}");
    }
    assert!(a.c.cwnd() > cwnd, "cwnd grew: {} -> {}", cwnd, a.c.cwnd());
    assert_eq!(b.c.stats().segs_predicted, 0);
}

/// Each unusual segment falls back: it is not predicted, and the general
/// path handles it (the twin comparison above covers what the fast path
/// does; here, only that it steps aside).
#[test]
fn unusual_segments_fall_back() {
    let next = || seg(fl(&[A, P]), M, N + 100, 1000).ts(201, 20);
    let d = pattern(0, 64);
    let mptcp = MptcpRaw::from_slice(&[30, 4, 0x20, 0]).unwrap();
    let cases: Vec<(&str, TcpRepr, bool)> = vec![
        (
            "out of order",
            seg(fl(&[A, P]), M + 64, N + 100, 1000).ts(201, 20),
            false,
        ),
        ("SACK", next().sack(&[(N + 20, N + 40)]), false),
        (
            "window change",
            seg(fl(&[A, P]), M, N + 100, 999).ts(201, 20),
            false,
        ),
        ("FIN", next().with(TcpFlags::FIN), false),
        ("URG", next().with(TcpFlags::URG), false),
        ("ECE", next().with(TcpFlags::ECE), false),
        ("MSS option", next().mss(1460), false),
        ("window scale option", next().ws(7), false),
        ("SACK-permitted option", next().sack_perm(), false),
        (
            "MPTCP option",
            {
                let mut h = next();
                h.options.mptcp = mptcp;
                h
            },
            false,
        ),
        (
            "PAWS failure",
            seg(fl(&[A, P]), M, N + 100, 1000).ts(199, 20),
            false,
        ),
        ("no timestamp", seg(fl(&[A, P]), M, N + 100, 1000), false),
        ("CE mark", next(), true),
    ];
    for (what, h, ce) in cases {
        let mut s = warm(&cfg());
        assert!(!taken(&mut s, 30, h, &d, ce), "{what} was predicted");
    }
    // The same segment, nothing unusual about it: predicted (so the cases
    // above fail only for what they change).
    let mut s = warm(&cfg());
    assert!(taken(&mut s, 30, next(), &d, false));
    // A duplicate ACK (nothing new acknowledged, no data).
    let mut s = warm(&cfg());
    assert!(!taken(
        &mut s,
        30,
        seg(A, M, N, 1000).ts(201, 20),
        &[],
        false
    ));
    // Prediction off: never.
    let mut s = warm(&Config {
        header_prediction: false,
        ..cfg()
    });
    assert!(!taken(&mut s, 30, next(), &d, false));
}

/// A seeded mix of segments, the predicted kinds among the others: data
/// with and without a new ACK, partial and full ACKs, a window change,
/// out-of-order data and the segment that fills its hole, duplicate
/// ACKs, with writes, reads and timers between, under NewReno and CUBIC.
/// The twin without prediction ends every step with the same TCB (every
/// part: `tcb_digest`), the same output and the same events; both kinds
/// of step occur many times.
#[test]
fn a_mix_of_segments_leaves_both_paths_in_the_same_state() {
    for cc in [CcKind::NewReno, CcKind::Cubic] {
        let on = Config { cc, ..cfg() };
        let off = Config {
            header_prediction: false,
            ..on.clone()
        };
        let (mut a, mut b) = (warm(&on), warm(&off));
        let mut una = N;
        let mut theirs = M;
        // Out-of-order data held by us: the hole is at `theirs`.
        let mut ooo = false;
        let mut wnd = 1000u16;
        let (mut tsval, mut ms) = (200u32, 30u64);
        let mut x: u64 = 0x2545_f491_4f6c_dd1d ^ cc as u64;
        let (mut fast, mut general) = (0, 0);
        for i in 0..400 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let echo = tsv(ms);
            ms += 1 + x % 5;
            tsval += 1;
            if x.is_multiple_of(3) {
                let n = 50 + (x >> 20) as usize % 3000;
                assert_eq!(a.send(&vec![3; n]), b.send(&vec![3; n]), "{cc:?} step {i}");
            }
            let nxt = una + a.c.in_flight() as u32;
            let part = if nxt == una {
                0
            } else {
                1 + (x >> 32) as u32 % (nxt - una)
            };
            let d = pattern(theirs.wrapping_sub(M) as usize, 64);
            let (h, data) = match (x >> 8) % 8 {
                // In-order data acknowledging part or all of ours.
                0..=2 => (seg(fl(&[A, P]), theirs, una + part, wnd), d.clone()),
                // In-order data, nothing new acknowledged.
                3 => (seg(fl(&[A, P]), theirs, una, wnd), d.clone()),
                // A pure ACK of part or all of ours.
                4 => (seg(A, theirs, una + part, wnd), vec![]),
                // A window change.
                5 => {
                    wnd = if wnd == 1000 { 1001 } else { 1000 };
                    (seg(A, theirs, una, wnd), vec![])
                }
                // Data beyond a hole (once), or a duplicate ACK.
                6 if !ooo => {
                    let e = pattern(theirs.wrapping_sub(M) as usize + 64, 64);
                    (seg(fl(&[A, P]), theirs + 64, una, wnd), e)
                }
                _ => (seg(A, theirs, una, wnd), vec![]),
            };
            let h = h.ts(tsval, echo);
            let (seq, len, ack) = (h.seq.0, data.len() as u32, h.ack.0);
            let was = taken(&mut a, ms, h, &data, false);
            assert!(!taken(&mut b, ms, h, &data, false));
            if was {
                fast += 1;
            } else {
                general += 1;
            }
            if ack > una {
                una = ack;
            }
            if seq == theirs && len > 0 {
                theirs += if ooo { 128 } else { 64 };
                ooo = false;
            } else if seq == theirs + 64 {
                ooo = true;
            }
            assert_eq!(observe(&mut a), observe(&mut b), "{cc:?} step {i}");
            if x.is_multiple_of(4) {
                assert_eq!(a.read_all(), b.read_all(), "{cc:?} step {i}");
                assert_eq!(observe(&mut a), observe(&mut b), "{cc:?} read, step {i}");
            }
            // Now and then the clock passes a deadline (delayed ACK, TLP,
            // RTO): both run their timers.
            if x % 16 == 1 {
                if let (Some(ta), Some(tb)) = (a.c.poll_at(), b.c.poll_at()) {
                    assert_eq!(ta, tb, "{cc:?} step {i}");
                    ms = ms.max(ta.micros().div_ceil(1000));
                    a.at_ms(ms);
                    b.at_ms(ms);
                    a.c.handle_timeout(a.now);
                    b.c.handle_timeout(b.now);
                    assert_eq!(observe(&mut a), observe(&mut b), "{cc:?} timer, step {i}");
                }
            }
        }
        assert!(
            fast > 100 && general > 100,
            "{cc:?}: {fast} fast, {general} general"
        );
    }
}
