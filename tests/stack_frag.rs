//! IPv4 fragments at the stack (RFC 791 §3.2, RFC 1122 §3.3.2): a UDP
//! datagram in fragments is delivered zero-copy and a large one is sent in
//! fragments; a TCP segment in fragments is accepted as Linux does;
//! incomplete datagrams time out with an ICMP time exceeded; a flood of
//! fragments that never complete stays within its frames.

mod common;
use common::*;
use xdptcp::app::Event;
use xdptcp::io::Frame;
use xdptcp::stack::Stack;
use xdptcp::wire::{
    EtherType, FragInfo, IpProtocol, Ipv4Repr, SeqNumber, TcpFlags, TcpOptions, TcpRepr, UdpRepr,
};

/// Stack A with B's MAC learned.
fn server(capacity: usize) -> Stack<TestDevice> {
    let mut s = stack_a(capacity);
    rx(&mut s, ms(0), &arp_request_b_for_a());
    s.device_mut().take_tx();
    s
}

/// The IPv4 `payload` (a whole transport datagram) from B to A cut into
/// Ethernet frames of `chunk` payload bytes each (a multiple of 8).
fn fragments(ident: u16, protocol: IpProtocol, payload: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    payload
        .chunks(chunk)
        .enumerate()
        .map(|(k, piece)| {
            let mut ip = ipv4(IP_B, IP_A, protocol, piece);
            ip[4..6].copy_from_slice(&ident.to_be_bytes());
            let more = (k + 1) * chunk < payload.len();
            Ipv4Repr::set_fragment_in_place(&mut ip, k * chunk, more);
            eth(MAC_A, MAC_B, EtherType::Ipv4, &ip)
        })
        .collect()
}

fn udp_datagram(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; 8 + payload.len()];
    d[8..].copy_from_slice(payload);
    UdpRepr { src_port, dst_port }.emit(&mut d, IP_B, IP_A);
    d
}

fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 31 % 256) as u8).collect()
}

#[test]
fn udp_in_fragments_is_delivered_and_echoed_in_fragments() {
    let mut s = server(64);
    s.udp_bind(7).unwrap();
    let data = pattern(3000);
    let mut frags = fragments(0x1234, IpProtocol::Udp, &udp_datagram(5000, 7, &data), 1480);
    frags.swap(0, 2); // The last first.
    for f in &frags {
        rx(&mut s, ms(1), f);
    }
    assert_eq!(s.next_event(), Some(Event::UdpReadable { port: 7 }));
    let (src, d) = s.udp_recv(7).unwrap();
    assert_eq!(src, sa(IP_B, 5000));
    assert_eq!((d.len(), d.frames()), (3000, 3));
    assert!(d.contiguous().is_none(), "zero-copy: still in three frames");
    let mut got = Vec::new();
    d.copy_to(&mut got);
    assert_eq!(got, data);
    let c = s.counters();
    assert_eq!((c.frag_rx, c.frag_reassembled, c.udp_rx), (3, 1, 1));
    drop(d);
    assert_eq!(s.device().live.get(), 0, "every frame back");

    // Echo it: three fragments of one datagram, DF clear, same ident.
    s.udp_send(7, src, &got).unwrap();
    let tx = s.device_mut().take_tx();
    assert_eq!(tx.len(), 3);
    let mut whole = vec![0u8; 8 + 3000];
    let mut idents = Vec::new();
    let mut seen = 0;
    for f in &tx {
        assert!(f.len() <= 1514);
        let (ip, hl, frag) = Ipv4Repr::parse_fragment(&f[14..]).expect("ipv4");
        let FragInfo { offset, more } = frag.expect("a fragment");
        assert!(!ip.dont_frag);
        assert_eq!(more, offset + ip.payload_len < whole.len());
        whole[offset..offset + ip.payload_len]
            .copy_from_slice(&f[14 + hl..14 + hl + ip.payload_len]);
        seen += ip.payload_len;
        idents.push(ip.ident);
    }
    assert_eq!(seen, whole.len());
    assert!(idents.iter().all(|&i| i == idents[0]));
    let (u, range) = UdpRepr::parse(&whole, IP_A, IP_B).expect("checksum over the whole datagram");
    assert_eq!((u.src_port, u.dst_port), (7, 5000));
    assert_eq!(&whole[range], &data[..]);
    assert_eq!(s.counters().frag_tx, 3);
}

#[test]
fn udp_in_fragments_with_a_bad_checksum_is_dropped() {
    let mut s = server(64);
    s.udp_bind(7).unwrap();
    let mut d = udp_datagram(5000, 7, &pattern(2000));
    d[1500] ^= 0x40;
    for f in fragments(9, IpProtocol::Udp, &d, 1480) {
        rx(&mut s, ms(1), &f);
    }
    assert!(s.udp_recv(7).is_none());
    assert_eq!(s.counters().drop_bad_checksum, 1);
    assert_eq!(s.device().live.get(), 0);
}

#[test]
fn tcp_segment_in_fragments_is_accepted() {
    let mut s = server(64);
    s.listen(80).unwrap();
    let syn = TcpRepr {
        src_port: 4000,
        dst_port: 80,
        seq: SeqNumber(1000),
        flags: TcpFlags::SYN,
        window: 64240,
        options: TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        },
        ..TcpRepr::default()
    };
    rx(&mut s, ms(1), &tcp_frame_b_to_a(&syn, &[]));
    s.poll(ms(1));
    let synack = s
        .device_mut()
        .take_tx()
        .iter()
        .map(|f| parse_tcp(f).2)
        .find(|t| t.flags.syn())
        .expect("SYN-ACK");
    rx(
        &mut s,
        ms(2),
        &tcp_frame_b_to_a(&ack_of_synack(4000, &synack, 1), &[]),
    );
    let id = loop {
        match s.next_event() {
            Some(Event::Accepted { id, .. }) => break id,
            Some(_) => {}
            None => panic!("not accepted"),
        }
    };
    let data = pattern(1400);
    let seg = TcpRepr {
        flags: TcpFlags::ACK | TcpFlags::PSH,
        ..ack_of_synack(4000, &synack, 2)
    };
    let frags = fragments(
        77,
        IpProtocol::Tcp,
        &tcp_segment(IP_B, IP_A, &seg, &data),
        512,
    );
    assert_eq!(frags.len(), 3);
    for f in frags.iter().rev() {
        rx(&mut s, ms(3), f);
    }
    let mut buf = vec![0u8; 4096];
    let n = s.recv(id, &mut buf).unwrap();
    assert_eq!(&buf[..n], &data[..]);
    assert_eq!(s.counters().frag_reassembled, 1);
}

/// With several workers (flows logged for their directory), a TCP segment
/// that came in fragments for a flow this stack does not hold is not
/// answered with a reset: fragments are steered by addresses only, and the
/// flow may be another worker's. The whole datagram goes to the runtime as
/// one unfragmented frame (`take_strays`), which hands it to the owner or,
/// as here, back to the same stack, where it opens the connection.
#[test]
fn tcp_in_fragments_of_an_unknown_flow_goes_to_the_runtime() {
    let mut s = server(64);
    s.listen(80).unwrap();
    s.log_flows();
    let syn = TcpRepr {
        src_port: 4001,
        dst_port: 80,
        seq: SeqNumber(5000),
        flags: TcpFlags::SYN,
        window: 64240,
        options: TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        },
        ..TcpRepr::default()
    };
    // A SYN with 40 bytes of data (TCP Fast Open style), cut in two.
    let frags = fragments(
        9,
        IpProtocol::Tcp,
        &tcp_segment(IP_B, IP_A, &syn, &pattern(40)),
        32,
    );
    assert_eq!(frags.len(), 2);
    for f in &frags {
        rx(&mut s, ms(1), f);
    }
    s.poll(ms(1));
    assert!(s.device_mut().take_tx().is_empty(), "no answer from here");
    assert_eq!(s.counters().frag_strays, 1);
    assert_eq!(s.counters().drop_no_listener, 0);
    let strays = s.take_strays();
    assert_eq!(strays.len(), 1);
    assert!(s.take_strays().is_empty());
    let (frame, len) = strays.into_iter().next().unwrap();
    // One unfragmented IPv4 packet: the owner's receive path takes it whole.
    let p = parse(&frame.buf()[..len]);
    assert_eq!(p.ip.unwrap().src, IP_B);
    s.receive(ms(2), frame, len);
    s.poll(ms(2));
    let synack = s
        .device_mut()
        .take_tx()
        .iter()
        .map(|f| parse_tcp(f).2)
        .find(|t| t.flags.syn())
        .expect("SYN-ACK once the stray is given back");
    assert_eq!(synack.ack, SeqNumber(5001));
    assert_eq!(s.counters().frag_strays, 1, "given back, not a stray again");
}

#[test]
fn an_incomplete_datagram_times_out_with_time_exceeded() {
    let mut s = server(64);
    s.udp_bind(7).unwrap();
    let frags = fragments(
        5,
        IpProtocol::Udp,
        &udp_datagram(5000, 7, &pattern(3000)),
        1480,
    );
    rx(&mut s, ms(0), &frags[0]);
    rx(&mut s, ms(0), &frags[2]);
    assert_eq!(s.frag_stats(), (1, 2));
    assert_eq!(s.poll_at(), Some(ms(30_000)));
    s.poll(ms(29_999));
    assert!(s.device_mut().take_tx().is_empty());
    s.poll(ms(30_000));
    let tx = s.device_mut().take_tx();
    assert_eq!(tx.len(), 1);
    let p = parse(&tx[0]);
    assert_eq!(p.ip.unwrap().dst, IP_B);
    // Type 11 code 1, quoting fragment zero's header and 8 bytes.
    assert_eq!(&p.l4[..2], &[11, 1]);
    assert_eq!(&p.l4[8..8 + 28], &frags[0][14..14 + 28]);
    let c = s.counters();
    assert_eq!((c.drop_frag_timeout, c.frag_time_exceeded_sent), (1, 1));
    assert_eq!(s.frag_stats(), (0, 0));
    assert_eq!(s.device().live.get(), 0);
}

#[test]
fn a_flood_of_fragments_that_never_complete_stays_bounded() {
    let mut s = server(4096);
    s.udp_bind(7).unwrap();
    // 5,000 datagrams, each missing its last fragment, some overlapping.
    for id in 0..5000u16 {
        let frags = fragments(
            id,
            IpProtocol::Udp,
            &udp_datagram(5000, 7, &pattern(3000)),
            1480,
        );
        rx(&mut s, ms(1), &frags[0]);
        if id % 10 == 0 {
            // An overlapping copy of fragment 1, shifted by 8 bytes.
            let mut f = frags[1].clone();
            Ipv4Repr::set_fragment_in_place(&mut f[14..], 1472, true);
            rx(&mut s, ms(1), &f);
        } else {
            rx(&mut s, ms(1), &frags[1]);
        }
        let (_, frames) = s.frag_stats();
        assert!(frames <= 64, "{frames} frames held");
        assert!(s.device().live.get() <= 64);
    }
    let c = s.counters();
    assert_eq!(c.drop_frag_overlap, 500);
    assert!(c.drop_frag_evicted >= 4400, "{c:?}");
    assert!(s.udp_recv(7).is_none());
    // The service goes on: a whole datagram still arrives.
    for f in fragments(
        9999,
        IpProtocol::Udp,
        &udp_datagram(5000, 7, &pattern(2000)),
        1480,
    ) {
        rx(&mut s, ms(2), &f);
    }
    assert_eq!(s.udp_recv(7).map(|(_, d)| d.len()), Some(2000));
    s.poll(ms(60_000));
    assert_eq!(s.frag_stats(), (0, 0));
}
