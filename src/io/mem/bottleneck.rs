//! An MPTCP connection and a plain TCP flow through one shared
//! bottleneck (`xdptcp sim --shared-bottleneck`): what RFC 6356 §2 goal 2
//! is about ("do no harm": a multipath flow takes no more capacity on a
//! shared bottleneck than a single TCP flow would).
//!
//! Four hosts on one [`Network`]: the MPTCP client (two interfaces, one
//! per path, as `run_bulk` with two paths) and its server, and a plain
//! client and server on a segment of their own. The client-to-server
//! links of both MPTCP paths and of the plain flow are one link
//! ([`Network::share_link`]): one queue, one rate. Both clients send for
//! the whole run; after `warmup` the bytes each server verified are
//! counted over `measure`, so that the shares are those of the flows
//! competing, not of their starts.

use super::frame::FramePool;
use super::net::{Limits, Network, Outcome};
use super::node::{HostNode, NoApp, StackNode};
use super::scenario::{
    frame_size, host_config, host_ip, host_mac, path_config, path_mac, stack_on, tcp_config,
    BulkParams, BULK_PORT, SERVER_IP,
};
use crate::apps::bulk::{self, BulkClient, BulkConfig, BulkServer};
use crate::stack::StackCounters;
use crate::time::Instant;
use core::time::Duration;

/// What the shared bottleneck gave each flow.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SharedReport {
    /// Verified goodput over the measured window, Mbit/s.
    pub mptcp_mbps: f64,
    pub plain_mbps: f64,
    /// The MPTCP connection's part of what both moved (0.5: one flow's
    /// share; 2/3: two flows' worth against one).
    pub mptcp_share: f64,
    /// The window measured, ms of virtual time.
    pub from_ms: f64,
    pub to_ms: f64,
    /// The MPTCP client's counters (bytes per subflow, coupling).
    pub mptcp_client: StackCounters,
    /// What went wrong: a garbled byte, a broken invariant, a run that
    /// ended before the window did.
    pub error: Option<String>,
}

/// Run an MPTCP connection over two paths sharing one bottleneck shaped
/// like `p.link` against one plain TCP flow through it (`p.mptcp_cc`,
/// `p.cc`, `p.seed` and the buffers as in [`super::scenario::run_bulk`];
/// `p.bytes` should be more than either can send in the time).
pub fn run_shared_bottleneck(p: &BulkParams, warmup: Duration, measure: Duration) -> SharedReport {
    let fs = frame_size(p.link.mtu);
    let wire = FramePool::new(fs, 1 << 20);
    // Ports: MPTCP client (paths 0, 1), MPTCP server (paths 0, 1), plain
    // client, plain server.
    let macs = vec![
        path_mac(0, 0),
        path_mac(0, 1),
        path_mac(1, 0),
        path_mac(1, 1),
        host_mac(2),
        host_mac(3),
    ];
    let link = p.link.clone();
    let mut net = Network::new(macs, move |_, _| link.clone(), p.seed, wire);
    net.set_segments(vec![0, 1, 0, 1, 2, 2]);
    // The bottleneck: every client-to-server direction.
    net.share_link(&[(0, 2), (1, 3), (4, 5)]);
    let tcp = tcp_config(p);
    let mptcp_stack = |i: u8, path: u8| {
        let mut cfg = path_config(i, path, tcp.clone(), p.seed);
        cfg.tcp.mptcp = true;
        cfg.tcp.mptcp_cc = p.mptcp_cc;
        cfg.tcp.mptcp_max_subflows = 8;
        stack_on(&net, cfg, p.link.mtu, p.pool_frames)
    };
    let cfg = BulkConfig {
        conns: 1,
        bytes: p.bytes,
        bidir: false,
        seed: p.seed,
        port: BULK_PORT,
        work: p.work,
    };
    let extra = |i: u8| {
        let mut s = mptcp_stack(i, 1);
        if i == 1 {
            s.listen(BULK_PORT).expect("a fresh stack listens");
        }
        let mut n = StackNode::new(s, NoApp);
        n.check = true;
        vec![n]
    };
    let mut mc = HostNode::new(
        StackNode::new(mptcp_stack(0, 0), BulkClient::new(cfg, SERVER_IP)),
        extra(0),
    );
    let mut ms = HostNode::new(
        StackNode::new(mptcp_stack(1, 0), BulkServer::new(cfg)),
        extra(1),
    );
    let plain_stack = |i: u8| {
        stack_on(
            &net,
            host_config(i, tcp.clone(), p.seed),
            p.link.mtu,
            p.pool_frames,
        )
    };
    let plain_cfg = BulkConfig {
        seed: p.seed ^ 0x9e37,
        ..cfg
    };
    let mut pc = StackNode::new(plain_stack(2), BulkClient::new(plain_cfg, host_ip(3)));
    let mut ps = StackNode::new(plain_stack(3), BulkServer::new(plain_cfg));
    for n in [
        &mut mc.main.check,
        &mut ms.main.check,
        &mut pc.check,
        &mut ps.check,
    ] {
        *n = true;
    }
    let mut error = None;
    let mut received = [[0u64; 2]; 2];
    let mut at = [Instant::ZERO; 2];
    for (k, span) in [warmup, measure].into_iter().enumerate() {
        let lim = Limits {
            time: span,
            ..p.limits
        };
        let out = net.run(&mut [&mut mc, &mut ms, &mut pc, &mut ps], lim);
        if !matches!(out, Outcome::TimeLimit(_)) {
            error.get_or_insert_with(|| format!("the run ended early: {}", out.describe()));
        }
        at[k] = net.now();
        let got =
            |c: &BulkClient, s: &BulkServer| bulk::report(c, s).first().map_or(0, |r| r.received);
        received[k] = [got(&mc.main.app, &ms.main.app), got(&pc.app, &ps.app)];
    }
    for (who, rs) in [
        ("mptcp", bulk::report(&mc.main.app, &ms.main.app)),
        ("plain", bulk::report(&pc.app, &ps.app)),
    ] {
        if let Some(r) = rs.iter().find(|r| r.outcome == "garbled") {
            error.get_or_insert_with(|| format!("{who}: {}", r.error.clone().unwrap_or_default()));
        }
    }
    let violation = [
        mc.violation(),
        ms.violation(),
        pc.violation.clone(),
        ps.violation.clone(),
    ]
    .into_iter()
    .flatten()
    .next();
    if let Some(v) = violation {
        error.get_or_insert_with(|| format!("invariant: {v}"));
    }
    let secs = at[1].saturating_since(at[0]).as_secs_f64().max(1e-9);
    let mbps = |i: usize| (received[1][i] - received[0][i]) as f64 * 8.0 / secs / 1e6;
    let (m, pl) = (mbps(0), mbps(1));
    SharedReport {
        mptcp_mbps: m,
        plain_mbps: pl,
        mptcp_share: if m + pl > 0.0 { m / (m + pl) } else { 0.0 },
        from_ms: at[0].micros() as f64 / 1000.0,
        to_ms: at[1].micros() as f64 / 1000.0,
        mptcp_client: mc.main.stack.counters(),
        error,
    }
}
