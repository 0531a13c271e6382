//! Probe state kept beside the timers that send the probes (`timers`):
//! zero-window probes (persist, RFC 9293 §3.8.6.1) and keepalives (RFC
//! 1122 §4.2.3.6). The deadlines themselves live in `timer_set`.

use crate::time::Instant;

/// Persist and keepalive probing.
#[derive(Debug, Clone, Copy)]
pub(super) struct Probes {
    pub persist_backoff: u32,
    /// Zero-window probes sent since the peer last answered.
    pub unanswered: u32,
    /// A zero-window probe is (or was) outstanding: persist, not RTO.
    pub persisting: bool,
    /// A zero-window probe is due on the next `poll_transmit`.
    pub persist_pending: bool,
    /// When the peer was last heard from (keepalive idle time).
    pub last_rx: Instant,
    pub keepalive_sent: u32,
    pub keepalive_pending: bool,
    pub last_keepalive: Instant,
}

impl Probes {
    pub(super) fn new(now: Instant) -> Self {
        Probes {
            persist_backoff: 0,
            unanswered: 0,
            persisting: false,
            persist_pending: false,
            last_rx: now,
            keepalive_sent: 0,
            keepalive_pending: false,
            last_keepalive: now,
        }
    }
}

impl Probes {
    /// The peer was heard from: the keepalive idle time restarts (RFC 1122
    /// §4.2.3.6).
    #[inline]
    pub(super) fn heard_from_peer(&mut self, now: Instant) {
        self.last_rx = now;
        self.keepalive_sent = 0;
    }

    /// When the next keepalive is due: `idle` after the peer was last
    /// heard from, then every `interval` (RFC 1122 §4.2.3.6).
    #[inline]
    pub(super) fn keepalive_due(&self, ka: &crate::tcp::Keepalive) -> Instant {
        if self.keepalive_sent == 0 {
            self.last_rx + ka.idle
        } else {
            self.last_keepalive + ka.interval
        }
    }

    /// The window opened: persisting ends (RFC 9293 §3.8.6.1) and the next
    /// wait starts short.
    #[inline]
    pub(super) fn window_opened(&mut self) {
        self.persisting = false;
        self.persist_backoff = 0;
    }
}
