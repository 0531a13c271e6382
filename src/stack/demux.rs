//! The receive path: Ethernet, ARP and IPv4 demux under the host rules of
//! RFC 1122, then ICMP, UDP or TCP. Every rejected frame is counted by reason
//! and nothing here can panic on any input: all slicing is checked.

use super::{ConnId, Stack};
use crate::io::{Device, Frame, Pkt};
use crate::tcp::{FourTuple, State, TcpRepr};
use crate::time::Instant;
use crate::wire::{ArpOp, ArpRepr, EtherType, EthernetRepr, IpProtocol, Ipv4Repr, MacAddr};
use core::net::{Ipv4Addr, SocketAddrV4};

const ETH: usize = EthernetRepr::HEADER_LEN;

impl<D: Device> Stack<D> {
    pub(super) fn demux(&mut self, now: Instant, frame: D::Frame, len: usize) {
        let len = len.min(frame.buf().len());
        let c = &mut self.iface.counters;
        c.rx_packets += 1;
        c.rx_bytes += len as u64;
        let eth = match EthernetRepr::parse(&frame.buf()[..len]) {
            Ok(e) => e,
            Err(e) => return c.wire_error(e),
        };
        // Ours or broadcast; other unicast and multicast are not for us.
        let to_us = eth.dst == self.iface.mac;
        if !to_us && eth.dst != MacAddr::BROADCAST {
            c.drop_not_for_us += 1;
            return;
        }
        match eth.ethertype {
            EtherType::Arp => self.arp_input(now, &frame.buf()[ETH..len]),
            // RFC 1122 §3.3.6: discard IP datagrams that came as link-layer
            // broadcast (we accept no IP broadcast or multicast anyway).
            EtherType::Ipv4 if to_us => self.ipv4_input(now, frame, len),
            EtherType::Ipv4 => c.drop_not_for_us += 1,
            EtherType::Other(_) => c.drop_unsupported += 1,
        }
    }

    /// RFC 826 "Packet Reception".
    fn arp_input(&mut self, now: Instant, buf: &[u8]) {
        let c = &mut self.iface.counters;
        let arp = match ArpRepr::parse(buf) {
            Ok(a) => a,
            Err(e) => return c.wire_error(e),
        };
        let sender_ok = arp.sender_mac != MacAddr::BROADCAST
            && arp.sender_mac.0[0] & 1 == 0
            && arp.sender_mac != self.iface.mac
            && !self.iface.is_bad_source(arp.sender_ip)
            && self.iface.on_link(arp.sender_ip).is_some();
        let for_us = self.iface.is_local(arp.target_ip);
        if self.iface.is_local(arp.sender_ip) && arp.sender_mac != self.iface.mac {
            // RFC 5227 §2.4: someone else claims our address. Never learned
            // from (sender_ok is false); counted, and not answered.
            self.iface.counters.arp_conflicts += 1;
            return;
        }
        if sender_ok {
            // "If the pair <protocol type, sender protocol address> is
            // already in my translation table, update the sender hardware
            // address field" -- and only add it if "I am the target".
            if self.iface.arp.contains(arp.sender_ip) || for_us {
                if let Some(q) = self.iface.arp.learn(
                    arp.sender_ip,
                    arp.sender_mac,
                    now,
                    for_us,
                    // A reply to us confirms reachability (as Linux).
                    for_us && arp.op == ArpOp::Reply,
                ) {
                    self.iface.flush_waiting(arp.sender_mac, q);
                }
                self.iface.counters.arp_learned += 1;
            }
        }
        // "?Is the opcode ares_op$REQUEST? Swap ... send the packet". RFC
        // 5227 probes (sender 0.0.0.0) are answered too, to defend the address.
        let probe = arp.sender_ip.is_unspecified();
        if for_us
            && arp.op == ArpOp::Request
            && (sender_ok || probe)
            && arp.sender_mac.0[0] & 1 == 0
        {
            self.iface.send_arp_reply(&arp);
        } else if !(for_us || sender_ok && self.iface.arp.contains(arp.sender_ip)) {
            self.iface.counters.arp_ignored += 1;
        }
    }

    fn ipv4_input(&mut self, now: Instant, frame: D::Frame, len: usize) {
        let c = &mut self.iface.counters;
        let Some(packet) = frame.buf().get(ETH..len) else {
            c.drop_truncated += 1;
            return;
        };
        let (ip, hl, frag) = match Ipv4Repr::parse_fragment(packet) {
            Ok(x) => x,
            Err(e) => return c.wire_error(e),
        };
        let start = ETH + hl;
        let end = start + ip.payload_len;
        if end > len {
            c.drop_truncated += 1;
            return;
        }
        // RFC 1122 §3.3.4.2/§3.3.6: a host keeps only datagrams to its own
        // addresses (no forwarding, no broadcast/multicast consumers).
        if !self.iface.is_local(ip.dst) {
            self.iface.counters.drop_not_for_us += 1;
            return;
        }
        // RFC 1122 §3.2.1.3: "a host MUST silently discard an incoming
        // datagram containing an IP source address that is invalid".
        if self.iface.is_bad_source(ip.src) {
            self.iface.counters.drop_bad_source += 1;
            return;
        }
        if let Some(frag) = frag {
            return self.frag_input(now, &ip, frag, frame, start, end);
        }
        match ip.protocol {
            IpProtocol::Icmp => self.icmp_input(now, &ip, &frame.buf()[start..end]),
            IpProtocol::Udp => self.udp_input(now, &ip, frame, start, end),
            IpProtocol::Tcp => self.tcp_input(now, &ip, frame, start, end),
            IpProtocol::Other(_) => self.iface.counters.drop_unsupported += 1,
        }
    }

    pub(super) fn tcp_input(
        &mut self,
        now: Instant,
        ip: &Ipv4Repr,
        frame: D::Frame,
        start: usize,
        end: usize,
    ) {
        let c = &mut self.iface.counters;
        let partial_ok = self.cfg.accept_partial_checksum;
        let mut seg = TcpRepr::default();
        let seg_bytes = &frame.buf()[start..end];
        let off = match TcpRepr::parse_rx_into(&mut seg, seg_bytes, ip.src, ip.dst, partial_ok) {
            Ok((off, partial)) => {
                c.rx_csum_partial_accepted += u64::from(partial);
                off
            }
            Err(e) => return c.wire_error(e),
        };
        let pstart = start + off;
        if pstart > end {
            c.drop_bad_length += 1;
            return;
        }
        self.tcp_segment(now, (ip.src, ip.dst, ip.ecn), &seg, frame, pstart, end);
    }

    /// A parsed TCP segment (`frame[pstart..end]` its payload) from `ip`'s
    /// (source, destination, ECN field), by either receive path (the
    /// general `tcp_input` or `fast_rx`): to its connection, a listener,
    /// or answered with a reset.
    #[inline(always)]
    pub(super) fn tcp_segment(
        &mut self,
        now: Instant,
        ip: (Ipv4Addr, Ipv4Addr, u8),
        seg: &TcpRepr,
        frame: D::Frame,
        pstart: usize,
        end: usize,
    ) {
        let (src, dst, ecn) = ip;
        if seg.src_port == 0 || seg.dst_port == 0 {
            self.iface.counters.drop_bad_port += 1;
            return;
        }
        let tuple = FourTuple {
            local: SocketAddrV4::new(dst, seg.dst_port),
            remote: SocketAddrV4::new(src, seg.src_port),
        };
        // RFC 3168 §5: CE is codepoint 3.
        let ce = ecn == 3;
        let payload = Pkt::new(frame, pstart, end);
        if let Some(id) = self.conns.lookup(&tuple) {
            // Only a SYN can reopen a 4-tuple in TIME-WAIT (RFC 6191).
            if seg.flags.syn() && self.timewait_reopens(id, seg) {
                // The old incarnation goes; the SYN opens a new one below.
                self.close_conn(id, false);
            } else {
                let Some(e) = self.conns.get_mut(id) else {
                    return;
                };
                // Plain TCP and first subflows have no data level to
                // refresh: the test inline, the refresh out of line.
                let e = if e.subflow_of.is_some() | e.level.is_some() {
                    self.mptcp_refresh_level(id);
                    self.conns.get_mut(id)
                } else {
                    Some(e)
                };
                let Some(e) = e else {
                    return;
                };
                if !e.dirty {
                    e.dirty = true;
                    self.dirty.push(id);
                }
                if e.conn.predicts(now, seg, end - pstart, ce) {
                    // Header prediction's segment (RFC 9293 §3.10.7.4, the
                    // common case): no answer ACK to budget, no FIN to note.
                    e.conn.handle_predicted(seg, payload);
                } else {
                    let before = e.conn.state();
                    // RFC 5961 §7: the stack-wide budget of answer ACKs.
                    let st = *e.conn.stats();
                    e.conn.set_answer_allowed(self.limits.answers.allows(now));
                    e.conn.handle_segment(now, seg, payload, ce);
                    let after = e.conn.stats();
                    let answered = after.answer_acks - st.answer_acks;
                    if answered > 0 {
                        // `allows` just rolled the window to `now`.
                        self.limits.answers.charge(now, answered);
                    }
                    self.iface.counters.ack_rate_limited +=
                        after.answer_acks_limited - st.answer_acks_limited;
                    if seg.flags.fin() {
                        e.note_fin(before, seg, end - pstart);
                    }
                }
                // `after_op` on the entry already at hand.
                let (ev, tm, ifc, t) = (
                    &mut self.events,
                    &mut self.timers,
                    &mut self.iface,
                    self.now,
                );
                if !Self::after_op_plain(ev, tm, ifc, t, id, e) {
                    self.after_op_general(id);
                }
                return;
            }
        }
        if self.listeners.contains_key(&seg.dst_port) {
            self.listen_input(now, tuple, seg, payload, ce);
            return;
        }
        // RFC 9293 §3.10.7.1: CLOSED -- answer with a reset.
        self.iface.counters.drop_no_listener += 1;
        self.send_reset(now, &tuple, seg, end - pstart);
    }
}

impl<D: Device> Stack<D> {
    /// RFC 9293 §3.10.7.4 / RFC 6191: a new SYN for a 4-tuple in TIME-WAIT
    /// may start a new incarnation when it cannot be confused with the old
    /// one: its timestamp is newer than the last one of the old connection
    /// (when both carry timestamps), or else its sequence number is beyond
    /// the old connection's FIN. Only when a listener would accept it.
    fn timewait_reopens(&self, id: ConnId, seg: &TcpRepr) -> bool {
        if !(seg.flags.syn() && !seg.flags.ack() && !seg.flags.rst()) {
            return false;
        }
        if !self.listeners.contains_key(&seg.dst_port) {
            return false;
        }
        let Some(e) = self.conns.get(id) else {
            return false;
        };
        if e.conn.state() != State::TimeWait || !e.detached {
            return false;
        }
        let Some(fin_end) = e.fin_end else {
            return false;
        };
        match (seg.options.timestamps, e.fin_tsval) {
            (Some((tsval, _)), Some(old)) => (tsval.wrapping_sub(old) as i32) > 0,
            _ => seg.seq > fin_end,
        }
    }
}
