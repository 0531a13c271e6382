//! UDP (RFC 768): bound ports with a bounded queue of datagrams that stay in
//! their frames, and sending from a bound port.

use super::iface::L2L3_LEN;
use super::{Error, Stack};
use crate::app::Event;
use crate::io::{Device, Frame, Pkt};
use crate::time::Instant;
use crate::wire::{IpProtocol, Ipv4Repr, UdpRepr};
use core::net::SocketAddrV4;
use std::collections::VecDeque;

/// A bound UDP port.
pub(crate) struct UdpSocket<F> {
    /// Datagrams (source, payload range in its frame).
    pub queue: VecDeque<(SocketAddrV4, Pkt<F>)>,
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
        if udp.src_port == 0 || udp.dst_port == 0 {
            c.drop_bad_port += 1;
            return;
        }
        let Some(sock) = self.udp.get_mut(&udp.dst_port) else {
            c.drop_udp_no_socket += 1;
            // The IP header starts 20+ bytes before the UDP header; `start`
            // is the UDP header, the Ethernet header is 14 bytes.
            let ip_start = crate::wire::EthernetRepr::HEADER_LEN;
            if let Some(packet) = frame.buf().get(ip_start..end) {
                self.send_port_unreachable(now, ip, packet);
            }
            return;
        };
        if sock.queue.len() >= self.cfg.udp_queue {
            c.drop_udp_queue += 1;
            return;
        }
        c.udp_rx += 1;
        let src = SocketAddrV4::new(ip.src, udp.src_port);
        sock.queue
            .push_back((src, Pkt::new(frame, start + range.start, start + range.end)));
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
        if total - crate::wire::EthernetRepr::HEADER_LEN > self.iface.dev.mtu() {
            return Err(Error::InvalidState);
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
}
