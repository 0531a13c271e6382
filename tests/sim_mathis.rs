//! Congestion control against the Mathis et al. model: one bulk connection
//! at 1% random loss and 40 ms RTT must reach a goodput (in virtual time)
//! near MSS/RTT · 1.22/√p. Far below means broken recovery; far above means
//! the window is not reduced per loss event. (At this RTT and window CUBIC
//! runs in its Reno-friendly region, RFC 9438 §4.3, so the same bound holds.)

use core::time::Duration;
use xdptcp::io::mem::scenario::{run_bulk, BulkParams};
use xdptcp::io::mem::LinkConfig;
use xdptcp::tcp::CcKind;

const LOSS: f64 = 0.01;
const RTT_MS: f64 = 40.0;

fn goodput_ratio(cc: CcKind, sack: bool, seed: u64) -> f64 {
    let p = BulkParams {
        bytes: 8 << 20,
        cc,
        sack,
        seed,
        link: LinkConfig {
            rate_bps: Some(1_000_000_000),
            delay: Duration::from_millis(20),
            loss: LOSS,
            queue_limit: 10_000,
            ..LinkConfig::default()
        },
        ..BulkParams::default()
    };
    let r = run_bulk(&p);
    assert!(r.intact, "{:?}", r.error);
    // Payload per segment: MTU - IP - TCP - timestamps option.
    let mss = 1500.0 - 20.0 - 20.0 - 12.0;
    let bound_mbps = mss * 8.0 / (RTT_MS / 1000.0) * 1.22 / LOSS.sqrt() / 1e6;
    r.goodput_mbps / bound_mbps
}

#[test]
fn newreno_follows_the_mathis_model() {
    for sack in [true, false] {
        for seed in 1..=5 {
            let ratio = goodput_ratio(CcKind::NewReno, sack, seed);
            assert!(
                (0.5..=2.5).contains(&ratio),
                "sack {sack} seed {seed}: {ratio:.2}x the bound"
            );
        }
    }
}

#[test]
fn cubic_stays_near_the_mathis_model() {
    for sack in [true, false] {
        for seed in 1..=5 {
            let ratio = goodput_ratio(CcKind::Cubic, sack, seed);
            assert!(
                (0.5..=3.0).contains(&ratio),
                "sack {sack} seed {seed}: {ratio:.2}x the bound"
            );
        }
    }
}
