//! The Internet checksum (RFC 1071), word-at-a-time, and its incremental
//! update (RFC 1624) for rewritten headers.
//!
//! RFC 1071 §2(B): the one's-complement sum is independent of byte order, so
//! `sum` adds the data as native-endian 64-bit words into a 128-bit
//! accumulator (carries are kept, not lost) and swaps the folded 16-bit
//! result into network order once at the end. RFC 1071 §2(C): the sum may be
//! computed over wider words and folded, since the end-around carries are
//! associative.

use core::net::Ipv4Addr;

/// One's-complement sum of `data` folded to 16 bits (not inverted).
///
/// The result is in host order, as if `data` were read as big-endian 16-bit
/// words. An odd trailing byte is padded with a zero byte (RFC 1071 §4.1).
pub fn sum(data: &[u8]) -> u16 {
    sum_inline(data)
}

/// [`sum`], inlined into its caller: for the transmit path's one call per
/// segment, where the call and its register saves cost a third of
/// summing a short payload.
#[inline(always)]
pub fn sum_inline(data: &[u8]) -> u16 {
    // Headers and small segments (most calls: a 20-byte IPv4 header, a
    // 32-byte TCP header with a short payload) take one carry chain; the
    // four-lane loop pays off only over longer data.
    if data.len() < 128 {
        return u16::from_be(fold64(sum_short(data)));
    }
    sum_long(data)
}

/// `sum` of an option-less IPv4 header (RFC 791 §3.1 Header Checksum),
/// inlined with its length known: two words and a half, one carry chain,
/// where the general `sum` is a call with loops (two per segment, one
/// each way).
#[inline(always)]
pub fn sum_ipv4_header(h: &[u8; 20]) -> u16 {
    let a = u64::from_ne_bytes(word(&h[..8]));
    let b = u64::from_ne_bytes(word(&h[8..16]));
    let c = u32::from_ne_bytes([h[16], h[17], h[18], h[19]]) as u64;
    let (s, c1) = a.overflowing_add(b);
    let (s, c2) = s.overflowing_add(c);
    // A carry out leaves a low half far from 2^64: adding both back
    // cannot carry again.
    u16::from_be(fold64(s + c1 as u64 + c2 as u64))
}

/// `sum` over 128 bytes or more. Out of line: its four 128-bit lanes
/// would otherwise make every short call (two per segment each way) pay
/// their register saves.
#[inline(never)]
fn sum_long(data: &[u8]) -> u16 {
    // Four independent lanes per 32-byte block keep the adds off a single
    // dependency chain; u128 lanes cannot overflow for any realistic length
    // (2^64 additions of 2^64).
    let mut acc: [u128; 4] = [0; 4];
    let mut blocks = data.chunks_exact(32);
    for block in &mut blocks {
        let (a, rest) = block.split_at(8);
        let (b, rest) = rest.split_at(8);
        let (c, d) = rest.split_at(8);
        acc[0] += u64::from_ne_bytes(word(a)) as u128;
        acc[1] += u64::from_ne_bytes(word(b)) as u128;
        acc[2] += u64::from_ne_bytes(word(c)) as u128;
        acc[3] += u64::from_ne_bytes(word(d)) as u128;
    }
    let total = (acc[0] + acc[1]) + (acc[2] + acc[3]) + sum_short(blocks.remainder()) as u128;
    u16::from_be(fold128(total))
}

/// One's-complement sum of `data` in native-endian 64-bit words, the
/// carries added back as they occur (RFC 1071 §2(C)): one chain, no fold
/// until the caller's.
#[inline(always)]
fn sum_short(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        // After a carry out the low half is at most 2^64 - 2: adding the
        // carry back cannot carry again.
        let (s, c) = acc.overflowing_add(u64::from_ne_bytes(word(w)));
        acc = s + c as u64;
    }
    // The tail (< 8 bytes) starts at an even offset, so each piece read
    // native-endian lands in the same byte lanes as the full words, and an
    // odd last byte is padded with zero exactly as RFC 1071 asks.
    let mut tail = words.remainder();
    let mut t: u64 = 0;
    if let [a, b, c, d, rest @ ..] = tail {
        t += u32::from_ne_bytes([*a, *b, *c, *d]) as u64;
        tail = rest;
    }
    if let [a, b, rest @ ..] = tail {
        t += u16::from_ne_bytes([*a, *b]) as u64;
        tail = rest;
    }
    if let [a] = tail {
        t += u16::from_ne_bytes([*a, 0]) as u64;
    }
    let (s, c) = acc.overflowing_add(t);
    s + c as u64
}

/// `chunk` (exactly 8 bytes) as an array; the `unwrap_or` never triggers.
#[inline(always)]
fn word(chunk: &[u8]) -> [u8; 8] {
    chunk.try_into().unwrap_or([0; 8])
}

/// Fold a wide one's-complement accumulator to 16 bits with end-around
/// carries, branch-free. After adding a carry back in no second carry can
/// occur: a carry out leaves the low half at most 2^n - 2.
#[inline(always)]
fn fold128(x: u128) -> u16 {
    let (s, c) = (x as u64).overflowing_add((x >> 64) as u64);
    fold64(s + c as u64)
}

#[inline(always)]
fn fold64(x: u64) -> u16 {
    let (s, c) = (x as u32).overflowing_add((x >> 32) as u32);
    let s = s + c as u32;
    let (s, c) = (s as u16).overflowing_add((s >> 16) as u16);
    s + c as u16
}

/// Fold a sum of 16- and 32-bit host-order words (as big-endian on the
/// wire), added as plain integers, to its one's-complement 16 bits (RFC
/// 1071 §2(C): end-around carries are associative; 2^16 = 1 mod 2^16-1,
/// so a 32-bit word counts as its two halves).
#[inline(always)]
pub fn fold(total: u64) -> u16 {
    fold64(total)
}

/// Combine partial sums (one's-complement addition).
pub fn combine(sums: &[u16]) -> u16 {
    let total: u64 = sums.iter().map(|&s| s as u64).sum();
    fold64(total)
}

/// Sum of the IPv4 pseudo-header (RFC 9293 §3.1) for `protocol` and `len`.
///
/// The pseudo-header is source address, destination address, a zero byte,
/// the protocol number and the 16-bit segment length (header + data).
pub fn pseudo_header(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, len: usize) -> u16 {
    let s = u32::from(src) as u64;
    let d = u32::from(dst) as u64;
    let total = (s >> 16) + (s & 0xffff) + (d >> 16) + (d & 0xffff) + protocol as u64 + len as u64;
    fold64(total)
}

/// How the checksum field of a received TCP or UDP segment checks out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RxChecksum {
    /// The one's-complement sum over pseudo-header and segment is all ones.
    Valid,
    /// The field holds only the pseudo-header sum: what a sender with
    /// transmit checksum offload (Linux `CHECKSUM_PARTIAL`) leaves for the
    /// "hardware" to finish. On a veth pair no hardware ever does, and the
    /// bytes never left memory; accepted only where the caller says so.
    Partial,
    /// Neither.
    Bad,
}

/// Check the L4 checksum of `segment` (field at `field_off`) whose
/// pseudo-header sums to `ph`. With `accept_partial`, a field equal to the
/// pseudo-header sum is taken as [`RxChecksum::Partial`] without summing
/// the payload (the sender never computed one; a correct checksum that
/// happens to equal it is accepted either way).
pub fn verify_l4(segment: &[u8], field_off: usize, ph: u16, accept_partial: bool) -> RxChecksum {
    if accept_partial {
        let field = segment
            .get(field_off..field_off + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]));
        if field == Some(ph) {
            return RxChecksum::Partial;
        }
    }
    if combine(&[ph, sum(segment)]) == 0xffff {
        RxChecksum::Valid
    } else {
        RxChecksum::Bad
    }
}

/// The checksum field value for `data` (inverted sum; 0 result stays 0).
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// RFC 1624 eqn. 3: new checksum after a 16-bit field changed `old` -> `new`.
///
/// `HC' = ~(~HC + ~m + m')`. Unlike eqn. 2 this never yields the
/// "negative zero" problem described in RFC 1624 §3.
pub fn update(check: u16, old: u16, new: u16) -> u16 {
    !combine(&[!check, !old, new])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The textbook RFC 1071 loop: big-endian 16-bit words into a u32.
    fn reference(data: &[u8]) -> u16 {
        let mut acc: u64 = 0;
        let mut i = 0;
        while i + 1 < data.len() {
            acc += u16::from_be_bytes([data[i], data[i + 1]]) as u64;
            i += 2;
        }
        if i < data.len() {
            acc += (data[i] as u64) << 8;
        }
        while acc >> 16 != 0 {
            acc = (acc & 0xffff) + (acc >> 16);
        }
        acc as u16
    }

    #[test]
    fn empty_and_small() {
        assert_eq!(sum(&[]), 0);
        assert_eq!(sum(&[0x12]), 0x1200);
        assert_eq!(sum(&[0x12, 0x34]), 0x1234);
        assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
        assert_eq!(checksum(&[]), 0xffff);
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 §3 numerical example: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn ipv4_header_vector() {
        // A well-known IPv4 header (Wikipedia "IPv4 header checksum"):
        // checksum field b861.
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0xb861);
        hdr[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(sum(&hdr), 0xffff);
        assert_eq!(sum_ipv4_header(&hdr), 0xffff);
    }

    #[test]
    fn ipv4_header_sum_matches_reference() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(791);
        let mut hdr = [0u8; 20];
        for i in 0..5000 {
            // All-ones and random headers: every carry path.
            if i == 0 {
                hdr = [0xff; 20];
            } else {
                rng.fill(&mut hdr[..]);
            }
            assert_eq!(sum_ipv4_header(&hdr), reference(&hdr), "{hdr:?}");
        }
    }

    #[test]
    fn all_ones_carries() {
        // Large runs of 0xff exercise every carry path: the sum of any number
        // of 0xffff words is 0xffff.
        for n in [2usize, 8, 31, 32, 33, 64, 127, 128, 129, 1500, 9000, 65536] {
            let data = vec![0xffu8; n];
            assert_eq!(sum(&data), reference(&data), "len {n}");
        }
    }

    #[test]
    fn matches_reference_random_lengths_and_alignments() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(1071);
        let mut buf = vec![0u8; 9100];
        for _ in 0..2000 {
            rng.fill(&mut buf[..]);
            let off = rng.gen_range(0..16);
            let len = rng.gen_range(0..9000);
            let data = &buf[off..off + len];
            assert_eq!(sum(data), reference(data), "off {off} len {len}");
        }
        for len in 0..200 {
            for off in 0..8 {
                let data = &buf[off..off + len];
                assert_eq!(sum(data), reference(data), "off {off} len {len}");
            }
        }
    }

    #[test]
    fn combine_splits_at_even_offsets() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
        let mut buf = vec![0u8; 3000];
        rng.fill(&mut buf[..]);
        for _ in 0..200 {
            let cut = rng.gen_range(0..1500) * 2;
            let whole = sum(&buf);
            assert_eq!(combine(&[sum(&buf[..cut]), sum(&buf[cut..])]), whole);
        }
        assert_eq!(combine(&[]), 0);
        assert_eq!(combine(&[0xffff, 0x0001]), 0x0001);
        assert_eq!(combine(&[0x8000, 0x8000]), 0x0001);
    }

    #[test]
    fn pseudo_header_matches_bytes() {
        let src = Ipv4Addr::new(198, 18, 0, 1);
        let dst = Ipv4Addr::new(198, 19, 255, 254);
        let mut ph = [0u8; 12];
        ph[0..4].copy_from_slice(&src.octets());
        ph[4..8].copy_from_slice(&dst.octets());
        ph[9] = 6;
        ph[10..12].copy_from_slice(&1480u16.to_be_bytes());
        assert_eq!(pseudo_header(src, dst, 6, 1480), reference(&ph));
        let ones = Ipv4Addr::new(255, 255, 255, 255);
        ph[0..8].fill(0xff);
        ph[9] = 17;
        ph[10..12].copy_from_slice(&0xffffu16.to_be_bytes());
        assert_eq!(pseudo_header(ones, ones, 17, 0xffff), reference(&ph));
    }

    #[test]
    fn incremental_update_matches_recompute() {
        let mut rng = rand_pcg::Pcg64::seed_from_u64(1624);
        let mut hdr = [0u8; 20];
        for _ in 0..5000 {
            rng.fill(&mut hdr[..]);
            hdr[10] = 0;
            hdr[11] = 0;
            let c = checksum(&hdr);
            hdr[10..12].copy_from_slice(&c.to_be_bytes());
            let field = rng.gen_range(0..10) * 2;
            if field == 10 {
                continue;
            }
            let old = u16::from_be_bytes([hdr[field], hdr[field + 1]]);
            let new: u16 = if rng.gen_bool(0.1) { 0 } else { rng.gen() };
            hdr[field..field + 2].copy_from_slice(&new.to_be_bytes());
            let updated = update(c, old, new);
            // Verification: the header with the updated checksum sums to
            // all ones (the recomputed checksum may differ only as 0 vs
            // 0xffff, both being one's-complement zero).
            hdr[10..12].copy_from_slice(&updated.to_be_bytes());
            assert_eq!(sum(&hdr), 0xffff);
            hdr[10] = 0;
            hdr[11] = 0;
            let fresh = checksum(&hdr);
            assert!(
                fresh == updated
                    || (fresh == 0 && updated == 0xffff)
                    || (fresh == 0xffff && updated == 0)
            );
        }
    }

    #[test]
    fn rfc1624_example() {
        // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives 0x0000.
        assert_eq!(update(0xdd2f, 0x5555, 0x3285), 0x0000);
    }
}
