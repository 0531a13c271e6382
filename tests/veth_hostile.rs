//! Hostile peers against `xdptcp echo` over veth, with the Linux kernel on
//! the other side: UDP datagrams larger than the MTU, fragmented by the
//! kernel, are reassembled and echoed back in fragments that the kernel
//! reassembles.

mod veth_common;
use veth_common as common;
use veth_common::netns::{self, Harness};

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");
const STACK: &str = "198.18.0.2:7";

fn ready(test: &str) -> bool {
    common::require(
        common::is_root(),
        test,
        "needs root for namespaces and AF_XDP",
    )
}

/// Start `xdptcp echo --udp` in the stack's namespace, with its counters
/// written to `stats` on exit, and wait until it listens.
fn start_echo(h: &Harness, stats: &std::path::Path) -> Child {
    let iface = format!("{}=198.18.0.2/24", h.iface());
    let child = Command::new("ip")
        .args(["netns", "exec", &h.nss(), BIN, "echo", "--udp"])
        .args(["--iface", &iface, "--duration", "300"])
        .args(["--stats-json", stats.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning xdptcp echo");
    assert!(
        netns::wait_listening(&h.nsk(), STACK),
        "xdptcp echo did not start listening"
    );
    child
}

/// The sum of one stack counter over every worker of a `--stats-json` report.
fn counter(report: &serde_json::Value, name: &str) -> u64 {
    report["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|w| w["stacks"].as_array().into_iter().flatten())
        .map(|s| s[name].as_u64().unwrap_or(0))
        .sum()
}

fn stop_and_report(child: Child, stats: &std::path::Path) -> (i32, String, serde_json::Value) {
    let (code, err) = netns::stop(child);
    let text = std::fs::read_to_string(stats).unwrap_or_default();
    let _ = std::fs::remove_file(stats);
    let report = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (code, err, report)
}

#[test]
fn udp_datagrams_in_fragments_echo_against_kernel() {
    let t = "udp_datagrams_in_fragments_echo_against_kernel";
    if !ready(t) {
        return;
    }
    let h = Harness::up("hf", 1, &[]);
    let stats = std::env::temp_dir().join(format!("xdptcp-veth-frag-{}.json", std::process::id()));
    let child = start_echo(&h, &stats);
    let nsk = h.nsk();
    // Sizes from one fragment past the MTU to the largest UDP datagram.
    const SIZES: [usize; 5] = [1473, 3000, 8000, 30_000, 65_507];
    let r = std::thread::spawn(move || -> Result<(), String> {
        netns::enter(&nsk);
        let sa: SocketAddr = STACK.parse().unwrap();
        let u = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        u.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = vec![0u8; 70_000];
        for (k, &n) in SIZES.iter().enumerate() {
            let msg: Vec<u8> = (0..n).map(|i| ((i * 7 + k) % 251) as u8).collect();
            let mut ok = false;
            // A lost fragment loses the datagram: a few bounded tries.
            for _ in 0..5 {
                u.send_to(&msg, sa).map_err(|e| format!("{n}: {e}"))?;
                if let Ok((got, from)) = u.recv_from(&mut buf) {
                    if from != sa || buf[..got] != msg[..] {
                        return Err(format!("{n}: echo differs ({got} bytes from {from})"));
                    }
                    ok = true;
                    break;
                }
            }
            if !ok {
                return Err(format!("{n}-byte datagram: no echo"));
            }
        }
        Ok(())
    })
    .join()
    .unwrap();
    let (code, err, report) = stop_and_report(child, &stats);
    eprintln!("{err}");
    r.unwrap();
    assert_eq!(code, 0, "xdptcp echo exit status");
    // Every datagram but none came in fragments, and left in fragments.
    let reassembled = counter(&report, "frag_reassembled");
    assert!(reassembled >= SIZES.len() as u64, "{report}");
    assert!(
        counter(&report, "frag_tx") >= 2 * SIZES.len() as u64,
        "{report}"
    );
    assert_eq!(counter(&report, "drop_frag_overlap"), 0);
}
