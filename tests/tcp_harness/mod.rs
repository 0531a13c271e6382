//! Packet-script harness for the sans-IO TCP connection: heap frames, a
//! recording segment sink, segment builders and exact assertions.
#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};
use xdptcp::io::{Frame, Pkt, HEADROOM};
use xdptcp::tcp::{
    CcKind, Config, Connection, FourTuple, Payload, PlainHeader, SegmentSink, SeqNumber, TcpFlags,
    TcpRepr,
};
use xdptcp::time::Instant;

pub const FRAME_SIZE: usize = 2048;
/// Where received payload starts in a frame (Ethernet + IPv4 + TCP).
pub const RX_OFF: usize = 66;

/// A heap frame.
#[derive(Debug)]
pub struct HeapFrame(pub Vec<u8>);

impl Frame for HeapFrame {
    fn buf(&self) -> &[u8] {
        &self.0
    }
    fn buf_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
}

pub fn frame() -> Option<HeapFrame> {
    Some(HeapFrame(vec![0; FRAME_SIZE]))
}

/// A received payload in its own frame.
pub fn pkt(data: &[u8]) -> Pkt<HeapFrame> {
    let mut f = HeapFrame(vec![0; FRAME_SIZE]);
    f.0[RX_OFF..RX_OFF + data.len()].copy_from_slice(data);
    Pkt::new(f, RX_OFF, RX_OFF + data.len())
}

/// One emitted segment.
#[derive(Debug, Clone)]
pub struct Out {
    pub seg: TcpRepr,
    pub data: Vec<u8>,
    pub ect: bool,
    pub in_place: bool,
}

impl Out {
    pub fn flags(&self) -> TcpFlags {
        self.seg.flags
    }
    pub fn seq(&self) -> u32 {
        self.seg.seq.0
    }
    pub fn ack(&self) -> u32 {
        self.seg.ack.0
    }
    pub fn sack(&self) -> Vec<(u32, u32)> {
        self.seg
            .options
            .sack
            .as_slice()
            .iter()
            .map(|(l, r)| (l.0, r.0))
            .collect()
    }
}

/// Records every segment; can refuse (ring full).
#[derive(Default)]
pub struct Sink {
    pub out: Vec<Out>,
    pub refuse: bool,
    /// Segments handed over by `emit_plain` (the steady state's path).
    pub plain: usize,
}

impl SegmentSink<HeapFrame> for Sink {
    fn emit(&mut self, seg: &TcpRepr, payload: Payload<'_, HeapFrame>, ect: bool) -> bool {
        if self.refuse {
            return false;
        }
        let in_place = matches!(payload, Payload::InPlace { .. });
        if let Payload::InPlace { start, .. } = &payload {
            assert!(*start >= HEADROOM, "in-place payload without headroom");
        }
        self.out.push(Out {
            seg: *seg,
            data: payload.data().to_vec(),
            ect,
            in_place,
        });
        true
    }
    fn emit_plain(
        &mut self,
        hdr: &PlainHeader,
        payload: Payload<'_, HeapFrame>,
        ect: bool,
    ) -> bool {
        let ok = self.emit(&hdr.to_repr(), payload, ect);
        self.plain += ok as usize;
        ok
    }
    fn alloc(&mut self) -> Option<HeapFrame> {
        frame()
    }
}

pub const LOCAL: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80);
pub const REMOTE: SocketAddrV4 = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 40000);

pub fn tuple() -> FourTuple {
    FourTuple {
        local: LOCAL,
        remote: REMOTE,
    }
}

/// Our ISS and the peer's.
pub const ISS: u32 = 1000;
pub const PEER_ISS: u32 = 5000;

/// Deterministic base config: NewReno, no ECN, timestamps and SACK on.
pub fn cfg() -> Config {
    Config {
        cc: CcKind::NewReno,
        ecn: false,
        ..Config::default()
    }
}

/// A segment from the peer.
pub fn seg(flags: TcpFlags, seq: u32, ack: u32, window: u16) -> TcpRepr {
    TcpRepr {
        src_port: REMOTE.port(),
        dst_port: LOCAL.port(),
        seq: SeqNumber(seq),
        ack: SeqNumber(ack),
        flags,
        window,
        ..TcpRepr::default()
    }
}

pub trait ReprExt {
    fn ts(self, val: u32, ecr: u32) -> Self;
    fn mss(self, m: u16) -> Self;
    fn ws(self, s: u8) -> Self;
    fn sack_perm(self) -> Self;
    fn sack(self, blocks: &[(u32, u32)]) -> Self;
    fn with(self, f: TcpFlags) -> Self;
}

impl ReprExt for TcpRepr {
    fn ts(mut self, val: u32, ecr: u32) -> Self {
        self.options.timestamps = Some((val, ecr));
        self
    }
    fn mss(mut self, m: u16) -> Self {
        self.options.mss = Some(m);
        self
    }
    fn ws(mut self, s: u8) -> Self {
        self.options.window_scale = Some(s);
        self
    }
    fn sack_perm(mut self) -> Self {
        self.options.sack_permitted = true;
        self
    }
    fn sack(mut self, blocks: &[(u32, u32)]) -> Self {
        for &(l, r) in blocks {
            self.options.sack.push(SeqNumber(l), SeqNumber(r));
        }
        self
    }
    fn with(mut self, f: TcpFlags) -> Self {
        self.flags |= f;
        self
    }
}

pub const A: TcpFlags = TcpFlags::ACK;
pub const S: TcpFlags = TcpFlags::SYN;
pub const F: TcpFlags = TcpFlags::FIN;
pub const R: TcpFlags = TcpFlags::RST;
pub const P: TcpFlags = TcpFlags::PSH;

pub fn fl(parts: &[TcpFlags]) -> TcpFlags {
    parts.iter().fold(TcpFlags(0), |a, b| a | *b)
}

/// A connection under test, with virtual time in microseconds.
pub struct Script {
    pub c: Connection<HeapFrame>,
    pub now: Instant,
    pub sink: Sink,
}

impl Script {
    pub fn new(c: Connection<HeapFrame>) -> Self {
        Script {
            c,
            now: Instant::ZERO,
            sink: Sink::default(),
        }
    }
    pub fn at_ms(&mut self, ms: u64) -> &mut Self {
        self.now = Instant::from_millis(ms);
        self
    }
    pub fn at(&mut self, t: Instant) -> &mut Self {
        self.now = t;
        self
    }
    /// Feed a segment with payload.
    pub fn input(&mut self, s: TcpRepr, data: &[u8]) {
        self.c.handle_segment(self.now, &s, pkt(data), false);
    }
    pub fn input_ce(&mut self, s: TcpRepr, data: &[u8]) {
        self.c.handle_segment(self.now, &s, pkt(data), true);
    }
    /// Run `poll_transmit` and return what came out.
    pub fn poll(&mut self) -> Vec<Out> {
        self.c.poll_transmit(self.now, &mut self.sink);
        std::mem::take(&mut self.sink.out)
    }
    /// Feed then poll.
    pub fn io(&mut self, s: TcpRepr, data: &[u8]) -> Vec<Out> {
        self.input(s, data);
        self.poll()
    }
    /// Jump to `poll_at`, run timers, poll.
    pub fn fire(&mut self) -> Vec<Out> {
        let t = self.c.poll_at().expect("a timer should be armed");
        assert!(t >= self.now, "poll_at in the past");
        self.now = t;
        self.c.handle_timeout(t);
        self.poll()
    }
    /// Write application data.
    pub fn send(&mut self, data: &[u8]) -> usize {
        self.c.send(data, &mut frame)
    }
    pub fn read_all(&mut self) -> Vec<u8> {
        let mut v = Vec::new();
        self.c.recv_with(&mut |s| {
            v.extend_from_slice(s);
            s.len()
        });
        v
    }
}

/// Assert one segment's header: flags, seq, ack (when ACK is set), window.
#[track_caller]
pub fn check(o: &Out, flags: TcpFlags, seq: u32, ack: u32, len: usize) {
    assert_eq!(o.flags(), flags, "flags of {:?}", o.seg);
    assert_eq!(o.seq(), seq, "seq of {:?}", o.seg);
    if flags.ack() {
        assert_eq!(o.ack(), ack, "ack of {:?}", o.seg);
    }
    assert_eq!(o.data.len(), len, "payload length of {:?}", o.seg);
}

/// Our TSval at `ms`.
pub fn tsv(ms: u64) -> u32 {
    ms as u32
}

/// Data pattern byte for absolute offset `i`.
pub fn pat(i: usize) -> u8 {
    (i % 251) as u8
}

pub fn pattern(off: usize, len: usize) -> Vec<u8> {
    (off..off + len).map(pat).collect()
}

/// Active open to a peer that offers MSS 1460, wscale 7, SACK, timestamps
/// (peer TSval 100), completed at t=10 ms. Returns the script in
/// ESTABLISHED with the SYN and final ACK consumed. Sender MSS = 1448.
pub fn established(cfg: &Config) -> Script {
    let c = Connection::connect(cfg, tuple(), SeqNumber(ISS), Instant::ZERO);
    let mut s = Script::new(c);
    let syn = s.poll();
    assert_eq!(syn.len(), 1);
    s.at_ms(10);
    let mut sa = seg(S | A, PEER_ISS, ISS + 1, 65535).mss(1460).ws(7);
    if cfg.sack {
        sa = sa.sack_perm();
    }
    if cfg.timestamps {
        sa = sa.ts(100, 0);
    }
    if cfg.ecn {
        sa = sa.with(TcpFlags::ECE);
    }
    let out = s.io(sa, &[]);
    assert_eq!(out.len(), 1, "{out:?}");
    s
}

/// A peer ACK at the default window (65535 << 7 is large; use 1000 << 7).
pub fn pack(ack: u32) -> TcpRepr {
    seg(A, PEER_ISS + 1, ack, 1000).ts(200, 0)
}
