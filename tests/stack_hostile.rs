//! Hostile peers and faults against the stack: a peer that announces a
//! tiny MSS and keeps its window shut must not pin the frame pool (issue 9
//! defect 2); ICMP errors reach TCP and UDP, validated (RFC 1122 §4.2.3.9,
//! RFC 5927 §4.1, RFC 1191); SYN-ACKs to spoofed on-link sources waiting
//! for ARP cannot drain the pool (defect 3).

mod common;
use common::*;
use xdptcp::app::{CloseReason, Event};
use xdptcp::stack::{ConnId, Stack, UdpError};
use xdptcp::tcp::State;
use xdptcp::wire::{
    checksum, EtherType, IcmpRepr, IpProtocol, SeqNumber, TcpFlags, TcpOptions, TcpRepr,
};

/// Stack A with B's MAC learned and a TCP send buffer of 64 KiB.
fn server(capacity: usize) -> Stack<TestDevice> {
    server_with(capacity, 64)
}

fn server_with(capacity: usize, max_conns: usize) -> Stack<TestDevice> {
    server_cfg(capacity, max_conns, usize::MAX)
}

fn server_cfg(capacity: usize, max_conns: usize, max_tw: usize) -> Stack<TestDevice> {
    let mut cfg = config(MAC_A, IP_A);
    cfg.max_time_wait = max_tw;
    cfg.tcp.snd_buf = 64 << 10;
    cfg.max_conns = max_conns;
    let mut s = Stack::new(cfg, TestDevice::new(capacity), ms(0));
    rx(&mut s, ms(0), &arp_request_b_for_a());
    s.device_mut().take_tx();
    s
}

fn tx_tcp(s: &mut Stack<TestDevice>) -> Vec<(TcpRepr, Vec<u8>)> {
    s.device_mut()
        .take_tx()
        .iter()
        .filter(|f| parse(f).ip.is_some())
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

/// An ICMP error (type, code, next-hop MTU) from the gateway to A quoting
/// `frame` (an Ethernet frame A sent): its IP header and 8 bytes more.
fn icmp_error(t: u8, code: u8, mtu: u16, frame: &[u8]) -> Vec<u8> {
    let ip = &frame[14..];
    let quoted = &ip[..28.min(ip.len())];
    let mut m = vec![t, code, 0, 0, 0, 0];
    m.extend_from_slice(&mtu.to_be_bytes());
    m.extend_from_slice(quoted);
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    eth(
        MAC_A,
        MAC_B,
        EtherType::Ipv4,
        &ipv4(IP_GW, IP_A, IpProtocol::Icmp, &m),
    )
}

/// The same quote with the TCP sequence number replaced.
fn with_seq(frame: &[u8], seq: u32) -> Vec<u8> {
    let mut f = frame.to_vec();
    f[14 + 20 + 4..14 + 20 + 8].copy_from_slice(&seq.to_be_bytes());
    f
}

/// A's active open to B:80: (id, the SYN frame).
fn syn_sent(s: &mut Stack<TestDevice>) -> (ConnId, Vec<u8>) {
    let id = s.connect(ms(0), sa(IP_B, 80)).unwrap();
    s.poll(ms(0));
    let tx = s.device_mut().take_tx();
    assert_eq!(tx.len(), 1);
    (id, tx[0].clone())
}

/// RFC 1122 §4.2.3.9: a port unreachable quoting our SYN aborts the open;
/// one quoting another sequence number (RFC 5927 §4.1) does not.
#[test]
fn port_unreachable_aborts_syn_sent_only_when_in_window() {
    let mut s = server(64);
    let (id, syn) = syn_sent(&mut s);
    let (_, _, synr, _) = parse_tcp(&syn);
    rx(
        &mut s,
        ms(1),
        &icmp_error(3, 3, 0, &with_seq(&syn, synr.seq.0 + 1)),
    );
    assert_eq!(s.state(id), Ok(State::SynSent));
    assert_eq!(s.counters().icmp_errors_tcp, 1);
    assert_eq!(s.conn_stats(id).unwrap().icmp_ignored, 1);
    // A soft error (host unreachable) is only reported.
    rx(&mut s, ms(2), &icmp_error(3, 1, 0, &syn));
    assert_eq!(s.state(id), Ok(State::SynSent));
    assert_eq!(s.conn_stats(id).unwrap().icmp_soft_errors, 1);
    rx(&mut s, ms(3), &icmp_error(3, 3, 0, &syn));
    assert_eq!(
        s.next_event(),
        Some(Event::Closed {
            id,
            reason: CloseReason::Unreachable
        })
    );
    assert_eq!(s.conn_count(), 0);
    // Quoting a connection that is gone: counted, dropped.
    rx(&mut s, ms(4), &icmp_error(3, 3, 0, &syn));
    assert_eq!(s.counters().drop_icmp_unmatched, 1);
}

/// RFC 1191: "fragmentation needed" quoting data in flight lowers the MSS
/// and what was sent is resent at the new size; one quoting data already
/// acknowledged (RFC 5927 §4.1) or announcing a larger MTU is ignored.
#[test]
fn frag_needed_lowers_mss_and_resends() {
    let mut s = server(256);
    s.listen(80).unwrap();
    let id = open_from(&mut s, 1, 20000, 1460, 65535);
    assert_eq!(s.send(id, &vec![5u8; 4 * 1460]).unwrap(), 4 * 1460);
    s.poll(ms(2));
    let tx = s.device_mut().take_tx();
    assert_eq!(tx.len(), 4);
    let first = parse_tcp(&tx[0]).2;
    assert_eq!(parse_tcp(&tx[0]).3.len(), 1460);
    // Out of window: the sequence number before SND.UNA.
    rx(
        &mut s,
        ms(3),
        &icmp_error(3, 4, 1280, &with_seq(&tx[0], first.seq.0 - 1)),
    );
    // Larger than what we send: ignored.
    rx(&mut s, ms(3), &icmp_error(3, 4, 1500, &tx[0]));
    s.poll(ms(3));
    assert!(s.device_mut().take_tx().is_empty());
    let st = s.conn_stats(id).unwrap();
    assert_eq!((st.icmp_ignored, st.pmtu_reductions), (1, 0));
    // The real thing: everything in flight is resent in 1240-byte segments.
    rx(&mut s, ms(4), &icmp_error(3, 4, 1280, &tx[0]));
    s.poll(ms(4));
    let out = tx_tcp(&mut s);
    let lens: Vec<usize> = out.iter().map(|(_, d)| d.len()).collect();
    assert_eq!(lens, vec![1240, 220, 1240, 220, 1240, 220, 1240, 220]);
    assert_eq!(out[0].0.seq, first.seq);
    assert_eq!(s.conn_stats(id).unwrap().pmtu_reductions, 1);
    assert_eq!(s.counters().icmp_frag_needed_rx, 3);
    // A second one for the same MTU changes nothing.
    rx(&mut s, ms(5), &icmp_error(3, 4, 1280, &tx[1]));
    s.poll(ms(5));
    assert!(s.device_mut().take_tx().is_empty());
    // A forged tiny MTU is floored at 552 (Linux's min_pmtu).
    rx(
        &mut s,
        ms(6),
        &icmp_error(3, 4, 100, &with_seq(&tx[0], first.seq.0 + 1240)),
    );
    s.poll(ms(6));
    let out = tx_tcp(&mut s);
    assert!(out.iter().all(|(_, d)| d.len() <= 512), "{:?}", out.len());
}

/// RFC 1122 §4.1.3.3: UDP passes ICMP errors to the application.
#[test]
fn udp_gets_icmp_errors() {
    let mut s = server(64);
    s.udp_bind(5353).unwrap();
    s.udp_send(5353, sa(IP_B, 53), b"query").unwrap();
    let tx = s.device_mut().take_tx();
    assert_eq!(tx.len(), 1);
    rx(&mut s, ms(1), &icmp_error(3, 3, 0, &tx[0]));
    rx(&mut s, ms(1), &icmp_error(3, 3, 0, &tx[0]));
    assert_eq!(s.next_event(), Some(Event::UdpError { port: 5353 }));
    assert_eq!(s.next_event(), None);
    let e = UdpError {
        remote: sa(IP_B, 53),
        icmp_type: 3,
        code: 3,
        next_hop_mtu: 0,
    };
    assert_eq!(s.udp_take_error(5353), Some(e));
    assert_eq!(s.udp_take_error(5353), Some(e));
    assert_eq!(s.udp_take_error(5353), None);
    // Not from one of our ports: dropped and counted.
    s.udp_unbind(5353).unwrap();
    rx(&mut s, ms(2), &icmp_error(3, 3, 0, &tx[0]));
    assert_eq!(s.counters().drop_icmp_unmatched, 1);
    assert_eq!(s.counters().icmp_errors_udp, 2);
}

/// Stateless RSTs (segments to closed ports) are rate-limited: a burst of
/// 100, then 1,000 per second; the rest is counted, not answered.
#[test]
fn rsts_to_closed_ports_are_rate_limited() {
    let mut s = server(64);
    let ack = TcpRepr {
        src_port: 5555,
        dst_port: 81,
        seq: SeqNumber(5),
        ack: SeqNumber(777),
        flags: TcpFlags::ACK,
        window: 100,
        ..TcpRepr::default()
    };
    for _ in 0..300 {
        rx(&mut s, ms(1), &tcp_frame_b_to_a(&ack, &[]));
    }
    assert_eq!(s.device_mut().take_tx().len(), 100);
    assert_eq!(s.counters().rst_sent, 100);
    assert_eq!(s.counters().rst_rate_limited, 200);
    // 50 ms later: 50 more tokens.
    for _ in 0..100 {
        rx(&mut s, ms(51), &tcp_frame_b_to_a(&ack, &[]));
    }
    assert_eq!(s.counters().rst_sent, 150);
    assert_eq!(s.device().live.get(), 0);
}

/// A ping flood gets a burst of 100 replies, then 1,000 per second.
#[test]
fn echo_replies_are_rate_limited() {
    let mut s = server(64);
    let req = IcmpRepr::EchoRequest {
        ident: 1,
        seq: 1,
        data: b"ping",
    };
    for _ in 0..150 {
        rx(&mut s, ms(1), &icmp_frame_b_to_a(&req));
    }
    assert_eq!(s.device_mut().take_tx().len(), 100);
    assert_eq!(s.counters().icmp_echo_replies, 100);
    assert_eq!(s.counters().icmp_echo_rate_limited, 50);
}

/// RFC 5961 §7: beyond each connection's 10 per second, the ACKs that
/// answer invalid segments are limited stack-wide (a keyed-random 500 to
/// 1,500 per second, against the CVE-2016-5696 side channel).
#[test]
fn answer_acks_are_limited_stack_wide() {
    let mut s = server_with(4096, 300);
    s.listen(80).unwrap();
    let ids: Vec<ConnId> = (0..200u16)
        .map(|k| open_from(&mut s, 1, 20000 + k, 1460, 65535))
        .collect();
    assert_eq!(ids.len(), 200);
    // Ten blind RSTs per connection, in window but not at RCV.NXT: each
    // asks for a challenge ACK (RFC 5961 §3.2).
    let mut sent = 0;
    for k in 0..200u16 {
        for i in 0..10u32 {
            let rst = TcpRepr {
                src_port: 20000 + k,
                dst_port: 80,
                seq: SeqNumber(1001 + 100 + i),
                flags: TcpFlags::RST,
                window: 0,
                ..TcpRepr::default()
            };
            rx(&mut s, ms(2), &tcp_frame_b_to_a(&rst, &[]));
            s.poll(ms(2));
            sent += s.device_mut().take_tx().len();
        }
    }
    let limited = s.counters().ack_rate_limited as usize;
    assert_eq!(sent + limited, 2000);
    assert!((500..1500).contains(&sent), "{sent} challenge ACKs");
    // Nothing was reset.
    assert!(ids.iter().all(|&id| s.state(id) == Ok(State::Established)));
    // The next second has a fresh budget.
    let rst = TcpRepr {
        src_port: 20000,
        dst_port: 80,
        seq: SeqNumber(1200),
        flags: TcpFlags::RST,
        window: 0,
        ..TcpRepr::default()
    };
    rx(&mut s, ms(1002), &tcp_frame_b_to_a(&rst, &[]));
    s.poll(ms(1002));
    assert_eq!(s.device_mut().take_tx().len(), 1);
}

/// TIME-WAIT is bounded: with room for 2, the third and fourth
/// connections that close first skip it (and are counted).
#[test]
fn time_wait_is_bounded() {
    let mut s = server_cfg(256, 64, 2);
    s.listen(80).unwrap();
    for k in 0..4u16 {
        let port = 20000 + k;
        let id = open_from(&mut s, 1, port, 1460, 65535);
        s.shutdown(id).unwrap();
        s.poll(ms(2));
        let fin = tx_tcp(&mut s)
            .into_iter()
            .map(|(t, _)| t)
            .find(|t| t.flags.fin())
            .expect("FIN");
        let fin_ack = TcpRepr {
            src_port: port,
            dst_port: 80,
            seq: SeqNumber(1001),
            ack: fin.seq + 1,
            flags: TcpFlags::FIN | TcpFlags::ACK,
            window: 65535,
            ..TcpRepr::default()
        };
        rx(&mut s, ms(3), &tcp_frame_b_to_a(&fin_ack, &[]));
        s.poll(ms(3));
        tx_tcp(&mut s);
        while s.next_event().is_some() {}
    }
    assert_eq!(s.time_wait_count(), 2);
    assert_eq!(s.conn_count(), 2);
    assert_eq!(s.counters().time_wait_overflow, 2);
    // 2·MSL later both are gone and the count is back to 0.
    s.poll(ms(3 + 60_000));
    assert_eq!((s.time_wait_count(), s.conn_count()), (0, 0));
}

/// Forged ICMP errors of every type and code, quoting a live connection
/// with sequence numbers around its window and random MTUs: nothing
/// panics, the established connection survives (RFC 5461: no abort once
/// synchronized), and every message is counted.
#[test]
fn forged_icmp_errors_do_not_break_a_live_connection() {
    use rand::{Rng, SeedableRng};
    let mut g = rand_pcg::Pcg64Mcg::seed_from_u64(9);
    let mut s = server(1024);
    s.listen(80).unwrap();
    let id = open_from(&mut s, 1, 20000, 1460, 65535);
    assert_eq!(s.send(id, &vec![1u8; 8 * 1460]).unwrap(), 8 * 1460);
    s.poll(ms(2));
    let tx = s.device_mut().take_tx();
    let base = parse_tcp(&tx[0]).2.seq.0;
    for k in 0..5000u32 {
        let t = [3u8, 3, 3, 11, 12, 4, 5][g.gen_range(0..7)];
        let code = g.gen_range(0..16);
        let seq = base.wrapping_add(g.gen_range(-20_000i32..40_000) as u32);
        let mtu = g.gen_range(0..2000);
        rx(
            &mut s,
            ms(3 + u64::from(k)),
            &icmp_error(t, code, mtu, &with_seq(&tx[0], seq)),
        );
        s.poll(ms(3 + u64::from(k)));
        for (_, d) in tx_tcp(&mut s) {
            assert!(d.len() <= 1460);
        }
        assert_eq!(s.state(id), Ok(State::Established), "after {k}");
    }
    let c = s.counters();
    assert_eq!(c.icmp_errors_tcp + c.icmp_other, 5000);
    let st = s.conn_stats(id).unwrap();
    assert!(st.icmp_ignored > 0 && st.pmtu_reductions > 0 && st.icmp_soft_errors > 0);
    assert!(st.icmp_hard_errors == 0);
}

/// `close` (not `shutdown`): a peer that ACKs our FIN and goes silent is
/// dropped 60 s later with a RST (Linux tcp_fin_timeout); the app gets
/// `Closed{TimedOut}`.
#[test]
fn closed_connection_leaves_fin_wait_2() {
    let mut s = server(256);
    s.listen(80).unwrap();
    let id = open_from(&mut s, 1, 20000, 1460, 65535);
    s.close(id).unwrap();
    s.poll(ms(2));
    let fin = tx_tcp(&mut s)
        .into_iter()
        .map(|(t, _)| t)
        .find(|t| t.flags.fin())
        .expect("FIN");
    let ack = TcpRepr {
        src_port: 20000,
        dst_port: 80,
        seq: SeqNumber(1001),
        ack: fin.seq + 1,
        flags: TcpFlags::ACK,
        window: 65535,
        ..TcpRepr::default()
    };
    rx(&mut s, ms(3), &tcp_frame_b_to_a(&ack, &[]));
    assert_eq!(s.state(id), Ok(State::FinWait2));
    s.poll(ms(60_002));
    assert_eq!(s.state(id), Ok(State::FinWait2));
    s.poll(ms(60_003));
    // The ARP entry expired meanwhile: the RST follows the ARP reply.
    rx(&mut s, ms(60_004), &arp_reply_b_to_a());
    let out = tx_tcp(&mut s);
    assert_eq!(out[0].0.flags, TcpFlags::RST | TcpFlags::ACK);
    assert_eq!(
        std::iter::from_fn(|| s.next_event()).last(),
        Some(Event::Closed {
            id,
            reason: CloseReason::TimedOut
        })
    );
    assert_eq!(s.counters().fin_wait2_timeouts, 1);
    assert_eq!(s.conn_count(), 0);
}

/// Issue 9 defect 3: SYN-ACKs (cookies, beyond the backlog) to spoofed
/// on-link sources wait in the ARP queue for answers that never come. The
/// queue is bounded by frames in total (half the 64-frame TX reserve), the
/// oldest dropped and counted, so the flood holds a few dozen frames and a
/// real client is still served at once.
#[test]
fn spoofed_syn_flood_cannot_drain_the_pool_through_the_arp_queue() {
    const POOL: usize = 512;
    const SYNS: u32 = 3000;
    let mut s = server(POOL);
    s.listen(80).unwrap();
    for i in 0..SYNS {
        // 240 spoofed on-link sources (unresolved), many ports each.
        let src = std::net::Ipv4Addr::new(198, 18, 0, 10 + (i % 240) as u8);
        let syn = TcpRepr {
            src_port: 1024 + (i / 240) as u16,
            dst_port: 80,
            seq: SeqNumber(i.wrapping_mul(7919)),
            flags: TcpFlags::SYN,
            window: 64240,
            options: TcpOptions {
                mss: Some(1460),
                ..TcpOptions::default()
            },
            ..TcpRepr::default()
        };
        rx(&mut s, ms(1), &tcp_frame_ips(src, IP_A, &syn, &[]));
        s.poll(ms(1));
        s.device_mut().take_tx();
    }
    let held = s.device().live.get();
    let (_, queued) = s.arp_stats();
    let c = s.counters().clone();
    assert!(queued <= 32, "{queued} packets wait for ARP");
    assert!(held <= 64, "the flood holds {held} of {POOL} frames");
    assert!(c.syn_cookies_sent > 0);
    // Every SYN-ACK beyond the bound was dropped and counted.
    assert!(
        c.drop_arp_queue + queued as u64 >= c.syn_cookies_sent,
        "{c:?}"
    );
    assert_eq!(c.tx_no_frame, 0, "the pool ran dry");
    // A real client (B, resolved) is answered and its data flows.
    let id = open_from(&mut s, 2, 30000, 1460, 65535);
    assert_eq!(s.send(id, &[5u8; 8000]).unwrap(), 8000);
    s.poll(ms(2));
    let sent: usize = tx_tcp(&mut s)
        .iter()
        .filter(|(t, _)| t.dst_port == 30000)
        .map(|(_, d)| d.len())
        .sum();
    assert_eq!(sent, 8000);
    // Unanswered resolutions give their frames back (once the backlog's
    // half-open connections stop retransmitting their SYN-ACKs too).
    for t in 3..200 {
        s.poll(ms(t * 1000));
        s.device_mut().take_tx();
    }
    assert_eq!(s.arp_stats().1, 0);
}

/// Illegal flag sets to a listener are dropped and counted, never opened
/// (Linux discards SYN+FIN in LISTEN); an ARP packet from another MAC
/// claiming our address is counted and not learned (RFC 5227 §2.4).
#[test]
fn syn_fin_and_arp_claims_of_our_address_are_dropped() {
    let mut s = server(64);
    s.listen(80).unwrap();
    for (k, flags) in [
        TcpFlags::SYN | TcpFlags::FIN,
        TcpFlags::SYN | TcpFlags::FIN | TcpFlags::PSH | TcpFlags::URG,
    ]
    .into_iter()
    .enumerate()
    {
        let seg = TcpRepr {
            src_port: 7000 + k as u16,
            dst_port: 80,
            seq: SeqNumber(5),
            flags,
            window: 1000,
            ..TcpRepr::default()
        };
        rx(&mut s, ms(1), &tcp_frame_b_to_a(&seg, &[]));
    }
    s.poll(ms(1));
    assert!(tx_tcp(&mut s).is_empty(), "no SYN-ACK to SYN+FIN");
    assert_eq!(s.conn_count(), 0);
    assert_eq!(s.counters().drop_tcp_invalid, 2);
    let claim = arp_frame(
        xdptcp::wire::MacAddr::BROADCAST,
        xdptcp::wire::ArpRepr {
            op: xdptcp::wire::ArpOp::Request,
            sender_mac: xdptcp::wire::MacAddr([2, 0, 0, 0, 0x66, 0x66]),
            sender_ip: IP_A,
            target_mac: xdptcp::wire::MacAddr::default(),
            target_ip: IP_A,
        },
    );
    rx(&mut s, ms(2), &claim);
    assert_eq!(s.counters().arp_conflicts, 1);
    assert_eq!(s.arp_lookup(IP_A), None);
    assert!(s.device_mut().take_tx().is_empty());
}
