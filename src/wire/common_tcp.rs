//! The receive path's common frame read at fixed offsets: Ethernet II to
//! our MAC, an IPv4 header without options (IHL 5) that is not a fragment
//! and is addressed to one given address, and a TCP header with no options
//! or only the RFC 7323 Appendix A timestamp layout (`NOP, NOP, TS`).
//!
//! Every check the general parsers (`EthernetRepr`, `Ipv4Repr`, `TcpRepr`)
//! would make on such a frame is made here too, with the same outcome for
//! the frames it accepts; anything else returns `None` untouched, for the
//! general path to handle (and count) as before. No `Result` and no
//! intermediate `Repr` values: the TCP header is written straight into the
//! caller's `TcpRepr`.

use super::checksum;
use super::ethernet::MacAddr;
use super::tcp::{SeqNumber, TcpFlags, TcpRepr};
use core::net::Ipv4Addr;

const ETH: usize = 14;
const IP: usize = 20;
const TCP: usize = 20;
/// The data offset (in words, high nibble) of a header with the 12-byte
/// `NOP, NOP, TS` option block (RFC 7323 Appendix A).
const TCP_TS: usize = 32;

/// What the general path would have taken from the IPv4 header, and where
/// the TCP payload lies in the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommonTcp {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// RFC 3168 §5: the ECN field of the IPv4 header.
    pub ecn: u8,
    /// Payload start and end in the frame.
    pub payload: (usize, usize),
    /// The TCP checksum field held only the pseudo-header sum (accepted
    /// with `accept_partial`, as `TcpRepr::parse_rx` does).
    pub partial: bool,
}

/// Read `frame` (its first `len` bytes) as the common frame to `mac` and
/// `addr`; on success `seg` (which must be `TcpRepr::default()`) holds the
/// TCP header exactly as `TcpRepr::parse_rx_into` would have filled it.
/// `None` (with `seg` unchanged): not the common frame, or one the general
/// path drops (a bad checksum, a bad length), which it then counts.
#[inline]
pub fn parse(
    frame: &[u8],
    len: usize,
    mac: &MacAddr,
    addr: Ipv4Addr,
    accept_partial: bool,
    seg: &mut TcpRepr,
) -> Option<CommonTcp> {
    let frame = frame.get(..len)?;
    let h: &[u8; ETH + IP + TCP] = frame.get(..ETH + IP + TCP)?.try_into().ok()?;
    // Ethernet II to our MAC (not broadcast: RFC 1122 §3.3.6), IPv4.
    if h[..6] != mac.0 || h[12..14] != [0x08, 0x00] {
        return None;
    }
    let ip: &[u8; IP] = h[ETH..ETH + IP].try_into().ok()?;
    // RFC 791 §3.1: version 4, IHL 5 (options go the general way); TCP.
    if ip[0] != 0x45 || ip[9] != 6 {
        return None;
    }
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    // The datagram within the frame (link padding beyond it ignored) and
    // long enough for a TCP header; the rest (truncation, a short TCP
    // header) is the general path's to count.
    if total < IP + TCP || ETH + total > len {
        return None;
    }
    // RFC 791 §3.1: not a fragment (MF clear, offset 0; DF may be set).
    if u16::from_be_bytes([ip[6], ip[7]]) & 0x3fff != 0 {
        return None;
    }
    // RFC 1122 §3.3.4.2: to our address (the caller's one address).
    let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
    if dst != addr {
        return None;
    }
    // RFC 791 §3.1 Header Checksum.
    if checksum::sum_ipv4_header(ip) != 0xffff {
        return None;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let segment = &frame[ETH + IP..ETH + total];
    let tcp = &h[ETH + IP..];
    // RFC 9293 §3.1 Data Offset: 5 words, or 8 with the timestamp block.
    let header_len = usize::from(tcp[12] >> 4) * 4;
    let timestamps = match header_len {
        TCP => None,
        TCP_TS => match segment.get(TCP..TCP_TS)? {
            // RFC 7323 §3: Kind 8, Length 10, TSval, TSecr.
            [1, 1, 8, 10, a, b, c, d, e, f, g, h] => Some((
                u32::from_be_bytes([*a, *b, *c, *d]),
                u32::from_be_bytes([*e, *f, *g, *h]),
            )),
            _ => return None,
        },
        _ => return None,
    };
    // RFC 9293 §3.1: the checksum over the pseudo-header and the segment.
    // `checksum::verify_l4`'s test inline (its call and the slice
    // checks cost about as much as summing a short segment): with the
    // partial checksum accepted, a field equal to the pseudo-header sum
    // sums nothing.
    let ph = checksum::pseudo_header(src, dst, 6, segment.len());
    let partial = if accept_partial && u16::from_be_bytes([tcp[16], tcp[17]]) == ph {
        true
    } else if checksum::fold(u64::from(ph) + u64::from(checksum::sum_inline(segment))) == 0xffff {
        false
    } else {
        return None;
    };
    let be32 = |i: usize| u32::from_be_bytes([tcp[i], tcp[i + 1], tcp[i + 2], tcp[i + 3]]);
    seg.src_port = u16::from_be_bytes([tcp[0], tcp[1]]);
    seg.dst_port = u16::from_be_bytes([tcp[2], tcp[3]]);
    seg.seq = SeqNumber(be32(4));
    seg.ack = SeqNumber(be32(8));
    // The 8-bit control field, as `TcpRepr`'s parse reads it.
    seg.flags = TcpFlags(tcp[13]);
    seg.window = u16::from_be_bytes([tcp[14], tcp[15]]);
    seg.urgent = u16::from_be_bytes([tcp[18], tcp[19]]);
    seg.options.timestamps = timestamps;
    Some(CommonTcp {
        src,
        dst,
        ecn: ip[1] & 0x03,
        payload: (ETH + IP + header_len, ETH + total),
        partial,
    })
}
