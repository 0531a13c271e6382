//! The load generator (`xdptcp loadgen`) on the event API: many client
//! connections per worker (no file descriptors), each opened from a port
//! (and a source address of the configured range) whose flow the opening
//! worker owns.
//!
//! Closed loop: each connection keeps `pipeline` requests outstanding.
//! Open loop (`rate`): each connection has its own schedule (rate /
//! connections) and at most one request outstanding; a request whose turn
//! comes while the previous one is still out waits, and its latency is
//! measured from when it *should* have been sent — the coordinated-omission
//! correction of wrk2. Latencies go into an HdrHistogram per worker, merged
//! into [`stats::Shared`] every 100 ms and when the app is dropped.

pub mod proto;
pub mod stats;

use crate::app::{App, CloseReason, Event};
use crate::apps::stream::Stream;
use crate::io::Device;
use crate::runtime::owner::connect_owned_from;
use crate::stack::{ConnId, Stack};
use crate::time::Instant;
use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use hashbrown::HashMap;
use proto::{Mode, Proto, Reader};
use stats::{ErrorKind, Local, Shared};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// How often counters are merged into the shared record and timeouts checked.
const FLUSH: Duration = Duration::from_millis(100);
/// Wait before reopening a connection that failed.
const BACKOFF: Duration = Duration::from_millis(100);
/// Connections opened per worker loop at most (spreads out the SYNs).
const OPENS_PER_POLL: usize = 256;
/// Handshakes in progress per worker at most: many thousands of SYNs at
/// once only overflow the peer's SYN backlog and queues.
const MAX_CONNECTING: usize = 1024;

/// A run's settings.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub proto: Proto,
    pub target: SocketAddrV4,
    /// Connections over all workers.
    pub conns: usize,
    /// Requests outstanding per connection (closed loop).
    pub pipeline: usize,
    /// Open loop: requests per second over all connections.
    pub rate: Option<f64>,
    /// Nothing is recorded before this (runtime time).
    pub warmup: Duration,
    /// A request (or handshake) without progress for this long fails.
    pub timeout: Duration,
    /// Bulk: receive instead of send.
    pub reverse: bool,
    /// Requests answered before a connection is reset and replaced by a
    /// new one (connect mode: 1); `None`: a connection lives for the run.
    /// The first request's latency then includes the handshake.
    pub requests_per_conn: Option<u32>,
}

struct Slot {
    /// Index over all workers (stream key, source address).
    index: u32,
    conn: Option<ConnId>,
    /// Open loop: when the next request is due.
    next_at: Instant,
    /// Its connection moved to another worker, and the slot with it
    /// (`App::export`): never reopened here; reused by the next import.
    gone: bool,
}

/// A connection moving to another worker with its slot (`app_migrate`):
/// its requests outstanding and their start times go along, so that
/// their latencies are measured where they are answered.
struct Moving {
    conn: Conn,
    index: u32,
    next_at: Instant,
}

struct Conn {
    slot: usize,
    established: bool,
    opened_at: Instant,
    stream: Stream,
    reader: Reader,
    /// Request stream: bytes written so far, bytes still to write.
    wpos: u64,
    wleft: u64,
    /// Start (or due) times of the requests outstanding.
    outstanding: VecDeque<Instant>,
    /// Requests issued and answered on this connection.
    issued: u32,
    answered: u32,
    last_progress: Instant,
}

/// One worker's share of the load.
pub struct LoadApp {
    cfg: Arc<LoadConfig>,
    shared: Arc<Shared>,
    me: usize,
    workers: usize,
    /// The interface's RSS, if known: source ports land on `me`'s queue.
    rss: Option<Arc<crate::io::xdp::rss::Rss>>,
    started: bool,
    slots: Vec<Slot>,
    conns: HashMap<ConnId, Conn>,
    /// Connections done with (connect mode), waiting for the peer's FIN.
    closing: HashMap<ConnId, Instant>,
    /// Open loop: slots by due time.
    due: BinaryHeap<Reverse<(Instant, usize)>>,
    /// Slots without a connection, by when to open one.
    to_open: BinaryHeap<Reverse<(Instant, usize)>>,
    interval: Option<Duration>,
    addrs: Vec<Ipv4Addr>,
    cursors: Vec<u16>,
    local: Local,
    last_flush: Instant,
    warmup_end: Instant,
    /// Handshakes in progress.
    connecting: usize,
}

impl LoadApp {
    /// Worker `me` of `workers`, reporting into `shared`.
    /// Choose source ports by the device's RSS (see `connect_owned_from`).
    pub fn with_rss(mut self, rss: Option<Arc<crate::io::xdp::rss::Rss>>) -> Self {
        self.rss = rss;
        self
    }

    pub fn new(cfg: Arc<LoadConfig>, shared: Arc<Shared>, me: usize, workers: usize) -> Self {
        let warmup_end = Instant::ZERO + cfg.warmup;
        LoadApp {
            cfg,
            shared,
            me,
            workers: workers.max(1),
            rss: None,
            started: false,
            slots: Vec::new(),
            conns: HashMap::new(),
            closing: HashMap::new(),
            due: BinaryHeap::new(),
            to_open: BinaryHeap::new(),
            interval: None,
            addrs: Vec::new(),
            cursors: Vec::new(),
            local: Local::default(),
            last_flush: Instant::ZERO,
            warmup_end,
            connecting: 0,
        }
    }

    fn start<D: Device>(&mut self, stack: &Stack<D>, now: Instant) {
        self.started = true;
        // The run's time counts from here (the runtime starts its
        // workers' apps together, when all are set up: `runtime::start`),
        // not from the runtime's epoch: a set-up of seconds on a loaded
        // machine used up the warm-up, and then counted its requests as
        // measured (2,925 req/s at --rate 2000).
        self.warmup_end = now + self.cfg.warmup;
        let mine: Vec<u32> = (0..self.cfg.conns as u32)
            .filter(|i| *i as usize % self.workers == self.me)
            .collect();
        if let Some(rate) = self.cfg.rate {
            let per_conn = rate / self.cfg.conns.max(1) as f64;
            self.interval = Some(Duration::from_secs_f64((1.0 / per_conn).min(3600.0)));
        }
        let n = mine.len().max(1) as u32;
        let interval = self.interval.unwrap_or_default();
        self.slots = mine
            .iter()
            .enumerate()
            .map(|(k, &index)| Slot {
                index,
                conn: None,
                // Spread the first requests over one interval.
                next_at: now + interval * (k as u32) / n,
                gone: false,
            })
            .collect();
        let paced = self.paced();
        self.to_open = (self.slots.iter().enumerate())
            .map(|(s, slot)| Reverse((if paced { slot.next_at } else { now }, s)))
            .collect();
        self.addrs = stack.config().addrs.iter().map(|c| c.addr).collect();
        let (lo, hi) = stack.config().ephemeral_ports;
        let span = u32::from(hi.saturating_sub(lo)) + 1;
        self.cursors = (0..self.addrs.len())
            .map(|i| lo + ((i as u32 * 7919 + self.me as u32 * 104_729) % span) as u16)
            .collect();
    }

    /// Open connections for free slots whose retry time has come.
    fn open_some<D: Device>(&mut self, stack: &mut Stack<D>, now: Instant) {
        let mut opened = 0;
        while opened < OPENS_PER_POLL && self.connecting < MAX_CONNECTING {
            let Some(&Reverse((at, s))) = self.to_open.peek() else {
                break;
            };
            if at > now {
                break;
            }
            self.to_open.pop();
            let slot = &self.slots[s];
            if slot.conn.is_some() || slot.gone {
                continue;
            }
            opened += 1;
            let a = slot.index as usize % self.addrs.len().max(1);
            let Some(&addr) = self.addrs.get(a) else {
                return;
            };
            let r = connect_owned_from(
                stack,
                now,
                addr,
                self.cfg.target,
                self.me,
                self.workers,
                &mut self.cursors[a],
                self.rss.as_deref(),
            );
            match r {
                Ok(id) => {
                    self.connecting += 1;
                    let paced = self.paced();
                    let slot = &mut self.slots[s];
                    slot.conn = Some(id);
                    let opened_at = if paced { slot.next_at } else { now };
                    self.conns.insert(
                        id,
                        Conn {
                            slot: s,
                            established: false,
                            opened_at,
                            stream: self.cfg.proto.stream(slot.index),
                            reader: Reader::new(self.cfg.proto.mode),
                            wpos: 0,
                            wleft: 0,
                            outstanding: VecDeque::new(),
                            issued: 0,
                            answered: 0,
                            last_progress: now,
                        },
                    );
                }
                Err(_) => {
                    self.local.error(ErrorKind::Connect);
                    self.to_open.push(Reverse((now + BACKOFF, s)));
                }
            }
        }
    }

    /// Queue one request on `id` (due at `start`).
    fn issue<D: Device>(&mut self, stack: &mut Stack<D>, now: Instant, id: ConnId, start: Instant) {
        let len = self.cfg.proto.request_len();
        if let Some(c) = self.conns.get_mut(&id) {
            if self.cfg.requests_per_conn.is_some_and(|n| c.issued >= n) {
                return;
            }
            c.issued += 1;
            if c.outstanding.is_empty() {
                // An idle connection's clock for the request timeout
                // starts now.
                c.last_progress = now;
            }
            c.outstanding.push_back(start);
            c.wleft += len;
        }
        self.write(stack, now, id);
    }

    /// Write what `id` has to write.
    fn write<D: Device>(&mut self, stack: &mut Stack<D>, now: Instant, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        let bulk = self.cfg.proto.mode == Mode::Bulk;
        if !c.established || (!bulk && c.wleft == 0) || (bulk && self.cfg.reverse) {
            return;
        }
        let proto = &self.cfg.proto;
        let (stream, wpos, wleft) = (&c.stream, &mut c.wpos, &mut c.wleft);
        let r = stack.send_with(id, &mut |dst: &mut [u8]| {
            let k = if bulk {
                dst.len()
            } else {
                (*wleft).min(dst.len() as u64) as usize
            };
            proto.fill(stream, *wpos, &mut dst[..k]);
            *wpos += k as u64;
            if !bulk {
                *wleft -= k as u64;
            }
            k
        });
        if let Ok(n) = r {
            if bulk && n > 0 && now >= self.warmup_end {
                self.local.bytes += n as u64;
            }
        }
    }

    /// Read what arrived on `id` and complete requests.
    fn read<D: Device>(&mut self, stack: &mut Stack<D>, now: Instant, id: ConnId) {
        let cfg = self.cfg.clone();
        let Some(c) = self.conns.get_mut(&id) else {
            // A finished connection (connect mode): drop what it sends.
            while stack.recv_with(id, &mut |d: &[u8]| d.len()).unwrap_or(0) > 0 {}
            return;
        };
        let mut fed = proto::Fed::default();
        let mut bytes = 0u64;
        let (reader, stream) = (&mut c.reader, &c.stream);
        while let Ok(n) = stack.recv_with(id, &mut |d: &[u8]| {
            let f = reader.feed(&cfg.proto, stream, d);
            fed.done += f.done;
            fed.bad += f.bad;
            fed.broken |= f.broken;
            d.len()
        }) {
            if n == 0 {
                break;
            }
            bytes += n as u64;
        }
        if bytes > 0 {
            c.last_progress = now;
        }
        let measuring = now >= self.warmup_end;
        if measuring {
            self.local.bytes += bytes;
        }
        let slot = c.slot;
        for _ in 0..fed.done {
            let Some(start) = c.outstanding.pop_front() else {
                fed.broken = true;
                break;
            };
            c.answered += 1;
            if measuring {
                let us = now.saturating_since(start).as_micros().max(1) as u64;
                self.local.hist.saturating_record(us);
                self.local.requests += 1;
            }
        }
        if fed.bad > 0 {
            for _ in 0..fed.bad {
                self.local.error(ErrorKind::Verify);
            }
        }
        if fed.broken {
            self.local.error(ErrorKind::Verify);
            self.drop_conn(stack, now, id, true);
            return;
        }
        if fed.done == 0 {
            return;
        }
        let used_up = cfg.requests_per_conn.is_some_and(|n| c.answered >= n);
        match (used_up, self.interval) {
            (true, _) => {
                // The connection's requests are done: a reset, so neither
                // side keeps TIME-WAIT (SO_LINGER 0, as connection-rate
                // testers do) and the rate is not bounded by 2·MSL of
                // table space.
                self.conns.remove(&id);
                let _ = stack.abort(id);
                self.shared.connections.fetch_sub(1, Ordering::Relaxed);
                self.free_slot(slot, now, false);
            }
            (_, None) => {
                for _ in 0..fed.done {
                    self.issue(stack, now, id, now);
                }
            }
            (_, Some(iv)) => {
                let s = &mut self.slots[slot];
                s.next_at += iv;
                if s.next_at <= now {
                    let at = s.next_at;
                    self.issue(stack, now, id, at);
                } else {
                    self.due.push(Reverse((s.next_at, slot)));
                }
            }
        }
    }

    /// A slot's connection is gone: reopen it (after a pause on error).
    fn free_slot(&mut self, slot: usize, now: Instant, error: bool) {
        let paced = self.paced();
        if let Some(s) = self.slots.get_mut(slot) {
            s.conn = None;
            let mut at = if error { now + BACKOFF } else { now };
            if let (Some(iv), true) = (self.interval, paced) {
                // Open loop, connections replaced: open at the turn of the
                // next request.
                if !error {
                    s.next_at += iv;
                }
                at = at.max(s.next_at);
            }
            self.to_open.push(Reverse((at, slot)));
        }
    }

    /// Give up on connection `id` (abort it) and reopen its slot.
    fn drop_conn<D: Device>(
        &mut self,
        stack: &mut Stack<D>,
        now: Instant,
        id: ConnId,
        error: bool,
    ) {
        if let Some(c) = self.conns.remove(&id) {
            if c.established {
                self.shared.connections.fetch_sub(1, Ordering::Relaxed);
            } else {
                self.connecting = self.connecting.saturating_sub(1);
            }
            let _ = stack.abort(id);
            self.free_slot(c.slot, now, error);
        }
    }

    fn connected<D: Device>(&mut self, stack: &mut Stack<D>, now: Instant, id: ConnId) {
        let Some(c) = self.conns.get_mut(&id) else {
            return;
        };
        c.established = true;
        c.last_progress = now;
        self.connecting = self.connecting.saturating_sub(1);
        let (slot, opened_at) = (c.slot, c.opened_at);
        let open = self.shared.connections.fetch_add(1, Ordering::Relaxed) + 1;
        self.shared.peak.fetch_max(open, Ordering::Relaxed);
        self.shared.opened.fetch_add(1, Ordering::Relaxed);
        let _ = stack.set_nodelay(id, true);
        let fresh = self.cfg.requests_per_conn.is_some();
        match (self.cfg.proto.mode, self.interval) {
            (Mode::Bulk, _) => self.write(stack, now, id),
            // Open loop, connections replaced: the first request was due
            // when the connection was opened (its handshake counts).
            (_, Some(_)) if fresh => self.issue(stack, now, id, opened_at),
            (_, None) => {
                // Closed loop: a replaced connection's first request
                // counts its handshake.
                let first = if fresh { opened_at } else { now };
                self.issue(stack, now, id, first);
                for _ in 1..self.cfg.pipeline.max(1) {
                    self.issue(stack, now, id, now);
                }
            }
            (_, Some(_)) => {
                // A connection's schedule starts when it is up (as in
                // wrk2): the handshake is not a request's latency.
                let s = &mut self.slots[slot];
                s.next_at = s.next_at.max(now);
                let at = s.next_at;
                if at <= now {
                    self.issue(stack, now, id, at);
                } else {
                    self.due.push(Reverse((at, slot)));
                }
            }
        }
    }

    fn closed(&mut self, now: Instant, id: ConnId, reason: CloseReason) {
        if self.closing.remove(&id).is_some() {
            return;
        }
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        if c.established {
            self.shared.connections.fetch_sub(1, Ordering::Relaxed);
        } else {
            self.connecting = self.connecting.saturating_sub(1);
        }
        let kind = match reason {
            CloseReason::Refused => Some(ErrorKind::Refused),
            CloseReason::Reset => Some(ErrorKind::Reset),
            CloseReason::TimedOut => Some(ErrorKind::Timeout),
            _ if !c.outstanding.is_empty() => Some(ErrorKind::Closed),
            _ => None,
        };
        if let Some(k) = kind {
            self.local.error(k);
        }
        self.free_slot(c.slot, now, kind.is_some());
    }

    /// Open-loop requests that are due.
    fn run_due<D: Device>(&mut self, stack: &mut Stack<D>, now: Instant) {
        while let Some(&Reverse((at, slot))) = self.due.peek() {
            if at > now {
                break;
            }
            self.due.pop();
            let Some(id) = self.slots[slot].conn else {
                continue;
            };
            let ready = self
                .conns
                .get(&id)
                .is_some_and(|c| c.established && c.outstanding.is_empty());
            // A connection still busy sends it when its answer is in.
            if ready && self.slots[slot].next_at == at {
                self.issue(stack, now, id, at);
            }
        }
    }

    /// Requests and handshakes that made no progress in time.
    fn check_timeouts<D: Device>(&mut self, stack: &mut Stack<D>, now: Instant) {
        let limit = self.cfg.timeout;
        let stuck: Vec<(ConnId, bool)> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                (!c.established || !c.outstanding.is_empty())
                    && now.saturating_since(c.last_progress) >= limit
            })
            .map(|(id, c)| (*id, c.established))
            .collect();
        for (id, established) in stuck {
            self.local.error(if established {
                ErrorKind::Timeout
            } else {
                ErrorKind::Handshake
            });
            self.drop_conn(stack, now, id, true);
        }
        let old: Vec<ConnId> = self
            .closing
            .iter()
            .filter(|(_, t)| now.saturating_since(**t) >= limit)
            .map(|(id, _)| *id)
            .collect();
        for id in old {
            self.closing.remove(&id);
            let _ = stack.abort(id);
        }
    }
}

impl<D: Device> App<D> for LoadApp {
    fn on_event(&mut self, stack: &mut Stack<D>, now: Instant, ev: Event) {
        match ev {
            Event::Connected { id } => self.connected(stack, now, id),
            Event::Writable { id } => {
                if let Some(c) = self.conns.get_mut(&id) {
                    c.last_progress = now;
                }
                self.write(stack, now, id)
            }
            Event::Readable { id } => self.read(stack, now, id),
            Event::ReadClosed { id } => {
                self.read(stack, now, id);
                if self.closing.contains_key(&id) {
                    let _ = stack.shutdown(id);
                } else if let Some(c) = self.conns.get(&id) {
                    // The server closed: requests still out are lost.
                    if !c.outstanding.is_empty() {
                        self.local.error(ErrorKind::Closed);
                    }
                    let slot = c.slot;
                    let est = c.established;
                    self.conns.remove(&id);
                    self.closing.insert(id, now);
                    let _ = stack.shutdown(id);
                    if est {
                        self.shared.connections.fetch_sub(1, Ordering::Relaxed);
                    }
                    self.free_slot(slot, now, false);
                }
            }
            Event::Closed { id, reason } => self.closed(now, id, reason),
            _ => {}
        }
    }

    /// A connection moves with its slot (`app_migrate`): a handshake in
    /// progress is counted where it completes.
    fn export(&mut self, id: ConnId) -> Option<Box<dyn std::any::Any + Send>> {
        let s = self.conns.get(&id)?.slot;
        let slot = self.slots.get_mut(s)?;
        let conn = self.conns.remove(&id)?;
        slot.conn = None;
        slot.gone = true;
        if !conn.established {
            self.connecting = self.connecting.saturating_sub(1);
        }
        Some(Box::new(Moving {
            conn,
            index: slot.index,
            next_at: slot.next_at,
        }))
    }

    fn import(
        &mut self,
        stack: &mut Stack<D>,
        now: Instant,
        id: ConnId,
        state: Box<dyn std::any::Any + Send>,
    ) -> Result<(), Box<dyn std::any::Any + Send>> {
        let m = state.downcast::<Moving>()?;
        if !self.started {
            self.start(stack, now);
        }
        let Moving {
            mut conn,
            index,
            next_at,
        } = *m;
        let slot = Slot {
            index,
            conn: Some(id),
            next_at,
            gone: false,
        };
        let s = match self.slots.iter().position(|s| s.gone) {
            Some(s) => {
                self.slots[s] = slot;
                s
            }
            None => {
                self.slots.push(slot);
                self.slots.len() - 1
            }
        };
        conn.slot = s;
        if !conn.established {
            self.connecting += 1;
        } else if self.interval.is_some() && conn.outstanding.is_empty() {
            // Its next open-loop request is due here now.
            self.due.push(Reverse((next_at, s)));
        }
        self.conns.insert(id, conn);
        Ok(())
    }

    fn on_poll(&mut self, stack: &mut Stack<D>, now: Instant) {
        if !self.started {
            self.start(stack, now);
        }
        self.open_some(stack, now);
        if self.interval.is_some() {
            self.run_due(stack, now);
        }
        if now.saturating_since(self.last_flush) >= FLUSH {
            self.last_flush = now;
            self.shared.flush(&mut self.local);
            self.check_timeouts(stack, now);
        }
    }
}

impl Drop for LoadApp {
    fn drop(&mut self) {
        self.shared.flush(&mut self.local);
    }
}

impl LoadApp {
    /// Open loop with connections replaced: a slot's connection is opened
    /// at the turn of its next request.
    fn paced(&self) -> bool {
        self.interval.is_some() && self.cfg.requests_per_conn.is_some()
    }

    /// The next open-loop request due, or the next flush.
    fn next_wake(&self) -> Instant {
        let flush = self.last_flush + FLUSH;
        [self.due.peek(), self.to_open.peek()]
            .into_iter()
            .flatten()
            .fold(flush, |t, Reverse((at, _))| t.min(*at))
    }
}

impl crate::runtime::RuntimeApp for LoadApp {
    fn poll_at(&self) -> Option<Instant> {
        Some(self.next_wake())
    }
}

impl crate::io::mem::SimApp for LoadApp {
    /// A load generator runs until it is stopped (the run's time limit).
    fn finished(&self, _: &Stack<crate::io::mem::SimDevice>) -> bool {
        false
    }
    fn poll_at(&self) -> Option<Instant> {
        Some(self.next_wake())
    }
}
