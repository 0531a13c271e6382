use super::*;

fn v(srtt_ms: u64, room: usize, backup: bool, usable: bool) -> SubflowView {
    SubflowView {
        srtt: Duration::from_millis(srtt_ms),
        room,
        backup,
        usable,
        ..SubflowView::default()
    }
}

fn picks(s: &mut dyn Scheduler, subs: &[SubflowView], n: usize) -> Vec<Vec<usize>> {
    (0..n)
        .map(|_| {
            let p: Vec<usize> = s.pick(subs).iter().collect();
            for &i in &p {
                s.taken(i);
            }
            p
        })
        .collect()
}

#[test]
fn minrtt_takes_the_lowest_rtt_with_room() {
    let mut s = MinRtt;
    // The 5 ms path, while it has room.
    let subs = [v(50, 10_000, false, true), v(5, 10_000, false, true)];
    assert_eq!(picks(&mut s, &subs, 2), [[1], [1]]);
    // Its window full: the slower one.
    let subs = [v(50, 10_000, false, true), v(5, 0, false, true)];
    assert_eq!(s.pick(&subs), Pick::one(0));
    // Ties: the lower index (the first subflow).
    let subs = [v(5, 1, false, true), v(5, 1, false, true)];
    assert_eq!(s.pick(&subs), Pick::one(0));
    // A stalled or dead subflow is no candidate, however fast it was.
    let subs = [v(50, 10_000, false, true), v(1, 10_000, false, false)];
    assert_eq!(s.pick(&subs), Pick::one(0));
    // Nobody with room: nobody.
    let subs = [v(50, 0, false, true), v(5, 0, false, true)];
    assert!(s.pick(&subs).is_empty());
    assert!(s.pick(&[]).is_empty());
}

#[test]
fn backup_subflows_only_when_no_regular_one_is_usable() {
    for kind in [
        SchedKind::MinRtt,
        SchedKind::RoundRobin,
        SchedKind::Redundant,
    ] {
        let mut s = kind.build();
        assert_eq!(s.kind(), kind);
        // The backup path is faster, but a regular one is usable.
        let subs = [v(50, 10_000, false, true), v(5, 10_000, true, true)];
        assert_eq!(picks(&mut *s, &subs, 3), [[0], [0], [0]], "{kind}");
        // The regular one is usable but its window is full: wait for it.
        let subs = [v(50, 0, false, true), v(5, 10_000, true, true)];
        assert!(s.pick(&subs).is_empty(), "{kind}");
        // The regular one is gone: the backup takes over.
        let subs = [v(50, 10_000, false, false), v(5, 10_000, true, true)];
        assert_eq!(s.pick(&subs), Pick::one(1), "{kind}");
    }
}

#[test]
fn roundrobin_alternates_over_subflows_with_room() {
    let mut s = RoundRobin::default();
    let subs = [
        v(50, 10_000, false, true),
        v(5, 10_000, false, true),
        v(9, 10_000, false, true),
    ];
    assert_eq!(picks(&mut s, &subs, 4), [[0], [1], [2], [0]]);
    // One without room is skipped, the turn goes on from the last pick.
    let subs = [
        v(50, 10_000, false, true),
        v(5, 0, false, true),
        v(9, 10_000, false, true),
    ];
    assert_eq!(picks(&mut s, &subs, 3), [[2], [0], [2]]);
    // A pick not taken (another subflow asked) does not move the turn.
    assert_eq!(s.pick(&subs), Pick::one(0));
    assert_eq!(s.pick(&subs), Pick::one(0));
}

#[test]
fn redundant_names_every_subflow_with_room() {
    let mut s = Redundant;
    let subs = [
        v(50, 10_000, false, true),
        v(5, 10_000, false, true),
        v(9, 0, false, true),
        v(9, 10_000, false, false),
    ];
    assert_eq!(picks(&mut s, &subs, 1), [[0, 1]]);
}

#[test]
fn scheduler_names_parse_and_print() {
    for k in [
        SchedKind::MinRtt,
        SchedKind::RoundRobin,
        SchedKind::Redundant,
    ] {
        assert_eq!(k.to_string().parse::<SchedKind>(), Ok(k));
    }
    assert_eq!(SchedKind::default(), SchedKind::MinRtt);
    let e = "fastest".parse::<SchedKind>().unwrap_err();
    assert!(e.contains("minrtt, roundrobin, redundant"), "{e}");
    assert_eq!(Pick::one(64), Pick::default());
}
