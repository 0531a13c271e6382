//! UDP (RFC 768): bound ports with a queue of datagrams that stay in
//! their frames (bounded by frames: a datagram reassembled from fragments
//! counts every frame it holds), and sending from a bound port, in
//! fragments when a datagram exceeds the MTU (RFC 791 §3.2).

use super::iface::L2L3_LEN;
use super::{Error, Stack};
use crate::app::Event;
use crate::io::{Device, Frame, Pkt};
use crate::time::Instant;
use crate::wire::{checksum, EthernetRepr, IpProtocol, Ipv4Repr, UdpRepr};
use core::net::SocketAddrV4;
use std::collections::VecDeque;

/// A received datagram's payload, zero-copy: one range of the frame it
/// arrived in, or (reassembled from fragments) one range per fragment.
pub struct Datagram<F> {
    first: Pkt<F>,
    /// Empty (no allocation) unless the datagram came in fragments.
    rest: Vec<Pkt<F>>,
}

impl<F: Frame> Datagram<F> {
    /// A datagram whose payload is `pkt`.
    pub fn single(pkt: Pkt<F>) -> Self {
        Datagram {
            first: pkt,
            rest: Vec::new(),
        }
    }

    /// The payload when it is in one piece (every unfragmented datagram).
    pub fn contiguous(&self) -> Option<&[u8]> {
        self.rest.is_empty().then(|| self.first.data())
    }

    /// The payload's pieces, in order.
    pub fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        core::iter::once(self.first.data()).chain(self.rest.iter().map(|p| p.data()))
    }

    /// Payload length.
    pub fn len(&self) -> usize {
        self.first.len() + self.rest.iter().map(|p| p.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frames held.
    pub fn frames(&self) -> usize {
        1 + self.rest.len()
    }

    /// Append the payload to `out`.
    pub fn copy_to(&self, out: &mut Vec<u8>) {
        for p in self.pieces() {
            out.extend_from_slice(p);
        }
    }
}

/// A bound UDP port.
pub(crate) struct UdpSocket<F> {
    /// Datagrams (source, payload).
    pub queue: VecDeque<(SocketAddrV4, Datagram<F>)>,
    /// Frames held by `queue` (bounded by `StackConfig::udp_queue`).
    pub frames: usize,
    /// A `UdpReadable` for this port is queued and not yet taken: no second
    /// one until then (the app drains the queue on the event).
    pub event_pending: bool,
    /// ICMP errors about datagrams sent from this port, oldest first.
    pub errors: VecDeque<UdpError>,
    /// A `UdpError` event for this port is queued and not yet taken.
    pub error_pending: bool,
}

/// An ICMP error about a datagram sent from a bound port (RFC 1122
/// §4.1.3.3), e.g. port unreachable (3, 3) or fragmentation needed (3, 4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UdpError {
    /// Where the datagram was going.
    pub remote: SocketAddrV4,
    pub icmp_type: u8,
    pub code: u8,
    /// RFC 1191 §4: the next-hop MTU of a "fragmentation needed".
    pub next_hop_mtu: u16,
}

impl<F> Default for UdpSocket<F> {
    fn default() -> Self {
        UdpSocket {
            queue: VecDeque::new(),
            frames: 0,
            event_pending: false,
            errors: VecDeque::new(),
            error_pending: false,
        }
    }
}

impl<D: Device> Stack<D> {
    pub(super) fn udp_input(
        &mut self,
        now: Instant,
        ip: &Ipv4Repr,
        frame: D::Frame,
        start: usize,
        end: usize,
    ) {
        let c = &mut self.iface.counters;
        let partial_ok = self.cfg.accept_partial_checksum;
        let (udp, range) =
            match UdpRepr::parse_rx(&frame.buf()[start..end], ip.src, ip.dst, partial_ok) {
                Ok((udp, range, partial)) => {
                    c.rx_csum_partial_accepted += u64::from(partial);
                    (udp, range)
                }
                Err(e) => return c.wire_error(e),
            };
        if range.start > range.end || start + range.end > end {
            c.drop_bad_length += 1;
            return;
        }
        let pkt = Pkt::new(frame, start + range.start, start + range.end);
        self.udp_deliver(now, ip, udp, Datagram::single(pkt));
    }

    /// A datagram reassembled from `parts` (the first starts with the UDP
    /// header): checked over its pieces, then delivered like any other.
    pub(super) fn udp_input_parts(
        &mut self,
        now: Instant,
        ip: &Ipv4Repr,
        mut parts: Vec<Pkt<D::Frame>>,
    ) {
        let c = &mut self.iface.counters;
        if parts.is_empty() || parts[0].len() < UdpRepr::HEADER_LEN {
            c.drop_truncated += 1;
            return;
        }
        let h = &parts[0].data()[..UdpRepr::HEADER_LEN];
        let length = usize::from(u16::from_be_bytes([h[4], h[5]]));
        // RFC 768: the length may be less than the IP payload (the rest is
        // padding), never more.
        if length < UdpRepr::HEADER_LEN {
            c.drop_bad_length += 1;
            return;
        }
        let mut left = length;
        for p in parts.iter_mut() {
            p.truncate(left);
            left -= p.len();
        }
        if left > 0 {
            c.drop_truncated += 1;
            return;
        }
        parts.retain(|p| !p.is_empty());
        // Every piece but the last is a whole fragment, a multiple of 8
        // bytes, so the sums line up.
        let sums = parts.iter().map(|p| checksum::sum(p.data()));
        let sum = sums.fold(0u16, |a, s| checksum::combine(&[a, s]));
        let udp = match UdpRepr::parse_pieces(parts[0].data(), length, sum, ip.src, ip.dst) {
            Ok(u) => u,
            Err(e) => return c.wire_error(e),
        };
        let rest = parts.split_off(1);
        let Some(mut first) = parts.pop() else {
            return;
        };
        // The first piece keeps its frame even when only the header was in
        // it: its front holds the IP header an ICMP error would quote.
        first.advance(UdpRepr::HEADER_LEN);
        self.udp_deliver(now, ip, udp, Datagram { first, rest });
    }

    /// Queue a checked datagram for its socket (or answer port unreachable).
    fn udp_deliver(&mut self, now: Instant, ip: &Ipv4Repr, udp: UdpRepr, d: Datagram<D::Frame>) {
        let c = &mut self.iface.counters;
        if udp.src_port == 0 || udp.dst_port == 0 {
            c.drop_bad_port += 1;
            return;
        }
        let Some(sock) = self.udp.get_mut(&udp.dst_port) else {
            c.drop_udp_no_socket += 1;
            // RFC 792: quote the IP header and the first 8 bytes after it,
            // which sit in front of the payload in its (first) frame.
            let ip_start = EthernetRepr::HEADER_LEN;
            let quote_end = d.first.start.min(d.first.frame.buf().len());
            if let Some(packet) = d.first.frame.buf().get(ip_start..quote_end) {
                self.send_port_unreachable(now, ip, packet);
            }
            return;
        };
        if sock.frames + d.frames() > self.cfg.udp_queue {
            c.drop_udp_queue += 1;
            return;
        }
        c.udp_rx += 1;
        let src = SocketAddrV4::new(ip.src, udp.src_port);
        sock.frames += d.frames();
        sock.queue.push_back((src, d));
        if !sock.event_pending {
            sock.event_pending = true;
            self.events
                .push_back(Event::UdpReadable { port: udp.dst_port });
        }
    }

    pub(super) fn udp_output(
        &mut self,
        now: Instant,
        port: u16,
        dst: SocketAddrV4,
        data: &[u8],
    ) -> Result<(), Error> {
        let src = self.iface.source_for(*dst.ip()).ok_or(Error::Unreachable)?;
        let hop = self.iface.next_hop(*dst.ip()).ok_or(Error::Unreachable)?;
        if dst.port() == 0 {
            return Err(Error::InvalidState);
        }
        let total = L2L3_LEN + UdpRepr::HEADER_LEN + data.len();
        let mtu = self.iface.dev.mtu();
        if total - EthernetRepr::HEADER_LEN > mtu {
            return self.udp_output_fragments(now, port, dst, src, hop, data);
        }
        let mut f = self.iface.alloc().ok_or(Error::Exhausted)?;
        let Some(pkt) = f.buf_mut().get_mut(..total) else {
            return Err(Error::InvalidState);
        };
        pkt[L2L3_LEN + UdpRepr::HEADER_LEN..].copy_from_slice(data);
        UdpRepr {
            src_port: port,
            dst_port: dst.port(),
        }
        .emit(&mut pkt[L2L3_LEN..], src, *dst.ip());
        self.iface
            .write_l2l3(pkt, src, *dst.ip(), IpProtocol::Udp, false, true);
        self.iface.send_frame(now, hop, f, 0, total);
        self.iface.counters.udp_tx += 1;
        Ok(())
    }

    /// RFC 791 §3.2 "Fragmentation": a datagram larger than the MTU leaves
    /// in fragments of the largest multiple of 8 bytes that fits, all with
    /// the same identification and DF clear (RFC 1122 §4.1.3.4 leaves
    /// fragmenting UDP to IP).
    fn udp_output_fragments(
        &mut self,
        now: Instant,
        port: u16,
        dst: SocketAddrV4,
        src: core::net::Ipv4Addr,
        hop: core::net::Ipv4Addr,
        data: &[u8],
    ) -> Result<(), Error> {
        let length = UdpRepr::HEADER_LEN + data.len();
        if length > Ipv4Repr::MAX_PAYLOAD_LEN {
            return Err(Error::InvalidState);
        }
        let chunk = (self.iface.dev.mtu().saturating_sub(Ipv4Repr::HEADER_LEN)) & !7;
        if chunk < UdpRepr::HEADER_LEN {
            return Err(Error::InvalidState);
        }
        let count = length.div_ceil(chunk);
        if self.iface.dev.free_frames().is_some_and(|f| f < count) {
            return Err(Error::Exhausted);
        }
        let mut header = [0u8; UdpRepr::HEADER_LEN];
        UdpRepr {
            src_port: port,
            dst_port: dst.port(),
        }
        .emit_header(&mut header, data, src, *dst.ip());
        let ident = self.iface.ident;
        for k in 0..count {
            let (off, end) = (k * chunk, ((k + 1) * chunk).min(length));
            let mut f = self.iface.alloc().ok_or(Error::Exhausted)?;
            let total = L2L3_LEN + end - off;
            let Some(pkt) = f.buf_mut().get_mut(..total) else {
                return Err(Error::InvalidState);
            };
            // Bytes off..end of header ++ data.
            let body = &mut pkt[L2L3_LEN..];
            let mut at = 0;
            if off < UdpRepr::HEADER_LEN {
                at = UdpRepr::HEADER_LEN - off;
                body[..at].copy_from_slice(&header[off..]);
            }
            let d0 = (off + at) - UdpRepr::HEADER_LEN;
            body[at..].copy_from_slice(&data[d0..d0 + (end - off - at)]);
            self.iface.ident = ident;
            self.iface
                .write_l2l3(pkt, src, *dst.ip(), IpProtocol::Udp, false, false);
            Ipv4Repr::set_fragment_in_place(
                &mut pkt[EthernetRepr::HEADER_LEN..],
                off,
                end < length,
            );
            self.iface.send_frame(now, hop, f, 0, total);
            self.iface.counters.frag_tx += 1;
        }
        self.iface.ident = ident.wrapping_add(1);
        self.iface.counters.udp_tx += 1;
        Ok(())
    }
}
