//! Hostile peers against the stack: a peer that announces a tiny MSS and
//! keeps its window shut must not pin the frame pool (issue 9 defect 2).

mod common;
use common::*;
use xdptcp::app::Event;
use xdptcp::stack::{ConnId, Stack};
use xdptcp::wire::{SeqNumber, TcpFlags, TcpOptions, TcpRepr};

/// Stack A with B's MAC learned and a TCP send buffer of 64 KiB.
fn server(capacity: usize) -> Stack<TestDevice> {
    let mut cfg = config(MAC_A, IP_A);
    cfg.tcp.snd_buf = 64 << 10;
    let mut s = Stack::new(cfg, TestDevice::new(capacity), ms(0));
    rx(&mut s, ms(0), &arp_request_b_for_a());
    s.device_mut().take_tx();
    s
}

fn tx_tcp(s: &mut Stack<TestDevice>) -> Vec<(TcpRepr, Vec<u8>)> {
    s.device_mut()
        .take_tx()
        .iter()
        .map(|f| {
            let (_, _, seg, payload) = parse_tcp(f);
            (seg, payload)
        })
        .collect()
}

/// B opens a connection from `port` to A:80 announcing `mss`, and its
/// handshake-completing ACK carries window `wnd`. Returns A's id.
fn open_from(s: &mut Stack<TestDevice>, now: u64, port: u16, mss: u16, wnd: u16) -> ConnId {
    let syn = TcpRepr {
        src_port: port,
        dst_port: 80,
        seq: SeqNumber(1000),
        flags: TcpFlags::SYN,
        window: 64240,
        options: TcpOptions {
            mss: Some(mss),
            ..TcpOptions::default()
        },
        ..TcpRepr::default()
    };
    rx(s, ms(now), &tcp_frame_b_to_a(&syn, &[]));
    s.poll(ms(now));
    let synack = tx_tcp(s)
        .into_iter()
        .map(|(t, _)| t)
        .find(|t| t.flags.syn() && t.dst_port == port)
        .expect("SYN-ACK");
    let ack = TcpRepr {
        window: wnd,
        ..ack_of_synack(port, &synack, 1)
    };
    rx(s, ms(now), &tcp_frame_b_to_a(&ack, &[]));
    s.poll(ms(now));
    tx_tcp(s);
    let mut id = None;
    while let Some(ev) = s.next_event() {
        if let Event::Accepted { id: i, .. } = ev {
            id = Some(i);
        }
    }
    id.expect("accepted")
}

/// Fill `id`'s send buffer; returns bytes accepted.
fn fill(s: &mut Stack<TestDevice>, id: ConnId) -> usize {
    let chunk = vec![7u8; 16 << 10];
    let mut total = 0;
    for _ in 0..256 {
        let n = s.send(id, &chunk).unwrap();
        if n == 0 {
            break;
        }
        total += n;
    }
    total
}

/// Issue 9 defect 2: a peer announcing MSS 64 with a zero window. Send
/// memory is counted in frames: each connection holds at most
/// snd_buf / (MSS 1460 - 12) = 46 frames, the peer's MSS is raised to the
/// floor (216), and a dozen such peers leave the pool to everyone else.
#[test]
fn tiny_mss_zero_window_peers_cannot_pin_the_pool() {
    const CAP: usize = (64usize << 10).div_ceil(1448);
    let mut s = server(4096);
    s.listen(80).unwrap();
    let mut ids = Vec::new();
    for k in 0..12u16 {
        ids.push(open_from(&mut s, 1, 20000 + k, 64, 0));
    }
    let base = s.device().live.get();
    for (k, &id) in ids.iter().enumerate() {
        let before = s.device().live.get();
        let n = fill(&mut s, id);
        s.poll(ms(2));
        tx_tcp(&mut s);
        let held = s.device().live.get() - before;
        assert!(n > 0, "connection {k} could not send at all");
        assert!(held <= CAP, "connection {k} pins {held} frames (cap {CAP})");
        // Frames are filled to the floored MSS (216 - no timestamps).
        assert!(n >= (CAP - 1) * 216, "connection {k} took only {n} bytes");
    }
    let pinned = s.device().live.get() - base;
    assert!(pinned <= 12 * CAP, "{pinned} frames pinned");
    // A well-behaved client is still served: its 64 KiB leave at once.
    let good = open_from(&mut s, 3, 30000, 1460, 65535);
    let n = s.send(good, &vec![1u8; 60 << 10]).unwrap();
    assert_eq!(n, 60 << 10);
    s.poll(ms(3));
    let sent: usize = tx_tcp(&mut s)
        .iter()
        .filter(|(t, _)| t.dst_port == 30000)
        .map(|(_, d)| d.len())
        .sum();
    assert!(
        sent >= 10 * 1460,
        "only {sent} bytes sent to the good client"
    );
}
