//! RFC 6356 §2 goal 2 ("do no harm") in the simulator: an MPTCP
//! connection whose two subflows cross one bottleneck (20 Mbit/s, 10 ms
//! one-way, a drop-tail queue of two BDPs) competes with one plain TCP
//! flow through it (`xdptcp sim --mptcp --shared-bottleneck 50`).
//! Uncoupled, each subflow is a TCP flow of its own and the connection
//! takes about two thirds; with LIA (`--mptcp-cc lia`) about one flow's
//! share. Shares are measured from 10 s to 50 s of virtual time, once
//! both flows are in congestion avoidance.

use core::time::Duration;
use xdptcp::io::mem::bottleneck::{run_shared_bottleneck, SharedReport};
use xdptcp::io::mem::scenario::{default_queue, BulkParams};
use xdptcp::io::mem::LinkConfig;
use xdptcp::tcp::{CcKind, MptcpCc};

fn shared(cc: CcKind, mptcp_cc: MptcpCc) -> SharedReport {
    let rate_bps = Some(20_000_000);
    let delay = Duration::from_millis(10);
    let p = BulkParams {
        bytes: 1 << 50,
        seed: 1,
        cc,
        mptcp_cc,
        link: LinkConfig {
            rate_bps,
            delay,
            queue_limit: default_queue(rate_bps, delay),
            ..LinkConfig::default()
        },
        ..BulkParams::default()
    };
    let r = run_shared_bottleneck(&p, Duration::from_secs(10), Duration::from_secs(40));
    assert!(r.error.is_none(), "{cc:?} {mptcp_cc:?}: {:?}", r.error);
    let c = &r.mptcp_client;
    println!(
        "{cc:?} {mptcp_cc:?}: MPTCP {:.2} Mbit/s, plain TCP {:.2} Mbit/s, MPTCP share {:.1} % \
         (subflow bytes {} + {})",
        r.mptcp_mbps,
        r.plain_mbps,
        r.mptcp_share * 100.0,
        c.mptcp_bytes_first,
        c.mptcp_bytes_joined
    );
    // Both subflows carry the connection, and the bottleneck is full.
    assert!(c.mptcp_bytes_first > 1 << 20 && c.mptcp_bytes_joined > 1 << 20);
    assert!(r.mptcp_mbps + r.plain_mbps > 18.0, "{r:?}");
    r
}

/// Reno against Reno: the comparison RFC 6356 is written for. LIA's
/// share is allowed 6 points above one half: each subflow still halves
/// only its own window on a loss (§3, "as in standard TCP"), so after a
/// drop the connection keeps more of its total window than one Reno flow
/// would — measured here 52.8 %, against 65.5 % uncoupled.
#[test]
fn lia_takes_one_reno_flows_share_of_a_shared_bottleneck() {
    let unc = shared(CcKind::NewReno, MptcpCc::Uncoupled);
    let lia = shared(CcKind::NewReno, MptcpCc::Lia);
    assert!(unc.mptcp_share > 0.6, "uncoupled {:.3}", unc.mptcp_share);
    assert!(lia.mptcp_share < 0.56, "LIA {:.3}", lia.mptcp_share);
    assert!(lia.mptcp_share > 0.4, "LIA starves: {:.3}", lia.mptcp_share);
}

/// With CUBIC (the default) for the plain flow and the uncoupled
/// subflows: LIA's subflows grow as coupled Reno (RFC 6356), so the
/// connection takes less than one CUBIC flow's share.
#[test]
fn lia_takes_no_more_than_one_cubic_flows_share() {
    let unc = shared(CcKind::Cubic, MptcpCc::Uncoupled);
    let lia = shared(CcKind::Cubic, MptcpCc::Lia);
    assert!(unc.mptcp_share > 0.6, "uncoupled {:.3}", unc.mptcp_share);
    assert!(lia.mptcp_share <= 0.5, "LIA {:.3}", lia.mptcp_share);
}
