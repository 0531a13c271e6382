//! ICMP (RFC 792): echo requests are answered (RFC 1122 §3.2.2.6), other
//! messages counted.

use super::iface::L2L3_LEN;
use super::Stack;
use crate::io::{Device, Frame};
use crate::time::Instant;
use crate::wire::{IcmpRepr, IpProtocol, Ipv4Repr};

impl<D: Device> Stack<D> {
    pub(super) fn icmp_input(&mut self, now: Instant, ip: &Ipv4Repr, buf: &[u8]) {
        let icmp = match IcmpRepr::parse(buf) {
            Ok(i) => i,
            Err(e) => return self.iface.counters.wire_error(e),
        };
        let IcmpRepr::EchoRequest { ident, seq, data } = icmp else {
            self.iface.counters.icmp_other += 1;
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
