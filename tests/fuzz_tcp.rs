//! Fuzzing the segment-input path of `tcp::Connection` in every state.
//!
//! Two connections talk to each other through a channel the fuzzer controls
//! (deliver, drop, duplicate, reorder), while the fuzzer also injects forged
//! segments whose sequence and acknowledgment numbers sit near the values
//! really in use (so they land in and around the windows), and drives the
//! application (send, read, shutdown, close, abort), ICMP errors and the
//! clock. Handshake,
//! data transfer, half-close, simultaneous close and TIME-WAIT are all
//! reached this way. Nothing may panic, and memory and output stay bounded.

mod fuzz_budget;
mod tcp_harness;
use std::sync::atomic::{AtomicU32, Ordering};
use tcp_harness::{frame, pkt, HeapFrame, Out, Sink};
use xdptcp::tcp::{
    CcKind, Config, Connection, FourTuple, IcmpNotice, SeqNumber, State, TcpFlags, TcpRepr,
};
use xdptcp::time::Instant;

#[derive(Debug, Clone, bolero::TypeGenerator)]
enum Op {
    /// Deliver the oldest in-flight segment towards `side` (0/1).
    Deliver(bool),
    /// Deliver the newest in-flight segment (reordering).
    DeliverNewest(bool),
    /// Drop the oldest in-flight segment.
    Drop(bool),
    /// Deliver the oldest in-flight segment twice.
    Duplicate(bool),
    /// Inject a forged segment towards `side`.
    Forge {
        side: bool,
        flags: u8,
        seq_delta: i16,
        ack_delta: i16,
        window: u16,
        len: u8,
        ts: Option<(i16, i16)>,
        sack: Option<(i16, u8)>,
        ce: bool,
        /// An MPTCP option (kind 30, the length fixed up, any body).
        mp: Option<MpForge>,
    },
    /// An ICMP error about a segment `side` sent (quoted sequence number
    /// near its last one), e.g. fragmentation needed with `mtu`.
    Icmp {
        side: bool,
        icmp_type: u8,
        code: u8,
        seq_delta: i16,
        mtu: u16,
    },
    Send(bool, u16),
    Read(bool),
    Shutdown(bool),
    /// Close for good (FIN-WAIT-2 timeout applies).
    Close(bool),
    Abort(bool),
    /// Jump to the side's next timer and run it.
    Timer(bool),
    /// Let time pass (milliseconds).
    Advance(u16),
}

/// A forged MPTCP option: subtype/flags bytes and a body of `len` bytes.
#[derive(Debug, Clone, bolero::TypeGenerator)]
struct MpForge {
    subtype: u8,
    flags: u8,
    len: u8,
    body: [u8; 36],
}

struct Side {
    conn: Connection<HeapFrame>,
    sink: Sink,
    /// Segments on their way to this side.
    inbox: std::collections::VecDeque<Out>,
    /// Last sequence/ack numbers and TSval this side emitted (forgery base).
    last_seq: u32,
    last_ack: u32,
    last_tsval: u32,
}

const MAX_INFLIGHT: usize = 256;

fn config(variant: u8) -> Config {
    Config {
        cc: if variant & 1 == 0 {
            CcKind::Cubic
        } else {
            CcKind::NewReno
        },
        sack: variant & 2 == 0,
        timestamps: variant & 4 == 0,
        ecn: variant & 8 == 0,
        nodelay: variant & 16 == 0,
        rcv_buf: 64 << 10,
        snd_buf: 64 << 10,
        keepalive: (variant & 32 != 0).then_some(xdptcp::tcp::Keepalive {
            idle: core::time::Duration::from_secs(1),
            interval: core::time::Duration::from_millis(500),
            probes: 3,
        }),
        // MPTCP on both sides; the DSS checksum when ECN is off.
        mptcp: variant & 128 != 0,
        mptcp_checksum: variant & 8 != 0,
        ..Config::default()
    }
}

fn run(variant: u8, passive_listen: bool, ops: &[Op]) -> [State; 2] {
    run_seen(variant, passive_listen, ops, &mut 0)
}

/// Like `run`; also ORs `1 << state` of every state either side was in into `seen`.
fn run_seen(variant: u8, passive_listen: bool, ops: &[Op], seen: &mut u32) -> [State; 2] {
    let cfg = config(variant);
    let a_addr = "198.18.0.1:40000".parse().unwrap();
    let b_addr = "198.18.0.2:80".parse().unwrap();
    let mut now = Instant::ZERO;
    let a = Connection::connect(
        &cfg,
        FourTuple {
            local: a_addr,
            remote: b_addr,
        },
        SeqNumber(0xffff_ff00),
        now,
    );
    let tuple_b = FourTuple {
        local: b_addr,
        remote: a_addr,
    };
    // Either a LISTEN TCB or a simultaneous open from the other side.
    let b = if passive_listen {
        Connection::listen(&cfg, tuple_b, SeqNumber(7))
    } else {
        Connection::connect(&cfg, tuple_b, SeqNumber(7), now)
    };
    let mut sides = [a, b].map(|conn| Side {
        conn,
        sink: Sink::default(),
        inbox: Default::default(),
        last_seq: 0,
        last_ack: 0,
        last_tsval: 0,
    });
    let payload = vec![0x5au8; 4096];
    let mut buf = vec![0u8; 8192];

    for op in ops {
        match op {
            Op::Deliver(s) | Op::DeliverNewest(s) | Op::Drop(s) | Op::Duplicate(s) => {
                let i = *s as usize;
                let seg = match op {
                    Op::DeliverNewest(_) => sides[i].inbox.pop_back(),
                    _ => sides[i].inbox.pop_front(),
                };
                let Some(o) = seg else { continue };
                let times = match op {
                    Op::Drop(_) => 0,
                    Op::Duplicate(_) => 2,
                    _ => 1,
                };
                for _ in 0..times {
                    sides[i]
                        .conn
                        .handle_segment(now, &o.seg, pkt(&o.data), false);
                }
            }
            Op::Forge {
                side,
                flags,
                seq_delta,
                ack_delta,
                window,
                len,
                ts,
                sack,
                ce,
                mp,
            } => {
                let i = *side as usize;
                let peer = &sides[1 - i];
                let mut seg = TcpRepr {
                    src_port: if i == 0 { 80 } else { 40000 },
                    dst_port: if i == 0 { 40000 } else { 80 },
                    seq: SeqNumber(peer.last_seq.wrapping_add(*seq_delta as i32 as u32)),
                    ack: SeqNumber(peer.last_ack.wrapping_add(*ack_delta as i32 as u32)),
                    flags: TcpFlags(*flags),
                    window: *window,
                    ..TcpRepr::default()
                };
                if let Some((v, e)) = ts {
                    seg.options.timestamps = Some((
                        peer.last_tsval.wrapping_add(*v as i32 as u32),
                        (now.millis() as u32).wrapping_add(*e as i32 as u32),
                    ));
                }
                if let Some((d, n)) = sack {
                    let left = seg.ack + (*d as i32 as u32 as usize);
                    for k in 0..(*n % 5) as usize {
                        seg.options
                            .sack
                            .push(left + k * 3000, left + k * 3000 + 1448);
                    }
                }
                if seg.flags.syn() {
                    seg.options.mss = Some(536 + (*window % 1000));
                    seg.options.window_scale = Some((*window % 16) as u8);
                    seg.options.sack_permitted = window & 1 == 1;
                }
                if let Some(m) = mp {
                    let n = 4 + (m.len as usize % 37);
                    let mut raw = vec![30, n as u8, m.subtype, m.flags];
                    raw.extend_from_slice(&m.body[..n - 4]);
                    seg.options.mptcp = xdptcp::wire::MptcpRaw::from_slice(&raw).unwrap();
                }
                let data = &payload[..*len as usize];
                sides[i].conn.handle_segment(now, &seg, pkt(data), *ce);
            }
            Op::Send(s, n) => {
                let n = (*n as usize) % payload.len();
                sides[*s as usize].conn.send(&payload[..n], &mut frame);
            }
            Op::Read(s) => {
                sides[*s as usize].conn.recv(&mut buf);
            }
            Op::Icmp {
                side,
                icmp_type,
                code,
                seq_delta,
                mtu,
            } => {
                let i = *side as usize;
                let n = IcmpNotice {
                    icmp_type: *icmp_type % 16,
                    code: *code % 16,
                    seq: SeqNumber(sides[i].last_seq.wrapping_add(*seq_delta as u32)),
                    next_hop_mtu: *mtu,
                    quoted_len: mtu.wrapping_add(*seq_delta as u16),
                };
                sides[i].conn.handle_icmp_error(now, &n);
                // RFC 1191 floor (Linux min_pmtu 552): never tiny segments
                // (less timestamps and, with MPTCP, the DSS room).
                if sides[i].conn.path_mtu().is_some() {
                    let dss = if cfg.mptcp { 28 } else { 0 };
                    assert!(sides[i].conn.snd_mss() >= 552 - 40 - 12 - dss);
                }
            }
            Op::Shutdown(s) => sides[*s as usize].conn.shutdown(),
            Op::Close(s) => sides[*s as usize].conn.close(),
            Op::Abort(s) => sides[*s as usize].conn.abort(),
            Op::Timer(s) => {
                let side = &mut sides[*s as usize];
                if let Some(t) = side.conn.poll_at() {
                    // Bound the jump so a run stays in a sane time range.
                    now = now.max(t.min(now + core::time::Duration::from_secs(600)));
                    side.conn.handle_timeout(now);
                }
            }
            Op::Advance(ms) => now += core::time::Duration::from_millis(*ms as u64),
        }

        if std::env::var_os("FUZZ_TRACE").is_some() {
            eprintln!(
                "{op:?} -> {:?} {:?}",
                sides[0].conn.state(),
                sides[1].conn.state()
            );
        }
        // Both sides transmit; what they emit goes to the other's inbox.
        for i in 0..2 {
            // The stack's part: an MPTCP key when a connection wants one.
            if sides[i].conn.mptcp_wants_key() {
                let k = xdptcp::mptcp::Key(0x1234_5678_9abc_def0 + i as u64);
                sides[i].conn.set_mptcp_key(k);
            }
            sides[i].conn.poll_transmit(now, &mut sides[i].sink);
            let out = std::mem::take(&mut sides[i].sink.out);
            if std::env::var_os("FUZZ_TRACE").is_some() {
                for o in &out {
                    eprintln!(
                        "  {i} emits {:?} seq {} ack {} len {}",
                        o.seg.flags,
                        o.seg.seq.0,
                        o.seg.ack.0,
                        o.data.len()
                    );
                }
            }
            assert!(out.len() <= 1024, "one poll emitted {} segments", out.len());
            if let Some(o) = out.last() {
                sides[i].last_seq = o.seg.seq.0;
                sides[i].last_ack = o.seg.ack.0;
                if let Some((v, _)) = o.seg.options.timestamps {
                    sides[i].last_tsval = v;
                }
            }
            let inbox = &mut sides[1 - i].inbox;
            for o in out {
                if inbox.len() < MAX_INFLIGHT {
                    inbox.push_back(o);
                }
            }
            // Bounded memory: nothing readable beyond the receive budget.
            assert!(sides[i].conn.recv_available() <= cfg.rcv_buf);
            let _ = sides[i].conn.take_events();
            *seen |= 1 << state_index(sides[i].conn.state());
        }
    }
    [sides[0].conn.state(), sides[1].conn.state()]
}

static SEEN: AtomicU32 = AtomicU32::new(0);
static RUNS: AtomicU32 = AtomicU32::new(0);

const ALL_STATES: [State; 11] = [
    State::Closed,
    State::Listen,
    State::SynSent,
    State::SynReceived,
    State::Established,
    State::FinWait1,
    State::FinWait2,
    State::CloseWait,
    State::Closing,
    State::LastAck,
    State::TimeWait,
];

fn state_index(s: State) -> usize {
    ALL_STATES.iter().position(|x| *x == s).unwrap()
}

#[test]
fn fuzz_tcp_pair_every_state() {
    bolero::check!()
        .with_type::<(u8, bool, Vec<Op>)>()
        .with_test_time(fuzz_budget::per_target())
        .with_max_len(8192)
        .for_each(|(variant, listen, ops)| {
            RUNS.fetch_add(1, Ordering::Relaxed);
            // Half the runs start from an established connection with data
            // in flight, so the later states are reached often.
            let mut all = if variant & 64 != 0 {
                handshake_and_data()
            } else {
                vec![]
            };
            all.extend_from_slice(ops);
            let mut seen = 0;
            run_seen(*variant, *listen, &all, &mut seen);
            SEEN.fetch_or(seen, Ordering::Relaxed);
        });
    fuzz_budget::report("tcp pair", RUNS.load(Ordering::Relaxed) as usize);
    // The fuzzer must have driven connections through every state.
    let seen = SEEN.load(Ordering::Relaxed);
    let missing: Vec<_> = ALL_STATES
        .iter()
        .filter(|s| seen & (1 << state_index(**s)) == 0)
        .collect();
    assert!(missing.is_empty(), "states never reached: {missing:?}");
}

/// Scripted walks through the close states, so the fuzz run above is known
/// to reach them with this harness.
fn handshake_and_data() -> Vec<Op> {
    use Op::*;
    vec![
        Send(false, 1000),
        Deliver(true),  // SYN -> B
        Deliver(false), // SYN-ACK -> A; A sends ACK + data
        Deliver(true),  // data -> B
    ]
}

#[test]
fn scripted_close_reaches_time_wait() {
    use Op::*;
    let mut ops = handshake_and_data();
    // A closes first; B sees the FIN before closing itself.
    ops.extend([Shutdown(false), Deliver(true), Deliver(false)]);
    ops.extend([Shutdown(true), Deliver(false), Deliver(true)]);
    assert_eq!(run(0xff, true, &ops), [State::TimeWait, State::Closed]);
}

#[test]
fn scripted_simultaneous_close() {
    use Op::*;
    let mut ops = handshake_and_data();
    // Both FINs cross: CLOSING on both sides, then TIME-WAIT on both.
    ops.extend([Shutdown(false), Shutdown(true)]);
    ops.extend([Deliver(true), Deliver(false), Deliver(true), Deliver(false)]);
    assert_eq!(run(0xff, true, &ops), [State::TimeWait, State::TimeWait]);
}

#[test]
fn scripted_simultaneous_open() {
    use Op::*;
    // Both SYNs cross; each side answers SYN-ACK; the crossing SYN-ACKs are
    // old by one (their SYN was already taken) and draw an ACK, which
    // completes the handshake (RFC 9293 §3.5 figure 7, §3.10.7.4).
    let mut ops = vec![Advance(1)];
    for _ in 0..3 {
        ops.extend([Deliver(true), Deliver(false)]);
    }
    assert_eq!(
        run(0xff, false, &ops),
        [State::Established, State::Established]
    );
}
