//! A small in-test device (a counted pool of heap frames that captures what
//! is transmitted) and packet builders/parsers on top of the wire emitters.
#![allow(dead_code)]

pub mod sim;

use std::cell::Cell;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::rc::Rc;
use std::time::Duration;
use xdptcp::io::{Device, Frame};
use xdptcp::stack::{Ipv4Cidr, Stack, StackConfig};
use xdptcp::tcp::TcpRepr;
use xdptcp::time::Instant;
use xdptcp::wire::{
    ArpOp, ArpRepr, EtherType, EthernetRepr, IcmpRepr, IpProtocol, Ipv4Repr, MacAddr, UdpRepr,
};

pub const FRAME_SIZE: usize = 2048;

/// A heap frame; `live` counts frames not yet dropped.
pub struct TestFrame {
    pub buf: Box<[u8]>,
    live: Rc<Cell<usize>>,
}

impl TestFrame {
    pub fn from_bytes(bytes: &[u8], live: &Rc<Cell<usize>>) -> TestFrame {
        let mut buf = vec![0u8; FRAME_SIZE.max(bytes.len())].into_boxed_slice();
        buf[..bytes.len()].copy_from_slice(bytes);
        live.set(live.get() + 1);
        TestFrame {
            buf,
            live: live.clone(),
        }
    }
}

impl Drop for TestFrame {
    fn drop(&mut self) {
        self.live.set(self.live.get() - 1);
    }
}

impl Frame for TestFrame {
    fn buf(&self) -> &[u8] {
        &self.buf
    }
    fn buf_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

/// Frames come from a pool of `capacity`; transmitted packets are copied
/// into `tx`.
pub struct TestDevice {
    pub live: Rc<Cell<usize>>,
    pub capacity: usize,
    pub tx: Vec<Vec<u8>>,
    /// Refuse transmissions (ring full).
    pub refuse: bool,
    /// Packets sent with `transmit_ref` (headers written in place).
    pub ref_tx: usize,
    /// Devices with the same `Some` pool take each other's frames
    /// (`Device::frame_pool_id`, as one UMEM): see [`TestDevice::shared`].
    pub pool: Option<usize>,
}

impl TestDevice {
    pub fn new(capacity: usize) -> Self {
        TestDevice {
            live: Rc::new(Cell::new(0)),
            capacity,
            tx: Vec::new(),
            refuse: false,
            ref_tx: 0,
            pool: None,
        }
    }
    /// A device of pool `pool` whose frames `live` counts with those of
    /// the pool's other devices (as workers sharing one UMEM).
    pub fn shared(capacity: usize, live: &Rc<Cell<usize>>, pool: usize) -> Self {
        TestDevice {
            live: live.clone(),
            pool: Some(pool),
            ..TestDevice::new(capacity)
        }
    }
    pub fn frame(&self, bytes: &[u8]) -> TestFrame {
        TestFrame::from_bytes(bytes, &self.live)
    }
    pub fn take_tx(&mut self) -> Vec<Vec<u8>> {
        std::mem::take(&mut self.tx)
    }
}

impl Device for TestDevice {
    type Frame = TestFrame;
    fn alloc(&mut self) -> Option<TestFrame> {
        if self.live.get() >= self.capacity {
            return None;
        }
        Some(TestFrame::from_bytes(&[], &self.live))
    }
    fn transmit(&mut self, frame: TestFrame, start: usize, end: usize) -> bool {
        if self.refuse {
            return false;
        }
        self.tx.push(frame.buf[start..end].to_vec());
        true
    }
    fn transmit_ref(&mut self, frame: &mut TestFrame, start: usize, end: usize) -> bool {
        if self.refuse {
            return false;
        }
        self.ref_tx += 1;
        self.tx.push(frame.buf[start..end].to_vec());
        true
    }
    fn mtu(&self) -> usize {
        1500
    }
    fn frame_pool_id(&self) -> Option<usize> {
        self.pool
    }
}

pub const MAC_A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
pub const MAC_B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);
pub const IP_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const IP_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub const IP_GW: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);

pub fn config(mac: MacAddr, ip: Ipv4Addr) -> StackConfig {
    let addr = Ipv4Cidr {
        addr: ip,
        prefix: 24,
    };
    StackConfig {
        gateway: Some(IP_GW),
        max_conns: 64,
        syn_backlog: 4,
        accept_backlog: 16,
        arp_stale: Duration::from_secs(60),
        arp_retry: Duration::from_secs(1),
        arp_retries: 2,
        arp_queue: 4,
        udp_queue: 4,
        ephemeral_ports: (40000, 40009),
        ..StackConfig::new(mac, addr, [42; 16])
    }
}

/// Stack A (198.18.0.1) with a counted device.
pub fn stack_a(capacity: usize) -> Stack<TestDevice> {
    Stack::new(
        config(MAC_A, IP_A),
        TestDevice::new(capacity),
        Instant::ZERO,
    )
}

pub fn rx(s: &mut Stack<TestDevice>, now: Instant, bytes: &[u8]) {
    let f = s.device().frame(bytes);
    s.receive(now, f, bytes.len());
}

pub fn eth(dst: MacAddr, src: MacAddr, ethertype: EtherType, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 14 + payload.len()];
    EthernetRepr {
        dst,
        src,
        ethertype,
    }
    .emit(&mut v[..14]);
    v[14..].copy_from_slice(payload);
    v
}

pub fn arp_frame(eth_dst: MacAddr, arp: ArpRepr) -> Vec<u8> {
    let mut p = [0u8; ArpRepr::LEN];
    arp.emit(&mut p);
    eth(eth_dst, arp.sender_mac, EtherType::Arp, &p)
}

/// B's ARP reply to A's request for B (resolves B at A).
pub fn arp_reply_b_to_a() -> Vec<u8> {
    arp_frame(
        MAC_A,
        ArpRepr {
            op: ArpOp::Reply,
            sender_mac: MAC_B,
            sender_ip: IP_B,
            target_mac: MAC_A,
            target_ip: IP_A,
        },
    )
}

/// B's handshake-completing ACK for A's SYN-ACK: B's ISN was 1000, and B
/// echoes A's timestamp (if any) with TSval `tsval`.
pub fn ack_of_synack(port: u16, synack: &TcpRepr, tsval: u32) -> TcpRepr {
    TcpRepr {
        src_port: port,
        dst_port: synack.src_port,
        seq: xdptcp::wire::SeqNumber(1001),
        ack: synack.seq + 1,
        flags: xdptcp::wire::TcpFlags::ACK,
        window: 502,
        options: xdptcp::wire::TcpOptions {
            timestamps: synack.options.timestamps.map(|(v, _)| (tsval, v)),
            ..xdptcp::wire::TcpOptions::default()
        },
        ..TcpRepr::default()
    }
}

/// An ARP request from B asking for A (teaches A B's MAC).
pub fn arp_request_b_for_a() -> Vec<u8> {
    arp_frame(
        MacAddr::BROADCAST,
        ArpRepr {
            op: ArpOp::Request,
            sender_mac: MAC_B,
            sender_ip: IP_B,
            target_mac: MacAddr::default(),
            target_ip: IP_A,
        },
    )
}

pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![0u8; 20 + payload.len()];
    let mut ip = Ipv4Repr::new(src, dst, protocol, payload.len());
    ip.ident = 7;
    ip.emit(&mut v[..20]);
    v[20..].copy_from_slice(payload);
    v
}

pub fn tcp_segment(src: Ipv4Addr, dst: Ipv4Addr, seg: &TcpRepr, payload: &[u8]) -> Vec<u8> {
    let h = seg.header_len();
    let mut v = vec![0u8; h + payload.len()];
    v[h..].copy_from_slice(payload);
    seg.emit(&mut v, src, dst);
    v
}

/// A full Ethernet frame from B's MAC to A's carrying `seg` from IP `src`
/// to IP `dst` (other than B and A to test address checks).
pub fn tcp_frame_ips(src: Ipv4Addr, dst: Ipv4Addr, seg: &TcpRepr, payload: &[u8]) -> Vec<u8> {
    let t = tcp_segment(src, dst, seg, payload);
    eth(
        MAC_A,
        MAC_B,
        EtherType::Ipv4,
        &ipv4(src, dst, IpProtocol::Tcp, &t),
    )
}

/// A full Ethernet frame B -> A carrying `seg`.
pub fn tcp_frame_b_to_a(seg: &TcpRepr, payload: &[u8]) -> Vec<u8> {
    tcp_frame_ips(IP_B, IP_A, seg, payload)
}

pub fn udp_frame_b_to_a(src_port: u16, dst_port: u16, payload: &[u8]) -> Vec<u8> {
    let mut d = vec![0u8; 8 + payload.len()];
    d[8..].copy_from_slice(payload);
    UdpRepr { src_port, dst_port }.emit(&mut d, IP_B, IP_A);
    eth(
        MAC_A,
        MAC_B,
        EtherType::Ipv4,
        &ipv4(IP_B, IP_A, IpProtocol::Udp, &d),
    )
}

pub fn icmp_frame_b_to_a(icmp: &IcmpRepr) -> Vec<u8> {
    let mut d = vec![0u8; icmp.buffer_len()];
    icmp.emit(&mut d);
    eth(
        MAC_A,
        MAC_B,
        EtherType::Ipv4,
        &ipv4(IP_B, IP_A, IpProtocol::Icmp, &d),
    )
}

/// A transmitted frame taken apart.
pub struct Parsed {
    pub eth: EthernetRepr,
    pub ip: Option<Ipv4Repr>,
    /// The IPv4 payload.
    pub l4: Vec<u8>,
}

pub fn parse(frame: &[u8]) -> Parsed {
    let eth = EthernetRepr::parse(frame).expect("ethernet");
    if eth.ethertype != EtherType::Ipv4 {
        return Parsed {
            eth,
            ip: None,
            l4: frame[14..].to_vec(),
        };
    }
    let (ip, hl) = Ipv4Repr::parse(&frame[14..]).expect("ipv4");
    let l4 = frame[14 + hl..14 + hl + ip.payload_len].to_vec();
    Parsed {
        eth,
        ip: Some(ip),
        l4,
    }
}

/// A transmitted TCP frame: (eth, ip, tcp, payload), checksums verified.
pub fn parse_tcp(frame: &[u8]) -> (EthernetRepr, Ipv4Repr, TcpRepr, Vec<u8>) {
    let p = parse(frame);
    let ip = p.ip.expect("ip");
    assert_eq!(ip.protocol, IpProtocol::Tcp);
    let (seg, off) = TcpRepr::parse(&p.l4, ip.src, ip.dst).expect("tcp");
    (p.eth, ip, seg, p.l4[off..].to_vec())
}

pub fn parse_arp(frame: &[u8]) -> (EthernetRepr, ArpRepr) {
    let p = parse(frame);
    assert_eq!(p.eth.ethertype, EtherType::Arp);
    (p.eth, ArpRepr::parse(&p.l4).expect("arp"))
}

pub fn sa(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

pub fn ms(n: u64) -> Instant {
    Instant::from_millis(n)
}
