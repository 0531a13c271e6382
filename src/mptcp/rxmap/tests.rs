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
