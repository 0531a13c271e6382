//! The receiving side: accepts, checks every byte, optionally sends back.

use super::workload::Pacer;
use super::{drain, BulkConfig, Sender, Verifier, FLAG_BIDIR, HEADER_LEN, MAGIC};
use crate::app::{App, CloseReason, Event};
use crate::apps::stream::Stream;
use crate::io::Device;
use crate::stack::{ConnId, Stack};
use crate::tcp::State;
use crate::time::Instant;
use hashbrown::HashMap;
use std::cell::Cell;
use std::rc::Rc;

/// One accepted connection as the server sees it.
pub(super) struct ServerConn {
    /// Header bytes received so far.
    pub(super) hdr: [u8; HEADER_LEN],
    pub(super) hdr_len: usize,
    pub(super) index: Option<u32>,
    pub(super) rx: Option<Verifier>,
    pub(super) tx: Option<Sender>,
    /// Request/response pacing of `tx`.
    pacer: Option<Pacer>,
    /// The peer's FIN arrived (data may still be queued for reading).
    peer_fin: bool,
    pub(super) done_at: Option<Instant>,
    pub(super) time_wait: bool,
    pub(super) closed: Option<CloseReason>,
    pub(super) error: Option<String>,
}

/// The receiving side: accepts, verifies, optionally sends back.
pub struct BulkServer {
    pub(super) cfg: BulkConfig,
    listening: bool,
    pub(super) conns: HashMap<ConnId, ServerConn>,
    /// Finished connections by index (also flags duplicates).
    pub(super) done: Vec<Option<ServerConn>>,
    /// Connections whose header was bad or repeated.
    pub rejected: Vec<String>,
    /// With a paced reader: when the next reads are due.
    next_read: Option<Instant>,
    /// Set by the client side when it is done: connections it gave up on
    /// before they reached us are not waited for.
    pub client_done: Option<Rc<Cell<bool>>>,
}

impl BulkServer {
    pub fn new(cfg: BulkConfig) -> Self {
        BulkServer {
            cfg,
            listening: false,
            conns: HashMap::new(),
            done: (0..cfg.conns).map(|_| None).collect(),
            rejected: Vec::new(),
            next_read: None,
            client_done: None,
        }
    }

    /// Every expected connection arrived and ended.
    pub fn finished(&self) -> bool {
        // A connection the client aborts early, or gives up on, may never
        // reach us.
        self.conns.is_empty()
            && (self.client_done.as_ref().is_some_and(|d| d.get())
                || self
                    .done
                    .iter()
                    .enumerate()
                    .all(|(i, d)| d.is_some() || self.cfg.aborts(i as u32)))
    }

    pub(super) fn parse_header(&self, h: &[u8; HEADER_LEN]) -> Result<u32, String> {
        let word = |r: core::ops::Range<usize>| h[r].iter().fold(0u64, |a, &b| a << 8 | b as u64);
        let (magic, index, len, flags) = (
            word(0..4),
            word(4..8) as u32,
            word(8..16),
            word(16..20) as u32,
        );
        if magic != MAGIC as u64 {
            return Err(format!("garbled header: magic {magic:#x}"));
        }
        if index >= self.cfg.conns {
            return Err(format!(
                "header names connection {index} of {}",
                self.cfg.conns
            ));
        }
        if self.done.get(index as usize).is_some_and(|d| d.is_some())
            || self.conns.values().any(|c| c.index == Some(index))
        {
            return Err(format!("connection {index} arrived twice"));
        }
        if len != self.cfg.bytes_for(index, true) || (flags & FLAG_BIDIR != 0) != self.cfg.two_way()
        {
            return Err(format!(
                "header of connection {index}: {len} bytes, flags {flags}"
            ));
        }
        Ok(index)
    }

    /// Read up to `budget` payload bytes of `id` (the header is always
    /// read), answer what the pacer allows, note the end of the stream.
    pub(super) fn read<D: Device>(
        &mut self,
        stack: &mut Stack<D>,
        id: ConnId,
        now: Instant,
        budget: usize,
    ) {
        loop {
            let Some(c) = self.conns.get_mut(&id) else {
                return;
            };
            if c.rx.is_none() {
                // The header first, copied out of the stream.
                let mut tmp = [0u8; HEADER_LEN];
                let want = HEADER_LEN - c.hdr_len;
                let n = stack.recv(id, &mut tmp[..want]).unwrap_or(0);
                c.hdr[c.hdr_len..c.hdr_len + n].copy_from_slice(&tmp[..n]);
                c.hdr_len += n;
                if c.hdr_len < HEADER_LEN {
                    return;
                }
                let hdr = c.hdr;
                match self.parse_header(&hdr) {
                    Ok(index) => {
                        let c = self.conns.get_mut(&id).expect("present");
                        c.index = Some(index);
                        c.rx = Some(Verifier::new(
                            Stream::new(self.cfg.seed, index, 0),
                            self.cfg.bytes_for(index, true),
                        ));
                        if self.cfg.two_way() {
                            c.tx = Some(self.cfg.sender(index, false));
                            c.pacer = self
                                .cfg
                                .work
                                .rr
                                .map(|rr| Pacer::new(rr, self.cfg.seed, index, false));
                        }
                    }
                    Err(e) => {
                        self.rejected.push(e.clone());
                        c_error(self.conns.get_mut(&id), e);
                        let _ = stack.abort(id);
                        return;
                    }
                }
                continue;
            }
            if let Some(rx) = c.rx.as_mut() {
                drain(stack, id, rx, budget);
                if c.peer_fin && !stack.recv_available(id).is_ok_and(|n| n > 0) {
                    rx.fin = true;
                }
                if let (Some(p), Some(tx)) = (c.pacer.as_mut(), c.tx.as_mut()) {
                    p.on_received(rx.got);
                    tx.allowed = Some(p.allowed);
                }
                if let Some(tx) = c.tx.as_mut() {
                    tx.pump(stack, id);
                }
            }
            self.maybe_shutdown(stack, id, now);
            return;
        }
    }

    /// Bytes a read may take now: all, unless the reader is paced.
    fn budget(&self) -> usize {
        if self.cfg.work.read_pace.is_some() {
            0
        } else {
            usize::MAX
        }
    }

    pub(super) fn maybe_shutdown<D: Device>(
        &mut self,
        stack: &mut Stack<D>,
        id: ConnId,
        now: Instant,
    ) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let Some(rx) = &c.rx else { return };
        if !rx.fin {
            return;
        }
        if c.done_at.is_none() {
            c.done_at = Some(now);
        }
        match &mut c.tx {
            Some(tx) if !tx.shut => tx.pump(stack, id),
            Some(_) => {}
            None => {
                c.tx = Some(Sender::new(None, Stream::new(0, 0, 0), 0));
                c.tx.as_mut().expect("set").pump(stack, id);
            }
        }
    }

    pub(super) fn retire(&mut self, id: ConnId) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        match c.index {
            Some(i) if self.done[i as usize].is_none() => self.done[i as usize] = Some(c),
            _ => {
                // A client that aborts on purpose may reset a connection
                // before its header arrives.
                let planned = self.cfg.work.abort_after.is_some()
                    && c.hdr_len < HEADER_LEN
                    && c.closed.is_some_and(|r| r != CloseReason::Normal);
                if c.error.is_none() && !planned {
                    self.rejected
                        .push("a connection ended before its header arrived".into());
                }
            }
        }
    }
}

pub(super) fn c_error(c: Option<&mut ServerConn>, e: String) {
    if let Some(c) = c {
        c.error.get_or_insert(e);
    }
}

impl<D: Device> App<D> for BulkServer {
    fn on_event(&mut self, stack: &mut Stack<D>, now: Instant, ev: Event) {
        match ev {
            Event::Accepted { id, .. } => {
                self.conns.insert(
                    id,
                    ServerConn {
                        hdr: [0; HEADER_LEN],
                        hdr_len: 0,
                        index: None,
                        rx: None,
                        tx: None,
                        pacer: None,
                        peer_fin: false,
                        done_at: None,
                        time_wait: false,
                        closed: None,
                        error: None,
                    },
                );
                self.read(stack, id, now, self.budget());
            }
            Event::Readable { id } => self.read(stack, id, now, self.budget()),
            Event::Writable { id } => {
                if let Some(tx) = self.conns.get_mut(&id).and_then(|c| c.tx.as_mut()) {
                    tx.pump(stack, id);
                }
            }
            Event::ReadClosed { id } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.peer_fin = true;
                }
                self.read(stack, id, now, self.budget());
                if let Some(c) = self.conns.get_mut(&id) {
                    if c.rx.is_none() {
                        c_error(Some(c), "FIN before the header".into());
                    }
                }
            }
            Event::Closed { id, reason } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.closed = Some(reason);
                }
                self.retire(id);
            }
            _ => {}
        }
    }

    fn on_poll(&mut self, stack: &mut Stack<D>, now: Instant) {
        if let Some((bytes, every)) = self.cfg.work.read_pace {
            // A slow reader: `bytes` per connection every `every`.
            if self.next_read.is_none_or(|t| t <= now) {
                let mut ids: Vec<ConnId> = self.conns.keys().copied().collect();
                ids.sort_unstable_by_key(|id| (id.index, id.generation));
                for id in ids {
                    self.read(stack, id, now, bytes);
                }
                self.next_read = Some(now + every);
            }
        }
        if !self.listening {
            self.listening = true;
            if let Err(e) = stack.listen(self.cfg.port) {
                self.rejected.push(format!("listen failed: {e:?}"));
            }
        }
        // With bidir the server may close first and sit in TIME-WAIT.
        let tw: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(id, c)| {
                c.tx.as_ref().is_some_and(|t| t.shut)
                    && c.rx.as_ref().is_some_and(|r| r.fin)
                    && stack.state(**id) == Ok(State::TimeWait)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in tw {
            if let Some(c) = self.conns.get_mut(&id) {
                c.time_wait = true;
            }
            self.retire(id);
        }
    }
}

impl crate::io::mem::SimApp for BulkServer {
    fn finished(&self, _stack: &Stack<crate::io::mem::SimDevice>) -> bool {
        BulkServer::finished(self)
    }

    fn poll_at(&self) -> Option<Instant> {
        // The paced reader wakes up while it has connections.
        self.next_read.filter(|_| !self.conns.is_empty())
    }
}
