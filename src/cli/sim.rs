//! `xdptcp sim`: a verified bulk transfer over a simulated link.

use super::args::{parse_ms, parse_prob, parse_rate, parse_size};
use super::EXIT_USAGE;
use clap::{Args, ValueEnum};
use core::time::Duration;
use xdptcp::io::mem::scenario::{self, BulkParams, BulkReport};
use xdptcp::io::mem::{Limits, LinkConfig};
use xdptcp::tcp::CcKind;

/// Most connections one run may open.
pub const MAX_CONNS: u32 = 1024;
/// Smallest MTU every IPv4 host must accept (RFC 791).
pub const MIN_MTU: usize = 576;
pub const MAX_MTU: usize = 9000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Cc {
    Cubic,
    Newreno,
}

#[derive(Args, Debug, Clone)]
pub struct SimArgs {
    /// Bytes per connection, client to server (suffixes K, M, G).
    #[arg(long, default_value = "1M", value_parser = parse_size)]
    pub bytes: u64,
    /// Connections, opened at once.
    #[arg(long, default_value_t = 1)]
    pub conns: u32,
    /// Also send --bytes per connection from server to client.
    #[arg(long)]
    pub bidir: bool,
    /// Loss probability per packet and direction.
    #[arg(long, default_value = "0", value_parser = parse_prob, value_name = "P")]
    pub loss: f64,
    /// Probability that a packet is held back and overtaken.
    #[arg(long, default_value = "0", value_parser = parse_prob, value_name = "P")]
    pub reorder: f64,
    /// Probability that a packet is duplicated.
    #[arg(long, default_value = "0", value_parser = parse_prob, value_name = "P")]
    pub dup: f64,
    /// Probability that a byte of a packet is flipped.
    #[arg(long, default_value = "0", value_parser = parse_prob, value_name = "P")]
    pub corrupt: f64,
    /// One-way propagation delay, ms.
    #[arg(long, default_value = "1", value_parser = parse_ms, value_name = "D")]
    pub delay_ms: f64,
    /// Extra random one-way delay in [0, J] ms (does not reorder).
    #[arg(long, default_value = "0", value_parser = parse_ms, value_name = "J")]
    pub jitter_ms: f64,
    /// Probability that an ECN-capable packet is marked CE (RFC 3168).
    #[arg(long, default_value = "0", value_parser = parse_prob, value_name = "P")]
    pub ce: f64,
    /// Mark ECN-capable packets CE while at least N packets are queued.
    #[arg(long, value_name = "N")]
    pub ce_queue: Option<usize>,
    /// Largest extra delay of a reordered packet, ms.
    #[arg(long, default_value = "1", value_parser = parse_ms, value_name = "MS")]
    pub reorder_ms: f64,
    /// Link rate per direction, Mbit/s.
    #[arg(long, default_value = "1000", value_parser = parse_rate, value_name = "R")]
    pub rate_mbps: f64,
    /// Link MTU (IP packet bytes), 576 to 9000.
    #[arg(long, default_value_t = 1500, value_name = "M")]
    pub mtu: usize,
    /// Packets the link queue holds before tail drop (default: about two
    /// bandwidth-delay products, at least 100).
    #[arg(long, value_name = "N")]
    pub queue: Option<usize>,
    /// Congestion control.
    #[arg(long, value_enum, default_value = "cubic")]
    pub cc: Cc,
    /// Do not negotiate SACK.
    #[arg(long)]
    pub no_sack: bool,
    /// Do not negotiate timestamps.
    #[arg(long)]
    pub no_timestamps: bool,
    /// Seed of every random choice (same seed, same run).
    #[arg(long, default_value_t = 1, value_name = "S")]
    pub seed: u64,
    /// Give up after this much virtual time, s.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    pub time_limit: u64,
    /// Print every packet sent, dropped and delivered to stderr.
    #[arg(long)]
    pub trace: bool,
    /// Print one JSON object instead of a summary.
    #[arg(long)]
    pub json: bool,
}

fn ms(v: f64) -> Duration {
    Duration::from_micros((v * 1000.0).round() as u64)
}

impl SimArgs {
    /// Checks clap cannot express; the message says what to do.
    pub fn validate(&self) -> Result<(), String> {
        if self.conns == 0 || self.conns > MAX_CONNS {
            return Err(format!(
                "--conns must be between 1 and {MAX_CONNS} (got {})",
                self.conns
            ));
        }
        if !(MIN_MTU..=MAX_MTU).contains(&self.mtu) {
            return Err(format!(
                "--mtu must be between {MIN_MTU} and {MAX_MTU} (got {})",
                self.mtu
            ));
        }
        if self.queue == Some(0) {
            return Err("--queue must be at least 1 packet".into());
        }
        if self.time_limit == 0 || self.time_limit > 86_400 {
            return Err("--time-limit must be between 1 and 86400 seconds".into());
        }
        Ok(())
    }

    pub fn params(&self) -> BulkParams {
        let rate_bps = Some((self.rate_mbps * 1e6).round() as u64);
        let delay = ms(self.delay_ms);
        BulkParams {
            bytes: self.bytes,
            conns: self.conns,
            bidir: self.bidir,
            link: LinkConfig {
                rate_bps,
                delay,
                jitter: ms(self.jitter_ms),
                loss: self.loss,
                reorder: self.reorder,
                reorder_delay: ms(self.reorder_ms),
                duplicate: self.dup,
                corrupt: self.corrupt,
                mtu: self.mtu,
                queue_limit: self
                    .queue
                    .unwrap_or_else(|| scenario::default_queue(rate_bps, delay)),
                ce_mark: self.ce,
                ce_queue: self.ce_queue,
            },
            cc: match self.cc {
                Cc::Cubic => CcKind::Cubic,
                Cc::Newreno => CcKind::NewReno,
            },
            sack: !self.no_sack,
            timestamps: !self.no_timestamps,
            seed: self.seed,
            trace: self.trace,
            limits: Limits {
                time: Duration::from_secs(self.time_limit),
                ..Limits::default()
            },
            ..BulkParams::default()
        }
    }
}

fn pct(p: f64) -> String {
    format!("{}%", (p * 1e4).round() / 1e2)
}

fn summary(a: &SimArgs, p: &BulkParams, r: &BulkReport) -> String {
    let l = &r.link;
    let mut s = format!(
        "{} conn(s) x {} bytes{} over {} Mbit/s, {} ms one-way (jitter {} ms), mtu {}, queue {}; \
         loss {}, reorder {}, dup {}, corrupt {}; {:?}, sack {}, timestamps {}; seed {}\n",
        r.conns,
        r.bytes_per_conn,
        if r.bidir { " each way" } else { "" },
        a.rate_mbps,
        a.delay_ms,
        a.jitter_ms,
        a.mtu,
        p.link.queue_limit,
        pct(a.loss),
        pct(a.reorder),
        pct(a.dup),
        pct(a.corrupt),
        p.cc,
        if p.sack { "on" } else { "off" },
        if p.timestamps { "on" } else { "off" },
        r.seed
    );
    s += &format!(
        "{}: {} bytes verified in {:.3} ms of virtual time = {:.2} Mbit/s goodput\n",
        if r.intact { "INTACT" } else { "FAILED" },
        r.bytes,
        r.virtual_ms,
        r.goodput_mbps
    );
    if let (Some(lo), Some(med), Some(hi)) = (
        r.completion_ms_min,
        r.completion_ms_median,
        r.completion_ms_max,
    ) {
        s += &format!("completion: min {lo:.3} ms, median {med:.3} ms, max {hi:.3} ms\n");
    }
    s += &format!(
        "tcp: {} retransmits, {} RTO timeouts, {} fast recoveries, {} corrupt dropped by checksum\n",
        r.retransmits, r.rto_timeouts, r.fast_recoveries, r.dropped_corrupt
    );
    s += &format!(
        "link: {} packets, {} lost, {} queue drops, {} mtu drops, {} reordered, {} duplicated, {} corrupted, {} CE-marked\n",
        l.tx_packets,
        l.dropped_loss,
        l.dropped_queue,
        l.dropped_mtu,
        l.reordered,
        l.duplicated,
        l.corrupted,
        l.ce_marked
    );
    if let Some(e) = &r.error {
        s += &format!("error: {e}\n");
    }
    s
}

/// Run `xdptcp sim`; returns the exit code.
pub fn run(a: SimArgs) -> i32 {
    if let Err(e) = a.validate() {
        eprintln!("xdptcp sim: {e}");
        return EXIT_USAGE;
    }
    let p = a.params();
    let wall = std::time::Instant::now();
    let r = scenario::run_bulk(&p);
    let elapsed = wall.elapsed();
    if a.json {
        match serde_json::to_string(&r) {
            Ok(j) => println!("{j}"),
            Err(e) => {
                eprintln!("xdptcp sim: cannot encode the report: {e}");
                return 1;
            }
        }
    } else {
        print!("{}", summary(&a, &p, &r));
    }
    eprintln!(
        "xdptcp sim: {} driver iterations in {:.3} s of wall time",
        r.iterations,
        elapsed.as_secs_f64()
    );
    if let Some(e) = &r.error {
        eprintln!("xdptcp sim: transfer failed: {e}");
    }
    if r.intact {
        0
    } else {
        1
    }
}
