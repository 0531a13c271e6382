//! Heap per idle connection (issue 9: under 4 KiB at 100,000 connections
//! on one worker, outside the frames it holds), measured with a counting
//! global allocator: the bytes live on the heap of this process.
//!
//! A server stack listens; a client stack (four addresses, so 100,000
//! distinct 4-tuples) opens `XDPTCP_MEM_CONNS` connections (default
//! 100,000) to it in batches, frames handed across by the test. Once all
//! are established and quiet (delayed ACKs sent, events drained), the
//! client stack is dropped, which frees all of its memory; what the heap
//! holds beyond its level right after the server stack was made is the
//! server's connections: TCBs, table slots, the 4-tuple map, timers.
//! Every frame is back by then (idle connections hold none), so this is
//! heap outside frames.

mod common;
use common::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::time::Duration;
use xdptcp::stack::{Ipv4Cidr, Stack, StackConfig};
use xdptcp::time::Instant;

/// The system allocator, counting the bytes live.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY (of the impl): every call forwards to `System` with the same
// arguments; the counter is bookkeeping only.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as i64, Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as i64, Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as i64 - l.size() as i64, Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CLIENT_IPS: [Ipv4Addr; 4] = [
    Ipv4Addr::new(198, 18, 0, 16),
    Ipv4Addr::new(198, 18, 0, 17),
    Ipv4Addr::new(198, 18, 0, 18),
    Ipv4Addr::new(198, 18, 0, 19),
];

fn cfg(mac: xdptcp::wire::MacAddr, ip: Ipv4Addr, n: usize) -> StackConfig {
    StackConfig {
        max_conns: n + 1024,
        syn_backlog: 4096,
        accept_backlog: 4096,
        ..config(mac, ip)
    }
}

/// Move frames both ways until both stacks are quiet; events drained.
fn settle(a: &mut Stack<TestDevice>, b: &mut Stack<TestDevice>, now: &mut Instant) {
    for _ in 0..10_000 {
        a.poll(*now);
        b.poll(*now);
        while a.next_event().is_some() {}
        while b.next_event().is_some() {}
        let to_b = a.device_mut().take_tx();
        let to_a = b.device_mut().take_tx();
        if to_b.is_empty() && to_a.is_empty() {
            return;
        }
        *now += Duration::from_micros(50);
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
fn heap_per_idle_connection_under_4_kib() {
    let n: usize = std::env::var("XDPTCP_MEM_CONNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut now = Instant::ZERO;
    let mut server = Stack::new(cfg(MAC_B, IP_B, n), TestDevice::new(16384), now);
    server.listen(7).unwrap();
    for ip in CLIENT_IPS {
        server.arp_insert_static(ip, MAC_A);
    }
    let base = LIVE.load(Relaxed);

    let mut ccfg = cfg(MAC_A, CLIENT_IPS[0], n);
    ccfg.addrs = CLIENT_IPS
        .iter()
        .map(|&addr| Ipv4Cidr { addr, prefix: 24 })
        .collect();
    let mut client = Stack::new(ccfg, TestDevice::new(16384), now);
    client.arp_insert_static(IP_B, MAC_B);
    let per_ip = n.div_ceil(CLIENT_IPS.len());
    let mut opened = 0;
    'open: for (k, ip) in CLIENT_IPS.iter().enumerate() {
        for p in 0..per_ip {
            if opened == n {
                break 'open;
            }
            let local = SocketAddrV4::new(*ip, 10_000 + p as u16);
            client
                .connect_from(now, local, SocketAddrV4::new(IP_B, 7))
                .unwrap_or_else(|e| panic!("connect {k}/{p}: {e:?}"));
            opened += 1;
            if opened % 2000 == 0 {
                settle(&mut client, &mut server, &mut now);
            }
        }
    }
    settle(&mut client, &mut server, &mut now);
    // Past the delayed-ACK timers: all quiet.
    now += Duration::from_secs(1);
    settle(&mut client, &mut server, &mut now);
    assert_eq!(server.conn_count(), n, "every connection established");
    let established = server
        .connections()
        .filter(|(_, s)| *s == xdptcp::tcp::State::Established)
        .count();
    assert_eq!(established, n);
    drop(client);
    assert_eq!(
        server.device().live.get(),
        0,
        "idle connections hold no frames"
    );

    let held = LIVE.load(Relaxed) - base;
    let per_conn = held as f64 / n as f64;
    eprintln!(
        "{n} idle connections on one stack: {:.1} MiB of heap, {per_conn:.0} bytes per connection \
         (counting global allocator; TCB, table slot, 4-tuple map, timers; frames excluded: none held); \
         of which the TCB itself (size_of Connection) {} bytes",
        held as f64 / (1 << 20) as f64,
        std::mem::size_of::<xdptcp::tcp::Connection<TestFrame>>()
    );
    assert!(
        per_conn < 4096.0,
        "{per_conn:.0} bytes of heap per idle connection"
    );
}
