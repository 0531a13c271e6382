//! `xdptcp loadgen`'s app against the HTTP and echo servers in the
//! simulator: every mode with --verify, closed and open loop, in virtual
//! time (deterministic).

use core::net::SocketAddrV4;
use core::time::Duration;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use xdptcp::apps::echo::EchoServer;
use xdptcp::apps::http::{HttpConfig, HttpServer};
use xdptcp::apps::loadgen::proto::{Mode, Proto};
use xdptcp::apps::loadgen::stats::{Latency, Shared};
use xdptcp::apps::loadgen::{LoadApp, LoadConfig};
use xdptcp::io::mem::scenario::{frame_size, host_ip, host_mac, host_stack};
use xdptcp::io::mem::{FramePool, Limits, LinkConfig, Network, SimApp, StackNode};
use xdptcp::tcp::Config;

fn network(link: LinkConfig, seed: u64) -> Network {
    let wire = FramePool::new(frame_size(link.mtu), 1 << 20);
    Network::new(
        (0..2u8).map(host_mac).collect(),
        move |_, _| link.clone(),
        seed,
        wire,
    )
}

fn load(mode: Mode, port: u16, path: &str, conns: usize, rate: Option<f64>) -> LoadConfig {
    LoadConfig {
        proto: Proto {
            mode,
            size: 100,
            request: Proto::http_request(path, "t", mode == Mode::Connect),
            bytes_n: path.strip_prefix("/bytes/").and_then(|n| n.parse().ok()),
            verify: true,
            seed: 5,
        },
        target: SocketAddrV4::new(host_ip(1), port),
        conns,
        pipeline: 2,
        rate,
        warmup: Duration::from_millis(100),
        timeout: Duration::from_secs(2),
        reverse: false,
        requests_per_conn: (mode == Mode::Connect).then_some(1),
    }
}

/// Run `cfg` against `server` for one virtual second (plus warm-up).
fn run<S: SimApp>(cfg: LoadConfig, server: S, link: LinkConfig) -> Arc<Shared> {
    let mut net = network(link.clone(), 9);
    let shared = Arc::new(Shared::default());
    let app = LoadApp::new(Arc::new(cfg), shared.clone(), 0, 1);
    let mut a = StackNode::new(
        host_stack(&net, 0, Config::default(), 9, link.mtu, 16384),
        app,
    );
    let mut b = StackNode::new(
        host_stack(&net, 1, Config::default(), 9, link.mtu, 16384),
        server,
    );
    let _ = net.run(
        &mut [&mut a, &mut b],
        Limits {
            time: Duration::from_millis(1100),
            ..Limits::default()
        },
    );
    drop(a); // flushes the app's last counts
    shared
}

fn link() -> LinkConfig {
    LinkConfig {
        rate_bps: Some(1_000_000_000),
        delay: Duration::from_micros(100),
        ..LinkConfig::default()
    }
}

fn http() -> HttpServer {
    HttpServer::new(HttpConfig {
        port: 80,
        ..HttpConfig::default()
    })
}

fn errors(s: &Shared) -> u64 {
    s.errors_total()
}

#[test]
fn http_closed_loop_with_pipelining() {
    let s = run(load(Mode::Http, 80, "/bytes/3000", 8, None), http(), link());
    let req = s.requests.load(Ordering::Relaxed);
    assert!(req > 1000, "{req}");
    assert_eq!(errors(&s), 0);
    let l = Latency::of(&s.hist.lock().unwrap());
    assert!(l.p50 > 0 && l.p50 <= l.p99 && l.p99 <= l.max, "{l:?}");
}

#[test]
fn echo_and_connect_and_bulk() {
    let s = run(
        load(Mode::Echo, 7, "/", 4, None),
        EchoServer::new(7),
        link(),
    );
    assert!(s.requests.load(Ordering::Relaxed) > 1000);
    assert_eq!(errors(&s), 0);
    let s = run(load(Mode::Connect, 80, "/", 4, None), http(), link());
    assert!(s.requests.load(Ordering::Relaxed) > 100);
    assert!(s.opened.load(Ordering::Relaxed) > 100);
    assert_eq!(errors(&s), 0);
    let s = run(
        load(Mode::Bulk, 7, "/", 2, None),
        EchoServer::new(7),
        link(),
    );
    assert!(s.bytes.load(Ordering::Relaxed) > 10_000_000);
}

#[test]
fn connections_are_replaced_after_their_requests() {
    // Echo over short connections: 3 requests each (2 outstanding), then
    // a reset and a new connection.
    let cfg = LoadConfig {
        requests_per_conn: Some(3),
        warmup: Duration::ZERO,
        ..load(Mode::Echo, 7, "/", 4, None)
    };
    let s = run(cfg, EchoServer::new(7), link());
    let (req, opened) = (
        s.requests.load(Ordering::Relaxed),
        s.opened.load(Ordering::Relaxed),
    );
    assert!(opened > 100, "{opened}");
    // Every connection but the few open at the end answered exactly three.
    assert!(
        req <= 3 * opened && req + 3 * 4 >= 3 * opened,
        "{req} requests, {opened} connections"
    );
    assert_eq!(errors(&s), 0);
    // Open loop: the same, on schedule.
    let cfg = LoadConfig {
        requests_per_conn: Some(2),
        warmup: Duration::ZERO,
        ..load(Mode::Echo, 7, "/", 4, Some(1000.0))
    };
    let s = run(cfg, EchoServer::new(7), link());
    let req = s.requests.load(Ordering::Relaxed);
    assert!((950..=1150).contains(&req), "{req}");
    let opened = s.opened.load(Ordering::Relaxed);
    assert!(
        req <= 2 * opened && req + 2 * 4 >= 2 * opened,
        "{req} requests, {opened} connections"
    );
    assert_eq!(errors(&s), 0);
}

#[test]
fn open_loop_keeps_the_rate_and_corrects_for_stalls() {
    // 2,000 req/s over 4 connections for ~1 s.
    let s = run(load(Mode::Http, 80, "/", 4, Some(2000.0)), http(), link());
    let req = s.requests.load(Ordering::Relaxed);
    assert!((1700..=2100).contains(&req), "{req}");
    assert_eq!(errors(&s), 0);
    // A connection per request, opened on schedule.
    let s = run(load(Mode::Connect, 80, "/", 4, Some(500.0)), http(), link());
    let req = s.requests.load(Ordering::Relaxed);
    assert!((420..=520).contains(&req), "{req}");
    assert_eq!(errors(&s), 0);
    // A 10 ms one-way delay: every request takes at least the RTT.
    let slow = LinkConfig {
        delay: Duration::from_millis(10),
        ..link()
    };
    let s = run(load(Mode::Http, 80, "/", 4, Some(2000.0)), http(), slow);
    let l = Latency::of(&s.hist.lock().unwrap());
    // One request per connection at a time: 4 connections at 20 ms RTT
    // carry at most 200 req/s, so requests queue up behind their schedule
    // and the corrected latency grows far beyond the RTT.
    assert!(l.p50 >= 20_000, "{l:?}");
    assert!(l.max > 200_000, "{l:?}");
}

#[test]
fn refused_connections_are_counted() {
    let s = run(load(Mode::Http, 81, "/", 2, None), http(), link());
    assert_eq!(s.requests.load(Ordering::Relaxed), 0);
    assert!(s.errors[0].load(Ordering::Relaxed) > 5, "refused");
}
