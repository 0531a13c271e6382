//! MPTCP option layouts, byte for byte. The `LINUX_*` vectors were captured
//! from a Linux 6.x <-> Linux MPTCP v1 connection in a pair of network
//! namespaces (two veth paths, `ip mptcp endpoint ... subflow` on the
//! client, checksums off and on); the others follow the figures of RFC 8684.

use super::*;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Parse, check the value, emit again and compare byte for byte.
fn exact(bytes: &[u8], want: MptcpOption) {
    let got = MptcpOption::parse(bytes).unwrap();
    assert_eq!(got, want);
    assert_eq!(got.len(), bytes.len());
    let mut out = [0u8; 40];
    let n = got.emit(&mut out);
    assert_eq!(&out[..n], bytes);
}

#[test]
fn linux_mp_capable_syn_synack_ack() {
    // SYN: version 1, flags H.
    exact(
        &hex("1e040101"),
        MptcpOption::MpCapable(MpCapable {
            version: 1,
            flags: cap_flags::H,
            ..Default::default()
        }),
    );
    // SYN with the checksum required (net.mptcp.checksum_enabled=1): A|H.
    let syn_a = MptcpOption::parse(&hex("1e040181")).unwrap();
    let MptcpOption::MpCapable(c) = syn_a else {
        panic!()
    };
    assert!(c.checksum_required() && c.hmac_sha256());
    // SYN/ACK: the server's key.
    exact(
        &hex("1e0c0101ee29f78c747973d7"),
        MptcpOption::MpCapable(MpCapable {
            version: 1,
            flags: cap_flags::H,
            sender_key: Some(0xee29f78c747973d7),
            ..Default::default()
        }),
    );
    // Third ACK: both keys, the client's first.
    exact(
        &hex("1e14010138ae6ee5132aa987ee29f78c747973d7"),
        MptcpOption::MpCapable(MpCapable {
            version: 1,
            flags: cap_flags::H,
            sender_key: Some(0x38ae6ee5132aa987),
            receiver_key: Some(0xee29f78c747973d7),
            ..Default::default()
        }),
    );
}

#[test]
fn linux_mp_capable_first_data_with_and_without_checksum() {
    // First data: both keys and the data-level length (3000), no checksum.
    exact(
        &hex("1e16010138ae6ee5132aa987ee29f78c747973d70bb8"),
        MptcpOption::MpCapable(MpCapable {
            version: 1,
            flags: cap_flags::H,
            sender_key: Some(0x38ae6ee5132aa987),
            receiver_key: Some(0xee29f78c747973d7),
            data_len: Some(3000),
            checksum: None,
        }),
    );
    // With the checksum (A negotiated).
    exact(
        &hex("1e180181e1d28efa68a62749650c8a2c39aec3c70bb8bc65"),
        MptcpOption::MpCapable(MpCapable {
            version: 1,
            flags: cap_flags::A | cap_flags::H,
            sender_key: Some(0xe1d28efa68a62749),
            receiver_key: Some(0x650c8a2c39aec3c7),
            data_len: Some(3000),
            checksum: Some(0xbc65),
        }),
    );
}

#[test]
fn linux_mp_join_three_forms() {
    exact(
        &hex("1e0c1001c41b56a1f4908819"),
        MptcpOption::MpJoin(MpJoin::Syn {
            backup: false,
            addr_id: 1,
            token: 0xc41b56a1,
            nonce: 0xf4908819,
        }),
    );
    exact(
        &hex("1e1010000c14d5f0abf63ceb224396a4"),
        MptcpOption::MpJoin(MpJoin::SynAck {
            backup: false,
            addr_id: 0,
            hmac: 0x0c14d5f0abf63ceb,
            nonce: 0x224396a4,
        }),
    );
    let mut hmac = [0u8; 20];
    hmac.copy_from_slice(&hex("619b580bd6186b8459338be562b85417fb5800ce"));
    exact(
        &hex("1e181000619b580bd6186b8459338be562b85417fb5800ce"),
        MptcpOption::MpJoin(MpJoin::Ack { hmac }),
    );
    // The backup flag is the low bit of the subtype byte (RFC 8684 §3.2).
    let MptcpOption::MpJoin(MpJoin::Syn { backup, .. }) =
        MptcpOption::parse(&hex("1e0c1102c41b56a1f4908819")).unwrap()
    else {
        panic!()
    };
    assert!(backup);
}

#[test]
fn linux_dss_forms() {
    // Data ACK only, 8 bytes (flags A|a).
    exact(
        &hex("1e0c20030dc00f8d6e23dc5a"),
        MptcpOption::Dss(Dss {
            data_ack: Some(0x0dc00f8d6e23dc5a),
            ack64: true,
            ..Default::default()
        }),
    );
    // Data ACK and an 8-byte mapping of 3000 bytes at relative SSN 1.
    let map = |checksum| DssMapping {
        dsn: 0xb82f042442ea6560,
        dsn64: true,
        ssn: 1,
        len: 3000,
        checksum,
    };
    exact(
        &hex("1e1a200f0dc00f8d6e23e282b82f042442ea6560000000010bb8"),
        MptcpOption::Dss(Dss {
            data_ack: Some(0x0dc00f8d6e23e282),
            ack64: true,
            mapping: Some(map(None)),
            data_fin: false,
        }),
    );
    // The same with a checksum (length 28).
    let MptcpOption::Dss(d) = MptcpOption::parse(&hex(
        "1e1c200f8c6d051915c1ba6f82066315615565b5000000010bb8663e",
    ))
    .unwrap() else {
        panic!()
    };
    assert_eq!(d.mapping.unwrap().checksum, Some(0x663e));
    // DATA_FIN on a segment without data: SSN 0, length 1 (RFC 8684 §3.3.3).
    exact(
        &hex("1e1a201fb82f042442ea9ff80dc00f8d6e241162000000000001"),
        MptcpOption::Dss(Dss {
            data_ack: Some(0xb82f042442ea9ff8),
            ack64: true,
            mapping: Some(DssMapping {
                dsn: 0x0dc00f8d6e241162,
                dsn64: true,
                ssn: 0,
                len: 1,
                checksum: None,
            }),
            data_fin: true,
        }),
    );
}

#[test]
fn dss_every_flag_combination_round_trips() {
    // A, a, M, m, F and the checksum: every combination, 4- and 8-byte
    // fields, each written with the length RFC 8684 §3.3 figure 9 gives.
    for bits in 0u8..64 {
        let (a, a64, m, m64, f, c) = (
            bits & 1 != 0,
            bits & 2 != 0,
            bits & 4 != 0,
            bits & 8 != 0,
            bits & 16 != 0,
            bits & 32 != 0,
        );
        let d = Dss {
            data_ack: a.then_some(if a64 { 0x0102030405060708 } else { 0x05060708 }),
            ack64: a && a64,
            mapping: m.then_some(DssMapping {
                dsn: if m64 { 0x1112131415161718 } else { 0x15161718 },
                dsn64: m64,
                ssn: 0x21222324,
                len: 0x3132,
                checksum: c.then_some(0x4142),
            }),
            data_fin: f,
        };
        let opt = MptcpOption::Dss(d);
        let want_len =
            4 + if a {
                if a64 {
                    8
                } else {
                    4
                }
            } else {
                0
            } + if m {
                (if m64 { 14 } else { 10 }) + if c { 2 } else { 0 }
            } else {
                0
            };
        assert_eq!(opt.len(), want_len, "{d:?}");
        let mut out = [0u8; 40];
        let n = opt.emit(&mut out);
        // Flags byte: reserved high bits zero, then F m M a A.
        let flags = out[3];
        assert_eq!(flags & 0xe0, 0);
        assert_eq!(flags & 0x10 != 0, f);
        assert_eq!(
            MptcpOption::parse(&out[..n]).unwrap(),
            opt,
            "{:02x?}",
            &out[..n]
        );
    }
}

#[test]
fn dss_4_byte_fields_layout() {
    // RFC 8684 §3.3 figure 9 with a (4-byte) Data ACK and 4-byte DSN.
    exact(
        &[30, 18, 0x20, 0x05, 0, 0, 0, 9, 0, 0, 0, 7, 0, 0, 0, 1, 0, 5],
        MptcpOption::Dss(Dss {
            data_ack: Some(9),
            ack64: false,
            mapping: Some(DssMapping {
                dsn: 7,
                dsn64: false,
                ssn: 1,
                len: 5,
                checksum: None,
            }),
            data_fin: false,
        }),
    );
}

#[test]
fn add_addr_forms() {
    let v4 = IpAddr::V4(Ipv4Addr::new(198, 18, 1, 2));
    // IPv4 with HMAC (length 16), with port and HMAC (18), echo (8), echo
    // with port (10): RFC 8684 §3.4.1 figure 12.
    exact(
        &hex("1e1030 02 c6120102 0102030405060708"
            .replace(' ', "")
            .as_str()),
        MptcpOption::AddAddr(AddAddr {
            echo: false,
            addr_id: 2,
            addr: v4,
            port: None,
            hmac: Some(0x0102030405060708),
        }),
    );
    exact(
        &hex("1e123002c61201021f900102030405060708"),
        MptcpOption::AddAddr(AddAddr {
            echo: false,
            addr_id: 2,
            addr: v4,
            port: Some(8080),
            hmac: Some(0x0102030405060708),
        }),
    );
    exact(
        &hex("1e083102c6120102"),
        MptcpOption::AddAddr(AddAddr {
            echo: true,
            addr_id: 2,
            addr: v4,
            port: None,
            hmac: None,
        }),
    );
    exact(
        &hex("1e0a3102c61201021f90"),
        MptcpOption::AddAddr(AddAddr {
            echo: true,
            addr_id: 2,
            addr: v4,
            port: Some(8080),
            hmac: None,
        }),
    );
    // IPv6 with HMAC: 4 + 16 + 8 = 28.
    let mut v6 = hex("1e1c3003");
    v6.extend_from_slice(&[0x20, 1, 0xd, 0xb8]);
    v6.extend_from_slice(&[0; 11]);
    v6.push(1);
    v6.extend_from_slice(&[9; 8]);
    let MptcpOption::AddAddr(a) = MptcpOption::parse(&v6).unwrap() else {
        panic!()
    };
    assert_eq!(a.addr, "2001:db8::1".parse::<IpAddr>().unwrap());
    assert_eq!(a.hmac, Some(0x0909090909090909));
    // Lengths that fit no form.
    for n in [3usize, 5, 7, 9, 11, 13, 15, 17, 19, 21] {
        let mut b = vec![30, n as u8, 0x30];
        b.resize(n, 0);
        assert_eq!(MptcpOption::parse(&b), Err(WireError::BadLength), "len {n}");
    }
}

#[test]
fn remove_addr_prio_fail_fastclose_tcprst() {
    let mut ids = [0u8; 37];
    ids[..3].copy_from_slice(&[1, 2, 7]);
    exact(
        &hex("1e0640010207"),
        MptcpOption::RemoveAddr(RemoveAddr { count: 3, ids }),
    );
    assert_eq!(
        MptcpOption::parse(&hex("1e0340")),
        Err(WireError::BadLength)
    );
    exact(&hex("1e0351"), MptcpOption::MpPrio { backup: true });
    exact(&hex("1e0350"), MptcpOption::MpPrio { backup: false });
    exact(
        &hex("1e0c60000102030405060708"),
        MptcpOption::MpFail {
            dsn: 0x0102030405060708,
        },
    );
    exact(
        &hex("1e0c7000ee29f78c747973d7"),
        MptcpOption::MpFastclose {
            receiver_key: 0xee29f78c747973d7,
        },
    );
    // MP_TCPRST: T flag, reason 0x06 ("too much outstanding data").
    exact(
        &hex("1e048106"),
        MptcpOption::MpTcpRst {
            flags: rst_flags::T,
            reason: 6,
        },
    );
    assert_eq!(MptcpOption::parse(&hex("1e0f")), Err(WireError::Truncated));
    // An unknown subtype is skipped, not an error (RFC 8684 §3).
    assert_eq!(
        MptcpOption::parse(&hex("1e04f000")),
        Ok(MptcpOption::Unknown { subtype: 0xf })
    );
}

#[test]
fn bad_lengths_are_errors() {
    // The length byte must be the option's length.
    assert_eq!(
        MptcpOption::parse(&hex("1e050101")),
        Err(WireError::BadLength)
    );
    // MP_CAPABLE: only 4, 12, 20, 22, 24.
    for n in 3..=40usize {
        let mut b = vec![30, n as u8, 0x01];
        b.resize(n, 1);
        let ok = matches!(n, 4 | 12 | 20 | 22 | 24);
        assert_eq!(MptcpOption::parse(&b).is_ok(), ok, "MP_CAPABLE len {n}");
    }
    // MP_JOIN: only 12, 16, 24.
    for n in 3..=40usize {
        let mut b = vec![30, n as u8, 0x10];
        b.resize(n, 1);
        let ok = matches!(n, 12 | 16 | 24);
        assert_eq!(MptcpOption::parse(&b).is_ok(), ok, "MP_JOIN len {n}");
    }
    // DSS with A|a|M|m must be 26 or 28; 27 is not a checksum.
    for n in 3..=40usize {
        let mut b = vec![30, n as u8, 0x20, 0x0f];
        b.resize(n.max(4), 0);
        b.truncate(n);
        let ok = matches!(n, 26 | 28);
        assert_eq!(MptcpOption::parse(&b).is_ok(), ok, "DSS len {n}");
    }
    // A checksum without a mapping is not a DSS.
    assert_eq!(
        MptcpOption::parse(&hex("1e0a20030000000100ff")),
        Err(WireError::BadLength)
    );
}

#[test]
fn no_input_of_up_to_5_bytes_panics() {
    // Every option of length <= 5 with every subtype byte (the fuzz target
    // covers the rest).
    for len in 0..=5usize {
        for st in 0..=255u8 {
            for fill in [0u8, 0xff] {
                let mut b = vec![30, len as u8, st];
                b.resize(len, fill);
                let _ = MptcpOption::parse(&b);
            }
        }
    }
}
