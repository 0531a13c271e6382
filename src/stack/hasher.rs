//! A keyed, deterministic hasher for the stack's tables: foldhash keyed
//! from the stack secret, so hostile peers cannot aim at one bucket and the
//! same inputs give the same table behaviour on every run (sans-IO rule).
//!
//! Why not SipHash: the 4-tuple lookup runs for every segment, and
//! SipHash-1-3 cost about a fifth of a 64-byte echo's demux. A keyed
//! multiply-fold hash gives the protection Linux's connection tables have
//! (`inet_ehashfn`: jhash keyed by a boot-time secret) at a fraction of the
//! cost; the key never leaves the process.

use core::hash::BuildHasher;
use foldhash::fast::FoldHasher;
use foldhash::SharedSeed;

#[derive(Debug, Clone)]
pub(crate) struct KeyedHasher {
    per_table: u64,
    shared: SharedSeed,
}

impl KeyedHasher {
    /// `salt` separates the tables' keys from each other and from the ISN key.
    pub(crate) fn new(secret: &[u8; 16], salt: u64) -> Self {
        let mut a = [0u8; 8];
        let mut b = [0u8; 8];
        a.copy_from_slice(&secret[..8]);
        b.copy_from_slice(&secret[8..]);
        KeyedHasher {
            per_table: u64::from_le_bytes(a) ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15),
            shared: SharedSeed::from_u64(u64::from_le_bytes(b) ^ salt.rotate_left(29)),
        }
    }
}

impl BuildHasher for KeyedHasher {
    type Hasher = FoldHasher;
    #[inline]
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher::with_seed(self.per_table, &self.shared)
    }
}

pub(crate) type Map<K, V> = hashbrown::HashMap<K, V, KeyedHasher>;
