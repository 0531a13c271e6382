//! MPTCP v1 on one subflow in the simulator: both stacks MPTCP over clean
//! and impaired links (loss, reordering, duplication, corruption), with and
//! without the DSS checksum, bulk both ways, every byte checked; and the
//! fallbacks: an MPTCP client against a plain server, a plain client
//! against an MPTCP server, each connection completing as plain TCP.

use core::time::Duration;
use xdptcp::io::mem::scenario::{default_queue, run_bulk, BulkParams, BulkReport};
use xdptcp::io::mem::{Limits, LinkConfig};

fn params(seed: u64, mptcp: [bool; 2], checksum: bool) -> BulkParams {
    let rate_bps = Some(100_000_000);
    let delay = Duration::from_millis(5);
    BulkParams {
        bytes: 1 << 20,
        conns: 4,
        bidir: true,
        seed,
        mptcp,
        mptcp_checksum: checksum,
        link: LinkConfig {
            rate_bps,
            delay,
            queue_limit: default_queue(rate_bps, delay),
            ..LinkConfig::default()
        },
        limits: Limits {
            time: Duration::from_secs(600),
            ..Limits::default()
        },
        ..BulkParams::default()
    }
}

#[track_caller]
fn run(p: &BulkParams) -> BulkReport {
    let r = run_bulk(p);
    if let Some(f) = r.failure(true) {
        panic!("seed {} mptcp {:?} link {:?}: {f}", p.seed, p.mptcp, p.link);
    }
    assert!(r.intact && r.drained, "{:?}", r.error);
    assert_eq!(r.bytes, p.bytes * p.conns as u64 * 2);
    r
}

#[test]
fn mptcp_bulk_both_ways_clean_and_impaired() {
    for (seed, checksum, loss, reorder, dup, corrupt) in [
        (1, false, 0.0, 0.0, 0.0, 0.0),
        (2, true, 0.0, 0.0, 0.0, 0.0),
        (3, false, 0.02, 0.05, 0.01, 0.0),
        (4, true, 0.02, 0.05, 0.01, 0.005),
        (5, true, 0.05, 0.0, 0.0, 0.0),
    ] {
        let mut p = params(seed, [true, true], checksum);
        p.link.loss = loss;
        p.link.reorder = reorder;
        p.link.duplicate = dup;
        p.link.corrupt = corrupt;
        let r = run(&p);
        let [c, s] = &r.stacks;
        let ctx = format!("seed {seed}: {c:?} {s:?}");
        assert_eq!(c.mptcp_established, p.conns as u64, "{ctx}");
        assert_eq!(s.mptcp_established, p.conns as u64, "{ctx}");
        for st in [c, s] {
            assert_eq!(st.mptcp_fallbacks, 0, "{ctx}");
            assert_eq!(st.mptcp_bad_options, 0, "{ctx}");
            assert_eq!(st.mptcp_checksum_failures, 0, "{ctx}");
            assert_eq!(st.mptcp_mapping_mismatches, 0, "{ctx}");
        }
    }
}

#[test]
fn mptcp_client_against_plain_server_falls_back() {
    let r = run(&params(7, [true, false], false));
    let [c, s] = &r.stacks;
    assert_eq!(c.mptcp_fallbacks, 4);
    assert_eq!(c.mptcp_established + s.mptcp_established, 0);
    assert_eq!(s.mptcp_fallbacks, 0, "the server was never asked");
}

#[test]
fn plain_client_against_mptcp_server_is_plain_tcp() {
    let r = run(&params(8, [false, true], false));
    let [c, s] = &r.stacks;
    assert_eq!(c.mptcp_established + s.mptcp_established, 0);
    assert_eq!(c.mptcp_fallbacks + s.mptcp_fallbacks, 0);
}

/// Two paths (`xdptcp sim --paths 2`): each host has an interface and a
/// stack per path, as a worker with two `--iface`s; path 2 dies mid-way
/// and the transfer completes intact; each path's bytes are reported.
#[test]
fn two_paths_one_dying_mid_transfer() {
    let mut p = params(7, [true, true], false);
    p.conns = 1;
    p.bidir = false;
    p.extra_paths = vec![LinkConfig {
        delay: Duration::from_millis(20),
        ..p.link.clone()
    }];
    p.path_down = Some((1, Duration::from_millis(50)));
    let r = run_bulk(&p);
    assert!(r.failure(true).is_none(), "{:?}", r.failure(true));
    assert!(r.intact && r.drained, "{:?}", r.error);
    assert_eq!(r.paths.len(), 2);
    let [c2s, _] = r.paths[0];
    assert!(c2s.tx_bytes >= p.bytes, "path 1 carried {}", c2s.tx_bytes);
}
