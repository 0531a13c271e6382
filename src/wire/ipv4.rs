//! IPv4 (RFC 791). Options are skipped; fragments are detected and rejected.

use super::Result;
use core::net::Ipv4Addr;

/// IP protocol numbers we handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    Icmp,
    Tcp,
    Udp,
    Other(u8),
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

impl Ipv4Repr {
    /// Header length of what we emit (no options).
    pub const HEADER_LEN: usize = 20;

    /// Parse and verify the header checksum. Returns the header and the
    /// header length (20 + options); the payload is
    /// `packet[header_len..header_len + payload_len]` (trailing link padding
    /// beyond the total length is ignored). Fragments are `Fragment`.
    pub fn parse(packet: &[u8]) -> Result<(Ipv4Repr, usize)> {
        let _ = packet;
        todo!()
    }

    /// Write a 20-byte header (no options) with its checksum into
    /// `buf[..HEADER_LEN]`.
    pub fn emit(&self, buf: &mut [u8]) {
        let _ = buf;
        todo!()
    }
}
