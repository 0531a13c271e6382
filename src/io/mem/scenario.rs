//! The bulk-transfer experiment behind `xdptcp sim`: two stacks on one
//! impaired link, a [`BulkClient`] on A sending to a [`BulkServer`] on B,
//! every byte verified, and a report of what happened.

use super::audit::Auditor;
use super::device::{DeviceStats, SimDevice};
use super::frame::{FramePool, FRAME_SIZE};
use super::link::{LinkConfig, LinkStats, PathHop};
use super::net::{Limits, Network, Outcome};
use super::node::{HostNode, NoApp, StackNode};
use crate::apps::bulk::{self, BulkClient, BulkConfig, BulkServer, ConnReport, Workload};
use crate::io::HEADROOM;
use crate::stack::{Ipv4Cidr, Stack, StackConfig, StackCounters};
use crate::tcp::{CcKind, Config};
use crate::time::Instant;
use crate::wire::MacAddr;
use core::net::Ipv4Addr;
use core::time::Duration;
use std::cell::RefCell;
use std::rc::Rc;

/// Addresses of the simulated hosts (RFC 2544 benchmarking range).
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The port the bulk server listens on.
pub const BULK_PORT: u16 = 5001;

/// Everything that shapes a bulk-transfer run.
#[derive(Debug, Clone)]
pub struct BulkParams {
    /// Payload bytes per connection (client to server, and back with `bidir`).
    pub bytes: u64,
    pub conns: u32,
    pub bidir: bool,
    /// Both directions of the link.
    pub link: LinkConfig,
    pub cc: CcKind,
    pub sack: bool,
    pub timestamps: bool,
    pub seed: u64,
    pub limits: Limits,
    /// Limit of each stack's TX pool and of its RX pool, in frames.
    pub pool_frames: usize,
    /// Send buffer per connection at first; `None`: sized to the pool
    /// (see [`BulkParams::pool_frames`]).
    pub snd_buf: Option<usize>,
    /// Ceiling of send-buffer autotuning (`tcp::Config::snd_buf_max`);
    /// `None`: the default, within the connection's share of the pool.
    pub snd_buf_max: Option<usize>,
    /// Receive buffer per connection; `None`: sized to the pool.
    pub rcv_buf: Option<usize>,
    /// Ceiling of receive-buffer autotuning (`tcp::Config::rcv_buf_max`);
    /// `None`: the default.
    pub rcv_buf_max: Option<usize>,
    /// Our window-scale shift (`tcp::Config::window_scale`); `None`: from
    /// the receive ceiling.
    pub window_scale: Option<u8>,
    /// Print every packet event to stderr.
    pub trace: bool,
    /// The shape of the traffic (request/response, write sizes, slow
    /// reader, aborts).
    pub work: Workload,
    /// TCP keepalive idle time (interval a fifth of it, 3 probes).
    pub keepalive: Option<Duration>,
    /// The server answers every SYN with a SYN cookie (SYN backlog 0).
    pub syn_cookies: bool,
    /// Negotiate ECN (RFC 3168).
    pub ecn: bool,
    /// At this virtual time the server's MAC changes, with no gratuitous
    /// ARP (a replaced NIC, a failover): the client must find it again.
    pub mac_change_at: Option<Duration>,
    /// Virtual time allowed after the transfer for TIME-WAIT to run out,
    /// after which no connection may be left and every frame must be back.
    pub drain: Duration,
    /// A router with a smaller MTU on the path (the hosts keep the link's).
    pub path_hop: Option<PathHop>,
    /// At this virtual time the router leaves the path (the path MTU
    /// rises back to the link's): only probing can find that out.
    pub path_hop_until: Option<Duration>,
    /// `tcp::Config::pmtu_probe_interval` of both stacks (default 600 s).
    pub pmtu_probe_interval: Option<Duration>,
    /// MPTCP v1 (RFC 8684) on the client and on the server stack.
    pub mptcp: [bool; 2],
    /// Both ask for the DSS checksum.
    pub mptcp_checksum: bool,
    /// Coupled congestion control of the subflows (both stacks).
    pub mptcp_cc: crate::tcp::MptcpCc,
    /// Which subflow sends the next chunk (both stacks).
    pub mptcp_scheduler: crate::mptcp::sched::SchedKind,
    /// More paths between the two hosts, each a segment of its own with
    /// one more interface (and stack) on each host: path `p` (1-based
    /// here, 0 being `link`) joins 198.18.p.1 and 198.18.p.2.
    pub extra_paths: Vec<LinkConfig>,
    /// At this virtual time path `.0` (0 = `link`) goes down for good.
    pub path_down: Option<(usize, Duration)>,
    /// Where the server is reachable on the extra paths.
    pub server_addrs: ServerAddrs,
}

/// The server's addresses over several paths.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerAddrs {
    /// One address, 198.18.0.2, on every path (a multihomed server behind
    /// one address): the client joins it from each of its addresses, and
    /// there is nothing to announce.
    #[default]
    One,
    /// A distinct address per path, 198.18.p.2/24 on path `p` (0-based):
    /// the server announces the others with ADD_ADDR (RFC 8684 §3.4.1),
    /// the client joins each over its path, and an address whose path
    /// dies is withdrawn with REMOVE_ADDR (§3.4.2).
    PerPath,
}

impl Default for BulkParams {
    fn default() -> Self {
        BulkParams {
            bytes: 1 << 20,
            conns: 1,
            bidir: false,
            link: LinkConfig::default(),
            cc: CcKind::Cubic,
            sack: true,
            timestamps: true,
            seed: 1,
            limits: Limits::default(),
            pool_frames: 32 * 1024,
            snd_buf: None,
            snd_buf_max: None,
            rcv_buf: None,
            rcv_buf_max: None,
            window_scale: None,
            trace: false,
            work: Workload::default(),
            keepalive: None,
            syn_cookies: false,
            ecn: true,
            drain: Duration::from_secs(300),
            mac_change_at: None,
            path_hop: None,
            path_hop_until: None,
            pmtu_probe_interval: None,
            mptcp: [false; 2],
            mptcp_checksum: false,
            mptcp_cc: crate::tcp::MptcpCc::Uncoupled,
            mptcp_scheduler: crate::mptcp::sched::SchedKind::MinRtt,
            extra_paths: Vec::new(),
            path_down: None,
            server_addrs: ServerAddrs::One,
        }
    }
}

/// A queue of about two bandwidth-delay products (at least 100 packets),
/// a sensible default for a link of this rate and one-way delay.
pub fn default_queue(rate_bps: Option<u64>, delay: Duration) -> usize {
    let Some(rate) = rate_bps else { return 10_000 };
    let rtt_us = 2 * delay.as_micros() as u64;
    let bdp_bytes = rate / 8 * rtt_us / 1_000_000;
    ((2 * bdp_bytes / 1500) as usize).clamp(100, 100_000)
}

/// The settings of a run, as reported.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ParamsReport {
    pub rate_mbps: Option<f64>,
    pub delay_ms: f64,
    pub jitter_ms: f64,
    pub loss: f64,
    pub reorder: f64,
    pub reorder_ms: f64,
    pub dup: f64,
    pub corrupt: f64,
    pub ce: f64,
    pub ce_queue: Option<usize>,
    pub mtu: usize,
    pub queue: usize,
    pub cc: &'static str,
    pub sack: bool,
    pub timestamps: bool,
    pub snd_buf: usize,
    pub snd_buf_max: usize,
    pub rcv_buf: usize,
    pub pool_frames: usize,
    pub time_limit_s: f64,
    pub ecn: bool,
    pub syn_cookies: bool,
    pub keepalive_s: Option<f64>,
    pub mac_change_ms: Option<f64>,
    pub mptcp: [bool; 2],
    pub mptcp_checksum: bool,
    /// Rate, delay and loss of each path after the first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub extra_paths: Vec<(Option<f64>, f64, f64)>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path_down: Option<(usize, f64)>,
    pub server_addrs: ServerAddrs,
}

impl ParamsReport {
    fn new(p: &BulkParams) -> Self {
        let l = &p.link;
        let ms = |d: Duration| d.as_micros() as f64 / 1000.0;
        let tcp = tcp_config(p);
        ParamsReport {
            rate_mbps: l.rate_bps.map(|r| r as f64 / 1e6),
            delay_ms: ms(l.delay),
            jitter_ms: ms(l.jitter),
            loss: l.loss,
            reorder: l.reorder,
            reorder_ms: ms(l.reorder_delay),
            dup: l.duplicate,
            corrupt: l.corrupt,
            ce: l.ce_mark,
            ce_queue: l.ce_queue,
            mtu: l.mtu,
            queue: l.queue_limit,
            cc: match p.cc {
                CcKind::Cubic => "cubic",
                CcKind::NewReno => "newreno",
            },
            sack: p.sack,
            timestamps: p.timestamps,
            snd_buf: tcp.snd_buf,
            snd_buf_max: tcp.snd_buf_max,
            rcv_buf: tcp.rcv_buf,
            pool_frames: p.pool_frames,
            time_limit_s: p.limits.time.as_secs_f64(),
            ecn: p.ecn,
            syn_cookies: p.syn_cookies,
            keepalive_s: p.keepalive.map(|k| k.as_secs_f64()),
            mac_change_ms: p.mac_change_at.map(|t| t.as_secs_f64() * 1e3),
            mptcp: p.mptcp,
            mptcp_checksum: p.mptcp_checksum,
            extra_paths: p
                .extra_paths
                .iter()
                .map(|l| (l.rate_bps.map(|r| r as f64 / 1e6), ms(l.delay), l.loss))
                .collect(),
            path_down: p.path_down.map(|(i, t)| (i, ms(t))),
            server_addrs: p.server_addrs,
        }
    }
}

/// What a run found.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BulkReport {
    /// Every byte of every connection arrived in order, unaltered.
    pub intact: bool,
    /// How the run ended: finished, time-limit, iteration-limit, idle.
    pub outcome: String,
    /// Why the run failed, if it did.
    pub error: Option<String>,
    /// Payload bytes delivered and verified (both directions).
    pub bytes: u64,
    pub bytes_per_conn: u64,
    pub conns: u32,
    pub bidir: bool,
    pub seed: u64,
    pub virtual_ms: f64,
    /// Verified payload over virtual time, in Mbit/s.
    pub goodput_mbps: f64,
    /// Connection completion times (server had all data and FIN), ms.
    pub completion_ms_min: Option<f64>,
    pub completion_ms_median: Option<f64>,
    pub completion_ms_max: Option<f64>,
    /// Sums over both stacks.
    pub retransmits: u64,
    pub rto_timeouts: u64,
    pub fast_recoveries: u64,
    /// Corrupted packets the stacks caught by checksum.
    pub dropped_corrupt: u64,
    /// Corrupted packets rejected by any other check (bad length, version,
    /// MAC not ours, ...); with `dropped_corrupt`, at most `link.corrupted`
    /// plus their duplicates.
    pub dropped_malformed: u64,
    /// All link directions, summed; then each direction.
    pub link: LinkStats,
    pub link_c2s: LinkStats,
    pub link_s2c: LinkStats,
    /// With several paths: each path's two directions (client to server,
    /// server to client), path 0 first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<[LinkStats; 2]>,
    pub stacks: [StackCounters; 2],
    /// With several paths: address management (RFC 8684 §3.4) and joins,
    /// summed over each host's stacks.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub addresses: Option<AddrReport>,
    pub devices: [DeviceStats; 2],
    pub iterations: u64,
    pub params: ParamsReport,
    pub connections: Vec<ConnReport>,
    /// Broken invariants: the stacks' own checks after every poll, the wire
    /// auditor (MTU, ACKs of unsent data, window edge moving left), the
    /// counters of impossible events, and what the drain found.
    pub violations: Vec<String>,
    /// After the transfer: TIME-WAIT ran out, no connection was left and
    /// every frame was back in its pool.
    pub drained: bool,
}

/// Address management and joins of a run over several paths (RFC 8684
/// §3.2, §3.4), each host's stacks summed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AddrReport {
    /// ADD_ADDR the server sent (first transmissions) and the client
    /// accepted (HMAC verified).
    pub add_addr_sent: u64,
    pub add_addr_received: u64,
    pub add_addr_bad_hmac: u64,
    /// REMOVE_ADDR the server sent and the client received.
    pub remove_addr_sent: u64,
    pub remove_addr_received: u64,
    /// The client's join SYNs, those to an announced address, and the
    /// subflows they opened (fourth ACK).
    pub join_syns: u64,
    pub joins_to_announced: u64,
    pub subflows_opened: u64,
    /// Joins the server accepted.
    pub joins_accepted: u64,
}

impl AddrReport {
    fn new(client: &[StackCounters], server: &[StackCounters]) -> Self {
        let sum = |v: &[StackCounters], f: fn(&StackCounters) -> u64| v.iter().map(f).sum();
        AddrReport {
            add_addr_sent: sum(server, |c| c.mptcp_add_addr_sent),
            add_addr_received: sum(client, |c| c.mptcp_add_addr_received),
            add_addr_bad_hmac: sum(client, |c| c.mptcp_add_addr_bad_hmac),
            remove_addr_sent: sum(server, |c| c.mptcp_remove_addr_sent),
            remove_addr_received: sum(client, |c| c.mptcp_remove_addr_received),
            join_syns: sum(client, |c| c.mptcp_join_syns_sent),
            joins_to_announced: sum(client, |c| c.mptcp_joins_to_announced),
            subflows_opened: sum(client, |c| c.mptcp_subflows_opened),
            joins_accepted: sum(server, |c| c.mptcp_joins_accepted),
        }
    }
}

impl BulkReport {
    /// Why this run breaks the rules, if it does. With `must_complete`
    /// every connection must end as planned; without it (heavy loss, a
    /// tiny queue) a connection may also time out, as long as it ends,
    /// with a reason, and nothing arrives garbled.
    pub fn failure(&self, must_complete: bool) -> Option<String> {
        if let Some(v) = self.violations.first() {
            return Some(format!("invariant: {v}"));
        }
        if self.outcome != "finished" {
            return Some(self.error.clone().unwrap_or_else(|| self.outcome.clone()));
        }
        if must_complete {
            if let Some(c) = self.connections.iter().find(|c| !c.intact) {
                let e = c.error.as_deref().unwrap_or(&c.outcome);
                return Some(format!("connection {} did not complete: {e}", c.index));
            }
            return self.error.clone();
        }
        if let Some(c) = self
            .connections
            .iter()
            .find(|c| !c.intact && c.outcome != "aborted")
        {
            let e = c.error.as_deref().unwrap_or(&c.outcome);
            return Some(format!("connection {} {}: {e}", c.index, c.outcome));
        }
        None
    }
}

/// The MAC of simulated host `i` (0-based).
pub fn host_mac(i: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, 0, i + 1])
}

/// The address of simulated host `i` (0-based): 198.18.0.(i+1)/24.
pub fn host_ip(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, i + 1)
}

/// The MAC of simulated host `i`'s interface on path `path` (path 0:
/// [`host_mac`]).
pub fn path_mac(i: u8, path: u8) -> MacAddr {
    MacAddr([0x02, 0, 0, 0, path, i + 1])
}

/// The configuration of simulated host `i` on path `path` with TCP
/// settings `tcp`. Path 0 is [`host_config`]'s. On the others the client
/// (host 0) is 198.18.path.1/16 and the server (host 1) is reachable at
/// its one address, 198.18.0.2/16, on every path: a multihomed server
/// behind one address (as `tests/veth_mptcp.rs` sets up Linux), so the
/// client's path manager joins it from each of its addresses.
pub fn path_config(i: u8, path: u8, tcp: Config, seed: u64) -> StackConfig {
    let mut cfg = host_config(i, tcp, seed);
    if path == 0 {
        return cfg;
    }
    cfg.mac = path_mac(i, path);
    let addr = if i == 1 {
        host_ip(1)
    } else {
        Ipv4Addr::new(198, 18, path, i + 1)
    };
    cfg.addrs = vec![Ipv4Cidr { addr, prefix: 16 }];
    cfg
}

/// As [`path_config`], the server owning a distinct address per path
/// ([`ServerAddrs::PerPath`]): on path `path` the client is
/// 198.18.path.1/24 and the server 198.18.path.2/24 ([`path_server_ip`]),
/// so each of the client's interfaces reaches the server's address on
/// its own path only.
pub fn path_config_per_path(i: u8, path: u8, tcp: Config, seed: u64) -> StackConfig {
    let mut cfg = path_config(i, path, tcp, seed);
    let addr = Ipv4Addr::new(198, 18, path, i + 1);
    cfg.addrs = vec![Ipv4Cidr { addr, prefix: 24 }];
    cfg
}

/// The server's address on path `path` with [`ServerAddrs::PerPath`].
pub fn path_server_ip(path: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, path, 2)
}

/// The configuration of simulated host `i` with TCP settings `tcp`; the
/// secret (ISNs, SYN cookies) derives from `seed`.
pub fn host_config(i: u8, tcp: Config, seed: u64) -> StackConfig {
    let mut secret = [0u8; 16];
    secret[..8].copy_from_slice(&super::mix(seed ^ 0x5ec2e7).to_le_bytes());
    secret[8..].copy_from_slice(&super::mix(seed.wrapping_add(i as u64 + 1)).to_le_bytes());
    let addr = Ipv4Cidr {
        addr: host_ip(i),
        prefix: 24,
    };
    StackConfig {
        tcp,
        max_conns: 4096,
        arp_stale: Duration::from_secs(3600),
        arp_retries: 20,
        arp_queue: 1024,
        udp_queue: 64,
        ..StackConfig::new(host_mac(i), addr, secret)
    }
}

/// A stack for host `i` on `net`, with TX and RX pools of `pool_frames`
/// frames each, sized for `mtu`.
pub fn host_stack(
    net: &Network,
    i: u8,
    tcp: Config,
    seed: u64,
    mtu: usize,
    pool_frames: usize,
) -> Stack<SimDevice> {
    stack_on(net, host_config(i, tcp, seed), mtu, pool_frames)
}

/// A stack with configuration `cfg` on `net`, TX and RX pools of
/// `pool_frames` frames each.
pub fn stack_on(
    net: &Network,
    cfg: StackConfig,
    mtu: usize,
    pool_frames: usize,
) -> Stack<SimDevice> {
    let fs = net.wire().frame_size();
    let pools = (
        FramePool::new(fs, pool_frames),
        FramePool::new(fs, pool_frames),
    );
    stack_on_pools(net, cfg, mtu, pools)
}

/// A stack with configuration `cfg` on `net` whose device takes its
/// frames from `pools` (TX, RX): a host's interfaces share them as the
/// runtime's share one UMEM, so frames move between their stacks.
pub fn stack_on_pools(
    net: &Network,
    cfg: StackConfig,
    mtu: usize,
    pools: (FramePool, FramePool),
) -> Stack<SimDevice> {
    let dev = SimDevice::new(pools.0, pools.1, net.wire().clone(), mtu, 16 * 1024);
    Stack::new(cfg, dev, Instant::ZERO)
}

/// TCP settings of a run. Socket buffers are sized so that all connections
/// together fit in half of each pool (at most the defaults each; the send
/// buffer's autotuning ceiling too): a pool drained by send buffers would
/// starve connections of frames.
pub(super) fn tcp_config(p: &BulkParams) -> Config {
    let mss = (p.link.mtu.saturating_sub(40)).min(u16::MAX as usize);
    let share = p.pool_frames / 2 / (p.conns.max(1) as usize);
    let max = Config::default().rcv_buf;
    let snd = (share * mss).clamp(16 * 1024, Config::default().snd_buf_max);
    Config {
        mss: mss as u16,
        sack: p.sack,
        timestamps: p.timestamps,
        cc: p.cc,
        snd_buf: p.snd_buf.unwrap_or(snd.min(Config::default().snd_buf)),
        snd_buf_max: p.snd_buf_max.unwrap_or(snd),
        rcv_buf: p
            .rcv_buf
            .unwrap_or((share * frame_size(p.link.mtu)).clamp(32 * 1024, max)),
        rcv_buf_max: p.rcv_buf_max.unwrap_or(Config::default().rcv_buf_max),
        window_scale: p.window_scale,
        ecn: p.ecn,
        // As many SYN retransmissions as data ones: at 10 % loss each way
        // Linux's 6 lose one handshake in 100,000; a simulation that
        // checks every connection completes must not.
        syn_retries: Config::default().max_retries,
        keepalive: p.keepalive.map(|idle| crate::tcp::Keepalive {
            idle,
            interval: idle / 5,
            // Linux's tcp_keepalive_probes.
            probes: 9,
        }),
        pmtu_probe_interval: p
            .pmtu_probe_interval
            .unwrap_or(Config::default().pmtu_probe_interval),
        mptcp_scheduler: p.mptcp_scheduler,
        ..Config::default()
    }
}

/// Frame size for an MTU: the default 2048, or more for jumbo frames.
pub fn frame_size(mtu: usize) -> usize {
    (mtu + 14 + HEADROOM).next_multiple_of(1024).max(FRAME_SIZE)
}

/// What happens at a fixed virtual time of a run.
#[derive(Debug, Clone, Copy)]
enum Happening {
    /// The server's MAC changes (no gratuitous ARP).
    MacChange,
    /// The router with the smaller MTU leaves the path.
    HopLeaves,
    /// The server's address on the path that died goes
    /// ([`ServerAddrs::PerPath`]).
    AddrGone,
}

/// The server's interface on `path` lost its carrier: as the runtime's
/// link watcher does (`runtime/links.rs`), its address there is withdrawn
/// on every stack of the host (RFC 8684 §3.4.2: REMOVE_ADDR to the
/// peers it was announced to; REMOVE_ADDR 0 on a joined subflow when it
/// was the first subflow's) and the interface's stack is told, so what
/// its subflows held goes on the others at once (§3.3.6).
fn addr_gone_at<A: super::node::SimApp>(server: &mut HostNode<A>, path: usize) {
    let ip = path_server_ip(path as u8);
    let mut stacks = server.stacks();
    if let Some(s) = stacks.get_mut(path) {
        s.link_state(false);
    }
    crate::stack::mptcp_withdraw_address(&mut stacks, ip);
}

fn median(v: &mut [f64]) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// Run one bulk transfer.
pub fn run_bulk(p: &BulkParams) -> BulkReport {
    let fs = frame_size(p.link.mtu);
    let wire = FramePool::new(fs, 1 << 20);
    // Ports: the client's interfaces (one per path), then the server's.
    let links: Vec<LinkConfig> = core::iter::once(p.link.clone())
        .chain(p.extra_paths.iter().cloned())
        .collect();
    let paths = links.len();
    let macs = (0..2u8)
        .flat_map(|i| (0..paths as u8).map(move |path| path_mac(i, path)))
        .collect();
    let shape = links.clone();
    let mut net = Network::new(
        macs,
        move |i, _| shape[i % paths].clone(),
        p.seed,
        wire.clone(),
    );
    net.set_segments((0..2 * paths).map(|i| i % paths).collect());
    if let Some((path, at)) = p.path_down {
        net.set_segment_down(path, Instant::ZERO + at);
    }
    net.set_path_hop(p.path_hop);
    if p.trace {
        net.set_tracer(Box::new(move |r: &super::trace::TraceRecord<'_>| {
            let name = |i: usize| if i < paths { 'C' } else { 'S' };
            eprintln!(
                "{:>12.3} ms {}>{} {:<9} {}",
                r.at.micros() as f64 / 1000.0,
                name(r.src),
                name(r.dst),
                format!("{:?}", r.kind),
                super::trace::describe(r.frame)
            );
        }));
    }
    let mtus = (0..2 * paths).map(|i| links[i % paths].mtu).collect();
    let auditor = Rc::new(RefCell::new(Auditor::new(mtus)));
    let seen = auditor.clone();
    net.set_observer(Box::new(move |now, src, frame| {
        seen.borrow_mut()
            .on_frame(now.micros() as f64 / 1000.0, src, frame)
    }));
    // One TX and one RX pool per host, shared by its interfaces' stacks
    // (the runtime's one UMEM): a chunk's frame is lent to a subflow of
    // another interface instead of copied. Sized for every path.
    let host_pools: Vec<(FramePool, FramePool)> = (0..2)
        .map(|_| {
            let n = p.pool_frames.saturating_mul(paths);
            (FramePool::new(fs, n), FramePool::new(fs, n))
        })
        .collect();
    let per_path = p.server_addrs == ServerAddrs::PerPath && paths > 1;
    let mk_on = |i: u8, path: u8| {
        let mut cfg = if per_path {
            path_config_per_path(i, path, tcp_config(p), p.seed)
        } else {
            path_config(i, path, tcp_config(p), p.seed)
        };
        cfg.tcp.mptcp = p.mptcp[i as usize];
        cfg.tcp.mptcp_checksum = p.mptcp_checksum;
        cfg.tcp.mptcp_cc = p.mptcp_cc;
        cfg.tcp.mptcp_max_subflows = if paths > 1 { 8 } else { 0 };
        if p.syn_cookies {
            cfg.syn_backlog = 0;
        }
        let pools = host_pools[i as usize].clone();
        stack_on_pools(&net, cfg, links[path as usize].mtu, pools)
    };
    let mk = |i: u8| mk_on(i, 0);
    let extra = |i: u8| {
        (1..paths as u8)
            .map(|path| {
                let mut s = mk_on(i, path);
                // As every interface's app does in the runtime: joins to
                // the server's port arrive on any path.
                if i == 1 {
                    s.listen(BULK_PORT).expect("a fresh stack listens");
                }
                let mut n = StackNode::new(s, NoApp);
                n.check = true;
                n
            })
            .collect::<Vec<_>>()
    };
    let cfg = BulkConfig {
        conns: p.conns,
        bytes: p.bytes,
        bidir: p.bidir,
        seed: p.seed,
        port: BULK_PORT,
        work: p.work,
    };
    let mut client = HostNode::new(
        StackNode::new(mk(0), BulkClient::new(cfg, SERVER_IP)),
        extra(0),
    );
    let mut server = HostNode::new(StackNode::new(mk(1), BulkServer::new(cfg)), extra(1));
    server.main.app.client_done = Some(client.main.app.done.clone());
    client.main.check = true;
    server.main.check = true;
    // Events at fixed virtual times: the run stops at each and goes on.
    // With an address per path, the server sees its path die (as the
    // runtime sees a carrier go) and withdraws its address there.
    let addr_gone = p.path_down.filter(|_| per_path).map(|(_, t)| t);
    let mut events: Vec<(Duration, Happening)> = [
        (p.mac_change_at, Happening::MacChange),
        (p.path_hop_until, Happening::HopLeaves),
        (addr_gone, Happening::AddrGone),
    ]
    .into_iter()
    .filter_map(|(t, what)| t.filter(|&t| t < p.limits.time).map(|t| (t, what)))
    .collect();
    events.sort_by_key(|e| e.0);
    let mut at = Duration::ZERO;
    let mut outcome = Outcome::TimeLimit(Instant::ZERO);
    for (t, what) in events {
        outcome = net.run(
            &mut [&mut client, &mut server],
            Limits {
                time: t - at,
                ..p.limits
            },
        );
        if !matches!(outcome, Outcome::TimeLimit(_)) {
            break;
        }
        // The network jumped no later than `t`; move on to exactly `t`.
        at = t;
        match what {
            Happening::MacChange => {
                let mac = host_mac(0x40);
                server.main.stack.set_mac(mac);
                net.set_mac(paths, mac);
            }
            Happening::HopLeaves => net.set_path_hop(None),
            Happening::AddrGone => {
                if let Some((path, _)) = p.path_down {
                    addr_gone_at(&mut server, path);
                }
            }
        }
    }
    if matches!(outcome, Outcome::TimeLimit(_)) {
        let rest = Limits {
            time: p.limits.time.saturating_sub(at),
            ..p.limits
        };
        outcome = net.run(&mut [&mut client, &mut server], rest);
    }
    let mut violations: Vec<String> = [client.violation(), server.violation()]
        .into_iter()
        .zip(["client", "server"])
        .filter_map(|(v, who)| v.map(|v| format!("{who}: {v}")))
        .collect();

    // Let TIME-WAIT run out: then nothing may be left.
    let states = |s: &Stack<SimDevice>| {
        let mut v: Vec<String> = s
            .connections()
            .map(|(t, st)| format!("port {} {st:?}", t.local.port().max(t.remote.port())))
            .collect();
        v.sort();
        v.truncate(4);
        v.join(", ")
    };
    let mut drained = false;
    if outcome.is_finished() && p.drain > Duration::ZERO {
        for h in [&mut client.main.drain, &mut server.main.drain] {
            *h = true;
        }
        for n in client.extra.iter_mut().chain(server.extra.iter_mut()) {
            n.drain = true;
        }
        let lim = Limits {
            time: p.drain,
            ..p.limits
        };
        let end = net.run(&mut [&mut client, &mut server], lim);
        let hosts = [
            ("client", &mut client.stacks()),
            ("server", &mut server.stacks()),
        ];
        let ends: Vec<_> = hosts
            .into_iter()
            .flat_map(|(host, stacks)| {
                stacks
                    .iter()
                    .enumerate()
                    .map(|(i, st)| {
                        // The path's stack, when there are several.
                        let who = if paths > 1 {
                            format!("{host} (path {})", i + 1)
                        } else {
                            host.to_string()
                        };
                        (who, st.conn_count(), st.device().stats(), states(st))
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        for (who, left, dev, st) in ends {
            if left > 0 {
                violations.push(format!(
                    "{who}: {left} connection(s) left {} ms after the transfer ({st}; {})",
                    p.drain.as_millis(),
                    end.describe()
                ));
            }
            if dev.tx_pool.in_use > 0 || dev.rx_pool.in_use > 0 {
                violations.push(format!(
                    "{who}: frames not returned after every connection closed: {} TX, {} RX",
                    dev.tx_pool.in_use, dev.rx_pool.in_use
                ));
            }
        }
        drained = end.is_finished() && violations.is_empty();
    }
    let connections = bulk::report(&client.main.app, &server.main.app);
    // The counters of a host's first stack; its other stacks' subflows are
    // counted by the connections they belong to, and in `paths`.
    let stacks = [client.main.stack.counters(), server.main.stack.counters()];
    let addresses = (paths > 1).then(|| {
        let c: Vec<_> = client.stacks().iter().map(|s| s.counters()).collect();
        let sv: Vec<_> = server.stacks().iter().map(|s| s.counters()).collect();
        AddrReport::new(&c, &sv)
    });
    let devices = [
        client.main.stack.device().stats(),
        server.main.stack.device().stats(),
    ];
    let bytes: u64 = connections
        .iter()
        .map(|c| c.received + c.reverse_received)
        .sum();
    let virtual_us = outcome.at().micros();
    let mut done: Vec<f64> = connections.iter().filter_map(|c| c.done_ms).collect();
    let sum = |f: fn(&StackCounters) -> u64| stacks.iter().map(f).sum::<u64>();

    let mut error = match outcome {
        Outcome::Finished(_) => None,
        o => Some(o.describe()),
    };
    if let Some(e) = server.main.app.rejected.first() {
        error.get_or_insert_with(|| format!("server: {e}"));
    }
    if let Some(c) = connections.iter().find(|c| !c.intact) {
        let e = c.error.as_deref().unwrap_or("not intact");
        error.get_or_insert_with(|| format!("connection {}: {e}", c.index));
    }
    for (who, c) in ["client", "server"].iter().zip(&stacks) {
        if c.acks_of_unsent > 0 {
            violations.push(format!(
                "{who} received {} ACK(s) of data never sent",
                c.acks_of_unsent
            ));
        }
        if c.tx_beyond_snd_nxt > 0 {
            violations.push(format!(
                "{who} sent {} segment(s) beyond SND.NXT",
                c.tx_beyond_snd_nxt
            ));
        }
    }
    let audit = auditor.borrow();
    violations.extend(audit.violations.iter().map(|v| format!("wire: {v}")));
    if audit.violation_count > audit.violations.len() as u64 {
        violations.push(format!(
            "wire: {} more violation(s)",
            audit.violation_count - audit.violations.len() as u64
        ));
    }
    let intact = error.is_none() && connections.len() == p.conns as usize && violations.is_empty();
    BulkReport {
        intact,
        outcome: match outcome {
            Outcome::Finished(_) => "finished",
            Outcome::TimeLimit(_) => "time-limit",
            Outcome::IterationLimit(_) => "iteration-limit",
            Outcome::Idle(_) => "idle",
        }
        .into(),
        error,
        bytes,
        bytes_per_conn: p.bytes,
        conns: p.conns,
        bidir: p.bidir,
        seed: p.seed,
        virtual_ms: virtual_us as f64 / 1000.0,
        goodput_mbps: if virtual_us == 0 {
            0.0
        } else {
            bytes as f64 * 8.0 / virtual_us as f64
        },
        completion_ms_min: done.iter().copied().reduce(f64::min),
        completion_ms_max: done.iter().copied().reduce(f64::max),
        completion_ms_median: median(&mut done),
        retransmits: sum(|s| s.retransmits),
        rto_timeouts: sum(|s| s.rto_timeouts),
        fast_recoveries: sum(|s| s.fast_recoveries),
        dropped_corrupt: sum(|s| s.drop_bad_checksum),
        dropped_malformed: sum(|s| {
            s.drop_truncated + s.drop_bad_length + s.drop_bad_version + s.drop_not_for_us
        }),
        link: net.total_link_stats(),
        link_c2s: net.link_stats(0, paths),
        link_s2c: net.link_stats(paths, 0),
        paths: if paths > 1 {
            (0..paths)
                .map(|i| [net.link_stats(i, paths + i), net.link_stats(paths + i, i)])
                .collect()
        } else {
            Vec::new()
        },
        stacks,
        addresses,
        devices,
        iterations: net.iterations(),
        params: ParamsReport::new(p),
        connections,
        violations,
        drained,
    }
}
