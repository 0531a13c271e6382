//! TCP through the stack: resets for closed ports (RFC 9293 §3.10.7.1),
//! passive and active opens, SYN cookies beyond the backlog (RFC 4987),
//! ARP resolution of an active open, limits, and events.

mod common;
use common::*;
use xdptcp::app::{CloseReason, Event};
use xdptcp::stack::{Error, Stack};
use xdptcp::tcp::State;
use xdptcp::wire::{ArpOp, SeqNumber, TcpFlags, TcpOptions, TcpRepr};

fn syn(src_port: u16, dst_port: u16, options: TcpOptions) -> TcpRepr {
    TcpRepr {
        src_port,
        dst_port,
        seq: SeqNumber(1000),
        flags: TcpFlags::SYN,
        window: 64240,
        options,
        ..TcpRepr::default()
    }
}

fn linux_syn_options(ts: Option<(u32, u32)>) -> TcpOptions {
    TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamps: ts,
        ..TcpOptions::default()
    }
}

/// Stack A with B's MAC learned.
fn stack_with_peer(capacity: usize) -> Stack<TestDevice> {
    let mut s = stack_a(capacity);
    rx(&mut s, ms(0), &arp_request_b_for_a());
    s.device_mut().take_tx();
    s
}

fn tx_tcp(s: &mut Stack<TestDevice>) -> Vec<(TcpRepr, Vec<u8>)> {
    s.device_mut()
        .take_tx()
        .iter()
        .map(|f| {
            let (e, ip, seg, payload) = parse_tcp(f);
            assert_eq!((e.dst, e.src), (MAC_B, MAC_A));
            assert_eq!(
                (ip.src, ip.dst, ip.ttl, ip.dont_frag),
                (IP_A, IP_B, 64, true)
            );
            (seg, payload)
        })
        .collect()
}

#[test]
fn syn_to_closed_port_gets_exact_rst() {
    let mut s = stack_with_peer(64);
    rx(
        &mut s,
        ms(1),
        &tcp_frame_b_to_a(&syn(5555, 81, linux_syn_options(None)), &[]),
    );
    let out = tx_tcp(&mut s);
    assert_eq!(out.len(), 1);
    // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
    assert_eq!(
        out[0].0,
        TcpRepr {
            src_port: 81,
            dst_port: 5555,
            seq: SeqNumber(0),
            ack: SeqNumber(1001),
            flags: TcpFlags::RST | TcpFlags::ACK,
            window: 0,
            ..TcpRepr::default()
        }
    );
    assert!(out[0].1.is_empty());
    // An ACK-bearing segment with data: <SEQ=SEG.ACK><CTL=RST>.
    let ack = TcpRepr {
        src_port: 5555,
        dst_port: 81,
        seq: SeqNumber(5),
        ack: SeqNumber(777),
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 100,
        ..TcpRepr::default()
    };
    rx(&mut s, ms(2), &tcp_frame_b_to_a(&ack, b"data"));
    let out = tx_tcp(&mut s);
    assert_eq!(out[0].0.flags, TcpFlags::RST);
    assert_eq!(out[0].0.seq, SeqNumber(777));
    // Never answer a RST.
    let rst = TcpRepr {
        flags: TcpFlags::RST,
        ..ack
    };
    rx(&mut s, ms(3), &tcp_frame_b_to_a(&rst, &[]));
    assert!(s.device_mut().take_tx().is_empty());
    assert_eq!(s.counters().drop_no_listener, 3);
    assert_eq!(s.counters().rst_sent, 2);
    assert_eq!(s.device().live.get(), 0);
}

#[test]
fn listener_answers_bare_ack_with_rst() {
    let mut s = stack_with_peer(64);
    s.listen(80).unwrap();
    assert_eq!(s.listen(80), Err(Error::AddrInUse));
    let ack = TcpRepr {
        src_port: 5555,
        dst_port: 80,
        seq: SeqNumber(5),
        ack: SeqNumber(777),
        flags: TcpFlags::ACK,
        window: 100,
        ..TcpRepr::default()
    };
    rx(&mut s, ms(1), &tcp_frame_b_to_a(&ack, &[]));
    let out = tx_tcp(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(
        (out[0].0.flags, out[0].0.seq),
        (TcpFlags::RST, SeqNumber(777))
    );
    // No cookie was sent recently: the ACK is not even checked.
    assert_eq!(s.counters().syn_cookies_bad, 0);
    assert_eq!(s.conn_count(), 0);
    // After unlisten, a SYN is reset.
    s.unlisten(80).unwrap();
    rx(
        &mut s,
        ms(2),
        &tcp_frame_b_to_a(&syn(5555, 80, linux_syn_options(None)), &[]),
    );
    assert_eq!(tx_tcp(&mut s)[0].0.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(s.conn_count(), 0);
}

/// Config for cookie tests: every SYN gets a cookie.
fn cookie_stack() -> Stack<TestDevice> {
    let mut cfg = config(MAC_A, IP_A);
    cfg.syn_backlog = 0;
    let mut s = Stack::new(cfg, TestDevice::new(64), ms(0));
    rx(&mut s, ms(0), &arp_request_b_for_a());
    s.device_mut().take_tx();
    s.listen(80).unwrap();
    s
}

fn cookie_handshake(ts: bool) {
    let mut s = cookie_stack();
    let tsopt = ts.then_some((100u32, 0u32));
    let mut syn = syn(5555, 80, linux_syn_options(tsopt));
    // ECN is asked for but not granted: cookies do not negotiate it.
    syn.flags |= TcpFlags::ECE | TcpFlags::CWR;
    rx(&mut s, ms(5), &tcp_frame_b_to_a(&syn, &[]));
    let out = tx_tcp(&mut s);
    assert_eq!(out.len(), 1);
    let sa_ = out[0].0;
    assert_eq!(sa_.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(sa_.ack, SeqNumber(1001));
    assert_eq!((sa_.src_port, sa_.dst_port), (80, 5555));
    assert_eq!(sa_.options.mss, Some(1460));
    // Window scale and SACK ride in the TSval: only with timestamps.
    // Our shift from the stack's receive ceiling (RFC 7323 §2.3).
    let ws = s.config().tcp.rcv_wscale();
    assert_eq!(sa_.options.window_scale, ts.then_some(ws));
    assert_eq!(sa_.options.sack_permitted, ts);
    match (ts, sa_.options.timestamps) {
        (true, Some((_, ecr))) => assert_eq!(ecr, 100),
        (false, None) => {}
        other => panic!("timestamps {other:?}"),
    }
    assert_eq!(s.conn_count(), 0, "cookies keep no state");
    assert_eq!(s.counters().syn_cookies_sent, 1);

    // A wrong cookie is dropped and counted, without a RST: it cannot be
    // told from a segment that overtook the one completing a cookie
    // handshake, which a RST would kill.
    let mut ack = ack_of_synack(5555, &sa_, 101);
    ack.ack = sa_.seq + 2;
    rx(&mut s, ms(6), &tcp_frame_b_to_a(&ack, &[]));
    assert_eq!(s.counters().syn_cookies_bad, 1);
    assert!(tx_tcp(&mut s).is_empty());
    let mut late = ack_of_synack(5555, &sa_, 101);
    late.seq = late.seq + 500;
    rx(&mut s, ms(6), &tcp_frame_b_to_a(&late, b"later data"));
    assert_eq!(s.counters().syn_cookies_bad, 2);
    assert!(tx_tcp(&mut s).is_empty());

    // The right one establishes the connection.
    ack.ack = sa_.seq + 1;
    rx(&mut s, ms(6), &tcp_frame_b_to_a(&ack, &[]));
    assert_eq!(s.counters().syn_cookies_ok, 1);
    assert_eq!(s.conn_count(), 1);
    let Some(Event::Accepted { id, port: 80 }) = s.next_event() else {
        panic!("no Accepted");
    };
    assert_eq!(s.state(id), Ok(State::Established));
    s.poll(ms(6));
    for (t, p) in tx_tcp(&mut s) {
        // At most a window update.
        assert!(p.is_empty() && t.flags == TcpFlags::ACK && t.ack == SeqNumber(1001));
    }

    // Data flows both ways.
    ack.flags = TcpFlags::ACK | TcpFlags::PSH;
    rx(&mut s, ms(7), &tcp_frame_b_to_a(&ack, b"GET /"));
    // Accepted at once: the window of the cookie SYN-ACK is open.
    assert_eq!(s.next_event(), Some(Event::Readable { id }));
    let mut buf = [0u8; 16];
    assert_eq!(s.recv(id, &mut buf), Ok(5));
    assert_eq!(&buf[..5], b"GET /");
    assert_eq!(s.send(id, b"200"), Ok(3));
    s.poll(ms(7));
    let out = tx_tcp(&mut s);
    let data: Vec<_> = out.iter().filter(|(_, p)| !p.is_empty()).collect();
    assert_eq!(data.len(), 1);
    assert_eq!(
        (data[0].0.seq, data[0].1.as_slice()),
        (sa_.seq + 1, &b"200"[..])
    );
    assert_eq!(data[0].0.ack, SeqNumber(1006));

    // Once no cookie has gone out for the cookie window, a stray ACK to
    // the listener is reset again (RFC 9293 §3.10.7.2).
    let mut stray = ack_of_synack(6666, &sa_, 101);
    stray.ack = sa_.seq + 2;
    rx(&mut s, ms(6 + 121_000), &tcp_frame_b_to_a(&stray, &[]));
    let out = tx_tcp(&mut s);
    assert!(out
        .iter()
        .any(|(t, _)| t.flags == TcpFlags::RST && t.dst_port == 6666));
    assert_eq!(s.counters().syn_cookies_bad, 2);
}

#[test]
fn syn_cookie_handshake_with_timestamps() {
    cookie_handshake(true);
}

#[test]
fn syn_cookie_handshake_without_timestamps() {
    cookie_handshake(false);
}

#[test]
fn handshake_data_and_close_via_listener() {
    let mut s = stack_with_peer(64);
    s.listen(80).unwrap();
    rx(
        &mut s,
        ms(1),
        &tcp_frame_b_to_a(&syn(5555, 80, linux_syn_options(Some((100, 0)))), &[]),
    );
    assert_eq!(s.conn_count(), 1);
    assert!(
        s.next_event().is_none(),
        "no event before the handshake completes"
    );
    assert_eq!(s.poll_at(), Some(ms(1)), "the SYN-ACK is due");
    s.poll(ms(1));
    let out = tx_tcp(&mut s);
    assert_eq!(out.len(), 1);
    let synack = out[0].0;
    assert_eq!(synack.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(synack.ack, SeqNumber(1001));
    assert!(synack.options.timestamps.is_some());

    let mut ack = ack_of_synack(5555, &synack, 101);
    rx(&mut s, ms(2), &tcp_frame_b_to_a(&ack, &[]));
    let Some(Event::Accepted { id, port: 80 }) = s.next_event() else {
        panic!("no Accepted");
    };
    assert_eq!(s.state(id), Ok(State::Established));
    let t = s.tuple(id).unwrap();
    assert_eq!((t.local, t.remote), (sa(IP_A, 80), sa(IP_B, 5555)));

    // Two segments in one batch: two Readable-worthy inputs, one ACK at most.
    ack.flags = TcpFlags::ACK | TcpFlags::PSH;
    rx(&mut s, ms(3), &tcp_frame_b_to_a(&ack, b"hello "));
    ack.seq = ack.seq + 6;
    rx(&mut s, ms(3), &tcp_frame_b_to_a(&ack, b"world"));
    assert_eq!(s.next_event(), Some(Event::Readable { id }));
    assert_eq!(s.next_event(), None, "one Readable per batch");
    // The payload is still in the received frames (zero-copy).
    assert!(s.device().live.get() >= 2);
    let mut got = Vec::new();
    let n = s
        .recv_with(id, &mut |b| {
            got.extend_from_slice(b);
            b.len()
        })
        .unwrap();
    assert_eq!((n, got.as_slice()), (11, &b"hello world"[..]));
    s.poll(ms(3));
    let acks = tx_tcp(&mut s);
    assert!(
        acks.len() <= 1,
        "one ACK per connection per batch, got {}",
        acks.len()
    );

    // Peer closes; we close; LAST-ACK -> CLOSED.
    ack.seq = ack.seq + 5;
    ack.flags = TcpFlags::ACK | TcpFlags::FIN;
    rx(&mut s, ms(4), &tcp_frame_b_to_a(&ack, &[]));
    while let Some(ev) = s.next_event() {
        if ev == (Event::ReadClosed { id }) {
            break;
        }
    }
    assert_eq!(s.state(id), Ok(State::CloseWait));
    s.shutdown(id).unwrap();
    assert_eq!(s.send(id, b"x"), Err(Error::InvalidState));
    s.poll(ms(4));
    let out = tx_tcp(&mut s);
    let fin = out.iter().find(|(t, _)| t.flags.fin()).expect("our FIN").0;
    ack.seq = ack.seq + 1;
    ack.ack = fin.seq + 1;
    ack.flags = TcpFlags::ACK;
    rx(&mut s, ms(5), &tcp_frame_b_to_a(&ack, &[]));
    let mut evs = Vec::new();
    while let Some(ev) = s.next_event() {
        evs.push(ev);
    }
    assert!(evs.contains(&Event::Closed {
        id,
        reason: CloseReason::Normal
    }));
    assert_eq!(s.conn_count(), 0);
    assert_eq!(s.state(id), Err(Error::InvalidConn));
    assert_eq!(s.counters().conns_opened, 1);
    assert_eq!(s.counters().conns_closed, 1);
    drop(evs);
    s.poll(ms(5));
    assert_eq!(s.device().live.get(), 0, "every frame released");
}

#[test]
fn connect_resolves_arp_first_then_sends_syn() {
    let mut cfg = config(MAC_A, IP_A);
    // Retry ARP before the SYN's RTO (1 s) so the SYN is queued only once.
    cfg.arp_retry = std::time::Duration::from_millis(300);
    let mut s = Stack::new(cfg, TestDevice::new(64), ms(0));
    let id = s.connect(ms(0), sa(IP_B, 80)).unwrap();
    assert_eq!(s.state(id), Ok(State::SynSent));
    s.poll(ms(0));
    // The SYN waits for ARP: only a request went out.
    let tx = s.device_mut().take_tx();
    assert_eq!(tx.len(), 1);
    let (_, req) = parse_arp(&tx[0]);
    assert_eq!((req.op, req.target_ip), (ArpOp::Request, IP_B));
    // A retry after arp_retry.
    assert_eq!(s.poll_at(), Some(ms(300)));
    s.poll(ms(300));
    assert_eq!(s.device_mut().take_tx().len(), 1);
    // The reply releases the SYN.
    rx(&mut s, ms(400), &arp_reply_b_to_a());
    let out = tx_tcp(&mut s);
    assert_eq!(out.len(), 1);
    let syn = out[0].0;
    assert_eq!(syn.flags & TcpFlags(0x3f), TcpFlags::SYN);
    assert_eq!(syn.dst_port, 80);
    assert!((40000..=40009).contains(&syn.src_port));

    // SYN-ACK -> Connected.
    let synack = TcpRepr {
        src_port: 80,
        dst_port: syn.src_port,
        seq: SeqNumber(5000),
        ack: syn.seq + 1,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: 65535,
        options: TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        },
        ..TcpRepr::default()
    };
    rx(&mut s, ms(401), &tcp_frame_b_to_a(&synack, &[]));
    assert_eq!(s.next_event(), Some(Event::Connected { id }));
    assert_eq!(s.state(id), Ok(State::Established));
}

#[test]
fn refused_connect_and_ephemeral_exhaustion() {
    let mut s = stack_with_peer(64);
    s.arp_insert_static(IP_B, MAC_B);
    let id = s.connect(ms(0), sa(IP_B, 80)).unwrap();
    s.poll(ms(0));
    let syn = tx_tcp(&mut s)[0].0;
    let rst = TcpRepr {
        src_port: 80,
        dst_port: syn.src_port,
        seq: SeqNumber(0),
        ack: syn.seq + 1,
        flags: TcpFlags::RST | TcpFlags::ACK,
        ..TcpRepr::default()
    };
    rx(&mut s, ms(1), &tcp_frame_b_to_a(&rst, &[]));
    assert_eq!(
        s.next_event(),
        Some(Event::Closed {
            id,
            reason: CloseReason::Refused
        })
    );
    assert_eq!(s.conn_count(), 0);

    // Ten ephemeral ports (40000..=40009), all distinct, then Exhausted.
    let mut ports = std::collections::HashSet::new();
    for _ in 0..10 {
        let id = s.connect(ms(2), sa(IP_B, 80)).unwrap();
        ports.insert(s.tuple(id).unwrap().local.port());
    }
    assert_eq!(ports.len(), 10);
    assert_eq!(s.connect(ms(2), sa(IP_B, 80)), Err(Error::Exhausted));
    // Another remote port has its own 4-tuples.
    assert!(s.connect(ms(2), sa(IP_B, 81)).is_ok());
    // No route without a gateway for off-link.
    let mut cfg = config(MAC_A, IP_A);
    cfg.gateway = None;
    let mut s2 = Stack::new(cfg, TestDevice::new(8), ms(0));
    assert_eq!(
        s2.connect(ms(0), sa(std::net::Ipv4Addr::new(10, 0, 0, 1), 80)),
        Err(Error::Unreachable)
    );
}

#[test]
fn abort_sends_rst_and_reports_aborted() {
    let mut s = stack_with_peer(64);
    let id = s.connect(ms(0), sa(IP_B, 80)).unwrap();
    s.poll(ms(0));
    let syn = tx_tcp(&mut s)[0].0;
    let synack = TcpRepr {
        src_port: 80,
        dst_port: syn.src_port,
        seq: SeqNumber(5000),
        ack: syn.seq + 1,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: 65535,
        ..TcpRepr::default()
    };
    rx(&mut s, ms(1), &tcp_frame_b_to_a(&synack, &[]));
    assert_eq!(s.next_event(), Some(Event::Connected { id }));
    s.poll(ms(1));
    tx_tcp(&mut s);
    s.abort(id).unwrap();
    let out = tx_tcp(&mut s);
    assert!(out.iter().any(|(t, _)| t.flags.rst()), "RST sent");
    assert_eq!(
        s.next_event(),
        Some(Event::Closed {
            id,
            reason: CloseReason::Aborted
        })
    );
    assert_eq!(s.next_event(), None);
    assert_eq!(s.abort(id), Err(Error::InvalidConn));
    assert_eq!(s.conn_count(), 0);
}

#[test]
fn syn_flood_beyond_backlog_gets_cookies_and_limits_hold() {
    let mut s = stack_with_peer(256);
    s.listen(80).unwrap();
    // syn_backlog = 4: four half-open connections, then cookies.
    for p in 0..10u16 {
        rx(
            &mut s,
            ms(1),
            &tcp_frame_b_to_a(&syn(10000 + p, 80, linux_syn_options(None)), &[]),
        );
    }
    assert_eq!(s.conn_count(), 4);
    assert_eq!(s.counters().syn_cookies_sent, 6);
    s.poll(ms(1));
    let out = tx_tcp(&mut s);
    assert_eq!(out.len(), 10);
    assert!(out
        .iter()
        .all(|(t, _)| t.flags == TcpFlags::SYN | TcpFlags::ACK));
    assert!(s.next_event().is_none());
    // RFC 1122 / memory: SYNs beyond max_conns are dropped.
    let mut cfg = config(MAC_A, IP_A);
    cfg.max_conns = 2;
    cfg.syn_backlog = 100;
    let mut s = Stack::new(cfg, TestDevice::new(64), ms(0));
    s.arp_insert_static(IP_B, MAC_B);
    s.listen(80).unwrap();
    for p in 0..5u16 {
        rx(
            &mut s,
            ms(1),
            &tcp_frame_b_to_a(&syn(10000 + p, 80, linux_syn_options(None)), &[]),
        );
    }
    assert_eq!(s.conn_count(), 2);
    assert_eq!(s.counters().drop_conn_limit, 3);
}

#[test]
fn arp_queue_overflow_while_connecting() {
    let mut cfg = config(MAC_A, IP_A);
    cfg.arp_queue = 2;
    let mut s = Stack::new(cfg, TestDevice::new(64), ms(0));
    for _ in 0..4 {
        s.connect(ms(0), sa(IP_B, 80)).unwrap();
    }
    s.poll(ms(0));
    assert_eq!(s.device_mut().take_tx().len(), 1, "one ARP request");
    assert_eq!(s.counters().drop_arp_queue, 2);
    assert_eq!(s.arp_stats(), (1, 2));
    rx(&mut s, ms(10), &arp_reply_b_to_a());
    assert_eq!(tx_tcp(&mut s).len(), 2);
}

/// A passive open by hand: SYN, SYN-ACK, ACK from B's port `port`.
/// Returns the ACK template (B's next seq, acking our SYN).
fn passive_handshake(s: &mut Stack<TestDevice>, now: u64, port: u16) -> TcpRepr {
    rx(
        s,
        ms(now),
        &tcp_frame_b_to_a(&syn(port, 80, linux_syn_options(None)), &[]),
    );
    s.poll(ms(now));
    let synack = tx_tcp(s)
        .into_iter()
        .map(|(t, _)| t)
        .find(|t| t.flags.syn() && t.dst_port == port)
        .expect("SYN-ACK");
    let ack = TcpRepr {
        src_port: port,
        dst_port: 80,
        seq: SeqNumber(1001),
        ack: synack.seq + 1,
        flags: TcpFlags::ACK,
        window: 65535,
        ..TcpRepr::default()
    };
    rx(s, ms(now), &tcp_frame_b_to_a(&ack, &[]));
    ack
}

#[test]
fn completed_handshakes_leave_the_syn_backlog() {
    let mut s = stack_with_peer(256);
    s.listen(80).unwrap();
    for p in 0..4u16 {
        passive_handshake(&mut s, 1, 20000 + p);
    }
    // All four completed: the backlog (4) is free again, no cookies.
    for p in 0..4u16 {
        rx(
            &mut s,
            ms(2),
            &tcp_frame_b_to_a(&syn(30000 + p, 80, linux_syn_options(None)), &[]),
        );
    }
    assert_eq!(s.conn_count(), 8);
    assert_eq!(s.counters().syn_cookies_sent, 0);
    // The fifth half-open one gets a cookie.
    rx(
        &mut s,
        ms(2),
        &tcp_frame_b_to_a(&syn(30009, 80, linux_syn_options(None)), &[]),
    );
    assert_eq!(s.conn_count(), 8);
    assert_eq!(s.counters().syn_cookies_sent, 1);
    let accepted = std::iter::from_fn(|| s.next_event())
        .filter(|e| matches!(e, Event::Accepted { port: 80, .. }))
        .count();
    assert_eq!(accepted, 4);
}

#[test]
fn accept_backlog_full_drops_syns() {
    let mut cfg = config(MAC_A, IP_A);
    cfg.accept_backlog = 2;
    let mut s = Stack::new(cfg, TestDevice::new(64), ms(0));
    s.arp_insert_static(IP_B, MAC_B);
    s.listen(80).unwrap();
    passive_handshake(&mut s, 1, 20000);
    passive_handshake(&mut s, 1, 20001);
    // Two Accepted events wait for the app: the next SYN is dropped.
    rx(
        &mut s,
        ms(2),
        &tcp_frame_b_to_a(&syn(20002, 80, linux_syn_options(None)), &[]),
    );
    assert_eq!(s.counters().drop_syn_backlog, 1);
    assert_eq!(s.conn_count(), 2);
    // Once the app took one, SYNs are accepted again.
    assert!(matches!(s.next_event(), Some(Event::Accepted { .. })));
    rx(
        &mut s,
        ms(3),
        &tcp_frame_b_to_a(&syn(20002, 80, linux_syn_options(None)), &[]),
    );
    assert_eq!(s.conn_count(), 3);
}

#[test]
fn retransmission_counters_sum_live_and_closed_connections() {
    let mut s = stack_with_peer(256);
    s.listen(80).unwrap();
    let ack = passive_handshake(&mut s, 1, 20000);
    let Some(Event::Accepted { id, .. }) = s.next_event() else {
        panic!("no Accepted");
    };
    assert_eq!(s.send(id, &[1u8; 1000]), Ok(1000));
    s.poll(ms(1));
    let out = tx_tcp(&mut s);
    assert_eq!(out.iter().filter(|(_, p)| p.len() == 1000).count(), 1);
    // No ACK: the retransmission timer fires (RTO 1 s without an RTT
    // sample beyond the handshake's; poll at whatever poll_at says).
    let mut polls = 0;
    while s.counters().rto_timeouts == 0 {
        let t = s.poll_at().expect("a timer");
        s.poll(t);
        polls += 1;
        assert!(polls < 10);
    }
    let out = tx_tcp(&mut s);
    assert!(out.iter().any(|(t, p)| p.len() == 1000 && t.seq == ack.ack));
    let st = s.conn_stats(id).unwrap();
    assert!(st.retransmits >= 1);
    assert_eq!(s.counters().retransmits, st.retransmits);
    assert_eq!(s.counters().rto_timeouts, st.rto_timeouts);
    // After the connection is gone, the sums stay.
    s.abort(id).unwrap();
    assert_eq!(s.conn_count(), 0);
    assert_eq!(s.counters().retransmits, st.retransmits);
    assert_eq!(s.counters().rto_timeouts, st.rto_timeouts);
    assert_eq!(s.counters().conns_closed, 1);
}

#[test]
fn device_refusal_is_retried_on_the_next_poll() {
    let mut s = stack_with_peer(64);
    s.arp_insert_static(IP_B, MAC_B);
    let id = s.connect(ms(0), sa(IP_B, 80)).unwrap();
    s.device_mut().refuse = true;
    s.poll(ms(0));
    assert!(s.device().tx.is_empty());
    assert_eq!(s.counters().tx_dropped, 1);
    // Not due by poll_at (a full ring must not spin the caller)...
    assert_ne!(s.poll_at(), Some(ms(0)));
    // ...but the next poll tries again.
    s.device_mut().refuse = false;
    s.poll(ms(1));
    let out = tx_tcp(&mut s);
    assert_eq!(out.len(), 1);
    assert!(out[0].0.flags.syn());
    assert_eq!(s.state(id), Ok(State::SynSent));
}

#[test]
fn full_ephemeral_range_and_connect_from() {
    let mut cfg = config(MAC_A, IP_A);
    cfg.ephemeral_ports = (1, 65535);
    cfg.secret = [0xff; 16];
    let mut s = Stack::new(cfg, TestDevice::new(64), ms(0));
    let id = s.connect(ms(0), sa(IP_B, 80)).unwrap();
    assert!(s.tuple(id).unwrap().local.port() >= 1);
    // A chosen local port; the same 4-tuple again is in use.
    let id2 = s.connect_from(ms(0), sa(IP_A, 5000), sa(IP_B, 80)).unwrap();
    assert_eq!(s.tuple(id2).unwrap().local, sa(IP_A, 5000));
    assert_eq!(
        s.connect_from(ms(0), sa(IP_A, 5000), sa(IP_B, 80)),
        Err(Error::AddrInUse)
    );
    assert_eq!(
        s.connect_from(ms(0), sa(IP_B, 5000), sa(IP_B, 80)),
        Err(Error::InvalidState)
    );
}

#[test]
fn data_with_the_fin_stays_readable_until_read() {
    // A closes first (FIN-WAIT), B answers with data + FIN: A enters
    // TIME-WAIT holding unread data; `Closed` waits until it is read.
    let mut s = stack_with_peer(64);
    let id = s.connect(ms(0), sa(IP_B, 80)).unwrap();
    s.poll(ms(0));
    let syn = tx_tcp(&mut s)[0].0;
    let mut seg = TcpRepr {
        src_port: 80,
        dst_port: syn.src_port,
        seq: SeqNumber(5000),
        ack: syn.seq + 1,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window: 65535,
        ..TcpRepr::default()
    };
    rx(&mut s, ms(1), &tcp_frame_b_to_a(&seg, &[]));
    assert_eq!(s.next_event(), Some(Event::Connected { id }));
    s.shutdown(id).unwrap();
    s.poll(ms(1));
    let fin = tx_tcp(&mut s)
        .into_iter()
        .map(|(t, _)| t)
        .find(|t| t.flags.fin())
        .expect("FIN");
    seg.seq = SeqNumber(5001);
    seg.ack = fin.seq + 1;
    seg.flags = TcpFlags::ACK | TcpFlags::PSH | TcpFlags::FIN;
    rx(&mut s, ms(2), &tcp_frame_b_to_a(&seg, b"bye"));
    assert_eq!(s.next_event(), Some(Event::Readable { id }));
    assert_eq!(s.next_event(), Some(Event::ReadClosed { id }));
    assert_eq!(s.next_event(), None, "no Closed while data is unread");
    assert_eq!(s.state(id), Ok(State::TimeWait));
    let mut buf = [0u8; 8];
    assert_eq!(s.recv(id, &mut buf), Ok(3));
    assert_eq!(&buf[..3], b"bye");
    assert_eq!(
        s.next_event(),
        Some(Event::Closed {
            id,
            reason: CloseReason::Normal
        })
    );
    assert_eq!(s.state(id), Err(Error::InvalidConn));
    assert_eq!(s.conn_count(), 1, "TIME-WAIT lingers");
}

/// Server side closes first and sits in TIME-WAIT; the client reuses its
/// port. RFC 6191: a SYN beyond the old FIN (or with a newer timestamp)
/// starts a new connection at once.
fn server_timewait(ts: bool) -> (Stack<TestDevice>, TcpRepr) {
    let mut s = stack_with_peer(64);
    s.listen(80).unwrap();
    let opts = linux_syn_options(ts.then_some((100, 0)));
    rx(&mut s, ms(1), &tcp_frame_b_to_a(&syn(5555, 80, opts), &[]));
    s.poll(ms(1));
    let synack = tx_tcp(&mut s)[0].0;
    let mut ack = ack_of_synack(5555, &synack, 101);
    rx(&mut s, ms(2), &tcp_frame_b_to_a(&ack, &[]));
    let Some(Event::Accepted { id, .. }) = s.next_event() else {
        panic!("no Accepted");
    };
    s.shutdown(id).unwrap();
    s.poll(ms(3));
    let fin = tx_tcp(&mut s)
        .into_iter()
        .map(|(t, _)| t)
        .find(|t| t.flags.fin())
        .expect("FIN");
    ack.ack = fin.seq + 1;
    ack.flags = TcpFlags::ACK | TcpFlags::FIN;
    ack.options.timestamps = fin.options.timestamps.map(|(v, _)| (102, v));
    rx(&mut s, ms(4), &tcp_frame_b_to_a(&ack, &[]));
    let evs: Vec<_> = std::iter::from_fn(|| s.next_event()).collect();
    assert!(evs.contains(&Event::Closed {
        id,
        reason: CloseReason::Normal
    }));
    s.poll(ms(4));
    s.device_mut().take_tx();
    assert_eq!(s.conn_count(), 1, "TIME-WAIT");
    (s, ack)
}

#[test]
fn syn_beyond_the_old_fin_reopens_time_wait() {
    // Without timestamps: by sequence number. The old FIN ended at 1002.
    let (mut s, _) = server_timewait(false);
    let mut old = syn(5555, 80, linux_syn_options(None));
    old.seq = SeqNumber(1001);
    rx(&mut s, ms(5), &tcp_frame_b_to_a(&old, &[]));
    s.poll(ms(5));
    let out = tx_tcp(&mut s);
    assert!(
        out.iter().all(|(t, _)| !t.flags.syn()),
        "old SYN: no new connection"
    );
    let mut new = old;
    new.seq = SeqNumber(900_000);
    rx(&mut s, ms(6), &tcp_frame_b_to_a(&new, &[]));
    s.poll(ms(6));
    let out = tx_tcp(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(out[0].0.ack, SeqNumber(900_001));
    assert_eq!(s.conn_count(), 1, "the old incarnation is gone");
    assert_eq!(s.counters().conns_closed, 1);

    // With timestamps: a newer TSval wins even with an older sequence number.
    let (mut s, _) = server_timewait(true);
    let mut stale = syn(5555, 80, linux_syn_options(Some((50, 0))));
    stale.seq = SeqNumber(900_000);
    rx(&mut s, ms(5), &tcp_frame_b_to_a(&stale, &[]));
    s.poll(ms(5));
    assert!(tx_tcp(&mut s).iter().all(|(t, _)| !t.flags.syn()));
    let mut fresh = syn(5555, 80, linux_syn_options(Some((200, 0))));
    fresh.seq = SeqNumber(10);
    rx(&mut s, ms(6), &tcp_frame_b_to_a(&fresh, &[]));
    s.poll(ms(6));
    let out = tx_tcp(&mut s);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].0.flags, TcpFlags::SYN | TcpFlags::ACK);
    assert_eq!(out[0].0.ack, SeqNumber(11));
}
