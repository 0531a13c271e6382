//! A keyed, deterministic hasher for the stack's tables: SipHash-1-3 keyed
//! from the stack secret, so hostile peers cannot aim at one bucket and the
//! same inputs give the same table behaviour on every run (sans-IO rule).

use core::hash::BuildHasher;
use siphasher::sip::SipHasher13;

#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyedHasher {
    k0: u64,
    k1: u64,
}

impl KeyedHasher {
    /// `salt` separates the tables' keys from each other and from the ISN key.
    pub(crate) fn new(secret: &[u8; 16], salt: u64) -> Self {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&secret[..8]);
        b.copy_from_slice(&secret[8..]);
        KeyedHasher {
            k0: u64::from_le_bytes(a) ^ salt,
            k1: u64::from_le_bytes(b).rotate_left(17) ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15),
        }
    }
}

impl BuildHasher for KeyedHasher {
    type Hasher = SipHasher13;
    fn build_hasher(&self) -> SipHasher13 {
        SipHasher13::new_with_keys(self.k0, self.k1)
    }
}

pub(crate) type Map<K, V> = hashbrown::HashMap<K, V, KeyedHasher>;
