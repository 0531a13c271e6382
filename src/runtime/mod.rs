//! The AF_XDP runtime: per interface the XDP program, one UMEM for all
//! interfaces and one socket per (interface, queue) (`ifaces`); one pinned run-to-completion worker per queue index,
//! each owning a [`Stack`](crate::stack::Stack) per interface; flow
//! ownership with hand-off rings; signals, counters, `--stats-json`, `--pcap`.

pub mod directory;
mod ifaces;
mod inbox;
pub mod links;
pub mod migrate;
pub mod owner;
pub mod report;
mod returns;
mod start;
mod stop;
pub mod tokens;
pub mod worker;
mod worker_stats;

use crate::io::xdp::iface::IfaceInfo;
use crate::io::xdp::pcap::PcapWriter;
use crate::io::xdp::{
    AttachedMode, Error, ErrorKind, FrameAccount, TxChecksum, XdpCounters, XdpDevice, XdpMode,
    ZeroCopy,
};
use crate::stack::{Ipv4Cidr, StackConfig};
use crate::tcp;
use core::net::Ipv4Addr;
use core::time::Duration;
pub use ifaces::UmemReport;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
pub use worker::{RuntimeApp, WorkerCtx, WorkerStats};

/// Frames handed over to one worker that may wait in its inbox.
const INBOX: usize = 8192;
/// MPTCP messages from one worker to another that may wait in a ring.
const MSG_RING: usize = 4096;

/// An interface and the addresses the stack owns on it: `cidr.addr` and the
/// `extra` addresses after it (a source-address range for a load generator).
#[derive(Debug, Clone)]
pub struct IfaceSpec {
    pub name: String,
    pub cidr: Ipv4Cidr,
    pub extra: u32,
}

/// Most addresses one interface may own (the XDP program's address map).
pub const MAX_ADDRS: u32 = 64;

impl IfaceSpec {
    /// Every address, first to last, each with the prefix.
    pub fn addrs(&self) -> impl Iterator<Item = Ipv4Cidr> + '_ {
        let first = u32::from(self.cidr.addr);
        (0..=self.extra).map(move |i| Ipv4Cidr {
            addr: Ipv4Addr::from(first + i),
            prefix: self.cidr.prefix,
        })
    }
}

impl core::str::FromStr for IfaceSpec {
    type Err = String;
    /// `NAME=IPV4/PREFIX` or `NAME=FIRST-LAST/PREFIX`.
    fn from_str(s: &str) -> Result<Self, String> {
        let usage =
            || format!("--iface {s:?}: expected NAME=IPV4/PREFIX or NAME=FIRST-LAST/PREFIX");
        let (name, cidr) = s.split_once('=').ok_or_else(usage)?;
        let (addrs, prefix) = cidr.split_once('/').ok_or_else(usage)?;
        let ip = |a: &str| {
            a.parse::<Ipv4Addr>()
                .map_err(|_| format!("--iface {s:?}: bad IPv4 address {a:?}"))
        };
        let (first, last) = match addrs.split_once('-') {
            Some((a, b)) => (ip(a)?, ip(b)?),
            None => (ip(addrs)?, ip(addrs)?),
        };
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (1..=32).contains(p))
            .ok_or_else(|| format!("--iface {s:?}: prefix must be 1..32"))?;
        if name.is_empty() || name.len() >= 16 {
            return Err(format!("--iface {s:?}: bad interface name"));
        }
        let (f, l) = (u32::from(first), u32::from(last));
        if l < f || l - f >= MAX_ADDRS {
            return Err(format!(
                "--iface {s:?}: the range must go upwards and hold at most {MAX_ADDRS} addresses"
            ));
        }
        let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
        if f & mask != l & mask {
            return Err(format!(
                "--iface {s:?}: the range must lie inside one /{prefix} subnet"
            ));
        }
        Ok(IfaceSpec {
            name: name.to_string(),
            cidr: Ipv4Cidr {
                addr: first,
                prefix,
            },
            extra: l - f,
        })
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    pub ifaces: Vec<IfaceSpec>,
    /// Queues (= workers); default: every queue of the first interface.
    pub queues: Option<u32>,
    /// CPU cores to pin workers to, in order (wrapping); default: all.
    pub cores: Option<Vec<usize>>,
    pub xdp_mode: XdpMode,
    pub zero_copy: ZeroCopy,
    /// `--tx-checksum`: how TCP transmit checksums are done.
    pub tx_checksum: TxChecksum,
    /// Stop after this long (otherwise at SIGINT/SIGTERM).
    pub duration: Option<Duration>,
    pub pcap: Option<PathBuf>,
    /// UMEM frames per queue (`--frames`); `None`: [`frames_per_queue`]
    /// for the interface's queue count.
    pub frames_per_queue: Option<u32>,
    /// TCP settings; receive and send buffers come out of the UMEM, so
    /// they are sized for many connections per queue.
    pub tcp: tcp::Config,
    pub max_conns: usize,
    /// Local ports for active opens (default: the stack's).
    pub ephemeral_ports: Option<(u16, u16)>,
    /// Busy-poll the AF_XDP sockets (SO_PREFER_BUSY_POLL) for this many
    /// microseconds per call; `None`: interrupt-driven (softirq) receive.
    pub busy_poll: Option<u32>,
    /// `--rx-multibuf`: the XDP program as `xdp.frags`, sockets bound with
    /// `XDP_USE_SG`, multi-buffer TCP segments split per frame.
    pub rx_multibuf: bool,
    /// `--impair`: simulated links on every device (see `io::impair`).
    pub impair: Option<crate::io::impair::ImpairSpec>,
    /// The default gateway, used by the interface whose subnet holds it.
    pub gateway: Option<Ipv4Addr>,
}

/// What one queue's fill ring is given at most (`XdpDevice::
/// set_fill_target`: half of the queue's frames).
const FILL_FRAMES: u32 = 16_384;

/// The frames an interface's queues share beyond their fill rings: the
/// backlog a burst leaves unread on an RX ring (up to 32,768) and the
/// connections' buffers. Neither grows with the queues (the connections
/// spread over them; a burst's backlog sits where the burst arrives).
const SHARED_FRAMES: u32 = 49_152;

/// The default frames per queue for `queues` queues: each queue's fill
/// ring, plus its share of [`SHARED_FRAMES`] (65,536 for one queue, as
/// before; 28,672 each for four).
///
/// Memory: the UMEM is queues × frames × 2 KiB, and the kernel gives each
/// socket a buffer pool with one `struct xdp_buff_xsk` (about 112 bytes)
/// for every chunk of the UMEM it shares (`xp_create_and_assign_umem`),
/// so queues × (queues × frames) × 112 B in all. At 65,536 a queue that
/// was queues²: 7, 28 and 113 MiB for 1, 2 and 4 queues (measured
/// vmalloc 8, 25, 114 MB), with UMEMs of 128, 256 and 512 MiB.
pub fn frames_per_queue(queues: u32) -> u32 {
    FILL_FRAMES + SHARED_FRAMES / queues.max(1)
}

/// Most connections whose memory a stack makes up front (about 2.5 KB
/// each: 160 MB at this cap).
pub const CONNS_PREALLOC_MAX: usize = 65536;

impl RuntimeConfig {
    /// UMEM frames for each of an interface's `queues` queues.
    pub fn frames_for(&self, queues: u32) -> u32 {
        self.frames_per_queue
            .unwrap_or_else(|| frames_per_queue(queues))
    }

    /// Connections each stack makes room for when it starts (`StackConfig::
    /// conns_prealloc`): `max_conns`, up to [`CONNS_PREALLOC_MAX`]. A burst
    /// of connections must not wait for memory being faulted in (at 16,000
    /// at once, growing the table on demand stalled the worker long enough
    /// for its RX ring to overflow) and `max_conns` is what the stack
    /// promises to hold; UMEM frames are allocated up front likewise. An
    /// app keeping state per connection sizes its table with this too.
    pub fn conns_prealloc(&self) -> usize {
        self.max_conns.min(CONNS_PREALLOC_MAX)
    }

    /// A worker's share of [`Self::conns_prealloc`], what each of its
    /// stacks (and apps) makes room for: connections spread over the
    /// workers (RSS, or the peer's transmit queue on veth). Each stack made
    /// room for all of them before (41 MB per stack at the default, 160
    /// MB at the cap, faulted in at set-up while the other workers did the
    /// same: seconds on a loaded machine before a 4-queue `xdptcp echo`
    /// listened). Beyond its share a stack's table grows on demand.
    pub fn conns_prealloc_per_worker(&self, workers: usize) -> usize {
        self.conns_prealloc().div_ceil(workers.max(1))
    }
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            ifaces: Vec::new(),
            queues: None,
            cores: None,
            xdp_mode: XdpMode::Auto,
            zero_copy: ZeroCopy::Auto,
            tx_checksum: TxChecksum::Auto,
            duration: None,
            pcap: None,
            frames_per_queue: None,
            tcp: tcp::Config {
                rcv_buf: 256 << 10,
                // No autotuning unless asked (`--rcv-buf-max`): on a LAN
                // 256 KiB is not the limit, and a larger window only makes
                // an echo hold and copy what its send side cannot take
                // (`veth_datapath`: 24 % of the echo lent instead of 50+).
                rcv_buf_max: 256 << 10,
                snd_buf: 256 << 10,
                // Likewise no send-buffer autotuning unless asked
                // (`--snd-buf-max`).
                snd_buf_max: 256 << 10,
                ..tcp::Config::default()
            },
            max_conns: 16384,
            ephemeral_ports: None,
            busy_poll: None,
            rx_multibuf: false,
            impair: None,
            gateway: None,
        }
    }
}

/// What was set up on one interface.
#[derive(Debug, Clone, serde::Serialize)]
pub struct IfaceReport {
    pub name: String,
    pub addr: String,
    /// The interface's driver (ETHTOOL_GDRVINFO), e.g. "veth".
    pub driver: String,
    /// Segments with only the pseudo-header sum in the checksum field are
    /// accepted (veth: the peer's transmit checksum offload).
    pub accept_partial_checksum: bool,
    pub xdp_mode: AttachedMode,
    pub zero_copy: bool,
    /// How TCP transmit checksums were done (`offload`, `software`,
    /// `verify`).
    pub tx_checksum: TxChecksum,
    pub queues: u32,
    /// The UMEM this interface's sockets use ([`crate::io::xdp::SharedUmem::id`]): the
    /// same on every interface sharing one (frames move between their
    /// stacks without copies).
    pub umem: usize,
    /// Frames this interface added to its UMEM (queues × `--frames`).
    pub umem_share: usize,
    pub xdp: XdpCounters,
    /// Frames held by the stacks (connections) of every interface of its
    /// UMEM when the workers stopped (a frame may move between the
    /// interfaces' stacks, so it is counted per UMEM).
    pub frames_held_at_stop: isize,
    /// Where the UMEM's frames are after teardown (`lost` is always 0,
    /// `live` 0 unless something kept a frame): the whole UMEM's, the same
    /// on every interface sharing it (`umems` has each once).
    pub frames: FrameAccount,
}

/// The run's report (printed on exit, `--stats-json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct RunReport {
    pub ifaces: Vec<IfaceReport>,
    /// Each UMEM once, with the interfaces sharing it.
    pub umems: Vec<UmemReport>,
    pub workers: Vec<WorkerStats>,
    pub pcap_written: u64,
    pub pcap_dropped: u64,
    pub seconds: f64,
}

impl RunReport {
    pub fn total_handoffs(&self) -> u64 {
        self.workers.iter().map(|w| w.handoff_out).sum()
    }
}

fn stack_config(
    info: &IfaceInfo,
    spec: &IfaceSpec,
    cfg: &RuntimeConfig,
    mtu: usize,
) -> StackConfig {
    let mut c = StackConfig {
        tcp: tcp::Config {
            mss: mtu.saturating_sub(40).min(usize::from(u16::MAX)) as u16,
            ..cfg.tcp.clone()
        },
        max_conns: cfg.max_conns,
        conns_prealloc: cfg.conns_prealloc(),
        addrs: spec.addrs().collect(),
        accept_partial_checksum: info.is_veth(),
        ..StackConfig::new(info.mac, spec.cidr, random_secret())
    };
    if let Some(p) = cfg.ephemeral_ports {
        c.ephemeral_ports = p;
    }
    c.gateway = cfg.gateway.filter(|&g| spec.cidr.contains(g));
    c
}

/// Set everything up, run the workers until SIGINT/SIGTERM or the duration,
/// tear down (the XDP programs are detached whatever happens) and report.
/// `on_ready` is called once everything is attached (e.g. to print it).
pub fn run<A, F>(
    cfg: &RuntimeConfig,
    make_app: F,
    on_ready: &dyn Fn(&[IfaceReport]),
) -> Result<RunReport, Error>
where
    A: RuntimeApp,
    F: Fn(WorkerCtx) -> A + Sync,
{
    if cfg.ifaces.is_empty() {
        return Err(Error::new(
            ErrorKind::Usage,
            "at least one --iface is needed".into(),
        ));
    }
    if !crate::io::xdp::sys::is_root() {
        return Err(Error::new(
            ErrorKind::Permission,
            "AF_XDP needs root (CAP_NET_ADMIN, CAP_BPF, CAP_NET_RAW)".into(),
        ));
    }
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| {
            Error::new(
                ErrorKind::Socket,
                format!("installing a signal handler: {e}"),
            )
        })?;
    }
    let mut sets = ifaces::setup(cfg)?;
    let workers = sets.first().map_or(1, |s| s.report.queues as usize);
    let pcap =
        match &cfg.pcap {
            Some(p) => Some(PcapWriter::create(p).map_err(|e| {
                Error::new(ErrorKind::Usage, format!("--pcap {}: {e}", p.display()))
            })?),
            None => None,
        };
    let reports: Vec<IfaceReport> = sets.iter().map(|s| s.report.clone()).collect();
    on_ready(&reports);
    let cores: Vec<core_affinity::CoreId> = match &cfg.cores {
        Some(list) => list
            .iter()
            .map(|&id| core_affinity::CoreId { id })
            .collect(),
        None => core_affinity::get_core_ids().unwrap_or_default(),
    };
    let inboxes: Vec<worker::Inbox> = (0..workers)
        .map(|_| worker::Inbox::new(INBOX, MSG_RING, workers))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::new(ErrorKind::Socket, format!("eventfd: {e}")))?;
    let inboxes = Arc::new(inboxes);
    let epoch = std::time::Instant::now();
    #[allow(clippy::type_complexity)]
    let mut per_worker: Vec<
        Vec<(
            XdpDevice,
            StackConfig,
            Option<Arc<crate::io::xdp::rss::Rss>>,
        )>,
    > = (0..workers).map(|_| Vec::new()).collect();
    for s in sets.iter_mut() {
        for (w, mut dev) in s.devices.drain(..).enumerate() {
            dev.set_capture(pcap.as_ref().and_then(|p| p.tap()));
            // Each device draws its impairments from its own stream.
            let stream = (per_worker[w].len() as u64) << 16 | w as u64;
            dev.set_impair(
                cfg.impair
                    .as_ref()
                    .map(|i| crate::io::impair::Impairer::new(i, stream)),
            );
            let mut stack_cfg = s.stack_cfg.clone();
            stack_cfg.conns_prealloc = cfg.conns_prealloc_per_worker(workers);
            per_worker[w].push((dev, stack_cfg, s.rss.clone()));
        }
    }
    let make_app = &make_app;
    let stop_sync = Arc::new(worker::StopSync::new(sets.len()));
    let start_sync = Arc::new(start::StartSync::new());
    let directory = Arc::new(directory::FlowDirectory::new(
        cfg.max_conns
            .saturating_mul(workers)
            .saturating_mul(sets.len()),
    ));
    // At most one token per connection, on the interfaces that speak MPTCP.
    let tokens = Arc::new(tokens::TokenDirectory::new(if cfg.tcp.mptcp {
        cfg.max_conns
            .saturating_mul(workers)
            .saturating_mul(sets.len())
    } else {
        0
    }));
    // Carriers as they are now: an interface down already is withdrawn
    // when the workers start.
    let names: Vec<String> = cfg.ifaces.iter().map(|i| i.name.clone()).collect();
    let links = Arc::new(links::LinkWatch::new(names.len()));
    links.poll(&names);
    let stats: Vec<WorkerStats> = std::thread::scope(|scope| {
        let handles: Vec<_> = per_worker
            .into_iter()
            .enumerate()
            .map(|(w, devices)| {
                let setup = worker::WorkerSetup {
                    index: w,
                    queue: w as u32,
                    core: if cores.is_empty() {
                        None
                    } else {
                        Some(cores[w % cores.len()])
                    },
                    devices,
                    inboxes: inboxes.clone(),
                    stop: stop.clone(),
                    stop_sync: stop_sync.clone(),
                    start_sync: start_sync.clone(),
                    directory: directory.clone(),
                    tokens: tokens.clone(),
                    links: links.clone(),
                    busy_poll: cfg.busy_poll.is_some(),
                    epoch,
                };
                std::thread::Builder::new()
                    .name(format!("xdptcp-w{w}"))
                    .spawn_scoped(scope, move || worker::run(setup, make_app))
                    .expect("spawning a worker thread")
            })
            .collect();
        // The run's time counts from when every worker is set up and
        // serves its queue (bounded wait: see `start`).
        start_sync.wait(workers, &stop, &|| handles.iter().all(|h| h.is_finished()));
        let deadline = cfg.duration.map(|d| std::time::Instant::now() + d);
        let mut polled = std::time::Instant::now();
        while !stop.load(Ordering::Relaxed) && !handles.iter().all(|h| h.is_finished()) {
            let now = std::time::Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                stop.store(true, Ordering::Relaxed);
                break;
            }
            if now.duration_since(polled) >= links::PERIOD {
                polled = now;
                links.poll(&names);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .enumerate()
            .map(|(w, h)| {
                h.join().unwrap_or_else(|_| WorkerStats {
                    worker: w,
                    ..Default::default()
                })
            })
            .collect()
    });
    // Frames still waiting in inboxes go back to their pools.
    for inbox in inboxes.iter() {
        inbox.drain();
    }
    // The workers are gone with their stacks: every chunk must be free or
    // on a ring now.
    for (s, held) in sets.iter_mut().zip(stop_sync.held.iter()) {
        s.report.frames_held_at_stop = held.load(Ordering::Relaxed);
    }
    let umems = ifaces::umem_reports(&sets);
    let mut ifaces = Vec::with_capacity(sets.len());
    for mut s in sets {
        s.report.frames = s.umem.account();
        s.report.xdp = s.prog.counters();
        s.prog.detach();
        ifaces.push(s.report);
    }
    let (pcap_written, pcap_dropped) = match pcap {
        Some(p) => p.finish().unwrap_or((0, 0)),
        None => (0, 0),
    };
    Ok(RunReport {
        ifaces,
        umems,
        workers: stats,
        pcap_written,
        pcap_dropped,
        seconds: epoch.elapsed().as_secs_f64(),
    })
}

/// The ISN and SYN-cookie secret (RFC 6528 §3: must be unpredictable): from
/// the kernel's CSPRNG, falling back to time and pid if it is unreadable.
fn random_secret() -> [u8; 16] {
    use std::io::Read;
    let mut secret = [0u8; 16];
    let ok = std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut secret))
        .is_ok();
    if !ok {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            ^ u128::from(std::process::id()) << 64;
        secret = seed.to_le_bytes();
    }
    secret
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each worker's stacks make room for its share of the connections,
    /// not for all of them (set-up time), and never beyond the cap.
    #[test]
    fn connections_are_preallocated_per_worker() {
        let mut cfg = RuntimeConfig {
            max_conns: 16_384,
            ..RuntimeConfig::default()
        };
        assert_eq!(cfg.conns_prealloc_per_worker(1), 16_384);
        assert_eq!(cfg.conns_prealloc_per_worker(4), 4_096);
        assert_eq!(cfg.conns_prealloc_per_worker(3), 5_462);
        assert_eq!(cfg.conns_prealloc_per_worker(0), 16_384);
        cfg.max_conns = 1_000_000;
        assert_eq!(cfg.conns_prealloc_per_worker(2), CONNS_PREALLOC_MAX / 2);
    }

    /// The default UMEM grows with the queues by their fill rings, not by
    /// the whole of one queue's frames each (the kernel's per-socket pools
    /// then grew as queues²); `--frames` is per queue as given.
    #[test]
    fn default_frames_scale_with_the_queues() {
        let cfg = RuntimeConfig::default();
        let total = |q: u32| q * cfg.frames_for(q);
        assert_eq!(total(1), 65_536, "one queue as before");
        assert_eq!(total(2), 81_920);
        assert_eq!(total(4), 114_688);
        assert!(total(4) < 2 * total(1), "not 4x one queue's");
        // Each fill ring still gets what one queue's did, at most 16,384.
        assert!((1..=64).all(|q| cfg.frames_for(q) / 2 >= 8_192));
        let set = RuntimeConfig {
            frames_per_queue: Some(4096),
            ..RuntimeConfig::default()
        };
        assert_eq!(set.frames_for(4), 4096);
    }
}
