//! One TCP connection (the TCB of RFC 9293 §3.3.1) and its state machine.
//!
//! Inputs: [`Connection::handle_segment`], [`Connection::handle_timeout`] and
//! the application calls. Outputs: segments through [`SegmentSink`] from
//! [`Connection::poll_transmit`], and [`ConnEvents`] for the application.

use super::{Config, FourTuple, SeqNumber, TcpRepr};
use crate::io::{Frame, Pkt};
use crate::time::Instant;

/// The eleven states of RFC 9293 §3.3.2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Closed,
    Listen,
    SynSent,
    SynReceived,
    Established,
    FinWait1,
    FinWait2,
    CloseWait,
    Closing,
    LastAck,
    TimeWait,
}

/// Where the payload of an emitted segment lives.
pub enum Payload<'a, F> {
    /// No data (SYN, pure ACK, FIN, RST).
    None,
    /// Data in a frame the connection keeps (send queue), at
    /// `frame[start..end]` with at least `io::HEADROOM` bytes free before
    /// `start`: the sink writes headers there in place and transmits with
    /// `Device::transmit_ref`.
    InPlace {
        frame: &'a mut F,
        start: usize,
        end: usize,
    },
    /// Data that cannot take headers in place (e.g. the tail of a partially
    /// sent frame): the sink copies it into a fresh frame.
    Bytes(&'a [u8]),
}

/// Receives the segments a connection emits. The stack implements it by
/// adding IPv4 and Ethernet headers and handing the frame to the device.
pub trait SegmentSink<F> {
    /// Emit one segment. `ect`: mark the IP header ECT(0) (RFC 3168 §6.1.4:
    /// new data segments of an ECN-capable connection only; never pure ACKs,
    /// SYNs or retransmissions). Returns false if it could not be sent now
    /// (no frame, ring full); the connection then stops emitting and tries
    /// again on the next `poll_transmit`.
    fn emit(&mut self, seg: &TcpRepr, payload: Payload<'_, F>, ect: bool) -> bool;
    /// A free frame for application data (with `io::HEADROOM` reserved).
    fn alloc(&mut self) -> Option<F>;
}

/// Things the application should hear about; accumulated until
/// [`Connection::take_events`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnEvents {
    /// The handshake completed (active or passive open).
    pub connected: bool,
    /// New in-order data can be read.
    pub readable: bool,
    /// Send buffer space became available after a short write.
    pub writable: bool,
    /// The peer sent FIN: no more data will arrive after what is queued.
    pub read_closed: bool,
    /// The connection is gone (fully closed, reset, or timed out). After
    /// this the stack removes it.
    pub closed: bool,
    /// Closed because of a RST from the peer.
    pub reset: bool,
    /// Closed because of a timeout (retries, user timeout, keepalive).
    pub timed_out: bool,
}

/// Per-connection counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    pub segs_in: u64,
    pub segs_out: u64,
    pub bytes_acked: u64,
    pub bytes_received: u64,
    /// Segments retransmitted for any reason.
    pub retransmits: u64,
    pub rto_timeouts: u64,
    /// Entries into SACK or NewReno fast recovery.
    pub fast_recoveries: u64,
    /// Duplicate segments received (fully old data).
    pub dup_segs_in: u64,
    pub ooo_segs_in: u64,
    pub challenge_acks: u64,
    /// Segments rejected by PAWS (RFC 7323 §5).
    pub paws_drops: u64,
    pub zero_window_probes: u64,
    pub keepalive_probes: u64,
    /// Out-of-order frames collapsed under memory pressure.
    pub collapsed: u64,
    /// Segments dropped because the receive memory was exhausted.
    pub rcv_mem_drops: u64,
}

/// One TCP connection over frames of type `F`.
pub struct Connection<F: Frame> {
    _f: core::marker::PhantomData<F>,
}

impl<F: Frame> Connection<F> {
    /// Active open (RFC 9293 §3.10.1): SYN-SENT; the SYN leaves on the next
    /// `poll_transmit`.
    pub fn connect(cfg: &Config, tuple: FourTuple, iss: SeqNumber, now: Instant) -> Self {
        let _ = (cfg, tuple, iss, now);
        todo!()
    }

    /// A passive TCB in LISTEN (RFC 9293 §3.10.1) for `tuple.local`; the
    /// remote part of `tuple` is filled in by the first SYN. The stack's
    /// listeners use [`Connection::accept`] instead; this exists so the whole
    /// state machine can be driven segment by segment.
    pub fn listen(cfg: &Config, tuple: FourTuple, iss: SeqNumber) -> Self {
        let _ = (cfg, tuple, iss);
        todo!()
    }

    /// Passive open from a received SYN (RFC 9293 §3.10.7.2): SYN-RECEIVED;
    /// the SYN-ACK leaves on the next `poll_transmit`.
    pub fn accept(
        cfg: &Config,
        tuple: FourTuple,
        syn: &TcpRepr,
        iss: SeqNumber,
        now: Instant,
    ) -> Self {
        let _ = (cfg, tuple, syn, iss, now);
        todo!()
    }

    /// ESTABLISHED straight from the ACK that completed a SYN-cookie
    /// handshake (RFC 4987 §3.1): `syn` holds what the cookie encoded (the
    /// peer's ISN in `seq`, and its MSS, window scale, SACK-permitted and
    /// timestamps options); `iss` is our ISN (the cookie).
    pub fn from_cookie(
        cfg: &Config,
        tuple: FourTuple,
        syn: &TcpRepr,
        iss: SeqNumber,
        ack: &TcpRepr,
        now: Instant,
    ) -> Self {
        let _ = (cfg, tuple, syn, iss, ack, now);
        todo!()
    }

    /// Process one arriving segment (RFC 9293 §3.10.7). `payload` holds its
    /// data (possibly empty) and is kept without copying if accepted. `ce`
    /// is set when the IP header carried ECN Congestion Experienced.
    pub fn handle_segment(&mut self, now: Instant, seg: &TcpRepr, payload: Pkt<F>, ce: bool) {
        let _ = (now, seg, payload, ce);
        todo!()
    }

    /// Emit every segment that is due at `now`: handshake, data allowed by
    /// the windows, retransmissions, ACKs, window updates, probes, RST.
    pub fn poll_transmit(&mut self, now: Instant, out: &mut dyn SegmentSink<F>) {
        let _ = (now, out);
        todo!()
    }

    /// Run the timers that expired by `now` (retransmission, delayed ACK,
    /// persist, keepalive, TIME-WAIT, user timeout).
    pub fn handle_timeout(&mut self, now: Instant) {
        let _ = now;
        todo!()
    }

    /// The earliest instant at which `handle_timeout` or `poll_transmit`
    /// has something to do, if any.
    pub fn poll_at(&self) -> Option<Instant> {
        todo!()
    }

    /// Zero-copy read: call `f` with consecutive in-order slices; `f` returns
    /// how many bytes of the slice it consumed (fewer stops the read).
    /// Frames are released when fully consumed. Returns bytes consumed.
    pub fn recv_with(&mut self, f: &mut dyn FnMut(&[u8]) -> usize) -> usize {
        let _ = f;
        todo!()
    }

    /// Copying read into `buf`. Returns bytes read.
    pub fn recv(&mut self, buf: &mut [u8]) -> usize {
        let mut n = 0;
        self.recv_with(&mut |s| {
            let k = s.len().min(buf.len() - n);
            buf[n..n + k].copy_from_slice(&s[..k]);
            n += k;
            k
        });
        n
    }

    /// In-order bytes ready to read.
    pub fn recv_available(&self) -> usize {
        todo!()
    }

    /// Queue `data` for sending, written into frames from `alloc` (with
    /// `io::HEADROOM` reserved). Returns bytes accepted (short when the send
    /// buffer is full; `writable` fires when space frees up).
    pub fn send(&mut self, data: &[u8], alloc: &mut dyn FnMut() -> Option<F>) -> usize {
        let _ = (data, alloc);
        todo!()
    }

    /// Bytes `send` would accept now.
    pub fn send_capacity(&self) -> usize {
        todo!()
    }

    /// Half-close (RFC 9293 §3.10.4 CLOSE): FIN after all queued data; the
    /// receive side stays open.
    pub fn shutdown(&mut self) {
        todo!()
    }

    /// Abort (RFC 9293 §3.10.5): RST to the peer, queues discarded, CLOSED.
    pub fn abort(&mut self) {
        todo!()
    }

    /// Nagle on/off (RFC 1122 §4.2.3.4).
    pub fn set_nodelay(&mut self, nodelay: bool) {
        let _ = nodelay;
        todo!()
    }

    pub fn state(&self) -> State {
        todo!()
    }

    pub fn tuple(&self) -> FourTuple {
        todo!()
    }

    /// Events since the last call.
    pub fn take_events(&mut self) -> ConnEvents {
        todo!()
    }

    pub fn stats(&self) -> &ConnStats {
        todo!()
    }
}
