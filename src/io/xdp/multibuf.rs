//! Multi-buffer receive (`--rx-multibuf`): a packet larger than a chunk
//! reaches an `XDP_USE_SG` socket as chained descriptors, all but the last
//! with `XDP_PKT_CONTD`; the first holds the headers, the others payload
//! only, each at the chunk's data offset. A TCP segment so received is
//! handed to the stack as consecutive per-frame TCP segments, so the core
//! stays as it is and zero-copy: a copy of the first frame's headers is
//! written into each continuation frame's headroom, with its sequence
//! number, IPv4 total length, identification and checksums adjusted (what
//! the kernel's TSO/GSO segmentation does, `tcp_gso_segment`). A segment
//! whose checksum field holds the peer's offload form (`CHECKSUM_PARTIAL`)
//! gives pieces in that form; one with a complete checksum (a peer without
//! checksum offload) is verified whole, over its pieces as they come, and
//! each piece gets its own complete checksum: its pieces are held until
//! the last one proved the packet intact (a bad sum drops them all).
//! Anything else in several buffers (not TCP over IPv4, malformed) is
//! dropped whole and counted.
//!
//! Where it matters: a Linux veth peer keeps GSO/TSO while our program runs
//! in generic mode, and sends 64 KB segments; native mode on veth takes
//! TSO from the peer (`veth_fix_features`), so its packets fit a chunk.

use super::umem::{SharedUmem, XdpFrame, FRAME_SIZE};
use crate::io::Frame;
use crate::wire::checksum;

const ETH: usize = 14;
/// Ethernet + the longest IPv4 and TCP headers.
const MAX_HDR: usize = ETH + 60 + 60;
const TCP_FIN: u8 = 0x01;
const TCP_PSH: u8 = 0x08;
const TCP_CWR: u8 = 0x80;

/// What multi-buffer receive did (in the device's counters).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct MultibufCounters {
    /// Multi-buffer TCP segments split into per-frame segments (handed on).
    pub rx_multibuf_packets: u64,
    /// Segments made from them (one per frame).
    pub rx_multibuf_segments: u64,
    /// Multi-buffer packets dropped whole: not IPv4 TCP, malformed, or
    /// a complete checksum that did not verify.
    pub rx_multibuf_dropped: u64,
    /// Multi-buffer TCP segments with a complete checksum (not the
    /// offload form), verified whole before their pieces went on.
    pub rx_multibuf_csum_full: u64,
    /// Those whose checksum did not verify (dropped; in `_dropped` too).
    pub rx_multibuf_csum_bad: u64,
}

/// The packet being split.
struct Chain {
    hdr: [u8; MAX_HDR],
    /// Ethernet + IPv4 + TCP header length.
    hdr_len: usize,
    ihl: usize,
    /// Sequence number of the next piece.
    seq: u32,
    /// Payload bytes not yet handed on (the IPv4 total length's).
    left: usize,
    /// Identification of the next piece.
    id: u16,
    /// The original TCP flags.
    flags: u8,
    first: bool,
    /// The TCP pseudo-header's address sum (RFC 9293 §3.1).
    ph_addrs: u16,
    /// The checksum field held a complete checksum: each piece gets its
    /// own, and the packet's is verified over `total`.
    full: bool,
    /// One's-complement sum so far of the whole segment with its
    /// pseudo-header (all ones at the end when intact).
    total: u64,
    /// An odd number of payload bytes summed so far (the next piece's
    /// bytes then sit in the other half of each 16-bit word).
    odd: bool,
}

impl Default for Chain {
    fn default() -> Self {
        Chain {
            hdr: [0; MAX_HDR],
            hdr_len: 0,
            ihl: 0,
            seq: 0,
            left: 0,
            id: 0,
            flags: 0,
            first: false,
            ph_addrs: 0,
            full: false,
            total: 0,
            odd: false,
        }
    }
}

/// Where the splitter is in the descriptor stream.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between packets.
    #[default]
    Idle,
    /// In a packet being dropped whole.
    Dropping,
    /// In a packet being split (`Splitter::chain`).
    Splitting,
}

/// Splits chained descriptors into per-frame segments, across receive
/// batches (a chain may end in the next one).
#[derive(Default)]
pub struct Splitter {
    state: State,
    /// The packet being split, reused packet after packet (no allocation
    /// per packet); meaningful while `state` is `Splitting`.
    chain: Chain,
    /// Pieces of a packet with a complete checksum, held until its last
    /// piece verified it (the buffer is kept, packet after packet).
    held: Vec<(XdpFrame, usize)>,
    pub counters: MultibufCounters,
    /// Descriptors outside the UMEM or longer than their chunk, since the
    /// device last took the count (its `rx_bad_desc`).
    pub bad_desc: u64,
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn put16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

/// The chain's template from its first frame, into `c`, if it is an IPv4
/// TCP segment.
fn parse_first(p: &[u8], c: &mut Chain) -> Option<()> {
    if p.len() < ETH + 20 || p[12..14] != [0x08, 0x00] || p[ETH] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(p[ETH] & 0x0f) * 4;
    // RFC 791 §3.1: no fragment (MF or an offset) is split.
    if ihl < 20 || p[ETH + 9] != 6 || be16(p, ETH + 6) & 0x3fff != 0 {
        return None;
    }
    let tcp = ETH + ihl;
    let doff = usize::from(*p.get(tcp + 12)? >> 4) * 4;
    let hdr_len = tcp + doff;
    let tot = usize::from(be16(p, ETH + 2));
    if doff < 20 || hdr_len > p.len() || tot < ihl + doff {
        return None;
    }
    let src: [u8; 4] = p[ETH + 12..ETH + 16].try_into().ok()?;
    let dst: [u8; 4] = p[ETH + 16..ETH + 20].try_into().ok()?;
    let ph_addrs = checksum::pseudo_header(src.into(), dst.into(), 6, 0);
    // The field holds the pseudo-header sum (`CHECKSUM_PARTIAL`, as a
    // veth peer with offload sends): each piece carries the same form.
    // Anything else is a complete checksum (RFC 9293 §3.1) over the whole
    // segment: verified over the pieces, each given its own.
    let tcp_len = (tot - ihl) as u16;
    c.full = be16(p, tcp + 16) != checksum::combine(&[ph_addrs, tcp_len]);
    if c.full {
        let h = u64::from(checksum::sum(&p[tcp..hdr_len]));
        c.total = u64::from(ph_addrs) + u64::from(tcp_len) + h;
        c.odd = false;
    }
    c.hdr[..hdr_len].copy_from_slice(&p[..hdr_len]);
    c.hdr_len = hdr_len;
    c.ihl = ihl;
    c.seq = u32::from_be_bytes(p[tcp + 4..tcp + 8].try_into().ok()?);
    c.left = tot - ihl - doff;
    c.id = be16(p, ETH + 4);
    c.flags = p[tcp + 13];
    c.first = true;
    c.ph_addrs = ph_addrs;
    Some(())
}

impl Chain {
    /// Write the piece's headers at `p[..hdr_len]`, `payload` bytes
    /// following them; advances the chain.
    fn write_headers(&mut self, p: &mut [u8], payload: usize) {
        let full = self
            .full
            .then(|| self.sum_piece(&p[self.hdr_len..][..payload]));
        let (ihl, hdr_len) = (self.ihl, self.hdr_len);
        p[..hdr_len].copy_from_slice(&self.hdr[..hdr_len]);
        self.left -= payload;
        let ip = &mut p[ETH..ETH + ihl];
        put16(ip, 2, (hdr_len - ETH + payload) as u16);
        put16(ip, 4, self.id);
        put16(ip, 10, 0);
        let c = checksum::checksum(ip);
        put16(ip, 10, c);
        let tcp = ETH + ihl;
        p[tcp + 4..tcp + 8].copy_from_slice(&self.seq.to_be_bytes());
        // As TSO does: CWR on the first piece, PSH and FIN on the last.
        let mut flags = self.flags;
        if !self.first {
            flags &= !TCP_CWR;
        }
        if self.left > 0 {
            flags &= !(TCP_PSH | TCP_FIN);
        }
        p[tcp + 13] = flags;
        let tcp_len = (hdr_len - tcp + payload) as u16;
        let ph = checksum::combine(&[self.ph_addrs, tcp_len]);
        match full {
            // The piece's own checksum: its header (field zero) and data.
            Some(data) => {
                put16(p, tcp + 16, 0);
                let h = checksum::sum(&p[tcp..hdr_len]);
                put16(p, tcp + 16, !checksum::combine(&[ph, h, data]));
            }
            None => put16(p, tcp + 16, ph),
        }
        self.seq = self.seq.wrapping_add(payload as u32);
        self.id = self.id.wrapping_add(1);
        self.first = false;
    }
}

impl Chain {
    /// The sum of a piece's `data`, added to the packet's total in the
    /// place its bytes have there (RFC 1071 §2(B): a sum over bytes that
    /// start at an odd offset is the byte-swapped sum).
    fn sum_piece(&mut self, data: &[u8]) -> u16 {
        let s = checksum::sum(data);
        self.total += u64::from(if self.odd { s.swap_bytes() } else { s });
        self.odd ^= data.len() % 2 == 1;
        s
    }

    /// The packet's complete checksum verified (all its data summed).
    fn intact(&self) -> bool {
        checksum::fold(self.total) == 0xffff
    }
}

impl Splitter {
    /// The pieces of a packet with a complete checksum, to `out` at its
    /// last piece if it verified; else dropped.
    fn release(&mut self, out: &mut Vec<(XdpFrame, usize)>) {
        if !self.chain.full {
            return;
        }
        if self.chain.intact() {
            self.counters.rx_multibuf_packets += 1;
            self.counters.rx_multibuf_segments += self.held.len() as u64;
            out.append(&mut self.held);
        } else {
            self.counters.rx_multibuf_csum_bad += 1;
            self.counters.rx_multibuf_dropped += 1;
            self.held.clear();
        }
    }

    /// A piece made: on to the stack, or held with the packet's others.
    fn hand_on(&mut self, piece: (XdpFrame, usize), out: &mut Vec<(XdpFrame, usize)>) {
        if self.chain.full {
            self.held.push(piece);
        } else {
            self.counters.rx_multibuf_segments += 1;
            out.push(piece);
        }
    }

    /// Take one received descriptor's frame (`addr`, `len`, whether more
    /// of its packet follow): a packet in one buffer goes to `out` as it
    /// is, a piece of a split segment with its headers, anything else is
    /// dropped. Returns the frame handles made (for the pool's count).
    pub fn push(
        &mut self,
        umem: &SharedUmem,
        addr: u64,
        len: usize,
        contd: bool,
        out: &mut Vec<(XdpFrame, usize)>,
    ) -> isize {
        match self.state {
            State::Idle => {}
            State::Dropping => {
                // The rest of a dropped packet: its chunk goes back.
                if !contd {
                    self.state = State::Idle;
                }
                return isize::from(XdpFrame::from_rx_addr(addr, umem).is_some());
            }
            State::Splitting => return self.push_continuation(umem, addr, len, contd, out),
        }
        let Some(mut f) = XdpFrame::from_rx_addr(addr, umem) else {
            self.bad_desc += 1;
            return 0;
        };
        if !contd {
            if len <= f.buf().len() {
                out.push((f, len));
            } else {
                self.bad_desc += 1;
            }
            return 1;
        }
        let c = &mut self.chain;
        if f.buf().get(..len).and_then(|p| parse_first(p, c)).is_none() {
            self.counters.rx_multibuf_dropped += 1;
            self.state = State::Dropping;
            return 1;
        }
        let payload = (len - c.hdr_len).min(c.left);
        c.write_headers(f.buf_mut(), payload);
        let piece = (f, c.hdr_len + payload);
        // A packet with a complete checksum counts once verified.
        self.counters.rx_multibuf_packets += u64::from(!c.full);
        self.counters.rx_multibuf_csum_full += u64::from(c.full);
        self.held.clear();
        self.hand_on(piece, out);
        self.state = State::Splitting;
        1
    }

    /// [`Self::push`] for a descriptor after the first of a packet being
    /// split.
    fn push_continuation(
        &mut self,
        umem: &SharedUmem,
        addr: u64,
        len: usize,
        contd: bool,
        out: &mut Vec<(XdpFrame, usize)>,
    ) -> isize {
        // Unless this piece goes on as it should, the rest is dropped.
        self.state = if contd { State::Dropping } else { State::Idle };
        let c = &mut self.chain;
        // The headers go into the headroom in front of the payload (the
        // kernel writes a continuation at the chunk's data offset and
        // nothing in front of it).
        let in_chunk = (addr as usize) & (FRAME_SIZE - 1);
        let payload = len.min(c.left);
        let start = addr.wrapping_sub(c.hdr_len as u64);
        let f = (in_chunk >= c.hdr_len && in_chunk + len <= FRAME_SIZE)
            .then(|| XdpFrame::from_rx_addr(start, umem))
            .flatten();
        let Some(mut f) = f else {
            self.bad_desc += 1;
            // The packet is incomplete: what was held of it goes too.
            self.held.clear();
            return isize::from(XdpFrame::from_rx_addr(addr, umem).is_some());
        };
        if payload > 0 {
            c.write_headers(f.buf_mut(), payload);
            let piece = (f, c.hdr_len + payload);
            self.hand_on(piece, out);
        }
        if contd {
            self.state = State::Splitting;
        } else {
            self.release(out);
        }
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::tcp::TcpRepr;
    use core::net::Ipv4Addr;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
    /// Ethernet + IPv4 + TCP with timestamps.
    const HDR: usize = 14 + 20 + 32;

    /// A TCP segment of `payload` bytes (byte i = i % 251) as a veth peer
    /// sends it: the checksum field holds the pseudo-header sum.
    fn packet(payload: usize, flags: u8) -> Vec<u8> {
        let mut p = vec![0u8; HDR + payload];
        p[12..14].copy_from_slice(&[0x08, 0x00]);
        p[14] = 0x45;
        put16(&mut p, 16, (20 + 32 + payload) as u16);
        put16(&mut p, 18, 0x1234);
        p[22] = 64;
        p[23] = 6;
        p[26..30].copy_from_slice(&SRC.octets());
        p[30..34].copy_from_slice(&DST.octets());
        let c = checksum::checksum(&p[14..34]);
        put16(&mut p, 24, c);
        put16(&mut p, 34, 40000);
        put16(&mut p, 36, 7);
        p[38..42].copy_from_slice(&0xffff_ff00u32.to_be_bytes()); // wraps
        p[46] = 8 << 4;
        p[47] = flags;
        put16(&mut p, 48, 512);
        p[54..56].copy_from_slice(&[1, 1]);
        p[56] = 8;
        p[57] = 10;
        let ph = checksum::pseudo_header(SRC, DST, 6, 32 + payload);
        put16(&mut p, 50, ph);
        for (i, b) in p[HDR..].iter_mut().enumerate() {
            *b = (i % 251) as u8;
        }
        p
    }

    /// Deliver `p` as the kernel does in copy mode: pieces of `piece`
    /// bytes, each at a chunk's data offset, all but the last CONTD.
    fn deliver(
        umem: &SharedUmem,
        sp: &mut Splitter,
        p: &[u8],
        piece: usize,
    ) -> Vec<(XdpFrame, usize)> {
        let mut out = Vec::new();
        let n = p.chunks(piece).count();
        let mut made = 0;
        for (i, c) in p.chunks(piece).enumerate() {
            let mut f = XdpFrame::alloc(umem).unwrap();
            f.buf_mut()[..c.len()].copy_from_slice(c);
            let addr = f.into_addr();
            made += sp.push(umem, addr, c.len(), i + 1 < n, &mut out);
        }
        umem.core().pool.live_add(made);
        out
    }

    #[test]
    fn a_chained_segment_becomes_consecutive_segments_the_stack_accepts() {
        let umem = SharedUmem::new(16).unwrap();
        let mut sp = Splitter::default();
        let payload = 4000;
        let p = packet(payload, 0x18 | TCP_FIN | TCP_CWR);
        let out = deliver(&umem, &mut sp, &p, 1792);
        assert_eq!(out.len(), 3);
        let mut data = Vec::new();
        let mut seq = 0xffff_ff00u32;
        for (i, (f, len)) in out.iter().enumerate() {
            let s = &f.buf()[..*len];
            assert_eq!(checksum::checksum(&s[14..34]), 0, "IPv4 header sum");
            assert_eq!(usize::from(be16(s, 16)), len - 14);
            assert_eq!(be16(s, 18), 0x1234 + i as u16);
            assert_eq!(u32::from_be_bytes(s[38..42].try_into().unwrap()), seq);
            let last = i == 2;
            assert_eq!(
                s[47] & (TCP_PSH | TCP_FIN) != 0,
                last,
                "PSH/FIN on the last only"
            );
            assert_eq!(s[47] & TCP_CWR != 0, i == 0, "CWR on the first only");
            assert_eq!(s[54..58], [1, 1, 8, 10], "options copied");
            let (_, off, partial) = TcpRepr::parse_rx(&s[34..], SRC, DST, true).unwrap();
            assert!(partial, "piece {i}: the offload form");
            data.extend_from_slice(&s[34 + off..]);
            seq = seq.wrapping_add((len - HDR) as u32);
        }
        assert_eq!(data, p[HDR..], "payload in order");
        let c = sp.counters;
        assert_eq!(
            (
                c.rx_multibuf_packets,
                c.rx_multibuf_segments,
                c.rx_multibuf_dropped
            ),
            (1, 3, 0)
        );
        drop(out);
        assert_eq!(umem.live_frames(), 0);
        assert_eq!(umem.free_frames(), 16);
    }

    #[test]
    fn anything_else_in_several_buffers_is_dropped_whole_and_counted() {
        let umem = SharedUmem::new(16).unwrap();
        let mut sp = Splitter::default();
        // UDP, a complete checksum that does not verify, a truncated
        // header; each followed by a packet in one buffer, which passes as
        // it is.
        let mut udp = packet(3000, 0x10);
        udp[23] = 17;
        let mut full = packet(3000, 0x10);
        put16(&mut full, 50, 0xbeef);
        let mut short = packet(3000, 0x10);
        short[46] = 15 << 4; // 60-byte TCP header past the first buffer
        for (bad, piece) in [(udp, 1792), (full, 1792), (short, 40)] {
            let out = deliver(&umem, &mut sp, &bad, piece);
            assert!(out.is_empty());
            let one = deliver(&umem, &mut sp, &packet(100, 0x18), 1792);
            assert_eq!(one.len(), 1);
            assert_eq!(one[0].1, HDR + 100);
        }
        // A descriptor outside the UMEM or longer than its chunk.
        let mut out = Vec::new();
        let beyond = (umem.frames() * FRAME_SIZE) as u64 + 256;
        assert_eq!(sp.push(&umem, beyond, 100, false, &mut out), 0);
        let f = XdpFrame::alloc(&umem).unwrap();
        let made = sp.push(&umem, f.into_addr(), FRAME_SIZE, false, &mut out);
        umem.core().pool.live_add(made);
        assert!(out.is_empty());
        assert_eq!(sp.bad_desc, 2);
        assert_eq!(sp.counters.rx_multibuf_dropped, 3);
        assert_eq!(sp.counters.rx_multibuf_csum_bad, 1);
        assert_eq!(sp.counters.rx_multibuf_segments, 0);
        assert_eq!(umem.live_frames(), 0);
        assert_eq!(umem.free_frames(), 16);
    }

    /// `packet`, as a peer without checksum offload sends it: the
    /// checksum complete (RFC 9293 §3.1).
    fn packet_full(payload: usize, flags: u8) -> Vec<u8> {
        let mut p = packet(payload, flags);
        put16(&mut p, 50, 0);
        let ph = checksum::pseudo_header(SRC, DST, 6, 32 + payload);
        let c = !checksum::combine(&[ph, checksum::sum(&p[34..])]);
        put16(&mut p, 50, c);
        p
    }

    /// The pieces' payload in order, each piece's checksum verified as
    /// the stack verifies it off veth (no offload form accepted).
    fn verified_payload(out: &[(XdpFrame, usize)]) -> Vec<u8> {
        let mut data = Vec::new();
        for (i, (f, len)) in out.iter().enumerate() {
            let s = &f.buf()[..*len];
            let r = TcpRepr::parse_rx(&s[34..], SRC, DST, false);
            let (_, off, partial) = r.unwrap_or_else(|e| panic!("piece {i}: {e:?}"));
            assert!(!partial, "piece {i}: a complete checksum");
            data.extend_from_slice(&s[34 + off..]);
        }
        data
    }

    #[test]
    fn a_chained_segment_with_a_complete_checksum_is_verified_and_split() {
        // Odd piece sizes: pieces start at odd offsets of the payload.
        for (payload, piece) in [(4000, 1792), (5001, 1031), (3001, 1792)] {
            let umem = SharedUmem::new(16).unwrap();
            let mut sp = Splitter::default();
            let p = packet_full(payload, 0x18);
            let out = deliver(&umem, &mut sp, &p, piece);
            assert_eq!(out.len(), p.len().div_ceil(piece), "{payload}/{piece}");
            assert_eq!(verified_payload(&out), p[HDR..], "{payload}/{piece}");
            let c = sp.counters;
            assert_eq!(
                (
                    c.rx_multibuf_csum_full,
                    c.rx_multibuf_csum_bad,
                    c.rx_multibuf_dropped
                ),
                (1, 0, 0)
            );
            // One bit flipped in the last piece's data: the packet's sum
            // fails, no piece goes on (each piece's own sum would pass:
            // they are made here).
            let mut bad = p.clone();
            *bad.last_mut().unwrap() ^= 0x40;
            assert!(deliver(&umem, &mut sp, &bad, piece).is_empty());
            let c = sp.counters;
            assert_eq!((c.rx_multibuf_csum_bad, c.rx_multibuf_dropped), (1, 1));
            // The next packet, in the offload form, goes on at once.
            let out2 = deliver(&umem, &mut sp, &packet(3000, 0x18), 1792);
            assert_eq!(out2.len(), 2);
            drop((out, out2));
            assert_eq!(umem.live_frames(), 0);
            assert_eq!(umem.free_frames(), 16);
        }
    }

    #[test]
    fn pieces_held_for_the_checksum_wait_across_receive_batches() {
        // The chain's last piece comes with the next batch: nothing goes
        // on before it.
        let umem = SharedUmem::new(16).unwrap();
        let mut sp = Splitter::default();
        let p = packet_full(4000, 0x18);
        let mut out = Vec::new();
        let pieces: Vec<&[u8]> = p.chunks(1792).collect();
        let mut made = 0;
        for (i, c) in pieces.iter().enumerate() {
            if i + 1 == pieces.len() {
                assert!(out.is_empty(), "held until the last piece");
            }
            let mut f = XdpFrame::alloc(&umem).unwrap();
            f.buf_mut()[..c.len()].copy_from_slice(c);
            let addr = f.into_addr();
            made += sp.push(&umem, addr, c.len(), i + 1 < pieces.len(), &mut out);
        }
        umem.core().pool.live_add(made);
        assert_eq!(out.len(), 3);
        assert_eq!(verified_payload(&out), p[HDR..]);
    }
}
