//! Two connections back to back through a lossy, reordering, duplicating
//! in-test channel: a 1 MB transfer must arrive byte-exact, then both close.

mod tcp_harness;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::collections::VecDeque;
use tcp_harness::*;
use xdptcp::io::{Frame, Pkt};
use xdptcp::tcp::ConnStats;
use xdptcp::tcp::{
    CcKind, Config, Connection, FourTuple, Payload, SegmentSink, SeqNumber, State, TcpRepr,
};
use xdptcp::time::Instant;

struct Wire {
    segs: Vec<(TcpRepr, Vec<u8>, bool)>,
    /// Every segment emitted (header, payload length, ECT), in order.
    log: Vec<(TcpRepr, usize, bool)>,
    /// Refuse every n-th emit (a full TX ring); 0: never.
    refuse_every: u32,
    count: u32,
    refused: bool,
}

impl Wire {
    fn new(refuse_every: u32) -> Wire {
        Wire {
            segs: vec![],
            log: vec![],
            refuse_every,
            count: 0,
            refused: false,
        }
    }
}

impl SegmentSink<HeapFrame> for Wire {
    fn emit(&mut self, seg: &TcpRepr, payload: Payload<'_, HeapFrame>, ect: bool) -> bool {
        self.count += 1;
        if self.refuse_every > 0 && self.count.is_multiple_of(self.refuse_every) {
            self.refused = true;
            return false;
        }
        self.log.push((*seg, payload.data().len(), ect));
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

#[derive(Default, Clone, Copy)]
struct Imp {
    /// Refuse every n-th emit (0: never).
    refuse_every: u32,
    loss: f64,
    dup: f64,
    reorder: f64,
    ce: f64,
    delay_us: u64,
}

/// 2% loss, 1% duplication, 5% reordering, 5 ms one way.
const LOSSY: Imp = Imp {
    refuse_every: 0,
    loss: 0.02,
    dup: 0.01,
    reorder: 0.05,
    ce: 0.0,
    delay_us: 5000,
};

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

struct Side {
    src: Vec<u8>,
    sent: usize,
    got: Vec<u8>,
    closed: bool,
    shut: bool,
}

impl Side {
    fn new(n: usize, seed: usize) -> Side {
        Side {
            src: pattern(seed, n),
            sent: 0,
            got: Vec::new(),
            closed: false,
            shut: false,
        }
    }
}

/// Drive one endpoint's application: write what fits, read at most
/// `read_limit` bytes, close after everything was written.
fn app(c: &mut Connection<HeapFrame>, me: &mut Side, read_limit: usize, who: &str) {
    if me.sent < me.src.len() {
        me.sent += c.send(&me.src[me.sent..], &mut frame);
    }
    if me.sent == me.src.len()
        && !me.shut
        && c.state() != State::SynSent
        && c.state() != State::SynReceived
    {
        c.shutdown();
        me.shut = true;
    }
    let mut budget = read_limit;
    let got = &mut me.got;
    c.recv_with(&mut |s| {
        let k = s.len().min(budget);
        got.extend_from_slice(&s[..k]);
        budget -= k;
        k
    });
    let ev = c.take_events();
    me.closed |= ev.closed();
    assert!(
        !ev.reset() && !ev.timed_out(),
        "{who} failed: {ev:?} {:?} {:?}",
        c.state(),
        c.stats()
    );
}

fn run(cfg: &Config, imp: Imp, seed: u64, total: usize) -> (ConnStats, ConnStats) {
    run2(cfg, imp, seed, total, 0, usize::MAX)
}

fn run2(
    cfg: &Config,
    imp: Imp,
    seed: u64,
    total_a: usize,
    total_b: usize,
    b_read: usize,
) -> (ConnStats, ConnStats) {
    let (a, b, _) = run_logged(cfg, imp, seed, total_a, total_b, b_read);
    (a, b)
}

/// A sends `total_a` bytes to B, B sends `total_b` to A; B reads at most
/// `b_read` bytes per step. Returns both sides' counters and every segment
/// each emitted (A's, then B's).
fn run_logged(
    cfg: &Config,
    imp: Imp,
    seed: u64,
    total_a: usize,
    total_b: usize,
    b_read: usize,
) -> (ConnStats, ConnStats, Vec<(TcpRepr, usize, bool)>) {
    let mut rng = Pcg64::seed_from_u64(seed);
    let ta = tuple();
    let tb = FourTuple {
        local: ta.remote,
        remote: ta.local,
    };
    let mut now = Instant::ZERO;
    let mut a: Connection<HeapFrame> = Connection::connect(cfg, ta, SeqNumber(ISS), now);
    let mut b: Option<Connection<HeapFrame>> = None;
    let (mut wa, mut wb) = (
        Wire::new(imp.refuse_every),
        Wire::new(if imp.refuse_every > 0 {
            imp.refuse_every + 1
        } else {
            0
        }),
    );
    let (mut ab, mut ba) = (Link { q: VecDeque::new() }, Link { q: VecDeque::new() });
    let mut sa = Side::new(total_a, 0);
    let mut sb = Side::new(total_b, 7);
    let mut steps = 0;
    loop {
        steps += 1;
        assert!(
            steps < 2_000_000,
            "no progress: a {:?} b {:?}",
            a.stats(),
            b.as_ref().map(|b| *b.stats())
        );
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
        app(&mut a, &mut sa, usize::MAX, &format!("a (seed {seed})"));
        if let Some(b) = b.as_mut() {
            app(b, &mut sb, b_read, &format!("b (seed {seed})"));
        }
        a.poll_transmit(now, &mut wa);
        if let Some(b) = b.as_mut() {
            b.poll_transmit(now, &mut wb);
        }
        carry(&mut rng, &imp, now, &mut wa, &mut ab);
        carry(&mut rng, &imp, now, &mut wb, &mut ba);
        let a_done = sa.closed || a.state() == State::TimeWait;
        let b_done = sb.closed || b.as_ref().is_some_and(|b| b.state() == State::TimeWait);
        if a_done && b_done && sb.got.len() == total_a && sa.got.len() == total_b {
            break;
        }
        let mut next = [
            ab.q.front().map(|e| e.0),
            ba.q.front().map(|e| e.0),
            a.poll_at(),
            b.as_ref().and_then(|b| b.poll_at()),
        ]
        .into_iter()
        .flatten()
        .min();
        if wa.refused || wb.refused {
            // The TX ring drains: try again shortly.
            wa.refused = false;
            wb.refused = false;
            let retry = now + std::time::Duration::from_micros(10);
            next = Some(next.map_or(retry, |n| n.min(retry)));
        }
        if b_read != usize::MAX && b.as_ref().is_some_and(|b| b.recv_available() > 0) {
            // The slow reader wakes up every millisecond.
            let wake = now + std::time::Duration::from_millis(1);
            next = Some(next.map_or(wake, |n| n.min(wake)));
        }
        let next = next.unwrap_or_else(|| {
            panic!(
                "deadlock (seed {seed}): a {:?} {:?} sent {}/{} got {}; b {:?} {:?} sent {}/{} got {} avail {}",
                a.state(),
                a.stats(),
                sa.sent,
                total_a,
                sa.got.len(),
                b.as_ref().map(|b| b.state()),
                b.as_ref().map(|b| *b.stats()),
                sb.sent,
                total_b,
                sb.got.len(),
                b.as_ref().map_or(0, |b| b.recv_available()),
            )
        });
        assert!(next >= now, "time went backwards");
        now = next;
    }
    let b = b.unwrap();
    assert_eq!(sb.got.len(), total_a);
    assert!(sb.got == sa.src, "payload a->b corrupted");
    assert_eq!(sa.got.len(), total_b);
    assert!(sa.got == sb.src, "payload b->a corrupted");
    let mut log = wa.log;
    log.extend(wb.log);
    (*a.stats(), *b.stats(), log)
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
            ..Imp::default()
        },
        1,
        1 << 20,
    );
    assert_eq!(sa.retransmits, 0);
}

#[test]
fn lossy_transfer_1mb_sack_cubic() {
    let (sa, sb) = run(&base(), LOSSY, 7, 1 << 20);
    assert!(sa.retransmits > 0);
    assert!(sa.fast_recoveries > 0);
    assert!(sb.ooo_segs_in > 0);
}

#[test]
fn lossy_transfer_1mb_newreno_no_sack_no_ts() {
    let cfg = Config {
        sack: false,
        timestamps: false,
        window_scale: Some(0),
        cc: CcKind::NewReno,
        rcv_buf: 128 * 1024,
        ..base()
    };
    let (sa, _) = run(&cfg, LOSSY, 11, 1 << 20);
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
            ..Imp::default()
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
            ..Imp::default()
        },
        5,
        200_000,
    );
}

#[test]
fn bidirectional_lossy_transfer() {
    let (sa, sb) = run2(
        &base(),
        Imp {
            loss: 0.03,
            dup: 0.01,
            reorder: 0.05,
            ce: 0.0,
            delay_us: 3000,
            ..Imp::default()
        },
        21,
        400_000,
        300_000,
        usize::MAX,
    );
    assert!(sa.retransmits > 0 && sb.retransmits > 0);
}

#[test]
fn slow_reader_closes_the_window() {
    let cfg = Config {
        rcv_buf: 32 * 2048,
        ..base()
    };
    let (sa, sb) = run2(
        &cfg,
        Imp {
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            ce: 0.0,
            delay_us: 1000,
            ..Imp::default()
        },
        2,
        100_000,
        0,
        300,
    );
    // The window, not memory drops, paces the sender.
    assert_eq!(sb.rcv_mem_drops, 0);
    assert_eq!(sa.retransmits, 0);
}

#[test]
fn many_seeds_lossy() {
    for seed in 100..112 {
        let cfg = Config {
            sack: seed % 2 == 0,
            timestamps: seed % 3 != 0,
            cc: if seed % 4 < 2 {
                CcKind::Cubic
            } else {
                CcKind::NewReno
            },
            ..base()
        };
        run2(
            &cfg,
            Imp {
                loss: 0.04,
                dup: 0.02,
                reorder: 0.1,
                ce: 0.01,
                delay_us: 2000,
                ..Imp::default()
            },
            seed,
            120_000,
            40_000,
            usize::MAX,
        );
    }
}

/// A longer sweep (run with `--ignored`).
#[test]
#[ignore]
fn many_seeds_long() {
    // SWEEP_START / SWEEP_N widen the sweep from the environment.
    let start: u64 = std::env::var("SWEEP_START")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    let n: u64 = std::env::var("SWEEP_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    for seed in start..start + n {
        let cfg = Config {
            sack: seed % 2 == 0,
            timestamps: seed % 3 != 0,
            ecn: seed % 5 != 0,
            nodelay: seed % 7 == 0,
            cc: if seed % 4 < 2 {
                CcKind::Cubic
            } else {
                CcKind::NewReno
            },
            rcv_buf: if seed % 3 == 0 { 24 * 2048 } else { 256 * 1024 },
            ..base()
        };
        let loss = [0.0, 0.02, 0.06, 0.1][(seed % 4) as usize];
        run2(
            &cfg,
            Imp {
                loss,
                dup: 0.1,
                reorder: 0.3,
                ce: 0.05,
                delay_us: 1000 + (seed % 5) * 2000,
                refuse_every: if seed % 5 == 1 { 3 } else { 0 },
            },
            seed,
            60_000 + (seed as usize % 7) * 20_000,
            20_000 + (seed as usize % 3) * 30_000,
            if seed % 6 == 0 { 500 } else { usize::MAX },
        );
    }
}

#[test]
fn tx_ring_refusals_lose_nothing() {
    for refuse_every in [2, 3, 7] {
        run2(
            &base(),
            Imp {
                refuse_every,
                loss: 0.02,
                dup: 0.01,
                reorder: 0.05,
                delay_us: 2000,
                ..Imp::default()
            },
            40 + refuse_every as u64,
            200_000,
            100_000,
            usize::MAX,
        );
    }
}

/// Throughput smoke (run with `--ignored`; never asserts speed).
#[test]
#[ignore]
fn bulk_64mb() {
    let cfg = Config {
        rcv_buf: 4 << 20,
        snd_buf: 4 << 20,
        ..Config::default()
    };
    run(
        &cfg,
        Imp {
            loss: 0.01,
            reorder: 0.01,
            delay_us: 10_000,
            ..Imp::default()
        },
        9,
        64 << 20,
    );
}

/// Reordering alone loses nothing: B sees out-of-order segments, and A
/// sends no more than it must.
#[test]
fn reorder_only_stats() {
    let (sa, sb) = run(
        &base(),
        Imp {
            reorder: 0.1,
            delay_us: 10_000,
            ..Imp::default()
        },
        3,
        1 << 20,
    );
    eprintln!("{sa:?}");
    assert!(sb.ooo_segs_in > 0, "reordering was exercised: {sb:?}");
    assert_eq!(sa.rto_timeouts, 0, "{sa:?}");
}

/// Header prediction (`Config::header_prediction`) changes nothing a peer
/// can see: the same transfers with it off emit exactly the same
/// segments, in the same order, through loss, duplication, reordering, CE
/// marks, a slow reader's closing window and a full TX ring, with and
/// without SACK and timestamps; and with it on, segments do take it.
#[test]
fn header_prediction_emits_what_the_general_path_emits() {
    let clean = Imp {
        delay_us: 3000,
        ..Imp::default()
    };
    let rough = Imp {
        loss: 0.03,
        dup: 0.02,
        reorder: 0.1,
        ce: 0.02,
        delay_us: 2000,
        refuse_every: 0,
    };
    let cases = [
        (base(), clean, 1, 300_000, 200_000, usize::MAX),
        (base(), rough, 2, 200_000, 100_000, usize::MAX),
        (
            base(),
            Imp {
                refuse_every: 3,
                ..rough
            },
            3,
            100_000,
            100_000,
            usize::MAX,
        ),
        (
            Config {
                rcv_buf: 24 * 2048,
                ..base()
            },
            rough,
            4,
            100_000,
            60_000,
            500,
        ),
        (
            Config {
                sack: false,
                timestamps: false,
                cc: CcKind::NewReno,
                ..base()
            },
            rough,
            5,
            150_000,
            50_000,
            usize::MAX,
        ),
        (
            Config {
                nodelay: true,
                ..base()
            },
            rough,
            6,
            100_000,
            100_000,
            usize::MAX,
        ),
    ];
    for (i, (cfg, imp, seed, ta, tb, read)) in cases.into_iter().enumerate() {
        let (a1, b1, on) = run_logged(&cfg, imp, seed, ta, tb, read);
        let off_cfg = Config {
            header_prediction: false,
            ..cfg
        };
        let (a0, b0, off) = run_logged(&off_cfg, imp, seed, ta, tb, read);
        assert!(a1.segs_predicted + b1.segs_predicted > 0, "case {i}");
        assert_eq!(a0.segs_predicted + b0.segs_predicted, 0, "case {i}");
        if i == 0 {
            // Without impairments, most segments are the predicted ones.
            assert!(2 * b1.segs_predicted > b1.segs_in, "{b1:?}");
        }
        let first_diff = on.iter().zip(&off).position(|(x, y)| x != y);
        assert!(
            first_diff.is_none() && on.len() == off.len(),
            "case {i}: segment {first_diff:?} differs: {:?} vs {:?} ({} vs {} segments)",
            first_diff.map(|d| on[d]),
            first_diff.map(|d| off[d]),
            on.len(),
            off.len()
        );
        let same = |s: ConnStats| ConnStats {
            segs_predicted: 0,
            ..s
        };
        assert_eq!(same(a1), same(a0), "case {i}");
        assert_eq!(same(b1), same(b0), "case {i}");
    }
}
