//! Hostile input: random segments in every state must never panic, and
//! memory stays bounded.

mod tcp_harness;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use tcp_harness::*;
use xdptcp::tcp::{Connection, SeqNumber, TcpFlags, TcpRepr};
use xdptcp::time::Instant;

fn random_seg(rng: &mut Pcg64, near_seq: u32, near_ack: u32) -> (TcpRepr, Vec<u8>) {
    let flags = TcpFlags(rng.gen());
    let seq = if rng.gen_bool(0.7) {
        near_seq
            .wrapping_add(rng.gen_range(0..20000))
            .wrapping_sub(5000)
    } else {
        rng.gen()
    };
    let ack = if rng.gen_bool(0.7) {
        near_ack
            .wrapping_add(rng.gen_range(0..20000))
            .wrapping_sub(10000)
    } else {
        rng.gen()
    };
    let mut s = seg(flags, seq, ack, rng.gen());
    if rng.gen_bool(0.5) {
        s = s.ts(rng.gen_range(0..1000), rng.gen());
    }
    if rng.gen_bool(0.2) {
        s = s.mss(rng.gen()).ws(rng.gen());
    }
    if rng.gen_bool(0.3) {
        let n = rng.gen_range(0..5);
        for _ in 0..n {
            let l: u32 = near_ack
                .wrapping_add(rng.gen_range(0..30000))
                .wrapping_sub(10000);
            let r: u32 = if rng.gen_bool(0.8) {
                l.wrapping_add(rng.gen_range(0..5000))
            } else {
                rng.gen()
            };
            s.options.sack.push(SeqNumber(l), SeqNumber(r));
        }
    }
    let len = if rng.gen_bool(0.5) {
        0
    } else {
        rng.gen_range(0..1500)
    };
    (s, (0..len).map(|i| i as u8).collect())
}

#[test]
fn random_segments_never_panic() {
    let mut rng = Pcg64::seed_from_u64(
        std::env::var("FUZZ_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(42),
    );
    for round in 0..300 {
        let mut c = cfg();
        c.rcv_buf = 16 * FRAME_SIZE;
        c.ecn = round % 2 == 0;
        c.sack = round % 3 != 0;
        c.timestamps = round % 5 != 0;
        let mut s = match round % 4 {
            0 => Script::new(Connection::listen(&c, tuple(), SeqNumber(ISS))),
            1 => {
                let mut s = Script::new(Connection::connect(
                    &c,
                    tuple(),
                    SeqNumber(ISS),
                    Instant::ZERO,
                ));
                s.poll();
                s
            }
            _ => established(&c),
        };
        if round % 4 == 3 {
            s.send(&pattern(0, 50_000));
            s.poll();
            if round % 8 == 3 {
                s.c.shutdown();
            }
        }
        for i in 0..400u64 {
            s.at(Instant::from_millis(20 + i * 3));
            let (h, d) = random_seg(&mut rng, PEER_ISS + 1, ISS + 1);
            let ce = rng.gen_bool(0.1);
            s.c.handle_segment(s.now, &h, pkt(&d), ce);
            if rng.gen_bool(0.3) {
                s.read_all();
            }
            if rng.gen_bool(0.1) {
                if let Some(t) = s.c.poll_at() {
                    assert!(t >= s.now || i > 0, "poll_at in the past");
                    s.at(t.max(s.now));
                    s.c.handle_timeout(s.now);
                }
            }
            let out = s.poll();
            assert!(out.len() < 200);
            assert!(
                s.c.rcv_mem() <= 17 * FRAME_SIZE,
                "memory bound (one frame of slack)"
            );
            // Never spins: a second poll right away emits nothing new
            // unless the sink had refused.
            let again = s.poll();
            assert!(
                again.is_empty(),
                "poll_transmit spins: round {round} i {i} state {:?} first {:?} again {:?}",
                s.c.state(),
                out,
                again
            );
        }
    }
}
