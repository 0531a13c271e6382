//! The send part of the TCB: RFC 9293 §3.3.1's send sequence space
//! (SND.UNA, SND.NXT, SND.WND, SND.WL1, SND.WL2, ISS) with the send
//! buffer and the RFC 6675 scoreboard over it, and what decides when the
//! application's data may leave (Nagle, RFC 1122 §4.2.3.4).

use crate::io::Frame;
use crate::tcp::sack::Scoreboard;
use crate::tcp::send::SendBuffer;
use crate::tcp::SeqNumber;
use crate::time::Instant;

/// Send sequence space and send queue (RFC 9293 §3.3.1).
pub(super) struct SendSide<F: Frame> {
    pub iss: SeqNumber,
    pub una: SeqNumber,
    /// Next new sequence number (retransmissions do not move it, so it is
    /// also the highest sent, "HighData" of RFC 6675).
    pub nxt: SeqNumber,
    pub wnd: usize,
    pub wl1: SeqNumber,
    pub wl2: SeqNumber,
    /// RFC 5961 §5: MAX.SND.WND.
    pub max_wnd: usize,
    /// Payload bytes per segment (MSS less fixed options).
    pub mss: usize,
    pub queue: SendBuffer<F>,
    pub sb: Scoreboard,
    /// The application called `shutdown`: FIN after the queued data.
    pub fin_queued: bool,
    /// `send` returned short: report `writable` when space frees.
    pub write_blocked: bool,
    pub nodelay: bool,
    /// End of the last short segment sent (Minshall's Nagle variant).
    pub sml: SeqNumber,
    pub last_data_sent: Instant,
    /// Since when the oldest outstanding data has been waiting (user timeout).
    pub una_since: Option<Instant>,
}

impl<F: Frame> SendSide<F> {
    pub(super) fn new(iss: SeqNumber, mss: usize, nodelay: bool, now: Instant) -> Self {
        SendSide {
            iss,
            una: iss,
            nxt: iss,
            wnd: 0,
            wl1: SeqNumber(0),
            wl2: iss,
            max_wnd: 0,
            mss,
            queue: SendBuffer::new(iss + 1),
            sb: Scoreboard::default(),
            fin_queued: false,
            write_blocked: false,
            nodelay,
            sml: iss,
            last_data_sent: now,
            una_since: None,
        }
    }
}
