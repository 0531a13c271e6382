//! IPv4 (RFC 791). Options are skipped. [`Ipv4Repr::parse`] rejects
//! fragments; [`Ipv4Repr::parse_fragment`] returns them with their place in
//! the datagram, for reassembly (`stack::frag`).

use super::checksum;
use super::{Result, WireError};
use core::net::Ipv4Addr;

/// IP protocol numbers we handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    Icmp,
    Tcp,
    Udp,
    Other(u8),
}

impl IpProtocol {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> IpProtocol {
        match v {
            IpProtocol::ICMP => IpProtocol::Icmp,
            IpProtocol::TCP => IpProtocol::Tcp,
            IpProtocol::UDP => IpProtocol::Udp,
            other => IpProtocol::Other(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::Icmp => IpProtocol::ICMP,
            IpProtocol::Tcp => IpProtocol::TCP,
            IpProtocol::Udp => IpProtocol::UDP,
            IpProtocol::Other(v) => v,
        }
    }
}

/// A parsed IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: IpProtocol,
    /// Length of the payload after the header (from the total length field).
    pub payload_len: usize,
    pub ttl: u8,
    /// DSCP (upper 6 bits of the TOS byte).
    pub dscp: u8,
    /// ECN codepoint (RFC 3168 §5): 0 Not-ECT, 1 ECT(1), 2 ECT(0), 3 CE.
    pub ecn: u8,
    pub ident: u16,
    pub dont_frag: bool,
}

/// Where a fragment's part sits in its datagram (RFC 791 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FragInfo {
    /// Offset of this part in the datagram's payload, in bytes.
    pub offset: usize,
    /// More Fragments: this is not the last part.
    pub more: bool,
}

/// RFC 791 §3.1 flags: bit 1 DF, bit 2 MF; fragment offset in the low 13.
const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const FRAG_OFFSET_MASK: u16 = 0x1fff;

/// RFC 3168 §5 ECN codepoints.
pub const ECN_NOT_ECT: u8 = 0;
pub const ECN_ECT1: u8 = 1;
pub const ECN_ECT0: u8 = 2;
pub const ECN_CE: u8 = 3;

impl Ipv4Repr {
    /// Header length of what we emit (no options).
    pub const HEADER_LEN: usize = 20;
    /// Default TTL for emitted packets (Linux's `ip_default_ttl`).
    pub const DEFAULT_TTL: u8 = 64;
    /// Largest payload the 16-bit total length allows after a 20-byte header.
    pub const MAX_PAYLOAD_LEN: usize = 65535 - Self::HEADER_LEN;

    /// A header with the usual defaults: TTL 64, DF set (RFC 1191 path MTU
    /// discovery, as Linux does for TCP), DSCP 0, Not-ECT, ident 0.
    pub fn new(src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol, payload_len: usize) -> Ipv4Repr {
        Ipv4Repr {
            src,
            dst,
            protocol,
            payload_len,
            ttl: Self::DEFAULT_TTL,
            dscp: 0,
            ecn: ECN_NOT_ECT,
            ident: 0,
            dont_frag: true,
        }
    }

    /// Bytes `emit` writes plus the payload: the total length.
    pub fn total_len(&self) -> usize {
        Self::HEADER_LEN + self.payload_len
    }

    /// Parse and verify the header checksum. Returns the header and the
    /// header length (20 + options); the payload is
    /// `packet[header_len..header_len + payload_len]` (trailing link padding
    /// beyond the total length is ignored). Fragments are `Fragment`.
    pub fn parse(packet: &[u8]) -> Result<(Ipv4Repr, usize)> {
        match Self::parse_fragment(packet)? {
            (_, _, Some(_)) => Err(WireError::Fragment),
            (repr, header_len, None) => Ok((repr, header_len)),
        }
    }

    /// Like [`Ipv4Repr::parse`], but a fragment is returned too, with its
    /// [`FragInfo`] (`None`: a whole datagram). `payload_len` is then the
    /// length of this fragment's part. Inline: the receive path is its one
    /// caller per packet, and the header is then built where it is used
    /// rather than moved out of the `Result`.
    #[inline]
    pub fn parse_fragment(packet: &[u8]) -> Result<(Ipv4Repr, usize, Option<FragInfo>)> {
        let h: &[u8; 20] = packet
            .get(..Self::HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(WireError::Truncated)?;
        // RFC 791 §3.1: Version 4; IHL counts 32-bit words, minimum 5.
        if h[0] >> 4 != 4 {
            return Err(WireError::BadVersion);
        }
        let header_len = ((h[0] & 0x0f) as usize) * 4;
        if header_len < Self::HEADER_LEN {
            return Err(WireError::BadLength);
        }
        let header = packet.get(..header_len).ok_or(WireError::Truncated)?;
        // Total Length covers header and data; what follows it in the buffer
        // is link-layer padding (Ethernet's 60-byte minimum frame).
        let total_len = u16::from_be_bytes([h[2], h[3]]) as usize;
        if total_len < header_len {
            return Err(WireError::BadLength);
        }
        if total_len > packet.len() {
            return Err(WireError::Truncated);
        }
        // RFC 791 §3.1 Header Checksum: the sum over the header including the
        // checksum field is all ones.
        let sum = match header.len() {
            Self::HEADER_LEN => checksum::sum_ipv4_header(h),
            _ => checksum::sum(header),
        };
        if sum != 0xffff {
            return Err(WireError::BadChecksum);
        }
        let flags_frag = u16::from_be_bytes([h[6], h[7]]);
        // RFC 791 §3.1: a fragment has MF set or a non-zero offset, which
        // counts 8-byte units.
        let frag = (flags_frag & (FLAG_MF | FRAG_OFFSET_MASK) != 0).then(|| FragInfo {
            offset: usize::from(flags_frag & FRAG_OFFSET_MASK) * 8,
            more: flags_frag & FLAG_MF != 0,
        });
        let repr = Ipv4Repr {
            src: Ipv4Addr::new(h[12], h[13], h[14], h[15]),
            dst: Ipv4Addr::new(h[16], h[17], h[18], h[19]),
            protocol: IpProtocol::from(h[9]),
            payload_len: total_len - header_len,
            ttl: h[8],
            dscp: h[1] >> 2,
            ecn: h[1] & 0x03,
            ident: u16::from_be_bytes([h[4], h[5]]),
            dont_frag: flags_frag & FLAG_DF != 0,
        };
        Ok((repr, header_len, frag))
    }

    /// Turn a header written by [`Ipv4Repr::emit`] (no options) into that
    /// of a fragment (RFC 791 §3.2 "Fragmentation"): `offset` bytes into
    /// the datagram (a multiple of 8), `more` fragments after it, DF clear;
    /// the checksum is recomputed.
    pub fn set_fragment_in_place(header: &mut [u8], offset: usize, more: bool) {
        let Some(h) = header.get_mut(..Self::HEADER_LEN) else {
            return;
        };
        debug_assert!(offset.is_multiple_of(8) && offset / 8 <= FRAG_OFFSET_MASK as usize);
        let mut f = (offset / 8) as u16 & FRAG_OFFSET_MASK;
        if more {
            f |= FLAG_MF;
        }
        h[6..8].copy_from_slice(&f.to_be_bytes());
        h[10] = 0;
        h[11] = 0;
        let c = checksum::checksum(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }

    /// Write a 20-byte header (no options) with its checksum into
    /// `buf[..HEADER_LEN]`.
    ///
    /// # Panics
    /// If `buf` is shorter than `HEADER_LEN` (a caller bug, not input).
    pub fn emit(&self, buf: &mut [u8]) {
        debug_assert!(self.payload_len <= Self::MAX_PAYLOAD_LEN);
        let h: &mut [u8; Self::HEADER_LEN] = (&mut buf[..Self::HEADER_LEN])
            .try_into()
            .expect("a 20-byte slice");
        h[0] = 0x45;
        h[1] = (self.dscp << 2) | (self.ecn & 0x03);
        h[2..4].copy_from_slice(&(self.total_len() as u16).to_be_bytes());
        h[4..6].copy_from_slice(&self.ident.to_be_bytes());
        let flags: u16 = if self.dont_frag { FLAG_DF } else { 0 };
        h[6..8].copy_from_slice(&flags.to_be_bytes());
        h[8] = self.ttl;
        h[9] = u8::from(self.protocol);
        h[10] = 0;
        h[11] = 0;
        h[12..16].copy_from_slice(&self.src.octets());
        h[16..20].copy_from_slice(&self.dst.octets());
        let c = !checksum::sum_ipv4_header(h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
    }

    /// Rewrite the ECN field of an emitted or received header in place and
    /// fix its checksum incrementally (RFC 1624), e.g. to set CE or to mark
    /// a retransmission Not-ECT (RFC 3168 §6.1.5). Does nothing on a buffer
    /// shorter than `HEADER_LEN`.
    pub fn set_ecn_in_place(header: &mut [u8], ecn: u8) {
        if header.len() < Self::HEADER_LEN {
            return;
        }
        let old = u16::from_be_bytes([header[0], header[1]]);
        header[1] = (header[1] & !0x03) | (ecn & 0x03);
        let new = u16::from_be_bytes([header[0], header[1]]);
        let check = u16::from_be_bytes([header[10], header[11]]);
        let check = checksum::update(check, old, new);
        header[10..12].copy_from_slice(&check.to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A real IPv4 header of a TCP SYN captured from Linux
    /// (198.18.0.1 -> 198.18.0.2, total length 60, DF, TTL 64, id 0x1c46).
    const SYN_HDR: [u8; 20] = [
        0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 198, 18, 0, 1, 198,
        18, 0, 2,
    ];

    fn with_checksum(mut h: [u8; 20]) -> [u8; 20] {
        h[10] = 0;
        h[11] = 0;
        let c = checksum::checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h
    }

    fn packet(h: [u8; 20], payload_len: usize) -> Vec<u8> {
        let mut p = h.to_vec();
        p.resize(20 + payload_len, 0xab);
        p
    }

    #[test]
    fn parse_known_header() {
        let h = with_checksum(SYN_HDR);
        let p = packet(h, 40);
        let (ip, hl) = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(hl, 20);
        assert_eq!(
            ip,
            Ipv4Repr {
                src: Ipv4Addr::new(198, 18, 0, 1),
                dst: Ipv4Addr::new(198, 18, 0, 2),
                protocol: IpProtocol::Tcp,
                payload_len: 40,
                ttl: 64,
                dscp: 0,
                ecn: 0,
                ident: 0x1c46,
                dont_frag: true,
            }
        );
        let mut out = [0u8; 20];
        ip.emit(&mut out);
        assert_eq!(out, h);
    }

    #[test]
    fn emit_exact_layout() {
        let mut ip = Ipv4Repr::new(
            Ipv4Addr::new(192, 168, 0, 1),
            Ipv4Addr::new(192, 168, 0, 199),
            IpProtocol::Udp,
            0x73 - 20,
        );
        ip.dont_frag = true;
        let mut out = [0u8; 20];
        ip.emit(&mut out);
        // The classic example header with checksum b861.
        assert_eq!(
            out,
            [
                0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
                0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7
            ]
        );
        ip.dscp = 46;
        ip.ecn = ECN_ECT0;
        ip.dont_frag = false;
        ip.emit(&mut out);
        assert_eq!(out[1], 46 << 2 | 2);
        assert_eq!(&out[6..8], &[0, 0]);
        let mut p = out.to_vec();
        p.resize(0x73, 0);
        assert_eq!(Ipv4Repr::parse(&p), Ok((ip, 20)));
    }

    #[test]
    fn options_skipped_and_padding_ignored() {
        // IHL 6 with a 4-byte option (NOP NOP NOP EOL), 8 bytes of payload,
        // then 10 bytes of Ethernet padding.
        let mut h = vec![
            0x46, 0x00, 0x00, 32, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 1, 1, 1, 0,
        ];
        let c = checksum::checksum(&h);
        h[10..12].copy_from_slice(&c.to_be_bytes());
        h.extend_from_slice(&[8; 8]);
        h.extend_from_slice(&[0; 10]);
        let (ip, hl) = Ipv4Repr::parse(&h).unwrap();
        assert_eq!(hl, 24);
        assert_eq!(ip.payload_len, 8);
        assert_eq!(ip.protocol, IpProtocol::Icmp);
        assert!(!ip.dont_frag);
        assert_eq!(&h[hl..hl + ip.payload_len], &[8; 8]);
    }

    #[test]
    fn malformed() {
        let good = packet(with_checksum(SYN_HDR), 40);
        for n in 0..20 {
            assert_eq!(Ipv4Repr::parse(&good[..n]), Err(WireError::Truncated));
        }
        // Buffer shorter than the total length.
        assert_eq!(Ipv4Repr::parse(&good[..59]), Err(WireError::Truncated));

        let mut h = SYN_HDR;
        h[0] = 0x65;
        assert_eq!(
            Ipv4Repr::parse(&packet(with_checksum(h), 40)),
            Err(WireError::BadVersion)
        );

        for ihl in 0..5u8 {
            let mut h = SYN_HDR;
            h[0] = 0x40 | ihl;
            let r = Ipv4Repr::parse(&packet(with_checksum(h), 40));
            assert_eq!(r, Err(WireError::BadLength), "ihl {ihl}");
        }
        // IHL 15 (60 bytes) with only a 20-byte buffer... of 24 bytes.
        let mut h = SYN_HDR;
        h[0] = 0x4f;
        h[2..4].copy_from_slice(&24u16.to_be_bytes());
        assert_eq!(Ipv4Repr::parse(&packet(h, 4)), Err(WireError::Truncated));

        // Total length below the header length.
        for tl in [0u16, 19] {
            let mut h = SYN_HDR;
            h[2..4].copy_from_slice(&tl.to_be_bytes());
            let r = Ipv4Repr::parse(&packet(with_checksum(h), 40));
            assert_eq!(r, Err(WireError::BadLength), "total {tl}");
        }

        let mut h = with_checksum(SYN_HDR);
        h[11] ^= 1;
        assert_eq!(Ipv4Repr::parse(&packet(h, 40)), Err(WireError::BadChecksum));
        let mut p = good.clone();
        p[15] ^= 0x80;
        assert_eq!(Ipv4Repr::parse(&p), Err(WireError::BadChecksum));
    }

    #[test]
    fn fragments_rejected() {
        for ff in [0x2000u16, 0x0001, 0x1fff, 0x6000, 0x4001] {
            let mut h = SYN_HDR;
            h[6..8].copy_from_slice(&ff.to_be_bytes());
            let r = Ipv4Repr::parse(&packet(with_checksum(h), 40));
            assert_eq!(r, Err(WireError::Fragment), "flags {ff:#x}");
        }
        // parse_fragment tells where each part goes.
        for (ff, off, more) in [
            (0x2000u16, 0, true),
            (0x0003, 24, false),
            (0x3fff, 65528, true),
        ] {
            let mut h = SYN_HDR;
            h[6..8].copy_from_slice(&ff.to_be_bytes());
            let (_, hl, f) = Ipv4Repr::parse_fragment(&packet(with_checksum(h), 40)).unwrap();
            assert_eq!((hl, f), (20, Some(FragInfo { offset: off, more })));
        }
        // The reserved bit alone is not a fragment.
        let mut h = SYN_HDR;
        h[6..8].copy_from_slice(&0x8000u16.to_be_bytes());
        let (ip, _) = Ipv4Repr::parse(&packet(with_checksum(h), 40)).unwrap();
        assert!(!ip.dont_frag);
    }

    #[test]
    fn set_fragment_in_place_round_trips() {
        let mut h = with_checksum(SYN_HDR);
        Ipv4Repr::set_fragment_in_place(&mut h, 1480, true);
        let (ip, _, f) = Ipv4Repr::parse_fragment(&packet(h, 40)).unwrap();
        assert_eq!(
            f,
            Some(FragInfo {
                offset: 1480,
                more: true
            })
        );
        assert!(!ip.dont_frag);
        Ipv4Repr::set_fragment_in_place(&mut h, 2960, false);
        let (_, _, f) = Ipv4Repr::parse_fragment(&packet(h, 40)).unwrap();
        assert_eq!(
            f,
            Some(FragInfo {
                offset: 2960,
                more: false
            })
        );
    }

    #[test]
    fn set_ecn_in_place_keeps_checksum_valid() {
        let mut h = with_checksum(SYN_HDR);
        for ecn in [ECN_ECT0, ECN_CE, ECN_ECT1, ECN_NOT_ECT] {
            Ipv4Repr::set_ecn_in_place(&mut h, ecn);
            let (ip, _) = Ipv4Repr::parse(&packet(h, 40)).unwrap();
            assert_eq!(ip.ecn, ecn);
        }
        assert_eq!(h, with_checksum(SYN_HDR));
    }

    #[test]
    fn protocol_conversions() {
        for v in 0..=255u8 {
            assert_eq!(u8::from(IpProtocol::from(v)), v);
        }
        assert_eq!(IpProtocol::from(6), IpProtocol::Tcp);
        assert_eq!(IpProtocol::from(17), IpProtocol::Udp);
        assert_eq!(IpProtocol::from(1), IpProtocol::Icmp);
    }
}
