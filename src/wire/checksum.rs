//! The Internet checksum (RFC 1071), word-at-a-time, and its incremental
//! update (RFC 1624) for rewritten headers.

use core::net::Ipv4Addr;

/// One's-complement sum of `data` folded to 16 bits (not inverted).
pub fn sum(data: &[u8]) -> u16 {
    let _ = data;
    todo!()
}

/// Combine partial sums (one's-complement addition).
pub fn combine(sums: &[u16]) -> u16 {
    let _ = sums;
    todo!()
}

/// Sum of the IPv4 pseudo-header (RFC 9293 §3.1) for `protocol` and `len`.
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: usize) -> u16 {
    let _ = (src, dst, protocol, len);
    todo!()
}

/// The checksum field value for `data` (inverted sum; 0 result stays 0).
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// RFC 1624 eqn. 3: new checksum after a 16-bit field changed `old` -> `new`.
pub fn update(check: u16, old: u16, new: u16) -> u16 {
    let _ = (check, old, new);
    todo!()
}
