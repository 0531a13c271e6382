//! The stack below TCP: ARP (RFC 826), ICMP echo (RFC 792), UDP (RFC 768)
//! and the drop counters of the demux.

mod common;
use common::*;
use xdptcp::app::Event;
use xdptcp::wire::{
    ArpOp, ArpRepr, EtherType, IcmpRepr, IpProtocol, Ipv4Repr, MacAddr, TcpFlags, TcpRepr, UdpRepr,
};

#[test]
fn arp_request_for_us_is_answered_and_learned() {
    let mut s = stack_a(64);
    rx(&mut s, ms(0), &arp_request_b_for_a());
    let tx = s.device_mut().take_tx();
    assert_eq!(tx.len(), 1);
    let (e, a) = parse_arp(&tx[0]);
    assert_eq!((e.dst, e.src), (MAC_B, MAC_A));
    assert_eq!(
        a,
        ArpRepr {
            op: ArpOp::Reply,
            sender_mac: MAC_A,
            sender_ip: IP_A,
            target_mac: MAC_B,
            target_ip: IP_B,
        }
    );
    assert_eq!(tx[0].len(), 14 + 28);
    assert_eq!(s.counters().arp_replies_sent, 1);
    // RFC 826: the asker is learned because we are the target.
    assert_eq!(s.arp_lookup(IP_B), Some(MAC_B));
    // The entry expires after arp_ttl; its expiry is a deadline.
    assert_eq!(s.poll_at(), Some(ms(60_000)));
    s.poll(ms(60_000));
    assert_eq!(s.arp_lookup(IP_B), None);
    assert_eq!(s.device().live.get(), 0);
}

#[test]
fn arp_for_others_is_not_learned_but_merges() {
    let mut s = stack_a(64);
    let other = std::net::Ipv4Addr::new(198, 18, 0, 9);
    let mut req = ArpRepr {
        op: ArpOp::Request,
        sender_mac: MAC_B,
        sender_ip: IP_B,
        target_mac: MacAddr::default(),
        target_ip: other,
    };
    rx(&mut s, ms(0), &arp_frame(MacAddr::BROADCAST, req));
    assert!(s.device_mut().take_tx().is_empty());
    assert_eq!(s.arp_lookup(IP_B), None);
    assert_eq!(s.counters().arp_ignored, 1);

    // Learned once it asks for us...
    req.target_ip = IP_A;
    rx(&mut s, ms(0), &arp_frame(MacAddr::BROADCAST, req));
    assert_eq!(s.arp_lookup(IP_B), Some(MAC_B));
    // ...and then a gratuitous ARP with a new MAC updates it (merge rule).
    let mac2 = MacAddr([2, 0, 0, 0, 0, 0x22]);
    let garp = ArpRepr {
        op: ArpOp::Request,
        sender_mac: mac2,
        sender_ip: IP_B,
        target_mac: MacAddr::default(),
        target_ip: IP_B,
    };
    rx(&mut s, ms(1), &arp_frame(MacAddr::BROADCAST, garp));
    assert_eq!(s.arp_lookup(IP_B), Some(mac2));
    assert_eq!(
        s.device_mut().take_tx().len(),
        1,
        "only the reply to the request for us"
    );

    // A sender off our subnets is never learned.
    let far = ArpRepr {
        sender_ip: std::net::Ipv4Addr::new(10, 1, 1, 1),
        ..req
    };
    rx(&mut s, ms(2), &arp_frame(MacAddr::BROADCAST, far));
    assert_eq!(s.arp_lookup(far.sender_ip), None);
}

#[test]
fn arp_resolution_queues_retries_and_gives_up() {
    let mut s = stack_a(64);
    s.udp_bind(9000).unwrap();
    for i in 0..6u8 {
        s.udp_send(9000, sa(IP_B, 7), &[i; 10]).unwrap();
    }
    // One broadcast request; 4 datagrams queued (arp_queue), 2 dropped.
    let tx = s.device_mut().take_tx();
    assert_eq!(tx.len(), 1);
    let (e, a) = parse_arp(&tx[0]);
    assert_eq!((e.dst, e.src), (MacAddr::BROADCAST, MAC_A));
    assert_eq!(
        a,
        ArpRepr {
            op: ArpOp::Request,
            sender_mac: MAC_A,
            sender_ip: IP_A,
            target_mac: MacAddr::default(),
            target_ip: IP_B,
        }
    );
    assert_eq!(s.counters().drop_arp_queue, 2);
    assert_eq!(s.arp_stats(), (1, 4));
    assert_eq!(s.device().live.get(), 4);

    // Retries every arp_retry, arp_retries times, then give up.
    assert_eq!(s.poll_at(), Some(ms(1000)));
    s.poll(ms(999));
    assert!(s.device_mut().take_tx().is_empty());
    s.poll(ms(1000));
    assert_eq!(s.device_mut().take_tx().len(), 1);
    assert_eq!(s.poll_at(), Some(ms(2000)));
    s.poll(ms(2000));
    assert_eq!(s.device_mut().take_tx().len(), 1);
    s.poll(ms(3000));
    assert!(s.device_mut().take_tx().is_empty());
    let c = s.counters();
    assert_eq!(c.arp_requests_sent, 3);
    assert_eq!(c.arp_failed, 1);
    assert_eq!(c.drop_arp_failed, 4);
    assert_eq!(s.device().live.get(), 0);
    assert_eq!(s.poll_at(), None);
}

#[test]
fn arp_reply_flushes_the_queue_in_order() {
    let mut s = stack_a(64);
    s.udp_bind(9000).unwrap();
    for i in 0..3u8 {
        s.udp_send(9000, sa(IP_B, 7), &[i; 5]).unwrap();
    }
    assert_eq!(s.device_mut().take_tx().len(), 1);
    rx(&mut s, ms(10), &arp_reply_b_to_a());
    let tx = s.device_mut().take_tx();
    assert_eq!(tx.len(), 3);
    for (i, f) in tx.iter().enumerate() {
        let p = parse(f);
        assert_eq!((p.eth.dst, p.eth.src), (MAC_B, MAC_A));
        let ip = p.ip.unwrap();
        assert_eq!((ip.src, ip.dst, ip.protocol), (IP_A, IP_B, IpProtocol::Udp));
        let (u, r) = UdpRepr::parse(&p.l4, ip.src, ip.dst).unwrap();
        assert_eq!((u.src_port, u.dst_port), (9000, 7));
        assert_eq!(&p.l4[r], &[i as u8; 5]);
    }
    assert_eq!(s.arp_lookup(IP_B), Some(MAC_B));
    assert_eq!(s.arp_stats(), (1, 0));
    // Off-subnet destinations go to the gateway's MAC.
    s.udp_send(9000, sa(std::net::Ipv4Addr::new(10, 0, 0, 1), 7), b"x")
        .unwrap();
    let (_, a) = parse_arp(&s.device_mut().take_tx()[0]);
    assert_eq!(a.target_ip, IP_GW);
}

#[test]
fn ping_gets_a_byte_exact_echo_reply() {
    let mut s = stack_a(64);
    rx(&mut s, ms(0), &arp_request_b_for_a());
    s.device_mut().take_tx();
    let data: Vec<u8> = (0..56u8).collect();
    let req = IcmpRepr::EchoRequest {
        ident: 0x1234,
        seq: 7,
        data: &data,
    };
    rx(&mut s, ms(1), &icmp_frame_b_to_a(&req));
    let tx = s.device_mut().take_tx();
    assert_eq!(tx.len(), 1);

    let reply = IcmpRepr::EchoReply {
        ident: 0x1234,
        seq: 7,
        data: &data,
    };
    let mut icmp = vec![0u8; reply.buffer_len()];
    reply.emit(&mut icmp);
    let mut ip = Ipv4Repr::new(IP_A, IP_B, IpProtocol::Icmp, icmp.len());
    ip.ident = 0;
    ip.dont_frag = false;
    let mut expected = vec![0u8; 14 + 20];
    ip.emit(&mut expected[14..34]);
    xdptcp::wire::EthernetRepr {
        dst: MAC_B,
        src: MAC_A,
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut expected[..14]);
    expected.extend_from_slice(&icmp);
    assert_eq!(tx[0], expected);
    assert_eq!(s.counters().icmp_echo_replies, 1);

    // Other ICMP is counted, not answered.
    rx(&mut s, ms(2), &icmp_frame_b_to_a(&reply));
    assert!(s.device_mut().take_tx().is_empty());
    assert_eq!(s.counters().icmp_other, 1);
    assert_eq!(s.device().live.get(), 0);
}

#[test]
fn udp_bind_receive_and_echo() {
    let mut s = stack_a(64);
    rx(&mut s, ms(0), &arp_request_b_for_a());
    s.device_mut().take_tx();
    s.udp_bind(7).unwrap();
    assert_eq!(s.udp_bind(7), Err(xdptcp::stack::Error::AddrInUse));

    rx(&mut s, ms(1), &udp_frame_b_to_a(5555, 7, b"hello"));
    rx(&mut s, ms(1), &udp_frame_b_to_a(5556, 7, b"world!"));
    // One event while one is pending.
    assert_eq!(s.next_event(), Some(Event::UdpReadable { port: 7 }));
    assert_eq!(s.next_event(), None);
    // The datagrams stay in their frames.
    assert_eq!(s.device().live.get(), 2);
    let (src, pkt) = s.udp_recv(7).unwrap();
    assert_eq!(
        (src, pkt.contiguous().unwrap()),
        (sa(IP_B, 5555), &b"hello"[..])
    );
    s.udp_send(7, src, pkt.contiguous().unwrap()).unwrap();
    drop(pkt);
    let (src2, pkt2) = s.udp_recv(7).unwrap();
    assert_eq!(
        (src2, pkt2.contiguous().unwrap()),
        (sa(IP_B, 5556), &b"world!"[..])
    );
    assert!(s.udp_recv(7).is_none());
    drop(pkt2);

    let tx = s.device_mut().take_tx();
    assert_eq!(tx.len(), 1);
    let p = parse(&tx[0]);
    assert_eq!(p.eth.dst, MAC_B);
    let ip = p.ip.unwrap();
    assert_eq!((ip.src, ip.dst, ip.ttl), (IP_A, IP_B, 64));
    let (u, r) = UdpRepr::parse(&p.l4, ip.src, ip.dst).unwrap();
    assert_eq!((u.src_port, u.dst_port, &p.l4[r]), (7, 5555, &b"hello"[..]));

    // Unbound port: counted; queue overflow: counted.
    rx(&mut s, ms(2), &udp_frame_b_to_a(5555, 8, b"nobody"));
    assert_eq!(s.counters().drop_udp_no_socket, 1);
    for _ in 0..6 {
        rx(&mut s, ms(3), &udp_frame_b_to_a(5555, 7, b"x"));
    }
    assert_eq!(s.counters().drop_udp_queue, 2);
    assert_eq!(s.next_event(), Some(Event::UdpReadable { port: 7 }));
    assert_eq!(s.device().live.get(), 4);
    assert_eq!(s.counters().udp_rx, 6);
    s.udp_unbind(7).unwrap();
    assert_eq!(s.device().live.get(), 0, "queued datagrams released");
    assert_eq!(s.udp_unbind(7), Err(xdptcp::stack::Error::InvalidState));
}

fn syn_b_to_a() -> TcpRepr {
    TcpRepr {
        src_port: 5555,
        dst_port: 80,
        seq: xdptcp::wire::SeqNumber(1000),
        flags: TcpFlags::SYN,
        window: 1000,
        ..TcpRepr::default()
    }
}

#[test]
fn malformed_frames_are_counted_by_reason() {
    let mut s = stack_a(64);
    let good = tcp_frame_b_to_a(&syn_b_to_a(), &[]);

    // IP header checksum.
    let mut f = good.clone();
    f[14 + 10] ^= 0xff;
    rx(&mut s, ms(0), &f);
    assert_eq!(s.counters().drop_bad_checksum, 1);
    // TCP checksum.
    let mut f = good.clone();
    f[14 + 20 + 16] ^= 0x01;
    rx(&mut s, ms(0), &f);
    assert_eq!(s.counters().drop_bad_checksum, 2);
    // Truncated: cut inside the TCP header (IP total length says more).
    rx(&mut s, ms(0), &good[..14 + 20 + 10]);
    assert_eq!(s.counters().drop_truncated, 1);
    // Truncated Ethernet.
    rx(&mut s, ms(0), &good[..10]);
    assert_eq!(s.counters().drop_truncated, 2);
    // Fragment: MF set (fix the header checksum): held for reassembly
    // (tests/stack_frag.rs), not passed to TCP.
    let t = tcp_segment(IP_B, IP_A, &syn_b_to_a(), &[]);
    let mut ip = vec![0u8; 20 + t.len()];
    Ipv4Repr::new(IP_B, IP_A, IpProtocol::Tcp, t.len()).emit(&mut ip[..20]);
    ip[20..].copy_from_slice(&t);
    ip[6] |= 0x20;
    ip[10] = 0;
    ip[11] = 0;
    let c = xdptcp::wire::checksum::checksum(&ip[..20]);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    rx(&mut s, ms(0), &eth(MAC_A, MAC_B, EtherType::Ipv4, &ip));
    assert_eq!(s.counters().frag_rx, 1);
    if t.len().is_multiple_of(8) {
        assert_eq!(s.frag_stats(), (1, 1));
    } else {
        // RFC 791: a fragment with MF set carries a multiple of 8 bytes.
        assert_eq!(s.counters().drop_frag_bad, 1);
    }
    // Bad version.
    let mut f = good.clone();
    f[14] = 0x65;
    rx(&mut s, ms(0), &f);
    assert_eq!(s.counters().drop_bad_version, 1);
    // Other MAC; IPv4 in a broadcast frame; other IP; bad source; ethertype.
    let mut f = good.clone();
    f[0] = 0x04;
    rx(&mut s, ms(0), &f);
    let mut f = good.clone();
    f[..6].copy_from_slice(&[0xff; 6]);
    rx(&mut s, ms(0), &f);
    rx(
        &mut s,
        ms(0),
        &tcp_frame_ips(IP_B, IP_B, &syn_b_to_a(), &[]),
    );
    assert_eq!(s.counters().drop_not_for_us, 3);
    let bcast = std::net::Ipv4Addr::new(198, 18, 0, 255);
    rx(
        &mut s,
        ms(0),
        &tcp_frame_ips(bcast, IP_A, &syn_b_to_a(), &[]),
    );
    assert_eq!(s.counters().drop_bad_source, 1);
    rx(
        &mut s,
        ms(0),
        &eth(MAC_A, MAC_B, EtherType::Other(0x86dd), &[0; 40]),
    );
    assert_eq!(s.counters().drop_unsupported, 1);

    assert!(s.device_mut().take_tx().is_empty());
    assert_eq!(s.counters().rx_packets, 11);
    assert_eq!(s.counters().drops(), 11);
    assert_eq!(s.device().live.get(), 0);
}

#[test]
fn arp_neighbour_in_use_is_probed_by_unicast_and_never_stalls_traffic() {
    // RFC 1122 §2.3.2.1 / RFC 4861 §7.3: learned from B's request, the
    // entry is STALE; its first use starts DELAY (5 s), then unicast probes
    // to the cached MAC; B's reply makes it REACHABLE again. Packets keep
    // flowing to the cached MAC throughout.
    let mut s = stack_a(64);
    rx(&mut s, ms(0), &arp_request_b_for_a());
    s.device_mut().take_tx();
    s.udp_bind(9000).unwrap();
    let send = |s: &mut xdptcp::stack::Stack<TestDevice>, t: u64| {
        s.poll(ms(t));
        s.udp_send(9000, sa(IP_B, 7), b"x").unwrap();
        s.device_mut().take_tx()
    };
    let tx = send(&mut s, 1_000);
    assert_eq!(tx.len(), 1, "sent at once to the STALE entry's MAC");
    assert_eq!(parse(&tx[0]).eth.dst, MAC_B);
    assert_eq!(send(&mut s, 5_999).len(), 1, "DELAY: no probe yet");
    let tx = send(&mut s, 6_000);
    assert_eq!(tx.len(), 2, "a unicast probe, and the datagram right away");
    let (e, req) = parse_arp(&tx[0]);
    assert_eq!(
        (e.dst, req.op, req.target_ip),
        (MAC_B, ArpOp::Request, IP_B)
    );
    assert_eq!(parse(&tx[1]).eth.dst, MAC_B);
    rx(&mut s, ms(6_100), &arp_reply_b_to_a());
    // REACHABLE for at least 15 s: no probe while it lasts.
    for t in (7_000..21_000).step_by(1_000) {
        assert_eq!(send(&mut s, t).len(), 1, "at {t} ms");
    }
    assert_eq!(s.counters().arp_probes_sent, 1);
    assert_eq!(s.counters().arp_requests_sent, 1);
}

#[test]
fn arp_neighbour_that_stops_answering_is_resolved_again_by_broadcast() {
    let mut s = stack_a(64);
    rx(&mut s, ms(0), &arp_request_b_for_a());
    s.device_mut().take_tx();
    s.udp_bind(9000).unwrap();
    let mut probes = 0;
    let mut broadcast_at = None;
    for t in (0..20_000).step_by(100) {
        s.poll(ms(t));
        let _ = s.udp_send(9000, sa(IP_B, 7), b"x");
        for f in s.device_mut().take_tx() {
            if parse(&f).eth.ethertype != EtherType::Arp {
                continue;
            }
            let (e, _) = parse_arp(&f);
            if e.dst == MAC_B {
                probes += 1;
            } else if e.dst == MacAddr::BROADCAST && broadcast_at.is_none() {
                broadcast_at = Some(t);
            }
        }
    }
    // DELAY 5 s, then 3 unicast probes 1 s apart (arp_retry here), then
    // the entry is dropped and the next datagram resolves by broadcast.
    assert_eq!(probes, 3);
    assert_eq!(broadcast_at, Some(8_000));
    assert_eq!(s.counters().arp_unreachable, 1);
}

#[test]
fn udp_to_unbound_port_gets_rate_limited_port_unreachable() {
    let mut s = stack_a(64);
    rx(&mut s, ms(0), &arp_request_b_for_a());
    s.device_mut().take_tx();
    let dgram = udp_frame_b_to_a(5555, 8, b"nobody home");
    rx(&mut s, ms(1), &dgram);
    let tx = s.device_mut().take_tx();
    assert_eq!(tx.len(), 1);
    let p = parse(&tx[0]);
    assert_eq!(p.eth.dst, MAC_B);
    let ip = p.ip.unwrap();
    assert_eq!(
        (ip.src, ip.dst, ip.protocol),
        (IP_A, IP_B, IpProtocol::Icmp)
    );
    // RFC 792: type 3 code 3, unused 0, the IP header + 64 bits of data.
    assert_eq!(&p.l4[..2], &[3, 3]);
    assert_eq!(&p.l4[4..8], &[0, 0, 0, 0]);
    assert_eq!(&p.l4[8..], &dgram[14..14 + 20 + 8]);
    assert!(matches!(
        IcmpRepr::parse(&p.l4),
        Ok(IcmpRepr::Other {
            icmp_type: 3,
            code: 3
        })
    ));
    // A burst is limited to 10; tokens come back over time.
    for _ in 0..15 {
        rx(&mut s, ms(2), &dgram);
    }
    assert_eq!(s.device_mut().take_tx().len(), 9);
    assert_eq!(s.counters().icmp_rate_limited, 6);
    rx(&mut s, ms(22), &dgram);
    rx(&mut s, ms(22), &dgram);
    rx(&mut s, ms(22), &dgram);
    assert_eq!(s.device_mut().take_tx().len(), 2);
    assert_eq!(s.counters().icmp_unreachables_sent, 12);
    assert_eq!(s.counters().drop_udp_no_socket, 19);
    assert_eq!(s.device().live.get(), 0);
}
