//! Two connections back to back through a lossy, reordering, duplicating
//! in-test channel: a 1 MB transfer must arrive byte-exact, then both close.

mod tcp_harness;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::collections::VecDeque;
use tcp_harness::*;
use xdptcp::io::{Frame, Pkt};
use xdptcp::tcp::{
    CcKind, Config, Connection, FourTuple, Payload, SegmentSink, SeqNumber, State, TcpRepr,
};
use xdptcp::time::Instant;

struct Wire {
    segs: Vec<(TcpRepr, Vec<u8>, bool)>,
}

impl SegmentSink<HeapFrame> for Wire {
    fn emit(&mut self, seg: &TcpRepr, payload: Payload<'_, HeapFrame>, ect: bool) -> bool {
        self.segs.push((*seg, payload.data().to_vec(), ect));
        true
    }
    fn alloc(&mut self) -> Option<HeapFrame> {
        frame()
    }
}

struct Link {
    /// (deliver at, segment, payload, ce)
    q: VecDeque<(Instant, TcpRepr, Vec<u8>, bool)>,
}

struct Imp {
    loss: f64,
    dup: f64,
    reorder: f64,
    ce: f64,
    delay_us: u64,
}

fn carry(rng: &mut Pcg64, imp: &Imp, now: Instant, from: &mut Wire, link: &mut Link) {
    for (seg, data, ect) in from.segs.drain(..) {
        if rng.gen_bool(imp.loss) {
            continue;
        }
        let mut at = now.micros() + imp.delay_us;
        if rng.gen_bool(imp.reorder) {
            at += rng.gen_range(0..imp.delay_us);
        }
        let ce = ect && rng.gen_bool(imp.ce);
        link.q.push_back((Instant(at), seg, data.clone(), ce));
        if rng.gen_bool(imp.dup) {
            link.q.push_back((Instant(at + 100), seg, data, ce));
        }
    }
    link.q.make_contiguous().sort_by_key(|e| e.0);
}

fn to_pkt(data: &[u8]) -> Pkt<HeapFrame> {
    let mut f = frame().unwrap();
    f.buf_mut()[RX_OFF..RX_OFF + data.len()].copy_from_slice(data);
    Pkt::new(f, RX_OFF, RX_OFF + data.len())
}

fn run(
    cfg: &Config,
    imp: Imp,
    seed: u64,
    total: usize,
) -> (xdptcp::tcp::ConnStats, xdptcp::tcp::ConnStats) {
    let mut rng = Pcg64::seed_from_u64(seed);
    let ta = tuple();
    let tb = FourTuple {
        local: ta.remote,
        remote: ta.local,
    };
    let mut now = Instant::ZERO;
    let mut a: Connection<HeapFrame> = Connection::connect(cfg, ta, SeqNumber(ISS), now);
    let mut b: Option<Connection<HeapFrame>> = None;
    let (mut wa, mut wb) = (Wire { segs: vec![] }, Wire { segs: vec![] });
    let (mut ab, mut ba) = (Link { q: VecDeque::new() }, Link { q: VecDeque::new() });
    let src = pattern(0, total);
    let mut sent = 0;
    let mut got: Vec<u8> = Vec::with_capacity(total);
    let mut a_closed = false;
    let mut b_closed = false;
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(
            steps < 2_000_000,
            "no progress: sent {sent} got {}",
            got.len()
        );
        // Deliver everything due.
        while ab.q.front().is_some_and(|e| e.0 <= now) {
            let (_, seg, data, ce) = ab.q.pop_front().unwrap();
            match b.as_mut() {
                Some(b) => b.handle_segment(now, &seg, to_pkt(&data), ce),
                None if seg.flags.syn() && !seg.flags.ack() => {
                    b = Some(Connection::accept(cfg, tb, &seg, SeqNumber(PEER_ISS), now));
                }
                None => {}
            }
        }
        while ba.q.front().is_some_and(|e| e.0 <= now) {
            let (_, seg, data, ce) = ba.q.pop_front().unwrap();
            a.handle_segment(now, &seg, to_pkt(&data), ce);
        }
        if a.poll_at().is_some_and(|t| t <= now) {
            a.handle_timeout(now);
        }
        if let Some(b) = b.as_mut() {
            if b.poll_at().is_some_and(|t| t <= now) {
                b.handle_timeout(now);
            }
        }
        // Applications.
        if sent < total {
            sent += a.send(&src[sent..], &mut frame);
            if sent == total {
                a.shutdown();
            }
        }
        let ev = a.take_events();
        a_closed |= ev.closed;
        if let Some(b) = b.as_mut() {
            b.recv_with(&mut |s| {
                got.extend_from_slice(s);
                s.len()
            });
            let ev = b.take_events();
            if ev.read_closed && b.state() == State::CloseWait {
                b.shutdown();
            }
            b_closed |= ev.closed;
            assert!(!ev.reset && !ev.timed_out, "b failed");
        }
        assert!(!ev.reset && !ev.timed_out, "a failed: {:?}", a.stats());
        a.poll_transmit(now, &mut wa);
        if let Some(b) = b.as_mut() {
            b.poll_transmit(now, &mut wb);
        }
        carry(&mut rng, &imp, now, &mut wa, &mut ab);
        carry(&mut rng, &imp, now, &mut wb, &mut ba);
        if b_closed && (a_closed || a.state() == State::TimeWait) {
            break;
        }
        // Next event.
        let next = [
            ab.q.front().map(|e| e.0),
            ba.q.front().map(|e| e.0),
            a.poll_at(),
            b.as_ref().and_then(|b| b.poll_at()),
        ]
        .into_iter()
        .flatten()
        .min()
        .expect("deadlock: nothing scheduled");
        assert!(next >= now, "time went backwards");
        now = next;
    }
    eprintln!("done at {:?} steps {steps}", now);
    assert_eq!(got.len(), total);
    assert!(got == src, "payload corrupted");
    eprintln!("a {:?}\nb {:?}", a.stats(), b.as_ref().unwrap().stats());
    (*a.stats(), *b.unwrap().stats())
}

fn base() -> Config {
    Config {
        rcv_buf: 256 * 1024,
        snd_buf: 128 * 1024,
        ..Config::default()
    }
}

#[test]
fn clean_transfer_1mb() {
    let (sa, _) = run(
        &base(),
        Imp {
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            ce: 0.0,
            delay_us: 5000,
        },
        1,
        1 << 20,
    );
    assert_eq!(sa.retransmits, 0);
}

#[test]
fn lossy_transfer_1mb_sack_cubic() {
    let (sa, sb) = run(
        &base(),
        Imp {
            loss: 0.02,
            dup: 0.01,
            reorder: 0.05,
            ce: 0.0,
            delay_us: 5000,
        },
        7,
        1 << 20,
    );
    assert!(sa.retransmits > 0);
    assert!(sa.fast_recoveries > 0);
    assert!(sb.ooo_segs_in > 0);
}

#[test]
fn lossy_transfer_1mb_newreno_no_sack_no_ts() {
    let cfg = Config {
        sack: false,
        timestamps: false,
        window_scale: 0,
        cc: CcKind::NewReno,
        rcv_buf: 128 * 1024,
        ..base()
    };
    let (sa, _) = run(
        &cfg,
        Imp {
            loss: 0.02,
            dup: 0.01,
            reorder: 0.05,
            ce: 0.0,
            delay_us: 5000,
        },
        11,
        1 << 20,
    );
    assert!(sa.retransmits > 0);
}

#[test]
fn ecn_marked_transfer() {
    let (sa, _) = run(
        &base(),
        Imp {
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            ce: 0.02,
            delay_us: 5000,
        },
        3,
        1 << 19,
    );
    assert!(sa.ecn_reactions > 0);
    assert_eq!(sa.retransmits, 0);
}

#[test]
fn heavy_loss_small_buffers() {
    let cfg = Config {
        rcv_buf: 16 * 2048,
        snd_buf: 32 * 1024,
        ..Config::default()
    };
    run(
        &cfg,
        Imp {
            loss: 0.1,
            dup: 0.05,
            reorder: 0.2,
            ce: 0.0,
            delay_us: 2000,
        },
        5,
        200_000,
    );
}
