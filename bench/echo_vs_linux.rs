//! xdptcp's echo server and Linux's own, side by side, same veth, same
//! client, same run — reported as ratios.
//!
//! `cargo bench --bench echo_vs_linux` (root: namespaces and AF_XDP).
//!
//! For each worker count W in {1, 2}: `scripts/harness.sh --queues W up`
//! (veth with W rx/tx queues, both ends in namespaces of their own),
//! `xdptcp echo --queues W --cores 0..W` on 198.18.0.2 and a Linux echo
//! server (Rust std, one blocking thread per connection) on 198.18.0.3 in
//! the same namespace. The same client (kernel TCP, other namespace) then
//! measures against each, alternating Linux / xdptcp per metric:
//!
//! - bulk: `BENCH_CONNS` connections each pushing a byte pattern for
//!   `BENCH_SECS` and reading the echo back (checked), Mbit/s echoed;
//! - rr: `BENCH_CONNS` persistent connections, 64-byte request → 64-byte
//!   response ping-pong, requests/s;
//! - cps: short connections (connect, 64 bytes each way, close) from 4
//!   threads, connections/s.
//!
//! Prints a table and writes `target/bench-echo.json`. Every phase is
//! bounded in time; xdptcp runs with `--duration` and the harness is taken
//! down on drop (also on panic).

#[allow(dead_code)]
#[path = "../tests/veth_common/netns.rs"]
mod netns;

use netns::Harness;
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");
const STACK: &str = "198.18.0.2:7";
const LINUX: &str = "198.18.0.3:7";

fn env_or<T: std::str::FromStr>(k: &str, d: T) -> T {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(d)
}

/// Byte `off` of connection `seed`'s stream.
fn pat(seed: u64, off: u64) -> u8 {
    (off.wrapping_mul(31) ^ seed.wrapping_mul(0x9d)) as u8 ^ (off >> 8) as u8
}

fn connect(ns: &str, target: &str) -> Result<TcpStream, String> {
    netns::enter(ns);
    let addr: SocketAddr = target.parse().unwrap();
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect {target}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(10))).unwrap();
    Ok(s)
}

/// Join worker threads; the first error wins.
fn join<T>(hs: Vec<std::thread::JoinHandle<Result<T, String>>>) -> Result<Vec<T>, String> {
    let mut out = Vec::new();
    let mut err = None;
    for h in hs {
        match h.join().map_err(|_| "client thread panicked".to_string()) {
            Ok(Ok(v)) => out.push(v),
            Ok(Err(e)) | Err(e) => err = err.or(Some(e)),
        }
    }
    err.map_or(Ok(out), Err)
}

/// Bulk echo: Mbit/s echoed (bytes read back, checked, over the elapsed time).
fn bulk(ns: &str, target: &'static str, conns: u64, secs: f64) -> Result<f64, String> {
    let t0 = Instant::now();
    let hs: Vec<_> = (0..conns)
        .map(|c| {
            let ns = ns.to_string();
            std::thread::spawn(move || -> Result<u64, String> {
                let s = connect(&ns, target)?;
                let mut w = s.try_clone().unwrap();
                let end = Instant::now() + Duration::from_secs_f64(secs);
                let writer = std::thread::spawn(move || -> Result<u64, String> {
                    let mut buf = vec![0u8; 64 * 1024];
                    let mut off = 0u64;
                    while Instant::now() < end {
                        for (i, b) in buf.iter_mut().enumerate() {
                            *b = pat(c, off + i as u64);
                        }
                        w.write_all(&buf).map_err(|e| format!("write: {e}"))?;
                        off += buf.len() as u64;
                    }
                    w.shutdown(Shutdown::Write)
                        .map_err(|e| format!("shutdown: {e}"))?;
                    Ok(off)
                });
                let mut r = s;
                let mut buf = vec![0u8; 64 * 1024];
                let mut got = 0u64;
                loop {
                    let k = r
                        .read(&mut buf)
                        .map_err(|e| format!("read after {got}: {e}"))?;
                    if k == 0 {
                        break;
                    }
                    if buf[..k]
                        .iter()
                        .enumerate()
                        .any(|(i, &b)| b != pat(c, got + i as u64))
                    {
                        return Err(format!("conn {c}: echo differs near byte {got}"));
                    }
                    got += k as u64;
                }
                let sent = writer.join().map_err(|_| "writer panicked".to_string())??;
                if sent != got {
                    return Err(format!("conn {c}: echoed {got} of {sent} bytes"));
                }
                Ok(got)
            })
        })
        .collect();
    let bytes: u64 = join(hs)?.iter().sum();
    Ok(bytes as f64 * 8.0 / t0.elapsed().as_secs_f64() / 1e6)
}

/// Persistent ping-pong of 64-byte messages: requests/s.
fn rr(ns: &str, target: &'static str, conns: u64, secs: f64) -> Result<f64, String> {
    let t0 = Instant::now();
    let hs: Vec<_> = (0..conns)
        .map(|c| {
            let ns = ns.to_string();
            std::thread::spawn(move || -> Result<u64, String> {
                let mut s = connect(&ns, target)?;
                s.set_nodelay(true).unwrap();
                let end = Instant::now() + Duration::from_secs_f64(secs);
                let mut req = [0u8; 64];
                let mut resp = [0u8; 64];
                let mut n = 0u64;
                while Instant::now() < end {
                    req[..8].copy_from_slice(&(n ^ c << 48).to_le_bytes());
                    s.write_all(&req).map_err(|e| format!("rr write: {e}"))?;
                    s.read_exact(&mut resp)
                        .map_err(|e| format!("rr read after {n}: {e}"))?;
                    if resp != req {
                        return Err(format!("rr conn {c}: response {n} differs"));
                    }
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let n: u64 = join(hs)?.iter().sum();
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// Short connections (connect, 64 bytes each way, close): connections/s.
fn cps(ns: &str, target: &'static str, par: u64, secs: f64) -> Result<f64, String> {
    let t0 = Instant::now();
    let hs: Vec<_> = (0..par)
        .map(|p| {
            let ns = ns.to_string();
            std::thread::spawn(move || -> Result<u64, String> {
                let end = Instant::now() + Duration::from_secs_f64(secs);
                let mut n = 0u64;
                // Also bounded in count (the client's port space).
                while Instant::now() < end && n < 12_000 {
                    let mut s = connect(&ns, target).map_err(|e| format!("{e} (after {n})"))?;
                    let msg = [(p * 7 + n) as u8; 64];
                    s.write_all(&msg).map_err(|e| format!("cps write: {e}"))?;
                    s.shutdown(Shutdown::Write)
                        .map_err(|e| format!("cps shutdown: {e}"))?;
                    let mut back = Vec::with_capacity(64);
                    s.read_to_end(&mut back)
                        .map_err(|e| format!("cps read: {e}"))?;
                    if back[..] != msg[..] {
                        return Err(format!("cps: echo differs ({} bytes)", back.len()));
                    }
                    n += 1;
                }
                Ok(n)
            })
        })
        .collect();
    let n: u64 = join(hs)?.iter().sum();
    Ok(n as f64 / t0.elapsed().as_secs_f64())
}

/// The Linux echo server: blocking std sockets, one thread per connection
/// (`io::copy` both ways is a read/write loop on the kernel socket).
struct LinuxEcho {
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
    ns: String,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LinuxEcho {
    fn start(ns: &str) -> LinuxEcho {
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let ns = ns.to_string();
        let (ns2, flag, acc) = (ns.clone(), stop.clone(), accepted.clone());
        let thread = std::thread::spawn(move || {
            netns::enter(&ns2);
            // Blocking accept (no polling delay); `drop` wakes it with a
            // connection of its own once `stop` is set.
            let l = TcpListener::bind(LINUX).expect("bind the Linux echo server");
            tx.send(()).unwrap();
            while !flag.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        acc.fetch_add(1, Ordering::Relaxed);
                        let _ = s.set_nodelay(true);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                        std::thread::spawn(move || {
                            let mut r = s;
                            let mut w = match r.try_clone() {
                                Ok(w) => w,
                                Err(_) => return,
                            };
                            let _ = std::io::copy(&mut r, &mut w);
                            let _ = w.shutdown(Shutdown::Write);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(1)),
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("Linux echo server did not start");
        LinuxEcho {
            stop,
            accepted,
            ns,
            thread: Some(thread),
        }
    }
}

impl Drop for LinuxEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let ns = self.ns.clone();
        let _ = std::thread::spawn(move || connect(&ns, LINUX).map(drop)).join();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// `xdptcp echo` in the stack's namespace, ready once the client connects.
fn start_xdptcp(h: &Harness, w: u32, stats: &str) -> Child {
    let cores = (0..w).map(|c| c.to_string()).collect::<Vec<_>>().join(",");
    let child = Command::new("ip")
        .args(["netns", "exec", &h.nss(), BIN, "echo", "--iface"])
        .arg(format!("{}=198.18.0.2/24", h.iface()))
        .args([
            "--queues",
            &w.to_string(),
            "--cores",
            &cores,
            "--duration",
            "180",
        ])
        .args(["--stats-json", stats])
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

/// Remove namespaces left by an earlier run that was killed (SIGINT skips
/// the harness's drop): `eb<pid>k`/`eb<pid>s` whose process is gone.
fn remove_stale() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for name in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let Some(pid) = name
            .strip_prefix("eb")
            .and_then(|r| r.strip_suffix('k'))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/harness.sh");
            let _ = Command::new("bash")
                .args([script, "--prefix", &format!("eb{pid}"), "down"])
                .status();
        }
    }
}

struct Row {
    workers: u32,
    metric: &'static str,
    unit: &'static str,
    xdptcp: f64,
    linux: f64,
}

fn main() {
    // `cargo bench` passes `--bench`; a filter word selects nothing here.
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout)
        .unwrap_or_default();
    if String::from_utf8_lossy(&uid).trim() != "0" {
        eprintln!("echo_vs_linux: SKIP: needs root (network namespaces, AF_XDP)");
        return;
    }
    remove_stale();
    let secs: f64 = env_or("BENCH_SECS", 3.0);
    let conns: u64 = env_or("BENCH_CONNS", 4);
    let workers: Vec<u32> = std::env::var("BENCH_WORKERS")
        .unwrap_or_else(|_| "1,2".into())
        .split(',')
        .filter_map(|w| w.trim().parse().ok())
        .collect();
    let out_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/target");
    let mut rows = Vec::new();
    let mut extra = serde_json::Map::new();
    for &w in &workers {
        eprintln!("== {w} worker(s): veth with {w} queue(s), {conns} connections, {secs} s per measurement");
        let h = Harness::up("eb", w, &[]);
        // The client's namespace only: connect() takes even ports first
        // and the client closes first (TIME_WAIT), so the default range
        // caps a run at ~14k short connections; widen it and let TIME_WAIT
        // ports be reused after 1 s (timestamps) so that `cps` measures
        // the servers, not the client's port space.
        for kv in [
            "net.ipv4.ip_local_port_range=1024 65535",
            "net.ipv4.tcp_tw_reuse=1",
        ] {
            let _ = Command::new("ip")
                .args(["netns", "exec", &h.nsk(), "sysctl", "-qw", kv])
                .status();
        }
        let linux = LinuxEcho::start(&h.nss());
        let stats = format!("{out_dir}/bench-echo-xdptcp-w{w}.json");
        let child = start_xdptcp(&h, w, &stats);
        let nsk = h.nsk();
        type Meas = fn(&str, &'static str, u64, f64) -> Result<f64, String>;
        let metrics: [(&str, &str, Meas, u64); 3] = [
            ("bulk echo", "Mbit/s", bulk, conns),
            ("64 B request/response", "req/s", rr, conns),
            ("short connections", "conn/s", cps, 4),
        ];
        let mut failed = None;
        for (metric, unit, f, n) in metrics {
            let l = f(&nsk, LINUX, n, secs);
            let x = f(&nsk, STACK, n, secs);
            match (l, x) {
                (Ok(linux), Ok(xdptcp)) => {
                    eprintln!(
                        "   {metric:<24} xdptcp {xdptcp:>10.0} {unit:<7} linux {linux:>10.0}  ratio {:.2}",
                        xdptcp / linux
                    );
                    rows.push(Row {
                        workers: w,
                        metric,
                        unit,
                        xdptcp,
                        linux,
                    });
                }
                (l, x) => {
                    failed = Some(format!(
                        "{metric}: linux {:?} xdptcp {:?}",
                        l.err(),
                        x.err()
                    ));
                    break;
                }
            }
        }
        let (_, err) = netns::stop(child);
        eprintln!(
            "   linux accepted {} connections",
            linux.accepted.load(Ordering::Relaxed)
        );
        drop(linux);
        for line in err
            .lines()
            .filter(|l| l.contains("worker") || l.contains("redirected"))
        {
            eprintln!("   {line}");
        }
        if let Ok(s) = std::fs::read_to_string(&stats) {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(&s) {
                extra.insert(format!("xdptcp_report_w{w}"), v);
            }
        }
        drop(h);
        if let Some(f) = failed {
            eprintln!("echo_vs_linux: FAILED: {f}");
            std::process::exit(1);
        }
    }
    println!();
    println!(
        "{:<8} {:<24} {:>12} {:>12} {:>7}  unit",
        "workers", "metric", "xdptcp", "linux", "ratio"
    );
    for r in &rows {
        println!(
            "{:<8} {:<24} {:>12.0} {:>12.0} {:>7.2}  {}",
            r.workers,
            r.metric,
            r.xdptcp,
            r.linux,
            r.xdptcp / r.linux,
            r.unit
        );
    }
    let json = serde_json::json!({
        "secs_per_measurement": secs,
        "conns": conns,
        "linux_server": "Rust std, blocking sockets, one thread per connection",
        "results": rows.iter().map(|r| serde_json::json!({
            "workers": r.workers, "metric": r.metric, "unit": r.unit,
            "xdptcp": r.xdptcp, "linux": r.linux, "ratio": r.xdptcp / r.linux,
        })).collect::<Vec<_>>(),
        "xdptcp_reports": extra,
    });
    let path = format!("{out_dir}/bench-echo.json");
    match std::fs::write(
        &path,
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    ) {
        Ok(()) => println!("\nwritten to {path}"),
        Err(e) => eprintln!("echo_vs_linux: {path}: {e}"),
    }
}
