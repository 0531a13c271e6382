//! The hooks of a subflow the peer joined to one of our connections (RFC
//! 8684 §3.2): MP_JOIN on our SYN/ACK (built in `mptcp::syn_options`), the
//! third ACK's HMAC checked here, the fourth ACK, and the reset of a
//! subflow that fails the check. The handshake state is
//! [`crate::mptcp::Join`]; the stack found the connection by its token.

use super::mptcp::push;
use super::{Connection, State};
use crate::io::Frame;
use crate::mptcp::{join, Join, JoinPhase};
use crate::tcp::{Config, FourTuple, SeqNumber, TcpRepr};
use crate::time::Instant;
use crate::wire::MptcpRaw;

impl<F: Frame> Connection<F> {
    /// Passive open of a joining subflow from its SYN (RFC 8684 §3.2):
    /// SYN-RECEIVED; the SYN-ACK with our MP_JOIN leaves on the next
    /// `poll_transmit`.
    pub fn accept_join(
        cfg: &Config,
        tuple: FourTuple,
        syn: &TcpRepr,
        iss: SeqNumber,
        now: Instant,
        join: Join,
    ) -> Self {
        let mut c = Self::new_tcb(cfg, tuple, iss, State::SynReceived, now);
        c.join = Some(Box::new(join));
        c.on_passive_syn(syn, now);
        c
    }

    /// The join state, if this subflow was joined by the peer.
    pub fn mptcp_join(&self) -> Option<&Join> {
        self.join.as_deref()
    }

    /// An acceptable segment on a joined subflow, after its ACK was
    /// processed. The first one (the third ACK) must carry HMAC-A; then
    /// the fourth ACK goes out at once (RFC 8684 §3.2: "host B ... MUST
    /// respond with an ACK", so that A knows the third ACK arrived before
    /// it sends data). Returns false when the subflow was reset.
    pub(super) fn join_on_segment(&mut self, seg: &TcpRepr) -> bool {
        let Some(j) = &mut self.join else {
            return true;
        };
        if j.phase == JoinPhase::Verified {
            return true;
        }
        match j.on_third_ack(seg.options.mptcp.as_slice()) {
            Ok(()) => {
                self.stats.mptcp_joins_accepted += 1;
                self.ack_now = true;
                true
            }
            Err(_) => {
                // RFC 8684 §3.2: "If these HMACs are not valid, then the host
                // MUST close the subflow with a TCP RST", with an MP_TCPRST
                // "MPTCP-specific error" (as Linux does).
                self.stats.mptcp_joins_rejected_hmac += 1;
                self.queue_active_reset();
                if let Some(rst) = &mut self.rst_pending {
                    let mut raw = MptcpRaw::default();
                    push(&mut raw, &join::reject_option());
                    rst.options.mptcp = raw;
                }
                self.events.reset = true;
                self.enter_closed();
                false
            }
        }
    }
}
