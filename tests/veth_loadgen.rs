//! `xdptcp loadgen` on a 2-queue veth, every mode with --verify: against
//! Linux servers (a Python epoll echo server, a bulk sink and source,
//! nginx with one worker) and against `xdptcp http` and `xdptcp echo`;
//! a refused and a silent target end as counted errors at --duration with
//! exit status 1.

mod veth_common;
use veth_common as common;
use veth_common::netns::{self, Harness};

use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");

/// A child process killed on drop.
struct Proc(Option<Child>);

impl Proc {
    fn stop(mut self) -> (i32, String) {
        netns::stop(self.0.take().expect("running"))
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Linux servers on 198.18.0.3: echo (7), sink (5001), source (5002);
/// epoll via selectors, non-blocking; exits by itself after 120 s.
const PY_SERVERS: &str = r#"
import selectors, socket, time
sel = selectors.DefaultSelector()
def listen(port, kind):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("198.18.0.3", port)); s.listen(1024); s.setblocking(False)
    sel.register(s, selectors.EVENT_READ, ("listen", kind))
for p, k in ((7, "echo"), (5001, "sink"), (5002, "source")):
    listen(p, k)
blob = bytes(range(256)) * 256
pending = {}
end = time.time() + 120
while time.time() < end:
    for key, ev in sel.select(0.5):
        role, kind = key.data
        s = key.fileobj
        if role == "listen":
            c, _ = s.accept(); c.setblocking(False)
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pending[c] = b""
            sel.register(c, selectors.EVENT_WRITE if kind == "source" else selectors.EVENT_READ, ("conn", kind))
            continue
        try:
            if kind == "source":
                s.send(blob)
                continue
            if ev & selectors.EVENT_READ:
                d = s.recv(65536)
                if not d:
                    sel.unregister(s); s.close(); pending.pop(s, None); continue
                if kind == "echo":
                    pending[s] += d
            if kind == "echo" and pending[s]:
                n = s.send(pending[s]); pending[s] = pending[s][n:]
                sel.modify(s, selectors.EVENT_READ | (selectors.EVENT_WRITE if pending[s] else 0), key.data)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            try: sel.unregister(s)
            except Exception: pass
            s.close(); pending.pop(s, None)
"#;

fn nginx_conf(dir: &std::path::Path) -> String {
    format!(
        "daemon off; master_process off; worker_processes 1; user root; pid {d}/nginx.pid;\n\
         error_log {d}/error.log;\n\
         events {{ worker_connections 4096; }}\n\
         http {{ access_log off; client_body_temp_path {d}/b; proxy_temp_path {d}/p;\n\
         fastcgi_temp_path {d}/f; uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;\n\
         keepalive_requests 1000000;\n\
         server {{ listen 198.18.0.3:8080 backlog=4096; root {d}/www; }} }}\n",
        d = dir.display()
    )
}

/// Run loadgen in the kernel's namespace from 198.18.0.16-19; (exit code,
/// JSON result if any, stderr).
fn loadgen(h: &Harness, args: &[&str]) -> (i32, Option<serde_json::Value>, String) {
    loadgen_env(h, args, &[])
}

/// [`loadgen`] with `env` set for it.
fn loadgen_env(
    h: &Harness,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, Option<serde_json::Value>, String) {
    let iface = format!("{}k0=198.18.0.16-198.18.0.19/24", h.prefix);
    let o: Output = Command::new("ip")
        .envs(env.iter().copied())
        .args(["netns", "exec", &h.nsk(), BIN, "loadgen", "--iface", &iface])
        .args(["--json", "--queues", "2"])
        .args(args)
        .output()
        .expect("running loadgen");
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    let json = serde_json::from_slice(&o.stdout).ok();
    (o.status.code().unwrap_or(-1), json, err)
}

/// The loadgen's recovery and loss counters that are not zero, from
/// its `--stats-json` report (what a long maximum latency came from).
fn recovery(s: &serde_json::Value) -> String {
    let mut sums: std::collections::BTreeMap<String, u64> = Default::default();
    for w in s["workers"].as_array().into_iter().flatten() {
        for (k, v) in w.as_object().into_iter().flatten() {
            if let Some(n) = v.as_u64() {
                *sums.entry(k.clone()).or_default() += n;
            }
        }
        for part in ["stacks", "xsk", "devices"] {
            for st in w[part].as_array().into_iter().flatten() {
                for (k, v) in st.as_object().into_iter().flatten() {
                    if let Some(n) = v.as_u64() {
                        *sums.entry(format!("{part}.{k}")).or_default() += n;
                    }
                }
            }
        }
    }
    for w in s["workers"].as_array().into_iter().flatten() {
        let k = &w["flows_unknown_kinds"];
        if let Some(o) = k.as_object() {
            for (name, v) in o {
                *sums.entry(format!("unknown.{name}")).or_default() += v.as_u64().unwrap_or(0);
            }
        }
    }
    let words = [
        "retrans", "rto", "tlp", "drop", "full", "invalid", "lost", "ooo", "dup", "old", "recover",
        "unknown", "rst", "probe", "empty",
    ];
    sums.iter()
        .filter(|(k, v)| **v > 0 && words.iter().any(|w| k.contains(w)))
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Linux's TCP loss-recovery counters in namespace `ns` ("s": the
/// servers'): timeouts, loss probes, segments sent again.
fn linux_recovery(h: &Harness, ns: &str) -> [u64; 4] {
    let mut v = [0u64; 4];
    for (file, prefix, names) in [
        (
            "/proc/net/netstat",
            "TcpExt:",
            &["TCPTimeouts", "TCPLossProbes", "TCPSpuriousRTOs"][..],
        ),
        ("/proc/net/snmp", "Tcp:", &["RetransSegs"][..]),
    ] {
        let out = h.run(ns, &["cat", file]);
        let text = String::from_utf8_lossy(&out.stdout);
        let rows: Vec<&str> = text.lines().filter(|l| l.starts_with(prefix)).collect();
        if rows.len() != 2 {
            continue;
        }
        for (n, x) in rows[0].split_whitespace().zip(rows[1].split_whitespace()) {
            let i = match n {
                "TCPTimeouts" => 0,
                "TCPLossProbes" => 1,
                "TCPSpuriousRTOs" => 2,
                "RetransSegs" => 3,
                _ => continue,
            };
            if names.contains(&n) {
                v[i] = x.parse().unwrap_or(0);
            }
        }
    }
    v
}

/// A verified run: exit 0, requests (or bytes) > 0, no errors.
fn verified(h: &Harness, what: &str, args: &[&str]) -> serde_json::Value {
    verified_linux(h, what, args).0
}

/// [`verified`], and Linux's loss-recovery counters over the run
/// (timeouts, loss probes, spurious RTOs, segments sent again).
fn verified_linux(h: &Harness, what: &str, args: &[&str]) -> (serde_json::Value, Vec<u64>) {
    let stats = std::env::temp_dir().join(format!(
        "xdptcp-veth-lg-v-{}-{}.json",
        std::process::id(),
        what.replace(' ', "_")
    ));
    let mut args = args.to_vec();
    let own_stats = !args.contains(&"--stats-json");
    if own_stats {
        args.extend(["--stats-json", stats.to_str().unwrap()]);
    }
    let before = linux_recovery(h, "s");
    let (code, json, err) = loadgen(h, &args);
    let after = linux_recovery(h, "s");
    let d: Vec<u64> = after
        .iter()
        .zip(before)
        .map(|(a, b)| a.saturating_sub(b))
        .collect();
    eprintln!(
        "{what}: Linux: timeouts {}, loss probes {}, spurious RTOs {}, segments sent again {}",
        d[0], d[1], d[2], d[3]
    );
    if let Some(s) = own_stats
        .then(|| std::fs::read(&stats).ok())
        .flatten()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    {
        eprintln!("{what}: recovery: {}", recovery(&s));
        let _ = std::fs::remove_file(&stats);
    }
    let j = json.unwrap_or_else(|| panic!("{what}: no JSON (exit {code}): {err}"));
    eprintln!("{what}: {j}");
    assert_eq!(code, 0, "{what}: {err}");
    assert_eq!(j["errors"], 0, "{what}: {j}");
    let key = if j["mode"] == "bulk" {
        "bytes"
    } else {
        "requests"
    };
    assert!(j[key].as_u64().unwrap() > 0, "{what}: {j}");
    for k in ["rps", "throughput_mbps", "duration_s", "connections"] {
        assert!(j[k].is_number(), "{what}: {k} in {j}");
    }
    for p in ["p50", "p90", "p99", "p999", "max"] {
        assert!(j["latency_us"][p].is_u64(), "{what}: {p} in {j}");
    }
    (j, d)
}

/// The segments of flows no worker knew (`flows_unknown_kinds`) that a
/// load generator's run may see, from its `--stats-json` report `s`,
/// given Linux's segments sent again in the run (`resent`): it is the
/// client, so no SYN (nothing connects to it); no SYN/ACK (each is one
/// for a connection it opened, lost to the flow directory, or one of an
/// earlier run that its stop left unanswered: `runtime::stop`); no RST
/// (Linux resets only what it got from a flow it does not know). A data
/// segment, ACK or FIN is a straggler of a connection it reset once its
/// requests were answered: a retransmission of Linux's that crossed the
/// reset, so there are at most as many as Linux sent again.
fn assert_unknown_flows(what: &str, s: &serde_json::Value, resent: u64) {
    let kind = |k: &str| -> u64 {
        s["workers"]
            .as_array()
            .expect("workers")
            .iter()
            .map(|w| w["flows_unknown_kinds"][k].as_u64().expect(k))
            .sum()
    };
    let kinds: Vec<String> = ["syn", "syn_ack", "rst", "data", "ack", "fin"]
        .iter()
        .map(|k| format!("{k} {}", kind(k)))
        .collect();
    eprintln!(
        "{what}: flows unknown: {}; Linux sent again {resent}",
        kinds.join(", ")
    );
    for k in ["syn", "syn_ack", "rst"] {
        assert_eq!(kind(k), 0, "{what}: unknown {k}: {}", kinds.join(", "));
    }
    let stragglers = kind("data") + kind("ack") + kind("fin");
    assert!(
        stragglers <= resent,
        "{what}: {stragglers} segments of unknown flows, Linux sent again {resent}: {}",
        kinds.join(", ")
    );
}

fn start(h: &Harness, ns: &str, prog: &str, args: &[&str]) -> Proc {
    let child = h
        .command(ns, prog)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {prog}: {e}"));
    Proc(Some(child))
}

#[test]
fn loadgen_against_linux_and_xdptcp_servers() {
    let t = "loadgen_against_linux_and_xdptcp_servers";
    if !common::require(common::is_root(), t, "needs root for namespaces and AF_XDP") {
        return;
    }
    let have_nginx = Command::new("nginx").arg("-v").output().is_ok();
    if !common::require(
        have_nginx,
        t,
        "nginx missing (bash scripts/setup.sh installs it)",
    ) {
        return;
    }
    let h = Harness::up("lg", 2, &[]);
    let dir = std::env::temp_dir().join(format!("xdptcp-veth-lg-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("www/bytes")).unwrap();
    let pattern: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(dir.join("www/bytes/100000"), &pattern).unwrap();
    std::fs::write(dir.join("www/index.html"), vec![b'x'; 64]).unwrap();
    std::fs::write(dir.join("nginx.conf"), nginx_conf(&dir)).unwrap();

    // Linux servers.
    let py = start(&h, "s", "python3", &["-c", PY_SERVERS]);
    let conf = dir.join("nginx.conf");
    let nginx = start(&h, "s", "nginx", &["-c", conf.to_str().unwrap()]);
    assert!(
        netns::wait_listening(&h.nsk(), "198.18.0.3:7"),
        "python servers"
    );
    assert!(netns::wait_listening(&h.nsk(), "198.18.0.3:8080"), "nginx");
    let d = ["--duration", "2", "--verify"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        let mut v: Vec<&str> = d.to_vec();
        v.extend_from_slice(extra);
        v
    };
    verified(
        &h,
        "echo vs python",
        &with(&[
            "--mode",
            "echo",
            "--target",
            "198.18.0.3:7",
            "--conns",
            "16",
            "--size",
            "1000",
            "--pipeline",
            "2",
        ]),
    );
    // When loadgen stops it resets its connections, as a process's exit
    // closes its sockets: none is left established at the server (before,
    // all 16 were, and Linux retransmitted into the next run).
    let established = |h: &Harness| {
        let o = h
            .command("s", "ss")
            .args(["-Htn", "state", "established", "( sport = :7 )"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).lines().count()
    };
    let mut left = established(&h);
    for _ in 0..20 {
        if left == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
        left = established(&h);
    }
    assert_eq!(
        left, 0,
        "connections left established after loadgen stopped"
    );
    let stats = dir.join("short.json");
    // `with` takes the run's arguments as 'static.
    let stats_arg: &'static str = Box::leak(stats.to_str().unwrap().into());
    let (j, linux) = verified_linux(
        &h,
        "short echo connections vs python",
        &with(&[
            "--mode",
            "echo",
            "--target",
            "198.18.0.3:7",
            "--conns",
            "8",
            "--requests-per-conn",
            "2",
            "--stats-json",
            stats_arg,
        ]),
    );
    // Every answer reached the worker that opened the connection (via the
    // flow directory when it arrived on the other queue): none was taken
    // for an unknown flow and reset. Failed before the directory learned a
    // flow ahead of its first segment: the SYN-ACK, polled at once by the
    // other worker, was reset, and the SYN went again after 1 s.
    // Also failed when a connection that moved (below) had the ACK of its
    // SYN/ACK sent by the worker it left: that ACK could reach Linux after
    // the new worker's RST, and Linux's reset to it came to no flow.
    // Failed once under a load of 15 with 3 unknown SYN/ACKs: answers to
    // SYNs the previous run sent just before its stop, retransmitted by
    // Linux into this run (now answered by the stop: see
    // `synacks_due_at_the_stop_are_answered_there`). What may still be
    // unknown, and why: `assert_unknown_flows`.
    let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
    assert_unknown_flows("short connections", &s, linux[1] + linux[3]);
    // A SYN/ACK that arrives on the other worker's queue (Linux's transmit
    // hash, which we cannot choose on veth) moves its connection there with
    // the load generator's state (`stack::tcp_stray`, issue 6 item 4): that
    // SYN/ACK is the one segment handed over, not every one after it.
    let sum = |k: &str| common::worker_counter(&s, k);
    let (handoffs, moved, rx) = (
        sum("handoff_out"),
        sum("flows_migrated_out"),
        sum("rx_packets"),
    );
    eprintln!("short connections: {handoffs} hand-offs, {moved} moved, {rx} packets");
    assert!(moved > 0, "no connection moved");
    // Every move is installed: one on its way when the run stops too
    // (the workers install what their inboxes hold before the stop's
    // resets). Before, one per worker could be dropped with the inbox,
    // its connection left open at Linux, and this check allowed 2.
    let (moved_in, refused) = (sum("flows_migrated_in"), sum("flows_migration_refused"));
    assert_eq!(
        moved,
        moved_in + refused,
        "connections moved out {moved}, in {moved_in}, refused {refused}"
    );
    assert_eq!(sum("flows_migration_returned"), refused);
    assert_eq!(sum("flows_migration_dropped"), 0);
    assert!(
        handoffs <= moved + rx / 100,
        "hand-offs {handoffs}, connections moved {moved}, packets {rx}"
    );
    // Two requests per connection: the connections really were replaced.
    let (req, opened) = (j["requests"].as_u64(), j["connections_opened"].as_u64());
    assert!(
        opened.unwrap() * 2 + 16 >= req.unwrap() && opened.unwrap() > 50,
        "short connections: {j}"
    );
    verified(
        &h,
        "bulk to a Linux sink",
        &with(&[
            "--mode",
            "bulk",
            "--target",
            "198.18.0.3:5001",
            "--conns",
            "2",
        ]),
    );
    verified(
        &h,
        "bulk from a Linux source",
        &with(&[
            "--mode",
            "bulk",
            "--reverse",
            "--target",
            "198.18.0.3:5002",
            "--conns",
            "2",
        ]),
    );
    verified(
        &h,
        "http vs nginx",
        &with(&[
            "--mode",
            "http",
            "--target",
            "198.18.0.3:8080",
            "--conns",
            "32",
            "--path",
            "/bytes/100000",
        ]),
    );
    verified(
        &h,
        "http pipelined vs nginx",
        &with(&[
            "--mode",
            "http",
            "--target",
            "198.18.0.3:8080",
            "--conns",
            "8",
            "--pipeline",
            "8",
        ]),
    );
    verified(
        &h,
        "connect vs nginx",
        &with(&[
            "--mode",
            "connect",
            "--target",
            "198.18.0.3:8080",
            "--conns",
            "8",
        ]),
    );
    let j = verified(
        &h,
        "open loop vs nginx",
        &with(&[
            "--mode",
            "http",
            "--target",
            "198.18.0.3:8080",
            "--conns",
            "16",
            "--rate",
            "2000",
            "--warmup",
            "1",
        ]),
    );
    let rps = j["rps"].as_f64().unwrap();
    assert!((1500.0..=2500.0).contains(&rps), "{j}");

    // Nothing listens on port 9: refused, counted, exit 1, on time.
    let t0 = Instant::now();
    let (code, json, err) = loadgen(
        &h,
        &[
            "--mode",
            "http",
            "--target",
            "198.18.0.3:9",
            "--duration",
            "2",
            "--conns",
            "4",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(json.unwrap()["errors_by_kind"]["refused"].as_u64().unwrap() > 0);
    assert!(err.contains("refused"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(15));
    // No host at .99: timeouts, exit 1, on time.
    let t0 = Instant::now();
    let (code, _, err) = loadgen(
        &h,
        &[
            "--mode",
            "echo",
            "--target",
            "198.18.0.99:7",
            "--duration",
            "2",
            "--timeout",
            "1",
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no connection"), "{err}");
    assert!(t0.elapsed() < Duration::from_secs(15));
    drop(nginx);
    drop(py);

    // xdptcp http on 198.18.0.2.
    let iface = format!("{}=198.18.0.2/24", h.iface());
    let srv = start(
        &h,
        "s",
        BIN,
        &["http", "--iface", &iface, "--duration", "60"],
    );
    assert!(
        netns::wait_listening(&h.nsk(), "198.18.0.2:80"),
        "xdptcp http"
    );
    let hist = dir.join("lat.hist");
    let plot = dir.join("lat.svg");
    let (hs, ps) = (
        hist.to_str().unwrap().to_string(),
        plot.to_str().unwrap().to_string(),
    );
    let mut args: Vec<&str> = with(&[
        "--mode",
        "http",
        "--target",
        "198.18.0.2:80",
        "--conns",
        "64",
        "--path",
        "/bytes/1000",
    ]);
    args.extend(["--hist", hs.as_str(), "--plot", ps.as_str()]);
    verified(&h, "http vs xdptcp http", &args);
    let hf = std::fs::read_to_string(&hist).unwrap();
    assert!(hf.contains("Percentile") && hf.contains("#[Max"), "{hf}");
    assert!(std::fs::read_to_string(&plot)
        .unwrap()
        .contains("<polyline"));
    verified(
        &h,
        "connect vs xdptcp http",
        &with(&[
            "--mode",
            "connect",
            "--target",
            "198.18.0.2:80",
            "--conns",
            "8",
        ]),
    );
    let (code, err) = srv.stop();
    assert_eq!(code, 0, "{err}");

    // xdptcp echo on 198.18.0.2.
    let srv = start(
        &h,
        "s",
        BIN,
        &["echo", "--iface", &iface, "--duration", "60"],
    );
    assert!(
        netns::wait_listening(&h.nsk(), "198.18.0.2:7"),
        "xdptcp echo"
    );
    verified(
        &h,
        "echo vs xdptcp echo",
        &with(&[
            "--mode",
            "echo",
            "--target",
            "198.18.0.2:7",
            "--conns",
            "64",
            "--size",
            "64",
        ]),
    );
    verified(
        &h,
        "bulk vs xdptcp echo",
        &with(&["--mode", "bulk", "--target", "198.18.0.2:7", "--conns", "4"]),
    );
    let (code, err) = srv.stop();
    assert_eq!(code, 0, "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn loadgen_connections_whose_moves_are_refused_go_back_and_keep_working() {
    // Issue 8: a connection whose move is refused where it arrives (its
    // flow there already, the app or the table full: forced here for
    // every move by `XDPTCP_TEST_REFUSE_MOVES`) goes back to the worker
    // it left and keeps working there. It used to be dropped (counted in
    // `flows_migration_dropped`) and its requests failed.
    let t = "loadgen_connections_whose_moves_are_refused_go_back_and_keep_working";
    if !common::require(common::is_root(), t, "needs root for namespaces and AF_XDP") {
        return;
    }
    let h = Harness::up("lr", 2, &[]);
    let dir = std::env::temp_dir().join(format!("xdptcp-veth-lr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let py = start(&h, "s", "python3", &["-c", PY_SERVERS]);
    assert!(
        netns::wait_listening(&h.nsk(), "198.18.0.3:7"),
        "python servers"
    );
    for (what, extra) in [
        (
            "long",
            &["--conns", "16", "--size", "1000", "--pipeline", "2"][..],
        ),
        ("short", &["--conns", "8", "--requests-per-conn", "2"][..]),
    ] {
        let stats = dir.join(format!("{what}.json"));
        let mut args = vec![
            "--duration",
            "2",
            "--verify",
            "--mode",
            "echo",
            "--target",
            "198.18.0.3:7",
            "--stats-json",
            stats.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let (code, json, err) = loadgen_env(&h, &args, &[("XDPTCP_TEST_REFUSE_MOVES", "1")]);
        let j = json.unwrap_or_else(|| panic!("{what}: no JSON (exit {code}): {err}"));
        eprintln!("{what}: {j}");
        assert_eq!(code, 0, "{what}: {err}");
        assert_eq!(j["errors"], 0, "{what}: {j}");
        assert!(j["requests"].as_u64().unwrap() > 0, "{what}: {j}");
        if what == "long" {
            // Each connection lost on a move is never counted as opened
            // (7 of 16 without the return: its slot went with it).
            assert_eq!(j["connections_opened"], 16, "{what}: {j}");
        }
        let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
        let sum = |k: &str| common::worker_counter(&s, k);
        let (out, refused, returned) = (
            sum("flows_migrated_out"),
            sum("flows_migration_refused"),
            sum("flows_migration_returned"),
        );
        eprintln!(
            "{what}: moves out {out}, refused {refused}, returned {returned}, retries {}",
            sum("flows_return_retries")
        );
        assert!(refused > 0, "{what}: no move was refused");
        assert_eq!(sum("flows_migration_dropped"), 0, "{what}");
        // Every move out came back, but those on their way when the run
        // stopped: installed where they arrived before the stop's resets
        // (the knob refuses in the loop only).
        let moved_in = sum("flows_migrated_in");
        assert_eq!(
            moved_in,
            sum("flows_migrated_in_at_stop"),
            "{what}: refused moves stayed"
        );
        assert_eq!(
            (refused, returned),
            (out - moved_in, out - moved_in),
            "{what}: out {out}, in {moved_in}, refused {refused}, returned {returned}"
        );
    }
    drop(py);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Issue fl9: SYN/ACKs due when a run stops are answered by that run.
/// Linux here drops the first SYN/ACK of every connection (nftables), so
/// each handshake waits for its retransmission a second later and the
/// stop always finds connections in SYN-SENT. The stop aborts them
/// (nothing is sent in SYN-SENT, RFC 9293 §3.10.5) and reads on until
/// their SYN/ACKs came and got a reset (RFC 9293 §3.10.7.1). Before, it
/// read for 30 ms: Linux kept its half-open connections and its SYN/ACK
/// retransmissions reached the next run as SYN/ACKs of unknown flows
/// (what failed `loadgen_against_linux_and_xdptcp_servers` under load).
#[test]
fn synacks_due_at_the_stop_are_answered_there() {
    let t = "synacks_due_at_the_stop_are_answered_there";
    if !common::require(common::is_root(), t, "needs root for namespaces and AF_XDP") {
        return;
    }
    let h = Harness::up("ls", 2, &[]);
    let dir = std::env::temp_dir().join(format!("xdptcp-veth-ls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let py = start(&h, "s", "python3", &["-c", PY_SERVERS]);
    assert!(
        netns::wait_listening(&h.nsk(), "198.18.0.3:7"),
        "python servers"
    );
    // The first SYN/ACK of each flow (towards the load generator's
    // addresses) is dropped; the flow is remembered, its retransmission
    // passes.
    let rule = "table ip xdptcp_ls { \
        set seen { type ipv4_addr . inet_service; flags dynamic,timeout; timeout 60s; }; \
        chain out { type filter hook output priority 0; policy accept; \
        ip saddr 198.18.0.3 tcp flags & (syn | ack) == (syn | ack) \
        ip daddr . tcp dport @seen accept; \
        ip saddr 198.18.0.3 tcp flags & (syn | ack) == (syn | ack) \
        add @seen { ip daddr . tcp dport } drop; }; }";
    let o = h.run("s", &["nft", rule]);
    assert!(
        o.status.success(),
        "nft: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut runs = Vec::new();
    for run in 0..2 {
        let stats = dir.join(format!("run{run}.json"));
        let args = [
            "--duration",
            "2",
            "--verify",
            "--mode",
            "echo",
            "--target",
            "198.18.0.3:7",
            "--conns",
            "8",
            "--requests-per-conn",
            "2",
            "--stats-json",
            stats.to_str().unwrap(),
        ];
        let (code, json, err) = loadgen(&h, &args);
        let j = json.unwrap_or_else(|| panic!("run {run}: no JSON (exit {code}): {err}"));
        eprintln!("run {run}: {j}");
        assert_eq!(code, 0, "run {run}: {err}");
        assert_eq!(j["errors"], 0, "run {run}: {j}");
        let s: serde_json::Value = serde_json::from_slice(&std::fs::read(&stats).unwrap()).unwrap();
        let sum = |k: &str| common::worker_counter(&s, k);
        let (due, answered) = (sum("stop_syn_sent"), sum("stop_synacks_answered"));
        let unknown: u64 = s["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["flows_unknown_kinds"]["syn_ack"].as_u64().unwrap())
            .sum();
        eprintln!(
            "run {run}: in SYN-SENT at the stop {due}, SYN/ACKs answered then {answered} \
             (drain {:?} ms); unknown SYN/ACKs during the run {unknown}",
            s["workers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|w| w["stop_drain_ms"].as_u64().unwrap())
                .collect::<Vec<_>>()
        );
        runs.push((due, answered, unknown));
    }
    // Each handshake takes a second, so the first run stopped with some
    // (the test could not fail otherwise), and answered each one's
    // SYN/ACK before it ended.
    let (due, answered, _) = runs[0];
    assert!(due > 0, "no handshake in progress at the stop");
    assert!(answered >= due, "SYN/ACKs due {due}, answered {answered}");
    // None reached the second run (before: as many as the first left).
    assert_eq!(runs[1].2, 0, "unknown SYN/ACKs in the run after a stop");
    let _ = h.run("s", &["nft", "delete", "table", "ip", "xdptcp_ls"]);
    drop(py);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn loadgen_user_errors_exit_2() {
    let base = ["loadgen", "--iface", "a=198.18.0.16/24"];
    for extra in [
        &["--target", "198.18.0.2:80", "--mode", "nope"][..],
        &["--target", "198.18.0.2", "--mode", "http"],
        &[
            "--target",
            "198.18.0.2:80",
            "--mode",
            "http",
            "--conns",
            "0",
        ],
        &[
            "--target",
            "198.18.0.2:80",
            "--mode",
            "http",
            "--rate",
            "-5",
        ],
        &[
            "--target",
            "198.18.0.2:80",
            "--mode",
            "http",
            "--path",
            "x y",
        ],
        &[
            "--target",
            "198.18.0.2:80",
            "--mode",
            "bulk",
            "--rate",
            "10",
        ],
        &[
            "--target",
            "198.18.0.2:80",
            "--mode",
            "http",
            "--duration",
            "0",
        ],
        &[
            "--target",
            "198.18.0.2:80",
            "--mode",
            "connect",
            "--requests-per-conn",
            "5",
        ],
        &[
            "--target",
            "198.18.0.2:80",
            "--mode",
            "echo",
            "--requests-per-conn",
            "0",
        ],
        &[
            "--target",
            "198.18.0.2:80",
            "--mode",
            "bulk",
            "--requests-per-conn",
            "1",
        ],
    ] {
        let o = Command::new(BIN).args(base).args(extra).output().unwrap();
        assert_eq!(o.status.code(), Some(2), "{extra:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{extra:?}: {err}");
    }
}

/// The order the runtime relies on to publish a turn's new flows before
/// their SYNs can leave (`runtime::worker`, `Worker::poll`): with several
/// workers their devices do not flush a full TX batch from inside a
/// transmit, so nothing a turn transmits (here 600 frames, more than the
/// 256 of a batch, as a turn's 256 opens on top of other segments) is on
/// the TX ring before the worker's flush, which comes after the publish.
/// The default (one worker) flushes a full batch as it goes.
#[test]
fn a_turns_transmissions_reach_the_ring_only_at_its_flush() {
    use xdptcp::io::xdp::{SharedUmem, XdpDevice, XdpSocket, ZeroCopy};
    use xdptcp::io::{Device, Frame};
    let t = "a_turns_transmissions_reach_the_ring_only_at_its_flush";
    if !common::require(common::is_root(), t, "needs root for namespaces and AF_XDP") {
        return;
    }
    let h = Harness::up("lt", 1, &[]);
    let (nss, iface) = (h.nss(), h.iface());
    std::thread::spawn(move || {
        netns::enter(&nss);
        let info = xdptcp::io::xdp::iface::IfaceInfo::get(&iface).unwrap();
        let umem = SharedUmem::new(4096).unwrap();
        let s = XdpSocket::new(&umem, &iface, 0, ZeroCopy::Auto).unwrap();
        let mut d = XdpDevice::new(s, umem.clone(), info.mtu);
        // A broadcast frame of a local experimental EtherType (IEEE 802
        // 88B5): the kernel peer drops it.
        let send = |d: &mut XdpDevice, n: usize| {
            for _ in 0..n {
                let mut f = d.alloc().expect("a frame");
                let b = f.buf_mut();
                b[..6].fill(0xff);
                b[6..12].copy_from_slice(&info.mac.0);
                b[12..14].copy_from_slice(&[0x88, 0xb5]);
                b[14..60].fill(0);
                assert!(d.transmit(f, 0, 60));
            }
        };
        d.set_flush_when_full(false);
        send(&mut d, 600);
        assert_eq!(d.counters().tx_packets, 0, "on the ring before the flush");
        d.flush();
        assert_eq!(d.counters().tx_packets, 600, "all at the flush");
        d.set_flush_when_full(true);
        send(&mut d, 600);
        assert!(
            d.counters().tx_packets >= 600 + 256,
            "the default flushes a full batch: {}",
            d.counters().tx_packets
        );
        d.flush();
    })
    .join()
    .unwrap();
}
