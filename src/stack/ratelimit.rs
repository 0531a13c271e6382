//! Stack-wide rate limits on what hostile input can make us send: ICMP
//! errors (RFC 1812 §4.3.2.8), echo replies, RSTs for closed ports (as
//! FreeBSD's badport_bandlim), and the ACKs that answer invalid segments
//! (challenge ACKs, RFC 5961 §7), each counted when it bites.

use crate::time::Instant;
use core::hash::{BuildHasher, Hasher};
use core::time::Duration;

/// A token bucket: `burst` at once, refilled at one per `interval`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokenBucket {
    tokens: u32,
    burst: u32,
    interval_us: u64,
    refilled: Instant,
}

impl TokenBucket {
    pub(crate) fn new(now: Instant, burst: u32, per_sec: u32) -> Self {
        TokenBucket {
            tokens: burst,
            burst,
            interval_us: 1_000_000 / u64::from(per_sec.max(1)),
            refilled: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let earned = now.saturating_since(self.refilled).as_micros() as u64 / self.interval_us;
        if earned > 0 {
            self.tokens = (u64::from(self.tokens) + earned).min(u64::from(self.burst)) as u32;
            self.refilled += Duration::from_micros(earned * self.interval_us);
        }
    }

    /// Take a token if one is available at `now`.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

/// RFC 5961 §7: "an implementation SHOULD include an ACK throttling
/// mechanism" stack-wide, on top of each connection's own limit. A global
/// counter is a side channel (CVE-2016-5696: an off-path attacker counts
/// the challenge ACKs to find connections), so, as Linux 4.7 did, each
/// one-second window allows a keyed-random amount in
/// `[limit/2, limit/2 + limit)`.
#[derive(Debug, Clone)]
pub(crate) struct AnswerLimit {
    limit: u32,
    window: u64,
    remaining: u32,
    key: super::hasher::KeyedHasher,
}

impl AnswerLimit {
    /// `limit` 0: unlimited.
    pub(crate) fn new(secret: &[u8; 16], limit: u32) -> Self {
        AnswerLimit {
            limit,
            window: u64::MAX,
            remaining: 0,
            key: super::hasher::KeyedHasher::new(secret, 0x0ac4),
        }
    }

    fn roll(&mut self, now: Instant) {
        if self.limit == 0 {
            self.remaining = u32::MAX;
            return;
        }
        let w = now.micros() / 1_000_000;
        if w != self.window {
            self.window = w;
            let mut h = self.key.build_hasher();
            h.write_u64(w);
            self.remaining = self.limit / 2 + (h.finish() % u64::from(self.limit)) as u32;
        }
    }

    /// Whether an answer may be sent in the current window.
    pub(crate) fn allows(&mut self, now: Instant) -> bool {
        self.roll(now);
        self.remaining > 0
    }

    /// Charge `n` answers sent.
    pub(crate) fn charge(&mut self, now: Instant, n: u64) {
        self.roll(now);
        self.remaining = self
            .remaining
            .saturating_sub(n.min(u64::from(u32::MAX)) as u32);
    }
}

/// Per-second limits (and bursts).
pub(crate) const RST_PER_SEC: u32 = 1000;
pub(crate) const RST_BURST: u32 = 100;
pub(crate) const ECHO_PER_SEC: u32 = 1000;
pub(crate) const ECHO_BURST: u32 = 100;

/// The stack's limiters.
#[derive(Debug, Clone)]
pub(crate) struct Limits {
    pub icmp_errors: TokenBucket,
    pub echo: TokenBucket,
    pub rst: TokenBucket,
    pub answers: AnswerLimit,
}

impl Limits {
    pub(crate) fn new(now: Instant, secret: &[u8; 16], answers_per_sec: u32) -> Self {
        Limits {
            // RFC 1812 §4.3.2.8: 10 at once, then one per 10 ms.
            icmp_errors: TokenBucket::new(now, 10, 100),
            echo: TokenBucket::new(now, ECHO_BURST, ECHO_PER_SEC),
            rst: TokenBucket::new(now, RST_BURST, RST_PER_SEC),
            answers: AnswerLimit::new(secret, answers_per_sec),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_bursts_then_refills() {
        let mut b = TokenBucket::new(Instant::ZERO, 3, 1000);
        assert!((0..3).all(|_| b.take(Instant::ZERO)));
        assert!(!b.take(Instant::ZERO));
        assert!(b.take(Instant::from_millis(1)));
        assert!(!b.take(Instant::from_millis(1)));
        assert!((0..3).all(|_| b.take(Instant::from_millis(100))));
        assert!(!b.take(Instant::from_millis(100)));
    }

    #[test]
    fn answer_window_is_bounded_and_keyed() {
        let mut a = AnswerLimit::new(&[7; 16], 1000);
        let t = Instant::from_millis(5);
        let mut n = 0;
        while a.allows(t) && n < 10_000 {
            a.charge(t, 1);
            n += 1;
        }
        assert!((500..1500).contains(&n), "{n}");
        assert!(a.allows(Instant::from_millis(1005)));
        let mut off = AnswerLimit::new(&[7; 16], 0);
        off.charge(t, 1 << 40);
        assert!(off.allows(t));
    }
}
