//! Same seed, same run; different seed, different run; stalls are failures.

use core::time::Duration;
use xdptcp::io::mem::scenario::{run_bulk, BulkParams};
use xdptcp::io::mem::Limits;

fn impaired(seed: u64) -> BulkParams {
    let mut p = BulkParams {
        bytes: 300_000,
        conns: 3,
        seed,
        ..BulkParams::default()
    };
    p.link.loss = 0.05;
    p.link.reorder = 0.1;
    p.link.duplicate = 0.03;
    p.link.corrupt = 0.03;
    p.link.jitter = Duration::from_millis(2);
    p
}

fn json(p: &BulkParams) -> serde_json::Value {
    serde_json::to_value(run_bulk(p)).unwrap()
}

#[test]
fn same_seed_gives_identical_json() {
    let a = json(&impaired(42));
    let b = json(&impaired(42));
    assert_eq!(a, b);
    assert_eq!(a["intact"], true, "{a}");
}

#[test]
fn different_seeds_give_different_runs() {
    let mut a = json(&impaired(1));
    let mut b = json(&impaired(2));
    assert_eq!(a["intact"], true);
    assert_eq!(b["intact"], true);
    a.as_object_mut().unwrap().remove("seed");
    b.as_object_mut().unwrap().remove("seed");
    assert_ne!(a["link"], b["link"]);
    assert_ne!(a, b);
}

#[test]
fn a_dead_link_fails_the_run() {
    let mut p = impaired(3);
    p.link.loss = 1.0;
    p.limits = Limits {
        time: Duration::from_secs(30),
        ..Limits::default()
    };
    let r = run_bulk(&p);
    assert!(!r.intact);
    assert_eq!(r.bytes, 0);
    assert!(r.failure(true).is_some());
    // ARP gets no answer: every connection, still opening, ends as
    // unreachable (as Linux's connect() with EHOSTUNREACH), not a stall.
    assert!(
        r.connections
            .iter()
            .all(|c| c.client_close == "unreachable"),
        "{:?}",
        r.error
    );
}
