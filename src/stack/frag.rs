//! IPv4 fragment reassembly (RFC 791 §3.2, RFC 815's hole bookkeeping
//! reduced to "sorted, non-overlapping parts"), zero-copy: each part stays
//! in the frame it arrived in until the datagram is whole.
//!
//! Hostile fragments are normal input, so everything is bounded and every
//! drop counted by reason:
//! - memory by frames: at most `frames_max` frames held over all datagrams
//!   (Linux `ipfrag_high_thresh`); beyond, whole datagrams are dropped,
//!   oldest first (`drop_frag_evicted`);
//! - at most [`MAX_PARTS`] parts per datagram (`drop_frag_too_many`);
//! - a timeout from the first fragment (RFC 791's timer, Linux
//!   `ipfrag_time`, 30 s), after which the datagram is dropped
//!   (`drop_frag_timeout`) and, when fragment zero had come, the source gets
//!   an ICMP time exceeded (RFC 1122 §3.3.2);
//! - overlaps, in the spirit of RFC 5722 (with its errata 3089, as Linux
//!   does for IPv4 since 4.19): a fragment overlapping another discards the
//!   whole datagram (`drop_frag_overlap`), an exact duplicate is dropped
//!   alone (`drop_frag_dup`);
//! - lengths: every part but the last a multiple of 8 bytes, nothing past
//!   65,535 or past the end the last fragment announced, a single end
//!   (`drop_frag_bad`).

use super::counters::StackCounters;
use super::hasher::{KeyedHasher, Map};
use super::icmp::{CODE_REASSEMBLY, TYPE_TIME_EXCEEDED};
use super::Stack;
use crate::io::{Device, Frame, Pkt};
use crate::time::Instant;
use crate::wire::{EthernetRepr, FragInfo, IpProtocol, Ipv4Repr};
use core::net::Ipv4Addr;
use core::time::Duration;
use std::collections::VecDeque;

/// RFC 791 §3.2 / Linux `ipfrag_time`: how long a datagram may take to
/// arrive whole, from its first fragment.
pub const FRAG_TIMEOUT: Duration = Duration::from_secs(30);

/// Most parts one datagram may arrive in (a 65,535-byte datagram over a
/// 1,500-byte MTU takes 45).
pub const MAX_PARTS: usize = 64;

/// RFC 791 §3.2: fragments belong together when source, destination,
/// protocol and identification agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct FragKey {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub ident: u16,
}

/// One received part: bytes `offset..offset + pkt.len()` of the payload.
struct Part<F> {
    offset: usize,
    pkt: Pkt<F>,
}

impl<F: Frame> Part<F> {
    fn end(&self) -> usize {
        self.offset + self.pkt.len()
    }
}

/// A datagram being reassembled.
struct Partial<F> {
    /// Sorted by offset, never overlapping.
    parts: Vec<Part<F>>,
    /// Payload length, once the last fragment (MF clear) arrived.
    total: Option<usize>,
    /// Payload bytes held (the parts never overlap, so it is whole when
    /// this reaches `total`).
    have: usize,
    /// RFC 3168 §5.3: CE on any fragment is CE on the datagram.
    ce: bool,
    /// Tells this datagram from an earlier one of the same key in `order`.
    gen: u32,
}

/// A datagram whose fragments all arrived: its parts in order.
pub(crate) struct Whole<F> {
    pub parts: Vec<Pkt<F>>,
    /// Payload length (the sum of the parts).
    pub len: usize,
    pub ce: bool,
}

/// A datagram given up on the timer: enough to tell its source.
pub(crate) struct Expired<F> {
    pub key: FragKey,
    /// Fragment zero, if it came (its frame holds its IP header).
    pub first: Option<Pkt<F>>,
}

pub(crate) struct Reassembly<F> {
    map: Map<FragKey, Partial<F>>,
    /// Datagrams oldest first, with their deadlines; records of datagrams
    /// completed or dropped meanwhile are skipped (and compacted away).
    order: VecDeque<(FragKey, u32, Instant)>,
    frames: usize,
    frames_max: usize,
    timeout: Duration,
    next_gen: u32,
    /// Reassembled TCP datagrams of flows this stack does not hold, whole
    /// frames for the runtime to hand to their owner (see
    /// [`Stack::take_strays`](super::Stack::take_strays)).
    pub(super) strays: Vec<(F, usize)>,
}

impl<F: Frame> Reassembly<F> {
    pub(crate) fn new(hasher: KeyedHasher, frames_max: usize, timeout: Duration) -> Self {
        Reassembly {
            map: Map::with_hasher(hasher),
            order: VecDeque::new(),
            frames: 0,
            frames_max,
            timeout,
            next_gen: 0,
            strays: Vec::new(),
        }
    }

    /// Frames held by incomplete datagrams.
    pub(crate) fn frames(&self) -> usize {
        self.frames
    }

    /// Incomplete datagrams.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Drop datagram `key` and everything it holds.
    fn discard(&mut self, key: &FragKey) {
        if let Some(p) = self.map.remove(key) {
            self.frames -= p.parts.len();
        }
    }

    /// Take in one fragment: `pkt` is its payload, `ip` its header. Returns
    /// the datagram when this fragment completed it.
    pub(crate) fn insert(
        &mut self,
        now: Instant,
        ip: &Ipv4Repr,
        frag: FragInfo,
        pkt: Pkt<F>,
        c: &mut StackCounters,
    ) -> Option<Whole<F>> {
        c.frag_rx += 1;
        let key = FragKey {
            src: ip.src,
            dst: ip.dst,
            protocol: u8::from(ip.protocol),
            ident: ip.ident,
        };
        let (offset, len) = (frag.offset, pkt.len());
        let end = offset + len;
        // RFC 791 §3.2: every fragment but the last carries a multiple of
        // 8 bytes (the unit of the offset); no datagram exceeds 65,535.
        if (frag.more && (len == 0 || len % 8 != 0)) || end > Ipv4Repr::MAX_PAYLOAD_LEN {
            c.drop_frag_bad += 1;
            return None;
        }
        if !self.map.contains_key(&key) {
            let gen = self.next_gen;
            self.next_gen = self.next_gen.wrapping_add(1);
            self.map.insert(
                key,
                Partial {
                    parts: Vec::new(),
                    total: None,
                    have: 0,
                    ce: false,
                    gen,
                },
            );
            self.order.push_back((key, gen, now + self.timeout));
            self.compact();
        }
        let p = self.map.get_mut(&key)?;
        p.ce |= ip.ecn == 3;
        // The last fragment fixes the end; nothing may lie past it, and it
        // may not move.
        let bad_end = if frag.more {
            p.total.is_some_and(|t| end > t)
        } else {
            p.total.is_some_and(|t| t != end) || p.parts.last().is_some_and(|l| l.end() > end)
        };
        if bad_end {
            c.drop_frag_bad += 1;
            self.discard(&key);
            return None;
        }
        if !frag.more {
            p.total = Some(end);
        }
        if len > 0 {
            let i = p.parts.partition_point(|q| q.offset < offset);
            let dup = p.parts.get(i).is_some_and(|q| {
                q.offset == offset && q.pkt.len() == len && q.pkt.data() == pkt.data()
            });
            if dup {
                c.drop_frag_dup += 1;
                return None;
            }
            let overlaps = (i > 0 && p.parts[i - 1].end() > offset)
                || p.parts.get(i).is_some_and(|q| q.offset < end);
            if overlaps {
                c.drop_frag_overlap += 1;
                self.discard(&key);
                return None;
            }
            if p.parts.len() >= MAX_PARTS {
                c.drop_frag_too_many += 1;
                self.discard(&key);
                return None;
            }
            p.parts.insert(i, Part { offset, pkt });
            p.have += len;
            self.frames += 1;
        }
        if p.total == Some(p.have) {
            let p = self.map.remove(&key)?;
            self.frames -= p.parts.len();
            c.frag_reassembled += 1;
            return Some(Whole {
                len: p.have,
                ce: p.ce,
                parts: p.parts.into_iter().map(|q| q.pkt).collect(),
            });
        }
        // Memory bound: whole datagrams go, oldest first.
        while self.frames > self.frames_max {
            let Some((k, g, _)) = self.order.pop_front() else {
                break;
            };
            if self.map.get(&k).is_some_and(|p| p.gen == g) {
                c.drop_frag_evicted += 1;
                self.discard(&k);
            }
        }
        None
    }

    /// Keep `order` within twice the live datagrams (amortized O(1)).
    fn compact(&mut self) {
        if self.order.len() > 2 * self.map.len() + 16 {
            let map = &self.map;
            self.order
                .retain(|(k, g, _)| map.get(k).is_some_and(|p| p.gen == *g));
        }
    }

    /// When [`Reassembly::poll`] next has something to do (may be early).
    pub(crate) fn poll_at(&self) -> Option<Instant> {
        self.order.front().map(|r| r.2)
    }

    /// Drop the datagrams whose time is up by `now`; pushes each onto
    /// `expired` (fragment zero kept for the ICMP time exceeded).
    pub(crate) fn poll(
        &mut self,
        now: Instant,
        c: &mut StackCounters,
        expired: &mut Vec<Expired<F>>,
    ) {
        while let Some(&(k, g, at)) = self.order.front() {
            if at > now {
                break;
            }
            self.order.pop_front();
            if self.map.get(&k).is_none_or(|p| p.gen != g) {
                continue;
            }
            let Some(p) = self.map.remove(&k) else {
                continue;
            };
            self.frames -= p.parts.len();
            c.drop_frag_timeout += 1;
            let first = p
                .parts
                .into_iter()
                .next()
                .filter(|q| q.offset == 0)
                .map(|q| q.pkt);
            expired.push(Expired { key: k, first });
        }
    }
}

impl<D: Device> Stack<D> {
    /// A fragment for one of our addresses (`frame[start..end]` its part).
    /// UDP datagrams are delivered as their fragments' frames, zero-copy;
    /// a TCP segment or ICMP message is collapsed into one fresh frame, as
    /// the TCP and ICMP paths work on one (Linux accepts TCP in fragments
    /// too; a segment is at most one MSS, so it fits).
    pub(super) fn frag_input(
        &mut self,
        now: Instant,
        ip: &Ipv4Repr,
        frag: FragInfo,
        frame: D::Frame,
        start: usize,
        end: usize,
    ) {
        let pkt = Pkt::new(frame, start, end);
        let Some(whole) = self
            .frags
            .insert(now, ip, frag, pkt, &mut self.iface.counters)
        else {
            return;
        };
        let ip = Ipv4Repr {
            payload_len: whole.len,
            ecn: if whole.ce { 3 } else { ip.ecn },
            dont_frag: false,
            ..*ip
        };
        match ip.protocol {
            IpProtocol::Udp => self.udp_input_parts(now, &ip, whole.parts),
            IpProtocol::Tcp | IpProtocol::Icmp => {
                let start = EthernetRepr::HEADER_LEN + Ipv4Repr::HEADER_LEN;
                let end = start + whole.len;
                let Some(mut f) = self.iface.dev.alloc().filter(|f| f.buf().len() >= end) else {
                    self.iface.counters.drop_frag_too_big += 1;
                    return;
                };
                let buf = f.buf_mut();
                ip.emit(&mut buf[EthernetRepr::HEADER_LEN..start]);
                let mut at = start;
                for p in &whole.parts {
                    buf[at..at + p.len()].copy_from_slice(p.data());
                    at += p.len();
                }
                drop(whole);
                if ip.protocol == IpProtocol::Tcp && self.is_stray(&ip, &f.buf()[start..end]) {
                    // Another worker may own the flow: the fragments came
                    // to this queue because only the addresses steer them
                    // (no ports in a fragment). A whole frame, unfragmented
                    // now, goes to the runtime, which hands it to the
                    // owner or back here if there is none.
                    EthernetRepr {
                        dst: self.iface.mac,
                        src: self.iface.mac,
                        ethertype: crate::wire::EtherType::Ipv4,
                    }
                    .emit(&mut f.buf_mut()[..EthernetRepr::HEADER_LEN]);
                    self.iface.counters.frag_strays += 1;
                    self.frags.strays.push((f, end));
                } else if ip.protocol == IpProtocol::Tcp {
                    self.tcp_input(now, &ip, f, start, end);
                } else {
                    self.icmp_input(now, &ip, &f.buf()[start..end]);
                }
            }
            IpProtocol::Other(_) => self.iface.counters.drop_unsupported += 1,
        }
    }

    /// A reassembled TCP segment (from `tcp`, its header first) whose flow
    /// this stack does not hold, while several workers share the
    /// interface (flows are logged for their directory).
    fn is_stray(&self, ip: &Ipv4Repr, tcp: &[u8]) -> bool {
        let Some(p) = tcp.get(..4).filter(|_| self.conns.flow_log.is_some()) else {
            return false;
        };
        let tuple = crate::tcp::FourTuple {
            local: core::net::SocketAddrV4::new(ip.dst, u16::from_be_bytes([p[2], p[3]])),
            remote: core::net::SocketAddrV4::new(ip.src, u16::from_be_bytes([p[0], p[1]])),
        };
        !self.conns.contains(&tuple)
    }

    /// Drop datagrams whose reassembly timed out; RFC 1122 §3.3.2: "the
    /// partially-reassembled datagram MUST be discarded and an ICMP Time
    /// Exceeded message sent to the source host (if fragment zero has been
    /// received)".
    pub(super) fn poll_frags(&mut self, now: Instant) {
        if self.frags.poll_at().is_none_or(|t| now < t) {
            return;
        }
        let mut expired = Vec::new();
        self.frags.poll(now, &mut self.iface.counters, &mut expired);
        for e in expired {
            let Some(first) = e.first else {
                continue;
            };
            let ip = Ipv4Repr::new(
                e.key.src,
                e.key.dst,
                IpProtocol::from(e.key.protocol),
                first.len(),
            );
            // The quote: fragment zero's IP header and 8 bytes of its data.
            let from = EthernetRepr::HEADER_LEN;
            let to = (first.start + 8).min(first.end);
            if let Some(packet) = first.frame.buf().get(from..to) {
                if self.send_icmp_error(now, &ip, packet, TYPE_TIME_EXCEEDED, CODE_REASSEMBLY) {
                    self.iface.counters.frag_time_exceeded_sent += 1;
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "frag_tests.rs"]
mod tests;
