//! Receive-side scaling as the NIC does it: the Toeplitz hash of the
//! Microsoft RSS specification over a packet's IPv4/TCP 4-tuple, and the
//! indirection table that maps the hash to a queue. Where the device tells
//! its key and table (`ETHTOOL_GRSSH`, see `iface`), the runtime knows on which queue
//! the answers of an active open will arrive, and picks source ports that
//! land on the opening worker's queue.

/// A device's RSS configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rss {
    /// The Toeplitz key (40 bytes on most NICs).
    pub key: Vec<u8>,
    /// Queue per hash bucket.
    pub indir: Vec<u32>,
}

/// The Toeplitz hash of `input` under `key`: for every set bit i of the
/// input (most significant first), XOR in the 32 key bits starting at bit i.
pub fn toeplitz(key: &[u8], input: &[u8]) -> u32 {
    let k = |i: usize| key.get(i).copied().unwrap_or(0);
    let mut window = u32::from_be_bytes([k(0), k(1), k(2), k(3)]);
    let mut hash = 0u32;
    for (i, &byte) in input.iter().enumerate() {
        let next = k(i + 4);
        for b in 0..8 {
            if byte & (0x80 >> b) != 0 {
                hash ^= window;
            }
            window = (window << 1) | u32::from((next >> (7 - b)) & 1);
        }
    }
    hash
}

impl Rss {
    /// The queue a TCP segment from `src:sport` to `dst:dport` (addresses
    /// as big-endian u32) arrives on.
    pub fn queue(&self, src: u32, dst: u32, sport: u16, dport: u16) -> Option<u32> {
        let mut input = [0u8; 12];
        input[..4].copy_from_slice(&src.to_be_bytes());
        input[4..8].copy_from_slice(&dst.to_be_bytes());
        input[8..10].copy_from_slice(&sport.to_be_bytes());
        input[10..].copy_from_slice(&dport.to_be_bytes());
        let h = toeplitz(&self.key, &input);
        let n = self.indir.len();
        (n > 0).then(|| self.indir[h as usize % n])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The key of the Microsoft RSS verification suite.
    const KEY: [u8; 40] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f,
        0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30,
        0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ];

    fn ip(a: [u8; 4]) -> u32 {
        u32::from_be_bytes(a)
    }

    #[test]
    fn microsoft_verification_vectors_ipv4_tcp() {
        // (destination, port, source, port, hash) from "Verifying the RSS
        // Hash Calculation"; the input is source, destination, ports.
        let cases = [
            (
                [161, 142, 100, 80],
                1766,
                [66, 9, 149, 187],
                2794,
                0x51cc_c178u32,
            ),
            (
                [65, 69, 140, 83],
                4739,
                [199, 92, 111, 2],
                14230,
                0xc626_b0ea,
            ),
            (
                [12, 22, 207, 184],
                38024,
                [24, 19, 198, 95],
                12898,
                0x5c2b_394a,
            ),
            (
                [209, 142, 163, 6],
                2217,
                [38, 27, 205, 30],
                48228,
                0xafc7_327f,
            ),
            (
                [202, 188, 127, 2],
                1303,
                [153, 39, 163, 191],
                44251,
                0x10e8_28a2,
            ),
        ];
        for (dst, dport, src, sport, want) in cases {
            let mut input = Vec::new();
            input.extend_from_slice(&src);
            input.extend_from_slice(&dst);
            input.extend_from_slice(&u16::to_be_bytes(sport));
            input.extend_from_slice(&u16::to_be_bytes(dport));
            assert_eq!(toeplitz(&KEY, &input), want, "{src:?} -> {dst:?}");
            let rss = Rss {
                key: KEY.to_vec(),
                indir: (0..128).map(|i| i % 4).collect(),
            };
            assert_eq!(
                rss.queue(ip(src), ip(dst), sport, dport),
                Some(want % 128 % 4)
            );
        }
    }
}
