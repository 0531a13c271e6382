//! Path MTU smaller than the hosts' interfaces (issue 9 defect 4): with a
//! router that sends ICMP "fragmentation needed" (RFC 1191), and with one
//! that silently drops (a black hole, RFC 4821 §7.7 detection). Every
//! transfer completes intact, both directions.

use core::time::Duration;
use xdptcp::io::mem::scenario::{run_bulk, BulkParams, BulkReport};
use xdptcp::io::mem::{Limits, LinkConfig, PathHop};

fn params(icmp: bool, conns: u32, seed: u64) -> BulkParams {
    let rate_bps = Some(100_000_000);
    let delay = Duration::from_millis(5);
    BulkParams {
        bytes: 2 << 20,
        conns,
        bidir: true,
        seed,
        link: LinkConfig {
            rate_bps,
            delay,
            queue_limit: xdptcp::io::mem::scenario::default_queue(rate_bps, delay),
            ..LinkConfig::default()
        },
        path_hop: Some(PathHop { mtu: 1280, icmp }),
        limits: Limits {
            time: Duration::from_secs(300),
            ..Limits::default()
        },
        ..BulkParams::default()
    }
}

#[track_caller]
fn check(p: &BulkParams) -> BulkReport {
    let r = run_bulk(p);
    assert!(r.intact, "not intact: {:?} {:?}", r.error, r.outcome);
    assert_eq!(r.outcome, "finished");
    assert_eq!(r.bytes, p.bytes * p.conns as u64 * (1 + p.bidir as u64));
    eprintln!(
        "icmp {:?}: {:.1} ms, {:.1} Mbit/s, path-MTU drops {}, ICMP sent {}, rto {}, retransmits {}",
        p.path_hop.map(|h| h.icmp),
        r.virtual_ms,
        r.goodput_mbps,
        r.link.dropped_path_mtu,
        r.link.icmp_frag_needed,
        r.rto_timeouts,
        r.retransmits
    );
    r
}

#[test]
fn icmp_frag_needed_lowers_the_mss() {
    for seed in [1, 2] {
        let r = check(&params(true, 2, seed));
        let rx: u64 = r.stacks.iter().map(|s| s.icmp_frag_needed_rx).sum();
        assert!(rx > 0 && rx == r.link.icmp_frag_needed);
        let sum = |f: fn(&xdptcp::stack::StackCounters) -> u64| r.stacks.iter().map(f).sum::<u64>();
        // Each of the four flows lowered its MSS once, no black hole.
        assert_eq!(sum(|s| s.pmtu_reductions), 4);
        assert_eq!(sum(|s| s.black_holes), 0);
        // Only the first flight is too big: no timeouts needed.
        assert_eq!(r.rto_timeouts, 0);
        assert!(
            r.link.dropped_path_mtu <= 4 * 40,
            "{}",
            r.link.dropped_path_mtu
        );
    }
}

#[test]
fn black_hole_is_detected_without_icmp() {
    let r = check(&params(false, 2, 3));
    assert_eq!(r.link.icmp_frag_needed, 0);
    assert!(r.rto_timeouts >= 3);
    let holes: u64 = r.stacks.iter().map(|s| s.black_holes).sum();
    assert_eq!(holes, 4, "one per flow");
}

/// RFC 4821 §7 / RFC 8899 §5.1.1: after a lowered path MTU, probing finds
/// a larger one once the path allows it. The router leaves the path at
/// 1.5 s (the MTU rises from 1,280 to the link's 1,500); with the raise
/// timer at 1 s, full-sized packets cross the link again before the end.
/// The control run keeps the router: nothing larger than 1,280 passes,
/// and the probes fail. With ICMP the size was learned from the router;
/// without, black-hole detection lowered it to 1,064 and probing found
/// 1,280 first.
#[test]
fn probing_finds_a_path_mtu_that_rose() {
    for icmp in [true, false] {
        for lifted in [true, false] {
            let mut p = params(icmp, 1, 4);
            p.bytes = 40 << 20;
            p.pmtu_probe_interval = Some(Duration::from_secs(1));
            p.path_hop_until = lifted.then_some(Duration::from_millis(1500));
            let r = check(&p);
            let sum =
                |f: fn(&xdptcp::stack::StackCounters) -> u64| r.stacks.iter().map(f).sum::<u64>();
            eprintln!(
                "  lifted {lifted}: {:.0} ms, largest packet {}, probes {}, raises {}, failed {}",
                r.virtual_ms,
                r.link.largest_passed,
                sum(|s| s.pmtu_probes),
                sum(|s| s.pmtu_raises),
                sum(|s| s.pmtu_probe_failures)
            );
            assert!(
                r.virtual_ms > 3000.0,
                "the transfer outlasts the raise timer"
            );
            assert!(sum(|s| s.pmtu_probes) >= 1);
            if lifted {
                assert_eq!(r.link.largest_passed, 1500, "full-sized packets again");
                assert!(sum(|s| s.pmtu_raises) >= 1);
            } else {
                // Without ICMP only probes reaching exactly 1,280 make
                // packets of that size (black-hole detection left 1,064).
                assert_eq!(r.link.largest_passed, 1280, "the path MTU found");
                assert!(sum(|s| s.pmtu_probe_failures) >= 1);
            }
        }
    }
}
