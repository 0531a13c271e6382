//! Simulator runs for the `sim_*` tests: a link of a given shape, and a
//! run that must go as planned.

use core::time::Duration;
use xdptcp::io::mem::scenario::{default_queue, run_bulk, BulkParams, BulkReport};
use xdptcp::io::mem::LinkConfig;

/// A link of `mbps` Mbit/s, `delay_ms` one way and `loss` (a fraction
/// per packet), with the default queue (about two bandwidth-delay
/// products).
pub fn link(mbps: u64, delay_ms: u64, loss: f64) -> LinkConfig {
    let rate_bps = Some(mbps * 1_000_000);
    let delay = Duration::from_millis(delay_ms);
    LinkConfig {
        rate_bps,
        delay,
        loss,
        queue_limit: default_queue(rate_bps, delay),
        ..LinkConfig::default()
    }
}

/// Runs `p`: no invariant broken and every connection completed as
/// planned (`BulkReport::failure(true)`), every byte checked intact, and
/// drained (every connection closed, every frame back in its pool).
/// `ctx` names the run in the messages.
#[track_caller]
pub fn run_complete(p: &BulkParams, ctx: &str) -> BulkReport {
    let r = run_bulk(p);
    if let Some(f) = r.failure(true) {
        panic!("{ctx} (seed {}): {f}", p.seed);
    }
    assert!(
        r.intact && r.drained,
        "{ctx} (seed {}): {:?}",
        p.seed,
        r.error
    );
    r
}

/// [`run_complete`], and exactly `bytes` verified.
#[track_caller]
pub fn run_exact(p: &BulkParams, bytes: u64, ctx: &str) -> BulkReport {
    let r = run_complete(p, ctx);
    assert_eq!(r.bytes, bytes, "{ctx}: every byte, checked");
    r
}
