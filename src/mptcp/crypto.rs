//! MPTCP v1 keys and the crypto built on them (RFC 8684 §3.1, §3.2, §3.3.1,
//! §3.4.1), with HMAC-SHA256 as the only algorithm (flag H).

use crate::wire::checksum;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use siphasher::sip::SipHasher24;

type HmacSha256 = Hmac<Sha256>;

/// A 64-bit MPTCP key and what RFC 8684 §3.1 derives from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Key(pub u64);

impl Key {
    /// SHA-256 of the key in network byte order.
    fn digest(self) -> [u8; 32] {
        Sha256::digest(self.0.to_be_bytes()).into()
    }

    /// RFC 8684 §3.1: "The token MUST be a truncated (most significant 32
    /// bits) SHA-256 hash of the key."
    pub fn token(self) -> u32 {
        self.token_and_idsn().0
    }

    /// RFC 8684 §3.1: the Initial Data Sequence Number is "the least
    /// significant 64 bits of the SHA-256 hash of the key".
    pub fn idsn(self) -> u64 {
        self.token_and_idsn().1
    }

    /// Both from one hash.
    pub fn token_and_idsn(self) -> (u32, u64) {
        let d = self.digest();
        let mut t = [0; 4];
        t.copy_from_slice(&d[..4]);
        let mut i = [0; 8];
        i.copy_from_slice(&d[24..]);
        (u32::from_be_bytes(t), u64::from_be_bytes(i))
    }
}

/// Keys for new connections: a keyed PRF (SipHash-2-4 under a secret
/// derived from the stack's) over a counter, so keys are unpredictable to
/// others yet the same seed gives the same run (the core stays
/// deterministic). RFC 8684 §3.1 asks for keys a peer cannot guess (RFC
/// 4086); the stack retries when a token is already in use.
#[derive(Debug, Clone)]
pub struct KeySource {
    sip: SipHasher24,
    counter: u64,
}

impl KeySource {
    pub fn new(secret: &[u8; 16]) -> Self {
        Self::with_stream(secret, 0)
    }

    /// Keys of stream `stream` under `secret`: stacks that share a secret
    /// (one interface's workers: their SYN cookies must agree) draw from
    /// streams of their own, so no two of them hand out the same keys
    /// and tokens (RFC 8684 §3.1: a key is random and a token unique).
    pub fn with_stream(secret: &[u8; 16], stream: u64) -> Self {
        // A different key from the stack's other uses of the secret.
        let mut k = *secret;
        k[15] ^= 0x8a;
        k[0] ^= 0x54;
        for (b, s) in k[4..12].iter_mut().zip(stream.to_le_bytes()) {
            *b ^= s;
        }
        KeySource {
            sip: SipHasher24::new_with_key(&k),
            counter: 0,
        }
    }

    /// The next key. Never 0 (Linux rejects a zero key).
    pub fn next_key(&mut self) -> Key {
        loop {
            self.counter = self.counter.wrapping_add(1);
            let k = self.sip.hash(&self.counter.to_le_bytes());
            if k != 0 {
                return Key(k);
            }
        }
    }

    /// A 32-bit nonce for MP_JOIN (RFC 8684 §3.2).
    pub fn next_nonce(&mut self) -> u32 {
        self.next_key().0 as u32
    }
}

/// HMAC-SHA256 of `msg` under `key_first || key_second` (each in network
/// byte order): the MP_JOIN and ADD_ADDR construction (RFC 8684 §3.2).
fn hmac(key_first: Key, key_second: Key, msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 16];
    k[..8].copy_from_slice(&key_first.0.to_be_bytes());
    k[8..].copy_from_slice(&key_second.0.to_be_bytes());
    // A 16-byte key is always accepted (HMAC takes any key length).
    let Ok(mut mac) = HmacSha256::new_from_slice(&k) else {
        return [0; 32];
    };
    mac.update(msg);
    mac.finalize().into_bytes().into()
}

/// The MP_JOIN HMAC sent by the host whose key is `own` (RFC 8684 §3.2):
/// `HMAC(Key=(own + peer), Msg=(own nonce + peer nonce))`. Host B (the
/// listener) sends it truncated in the SYN/ACK ([`join_hmac_64`]), host A
/// (the joiner) in full 160 bits in the third ACK ([`join_hmac_160`]).
pub fn join_hmac(own: Key, peer: Key, own_nonce: u32, peer_nonce: u32) -> [u8; 32] {
    let mut msg = [0u8; 8];
    msg[..4].copy_from_slice(&own_nonce.to_be_bytes());
    msg[4..].copy_from_slice(&peer_nonce.to_be_bytes());
    hmac(own, peer, &msg)
}

/// RFC 8684 §3.2: the SYN/ACK carries "the leftmost 64 bits" of the HMAC.
pub fn join_hmac_64(own: Key, peer: Key, own_nonce: u32, peer_nonce: u32) -> u64 {
    let h = join_hmac(own, peer, own_nonce, peer_nonce);
    let mut t = [0; 8];
    t.copy_from_slice(&h[..8]);
    u64::from_be_bytes(t)
}

/// RFC 8684 §3.2: the third ACK carries "the leftmost 160 bits" of the HMAC.
pub fn join_hmac_160(own: Key, peer: Key, own_nonce: u32, peer_nonce: u32) -> [u8; 20] {
    let h = join_hmac(own, peer, own_nonce, peer_nonce);
    let mut t = [0; 20];
    t.copy_from_slice(&h[..20]);
    t
}

/// RFC 8684 §3.4.1: the ADD_ADDR HMAC, keyed with the sender's key first,
/// over Address ID, address and port (0 when absent); the option carries
/// "the rightmost 64 bits".
pub fn add_addr_hmac(
    sender: Key,
    receiver: Key,
    addr_id: u8,
    addr: core::net::IpAddr,
    port: Option<u16>,
) -> u64 {
    let mut msg = [0u8; 1 + 16 + 2];
    msg[0] = addr_id;
    let n = match addr {
        core::net::IpAddr::V4(a) => {
            msg[1..5].copy_from_slice(&a.octets());
            5
        }
        core::net::IpAddr::V6(a) => {
            msg[1..17].copy_from_slice(&a.octets());
            17
        }
    };
    msg[n..n + 2].copy_from_slice(&port.unwrap_or(0).to_be_bytes());
    let h = hmac(sender, receiver, &msg[..n + 2]);
    let mut t = [0; 8];
    t.copy_from_slice(&h[24..]);
    u64::from_be_bytes(t)
}

/// Sum of the DSS checksum pseudo-header (RFC 8684 §3.3.1, figure 10): the
/// 64-bit DSN, the relative subflow sequence number, the data-level length
/// and a zero checksum field. Even length, so it combines with the data's
/// sum.
pub fn dss_pseudo_sum(dsn: u64, ssn: u32, len: u16) -> u16 {
    let mut ph = [0u8; 16];
    ph[..8].copy_from_slice(&dsn.to_be_bytes());
    ph[8..12].copy_from_slice(&ssn.to_be_bytes());
    ph[12..14].copy_from_slice(&len.to_be_bytes());
    checksum::sum(&ph)
}

/// RFC 8684 §3.3.1: the DSS checksum of a mapping whose data's one's-
/// complement sum is `data_sum` (the TCP checksum algorithm over the
/// pseudo-header and the data).
pub fn dss_checksum(dsn: u64, ssn: u32, len: u16, data_sum: u16) -> u16 {
    !checksum::combine(&[dss_pseudo_sum(dsn, ssn, len), data_sum])
}

#[cfg(test)]
mod tests;
