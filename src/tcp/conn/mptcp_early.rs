//! An MPTCP client whose first path dies before full establishment (RFC
//! 8684 §3.1: the server's first DSS has not shown that our third ACK,
//! the only carrier of our key, arrived).
//!
//! Once the first subflow stalls, the client joins on another path (RFC
//! 8684 §3.2: it holds the server's key, so the token and HMACs exist).
//! If the server got the third ACK, the join carries the connection on.
//! If it did not, the server cannot take the join: its MP_JOIN SYN/ACK's
//! HMAC is keyed with both keys (§3.2, "HMAC(Key=(Key-B+Key-A), ...)")
//! and a version 1 SYN carries no key (§3.1), so before the third ACK the
//! server does not hold ours; Linux likewise creates the connection's
//! socket at the third ACK, finds only such sockets by token and refuses
//! a join to one not fully established (`mptcp_can_accept_new_subflow`).
//! The refusal alone proves nothing (the same reason comes from a
//! connection closing, and a lossy first path may still deliver the third
//! ACK). With the first subflow's neighbour failing too (ARP unanswered,
//! RFC 1122 §2.3.2.1), no path can ever carry the third ACK: the
//! connection is still opening at the MPTCP level and ends as
//! unreachable, as a TCP connection still opening does.

use super::{ConnEvents, Connection, State};
use crate::io::Frame;

impl<F: Frame> Connection<F> {
    /// Whether our path manager may open subflows now
    /// (`Session::joins_allowed`): also before full establishment once
    /// this first subflow has stalled (`STALL_RTOS` timeouts in a row).
    pub fn mptcp_joins_allowed(&self) -> Option<bool> {
        self.mptcp
            .session
            .as_deref()?
            .joins_allowed(self.mptcp_first_stalled_early())
    }

    /// This first subflow stalled (`STALL_RTOS` timeouts in a row, with
    /// something still unacknowledged) before the server's first DSS
    /// showed that our third ACK arrived.
    pub(super) fn mptcp_first_stalled_early(&self) -> bool {
        self.mptcp.join.is_none()
            && !self.mptcp.meta_only
            && matches!(
                self.state,
                State::Established | State::CloseWait | State::FinWait1 | State::LastAck
            )
            && self.snd.una < self.snd.nxt
            && self.loss.rtx_count >= super::mptcp_tx::STALL_RTOS
            && self
                .mptcp
                .session
                .as_deref()
                .and_then(|m| m.joins_allowed(false))
                == Some(false)
    }

    /// A join we opened for this connection was refused before it
    /// connected (a RST answered its SYN). Noted while this first subflow
    /// is stalled before full establishment; the connection ends if its
    /// neighbour has failed too (`mptcp_early_unreachable`). Returns
    /// whether it ended.
    pub fn mptcp_early_join_refused(&mut self) -> bool {
        if !self.mptcp_first_stalled_early() {
            return false;
        }
        if let Some(m) = self.mptcp.session.as_deref_mut() {
            m.early_join_refused = true;
        }
        self.stats.mptcp_early_join_refusals += 1;
        self.mptcp_early_unreachable()
    }

    /// RFC 8684 §3.1, §3.2 (see the module): a join refused and the first
    /// subflow's neighbour failed, while that subflow is stalled before
    /// full establishment: the server can never learn our key, so the
    /// connection ends as unreachable now instead of retransmitting into
    /// the dead path for minutes. Returns whether it ended.
    pub(super) fn mptcp_early_unreachable(&mut self) -> bool {
        let refused = self
            .mptcp
            .session
            .as_deref()
            .is_some_and(|m| m.early_join_refused);
        if !(refused && self.path.neighbour_failed && self.mptcp_first_stalled_early()) {
            return false;
        }
        self.stats.mptcp_early_unreachable += 1;
        self.events.insert(ConnEvents::UNREACHABLE);
        self.enter_closed();
        true
    }
}
