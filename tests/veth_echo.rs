//! `xdptcp echo` on a 4-queue veth against the kernel's TCP in the other
//! namespace: many concurrent bulk connections verified with SHA-256, many
//! short connections, few hand-offs between workers (flows owned where
//! they arrive), the same under nftables loss and duplication; the
//! kernel in the stack's namespace keeps answering on its own address; the
//! pcap dissects cleanly; SIGINT leaves no XDP program behind. Also the
//! CLI's user errors (exit 2).

mod veth_common;
use veth_common as common;
use veth_common::bulk::bulk_conn;
use veth_common::netns::{self, Harness};

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");
const STACK: &str = "198.18.0.2:7";

/// Bytes per connection each way: tens of MB in release builds, less in
/// debug builds (the stack is ~20x slower there), overridable.
fn bulk_bytes() -> usize {
    if let Some(mb) = std::env::var("XDPTCP_VETH_MB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    {
        return mb << 20;
    }
    if cfg!(debug_assertions) {
        1 << 20
    } else {
        16 << 20
    }
}

/// `conns` concurrent bulk connections.
fn bulk(nsk: &str, conns: u64, n: usize) -> Result<f64, String> {
    bulk_to(nsk, STACK, conns, n)
}

/// `conns` concurrent bulk connections to `target`; returns Mbit/s echoed.
fn bulk_to(nsk: &str, target: &'static str, conns: u64, n: usize) -> Result<f64, String> {
    let t = Instant::now();
    let handles: Vec<_> = (0..conns)
        .map(|i| {
            let ns = nsk.to_string();
            std::thread::spawn(move || bulk_conn(&ns, target, i + 1, n))
        })
        .collect();
    let errors: Vec<String> = handles
        .into_iter()
        .filter_map(|h| h.join().unwrap().err())
        .collect();
    if !errors.is_empty() {
        return Err(format!(
            "{} of {conns} connections failed: {:?}",
            errors.len(),
            &errors[..errors.len().min(5)]
        ));
    }
    let secs = t.elapsed().as_secs_f64();
    let mbps = (conns as f64 * n as f64 * 8.0) / secs / 1e6;
    eprintln!(
        "bulk to {target}: {conns} x {} KiB each way in {secs:.1} s ({mbps:.0} Mbit/s echoed)",
        n >> 10
    );
    Ok(mbps)
}

/// `total` short connections from `par` threads: 100 bytes each way.
fn short(nsk: &str, total: usize, par: usize) -> Result<(), String> {
    short_to(nsk, STACK, total, par).map(|_| ())
}

/// `total` short connections to `target` from `par` threads; returns
/// connections per second.
fn short_to(nsk: &str, target: &'static str, total: usize, par: usize) -> Result<f64, String> {
    let t0 = Instant::now();
    let handles: Vec<_> = (0..par)
        .map(|p| {
            let ns = nsk.to_string();
            std::thread::spawn(move || -> Result<(), String> {
                netns::enter(&ns);
                let addr: SocketAddr = target.parse().unwrap();
                for i in (p..total).step_by(par) {
                    let msg: Vec<u8> = (0..100).map(|j| (i * 7 + j) as u8).collect();
                    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
                        .map_err(|e| format!("short {i}: connect: {e}"))?;
                    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                    s.write_all(&msg)
                        .map_err(|e| format!("short {i}: write: {e}"))?;
                    s.shutdown(Shutdown::Write)
                        .map_err(|e| format!("short {i}: shutdown: {e}"))?;
                    let mut back = Vec::new();
                    s.read_to_end(&mut back)
                        .map_err(|e| format!("short {i}: read: {e}"))?;
                    if back != msg {
                        return Err(format!("short {i}: echo differs ({} bytes)", back.len()));
                    }
                }
                Ok(())
            })
        })
        .collect();
    let errors: Vec<String> = handles
        .into_iter()
        .filter_map(|h| h.join().unwrap().err())
        .collect();
    if errors.is_empty() {
        let rate = total as f64 / t0.elapsed().as_secs_f64();
        eprintln!("short to {target}: {total} connections, {rate:.0}/s");
        Ok(rate)
    } else {
        Err(format!(
            "{} short connections failed: {:?}",
            errors.len(),
            &errors[..errors.len().min(5)]
        ))
    }
}

/// Start `xdptcp echo` in the stack's namespace and wait until it listens.
fn start_echo(h: &Harness, extra: &[&str]) -> Child {
    let iface = format!("{}=198.18.0.2/24", h.iface());
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        &h.nss(),
        BIN,
        "echo",
        "--iface",
        &iface,
        "--duration",
        "600",
    ])
    .args(extra)
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let child = c.spawn().expect("spawning xdptcp echo");
    // Ready once the kernel peer can connect (bounded).
    assert!(
        netns::wait_listening(&h.nsk(), STACK),
        "xdptcp echo did not start listening"
    );
    child
}

fn ready(test: &str) -> bool {
    common::require(
        common::is_root(),
        test,
        "needs root for namespaces and AF_XDP",
    )
}

#[test]
fn echo_against_kernel_tcp_on_a_four_queue_veth() {
    let t = "echo_against_kernel_tcp_on_a_four_queue_veth";
    if !ready(t) {
        return;
    }
    let h = Harness::up("xe", 4, &[]);
    let dir = std::env::temp_dir();
    let pcap = dir.join(format!("xdptcp-veth-{}.pcap", std::process::id()));
    let stats = dir.join(format!("xdptcp-veth-{}.json", std::process::id()));
    let child = start_echo(
        &h,
        &[
            "--pcap",
            pcap.to_str().unwrap(),
            "--stats-json",
            stats.to_str().unwrap(),
        ],
    );

    // The kernel in the stack's namespace keeps its own address: ping and a
    // kernel TCP server on 198.18.0.3 work while xdptcp runs.
    let out = h.run(
        "k",
        &["ping", "-c", "2", "-i", "0.2", "-W", "2", "198.18.0.3"],
    );
    assert!(
        out.status.success(),
        "ping to the kernel's own address failed"
    );
    let (nss, nsk) = (h.nss(), h.nsk());
    let server = std::thread::spawn(move || {
        netns::enter(&nss);
        let l = TcpListener::bind("198.18.0.3:8080").unwrap();
        let (mut s, _) = l.accept().unwrap();
        s.write_all(b"kernel here").unwrap();
    });
    std::thread::sleep(Duration::from_millis(200));
    let got = std::thread::spawn(move || {
        netns::enter(&nsk);
        let mut s =
            TcpStream::connect_timeout(&"198.18.0.3:8080".parse().unwrap(), Duration::from_secs(5))
                .unwrap();
        let mut v = String::new();
        s.read_to_string(&mut v).unwrap();
        v
    })
    .join()
    .unwrap();
    server.join().unwrap();
    assert_eq!(got, "kernel here");

    let r = bulk(&h.nsk(), 64, bulk_bytes()).and_then(|_| short(&h.nsk(), 1000, 8));
    let (code, err) = netns::stop(child);
    eprintln!("{err}");
    r.unwrap();
    assert_eq!(code, 0, "xdptcp echo exit status");
    let out = h.run("s", &["ip", "link", "show", &h.iface()]);
    let link = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        !link.contains("xdp"),
        "XDP program left attached after SIGINT: {link}"
    );

    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let workers = report["workers"].as_array().unwrap();
    let busy = workers
        .iter()
        .filter(|w| w["rx_packets"].as_u64().unwrap_or(0) > 0)
        .count();
    assert!(busy > 1, "traffic arrived on only {busy} queue(s)");
    let handoffs: u64 = workers
        .iter()
        .map(|w| w["handoff_out"].as_u64().unwrap())
        .sum();
    let handins: u64 = workers
        .iter()
        .map(|w| w["handoff_in"].as_u64().unwrap())
        .sum();
    assert!(
        handins >= handoffs,
        "hand-offs lost: out {handoffs} in {handins}"
    );
    // Flows are owned where they arrive: only strays are handed over. A
    // bulk flow that Linux re-hashes to another queue (its transmit hash
    // changes on an RTO or on duplicate data: this machine is
    // overcommitted, 4 workers on 2 cores) moves to the worker its
    // packets now reach after a few strays (`stack::tcp_stray`, issue 6
    // item 4), with the echo server's state: under 1 % of the packets are
    // handed over, re-hashes or not. (A fixed hash of the tuple handed
    // over about 3 in 4; before flows moved, each re-hash cost up to a
    // bulk flow's packets.)
    let rx: u64 = workers
        .iter()
        .map(|w| w["rx_packets"].as_u64().unwrap())
        .sum();
    let rehashes = ["TcpTimeoutRehash", "TcpDuplicateDataRehash"]
        .map(|c| kernel_tcp_ext(&h, c))
        .iter()
        .sum::<u64>();
    let count = |k: &str| -> u64 { workers.iter().map(|w| w[k].as_u64().unwrap()).sum() };
    let (moved_out, moved_in) = (count("flows_migrated_out"), count("flows_migrated_in"));
    let unknown: Vec<String> = workers
        .iter()
        .map(|w| format!("{} {}", w["flows_unknown"], w["flows_unknown_kinds"]))
        .collect();
    eprintln!("flows unknown per worker: {}", unknown.join("; "));
    let share = handoffs as f64 / rx as f64;
    eprintln!(
        "hand-offs: {handoffs} of {rx} packets ({:.3} %); Linux re-hashed {rehashes} flows; \
         connections moved {moved_out} (installed {moved_in})",
        share * 100.0
    );
    assert!(
        handoffs < rx / 100,
        "hand-off share {share:.4}: {handoffs} of {rx} ({rehashes} re-hashes, {moved_out} moved)"
    );
    assert_eq!(moved_out, moved_in, "a moving connection was lost");
    assert_eq!(count("flows_migration_dropped"), 0);
    let accepted: u64 = workers
        .iter()
        .flat_map(|w| w["apps"].as_array().unwrap().iter())
        .map(|a| a["tcp"]["accepted"].as_u64().unwrap())
        .sum();
    assert!(accepted >= 64 + 1000, "accepted {accepted}");
    assert_eq!(report["ifaces"][0]["xdp_mode"], "Native");

    // The capture dissects cleanly.
    let out = Command::new("tshark")
        .args([
            "-r",
            pcap.to_str().unwrap(),
            "-Y",
            "_ws.malformed || _ws.expert.severity == error",
            "-T",
            "fields",
            "-e",
            "frame.number",
        ])
        .output();
    match out {
        Ok(o) => {
            assert!(
                o.status.success(),
                "tshark: {}",
                String::from_utf8_lossy(&o.stderr)
            );
            let bad = String::from_utf8_lossy(&o.stdout);
            assert!(
                bad.trim().is_empty(),
                "malformed frames in the capture: {}",
                &bad[..bad.len().min(200)]
            );
            // One ARP reply per request: the other workers only learn.
            let n = |filter: &str| {
                let o = Command::new("tshark")
                    .args(["-r", pcap.to_str().unwrap(), "-Y", filter])
                    .output()
                    .unwrap();
                o.stdout
                    .split(|&b| b == b'\n')
                    .filter(|l| !l.is_empty())
                    .count()
            };
            let requests = n("arp.opcode == 1 && arp.dst.proto_ipv4 == 198.18.0.2");
            let replies = n("arp.opcode == 2 && arp.src.proto_ipv4 == 198.18.0.2");
            assert!(requests >= 1);
            assert_eq!(replies, requests, "ARP replies per request");
            let count = Command::new("tshark")
                .args(["-r", pcap.to_str().unwrap(), "-Y", "tcp.port == 7"])
                .output()
                .unwrap();
            assert!(
                count.stdout.split(|&b| b == b'\n').count() > 1000,
                "capture too small"
            );
        }
        Err(e) => assert!(common::require(false, t, &format!("tshark missing: {e}"))),
    }
    let _ = std::fs::remove_file(&pcap);
    let _ = std::fs::remove_file(&stats);
}

/// The kernel peer at its defaults (transmit checksum offload, TSO and
/// GSO on; no ethtool change): its segments reach XDP with only the
/// pseudo-header sum in the checksum field (`CHECKSUM_PARTIAL`). xdptcp
/// accepts that form on veth, counts it, and serves Linux clients.
#[test]
fn echo_serves_kernel_clients_with_offloads_at_defaults() {
    let t = "echo_serves_kernel_clients_with_offloads_at_defaults";
    if !ready(t) {
        return;
    }
    let h = Harness::up("xo", 1, &[]);
    let out = h.run("k", &["ethtool", "-k", &format!("{}k0", h.prefix)]);
    let features = String::from_utf8_lossy(&out.stdout);
    assert!(
        features.contains("tx-checksumming: on")
            && features.contains("generic-segmentation-offload: on"),
        "the kernel peer is not at its offload defaults: {features}"
    );
    let stats = std::env::temp_dir().join(format!("xdptcp-veth-csum-{}.json", std::process::id()));
    // Also with busy polling of the AF_XDP socket (SO_PREFER_BUSY_POLL).
    let child = start_echo(
        &h,
        &["--stats-json", stats.to_str().unwrap(), "--busy-poll", "20"],
    );
    let r = bulk(&h.nsk(), 4, 4 << 20).and_then(|_| short(&h.nsk(), 200, 4));
    let (code, err) = netns::stop(child);
    eprintln!("{err}");
    r.unwrap();
    assert_eq!(code, 0, "xdptcp echo exit status");
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let _ = std::fs::remove_file(&stats);
    assert_eq!(report["ifaces"][0]["driver"], "veth");
    let sum = |k: &str| -> u64 {
        report["workers"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|w| w["stacks"].as_array().unwrap().iter())
            .map(|s| s[k].as_u64().unwrap())
            .sum()
    };
    let partial = sum("rx_csum_partial_accepted");
    assert!(partial > 1000, "partial checksums accepted: {partial}");
    assert_eq!(sum("drop_bad_checksum"), 0);
    let polls: u64 = report["workers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["devices"].as_array().unwrap().iter())
        .map(|d| d["busy_polls"].as_u64().unwrap())
        .sum();
    assert!(polls > 0, "--busy-poll did not poll");
    assert!(
        err.contains("accepted with a partial checksum"),
        "the exit summary does not say so: {err}"
    );
}

#[test]
fn echo_survives_kernel_side_loss_and_duplication() {
    let t = "echo_survives_kernel_side_loss_and_duplication";
    if !ready(t) {
        return;
    }
    // 2% loss each way and 1% duplication towards the stack (nftables).
    let h = Harness::up("xl", 4, &["--loss", "20", "--dup", "10"]);
    let stats = std::env::temp_dir().join(format!("xdptcp-veth-loss-{}.json", std::process::id()));
    let child = start_echo(&h, &["--stats-json", stats.to_str().unwrap()]);
    let r = bulk(&h.nsk(), 64, bulk_bytes() / 4).and_then(|_| short(&h.nsk(), 1000, 8));
    let (code, err) = netns::stop(child);
    eprintln!("{err}");
    let text = std::fs::read_to_string(&stats).unwrap_or_default();
    if r.is_err() {
        eprintln!("{text}");
    }
    let _ = std::fs::remove_file(&stats);
    r.unwrap();
    assert_eq!(code, 0, "xdptcp echo exit status");
    // The loss makes Linux time out and re-hash flows (`TcpTimeoutRehash`):
    // a flow whose packets then reach another queue moves to that worker
    // with the echo server's state for it, so the hand-offs stay under 1 %
    // of the packets (issue 6 item 4). (On this kernel a re-hash has not
    // been seen to change a flow's veth queue: the socket keeps its cached
    // transmit queue. `veth_loadgen`'s SYN/ACKs are what moves flows.)
    let report: serde_json::Value = serde_json::from_str(&text).expect("stats json");
    let workers = report["workers"].as_array().unwrap();
    let count = |k: &str| -> u64 { workers.iter().map(|w| w[k].as_u64().unwrap()).sum() };
    let (handoffs, rx) = (count("handoff_out"), count("rx_packets"));
    let (moved_out, moved_in) = (count("flows_migrated_out"), count("flows_migrated_in"));
    let rehashes = kernel_tcp_ext(&h, "TcpTimeoutRehash");
    let unknown: Vec<String> = workers
        .iter()
        .map(|w| format!("{} {}", w["flows_unknown"], w["flows_unknown_kinds"]))
        .collect();
    eprintln!("flows unknown per worker: {}", unknown.join("; "));
    eprintln!(
        "hand-offs: {handoffs} of {rx} packets ({:.3} %); Linux re-hashed {rehashes} flows; \
         connections moved {moved_out} (installed {moved_in}), segments forwarded after a move {}",
        handoffs as f64 * 100.0 / rx as f64,
        count("flows_forwarded")
    );
    assert_eq!(moved_out, moved_in, "a moving connection was lost");
    assert_eq!(count("flows_migration_dropped"), 0);
    assert!(
        handoffs < rx / 100,
        "hand-offs {handoffs} of {rx} ({rehashes} re-hashes, {moved_out} moved)"
    );
    let out = h.run(
        "k",
        &["nft", "list", "table", "ip", &format!("{}imp", h.prefix)],
    );
    let rules = String::from_utf8_lossy(&out.stdout);
    // The impairments really fired.
    assert!(
        rules
            .lines()
            .filter(|l| l.contains("drop") && !l.contains("packets 0 "))
            .count()
            >= 2,
        "{rules}"
    );
    assert!(
        rules
            .lines()
            .any(|l| l.contains("dup to") && !l.contains("packets 0 ")),
        "{rules}"
    );
}

#[test]
fn echo_user_errors_exit_2() {
    let t = "echo_user_errors_exit_2";
    if !ready(t) {
        return;
    }
    let h = Harness::up("xu", 4, &[]);
    let run = |args: &[&str]| -> (i32, String) {
        let out = Command::new("ip")
            .args(["netns", "exec", &h.nss(), BIN, "echo", "--duration", "1"])
            .args(args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.code().unwrap_or(-1), err)
    };
    let iface = format!("{}=198.18.0.2/24", h.iface());
    for (args, what) in [
        (
            vec!["--iface", "nosuch0=198.18.0.2/24"],
            "no such interface",
        ),
        (
            vec!["--iface", &format!("{}=198.18.0.3/24", h.iface())],
            "kernel",
        ),
        (vec!["--iface", &iface, "--queues", "8"], "queue"),
        (vec!["--iface", "bad"], "NAME=IPV4/PREFIX"),
        (
            vec!["--iface", &iface, "--busy-poll", "2000000"],
            "--busy-poll",
        ),
        // veth has no zero-copy AF_XDP.
        (vec!["--iface", &iface, "--zero-copy", "on"], "zero-copy"),
        (
            vec!["--iface", &iface, "--impair", "loss=2"],
            "--impair: loss=2",
        ),
        (
            vec!["--iface", &iface, "--impair", "wobble=1"],
            "unknown key",
        ),
        (
            vec!["--iface", &iface, "--gateway", "198.19.0.1"],
            "--gateway 198.19.0.1 is on no --iface subnet",
        ),
        (vec!["--iface", &iface, "--gateway", "router"], "--gateway"),
        (
            vec!["--iface", &iface, "--pmtu-probe-interval", "0"],
            "--pmtu-probe-interval",
        ),
    ] {
        let (code, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(
            err.trim().lines().count(),
            1,
            "{args:?}: one line expected: {err}"
        );
        assert!(err.contains(what), "{args:?}: {err}");
    }
    // A second instance finds the XDP program of the first attached.
    let first = start_echo(&h, &[]);
    let (code, err) = run(&["--iface", &iface]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already attached"), "{err}");
    let (code, _) = netns::stop(first);
    assert_eq!(code, 0);
}

#[test]
fn echo_on_two_interfaces_with_udp() {
    let t = "echo_on_two_interfaces_with_udp";
    if !ready(t) {
        return;
    }
    let h = Harness::up("xm", 2, &["--paths", "2"]);
    let mut c = Command::new("ip");
    c.args([
        "netns",
        "exec",
        &h.nss(),
        BIN,
        "echo",
        "--udp",
        "--duration",
        "600",
    ])
    .args(["--iface", &format!("{}s0=198.18.0.2/24", h.prefix)])
    .args(["--iface", &format!("{}s1=198.18.1.2/24", h.prefix)])
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let nsk = h.nsk();
    let r = std::thread::spawn(move || -> Result<(), String> {
        netns::enter(&nsk);
        for addr in ["198.18.0.2", "198.18.1.2"] {
            let sa: SocketAddr = format!("{addr}:7").parse().unwrap();
            // Bounded wait for the listener.
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut s = loop {
                match TcpStream::connect_timeout(&sa, Duration::from_millis(500)) {
                    Ok(s) => break s,
                    Err(e) if Instant::now() > deadline => return Err(format!("{addr}: {e}")),
                    Err(_) => std::thread::sleep(Duration::from_millis(100)),
                }
            };
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let msg: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            s.write_all(&msg).map_err(|e| format!("{addr}: {e}"))?;
            s.shutdown(Shutdown::Write).unwrap();
            let mut back = Vec::new();
            s.read_to_end(&mut back)
                .map_err(|e| format!("{addr}: {e}"))?;
            if back != msg {
                return Err(format!("{addr}: tcp echo differs"));
            }
            let u = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            u.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut ok = false;
            for _ in 0..5 {
                u.send_to(b"datagram", sa).unwrap();
                let mut buf = [0u8; 64];
                if let Ok((n, from)) = u.recv_from(&mut buf) {
                    ok = &buf[..n] == b"datagram" && from == sa;
                    break;
                }
            }
            if !ok {
                return Err(format!("{addr}: no udp echo"));
            }
        }
        Ok(())
    })
    .join()
    .unwrap();
    let (code, err) = netns::stop(child);
    eprintln!("{err}");
    r.unwrap();
    assert_eq!(code, 0);
    assert_eq!(err.matches("xdp redirected").count(), 2, "{err}");
}

/// Echo on two interfaces with `--stats-json`, 4 bulk connections to each
/// address; returns the report and stderr. `env`: extra environment.
fn two_iface_echo(h: &Harness, env: &[(&str, &str)]) -> (serde_json::Value, String) {
    let stats = std::env::temp_dir().join(format!(
        "xdptcp-veth-umem-{}-{}.json",
        std::process::id(),
        env.len()
    ));
    let mut c = Command::new("ip");
    c.args(["netns", "exec", &h.nss(), BIN, "echo", "--duration", "600"])
        .args(["--iface", &format!("{}s0=198.18.0.2/24", h.prefix)])
        .args(["--iface", &format!("{}s1=198.18.1.2/24", h.prefix)])
        .args(["--stats-json", stats.to_str().unwrap()])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let child = c.spawn().unwrap();
    let ok =
        netns::wait_listening(&h.nsk(), STACK) && netns::wait_listening(&h.nsk(), "198.18.1.2:7");
    let mut results = Vec::new();
    if ok {
        for target in [STACK, "198.18.1.2:7"] {
            results.push(bulk_to(&h.nsk(), target, 4, 2 << 20));
        }
    }
    let (code, err) = netns::stop(child);
    eprintln!("{err}");
    assert!(ok, "xdptcp echo did not listen on both interfaces");
    for r in results {
        r.unwrap();
    }
    assert_eq!(code, 0);
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    let _ = std::fs::remove_file(&stats);
    (report, err)
}

/// `--frames` at its default per queue for two queues (16,384 + 49,152 /
/// 2: `runtime::frames_per_queue`).
const FRAMES: u64 = 40960;

/// Every frame of a UMEM's account is free or on a ring at exit.
fn assert_whole(f: &serde_json::Value) {
    assert_eq!(
        (f["live"].as_i64(), f["lost"].as_i64()),
        (Some(0), Some(0)),
        "{f}"
    );
    assert_eq!(
        f["free"].as_u64().unwrap() + f["kernel"].as_u64().unwrap(),
        f["total"].as_u64().unwrap(),
        "{f}"
    );
}

/// Issue 8 / 6: with two `--iface`s the sockets of both interfaces share
/// one UMEM (the JSON's `umem` id is the same on both, and `umems` lists it
/// once), sized for both interfaces' queues; both carry echo traffic and the
/// UMEM is whole at exit. With the second interface made to refuse sharing
/// (`XDPTCP_TEST_OWN_UMEM`, standing for a device that cannot take the
/// first's mode), it gets its own UMEM, says so, and works as well.
#[test]
fn echo_on_two_interfaces_shares_one_umem() {
    let t = "echo_on_two_interfaces_shares_one_umem";
    if !ready(t) {
        return;
    }
    let h = Harness::up("xu", 2, &["--paths", "2"]);
    let (report, err) = two_iface_echo(&h, &[]);
    let ifaces = report["ifaces"].as_array().unwrap();
    assert_eq!(ifaces.len(), 2);
    assert_eq!(ifaces[0]["umem"], ifaces[1]["umem"], "one UMEM: {ifaces:?}");
    let umems = report["umems"].as_array().unwrap();
    assert_eq!(umems.len(), 1, "{umems:?}");
    let u = &umems[0];
    assert_eq!(u["ifaces"].as_array().unwrap().len(), 2);
    // Sized for both interfaces' queues (2 x 2 x --frames), not more.
    assert_eq!(u["frames"]["total"].as_u64(), Some(2 * 2 * FRAMES));
    assert_whole(&u["frames"]);
    for i in ifaces {
        assert_eq!(i["frames"], u["frames"]);
        assert_eq!(i["frames_held_at_stop"], 0, "{i}");
        assert_eq!(i["umem_share"].as_u64(), Some(2 * FRAMES));
    }
    let line = format!("for {0}s0, {0}s1: 163840 frames (320 MiB)", h.prefix);
    assert!(err.contains(&line), "{line:?} not in {err}");
    // Both interfaces received and sent.
    for path in [0, 1] {
        let rx: u64 = report["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["devices"][path]["rx_packets"].as_u64().unwrap_or(0))
            .sum();
        assert!(rx > 1000, "interface {path}: {rx} packets received");
    }

    let s1 = format!("{}s1", h.prefix);
    let (report, err) = two_iface_echo(&h, &[("XDPTCP_TEST_OWN_UMEM", &s1)]);
    assert!(err.contains("cannot share the UMEM"), "{err}");
    let ifaces = report["ifaces"].as_array().unwrap();
    assert_ne!(ifaces[0]["umem"], ifaces[1]["umem"]);
    let umems = report["umems"].as_array().unwrap();
    assert_eq!(umems.len(), 2, "{umems:?}");
    for u in umems {
        // Each sized for its own interface: the refusal was known before
        // the shared one was made, which holds nothing for the other.
        assert_eq!(u["frames"]["total"].as_u64(), Some(2 * FRAMES), "{u}");
        assert_whole(&u["frames"]);
    }

    // One interface that cannot take TX metadata: the whole shared UMEM
    // computes checksums in software (`--tx-checksum auto`), said once.
    let (report, err) = two_iface_echo(&h, &[("XDPTCP_TEST_NO_TX_METADATA", &s1)]);
    assert!(
        err.contains(&format!(
            "{s1} cannot take TX metadata: TCP checksums in software"
        )),
        "{err}"
    );
    let ifaces = report["ifaces"].as_array().unwrap();
    assert_eq!(ifaces[0]["umem"], ifaces[1]["umem"]);
    for i in ifaces {
        assert_eq!(i["tx_checksum"], "software", "{i}");
    }
    let offloaded: u64 = report["workers"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|w| w["devices"].as_array().unwrap().iter())
        .map(|d| d["tx_csum_offloaded"].as_u64().unwrap_or(0))
        .sum();
    assert_eq!(offloaded, 0);
    assert_whole(&report["umems"][0]["frames"]);
}

/// A counter of Linux's `TcpExt` (/proc/net/netstat: a line of names, then
/// one of values) in the kernel namespace.
fn kernel_tcp_ext(h: &Harness, name: &str) -> u64 {
    let out = h.run("k", &["cat", "/proc/net/netstat"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("TcpExt:")).collect();
    assert_eq!(rows.len(), 2, "no TcpExt in /proc/net/netstat:\n{text}");
    rows[0]
        .split_whitespace()
        .zip(rows[1].split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("TcpExt {name} not in /proc/net/netstat"))
}
