//! `xdptcp swarm`: random simulator runs from one master seed, every
//! invariant checked on each, every failure printed as the one `xdptcp sim`
//! command line that reproduces it (swarm testing, as FoundationDB's
//! simulation and TigerBeetle's VOPR do it).
//!
//! Each run draws a whole mix: workload (bulk one or both ways,
//! request/response, small writes, slow reader, aborts), connections, sizes,
//! buffers, link impairments (loss, reordering, duplication, corruption,
//! jitter, CE marks), rate, delay, MTU, congestion control and the TCP
//! options. A run must finish with every invariant intact (see
//! `BulkReport::failure`); when loss is at most 10 % and the link holds a few
//! segments per connection, every connection must also complete as planned.

use super::sim::{Cc, SimArgs};
use super::EXIT_USAGE;
use clap::Args;
use rand::Rng;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};
use xdptcp::io::mem::scenario;
use xdptcp::mptcp::sched::SchedKind;

#[derive(Args, Debug, Clone)]
pub struct SwarmArgs {
    /// Master seed: run i uses a seed derived from it and i.
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Runs to do (the first N of this master seed).
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub runs: u64,
    /// Stop after this many wall-clock seconds even if runs remain.
    #[arg(long, value_name = "SECS")]
    pub budget: Option<u64>,
    /// Worker threads.
    #[arg(long, default_value_t = 1, value_name = "J")]
    pub jobs: usize,
    /// Stop after this many failures.
    #[arg(long, default_value_t = 20, value_name = "K")]
    pub max_failures: u64,
    /// Print a progress line every this many runs (0: never).
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub progress: u64,
    /// Print one JSON object at the end instead of a summary line.
    #[arg(long)]
    pub json: bool,
    /// Also draw MPTCP runs over a second path (a quarter of them), which
    /// dies mid-way in a third of those. Off by default (and in CI) until
    /// what it finds is fixed (README, MPTCP).
    #[arg(long)]
    pub multipath: bool,
}

/// One failed run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Failure {
    pub run: u64,
    pub command: String,
    pub reason: String,
}

/// What a campaign found.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Summary {
    pub master_seed: u64,
    pub runs: u64,
    /// Runs held to "every connection completes" (loss ≤ 10 %, room).
    pub strict_runs: u64,
    pub failures: u64,
    pub wall_s: f64,
    pub runs_per_s: f64,
    /// Connections and verified bytes over all runs.
    pub connections: u64,
    pub bytes: u64,
    /// Connections that ended aborted (planned or after heavy loss).
    pub aborted: u64,
    pub failed: Vec<Failure>,
}

fn log_uniform(r: &mut impl Rng, lo: f64, hi: f64) -> f64 {
    (r.gen_range(lo.ln()..=hi.ln())).exp()
}

/// Draw run `i` of master seed `master`.
pub fn draw(master: u64, i: u64, multipath: bool) -> SimArgs {
    let seed = xdptcp::io::mem::mix(master ^ xdptcp::io::mem::mix(i));
    let r = &mut xdptcp::io::mem::rng(seed);
    let chance = |r: &mut rand_pcg::Pcg64Mcg, pct: u32| r.gen_range(0..100) < pct;
    let conns: u32 = match r.gen_range(0..100) {
        0..30 => 1,
        30..70 => r.gen_range(2..=8),
        70..95 => r.gen_range(9..=32),
        _ => r.gen_range(33..=128),
    };
    // Mostly small runs (at most 128 KiB in all), one in twenty-five up
    // to 4 MiB: many quick mixes find more than a few long ones.
    let budget: u64 = if chance(r, 4) { 4 << 20 } else { 128 << 10 };
    let per_conn_max = (budget / conns as u64).max(64);
    let bytes = log_uniform(r, 64.0, per_conn_max.min(1 << 20) as f64) as u64;
    let prob = |r: &mut rand_pcg::Pcg64Mcg, pct: u32, max: f64| {
        if chance(r, pct) {
            (r.gen_range(0.0..=max) * 1e4f64).round() / 1e4
        } else {
            0.0
        }
    };
    let loss = match r.gen_range(0..100) {
        0..15 => 0.0,
        15..85 => (r.gen_range(0.0..=0.10f64) * 1e4).round() / 1e4,
        _ => (r.gen_range(0.10..=0.20f64) * 1e4).round() / 1e4,
    };
    let mut a = SimArgs {
        bytes,
        conns,
        bidir: chance(r, 40),
        loss,
        reorder: prob(r, 30, 0.2),
        dup: prob(r, 20, 0.05),
        corrupt: prob(r, 20, 0.05),
        delay_ms: (log_uniform(r, 0.01, 100.0) * 1e3).round() / 1e3,
        jitter_ms: if chance(r, 30) {
            (r.gen_range(0.0..=5.0f64) * 1e3).round() / 1e3
        } else {
            0.0
        },
        ce: prob(r, 15, 0.05),
        ce_queue: chance(r, 10).then(|| r.gen_range(2..=50)),
        reorder_ms: (log_uniform(r, 0.1, 20.0) * 1e3).round() / 1e3,
        rate_mbps: log_uniform(r, 10.0, 1000.0).round(),
        mtu: match r.gen_range(0..6) {
            0 => 576,
            1 => 1280,
            2 => 1500,
            3 => 9000,
            _ => r.gen_range(576..=9000),
        },
        queue: None,
        cc: if chance(r, 50) {
            Cc::Cubic
        } else {
            Cc::Newreno
        },
        no_sack: chance(r, 20),
        no_timestamps: chance(r, 20),
        reverse_bytes: None,
        requests: None,
        req_size: (1, 1024),
        resp_size: (1, 16 * 1024),
        write_size: None,
        read_pace: None,
        abort_after: None,
        write_early: false,
        snd_buf: None,
        snd_buf_max: None,
        rcv_buf: None,
        rcv_buf_max: None,
        syn_cookies: chance(r, 15),
        no_ecn: chance(r, 20),
        mptcp: false,
        mptcp_client_only: false,
        mptcp_checksum: false,
        mptcp_cc: super::args::MptcpCcArg::Uncoupled,
        scheduler: SchedKind::MinRtt,
        keepalive: None,
        mac_change_ms: None,
        paths: None,
        path: Vec::new(),
        path_down: None,
        server_addrs: super::args::ServerAddrsArg::One,
        shared_bottleneck: None,
        seed: r.gen(),
        time_limit: 3600,
        trace: false,
        json: false,
    };
    match r.gen_range(0..100) {
        // Request/response with random sizes.
        0..20 => {
            a.requests = Some(r.gen_range(1..=40));
            let q = r.gen_range(1..=4096);
            let p = r.gen_range(1..=64 * 1024);
            a.req_size = (r.gen_range(1..=q), q);
            a.resp_size = (r.gen_range(1..=p), p);
        }
        // Both ways, the server stopping first or last (half-close).
        20..35 => {
            a.bidir = true;
            a.reverse_bytes = Some(log_uniform(r, 1.0, per_conn_max.min(1 << 20) as f64) as u64);
        }
        _ => {}
    }
    if chance(r, 20) {
        let hi = r.gen_range(1..=1500);
        a.write_size = Some((r.gen_range(1..=hi), hi));
    }
    if chance(r, 10) {
        a.read_pace = Some((r.gen_range(256..=16 * 1024), r.gen_range(1..=20) as f64));
    }
    if chance(r, 10) && a.bytes > 1 {
        a.abort_after = Some(r.gen_range(0..a.bytes));
    }
    if chance(r, 15) {
        let kib = r.gen_range(4..=64);
        a.snd_buf = Some(kib * 1024);
        // Half of the small send buffers stay fixed (autotuning off), the
        // other half grow from there (decided by the draw itself, so the
        // mixes drawn after it are as before).
        if kib % 2 == 0 {
            a.snd_buf_max = a.snd_buf;
        }
    }
    if chance(r, 15) || a.read_pace.is_some() && chance(r, 50) {
        a.rcv_buf = Some(r.gen_range(4..=64) * 1024);
    }
    if chance(r, 10) {
        // Idle at least 10 s: keepalive then outlasts a neighbour's
        // re-resolution (a keepalive shorter than the path's outages
        // rightly kills connections).
        a.keepalive = Some(r.gen_range(10..=60));
    }
    if chance(r, 10) {
        // A short queue: 3 to 100 packets.
        a.queue = Some(r.gen_range(3..=100));
    }
    if chance(r, 5) {
        a.mac_change_ms = Some(r.gen_range(0..=2000));
    }
    if !must_complete(&a) && a.keepalive.is_none() {
        // Heavy loss can leave a server with a half-open connection whose
        // client gave up; as on a real server, keepalive clears it.
        a.keepalive = Some(r.gen_range(10..=60));
    }
    if !must_complete(&a) {
        // Heavy loss is slow: room to finish or time out.
        a.time_limit = 4 * 3600;
    }
    // Drawn last so the earlier draws of every run stay what they were:
    // MPTCP on both stacks (25 %) or on the client only (5 %: the server
    // answers plain TCP, a fallback), with the DSS checksum half the time.
    match r.gen_range(0..100) {
        0..25 => a.mptcp = true,
        25..30 => a.mptcp_client_only = true,
        _ => {}
    }
    if a.mptcp || a.mptcp_client_only {
        a.mptcp_checksum = chance(r, 50);
    }
    // MPTCP runs: coupled congestion control (RFC 6356) a third of the
    // time; with `--multipath`, a second path of its own shape in a
    // quarter, dying mid-way in a third of those.
    if a.mptcp {
        if chance(r, 33) {
            a.mptcp_cc = super::args::MptcpCcArg::Lia;
        }
        if multipath && chance(r, 25) {
            let rate = log_uniform(r, 10.0, 1000.0).round();
            let delay = (log_uniform(r, 0.01, 100.0) * 1e3).round() / 1e3;
            a.path = vec![(rate, delay, prob(r, 50, 0.05))];
            if chance(r, 33) {
                a.path_down = Some((2, r.gen_range(1..=2000)));
            }
            // The scheduler matters only with a second path: minrtt half
            // the time, roundrobin or redundant a quarter each.
            a.scheduler = match r.gen_range(0..4) {
                0 => SchedKind::RoundRobin,
                1 => SchedKind::Redundant,
                _ => SchedKind::MinRtt,
            };
        }
    }
    // With `--multipath`, a third of the MPTCP runs (either kind) write
    // during the handshake, before the connection-level queue exists
    // (RFC 8684 §3.3.8, `mptcp_tx_setup`). Drawn after everything else,
    // so every other parameter of every run stays what it was.
    if multipath && (a.mptcp || a.mptcp_client_only) && chance(r, 33) {
        a.write_early = true;
    }
    // With a second path, half the runs give the server an address per
    // path: announced with ADD_ADDR, joined, and withdrawn with
    // REMOVE_ADDR when its path dies (RFC 8684 §3.4). Drawn last, as
    // above.
    if !a.path.is_empty() && chance(r, 50) {
        a.server_addrs = super::args::ServerAddrsArg::PerPath;
    }
    a
}

/// Whether every connection of `a` must complete: loss (with corruption)
/// at most 10 % and a queue of at least a few segments per connection.
pub fn must_complete(a: &SimArgs) -> bool {
    let queue = a.queue.unwrap_or_else(|| {
        scenario::default_queue(
            Some((a.rate_mbps * 1e6) as u64),
            Duration::from_micros((a.delay_ms * 1e3) as u64),
        )
    });
    a.loss + a.corrupt <= 0.10 && queue >= 4 * a.conns as usize
}

/// Run `a` and judge it: `Err(reason)` if it broke a rule.
pub fn judge(a: &SimArgs) -> (Result<(), String>, scenario::BulkReport) {
    let r = scenario::run_bulk(&a.params());
    let verdict = match r.failure(must_complete(a)) {
        Some(e) => Err(e),
        None => Ok(()),
    };
    (verdict, r)
}

/// Run a campaign.
pub fn campaign(s: &SwarmArgs) -> Summary {
    let next = AtomicU64::new(0);
    let stop = AtomicBool::new(false);
    let out = Mutex::new(Summary {
        master_seed: s.seed,
        ..Summary::default()
    });
    let start = Instant::now();
    let deadline = s.budget.map(|b| start + Duration::from_secs(b));
    std::thread::scope(|sc| {
        for _ in 0..s.jobs.max(1) {
            sc.spawn(|| loop {
                if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
                    return;
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= s.runs {
                    return;
                }
                let a = draw(s.seed, i, s.multipath);
                let strict = must_complete(&a);
                let (verdict, r) = judge(&a);
                let mut o = out.lock().unwrap_or_else(|e| e.into_inner());
                o.runs += 1;
                o.strict_runs += strict as u64;
                o.connections += r.connections.len() as u64;
                o.bytes += r.bytes;
                o.aborted += r
                    .connections
                    .iter()
                    .filter(|c| c.outcome == "aborted")
                    .count() as u64;
                if let Err(reason) = verdict {
                    o.failures += 1;
                    let f = Failure {
                        run: i,
                        command: a.command_line(),
                        reason,
                    };
                    if !s.json {
                        eprintln!("FAIL run {i}: {}\n  {}", f.reason, f.command);
                    }
                    o.failed.push(f);
                    if o.failures >= s.max_failures {
                        stop.store(true, Ordering::Relaxed);
                    }
                }
                if s.progress > 0 && o.runs.is_multiple_of(s.progress) {
                    let t = start.elapsed().as_secs_f64();
                    eprintln!(
                        "swarm: {} runs, {} failures, {:.0} runs/s",
                        o.runs,
                        o.failures,
                        o.runs as f64 / t
                    );
                }
            });
        }
    });
    let mut o = out.into_inner().unwrap_or_else(|e| e.into_inner());
    o.failed.sort_by_key(|f| f.run);
    o.wall_s = start.elapsed().as_secs_f64();
    o.runs_per_s = o.runs as f64 / o.wall_s.max(1e-9);
    o
}

/// Run `xdptcp swarm`; returns the exit code.
pub fn run(s: SwarmArgs) -> i32 {
    if s.jobs == 0 || s.jobs > 256 {
        eprintln!("xdptcp swarm: --jobs must be between 1 and 256");
        return EXIT_USAGE;
    }
    if s.max_failures == 0 {
        eprintln!("xdptcp swarm: --max-failures must be at least 1");
        return EXIT_USAGE;
    }
    let o = campaign(&s);
    if s.json {
        match serde_json::to_string(&o) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("xdptcp swarm: cannot encode the summary: {e}");
                return 1;
            }
        }
    } else {
        println!(
            "swarm: master seed {}: {} runs ({} held to completion), {} connections, {} bytes verified, {} aborted as allowed; {} failures; {:.1} s, {:.0} runs/s",
            o.master_seed,
            o.runs,
            o.strict_runs,
            o.connections,
            o.bytes,
            o.aborted,
            o.failures,
            o.wall_s,
            o.runs_per_s
        );
    }
    if o.failures > 0 {
        1
    } else {
        0
    }
}
