//! Both sides of an MP_JOIN handshake (RFC 8684 §3.2): a new subflow for
//! a connection already established with MP_CAPABLE.
//!
//! ```text
//!  A                                   B
//!  SYN + MP_JOIN(token-B, R-A, id, B)   -> token lookup (B's stack)
//!  <- SYN/ACK + MP_JOIN(HMAC-B/64, R-B, id, B)
//!  ACK + MP_JOIN(HMAC-A/160)            -> verified by B
//!  <- ACK                               (the "fourth ACK")
//! ```
//!
//! Passive (we are B, [`Join::new`]): build the SYN/ACK, check the third
//! ACK's HMAC. Active (we are A, [`Join::active`]): build the SYN, check
//! the SYN/ACK's truncated HMAC, build the third ACK, and wait for the
//! fourth ACK before the subflow may carry data.
//!
//! Sans-IO: the stack supplies both keys of the connection and our nonce.

use super::crypto::{self, Key};
use crate::wire::mptcp::{MpJoin, MptcpOption};
use crate::wire::tcp::whole_options;

/// MP_TCPRST reason codes (RFC 8684 §3.6).
pub mod rst_reason {
    /// "MPTCP-specific error": an unknown token, a refused join (§3.2) or
    /// a bad HMAC.
    pub const MPTCP_ERROR: u8 = 0x01;
    /// "Middlebox interference": a DSS checksum failed (§3.7).
    pub const MIDDLEBOX_INTERFERENCE: u8 = 0x06;
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
    /// Active: SYN sent, waiting for the SYN/ACK with HMAC-B.
    SynSent,
    /// Passive: SYN/ACK sent, waiting for the third ACK with HMAC-A.
    SynAckSent,
    /// Active: HMAC-B verified, the third ACK (HMAC-A) sent and repeated
    /// until the fourth ACK arrives (RFC 8684 §3.2).
    AckSent,
    /// Passive: HMAC-A verified; active: the fourth ACK arrived. The
    /// subflow belongs to the connection and may carry data.
    Verified,
}

/// One joining subflow.
#[derive(Debug, Clone)]
pub struct Join {
    pub phase: JoinPhase,
    /// The connection's token (ours).
    pub token: u32,
    /// Active side: the peer's token, named in our SYN (§3.2: "the
    /// token of the receiver"); 0 on the passive side.
    pub remote_token: u32,
    /// We opened this subflow (host A).
    active: bool,
    /// Active side: times the third ACK was repeated, waiting for the
    /// fourth ACK, and when it goes again.
    pub third_ack_repeats: u32,
    pub third_ack_at: Option<crate::time::Instant>,
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
    /// Our Address ID to withdraw in a REMOVE_ADDR on this subflow's next
    /// pure ACK (RFC 8684 §3.4.2: Address ID 0, when the first subflow's
    /// path is gone and this one remains).
    pub remove_addr: Option<u8>,
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
            remote_token: 0,
            active: false,
            third_ack_repeats: 0,
            third_ack_at: None,
            local_key,
            remote_key,
            local_nonce,
            remote_nonce: syn.nonce,
            remote_addr_id: syn.addr_id,
            local_addr_id,
            backup: syn.backup,
            remove_addr: None,
        }
    }

    /// An active join from our Address ID `local_addr_id` for the
    /// connection whose keys are `local_key` (ours) and `remote_key`,
    /// with our nonce R-A `local_nonce`.
    pub fn active(local_key: Key, remote_key: Key, local_nonce: u32, local_addr_id: u8) -> Self {
        Join {
            phase: JoinPhase::SynSent,
            token: local_key.token(),
            remote_token: remote_key.token(),
            active: true,
            third_ack_repeats: 0,
            third_ack_at: None,
            local_key,
            remote_key,
            local_nonce,
            remote_nonce: 0,
            remote_addr_id: 0,
            local_addr_id,
            backup: false,
            remove_addr: None,
        }
    }

    /// The connection's keys: (ours, the peer's).
    pub fn keys(&self) -> (Key, Key) {
        (self.local_key, self.remote_key)
    }

    /// We opened this subflow.
    pub fn is_active(&self) -> bool {
        self.active
    }

    /// The MP_JOIN of our SYN (RFC 8684 §3.2, figure 5): the receiver's
    /// token, our random nonce, our Address ID and the backup flag.
    pub fn syn_option(&self) -> MptcpOption {
        MptcpOption::MpJoin(MpJoin::Syn {
            backup: self.backup,
            addr_id: self.local_addr_id,
            token: self.remote_token,
            nonce: self.local_nonce,
        })
    }

    /// The peer's SYN/ACK (RFC 8684 §3.2, figure 6): its MP_JOIN must
    /// carry "the leftmost 64 bits" of HMAC(Key=(Key-B + Key-A),
    /// Msg=(R-B + R-A)), B being the peer. On success the third ACK is
    /// due ([`Join::third_ack_option`]).
    pub fn on_syn_ack(&mut self, opts: &[u8]) -> Result<(), JoinReject> {
        let got = whole_options(opts).find_map(|o| match MptcpOption::parse(o) {
            Ok(MptcpOption::MpJoin(MpJoin::SynAck {
                backup,
                addr_id,
                hmac,
                nonce,
            })) => Some((backup, addr_id, hmac, nonce)),
            _ => None,
        });
        let Some((backup, addr_id, hmac, nonce)) = got else {
            return Err(JoinReject::Hmac);
        };
        let want = crypto::join_hmac_64(self.remote_key, self.local_key, nonce, self.local_nonce);
        if hmac != want {
            return Err(JoinReject::Hmac);
        }
        self.remote_nonce = nonce;
        self.remote_addr_id = addr_id;
        // The peer's wish for this subflow as a backup (kept; the
        // scheduler uses it).
        self.backup |= backup;
        self.phase = JoinPhase::AckSent;
        Ok(())
    }

    /// The MP_JOIN of our third ACK (RFC 8684 §3.2, figure 7): "the
    /// leftmost 160 bits" of HMAC(Key=(Key-A + Key-B), Msg=(R-A + R-B)).
    pub fn third_ack_option(&self) -> MptcpOption {
        MptcpOption::MpJoin(MpJoin::Ack {
            hmac: crypto::join_hmac_160(
                self.local_key,
                self.remote_key,
                self.local_nonce,
                self.remote_nonce,
            ),
        })
    }

    /// Active side: a segment from the peer after our third ACK is its
    /// fourth ACK (RFC 8684 §3.2: B "MUST respond with an ACK"); from
    /// now on the subflow may carry data.
    pub fn on_fourth_ack(&mut self) {
        if self.phase == JoinPhase::AckSent {
            self.phase = JoinPhase::Verified;
            self.third_ack_at = None;
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
