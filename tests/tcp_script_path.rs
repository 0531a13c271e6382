//! Packet scripts: the path (RFC 1191 PMTUD with RFC 5927 §4.1 checks,
//! RFC 4821 §7.7 black-hole detection).

mod tcp_harness;
use tcp_harness::*;
use xdptcp::tcp::{IcmpNotice, SeqNumber};

const N: u32 = ISS + 1;
const M: u32 = PEER_ISS + 1;

fn frag_needed(seq: u32, mtu: u16) -> IcmpNotice {
    IcmpNotice {
        icmp_type: 3,
        code: 4,
        seq: SeqNumber(seq),
        next_hop_mtu: mtu,
        quoted_len: 1500,
    }
}

/// Four full segments out; returns the script.
fn four_out() -> Script {
    let mut s = established(&cfg());
    s.at_ms(20);
    assert_eq!(s.send(&pattern(0, 4 * 1448)), 4 * 1448);
    let out = s.poll();
    assert_eq!(out.len(), 4);
    s
}

#[test]
fn frag_needed_in_window_resends_smaller_segments() {
    let mut s = four_out();
    // RFC 5927 §4.1: SND.NXT is not in flight.
    s.c.handle_icmp_error(s.now, &frag_needed(N + 4 * 1448, 1280));
    assert_eq!(s.c.snd_mss(), 1448);
    assert!(s.poll().is_empty());
    // An old router's 0: the plateau below 1500 is 1492.
    s.c.handle_icmp_error(s.now, &frag_needed(N, 0));
    assert_eq!(s.c.snd_mss(), 1492 - 40 - 12);
    s.c.handle_icmp_error(s.now, &frag_needed(N + 1448, 1280));
    assert_eq!(s.c.snd_mss(), 1280 - 40 - 12);
    assert_eq!(s.c.path_mtu(), Some(1280));
    let out = s.poll();
    let lens: Vec<usize> = out.iter().map(|o| o.data.len()).collect();
    assert_eq!(lens, vec![1228, 220, 1228, 220, 1228, 220, 1228, 220]);
    check(&out[0], A, N, M, 1228);
    assert_eq!(out[0].data, pattern(0, 1228));
    // Not a congestion signal: the window is kept (in segments).
    assert_eq!(s.c.cwnd(), 10 * 1228);
}

/// Fire timers until the `n`-th RTO; what it sent.
fn rto(s: &mut Script, n: u64) -> Vec<Out> {
    loop {
        let out = s.fire();
        if s.c.stats().rto_timeouts == n {
            return out;
        }
    }
}

#[test]
fn black_hole_after_three_rtos_unless_full_segments_got_through() {
    // Nothing full-sized ever delivered: three RTOs, then 1024-byte segments.
    let mut s = four_out();
    let out = rto(&mut s, 1);
    assert_eq!(out[0].data.len(), 1448);
    let out = rto(&mut s, 2);
    assert_eq!(out[0].data.len(), 1448);
    let out = rto(&mut s, 3);
    assert_eq!(out[0].data.len(), 1024 - 12);
    assert_eq!(s.c.stats().black_holes, 1);

    // Full-sized segments were acknowledged: three RTOs are loss.
    let mut s = four_out();
    s.io(pack(N + 2 * 1448), &[]);
    for k in 1..=5 {
        assert_eq!(rto(&mut s, k)[0].data.len(), 1448);
    }
    assert_eq!(s.c.stats().black_holes, 0);
    // Six in a row: a route change into a black hole.
    assert_eq!(rto(&mut s, 6)[0].data.len(), 1024 - 12);
    assert_eq!(s.c.stats().black_holes, 1);
}
