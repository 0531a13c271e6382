//! ICMP errors passed up to the transports (RFC 1122 §3.2.2.1 "MUST pass
//! to the transport layer"; §4.2.3.9 for TCP, §4.1.3.3 for UDP): the
//! quoted datagram names the connection or socket; TCP validates it further
//! (RFC 5927 §4.1) and reacts (RFC 1191 path MTU, hard and soft errors).

use super::udp::UdpError;
use super::Stack;
use crate::app::Event;
use crate::io::Device;
use crate::tcp::{FourTuple, IcmpNotice, SeqNumber};
use crate::time::Instant;
use crate::wire::icmp_error::{CODE_FRAG_NEEDED, TYPE_DEST_UNREACHABLE};
use crate::wire::{IcmpError, IpProtocol, Ipv4Repr};
use core::net::SocketAddrV4;

impl<D: Device> Stack<D> {
    /// A segment of `tuple` was discarded because its next hop never
    /// answered ARP: the connection is told, as Linux's failed neighbour
    /// sends the socket a local ICMP host unreachable (`ipv4_link_failure`).
    pub(super) fn neighbour_failed(&mut self, now: Instant, tuple: &FourTuple) {
        let Some(id) = self.conns.lookup(tuple) else {
            return;
        };
        if let Some(entry) = self.conns.get_mut(id) {
            entry.conn.neighbour_failed(now);
        }
        self.mark_dirty(id);
        self.after_op(id);
    }

    pub(super) fn icmp_error_input(&mut self, now: Instant, _ip: &Ipv4Repr, buf: &[u8]) {
        let e = match IcmpError::parse(buf) {
            Ok(e) => e,
            Err(err) => return self.iface.counters.wire_error(err),
        };
        let c = &mut self.iface.counters;
        c.icmp_errors_rx += 1;
        if (e.icmp_type, e.code) == (TYPE_DEST_UNREACHABLE, CODE_FRAG_NEEDED) {
            c.icmp_frag_needed_rx += 1;
        }
        // The quoted datagram must be one we sent: from one of our addresses.
        if !self.iface.is_local(e.src) {
            self.iface.counters.drop_icmp_unmatched += 1;
            return;
        }
        let (sport, dport) = e.ports();
        let local = SocketAddrV4::new(e.src, sport);
        let remote = SocketAddrV4::new(e.dst, dport);
        match e.protocol {
            IpProtocol::Tcp => {
                let tuple = FourTuple { local, remote };
                let Some(id) = self.conns.lookup(&tuple) else {
                    self.iface.counters.drop_icmp_unmatched += 1;
                    return;
                };
                let notice = IcmpNotice {
                    icmp_type: e.icmp_type,
                    code: e.code,
                    seq: SeqNumber(e.tcp_seq()),
                    next_hop_mtu: e.next_hop_mtu,
                    quoted_len: e.total_len,
                };
                self.iface.counters.icmp_errors_tcp += 1;
                if let Some(entry) = self.conns.get_mut(id) {
                    entry.conn.handle_icmp_error(now, &notice);
                }
                self.mark_dirty(id);
                self.after_op(id);
            }
            IpProtocol::Udp => {
                let limit = self.cfg.udp_queue;
                let Some(sock) = self.udp.get_mut(&sport) else {
                    self.iface.counters.drop_icmp_unmatched += 1;
                    return;
                };
                // RFC 1122 §4.1.3.3: "UDP MUST pass to the application
                // layer all ICMP error messages that it receives from the
                // IP layer". Bounded like the datagram queue.
                if sock.errors.len() >= limit {
                    self.iface.counters.drop_udp_queue += 1;
                    return;
                }
                sock.errors.push_back(UdpError {
                    remote,
                    icmp_type: e.icmp_type,
                    code: e.code,
                    next_hop_mtu: e.next_hop_mtu,
                });
                self.iface.counters.icmp_errors_udp += 1;
                if !sock.error_pending {
                    sock.error_pending = true;
                    self.events.push_back(Event::UdpError { port: sport });
                }
            }
            _ => self.iface.counters.drop_icmp_unmatched += 1,
        }
    }
}
