//! Issue 8: MPTCP chunks lent to subflows, not copied. Each simulated
//! host's interfaces share one frame pool (as the runtime's share one
//! UMEM), so the scheduler moves a chunk's frame to the subflow's send
//! queue; the subflow's ACK gives it back to the connection, which frees
//! it at the DATA_ACK. Copies are left for what cannot move (a chunk cut
//! out of a frame) and reinjections.

mod common;

use common::sim::{link, run_exact};
use core::time::Duration;
use xdptcp::io::mem::scenario::{BulkParams, BulkReport};
use xdptcp::io::mem::Limits;

/// One connection, the client sending `bytes` over two 10 Mbit/s paths.
fn two_paths(seed: u64, bytes: u64, down: Option<Duration>) -> BulkParams {
    let link = link(10, 5, 0.0);
    BulkParams {
        bytes,
        conns: 1,
        bidir: false,
        seed,
        mptcp: [true, true],
        extra_paths: vec![link.clone()],
        link,
        path_down: down.map(|at| (1, at)),
        limits: Limits {
            time: Duration::from_secs(600),
            ..Limits::default()
        },
        ..BulkParams::default()
    }
}

/// `p` run to completion, every byte checked.
#[track_caller]
fn run(p: &BulkParams) -> BulkReport {
    run_exact(p, p.bytes, &format!("path down {:?}", p.path_down))
}

#[test]
fn over_two_paths_almost_every_chunk_is_lent() {
    let r = run(&two_paths(3, 8 << 20, None));
    let c = &r.stacks[0];
    println!(
        "lent {} copied {} reinjection copies {} joined {}",
        c.mptcp_tx_lent_bytes,
        c.mptcp_tx_copied_bytes,
        c.mptcp_tx_reinject_copied_bytes,
        c.mptcp_bytes_joined
    );
    // Both paths carried data, and the second path's chunks were lent
    // across the two stacks (one pool).
    assert!(c.mptcp_bytes_joined > 2 << 20, "{}", c.mptcp_bytes_joined);
    assert!(r.paths[1][0].tx_bytes > 2 << 20);
    // Every byte's frame was lent once; the only copies are the
    // opportunistic retransmissions at the end of the stream (RFC 8684
    // §3.3.6 leaves it to the sender; Raiciu et al.), copied back from
    // the slower subflow that held them, each byte at most once.
    assert!(
        c.mptcp_tx_lent_bytes >= 8 << 20,
        "{}",
        c.mptcp_tx_lent_bytes
    );
    assert!(
        c.mptcp_tx_copied_bytes <= c.mptcp_tx_reinject_copied_bytes,
        "copied {} beyond the reinjections' {}",
        c.mptcp_tx_copied_bytes,
        c.mptcp_tx_reinject_copied_bytes
    );
    assert!(c.mptcp_tx_copied_bytes * 50 < 8 << 20);
}

/// Path 2 dies 1 s in while its subflow holds lent chunks: they are
/// copied from its queue (or come back when it is reset) and reinjected
/// on path 1; the transfer completes byte-exact and every frame is back
/// in its pool at the end.
#[test]
fn a_dying_path_reinjects_its_lent_chunks() {
    let r = run(&two_paths(7, 4 << 20, Some(Duration::from_millis(1000))));
    let c = &r.stacks[0];
    println!(
        "lent {} copied {} reinjection copies {} reinjections {} path 2 {} bytes",
        c.mptcp_tx_lent_bytes,
        c.mptcp_tx_copied_bytes,
        c.mptcp_tx_reinject_copied_bytes,
        c.mptcp_reinjections,
        r.paths[1][0].tx_bytes
    );
    assert!(r.paths[1][0].dropped_down > 0, "path 2 went down in flight");
    assert!(c.mptcp_reinjections > 0);
    // Lent chunks, the copies only what went again: at most what path 2's
    // window held when it died, a small part of the transfer.
    assert!(
        c.mptcp_tx_lent_bytes >= 3 << 20,
        "{}",
        c.mptcp_tx_lent_bytes
    );
    assert!(c.mptcp_tx_copied_bytes > 0);
    assert!(
        c.mptcp_tx_copied_bytes < 512 << 10,
        "{}",
        c.mptcp_tx_copied_bytes
    );
}

/// RFC 4821 on MPTCP subflows, which hold frames lent by their
/// connection: a probe is built from a copy (a fresh frame with the bytes
/// of the next frames, the lent ones left whole or given back), so path
/// MTU discovery raises the MSS once the path's MTU rose (from 1,280 to
/// the links' 1,500 at 1.5 s). Before, a subflow holding lent frames
/// sent no probe at all. Byte-exact, every frame back in its pool.
#[test]
fn subflows_holding_lent_frames_probe_the_path_mtu() {
    let mut p = two_paths(5, 16 << 20, None);
    p.path_hop = Some(xdptcp::io::mem::PathHop {
        mtu: 1280,
        icmp: true,
    });
    p.path_hop_until = Some(Duration::from_millis(1500));
    p.pmtu_probe_interval = Some(Duration::from_secs(1));
    let r = run(&p);
    let sum = |f: fn(&xdptcp::stack::StackCounters) -> u64| r.stacks.iter().map(f).sum::<u64>();
    let c = &r.stacks[0];
    println!(
        "probes {} raises {} failed {} largest packet {} lent {} copied {}",
        sum(|s| s.pmtu_probes),
        sum(|s| s.pmtu_raises),
        sum(|s| s.pmtu_probe_failures),
        r.link.largest_passed,
        c.mptcp_tx_lent_bytes,
        c.mptcp_tx_copied_bytes
    );
    assert!(sum(|s| s.pmtu_probes) >= 1, "no probe");
    assert!(sum(|s| s.pmtu_raises) >= 1, "no raise");
    assert_eq!(r.link.largest_passed, 1500, "full-sized packets again");
    // The chunks are still lent; the probes' copies are a small part.
    assert!(
        c.mptcp_tx_lent_bytes >= 12 << 20,
        "{}",
        c.mptcp_tx_lent_bytes
    );
}
