//! The sans-IO TCP core (RFC 9293 with RFC 1122, 7323, 2018, 2883, 6675,
//! 6582, 5681, 9438, 6298, 3042, 6928, 3168, 5961, 6528).
//!
//! Nothing here reads a clock or touches a socket: time is an argument and
//! frames come from the I/O layer through [`crate::io::Frame`].

pub mod cc;
pub mod conn;
pub mod isn;
pub(crate) mod recv;
pub mod rtt;
pub(crate) mod sack;
pub(crate) mod send;

/// A frame over a `Vec`, for the buffers' unit tests.
#[cfg(test)]
pub(crate) mod test_frame {
    pub(crate) struct VecFrame(pub Vec<u8>);
    impl crate::io::Frame for VecFrame {
        fn buf(&self) -> &[u8] {
            &self.0
        }
        fn buf_mut(&mut self) -> &mut [u8] {
            &mut self.0
        }
    }
}

pub use crate::wire::tcp::{SeqNumber, TcpFlags, TcpOptions, TcpRepr};
pub use conn::{
    Chunk, ConnEvents, ConnStats, Connection, CopyRanges, DataLevelView, IcmpClass, IcmpNotice,
    MappedQueue, Payload, PlainHeader, RemoteSlot, RemoteView, Returned, SegmentSink, SendNow,
    State,
};

use core::net::SocketAddrV4;
use core::time::Duration;

/// A connection's addresses, from this stack's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FourTuple {
    pub local: SocketAddrV4,
    pub remote: SocketAddrV4,
}

/// Which congestion controller a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CcKind {
    /// RFC 5681 with RFC 6582 recovery.
    NewReno,
    /// RFC 9438 (the default, as in Linux).
    #[default]
    Cubic,
}

/// TCP keepalive (RFC 1122 §4.2.3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Keepalive {
    /// Idle time before the first probe.
    pub idle: Duration,
    /// Time between unanswered probes.
    pub interval: Duration,
    /// Unanswered probes before the connection is aborted.
    pub probes: u32,
}

/// Per-connection settings. `Config::default()` is what a demanding user
/// expects: SACK, timestamps, window scaling, CUBIC, IW10.
#[derive(Debug, Clone)]
pub struct Config {
    /// The MSS we announce (MTU - 40 on our link).
    pub mss: u16,
    /// Our window-scale shift (RFC 7323 §2.3), announced on SYN. `None`:
    /// derived from the receive ceiling (`Config::rcv_wscale`).
    pub window_scale: Option<u8>,
    /// Offer/accept SACK (RFC 2018).
    pub sack: bool,
    /// Offer/accept timestamps (RFC 7323).
    pub timestamps: bool,
    /// Negotiate ECN (RFC 3168).
    pub ecn: bool,
    pub cc: CcKind,
    /// Disable Nagle (RFC 1122 §4.2.3.4) by default.
    pub nodelay: bool,
    /// Frame memory (sum of truesize) the receive side may hold at first.
    pub rcv_buf: usize,
    /// Receive-buffer autotuning (dynamic right-sizing, as Linux's
    /// `tcp_rcv_space_adjust`): the receive buffer grows from `rcv_buf`
    /// toward twice what the application reads per round trip, up to
    /// this much frame memory. At or below `rcv_buf`: no autotuning.
    pub rcv_buf_max: usize,
    /// Payload bytes the send side may buffer at first. Also a frame
    /// budget: the send queue holds at most `buf / (mss - options)`
    /// frames of the current buffer, so a peer's small MSS cannot
    /// multiply the frames a connection pins.
    pub snd_buf: usize,
    /// Send-buffer autotuning (as Linux's `tcp_sndbuf_expand`): the send
    /// buffer grows from `snd_buf` toward twice the congestion window,
    /// up to this many payload bytes; an MPTCP connection's queue covers
    /// the slowest subflow's round trip at the aggregate rate
    /// (`snd_space`). At or below `snd_buf`: no autotuning.
    pub snd_buf_max: usize,
    /// Smallest peer MSS honoured (a smaller MSS option is raised to it).
    /// FreeBSD's default `net.inet.tcp.minmss` (216): every real IPv4 path
    /// carries 256-byte packets, and a smaller MSS only costs packets.
    pub min_snd_mss: u16,
    /// Packetization-layer path MTU black-hole detection (RFC 4821 §7.7):
    /// lower the MSS after repeated RTOs of full-sized segments.
    pub plpmtud: bool,
    /// After a lowered path MTU, how long until probing for a larger one
    /// (RFC 8899 §5.1.1 PMTU_RAISE_TIMER, RFC 1191 §6.3: not less than
    /// 10 minutes on the internet; Linux tcp_probe_interval, 600 s).
    pub pmtu_probe_interval: Duration,
    /// Initial window in segments (RFC 6928).
    pub initial_window: u32,
    /// Maximum segment lifetime; TIME-WAIT lasts 2·MSL (RFC 9293 §3.4.2).
    pub msl: Duration,
    /// RFC 6298 §2: initial RTO (1 s), floor and ceiling.
    pub rto_initial: Duration,
    pub rto_min: Duration,
    pub rto_max: Duration,
    /// Longest an ACK may be delayed (RFC 9293 §3.8.6.3: < 0.5 s).
    pub delayed_ack: Duration,
    pub keepalive: Option<Keepalive>,
    /// Give up FIN-WAIT-2 this long after entering it, with a RST, when the
    /// application closed for good (`close`; Linux tcp_fin_timeout, 60 s,
    /// for orphaned sockets). `None`: wait forever.
    pub fin_wait2_timeout: Option<Duration>,
    /// Abort when data stays unacknowledged this long (RFC 5482 semantics).
    pub user_timeout: Option<Duration>,
    /// SYN retransmissions before giving up.
    pub syn_retries: u32,
    /// Data retransmissions (RTO backoffs) before giving up.
    pub max_retries: u32,
    /// MPTCP v1 (RFC 8684): offer MP_CAPABLE on active opens (the stack
    /// supplies the key) and accept it on passive ones.
    pub mptcp: bool,
    /// Ask for the DSS checksum (MP_CAPABLE flag A, RFC 8684 §3.3.1);
    /// used when either side asks.
    pub mptcp_checksum: bool,
    /// Extra subflows (MP_JOIN, RFC 8684 §3.2) one connection accepts;
    /// beyond, a join is refused with RST + MP_TCPRST (as Linux's `ip
    /// mptcp limits set subflow N`). Default 0: this stage completes a
    /// join's handshake but cannot deliver data sent on a joined subflow
    /// (no connection-level reassembly yet), and a peer that sends or
    /// reinjects data there would lose the connection; refused, the join
    /// costs the peer nothing (RFC 8684 §3.2).
    pub mptcp_max_subflows: u8,
    /// A connection we accept announces our other addresses (ADD_ADDR,
    /// RFC 8684 §3.4.1) when it accepts joins (`mptcp_max_subflows` > 0).
    /// Default on; off, the peer joins only addresses it knows otherwise.
    pub mptcp_announce: bool,
    /// Congestion control of MPTCP subflows: each its own `cc` (as
    /// Linux), or coupled (RFC 6356 LIA, Reno-based).
    pub mptcp_cc: MptcpCc,
    /// MPTCP: which subflow sends the next chunk of our data
    /// (`--scheduler`; RFC 8684 §3.3.8).
    pub mptcp_scheduler: crate::mptcp::sched::SchedKind,
    /// Header prediction (RFC 9293 §3.10.7.4's common case taken without
    /// its checks, as Linux and BSD do): on by default; off, every segment
    /// takes the general path (tests compare the two).
    pub header_prediction: bool,
    /// The steady state's segments handed to the sink as a
    /// [`PlainHeader`] (`SegmentSink::emit_plain`, written from the
    /// stack's header template) instead of a `TcpRepr`: on by default;
    /// off, every segment is built by the general path (tests compare).
    pub plain_tx: bool,
    /// A small write's segment sent from `send` itself when it is all
    /// `poll_transmit` would send (`Connection::send_now`): on by
    /// default; off, it waits for the poll (tests compare the two).
    pub send_now: bool,
}

/// Congestion control across the subflows of an MPTCP connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MptcpCc {
    /// Each subflow runs `Config::cc` on its own.
    #[default]
    Uncoupled,
    /// The Linked Increases Algorithm (RFC 6356): together the subflows
    /// take no more of a shared bottleneck than one TCP flow.
    Lia,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mss: 1460,
            window_scale: None,
            sack: true,
            timestamps: true,
            ecn: true,
            cc: CcKind::Cubic,
            nodelay: false,
            rcv_buf: 4 << 20,
            rcv_buf_max: 16 << 20,
            // Linux starts at 2 × IW10 segments (`tcp_init_buffer_space`)
            // and grows to `tcp_wmem[2]`; 16 MiB covers 1 Gbit/s over a
            // 100 ms round trip, which the old fixed 4 MiB capped at 335
            // Mbit/s.
            snd_buf: 64 << 10,
            snd_buf_max: 16 << 20,
            min_snd_mss: 216,
            plpmtud: true,
            pmtu_probe_interval: Duration::from_secs(600),
            initial_window: 10,
            msl: Duration::from_secs(30),
            rto_initial: Duration::from_secs(1),
            rto_min: Duration::from_millis(200),
            rto_max: Duration::from_secs(60),
            delayed_ack: Duration::from_millis(40),
            keepalive: None,
            fin_wait2_timeout: Some(Duration::from_secs(60)),
            user_timeout: None,
            syn_retries: 6,
            max_retries: 15,
            mptcp: false,
            mptcp_checksum: false,
            mptcp_max_subflows: 0,
            mptcp_announce: true,
            mptcp_cc: MptcpCc::Uncoupled,
            mptcp_scheduler: crate::mptcp::sched::SchedKind::MinRtt,
            header_prediction: true,
            plain_tx: true,
            send_now: true,
        }
    }
}

impl Config {
    /// Our window-scale shift: the pinned one, else the smallest that lets
    /// the window reach the receive ceiling (RFC 7323 §2.3; Linux
    /// `tcp_select_initial_window`: 65535 << shift >= the most the buffer
    /// may grow to), at most 14. A fixed 7 capped the window near 8.4 MB
    /// whatever `rcv_buf_max` allowed.
    pub fn rcv_wscale(&self) -> u8 {
        if let Some(ws) = self.window_scale {
            return ws.min(14);
        }
        let ceiling = self.rcv_buf.max(self.rcv_buf_max);
        let mut shift = 0u8;
        while shift < 14 && (65535usize << shift) < ceiling {
            shift += 1;
        }
        shift
    }
}

/// RFC 9293 §3.10.7.1: the reset to send in answer to a segment that belongs
/// to no connection (`payload_len` bytes of data). `None` when the segment
/// itself is a RST (never answer a RST).
pub fn reset_for(seg: &TcpRepr, payload_len: usize) -> Option<TcpRepr> {
    if seg.flags.rst() {
        return None;
    }
    let mut rst = TcpRepr {
        src_port: seg.dst_port,
        dst_port: seg.src_port,
        ..TcpRepr::default()
    };
    if seg.flags.ack() {
        // <SEQ=SEG.ACK><CTL=RST>
        rst.seq = seg.ack;
        rst.flags = TcpFlags::RST;
    } else {
        // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
        rst.seq = SeqNumber(0);
        rst.ack = seg.seq + seg.seg_len(payload_len);
        rst.flags = TcpFlags::RST | TcpFlags::ACK;
    }
    Some(rst)
}
