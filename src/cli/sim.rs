//! `xdptcp sim`: a verified bulk transfer over a simulated link.

use super::args::{
    parse_ms, parse_pace, parse_path, parse_path_down, parse_prob, parse_rate, parse_scheduler,
    parse_size, parse_size_range,
};
use super::EXIT_USAGE;
use clap::{Args, ValueEnum};
use core::time::Duration;
use xdptcp::apps::bulk::{RrConfig, Workload};
use xdptcp::io::mem::bottleneck;
use xdptcp::io::mem::scenario::{self, BulkParams, BulkReport};
use xdptcp::io::mem::{Limits, LinkConfig};
use xdptcp::mptcp::sched::SchedKind;
use xdptcp::tcp::CcKind;

/// Most connections one run may open.
pub const MAX_CONNS: u32 = 1024;
/// Smallest MTU every IPv4 host must accept (RFC 791).
pub const MIN_MTU: usize = 576;
pub const MAX_MTU: usize = 9000;
/// Most paths between the two simulated hosts.
pub const MAX_PATHS: usize = 8;

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
    /// Bytes per connection from server to client with --bidir (default:
    /// --bytes); fewer than --bytes makes the server close first.
    #[arg(long, value_parser = parse_size, value_name = "N")]
    pub reverse_bytes: Option<u64>,
    /// Request/response instead of bulk: N requests per connection, each
    /// answered before the next is sent (sizes from --req-size, --resp-size).
    #[arg(long, value_name = "N")]
    pub requests: Option<u32>,
    /// Request sizes with --requests, a range LOW-HIGH.
    #[arg(long, default_value = "1-1K", value_parser = parse_size_range, value_name = "A-B")]
    pub req_size: (u64, u64),
    /// Response sizes with --requests, a range LOW-HIGH.
    #[arg(long, default_value = "1-16K", value_parser = parse_size_range, value_name = "A-B")]
    pub resp_size: (u64, u64),
    /// Size of each application write, a range LOW-HIGH (e.g. 1-100 for
    /// many small writes); at most 16K.
    #[arg(long, value_parser = parse_size_range, value_name = "A-B")]
    pub write_size: Option<(u64, u64)>,
    /// A slow server: it reads BYTES per connection every MS milliseconds
    /// (zero windows and persist probes with a small --rcv-buf).
    #[arg(long, value_parser = parse_pace, value_name = "BYTES/MS")]
    pub read_pace: Option<(u64, f64)>,
    /// The client aborts every odd-numbered connection after sending this
    /// many bytes (implies --keepalive 10 unless given).
    #[arg(long, value_parser = parse_size, value_name = "N")]
    pub abort_after: Option<u64>,
    /// The client writes as soon as it connects, during the handshake.
    #[arg(long)]
    pub write_early: bool,
    /// Send buffer per connection at first (default 64K, less when the
    /// frame pool is small).
    #[arg(long, value_parser = parse_size, value_name = "N")]
    pub snd_buf: Option<u64>,
    /// Send-buffer autotuning up to N payload bytes (toward twice the
    /// congestion window; default 16M within the connection's share of
    /// the frame pool; at or below --snd-buf: off).
    #[arg(long, value_parser = parse_size, value_name = "N")]
    pub snd_buf_max: Option<u64>,
    /// Receive buffer per connection (default: sized to the frame pool).
    #[arg(long, value_parser = parse_size, value_name = "N")]
    pub rcv_buf: Option<u64>,
    /// Receive-buffer autotuning up to N bytes of frame memory (default
    /// 16M; at or below --rcv-buf: off).
    #[arg(long, value_parser = parse_size, value_name = "N")]
    pub rcv_buf_max: Option<u64>,
    /// The server answers every SYN with a SYN cookie (RFC 4987).
    #[arg(long)]
    pub syn_cookies: bool,
    /// Do not negotiate ECN.
    #[arg(long)]
    pub no_ecn: bool,
    /// MPTCP v1 (RFC 8684) on both stacks: MP_CAPABLE, DSS mappings,
    /// DATA_FIN, one subflow.
    #[arg(long)]
    pub mptcp: bool,
    /// MPTCP on the client only (the server answers plain TCP: fallback).
    #[arg(long, conflicts_with = "mptcp")]
    pub mptcp_client_only: bool,
    /// Ask for the MPTCP DSS checksum (RFC 8684 §3.3.1).
    #[arg(long)]
    pub mptcp_checksum: bool,
    /// Congestion control across a connection's subflows (see `echo`).
    #[arg(long, requires = "mptcp", value_enum, default_value = "uncoupled")]
    pub mptcp_cc: super::args::MptcpCcArg,
    /// Which subflow sends the next chunk (see `echo`): minrtt,
    /// roundrobin or redundant.
    #[arg(long, requires = "mptcp", default_value = "minrtt", value_parser = parse_scheduler)]
    pub scheduler: SchedKind,
    /// Paths between the two hosts (MPTCP subflows): each one more
    /// interface per host, shaped like the link flags say (see --path).
    #[arg(long, value_name = "N")]
    pub paths: Option<usize>,
    /// One more path, shaped RATE,DELAY[,LOSS] (Mbit/s, one-way ms, loss
    /// probability); repeat for more. Path 1 is the link of the other flags.
    #[arg(long = "path", value_parser = parse_path, value_name = "R,D[,L]")]
    pub path: Vec<(f64, f64, f64)>,
    /// Path PATH goes down for good at MS ms of virtual time (PATH@MS).
    #[arg(long, value_parser = parse_path_down, value_name = "PATH@MS")]
    pub path_down: Option<(usize, u64)>,
    /// The server's addresses over several paths: one (198.18.0.2 on
    /// every path) or per-path (198.18.p.2 on path p, announced with
    /// ADD_ADDR; a path going down withdraws its address, REMOVE_ADDR).
    #[arg(long, value_enum, default_value = "one", value_name = "HOW")]
    pub server_addrs: super::args::ServerAddrsArg,
    /// Instead of a transfer: an MPTCP connection over two paths that
    /// share one bottleneck (shaped by the link flags) against one plain
    /// TCP flow through it, both sending for SECS of virtual time; each
    /// one's goodput over the last four fifths (RFC 6356 §2).
    #[arg(long, value_name = "SECS")]
    pub shared_bottleneck: Option<u64>,
    /// TCP keepalive after this many idle seconds (then every fifth of it,
    /// 9 probes).
    #[arg(long, value_name = "SECS")]
    pub keepalive: Option<u64>,
    /// At this virtual time (ms) the server's MAC changes without a
    /// gratuitous ARP; the client must find it again (neighbour
    /// unreachability detection).
    #[arg(long, value_name = "MS")]
    pub mac_change_ms: Option<u64>,
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
        if self.mptcp_checksum && !self.mptcp && !self.mptcp_client_only {
            return Err("--mptcp-checksum needs --mptcp (or --mptcp-client-only)".into());
        }
        if self.queue == Some(0) {
            return Err("--queue must be at least 1 packet".into());
        }
        if self.time_limit == 0 || self.time_limit > 86_400 {
            return Err("--time-limit must be between 1 and 86400 seconds".into());
        }
        if self.requests.is_some_and(|n| n == 0 || n > 100_000) {
            return Err("--requests must be between 1 and 100000".into());
        }
        for (name, b) in [
            ("--snd-buf", self.snd_buf),
            ("--snd-buf-max", self.snd_buf_max),
            ("--rcv-buf", self.rcv_buf),
        ] {
            if b.is_some_and(|b| !(1024..=1 << 30).contains(&b)) {
                return Err(format!("{name} must be between 1K and 1G"));
            }
        }
        if self
            .write_size
            .is_some_and(|(lo, hi)| lo == 0 || hi > 16 * 1024)
        {
            return Err("--write-size must lie within 1-16K".into());
        }
        let paths = self.path_count();
        if self.paths.is_some() && !self.path.is_empty() {
            return Err("give either --paths N (equal paths) or --path for each extra path".into());
        }
        if paths == 0 || paths > MAX_PATHS {
            return Err(format!("--paths must be between 1 and {MAX_PATHS}"));
        }
        if paths > 1 && !self.mptcp {
            return Err("several paths need --mptcp (a plain TCP connection uses one)".into());
        }
        if let Some((p, _)) = self.path_down {
            if p > paths {
                return Err(format!(
                    "--path-down {p}@...: there are {paths} path(s), numbered from 1"
                ));
            }
        }
        if self.server_addrs == super::args::ServerAddrsArg::PerPath && paths < 2 {
            return Err("--server-addrs per-path needs several paths (--paths N or --path)".into());
        }
        if let Some(t) = self.shared_bottleneck {
            if !self.mptcp {
                return Err("--shared-bottleneck needs --mptcp".into());
            }
            if self.paths.is_some() || !self.path.is_empty() || self.path_down.is_some() {
                return Err(
                    "--shared-bottleneck makes its own two paths: drop --paths, --path, --path-down"
                        .into(),
                );
            }
            if !(5..=3600).contains(&t) {
                return Err("--shared-bottleneck must be between 5 and 3600 seconds".into());
            }
        }
        if self.keepalive.is_some_and(|k| k == 0 || k > 7200) {
            return Err("--keepalive must be between 1 and 7200 seconds".into());
        }
        Ok(())
    }

    /// Paths between the hosts, the link of the other flags included.
    fn path_count(&self) -> usize {
        self.paths.unwrap_or(1 + self.path.len())
    }

    /// The traffic shape of the run.
    fn workload(&self) -> Workload {
        let d = Workload::default();
        Workload {
            reverse_bytes: self.reverse_bytes,
            rr: self.requests.map(|requests| RrConfig {
                requests,
                req: self.req_size,
                resp: self.resp_size,
            }),
            write_size: self
                .write_size
                .map_or(d.write_size, |(a, b)| (a as usize, b as usize)),
            read_pace: self.read_pace.map(|(b, t)| (b as usize, ms(t))),
            abort_after: self.abort_after,
            early_write: self.write_early,
        }
    }

    pub fn params(&self) -> BulkParams {
        let rate_bps = Some((self.rate_mbps * 1e6).round() as u64);
        let delay = ms(self.delay_ms);
        let link = LinkConfig {
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
        };
        BulkParams {
            bytes: self.bytes,
            conns: self.conns,
            bidir: self.bidir,
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
            snd_buf: self.snd_buf.map(|b| b as usize),
            snd_buf_max: self.snd_buf_max.map(|b| b as usize),
            rcv_buf: self.rcv_buf.map(|b| b as usize),
            rcv_buf_max: self.rcv_buf_max.map(|b| b as usize),
            work: self.workload(),
            keepalive: self
                .keepalive
                .or(self.abort_after.map(|_| 10))
                .map(Duration::from_secs),
            syn_cookies: self.syn_cookies,
            ecn: !self.no_ecn,
            mptcp: [self.mptcp || self.mptcp_client_only, self.mptcp],
            mptcp_checksum: self.mptcp_checksum,
            mptcp_cc: self.mptcp_cc.into(),
            mptcp_scheduler: self.scheduler,
            mac_change_at: self.mac_change_ms.map(Duration::from_millis),
            extra_paths: self.extra_paths(&link),
            path_down: self
                .path_down
                .map(|(p, t)| (p - 1, Duration::from_millis(t))),
            server_addrs: self.server_addrs.into(),
            link,
            ..BulkParams::default()
        }
    }

    /// The paths after the first: copies of `link` with --paths, else one
    /// per --path with its own rate, delay and loss (and a queue of about
    /// two bandwidth-delay products unless --queue says otherwise).
    fn extra_paths(&self, link: &LinkConfig) -> Vec<LinkConfig> {
        if let Some(n) = self.paths {
            return vec![link.clone(); n.saturating_sub(1)];
        }
        self.path
            .iter()
            .map(|&(rate, delay, loss)| {
                let rate_bps = Some((rate * 1e6).round() as u64);
                let delay = ms(delay);
                LinkConfig {
                    rate_bps,
                    delay,
                    loss,
                    queue_limit: self
                        .queue
                        .unwrap_or_else(|| scenario::default_queue(rate_bps, delay)),
                    ..link.clone()
                }
            })
            .collect()
    }

    /// The `xdptcp sim` command line that reproduces this run (flags at
    /// their defaults left out).
    pub fn command_line(&self) -> String {
        let mut c = String::from("xdptcp sim");
        let mut flag = |name: &str, v: Option<String>| match v {
            Some(v) if v.is_empty() => c += &format!(" --{name}"),
            Some(v) => c += &format!(" --{name} {v}"),
            None => {}
        };
        let on = |b: bool| b.then(String::new);
        let num = |v: f64, d: f64| (v != d).then(|| format!("{v}"));
        let range = |(a, b): (u64, u64)| format!("{a}-{b}");
        flag("bytes", Some(self.bytes.to_string()));
        flag("conns", (self.conns != 1).then(|| self.conns.to_string()));
        flag("bidir", on(self.bidir));
        flag("reverse-bytes", self.reverse_bytes.map(|b| b.to_string()));
        flag("requests", self.requests.map(|n| n.to_string()));
        if self.requests.is_some() {
            flag("req-size", Some(range(self.req_size)));
            flag("resp-size", Some(range(self.resp_size)));
        }
        flag("write-size", self.write_size.map(range));
        flag("read-pace", self.read_pace.map(|(b, t)| format!("{b}/{t}")));
        flag("abort-after", self.abort_after.map(|b| b.to_string()));
        flag("write-early", on(self.write_early));
        flag("loss", num(self.loss, 0.0));
        flag("reorder", num(self.reorder, 0.0));
        flag("reorder-ms", num(self.reorder_ms, 1.0));
        flag("dup", num(self.dup, 0.0));
        flag("corrupt", num(self.corrupt, 0.0));
        flag("ce", num(self.ce, 0.0));
        flag("ce-queue", self.ce_queue.map(|n| n.to_string()));
        flag("delay-ms", num(self.delay_ms, 1.0));
        flag("jitter-ms", num(self.jitter_ms, 0.0));
        flag("rate-mbps", num(self.rate_mbps, 1000.0));
        flag("mtu", (self.mtu != 1500).then(|| self.mtu.to_string()));
        flag("queue", self.queue.map(|n| n.to_string()));
        flag("cc", (self.cc != Cc::Cubic).then(|| "newreno".into()));
        flag("no-sack", on(self.no_sack));
        flag("no-timestamps", on(self.no_timestamps));
        flag("no-ecn", on(self.no_ecn));
        flag("mptcp", on(self.mptcp));
        flag("mptcp-client-only", on(self.mptcp_client_only));
        flag("mptcp-checksum", on(self.mptcp_checksum));
        flag(
            "mptcp-cc",
            (self.mptcp_cc == super::args::MptcpCcArg::Lia).then(|| "lia".into()),
        );
        flag(
            "scheduler",
            (self.scheduler != SchedKind::MinRtt).then(|| self.scheduler.to_string()),
        );
        flag("snd-buf", self.snd_buf.map(|b| b.to_string()));
        flag("snd-buf-max", self.snd_buf_max.map(|b| b.to_string()));
        flag("rcv-buf", self.rcv_buf.map(|b| b.to_string()));
        flag("rcv-buf-max", self.rcv_buf_max.map(|b| b.to_string()));
        flag("syn-cookies", on(self.syn_cookies));
        flag("keepalive", self.keepalive.map(|k| k.to_string()));
        flag("mac-change-ms", self.mac_change_ms.map(|t| t.to_string()));
        flag("paths", self.paths.map(|n| n.to_string()));
        for &(r, d, l) in &self.path {
            flag("path", Some(format!("{r},{d},{l}")));
        }
        flag("path-down", self.path_down.map(|(p, t)| format!("{p}@{t}")));
        flag(
            "server-addrs",
            (self.server_addrs == super::args::ServerAddrsArg::PerPath).then(|| "per-path".into()),
        );
        flag(
            "time-limit",
            (self.time_limit != 600).then(|| self.time_limit.to_string()),
        );
        flag("seed", Some(self.seed.to_string()));
        c
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
    if p.mptcp.iter().any(|&m| m) {
        let [c, sv] = &r.stacks;
        s += &format!(
            "mptcp: established {}/{} (client/server), fallbacks {}/{}, checksum failures {}, bad options {}\n",
            c.mptcp_established,
            sv.mptcp_established,
            c.mptcp_fallbacks,
            sv.mptcp_fallbacks,
            c.mptcp_checksum_failures + sv.mptcp_checksum_failures,
            c.mptcp_bad_options + sv.mptcp_bad_options,
        );
    }
    if let Some(a) = &r.addresses {
        s += &format!(
            "addresses: ADD_ADDR sent {}, received {} (bad HMAC {}); REMOVE_ADDR sent {}, received {}; join SYNs {} ({} to announced addresses), opened {}, accepted {}\n",
            a.add_addr_sent,
            a.add_addr_received,
            a.add_addr_bad_hmac,
            a.remove_addr_sent,
            a.remove_addr_received,
            a.join_syns,
            a.joins_to_announced,
            a.subflows_opened,
            a.joins_accepted,
        );
    }
    for (i, [c2s, s2c]) in r.paths.iter().enumerate() {
        let ms = r.virtual_ms.max(1e-3);
        s += &format!(
            "path {}: client->server {} bytes ({:.2} Mbit/s), server->client {} bytes, {} lost, {} lost while down\n",
            i + 1,
            c2s.tx_bytes,
            c2s.tx_bytes as f64 * 8.0 / (ms * 1000.0),
            s2c.tx_bytes,
            c2s.dropped_loss + s2c.dropped_loss,
            c2s.dropped_down + s2c.dropped_down,
        );
    }
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
    for c in r.connections.iter().filter(|c| !c.intact) {
        s += &format!(
            "connection {}: {} (client {}, server {}){}\n",
            c.index,
            c.outcome,
            c.client_close,
            c.server_close,
            c.error
                .as_ref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
    }
    for v in &r.violations {
        s += &format!("violation: {v}\n");
    }
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
    if let Some(secs) = a.shared_bottleneck {
        return run_shared(&a, secs);
    }
    let p = a.params();
    let wall = std::time::Instant::now();
    let r = scenario::run_bulk(&p);
    let elapsed = wall.elapsed();
    if a.json {
        if !print_json(&r) {
            return 1;
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

/// `xdptcp sim --shared-bottleneck SECS`: the MPTCP connection against a
/// plain TCP flow on one bottleneck; returns the exit code.
/// The report as one line of JSON; false (said on stderr) if it cannot be.
fn print_json(r: &impl serde::Serialize) -> bool {
    match serde_json::to_string(r) {
        Ok(j) => {
            println!("{j}");
            true
        }
        Err(e) => {
            eprintln!("xdptcp sim: cannot encode the report: {e}");
            false
        }
    }
}

fn run_shared(a: &SimArgs, secs: u64) -> i32 {
    let mut p = a.params();
    // Both send for the whole run.
    p.bytes = 1 << 50;
    let warmup = Duration::from_secs(secs) / 5;
    let r = bottleneck::run_shared_bottleneck(&p, warmup, Duration::from_secs(secs) - warmup);
    if a.json {
        if !print_json(&r) {
            return 1;
        }
    } else {
        let c = &r.mptcp_client;
        println!(
            "shared bottleneck {} Mbit/s, {} ms one-way; {:?}, MPTCP subflows {}",
            p.link
                .rate_bps
                .map_or("unlimited".into(), |b| format!("{}", b as f64 / 1e6)),
            p.link.delay.as_micros() as f64 / 1000.0,
            p.cc,
            match p.mptcp_cc {
                xdptcp::tcp::MptcpCc::Lia => "coupled (LIA)",
                xdptcp::tcp::MptcpCc::Uncoupled => "uncoupled",
            }
        );
        println!(
            "{:.1}-{:.1} s: MPTCP {:.2} Mbit/s (subflow bytes {} + {}), plain TCP {:.2} Mbit/s: MPTCP share {:.1} % (one flow's share: 50 %)",
            r.from_ms / 1000.0,
            r.to_ms / 1000.0,
            r.mptcp_mbps,
            c.mptcp_bytes_first,
            c.mptcp_bytes_joined,
            r.plain_mbps,
            r.mptcp_share * 100.0
        );
    }
    match &r.error {
        Some(e) => {
            eprintln!("xdptcp sim: {e}");
            1
        }
        None => 0,
    }
}
