//! ARP for IPv4 over Ethernet (RFC 826).

use super::{MacAddr, Result, WireError};
use core::net::Ipv4Addr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArpOp {
    Request,
    Reply,
}

/// An ARP packet for hardware type Ethernet and protocol IPv4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub op: ArpOp,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

/// RFC 826 ar$hrd for Ethernet (10Mb) and ar$pro for IPv4.
const HTYPE_ETHERNET: u16 = 1;
const PTYPE_IPV4: u16 = 0x0800;

impl ArpRepr {
    pub const LEN: usize = 28;

    /// Parse an ARP packet (the Ethernet payload). Other hardware/protocol
    /// types are `BadVersion`, other opcodes `Unsupported`. Bytes beyond
    /// `LEN` (Ethernet minimum-frame padding) are ignored.
    pub fn parse(buf: &[u8]) -> Result<ArpRepr> {
        let p: &[u8; 28] = buf
            .get(..Self::LEN)
            .and_then(|b| b.try_into().ok())
            .ok_or(WireError::Truncated)?;
        let be16 = |i: usize| u16::from_be_bytes([p[i], p[i + 1]]);
        // RFC 826: ar$hrd, ar$pro, ar$hln, ar$pln must be what we speak.
        if be16(0) != HTYPE_ETHERNET || be16(2) != PTYPE_IPV4 || p[4] != 6 || p[5] != 4 {
            return Err(WireError::BadVersion);
        }
        let op = match be16(6) {
            1 => ArpOp::Request,
            2 => ArpOp::Reply,
            _ => return Err(WireError::Unsupported),
        };
        let mac = |i: usize| {
            let mut m = [0u8; 6];
            m.copy_from_slice(&p[i..i + 6]);
            MacAddr(m)
        };
        let ip = |i: usize| Ipv4Addr::new(p[i], p[i + 1], p[i + 2], p[i + 3]);
        Ok(ArpRepr {
            op,
            sender_mac: mac(8),
            sender_ip: ip(14),
            target_mac: mac(18),
            target_ip: ip(24),
        })
    }

    /// Write the packet into `buf[..LEN]`.
    ///
    /// # Panics
    /// If `buf` is shorter than `LEN` (a caller bug, not input).
    pub fn emit(&self, buf: &mut [u8]) {
        let p = &mut buf[..Self::LEN];
        p[0..2].copy_from_slice(&HTYPE_ETHERNET.to_be_bytes());
        p[2..4].copy_from_slice(&PTYPE_IPV4.to_be_bytes());
        p[4] = 6;
        p[5] = 4;
        let op: u16 = match self.op {
            ArpOp::Request => 1,
            ArpOp::Reply => 2,
        };
        p[6..8].copy_from_slice(&op.to_be_bytes());
        p[8..14].copy_from_slice(&self.sender_mac.0);
        p[14..18].copy_from_slice(&self.sender_ip.octets());
        p[18..24].copy_from_slice(&self.target_mac.0);
        p[24..28].copy_from_slice(&self.target_ip.octets());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A who-has 198.18.0.2 tell 198.18.0.1 request, as Linux sends it.
    const REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // hrd pro hln pln op
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 198, 18, 0, 1, // sender
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 198, 18, 0, 2, // target
    ];

    #[test]
    fn parse_request() {
        let a = ArpRepr::parse(&REQUEST).unwrap();
        assert_eq!(
            a,
            ArpRepr {
                op: ArpOp::Request,
                sender_mac: MacAddr([2, 0, 0, 0, 0, 1]),
                sender_ip: Ipv4Addr::new(198, 18, 0, 1),
                target_mac: MacAddr::default(),
                target_ip: Ipv4Addr::new(198, 18, 0, 2),
            }
        );
        let mut buf = [0u8; 28];
        a.emit(&mut buf);
        assert_eq!(buf, REQUEST);
    }

    #[test]
    fn reply_round_trip_with_padding() {
        let a = ArpRepr {
            op: ArpOp::Reply,
            sender_mac: MacAddr([2, 0, 0, 0, 0, 2]),
            sender_ip: Ipv4Addr::new(198, 18, 0, 2),
            target_mac: MacAddr([2, 0, 0, 0, 0, 1]),
            target_ip: Ipv4Addr::new(198, 18, 0, 1),
        };
        // Ethernet pads ARP to the 46-byte minimum payload.
        let mut buf = [0u8; 46];
        a.emit(&mut buf);
        assert_eq!(&buf[6..8], &[0, 2]);
        assert_eq!(ArpRepr::parse(&buf), Ok(a));
    }

    #[test]
    fn malformed() {
        for n in 0..28 {
            assert_eq!(ArpRepr::parse(&REQUEST[..n]), Err(WireError::Truncated));
        }
        for (i, v) in [(1, 6u8), (2, 0x86), (4, 8), (5, 16)] {
            let mut p = REQUEST;
            p[i] = v;
            assert_eq!(ArpRepr::parse(&p), Err(WireError::BadVersion), "byte {i}");
        }
        for op in [0u16, 3, 4, 0x0101] {
            let mut p = REQUEST;
            p[6..8].copy_from_slice(&op.to_be_bytes());
            assert_eq!(ArpRepr::parse(&p), Err(WireError::Unsupported), "op {op}");
        }
    }
}
