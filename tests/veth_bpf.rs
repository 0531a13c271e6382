//! The XDP program on crafted packets with BPF_PROG_TEST_RUN: no NIC, no
//! socket in XSKMAP, so "ours" shows up as XDP_PASS with `no_socket`
//! counted (bpf_redirect_map falls back to the action in its flags).

mod veth_common;
use veth_common as common;

use core::net::Ipv4Addr;
use xdptcp::io::xdp::prog::{XDP_PASS, XDP_REDIRECT};
use xdptcp::io::xdp::{XdpCounters, XdpProgram};

const OURS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const KERNEL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

fn eth(ethertype: u16) -> Vec<u8> {
    let mut p = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    p.extend_from_slice(&ethertype.to_be_bytes());
    p
}

fn ipv4(dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
    let mut p = eth(0x0800);
    let total = (20 + l4.len()) as u16;
    p.extend_from_slice(&[0x45, 0]);
    p.extend_from_slice(&total.to_be_bytes());
    p.extend_from_slice(&[0, 1, 0x40, 0, 64, proto, 0, 0]);
    p.extend_from_slice(&PEER.octets());
    p.extend_from_slice(&dst.octets());
    p.extend_from_slice(l4);
    p
}

fn tcp_syn() -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&40000u16.to_be_bytes());
    t[2..4].copy_from_slice(&7u16.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t
}

fn arp(oper: u16, target: Ipv4Addr) -> Vec<u8> {
    let mut p = eth(0x0806);
    p.extend_from_slice(&[0, 1, 0x08, 0, 6, 4]);
    p.extend_from_slice(&oper.to_be_bytes());
    p.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    p.extend_from_slice(&PEER.octets());
    p.extend_from_slice(&[0; 6]);
    p.extend_from_slice(&target.octets());
    p
}

fn pad(mut p: Vec<u8>) -> Vec<u8> {
    // Ethernet minimum frame (without FCS); short frames are padded on the wire.
    if p.len() < 60 {
        p.resize(60, 0);
    }
    p
}

#[test]
fn xdp_program_steers_exactly_our_packets() {
    if !common::require(
        common::is_root(),
        "xdp_program_steers_exactly_our_packets",
        "needs root for BPF",
    ) {
        return;
    }
    let prog = match XdpProgram::load() {
        Ok(p) => p,
        Err(e) => {
            common::require(
                false,
                "xdp_program_steers_exactly_our_packets",
                &format!("cannot load BPF: {e}"),
            );
            return;
        }
    };
    prog.add_local_addr(OURS).unwrap();
    let mut expect = XdpCounters::default();
    let mut run = |name: &str, pkt: Vec<u8>, field: fn(&mut XdpCounters) -> &mut u64| {
        let act = prog
            .test_run(&pkt)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // Nothing is in XSKMAP: ours falls back to XDP_PASS, never redirects.
        assert_eq!(act, XDP_PASS, "{name}");
        assert_ne!(act, XDP_REDIRECT, "{name}");
        *field(&mut expect) += 1;
        assert_eq!(prog.counters(), expect, "{name}");
    };
    // Ours: IPv4 to our address (TCP, UDP, ICMP, fragments), ARP for it.
    run("tcp to us", ipv4(OURS, 6, &tcp_syn()), |c| &mut c.no_socket);
    run(
        "udp to us",
        pad(ipv4(OURS, 17, &[0, 53, 0, 7, 0, 8, 0, 0])),
        |c| &mut c.no_socket,
    );
    run(
        "icmp to us",
        pad(ipv4(OURS, 1, &[8, 0, 0, 0, 0, 1, 0, 1])),
        |c| &mut c.no_socket,
    );
    run("arp request for us", pad(arp(1, OURS)), |c| {
        &mut c.no_socket
    });
    run("arp reply for us", pad(arp(2, OURS)), |c| &mut c.no_socket);
    let mut frag = ipv4(OURS, 6, &[0u8; 8]);
    frag[20] = 0x00; // clear DF, set fragment offset 185 (non-first fragment)
    frag[21] = 185;
    run("non-first fragment to us", pad(frag), |c| &mut c.no_socket);
    // A first fragment whose TCP header is cut short (8 bytes): the stack
    // reassembles it, so it is not malformed here.
    let mut first = ipv4(OURS, 6, &[0u8; 8]);
    first[20] = 0x20; // MF, offset 0
    first[21] = 0;
    run(
        "first fragment with a partial TCP header",
        pad(first),
        |c| &mut c.no_socket,
    );
    // The kernel's: other addresses, other ARP targets, IPv6, other ethertypes.
    run("tcp to the kernel", ipv4(KERNEL, 6, &tcp_syn()), |c| {
        &mut c.passed
    });
    run(
        "tcp to a broadcast",
        ipv4(Ipv4Addr::new(198, 18, 0, 255), 6, &tcp_syn()),
        |c| &mut c.passed,
    );
    run("arp for the kernel", pad(arp(1, KERNEL)), |c| &mut c.passed);
    run("arp with a bad opcode", pad(arp(3, OURS)), |c| {
        &mut c.passed
    });
    let mut v6 = eth(0x86dd);
    v6.extend_from_slice(&[0x60; 40]);
    run("ipv6", v6, |c| &mut c.passed);
    run("lldp", pad(eth(0x88cc)), |c| &mut c.passed);
    // Malformed: truncated or invalid headers go to the kernel, counted.
    let mut bad_ihl = ipv4(OURS, 6, &tcp_syn());
    bad_ihl[14] = 0x44;
    run("ihl 4", bad_ihl, |c| &mut c.malformed);
    let mut v5 = ipv4(OURS, 6, &tcp_syn());
    v5[14] = 0x55;
    run("ip version 5", v5, |c| &mut c.malformed);
    let mut long_ihl = ipv4(OURS, 6, &[]);
    long_ihl[14] = 0x4f; // 60-byte header in a 34-byte packet
    run("ihl past the end", long_ihl, |c| &mut c.malformed);
    run(
        "truncated tcp header",
        ipv4(OURS, 6, &tcp_syn()[..12]),
        |c| &mut c.malformed,
    );
    let mut doff = tcp_syn();
    doff[12] = 4 << 4;
    run("tcp data offset 4", ipv4(OURS, 6, &doff), |c| {
        &mut c.malformed
    });
    run("truncated udp header", ipv4(OURS, 17, &[0, 53, 0]), |c| {
        &mut c.malformed
    });
    let mut short_arp = arp(1, OURS);
    short_arp.truncate(30);
    run("truncated arp", short_arp, |c| &mut c.malformed);
    run(
        "truncated ipv4 header",
        eth(0x0800).into_iter().chain([0x45, 0, 0]).collect(),
        |c| &mut c.malformed,
    );
}
