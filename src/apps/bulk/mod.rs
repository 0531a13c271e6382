//! Bulk transfer with byte-for-byte verification.
//!
//! The client opens `conns` connections; each sends a 24-byte header (magic,
//! connection index, length, flags) and then `bytes` bytes of its own
//! pseudo-random [`Stream`], then shuts down its direction. The server reads
//! zero-copy (`recv_with`) and checks every byte against the regenerated
//! stream as it arrives, so nothing is stored. With `bidir`, the server
//! sends `bytes` bytes of the reverse stream back and the client checks them.
//! Short, long and garbled transfers are all detected and reported per
//! connection. [`Workload`] varies the traffic: request/response, small
//! writes, a slow reader, aborts.

mod client;
mod report;
mod server;
mod workload;

pub use client::BulkClient;
pub use report::{report, ConnReport};
pub use server::BulkServer;
pub use workload::{RrConfig, Workload};

use crate::app::CloseReason;
use crate::apps::stream::Stream;
use crate::io::Device;
use crate::stack::{ConnId, Stack};
use crate::time::Instant;

/// Header: magic, connection index, payload length, flags.
pub const HEADER_LEN: usize = 24;
pub(super) const MAGIC: u32 = 0x5844_5042; // "XDPB"
pub(super) const FLAG_BIDIR: u32 = 1;
/// Bytes generated per `send` call.
pub(super) const CHUNK: usize = 16 * 1024;

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
    pub work: Workload,
}

impl BulkConfig {
    /// Data flows server → client too.
    pub fn two_way(&self) -> bool {
        self.bidir || self.work.rr.is_some()
    }

    /// Payload bytes connection `index` carries client → server (`client`)
    /// or back.
    pub fn bytes_for(&self, index: u32, client: bool) -> u64 {
        match (self.work.rr, client) {
            (Some(rr), c) => rr.total(self.seed, index, c),
            (None, true) => self.bytes,
            (None, false) if self.bidir => self.work.reverse_bytes.unwrap_or(self.bytes),
            (None, false) => 0,
        }
    }

    /// Connection `index` is meant to be aborted by the client.
    pub fn aborts(&self, index: u32) -> bool {
        index % 2 == 1
            && self
                .work
                .abort_after
                .is_some_and(|a| a < self.bytes_for(index, true))
    }

    /// A sender of connection `index`, direction `client`.
    pub(super) fn sender(&self, index: u32, client: bool) -> Sender {
        let hdr = client.then(|| header(self, index));
        let mut s = Sender::new(
            hdr,
            Stream::new(self.seed, index, (!client) as u8),
            self.bytes_for(index, client),
        );
        s.write_size = self.work.write_size;
        s.draw_key = (self.seed, index, (!client) as u64);
        if client && self.aborts(index) {
            s.stop_at = self.work.abort_after;
        }
        s
    }
}

pub(super) fn header(cfg: &BulkConfig, index: u32) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[0..4].copy_from_slice(&MAGIC.to_be_bytes());
    h[4..8].copy_from_slice(&index.to_be_bytes());
    h[8..16].copy_from_slice(&cfg.bytes_for(index, true).to_be_bytes());
    let flags = if cfg.two_way() { FLAG_BIDIR } else { 0 };
    h[16..20].copy_from_slice(&flags.to_be_bytes());
    h
}

/// Checks one incoming direction as it arrives.
#[derive(Debug, Clone)]
pub(super) struct Verifier {
    pub(super) stream: Stream,
    pub(super) expected: u64,
    pub(super) got: u64,
    /// Offset of the first wrong byte.
    pub(super) bad_at: Option<u64>,
    pub(super) fin: bool,
}

impl Verifier {
    pub(super) fn new(stream: Stream, expected: u64) -> Self {
        Verifier {
            stream,
            expected,
            got: 0,
            bad_at: None,
            fin: false,
        }
    }

    pub(super) fn consume(&mut self, data: &[u8]) {
        if self.bad_at.is_none() {
            let within = (self.expected.saturating_sub(self.got) as usize).min(data.len());
            if let Some(i) = self.stream.check(self.got, &data[..within]) {
                self.bad_at = Some(self.got + i as u64);
            }
        }
        self.got += data.len() as u64;
    }

    pub(super) fn intact(&self) -> bool {
        self.fin && self.got == self.expected && self.bad_at.is_none()
    }

    /// What is wrong, if anything (`None` also while still in progress).
    pub(super) fn problem(&self) -> Option<String> {
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

/// Sends a header followed by a stream, in writes of drawn sizes,
/// respecting short writes, a pacer's allowance and an abort point.
#[derive(Debug, Clone)]
pub(super) struct Sender {
    pub(super) header: [u8; HEADER_LEN],
    pub(super) header_len: usize,
    pub(super) stream: Stream,
    /// Payload bytes to send after the header.
    pub(super) total: u64,
    /// Bytes accepted by the stack (header included).
    pub(super) sent: u64,
    pub(super) shut: bool,
    /// Payload bytes a request/response pacer allows so far (`None`: all).
    pub(super) allowed: Option<u64>,
    /// Stop (for an abort) once this many payload bytes are sent.
    pub(super) stop_at: Option<u64>,
    pub(super) write_size: (usize, usize),
    /// (seed, connection, direction) of the write-size draws.
    pub(super) draw_key: (u64, u32, u64),
    writes: u64,
    /// Where each write is generated (allocated on first use).
    scratch: Vec<u8>,
}

impl Sender {
    pub(super) fn new(header: Option<[u8; HEADER_LEN]>, stream: Stream, total: u64) -> Self {
        Sender {
            header: header.unwrap_or([0; HEADER_LEN]),
            header_len: if header.is_some() { HEADER_LEN } else { 0 },
            stream,
            total,
            sent: 0,
            shut: false,
            allowed: None,
            stop_at: None,
            write_size: (CHUNK, CHUNK),
            draw_key: (0, 0, 0),
            writes: 0,
            scratch: Vec::new(),
        }
    }

    pub(super) fn payload_sent(&self) -> u64 {
        self.sent.saturating_sub(self.header_len as u64)
    }

    pub(super) fn done(&self) -> bool {
        self.sent == self.header_len as u64 + self.total
    }

    /// The abort point was reached.
    pub(super) fn stopped(&self) -> bool {
        self.stop_at.is_some_and(|a| self.payload_sent() >= a)
    }

    /// Size of the next write.
    fn next_write(&mut self) -> usize {
        let (lo, hi) = self.write_size;
        let (lo, hi) = (lo.clamp(1, CHUNK), hi.clamp(1, CHUNK));
        let (seed, conn, dir) = self.draw_key;
        self.writes += 1;
        let k = dir << 48 ^ self.writes;
        workload::draw(seed, conn, workload::WRITE, k, (lo as u64, hi as u64)) as usize
    }

    /// Write as much as the stack takes; shut down after the last byte.
    pub(super) fn pump<D: Device>(&mut self, stack: &mut Stack<D>, id: ConnId) {
        self.write(stack, id);
        if self.done() && !self.shut {
            self.shut = stack.shutdown(id).is_ok();
        }
    }

    /// Write as much as the stack takes (no shutdown: during the
    /// handshake a CLOSE would delete the connection, RFC 9293 §3.10.4).
    pub(super) fn write<D: Device>(&mut self, stack: &mut Stack<D>, id: ConnId) {
        let mut buf = core::mem::take(&mut self.scratch);
        buf.resize(CHUNK, 0);
        self.pump_from(stack, id, &mut buf);
        self.scratch = buf;
    }

    fn pump_from<D: Device>(&mut self, stack: &mut Stack<D>, id: ConnId, buf: &mut [u8]) {
        while !self.done() && !self.stopped() {
            let hl = self.header_len as u64;
            let n = if self.sent < hl {
                let h = &self.header[self.sent as usize..self.header_len];
                buf[..h.len()].copy_from_slice(h);
                h.len()
            } else {
                let off = self.sent - hl;
                let cap = self.allowed.unwrap_or(self.total).min(self.total);
                let cap = self.stop_at.map_or(cap, |a| cap.min(a));
                if off >= cap {
                    return; // The pacer or the abort point holds the rest.
                }
                let n = (cap - off).min(self.next_write() as u64) as usize;
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
    }
}

pub(super) fn ms(t: Instant) -> f64 {
    t.micros() as f64 / 1000.0
}

pub(super) fn close_name(c: Option<CloseReason>, tw: bool) -> String {
    match c {
        Some(r) => format!("{r:?}").to_lowercase(),
        None if tw => "time-wait".into(),
        None => "open".into(),
    }
}

/// Read (zero-copy) and verify up to `max` readable bytes; returns how many.
pub(super) fn drain<D: Device>(
    stack: &mut Stack<D>,
    id: ConnId,
    rx: &mut Verifier,
    max: usize,
) -> usize {
    let mut total = 0;
    while total < max {
        let Ok(n) = stack.recv_with(id, &mut |d: &[u8]| {
            let k = d.len().min(max - total);
            rx.consume(&d[..k]);
            k
        }) else {
            break;
        };
        if n == 0 {
            break;
        }
        total += n;
    }
    total
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
            work: Workload::default(),
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
