//! ICMP (RFC 792): echo requests are answered (RFC 1122 §3.2.2.6), other
//! messages counted.

use super::iface::L2L3_LEN;
use super::Stack;
use crate::io::{Device, Frame};
use crate::time::Instant;
use crate::wire::{checksum, IcmpError, IcmpRepr, IpProtocol, Ipv4Repr};

/// RFC 1812 §4.3.2.8 / RFC 1122 §3.2.2: ICMP errors are rate-limited. A
/// token bucket: `ERROR_BURST` at once, refilled at one per
/// `ERROR_INTERVAL_US` (Linux: icmp_ratelimit 1 s per host, msgs_per_sec
/// 1000 overall; we keep one global bucket).
const ERROR_BURST: u32 = 10;
const ERROR_INTERVAL_US: u64 = 10_000;

/// Type 3 (destination unreachable), code 3 (port unreachable).
const TYPE_DEST_UNREACHABLE: u8 = 3;
const CODE_PORT_UNREACHABLE: u8 = 3;

/// The token bucket for ICMP errors we send.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ErrorBucket {
    tokens: u32,
    refilled: Instant,
}

impl ErrorBucket {
    pub(crate) fn new(now: Instant) -> Self {
        ErrorBucket {
            tokens: ERROR_BURST,
            refilled: now,
        }
    }

    /// Take a token if one is available at `now`.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        let earned = now.saturating_since(self.refilled).as_micros() as u64 / ERROR_INTERVAL_US;
        if earned > 0 {
            self.tokens = (u64::from(self.tokens) + earned).min(u64::from(ERROR_BURST)) as u32;
            self.refilled += core::time::Duration::from_micros(earned * ERROR_INTERVAL_US);
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

impl<D: Device> Stack<D> {
    pub(super) fn icmp_input(&mut self, now: Instant, ip: &Ipv4Repr, buf: &[u8]) {
        let icmp = match IcmpRepr::parse(buf) {
            Ok(i) => i,
            Err(e) => return self.iface.counters.wire_error(e),
        };
        let IcmpRepr::EchoRequest { ident, seq, data } = icmp else {
            match icmp {
                IcmpRepr::Other { icmp_type, .. } if IcmpError::is_error_type(icmp_type) => {
                    self.icmp_error_input(now, ip, buf)
                }
                _ => self.iface.counters.icmp_other += 1,
            }
            return;
        };
        // RFC 1122 §3.2.2.6: "data received in an ICMP Echo Request MUST be
        // entirely included in the resulting Echo Reply", from the address
        // the request was sent to.
        let reply = IcmpRepr::EchoReply { ident, seq, data };
        let Some(hop) = self.iface.next_hop(ip.src) else {
            self.iface.counters.drop_no_route += 1;
            return;
        };
        let Some(mut f) = self.iface.alloc() else {
            return;
        };
        let total = L2L3_LEN + reply.buffer_len();
        let Some(pkt) = f.buf_mut().get_mut(..total) else {
            self.iface.counters.tx_dropped += 1;
            return;
        };
        reply.emit(&mut pkt[L2L3_LEN..]);
        self.iface
            .write_l2l3(pkt, ip.dst, ip.src, IpProtocol::Icmp, false, false);
        if self.iface.send_frame(now, hop, f, 0, total) {
            self.iface.counters.icmp_echo_replies += 1;
        }
    }
}

impl<D: Device> Stack<D> {
    /// RFC 1122 §4.1.3.1: a datagram to a port with no socket SHOULD get a
    /// port unreachable. RFC 792: it carries the offending IP header and the
    /// first 64 bits of its data. `packet` is that datagram (IP header on).
    pub(super) fn send_port_unreachable(&mut self, now: Instant, ip: &Ipv4Repr, packet: &[u8]) {
        if !self.icmp_errors.take(now) {
            self.iface.counters.icmp_rate_limited += 1;
            return;
        }
        let Some(hop) = self.iface.next_hop(ip.src) else {
            self.iface.counters.drop_no_route += 1;
            return;
        };
        let Some(mut f) = self.iface.alloc() else {
            return;
        };
        let hl = (usize::from(packet.first().copied().unwrap_or(0x45) & 0x0f) * 4).max(20);
        let quoted = &packet[..packet.len().min(hl + 8)];
        let icmp_len = IcmpRepr::HEADER_LEN + quoted.len();
        let total = L2L3_LEN + icmp_len;
        let Some(pkt) = f.buf_mut().get_mut(..total) else {
            self.iface.counters.tx_dropped += 1;
            return;
        };
        let msg = &mut pkt[L2L3_LEN..];
        msg[..IcmpRepr::HEADER_LEN].copy_from_slice(&[
            TYPE_DEST_UNREACHABLE,
            CODE_PORT_UNREACHABLE,
            0,
            0,
            0,
            0,
            0,
            0,
        ]);
        msg[IcmpRepr::HEADER_LEN..].copy_from_slice(quoted);
        let c = checksum::checksum(msg);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
        self.iface
            .write_l2l3(pkt, ip.dst, ip.src, IpProtocol::Icmp, false, false);
        if self.iface.send_frame(now, hop, f, 0, total) {
            self.iface.counters.icmp_unreachables_sent += 1;
        }
    }
}
