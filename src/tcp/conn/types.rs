//! The connection's public vocabulary: states, emitted payloads, the
//! segment sink, application events and counters.

use crate::io::Frame;
use crate::tcp::{SeqNumber, TcpFlags, TcpOptions, TcpRepr};

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

impl State {
    /// RFC 9293 §3.3.2: the synchronized states.
    pub fn is_synchronized(self) -> bool {
        !matches!(
            self,
            State::Closed | State::Listen | State::SynSent | State::SynReceived
        )
    }
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

impl<F: Frame> Payload<'_, F> {
    /// The payload bytes.
    pub fn data(&self) -> &[u8] {
        match self {
            Payload::None => &[],
            Payload::InPlace { frame, start, end } => &frame.buf()[*start..*end],
            Payload::Bytes(b) => b,
        }
    }
}

/// The header of a synchronized-state segment of a plain TCP connection
/// whose only option is timestamps, or none (RFC 7323 Appendix A's
/// `NOP, NOP, TS` layout): every segment of the steady state. No SACK
/// blocks, no MPTCP options, no urgent pointer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainHeader {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNumber,
    pub ack: SeqNumber,
    pub flags: TcpFlags,
    /// The window field as on the wire (scaled).
    pub window: u16,
    /// TSval, TSecr.
    pub ts: Option<(u32, u32)>,
}

impl PlainHeader {
    /// The same header as a `TcpRepr` (what the general path builds).
    pub fn to_repr(&self) -> TcpRepr {
        TcpRepr {
            src_port: self.src_port,
            dst_port: self.dst_port,
            seq: self.seq,
            ack: self.ack,
            flags: self.flags,
            window: self.window,
            urgent: 0,
            options: TcpOptions {
                timestamps: self.ts,
                ..TcpOptions::default()
            },
        }
    }
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
    /// Emit a segment of the steady state (see [`PlainHeader`]): what
    /// `emit` does with `hdr.to_repr()`, which is what this default does.
    /// The stack writes it from its connection's header template instead
    /// of laying out a `TcpRepr`'s options.
    #[inline]
    fn emit_plain(&mut self, hdr: &PlainHeader, payload: Payload<'_, F>, ect: bool) -> bool {
        self.emit(&hdr.to_repr(), payload, ect)
    }
    /// A free frame for application data (with `io::HEADROOM` reserved).
    fn alloc(&mut self) -> Option<F>;
}

/// Things the application should hear about; accumulated until
/// [`Connection::take_events`]. One flag word: set by the core, taken and
/// tested by the stack several times per segment (a copy of nine `bool`s
/// cost about 19 instructions a call; a word is one load and one store).
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnEvents(u16);

/// The flags of [`ConnEvents`], one bit each.
macro_rules! conn_events {
    ($($(#[$doc:meta])* $name:ident, $get:ident = $bit:expr;)*) => {
        impl ConnEvents {
            $($(#[$doc])* pub const $name: ConnEvents = ConnEvents(1 << $bit);)*

            $($(#[$doc])* #[inline(always)] pub fn $get(self) -> bool {
                self.contains(Self::$name)
            })*
        }

        impl core::fmt::Debug for ConnEvents {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                let mut s = f.debug_set();
                $(if self.$get() {
                    s.entry(&stringify!($get));
                })*
                s.finish()
            }
        }
    };
}

conn_events! {
    /// The handshake completed (active or passive open).
    CONNECTED, connected = 0;
    /// New in-order data can be read.
    READABLE, readable = 1;
    /// Send buffer space became available after a short write.
    WRITABLE, writable = 2;
    /// The peer sent FIN: no more data will arrive after what is queued.
    READ_CLOSED, read_closed = 3;
    /// The connection is gone (fully closed, reset, or timed out). After
    /// this the stack removes it.
    CLOSED, closed = 4;
    /// Closed because of a RST from the peer.
    RESET, reset = 5;
    /// Closed because of a timeout (retries, user timeout, keepalive).
    TIMED_OUT, timed_out = 6;
    /// Closed by a hard ICMP error while opening (RFC 1122 §4.2.3.9).
    UNREACHABLE, unreachable = 7;
    /// MPTCP: the peer announced or withdrew addresses (RFC 8684 §3.4);
    /// the stack takes them with `mptcp_take_signals`.
    MPTCP_SIGNAL, mptcp_signal = 8;
}

impl ConnEvents {
    /// No event.
    pub const NONE: ConnEvents = ConnEvents(0);
    /// The events that only say the application may read or write.
    pub const IO: ConnEvents = ConnEvents(Self::READABLE.0 | Self::WRITABLE.0);

    /// Whether every flag of `other` is set.
    #[inline(always)]
    pub fn contains(self, other: ConnEvents) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set.
    #[inline(always)]
    pub fn intersects(self, other: ConnEvents) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether nothing but `IO` events is set (any new kind of event is
    /// outside `IO` by construction, so it is never taken for I/O).
    #[inline(always)]
    pub fn io_only(self) -> bool {
        self.0 & !Self::IO.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Set the flags of `other`.
    #[inline(always)]
    pub fn insert(&mut self, other: ConnEvents) {
        self.0 |= other.0;
    }

    /// Set (`on`) or clear the flags of `other`.
    #[inline(always)]
    pub fn set(&mut self, other: ConnEvents, on: bool) {
        if on {
            self.0 |= other.0;
        } else {
            self.0 &= !other.0;
        }
    }
}

impl core::ops::BitOr for ConnEvents {
    type Output = ConnEvents;
    fn bitor(self, o: ConnEvents) -> ConnEvents {
        ConnEvents(self.0 | o.0)
    }
}

/// Per-connection counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnStats {
    pub segs_in: u64,
    /// Of `segs_in`, those taken by header prediction (`predict`).
    pub segs_predicted: u64,
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
    /// Segments dropped because the receive memory was exhausted (the
    /// subflow's own queue on MPTCP; the data level's: `mptcp_data_mem_drops`).
    pub rcv_mem_drops: u64,
    /// Segments dropped as unacceptable (outside the receive window).
    pub out_of_window: u64,
    /// ECN congestion reactions (ECE received, once per window).
    pub ecn_reactions: u64,
    /// Tail loss probes sent (RFC 8985 §7).
    pub tail_loss_probes: u64,
    /// RTOs found spurious by timestamps (RFC 3522) and undone.
    pub spurious_rtos: u64,
    /// Retransmissions D-SACK showed needless (RFC 3708).
    pub spurious_retransmits: u64,
    /// Fast recoveries undone because every retransmission was needless.
    pub recovery_undos: u64,
    /// ACKs received for sequence space never sent (RFC 9293 §3.10.7.4):
    /// zero between honest stacks.
    pub acks_of_unsent: u64,
    /// Segments that left with sequence space beyond the highest recorded
    /// as sent without being new data: always zero (a bug otherwise).
    pub tx_beyond_snd_nxt: u64,
    /// Out-of-order FINs dropped because data ran past them.
    pub stale_fins: u64,
    /// ICMP errors ignored: not in flight (RFC 5927 §4.1) or wrong state.
    pub icmp_ignored: u64,
    pub icmp_frag_needed: u64,
    pub icmp_hard_errors: u64,
    pub icmp_soft_errors: u64,
    /// Times the segment size was lowered to a smaller path MTU.
    pub pmtu_reductions: u64,
    /// Black holes suspected after repeated RTOs (RFC 4821 §7.7).
    pub black_holes: u64,
    /// Path MTU probes sent (RFC 4821 §7.4), ...
    pub pmtu_probes: u64,
    /// ... that raised the segment size (§7.6.1), ...
    pub pmtu_raises: u64,
    /// ... and that were lost (§7.6.2).
    pub pmtu_probe_failures: u64,
    /// FIN-WAIT-2 given up after `fin_wait2_timeout` of silence.
    pub fin_wait2_timeouts: u64,
    /// ACKs answering invalid segments (challenge, PAWS, out of window).
    pub answer_acks: u64,
    /// Answer ACKs suppressed by the stack-wide limit (RFC 5961 §7).
    pub answer_acks_limited: u64,
    /// MPTCP offered or asked for, then plain TCP (RFC 8684 §3.7).
    pub mptcp_fallbacks: u64,
    /// MPTCP options that did not parse or did not fit (ignored).
    pub mptcp_bad_options: u64,
    /// DSS checksums that failed (RFC 8684 §3.3.1; the connection resets).
    pub mptcp_checksum_failures: u64,
    /// DSS checksums of received mappings verified.
    pub mptcp_checksums_verified: u64,
    /// Mappings spanning several segments, accepted without their
    /// checksum verified (this stage verifies per segment only).
    pub mptcp_checksums_unverified: u64,
    /// Invalid mappings (RFC 8684 §3.3.1: a conflicting second mapping
    /// for the same subflow bytes, subflow bytes without a mapping, a DSN
    /// outside any window): the subflow is reset.
    pub mptcp_mapping_mismatches: u64,
    /// MP_FASTCLOSE received with our key (RFC 8684 §3.5; reset).
    pub mptcp_fastcloses: u64,
    /// Segments whose data the data level already had, wholly or in part
    /// (a peer's connection-level reinjection; trimmed, RFC 8684 §3.3).
    pub mptcp_data_dups: u64,
    /// Segments that arrived ahead of the data level's in-order point
    /// (held for reassembly by DSN).
    pub mptcp_data_ooo: u64,
    /// Frames the data level dropped for memory (refused, or out-of-order
    /// ones evicted for in-order data): the subflow had acknowledged them,
    /// so only the peer's data-level retransmission brings them back.
    pub mptcp_data_mem_drops: u64,
    /// MP_PRIO options received (RFC 8684 §3.3.8): the subflow's backup
    /// flag set as the peer asked.
    pub mptcp_prio_received: u64,
    /// Our data bytes handed to the first subflow / to joined subflows by
    /// the scheduler (reinjections and redundant copies included).
    pub mptcp_bytes_first: u64,
    pub mptcp_bytes_joined: u64,
    /// Ranges of our data sent again on another subflow because the one
    /// that had them stalled or went (RFC 8684 §3.3.6).
    pub mptcp_reinjections: u64,
    /// Data-level retransmission timeouts: the DATA_ACK did not move for
    /// a while with data given to subflows, whose oldest range went again
    /// (RFC 8684 §3.3.6; the peer's data level dropped it, or a subflow
    /// holding it died).
    pub mptcp_data_rtos: u64,
    /// Bytes the redundant scheduler sent more than once.
    pub mptcp_redundant_bytes: u64,
    /// Chunks of our data the `minrtt` scheduler sent again on a faster
    /// subflow because a slower one held the oldest unacknowledged data
    /// while the connection-level window was exhausted (opportunistic
    /// retransmission, Raiciu et al. NSDI 2012 §4.2).
    pub mptcp_opportunistic_retransmits: u64,
    /// Times a slower subflow's window was halved for holding up the
    /// connection-level window (at most once per its RTT).
    pub mptcp_penalisations: u64,
    /// Bytes copied from the connection's queue into subflows' frames.
    pub mptcp_tx_copied_bytes: u64,
    /// Bytes whose frame moved from the connection's queue to a subflow's
    /// (lent: it comes back at the subflow's ACK).
    pub mptcp_tx_lent_bytes: u64,
    /// Bytes lent to a subflow that were copied back from it for a
    /// reinjection (stalled, or slower for an opportunistic
    /// retransmission).
    pub mptcp_tx_reinject_copied_bytes: u64,
    /// Bytes lent to a subflow that left for another worker and could not
    /// be copied for the connection (no free frame): not reinjectable.
    pub mptcp_tx_lent_uncopied_bytes: u64,
    /// In-order data-level bytes that arrived on joined subflows.
    pub mptcp_joined_bytes: u64,
    /// MP_JOIN subflows whose third ACK carried the right HMAC (RFC 8684
    /// §3.2).
    pub mptcp_joins_accepted: u64,
    /// MP_JOIN subflows reset for a wrong or missing HMAC in the third ACK.
    pub mptcp_joins_rejected_hmac: u64,
    /// Subflows we joined that completed their handshake: the fourth ACK
    /// arrived (RFC 8684 §3.2).
    pub mptcp_subflows_opened: u64,
    /// Subflows we joined reset because the SYN/ACK's truncated HMAC-B
    /// was wrong or missing (RFC 8684 §3.2).
    pub mptcp_join_synack_bad_hmac: u64,
    /// ADD_ADDR received with a valid HMAC (RFC 8684 §3.4.1), echoed.
    pub mptcp_add_addr_received: u64,
    /// ADD_ADDR ignored: wrong or missing HMAC.
    pub mptcp_add_addr_bad_hmac: u64,
    /// REMOVE_ADDR received (RFC 8684 §3.4.2).
    pub mptcp_remove_addr_received: u64,
    /// Our ADD_ADDR announcements sent (RFC 8684 §3.4.1), first
    /// transmissions and retransmissions (no echo yet), and the echoes
    /// that acknowledged them.
    pub mptcp_add_addr_sent: u64,
    pub mptcp_add_addr_retransmits: u64,
    pub mptcp_add_addr_echoed: u64,
    /// REMOVE_ADDR sent (RFC 8684 §3.4.2).
    pub mptcp_remove_addr_sent: u64,
    /// MP_FAIL sent (RFC 8684 §3.7): with a RST on a joined subflow whose
    /// DSS checksum failed, or on a pure ACK of a single subflow (ours,
    /// or the echo of the peer's) to fall back through an infinite mapping.
    pub mptcp_mp_fail_sent: u64,
    /// MP_FAIL received from the peer.
    pub mptcp_mp_fail_received: u64,
    /// Infinite mappings sent and received: the connection fell back to
    /// TCP after a checksum failure (RFC 8684 §3.7).
    pub mptcp_infinite_maps_sent: u64,
    pub mptcp_infinite_maps_received: u64,
    /// RSTs sent with MP_FASTCLOSE (RFC 8684 §3.5).
    pub mptcp_fastcloses_sent: u64,
    /// The first subflow died (reset, timed out, or stalled with only its
    /// FIN left) while a joined subflow lived: the connection went on
    /// over the others (RFC 8684 §3.3.6).
    pub mptcp_first_subflow_ended: u64,
    /// Joins we opened while the first subflow stalled before full
    /// establishment, refused (`Connection::mptcp_early_join_refused`).
    pub mptcp_early_join_refusals: u64,
    /// Client connections ended as unreachable: an early join refused and
    /// the first subflow's neighbour failed before full establishment
    /// (`Connection::mptcp_early_unreachable`).
    pub mptcp_early_unreachable: u64,
    /// Segments that arrived on such a dead first subflow (dropped).
    pub mptcp_dead_subflow_drops: u64,
    /// Segments dropped for an ACK older than SND.UNA - MAX.SND.WND (RFC
    /// 5961 §5.2: blind data injection).
    pub old_ack_drops: u64,
    /// Segments without ACK in a synchronized state, dropped (RFC 9293
    /// §3.10.7.4 fifth).
    pub no_ack_drops: u64,
}

#[cfg(test)]
mod tests {
    use super::ConnEvents as E;

    /// Each flag is its own bit, read back by its accessor alone; `set`
    /// clears as well as sets; only `READABLE` and `WRITABLE` are I/O.
    #[test]
    fn conn_events_flags_are_distinct() {
        let all = [
            (E::CONNECTED, E::connected as fn(E) -> bool),
            (E::READABLE, E::readable),
            (E::WRITABLE, E::writable),
            (E::READ_CLOSED, E::read_closed),
            (E::CLOSED, E::closed),
            (E::RESET, E::reset),
            (E::TIMED_OUT, E::timed_out),
            (E::UNREACHABLE, E::unreachable),
            (E::MPTCP_SIGNAL, E::mptcp_signal),
        ];
        for (i, &(flag, _)) in all.iter().enumerate() {
            let mut ev = E::default();
            assert!(ev.is_empty() && ev.io_only());
            ev.insert(flag);
            for (j, &(_, get)) in all.iter().enumerate() {
                assert_eq!(get(ev), i == j, "flag {i} read as {j}");
            }
            let io = flag == E::READABLE || flag == E::WRITABLE;
            assert_eq!(ev.io_only(), io, "flag {i}");
            ev.set(flag, false);
            assert_eq!(ev, E::NONE);
        }
        assert_eq!(
            format!("{:?}", E::READABLE | E::RESET),
            r#"{"readable", "reset"}"#
        );
    }
}
