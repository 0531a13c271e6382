//! The budget of every bolero fuzz target, set here once: each target
//! runs for `per_target()` of wall-clock time under `cargo test` (random
//! inputs from fresh seeds every run; a failure prints the
//! `BOLERO_RANDOM_SEED` that reproduces it). A time, not an iteration
//! count, so CI's cost is fixed however busy the machine is.
//!
//! CI: 2 s per target. A longer campaign: `XDPTCP_FUZZ_SECS=60 cargo test
//! --release --test fuzz_wire --test fuzz_stack --test fuzz_tcp` (seconds
//! per target; see the README).
#![allow(dead_code)]

use std::time::Duration;

/// Seconds per target in CI.
const CI_SECS: f64 = 2.0;

/// The wall-clock budget of one target.
pub fn per_target() -> Duration {
    let secs = std::env::var("XDPTCP_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(CI_SECS);
    Duration::from_secs_f64(secs)
}

/// Print how many inputs a target ran (the campaign's figure) and check
/// it ran more than a handful.
pub fn report(name: &str, inputs: usize) {
    eprintln!(
        "fuzz {name}: {inputs} inputs in {:.0} s",
        per_target().as_secs_f64()
    );
    assert!(inputs > 20, "fuzz {name} ran only {inputs} inputs");
}
