//! The negotiation and the data mappings, option by option.

use super::*;
use crate::wire::{checksum, MptcpRaw};

fn raw(o: Option<MptcpOption>) -> MptcpRaw {
    let mut m = MptcpRaw::default();
    if let Some(o) = o {
        let mut b = [0u8; 40];
        let n = o.emit(&mut b);
        assert!(m.append(&b[..n]));
    }
    m
}

/// A verdict with nothing to report but (maybe) a verified checksum.
#[track_caller]
fn clean(v: RxVerdict, verified: bool) {
    assert_eq!(
        v,
        RxVerdict {
            checksum_verified: verified,
            mapping: v.mapping,
            data_fin: v.data_fin,
            ..RxVerdict::default()
        }
    );
}

/// A client and a server through the handshake; `csum` on the client.
fn pair(csum: bool) -> (Session, Session) {
    let mut c = Session::client(Key(0x1111), csum);
    let syn = raw(c.syn_option());
    let MptcpOption::MpCapable(cap) = MptcpOption::parse(syn.as_slice()).unwrap() else {
        panic!()
    };
    let mut s = Session::server(Some(&cap), false);
    s.set_local_key(Key(0x2222));
    let synack = raw(s.syn_option());
    assert_eq!(c.on_syn_ack(synack.as_slice()), RxVerdict::default());
    assert_eq!(c.phase, Phase::Established);
    // Third ACK: MP_CAPABLE with both keys.
    let ack = raw(c.data_option(0, 0, false, None, None));
    assert_eq!(ack.as_slice().len(), 20);
    clean(s.on_segment(ack.as_slice(), 0, &[], true), false);
    assert_eq!(s.phase, Phase::Established);
    assert_eq!(s.remote_key, Some(Key(0x1111)));
    assert_eq!(s.checksum, csum);
    (c, s)
}

#[test]
fn handshake_then_one_to_one_data_both_ways() {
    for csum in [false, true] {
        let (mut c, mut s) = pair(csum);
        // Client's first data: MP_CAPABLE with the data-level length.
        let data = [7u8; 100];
        let mut o = raw(c.data_option(0, 100, false, None, None));
        assert_eq!(o.as_slice().len(), if csum { 24 } else { 22 });
        let n = o.len as usize;
        c.fill_checksum(&mut o.bytes[..n], checksum::sum(&data));
        let v = s.on_segment(o.as_slice(), 0, &data, false);
        clean(v, csum);
        // The implied mapping of the first data (RFC 8684 §3.1).
        assert_eq!(
            v.mapping,
            Some(RxMapping {
                start: 0,
                len: 100,
                dsn: RxDsn {
                    value: Key(0x1111).idsn() + 1,
                    wide: true
                }
            })
        );
        // Server answers with DSS: Data ACK = IDSN(client) + 1 + 100.
        let mut o = raw(s.data_option(0, 50, false, Some(Key(0x1111).idsn() + 101), None));
        let n = o.len as usize;
        s.fill_checksum(&mut o.bytes[..n], checksum::sum(&data[..50]));
        let MptcpOption::Dss(d) = MptcpOption::parse(o.as_slice()).unwrap() else {
            panic!()
        };
        assert_eq!(d.data_ack, Some(Key(0x1111).idsn() + 101));
        assert_eq!(d.mapping.unwrap().dsn, Key(0x2222).idsn() + 1);
        clean(c.on_segment(o.as_slice(), 0, &data[..50], false), csum);
        // The client now uses DSS too; its second segment maps at +100.
        let mut o = raw(c.data_option(100, 10, false, None, None));
        let n = o.len as usize;
        c.fill_checksum(&mut o.bytes[..n], checksum::sum(&data[..10]));
        let MptcpOption::Dss(d) = MptcpOption::parse(o.as_slice()).unwrap() else {
            panic!()
        };
        assert_eq!(d.mapping.unwrap().ssn, 101);
        clean(s.on_segment(o.as_slice(), 100, &data[..10], false), csum);
        // A corrupted byte fails the checksum when negotiated. Alone on
        // its connection, the subflow asks for the fallback with MP_FAIL
        // naming the mapping's DSN (RFC 8684 §3.7); joined, or failing
        // again meanwhile, it resets.
        let mut bad = data;
        bad[3] ^= 1;
        let mut joined = s.clone();
        joined.joined = true;
        let v = s.on_segment(o.as_slice(), 100, &bad[..10], false);
        assert_eq!(v.checksum_failed, csum);
        assert!(!v.reset);
        let dsn = Key(0x1111).idsn() + 101;
        assert_eq!(s.take_mp_fail(), csum.then_some(dsn));
        let v = s.on_segment(o.as_slice(), 100, &bad[..10], false);
        assert_eq!(v.reset, csum);
        let v = joined.on_segment(o.as_slice(), 100, &bad[..10], false);
        assert_eq!(v.reset, csum);
    }
}

#[test]
fn data_fin_without_data_is_reached_in_order() {
    let (mut c, mut s) = pair(false);
    let o = raw(c.data_option(0, 100, false, None, None));
    s.on_segment(o.as_slice(), 0, &[1; 100], false);
    // Bare FIN at offset 100: DSS SSN 0, length 1, F.
    let o = raw(c.data_option(100, 0, true, None, None));
    let MptcpOption::Dss(d) = MptcpOption::parse(o.as_slice()).unwrap() else {
        panic!()
    };
    let m = d.mapping.unwrap();
    assert!(d.data_fin && m.ssn == 0 && m.len == 1);
    let v = s.on_segment(o.as_slice(), 100, &[], false);
    // Its DSN, for the data level (which reaches it in order).
    assert_eq!(
        v.data_fin,
        Some(RxDsn {
            value: Key(0x1111).idsn() + 1 + 100,
            wide: true
        })
    );
    assert_eq!(v.mapping, None);
}

#[test]
fn fallbacks() {
    // SYN/ACK without MP_CAPABLE.
    let mut c = Session::client(Key(1), false);
    let v = c.on_syn_ack(&[]);
    assert_eq!(v.fallback, Some(FallbackReason::NotOffered));
    assert_eq!(c.data_option(0, 10, false, None, None), None);
    // A SYN without MP_CAPABLE.
    assert_eq!(Session::server(None, false).phase, Phase::Fallback);
    // Third ACK stripped.
    let cap = MpCapable {
        version: 1,
        flags: cap_flags::H,
        ..Default::default()
    };
    let mut s = Session::server(Some(&cap), false);
    s.set_local_key(Key(2));
    let v = s.on_segment(&[], 0, &[], true);
    assert_eq!(v.fallback, Some(FallbackReason::Stripped));
    // First data without a mapping (the third ACK had the keys).
    let (_, mut s) = pair(false);
    let v = s.on_segment(&[], 0, &[1; 10], false);
    assert_eq!(v.fallback, Some(FallbackReason::NoMapping));
    assert!(!s.is_mptcp());
    // No H (no crypto algorithm in common): plain TCP.
    let cap0 = MpCapable {
        version: 1,
        flags: 0,
        ..Default::default()
    };
    assert_eq!(Session::server(Some(&cap0), false).phase, Phase::Fallback);
}

#[test]
fn mappings_off_the_subflow_sequence_are_taken_for_the_data_level() {
    let (mut c, mut s) = pair(false);
    let o = raw(c.data_option(0, 100, false, None, None));
    s.on_segment(o.as_slice(), 0, &[1; 100], false);
    // Data at subflow offset 100 mapped to data offset `at`.
    let at = |at: u64| {
        raw(Some(MptcpOption::Dss(Dss {
            data_ack: None,
            ack64: false,
            mapping: Some(DssMapping {
                dsn: Key(0x1111).idsn() + 1 + at,
                dsn64: true,
                ssn: 101,
                len: 10,
                checksum: None,
            }),
            data_fin: false,
        })))
    };
    // Bytes the data level already has (a reinjection), partly old, or
    // ahead of it (another subflow carries the gap): all are mappings the
    // data level sorts out by DSN (RFC 8684 §3.3), none a reset.
    for off in [0, 95, 200] {
        let v = s.on_segment(at(off).as_slice(), 100, &[1; 10], false);
        assert!(!v.reset, "{off}: {v:?}");
        let m = v.mapping.unwrap();
        assert_eq!((m.start, m.len), (100, 10));
        assert_eq!(m.dsn.value, Key(0x1111).idsn() + 1 + off);
    }
    // Keys that are not ours reset too.
    let (_, mut s) = pair(false);
    let o = raw(Some(MptcpOption::MpCapable(MpCapable {
        version: 1,
        flags: cap_flags::H,
        sender_key: Some(0x1111),
        receiver_key: Some(0x9999),
        ..Default::default()
    })));
    assert!(s.on_segment(o.as_slice(), 0, &[], false).reset);
}

#[test]
fn offsets_widen_past_4_gib() {
    assert_eq!(widen(0, 5), 5);
    assert_eq!(widen(0xffff_fff0, 0x10), 0x1_0000_0010);
    assert_eq!(widen(0x1_0000_0010, 0xffff_fff0), 0xffff_fff0);
}
