//! Test vectors from a Linux <-> Linux MPTCP v1 capture in network
//! namespaces (the ground truth): what Linux put on the wire must be what
//! these functions compute from the keys and nonces it exchanged.

use super::*;
use crate::wire::checksum;

/// Client (A) and server (B) keys from the MP_CAPABLE third ACK
/// `1e14010138ae6ee5132aa987ee29f78c747973d7`.
const KEY_A: Key = Key(0x38ae6ee5132aa987);
const KEY_B: Key = Key(0xee29f78c747973d7);

#[test]
fn token_is_what_linux_put_in_mp_join_syn() {
    // MP_JOIN SYN on the second path: `1e0c1001 c41b56a1 f4908819`, the
    // token of the server's key.
    assert_eq!(KEY_B.token(), 0xc41b56a1);
    assert_eq!(KEY_A.token(), 0xfe6b41b7);
}

#[test]
fn idsn_is_what_linux_used_in_its_first_mappings() {
    // The server's first DSS mapping has DSN b82f042442ea6560 = IDSN(B) + 1;
    // the server's first Data ACK of the client's 3000 bytes is
    // 0dc00f8d6e23e282 = IDSN(A) + 1 + 3000.
    assert_eq!(KEY_B.idsn().wrapping_add(1), 0xb82f042442ea6560);
    assert_eq!(KEY_A.idsn().wrapping_add(1 + 3000), 0x0dc00f8d6e23e282);
}

#[test]
fn join_hmacs_are_what_linux_sent() {
    // Nonces: R_A from the MP_JOIN SYN, R_B from the SYN/ACK
    // `1e101000 0c14d5f0abf63ceb 224396a4`.
    let (ra, rb) = (0xf4908819, 0x224396a4);
    assert_eq!(join_hmac_64(KEY_B, KEY_A, rb, ra), 0x0c14d5f0abf63ceb);
    // Third ACK `1e181000 619b...00ce`.
    let want = [
        0x61, 0x9b, 0x58, 0x0b, 0xd6, 0x18, 0x6b, 0x84, 0x59, 0x33, 0x8b, 0xe5, 0x62, 0xb8, 0x54,
        0x17, 0xfb, 0x58, 0x00, 0xce,
    ];
    assert_eq!(join_hmac_160(KEY_A, KEY_B, ra, rb), want);
}

#[test]
fn dss_checksums_are_what_linux_sent() {
    // Checksum run (A|H negotiated): client key e1d28efa68a62749, server
    // key 650c8a2c39aec3c7; each side wrote 3000 bytes of 'x'.
    let data = [b'x'; 3000];
    let s = checksum::sum(&data);
    let (ka, kb) = (Key(0xe1d28efa68a62749), Key(0x650c8a2c39aec3c7));
    // The client's first data, in MP_CAPABLE: DSN IDSN(A)+1, SSN 1, bc65.
    assert_eq!(dss_checksum(ka.idsn().wrapping_add(1), 1, 3000, s), 0xbc65);
    // The server's first mapping `...82066315615565b5 00000001 0bb8 663e`.
    assert_eq!(kb.idsn().wrapping_add(1), 0x82066315615565b5);
    assert_eq!(dss_checksum(0x82066315615565b5, 1, 3000, s), 0x663e);
    // A later one at SSN 0xbb9: `...820663156155716d 00000bb9 0bb8 4ece`.
    assert_eq!(dss_checksum(0x820663156155716d, 0xbb9, 3000, s), 0x4ece);
    // A DATA_FIN without data (SSN 0, length 1): `...8c6d051915c1e94f
    // 00000000 0001 6f67`.
    assert_eq!(dss_checksum(0x8c6d051915c1e94f, 0, 1, 0), 0x6f67);
}

#[test]
fn add_addr_hmac_is_rightmost_64_bits() {
    // RFC 8684 §3.4.1: HMAC(Key=(sender + receiver), Msg=(ID + addr + port)),
    // rightmost 64 bits. Recomputed here independently of `add_addr_hmac`.
    let addr = core::net::IpAddr::V4(core::net::Ipv4Addr::new(198, 18, 1, 2));
    let full = hmac(KEY_B, KEY_A, &[2, 198, 18, 1, 2, 0, 0]);
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&full[24..]);
    assert_eq!(
        add_addr_hmac(KEY_B, KEY_A, 2, addr, None),
        u64::from_be_bytes(tail)
    );
    assert_ne!(
        add_addr_hmac(KEY_B, KEY_A, 2, addr, Some(7)),
        add_addr_hmac(KEY_B, KEY_A, 2, addr, None)
    );
}

#[test]
fn key_source_is_deterministic_and_nonzero() {
    let mut a = KeySource::new(&[7; 16]);
    let mut b = KeySource::new(&[7; 16]);
    let mut c = KeySource::new(&[8; 16]);
    for _ in 0..100 {
        let k = a.next_key();
        assert_ne!(k.0, 0);
        assert_eq!(k, b.next_key());
        assert_ne!(k, c.next_key());
    }
}

#[test]
fn key_streams_of_one_secret_differ() {
    // Stream 0 is the secret's own stream.
    let mut a = KeySource::new(&[7; 16]);
    let mut a0 = KeySource::with_stream(&[7; 16], 0);
    assert_eq!(a.next_key(), a0.next_key());
    // Two workers of one interface: no key (so no token) in common.
    let mut w1 = KeySource::with_stream(&[7; 16], 1);
    let mut w2 = KeySource::with_stream(&[7; 16], 2);
    let k1: std::collections::HashSet<u64> = (0..1000).map(|_| w1.next_key().0).collect();
    let k2: std::collections::HashSet<u64> = (0..1000).map(|_| w2.next_key().0).collect();
    let k0: std::collections::HashSet<u64> = (0..1000).map(|_| a.next_key().0).collect();
    assert!(k1.is_disjoint(&k2) && k1.is_disjoint(&k0) && k2.is_disjoint(&k0));
}
