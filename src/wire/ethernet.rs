//! Ethernet II (IEEE 802.3 / DIX) framing.

use super::Result;

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
}

/// EtherType values we handle; anything else is `Other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    Ipv4,
    Arp,
    Other(u16),
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

    /// Parse the header; the payload starts at `HEADER_LEN`.
    pub fn parse(frame: &[u8]) -> Result<EthernetRepr> {
        let _ = frame;
        todo!()
    }

    /// Write the header into `buf[..HEADER_LEN]`.
    pub fn emit(&self, buf: &mut [u8]) {
        let _ = buf;
        todo!()
    }
}
