//! The sending side: opens the connections, streams data, checks what
//! comes back.

use super::workload::Pacer;
use super::{drain, BulkConfig, Sender, Verifier};
use crate::app::{App, CloseReason, Event};
use crate::apps::stream::Stream;
use crate::io::Device;
use crate::stack::{ConnId, Stack};
use crate::tcp::State;
use crate::time::Instant;
use core::net::SocketAddrV4;
use hashbrown::HashMap;
use std::cell::Cell;
use std::rc::Rc;

/// One connection as the client sees it.
pub(super) struct ClientConn {
    pub(super) index: u32,
    pub(super) tx: Sender,
    pub(super) rx: Verifier,
    /// Request/response pacing of `tx`.
    pacer: Option<Pacer>,
    /// The client aborted it on purpose (the workload's abort point).
    pub(super) aborted: bool,
    pub(super) started: Instant,
    pub(super) connected: bool,
    pub(super) time_wait: bool,
    pub(super) closed: Option<CloseReason>,
    pub(super) error: Option<String>,
}

impl ClientConn {
    /// Send what the pacer allows; abort at the workload's abort point.
    fn send<D: Device>(&mut self, stack: &mut Stack<D>, id: ConnId) {
        if self.aborted || self.closed.is_some() {
            return;
        }
        if let Some(p) = self.pacer.as_mut() {
            p.on_received(self.rx.got);
            self.tx.allowed = Some(p.allowed);
        }
        self.tx.pump(stack, id);
        self.maybe_abort(stack, id);
    }

    /// At the workload's abort point, once the server has acknowledged all
    /// that was written (so the abort lands in the middle of a transfer the
    /// server has seen), abort.
    fn maybe_abort<D: Device>(&mut self, stack: &mut Stack<D>, id: ConnId) {
        if self.aborted || !self.tx.stopped() {
            return;
        }
        // Connection-level: over several MPTCP subflows the first
        // subflow's `bytes_acked` counts only its own share.
        if stack.send_unacked(id) == Ok(0) {
            self.aborted = true;
            let _ = stack.abort(id);
        }
    }

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
    /// Raised once every connection has ended (see `BulkServer::client_done`).
    pub done: Rc<Cell<bool>>,
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
            done: Rc::new(Cell::new(false)),
        }
    }

    /// Every connection has ended (or reached TIME-WAIT after a clean close).
    pub fn finished(&self) -> bool {
        self.started && self.conns.iter().all(|c| c.finished())
    }

    fn start<D: Device>(&mut self, stack: &mut Stack<D>, now: Instant) {
        self.started = true;
        for index in 0..self.cfg.conns {
            let mut tx = self.cfg.sender(index, true);
            let pacer = self
                .cfg
                .work
                .rr
                .map(|rr| Pacer::new(rr, self.cfg.seed, index, true));
            tx.allowed = pacer.as_ref().map(|p| p.allowed);
            let expected = self.cfg.bytes_for(index, false);
            let mut c = ClientConn {
                index,
                tx,
                pacer,
                aborted: false,
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
                    if self.cfg.work.early_write {
                        c.tx.write(stack, id);
                    }
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
                c.send(stack, id);
            }
            Event::Writable { .. } => c.send(stack, id),
            Event::Readable { .. } => {
                drain(stack, id, &mut c.rx, usize::MAX);
                c.send(stack, id);
            }
            Event::ReadClosed { .. } => {
                drain(stack, id, &mut c.rx, usize::MAX);
                c.rx.fin = true;
                c.send(stack, id);
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
        self.done.set(self.finished());
        // A cleanly closed active opener sits in TIME-WAIT: its part is done.
        for &(id, i) in &self.live {
            let c = &mut self.conns[i];
            if !c.time_wait && stack.state(id) == Ok(State::TimeWait) {
                c.time_wait = true;
            }
            c.maybe_abort(stack, id);
        }
    }
}

impl crate::io::mem::SimApp for BulkClient {
    fn finished(&self, _stack: &Stack<crate::io::mem::SimDevice>) -> bool {
        BulkClient::finished(self)
    }
}
