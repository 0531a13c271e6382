//! MPTCP tokens at the stack level (RFC 8684 §3.1): every MPTCP connection
//! holds a token unique within its stack, and gives it back when it goes;
//! a runtime that asks for it hears of each (its token directory).

mod common;
use common::*;
use std::time::Duration;
use xdptcp::app::Event;
use xdptcp::stack::Stack;
use xdptcp::time::Instant;

const N: usize = 40;

/// Move frames between the two stacks until both are quiet (bounded).
fn pump(a: &mut Stack<TestDevice>, b: &mut Stack<TestDevice>, now: &mut Instant) {
    for _ in 0..1000 {
        a.poll(*now);
        b.poll(*now);
        let to_b = a.device_mut().take_tx();
        let to_a = b.device_mut().take_tx();
        if to_b.is_empty() && to_a.is_empty() {
            return;
        }
        *now += Duration::from_micros(100);
        for f in &to_b {
            rx(b, *now, f);
        }
        for f in &to_a {
            rx(a, *now, f);
        }
    }
    panic!("the stacks never went quiet");
}

#[test]
fn tokens_are_unique_and_released() {
    let cfg = |mac, ip| {
        let mut c = config(mac, ip);
        c.tcp.mptcp = true;
        c.ephemeral_ports = (40000, 40999);
        c.syn_backlog = 1024;
        c.accept_backlog = 1024;
        c.arp_queue = 64;
        // All N SYNs wait behind the first ARP resolution.
        c.arp_queue_frames = Some(64);
        c
    };
    let (ca, cb) = (cfg(MAC_A, IP_A), cfg(MAC_B, IP_B));
    let mut a = Stack::new(ca, TestDevice::new(4096), Instant::ZERO);
    let mut b = Stack::new(cb, TestDevice::new(4096), Instant::ZERO);
    b.listen(80).unwrap();
    a.log_tokens();
    b.log_tokens();
    let drain = |s: &mut Stack<TestDevice>| {
        let mut log = Vec::new();
        s.drain_token_log(|t, drawn| log.push((t, drawn)));
        log
    };
    let mut now = Instant::ZERO;
    let ids: Vec<_> = (0..N)
        .map(|_| a.connect(now, sa(IP_B, 80)).unwrap())
        .collect();
    // Each active open drew its key at once: N distinct tokens.
    assert_eq!(a.mptcp_tokens(), N);
    let drawn_a = drain(&mut a);
    assert_eq!(drawn_a.len(), N);
    assert!(drawn_a.iter().all(|&(_, drawn)| drawn));
    assert!(drain(&mut a).is_empty(), "a drained log starts empty");
    pump(&mut a, &mut b, &mut now);
    let accepted = std::iter::from_fn(|| b.next_event())
        .filter(|e| matches!(e, Event::Accepted { .. }))
        .count();
    assert_eq!(accepted, N);
    assert_eq!(b.mptcp_tokens(), N);
    let drawn_b = drain(&mut b);
    assert_eq!(drawn_b.len(), N);
    assert!(drawn_b.iter().all(|&(_, drawn)| drawn));
    assert_eq!(a.counters().mptcp_established, N as u64);
    assert_eq!(b.counters().mptcp_established, N as u64);
    assert_eq!(
        a.counters().mptcp_fallbacks + b.counters().mptcp_fallbacks,
        0
    );
    // Aborted on A: the RSTs close B's side too; every token is free again.
    for id in ids {
        a.abort(id).unwrap();
    }
    pump(&mut a, &mut b, &mut now);
    while a.next_event().is_some() {}
    while b.next_event().is_some() {}
    a.poll(now);
    b.poll(now);
    assert_eq!(a.mptcp_tokens(), 0);
    assert_eq!(b.mptcp_tokens(), 0);
    // Every token drawn was released, once.
    for (s, drawn) in [(&mut a, drawn_a), (&mut b, drawn_b)] {
        let mut released: Vec<u32> = drain(s)
            .into_iter()
            .map(|(t, d)| {
                assert!(!d, "a token drawn after the aborts");
                t
            })
            .collect();
        let mut drawn: Vec<u32> = drawn.into_iter().map(|(t, _)| t).collect();
        released.sort_unstable();
        drawn.sort_unstable();
        assert_eq!(released, drawn);
    }
}
