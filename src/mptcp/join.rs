//! The passive side of an MP_JOIN handshake (RFC 8684 §3.2): a new subflow
//! that host A (the peer) opens towards us (host B) for a connection we
//! already hold.
//!
//! ```text
//!  A                                   B (us)
//!  SYN + MP_JOIN(token-B, R-A, id, B)   -> token lookup (the stack)
//!  <- SYN/ACK + MP_JOIN(HMAC-B/64, R-B, id, B)
//!  ACK + MP_JOIN(HMAC-A/160)            -> verified here
//!  <- ACK                               (the "fourth ACK")
//! ```
//!
//! Sans-IO: the stack supplies both keys of the connection (found by the
//! token) and our nonce; this module builds the SYN/ACK option and checks
//! the third ACK's HMAC.

use super::crypto::{self, Key};
use crate::wire::mptcp::{MpJoin, MptcpOption};
use crate::wire::tcp::whole_options;

/// MP_TCPRST reason codes (RFC 8684 §3.6).
pub mod rst_reason {
    /// "MPTCP-specific error": an unknown token, a refused join (§3.2) or
    /// a bad HMAC.
    pub const MPTCP_ERROR: u8 = 0x01;
}

/// What the peer's SYN asked for (RFC 8684 §3.2, figure 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinSyn {
    /// B: the peer wants this subflow as a backup path (§3.3.8).
    pub backup: bool,
    /// The peer's Address ID of the address it sends from.
    pub addr_id: u8,
    /// Our token (the receiver's, §3.2).
    pub token: u32,
    /// R-A.
    pub nonce: u32,
}

impl JoinSyn {
    /// The MP_JOIN of a SYN's raw MPTCP options, if any.
    pub fn find(opts: &[u8]) -> Option<JoinSyn> {
        whole_options(opts).find_map(|o| match MptcpOption::parse(o) {
            Ok(MptcpOption::MpJoin(MpJoin::Syn {
                backup,
                addr_id,
                token,
                nonce,
            })) => Some(JoinSyn {
                backup,
                addr_id,
                token,
                nonce,
            }),
            _ => None,
        })
    }
}

/// Why a join was refused (counted apart: `mptcp_joins_rejected_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinReject {
    /// No connection holds the token (or it is not fully established).
    Token,
    /// The connection has as many subflows as it accepts.
    Limit,
    /// The third ACK's HMAC is not HMAC-A, or it carried no MP_JOIN.
    Hmac,
}

/// Where the handshake stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinPhase {
    /// SYN/ACK sent, waiting for the third ACK with HMAC-A.
    SynAckSent,
    /// HMAC-A verified: the subflow belongs to the connection.
    Verified,
}

/// One joining subflow (passive side).
#[derive(Debug, Clone)]
pub struct Join {
    pub phase: JoinPhase,
    /// The connection's token (ours).
    pub token: u32,
    /// Key-B (ours) and Key-A (the peer's) of the connection.
    local_key: Key,
    remote_key: Key,
    /// R-B and R-A.
    local_nonce: u32,
    remote_nonce: u32,
    /// The peer's Address ID for its end of this subflow.
    pub remote_addr_id: u8,
    /// Our Address ID for our end (0 is the address of the first subflow).
    pub local_addr_id: u8,
    /// The peer asked for a backup path (kept; the scheduler uses it).
    pub backup: bool,
}

impl Join {
    /// A join answered with `local_nonce`, for a connection whose keys are
    /// `local_key` (ours) and `remote_key`.
    pub fn new(
        syn: &JoinSyn,
        local_key: Key,
        remote_key: Key,
        local_nonce: u32,
        local_addr_id: u8,
    ) -> Self {
        Join {
            phase: JoinPhase::SynAckSent,
            token: syn.token,
            local_key,
            remote_key,
            local_nonce,
            remote_nonce: syn.nonce,
            remote_addr_id: syn.addr_id,
            local_addr_id,
            backup: syn.backup,
        }
    }

    /// The MP_JOIN of our SYN/ACK (RFC 8684 §3.2, figure 6): "the
    /// leftmost 64 bits" of HMAC(Key=(Key-B + Key-A), Msg=(R-B + R-A)).
    pub fn syn_ack_option(&self) -> MptcpOption {
        MptcpOption::MpJoin(MpJoin::SynAck {
            backup: false,
            addr_id: self.local_addr_id,
            hmac: crypto::join_hmac_64(
                self.local_key,
                self.remote_key,
                self.local_nonce,
                self.remote_nonce,
            ),
            nonce: self.local_nonce,
        })
    }

    /// The third ACK's options (RFC 8684 §3.2, figure 7): its MP_JOIN must
    /// carry "the leftmost 160 bits" of HMAC(Key=(Key-A + Key-B),
    /// Msg=(R-A + R-B)). Only the first ACK is checked; later segments
    /// (already verified) pass.
    pub fn on_third_ack(&mut self, opts: &[u8]) -> Result<(), JoinReject> {
        if self.phase == JoinPhase::Verified {
            return Ok(());
        }
        let want = crypto::join_hmac_160(
            self.remote_key,
            self.local_key,
            self.remote_nonce,
            self.local_nonce,
        );
        let got = whole_options(opts).find_map(|o| match MptcpOption::parse(o) {
            Ok(MptcpOption::MpJoin(MpJoin::Ack { hmac })) => Some(hmac),
            _ => None,
        });
        // Not secret-dependent timing: the HMAC is a one-shot check of a
        // value the peer chose, and the subflow dies on a mismatch.
        match got {
            Some(h) if h == want => {
                self.phase = JoinPhase::Verified;
                Ok(())
            }
            _ => Err(JoinReject::Hmac),
        }
    }
}

/// The MP_TCPRST of a RST refusing a join (RFC 8684 §3.2: "containing an
/// MP_TCPRST option ... with an 'MPTCP specific error' reason code").
pub fn reject_option() -> MptcpOption {
    MptcpOption::MpTcpRst {
        flags: 0,
        reason: rst_reason::MPTCP_ERROR,
    }
}

#[cfg(test)]
mod tests;
