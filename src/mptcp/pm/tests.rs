use super::*;

fn l(stack: usize, last: u8) -> LocalAddr {
    LocalAddr {
        stack,
        ip: Ipv4Addr::new(198, 18, stack as u8, last),
    }
}

fn r(third: u8) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(198, 18, third, 1), 7)
}

#[test]
fn full_mesh_each_pair_once() {
    let locals = [l(0, 2), l(1, 2)];
    let mut pm = PathManager::new(locals[0], r(0));
    // The first subflow's pair is taken: only stack 1 to the first address.
    assert_eq!(pm.next(&locals), Some((locals[1], pm.remotes()[0])));
    assert_eq!(pm.next(&locals), None);
    assert!(pm.add_remote(1, r(1)));
    assert!(
        !pm.add_remote(1, r(1)),
        "a repeated announcement is no news"
    );
    let got: Vec<_> = std::iter::from_fn(|| pm.next(&locals)).collect();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(_, rem)| rem.id == 1));
    assert_eq!(pm.next(&locals), None);
    assert_eq!(pm.local_id(locals[0], &locals), 0);
    assert_eq!(pm.local_id(locals[1], &locals), 2);
}

#[test]
fn announcements_are_bounded_and_removable() {
    let locals = [l(0, 2)];
    let mut pm = PathManager::new(locals[0], r(0));
    for id in 1..=20u8 {
        pm.add_remote(id, r(id));
    }
    assert_eq!(pm.remotes().len(), MAX_REMOTE);
    assert!(!pm.add_remote(0, r(9)), "ID 0 is the first subflow's");
    assert!(pm.remove_remote(3));
    assert!(!pm.remove_remote(3));
    assert!(pm.remotes().iter().all(|x| x.id != 3));
    // Another address under a known ID: tried again.
    let first = std::iter::from_fn(|| pm.next(&locals)).count();
    assert_eq!(first, MAX_REMOTE - 2);
    assert!(pm.add_remote(1, r(42)));
    assert_eq!(pm.next(&locals).map(|(_, x)| x.addr), Some(r(42)));
}
