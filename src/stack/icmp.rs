//! ICMP (RFC 792): echo requests are answered (RFC 1122 §3.2.2.6, rate
//! limited), errors are passed up to TCP and UDP (`icmp_err`), other
//! messages counted.

use super::iface::L2L3_LEN;
use super::Stack;
use crate::io::{Device, Frame};
use crate::time::Instant;
use crate::wire::{checksum, IcmpError, IcmpRepr, IpProtocol, Ipv4Repr};

/// Type 3 (destination unreachable), code 3 (port unreachable).
const TYPE_DEST_UNREACHABLE: u8 = 3;
const CODE_PORT_UNREACHABLE: u8 = 3;
/// Type 11 (time exceeded), code 1 (fragment reassembly time exceeded).
pub(super) const TYPE_TIME_EXCEEDED: u8 = 11;
pub(super) const CODE_REASSEMBLY: u8 = 1;

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
        // Echo replies answer whoever asks: bounded like the other answers.
        if !self.limits.echo.take(now) {
            self.iface.counters.icmp_echo_rate_limited += 1;
            return;
        }
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
        if self.send_icmp_error(
            now,
            ip,
            packet,
            TYPE_DEST_UNREACHABLE,
            CODE_PORT_UNREACHABLE,
        ) {
            self.iface.counters.icmp_unreachables_sent += 1;
        }
    }

    /// Send ICMP error `icmp_type`/`code` about datagram `packet` (IP
    /// header on) that `ip` describes, rate limited. Returns whether it left.
    pub(super) fn send_icmp_error(
        &mut self,
        now: Instant,
        ip: &Ipv4Repr,
        packet: &[u8],
        icmp_type: u8,
        code: u8,
    ) -> bool {
        if !self.limits.icmp_errors.take(now) {
            self.iface.counters.icmp_rate_limited += 1;
            return false;
        }
        let Some(hop) = self.iface.next_hop(ip.src) else {
            self.iface.counters.drop_no_route += 1;
            return false;
        };
        let Some(mut f) = self.iface.alloc() else {
            return false;
        };
        let hl = (usize::from(packet.first().copied().unwrap_or(0x45) & 0x0f) * 4).max(20);
        let quoted = &packet[..packet.len().min(hl + 8)];
        let icmp_len = IcmpRepr::HEADER_LEN + quoted.len();
        let total = L2L3_LEN + icmp_len;
        let Some(pkt) = f.buf_mut().get_mut(..total) else {
            self.iface.counters.tx_dropped += 1;
            return false;
        };
        let msg = &mut pkt[L2L3_LEN..];
        msg[..IcmpRepr::HEADER_LEN].copy_from_slice(&[icmp_type, code, 0, 0, 0, 0, 0, 0]);
        msg[IcmpRepr::HEADER_LEN..].copy_from_slice(quoted);
        let c = checksum::checksum(msg);
        msg[2..4].copy_from_slice(&c.to_be_bytes());
        self.iface
            .write_l2l3(pkt, ip.dst, ip.src, IpProtocol::Icmp, false, false);
        self.iface.send_frame(now, hop, f, 0, total)
    }
}
