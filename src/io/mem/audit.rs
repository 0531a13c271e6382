//! A wire auditor: watches every frame a node sends (before the link
//! impairs it) and checks, independently of the stacks' own bookkeeping,
//! rules an honest TCP never breaks:
//!
//! - no packet leaves larger than the sender's MTU;
//! - no ACK acknowledges sequence space its peer never sent (RFC 9293
//!   §3.10.7.4: an ACK of something not yet sent is a peer's bug);
//! - the advertised right window edge (SEG.ACK + SEG.WND, scaled) never
//!   moves left (RFC 1122 §4.2.2.16, RFC 9293 §3.8.6.2.1 "shrinking the
//!   window is strongly discouraged"), except under receive-memory pressure
//!   when the caller says so.
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
    /// Per node index: skip the window-edge check (memory pressure allowed).
    pub allow_shrink: Vec<bool>,
    pub violations: Vec<String>,
    pub violation_count: u64,
    pub frames: u64,
}

impl Auditor {
    /// `mtus[i]`: the MTU of node `i`.
    pub fn new(mtus: Vec<usize>) -> Self {
        let n = mtus.len();
        Auditor {
            mtus,
            allow_shrink: vec![false; n],
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
            self.flows.insert(
                (me, peer),
                FlowState {
                    max_end: end,
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
                if t.ack > theirs.max_end {
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
                Some(prev)
                    if edge < prev && !self.allow_shrink.get(src).copied().unwrap_or(false) =>
                {
                    let by = prev - edge;
                    self.violation(format!(
                        "{at_ms:.3} ms: node {src} {me} > {peer} moved its right window edge left by {by} bytes"
                    ));
                }
                Some(prev) if edge < prev => {}
                _ => mine.right_edge = Some(edge),
            }
        }
        self.flows.insert((me, peer), mine);
    }
}
