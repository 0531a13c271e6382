//! Ethernet II (IEEE 802.3 / DIX) framing.

use super::{Result, WireError};

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);

    /// Group (multicast or broadcast) address: the I/G bit of the first octet.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
}

impl core::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let m = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

/// EtherType values we handle; anything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    Ipv4,
    Arp,
    Other(u16),
}

impl EtherType {
    pub const IPV4: u16 = 0x0800;
    pub const ARP: u16 = 0x0806;
}

impl From<u16> for EtherType {
    fn from(v: u16) -> EtherType {
        match v {
            EtherType::IPV4 => EtherType::Ipv4,
            EtherType::ARP => EtherType::Arp,
            other => EtherType::Other(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => EtherType::IPV4,
            EtherType::Arp => EtherType::ARP,
            EtherType::Other(v) => v,
        }
    }
}

/// An Ethernet II header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EthernetRepr {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub ethertype: EtherType,
}

impl EthernetRepr {
    pub const HEADER_LEN: usize = 14;

    pub fn new(dst: MacAddr, src: MacAddr, ethertype: EtherType) -> EthernetRepr {
        EthernetRepr {
            dst,
            src,
            ethertype,
        }
    }

    /// Parse the header; the payload starts at `HEADER_LEN`.
    pub fn parse(frame: &[u8]) -> Result<EthernetRepr> {
        let hdr: &[u8; 14] = frame
            .get(..Self::HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(WireError::Truncated)?;
        let mut dst = [0u8; 6];
        let mut src = [0u8; 6];
        dst.copy_from_slice(&hdr[0..6]);
        src.copy_from_slice(&hdr[6..12]);
        Ok(EthernetRepr {
            dst: MacAddr(dst),
            src: MacAddr(src),
            ethertype: EtherType::from(u16::from_be_bytes([hdr[12], hdr[13]])),
        })
    }

    /// Write the header into `buf[..HEADER_LEN]`.
    ///
    /// # Panics
    /// If `buf` is shorter than `HEADER_LEN` (a caller bug, not input).
    pub fn emit(&self, buf: &mut [u8]) {
        let hdr = &mut buf[..Self::HEADER_LEN];
        hdr[0..6].copy_from_slice(&self.dst.0);
        hdr[6..12].copy_from_slice(&self.src.0);
        hdr[12..14].copy_from_slice(&u16::from(self.ethertype).to_be_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FRAME: [u8; 16] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, // dst
        0x02, 0x00, 0x00, 0x00, 0x00, 0x01, // src
        0x08, 0x06, // ARP
        0xaa, 0xbb, // payload
    ];

    #[test]
    fn parse_known_frame() {
        let e = EthernetRepr::parse(&FRAME).unwrap();
        assert_eq!(e.dst, MacAddr::BROADCAST);
        assert!(e.dst.is_broadcast() && e.dst.is_multicast());
        assert_eq!(e.src, MacAddr([2, 0, 0, 0, 0, 1]));
        assert!(!e.src.is_multicast());
        assert_eq!(e.ethertype, EtherType::Arp);
        assert_eq!(e.src.to_string(), "02:00:00:00:00:01");
    }

    #[test]
    fn round_trip_and_layout() {
        let e = EthernetRepr::new(
            MacAddr([1, 2, 3, 4, 5, 6]),
            MacAddr([7, 8, 9, 10, 11, 12]),
            EtherType::Ipv4,
        );
        let mut buf = [0u8; 14];
        e.emit(&mut buf);
        assert_eq!(buf, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 0x08, 0x00]);
        assert_eq!(EthernetRepr::parse(&buf), Ok(e));
        let other = EthernetRepr {
            ethertype: EtherType::Other(0x86dd),
            ..e
        };
        other.emit(&mut buf);
        assert_eq!(&buf[12..], &[0x86, 0xdd]);
        assert_eq!(EthernetRepr::parse(&buf), Ok(other));
    }

    #[test]
    fn truncated() {
        for n in 0..14 {
            assert_eq!(EthernetRepr::parse(&FRAME[..n]), Err(WireError::Truncated));
        }
        assert!(EthernetRepr::parse(&FRAME[..14]).is_ok());
    }

    #[test]
    fn ethertype_conversions() {
        for v in [0x0800u16, 0x0806, 0x86dd, 0, 0xffff] {
            assert_eq!(u16::from(EtherType::from(v)), v);
        }
        assert_eq!(EtherType::from(0x0800), EtherType::Ipv4);
        assert_eq!(EtherType::from(0x0806), EtherType::Arp);
    }
}
