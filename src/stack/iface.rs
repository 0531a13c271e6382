//! The interface half of a stack: our addresses, routing to a next hop,
//! ARP resolution and the device. Everything that leaves the stack goes
//! through [`Iface::send_frame`].

use super::arp::{ArpCache, Request, Waiting};
use super::counters::StackCounters;
use super::Ipv4Cidr;
use crate::io::{Device, Frame};
use crate::tcp::FourTuple;
use crate::time::Instant;
use crate::wire::{ArpOp, ArpRepr, EtherType, EthernetRepr, IpProtocol, Ipv4Repr, MacAddr};
use core::net::{Ipv4Addr, SocketAddrV4};

pub(crate) const ETH_LEN: usize = EthernetRepr::HEADER_LEN;
pub(crate) const IP_LEN: usize = Ipv4Repr::HEADER_LEN;
/// Ethernet + IPv4 header bytes in front of every transport header we emit.
pub(crate) const L2L3_LEN: usize = ETH_LEN + IP_LEN;
/// TTL of everything we send (RFC 1122 §3.2.1.7 recommends 64).
pub(crate) const TTL: u8 = 64;

pub(crate) struct Iface<D: Device> {
    pub dev: D,
    pub mac: MacAddr,
    pub addrs: Vec<Ipv4Cidr>,
    pub gateway: Option<Ipv4Addr>,
    /// IPv4 identification of the next packet (RFC 6864: any value is fine
    /// for atomic datagrams; a counter is cheap).
    pub ident: u16,
    pub counters: StackCounters,
    pub arp: ArpCache<D::Frame>,
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix.min(32)))
    }
}

impl Ipv4Cidr {
    /// Whether `ip` is on this subnet.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let m = mask(self.prefix);
        u32::from(self.addr) & m == u32::from(ip) & m
    }
    /// Whether `ip` is the subnet-directed broadcast address (there is
    /// none for /31 and /32).
    #[inline]
    pub fn is_broadcast(&self, ip: Ipv4Addr) -> bool {
        let host = !mask(self.prefix);
        self.prefix < 31 && u32::from(ip) == u32::from(self.addr) | host
    }
}

impl<D: Device> Iface<D> {
    /// One of our addresses.
    pub(crate) fn is_local(&self, ip: Ipv4Addr) -> bool {
        self.addrs.iter().any(|c| c.addr == ip)
    }

    /// Our first address whose subnet holds `ip`.
    pub(crate) fn on_link(&self, ip: Ipv4Addr) -> Option<&Ipv4Cidr> {
        self.addrs.iter().find(|c| c.contains(ip))
    }

    /// The next hop towards `dst`: itself when on one of our subnets, else
    /// the gateway.
    pub(crate) fn next_hop(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if self.on_link(dst).is_some() {
            Some(dst)
        } else {
            self.gateway
        }
    }

    /// The source address for packets to `dst`: ours on `dst`'s subnet, else
    /// ours on the gateway's subnet, else our first.
    pub(crate) fn source_for(&self, dst: Ipv4Addr) -> Option<Ipv4Addr> {
        if let Some(c) = self.on_link(dst) {
            return Some(c.addr);
        }
        let gw = self.gateway?;
        self.on_link(gw).or(self.addrs.first()).map(|c| c.addr)
    }

    /// RFC 1122 §3.2.1.3 / §3.2.2.x: a source address no host can have
    /// (broadcast, multicast, loopback, "this host", a subnet broadcast of
    /// ours) or one of our own (a spoof or a loop).
    pub(crate) fn is_bad_source(&self, ip: Ipv4Addr) -> bool {
        ip.is_broadcast()
            || ip.is_multicast()
            || ip.is_loopback()
            || ip.is_unspecified()
            || self
                .addrs
                .iter()
                .any(|c| c.addr == ip || c.is_broadcast(ip))
    }

    /// Fill Ethernet and IPv4 headers into `pkt[..L2L3_LEN]` for a packet of
    /// `pkt.len()` bytes (the transport part is already in place). The
    /// destination MAC is zero until [`Iface::send_frame`] fills it in.
    pub(crate) fn write_l2l3(
        &mut self,
        pkt: &mut [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        protocol: IpProtocol,
        ect: bool,
        dont_frag: bool,
    ) {
        let ip = Ipv4Repr {
            src,
            dst,
            protocol,
            payload_len: pkt.len() - L2L3_LEN,
            ttl: TTL,
            dscp: 0,
            // RFC 3168 §5: ECT(0) is codepoint 2.
            ecn: if ect { 2 } else { 0 },
            ident: self.ident,
            dont_frag,
        };
        self.ident = self.ident.wrapping_add(1);
        ip.emit(&mut pkt[ETH_LEN..L2L3_LEN]);
        EthernetRepr {
            dst: MacAddr::default(),
            src: self.mac,
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut pkt[..ETH_LEN]);
    }

    /// Send the built frame `frame[start..end]` (Ethernet header first,
    /// destination MAC to fill) towards next hop `hop`: now when ARP knows
    /// it, else queued while ARP resolves it. Returns false only when the
    /// device refused the packet.
    pub(crate) fn send_frame(
        &mut self,
        now: Instant,
        hop: Ipv4Addr,
        mut frame: D::Frame,
        start: usize,
        end: usize,
    ) -> bool {
        if let Some(mac) = self.resolve(hop, now) {
            if let Some(b) = frame.buf_mut().get_mut(start..start + 6) {
                b.copy_from_slice(&mac.0);
            }
            return self.transmit(frame, start, end);
        }
        let e = self.arp.enqueue(hop, Waiting { frame, start, end }, now);
        if e.dropped.is_some() {
            self.counters.drop_arp_queue += 1;
        }
        if e.start {
            self.send_arp_request(hop);
        }
        true
    }

    /// The MAC of next hop `hop` (a use that may start its NUD check).
    pub(crate) fn resolve(&mut self, hop: Ipv4Addr, now: Instant) -> Option<MacAddr> {
        self.arp.lookup_for_tx(hop, now)
    }

    /// Hand a finished frame to the device, counting it.
    pub(crate) fn transmit(&mut self, frame: D::Frame, start: usize, end: usize) -> bool {
        let len = end.saturating_sub(start) as u64;
        if self.dev.transmit(frame, start, end) {
            self.counters.tx_packets += 1;
            self.counters.tx_bytes += len;
            true
        } else {
            self.counters.tx_dropped += 1;
            false
        }
    }

    /// A fresh frame from the device, counted when there is none.
    pub(crate) fn alloc(&mut self) -> Option<D::Frame> {
        let f = self.dev.alloc();
        if f.is_none() {
            self.counters.tx_no_frame += 1;
        }
        f
    }

    fn send_arp(&mut self, eth_dst: MacAddr, arp: ArpRepr) -> bool {
        let Some(mut f) = self.alloc() else {
            return false;
        };
        let len = ETH_LEN + ArpRepr::LEN;
        let Some(buf) = f.buf_mut().get_mut(..len) else {
            self.counters.tx_dropped += 1;
            return false;
        };
        EthernetRepr {
            dst: eth_dst,
            src: self.mac,
            ethertype: EtherType::Arp,
        }
        .emit(&mut buf[..ETH_LEN]);
        arp.emit(&mut buf[ETH_LEN..]);
        self.transmit(f, 0, len)
    }

    /// RFC 826: broadcast "who has `target`", from our address on its subnet.
    pub(crate) fn send_arp_request(&mut self, target: Ipv4Addr) {
        self.send_arp_request_to(Request {
            ip: target,
            unicast: None,
        });
    }

    /// An ARP request: broadcast to resolve, or unicast to the cached MAC
    /// to probe a neighbour's reachability (RFC 1122 §2.3.2.1).
    fn send_arp_request_to(&mut self, r: Request) {
        let Some(src) = self.on_link(r.ip).or(self.addrs.first()).map(|c| c.addr) else {
            return;
        };
        let req = ArpRepr {
            op: ArpOp::Request,
            sender_mac: self.mac,
            sender_ip: src,
            target_mac: MacAddr::default(),
            target_ip: r.ip,
        };
        if self.send_arp(r.unicast.unwrap_or(MacAddr::BROADCAST), req) {
            self.counters.arp_requests_sent += 1;
            if r.unicast.is_some() {
                self.counters.arp_probes_sent += 1;
            }
        }
    }

    /// RFC 826: answer a request for one of our addresses, to the asker.
    pub(crate) fn send_arp_reply(&mut self, req: &ArpRepr) {
        let reply = ArpRepr {
            op: ArpOp::Reply,
            sender_mac: self.mac,
            sender_ip: req.target_ip,
            target_mac: req.sender_mac,
            target_ip: req.sender_ip,
        };
        if self.send_arp(req.sender_mac, reply) {
            self.counters.arp_replies_sent += 1;
        }
    }

    /// `hop` resolved to `mac`: send what waited for it, in order.
    pub(crate) fn flush_waiting(
        &mut self,
        mac: MacAddr,
        queue: impl IntoIterator<Item = Waiting<D::Frame>>,
    ) {
        for mut w in queue {
            if let Some(b) = w.frame.buf_mut().get_mut(w.start..w.start + 6) {
                b.copy_from_slice(&mac.0);
            }
            self.transmit(w.frame, w.start, w.end);
        }
    }

    /// Run ARP retries, probes and expiry due by `now`. Returns the TCP
    /// flows (ours, local end first) whose packets were discarded because
    /// their next hop never answered.
    pub(crate) fn poll_arp(&mut self, now: Instant) -> Vec<FourTuple> {
        if self.arp.poll_at().is_none_or(|d| now < d) {
            return Vec::new();
        }
        let mut requests = Vec::new();
        let mut failed = Vec::new();
        let p = self.arp.poll(now, &mut requests, &mut failed);
        self.counters.arp_failed += p.failed as u64;
        self.counters.arp_unreachable += p.unreachable as u64;
        // RFC 1122 §2.3.2.2: packets for a next hop that never answered are
        // discarded (the transport retransmits).
        self.counters.drop_arp_failed += failed.len() as u64;
        let mut flows: Vec<FourTuple> = failed
            .iter()
            .filter_map(|w| tcp_flow(w.frame.buf().get(w.start..w.end)?))
            .collect();
        flows.dedup();
        drop(failed);
        for r in requests {
            self.send_arp_request_to(r);
        }
        flows
    }
}

/// The TCP flow of an Ethernet frame we built. Read by hand, not with
/// `Ipv4Repr::parse`: the frame is ours and its checksums may be left to
/// the NIC.
fn tcp_flow(frame: &[u8]) -> Option<FourTuple> {
    let eth = EthernetRepr::parse(frame).ok()?;
    let ip = frame.get(14..)?;
    let hlen = usize::from(ip.first()? & 0x0f) * 4;
    if eth.ethertype != EtherType::Ipv4 || IpProtocol::from(*ip.get(9)?) != IpProtocol::Tcp {
        return None;
    }
    let addr = |i: usize| Some(Ipv4Addr::from(<[u8; 4]>::try_from(ip.get(i..i + 4)?).ok()?));
    let port = |i: usize| {
        Some(u16::from_be_bytes([
            *ip.get(hlen + i)?,
            *ip.get(hlen + i + 1)?,
        ]))
    };
    Some(FourTuple {
        local: SocketAddrV4::new(addr(12)?, port(0)?),
        remote: SocketAddrV4::new(addr(16)?, port(2)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidr_membership_and_broadcast() {
        let c = Ipv4Cidr {
            addr: Ipv4Addr::new(198, 18, 0, 1),
            prefix: 24,
        };
        assert!(c.contains(Ipv4Addr::new(198, 18, 0, 200)));
        assert!(!c.contains(Ipv4Addr::new(198, 18, 1, 1)));
        assert!(c.is_broadcast(Ipv4Addr::new(198, 18, 0, 255)));
        assert!(!c.is_broadcast(Ipv4Addr::new(198, 18, 0, 254)));
        let host = Ipv4Cidr { prefix: 32, ..c };
        assert!(host.contains(c.addr) && !host.contains(Ipv4Addr::new(198, 18, 0, 2)));
        assert!(!host.is_broadcast(Ipv4Addr::new(198, 18, 0, 255)));
        let all = Ipv4Cidr { prefix: 0, ..c };
        assert!(all.contains(Ipv4Addr::new(1, 2, 3, 4)));
        // Out-of-range prefixes act as /32, never panic.
        let bad = Ipv4Cidr { prefix: 40, ..c };
        assert!(bad.contains(c.addr));
    }
}
