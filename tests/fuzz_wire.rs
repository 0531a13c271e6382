//! Fuzz targets for every wire parser (bolero). Under `cargo test` each runs
//! for the budget of `fuzz_budget` (2 s in CI, `XDPTCP_FUZZ_SECS`); under
//! `cargo bolero test --test fuzz_wire <name>` they run as real fuzzers.
//!
//! Properties: no input panics a parser; for IPv4, UDP and TCP,
//! parse -> emit -> parse gives the same `Repr` (for TCP: the canonical one,
//! see `TcpRepr::canonical`); inputs "fixed up" to be well-formed (lengths
//! and checksums set right) must parse.

mod fuzz_budget;
use bolero::check;
use core::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use xdptcp::wire::checksum;
use xdptcp::wire::mptcp::MptcpOption;
use xdptcp::wire::tcp::MptcpRaw;
use xdptcp::wire::{
    ArpRepr, EtherType, EthernetRepr, IcmpRepr, IpProtocol, Ipv4Repr, SeqNumber, TcpFlags, TcpRepr,
    UdpRepr, WireError,
};

const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const MAX_LEN: usize = 1600;

/// Proves the target ran many inputs, not one: prints and checks the count.
fn report(name: &str, runs: &AtomicUsize) {
    fuzz_budget::report(name, runs.load(Relaxed));
}

fn be16(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

#[test]
fn fuzz_ethernet() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    check!()
        .with_test_time(fuzz_budget::per_target())
        .with_max_len(64)
        .for_each(|bytes: &[u8]| {
            RUNS.fetch_add(1, Relaxed);
            match EthernetRepr::parse(bytes) {
                Ok(e) => {
                    let mut out = [0u8; 14];
                    e.emit(&mut out);
                    assert_eq!(&out[..], &bytes[..14]);
                }
                Err(err) => assert!(bytes.len() < 14 && err == WireError::Truncated),
            }
        });
    report("ethernet", &RUNS);
}

#[test]
fn fuzz_arp() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    check!()
        .with_test_time(fuzz_budget::per_target())
        .with_max_len(64)
        .for_each(|bytes: &[u8]| {
            RUNS.fetch_add(1, Relaxed);
            let _ = ArpRepr::parse(bytes);
            // Fixed up to Ethernet/IPv4 with a valid opcode: must parse and
            // re-emit byte for byte.
            if bytes.len() >= ArpRepr::LEN {
                let mut p = bytes[..ArpRepr::LEN].to_vec();
                p[..6].copy_from_slice(&[0, 1, 8, 0, 6, 4]);
                p[6] = 0;
                p[7] = 1 + (p[7] & 1);
                let a = ArpRepr::parse(&p).expect("fixed-up ARP parses");
                let mut out = [0u8; ArpRepr::LEN];
                a.emit(&mut out);
                assert_eq!(&out[..], &p[..]);
            }
        });
    report("arp", &RUNS);
}

/// Make `bytes` a valid IPv4 header + payload: version 4, IHL 5..15 within
/// the buffer, total length within the buffer, not a fragment, checksum set.
fn fix_ipv4(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut p = bytes.to_vec();
    if p.len() < 20 {
        return None;
    }
    let max_ihl = (p.len() / 4).min(15);
    let ihl = 5 + (p[0] as usize & 0x0f) % (max_ihl - 4);
    p[0] = 0x40 | ihl as u8;
    let hl = ihl * 4;
    let total = hl + be16(&p, 2) as usize % (p.len().min(65535) - hl + 1);
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[6] &= 0xc0; // keep reserved/DF, clear MF and the offset
    p[7] = 0;
    p[10] = 0;
    p[11] = 0;
    let c = checksum::checksum(&p[..hl]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    Some(p)
}

fn ipv4_round_trip(packet: &[u8]) {
    let Ok((ip, hl)) = Ipv4Repr::parse(packet) else {
        return;
    };
    assert!(hl >= 20 && hl + ip.payload_len <= packet.len());
    let payload = &packet[hl..hl + ip.payload_len];
    let mut out = vec![0u8; Ipv4Repr::HEADER_LEN + payload.len()];
    ip.emit(&mut out);
    out[Ipv4Repr::HEADER_LEN..].copy_from_slice(payload);
    let (again, hl2) = Ipv4Repr::parse(&out).expect("emitted IPv4 parses");
    assert_eq!(again, ip);
    assert_eq!(hl2, Ipv4Repr::HEADER_LEN);
}

#[test]
fn fuzz_ipv4() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static FIXED_OK: AtomicUsize = AtomicUsize::new(0);
    check!()
        .with_test_time(fuzz_budget::per_target())
        .with_max_len(MAX_LEN)
        .for_each(|bytes: &[u8]| {
            RUNS.fetch_add(1, Relaxed);
            ipv4_round_trip(bytes);
            if let Some(p) = fix_ipv4(bytes) {
                let (ip, hl) = Ipv4Repr::parse(&p).expect("fixed-up IPv4 parses");
                assert_eq!(hl, (p[0] as usize & 0x0f) * 4);
                assert_eq!(hl + ip.payload_len, be16(&p, 2) as usize);
                FIXED_OK.fetch_add(1, Relaxed);
                ipv4_round_trip(&p);
            }
        });
    report("ipv4", &RUNS);
    report("ipv4 (fixed up, parsed)", &FIXED_OK);
}

#[test]
fn fuzz_icmp() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    check!()
        .with_test_time(fuzz_budget::per_target())
        .with_max_len(MAX_LEN)
        .for_each(|bytes: &[u8]| {
            RUNS.fetch_add(1, Relaxed);
            let _ = IcmpRepr::parse(bytes);
            if bytes.len() >= 8 {
                let mut p = bytes.to_vec();
                p[2] = 0;
                p[3] = 0;
                let c = checksum::checksum(&p);
                p[2..4].copy_from_slice(&c.to_be_bytes());
                let m = IcmpRepr::parse(&p).expect("fixed-up ICMP parses");
                let mut out = vec![0u8; m.buffer_len()];
                m.emit(&mut out);
                assert_eq!(IcmpRepr::parse(&out), Ok(m));
                if let IcmpRepr::EchoRequest { .. } | IcmpRepr::EchoReply { .. } = m {
                    assert_eq!(out, p);
                }
            }
        });
    report("icmp", &RUNS);
}

fn udp_round_trip(datagram: &[u8]) {
    let Ok((u, range)) = UdpRepr::parse(datagram, SRC, DST) else {
        return;
    };
    let payload = &datagram[range];
    let mut out = vec![0u8; UdpRepr::HEADER_LEN + payload.len()];
    out[UdpRepr::HEADER_LEN..].copy_from_slice(payload);
    u.emit(&mut out, SRC, DST);
    assert_ne!(be16(&out, 6), 0, "RFC 768: zero is sent as all ones");
    let (again, range2) = UdpRepr::parse(&out, SRC, DST).expect("emitted UDP parses");
    assert_eq!(again, u);
    assert_eq!(&out[range2], payload);
}

#[test]
fn fuzz_udp() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    check!()
        .with_test_time(fuzz_budget::per_target())
        .with_max_len(MAX_LEN)
        .for_each(|bytes: &[u8]| {
            RUNS.fetch_add(1, Relaxed);
            udp_round_trip(bytes);
            if bytes.len() >= 8 {
                // Valid length and no checksum: must parse.
                let mut p = bytes.to_vec();
                let len = 8 + be16(&p, 4) as usize % (p.len() - 7);
                p[4..6].copy_from_slice(&(len as u16).to_be_bytes());
                p[6] = 0;
                p[7] = 0;
                let (_, range) = UdpRepr::parse(&p, SRC, DST).expect("fixed-up UDP parses");
                assert_eq!(range, 8..len);
                udp_round_trip(&p);
            }
        });
    report("udp", &RUNS);
}

/// Make `bytes` a TCP segment with a data offset inside it and a correct
/// checksum; the options area stays random.
fn fix_tcp(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut s = bytes.to_vec();
    if s.len() < 20 {
        return None;
    }
    let max_doff = (s.len() / 4).min(15);
    let doff = 5 + (s[12] as usize >> 4) % (max_doff - 4);
    s[12] = (doff as u8) << 4 | (s[12] & 0x0f);
    s[16] = 0;
    s[17] = 0;
    TcpRepr::fill_checksum(&mut s, SRC, DST);
    Some(s)
}

fn tcp_round_trip(segment: &[u8]) -> bool {
    let Ok((r, off)) = TcpRepr::parse(segment, SRC, DST) else {
        return false;
    };
    let payload = &segment[off..];
    let hl = r.header_len();
    assert!(hl % 4 == 0 && (20..=60).contains(&hl));
    let mut out = vec![0u8; hl + payload.len()];
    out[hl..].copy_from_slice(payload);
    r.emit(&mut out, SRC, DST);
    let (again, off2) = TcpRepr::parse(&out, SRC, DST).expect("emitted TCP parses");
    assert_eq!(off2, hl);
    assert_eq!(again, r.canonical());
    // The canonical form is stable.
    assert_eq!(again.canonical(), again);
    assert_eq!(again.header_len(), hl);
    true
}

#[test]
fn fuzz_tcp() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    static FIXED_OK: AtomicUsize = AtomicUsize::new(0);
    check!()
        .with_test_time(fuzz_budget::per_target())
        .with_max_len(MAX_LEN)
        .for_each(|bytes: &[u8]| {
            RUNS.fetch_add(1, Relaxed);
            let _ = TcpRepr::parse_unchecked(bytes);
            tcp_round_trip(bytes);
            if let Some(s) = fix_tcp(bytes) {
                let checked = TcpRepr::parse(&s, SRC, DST);
                assert_eq!(checked, TcpRepr::parse_unchecked(&s));
                // With a valid header length, only the options can be wrong.
                if let Err(e) = checked {
                    assert_eq!(e, WireError::BadLength);
                }
                if tcp_round_trip(&s) {
                    FIXED_OK.fetch_add(1, Relaxed);
                }
            }
        });
    report("tcp", &RUNS);
    report("tcp (fixed up, parsed)", &FIXED_OK);
}

/// Header fields, options and payload generated as values: emit -> parse
/// must give the canonical repr back.
type Fields = (u16, u16, u32, u32, u8, u16, u16);
type Opts = (
    Option<u16>,
    Option<u8>,
    bool,
    Vec<(u32, u32)>,
    Option<(u32, u32)>,
    Vec<Vec<u8>>,
);

#[test]
fn fuzz_tcp_emit_parse() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    check!()
        .with_test_time(fuzz_budget::per_target())
        .with_type::<(Fields, Opts, Vec<u8>)>()
        .for_each(|(f, o, payload)| {
            RUNS.fetch_add(1, Relaxed);
            let mut r = TcpRepr {
                src_port: f.0,
                dst_port: f.1,
                seq: SeqNumber(f.2),
                ack: SeqNumber(f.3),
                flags: TcpFlags(f.4),
                window: f.5,
                urgent: f.6,
                ..TcpRepr::default()
            };
            r.options.mss = o.0;
            r.options.window_scale = o.1;
            r.options.sack_permitted = o.2;
            for &(a, b) in o.3.iter().take(4) {
                r.options.sack.push(SeqNumber(a), SeqNumber(b));
            }
            r.options.timestamps = o.4;
            let mut mptcp = MptcpRaw::default();
            for body in &o.5 {
                let body = &body[..body.len().min(20)];
                let mut opt = vec![30, 2 + body.len() as u8];
                opt.extend_from_slice(body);
                if !mptcp.append(&opt) {
                    break;
                }
            }
            r.options.mptcp = mptcp;
            let payload = &payload[..payload.len().min(MAX_LEN)];
            let hl = r.header_len();
            let mut seg = vec![0u8; hl + payload.len()];
            seg[hl..].copy_from_slice(payload);
            r.emit(&mut seg, SRC, DST);
            let (back, off) = TcpRepr::parse(&seg, SRC, DST).expect("emitted TCP parses");
            assert_eq!(off, hl);
            let c = r.canonical();
            assert_eq!(back, c);
            // Only SACK blocks and MPTCP options are ever dropped, and only
            // when the full layout would not fit.
            assert_eq!(
                (
                    c.options.mss,
                    c.options.window_scale,
                    c.options.sack_permitted
                ),
                (
                    r.options.mss,
                    r.options.window_scale,
                    r.options.sack_permitted
                )
            );
            assert_eq!(c.options.timestamps, r.options.timestamps);
            if c != r {
                let full = r.options.mss.map_or(0, |_| 4)
                    + if r.options.timestamps.is_some() {
                        12
                    } else if r.options.sack_permitted {
                        4
                    } else {
                        0
                    }
                    + r.options.window_scale.map_or(0, |_| 4)
                    + if r.options.sack.is_empty() {
                        0
                    } else {
                        4 + 8 * r.options.sack.as_slice().len()
                    }
                    + r.options.mptcp.as_slice().len();
                assert!(full > 40, "dropped options though {full} bytes fit");
            }
        });
    report("tcp emit->parse", &RUNS);
}

/// A whole frame through the receive chain: Ethernet, IPv4, then the
/// transport the protocol names. Nothing may panic.
#[test]
fn fuzz_frame() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    check!()
        .with_test_time(fuzz_budget::per_target())
        .with_max_len(MAX_LEN)
        .for_each(|bytes: &[u8]| {
            RUNS.fetch_add(1, Relaxed);
            let Ok(eth) = EthernetRepr::parse(bytes) else {
                return;
            };
            let rest = &bytes[EthernetRepr::HEADER_LEN..];
            match eth.ethertype {
                EtherType::Arp => {
                    let _ = ArpRepr::parse(rest);
                }
                _ => {
                    // Treat everything as IPv4 (most inputs are not Ipv4 type).
                    let Some(p) = fix_ipv4(rest) else { return };
                    let Ok((ip, hl)) = Ipv4Repr::parse(&p) else {
                        return;
                    };
                    let payload = &p[hl..hl + ip.payload_len];
                    match ip.protocol {
                        IpProtocol::Tcp => {
                            let _ = TcpRepr::parse(payload, ip.src, ip.dst);
                        }
                        IpProtocol::Udp => {
                            let _ = UdpRepr::parse(payload, ip.src, ip.dst);
                        }
                        IpProtocol::Icmp => {
                            let _ = IcmpRepr::parse(payload);
                        }
                        IpProtocol::Other(_) => {}
                    }
                    let _ = TcpRepr::parse_unchecked(payload);
                }
            }
        });
    report("frame", &RUNS);
}

/// MPTCP options (RFC 8684 §3): any bytes parse without panicking; with the
/// kind and length fixed up, a parsed option re-emits to bytes that parse
/// to the same option, and every option found in a TCP options area that
/// walks parses without panicking too.
#[test]
fn fuzz_mptcp_option() {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    check!()
        .with_test_time(fuzz_budget::per_target())
        .with_max_len(60)
        .for_each(|bytes: &[u8]| {
            RUNS.fetch_add(1, Relaxed);
            let _ = MptcpOption::parse(bytes);
            if bytes.len() < 3 || bytes.len() > 40 {
                return;
            }
            let mut b = bytes.to_vec();
            b[0] = 30;
            b[1] = b.len() as u8;
            if let Ok(opt) = MptcpOption::parse(&b) {
                if let MptcpOption::Unknown { .. } = opt {
                    return;
                }
                let mut out = [0u8; 40];
                let n = opt.emit(&mut out);
                assert_eq!(n, b.len(), "{opt:?} from {b:02x?}");
                assert_eq!(MptcpOption::parse(&out[..n]), Ok(opt), "{b:02x?}");
            }
            // As a TCP options area: the MPTCP options kept raw each parse.
            if let Ok(o) = xdptcp::wire::TcpOptions::parse(bytes) {
                for opt in o.mptcp.options() {
                    let _ = MptcpOption::parse(opt);
                }
            }
        });
    report("mptcp option", &RUNS);
}
