//! Bulk transfer with byte-for-byte verification.
//!
//! The client opens `conns` connections; each sends a 24-byte header (magic,
//! connection index, length, flags) and then `bytes` bytes of its own
//! pseudo-random [`Stream`], then shuts down its direction. The server reads
//! zero-copy (`recv_with`) and checks every byte against the regenerated
//! stream as it arrives, so nothing is stored. With `bidir`, the server
//! sends `bytes` bytes of the reverse stream back and the client checks them.
//! Short, long and garbled transfers are all detected and reported per
//! connection.

use super::stream::Stream;
use crate::app::{App, CloseReason, Event};
use crate::io::Device;
use crate::stack::{ConnId, Stack};
use crate::tcp::State;
use crate::time::Instant;
use core::net::SocketAddrV4;
use hashbrown::HashMap;

/// Header: magic, connection index, payload length, flags.
pub const HEADER_LEN: usize = 24;
const MAGIC: u32 = 0x5844_5042; // "XDPB"
const FLAG_BIDIR: u32 = 1;
/// Bytes generated per `send` call.
const CHUNK: usize = 16 * 1024;

/// What both ends agree on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkConfig {
    /// Connections to open.
    pub conns: u32,
    /// Payload bytes per connection and direction.
    pub bytes: u64,
    /// Also send `bytes` from server to client.
    pub bidir: bool,
    /// Seed of the data streams.
    pub seed: u64,
    pub port: u16,
}

fn header(cfg: &BulkConfig, index: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    h[4..8].copy_from_slice(&index.to_be_bytes());
    h[8..16].copy_from_slice(&cfg.bytes.to_be_bytes());
    let flags = if cfg.bidir { FLAG_BIDIR } else { 0 };
    h[16..20].copy_from_slice(&flags.to_be_bytes());
    h
}

/// Checks one incoming direction as it arrives.
#[derive(Debug, Clone)]
struct Verifier {
    stream: Stream,
    expected: u64,
    got: u64,
    /// Offset of the first wrong byte.
    bad_at: Option<u64>,
    fin: bool,
}

impl Verifier {
    fn new(stream: Stream, expected: u64) -> Self {
        Verifier {
            stream,
            expected,
            got: 0,
            bad_at: None,
            fin: false,
        }
    }

    fn consume(&mut self, data: &[u8]) {
        if self.bad_at.is_none() {
            let within = (self.expected.saturating_sub(self.got) as usize).min(data.len());
            if let Some(i) = self.stream.check(self.got, &data[..within]) {
                self.bad_at = Some(self.got + i as u64);
            }
        }
        self.got += data.len() as u64;
    }

    fn intact(&self) -> bool {
        self.fin && self.got == self.expected && self.bad_at.is_none()
    }

    /// What is wrong, if anything (`None` also while still in progress).
    fn problem(&self) -> Option<String> {
        if let Some(at) = self.bad_at {
            Some(format!("garbled: first wrong byte at offset {at}"))
        } else if self.got > self.expected {
            Some(format!(
                "long: {} bytes, expected {}",
                self.got, self.expected
            ))
        } else if self.fin && self.got < self.expected {
            Some(format!(
                "short: {} bytes, expected {}",
                self.got, self.expected
            ))
        } else {
            None
        }
    }
}

/// Sends a header followed by a stream, in chunks, respecting short writes.
#[derive(Debug, Clone)]
struct Sender {
    header: [u8; HEADER_LEN],
    header_len: usize,
    stream: Stream,
    /// Payload bytes to send after the header.
    total: u64,
    /// Bytes accepted by the stack (header included).
    sent: u64,
    shut: bool,
}

impl Sender {
    fn new(header: Option<[u8; HEADER_LEN]>, stream: Stream, total: u64) -> Self {
        Sender {
            header: header.unwrap_or([0; HEADER_LEN]),
            header_len: if header.is_some() { HEADER_LEN } else { 0 },
            stream,
            total,
            sent: 0,
            shut: false,
        }
    }

    fn payload_sent(&self) -> u64 {
        self.sent.saturating_sub(self.header_len as u64)
    }

    fn done(&self) -> bool {
        self.sent == self.header_len as u64 + self.total
    }

    /// Write as much as the stack takes; shut down after the last byte.
    fn pump<D: Device>(&mut self, stack: &mut Stack<D>, id: ConnId) {
        let mut buf = [0u8; CHUNK];
        while !self.done() {
            let hl = self.header_len as u64;
            let n = if self.sent < hl {
                let h = &self.header[self.sent as usize..self.header_len];
                buf[..h.len()].copy_from_slice(h);
                h.len()
            } else {
                let off = self.sent - hl;
                let n = (self.total - off).min(CHUNK as u64) as usize;
                self.stream.fill(off, &mut buf[..n]);
                n
            };
            let Ok(took) = stack.send(id, &buf[..n]) else {
                return;
            };
            self.sent += took as u64;
            if took < n {
                return; // Writable will follow.
            }
        }
        if !self.shut {
            self.shut = stack.shutdown(id).is_ok();
        }
    }
}

/// The outcome of one connection, as the client and server saw it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConnReport {
    pub index: u32,
    /// Payload bytes client → server: accepted by the client's stack, and
    /// verified by the server.
    pub sent: u64,
    pub received: u64,
    /// Server → client (with `bidir`).
    pub reverse_sent: u64,
    pub reverse_received: u64,
    /// Every byte of every direction arrived in order, unaltered, then FIN.
    pub intact: bool,
    /// When the client opened it, and when the server had all data and FIN.
    pub start_ms: f64,
    pub done_ms: Option<f64>,
    /// How the client's and the server's side ended ("open" if they did not).
    pub client_close: String,
    pub server_close: String,
    /// The first problem found.
    pub error: Option<String>,
}

fn ms(t: Instant) -> f64 {
    t.micros() as f64 / 1000.0
}

fn close_name(c: Option<CloseReason>, tw: bool) -> String {
    match c {
        Some(r) => format!("{r:?}").to_lowercase(),
        None if tw => "time-wait".into(),
        None => "open".into(),
    }
}

struct ClientConn {
    index: u32,
    tx: Sender,
    rx: Verifier,
    started: Instant,
    connected: bool,
    time_wait: bool,
    closed: Option<CloseReason>,
    error: Option<String>,
}

impl ClientConn {
    fn finished(&self) -> bool {
        self.closed.is_some() || self.time_wait || self.error.is_some() && !self.connected
    }
}

/// The sending side: opens the connections and streams data.
pub struct BulkClient {
    cfg: BulkConfig,
    server: SocketAddrV4,
    started: bool,
    conns: Vec<ClientConn>,
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

struct ServerConn {
    /// Header bytes received so far.
    hdr: [u8; HEADER_LEN],
    hdr_len: usize,
    index: Option<u32>,
    rx: Option<Verifier>,
    tx: Option<Sender>,
    done_at: Option<Instant>,
    time_wait: bool,
    closed: Option<CloseReason>,
    error: Option<String>,
}

/// The receiving side: accepts, verifies, optionally sends back.
pub struct BulkServer {
    cfg: BulkConfig,
    listening: bool,
    conns: HashMap<ConnId, ServerConn>,
    /// Finished connections by index (also flags duplicates).
    done: Vec<Option<ServerConn>>,
    /// Connections whose header was bad or repeated.
    pub rejected: Vec<String>,
}

impl BulkServer {
    pub fn new(cfg: BulkConfig) -> Self {
        BulkServer {
            cfg,
            listening: false,
            conns: HashMap::new(),
            done: (0..cfg.conns).map(|_| None).collect(),
            rejected: Vec::new(),
        }
    }

    /// Every expected connection arrived and ended.
    pub fn finished(&self) -> bool {
        self.conns.is_empty() && self.done.iter().all(|d| d.is_some())
    }

    fn parse_header(&self, h: &[u8; HEADER_LEN]) -> Result<u32, String> {
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
        if len != self.cfg.bytes || (flags & FLAG_BIDIR != 0) != self.cfg.bidir {
            return Err(format!(
                "header of connection {index}: {len} bytes, flags {flags}"
            ));
        }
        Ok(index)
    }

    fn read<D: Device>(&mut self, stack: &mut Stack<D>, id: ConnId) {
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
                            self.cfg.bytes,
                        ));
                        if self.cfg.bidir {
                            c.tx = Some(Sender::new(
                                None,
                                Stream::new(self.cfg.seed, index, 1),
                                self.cfg.bytes,
                            ));
                            c.tx.as_mut().expect("set").pump(stack, id);
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
                drain(stack, id, rx);
            }
            return;
        }
    }

    fn maybe_shutdown<D: Device>(&mut self, stack: &mut Stack<D>, id: ConnId, now: Instant) {
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

    fn retire(&mut self, id: ConnId) {
        let Some(c) = self.conns.remove(&id) else {
            return;
        };
        match c.index {
            Some(i) if self.done[i as usize].is_none() => self.done[i as usize] = Some(c),
            _ => {
                if c.error.is_none() {
                    self.rejected
                        .push("a connection ended before its header arrived".into());
                }
            }
        }
    }
}

/// Read (zero-copy) and verify everything that is readable now.
fn drain<D: Device>(stack: &mut Stack<D>, id: ConnId, rx: &mut Verifier) {
    while let Ok(n) = stack.recv_with(id, &mut |d: &[u8]| {
        rx.consume(d);
        d.len()
    }) {
        if n == 0 {
            break;
        }
    }
}

fn c_error(c: Option<&mut ServerConn>, e: String) {
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
                        done_at: None,
                        time_wait: false,
                        closed: None,
                        error: None,
                    },
                );
                self.read(stack, id);
            }
            Event::Readable { id } => self.read(stack, id),
            Event::Writable { id } => {
                if let Some(tx) = self.conns.get_mut(&id).and_then(|c| c.tx.as_mut()) {
                    tx.pump(stack, id);
                }
            }
            Event::ReadClosed { id } => {
                self.read(stack, id);
                if let Some(c) = self.conns.get_mut(&id) {
                    match &mut c.rx {
                        Some(rx) => rx.fin = true,
                        None => c_error(Some(c), "FIN before the header".into()),
                    }
                }
                self.maybe_shutdown(stack, id, now);
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

    fn on_poll(&mut self, stack: &mut Stack<D>, _now: Instant) {
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
                c.tx.as_ref().is_some_and(|t| t.shut) && stack.state(**id) == Ok(State::TimeWait)
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

/// Per-connection results of a run, from both ends.
pub fn report(client: &BulkClient, server: &BulkServer) -> Vec<ConnReport> {
    let mut out = Vec::with_capacity(client.conns.len());
    for c in &client.conns {
        let s = server.done.get(c.index as usize).and_then(|s| s.as_ref());
        let s_live = server.conns.values().find(|s| s.index == Some(c.index));
        let s = s.or(s_live);
        let mut r = ConnReport {
            index: c.index,
            sent: c.tx.payload_sent(),
            reverse_received: c.rx.got,
            start_ms: ms(c.started),
            client_close: close_name(c.closed, c.time_wait),
            server_close: "open".into(),
            ..ConnReport::default()
        };
        let mut error = c.error.clone().or_else(|| c.rx.problem());
        let mut intact = false;
        match s {
            Some(s) => {
                r.server_close = close_name(s.closed, s.time_wait);
                r.done_ms = s.done_at.map(ms);
                r.reverse_sent = s.tx.as_ref().map_or(0, |t| t.payload_sent());
                error = error.or_else(|| s.error.clone());
                if let Some(rx) = &s.rx {
                    r.received = rx.got;
                    error = error.or_else(|| rx.problem());
                    intact = rx.intact() && (!client.cfg.bidir || c.rx.intact());
                }
            }
            None => error = error.or(Some("the server never saw this connection".into())),
        }
        if !client.cfg.bidir && c.rx.got > 0 {
            error = error.or(Some(format!(
                "{} unexpected bytes from the server",
                c.rx.got
            )));
            intact = false;
        }
        if error.is_none() && !intact {
            error = Some(format!(
                "incomplete: server verified {} of {} bytes (fin: {}), client: {}, server: {}",
                r.received,
                client.cfg.bytes,
                s.and_then(|s| s.rx.as_ref()).is_some_and(|v| v.fin),
                r.client_close,
                r.server_close
            ));
        }
        r.intact = intact && error.is_none();
        r.error = error;
        out.push(r);
    }
    out
}

impl crate::io::mem::SimApp for BulkClient {
    fn finished(&self, _stack: &Stack<crate::io::mem::SimDevice>) -> bool {
        BulkClient::finished(self)
    }
}

impl crate::io::mem::SimApp for BulkServer {
    fn finished(&self, _stack: &Stack<crate::io::mem::SimDevice>) -> bool {
        BulkServer::finished(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(s: Stream, off: u64, n: usize) -> Vec<u8> {
        let mut v = vec![0u8; n];
        s.fill(off, &mut v);
        v
    }

    #[test]
    fn verifier_accepts_exact_stream_in_any_chunking() {
        let s = Stream::new(3, 1, 0);
        let mut v = Verifier::new(s, 1000);
        let all = data(s, 0, 1000);
        for c in all.chunks(137) {
            v.consume(c);
        }
        assert!(!v.intact(), "no FIN yet");
        assert_eq!(v.problem(), None);
        v.fin = true;
        assert!(v.intact());
    }

    #[test]
    fn verifier_detects_garbled_short_and_long() {
        let s = Stream::new(3, 1, 0);
        let mut all = data(s, 0, 1000);
        all[500] ^= 1;
        let mut v = Verifier::new(s, 1000);
        v.consume(&all);
        v.fin = true;
        assert!(!v.intact());
        assert!(v.problem().unwrap().contains("offset 500"));

        let mut v = Verifier::new(s, 1000);
        v.consume(&data(s, 0, 999));
        v.fin = true;
        assert!(v.problem().unwrap().starts_with("short"));

        let mut v = Verifier::new(s, 1000);
        v.consume(&data(s, 0, 1001));
        v.fin = true;
        assert!(v.problem().unwrap().starts_with("long"));
        assert!(!v.intact());

        // Another connection's stream is garbage here.
        let mut v = Verifier::new(s, 100);
        v.consume(&data(Stream::new(3, 2, 0), 0, 100));
        assert!(v.problem().unwrap().starts_with("garbled"));
    }

    #[test]
    fn header_round_trip_and_rejections() {
        let cfg = BulkConfig {
            conns: 2,
            bytes: 77,
            bidir: true,
            seed: 1,
            port: 1,
        };
        let srv = BulkServer::new(cfg);
        assert_eq!(srv.parse_header(&header(&cfg, 1)), Ok(1));
        assert!(srv.parse_header(&header(&cfg, 2)).is_err());
        let mut h = header(&cfg, 0);
        h[0] ^= 0xff;
        assert!(srv.parse_header(&h).unwrap_err().contains("magic"));
        let other = BulkConfig { bytes: 78, ..cfg };
        assert!(srv.parse_header(&header(&other, 0)).is_err());
        let uni = BulkConfig {
            bidir: false,
            ..cfg
        };
        assert!(srv.parse_header(&header(&uni, 0)).is_err());
    }
}
