//! Tests of TCP header and option parsing/emission.

use super::*;

const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// A SYN captured from Linux 6.x on a veth with checksum offload off
/// (198.18.0.1:40000 -> 198.18.0.2:8080): MSS 1460, SACKOK, TS, WS 10.
/// Ethernet + IPv4 + TCP, TCP checksum 0xd8af.
const LINUX_SYN: [u8; 74] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x3c, 0x5e, 0xf0, 0x40, 0x00, 0x40, 0x06, 0x4f, 0xa4, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12,
    0x00, 0x02, 0x9c, 0x40, 0x1f, 0x90, 0xff, 0xdb, 0x09, 0x99, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02,
    0xfa, 0xf0, 0xd8, 0xaf, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0xbf, 0x01,
    0x63, 0xed, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a,
];

/// An MPTCP SYN captured the same way (`socket(AF_INET, SOCK_STREAM,
/// IPPROTO_MPTCP)`): the same options plus MP_CAPABLE v1 `1e 04 01 01`,
/// TCP checksum 0x19b6.
const LINUX_MPTCP_SYN: [u8; 78] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00, 0x45, 0x00,
    0x00, 0x40, 0x51, 0x9e, 0x40, 0x00, 0x40, 0x06, 0x5c, 0xf2, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12,
    0x00, 0x02, 0x9c, 0x40, 0x1f, 0x90, 0x04, 0x41, 0x82, 0xaf, 0x00, 0x00, 0x00, 0x00, 0xb0, 0x02,
    0xfa, 0xf0, 0x19, 0xb6, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0xbf, 0x01,
    0x76, 0x62, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x0a, 0x1e, 0x04, 0x01, 0x01,
];

/// A segment with the given options area (not padded by this function),
/// data offset set from its length, `payload` after it and a correct
/// checksum computed by a plain byte-wise reference.
fn segment(flags: u8, opts: &[u8], payload: &[u8]) -> Vec<u8> {
    let hl = 20 + opts.len();
    assert_eq!(hl % 4, 0, "test options must be padded");
    let mut s = vec![
        0x30, 0x39, 0x00, 0x50, 0, 0, 0x10, 0, 0, 0, 0x20, 0, 0, flags, 0xff, 0xff, 0, 0, 0, 0,
    ];
    s[12] = ((hl / 4) as u8) << 4;
    s.extend_from_slice(opts);
    s.extend_from_slice(payload);
    let c = reference_checksum(&s, SRC, DST);
    s[16..18].copy_from_slice(&c.to_be_bytes());
    s
}

fn reference_checksum(seg: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
    let mut v = Vec::new();
    v.extend_from_slice(&src.octets());
    v.extend_from_slice(&dst.octets());
    v.extend_from_slice(&[0, 6]);
    v.extend_from_slice(&(seg.len() as u16).to_be_bytes());
    v.extend_from_slice(seg);
    v[12 + 16] = 0;
    v[12 + 17] = 0;
    if v.len() % 2 == 1 {
        v.push(0);
    }
    let mut s: u32 = v
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn parse_opts(opts: &[u8]) -> Result<TcpOptions> {
    TcpRepr::parse(&segment(0x10, opts, b""), SRC, DST).map(|(r, _)| r.options)
}

fn emit_vec(r: &TcpRepr, payload: &[u8]) -> Vec<u8> {
    let mut buf = vec![0xeeu8; r.header_len() + payload.len()];
    buf[r.header_len()..].copy_from_slice(payload);
    r.emit(&mut buf, SRC, DST);
    buf
}

#[test]
fn linux_syn_parses_and_reemits_identically() {
    let tcp = &LINUX_SYN[34..];
    let (r, off) = TcpRepr::parse(tcp, SRC, DST).unwrap();
    assert_eq!(off, 40);
    assert_eq!(r.src_port, 40000);
    assert_eq!(r.dst_port, 8080);
    assert_eq!(r.seq, SeqNumber(0xffdb0999));
    assert_eq!(r.flags, TcpFlags::SYN);
    assert_eq!(r.window, 64240);
    assert_eq!(r.urgent, 0);
    assert_eq!(
        r.options,
        TcpOptions {
            mss: Some(1460),
            window_scale: Some(10),
            sack_permitted: true,
            timestamps: Some((0xbf0163ed, 0)),
            ..TcpOptions::default()
        }
    );
    assert_eq!(r.header_len(), 40);
    assert_eq!(r.options_len(), 20);
    assert_eq!(emit_vec(&r, b""), tcp);
    assert_eq!(reference_checksum(tcp, SRC, DST), 0xd8af);
}

#[test]
fn linux_mptcp_syn_parses_and_reemits_identically() {
    let tcp = &LINUX_MPTCP_SYN[34..];
    let (r, off) = TcpRepr::parse(tcp, SRC, DST).unwrap();
    assert_eq!(off, 44);
    assert_eq!(r.options.mptcp.as_slice(), &[0x1e, 0x04, 0x01, 0x01]);
    assert_eq!(r.options.mss, Some(1460));
    assert_eq!(r.options.window_scale, Some(10));
    assert_eq!(emit_vec(&r, b""), tcp);
}

#[test]
fn data_segment_with_timestamps_and_sack_layout() {
    let mut r = TcpRepr {
        src_port: 8080,
        dst_port: 40000,
        seq: SeqNumber(1000),
        ack: SeqNumber(2000),
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 501,
        ..TcpRepr::default()
    };
    r.options.timestamps = Some((0x01020304, 0x05060708));
    r.options.sack.push(SeqNumber(3000), SeqNumber(4000));
    r.options.sack.push(SeqNumber(5000), SeqNumber(6000));
    assert_eq!(r.header_len(), 20 + 12 + 20);
    let seg = emit_vec(&r, b"hello");
    #[rustfmt::skip]
    let want_opts: [u8; 32] = [
        1, 1, 8, 10, 1, 2, 3, 4, 5, 6, 7, 8,
        1, 1, 5, 18, 0, 0, 0x0b, 0xb8, 0, 0, 0x0f, 0xa0, 0, 0, 0x13, 0x88, 0, 0, 0x17, 0x70,
    ];
    assert_eq!(&seg[20..52], &want_opts);
    assert_eq!(seg[12], 13 << 4);
    assert_eq!(seg[13], 0x18);
    assert_eq!(&seg[52..], b"hello");
    assert_eq!(
        u16::from_be_bytes([seg[16], seg[17]]),
        reference_checksum(&seg, SRC, DST)
    );
    let (back, off) = TcpRepr::parse(&seg, SRC, DST).unwrap();
    assert_eq!(off, 52);
    assert_eq!(back, r);
}

#[test]
fn option_layouts() {
    let base = TcpRepr::default();
    let cases: Vec<(TcpOptions, Vec<u8>)> = vec![
        (TcpOptions::default(), vec![]),
        (
            TcpOptions {
                mss: Some(1460),
                ..Default::default()
            },
            vec![2, 4, 0x05, 0xb4],
        ),
        (
            TcpOptions {
                sack_permitted: true,
                ..Default::default()
            },
            vec![1, 1, 4, 2],
        ),
        (
            TcpOptions {
                timestamps: Some((1, 2)),
                ..Default::default()
            },
            vec![1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2],
        ),
        (
            TcpOptions {
                window_scale: Some(7),
                ..Default::default()
            },
            vec![1, 3, 3, 7],
        ),
        (
            TcpOptions {
                mss: Some(536),
                sack_permitted: true,
                window_scale: Some(0),
                ..Default::default()
            },
            vec![2, 4, 2, 24, 1, 1, 4, 2, 1, 3, 3, 0],
        ),
        (
            // MPTCP of odd length (DSS with a 2-byte checksum area, here
            // just a 7-byte dummy) is padded with EOL/zero to 4.
            TcpOptions {
                mptcp: MptcpRaw::from_slice(&[30, 7, 0x20, 1, 2, 3, 4]).unwrap(),
                ..Default::default()
            },
            vec![30, 7, 0x20, 1, 2, 3, 4, 0],
        ),
    ];
    for (options, want) in cases {
        let r = TcpRepr { options, ..base };
        assert_eq!(r.options_len(), want.len(), "{options:?}");
        let seg = emit_vec(&r, b"");
        assert_eq!(&seg[20..], &want[..], "{options:?}");
        assert_eq!(TcpRepr::parse(&seg, SRC, DST).unwrap().0, r);
    }
}

#[test]
fn sack_blocks_dropped_to_fit() {
    let mut r = TcpRepr::default();
    for i in 0..4u32 {
        r.options
            .sack
            .push(SeqNumber(i * 100), SeqNumber(i * 100 + 50));
    }
    // SACK alone: 4 blocks take 36 bytes, fits.
    assert_eq!(r.header_len(), 56);
    assert_eq!(r.canonical(), r);
    // With timestamps: 12 + 4 + 8n <= 40 -> n = 3 (RFC 2018 §3).
    r.options.timestamps = Some((7, 8));
    assert_eq!(r.header_len(), 60);
    let c = r.canonical();
    assert_eq!(c.options.sack.as_slice(), &r.options.sack.as_slice()[..3]);
    let seg = emit_vec(&r, b"x");
    assert_eq!(TcpRepr::parse(&seg, SRC, DST).unwrap().0, c);
    // With timestamps, MSS and window scale too: n = 2.
    r.options.mss = Some(1000);
    r.options.window_scale = Some(3);
    let c = r.canonical();
    assert_eq!(c.options.sack.as_slice().len(), 2);
    assert_eq!(r.header_len(), 60);
    let seg = emit_vec(&r, b"");
    assert_eq!(TcpRepr::parse(&seg, SRC, DST).unwrap().0, c);
}

#[test]
fn mptcp_dropped_whole_when_nothing_else_fits() {
    let mut r = TcpRepr::default();
    r.options.timestamps = Some((1, 2));
    r.options.mss = Some(1400);
    r.options.window_scale = Some(7);
    r.options.sack.push(SeqNumber(1), SeqNumber(2));
    // 20 fixed bytes; MPTCP 12 + 12 bytes: only the first fits, no SACK.
    let mut raw = vec![30, 12];
    raw.extend_from_slice(&[0xaa; 10]);
    raw.extend_from_slice(&[30, 12]);
    raw.extend_from_slice(&[0xbb; 10]);
    r.options.mptcp = MptcpRaw::from_slice(&raw).unwrap();
    let c = r.canonical();
    assert!(c.options.sack.is_empty());
    assert_eq!(c.options.mptcp.as_slice(), &raw[..12]);
    assert_eq!(r.header_len(), 52);
    let seg = emit_vec(&r, b"");
    assert_eq!(TcpRepr::parse(&seg, SRC, DST).unwrap().0, c);
    // Malformed raw MPTCP that does not fit is dropped entirely.
    r.options.mptcp = MptcpRaw::from_slice(&[
        30, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ])
    .unwrap();
    assert!(r.canonical().options.mptcp.is_empty());
    assert_eq!(r.header_len(), 40);
    // A `len` out of range never panics.
    r.options.mptcp.len = 200;
    r.options.sack.len = 9;
    assert!(r.header_len() <= 60);
    let _ = emit_vec(&r, b"");
}

#[test]
fn every_flag_bit_and_ns_ignored() {
    for bit in 0..8 {
        let f = 1u8 << bit;
        let (r, _) = TcpRepr::parse(&segment(f, &[], b""), SRC, DST).unwrap();
        assert_eq!(r.flags, TcpFlags(f));
        assert_eq!(emit_vec(&r, b"")[13], f);
    }
    let (r, _) = TcpRepr::parse(&segment(0xff, &[], b""), SRC, DST).unwrap();
    assert!(r.flags.fin() && r.flags.syn() && r.flags.rst() && r.flags.psh());
    assert!(r.flags.ack() && r.flags.urg() && r.flags.ece() && r.flags.cwr());
    assert_eq!(r.flags.to_string(), "SFRPUEW.");
    // NS/AE and the reserved bits (low nibble of byte 12) are ignored.
    let mut s = segment(0x12, &[], b"");
    s[12] |= 0x0f;
    let c = reference_checksum(&s, SRC, DST);
    s[16..18].copy_from_slice(&c.to_be_bytes());
    let (r, off) = TcpRepr::parse(&s, SRC, DST).unwrap();
    assert_eq!((r.flags, off), (TcpFlags::SYN | TcpFlags::ACK, 20));
}

#[test]
fn unknown_options_skipped_and_eol_stops() {
    // Unknown kind 254 (experimental) len 4, then MSS, EOL, garbage.
    let o = parse_opts(&[254, 4, 0xab, 0xcd, 2, 4, 1, 0, 0, 0xff, 0xff, 0xff]).unwrap();
    assert_eq!(
        o,
        TcpOptions {
            mss: Some(256),
            ..Default::default()
        }
    );
    // MD5 signature (kind 19, len 18) skipped.
    let mut md5 = vec![19, 18];
    md5.extend_from_slice(&[0; 16]);
    md5.extend_from_slice(&[1, 1]);
    assert_eq!(parse_opts(&md5).unwrap(), TcpOptions::default());
    // Only NOPs.
    assert_eq!(parse_opts(&[1, 1, 1, 1]).unwrap(), TcpOptions::default());
}

#[test]
fn timestamps_fast_path_then_more_options() {
    // NOP,NOP,TS then NOP,WS, a second TS (last wins) and EOL padding.
    let o = parse_opts(&[
        1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2, 1, 3, 3, 5, 8, 10, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0,
    ])
    .unwrap();
    assert_eq!(o.timestamps, Some((3, 4)));
    assert_eq!(o.window_scale, Some(5));
    // TS not at the start (after MSS) goes through the general loop.
    let o = parse_opts(&[2, 4, 1, 0, 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]).unwrap();
    assert_eq!((o.mss, o.timestamps), (Some(256), Some((1, 2))));
}

#[test]
fn repeated_options() {
    // The last MSS wins; MPTCP options accumulate in order.
    let o = parse_opts(&[2, 4, 0, 1, 2, 4, 0, 2, 30, 4, 0, 1, 30, 4, 0, 2]).unwrap();
    assert_eq!(o.mss, Some(2));
    assert_eq!(o.mptcp.as_slice(), &[30, 4, 0, 1, 30, 4, 0, 2]);
    assert_eq!(
        o.mptcp.options().collect::<Vec<_>>(),
        vec![&[30u8, 4, 0, 1][..], &[30, 4, 0, 2][..]]
    );
}

#[test]
fn sack_block_counts() {
    for n in 1..=4usize {
        let mut opts = vec![1, 1, 5, (2 + 8 * n) as u8];
        for i in 0..n as u32 {
            opts.extend_from_slice(&(i * 10).to_be_bytes());
            opts.extend_from_slice(&(i * 10 + 5).to_be_bytes());
        }
        let o = parse_opts(&opts).unwrap();
        assert_eq!(o.sack.as_slice().len(), n);
        assert_eq!(
            o.sack.as_slice()[n - 1],
            (
                SeqNumber((n as u32 - 1) * 10),
                SeqNumber((n as u32 - 1) * 10 + 5)
            )
        );
    }
}

#[test]
fn malformed_options_are_bad_length() {
    let bad: &[&[u8]] = &[
        // Length below 2.
        &[254, 0, 0, 0],
        &[254, 1, 0, 0],
        &[30, 1, 0, 0],
        // Length running past the header.
        &[254, 5, 0, 0],
        &[1, 1, 1, 8],
        &[8, 10, 0, 0, 0, 0, 0, 0],
        // The NOP,NOP,TS fast path with the timestamps cut short.
        &[1, 1, 8, 10, 0, 0, 0, 0],
        &[1, 1, 8, 10, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 8, 10],
        // A kind byte with no length byte at the end.
        &[1, 1, 1, 2],
        &[1, 1, 1, 254],
        // Known kinds with the wrong length.
        &[2, 3, 0, 0],
        &[2, 5, 0, 0, 0, 0, 0, 0],
        &[3, 2, 1, 1],
        &[3, 4, 7, 0],
        &[4, 3, 0, 0],
        &[4, 4, 0, 0],
        &[5, 2, 0, 0],
        &[5, 6, 0, 0, 0, 0, 0, 0],
        &[5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &[8, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        &[8, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
    ];
    for opts in bad {
        assert_eq!(parse_opts(opts), Err(WireError::BadLength), "{opts:?}");
    }
    // A 42-byte SACK (5 blocks) cannot be in a 40-byte options area; as the
    // whole area it runs past the header.
    let mut five = vec![5, 42];
    five.extend_from_slice(&[0; 38]);
    assert_eq!(parse_opts(&five), Err(WireError::BadLength));
}

#[test]
fn malformed_headers() {
    let good = segment(0x10, &[2, 4, 5, 0xb4], b"data");
    for n in 0..20 {
        assert_eq!(
            TcpRepr::parse(&good[..n], SRC, DST),
            Err(WireError::Truncated)
        );
        assert_eq!(
            TcpRepr::parse_unchecked(&good[..n]),
            Err(WireError::Truncated)
        );
    }
    // Data offset below 5.
    for doff in 0..5u8 {
        let mut s = good.clone();
        s[12] = doff << 4;
        let c = reference_checksum(&s, SRC, DST);
        s[16..18].copy_from_slice(&c.to_be_bytes());
        assert_eq!(TcpRepr::parse(&s, SRC, DST), Err(WireError::BadLength));
    }
    // Data offset past the end of the segment.
    let mut s = segment(0x10, &[], b"");
    s[12] = 6 << 4;
    let c = reference_checksum(&s, SRC, DST);
    s[16..18].copy_from_slice(&c.to_be_bytes());
    assert_eq!(TcpRepr::parse(&s, SRC, DST), Err(WireError::Truncated));
    // Bad checksum: flipped payload bit, wrong addresses, wrong length.
    let mut s = good.clone();
    *s.last_mut().unwrap() ^= 1;
    assert_eq!(TcpRepr::parse(&s, SRC, DST), Err(WireError::BadChecksum));
    assert!(TcpRepr::parse_unchecked(&s).is_ok());
    assert_eq!(TcpRepr::parse(&good, DST, DST), Err(WireError::BadChecksum));
    assert_eq!(
        TcpRepr::parse(&good[..good.len() - 1], SRC, DST),
        Err(WireError::BadChecksum)
    );
    assert!(TcpRepr::parse(&good, SRC, DST).is_ok());
}

#[test]
fn odd_length_payload_checksum() {
    let r = TcpRepr {
        flags: TcpFlags::ACK,
        ..TcpRepr::default()
    };
    for n in 0..9 {
        let payload: Vec<u8> = (0..n as u8).map(|i| i.wrapping_mul(37) ^ 0x5a).collect();
        let seg = emit_vec(&r, &payload);
        assert_eq!(
            u16::from_be_bytes([seg[16], seg[17]]),
            reference_checksum(&seg, SRC, DST)
        );
        assert_eq!(TcpRepr::parse(&seg, SRC, DST), Ok((r, 20)));
    }
}

#[test]
fn seq_number_arithmetic_wraps() {
    let a = SeqNumber(u32::MAX - 1);
    let b = a + 4;
    assert_eq!(b, SeqNumber(2));
    assert!(b > a);
    assert!(a < b);
    assert_eq!(b - a, 4);
    assert_eq!(b.diff(a), 4);
    assert_eq!(a.diff(b), -4);
    assert_eq!(b - 4, a);
    assert_eq!(a.max(b), b);
    assert_eq!(a.min(b), a);
    // Unordered operands (hostile SEG.ACK, SACK blocks) saturate, never panic.
    assert_eq!(a - b, 0);
}

#[test]
fn seg_len_counts_syn_and_fin() {
    let mut r = TcpRepr::default();
    assert_eq!(r.seg_len(10), 10);
    r.flags = TcpFlags::SYN | TcpFlags::FIN;
    assert_eq!(r.seg_len(10), 12);
}

#[test]
fn linux_frames_parse_through_every_layer() {
    use crate::wire::{EtherType, EthernetRepr, IpProtocol, Ipv4Repr, MacAddr};
    for frame in [&LINUX_SYN[..], &LINUX_MPTCP_SYN[..]] {
        let eth = EthernetRepr::parse(frame).unwrap();
        assert_eq!(eth.src, MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(eth.ethertype, EtherType::Ipv4);
        let pkt = &frame[EthernetRepr::HEADER_LEN..];
        let (ip, hl) = Ipv4Repr::parse(pkt).unwrap();
        assert_eq!(
            (ip.src, ip.dst, ip.protocol, ip.ttl),
            (SRC, DST, IpProtocol::Tcp, 64)
        );
        assert!(ip.dont_frag);
        // Re-emitting the IPv4 header reproduces Linux's bytes and checksum.
        let mut out = [0u8; 20];
        ip.emit(&mut out);
        assert_eq!(&out[..], &pkt[..20]);
        let seg = &pkt[hl..hl + ip.payload_len];
        let (tcp, off) = TcpRepr::parse(seg, ip.src, ip.dst).unwrap();
        assert_eq!(
            (tcp.flags, off, seg.len()),
            (TcpFlags::SYN, seg.len(), seg.len())
        );
    }
}

/// The pseudo-header sum (not inverted), byte-wise: what Linux leaves in
/// the checksum field of a `CHECKSUM_PARTIAL` segment
/// (`~tcp_v4_check(len, saddr, daddr, 0)`).
fn reference_pseudo_sum(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: usize) -> u16 {
    let mut s: u32 = 0;
    for a in [src.octets(), dst.octets()] {
        s += u32::from(u16::from_be_bytes([a[0], a[1]]))
            + u32::from(u16::from_be_bytes([a[2], a[3]]));
    }
    s += u32::from(proto) + len as u32;
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

#[test]
fn partial_checksum_is_accepted_only_when_asked_for() {
    // LINUX_SYN as a peer with transmit checksum offload sends it over veth.
    let mut tcp = LINUX_SYN[34..].to_vec();
    let (src, dst) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
    let ph = reference_pseudo_sum(src, dst, 6, tcp.len());
    tcp[16..18].copy_from_slice(&ph.to_be_bytes());
    assert_eq!(TcpRepr::parse(&tcp, src, dst), Err(WireError::BadChecksum));
    assert_eq!(
        TcpRepr::parse_rx(&tcp, src, dst, false).map(|(_, _, p)| p),
        Err(WireError::BadChecksum)
    );
    let (r, off, partial) = TcpRepr::parse_rx(&tcp, src, dst, true).unwrap();
    assert!(partial);
    assert_eq!((r.src_port, r.dst_port, off), (40000, 8080, 40));
    // The real checksum still passes, and is not counted as partial.
    let (_, _, partial) = TcpRepr::parse_rx(&LINUX_SYN[34..], src, dst, true).unwrap();
    assert!(!partial);
    // Anything else in the field is still a bad checksum.
    for bad in [ph.wrapping_add(1), !ph, 0] {
        tcp[16..18].copy_from_slice(&bad.to_be_bytes());
        assert_eq!(
            TcpRepr::parse_rx(&tcp, src, dst, true).map(|(_, _, p)| p),
            Err(WireError::BadChecksum),
            "{bad:#x}"
        );
    }
    // A pseudo-header sum of other addresses is no partial checksum here.
    let other = reference_pseudo_sum(src, Ipv4Addr::new(198, 18, 0, 3), 6, tcp.len());
    tcp[16..18].copy_from_slice(&other.to_be_bytes());
    assert_eq!(
        TcpRepr::parse_rx(&tcp, src, dst, true).map(|(_, _, p)| p),
        Err(WireError::BadChecksum)
    );
}

/// The checksums from a kept address sum (a connection's header
/// template) are those computed from the addresses, for any length.
#[test]
fn checksums_from_the_kept_address_sum_match() {
    let ph = TcpRepr::pseudo_header_addrs(SRC, Ipv4Addr::new(198, 19, 255, 254));
    for len in [20, 21, 32, 96, 1460] {
        let mut seg: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        seg[16..18].fill(0);
        let mut want = seg.clone();
        let dst = Ipv4Addr::new(198, 19, 255, 254);
        TcpRepr::fill_checksum(&mut want, SRC, dst);
        TcpRepr::fill_checksum_with(&mut seg, ph);
        assert_eq!(seg, want, "full, len {len}");
        TcpRepr::fill_partial_checksum(&mut want, SRC, dst);
        TcpRepr::fill_partial_checksum_with(&mut seg, ph);
        assert_eq!(seg, want, "partial, len {len}");
    }
}
