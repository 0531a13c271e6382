//! Receive-buffer autotuning (dynamic right-sizing, as Linux's
//! `tcp_rcv_space_adjust`) in virtual time: over a long fat path (100
//! Mbit/s, 50 ms each way) a 256 KiB receive buffer caps a connection at
//! buffer / RTT. With autotuning (`tcp::Config::rcv_buf_max`) the buffer
//! grows with what the application reads per round trip and the transfer
//! runs near the link rate; without, it stays window-limited; with a
//! lower ceiling it stays below what that ceiling allows. Plain TCP and
//! MPTCP (the connection-level window).

use core::time::Duration;
use xdptcp::io::mem::scenario::{default_queue, run_bulk, BulkParams};
use xdptcp::io::mem::LinkConfig;

const RATE_MBPS: f64 = 100.0;

fn goodput(mptcp: bool, rcv_buf_max: usize) -> f64 {
    let rate_bps = Some(RATE_MBPS as u64 * 1_000_000);
    let delay = Duration::from_millis(50);
    let p = BulkParams {
        bytes: 64 << 20,
        mptcp: [mptcp; 2],
        rcv_buf: Some(256 << 10),
        rcv_buf_max: Some(rcv_buf_max),
        link: LinkConfig {
            rate_bps,
            delay,
            queue_limit: default_queue(rate_bps, delay),
            ..LinkConfig::default()
        },
        ..BulkParams::default()
    };
    let r = run_bulk(&p);
    assert!(r.failure(true).is_none(), "{:?}", r.failure(true));
    assert!(r.intact && r.drained, "{:?}", r.error);
    println!(
        "mptcp {mptcp}, rcv_buf_max {rcv_buf_max}: {:.2} Mbit/s",
        r.goodput_mbps
    );
    r.goodput_mbps
}

fn check(mptcp: bool) {
    let off = goodput(mptcp, 0);
    let capped = goodput(mptcp, 1 << 20);
    let on = goodput(mptcp, 16 << 20);
    // 256 KiB of frame memory hold some 180 KB of payload: about 14
    // Mbit/s over a 100 ms round trip.
    assert!(off < 0.25 * RATE_MBPS, "off: {off:.2}");
    // 1 MiB holds some 720 KB: at most about 58 Mbit/s.
    assert!(
        capped > off && capped < 0.6 * RATE_MBPS,
        "1 MiB: {capped:.2}"
    );
    // Slow start over the 100 ms round trip takes part of the 64 MiB.
    assert!(on > 0.7 * RATE_MBPS, "on: {on:.2}");
}

#[test]
fn autotuning_reaches_the_link_rate_on_a_long_fat_path() {
    check(false);
}

#[test]
fn autotuning_grows_the_mptcp_connection_level_window() {
    check(true);
}
