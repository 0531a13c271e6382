//! The handshake part of the TCB (RFC 9293 §3.5): our SYN or SYN-ACK
//! owed, and when it left (its RTT sample, RFC 6298 §3).

use crate::time::Instant;

/// The handshake's own state (RFC 9293 §3.5).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Handshake {
    /// Our SYN (or SYN-ACK) is due on the next `poll_transmit`.
    pub pending: bool,
    /// When the SYN was first sent (RTT sample unless retransmitted, RFC
    /// 6298 §3: Karn).
    pub sent_at: Option<Instant>,
    pub retransmitted: bool,
}
