//! TCP core micro-benchmarks: one `tcp::Connection` driven directly (no
//! stack, no wire encoding), over pooled heap frames and a counting sink.
//!
//! - `ack/*/N`: a sender with N (64, 512, 2048) full-sized segments in
//!   flight takes N ACKs:
//!   cumulative (one per segment), SACK with one hole (segment 0 lost: N-1
//!   duplicate ACKs with a growing SACK block, fast retransmit, then the
//!   cumulative ACK) and SACK with eight holes (every 8th segment lost, up
//!   to three blocks per ACK). Throughput: ACKs processed per second.
//! - `ack/clocked`: steady state of a bulk sender: one ACK in, one new
//!   segment written and sent, 64 in flight. Per ACK.
//! - `recv/inorder`: in-order full-sized data segments into a connection
//!   with delayed ACKs (an ACK every second segment), read by the app after
//!   each. Per segment.
//!
//! `cargo bench --bench tcp` (add `-- --quick` for a short run).
//! Instructions per ACK: run one iteration under callgrind, counting only
//! the per-ACK helper, and divide by N:
//! `valgrind --tool=callgrind --toggle-collect='tcp::ack' <bench binary>
//! --bench --test 'ack/sack_1_hole/512$'`.

use core::hint::black_box;
use core::net::{Ipv4Addr, SocketAddrV4};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use xdptcp::io::mem::{FramePool, HeapFrame};
use xdptcp::io::Pkt;
use xdptcp::tcp::{
    CcKind, Config, Connection, FourTuple, Payload, SegmentSink, SeqNumber, TcpFlags, TcpRepr,
};
use xdptcp::time::Instant;

const FLIGHT: u32 = 64;
/// Windows (segments in flight) the `ack/*` cases run at.
const FLIGHTS: [u32; 3] = [64, 512, 2048];
const ISS: u32 = 1000;
const PEER_ISS: u32 = 5000;
/// Where received payload starts in a frame (Ethernet + IPv4 + TCP + TS).
const RX_OFF: usize = 66;

/// Counts what the connection emits; send frames come from a pool.
struct Count {
    segs: u64,
    bytes: u64,
    pool: FramePool,
}

impl SegmentSink<HeapFrame> for Count {
    fn emit(&mut self, seg: &TcpRepr, payload: Payload<'_, HeapFrame>, _ect: bool) -> bool {
        black_box(seg);
        self.segs += 1;
        self.bytes += payload.data().len() as u64;
        true
    }
    fn alloc(&mut self) -> Option<HeapFrame> {
        self.pool.alloc()
    }
}

fn tuple() -> FourTuple {
    FourTuple {
        local: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 40000),
        remote: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80),
    }
}

fn peer(flags: TcpFlags, seq: u32, ack: u32, tsval: u32, tsecr: u32) -> TcpRepr {
    let mut s = TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq: SeqNumber(seq),
        ack: SeqNumber(ack),
        flags,
        window: 65535,
        ..TcpRepr::default()
    };
    s.options.timestamps = Some((tsval, tsecr));
    s
}

/// Our TSval at `now` (the connection's timestamp clock is in ms).
fn tsv(now: Instant) -> u32 {
    now.millis() as u32
}

/// An established connection (active open; the peer offers MSS 1460,
/// window scale 7, SACK, timestamps) at t = 10 ms, initial window 64.
fn established(cc: CcKind, pool: &FramePool, flight: u32) -> (Connection<HeapFrame>, Count) {
    let cfg = Config {
        cc,
        ecn: false,
        initial_window: flight,
        snd_buf: 8 << 20,
        ..Config::default()
    };
    let mut sink = Count {
        segs: 0,
        bytes: 0,
        pool: pool.clone(),
    };
    let mut c = Connection::connect(&cfg, tuple(), SeqNumber(ISS), Instant::ZERO);
    c.poll_transmit(Instant::ZERO, &mut sink);
    let now = Instant::from_millis(10);
    let mut sa = peer(TcpFlags::SYN | TcpFlags::ACK, PEER_ISS, ISS + 1, 100, 0);
    sa.options.mss = Some(1460);
    sa.options.window_scale = Some(7);
    sa.options.sack_permitted = true;
    let f = pool.alloc().expect("frame");
    c.handle_segment(now, &sa, Pkt::new(f, RX_OFF, RX_OFF), false);
    c.poll_transmit(now, &mut sink);
    assert_eq!(sink.segs, 2, "SYN and ACK");
    // The SYN-ACK's window is not scaled (RFC 7323 §2.2): open it.
    let wu = peer(TcpFlags::ACK, PEER_ISS + 1, ISS + 1, 101, tsv(now));
    c.handle_segment(now, &wu, empty(pool), false);
    c.poll_transmit(now, &mut sink);
    (c, sink)
}

/// A sender with `flight` full segments in flight, sent at 10 ms.
fn in_flight(pool: &FramePool, flight: u32) -> (Connection<HeapFrame>, Count, usize) {
    let (mut c, mut sink) = established(CcKind::Cubic, pool, flight);
    let mss = c.snd_mss();
    let data = vec![0x5a; mss * flight as usize];
    assert_eq!(c.send(&data, &mut || pool.alloc()), data.len());
    c.poll_transmit(Instant::from_millis(10), &mut sink);
    assert_eq!(c.in_flight(), data.len(), "the whole window is out");
    (c, sink, mss)
}

fn empty(pool: &FramePool) -> Pkt<HeapFrame> {
    Pkt::new(pool.alloc().expect("frame"), RX_OFF, RX_OFF)
}

/// Per ACK: `handle_segment` then `poll_transmit`, as the stack does.
/// Never inlined, so callgrind can count instructions per ACK
/// (`--toggle-collect='tcp::ack'`).
#[inline(never)]
fn ack(c: &mut Connection<HeapFrame>, sink: &mut Count, pool: &FramePool, at: Instant, s: TcpRepr) {
    c.handle_segment(at, &s, empty(pool), false);
    c.poll_transmit(at, sink);
}

/// The SACK blocks a receiver reports after segment `j` arrived, with
/// `lost(i)` segments missing: the run holding `j` first, then the runs
/// below it (most recent first), at most three with timestamps.
fn sack_blocks(j: u32, lost: &dyn Fn(u32) -> bool, base: u32, mss: u32) -> Vec<(u32, u32)> {
    let mut runs = Vec::new();
    let mut i = j as i64;
    while i > 0 && runs.len() < 3 {
        // The run ending at i (inclusive).
        let hi = i as u32;
        let mut lo = hi;
        while lo > 0 && !lost(lo - 1) {
            lo -= 1;
        }
        if lo == 0 {
            break; // Cumulatively acknowledged: not a SACK block.
        }
        runs.push((base + lo * mss, base + (hi + 1) * mss));
        i = lo as i64 - 2;
        while i > 0 && lost(i as u32) {
            i -= 1;
        }
    }
    runs
}

fn bench_ack(c: &mut Criterion) {
    let pool = FramePool::new(2048, 1 << 16);
    let mut g = c.benchmark_group("ack");
    let t = Instant::from_millis(30);
    let (tsval, tsecr) = (200, tsv(Instant::from_millis(10)));
    for flight in FLIGHTS {
        g.throughput(Throughput::Elements(u64::from(flight)));
        // Few setups at a time: each holds `flight` frames.
        let batch = BatchSize::NumIterations(u64::from((1024 / flight).clamp(1, 16)));

        g.bench_function(format!("cumulative/{flight}"), |b| {
            b.iter_batched(
                || in_flight(&pool, flight),
                |(mut conn, mut sink, mss)| {
                    for k in 1..=flight {
                        let s = peer(
                            TcpFlags::ACK,
                            PEER_ISS + 1,
                            ISS + 1 + k * mss as u32,
                            tsval,
                            tsecr,
                        );
                        ack(&mut conn, &mut sink, &pool, t, s);
                    }
                    debug_assert_eq!(conn.in_flight(), 0);
                    (conn, sink)
                },
                batch,
            )
        });

        for (name, every) in [("sack_1_hole", flight), ("sack_8_holes", 8)] {
            g.bench_function(format!("{name}/{flight}"), |b| {
                b.iter_batched(
                    || {
                        let (conn, sink, mss) = in_flight(&pool, flight);
                        // Precomputed SACK blocks: segment i % every == 0 lost.
                        let base = ISS + 1;
                        let lost = |i: u32| i.is_multiple_of(every);
                        let acks: Vec<TcpRepr> = (0..flight)
                            .filter(|&j| !lost(j))
                            .map(|j| {
                                let mut s = peer(TcpFlags::ACK, PEER_ISS + 1, base, tsval, tsecr);
                                for (l, r) in sack_blocks(j, &lost, base, mss as u32) {
                                    s.options.sack.push(SeqNumber(l), SeqNumber(r));
                                }
                                s
                            })
                            .collect();
                        (conn, sink, mss, acks)
                    },
                    |(mut conn, mut sink, mss, acks)| {
                        for s in acks {
                            ack(&mut conn, &mut sink, &pool, t, s);
                        }
                        // The retransmissions arrived: everything acknowledged,
                        // padded to flight ACKs in all.
                        let lost = flight / every;
                        for k in 0..lost {
                            let upto = if k + 1 == lost {
                                flight
                            } else {
                                (k + 1) * every
                            };
                            let s = peer(
                                TcpFlags::ACK,
                                PEER_ISS + 1,
                                ISS + 1 + upto * mss as u32,
                                tsval,
                                tsecr,
                            );
                            ack(&mut conn, &mut sink, &pool, t, s);
                        }
                        debug_assert_eq!(conn.in_flight(), 0);
                        (conn, sink)
                    },
                    batch,
                )
            });
        }
    }
    // Steady state: one ACK in, one segment out, 64 in flight.
    g.throughput(Throughput::Elements(1));
    g.bench_function("clocked", |b| {
        let (mut conn, mut sink, mss) = in_flight(&pool, FLIGHT);
        let data = vec![0xa5; mss];
        let mut next_ack = ISS + 1;
        let mut now = Instant::from_millis(10);
        let mut tsval = 200u32;
        b.iter(|| {
            now += core::time::Duration::from_micros(10);
            tsval = tsval.wrapping_add(1);
            next_ack = next_ack.wrapping_add(mss as u32);
            // The echoed TSval is 10 ms old: sent a window ago.
            let ecr = tsv(now).saturating_sub(10);
            let s = peer(TcpFlags::ACK, PEER_ISS + 1, next_ack, tsval, ecr);
            conn.handle_segment(now, &s, empty(&pool), false);
            conn.send(&data, &mut || pool.alloc());
            conn.poll_transmit(now, &mut sink);
        });
        assert_eq!(conn.in_flight(), FLIGHT as usize * mss, "window kept full");
    });
    g.finish();
}

fn bench_recv(c: &mut Criterion) {
    let pool = FramePool::new(2048, 1 << 16);
    let mut g = c.benchmark_group("recv");
    g.throughput(Throughput::Elements(1));
    g.bench_function("inorder", |b| {
        let (mut conn, mut sink) = established(CcKind::Cubic, &pool, FLIGHT);
        let len = 1448;
        let mut seq = PEER_ISS + 1;
        let mut now = Instant::from_millis(10);
        let mut tsval = 200u32;
        let acks_before = sink.segs;
        let mut n = 0u64;
        b.iter(|| {
            now += core::time::Duration::from_micros(10);
            tsval = tsval.wrapping_add(1);
            let s = peer(TcpFlags::ACK, seq, ISS + 1, tsval, tsv(now));
            let f = pool.alloc().expect("frame");
            conn.handle_segment(now, &s, Pkt::new(f, RX_OFF, RX_OFF + len), false);
            conn.poll_transmit(now, &mut sink);
            let got = conn.recv_with(&mut |d| black_box(d).len());
            debug_assert_eq!(got, len);
            seq = seq.wrapping_add(len as u32);
            n += 1;
        });
        // Delayed ACKs: one per two full-sized segments (RFC 9293 §3.8.6.3).
        let acks = sink.segs - acks_before;
        assert!(
            acks >= n / 2 && acks <= n / 2 + 1,
            "{acks} ACKs for {n} segments"
        );
    });
    g.finish();
}

criterion_group!(benches, bench_ack, bench_recv);
criterion_main!(benches);
