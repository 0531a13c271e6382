//! The data-path options every AF_XDP app shares (`echo`, `http`,
//! `loadgen`), defined once and flattened into each subcommand, and the
//! report printed when a run ends.

use crate::cli::EXIT_USAGE;
use clap::Args;
use std::path::PathBuf;
use xdptcp::io::impair::ImpairSpec;
use xdptcp::io::xdp::{TxChecksum, XdpMode, ZeroCopy};
use xdptcp::runtime::{IfaceSpec, RunReport, RuntimeConfig};

#[derive(Args, Debug, Clone)]
pub struct DataPath {
    /// Interface and the address(es) xdptcp owns on it: NAME=IPV4/PREFIX or
    /// NAME=FIRST-LAST/PREFIX (repeatable).
    #[arg(long = "iface", required = true, value_parser = parse_iface)]
    pub ifaces: Vec<IfaceSpec>,
    /// Queues (= worker threads); default: all queues of the interface.
    #[arg(long)]
    pub queues: Option<u32>,
    /// CPU cores for the workers, e.g. 0,1 or 0-3.
    #[arg(long, value_parser = parse_cores)]
    pub cores: Option<CoreList>,
    /// XDP attach mode.
    #[arg(long, default_value = "auto", value_parser = ["auto", "native", "generic"])]
    pub xdp_mode: String,
    /// AF_XDP zero-copy.
    #[arg(long, default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub zero_copy: String,
    /// TCP transmit checksums: requested through AF_XDP TX metadata
    /// (offload, Linux >= 6.8), computed by the stack (software), either
    /// (auto: offload where the kernel takes it), or offloaded and completed
    /// by the kernel in software before the packet leaves (verify, Linux >=
    /// 6.11: the peer then checks what was requested). --impair implies
    /// software.
    #[arg(long, default_value = "auto", value_parser = ["auto", "offload", "software", "verify"])]
    pub tx_checksum: String,
    /// Stop after this many seconds (default: at SIGINT/SIGTERM).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Write the counters as JSON to this file on exit.
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
    /// Write the stack's own traffic to this pcap file.
    #[arg(long)]
    pub pcap: Option<PathBuf>,
    /// Most TCP connections per worker (including TIME-WAIT).
    #[arg(long, default_value_t = 16384)]
    pub max_conns: usize,
    /// UMEM frames per queue, 2 KiB each (receive and send buffers come
    /// out of them; half are kept on the fill ring, up to its 16,384
    /// slots; a burst's unread backlog on the RX ring, up to 32,768, takes
    /// from the rest). Default: 16,384 + 49,152 / queues (65,536 for one
    /// queue, 28,672 each for four: the queues share the UMEM).
    #[arg(long)]
    pub frames: Option<u32>,
    /// Busy-poll the AF_XDP sockets for this many microseconds per call
    /// (SO_PREFER_BUSY_POLL, SO_BUSY_POLL_BUDGET 64): the queue's NAPI runs
    /// in the worker's loop instead of in softirq. 0 or absent: off.
    #[arg(long, value_name = "USECS")]
    pub busy_poll: Option<u32>,
    /// Multi-buffer receive: the XDP program loaded as xdp.frags and the
    /// sockets bound with XDP_USE_SG (Linux >= 6.6), so a packet larger
    /// than a frame (a veth peer's 64 KB GSO segments in generic mode, a
    /// jumbo MTU) arrives in chained frames; TCP segments are handed to
    /// the stack frame by frame. Always on in generic mode (whole GRO/GSO
    /// skbs reach the program there); otherwise off by default: native
    /// mode on veth takes GSO from the peer, so nothing arrives in several
    /// frames there.
    #[arg(long)]
    pub rx_multibuf: bool,
    /// Impair what the stack sends and receives, per direction:
    /// loss=P,dup=P,reorder=P,delay=MS,jitter=MS,corrupt=P,rate=MBPS[/MBPS]
    /// [,limit=FRAMES][,seed=S] (P a fraction or a percentage; rate TX/RX).
    #[arg(long, value_name = "SPEC")]
    pub impair: Option<String>,
    /// The next hop for destinations off the interfaces' subnets (a router
    /// on one of them); without it only on-link peers are reachable.
    #[arg(long, value_name = "IPV4")]
    pub gateway: Option<std::net::Ipv4Addr>,
    /// After a path MTU was lowered, probe for a larger one this often
    /// (RFC 4821 / RFC 8899 PLPMTUD; default 600 s, as Linux).
    #[arg(long, value_name = "SECS")]
    pub pmtu_probe_interval: Option<f64>,
    /// Let a connection's receive buffer grow up to this many bytes
    /// (autotuning, as Linux's tcp_rcv_space_adjust: toward twice what the
    /// application reads per round trip), for paths whose bandwidth-delay
    /// product exceeds the 256 KiB it starts with. Off by default: on a
    /// LAN that buffer is not the limit, and a larger window only makes an
    /// echo hold (and copy) what its send side cannot take yet.
    #[arg(long, value_name = "BYTES", value_parser = crate::cli::args::parse_size)]
    pub rcv_buf_max: Option<u64>,
    /// Let a connection's send buffer grow up to this many bytes
    /// (autotuning, as Linux's tcp_sndbuf_expand: toward twice the
    /// congestion window; an MPTCP connection's toward the slowest
    /// path's round trip at the aggregate rate), for paths whose
    /// bandwidth-delay product exceeds the 256 KiB it starts with. Off by
    /// default, as --rcv-buf-max.
    #[arg(long, value_name = "BYTES", value_parser = crate::cli::args::parse_size)]
    pub snd_buf_max: Option<u64>,
}

/// The largest `--rcv-buf-max` and `--snd-buf-max`.
const RCV_BUF_MAX_LIMIT: u64 = 64 << 20;

/// `--cores` as parsed.
#[derive(Debug, Clone)]
pub struct CoreList(pub Vec<usize>);

fn parse_iface(s: &str) -> Result<IfaceSpec, String> {
    s.parse()
}

fn parse_cores(s: &str) -> Result<CoreList, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let bad = || format!("--cores {s:?}: expected a list like 0,1 or 0-3");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b || b - a > 1024 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err(format!("--cores {s:?}: empty"));
    }
    Ok(CoreList(out))
}

/// A duration in seconds from the command line: positive and finite.
pub fn secs(name: &str, v: f64) -> Result<std::time::Duration, String> {
    if v.is_finite() && v > 0.0 && v < 1e9 {
        Ok(std::time::Duration::from_secs_f64(v))
    } else {
        Err(format!("{name} must be a positive number of seconds"))
    }
}

impl DataPath {
    /// The runtime configuration, or the exit code after a one-line error.
    pub fn runtime_config(&self) -> Result<RuntimeConfig, i32> {
        let duration = match self.duration {
            Some(d) => Some(secs("--duration", d).map_err(|e| {
                eprintln!("xdptcp: {e}");
                EXIT_USAGE
            })?),
            None => None,
        };
        if !(1..=4_000_000).contains(&self.max_conns) {
            eprintln!("xdptcp: --max-conns must be 1..4000000");
            return Err(EXIT_USAGE);
        }
        if self.frames.is_some_and(|f| !(1024..=1 << 20).contains(&f)) {
            eprintln!("xdptcp: --frames must be 1024..1048576");
            return Err(EXIT_USAGE);
        }
        if self.busy_poll.is_some_and(|u| u > 1_000_000) {
            eprintln!("xdptcp: --busy-poll must be 0..1000000 microseconds");
            return Err(EXIT_USAGE);
        }
        let impair = match &self.impair {
            Some(spec) => Some(spec.parse::<ImpairSpec>().map_err(|e| {
                eprintln!("xdptcp: --impair: {e}");
                EXIT_USAGE
            })?),
            None => None,
        };
        if let Some(g) = self.gateway {
            if !self.ifaces.iter().any(|i| i.cidr.contains(g)) {
                eprintln!(
                    "xdptcp: --gateway {g} is on no --iface subnet: give a router address on one of them"
                );
                return Err(EXIT_USAGE);
            }
        }
        let mut tcp = RuntimeConfig::default().tcp;
        if let Some(b) = self.rcv_buf_max {
            if b > RCV_BUF_MAX_LIMIT {
                eprintln!("xdptcp: --rcv-buf-max must be at most 64M (a connection's frames come out of its queue's --frames)");
                return Err(EXIT_USAGE);
            }
            tcp.rcv_buf_max = b as usize;
        }
        if let Some(b) = self.snd_buf_max {
            if b > RCV_BUF_MAX_LIMIT {
                eprintln!("xdptcp: --snd-buf-max must be at most 64M (a connection's frames come out of its queue's --frames)");
                return Err(EXIT_USAGE);
            }
            tcp.snd_buf_max = b as usize;
        }
        if let Some(s) = self.pmtu_probe_interval {
            tcp.pmtu_probe_interval = secs("--pmtu-probe-interval", s).map_err(|e| {
                eprintln!("xdptcp: {e}");
                EXIT_USAGE
            })?;
        }
        Ok(RuntimeConfig {
            impair,
            gateway: self.gateway,
            tcp,
            ifaces: self.ifaces.clone(),
            queues: self.queues,
            cores: self.cores.clone().map(|c| c.0),
            xdp_mode: self.xdp_mode.parse::<XdpMode>().unwrap_or_default(),
            zero_copy: self.zero_copy.parse::<ZeroCopy>().unwrap_or_default(),
            tx_checksum: self.tx_checksum.parse::<TxChecksum>().unwrap_or_default(),
            duration,
            pcap: self.pcap.clone(),
            max_conns: self.max_conns,
            frames_per_queue: self.frames,
            busy_poll: self.busy_poll.filter(|&u| u > 0),
            rx_multibuf: self.rx_multibuf,
            ..RuntimeConfig::default()
        })
    }

    /// Print the run's counters and write `--stats-json`; the exit code.
    pub fn finish(&self, r: &RunReport) -> i32 {
        print_report(r);
        if let Some(path) = &self.stats_json {
            let json = serde_json::to_string_pretty(r).unwrap_or_default();
            if let Err(e) = std::fs::write(path, json) {
                eprintln!("xdptcp: --stats-json {}: {e}", path.display());
                return 1;
            }
        }
        0
    }
}

/// The exit code of a runtime error (after printing it).
pub fn runtime_error(e: &xdptcp::io::xdp::Error) -> i32 {
    eprintln!("xdptcp: {e}");
    if e.kind.is_user_error() {
        EXIT_USAGE
    } else {
        1
    }
}

/// A line per interface and per worker.
pub fn print_report(r: &RunReport) {
    for i in &r.ifaces {
        eprintln!(
            "xdptcp: {} {}: xdp redirected {} passed {} malformed {} no_socket {}",
            i.name, i.addr, i.xdp.redirected, i.xdp.passed, i.xdp.malformed, i.xdp.no_socket
        );
    }
    for w in &r.workers {
        let s = w.stacks.iter().fold((0, 0, 0, 0), |a, s| {
            (
                a.0 + s.rx_packets,
                a.1 + s.tx_packets,
                a.2 + s.conns_opened,
                a.3 + s.retransmits,
            )
        });
        eprintln!(
            "xdptcp: worker {} (queue {}, core {:?}): rx {} pkts ({} frames) {} B, handoff out {} in {} dropped {}, stack rx {} tx {} conns {} rexmit {}",
            w.worker, w.queue, w.core, w.rx_packets, w.rx_frames, w.rx_bytes, w.handoff_out, w.handoff_in, w.handoff_dropped,
            s.0, s.1, s.2, s.3
        );
        if w.mptcp_subflows_owned + w.token_conflicts + w.token_directory_full > 0 {
            eprintln!(
                "xdptcp: worker {} MPTCP: {} subflows of other workers' connections run here ({} bytes received for them, {} of theirs sent, messages out {} in {}); tokens held elsewhere too {}, not recorded (directory full) {}",
                w.worker, w.mptcp_subflows_owned, w.mptcp_bytes_for_other_workers, w.mptcp_bytes_sent_for_other_workers, w.mptcp_msgs_out, w.mptcp_msgs_in, w.token_conflicts, w.token_directory_full
            );
        }
        if w.links_down + w.links_up > 0 {
            eprintln!(
                "xdptcp: worker {} interfaces: carrier lost {} (addresses withdrawn from MPTCP connections), back {}",
                w.worker, w.links_down, w.links_up
            );
        }
        let d = w.devices.iter().fold((0, 0, 0, 0), |a, d| {
            (
                a.0 + d.tx_zero_copy,
                a.1 + d.tx_copies,
                a.2 + d.tx_csum_offloaded,
                a.3 + d.tx_csum_software,
            )
        });
        eprintln!(
            "xdptcp: worker {} tx: {} data segments lent to the ring (zero-copy), {} copied; TCP checksums {} offloaded, {} in software",
            w.worker, d.0, d.1, d.2, d.3
        );
    }
    for d in r.drops() {
        if d.csum_partial_accepted > 0 {
            eprintln!(
                "xdptcp: {}: {} segments accepted with a partial checksum (veth peer with checksum offload)",
                d.iface, d.csum_partial_accepted
            );
        }
        if d.reasons.is_empty() {
            continue;
        }
        let list: Vec<String> = d.reasons.iter().map(|(k, n)| format!("{k} {n}")).collect();
        eprintln!("xdptcp: {} drops: {}", d.iface, list.join(", "));
        if d.reasons.iter().any(|(k, _)| k == "bad_checksum") {
            eprintln!(
                "xdptcp: hint: bad checksums usually mean a peer leaving them to offload that never happened \
                 (a virtual NIC other than veth): turn it off on the peer with `ethtool -K IFACE tx off`"
            );
        }
    }
    if r.pcap_written + r.pcap_dropped > 0 {
        eprintln!(
            "xdptcp: pcap: {} packets written, {} dropped",
            r.pcap_written, r.pcap_dropped
        );
    }
}
