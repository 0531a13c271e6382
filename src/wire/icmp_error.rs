//! ICMPv4 error messages (RFC 792): destination unreachable (with the
//! next-hop MTU of RFC 1191 §4), time exceeded and parameter problem, and
//! the datagram they quote, so the error can be directed to the
//! connection or socket that caused it (RFC 1122 §3.2.2, §4.2.3.9).

use super::checksum;
use super::{IpProtocol, Result, WireError};
use core::net::Ipv4Addr;

/// RFC 792 type numbers of the errors passed up to transports.
pub const TYPE_DEST_UNREACHABLE: u8 = 3;
pub const TYPE_TIME_EXCEEDED: u8 = 11;
pub const TYPE_PARAMETER_PROBLEM: u8 = 12;
/// Destination unreachable, code 4: fragmentation needed and DF set.
pub const CODE_FRAG_NEEDED: u8 = 4;

/// A parsed ICMP error and the start of the datagram it quotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpError<'a> {
    pub icmp_type: u8,
    pub code: u8,
    /// RFC 1191 §4: the next-hop MTU (low 16 bits of the rest-of-header)
    /// of a "fragmentation needed"; 0 from routers that predate it.
    pub next_hop_mtu: u16,
    /// The quoted IP header: our datagram's source (us) and destination.
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: IpProtocol,
    /// The quoted datagram's total length field.
    pub total_len: u16,
    /// At least the first 8 bytes of the quoted datagram's payload (RFC
    /// 792): ports, and for TCP the sequence number.
    pub l4: &'a [u8],
}

impl<'a> IcmpError<'a> {
    /// Whether `icmp_type` is an error this module parses.
    pub fn is_error_type(icmp_type: u8) -> bool {
        matches!(
            icmp_type,
            TYPE_DEST_UNREACHABLE | TYPE_TIME_EXCEEDED | TYPE_PARAMETER_PROBLEM
        )
    }

    /// Parse an ICMP error message (the IPv4 payload), checksum verified.
    /// The quoted header must be IPv4 with at least 8 payload bytes; its own
    /// checksum is not checked (routers may have rewritten fields).
    pub fn parse(buf: &'a [u8]) -> Result<IcmpError<'a>> {
        let h = buf.get(..8).ok_or(WireError::Truncated)?;
        if checksum::sum(buf) != 0xffff {
            return Err(WireError::BadChecksum);
        }
        let (icmp_type, code) = (h[0], h[1]);
        if !Self::is_error_type(icmp_type) {
            return Err(WireError::Unsupported);
        }
        let next_hop_mtu = u16::from_be_bytes([h[6], h[7]]);
        let q = &buf[8..];
        let v = *q.first().ok_or(WireError::Truncated)?;
        if v >> 4 != 4 {
            return Err(WireError::BadVersion);
        }
        let ihl = usize::from(v & 0x0f) * 4;
        if ihl < 20 {
            return Err(WireError::BadLength);
        }
        let l4 = q.get(ihl..).filter(|l| l.len() >= 8);
        let (Some(l4), Some(hdr)) = (l4, q.get(..20)) else {
            return Err(WireError::Truncated);
        };
        let ip = |o: usize| Ipv4Addr::new(hdr[o], hdr[o + 1], hdr[o + 2], hdr[o + 3]);
        Ok(IcmpError {
            icmp_type,
            code,
            next_hop_mtu,
            src: ip(12),
            dst: ip(16),
            protocol: IpProtocol::from(hdr[9]),
            total_len: u16::from_be_bytes([hdr[2], hdr[3]]),
            l4,
        })
    }

    /// Quoted source and destination ports (TCP and UDP put them first).
    pub fn ports(&self) -> (u16, u16) {
        let p = |o: usize| u16::from_be_bytes([self.l4[o], self.l4[o + 1]]);
        (p(0), p(2))
    }

    /// The quoted TCP sequence number.
    pub fn tcp_seq(&self) -> u32 {
        u32::from_be_bytes([self.l4[4], self.l4[5], self.l4[6], self.l4[7]])
    }
}

/// Write a "fragmentation needed" (RFC 1191 §4) for `packet` (an IPv4
/// datagram, header on) into `buf`, quoting its header and first 8 payload
/// bytes (RFC 792). Returns the ICMP message length, or 0 when `buf` is
/// too short or `packet` has no valid header.
pub fn emit_frag_needed(buf: &mut [u8], packet: &[u8], mtu: u16) -> usize {
    let ihl = usize::from(packet.first().copied().unwrap_or(0) & 0x0f) * 4;
    if ihl < 20 || packet.len() < ihl {
        return 0;
    }
    let quoted = &packet[..packet.len().min(ihl + 8)];
    let n = 8 + quoted.len();
    let Some(msg) = buf.get_mut(..n) else {
        return 0;
    };
    msg[..8].copy_from_slice(&[TYPE_DEST_UNREACHABLE, CODE_FRAG_NEEDED, 0, 0, 0, 0, 0, 0]);
    msg[6..8].copy_from_slice(&mtu.to_be_bytes());
    msg[8..].copy_from_slice(quoted);
    let c = checksum::checksum(msg);
    msg[2..4].copy_from_slice(&c.to_be_bytes());
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quoted_tcp() -> Vec<u8> {
        let mut p = vec![0u8; 40];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&1500u16.to_be_bytes());
        p[9] = 6;
        p[12..16].copy_from_slice(&[198, 18, 0, 1]);
        p[16..20].copy_from_slice(&[198, 18, 0, 2]);
        p[20..22].copy_from_slice(&80u16.to_be_bytes());
        p[22..24].copy_from_slice(&40000u16.to_be_bytes());
        p[24..28].copy_from_slice(&0x01020304u32.to_be_bytes());
        p
    }

    #[test]
    fn frag_needed_round_trip() {
        let mut buf = [0u8; 128];
        let n = emit_frag_needed(&mut buf, &quoted_tcp(), 1280);
        assert_eq!(n, 8 + 28);
        let e = IcmpError::parse(&buf[..n]).unwrap();
        assert_eq!((e.icmp_type, e.code, e.next_hop_mtu), (3, 4, 1280));
        assert_eq!(e.src, Ipv4Addr::new(198, 18, 0, 1));
        assert_eq!(e.dst, Ipv4Addr::new(198, 18, 0, 2));
        assert_eq!(e.protocol, IpProtocol::Tcp);
        assert_eq!(e.total_len, 1500);
        assert_eq!(e.ports(), (80, 40000));
        assert_eq!(e.tcp_seq(), 0x01020304);
    }

    #[test]
    fn malformed_errors_are_rejected() {
        let mut buf = [0u8; 128];
        let n = emit_frag_needed(&mut buf, &quoted_tcp(), 1280);
        // Every truncation fails cleanly.
        for k in 0..n {
            assert!(IcmpError::parse(&buf[..k]).is_err(), "length {k}");
        }
        // A corrupted byte fails the checksum.
        let mut bad = buf;
        bad[20] ^= 1;
        assert_eq!(IcmpError::parse(&bad[..n]), Err(WireError::BadChecksum));
        // An echo request is not an error.
        let echo = [8u8, 0, 0xf7, 0xff, 0, 0, 0, 0];
        assert_eq!(IcmpError::parse(&echo), Err(WireError::Unsupported));
    }
}
