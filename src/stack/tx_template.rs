//! A connection's Ethernet and IPv4 headers, prebuilt, and its TCP
//! pseudo-header's address sum (the per-connection header template).
//!
//! Everything in them but four fields is the same for every segment of a
//! connection: MACs, EtherType, version, TTL, DF, protocol and addresses.
//! They are written once, with the IPv4 header's checksum summed over
//! those fixed fields; emitting a segment copies the 34 bytes and patches
//! the total length, identification and ECN field, finishing the checksum
//! from the stored partial sum (RFC 1071 §2(B): the one's-complement sum
//! is commutative and associative, so the fixed part is summed once), in
//! place of building an `Ipv4Repr` and an `EthernetRepr` and summing the
//! whole header per segment.
//!
//! The steady state's segment (a [`PlainHeader`] with timestamps: plain
//! established TCP, new data or a pure ACK) goes further, the straight
//! path [`L2L3Template::write_plain_ts`]: the TCP header and its
//! `NOP, NOP, TS` option are prebuilt behind the IPv4 header too (ports,
//! data offset, option kinds), with their one's-complement sum and the
//! pseudo-header's addresses summed once; a segment copies 66 bytes as a
//! block, patches seq, ack, flags, window, TSval and TSecr, and sums only
//! those words and the payload.

use super::iface::{ETH_LEN, L2L3_LEN, TTL};
use crate::tcp::{FourTuple, PlainHeader};
use crate::wire::{checksum, EtherType, EthernetRepr, IpProtocol, Ipv4Repr, MacAddr, TcpRepr};

/// The options of a [`PlainHeader`] with timestamps: `NOP, NOP, TS`
/// (RFC 7323 Appendix A), 12 bytes.
pub(crate) const PLAIN_TS_LEN: usize = 12;

/// Ethernet + IPv4 + TCP with `NOP, NOP, TS`: the straight path's block.
pub(crate) const PLAIN_HEAD_LEN: usize = L2L3_LEN + TcpRepr::MIN_HEADER_LEN + PLAIN_TS_LEN;

/// The TCP header's length with timestamps, in 32-bit words, as the data
/// offset nibble (RFC 9293 §3.1).
const PLAIN_TS_DOFF: u8 = (((TcpRepr::MIN_HEADER_LEN + PLAIN_TS_LEN) / 4) as u8) << 4;

/// Prebuilt Ethernet + IPv4 headers for one connection, and behind them
/// its TCP header with timestamps for the straight path.
#[derive(Debug, Clone)]
pub(crate) struct L2L3Template {
    /// The headers: Ethernet and IPv4 with total length, identification,
    /// ECN and checksum zero, then TCP (ports, data offset for
    /// timestamps, `NOP, NOP, TS` kinds; everything else zero).
    head: [u8; PLAIN_HEAD_LEN],
    /// The folded one's-complement sum of the IPv4 header in `head`.
    ip_sum: u16,
    /// The TCP pseudo-header's sum over the addresses and protocol.
    pub tcp_ph: u16,
    /// `tcp_ph` plus the sum of the fixed TCP words in `head` (ports,
    /// data offset, option kinds): what every straight-path segment's
    /// checksum starts from.
    tcp_fixed: u16,
    /// Built (before the first `prepare`, `head` is zero).
    built: bool,
}

impl Default for L2L3Template {
    fn default() -> Self {
        L2L3Template {
            head: [0; PLAIN_HEAD_LEN],
            ip_sum: 0,
            tcp_ph: 0,
            tcp_fixed: 0,
            built: false,
        }
    }
}

impl L2L3Template {
    /// Make the template match `src_mac` -> `dst_mac` (a no-op when it
    /// already does: the common case). The tuple is the caller's fixed
    /// one (a connection's 4-tuple never changes).
    #[inline]
    pub fn prepare(&mut self, src_mac: MacAddr, dst_mac: MacAddr, tuple: &FourTuple) {
        // The MACs are compared where they are written, in `head`.
        if !self.built || self.head[..6] != dst_mac.0 || self.head[6..12] != src_mac.0 {
            self.build(src_mac, dst_mac, tuple);
        }
    }

    #[cold]
    fn build(&mut self, src_mac: MacAddr, dst_mac: MacAddr, tuple: &FourTuple) {
        let (src, dst) = (*tuple.local.ip(), *tuple.remote.ip());
        EthernetRepr {
            dst: dst_mac,
            src: src_mac,
            ethertype: EtherType::Ipv4,
        }
        .emit(&mut self.head[..ETH_LEN]);
        let ip = Ipv4Repr {
            src,
            dst,
            protocol: IpProtocol::Tcp,
            // Total length and checksum are zeroed below: not fixed.
            payload_len: 0,
            ttl: TTL,
            dscp: 0,
            ecn: 0,
            ident: 0,
            // RFC 9293 §3.7.2 / RFC 1191: DF on, we do path MTU by MSS.
            dont_frag: true,
        };
        let h = &mut self.head[ETH_LEN..L2L3_LEN];
        ip.emit(h);
        h[2..4].fill(0);
        h[10..12].fill(0);
        self.ip_sum = checksum::sum(h);
        self.tcp_ph = TcpRepr::pseudo_header_addrs(src, dst);
        // RFC 9293 §3.1: the header fields no segment of the connection
        // changes; RFC 7323 Appendix A: `NOP, NOP, TS(10)`.
        let t = &mut self.head[L2L3_LEN..];
        t.fill(0);
        t[0..2].copy_from_slice(&tuple.local.port().to_be_bytes());
        t[2..4].copy_from_slice(&tuple.remote.port().to_be_bytes());
        t[12] = PLAIN_TS_DOFF;
        t[20..24].copy_from_slice(&[1, 1, 8, 10]);
        self.tcp_fixed = checksum::combine(&[self.tcp_ph, checksum::sum(t)]);
        self.built = true;
    }

    /// Write the headers over `pkt[..L2L3_LEN]` for a packet of
    /// `pkt.len()` bytes, with IPv4 identification `ident` and, if `ect`,
    /// ECT(0) (RFC 3168 §5: codepoint 2).
    ///
    /// # Panics
    /// If `pkt` is shorter than `L2L3_LEN` (a caller bug).
    #[inline]
    pub fn write(&self, pkt: &mut [u8], ident: u16, ect: bool) {
        let total = (pkt.len() - ETH_LEN) as u16;
        let h: &mut [u8; L2L3_LEN] = (&mut pkt[..L2L3_LEN])
            .try_into()
            .expect("an L2L3_LEN slice");
        let l2l3: &[u8; L2L3_LEN] = self.head.first_chunk().expect("the template's L2L3 part");
        *h = *l2l3;
        self.patch_ip(h, total, ident, ect);
    }

    /// The IPv4 header's variable fields over a copy of `head`'s.
    #[inline(always)]
    fn patch_ip(&self, h: &mut [u8; L2L3_LEN], total: u16, ident: u16, ect: bool) {
        let ecn = if ect { 2u8 } else { 0 };
        let ip = &mut h[ETH_LEN..];
        ip[1] = ecn;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[4..6].copy_from_slice(&ident.to_be_bytes());
        // RFC 791 §3.1 Header Checksum: the fixed fields' sum plus the
        // three patched ones (ECN is the low byte of the first word;
        // RFC 1624: a sum kept, the changed words added).
        let sum = checksum::combine(&[self.ip_sum, total, ident, u16::from(ecn)]);
        ip[10..12].copy_from_slice(&(!sum).to_be_bytes());
    }

    /// The straight path: write a whole segment's headers over
    /// `pkt[..PLAIN_HEAD_LEN]` for a packet of `pkt.len()` bytes whose
    /// payload (after the headers) is in place: `h` with timestamps
    /// `ts`, IPv4 identification `ident`, ECT(0) if `ect`, and the TCP
    /// checksum (the pseudo-header's sum alone if `partial`: the device
    /// completes it). Byte for byte what `write_plain_tcp`,
    /// `TcpRepr::fill_checksum_with` and [`Self::write`] write.
    ///
    /// # Panics
    /// If `pkt` is shorter than `PLAIN_HEAD_LEN` (a caller bug: the sink
    /// sized it).
    #[inline(always)]
    pub fn write_plain_ts(
        &self,
        pkt: &mut [u8],
        h: &PlainHeader,
        ts: (u32, u32),
        ident: u16,
        ect: bool,
        partial: bool,
    ) {
        let total = (pkt.len() - ETH_LEN) as u16;
        let tcp_len = total - crate::wire::Ipv4Repr::HEADER_LEN as u16;
        let (hd, payload) = pkt
            .split_first_chunk_mut::<PLAIN_HEAD_LEN>()
            .expect("the straight path's room");
        *hd = self.head;
        let (l2l3, t) = hd
            .split_first_chunk_mut::<L2L3_LEN>()
            .expect("the L2L3 part");
        self.patch_ip(l2l3, total, ident, ect);
        t[4..8].copy_from_slice(&h.seq.0.to_be_bytes());
        t[8..12].copy_from_slice(&h.ack.0.to_be_bytes());
        t[13] = h.flags.0;
        t[14..16].copy_from_slice(&h.window.to_be_bytes());
        t[24..28].copy_from_slice(&ts.0.to_be_bytes());
        t[28..32].copy_from_slice(&ts.1.to_be_bytes());
        let c = if partial {
            // The device sums the segment (AF_XDP TX metadata).
            checksum::combine(&[self.tcp_ph, tcp_len])
        } else {
            // RFC 9293 §3.1 Checksum: the fixed part's sum kept, the
            // variable words and the payload added (RFC 1071 §2(B): the
            // sum is associative; 32-bit words fold as two 16-bit ones).
            let words = u64::from(self.tcp_fixed)
                + u64::from(tcp_len)
                + u64::from(h.seq.0)
                + u64::from(h.ack.0)
                + u64::from(h.flags.0)
                + u64::from(h.window)
                + u64::from(ts.0)
                + u64::from(ts.1)
                + u64::from(checksum::sum_inline(payload));
            !checksum::fold(words)
        };
        t[16..18].copy_from_slice(&c.to_be_bytes());
    }
}

/// Write the option-less TCP header `h` over `seg[..20]`, checksum zero:
/// byte for byte what `TcpRepr::emit_header_with` writes for
/// `h.to_repr()`. A header with timestamps takes the straight path
/// ([`L2L3Template::write_plain_ts`]), its only caller.
///
/// # Panics
/// If `seg` is shorter than the header (a caller bug: the sink sized it).
#[inline(always)]
pub(crate) fn write_plain_tcp(h: &PlainHeader, seg: &mut [u8]) {
    debug_assert!(h.ts.is_none(), "timestamps go the straight path");
    let fixed = seg
        .first_chunk_mut::<{ TcpRepr::MIN_HEADER_LEN }>()
        .expect("a TCP header's room");
    write_fixed(h, fixed, TcpRepr::MIN_HEADER_LEN);
}

/// RFC 9293 §3.1: the fixed header of `h`, `len` bytes with options.
#[inline(always)]
fn write_fixed(h: &PlainHeader, b: &mut [u8; TcpRepr::MIN_HEADER_LEN], len: usize) {
    b[0..2].copy_from_slice(&h.src_port.to_be_bytes());
    b[2..4].copy_from_slice(&h.dst_port.to_be_bytes());
    b[4..8].copy_from_slice(&h.seq.0.to_be_bytes());
    b[8..12].copy_from_slice(&h.ack.0.to_be_bytes());
    b[12] = ((len / 4) as u8) << 4;
    b[13] = h.flags.0;
    b[14..16].copy_from_slice(&h.window.to_be_bytes());
    // Checksum (filled by the caller) and urgent pointer.
    b[16..20].fill(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, SocketAddrV4};

    fn tuple(src: Ipv4Addr, dst: Ipv4Addr) -> FourTuple {
        FourTuple {
            local: SocketAddrV4::new(src, 7),
            remote: SocketAddrV4::new(dst, 0xfffe),
        }
    }

    /// The template writes what building the headers field by field
    /// writes, for any length, identification and ECN.
    #[test]
    fn template_matches_the_headers_built_field_by_field() {
        let (sm, dm) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        let (src, dst) = (
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 19, 255, 254),
        );
        let mut t = L2L3Template::default();
        t.prepare(sm, dm, &tuple(src, dst));
        for (len, ident, ect) in [
            (54, 0, false),
            (54, 0xffff, true),
            (118, 0x1234, false),
            (1514, 0xfffe, true),
            (60, 0x8000, false),
        ] {
            let mut got = vec![0u8; len];
            t.write(&mut got, ident, ect);
            let mut want = vec![0u8; len];
            EthernetRepr {
                dst: dm,
                src: sm,
                ethertype: EtherType::Ipv4,
            }
            .emit(&mut want[..ETH_LEN]);
            Ipv4Repr {
                src,
                dst,
                protocol: IpProtocol::Tcp,
                payload_len: len - L2L3_LEN,
                ttl: TTL,
                dscp: 0,
                ecn: if ect { 2 } else { 0 },
                ident,
                dont_frag: true,
            }
            .emit(&mut want[ETH_LEN..L2L3_LEN]);
            assert_eq!(got[..L2L3_LEN], want[..L2L3_LEN], "len {len} ident {ident}");
        }
    }

    /// A plain header without options is written byte for byte as the
    /// general path writes the same header as a `TcpRepr` (with
    /// timestamps: `straight_path_matches_the_general_path`).
    #[test]
    fn plain_header_matches_the_general_writer() {
        use crate::tcp::{SeqNumber, TcpFlags};
        for flags in [TcpFlags::ACK, TcpFlags(0x19), TcpFlags(0x98)] {
            let ts = None;
            let h = PlainHeader {
                src_port: 7,
                dst_port: 0xfffe,
                seq: SeqNumber(0xdead_beef),
                ack: SeqNumber(3),
                flags,
                window: 0x1234,
                ts,
            };
            let len = TcpRepr::MIN_HEADER_LEN;
            // A payload's bytes follow the header and stay as they were.
            let mut got = [0xa5u8; 64];
            write_plain_tcp(&h, &mut got);
            let mut want = [0xa5u8; 64];
            let r = h.to_repr();
            let layout = r.options.layout();
            assert_eq!(r.emit_header_with(&layout, &mut want), len);
            assert_eq!(got, want, "{h:?}");
        }
    }

    /// The straight path writes what the general path writes (the header
    /// as a `TcpRepr`, the whole segment summed, the IPv4 header built)
    /// for any fields, payload length (odd, none, full-sized), ECN and
    /// checksum mode, segment after segment from one template: a field
    /// left from an earlier segment shows.
    #[test]
    fn straight_path_matches_the_general_path() {
        use crate::tcp::{SeqNumber, TcpFlags};
        let (sm, dm) = (MacAddr([2, 0, 0, 0, 0, 1]), MacAddr([2, 0, 0, 0, 0, 2]));
        let (src, dst) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 19, 9, 7));
        let tu = tuple(src, dst);
        let mut t = L2L3Template::default();
        t.prepare(sm, dm, &tu);
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for i in 0..2000 {
            let r = next();
            let h = PlainHeader {
                src_port: 7,
                dst_port: 0xfffe,
                seq: SeqNumber(r as u32),
                ack: SeqNumber((r >> 32) as u32),
                flags: TcpFlags(0x10 | (next() as u8 & 0xe9)),
                window: next() as u16,
                ts: Some((next() as u32, next() as u32)),
            };
            let len = match i % 5 {
                0 => 0,
                1 => 1448,
                _ => next() as usize % 1449,
            };
            let (ident, ect, partial) = (next() as u16, i % 3 == 0, i % 4 == 0);
            let payload: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let total = PLAIN_HEAD_LEN + len;
            let mut got = vec![0xa5u8; total];
            got[PLAIN_HEAD_LEN..].copy_from_slice(&payload);
            t.write_plain_ts(&mut got, &h, h.ts.unwrap(), ident, ect, partial);
            let mut want = got.clone();
            want[..PLAIN_HEAD_LEN].fill(0x5a);
            let r = h.to_repr();
            let layout = r.options.layout();
            r.emit_header_with(&layout, &mut want[L2L3_LEN..]);
            if partial {
                TcpRepr::fill_partial_checksum(&mut want[L2L3_LEN..], src, dst);
            } else {
                TcpRepr::fill_checksum_with(&mut want[L2L3_LEN..], t.tcp_ph);
            }
            EthernetRepr {
                dst: dm,
                src: sm,
                ethertype: EtherType::Ipv4,
            }
            .emit(&mut want[..ETH_LEN]);
            Ipv4Repr {
                src,
                dst,
                protocol: IpProtocol::Tcp,
                payload_len: total - L2L3_LEN,
                ttl: TTL,
                dscp: 0,
                ecn: if ect { 2 } else { 0 },
                ident,
                dont_frag: true,
            }
            .emit(&mut want[ETH_LEN..L2L3_LEN]);
            assert_eq!(got, want, "segment {i}: {h:?} len {len} partial {partial}");
            if !partial {
                // And the receiver's check agrees.
                let ph = TcpRepr::pseudo_header_addrs(src, dst);
                let seg = &got[L2L3_LEN..];
                let s = checksum::combine(&[ph, seg.len() as u16, checksum::sum(seg)]);
                assert_eq!(s, 0xffff);
            }
        }
    }

    /// A new next-hop MAC rebuilds the template.
    #[test]
    fn template_follows_the_mac() {
        let (src, dst) = (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2));
        let sm = MacAddr([2, 0, 0, 0, 0, 1]);
        let mut t = L2L3Template::default();
        t.prepare(sm, MacAddr::default(), &tuple(src, dst));
        let new = MacAddr([2, 0, 0, 0, 0, 9]);
        t.prepare(sm, new, &tuple(src, dst));
        let mut pkt = [0u8; 54];
        t.write(&mut pkt, 1, false);
        assert_eq!(pkt[..6], new.0);
        assert_eq!(pkt[6..12], sm.0);
    }
}
