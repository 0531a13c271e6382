//! The [`SegmentSink`] of the stack: TCP, IPv4 and Ethernet headers written
//! in front of each segment a connection emits, then handed to the device.
//!
//! Send data stays in the connection's frame when it can (`Payload::InPlace`:
//! headers go into the headroom and the frame leaves with
//! `Device::transmit_ref`, or waits while its previous transmission is still
//! the device's); otherwise the segment is built in a fresh frame.
//!
//! Segments whose next hop is still being resolved by ARP are copied into a
//! fresh frame and queued in the ARP cache's bounded per-hop queue (overflow
//! counted as `drop_arp_queue` and reported to TCP as sent: it retransmits
//! like after any loss). This lets the SYN of an active open leave as soon as
//! ARP answers instead of after the first RTO.

use super::iface::{Iface, L2L3_LEN};
use super::tx_template::{write_plain_tcp, L2L3Template, PLAIN_TS_LEN};
use crate::io::{Device, Frame};
use crate::tcp::{FourTuple, Payload, PlainHeader, SegmentSink, TcpRepr};
use crate::time::Instant;
use crate::wire::tcp::Layout;

/// The sink given to `Connection::poll_transmit` for one connection.
pub(crate) struct TcpTx<'a, D: Device> {
    pub iface: &'a mut Iface<D>,
    pub tuple: FourTuple,
    /// The connection's prebuilt Ethernet + IPv4 headers.
    pub head: &'a mut L2L3Template,
    pub now: Instant,
    /// Some emit returned false: try this connection again on the next poll.
    pub blocked: bool,
}

impl<D: Device> SegmentSink<D::Frame> for TcpTx<'_, D> {
    fn emit(&mut self, seg: &TcpRepr, payload: Payload<'_, D::Frame>, ect: bool) -> bool {
        let ok = self
            .iface
            .emit_tcp_with(self.now, &self.tuple, self.head, seg, payload, ect);
        if !ok {
            self.blocked = true;
        }
        ok
    }

    #[inline]
    fn emit_plain(&mut self, hdr: &PlainHeader, payload: Payload<'_, D::Frame>, ect: bool) -> bool {
        let ok = self.iface.emit_tcp_head(
            self.now,
            &self.tuple,
            self.head,
            TcpHead::Plain(hdr),
            payload,
            ect,
        );
        if !ok {
            self.blocked = true;
        }
        ok
    }

    fn alloc(&mut self) -> Option<D::Frame> {
        self.iface.alloc()
    }
}

/// A TCP header to write: a `TcpRepr` with its options' layout, or the
/// steady state's [`PlainHeader`].
enum TcpHead<'a> {
    Repr(&'a TcpRepr, Layout),
    Plain(&'a PlainHeader),
}

impl TcpHead<'_> {
    /// The header's length in bytes.
    #[inline]
    fn len(&self) -> usize {
        TcpRepr::MIN_HEADER_LEN
            + match self {
                TcpHead::Repr(_, layout) => layout.len,
                TcpHead::Plain(h) => h.ts.map_or(0, |_| PLAIN_TS_LEN),
            }
    }
}

impl<D: Device> Iface<D> {
    /// Write Ethernet + IPv4 + TCP headers over `pkt` (which starts where the
    /// Ethernet header goes and ends at the end of the payload; the first
    /// two and the TCP pseudo-header's sum come from `head`, prepared for
    /// the segment's addresses and next hop).
    #[inline(always)]
    fn write_tcp(&mut self, pkt: &mut [u8], head: &L2L3Template, tcp: &TcpHead<'_>, ect: bool) {
        match tcp {
            TcpHead::Repr(seg, layout) => {
                seg.emit_header_with(layout, &mut pkt[L2L3_LEN..]);
            }
            TcpHead::Plain(h) => {
                if let Some(ts) = h.ts {
                    // The straight path: the connection's prebuilt headers
                    // as one block, the variable words patched and summed.
                    let partial = self.dev.tx_checksum_offload();
                    head.write_plain_ts(pkt, h, ts, self.ident, ect, partial);
                    self.ident = self.ident.wrapping_add(1);
                    return;
                }
                write_plain_tcp(h, &mut pkt[L2L3_LEN..]);
            }
        }
        if self.dev.tx_checksum_offload() {
            // The device sums the segment (AF_XDP TX metadata).
            TcpRepr::fill_partial_checksum_with(&mut pkt[L2L3_LEN..], head.tcp_ph);
        } else {
            TcpRepr::fill_checksum_with(&mut pkt[L2L3_LEN..], head.tcp_ph);
        }
        head.write(pkt, self.ident, ect);
        self.ident = self.ident.wrapping_add(1);
    }

    /// Emit one TCP segment of `tuple` outside a connection (a SYN-ACK
    /// from a cookie, a RST): [`Self::emit_tcp_with`] with headers built
    /// for this segment alone.
    pub(crate) fn emit_tcp(
        &mut self,
        now: Instant,
        tuple: &FourTuple,
        seg: &TcpRepr,
        payload: Payload<'_, D::Frame>,
        ect: bool,
    ) -> bool {
        let mut head = L2L3Template::default();
        self.emit_tcp_with(now, tuple, &mut head, seg, payload, ect)
    }

    /// Emit one TCP segment of `tuple` (see the module doc), its Ethernet
    /// and IPv4 headers from the connection's template `head` (rebuilt
    /// when the next hop's MAC changed). Returns false when it could not
    /// be sent now (no frame, device ring full).
    pub(crate) fn emit_tcp_with(
        &mut self,
        now: Instant,
        tuple: &FourTuple,
        head: &mut L2L3Template,
        seg: &TcpRepr,
        payload: Payload<'_, D::Frame>,
        ect: bool,
    ) -> bool {
        // The options' layout once: for the header's length and for
        // writing it.
        let layout = seg.options.layout();
        self.emit_tcp_head(now, tuple, head, TcpHead::Repr(seg, layout), payload, ect)
    }

    /// [`Self::emit_tcp_with`] for a TCP header in either form. Inlined
    /// into both of its callers (the sink's two entries): one call less
    /// per segment.
    #[inline(always)]
    fn emit_tcp_head(
        &mut self,
        now: Instant,
        tuple: &FourTuple,
        head: &mut L2L3Template,
        tcp: TcpHead<'_>,
        payload: Payload<'_, D::Frame>,
        ect: bool,
    ) -> bool {
        let Some(hop) = self.next_hop(*tuple.remote.ip()) else {
            self.counters.drop_no_route += 1;
            return true;
        };
        let hdrs = L2L3_LEN + tcp.len();
        let mac = self.resolve(hop, now);
        // Unresolved: a zero destination MAC, filled in when ARP answers.
        head.prepare(self.mac, mac.unwrap_or_default(), tuple);

        let payload = match (mac, payload) {
            (Some(_), Payload::InPlace { frame, start, end })
                if start >= hdrs && start <= end && end <= frame.buf().len() =>
            {
                if !self.dev.can_rewrite(frame) {
                    // design.md: a retransmission resubmits the same frame
                    // once its previous transmission has completed (until
                    // then its bytes are the device's). Refused, not
                    // copied: the connection tries again on the next poll,
                    // and the worker keeps polling while transmissions are
                    // in flight.
                    self.counters.tx_rewrite_waits += 1;
                    return false;
                }
                let fs = start - hdrs;
                self.write_tcp(&mut frame.buf_mut()[fs..end], head, &tcp, ect);
                let ok = self.dev.transmit_ref(frame, fs, end);
                if ok {
                    self.counters.tx_packets += 1;
                    self.counters.tx_bytes += (end - fs) as u64;
                } else {
                    self.counters.tx_dropped += 1;
                }
                return ok;
            }
            (_, p) => p,
        };

        // Copy path: a fresh frame with the headers at its start.
        let Some(mut f) = self.alloc() else {
            return false;
        };
        let data: &[u8] = match &payload {
            Payload::None => &[],
            Payload::Bytes(b) => b,
            Payload::InPlace { frame, start, end } => frame.buf().get(*start..*end).unwrap_or(&[]),
        };
        let total = hdrs + data.len();
        if total > f.buf().len() {
            // Larger than a frame: a configuration error (MSS above the MTU).
            self.counters.tx_dropped += 1;
            return true;
        }
        f.buf_mut()[hdrs..total].copy_from_slice(data);
        self.write_tcp(&mut f.buf_mut()[..total], head, &tcp, ect);
        match mac {
            Some(_) => self.transmit(f, 0, total),
            None => self.send_frame(now, hop, f, 0, total),
        }
    }
}

#[cfg(test)]
#[path = "emit_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "tx_straight_tests.rs"]
mod straight_tests;
