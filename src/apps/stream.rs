//! A deterministic pseudo-random byte stream, generated on the fly: byte `i`
//! of stream `key` is byte `i % 8` of SplitMix64 output word `i / 8`, so any
//! offset can be produced or checked without storing anything.

/// One stream (e.g. one connection, one direction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stream {
    key: u64,
}

const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

fn finalize(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Stream {
    /// The stream of connection `conn`, direction `dir` (0: client to
    /// server, 1: back), under run seed `seed`.
    pub fn new(seed: u64, conn: u32, dir: u8) -> Self {
        Stream {
            key: finalize(seed ^ finalize(((conn as u64) << 8 | dir as u64).wrapping_add(GAMMA))),
        }
    }

    /// The 8 bytes starting at offset `8 * k`.
    #[inline]
    fn word(&self, k: u64) -> [u8; 8] {
        finalize(self.key.wrapping_add(k.wrapping_add(1).wrapping_mul(GAMMA))).to_le_bytes()
    }

    /// Write the bytes at `offset..offset + buf.len()` into `buf`.
    pub fn fill(&self, offset: u64, buf: &mut [u8]) {
        let mut pos = offset;
        let mut rest = buf;
        // Unaligned head.
        let head = ((8 - pos % 8) % 8) as usize;
        if head > 0 {
            let w = self.word(pos / 8);
            let n = head.min(rest.len());
            let s = (pos % 8) as usize;
            rest[..n].copy_from_slice(&w[s..s + n]);
            rest = &mut rest[n..];
            pos += n as u64;
        }
        let mut chunks = rest.chunks_exact_mut(8);
        for c in &mut chunks {
            c.copy_from_slice(&self.word(pos / 8));
            pos += 8;
        }
        let tail = chunks.into_remainder();
        if !tail.is_empty() {
            let n = tail.len();
            tail.copy_from_slice(&self.word(pos / 8)[..n]);
        }
    }

    /// Compare `data` with the bytes at `offset..`; the index in `data` of
    /// the first byte that differs, if any.
    pub fn check(&self, offset: u64, data: &[u8]) -> Option<usize> {
        let mut i = 0usize;
        let mut pos = offset;
        // Unaligned head, byte by byte.
        while i < data.len() && !pos.is_multiple_of(8) {
            if data[i] != self.word(pos / 8)[(pos % 8) as usize] {
                return Some(i);
            }
            i += 1;
            pos += 1;
        }
        // Whole words: one comparison per 8 bytes.
        let mut words = data[i..].chunks_exact(8);
        for c in &mut words {
            let want = self.word(pos / 8);
            if c != want {
                return Some(i + c.iter().zip(want).position(|(a, b)| *a != b).unwrap_or(0));
            }
            i += 8;
            pos += 8;
        }
        let tail = words.remainder();
        if !tail.is_empty() {
            let want = self.word(pos / 8);
            if let Some(j) = tail.iter().zip(want).position(|(a, b)| *a != b) {
                return Some(i + j);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_is_position_based() {
        let s = Stream::new(1, 2, 0);
        let mut all = [0u8; 100];
        s.fill(0, &mut all);
        for start in 0..20 {
            for len in [0, 1, 3, 8, 13, 50] {
                let mut part = vec![0u8; len];
                s.fill(start as u64, &mut part);
                assert_eq!(part, all[start..start + len]);
                assert_eq!(s.check(start as u64, &part), None);
            }
        }
        assert!(all.iter().any(|&b| b != all[0]));
    }

    #[test]
    fn check_finds_the_first_difference() {
        let s = Stream::new(9, 0, 1);
        let mut buf = [0u8; 64];
        s.fill(5, &mut buf);
        buf[37] ^= 0x10;
        assert_eq!(s.check(5, &buf), Some(37));
        assert_eq!(s.check(6, &buf[1..]), Some(36));
    }

    #[test]
    fn streams_differ_by_seed_conn_and_direction() {
        let mut a = [0u8; 32];
        Stream::new(1, 0, 0).fill(0, &mut a);
        for other in [
            Stream::new(2, 0, 0),
            Stream::new(1, 1, 0),
            Stream::new(1, 0, 1),
        ] {
            assert!(other.check(0, &a).is_some());
        }
    }
}
