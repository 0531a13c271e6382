//! Simulation sweeps: bulk transfers over impaired links, every byte checked.
//!
//! Sized for `cargo test --release` on two cores: each run moves up to a
//! few megabytes, and the whole file takes well under a minute of CPU.

use core::time::Duration;
use xdptcp::io::mem::scenario::{run_bulk, BulkParams, BulkReport};
use xdptcp::io::mem::{Limits, LinkConfig};
use xdptcp::tcp::CcKind;

fn link(rate_mbps: u64, delay_ms: u64) -> LinkConfig {
    let rate_bps = Some(rate_mbps * 1_000_000);
    let delay = Duration::from_millis(delay_ms);
    LinkConfig {
        rate_bps,
        delay,
        queue_limit: xdptcp::io::mem::scenario::default_queue(rate_bps, delay),
        ..LinkConfig::default()
    }
}

fn base(bytes: u64, seed: u64) -> BulkParams {
    BulkParams {
        bytes,
        seed,
        link: link(100, 10),
        limits: Limits {
            time: Duration::from_secs(900),
            ..Limits::default()
        },
        ..BulkParams::default()
    }
}

/// Run and check everything a correct run must satisfy.
#[track_caller]
fn check(p: &BulkParams) -> BulkReport {
    let r = run_bulk(p);
    let ctx = format!(
        "seed {} conns {} bytes {} link {:?} cc {:?} sack {} ts {} bidir {}: {:?}",
        p.seed, p.conns, p.bytes, p.link, p.cc, p.sack, p.timestamps, p.bidir, r.error
    );
    assert!(r.intact, "not intact: {ctx}");
    assert_eq!(r.outcome, "finished", "{ctx}");
    let dirs = if p.bidir { 2 } else { 1 };
    assert_eq!(r.bytes, p.bytes * p.conns as u64 * dirs, "{ctx}");
    assert_eq!(r.connections.len(), p.conns as usize, "{ctx}");
    for c in &r.connections {
        assert!(c.intact && c.error.is_none(), "conn {c:?}: {ctx}");
        assert_eq!(c.received, p.bytes, "{ctx}");
    }
    // Corruption is caught by checksums, never delivered: what the stacks
    // rejected as corrupt was corrupted on the link.
    let l = r.link;
    assert!(r.dropped_corrupt <= l.corrupted * 2, "{ctx}");
    if l.corrupted == 0 {
        assert_eq!(r.dropped_corrupt, 0, "{ctx}");
    }
    if p.link.loss == 0.0 && l.dropped_queue == 0 && l.corrupted == 0 {
        assert_eq!(r.rto_timeouts, 0, "no loss, no RTO: {ctx}");
    }
    // Every frame went back to its pool.
    for d in &r.devices {
        assert!(d.rx_pool.peak <= d.rx_pool.limit && d.tx_pool.peak <= d.tx_pool.limit);
    }
    r
}

#[test]
fn clean_link_has_no_retransmissions() {
    for (rate, delay) in [(1000, 0), (100, 10), (10, 50)] {
        let mut p = base(512 << 10, 1);
        p.link = LinkConfig {
            queue_limit: 100_000,
            ..link(rate, delay)
        };
        let r = check(&p);
        assert_eq!(r.retransmits, 0, "{r:?}");
        assert_eq!(r.link.dropped_loss + r.link.dropped_queue, 0);
        // Goodput cannot exceed the link rate.
        assert!(r.goodput_mbps <= rate as f64, "{}", r.goodput_mbps);
        assert!(r.virtual_ms >= 2.0 * delay as f64);
    }
}

#[test]
fn loss_sweep_with_and_without_sack() {
    for loss in [0.0, 0.01, 0.05, 0.1, 0.2] {
        for sack in [true, false] {
            for seed in 1..=4 {
                // At 20% loss a transfer spends most of its time in RTO
                // backoff: keep it short.
                let bytes = if loss >= 0.2 { 128 << 10 } else { 1 << 20 };
                let mut p = base(bytes, seed);
                p.link.loss = loss;
                p.sack = sack;
                let r = check(&p);
                if loss >= 0.05 {
                    assert!(r.retransmits > 0 && r.link.dropped_loss > 0, "{r:?}");
                }
            }
        }
    }
}

#[test]
fn reordering_with_and_without_timestamps() {
    for reorder in [0.01, 0.1, 0.3] {
        for timestamps in [true, false] {
            for seed in 1..=3 {
                let mut p = base(1 << 20, seed);
                p.link.reorder = reorder;
                p.link.reorder_delay = Duration::from_millis(3);
                p.timestamps = timestamps;
                let r = check(&p);
                if reorder >= 0.1 {
                    assert!(r.link.reordered > 0);
                }
            }
        }
    }
}

#[test]
fn duplication_and_corruption() {
    for (dup, corrupt) in [
        (0.05, 0.0),
        (0.2, 0.0),
        (0.0, 0.01),
        (0.0, 0.05),
        (0.1, 0.1),
    ] {
        for seed in 1..=4 {
            let mut p = base(1 << 20, seed);
            p.link.duplicate = dup;
            p.link.corrupt = corrupt;
            let r = check(&p);
            if corrupt >= 0.05 {
                assert!(r.link.corrupted > 0 && r.dropped_corrupt > 0, "{r:?}");
            }
            if dup > 0.0 {
                assert!(r.link.duplicated > 0);
            }
        }
    }
}

#[test]
fn delays_and_rates() {
    for rate in [1, 10, 100, 1000] {
        for delay in [0, 1, 20, 100] {
            // About a second of transfer at the link rate, at most 1 MiB.
            let bytes = (rate * 1_000_000 / 8).min(4 << 20) / 2;
            let mut p = base(bytes, rate + delay);
            p.link = link(rate, delay);
            p.link.loss = 0.01;
            p.link.jitter = Duration::from_millis(delay / 10);
            check(&p);
        }
    }
}

#[test]
fn many_connections() {
    for conns in [1, 4, 16, 64] {
        let mut p = base(256 << 10, conns as u64);
        p.conns = conns;
        p.link.loss = 0.02;
        p.link.reorder = 0.02;
        let r = check(&p);
        // Times are consistent with the run.
        for c in &r.connections {
            let done = c.done_ms.expect("completed");
            assert!(c.start_ms <= done && done <= r.virtual_ms, "{c:?}");
        }
    }
}

#[test]
fn option_and_cc_matrix_under_mixed_impairments() {
    for cc in [CcKind::Cubic, CcKind::NewReno] {
        for sack in [true, false] {
            for timestamps in [true, false] {
                let mut p = base(1 << 20, 7);
                p.cc = cc;
                p.sack = sack;
                p.timestamps = timestamps;
                p.conns = 2;
                p.link.loss = 0.03;
                p.link.reorder = 0.05;
                p.link.duplicate = 0.02;
                p.link.corrupt = 0.02;
                p.link.jitter = Duration::from_millis(2);
                check(&p);
            }
        }
    }
}

#[test]
fn both_directions() {
    for loss in [0.0, 0.05] {
        let mut p = base(1 << 20, 3);
        p.bidir = true;
        p.conns = 3;
        p.link.loss = loss;
        let r = check(&p);
        for c in &r.connections {
            assert_eq!((c.reverse_sent, c.reverse_received), (p.bytes, p.bytes));
        }
    }
}

#[test]
fn many_seeds() {
    for seed in 100..300 {
        let mut p = base(256 << 10, seed);
        p.link.loss = 0.05;
        p.link.reorder = 0.05;
        p.link.duplicate = 0.02;
        p.link.corrupt = 0.02;
        p.cc = if seed % 2 == 0 {
            CcKind::Cubic
        } else {
            CcKind::NewReno
        };
        p.sack = seed % 3 != 0;
        check(&p);
    }
}

#[test]
fn mtus_sizes_and_tiny_queues() {
    for mtu in [576, 1280, 9000] {
        let mut p = base(1_000_000, 5);
        p.link.mtu = mtu;
        p.link.loss = 0.02;
        check(&p);
    }
    for bytes in [0, 1, 1459, 1460, 1461, 65_537] {
        check(&base(bytes, 9));
    }
    // A queue of 5 packets at 1 Gbit/s: tail drops, recovered.
    let mut p = base(512 << 10, 11);
    p.link = LinkConfig {
        queue_limit: 5,
        ..link(1000, 5)
    };
    let r = check(&p);
    assert!(r.link.dropped_queue > 0);
}

#[test]
fn an_exhausted_frame_pool_starves_no_connection() {
    // Send buffers far larger than the TX pool: connections compete for
    // frames, and one that got none must be told when frames free up.
    let mut p = base(512 << 10, 21);
    p.conns = 8;
    p.pool_frames = 256;
    p.snd_buf = Some(4 << 20);
    p.limits.time = Duration::from_secs(120);
    let r = check(&p);
    // The pool really was the limit (the stack keeps a reserve for control
    // traffic, so it is never quite drained).
    let tx = r.devices[0].tx_pool;
    assert!(tx.peak * 2 >= tx.limit, "{tx:?}");
}

#[test]
fn randomized_scenarios() {
    use rand::Rng;
    // Every knob drawn from a seeded generator: a broad, reproducible sweep.
    // CI runs release builds; a debug run samples a tenth of the scenarios.
    let n = if cfg!(debug_assertions) { 200 } else { 2000u64 };
    for seed in 0..n {
        let mut g = xdptcp::io::mem::rng(seed ^ 0xfeed);
        let rate = [1u64, 10, 100, 1000][g.gen_range(0..4)];
        let delay = g.gen_range(0..=50);
        let mut p = base(1, seed);
        p.link = link(rate, delay);
        p.link.loss = g.gen_range(0.0..0.1);
        p.link.reorder = if g.gen_bool(0.5) {
            g.gen_range(0.0..0.2)
        } else {
            0.0
        };
        p.link.duplicate = if g.gen_bool(0.3) {
            g.gen_range(0.0..0.05)
        } else {
            0.0
        };
        p.link.corrupt = if g.gen_bool(0.3) {
            g.gen_range(0.0..0.05)
        } else {
            0.0
        };
        p.link.jitter = Duration::from_micros(g.gen_range(0..=5_000));
        p.link.mtu = [576, 1500, 1500, 9000][g.gen_range(0..4)];
        p.conns = g.gen_range(1..=8);
        p.bidir = g.gen_bool(0.3);
        p.cc = if g.gen_bool(0.5) {
            CcKind::Cubic
        } else {
            CcKind::NewReno
        };
        p.sack = g.gen_bool(0.7);
        p.timestamps = g.gen_bool(0.7);
        // About half a second of the link's capacity, spread over
        // the connections.
        let budget = (rate * 1_000_000 / 8 / 2).min(4 << 20);
        p.bytes = g.gen_range(0..=budget / p.conns as u64);
        check(&p);
    }
}

#[test]
fn ecn_marks_instead_of_drops() {
    // RFC 3168: with a step-marking AQM below the tail-drop limit, an ECN
    // sender backs off on CE and the queue never overflows.
    for cc in [CcKind::Cubic, CcKind::NewReno] {
        let mut p = base(4 << 20, 31);
        p.cc = cc;
        p.link = LinkConfig {
            queue_limit: 300,
            ce_queue: Some(20),
            ..link(100, 5)
        };
        let r = check(&p);
        assert!(r.link.ce_marked > 0, "{cc:?}");
        assert_eq!(r.link.dropped_queue, 0, "{cc:?}");
        assert_eq!(r.retransmits, 0, "{cc:?}");
    }
    // Random CE marks on top of loss and reordering: still intact.
    let mut p = base(1 << 20, 32);
    p.link.ce_mark = 0.05;
    p.link.loss = 0.02;
    p.link.reorder = 0.05;
    let r = check(&p);
    assert!(r.link.ce_marked > 0);
}

#[test]
fn a_short_tail_drop_queue_is_not_overrun() {
    // A queue of 60 packets below a BDP of 83: every sender must settle into
    // a window the queue can hold, not keep overflowing it. (Drops per data
    // packet stay small; they are counted, not timed.)
    for cc in [CcKind::NewReno, CcKind::Cubic] {
        let mut p = base(8 << 20, 33);
        p.cc = cc;
        p.link = LinkConfig {
            queue_limit: 60,
            ..link(100, 5)
        };
        let r = check(&p);
        let data_packets = (p.bytes / 1448) as f64;
        let drop_ratio = r.link.dropped_queue as f64 / data_packets;
        assert!(
            drop_ratio < 0.1,
            "{cc:?}: {} queue drops for {data_packets} data packets",
            r.link.dropped_queue
        );
    }
}
