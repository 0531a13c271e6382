//! A wire auditor: watches every frame a node sends (before the link
//! impairs it) and checks, independently of the stacks' own bookkeeping,
//! rules an honest TCP never breaks:
//!
//! - no packet leaves larger than the sender's MTU;
//! - no ACK acknowledges sequence space its peer never sent (RFC 9293
//!   §3.10.7.4: an ACK of something not yet sent is a peer's bug);
//! - the advertised right window edge (SEG.ACK + SEG.WND, scaled) never
//!   moves left (RFC 1122 §4.2.2.16, RFC 9293 §3.8.6.2.1 "shrinking the
//!   window is strongly discouraged"); xdptcp keeps its edge even under
//!   memory pressure (it drops what does not fit instead).
//!
//! Flows are keyed by their directed 4-tuple; a SYN (re)starts one.

use crate::tcp::{SeqNumber, TcpFlags};
use crate::wire::{EtherType, EthernetRepr, IpProtocol, Ipv4Repr, TcpRepr};
use core::net::{Ipv4Addr, SocketAddrV4};
use std::collections::HashMap;

/// Violations kept in full; beyond this only counted.
const KEEP: usize = 8;

/// One direction of a connection as seen on the wire.
#[derive(Debug, Clone, Copy)]
struct FlowState {
    /// Sequence space sent so far ends here (SYN and FIN count).
    max_end: SeqNumber,
    /// The same of the incarnation before the latest SYN: a peer still in
    /// TIME-WAIT of it rightly acknowledges that one (RFC 9293 §3.10.7.4),
    /// e.g. when answering a SYN-ACK drawn by a duplicated old SYN.
    prev_end: Option<SeqNumber>,
    /// The SYN's sequence number: a retransmitted SYN keeps the incarnation.
    isn: SeqNumber,
    /// Window shift this sender applies to the windows it advertises, once
    /// both SYNs showed the option (RFC 7323 §2.2).
    wscale_offered: Option<u8>,
    /// Highest right edge advertised (ACK + scaled window).
    right_edge: Option<SeqNumber>,
}

type Key = (SocketAddrV4, SocketAddrV4);

/// The auditor; feed it with [`Auditor::on_frame`].
#[derive(Debug, Default)]
pub struct Auditor {
    flows: HashMap<Key, FlowState>,
    /// Per node index: its interface MTU (IP bytes).
    mtus: Vec<usize>,
    pub violations: Vec<String>,
    pub violation_count: u64,
    pub frames: u64,
}

impl Auditor {
    /// `mtus[i]`: the MTU of node `i`.
    pub fn new(mtus: Vec<usize>) -> Self {
        Auditor {
            mtus,
            ..Auditor::default()
        }
    }

    fn violation(&mut self, s: String) {
        self.violation_count += 1;
        if self.violations.len() < KEEP {
            self.violations.push(s);
        }
    }

    /// Node `src` sent `frame` at `at_ms`.
    pub fn on_frame(&mut self, at_ms: f64, src: usize, frame: &[u8]) {
        self.frames += 1;
        let Ok(eth) = EthernetRepr::parse(frame) else {
            return;
        };
        if eth.ethertype != EtherType::Ipv4 {
            return;
        }
        let ip = &frame[EthernetRepr::HEADER_LEN..];
        let Ok((iph, hl)) = Ipv4Repr::parse(ip) else {
            return;
        };
        let total = hl + iph.payload_len;
        if let Some(&mtu) = self.mtus.get(src) {
            if total > mtu {
                self.violation(format!(
                    "{at_ms:.3} ms: node {src} sent a {total}-byte IP packet over MTU {mtu}"
                ));
            }
        }
        if iph.protocol != IpProtocol::Tcp {
            return;
        }
        let Some(body) = ip.get(hl..total) else {
            return;
        };
        let Ok((t, off)) = TcpRepr::parse(body, iph.src, iph.dst) else {
            return;
        };
        let len = body.len() - off;
        self.on_segment(at_ms, src, iph.src, iph.dst, &t, len);
    }

    fn on_segment(
        &mut self,
        at_ms: f64,
        src: usize,
        sip: Ipv4Addr,
        dip: Ipv4Addr,
        t: &TcpRepr,
        len: usize,
    ) {
        let me = SocketAddrV4::new(sip, t.src_port);
        let peer = SocketAddrV4::new(dip, t.dst_port);
        let f = t.flags;
        let end =
            t.seq + len + f.contains(TcpFlags::SYN) as usize + f.contains(TcpFlags::FIN) as usize;
        if f.contains(TcpFlags::RST) {
            return;
        }
        if f.contains(TcpFlags::SYN) {
            // A SYN (re)starts this direction; a SYN-ACK also settles the
            // window scaling of both directions.
            let peer_flow = self.flows.get(&(peer, me)).copied();
            let both_ws = t.options.window_scale.is_some()
                && peer_flow.is_some_and(|p| p.wscale_offered.is_some());
            // A retransmitted (or duplicated) SYN keeps its incarnation.
            let (prev_end, end) = match self.flows.get(&(me, peer)) {
                Some(f) if f.isn == t.seq => (f.prev_end, f.max_end.max(end)),
                Some(f) => (Some(f.max_end), end),
                None => (None, end),
            };
            self.flows.insert(
                (me, peer),
                FlowState {
                    max_end: end,
                    prev_end,
                    isn: t.seq,
                    wscale_offered: t.options.window_scale,
                    right_edge: None,
                },
            );
            if f.contains(TcpFlags::ACK) && !both_ws {
                // No scaling in either direction.
                if let Some(p) = self.flows.get_mut(&(peer, me)) {
                    p.wscale_offered = None;
                }
                if let Some(m) = self.flows.get_mut(&(me, peer)) {
                    m.wscale_offered = None;
                }
            }
            return;
        }
        let Some(mut mine) = self.flows.get(&(me, peer)).copied() else {
            return;
        };
        if end > mine.max_end {
            mine.max_end = end;
        }
        if f.contains(TcpFlags::ACK) {
            if let Some(theirs) = self.flows.get(&(peer, me)) {
                let old_incarnation = theirs.prev_end.is_some_and(|p| t.ack <= p);
                if t.ack > theirs.max_end && !old_incarnation {
                    let over = t.ack - theirs.max_end;
                    self.violation(format!(
                        "{at_ms:.3} ms: node {src} {me} > {peer} acknowledges {over} byte(s) never sent (ack {}, peer sent up to {})",
                        t.ack.0, theirs.max_end.0
                    ));
                }
            }
            let shift = mine.wscale_offered.unwrap_or(0).min(14);
            let edge = t.ack + ((t.window as usize) << shift);
            match mine.right_edge {
                Some(prev) if edge < prev => {
                    let by = prev - edge;
                    self.violation(format!(
                        "{at_ms:.3} ms: node {src} {me} > {peer} moved its right window edge left by {by} bytes"
                    ));
                }
                _ => mine.right_edge = Some(edge),
            }
        }
        self.flows.insert((me, peer), mine);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Ipv4Repr, MacAddr};

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    /// An Ethernet frame carrying `t` (with `len` payload bytes) from `src`.
    fn frame(src: Ipv4Addr, dst: Ipv4Addr, t: &TcpRepr, len: usize) -> Vec<u8> {
        let tcp_len = t.header_len() + len;
        let mut f = vec![0u8; 14 + 20 + tcp_len];
        EthernetRepr {
            dst: MacAddr([2, 0, 0, 0, 0, 2]),
            src: MacAddr([2, 0, 0, 0, 0, 1]),
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut f);
        Ipv4Repr {
            src,
            dst,
            protocol: IpProtocol::Tcp,
            payload_len: tcp_len,
            ttl: 64,
            dscp: 0,
            ecn: 0,
            ident: 0,
            dont_frag: true,
        }
        .emit(&mut f[14..]);
        t.emit(&mut f[34..], src, dst);
        f
    }

    fn seg(sport: u16, dport: u16, seq: u32, ack: u32, flags: TcpFlags, win: u16) -> TcpRepr {
        TcpRepr {
            src_port: sport,
            dst_port: dport,
            seq: SeqNumber(seq),
            ack: SeqNumber(ack),
            flags,
            window: win,
            ..TcpRepr::default()
        }
    }

    /// A handshake A:1000 -> B:80 with ISNs 100 (A) and 500 (B), no
    /// window scaling.
    fn handshake(a: &mut Auditor) {
        a.on_frame(
            0.0,
            0,
            &frame(A, B, &seg(1000, 80, 100, 0, TcpFlags::SYN, 1000), 0),
        );
        let sa = TcpFlags::SYN | TcpFlags::ACK;
        a.on_frame(0.0, 1, &frame(B, A, &seg(80, 1000, 500, 101, sa, 1000), 0));
    }

    #[test]
    fn honest_exchange_passes() {
        let mut a = Auditor::new(vec![1500, 1500]);
        handshake(&mut a);
        a.on_frame(
            1.0,
            0,
            &frame(A, B, &seg(1000, 80, 101, 501, TcpFlags::ACK, 1000), 100),
        );
        a.on_frame(
            2.0,
            1,
            &frame(B, A, &seg(80, 1000, 501, 201, TcpFlags::ACK, 900), 0),
        );
        assert_eq!(a.violation_count, 0, "{:?}", a.violations);
    }

    #[test]
    fn ack_of_unsent_data_is_flagged() {
        let mut a = Auditor::new(vec![1500, 1500]);
        handshake(&mut a);
        a.on_frame(
            1.0,
            0,
            &frame(A, B, &seg(1000, 80, 101, 501, TcpFlags::ACK, 1000), 100),
        );
        // B acknowledges 101 + 150: 50 bytes A never sent.
        a.on_frame(
            2.0,
            1,
            &frame(B, A, &seg(80, 1000, 501, 251, TcpFlags::ACK, 1000), 0),
        );
        assert_eq!(a.violation_count, 1);
        assert!(
            a.violations[0].contains("50 byte(s) never sent"),
            "{:?}",
            a.violations
        );
    }

    #[test]
    fn shrinking_window_and_oversized_packet_are_flagged() {
        let mut a = Auditor::new(vec![1500, 1500]);
        handshake(&mut a);
        a.on_frame(
            1.0,
            1,
            &frame(B, A, &seg(80, 1000, 501, 101, TcpFlags::ACK, 1000), 0),
        );
        // Right edge 101 + 400 < 101 + 1000.
        a.on_frame(
            2.0,
            1,
            &frame(B, A, &seg(80, 1000, 501, 101, TcpFlags::ACK, 400), 0),
        );
        assert_eq!(a.violation_count, 1);
        assert!(a.violations[0].contains("right window edge left"));
        // 20 + 20 + 1461 > 1500.
        a.on_frame(
            4.0,
            0,
            &frame(A, B, &seg(1000, 80, 101, 501, TcpFlags::ACK, 1000), 1461),
        );
        assert_eq!(a.violation_count, 2);
        assert!(a.violations[1].contains("over MTU 1500"));
    }
}
