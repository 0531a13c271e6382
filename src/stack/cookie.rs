//! SYN cookies (RFC 4987 §3.1), encoded as Linux does: when a listener's
//! SYN backlog is full, the SYN-ACK's ISS carries a keyed hash of the
//! connection, a 64-second counter and an MSS table index, so the handshake
//! completes without state; the other SYN options (window scale, SACK
//! permitted, ECN) ride in the low 6 bits of our TSval when the peer uses
//! timestamps, and come back in its TSecr.
//!
//! ISS layout (Linux `secure_tcp_syn_cookie`, hardened: the peer ISN is
//! hashed in rather than added, and the index is multiplied by a secret odd
//! stride, so an ACK or sequence number that is off by a little cannot pass
//! for another MSS index):
//!
//! ```text
//! ISS = H1(tuple, ISN) + (counter << 24)
//!     + ((H2(tuple, ISN, counter) + mss_index · S(tuple, ISN, counter)) mod 2^24)
//! ```

use crate::tcp::{FourTuple, SeqNumber, TcpFlags, TcpOptions, TcpRepr};
use crate::time::Instant;
use siphasher::sip::SipHasher24;

/// MSS values a cookie can express (index in 3 bits): the largest entry not
/// above min(peer MSS, our MSS) is used. 536 is the IPv4 default
/// (RFC 9293 §3.7.1); the others are common path MTUs (tunnels, Ethernet,
/// jumbo frames).
pub const MSS_TABLE: [u16; 8] = [536, 1200, 1300, 1400, 1440, 1460, 4312, 8960];

/// Bits of the ISS below the counter.
const COOKIE_BITS: u32 = 24;
const COOKIE_MASK: u32 = (1 << COOKIE_BITS) - 1;
/// RFC 4987 §3.1: the counter `t` advances every 64 seconds.
const COUNTER_PERIOD_US: u64 = 64_000_000;
/// A cookie is accepted in the counter period it was made in and the next
/// (Linux `MAX_SYNCOOKIE_AGE`).
const MAX_AGE: u32 = 2;
/// Low TSval bits that carry the options (Linux `TSBITS`).
const TS_BITS: u32 = 6;
const TS_MASK: u32 = (1 << TS_BITS) - 1;
const TS_WSCALE_NONE: u32 = 0xf;
const TS_SACK: u32 = 1 << 4;
const TS_ECN: u32 = 1 << 5;
/// Largest window shift (RFC 7323 §2.3).
const MAX_WSCALE: u8 = 14;

/// Stateless SYN-ACK generation and validation for one stack.
#[derive(Clone)]
pub struct SynCookies {
    key: [u8; 16],
}

impl core::fmt::Debug for SynCookies {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the secret.
        f.write_str("SynCookies { .. }")
    }
}

impl SynCookies {
    pub fn new(secret: [u8; 16]) -> Self {
        SynCookies { key: secret }
    }

    /// Our ISS for the SYN-ACK answering `syn` on `tuple` (keyed hash of the 4-tuple + a 64-second counter + an index into a small MSS table chosen as the largest entry <= min(peer MSS, our_mss)), and, when the SYN carried timestamps and `timestamps_enabled`, the TSval to put in the SYN-ACK: its low 6 bits encode the window scale (4 bits, 0xf = none), SACK-permitted and ECN-ok (ECE+CWR on the SYN), and it must not exceed `now.millis() as u32` (that is the TSval clock connections use; so take now.millis() with the low bits replaced, minus 64 if that went above now).
    pub fn generate(
        &self,
        tuple: &FourTuple,
        syn: &TcpRepr,
        our_mss: u16,
        timestamps_enabled: bool,
        now: Instant,
    ) -> (SeqNumber, Option<u32>) {
        // RFC 9293 §3.7.1: without the option the peer's MSS is 536.
        let mss = syn.options.mss.unwrap_or(536).min(our_mss);
        let index = MSS_TABLE.iter().rposition(|&m| m <= mss).unwrap_or(0) as u32;
        let count = counter(now);
        let isn = syn.seq.0;
        let (h2, stride) = self.h2(tuple, isn, count);
        let iss = self
            .h1(tuple, isn)
            .wrapping_add(count << COOKIE_BITS)
            .wrapping_add(h2.wrapping_add(index.wrapping_mul(stride)) & COOKIE_MASK);

        let tsval = match syn.options.timestamps {
            Some(_) if timestamps_enabled => {
                let mut opts = syn
                    .options
                    .window_scale
                    .map_or(TS_WSCALE_NONE, |ws| u32::from(ws.min(MAX_WSCALE)));
                if syn.options.sack_permitted {
                    opts |= TS_SACK;
                }
                // RFC 3168 §6.1.1: an ECN-setup SYN has ECE and CWR set.
                if syn.flags.contains(TcpFlags::ECE | TcpFlags::CWR) {
                    opts |= TS_ECN;
                }
                let now_ms = now.millis() as u32;
                let ts = (now_ms & !TS_MASK) | opts;
                // Never ahead of the TSval clock (modulo 2^32 during its
                // first 64 ms).
                Some(if ts > now_ms {
                    ts.wrapping_sub(1 << TS_BITS)
                } else {
                    ts
                })
            }
            _ => None,
        };
        (SeqNumber(iss), tsval)
    }

    /// Validate the ACK that completes a cookie handshake (ack.ack - 1 must be a cookie for this tuple and ack.seq - 1, at most 2 counter periods old). Returns the SYN as the cookie remembers it (seq = peer ISN, options.mss, options.window_scale / sack_permitted / timestamps (TSval = ack's TSval, TSecr 0) and ECE|CWR flags if ECN was encoded, decoded from the ACK's TSecr) and our ISS, or None.
    ///
    /// The returned SYN's `window` is the ACK's raw window field.
    pub fn check(
        &self,
        tuple: &FourTuple,
        ack: &TcpRepr,
        now: Instant,
    ) -> Option<(TcpRepr, SeqNumber)> {
        let f = ack.flags;
        if !f.ack() || f.syn() || f.rst() {
            return None;
        }
        let iss = ack.ack - 1;
        let isn = ack.seq - 1;
        let rest = iss.0.wrapping_sub(self.h1(tuple, isn.0));
        let now_count = counter(now);
        // Only the counter's low 8 bits are in the cookie.
        let age = now_count.wrapping_sub(rest >> COOKIE_BITS) & (u32::MAX >> COOKIE_BITS);
        if age >= MAX_AGE {
            return None;
        }
        let count = now_count.wrapping_sub(age);
        let (h2, stride) = self.h2(tuple, isn.0, count);
        let index = rest.wrapping_sub(h2).wrapping_mul(inverse(stride)) & COOKIE_MASK;
        let mss = *MSS_TABLE.get(index as usize)?;

        let mut syn = TcpRepr {
            src_port: tuple.remote.port(),
            dst_port: tuple.local.port(),
            seq: isn,
            flags: TcpFlags::SYN,
            window: ack.window,
            options: TcpOptions {
                mss: Some(mss),
                ..TcpOptions::default()
            },
            ..TcpRepr::default()
        };
        if let Some((tsval, tsecr)) = ack.options.timestamps {
            // The TSecr echoes our SYN-ACK's TSval: it cannot be from the
            // future nor older than the cookie's lifetime.
            let echo_age = (now.millis() as u32).wrapping_sub(tsecr);
            let max_echo_age = (u64::from(MAX_AGE) * COUNTER_PERIOD_US / 1000) as u32 + TS_MASK + 1;
            if echo_age > max_echo_age {
                return None;
            }
            let opts = tsecr & TS_MASK;
            let ws = opts & 0xf;
            if ws != TS_WSCALE_NONE {
                if ws > u32::from(MAX_WSCALE) {
                    return None;
                }
                syn.options.window_scale = Some(ws as u8);
            }
            syn.options.sack_permitted = opts & TS_SACK != 0;
            if opts & TS_ECN != 0 {
                syn.flags |= TcpFlags::ECE | TcpFlags::CWR;
            }
            syn.options.timestamps = Some((tsval, 0));
        }
        Some((syn, iss))
    }

    fn h1(&self, tuple: &FourTuple, isn: u32) -> u32 {
        self.hash(1, tuple, isn, 0) as u32
    }

    /// H2 and the odd stride S, from one hash.
    fn h2(&self, tuple: &FourTuple, isn: u32, count: u32) -> (u32, u32) {
        let h = self.hash(2, tuple, isn, count);
        (h as u32, (h >> 32) as u32 | 1)
    }

    /// SipHash-2-4 over (domain, tuple, peer ISN, counter).
    fn hash(&self, domain: u8, tuple: &FourTuple, isn: u32, count: u32) -> u64 {
        let mut b = [0u8; 21];
        b[0] = domain;
        b[1..5].copy_from_slice(&tuple.local.ip().octets());
        b[5..7].copy_from_slice(&tuple.local.port().to_be_bytes());
        b[7..11].copy_from_slice(&tuple.remote.ip().octets());
        b[11..13].copy_from_slice(&tuple.remote.port().to_be_bytes());
        b[13..17].copy_from_slice(&isn.to_be_bytes());
        b[17..21].copy_from_slice(&count.to_be_bytes());
        SipHasher24::new_with_key(&self.key).hash(&b)
    }
}

/// Multiplicative inverse of an odd `a` modulo 2^32 (Newton's iteration:
/// each step doubles the correct low bits, 3 → 6 → 12 → 24 → 48).
fn inverse(a: u32) -> u32 {
    let mut x = a; // correct to 3 bits for odd a
    for _ in 0..4 {
        x = x.wrapping_mul(2u32.wrapping_sub(a.wrapping_mul(x)));
    }
    x
}

/// RFC 4987 §3.1: the slowly incrementing counter `t` (64-second periods).
fn counter(now: Instant) -> u32 {
    (now.micros() / COUNTER_PERIOD_US) as u32
}

/// Handshakes completed by a cookie lately, so that a duplicate of their
/// completing ACK (delayed past the connection's own end, which a fast
/// connection can outlive) does not open the same connection a second time:
/// the cookie alone cannot tell the copy from the original. Bounded: the
/// oldest entry goes first (RFC 4987 §3.6 accepts that cookies trade state
/// for such corner cases; this keeps a little of it).
pub(crate) struct CookieReplays {
    seen: hashbrown::HashSet<(FourTuple, SeqNumber)>,
    order: std::collections::VecDeque<(FourTuple, SeqNumber)>,
    cap: usize,
}

impl CookieReplays {
    pub(crate) fn new(cap: usize) -> Self {
        CookieReplays {
            seen: hashbrown::HashSet::new(),
            order: std::collections::VecDeque::new(),
            cap,
        }
    }

    /// Record the handshake of `tuple` whose client ISN is `isn`; `false`
    /// if it was already completed once (a replay).
    pub(crate) fn first(&mut self, tuple: FourTuple, isn: SeqNumber) -> bool {
        if !self.seen.insert((tuple, isn)) {
            return false;
        }
        self.order.push_back((tuple, isn));
        if self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, SocketAddrV4};

    fn tuple() -> FourTuple {
        FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80),
            remote: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 40000),
        }
    }

    fn syn(isn: u32, opts: TcpOptions, ecn: bool) -> TcpRepr {
        let mut flags = TcpFlags::SYN;
        if ecn {
            flags |= TcpFlags::ECE | TcpFlags::CWR;
        }
        TcpRepr {
            src_port: 40000,
            dst_port: 80,
            seq: SeqNumber(isn),
            flags,
            window: 65535,
            options: opts,
            ..TcpRepr::default()
        }
    }

    /// The peer's third segment for our SYN-ACK (iss, tsval).
    fn ack_for(syn: &TcpRepr, iss: SeqNumber, tsval: Option<u32>) -> TcpRepr {
        TcpRepr {
            src_port: syn.src_port,
            dst_port: syn.dst_port,
            seq: syn.seq + 1,
            ack: iss + 1,
            flags: TcpFlags::ACK,
            window: 502,
            options: TcpOptions {
                timestamps: tsval.map(|ts| (777_000, ts)),
                ..TcpOptions::default()
            },
            ..TcpRepr::default()
        }
    }

    const NOW: Instant = Instant(1_000_000_123_456);

    #[test]
    fn round_trip_every_mss_and_option() {
        let c = SynCookies::new(*b"0123456789abcdef");
        let t = tuple();
        let mut isn = 0x1234_5678u32;
        for (i, &m) in MSS_TABLE.iter().enumerate() {
            for peer_mss in [Some(m), Some(m + 1), None] {
                for ws in [None, Some(0), Some(7), Some(14), Some(15)] {
                    for sack in [false, true] {
                        for ecn in [false, true] {
                            for ts in [false, true] {
                                for ts_enabled in [false, true] {
                                    isn = isn.wrapping_mul(2_654_435_761).wrapping_add(i as u32);
                                    let opts = TcpOptions {
                                        mss: peer_mss,
                                        window_scale: ws,
                                        sack_permitted: sack,
                                        timestamps: ts.then_some((99, 0)),
                                        ..TcpOptions::default()
                                    };
                                    let s = syn(isn, opts, ecn);
                                    let (iss, tsval) = c.generate(&t, &s, 9000, ts_enabled, NOW);
                                    assert_eq!(tsval.is_some(), ts && ts_enabled);
                                    if let Some(v) = tsval {
                                        assert!(v <= NOW.millis() as u32);
                                        assert!(NOW.millis() as u32 - v < 64);
                                    }
                                    let ack = ack_for(&s, iss, tsval);
                                    let later = NOW + core::time::Duration::from_secs(30);
                                    let (got, got_iss) = c.check(&t, &ack, later).unwrap();
                                    assert_eq!(got_iss, iss);
                                    assert_eq!(got.seq, SeqNumber(isn));
                                    assert!(got.flags.syn());
                                    let want_mss = if peer_mss.is_some() { m } else { 536 };
                                    assert_eq!(got.options.mss, Some(want_mss));
                                    let with_ts = tsval.is_some();
                                    let want_ws =
                                        if with_ts { ws.map(|w| w.min(14)) } else { None };
                                    assert_eq!(got.options.window_scale, want_ws);
                                    assert_eq!(got.options.sack_permitted, with_ts && sack);
                                    let got_ecn = got.flags.contains(TcpFlags::ECE | TcpFlags::CWR);
                                    assert_eq!(got_ecn, with_ts && ecn);
                                    assert_eq!(
                                        got.options.timestamps,
                                        with_ts.then_some((777_000, 0))
                                    );
                                    assert_eq!((got.src_port, got.dst_port), (40000, 80));
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn mss_index_is_largest_entry_not_above_both() {
        let c = SynCookies::new([3; 16]);
        let t = tuple();
        let cases = [
            (Some(1460), 1460, 1460),
            (Some(1460), 1400, 1400),
            (Some(1459), 9000, 1440),
            (Some(100), 1460, 536),
            (Some(9000), 8960, 8960),
            (Some(65535), 65535, 8960),
            (None, 1460, 536),
        ];
        for (peer, ours, want) in cases {
            let s = syn(
                5,
                TcpOptions {
                    mss: peer,
                    ..TcpOptions::default()
                },
                false,
            );
            let (iss, _) = c.generate(&t, &s, ours, true, NOW);
            let (got, _) = c.check(&t, &ack_for(&s, iss, None), NOW).unwrap();
            assert_eq!(got.options.mss, Some(want), "peer {peer:?} ours {ours}");
        }
    }

    #[test]
    fn rejects_wrong_tuple_tampering_and_age() {
        let c = SynCookies::new([9; 16]);
        let t = tuple();
        let s = syn(
            1000,
            TcpOptions {
                mss: Some(1460),
                timestamps: Some((1, 0)),
                ..TcpOptions::default()
            },
            false,
        );
        let (iss, tsval) = c.generate(&t, &s, 1460, true, NOW);
        let ack = ack_for(&s, iss, tsval);
        assert!(c.check(&t, &ack, NOW).is_some());

        // Wrong tuple: each field.
        let mut other = t;
        other.remote.set_port(40001);
        assert!(c.check(&other, &ack, NOW).is_none());
        let mut other = t;
        other.local.set_ip(Ipv4Addr::new(198, 18, 0, 9));
        assert!(c.check(&other, &ack, NOW).is_none());
        // Another key.
        assert!(SynCookies::new([8; 16]).check(&t, &ack, NOW).is_none());

        // Tampered ack number or sequence number.
        for d in 1..200u32 {
            let mut a = ack;
            a.ack = SeqNumber(ack.ack.0.wrapping_add(d));
            assert!(c.check(&t, &a, NOW).is_none(), "ack + {d}");
            let mut a = ack;
            a.seq = SeqNumber(ack.seq.0.wrapping_sub(d));
            assert!(c.check(&t, &a, NOW).is_none(), "seq - {d}");
        }
        // Not a plain ACK.
        let mut a = ack;
        a.flags = TcpFlags::ACK | TcpFlags::RST;
        assert!(c.check(&t, &a, NOW).is_none());
        a.flags = TcpFlags::ACK | TcpFlags::SYN;
        assert!(c.check(&t, &a, NOW).is_none());
        a.flags = TcpFlags::default();
        assert!(c.check(&t, &a, NOW).is_none());
        // TSecr from the future or far past.
        let mut a = ack;
        a.options.timestamps = Some((1, NOW.millis() as u32 + 1000));
        assert!(c.check(&t, &a, NOW).is_none());
        let mut a = ack;
        a.options.timestamps = Some((1, NOW.millis() as u32 - 200_000));
        assert!(c.check(&t, &a, NOW).is_none());
    }

    #[test]
    fn random_acks_are_rejected_without_panic() {
        use rand::{Rng, SeedableRng};
        let c = SynCookies::new([5; 16]);
        let t = tuple();
        let mut rng = rand_pcg::Pcg64::seed_from_u64(7);
        let mut accepted = 0;
        for _ in 0..50_000 {
            let ack = TcpRepr {
                seq: SeqNumber(rng.gen()),
                ack: SeqNumber(rng.gen()),
                flags: TcpFlags(rng.gen::<u8>() | TcpFlags::ACK.0),
                window: rng.gen(),
                options: TcpOptions {
                    timestamps: rng.gen::<bool>().then(|| (rng.gen(), rng.gen())),
                    ..TcpOptions::default()
                },
                ..TcpRepr::default()
            };
            let now = Instant(rng.gen());
            if let Some((syn, iss)) = c.check(&t, &ack, now) {
                accepted += 1;
                assert_eq!(iss, ack.ack - 1);
                assert_eq!(syn.seq, ack.seq - 1);
            }
        }
        // About 2 · 8 / 2^24 per forgery (and most fail the flags or TSecr).
        assert_eq!(accepted, 0);
    }

    #[test]
    fn replays_are_caught_and_memory_is_bounded() {
        let t = |p: u16| FourTuple {
            local: "198.18.0.2:80".parse().unwrap(),
            remote: std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(198, 18, 0, 1), p),
        };
        let mut r = CookieReplays::new(2);
        assert!(r.first(t(1), SeqNumber(5)));
        assert!(!r.first(t(1), SeqNumber(5)));
        assert!(r.first(t(1), SeqNumber(6)), "a new ISN is a new connection");
        assert!(r.first(t(2), SeqNumber(5)));
        assert_eq!(r.seen.len(), 2);
        assert!(r.first(t(1), SeqNumber(5)), "forgotten beyond the bound");
    }

    #[test]
    fn inverse_is_exact() {
        for a in [1u32, 3, 5, 0xffff_ffff, 0x1234_5679, 0x8000_0001] {
            assert_eq!(a.wrapping_mul(inverse(a)), 1, "{a:#x}");
        }
    }

    #[test]
    fn counter_ages_out() {
        let c = SynCookies::new([1; 16]);
        let t = tuple();
        let s = syn(42, TcpOptions::default(), false);
        // Made at the very start of a counter period.
        let made = Instant(64_000_000 * 1000);
        let (iss, _) = c.generate(&t, &s, 1460, false, made);
        let ack = ack_for(&s, iss, None);
        let secs = core::time::Duration::from_secs;
        assert!(c.check(&t, &ack, made).is_some());
        assert!(c.check(&t, &ack, made + secs(127)).is_some());
        assert!(c.check(&t, &ack, made + secs(128)).is_none());
        assert!(c.check(&t, &ack, made + secs(64 * 256)).is_none());
        // Not from a future period either.
        assert!(c.check(&t, &ack, made - secs(1)).is_none());
    }

    #[test]
    fn tsval_never_ahead_of_clock() {
        let c = SynCookies::new([2; 16]);
        let t = tuple();
        for ms in [0u64, 1, 63, 64, 65, 1000, 123_456_789, (1 << 32) + 5] {
            for ws in [None, Some(14)] {
                let s = syn(
                    1,
                    TcpOptions {
                        window_scale: ws,
                        sack_permitted: true,
                        timestamps: Some((5, 0)),
                        ..TcpOptions::default()
                    },
                    true,
                );
                let now = Instant::from_millis(ms);
                let (_, ts) = c.generate(&t, &s, 1460, true, now);
                let ts = ts.unwrap();
                let clock = ms as u32;
                // At or behind the clock, modulo 2^32, by less than 64 ms.
                assert!(clock.wrapping_sub(ts) < 64, "ms {ms} ts {ts}");
                if clock >= 64 {
                    assert!(ts <= clock);
                }
            }
        }
    }
}
