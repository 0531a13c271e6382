//! ICMPv4 (RFC 792): echo request/reply; other types are recognised and
//! reported as `Other` so the stack can count them.

use super::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpRepr<'a> {
    EchoRequest { ident: u16, seq: u16, data: &'a [u8] },
    EchoReply { ident: u16, seq: u16, data: &'a [u8] },
    /// Any other type (destination unreachable, time exceeded, ...).
    Other { icmp_type: u8, code: u8 },
}

impl<'a> IcmpRepr<'a> {
    /// Parse an ICMP message (the IPv4 payload), verifying its checksum.
    pub fn parse(buf: &'a [u8]) -> Result<IcmpRepr<'a>> {
        let _ = buf;
        todo!()
    }

    /// Bytes `emit` writes.
    pub fn buffer_len(&self) -> usize {
        todo!()
    }

    /// Write the message with its checksum into `buf[..buffer_len()]`.
    pub fn emit(&self, buf: &mut [u8]) {
        let _ = buf;
        todo!()
    }
}
