//! The sending side: opens the connections, streams data, checks what
//! comes back.

use super::{drain, header, BulkConfig, Sender, Verifier};
use crate::app::{App, CloseReason, Event};
use crate::apps::stream::Stream;
use crate::io::Device;
use crate::stack::{ConnId, Stack};
use crate::tcp::State;
use crate::time::Instant;
use core::net::SocketAddrV4;
use hashbrown::HashMap;

/// One connection as the client sees it.
pub(super) struct ClientConn {
    pub(super) index: u32,
    pub(super) tx: Sender,
    pub(super) rx: Verifier,
    pub(super) started: Instant,
    pub(super) connected: bool,
    pub(super) time_wait: bool,
    pub(super) closed: Option<CloseReason>,
    pub(super) error: Option<String>,
}

impl ClientConn {
    fn finished(&self) -> bool {
        self.closed.is_some() || self.time_wait || self.error.is_some() && !self.connected
    }
}

/// The sending side: opens the connections and streams data.
pub struct BulkClient {
    pub(super) cfg: BulkConfig,
    server: SocketAddrV4,
    pub(super) started: bool,
    pub(super) conns: Vec<ClientConn>,
    by_id: HashMap<ConnId, usize>,
    live: Vec<(ConnId, usize)>,
}

impl BulkClient {
    pub fn new(cfg: BulkConfig, server: core::net::Ipv4Addr) -> Self {
        BulkClient {
            cfg,
            server: SocketAddrV4::new(server, cfg.port),
            started: false,
            conns: Vec::new(),
            by_id: HashMap::new(),
            live: Vec::new(),
        }
    }

    /// Every connection has ended (or reached TIME-WAIT after a clean close).
    pub fn finished(&self) -> bool {
        self.started && self.conns.iter().all(|c| c.finished())
    }

    fn start<D: Device>(&mut self, stack: &mut Stack<D>, now: Instant) {
        self.started = true;
        for index in 0..self.cfg.conns {
            let tx = Sender::new(
                Some(header(&self.cfg, index)),
                Stream::new(self.cfg.seed, index, 0),
                self.cfg.bytes,
            );
            let expected = if self.cfg.bidir { self.cfg.bytes } else { 0 };
            let mut c = ClientConn {
                index,
                tx,
                rx: Verifier::new(Stream::new(self.cfg.seed, index, 1), expected),
                started: now,
                connected: false,
                time_wait: false,
                closed: None,
                error: None,
            };
            match stack.connect(now, self.server) {
                Ok(id) => {
                    self.by_id.insert(id, self.conns.len());
                    self.live.push((id, self.conns.len()));
                }
                Err(e) => c.error = Some(format!("connect failed: {e:?}")),
            }
            self.conns.push(c);
        }
    }
}

impl<D: Device> App<D> for BulkClient {
    fn on_event(&mut self, stack: &mut Stack<D>, _now: Instant, ev: Event) {
        let id = match ev {
            Event::Connected { id }
            | Event::Readable { id }
            | Event::Writable { id }
            | Event::ReadClosed { id }
            | Event::Closed { id, .. } => id,
            _ => return,
        };
        let Some(&i) = self.by_id.get(&id) else {
            return;
        };
        let c = &mut self.conns[i];
        match ev {
            Event::Connected { .. } => {
                c.connected = true;
                c.tx.pump(stack, id);
            }
            Event::Writable { .. } => c.tx.pump(stack, id),
            Event::Readable { .. } => {
                drain(stack, id, &mut c.rx);
            }
            Event::ReadClosed { .. } => {
                drain(stack, id, &mut c.rx);
                c.rx.fin = true;
            }
            Event::Closed { reason, .. } => {
                c.closed = Some(reason);
                self.by_id.remove(&id);
                self.live.retain(|&(l, _)| l != id);
            }
            _ => {}
        }
    }

    fn on_poll(&mut self, stack: &mut Stack<D>, now: Instant) {
        if !self.started {
            self.start(stack, now);
        }
        // A cleanly closed active opener sits in TIME-WAIT: its part is done.
        for &(id, i) in &self.live {
            if !self.conns[i].time_wait && stack.state(id) == Ok(State::TimeWait) {
                self.conns[i].time_wait = true;
            }
        }
    }
}

impl crate::io::mem::SimApp for BulkClient {
    fn finished(&self, _stack: &Stack<crate::io::mem::SimDevice>) -> bool {
        BulkClient::finished(self)
    }
}
