use xdptcp::app::{App, Event};
use xdptcp::apps::bulk::{BulkClient, BulkConfig, BulkServer};
use xdptcp::io::mem::scenario::*;
use xdptcp::io::mem::*;
use xdptcp::stack::Stack;
use xdptcp::tcp::Config;
use xdptcp::time::Instant;

struct Spy<A>(A, &'static str);
impl<A: App<SimDevice>> App<SimDevice> for Spy<A> {
    fn on_event(&mut self, s: &mut Stack<SimDevice>, now: Instant, ev: Event) {
        let id = match ev {
            Event::Readable { id }
            | Event::ReadClosed { id }
            | Event::Writable { id }
            | Event::Closed { id, .. }
            | Event::Connected { id }
            | Event::Accepted { id, .. } => Some(id),
            _ => None,
        };
        let st = id
            .and_then(|id| s.conn_stats(id).ok())
            .map(|c| (c.bytes_received, c.bytes_acked));
        let state = id.and_then(|id| s.state(id).ok());
        eprintln!(
            "{} {:>8} {:?} stats={:?} {:?}",
            self.1,
            now.micros(),
            ev,
            st,
            state
        );
        self.0.on_event(s, now, ev)
    }
    fn on_poll(&mut self, s: &mut Stack<SimDevice>, now: Instant) {
        self.0.on_poll(s, now)
    }
}
impl SimApp for Spy<BulkClient> {
    fn finished(&self, _: &Stack<SimDevice>) -> bool {
        self.0.finished()
    }
}
impl SimApp for Spy<BulkServer> {
    fn finished(&self, _: &Stack<SimDevice>) -> bool {
        self.0.finished()
    }
}

fn main() {
    let seed: u64 = std::env::args()
        .nth(1)
        .map(|s| s.parse().unwrap())
        .unwrap_or(2);
    let link = LinkConfig {
        loss: 0.05,
        queue_limit: 333,
        ..LinkConfig::default()
    };
    let l2 = link.clone();
    let mut net = Network::new(
        vec![host_mac(0), host_mac(1)],
        move |_, _| l2.clone(),
        seed,
        FramePool::new(2048, 1 << 20),
    );
    let cfg = BulkConfig {
        conns: 1,
        bytes: 256 << 10,
        bidir: true,
        seed,
        port: 5001,
    };
    let mut a = StackNode::new(
        host_stack(&net, 0, Config::default(), seed, 1500, 32768),
        Spy(BulkClient::new(cfg, host_ip(1)), "C"),
    );
    let mut b = StackNode::new(
        host_stack(&net, 1, Config::default(), seed, 1500, 32768),
        Spy(BulkServer::new(cfg), "S"),
    );
    let out = net.run(&mut [&mut a, &mut b], Limits::default());
    eprintln!("{out:?}");
    for r in xdptcp::apps::bulk::report(&a.app.0, &b.app.0) {
        eprintln!("{r:?}");
    }
}
