use super::*;

fn map(start: u32, len: u32, dsn: u64) -> RxMapping {
    RxMapping {
        start,
        len,
        dsn: RxDsn {
            value: dsn,
            wide: true,
        },
    }
}

#[test]
fn maps_in_order_bytes_through_consecutive_mappings() {
    let mut m = RxMaps::default();
    m.note(map(0, 100, 5000)).unwrap();
    m.note(map(100, 100, 9000)).unwrap();
    assert_eq!(
        m.take(60).unwrap(),
        (
            RxDsn {
                value: 5000,
                wide: true
            },
            60
        )
    );
    // The rest of the first mapping only: the next one's DSNs jump.
    assert_eq!(
        m.take(100).unwrap(),
        (
            RxDsn {
                value: 5060,
                wide: true
            },
            40
        )
    );
    assert_eq!(
        m.take(100).unwrap(),
        (
            RxDsn {
                value: 9000,
                wide: true
            },
            100
        )
    );
    assert!(m.is_empty() || m.take(1).is_err());
}

#[test]
fn contiguous_mappings_join_and_repeats_agree() {
    let mut m = RxMaps::default();
    m.note(map(0, 10, 70)).unwrap();
    m.note(map(10, 10, 80)).unwrap();
    // The same mapping again (Linux repeats it on every segment).
    m.note(map(0, 10, 70)).unwrap();
    // Contiguous in both spaces: one entry.
    assert_eq!(m.len(), 1);
    assert_eq!(
        m.take(20).unwrap(),
        (
            RxDsn {
                value: 70,
                wide: true
            },
            20
        )
    );
}

#[test]
fn conflicting_unmapped_and_full_are_errors() {
    let mut m = RxMaps::default();
    m.note(map(0, 10, 70)).unwrap();
    assert_eq!(m.note(map(0, 10, 71)), Err(MapError::Conflict));
    let mut u = RxMaps::default();
    u.note(map(10, 10, 70)).unwrap();
    assert_eq!(u.take(5), Err(MapError::Unmapped));
    let mut f = RxMaps::default();
    for i in 0..MAX_MAPPINGS as u32 {
        f.note(map(i * 10, 10, i as u64 * 100)).unwrap();
    }
    assert_eq!(f.len(), MAX_MAPPINGS);
    assert_eq!(f.note(map(10_000, 10, 1)), Err(MapError::Full));
    // Running on from the last one still fits (it extends it).
    let last = (MAX_MAPPINGS as u32 - 1) * 10;
    f.note(map(last + 10, 10, (MAX_MAPPINGS as u64 - 1) * 100 + 10))
        .unwrap();
}

#[test]
fn short_dsn_widens_near_the_data_level() {
    let d = RxDsn {
        value: 0x0000_0010,
        wide: false,
    };
    assert_eq!(d.widen(0x1_ffff_fff0), 0x2_0000_0010);
    assert_eq!(d.plus(0xffff_fff0).value, 0);
}

#[test]
fn the_infinite_mapping_maps_everything_after_its_start_one_to_one() {
    // RFC 8684 §3.7: mappings up to subflow offset 100, then the infinite
    // mapping from there at DSN 1000.
    let mut m = RxMaps::default();
    m.note(map(0, 100, 900)).unwrap();
    let dsn = |value| RxDsn { value, wide: true };
    m.set_infinite(100, dsn(1000));
    assert_eq!(m.take(100).unwrap(), (dsn(900), 100));
    assert_eq!(m.take(1400).unwrap(), (dsn(1000), 1400));
    assert_eq!(m.take(7).unwrap(), (dsn(2400), 7));
    assert_eq!(m.infinite_dsn(1507), Some(dsn(2407)));
    assert_eq!(m.infinite_dsn(99), None);
}

#[test]
fn after_our_infinite_mapping_the_peers_bytes_run_on_from_its_last_mapping() {
    // RFC 8684 §3.7: the peer falls back when our infinite mapping reaches
    // it; mappings it sent before still come, then bytes without one.
    let mut m = RxMaps::default();
    let dsn = |value| RxDsn { value, wide: true };
    m.note(map(0, 100, 900)).unwrap();
    m.follow_tail();
    m.note(map(100, 50, 1000)).unwrap();
    assert_eq!(m.take(100).unwrap(), (dsn(900), 100));
    assert_eq!(m.take(50).unwrap(), (dsn(1000), 50));
    assert_eq!(m.infinite_dsn(150), Some(dsn(1050)));
    assert_eq!(m.take(30).unwrap(), (dsn(1050), 30));
    assert_eq!(m.take(10).unwrap(), (dsn(1080), 10));
    // Without our infinite mapping, unmapped bytes are an error.
    let mut m = RxMaps::default();
    m.note(map(0, 100, 900)).unwrap();
    assert_eq!(m.take(100).unwrap(), (dsn(900), 100));
    assert!(m.take(10).is_err());
    assert_eq!(m.infinite_dsn(100), None);
}

#[test]
fn runs_on_only_within_contiguous_dsns() {
    let mut m = RxMaps::default();
    m.note(map(0, 10, 100)).unwrap();
    m.note(map(10, 10, 110)).unwrap(); // merged: runs on
    m.note(map(20, 10, 50)).unwrap(); // a reinjection: DSNs jump back
    m.note(map(40, 10, 200)).unwrap(); // a gap of unmapped bytes before it
    assert!(m.runs_on(5));
    assert!(m.runs_on(10));
    assert!(!m.runs_on(20), "the DSNs do not run on at 20");
    assert!(m.runs_on(25));
    assert!(!m.runs_on(30), "30 is not mapped");
    assert!(!m.runs_on(40), "39 is not mapped");
    assert!(!m.runs_on(0), "nothing before the first byte");
}
