//! Initial sequence numbers (RFC 6528): ISN = M + F(4-tuple, secret), where M
//! is a 4-microsecond clock and F a keyed hash (SipHash-2-4).

use super::{FourTuple, SeqNumber};
use crate::time::Instant;
use siphasher::sip::SipHasher24;

/// Generates RFC 6528 ISNs from a per-stack secret.
#[derive(Clone)]
pub struct IsnGenerator {
    key: [u8; 16],
}

impl core::fmt::Debug for IsnGenerator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // Never print the secret.
        f.write_str("IsnGenerator { .. }")
    }
}

impl IsnGenerator {
    pub fn new(key: [u8; 16]) -> Self {
        IsnGenerator { key }
    }

    /// RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey).
    pub fn isn(&self, tuple: &FourTuple, now: Instant) -> SeqNumber {
        // RFC 6528 §3: "M is the 4 microsecond timer".
        let m = (now.micros() / 4) as u32;
        SeqNumber(m.wrapping_add(self.f(tuple)))
    }

    /// RFC 6528 §3: F() is a pseudorandom function of the connection-id and
    /// the secret key (here SipHash-2-4, truncated to 32 bits).
    fn f(&self, tuple: &FourTuple) -> u32 {
        let mut buf = [0u8; 12];
        buf[0..4].copy_from_slice(&tuple.local.ip().octets());
        buf[4..6].copy_from_slice(&tuple.local.port().to_be_bytes());
        buf[6..10].copy_from_slice(&tuple.remote.ip().octets());
        buf[10..12].copy_from_slice(&tuple.remote.port().to_be_bytes());
        SipHasher24::new_with_key(&self.key).hash(&buf) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, SocketAddrV4};

    fn tuple(lp: u16, rp: u16) -> FourTuple {
        FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), lp),
            remote: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), rp),
        }
    }

    #[test]
    fn deterministic() {
        let g = IsnGenerator::new([7; 16]);
        let now = Instant::from_micros(123_456);
        assert_eq!(g.isn(&tuple(80, 5000), now), g.isn(&tuple(80, 5000), now));
        let g2 = IsnGenerator::new([7; 16]);
        assert_eq!(g.isn(&tuple(80, 5000), now), g2.isn(&tuple(80, 5000), now));
    }

    #[test]
    fn differs_across_tuples_and_keys() {
        let g = IsnGenerator::new([7; 16]);
        let now = Instant::ZERO;
        let a = g.isn(&tuple(80, 5000), now);
        assert_ne!(a, g.isn(&tuple(80, 5001), now));
        assert_ne!(a, g.isn(&tuple(81, 5000), now));
        // Swapping the ends is a different connection-id.
        let t = tuple(80, 5000);
        let swapped = FourTuple {
            local: t.remote,
            remote: t.local,
        };
        assert_ne!(a, g.isn(&swapped, now));
        let mut other = t;
        other.remote.set_ip(Ipv4Addr::new(198, 18, 0, 3));
        assert_ne!(a, g.isn(&other, now));
        assert_ne!(a, IsnGenerator::new([8; 16]).isn(&t, now));
    }

    #[test]
    fn advances_with_time_at_4us() {
        let g = IsnGenerator::new([1; 16]);
        let t = tuple(1234, 80);
        let base = g.isn(&t, Instant::from_micros(1_000));
        assert_eq!(g.isn(&t, Instant::from_micros(1_003)), base);
        assert_eq!(g.isn(&t, Instant::from_micros(1_004)), base + 1);
        assert_eq!(
            g.isn(&t, Instant::from_micros(1_000 + 4_000_000)),
            base + 1_000_000
        );
        // M wraps modulo 2^32 like the sequence space.
        let wrap = Instant::from_micros(1_000 + 4 * (1u64 << 32));
        assert_eq!(g.isn(&t, wrap), base);
    }
}
