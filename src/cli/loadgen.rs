//! `xdptcp loadgen`: the load generator on AF_XDP.

use crate::cli::datapath::{runtime_error, secs, DataPath};
use crate::cli::EXIT_USAGE;
use clap::Args;
use core::net::SocketAddrV4;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use xdptcp::apps::loadgen::proto::{Mode, Proto};
use xdptcp::apps::loadgen::stats::{self, Latency, Shared, Summary, ERROR_KINDS};
use xdptcp::apps::loadgen::{LoadApp, LoadConfig};
use xdptcp::runtime;

#[derive(Args, Debug)]
pub struct LoadgenArgs {
    /// The server: IPV4:PORT.
    #[arg(long)]
    pub target: SocketAddrV4,
    /// echo: --size bytes, wait for the echo; http: GET --path; bulk:
    /// one-way throughput (--reverse: receive); connect: a new connection
    /// per request (an HTTP GET with Connection: close).
    #[arg(long, value_parser = ["echo", "http", "bulk", "connect"])]
    pub mode: String,
    /// Concurrent connections (over all workers).
    #[arg(long, default_value_t = 16)]
    pub conns: usize,
    /// Seconds not recorded before the measurement.
    #[arg(long, default_value_t = 0.0)]
    pub warmup: f64,
    /// Echo request size, e.g. 64 or 4K.
    #[arg(long, default_value = "64", value_parser = crate::cli::args::parse_size)]
    pub size: u64,
    /// Requests outstanding per connection (closed loop).
    #[arg(long, default_value_t = 1)]
    pub pipeline: usize,
    /// Reset each connection after this many answered requests and open a
    /// new one (short connections; the first request's latency includes
    /// the handshake). Connect mode is HTTP with 1.
    #[arg(long, value_name = "N")]
    pub requests_per_conn: Option<u32>,
    /// HTTP path to GET.
    #[arg(long, default_value = "/")]
    pub path: String,
    /// Open loop: requests per second over all connections (latency
    /// corrected for coordinated omission).
    #[arg(long)]
    pub rate: Option<f64>,
    /// Bulk: receive from the target instead of sending.
    #[arg(long)]
    pub reverse: bool,
    /// Check every response (echo content, HTTP status, /bytes/N pattern).
    #[arg(long)]
    pub verify: bool,
    /// A request without an answer for this many seconds is an error.
    #[arg(long, default_value_t = 5.0)]
    pub timeout: f64,
    /// Print the result as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Write the latency distribution (HdrHistogram percentile format).
    #[arg(long)]
    pub hist: Option<PathBuf>,
    /// Write a latency-by-percentile plot (SVG).
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// Ask for MPTCP v1 (RFC 8684) on every connection (a server without
    /// it answers plain TCP). Connections open from the first --iface;
    /// the others are extra paths for the subflows.
    #[arg(long)]
    pub mptcp: bool,
    /// With --mptcp: extra subflows (MP_JOIN) per connection, full mesh
    /// from each --iface address to each address the server is known by
    /// (its own and those it announces), as `ip mptcp limits set subflow
    /// N`. 0 to 8; default: one per extra --iface, at least 1.
    #[arg(long, requires = "mptcp", value_parser = clap::value_parser!(u8).range(0..=8))]
    pub mptcp_subflows: Option<u8>,
    #[command(flatten)]
    pub sched: crate::cli::args::MptcpSchedArgs,
    #[command(flatten)]
    pub dp: DataPath,
}

fn usage(msg: &str) -> i32 {
    eprintln!("xdptcp: {msg}");
    EXIT_USAGE
}

pub fn run(a: LoadgenArgs) -> i32 {
    let mode = match a.mode.as_str() {
        "echo" => Mode::Echo,
        "http" => Mode::Http,
        "bulk" => Mode::Bulk,
        _ => Mode::Connect,
    };
    let mut dp = a.dp.clone();
    let duration = match secs("--duration", dp.duration.unwrap_or(10.0)) {
        Ok(d) => d,
        Err(e) => return usage(&e),
    };
    let warmup = if a.warmup == 0.0 {
        Duration::ZERO
    } else {
        match secs("--warmup", a.warmup) {
            Ok(d) => d,
            Err(e) => return usage(&e),
        }
    };
    let timeout = match secs("--timeout", a.timeout) {
        Ok(d) => d,
        Err(e) => return usage(&e),
    };
    if a.conns == 0 || a.conns > 1_000_000 {
        return usage("--conns must be 1..1000000");
    }
    if a.pipeline == 0 || a.pipeline > 1024 {
        return usage("--pipeline must be 1..1024");
    }
    if mode == Mode::Echo && (a.size == 0 || a.size > 1 << 30) {
        return usage("--size must be 1 byte to 1G");
    }
    let requests_per_conn = match (mode, a.requests_per_conn) {
        (Mode::Bulk, Some(_)) => {
            return usage("--requests-per-conn does not apply to --mode bulk")
        }
        (_, Some(0)) => return usage("--requests-per-conn must be at least 1"),
        (Mode::Connect, Some(n)) if n != 1 => {
            return usage(
                "--mode connect makes one request per connection; for more use --mode http --requests-per-conn N",
            )
        }
        (Mode::Connect, _) => Some(1),
        (_, n) => n,
    };
    if !a.path.starts_with('/') || a.path.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return usage("--path must start with / and hold no spaces or control characters");
    }
    if let Some(r) = a.rate {
        if !(r.is_finite() && r > 0.0 && r <= 1e9) {
            return usage("--rate must be a positive number of requests per second");
        }
        if mode == Mode::Bulk {
            return usage("--rate does not apply to --mode bulk");
        }
    }
    if a.target.port() == 0 {
        return usage("--target needs a port, e.g. 198.18.0.1:80");
    }
    dp.duration = Some((warmup + duration).as_secs_f64());
    let mut cfg = match dp.runtime_config() {
        Ok(c) => c,
        Err(code) => return code,
    };
    cfg.max_conns = cfg.max_conns.max(a.conns * 2 + 1024);
    cfg.ephemeral_ports = Some((1024, 65535));
    cfg.tcp.mptcp = a.mptcp;
    if a.mptcp {
        let extra = dp.ifaces.len().saturating_sub(1).clamp(1, 8) as u8;
        cfg.tcp.mptcp_max_subflows = a.mptcp_subflows.unwrap_or(extra);
    }
    a.sched.apply(&mut cfg.tcp);
    let mptcp = a.mptcp;
    let bytes_n = a
        .path
        .strip_prefix("/bytes/")
        .and_then(|n| n.parse::<u64>().ok());
    let host = a.target.ip().to_string();
    let proto = Proto {
        mode,
        size: a.size,
        request: Proto::http_request(&a.path, &host, mode == Mode::Connect),
        bytes_n,
        verify: a.verify,
        seed: 0x10ad,
    };
    let load = Arc::new(LoadConfig {
        proto,
        target: a.target,
        conns: a.conns,
        pipeline: if a.rate.is_some() { 1 } else { a.pipeline },
        rate: a.rate,
        warmup,
        timeout,
        reverse: a.reverse,
        requests_per_conn,
    });
    let shared = Arc::new(Shared::default());
    let done = Arc::new(AtomicBool::new(false));
    let target = a.target;
    let conns = a.conns;
    let ready = |ifaces: &[runtime::IfaceReport]| {
        for i in ifaces {
            eprintln!(
                "xdptcp: loadgen {} from {} {} to {target}: {} connections, {} queue(s), xdp {:?}",
                mode.name(),
                i.name,
                i.addr,
                conns,
                i.queues,
                i.xdp_mode
            );
        }
    };
    let progress = {
        let shared = shared.clone();
        let done = done.clone();
        std::thread::spawn(move || progress_loop(&shared, &done, warmup))
    };
    let make = {
        let load = load.clone();
        let shared = shared.clone();
        let idle = Arc::new(LoadConfig {
            conns: 0,
            ..(*load).clone()
        });
        move |ctx: runtime::WorkerCtx| {
            // With MPTCP the connections open from the first interface;
            // the others carry the subflows their path managers open.
            let cfg = if mptcp && ctx.iface > 0 {
                idle.clone()
            } else {
                load.clone()
            };
            LoadApp::new(cfg, shared.clone(), ctx.worker, ctx.workers).with_rss(ctx.rss)
        }
    };
    let result = runtime::run(&cfg, make, &ready);
    done.store(true, Ordering::Relaxed);
    let _ = progress.join();
    let report = match result {
        Ok(r) => r,
        Err(e) => return runtime_error(&e),
    };
    let code = dp.finish(&report);
    let secs = duration.as_secs_f64();
    let hist = shared
        .hist
        .lock()
        .map(|h| h.clone())
        .unwrap_or_else(|_| stats::new_hist());
    let requests = shared.requests.load(Ordering::Relaxed);
    let bytes = shared.bytes.load(Ordering::Relaxed);
    let mut by_kind = serde_json::Map::new();
    for (i, (_, name)) in ERROR_KINDS.iter().enumerate() {
        by_kind.insert(
            (*name).into(),
            shared.errors[i].load(Ordering::Relaxed).into(),
        );
    }
    let summary = Summary {
        mode: mode.name().into(),
        target: target.to_string(),
        requests,
        errors: shared.errors_total(),
        errors_by_kind: by_kind,
        rps: round1(requests as f64 / secs),
        bytes,
        throughput_mbps: round1(bytes as f64 * 8.0 / secs / 1e6),
        connections: conns as u64,
        connections_opened: shared.opened.load(Ordering::Relaxed),
        connections_peak: shared.peak.load(Ordering::Relaxed),
        duration_s: secs,
        rate: a.rate,
        latency_us: Latency::of(&hist),
    };
    if a.json {
        eprintln!("{}", summary.human());
        println!("{}", serde_json::to_string(&summary).unwrap_or_default());
    } else {
        println!("{}", summary.human());
    }
    let title = format!(
        "xdptcp loadgen {} to {}: {} connections{}",
        mode.name(),
        target,
        conns,
        a.rate
            .map(|r| format!(", {r:.0} req/s"))
            .unwrap_or_default()
    );
    for (path, text) in [
        (
            &a.hist,
            a.hist.as_ref().map(|_| stats::percentile_file(&hist)),
        ),
        (
            &a.plot,
            a.plot.as_ref().map(|_| stats::svg_plot(&hist, &title)),
        ),
    ] {
        if let (Some(p), Some(t)) = (path, text) {
            if let Err(e) = std::fs::write(p, t) {
                eprintln!("xdptcp: {}: {e}", p.display());
                return 1;
            }
        }
    }
    let ok = if mode == Mode::Bulk {
        bytes > 0
    } else {
        requests > 0
    };
    if !ok {
        eprintln!("xdptcp: loadgen: {}", failure_message(&summary));
        return 1;
    }
    code
}

fn round1(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// Why nothing succeeded, in one line.
fn failure_message(s: &Summary) -> String {
    let get = |k: &str| {
        s.errors_by_kind
            .get(k)
            .and_then(|v| v.as_u64())
            .unwrap_or(0)
    };
    let what = if s.mode == "bulk" {
        "no byte was transferred"
    } else {
        "no request succeeded"
    };
    if get("refused") > 0 {
        format!(
            "{what}: {} connection attempts refused (is a server listening on {}?)",
            get("refused"),
            s.target
        )
    } else if s.connections_opened == 0 {
        format!(
            "{what}: no connection to {} was established ({} handshakes timed out; check the address, the port and the route)",
            s.target,
            get("handshake")
        )
    } else if s.errors > 0 {
        format!(
            "{what}: {} errors ({})",
            s.errors,
            s.human().lines().nth(3).unwrap_or("").trim()
        )
    } else {
        format!("{what} within the run (is the duration long enough? see --timeout)")
    }
}

/// One line a second until `done`.
fn progress_loop(shared: &Shared, done: &AtomicBool, warmup: Duration) {
    let start = std::time::Instant::now();
    let mut last = (0u64, 0u64, 0u64);
    let mut next = start + Duration::from_secs(1);
    while !done.load(Ordering::Relaxed) {
        let now = std::time::Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        next += Duration::from_secs(1);
        let t = now - start;
        let req = shared.requests.load(Ordering::Relaxed);
        let bytes = shared.bytes.load(Ordering::Relaxed);
        let errs = shared.errors_total();
        let lat = shared
            .hist
            .lock()
            .map(|h| Latency::of(&h))
            .unwrap_or_default();
        let tag = if t < warmup { " (warmup)" } else { "" };
        eprintln!(
            "[{:>5.1}s] {:>10} req/s {:>10.1} Mbit/s  p50 {:>9}  p99 {:>9}  errors {:>6}  conns {}{tag}",
            t.as_secs_f64(),
            req - last.0,
            (bytes - last.1) as f64 * 8.0 / 1e6,
            stats::us(lat.p50),
            stats::us(lat.p99),
            errs - last.2,
            shared.connections.load(Ordering::Relaxed),
        );
        last = (req, bytes, errs);
    }
}
