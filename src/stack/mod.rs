//! One worker's stack: demux of Ethernet/ARP/IPv4/ICMP/UDP/TCP for its own
//! addresses, the ARP cache, the TCP connection table and listeners (with a
//! SYN backlog and SYN cookies), UDP sockets, the timer wheel and counters.

use crate::app::Event;
use crate::io::{Device, Pkt};
use crate::tcp::{self, ConnStats, State};
use crate::time::Instant;
use crate::wire::MacAddr;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

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
    /// Half-open connections per listener before SYN cookies take over.
    pub syn_backlog: usize,
    /// Accepted-but-not-yet-announced connections per listener.
    pub accept_backlog: usize,
    /// ARP entry lifetime, request retry interval and retries.
    pub arp_ttl: Duration,
    pub arp_retry: Duration,
    pub arp_retries: u32,
    /// Packets kept per unresolved next hop while ARP resolves it.
    pub arp_queue: usize,
    /// Datagrams queued per UDP socket.
    pub udp_queue: usize,
    /// Secret for ISNs and SYN cookies.
    pub secret: [u8; 16],
    /// Ephemeral port range for active opens.
    pub ephemeral_ports: (u16, u16),
}

/// Counters of one stack, every drop by reason.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StackCounters {
    pub rx_packets: u64,
    pub rx_bytes: u64,
    pub tx_packets: u64,
    pub tx_bytes: u64,
    pub tx_dropped: u64,
    // Drops by reason (implementation adds fields as needed).
    pub drop_truncated: u64,
    pub drop_bad_length: u64,
    pub drop_bad_checksum: u64,
    pub drop_bad_version: u64,
    pub drop_fragment: u64,
    pub drop_unsupported: u64,
    pub drop_not_for_us: u64,
    pub drop_no_listener: u64,
    pub drop_syn_backlog: u64,
    pub drop_conn_limit: u64,
    pub drop_arp_queue: u64,
    pub drop_udp_no_socket: u64,
    pub drop_udp_queue: u64,
    pub syn_cookies_sent: u64,
    pub syn_cookies_ok: u64,
    pub syn_cookies_bad: u64,
    pub rst_sent: u64,
    pub arp_requests_sent: u64,
    pub arp_replies_sent: u64,
    pub icmp_echo_replies: u64,
    pub conns_opened: u64,
    pub conns_closed: u64,
    // Sums of per-connection counters (closed and live).
    pub retransmits: u64,
    pub rto_timeouts: u64,
    pub fast_recoveries: u64,
}

/// One worker's stack over device `D`.
pub struct Stack<D: Device> {
    _d: core::marker::PhantomData<D>,
}

impl<D: Device> Stack<D> {
    pub fn new(cfg: StackConfig, dev: D, now: Instant) -> Self {
        let _ = (cfg, dev, now);
        todo!()
    }

    /// Process one received Ethernet frame `frame[..len]`. The frame is kept
    /// (zero-copy) if it carries accepted TCP payload or a UDP datagram.
    pub fn receive(&mut self, now: Instant, frame: D::Frame, len: usize) {
        let _ = (now, frame, len);
        todo!()
    }

    /// Run expired timers and transmit whatever is due (data the app wrote,
    /// ACKs for a received batch, retransmissions, ARP retries).
    pub fn poll(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// When `poll` next has something to do.
    pub fn poll_at(&self) -> Option<Instant> {
        todo!()
    }

    pub fn device(&self) -> &D {
        todo!()
    }
    pub fn device_mut(&mut self) -> &mut D {
        todo!()
    }
    pub fn counters(&self) -> &StackCounters {
        todo!()
    }

    /// The next event for the application, if any (see [`crate::app::dispatch`]).
    pub fn next_event(&mut self) -> Option<Event> {
        todo!()
    }

    /// Accept TCP connections on `port` of every local address.
    pub fn listen(&mut self, port: u16) -> Result<(), Error> {
        let _ = port;
        todo!()
    }

    /// Active open to `remote` from our first address on its subnet and an
    /// ephemeral port.
    pub fn connect(&mut self, now: Instant, remote: SocketAddrV4) -> Result<ConnId, Error> {
        let _ = (now, remote);
        todo!()
    }

    /// Zero-copy read (see [`tcp::Connection::recv_with`]).
    pub fn recv_with(&mut self, id: ConnId, f: &mut dyn FnMut(&[u8]) -> usize) -> Result<usize, Error> {
        let _ = (id, f);
        todo!()
    }

    /// Copying read.
    pub fn recv(&mut self, id: ConnId, buf: &mut [u8]) -> Result<usize, Error> {
        let _ = (id, buf);
        todo!()
    }

    /// Queue data; returns bytes accepted.
    pub fn send(&mut self, id: ConnId, data: &[u8]) -> Result<usize, Error> {
        let _ = (id, data);
        todo!()
    }

    /// Half-close: FIN after queued data.
    pub fn shutdown(&mut self, id: ConnId) -> Result<(), Error> {
        let _ = id;
        todo!()
    }

    /// Send RST and forget the connection (a `Closed{Aborted}` event follows).
    pub fn abort(&mut self, id: ConnId) -> Result<(), Error> {
        let _ = id;
        todo!()
    }

    pub fn set_nodelay(&mut self, id: ConnId, nodelay: bool) -> Result<(), Error> {
        let _ = (id, nodelay);
        todo!()
    }

    pub fn state(&self, id: ConnId) -> Result<State, Error> {
        let _ = id;
        todo!()
    }

    pub fn conn_stats(&self, id: ConnId) -> Result<ConnStats, Error> {
        let _ = id;
        todo!()
    }

    /// Live connections (all states).
    pub fn conn_count(&self) -> usize {
        todo!()
    }

    /// Open a UDP socket on `port`.
    pub fn udp_bind(&mut self, port: u16) -> Result<(), Error> {
        let _ = port;
        todo!()
    }

    /// Next queued datagram on `port`: (source, payload in its frame).
    pub fn udp_recv(&mut self, port: u16) -> Option<(SocketAddrV4, Pkt<D::Frame>)> {
        let _ = port;
        todo!()
    }

    /// Send one datagram from `port`.
    pub fn udp_send(&mut self, port: u16, dst: SocketAddrV4, data: &[u8]) -> Result<(), Error> {
        let _ = (port, dst, data);
        todo!()
    }
}
