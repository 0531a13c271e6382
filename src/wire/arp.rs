//! ARP for IPv4 over Ethernet (RFC 826).

use super::{MacAddr, Result};
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

impl ArpRepr {
    pub const LEN: usize = 28;

    /// Parse an ARP packet (the Ethernet payload). Other hardware/protocol
    /// types are `BadVersion`, other opcodes `Unsupported`.
    pub fn parse(buf: &[u8]) -> Result<ArpRepr> {
        let _ = buf;
        todo!()
    }

    /// Write the packet into `buf[..LEN]`.
    pub fn emit(&self, buf: &mut [u8]) {
        let _ = buf;
        todo!()
    }
}
