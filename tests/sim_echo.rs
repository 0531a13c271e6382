//! The echo server in the simulator, and a network of three stacks.

use core::net::SocketAddrV4;
use core::time::Duration;
use hashbrown::HashSet;
use xdptcp::app::{App, CloseReason, Event};
use xdptcp::apps::bulk::{self, BulkClient, BulkConfig, BulkServer};
use xdptcp::apps::echo::EchoServer;
use xdptcp::apps::stream::Stream;
use xdptcp::io::mem::scenario::{frame_size, host_ip, host_mac, host_stack};
use xdptcp::io::mem::{FramePool, Limits, LinkConfig, Network, SimApp, SimDevice, StackNode};
use xdptcp::stack::{ConnId, Stack};
use xdptcp::tcp::Config;
use xdptcp::time::Instant;

const ECHO_PORT: u16 = 7;

/// Sends `bytes` of a stream, half-closes, and checks the echo.
struct EchoClient {
    server: SocketAddrV4,
    bytes: u64,
    stream: Stream,
    id: Option<ConnId>,
    started: bool,
    sent: u64,
    shut: bool,
    got: u64,
    bad_at: Option<u64>,
    read_closed: bool,
    closed: Option<CloseReason>,
}

impl EchoClient {
    fn new(server: SocketAddrV4, bytes: u64, seed: u64) -> Self {
        EchoClient {
            server,
            bytes,
            stream: Stream::new(seed, 0, 0),
            id: None,
            started: false,
            sent: 0,
            shut: false,
            got: 0,
            bad_at: None,
            read_closed: false,
            closed: None,
        }
    }

    fn pump(&mut self, stack: &mut Stack<SimDevice>, id: ConnId) {
        let mut buf = [0u8; 8192];
        while self.sent < self.bytes {
            let n = (self.bytes - self.sent).min(buf.len() as u64) as usize;
            self.stream.fill(self.sent, &mut buf[..n]);
            let took = stack.send(id, &buf[..n]).unwrap();
            self.sent += took as u64;
            if took < n {
                return;
            }
        }
        if !self.shut {
            stack.shutdown(id).unwrap();
            self.shut = true;
        }
    }

    fn read(&mut self, stack: &mut Stack<SimDevice>, id: ConnId) {
        let (stream, got, bad) = (self.stream, &mut self.got, &mut self.bad_at);
        while stack
            .recv_with(id, &mut |d: &[u8]| {
                if let (None, Some(i)) = (*bad, stream.check(*got, d)) {
                    *bad = Some(*got + i as u64);
                }
                *got += d.len() as u64;
                d.len()
            })
            .unwrap_or(0)
            > 0
        {}
    }

    fn intact(&self) -> bool {
        self.got == self.bytes
            && self.bad_at.is_none()
            && self.read_closed
            && self.closed == Some(CloseReason::Normal)
    }
}

impl App<SimDevice> for EchoClient {
    fn on_event(&mut self, stack: &mut Stack<SimDevice>, _now: Instant, ev: Event) {
        match ev {
            Event::Connected { id } | Event::Writable { id } => self.pump(stack, id),
            Event::Readable { id } => self.read(stack, id),
            Event::ReadClosed { id } => {
                self.read(stack, id);
                self.read_closed = true;
            }
            Event::Closed { reason, .. } => self.closed = Some(reason),
            _ => {}
        }
    }
    fn on_poll(&mut self, stack: &mut Stack<SimDevice>, now: Instant) {
        if !self.started {
            self.started = true;
            self.id = Some(stack.connect(now, self.server).unwrap());
        }
    }
}

impl SimApp for EchoClient {
    fn finished(&self, _: &Stack<SimDevice>) -> bool {
        self.closed.is_some()
    }
}

fn network(n: usize, link: LinkConfig, seed: u64) -> Network {
    let wire = FramePool::new(frame_size(link.mtu), 1 << 20);
    Network::new(
        (0..n as u8).map(host_mac).collect(),
        move |_, _| link.clone(),
        seed,
        wire,
    )
}

fn echo_run(link: LinkConfig, bytes: u64, seed: u64) -> (EchoClient, EchoServer) {
    let mut net = network(2, link.clone(), seed);
    let tcp = Config::default();
    let mut a = StackNode::new(
        host_stack(&net, 0, tcp.clone(), seed, link.mtu, 8192),
        EchoClient::new(SocketAddrV4::new(host_ip(1), ECHO_PORT), bytes, seed),
    );
    let mut b = StackNode::new(
        host_stack(&net, 1, tcp, seed, link.mtu, 8192),
        EchoServer::new(ECHO_PORT),
    );
    // The echo server never finishes by itself: stop when the client is done.
    let out = net.run(&mut [&mut a, &mut b], Limits::default());
    assert!(out.is_finished(), "{}", out.describe());
    (a.app, b.app)
}

#[test]
fn echo_returns_every_byte_and_passes_the_half_close() {
    for (loss, seed) in [(0.0, 1), (0.05, 2), (0.1, 3)] {
        let link = LinkConfig {
            loss,
            reorder: loss,
            rate_bps: Some(100_000_000),
            delay: Duration::from_millis(5),
            ..LinkConfig::default()
        };
        let (c, s) = echo_run(link, 300_000, seed);
        assert!(
            c.intact(),
            "loss {loss}: got {} bad {:?} rc {} {:?}",
            c.got,
            c.bad_at,
            c.read_closed,
            c.closed
        );
        assert_eq!(s.stats.bytes_echoed, 300_000);
        assert_eq!(s.stats.accepted, 1);
    }
}

#[test]
fn echo_respects_short_writes() {
    // Small send buffers on the server force short writes; nothing is lost.
    let link = LinkConfig {
        rate_bps: Some(10_000_000),
        delay: Duration::from_millis(2),
        ..LinkConfig::default()
    };
    let mut net = network(2, link.clone(), 4);
    let small = Config {
        snd_buf: 8 * 1024,
        ..Config::default()
    };
    let mut a = StackNode::new(
        host_stack(&net, 0, Config::default(), 4, link.mtu, 8192),
        EchoClient::new(SocketAddrV4::new(host_ip(1), ECHO_PORT), 500_000, 4),
    );
    let mut b = StackNode::new(
        host_stack(&net, 1, small, 4, link.mtu, 8192),
        EchoServer::new(ECHO_PORT),
    );
    let out = net.run(&mut [&mut a, &mut b], Limits::default());
    assert!(out.is_finished(), "{}", out.describe());
    assert!(a.app.intact());
    assert!(b.app.stats.short_writes > 0);
    assert_eq!(b.app.stats.bytes_echoed, 500_000);
}

/// A bulk server and an echo server on one stack, events routed by port and
/// connection.
struct Both {
    bulk: BulkServer,
    echo: EchoServer,
    echo_ids: HashSet<ConnId>,
}

impl App<SimDevice> for Both {
    fn on_event(&mut self, stack: &mut Stack<SimDevice>, now: Instant, ev: Event) {
        let id = match ev {
            Event::Accepted { id, port } => {
                if port == ECHO_PORT {
                    self.echo_ids.insert(id);
                }
                Some(id)
            }
            Event::Readable { id }
            | Event::Writable { id }
            | Event::ReadClosed { id }
            | Event::Connected { id }
            | Event::Closed { id, .. } => Some(id),
            Event::UdpReadable { .. } | Event::UdpError { .. } => None,
        };
        if id.is_some_and(|id| self.echo_ids.contains(&id)) {
            self.echo.on_event(stack, now, ev);
        } else {
            self.bulk.on_event(stack, now, ev);
        }
        if let Event::Closed { id, .. } = ev {
            self.echo_ids.remove(&id);
        }
    }
    fn on_poll(&mut self, stack: &mut Stack<SimDevice>, now: Instant) {
        self.bulk.on_poll(stack, now);
        self.echo.on_poll(stack, now);
    }
}

impl SimApp for Both {
    fn finished(&self, _: &Stack<SimDevice>) -> bool {
        self.bulk.finished()
    }
}

#[test]
fn three_stacks_share_a_network() {
    let link = LinkConfig {
        loss: 0.02,
        rate_bps: Some(50_000_000),
        delay: Duration::from_millis(3),
        ..LinkConfig::default()
    };
    let mut net = network(3, link.clone(), 11);
    let cfg = BulkConfig {
        conns: 4,
        bytes: 100_000,
        bidir: false,
        seed: 11,
        port: 5001,
        work: Default::default(),
    };
    let tcp = Config::default();
    let mut a = StackNode::new(
        host_stack(&net, 0, tcp.clone(), 11, link.mtu, 8192),
        BulkClient::new(cfg, host_ip(1)),
    );
    let both = Both {
        bulk: BulkServer::new(cfg),
        echo: EchoServer::new(ECHO_PORT),
        echo_ids: HashSet::new(),
    };
    let mut b = StackNode::new(host_stack(&net, 1, tcp.clone(), 11, link.mtu, 8192), both);
    let mut c = StackNode::new(
        host_stack(&net, 2, tcp, 11, link.mtu, 8192),
        EchoClient::new(SocketAddrV4::new(host_ip(1), ECHO_PORT), 200_000, 11),
    );
    let out = net.run(&mut [&mut a, &mut b, &mut c], Limits::default());
    assert!(out.is_finished(), "{}", out.describe());
    for r in bulk::report(&a.app, &b.app.bulk) {
        assert!(r.intact, "{r:?}");
    }
    assert!(c.app.intact());
    // A and C never talk to each other except for ARP broadcasts.
    for (i, j) in [(0, 2), (2, 0)] {
        let s = net.link_stats(i, j);
        assert!((1..=5).contains(&s.tx_packets), "{i}->{j}: {s:?}");
    }
    assert_eq!(net.unknown_dst, 0);
}
