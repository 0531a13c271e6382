//! The connection outliving its first subflow (RFC 8684 §3.3.6, §3.3.3).
//!
//! The first subflow's TCB holds the connection-level state the
//! application uses: its handle (the `ConnId`), the data-level receive
//! queue (`mptcp_rx`), the connection's send queue and scheduler
//! (`mptcp_tx`), the keys and the DATA_ACK / DATA_FIN state (`Session`).
//! When that subflow dies — reset by the peer or timed out — while a
//! joined subflow lives, only its *subflow* role ends: it sends nothing more, runs no
//! timer and drops what still arrives on its 4-tuple (`meta_only`); what
//! it was given goes again on the others, and its TCP state from then on
//! is the connection's, driven by DATA_FINs and DATA_ACKs instead of
//! FINs and ACKs. Our DATA_FIN then rides the joined subflows' FINs
//! ("the DATA_FIN ... MAY be sent on any subflow"), and the connection
//! closes normally once both DATA_FINs are acknowledged (§3.3.3). When its
//! last subflow goes too, it is reset. Stalled on a dead-looking path with
//! only its FIN left, it hands the DATA_FIN to the others as well but
//! stays as the connection's retry path until the data level is done.

use super::mptcp_tx::STALL_RTOS;

/// Retransmission timeouts in a row after which a first subflow with only
/// its FIN left looks dead and the DATA_FIN goes on the others too (twice
/// what makes the scheduler pass a subflow by: a lossy path that still
/// works rarely loses that many in a row).
const DEAD_RTOS: u32 = 2 * STALL_RTOS;
use super::{Connection, State};
use crate::io::Frame;
use crate::tcp::{Payload, SegmentSink, TcpRepr};
use crate::wire::mptcp::MptcpOption;
use crate::wire::tcp::whole_options;

impl<F: Frame> Connection<F> {
    /// Whether this TCB holds only its connection's state, its subflow
    /// role ended (its first subflow died).
    pub fn mptcp_meta_only(&self) -> bool {
        self.mptcp.meta_only
    }

    /// A segment on the dead first subflow's 4-tuple (its path was not
    /// dead after all): dropped, and answered with a RST as a closed
    /// subflow is (RFC 9293 §3.10.7.1), so the peer ends its side too
    /// and its connection goes on over the other subflows.
    pub(super) fn mptcp_dead_subflow_input(&mut self, seg: &TcpRepr, len: usize) {
        self.stats.mptcp_dead_subflow_drops += 1;
        if self.rst_pending.is_none() {
            self.rst_pending = crate::tcp::reset_for(seg, len);
        }
    }

    /// What the dead first subflow sends: only the RST answering a
    /// segment that still arrived on it.
    pub(super) fn mptcp_dead_subflow_output(&mut self, out: &mut dyn SegmentSink<F>) {
        if let Some(rst) = self.rst_pending.take() {
            if out.emit(&rst, Payload::None, false) {
                self.stats.segs_out += 1;
            } else {
                self.rst_pending = Some(rst);
            }
        }
    }

    /// The ACK that closed a joined subflow (LAST-ACK) may carry the
    /// DATA_ACK of the connection's DATA_FIN that its FIN carried (RFC
    /// 8684 §3.3.3): kept for the connection, which hears of it as the
    /// subflow goes.
    pub(super) fn mptcp_closing_data_ack(&mut self, seg: &TcpRepr) {
        let opts = seg.options.mptcp.as_slice();
        if let Some(a) = crate::mptcp::session::data_ack_in(opts) {
            self.mptcp_tx_note_data_ack(a);
        }
    }

    /// Whether the connection can outlive this, its first subflow: it
    /// schedules over subflows and one joined subflow is alive
    /// (`usable`: and usable now).
    fn mptcp_can_outlive(&self, usable: bool) -> bool {
        !self.mptcp.meta_only
            && self.mptcp.join.is_none()
            && self.may_send_data()
            && self.meta_tx().is_some_and(|m| m.joined_alive(usable))
    }

    /// The first subflow timed out (retransmissions or user timeout given
    /// up, keepalive unanswered): RFC 8684 §3.3.6, its data goes on the
    /// other subflows and the connection continues. Returns whether it
    /// does (else the caller closes it as plain TCP).
    pub(super) fn mptcp_first_timed_out(&mut self) -> bool {
        if !self.mptcp_can_outlive(false) {
            return false;
        }
        self.mptcp_end_first_role();
        true
    }

    /// An acceptable RST on the first subflow: it resets that subflow
    /// only, unless it carries MP_FASTCLOSE (RFC 8684 §3.5: the whole
    /// connection). Returns whether the connection continues.
    pub(super) fn mptcp_first_reset(&mut self, seg: &TcpRepr) -> bool {
        let fastclose = whole_options(seg.options.mptcp.as_slice())
            .any(|o| matches!(MptcpOption::parse(o), Ok(MptcpOption::MpFastclose { .. })));
        if fastclose || !self.mptcp_can_outlive(false) {
            return false;
        }
        self.mptcp_end_first_role();
        true
    }

    /// RFC 8684 §3.4.2: the peer withdrew Address ID 0, its end of this
    /// first subflow ("the receiver MUST close the subflows that use it"):
    /// while a joined subflow carries the connection on, this one's role
    /// ends now (its data goes on the others) instead of when its path
    /// times out. Returns whether it ended.
    pub fn mptcp_first_removed(&mut self) -> bool {
        if !self.mptcp_can_outlive(false) {
            return false;
        }
        self.mptcp_end_first_role();
        true
    }

    /// The application closed, every byte is DATA_ACKed, and the first
    /// subflow is stalled (`DEAD_RTOS` timeouts in a row: its path looks
    /// dead) while a joined subflow works: its FIN, which would carry the
    /// DATA_FIN, is all it has left, so the DATA_FIN goes on the others too
    /// (`mptcp_data_fin_due`), rather than after minutes of backing off.
    /// The subflow itself stays, retransmitting its FIN: a joined subflow
    /// that looks usable may be idle on a path that died unnoticed, and a
    /// path that stalled may work again (a neighbour that changed its MAC),
    /// so it is the connection's retry path until the data level is done
    /// (`mptcp_first_done`), as Linux keeps a subflow until TCP gives up on
    /// it (RFC 8684 §3.3.6: data MAY be sent on any subflow).
    fn mptcp_first_stalled(&self) -> bool {
        self.loss.rtx_count >= DEAD_RTOS
            && matches!(
                self.state,
                State::FinWait1 | State::Closing | State::LastAck
            )
            && self.meta_tx().is_some_and(|m| m.all_acked())
            && self.mptcp_can_outlive(true)
    }

    /// RFC 8684 §3.3.3: "A connection is considered closed once both
    /// hosts' DATA_FINs have been acknowledged by DATA_ACKs". Our FIN (and
    /// DATA_FIN) acknowledged, the first subflow waits in FIN-WAIT-2 for
    /// the peer's FIN; when the peer's DATA_FIN came over another subflow,
    /// that FIN may never come (the peer's first subflow ended): the
    /// connection is done, and the subflow goes to TIME-WAIT (where a late
    /// FIN is still ACKed).
    /// Likewise a first subflow still retransmitting its FIN after the
    /// DATA_FIN went on the others (`mptcp_first_stalled`).
    pub(super) fn mptcp_first_done(&mut self) {
        let fin_elsewhere = self.meta_tx().is_some_and(|m| m.data_fin_out())
            && matches!(
                self.state,
                State::FinWait1 | State::Closing | State::LastAck
            );
        if self.mptcp.meta_only
            || self.mptcp.join.is_some()
            || !(self.state == State::FinWait2 || fin_elsewhere)
        {
            return;
        }
        let ours = match (self.meta_tx(), self.mptcp.session.as_deref()) {
            (Some(t), Some(s)) => t.data_fin_acked(s),
            _ => false,
        };
        if !(ours && self.mptcp_data_fin_done()) {
            return;
        }
        if self.state == State::FinWait2 {
            // RFC 8684 §3.3.3: a subflow closes as TCP does; RFC 9293
            // §3.10.7.4: the side whose FIN went first lingers in
            // TIME-WAIT. The peer's last ACK or FIN (in flight, or its
            // first subflow closing after the connection) finds it there,
            // absorbed or ACKed, instead of a RST for an unknown flow; the
            // application hears `Closed` now (the stack), not after 2·MSL.
            self.enter_time_wait();
            return;
        }
        self.mptcp_end_first_role();
    }

    /// RFC 8684 §3.3.3: "A connection is considered closed once both
    /// hosts' DATA_FINs have been acknowledged by DATA_ACKs". True for a
    /// first subflow in TIME-WAIT whose connection is closed: only the
    /// subflow lingers (its FINs), so the token may go (Linux removes it
    /// when the msk closes, not with the subflow's TIME-WAIT).
    pub fn mptcp_conn_closed(&self) -> bool {
        if self.state != State::TimeWait || self.mptcp.join.is_some() {
            return false;
        }
        let Some(s) = self.mptcp.session.as_deref() else {
            return false;
        };
        // No connection-level queue: our DATA_FIN rode this subflow's
        // FIN, which TIME-WAIT says was acknowledged.
        let ours = self.meta_tx().is_none_or(|t| t.data_fin_acked(s));
        ours && self.mptcp_data_fin_done()
    }

    /// End the subflow role of this TCB; the connection-level parts stay.
    fn mptcp_end_first_role(&mut self) {
        if !self.mptcp_tx_first_gone() {
            return;
        }
        self.mptcp.meta_only = true;
        self.stats.mptcp_first_subflow_ended += 1;
        // Its own queues hold copies of the connection's data (kept in
        // the connection's queue until DATA_ACKed) and nothing in order
        // for the data level: all of it goes.
        self.drop_queues_and_timers();
        self.rst_pending = None;
        self.mptcp_meta_advance();
    }

    /// Without its subflow, the TCB's state is the connection's (RFC 8684
    /// §3.3.3): the application's shutdown, our DATA_FIN DATA_ACKed, and
    /// the peer's DATA_FIN reached in order decide it, as FINs and ACKs do
    /// for TCP; both DATA_FINs acknowledged close it (no TIME-WAIT: its
    /// subflow is gone, and the joined ones have their own).
    pub(super) fn mptcp_meta_advance(&mut self) {
        if !self.mptcp.meta_only || self.state == State::Closed {
            return;
        }
        let ours = match (self.meta_tx(), self.mptcp.session.as_deref()) {
            (Some(t), Some(s)) => t.data_fin_acked(s),
            _ => false,
        };
        let theirs = self.mptcp_data_fin_done();
        let shut = matches!(
            self.state,
            State::FinWait1 | State::FinWait2 | State::Closing | State::LastAck | State::TimeWait
        );
        self.state = match (shut, ours, theirs) {
            (false, _, false) => State::Established,
            (false, _, true) => State::CloseWait,
            (true, false, false) => State::FinWait1,
            (true, true, false) => State::FinWait2,
            (true, false, true) => State::LastAck,
            (true, true, true) => {
                self.enter_closed();
                return;
            }
        };
    }

    /// Our DATA_FIN's DSN when it is due on the joined subflows (once):
    /// the first subflow is gone or stalled, the application closed, and
    /// every byte is DATA_ACKed.
    pub fn mptcp_data_fin_due(&mut self) -> Option<u64> {
        let gone = self.mptcp.meta_only && matches!(self.state, State::FinWait1 | State::LastAck);
        if !gone && !self.mptcp_first_stalled() {
            return None;
        }
        self.meta_tx_mut()?.take_data_fin()
    }
}
