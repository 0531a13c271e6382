//! Fuzzing the whole receive path: arbitrary frames, and arbitrary mutations
//! of valid frames (optionally with the checksums fixed up so they get past
//! the parsers), fed to a stack with a listener, a UDP socket and live
//! connections, interleaved with time and application calls. Nothing may
//! panic and memory (frames held, connections, events) stays bounded.

mod common;
mod fuzz_budget;
use common::*;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};
use xdptcp::app::Event;
use xdptcp::mptcp::Key;
use xdptcp::stack::{ConnId, Stack};
use xdptcp::time::Instant;
use xdptcp::wire::mptcp::{Dss, DssMapping, MptcpOption};
use xdptcp::wire::{checksum, IcmpRepr, MptcpRaw, SeqNumber, TcpFlags, TcpOptions, TcpRepr};

#[derive(Debug, bolero::TypeGenerator)]
enum Op {
    Raw(Vec<u8>),
    Mutate {
        template: u8,
        edits: Vec<(u16, u8)>,
        truncate: Option<u16>,
        fix: bool,
    },
    Advance(u16),
    App(u8, u8),
    /// The device refuses transmissions (ring full) or not.
    Refuse(bool),
}

fn raw(o: MptcpOption) -> MptcpRaw {
    let mut b = [0u8; 40];
    let n = o.emit(&mut b);
    MptcpRaw::from_slice(&b[..n]).unwrap()
}

struct Setup {
    s: Stack<TestDevice>,
    now: Instant,
    conns: Vec<ConnId>,
    templates: Vec<Vec<u8>>,
}

fn setup(with_conns: bool) -> Setup {
    let mut cfg = config(MAC_A, IP_A);
    cfg.tcp.rcv_buf = 64 << 10;
    cfg.tcp.snd_buf = 64 << 10;
    cfg.max_conns = 16;
    // MPTCP accepted (RFC 8684): the third connection below offers it.
    cfg.tcp.mptcp = true;
    let mut s = Stack::new(cfg, TestDevice::new(512), ms(0));
    rx(&mut s, ms(0), &arp_request_b_for_a());
    if with_conns {
        s.listen(80).unwrap();
    }
    s.udp_bind(7).unwrap();
    s.device_mut().take_tx();
    let mut conns = Vec::new();
    let mut templates = vec![arp_request_b_for_a(), udp_frame_b_to_a(5000, 7, b"ping")];
    templates.push(icmp_frame_b_to_a(&IcmpRepr::EchoRequest {
        ident: 1,
        seq: 2,
        data: b"abcdefgh",
    }));
    for port in [5001u16, 5002, 5003] {
        let mptcp = port == 5003;
        let mut syn = TcpRepr {
            src_port: port,
            dst_port: 80,
            seq: SeqNumber(1000),
            flags: TcpFlags::SYN,
            window: 64240,
            options: TcpOptions {
                mss: Some(1460),
                window_scale: Some(7),
                sack_permitted: true,
                timestamps: Some((1, 0)),
                ..TcpOptions::default()
            },
            ..TcpRepr::default()
        };
        if mptcp {
            // MP_CAPABLE v1, H (as Linux's SYN).
            syn.options.mptcp = MptcpRaw::from_slice(&[30, 4, 0x01, 0x01]).unwrap();
        }
        templates.push(tcp_frame_b_to_a(&syn, &[]));
        if !with_conns {
            continue;
        }
        rx(&mut s, ms(1), &tcp_frame_b_to_a(&syn, &[]));
        s.poll(ms(1));
        let synack = s
            .device_mut()
            .take_tx()
            .iter()
            .map(|f| parse_tcp(f).2)
            .find(|t| t.flags.syn())
            .expect("SYN-ACK");
        let mut ack = ack_of_synack(port, &synack, 2);
        let mut data = TcpRepr {
            flags: TcpFlags::ACK | TcpFlags::PSH,
            ..ack
        };
        if mptcp {
            // The third ACK with both keys, data with a DSS mapping.
            let key_b = 0x1111_2222_3333_4444u64;
            let mut cap = MptcpOption::parse(synack.options.mptcp.as_slice())
                .expect("MP_CAPABLE in the SYN-ACK");
            if let MptcpOption::MpCapable(c) = &mut cap {
                c.receiver_key = c.sender_key;
                c.sender_key = Some(key_b);
            }
            ack.options.mptcp = raw(cap);
            data.options.mptcp = raw(MptcpOption::Dss(Dss {
                data_ack: None,
                ack64: false,
                mapping: Some(DssMapping {
                    dsn: Key(key_b).idsn() + 1,
                    dsn64: true,
                    ssn: 1,
                    len: 18,
                    checksum: None,
                }),
                data_fin: false,
            }));
        }
        rx(&mut s, ms(2), &tcp_frame_b_to_a(&ack, &[]));
        templates.push(tcp_frame_b_to_a(&data, b"some request bytes"));
        templates.push(tcp_frame_b_to_a(
            &TcpRepr {
                flags: TcpFlags::ACK | TcpFlags::FIN,
                ..ack
            },
            &[],
        ));
        templates.push(tcp_frame_b_to_a(
            &TcpRepr {
                flags: TcpFlags::RST,
                ..ack
            },
            &[],
        ));
        let mut sack = ack;
        sack.options.sack.push(synack.seq + 100, synack.seq + 200);
        templates.push(tcp_frame_b_to_a(&sack, &[]));
    }
    while let Some(ev) = s.next_event() {
        if let Event::Accepted { id, .. } = ev {
            conns.push(id);
        }
    }
    if with_conns {
        // The third connection is MPTCP, with its token held.
        assert_eq!(s.counters().mptcp_established, 1);
        assert_eq!(s.mptcp_tokens(), 1);
    }
    s.poll(ms(2));
    s.device_mut().take_tx();
    Setup {
        s,
        now: ms(2),
        conns,
        templates,
    }
}

/// Recompute the IPv4 header checksum and the TCP/UDP checksum, as far as
/// the (mutated) lengths allow.
fn fix_checksums(f: &mut [u8]) {
    if f.len() < 34 || f[12..14] != [0x08, 0x00] {
        return;
    }
    let ihl = ((f[14] & 0x0f) as usize) * 4;
    if ihl < 20 || f.len() < 14 + ihl {
        return;
    }
    f[24] = 0;
    f[25] = 0;
    let c = checksum::checksum(&f[14..14 + ihl]);
    f[24..26].copy_from_slice(&c.to_be_bytes());
    let total = u16::from_be_bytes([f[16], f[17]]) as usize;
    if total < ihl || f.len() < 14 + total {
        return;
    }
    let src = Ipv4Addr::new(f[26], f[27], f[28], f[29]);
    let dst = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
    let proto = f[23];
    let l4 = &mut f[14 + ihl..14 + total];
    let off = match proto {
        6 if l4.len() >= 20 => 16,
        17 if l4.len() >= 8 => 6,
        _ => return,
    };
    l4[off] = 0;
    l4[off + 1] = 0;
    let ph = checksum::pseudo_header(src, dst, proto, l4.len());
    let c = !checksum::combine(&[ph, checksum::sum(l4)]);
    l4[off..off + 2].copy_from_slice(&c.to_be_bytes());
}

fn drain_events(st: &mut Setup) {
    let mut buf = [0u8; 4096];
    let mut budget = 1000;
    while let Some(ev) = st.s.next_event() {
        budget -= 1;
        assert!(budget > 0, "event storm");
        match ev {
            Event::Accepted { id, .. } => st.conns.push(id),
            Event::Readable { id } => while st.s.recv(id, &mut buf).unwrap_or(0) > 0 {},
            Event::Closed { id, .. } => st.conns.retain(|c| *c != id),
            Event::UdpReadable { port } => while st.s.udp_recv(port).is_some() {},
            _ => {}
        }
    }
}

fn run(ops: &[Op], with_conns: bool) {
    let mut st = setup(with_conns);
    for op in ops {
        match op {
            Op::Raw(bytes) => rx(&mut st.s, st.now, bytes),
            Op::Mutate {
                template,
                edits,
                truncate,
                fix,
            } => {
                let mut f = st.templates[*template as usize % st.templates.len()].clone();
                for &(at, b) in edits {
                    if !f.is_empty() {
                        let i = at as usize % f.len();
                        f[i] = b;
                    }
                }
                if let Some(t) = truncate {
                    f.truncate(*t as usize);
                }
                if *fix {
                    fix_checksums(&mut f);
                }
                rx(&mut st.s, st.now, &f);
            }
            Op::Advance(d) => {
                st.now += std::time::Duration::from_millis(u64::from(*d));
                let mut spins = 0;
                st.s.poll(st.now);
                while st.s.poll_at().is_some_and(|t| t <= st.now) && spins < 8 {
                    st.s.poll(st.now);
                    spins += 1;
                }
            }
            Op::Refuse(r) => st.s.device_mut().refuse = *r,
            Op::App(which, what) => {
                if let Some(&id) = st.conns.get(*which as usize % st.conns.len().max(1)) {
                    let _ = match what % 4 {
                        0 => st.s.send(id, &[7u8; 3000]).map(|_| ()),
                        1 => st.s.shutdown(id),
                        2 => st.s.abort(id),
                        _ => st.s.set_nodelay(id, true),
                    };
                }
            }
        }
        drain_events(&mut st);
        st.s.device_mut().take_tx();
        // Memory stays bounded: frames held by connections (receive and send
        // buffers of 64 KiB each), UDP queue, ARP queues.
        assert!(st.s.conn_count() <= 16);
        let per_conn = 2 * (64 << 10) / FRAME_SIZE + 8;
        let bound = st.s.conn_count() * per_conn + 4 + 4 * 4 + 16;
        assert!(
            st.s.device().live.get() <= bound,
            "{} frames held",
            st.s.device().live.get()
        );
        assert!(st.s.pending_events() == 0);
    }
}

#[test]
fn fuzz_stack_input() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    bolero::check!()
        .with_type::<Vec<Op>>()
        .with_test_time(fuzz_budget::per_target())
        .with_max_len(4096)
        .for_each(|ops| {
            RUNS.fetch_add(1, Ordering::Relaxed);
            run(ops, true)
        });
    fuzz_budget::report("stack input", RUNS.load(Ordering::Relaxed));
}

/// The layers below TCP connections (and the closed-port path) alone.
#[test]
fn fuzz_stack_input_without_connections() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    bolero::check!()
        .with_type::<Vec<Op>>()
        .with_test_time(fuzz_budget::per_target())
        .with_max_len(4096)
        .for_each(|ops| {
            RUNS.fetch_add(1, Ordering::Relaxed);
            run(ops, false)
        });
    fuzz_budget::report(
        "stack input without connections",
        RUNS.load(Ordering::Relaxed),
    );
}
