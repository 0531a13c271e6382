//! The steady state's transmit path: a synchronized-state segment of a
//! plain TCP connection with nothing but timestamps to carry is handed to
//! the sink as a [`PlainHeader`] (a few words the stack writes from its
//! connection's header template) instead of a `TcpRepr` laid out with
//! its options on every segment (`ack_repr`, then `emit`'s checks).
//!
//! It applies when what `ack_repr` would add beyond the ACK, window and
//! timestamps is nothing: no MPTCP (no DSS, no checksum, no data-level
//! ACK owed), no SACK blocks to report (RFC 2018 §4: only while
//! out-of-order or D-SACK data is held), no ECE to echo (RFC 3168
//! §6.1.3). Everything else takes the general path. The bookkeeping after
//! the send is `emit`'s for such a segment: nothing left out, so no ACK
//! kept owed and no D-SACK to clear.

use super::Connection;
use crate::io::Frame;
use crate::tcp::send::Slice;
use crate::tcp::{Payload, PlainHeader, SegmentSink, SeqNumber, TcpFlags};

impl<F: Frame> Connection<F> {
    /// Whether the next segment's header is a [`PlainHeader`].
    #[inline]
    pub(super) fn plain_tx_ok(&self) -> bool {
        self.cfg.plain_tx
            && !self.rcv.ece_echo
            && self.mptcp.session.is_none()
            && self.mptcp.join.is_none()
            && self.mptcp.rx.is_none()
            && !(self.opts.sack && (self.rcv.queue.has_ooo() || self.rcv.queue.has_dsack()))
    }

    /// `ack_repr` + `emit` for a segment `plain_tx_ok` allows: from
    /// SND.NXT (new data or a pure ACK), so never beyond it.
    #[inline(always)]
    pub(super) fn emit_plain(
        &mut self,
        out: &mut dyn SegmentSink<F>,
        seq: SeqNumber,
        flags: TcpFlags,
        slice: Option<Slice>,
        ect: bool,
    ) -> bool {
        debug_assert!(seq == self.snd.nxt && self.plain_tx_ok());
        let hdr = PlainHeader {
            src_port: self.tuple.local.port(),
            dst_port: self.tuple.remote.port(),
            seq,
            ack: self.rcv.queue.nxt,
            flags: flags | TcpFlags::ACK,
            window: self.advertise(),
            // RFC 7323 §3.2: TSval, TSecr on every segment once agreed.
            ts: self.opts.ts.then(|| (self.tsval(), self.rcv.ts_recent)),
        };
        let payload = match slice {
            Some(s) => self.snd.queue.payload(s),
            None => Payload::None,
        };
        if !out.emit_plain(&hdr, payload, ect) {
            return false;
        }
        self.stats.segs_out += 1;
        self.after_ack_sent();
        true
    }
}
