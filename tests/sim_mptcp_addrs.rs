//! A simulated server with one address per path (`xdptcp sim --paths N
//! --server-addrs per-path`): it announces its other addresses with
//! ADD_ADDR (RFC 8684 §3.4.1, HMAC verified by the client), the client's
//! path manager joins each over its own path (full mesh: the pairs
//! without a route are skipped), and a path dying withdraws the server's
//! address on it with REMOVE_ADDR (§3.4.2). Virtual time: the figures
//! are exact and repeatable.

mod common;

use common::sim::{link, run_exact};
use core::time::Duration;
use xdptcp::io::mem::scenario::{AddrReport, BulkParams, BulkReport, ServerAddrs};
use xdptcp::io::mem::Limits;

/// One connection sending 4 MiB over `paths` equal 10 Mbit/s, 5 ms paths.
fn params(paths: usize, addrs: ServerAddrs) -> BulkParams {
    let link = link(10, 5, 0.0);
    BulkParams {
        bytes: 4 << 20,
        conns: 1,
        seed: 11,
        mptcp: [true, true],
        extra_paths: vec![link.clone(); paths - 1],
        link,
        server_addrs: addrs,
        limits: Limits {
            time: Duration::from_secs(120),
            ..Limits::default()
        },
        ..BulkParams::default()
    }
}

/// `p` run to completion, every byte checked.
#[track_caller]
fn run(p: &BulkParams) -> BulkReport {
    let paths = 1 + p.extra_paths.len();
    run_exact(p, p.bytes, &format!("{paths} paths, {:?}", p.server_addrs))
}

fn addrs(r: &BulkReport) -> AddrReport {
    r.addresses
        .clone()
        .expect("several paths: address counters")
}

#[test]
fn announced_addresses_are_joined_and_carry_more_than_the_best_path() {
    let one = run(&params(1, ServerAddrs::PerPath));
    let two = run(&params(2, ServerAddrs::PerPath));
    let a = addrs(&two);
    let [p1, _] = two.paths[0];
    let [p2, _] = two.paths[1];
    println!(
        "one path {:.2} Mbit/s; two {:.2} Mbit/s (path 1 {} bytes, path 2 {}); {a:?}",
        one.goodput_mbps, two.goodput_mbps, p1.tx_bytes, p2.tx_bytes
    );
    assert!(
        two.goodput_mbps > 1.5 * one.goodput_mbps,
        "{:.2} vs {:.2}",
        two.goodput_mbps,
        one.goodput_mbps
    );
    assert!(p2.tx_bytes > 1 << 20, "path 2 carried {}", p2.tx_bytes);
    // The server announced 198.18.1.2 once, the client took it and joined
    // it, and only it: 198.18.0.2 has no route from the client's second
    // interface, nor 198.18.1.2 from its first.
    assert_eq!((a.add_addr_sent, a.add_addr_received), (1, 1), "{a:?}");
    assert_eq!(a.add_addr_bad_hmac, 0);
    assert_eq!((a.join_syns, a.joins_to_announced), (1, 1), "{a:?}");
    assert_eq!((a.subflows_opened, a.joins_accepted), (1, 1), "{a:?}");
    assert_eq!(a.remove_addr_sent + a.remove_addr_received, 0, "{a:?}");
}

#[test]
fn three_paths_three_addresses_full_mesh() {
    let r = run(&params(3, ServerAddrs::PerPath));
    let a = addrs(&r);
    let carried: Vec<u64> = r.paths.iter().map(|[c2s, _]| c2s.tx_bytes).collect();
    println!("{:.2} Mbit/s, paths {carried:?}; {a:?}", r.goodput_mbps);
    assert_eq!((a.add_addr_sent, a.add_addr_received), (2, 2), "{a:?}");
    assert_eq!((a.joins_to_announced, a.subflows_opened), (2, 2), "{a:?}");
    assert!(carried.iter().all(|&b| b > 500_000), "{carried:?}");
}

#[test]
fn one_server_address_announces_nothing() {
    // The other shape, as before: the server behind 198.18.0.2 on every
    // path; the client joins it from its second address.
    let r = run(&params(2, ServerAddrs::One));
    let a = addrs(&r);
    assert_eq!((a.add_addr_sent, a.add_addr_received), (0, 0), "{a:?}");
    assert_eq!((a.join_syns, a.joins_to_announced), (1, 0), "{a:?}");
    assert_eq!(a.subflows_opened, 1, "{a:?}");
}

#[test]
fn a_path_dying_withdraws_its_address_and_the_transfer_is_exact() {
    // Path 2 (its address announced) and path 1 (the first subflow's,
    // Address ID 0) each die 1 s in: the server withdraws its address
    // there, REMOVE_ADDR reaches the client over the path still up, and
    // the transfer completes byte-exact over it.
    for down in [1, 0] {
        let mut p = params(2, ServerAddrs::PerPath);
        p.path_down = Some((down, Duration::from_millis(1000)));
        let r = run(&p);
        let a = addrs(&r);
        let [c2s, s2c] = r.paths[down];
        let [live, _] = r.paths[1 - down];
        println!(
            "path {} down: {:.2} Mbit/s in {:.0} ms, {} lost while down, live path {} bytes; {a:?}",
            down + 1,
            r.goodput_mbps,
            r.virtual_ms,
            c2s.dropped_down + s2c.dropped_down,
            live.tx_bytes
        );
        assert!(c2s.dropped_down + s2c.dropped_down > 0);
        assert_eq!(
            (a.remove_addr_sent, a.remove_addr_received),
            (1, 1),
            "{a:?}"
        );
        assert_eq!((a.add_addr_sent, a.joins_to_announced), (1, 1), "{a:?}");
        assert!(
            live.tx_bytes > 2 << 20,
            "live path carried {}",
            live.tx_bytes
        );
    }
}
