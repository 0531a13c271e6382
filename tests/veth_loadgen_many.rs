//! `xdptcp loadgen` holds many concurrent connections from one worker (no
//! file descriptors) against `xdptcp echo`, every echo verified. 20,000 by
//! default (a few seconds, ~150 MB per side); XDPTCP_VETH_CONNS=100000 for
//! the full-size run. The echo's RSS (VmRSS) before and at its largest
//! while the connections are held is printed, with the delta per
//! connection (RSS: it includes UMEM pages first touched during the run,
//! so it is an upper bound; the heap alone is measured by
//! `tests/stack_memory.rs`).

mod veth_common;
use veth_common as common;
use veth_common::netns::{self, Harness};

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");

#[test]
fn loadgen_holds_many_connections_against_xdptcp_echo() {
    let t = "loadgen_holds_many_connections_against_xdptcp_echo";
    if !common::require(common::is_root(), t, "needs root for namespaces and AF_XDP") {
        return;
    }
    let n: u64 = std::env::var("XDPTCP_VETH_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let h = Harness::up("lm", 1, &[]);
    let iface = format!("{}=198.18.0.2/24", h.iface());
    let max = (n + n / 2 + 1024).to_string();
    let frames = (n + 32768).next_power_of_two().to_string();
    let mut srv = Command::new("ip")
        .args(["netns", "exec", &h.nss(), BIN, "echo", "--iface", &iface])
        .args([
            "--queues",
            "1",
            "--duration",
            "120",
            "--max-conns",
            &max,
            "--frames",
            &frames,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning xdptcp echo");
    if !netns::wait_listening(&h.nsk(), "198.18.0.2:7") {
        let _ = srv.kill();
        panic!("xdptcp echo did not start listening");
    }
    // `ip netns exec` execs the program: the child is xdptcp itself.
    let srv_pid = srv.id();
    let rss_kib = move || -> u64 {
        std::fs::read_to_string(format!("/proc/{srv_pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    };
    let rss_before = rss_kib();
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut max = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                max = max.max(rss_kib());
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            max
        })
    };
    // Opening takes about n / 5000 s here; then a light open-loop load
    // (every connection sends now and then) for a few seconds.
    let warmup = (n / 4000 + 4).to_string();
    let conns = n.to_string();
    let lg_iface = format!("{}k0=198.18.0.16-198.18.0.23/24", h.prefix);
    let o = Command::new("ip")
        .args([
            "netns",
            "exec",
            &h.nsk(),
            BIN,
            "loadgen",
            "--iface",
            &lg_iface,
        ])
        .args([
            "--queues",
            "1",
            "--frames",
            &frames,
            "--target",
            "198.18.0.2:7",
        ])
        .args([
            "--mode", "echo", "--size", "64", "--conns", &conns, "--rate", "2000",
        ])
        .args([
            "--warmup",
            &warmup,
            "--duration",
            "4",
            "--timeout",
            "10",
            "--verify",
            "--json",
        ])
        .output()
        .expect("running loadgen");
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let rss_max = sampler.join().unwrap();
    let (code, err) = netns::stop(srv);
    eprintln!(
        "xdptcp echo RSS: before {rss_before} KiB, largest while holding {n} connections {rss_max} KiB: \
         {:.0} bytes per connection (RSS delta, UMEM pages first touched included)",
        rss_max.saturating_sub(rss_before) as f64 * 1024.0 / n as f64
    );
    let lg_err = String::from_utf8_lossy(&o.stderr);
    let j: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|_| panic!("no JSON: {lg_err}"));
    eprintln!("{j}");
    assert_eq!(j["connections_peak"], n, "{j}\n{lg_err}");
    assert_eq!(j["errors_by_kind"]["verify"], 0, "{j}");
    let req = j["requests"].as_u64().unwrap();
    let timeouts = j["errors_by_kind"]["timeout"].as_u64().unwrap();
    let handshakes = j["errors_by_kind"]["handshake"].as_u64().unwrap();
    assert!(req > 4000, "{j}");
    // The kernel drops bursts when an RX ring is full (rx_ring_full): a
    // few SYNs and requests may time out (and are retried), not more than 5 %.
    assert!(timeouts * 20 <= req, "{j}");
    assert!(handshakes * 20 <= n, "{j}");
    assert_eq!(j["errors"], timeouts + handshakes, "{j}");
    assert_eq!(code, 0, "{err}");
}
