//! An echo server on the event API: everything read is written back.
//!
//! Short writes are respected: what the stack did not accept waits in a
//! per-connection buffer, reading pauses (so the peer is flow-controlled by
//! our receive window) and resumes on `Writable`. A half-close passes
//! through: once the peer's FIN has arrived and everything is echoed, we
//! shut down our direction too. Generic over the device, so the same server
//! runs in the simulator and on AF_XDP.

use crate::app::{App, Event};
use crate::io::Device;
use crate::stack::{ConnId, Stack};
use crate::time::Instant;
use hashbrown::HashMap;

/// Bytes read per `recv` call.
const CHUNK: usize = 16 * 1024;

/// Echo server counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct EchoStats {
    pub accepted: u64,
    pub closed: u64,
    pub bytes_echoed: u64,
    /// Writes the stack took only in part.
    pub short_writes: u64,
    /// Of `bytes_echoed`, sent back in the frames they arrived in (no copy).
    pub bytes_lent: u64,
}

#[derive(Default)]
struct EchoConn {
    /// Read but not yet accepted by `send`.
    pending: Vec<u8>,
    read_closed: bool,
    shut: bool,
}

/// Echoes every connection accepted on `port`.
pub struct EchoServer {
    port: u16,
    listening: bool,
    conns: HashMap<ConnId, EchoConn>,
    scratch: Box<[u8]>,
    pub stats: EchoStats,
    /// Set if `listen` failed.
    pub error: Option<crate::stack::Error>,
}

impl EchoServer {
    pub fn new(port: u16) -> Self {
        Self::with_capacity(port, 0)
    }

    /// A server with room for `conns` connections made up front, so that
    /// a burst of that many allocates nothing (see
    /// `runtime::RuntimeConfig::conns_prealloc`).
    pub fn with_capacity(port: u16, conns: usize) -> Self {
        EchoServer {
            port,
            listening: false,
            conns: HashMap::with_capacity(conns),
            scratch: vec![0u8; CHUNK].into_boxed_slice(),
            stats: EchoStats::default(),
            error: None,
        }
    }

    /// Connections currently open.
    pub fn live(&self) -> usize {
        self.conns.len()
    }

    /// Start listening now (otherwise done on the first poll).
    pub fn listen<D: Device>(&mut self, stack: &mut Stack<D>) {
        if !self.listening {
            self.listening = true;
            self.error = stack.listen(self.port).err();
        }
    }

    /// Flush pending bytes, then read and echo until the stack stops taking
    /// data or there is nothing left to read.
    fn pump<D: Device>(&mut self, stack: &mut Stack<D>, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        if c.pending.is_empty() {
            // Whole received frames go back as they are; what does not fit
            // is copied below (and waits in `pending` if even that is full).
            if let Ok(n) = stack.echo_received(id) {
                self.stats.bytes_echoed += n as u64;
                self.stats.bytes_lent += n as u64;
            }
        }
        loop {
            if !c.pending.is_empty() {
                let Ok(n) = stack.send(id, &c.pending) else {
                    return;
                };
                self.stats.bytes_echoed += n as u64;
                c.pending.drain(..n);
                if !c.pending.is_empty() {
                    self.stats.short_writes += 1;
                    return; // wait for Writable; reading pauses meanwhile
                }
            }
            let Ok(got) = stack.recv(id, &mut self.scratch) else {
                return;
            };
            if got == 0 {
                break;
            }
            let Ok(n) = stack.send(id, &self.scratch[..got]) else {
                return;
            };
            self.stats.bytes_echoed += n as u64;
            if n < got {
                self.stats.short_writes += 1;
                c.pending.extend_from_slice(&self.scratch[n..got]);
                return;
            }
        }
        // RFC 9293 §3.6: the peer's half-close is passed on once all its data
        // has been echoed.
        if c.read_closed && !c.shut && c.pending.is_empty() {
            c.shut = stack.shutdown(id).is_ok();
        }
    }
}

impl<D: Device> App<D> for EchoServer {
    fn on_event(&mut self, stack: &mut Stack<D>, _now: Instant, ev: Event) {
        match ev {
            Event::Accepted { id, port } if port == self.port => {
                self.stats.accepted += 1;
                self.conns.insert(id, EchoConn::default());
                self.pump(stack, id);
            }
            Event::Readable { id } | Event::Writable { id } => self.pump(stack, id),
            Event::ReadClosed { id } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.read_closed = true;
                }
                self.pump(stack, id);
            }
            Event::Closed { id, .. } if self.conns.remove(&id).is_some() => self.stats.closed += 1,
            _ => {}
        }
    }

    fn on_poll(&mut self, stack: &mut Stack<D>, _now: Instant) {
        self.listen(stack);
    }

    /// A connection moves with what it has not echoed yet (`app_migrate`).
    fn export(&mut self, id: ConnId) -> Option<Box<dyn std::any::Any + Send>> {
        let c = self.conns.remove(&id)?;
        Some(Box::new(c))
    }

    fn import(
        &mut self,
        _stack: &mut Stack<D>,
        _now: Instant,
        id: ConnId,
        state: Box<dyn std::any::Any + Send>,
    ) -> Result<(), Box<dyn std::any::Any + Send>> {
        crate::app_migrate::adopt(&mut self.conns, id, state)
    }
}

impl crate::io::mem::SimApp for EchoServer {}
