//! One worker's stack: demux of Ethernet/ARP/IPv4/ICMP/UDP/TCP for its own
//! addresses, the ARP cache, the TCP connection table and listeners (with a
//! SYN backlog and SYN cookies), UDP sockets, the timer wheel and counters.
//!
//! Files by concern: `demux` (receive path, RFC 1122 host rules),
//! `fast_rx` (its common case: a TCP frame read at fixed offsets), `arp`
//! (cache, RFC 826), `iface` (routing, ARP I/O, transmit), `emit` (the TCP
//! [`SegmentSink`](crate::tcp::SegmentSink)), `icmp`, `udp`, `tcp_table`
//! (slab + 4-tuple map), `listener` (SYN backlog, SYN cookies), `conns`
//! (events, timers, dirty list), `pool` (frame reserves under pool
//! pressure, see [`PoolConfig`]), [`timer`], [`cookie`], [`counters`].

mod arp;
mod conns;
pub mod cookie;
pub mod counters;
mod demux;
mod emit;
mod events;
mod fast_rx;
pub mod frag;
mod hasher;
mod icmp;
mod icmp_err;
mod iface;
mod listener;
mod mptcp;
mod mptcp_conn_migrate;
mod mptcp_foreign;
mod mptcp_localize;
mod mptcp_migrate;
mod mptcp_pm;
mod mptcp_rehome;
mod mptcp_remote;
mod mptcp_spares;
mod pool;
mod ratelimit;
mod tcp_migrate;
mod tcp_table;
pub mod timer;
mod tx_template;
mod udp;

pub use mptcp::JoinTarget;
pub use mptcp_foreign::mptcp_route;
pub use mptcp_localize::mptcp_remote_localize;
pub use mptcp_migrate::{Migrant, STAY, STRAYS, STRAY_GAP};
pub use mptcp_pm::{mptcp_restore_address, mptcp_withdraw_address, PortFilter};
pub use mptcp_rehome::{mptcp_conn_subs_ready, mptcp_conn_unlink};
pub use mptcp_remote::{mptcp_remote_input, mptcp_remote_schedule, RemoteMsg};
pub use tcp_migrate::TcpMigrant;

pub use arp::ARP_CACHE_MAX;
pub use counters::StackCounters;
pub use pool::{default_reserve, PoolConfig};
pub use udp::{Datagram, UdpError};

use crate::app::Event;
use crate::io::Device;
use crate::tcp::isn::IsnGenerator;
use crate::tcp::{self, ConnStats, Connection, FourTuple, State};
use crate::time::Instant;
use crate::wire::MacAddr;
use cookie::SynCookies;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use hasher::{KeyedHasher, Map};
use iface::Iface;
use listener::Listener;
use tcp_table::{ConnEntry, ConnTable};
use timer::TimerWheel;
use udp::UdpSocket;

/// A handle to a TCP connection in one stack (slot index + generation, so a
/// stale handle never reaches a reused slot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId {
    pub index: u32,
    pub generation: u32,
}

/// An address the stack owns, with its subnet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Cidr {
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

/// Errors from the socket calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// No such connection (closed, or a stale id).
    InvalidConn,
    /// The port is already bound / listening.
    AddrInUse,
    /// The connection table or the ephemeral ports are exhausted.
    Exhausted,
    /// Operation not allowed in the connection's state (e.g. send after shutdown).
    InvalidState,
    /// No route: the destination is not on any of our subnets and there is no gateway.
    Unreachable,
}

/// Everything one stack needs to know.
#[derive(Debug, Clone)]
pub struct StackConfig {
    pub mac: MacAddr,
    pub addrs: Vec<Ipv4Cidr>,
    pub gateway: Option<Ipv4Addr>,
    pub tcp: tcp::Config,
    /// Most TCP connections at once (including TIME-WAIT).
    pub max_conns: usize,
    /// Connections whose memory is allocated (and faulted in) when the
    /// stack is made, so that a burst of new connections up to that many
    /// allocates nothing (`tcp_table::ConnTable::new`); beyond, the table
    /// grows a chunk at a time. 0 (the default): all on demand.
    pub conns_prealloc: usize,
    /// Half-open connections per listener before SYN cookies take over.
    pub syn_backlog: usize,
    /// Accepted-but-not-yet-announced connections per listener.
    pub accept_backlog: usize,
    /// ARP neighbour unreachability detection (RFC 1122 §2.3.2.1, RFC
    /// 4861 §7.3): an entry stays REACHABLE 0.5–1.5 × `arp_reachable` after
    /// a confirmation, a STALE entry in use is probed after `arp_delay` with
    /// `arp_ucast_probes` unicast requests, and an unused STALE entry is
    /// removed after `arp_stale`.
    pub arp_reachable: Duration,
    pub arp_delay: Duration,
    pub arp_ucast_probes: u32,
    pub arp_stale: Duration,
    /// Interval between requests, and broadcast retries before giving up.
    pub arp_retry: Duration,
    pub arp_retries: u32,
    /// Packets kept per unresolved next hop while ARP resolves it.
    pub arp_queue: usize,
    /// Packets (each a transmit frame) kept over all unresolved next hops;
    /// beyond, the oldest is dropped (`drop_arp_queue`). `None`: half the
    /// TX reserve (see [`PoolConfig`]), so that a spoofed-source SYN flood,
    /// whose SYN-ACKs all wait here, cannot take the frames kept for
    /// control traffic, let alone the pool.
    pub arp_queue_frames: Option<usize>,
    /// Frames of datagrams queued per UDP socket (a datagram reassembled
    /// from fragments counts each frame it holds).
    pub udp_queue: usize,
    /// Frames held over all datagrams being reassembled from fragments;
    /// beyond, the oldest incomplete datagram is dropped. `None`: an
    /// eighth of the RX pool, at least 64 (one 64 KiB datagram).
    pub frag_frames: Option<usize>,
    /// RFC 791 §3.2 reassembly timeout (Linux ipfrag_time: 30 s).
    pub frag_timeout: Duration,
    /// Secret for ISNs and SYN cookies.
    pub secret: [u8; 16],
    /// Ephemeral port range for active opens.
    pub ephemeral_ports: (u16, u16),
    /// Frames kept back from application data (see [`PoolConfig`]).
    pub pool: PoolConfig,
    /// Connections that may linger in TIME-WAIT at once; beyond, a
    /// connection entering it is closed at once (Linux tcp_max_tw_buckets:
    /// "time wait bucket table overflow"), so TIME-WAIT cannot fill the
    /// connection table. A newer SYN may also reuse a TIME-WAIT 4-tuple
    /// (RFC 6191).
    pub max_time_wait: usize,
    /// Stack-wide budget of ACKs answering invalid segments per second
    /// (RFC 5961 §7; randomized per second, see `ratelimit`), on top of
    /// each connection's 10. 0: no stack-wide limit (Linux ≥ 6.0 default).
    pub answer_acks_per_sec: u32,
    /// Accept TCP/UDP segments whose checksum field holds only the
    /// pseudo-header sum (a veth peer with transmit checksum offload sends
    /// them so: `CHECKSUM_PARTIAL`, finished by no hardware). Set by the
    /// runtime for veth interfaces only; counted as
    /// `rx_csum_partial_accepted`. Elsewhere such segments are bad checksums.
    pub accept_partial_checksum: bool,
}

impl StackConfig {
    /// A stack owning `addr` behind `mac`, with defaults a server expects:
    /// no gateway, default TCP, 65,536 connections, SYN backlog 1,024 (SYN
    /// cookies beyond), ARP as Linux (reachable 30 s, delay 5 s, 3 unicast
    /// probes) with 10 broadcast retries every 500 ms, the IANA ephemeral range (RFC 6335 §6).
    pub fn new(mac: MacAddr, addr: Ipv4Cidr, secret: [u8; 16]) -> Self {
        StackConfig {
            mac,
            addrs: vec![addr],
            gateway: None,
            tcp: tcp::Config::default(),
            max_conns: 65536,
            conns_prealloc: 0,
            syn_backlog: 1024,
            accept_backlog: 1024,
            arp_reachable: Duration::from_secs(30),
            arp_delay: Duration::from_secs(5),
            arp_ucast_probes: 3,
            arp_stale: Duration::from_secs(60),
            arp_retry: Duration::from_millis(500),
            arp_retries: 10,
            arp_queue: 256,
            arp_queue_frames: None,
            udp_queue: 256,
            frag_frames: None,
            frag_timeout: frag::FRAG_TIMEOUT,
            secret,
            ephemeral_ports: (49152, 65535),
            pool: PoolConfig::default(),
            max_time_wait: 32768,
            answer_acks_per_sec: 1000,
            accept_partial_checksum: false,
        }
    }
}

/// Timer wheel granularity and size (deadlines beyond the horizon are the
/// wheel's business).
const TIMER_TICK: Duration = Duration::from_millis(1);
const TIMER_SLOTS: usize = 4096;

/// One worker's stack over device `D`.
pub struct Stack<D: Device> {
    cfg: StackConfig,
    iface: Iface<D>,
    conns: ConnTable<D::Frame>,
    listeners: Map<u16, Listener>,
    udp: Map<u16, UdpSocket<D::Frame>>,
    events: events::EventQueue,
    /// Entries are (connection, the deadline it was armed for).
    timers: TimerWheel<(ConnId, Instant)>,
    /// Connections whose `poll_transmit` is due on the next `poll`.
    dirty: Vec<ConnId>,
    /// Connections whose last emit was refused by the device: retried on the
    /// next `poll` (not counted in `poll_at`, so a full ring cannot spin).
    retry: Vec<ConnId>,
    expired: Vec<(ConnId, Instant)>,
    isn: IsnGenerator,
    cookies: SynCookies,
    cookie_replays: cookie::CookieReplays,
    /// Rate limit of the ICMP errors we send.
    limits: ratelimit::Limits,
    /// Connections counted in TIME-WAIT (bounded by `max_time_wait`).
    time_wait: usize,
    /// Next ephemeral port to try.
    next_port: u16,
    /// The latest `now` seen.
    now: Instant,
    /// Frame-pool reserves and the connections waiting for TX frames.
    pool: pool::PoolState,
    /// MPTCP keys, and the tokens in use (RFC 8684 §3.1: unique here).
    mptcp: mptcp::Tokens,
    /// MPTCP subflows and connections whose other half is in another
    /// worker (`mptcp_remote`), when the stack is one of several workers'.
    remote: Option<Box<mptcp_remote::Remote<D::Frame>>>,
    /// Lent frames of a connection in another stack of the worker whose
    /// subflow here went: (that stack, the connection, the subflow's slot,
    /// the frames), handed over by `mptcp_route`.
    mptcp_returns: Vec<MptcpReturns<D::Frame>>,
    /// IPv4 datagrams arriving in fragments.
    frags: frag::Reassembly<D::Frame>,
}

/// See `Stack::mptcp_returns`.
type MptcpReturns<F> = (usize, ConnId, usize, Vec<crate::tcp::conn::Returned<F>>);

impl<D: Device> Stack<D> {
    pub fn new(mut cfg: StackConfig, dev: D, now: Instant) -> Self {
        // RFC 9293 §3.7.1: our MSS is bounded by the link MTU.
        let mss_max = dev.mtu().saturating_sub(40).clamp(64, u16::MAX as usize) as u16;
        cfg.tcp.mss = cfg.tcp.mss.min(mss_max);
        // Receive memory is counted by frame truesize: a buffer of less
        // than a few full frames would leave a window that cannot take
        // one segment (Linux keeps rcvbuf above a few skbs likewise).
        let frame = (dev.mtu() + 14 + crate::io::HEADROOM).next_multiple_of(1024);
        cfg.tcp.rcv_buf = cfg.tcp.rcv_buf.max(4 * frame);
        let arp = arp::ArpCache::new(
            KeyedHasher::new(&cfg.secret, 1),
            arp::ArpTiming {
                reachable: cfg.arp_reachable,
                delay: cfg.arp_delay,
                ucast_probes: cfg.arp_ucast_probes,
                retry: cfg.arp_retry,
                retries: cfg.arp_retries,
                stale: cfg.arp_stale,
            },
            cfg.arp_queue,
            cfg.arp_queue_frames.unwrap_or_else(|| {
                let reserve = cfg
                    .pool
                    .tx_reserve
                    .unwrap_or_else(|| default_reserve(dev.total_frames()));
                (reserve / 2).max(1)
            }),
        );
        let iface = Iface {
            dev,
            mac: cfg.mac,
            addrs: cfg.addrs.clone(),
            gateway: cfg.gateway,
            ident: 0,
            counters: StackCounters::default(),
            arp,
        };
        let (lo, hi) = cfg.ephemeral_ports;
        let span = u32::from(hi.saturating_sub(lo)) + 1;
        // Start the ephemeral search at a secret-dependent port (RFC 6056
        // §3.3.1 spirit: not predictable from outside).
        let offset = u32::from(u16::from_le_bytes([cfg.secret[0], cfg.secret[1]])) % span;
        let next_port = (u32::from(lo) + offset).min(u32::from(u16::MAX)) as u16;
        Stack {
            conns: ConnTable::new(KeyedHasher::new(&cfg.secret, 2), cfg.conns_prealloc),
            listeners: Map::with_hasher(KeyedHasher::new(&cfg.secret, 3)),
            udp: Map::with_hasher(KeyedHasher::new(&cfg.secret, 4)),
            events: events::EventQueue::default(),
            timers: TimerWheel::new(TIMER_TICK, TIMER_SLOTS, now),
            dirty: Vec::new(),
            retry: Vec::new(),
            expired: Vec::new(),
            isn: IsnGenerator::new(cfg.secret),
            cookies: SynCookies::new(cookie_key(&cfg.secret)),
            cookie_replays: cookie::CookieReplays::new(4096),
            limits: ratelimit::Limits::new(now, &cfg.secret, cfg.answer_acks_per_sec),
            time_wait: 0,
            next_port,
            now,
            pool: pool::PoolState::new(&cfg.pool, &iface.dev),
            mptcp: mptcp::Tokens::new(&cfg.secret),
            remote: None,
            mptcp_returns: Vec::new(),
            frags: frag::Reassembly::new(
                KeyedHasher::new(&cfg.secret, 5),
                cfg.frag_frames
                    .unwrap_or_else(|| (iface.dev.rx_total_frames().unwrap_or(0) / 8).max(64)),
                cfg.frag_timeout,
            ),
            iface,
            cfg,
        }
    }

    /// Process one received Ethernet frame `frame[..len]`. The frame is kept
    /// (zero-copy) if it carries accepted TCP payload or a UDP datagram.
    pub fn receive(&mut self, now: Instant, frame: D::Frame, len: usize) {
        self.now = self.now.max(now);
        self.rx(now, frame, len);
    }

    /// Move the stack's clock to `now` (never back) without polling: what
    /// `send` transmits at once (`tcp::Connection::send_now`) carries the
    /// clock of the last `receive`, `poll` or `advance_clock`;
    /// [`crate::app::dispatch`] calls it before the application runs.
    #[inline]
    pub fn advance_clock(&mut self, now: Instant) {
        self.now = self.now.max(now);
    }

    /// Run expired timers and transmit whatever is due (data the app wrote,
    /// ACKs for a received batch, retransmissions, ARP retries).
    pub fn poll(&mut self, now: Instant) {
        self.now = self.now.max(now);
        if !self.retry.is_empty() {
            for id in core::mem::take(&mut self.retry) {
                self.mark_dirty(id);
            }
        }
        self.run_timers(now);
        if !self.mptcp.pm_work.is_empty() && self.mptcp.foreign.index().is_none() {
            // A stack alone runs its path managers here; a worker's
            // several stacks run them together in `mptcp_route`.
            let mut one = [&mut *self];
            mptcp_pm::pm_run(&mut one, 0);
        }
        // Most polls fall between ARP deadlines: no call, no list.
        if self.iface.arp.poll_at().is_some_and(|d| now >= d) {
            for tuple in self.iface.poll_arp(now) {
                self.neighbour_failed(now, &tuple);
            }
        }
        self.poll_frags(now);
        self.flush_dirty(now);
        self.rx_relieve(now);
        self.pool_wake();
    }

    /// When `poll` next has something to do.
    pub fn poll_at(&self) -> Option<Instant> {
        let dirty = (!self.dirty.is_empty() || self.pool_wake_due()).then_some(self.now);
        [
            dirty,
            self.timers.next_expiry(),
            self.iface.arp.poll_at(),
            self.frags.poll_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Whether a connection (any state, TIME-WAIT included) has `tuple`.
    pub fn has_conn(&self, tuple: &FourTuple) -> bool {
        self.conns.contains(tuple)
    }

    /// Reassembled TCP datagrams of flows this stack does not hold, while
    /// flows are logged (several workers): whole unfragmented frames and
    /// their lengths, for the runtime to hand to the flow's owner, or to
    /// give back to [`Self::receive`] when no other worker has the flow.
    pub fn take_strays(&mut self) -> Vec<(D::Frame, usize)> {
        core::mem::take(&mut self.frags.strays)
    }

    /// Start logging connections opened and closed (for a runtime's flow
    /// directory); drain the log with [`Self::drain_flow_log`].
    pub fn log_flows(&mut self) {
        self.conns.flow_log.get_or_insert_with(Vec::new);
    }

    /// Every connection opened (`true`) or closed (`false`) since the last
    /// call, in order.
    pub fn drain_flow_log(&mut self, mut f: impl FnMut(&FourTuple, bool)) {
        if let Some(log) = &mut self.conns.flow_log {
            for (t, open) in log.drain(..) {
                f(&t, open);
            }
        }
    }

    pub fn device(&self) -> &D {
        &self.iface.dev
    }
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.iface.dev
    }
    /// The stack's counters, live connections' included (summed here, on
    /// demand: O(connections)).
    pub fn counters(&self) -> StackCounters {
        let mut c = self.iface.counters.clone();
        for e in self.conns.iter() {
            conns::add_conn_counters(&mut c, e.conn.stats());
        }
        c
    }
    pub fn config(&self) -> &StackConfig {
        &self.cfg
    }

    /// The next event for the application, if any (see [`crate::app::dispatch`]).
    ///
    /// `Readable`, `Writable` and `UdpReadable` are not repeated while one
    /// is queued: on such an event, read (or write) until it would block.
    /// `Closed` is delivered when both directions are done, which for the
    /// side that closed first is its entry into TIME-WAIT (the connection
    /// then lingers for 2·MSL, invisible to the application); after a
    /// normal close it waits until the data received before the FIN has
    /// been read (a reset, timeout or abort discards it).
    ///
    /// Inline up to the empty test (a dispatch loop's last call, one of
    /// every two, finds nothing) and for the common event, a connection's
    /// `Readable` (its queued mark cleared on the entry); the rest out of
    /// line.
    #[inline]
    pub fn next_event(&mut self) -> Option<Event> {
        match self.events.front() {
            None => None,
            Some(&Event::Readable { id }) => {
                self.events.pop_front();
                if let Some(e) = self.conns.get_mut(id) {
                    e.readable_queued = false;
                }
                Some(Event::Readable { id })
            }
            Some(_) => self.next_event_queued(),
        }
    }

    /// `next_event` with an event queued.
    #[inline(never)]
    fn next_event_queued(&mut self) -> Option<Event> {
        let ev = self.events.pop_front()?;
        match ev {
            Event::Accepted { port, .. } => {
                if let Some(l) = self.listeners.get_mut(&port) {
                    l.accept_pending = l.accept_pending.saturating_sub(1);
                }
            }
            Event::Readable { id } => {
                if let Some(e) = self.conns.get_mut(id) {
                    e.readable_queued = false;
                }
            }
            Event::Writable { id } => {
                if let Some(e) = self.conns.get_mut(id) {
                    e.writable_queued = false;
                }
            }
            Event::UdpReadable { port } => {
                if let Some(s) = self.udp.get_mut(&port) {
                    s.event_pending = false;
                }
            }
            Event::UdpError { port } => {
                if let Some(s) = self.udp.get_mut(&port) {
                    s.error_pending = false;
                }
            }
            _ => {}
        }
        Some(ev)
    }

    /// Events queued for the application.
    pub fn pending_events(&self) -> usize {
        self.events.len()
    }

    /// Accept TCP connections on `port` of every local address.
    pub fn listen(&mut self, port: u16) -> Result<(), Error> {
        if port == 0 {
            return Err(Error::InvalidState);
        }
        if self.listeners.contains_key(&port) {
            return Err(Error::AddrInUse);
        }
        self.listeners.insert(port, Listener::default());
        Ok(())
    }

    /// Stop accepting on `port`. Connections already accepted or half-open
    /// stay; SYNs to the port are then answered with RST.
    pub fn unlisten(&mut self, port: u16) -> Result<(), Error> {
        self.listeners
            .remove(&port)
            .map(|_| ())
            .ok_or(Error::InvalidState)
    }

    /// Active open to `remote` from our first address on its subnet and an
    /// ephemeral port.
    pub fn connect(&mut self, now: Instant, remote: SocketAddrV4) -> Result<ConnId, Error> {
        let local_ip = self
            .iface
            .source_for(*remote.ip())
            .ok_or(Error::Unreachable)?;
        if self.conns.len() >= self.cfg.max_conns {
            return Err(Error::Exhausted);
        }
        let (lo, hi) = self.cfg.ephemeral_ports;
        if lo == 0 || lo > hi {
            return Err(Error::Exhausted);
        }
        let span = u32::from(hi - lo) + 1;
        for _ in 0..span {
            let port = self.next_port.clamp(lo, hi);
            self.next_port = if port >= hi { lo } else { port + 1 };
            let local = SocketAddrV4::new(local_ip, port);
            if self.listeners.contains_key(&port)
                || self.conns.contains(&FourTuple { local, remote })
            {
                continue;
            }
            return self.connect_from(now, local, remote);
        }
        Err(Error::Exhausted)
    }

    /// Active open from a chosen local address and port (e.g. a port whose
    /// RSS hash lands on this worker).
    pub fn connect_from(
        &mut self,
        now: Instant,
        local: SocketAddrV4,
        remote: SocketAddrV4,
    ) -> Result<ConnId, Error> {
        self.now = self.now.max(now);
        if !self.iface.is_local(*local.ip()) || local.port() == 0 || remote.port() == 0 {
            return Err(Error::InvalidState);
        }
        if self.iface.next_hop(*remote.ip()).is_none() {
            return Err(Error::Unreachable);
        }
        if self.conns.len() >= self.cfg.max_conns {
            return Err(Error::Exhausted);
        }
        let tuple = FourTuple { local, remote };
        if self.conns.contains(&tuple) {
            return Err(Error::AddrInUse);
        }
        // RFC 6528: ISN from a clock and a keyed hash of the 4-tuple.
        let iss = self.isn.isn(&tuple, now);
        let conn = Connection::connect(&self.cfg.tcp, tuple, iss, now);
        let mut entry = ConnEntry::new(conn, tuple, None);
        entry.visible = true;
        // RFC 8684 §3.2: a connection we open with MPTCP gets a path
        // manager once it is fully established (`mptcp_pm`).
        entry.pm_wait = self.cfg.tcp.mptcp;
        let id = self.conns.insert(entry);
        self.mptcp_assign_key(id);
        self.iface.counters.conns_opened += 1;
        self.mark_dirty(id);
        self.after_op(id);
        Ok(id)
    }

    /// The entry of a connection the application may use.
    fn app_conn(&mut self, id: ConnId) -> Result<&mut ConnEntry<D::Frame>, Error> {
        match self.conns.get_mut(id) {
            Some(e) if e.visible && !e.detached => Ok(e),
            _ => Err(Error::InvalidConn),
        }
    }

    fn app_conn_ref(&self, id: ConnId) -> Result<&ConnEntry<D::Frame>, Error> {
        match self.conns.get(id) {
            Some(e) if e.visible && !e.detached => Ok(e),
            _ => Err(Error::InvalidConn),
        }
    }

    /// Zero-copy read (see [`tcp::Connection::recv_with`]).
    pub fn recv_with(
        &mut self,
        id: ConnId,
        f: &mut dyn FnMut(&[u8]) -> usize,
    ) -> Result<usize, Error> {
        let Stack { conns, dirty, .. } = self;
        let e = match conns.get_mut(id) {
            Some(e) if e.visible && !e.detached => e,
            _ => return Err(Error::InvalidConn),
        };
        let n = e.conn.recv_with(f);
        // The window opened: the connection may owe a window update.
        if n > 0 && conns::app_io_dirty(dirty, id, e) {
            self.after_op(id);
        }
        Ok(n)
    }

    /// Copying read.
    pub fn recv(&mut self, id: ConnId, buf: &mut [u8]) -> Result<usize, Error> {
        let mut n = 0;
        self.recv_with(id, &mut |s| {
            let k = s.len().min(buf.len() - n);
            buf[n..n + k].copy_from_slice(&s[..k]);
            n += k;
            k
        })
    }

    /// Queue data; returns bytes accepted: short when the connection's send
    /// buffer is full, or when the device's free TX frames are down to the
    /// reserve kept for control traffic (then `Writable` follows once frames
    /// free up, counted as `tx_pool_short_writes`).
    pub fn send(&mut self, id: ConnId, data: &[u8]) -> Result<usize, Error> {
        let mut budget = self.data_frame_budget();
        let Stack {
            conns,
            iface,
            dirty,
            retry,
            events,
            timers,
            now,
            ..
        } = self;
        let e = match conns.get_mut(id) {
            Some(e) if e.visible && !e.detached => e,
            _ => return Err(Error::InvalidConn),
        };
        let sendable = matches!(
            e.conn.state(),
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        );
        if e.shutdown || !sendable {
            return Err(Error::InvalidState);
        }
        // Application data never takes the reserve (unlike ACKs, copies).
        let mut refused = false;
        let n = e.conn.send(data, &mut || {
            let f = match &mut budget {
                Some(0) => None,
                Some(k) => {
                    *k -= 1;
                    iface.dev.alloc()
                }
                None => iface.dev.alloc(),
            };
            refused |= f.is_none();
            f
        });
        // Sent at once or marked dirty before the pool's count (they
        // touch nothing in common), with the entry still at hand.
        let more = n > 0 && conns::app_send_dirty(iface, events, timers, dirty, retry, *now, id, e);
        if refused {
            self.pool_short_write(id);
        }
        if more {
            self.after_op(id);
        }
        Ok(n)
    }

    /// Zero-copy write: `fill` is offered free space in send frames (one
    /// segment's worth at a time) and returns how many bytes it wrote there;
    /// returning less than offered means it has nothing more. Returns the
    /// bytes queued; limits and `Writable` as for [`send`](Self::send).
    pub fn send_with(
        &mut self,
        id: ConnId,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) -> Result<usize, Error> {
        let mut budget = self.data_frame_budget();
        let Stack { conns, iface, .. } = self;
        let e = match conns.get_mut(id) {
            Some(e) if e.visible && !e.detached => e,
            _ => return Err(Error::InvalidConn),
        };
        let sendable = matches!(
            e.conn.state(),
            State::SynSent | State::SynReceived | State::Established | State::CloseWait
        );
        if e.shutdown || !sendable {
            return Err(Error::InvalidState);
        }
        let mut refused = false;
        let mut alloc = || {
            let f = match &mut budget {
                Some(0) => None,
                Some(k) => {
                    *k -= 1;
                    iface.dev.alloc()
                }
                None => iface.dev.alloc(),
            };
            refused |= f.is_none();
            f
        };
        let n = e.conn.send_with(&mut alloc, fill);
        if refused {
            self.pool_short_write(id);
        }
        if n > 0 {
            self.after_app_write(id);
        }
        Ok(n)
    }

    /// Send back what connection `id` received (an echo), lending its
    /// receive frames to its send queue (see
    /// [`tcp::Connection::echo_received`]): no copy, no new frame. Returns
    /// bytes moved; what did not fit stays readable.
    pub fn echo_received(&mut self, id: ConnId) -> Result<usize, Error> {
        let e = match self.conns.get_mut(id) {
            Some(e) if e.visible && !e.detached => e,
            _ => return Err(Error::InvalidConn),
        };
        if e.shutdown {
            return Err(Error::InvalidState);
        }
        let n = e.conn.echo_received();
        if n > 0 {
            self.after_app_write(id);
        }
        Ok(n)
    }

    /// Bytes `send` would accept now.
    pub fn send_capacity(&self, id: ConnId) -> Result<usize, Error> {
        Ok(self.app_conn_ref(id)?.conn.send_capacity())
    }

    /// In-order bytes ready to read.
    pub fn recv_available(&self, id: ConnId) -> Result<usize, Error> {
        Ok(self.app_conn_ref(id)?.conn.recv_available())
    }

    /// Half-close: FIN after queued data.
    pub fn shutdown(&mut self, id: ConnId) -> Result<(), Error> {
        let e = self.app_conn(id)?;
        if e.shutdown {
            return Ok(());
        }
        e.shutdown = true;
        e.conn.shutdown();
        self.mark_dirty(id);
        self.after_op(id);
        Ok(())
    }

    /// Close for good: FIN after the queued data, and nothing more is read
    /// (the FIN-WAIT-2 timeout applies, `tcp::Config::fin_wait2_timeout`).
    /// Events keep coming until `Closed`.
    pub fn close(&mut self, id: ConnId) -> Result<(), Error> {
        let e = self.app_conn(id)?;
        e.shutdown = true;
        e.conn.close();
        self.mark_dirty(id);
        self.after_op(id);
        Ok(())
    }

    /// Send RST and forget the connection (a `Closed{Aborted}` event follows).
    pub fn abort(&mut self, id: ConnId) -> Result<(), Error> {
        self.app_conn(id)?;
        self.mptcp_fastclose(id);
        self.abort_conn(id);
        Ok(())
    }

    /// RFC 9293 §3.10.5 ABORT on every connection, the app's or not (RST
    /// where the state calls for one; TIME-WAIT and handshakes just go):
    /// what a process's exit does to its sockets, so that peers do not
    /// keep retransmitting to a stack that has stopped. At most `limit`
    /// connections per call, so the caller can drain its transmit ring in
    /// between; returns how many are left.
    pub fn abort_all(&mut self, now: Instant, limit: usize) -> usize {
        self.now = now;
        let ids: Vec<ConnId> = self.conns.ids().take(limit).collect();
        for id in ids {
            self.mptcp_fastclose(id);
            self.abort_conn(id);
        }
        self.conns.len()
    }

    fn abort_conn(&mut self, id: ConnId) {
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };
        e.aborted = true;
        e.conn.abort();
        // The RST leaves now; then the connection is removed.
        let now = self.now;
        self.transmit_conn(id, now);
        self.after_op(id);
        if self.conns.get(id).is_some() {
            // The connection did not report itself closed: finish it here.
            self.close_conn(id, true);
        }
    }

    pub fn set_nodelay(&mut self, id: ConnId, nodelay: bool) -> Result<(), Error> {
        self.app_conn(id)?.conn.set_nodelay(nodelay);
        Ok(())
    }

    /// Keepalive for one connection (RFC 1122 §4.2.3.6); `None`: off.
    pub fn set_keepalive(&mut self, id: ConnId, ka: Option<tcp::Keepalive>) -> Result<(), Error> {
        self.app_conn(id)?.conn.set_keepalive(ka);
        self.rearm(id);
        Ok(())
    }

    pub fn state(&self, id: ConnId) -> Result<State, Error> {
        Ok(self.app_conn_ref(id)?.conn.state())
    }

    /// The connection's addresses.
    pub fn tuple(&self, id: ConnId) -> Result<FourTuple, Error> {
        Ok(self.app_conn_ref(id)?.tuple)
    }

    pub fn conn_stats(&self, id: ConnId) -> Result<ConnStats, Error> {
        Ok(*self.app_conn_ref(id)?.conn.stats())
    }

    /// Bytes the application wrote that the peer has not acknowledged
    /// yet (for MPTCP, the connection's DATA_ACK; a subflow's
    /// `ConnStats::bytes_acked` counts only its own share).
    pub fn send_unacked(&self, id: ConnId) -> Result<usize, Error> {
        Ok(self.app_conn_ref(id)?.conn.send_unacked())
    }

    /// MPTCP: bytes of ours sent and not yet covered by the peer's
    /// DATA_ACK (RFC 8684 §3.3.2).
    pub fn mptcp_snd_unacked(&self, id: ConnId) -> Result<usize, Error> {
        Ok(self.app_conn_ref(id)?.conn.mptcp_snd_unacked())
    }

    /// Check every connection's invariants
    /// ([`Connection::check_invariants`](crate::tcp::Connection::check_invariants)).
    pub fn check_invariants(&self) -> Result<(), String> {
        for e in self.conns.iter() {
            e.conn.check_invariants().map_err(|m| {
                format!(
                    "{}:{} -> {}: {m}",
                    e.tuple.local.ip(),
                    e.tuple.local.port(),
                    e.tuple.remote
                )
            })?;
        }
        Ok(())
    }

    /// Change the interface's MAC address (what a NIC replacement or a
    /// failover does). Neighbours learn it from our next ARP exchange; no
    /// gratuitous ARP is sent.
    pub fn set_mac(&mut self, mac: MacAddr) {
        self.iface.mac = mac;
    }

    /// Every connection in the table (any state, the app's or not yet /
    /// no longer), with its state.
    pub fn connections(&self) -> impl Iterator<Item = (FourTuple, State)> + '_ {
        self.conns.iter().map(|e| (e.tuple, e.conn.state()))
    }

    /// Live connections (all states).
    /// Connections lingering in TIME-WAIT.
    pub fn time_wait_count(&self) -> usize {
        self.time_wait
    }

    pub fn conn_count(&self) -> usize {
        self.conns.len()
    }

    /// Connections whose SYN is out and not answered yet (SYN-SENT), to
    /// a next hop ARP resolved (to a silent one no SYN left).
    pub fn syn_sent_count(&self) -> usize {
        let iface = &self.iface;
        self.conns
            .iter()
            .filter(|e| e.conn.state() == State::SynSent)
            .filter(|e| {
                iface
                    .next_hop(*e.tuple.remote.ip())
                    .and_then(|hop| iface.arp.lookup(hop))
                    .is_some()
            })
            .count()
    }

    /// Add a permanent ARP entry (e.g. a peer whose MAC is known up front).
    pub fn arp_insert_static(&mut self, ip: Ipv4Addr, mac: MacAddr) {
        if let Some(q) = self.iface.arp.insert_static(ip, mac) {
            self.iface.flush_waiting(mac, q);
        }
    }

    /// The MAC ARP resolved for `ip`, if any.
    pub fn arp_lookup(&self, ip: Ipv4Addr) -> Option<MacAddr> {
        self.iface.arp.lookup(ip)
    }

    /// Entries in the ARP cache and packets waiting in its queues.
    pub fn arp_stats(&self) -> (usize, usize) {
        (self.iface.arp.len(), self.iface.arp.queued())
    }

    /// Open a UDP socket on `port`.
    pub fn udp_bind(&mut self, port: u16) -> Result<(), Error> {
        if port == 0 {
            return Err(Error::InvalidState);
        }
        if self.udp.contains_key(&port) {
            return Err(Error::AddrInUse);
        }
        self.udp.insert(port, UdpSocket::default());
        Ok(())
    }

    /// Close the UDP socket on `port`, dropping its queued datagrams.
    pub fn udp_unbind(&mut self, port: u16) -> Result<(), Error> {
        self.udp
            .remove(&port)
            .map(|_| ())
            .ok_or(Error::InvalidState)
    }

    /// Next queued datagram on `port`: (source, payload, still in the
    /// frame(s) it arrived in).
    pub fn udp_recv(&mut self, port: u16) -> Option<(SocketAddrV4, Datagram<D::Frame>)> {
        let s = self.udp.get_mut(&port)?;
        let (src, d) = s.queue.pop_front()?;
        s.frames -= d.frames();
        Some((src, d))
    }

    /// Incomplete datagrams held for reassembly, and their frames.
    pub fn frag_stats(&self) -> (usize, usize) {
        (self.frags.len(), self.frags.frames())
    }

    /// Oldest ICMP error reported for datagrams sent from `port`.
    pub fn udp_take_error(&mut self, port: u16) -> Option<UdpError> {
        self.udp.get_mut(&port)?.errors.pop_front()
    }

    /// Send one datagram from `port`.
    pub fn udp_send(&mut self, port: u16, dst: SocketAddrV4, data: &[u8]) -> Result<(), Error> {
        if !self.udp.contains_key(&port) {
            return Err(Error::InvalidState);
        }
        let now = self.now;
        self.udp_output(now, port, dst, data)
    }
}

/// The SYN-cookie key, derived from the stack secret so that it differs
/// from the ISN key.
fn cookie_key(secret: &[u8; 16]) -> [u8; 16] {
    let mut k = *secret;
    for (i, b) in k.iter_mut().enumerate() {
        *b ^= 0x5c ^ (i as u8).wrapping_mul(29);
    }
    k
}
