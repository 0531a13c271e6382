//! Packet scripts for the steady state's transmit path
//! (`tcp::conn::plain_tx`): a data segment from SND.NXT or a pure ACK
//! with nothing but the ACK, window and
//! timestamps to carry is handed to the sink as a `PlainHeader`
//! (`SegmentSink::emit_plain`) and is exactly what the general path
//! (`ack_repr` + `emit`) emits; a twin connection with `plain_tx` off is
//! given the same inputs and compared after each step. Every unusual case
//! falls back to the general path with the same output: SACK blocks owed
//! (out-of-order data held, RFC 2018 §4), a D-SACK owed (RFC 2883), an
//! ECE to echo (RFC 3168 §6.1.3), the switch off.

mod tcp_harness;
use tcp_harness::*;
use xdptcp::tcp::Config;

const N: u32 = ISS + 1;
const M: u32 = PEER_ISS + 1;

/// ESTABLISHED, the peer's window (1000 << 7) taken from a first ACK.
fn warm(cfg: &Config) -> Script {
    let mut s = established(cfg);
    s.at_ms(20);
    let mut h = seg(A, M, N, 1000);
    if cfg.timestamps {
        h = h.ts(200, 10);
    }
    assert!(s.io(h, &[]).is_empty());
    s
}

/// Poll; everything the peer and the application can tell, and how many
/// segments went by `emit_plain`.
fn poll_observe(s: &mut Script) -> (String, usize) {
    let before = s.sink.plain;
    let out = s.poll();
    let st = *s.c.stats();
    let seen = format!(
        "{:?} {:?} cwnd {} flight {} at {:?} ev {:?} out {:?}",
        s.c.state(),
        st,
        s.c.cwnd(),
        s.c.in_flight(),
        s.c.poll_at(),
        s.c.take_events(),
        out.iter()
            .map(|o| (o.seg, o.data.clone(), o.ect))
            .collect::<Vec<_>>()
    );
    (seen, s.sink.plain - before)
}

fn off(cfg: &Config) -> Config {
    Config {
        plain_tx: false,
        ..cfg.clone()
    }
}

/// Request/response and then bulk: every data segment we send and every
/// delayed ACK takes the plain path, and the twin without it emits the same segments and ends
/// each step in the same state (with and without timestamps).
#[test]
fn steady_state_takes_the_plain_path_and_emits_what_the_general_path_emits() {
    for ts in [true, false] {
        let on = Config {
            timestamps: ts,
            ..cfg()
        };
        let (mut a, mut b) = (warm(&on), warm(&off(&on)));
        let mut ours = N;
        let mut theirs = M;
        // The handshake's last ACK was already plain.
        assert_eq!(a.sink.plain, 1);
        let mut plain = 1;
        for i in 0..20u32 {
            let ms = 30 + 10 * i as u64;
            // Our request.
            assert_eq!(a.send(&[9; 100]), 100);
            assert_eq!(b.send(&[9; 100]), 100);
            a.at_ms(ms);
            b.at_ms(ms);
            let (sa, na) = poll_observe(&mut a);
            let (sb, nb) = poll_observe(&mut b);
            assert_eq!(sa, sb, "ts {ts} step {i}");
            assert_eq!((na, nb), (1, 0), "ts {ts} step {i}: {sa}");
            plain += na;
            ours += 100;
            // The answer, acknowledging it.
            let d = pattern(theirs.wrapping_sub(M) as usize, 64);
            let mut h = seg(fl(&[A, P]), theirs, ours, 1000);
            if ts {
                h = h.ts(300 + i, ms as u32);
            }
            a.at_ms(ms + 5);
            b.at_ms(ms + 5);
            a.input(h, &d);
            b.input(h, &d);
            theirs += 64;
            assert_eq!(a.read_all(), d);
            assert_eq!(b.read_all(), d);
            if i % 2 == 1 {
                // Nothing to send: the delayed ACK, a pure ACK.
                let (pa, pb) = (a.sink.plain, b.sink.plain);
                let (oa, ob) = (a.fire(), b.fire());
                assert_eq!(oa.len(), 1, "ts {ts} step {i}: {oa:?}");
                assert!(oa[0].data.is_empty());
                assert_eq!(
                    format!("{oa:?} {:?}", a.c.stats()),
                    format!("{ob:?} {:?}", b.c.stats()),
                    "ts {ts} step {i}"
                );
                assert_eq!((a.sink.plain - pa, b.sink.plain - pb), (1, 0));
                plain += 1;
            }
        }
        // Bulk: several segments in one poll.
        let bulk = vec![5u8; 8 * 1448];
        assert_eq!(a.send(&bulk), bulk.len());
        assert_eq!(b.send(&bulk), bulk.len());
        let (sa, na) = poll_observe(&mut a);
        let (sb, nb) = poll_observe(&mut b);
        assert_eq!(sa, sb, "ts {ts} bulk");
        assert_eq!((na, nb), (8, 0), "ts {ts} bulk");
        plain += na;
        assert_eq!(a.sink.plain, plain, "ts {ts}");
        assert_eq!(b.sink.plain, 0);
    }
}

/// Each unusual case takes the general path, which emits what it always
/// did: the twins agree and nothing went by `emit_plain`.
#[test]
fn unusual_segments_fall_back_with_the_general_paths_output() {
    // What arrives before our next data segment, and the config.
    type Setup = fn(&mut Script);
    let cases: Vec<(&str, Config, Setup)> = vec![
        ("SACK blocks owed", cfg(), |s| {
            // Out of order: a hole of 64 bytes before it.
            s.input(seg(fl(&[A, P]), M + 64, N, 1000).ts(201, 20), &[1; 64]);
        }),
        ("D-SACK owed", cfg(), |s| {
            let d = pattern(0, 64);
            s.input(seg(fl(&[A, P]), M, N, 1000).ts(201, 20), &d);
            s.input(seg(fl(&[A, P]), M, N, 1000).ts(202, 20), &d);
        }),
        ("ECE to echo", Config { ecn: true, ..cfg() }, |s| {
            s.input_ce(seg(fl(&[A, P]), M, N, 1000).ts(201, 20), &pattern(0, 64));
        }),
    ];
    for (what, on, setup) in cases {
        // With data of ours to send, and with only the ACK it owes.
        for data in [true, false] {
            let (mut a, mut b) = (warm(&on), warm(&off(&on)));
            a.at_ms(25);
            b.at_ms(25);
            setup(&mut a);
            setup(&mut b);
            if data {
                assert_eq!(a.send(&[9; 100]), 100);
                assert_eq!(b.send(&[9; 100]), 100);
            } else {
                // The ACK owed, whenever it is due.
                a.at_ms(100);
                b.at_ms(100);
                a.c.handle_timeout(a.now);
                b.c.handle_timeout(b.now);
            }
            let (sa, na) = poll_observe(&mut a);
            let (sb, _) = poll_observe(&mut b);
            assert_eq!(sa, sb, "{what} (data {data})");
            if data {
                assert!(
                    sa.contains("flight 100 "),
                    "{what}: our data was sent: {sa}"
                );
            } else {
                assert!(
                    sa.contains("out [(TcpRepr"),
                    "{what}: an ACK was sent: {sa}"
                );
            }
            assert_eq!(na, 0, "{what} (data {data}) took the plain path: {sa}");
        }
    }
    // The same steps with nothing unusual: plain (so the cases above fail
    // only for what they change).
    let mut s = warm(&cfg());
    s.at_ms(25);
    s.input(seg(fl(&[A, P]), M, N, 1000).ts(201, 20), &pattern(0, 64));
    assert_eq!(s.send(&[9; 100]), 100);
    assert_eq!(poll_observe(&mut s).1, 1);
    // The switch off: never.
    let mut s = warm(&off(&cfg()));
    assert_eq!(s.send(&[9; 100]), 100);
    assert_eq!(poll_observe(&mut s).1, 0);
}
