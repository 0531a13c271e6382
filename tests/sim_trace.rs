//! Packet traces: every frame sent, dropped and delivered is reported, and
//! described readably.

use std::cell::RefCell;
use std::rc::Rc;
use xdptcp::apps::bulk::{BulkClient, BulkConfig, BulkServer};
use xdptcp::io::mem::scenario::{frame_size, host_ip, host_mac, host_stack};
use xdptcp::io::mem::trace::{describe, TraceKind, TraceRecord};
use xdptcp::io::mem::{FramePool, Limits, LinkConfig, Network, StackNode};
use xdptcp::tcp::Config;

#[test]
fn trace_accounts_for_every_frame() {
    let link = LinkConfig {
        loss: 0.05,
        ..LinkConfig::default()
    };
    let l = link.clone();
    let mut net = Network::new(
        vec![host_mac(0), host_mac(1)],
        move |_, _| l.clone(),
        3,
        FramePool::new(frame_size(link.mtu), 1 << 16),
    );
    let lines: Rc<RefCell<Vec<(TraceKind, usize, String)>>> = Rc::default();
    let sink = lines.clone();
    net.set_tracer(Box::new(move |r: &TraceRecord<'_>| {
        sink.borrow_mut().push((r.kind, r.src, describe(r.frame)));
    }));
    let cfg = BulkConfig {
        conns: 1,
        bytes: 50_000,
        bidir: false,
        seed: 3,
        port: 5001,
        work: Default::default(),
    };
    let mut a = StackNode::new(
        host_stack(&net, 0, Config::default(), 3, link.mtu, 1024),
        BulkClient::new(cfg, host_ip(1)),
    );
    let mut b = StackNode::new(
        host_stack(&net, 1, Config::default(), 3, link.mtu, 1024),
        BulkServer::new(cfg),
    );
    let out = net.run(&mut [&mut a, &mut b], Limits::default());
    assert!(out.is_finished(), "{}", out.describe());

    let lines = lines.borrow();
    let count =
        |k: TraceKind, src: usize| lines.iter().filter(|l| l.0 == k && l.1 == src).count() as u64;
    for (i, j) in [(0, 1), (1, 0)] {
        let s = net.link_stats(i, j);
        assert_eq!(count(TraceKind::Delivered, i), s.delivered);
        assert_eq!(count(TraceKind::Lost, i), s.dropped_loss);
        assert_eq!(
            count(TraceKind::Sent, i) + count(TraceKind::Lost, i),
            s.tx_packets
        );
    }
    assert!(lines[0].2.starts_with("ARP"), "{}", lines[0].2);
    let syn = lines.iter().find(|l| l.2.contains("[S")).expect("a SYN");
    assert!(
        syn.2.starts_with("198.18.0.1:") && syn.2.contains("> 198.18.0.2:5001"),
        "{}",
        syn.2
    );
    assert!(lines.iter().any(|l| l.2.contains("len 1448")));
    assert!(lines.iter().all(|l| !l.2.contains("BAD-CHECKSUM")));
}

#[test]
fn describe_survives_garbage() {
    assert!(describe(&[]).starts_with("runt"));
    assert!(describe(&[0xff; 13]).starts_with("runt"));
    let mut f = [0u8; 60];
    f[12] = 0x08; // IPv4 ethertype, garbage header
    assert!(describe(&f).starts_with("IPv4"));
    f[12] = 0x86;
    f[13] = 0xdd;
    assert!(describe(&f).starts_with("ethertype"));
}
