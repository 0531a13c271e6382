//! Frame-pool pressure: many connections whose socket buffers (the
//! `tcp::Config` defaults: 4 MiB to receive, 64 KiB to send autotuned
//! up to 16 MiB) together far exceed the devices'
//! frame pools must still complete, byte for byte, with control traffic
//! never starved of frames.

use core::time::Duration;
use xdptcp::io::mem::scenario::{default_queue, run_bulk, BulkParams, BulkReport};
use xdptcp::io::mem::{Limits, LinkConfig};
use xdptcp::tcp::Config;

fn params(conns: u32, bytes: u64, pool: usize, loss: f64, seed: u64) -> BulkParams {
    let rate_bps = Some(1_000_000_000);
    let delay = Duration::from_millis(5);
    BulkParams {
        bytes,
        conns,
        seed,
        link: LinkConfig {
            rate_bps,
            delay,
            loss,
            queue_limit: default_queue(rate_bps, delay),
            ..LinkConfig::default()
        },
        limits: Limits {
            time: Duration::from_secs(120),
            ..Limits::default()
        },
        pool_frames: pool,
        // Not sized to the pool.
        snd_buf: Some(Config::default().snd_buf),
        snd_buf_max: Some(Config::default().snd_buf_max),
        rcv_buf: Some(Config::default().rcv_buf),
        ..BulkParams::default()
    }
}

#[track_caller]
fn check(p: &BulkParams) -> BulkReport {
    let r = run_bulk(p);
    let ctx = format!("seed {}: {} {:?}", p.seed, r.outcome, r.error);
    assert!(r.intact, "{ctx}");
    assert_eq!(r.outcome, "finished", "{ctx}");
    let dirs = if p.bidir { 2 } else { 1 };
    assert_eq!(r.bytes, p.bytes * u64::from(p.conns) * dirs, "{ctx}");
    for (s, d) in r.stacks.iter().zip(&r.devices) {
        // Control traffic always found a frame; nothing leaked.
        assert_eq!(s.tx_no_frame, 0, "{ctx}: {s:?}");
        assert_eq!(d.tx_pool.in_use + d.rx_pool.in_use, 0, "{ctx}");
        assert!(d.tx_pool.peak <= p.pool_frames);
    }
    r
}

#[test]
fn sixty_four_conns_with_default_buffers_over_a_small_pool() {
    // 64 × 4 MiB of send buffer over 2,048 frames (the old deadlock).
    let r = check(&params(64, 2 << 20, 2048, 0.02, 1));
    let c = &r.stacks[0];
    assert!(c.tx_pool_short_writes > 0 && c.tx_pool_wakeups > 0, "{c:?}");
    // Application data never took the reserve (max(64, 2048/16) = 128).
    assert!(
        r.devices[0].tx_pool.peak <= 2048 - 128 + 64,
        "{:?}",
        r.devices[0]
    );
}

#[test]
fn bidirectional_with_reordering_over_a_smaller_pool() {
    let mut p = params(32, 512 << 10, 1024, 0.02, 7);
    p.bidir = true;
    p.link.reorder = 0.05;
    let r = check(&p);
    for c in &r.stacks {
        assert!(c.tx_pool_short_writes > 0, "{c:?}");
    }
}

#[test]
fn hundreds_of_conns_over_a_tiny_pool() {
    // 256 connections, 512 frames: two frames of send buffer each on
    // average; the reserve (64) still carries every ACK and FIN.
    let r = check(&params(256, 128 << 10, 512, 0.01, 3));
    assert!(
        r.devices[0].tx_pool.peak <= 512 - 64 + 16,
        "{:?}",
        r.devices[0]
    );
    assert!(r.stacks[0].tx_pool_wakeups > 0);
}
