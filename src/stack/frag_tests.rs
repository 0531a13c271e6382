use super::*;
use crate::io::Frame;
use crate::stack::hasher::KeyedHasher;

/// A heap frame holding exactly its bytes.
struct F(Vec<u8>);
impl Frame for F {
    fn buf(&self) -> &[u8] {
        &self.0
    }
    fn buf_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn ip(ident: u16) -> Ipv4Repr {
    Ipv4Repr {
        ident,
        ..Ipv4Repr::new(SRC, DST, crate::wire::IpProtocol::Udp, 0)
    }
}

/// Bytes `off..off + len` of the test datagram (byte i is i % 251).
fn part(off: usize, len: usize) -> Pkt<F> {
    let v: Vec<u8> = (off..off + len).map(|i| (i % 251) as u8).collect();
    Pkt::new(F(v), 0, len)
}

fn fi(offset: usize, more: bool) -> FragInfo {
    FragInfo { offset, more }
}

fn reasm(frames_max: usize) -> Reassembly<F> {
    Reassembly::new(KeyedHasher::new(&[3; 16], 9), frames_max, FRAG_TIMEOUT)
}

fn bytes(w: &Whole<F>) -> Vec<u8> {
    w.parts.iter().flat_map(|p| p.data().to_vec()).collect()
}

fn t(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

#[test]
fn out_of_order_fragments_reassemble_zero_copy() {
    let mut r = reasm(64);
    let mut c = StackCounters::default();
    assert!(r
        .insert(t(0), &ip(1), fi(2960, false), part(2960, 40), &mut c)
        .is_none());
    assert!(r
        .insert(t(0), &ip(1), fi(0, true), part(0, 1480), &mut c)
        .is_none());
    assert_eq!((r.len(), r.frames()), (1, 2));
    let w = r
        .insert(t(1), &ip(1), fi(1480, true), part(1480, 1480), &mut c)
        .unwrap();
    assert_eq!(w.len, 3000);
    assert_eq!(w.parts.len(), 3);
    let want: Vec<u8> = (0..3000).map(|i| (i % 251) as u8).collect();
    assert_eq!(bytes(&w), want);
    assert_eq!((r.len(), r.frames()), (0, 0));
    assert_eq!((c.frag_rx, c.frag_reassembled), (3, 1));
    // Another ident is another datagram.
    assert!(r
        .insert(t(2), &ip(2), fi(0, true), part(0, 8), &mut c)
        .is_none());
    assert!(r
        .insert(t(2), &ip(3), fi(8, false), part(8, 8), &mut c)
        .is_none());
    assert_eq!(r.len(), 2);
}

#[test]
fn an_overlap_discards_the_datagram_a_duplicate_only_itself() {
    let mut r = reasm(64);
    let mut c = StackCounters::default();
    r.insert(t(0), &ip(1), fi(0, true), part(0, 16), &mut c);
    // Exact duplicate: dropped alone.
    r.insert(t(0), &ip(1), fi(0, true), part(0, 16), &mut c);
    assert_eq!((c.drop_frag_dup, r.frames()), (1, 1));
    let w = r
        .insert(t(0), &ip(1), fi(16, false), part(16, 5), &mut c)
        .unwrap();
    assert_eq!(w.len, 21);
    // Overlap (8..24 over 0..16): everything goes.
    r.insert(t(0), &ip(2), fi(0, true), part(0, 16), &mut c);
    r.insert(t(0), &ip(2), fi(24, false), part(24, 8), &mut c);
    assert!(r
        .insert(t(0), &ip(2), fi(8, true), part(8, 16), &mut c)
        .is_none());
    assert_eq!((c.drop_frag_overlap, r.len(), r.frames()), (1, 0, 0));
    // Same range, other bytes: an overlap too (inconsistent data).
    r.insert(t(0), &ip(3), fi(0, true), part(0, 16), &mut c);
    let mut other = part(0, 16);
    other.frame.0[3] ^= 1;
    r.insert(t(0), &ip(3), fi(0, true), other, &mut c);
    assert_eq!((c.drop_frag_overlap, r.len()), (2, 0));
}

#[test]
fn bad_lengths_are_dropped() {
    let mut r = reasm(64);
    let mut c = StackCounters::default();
    // Not a multiple of 8 before the last; empty with MF; past 65,535.
    r.insert(t(0), &ip(1), fi(0, true), part(0, 12), &mut c);
    r.insert(t(0), &ip(1), fi(0, true), part(0, 0), &mut c);
    r.insert(t(0), &ip(1), fi(65528, false), part(0, 100), &mut c);
    assert_eq!((c.drop_frag_bad, r.len()), (3, 0));
    // Data past the end the last fragment fixed, or a second, other end.
    r.insert(t(0), &ip(2), fi(16, false), part(16, 8), &mut c);
    r.insert(t(0), &ip(2), fi(24, true), part(24, 8), &mut c);
    assert_eq!((c.drop_frag_bad, r.len()), (4, 0));
    r.insert(t(0), &ip(3), fi(16, false), part(16, 8), &mut c);
    r.insert(t(0), &ip(3), fi(8, false), part(8, 4), &mut c);
    assert_eq!((c.drop_frag_bad, r.len(), r.frames()), (5, 0, 0));
}

#[test]
fn too_many_parts_and_the_frame_bound() {
    let mut r = reasm(100);
    let mut c = StackCounters::default();
    for k in 0..=MAX_PARTS {
        r.insert(t(0), &ip(1), fi(16 * k, true), part(16 * k, 8), &mut c);
    }
    assert_eq!((c.drop_frag_too_many, r.len(), r.frames()), (1, 0, 0));
    // 100 frames at most: datagrams go oldest first.
    for id in 0..30u16 {
        for k in 0..5 {
            r.insert(
                t(u64::from(id)),
                &ip(id),
                fi(16 * k, true),
                part(0, 8),
                &mut c,
            );
        }
    }
    assert!(r.frames() <= 100);
    assert_eq!(c.drop_frag_evicted, 10);
    assert_eq!(r.len(), 20);
    // The newest survived: a duplicate of ident 29's part is recognized.
    r.insert(t(40), &ip(29), fi(64, true), part(0, 8), &mut c);
    assert_eq!(c.drop_frag_dup, 1);
    // The oldest went: ident 0 starts afresh.
    r.insert(t(40), &ip(0), fi(64, true), part(0, 8), &mut c);
    assert_eq!(c.drop_frag_dup, 1);
}

#[test]
fn the_timer_drops_incomplete_datagrams_and_keeps_fragment_zero() {
    let mut r = reasm(64);
    let mut c = StackCounters::default();
    r.insert(t(0), &ip(1), fi(0, true), part(0, 8), &mut c);
    r.insert(t(5000), &ip(2), fi(8, false), part(8, 8), &mut c);
    assert_eq!(r.poll_at(), Some(t(30_000)));
    let mut out = Vec::new();
    r.poll(t(29_999), &mut c, &mut out);
    assert!(out.is_empty());
    r.poll(t(30_000), &mut c, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].key.ident, 1);
    assert!(out[0].first.is_some());
    r.poll(t(35_000), &mut c, &mut out);
    assert_eq!(out.len(), 2);
    assert!(out[1].first.is_none(), "no fragment zero for ident 2");
    assert_eq!(
        (c.drop_frag_timeout, r.len(), r.frames(), r.poll_at()),
        (2, 0, 0, None)
    );
}

#[test]
fn the_order_list_stays_bounded() {
    let mut r = reasm(64);
    let mut c = StackCounters::default();
    for id in 0..10_000u16 {
        r.insert(t(0), &ip(id), fi(0, true), part(0, 8), &mut c);
        r.insert(t(0), &ip(id), fi(8, false), part(8, 8), &mut c)
            .unwrap();
        assert!(r.order.len() <= 2 * r.len() + 18);
    }
    assert_eq!(c.frag_reassembled, 10_000);
}
