//! `xdptcp http`'s server in the simulator: real TCP between two stacks, a
//! raw client sending bytes exactly as given (pipelined, in pieces,
//! malformed) and every response parsed and checked.

use core::net::SocketAddrV4;
use core::time::Duration;
use xdptcp::app::{App, CloseReason, Event};
use xdptcp::apps::http::response::pattern_byte;
use xdptcp::apps::http::{HttpConfig, HttpServer};
use xdptcp::io::mem::scenario::{frame_size, host_ip, host_mac, host_stack};
use xdptcp::io::mem::{FramePool, Limits, LinkConfig, Network, SimApp, SimDevice, StackNode};
use xdptcp::stack::{ConnId, Stack};
use xdptcp::tcp::Config;
use xdptcp::time::Instant;

const PORT: u16 = 80;

/// Sends `request` (in pieces of `piece` bytes, one piece per poll), reads
/// everything until the connection closes.
struct RawClient {
    server: SocketAddrV4,
    request: Vec<u8>,
    piece: usize,
    half_close: bool,
    id: Option<ConnId>,
    connected: bool,
    sent: usize,
    got: Vec<u8>,
    read_closed: bool,
    closed: Option<CloseReason>,
    /// Stop after this many response bytes (for huge bodies: count only).
    checked: u64,
    check_pattern_from: Option<usize>,
    pattern_bad: Option<u64>,
}

impl RawClient {
    fn new(request: &[u8]) -> Self {
        RawClient {
            server: SocketAddrV4::new(host_ip(1), PORT),
            request: request.to_vec(),
            piece: usize::MAX,
            half_close: false,
            id: None,
            connected: false,
            sent: 0,
            got: Vec::new(),
            read_closed: false,
            closed: None,
            checked: 0,
            check_pattern_from: None,
            pattern_bad: None,
        }
    }

    fn read(&mut self, stack: &mut Stack<SimDevice>, id: ConnId) {
        let got = &mut self.got;
        while stack
            .recv_with(id, &mut |d: &[u8]| {
                got.extend_from_slice(d);
                d.len()
            })
            .unwrap_or(0)
            > 0
        {}
        // Check a streamed pattern body and drop it (keeps memory small).
        if let Some(start) = self.check_pattern_from {
            if self.got.len() > start {
                for (i, b) in self.got[start..].iter().enumerate() {
                    let off = self.checked + i as u64;
                    if self.pattern_bad.is_none() && *b != pattern_byte(off) {
                        self.pattern_bad = Some(off);
                    }
                }
                self.checked += (self.got.len() - start) as u64;
                self.got.truncate(start);
            }
        }
    }

    fn write(&mut self, stack: &mut Stack<SimDevice>, id: ConnId) {
        if self.sent < self.request.len() {
            // `piece` may be usize::MAX (the whole request at once).
            let end = self.sent.saturating_add(self.piece).min(self.request.len());
            if let Ok(n) = stack.send(id, &self.request[self.sent..end]) {
                self.sent += n;
            }
        }
        if self.sent == self.request.len() && self.half_close {
            let _ = stack.shutdown(id);
        }
    }
}

impl App<SimDevice> for RawClient {
    fn on_event(&mut self, stack: &mut Stack<SimDevice>, _now: Instant, ev: Event) {
        match ev {
            Event::Connected { id } => {
                self.connected = true;
                self.write(stack, id)
            }
            Event::Writable { id } => self.write(stack, id),
            Event::Readable { id } => self.read(stack, id),
            Event::ReadClosed { id } => {
                self.read(stack, id);
                self.read_closed = true;
                let _ = stack.shutdown(id);
            }
            Event::Closed { reason, .. } => self.closed = Some(reason),
            _ => {}
        }
    }
    fn on_poll(&mut self, stack: &mut Stack<SimDevice>, now: Instant) {
        match self.id {
            None => self.id = Some(stack.connect(now, self.server).unwrap()),
            Some(id) if self.connected && self.closed.is_none() => self.write(stack, id),
            _ => {}
        }
    }
}

impl SimApp for RawClient {
    fn finished(&self, _: &Stack<SimDevice>) -> bool {
        self.closed.is_some()
    }
}

/// One parsed response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Split `bytes` into responses; `heads[i]` says response i answers HEAD.
fn parse_responses(mut bytes: &[u8], heads: &[bool]) -> Vec<Resp> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut h = [httparse::EMPTY_HEADER; 32];
        let mut r = httparse::Response::new(&mut h);
        let n = match r.parse(bytes) {
            Ok(httparse::Status::Complete(n)) => n,
            other => panic!(
                "bad response head {other:?}: {:?}",
                String::from_utf8_lossy(bytes)
            ),
        };
        let headers: Vec<(String, String)> = r
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into()))
            .collect();
        let status = r.code.unwrap();
        let resp = Resp {
            status,
            headers,
            body: Vec::new(),
        };
        let len: usize = resp.header("content-length").unwrap().parse().unwrap();
        let len = if heads.get(out.len()).copied().unwrap_or(false) {
            0
        } else {
            len
        };
        let body = bytes[n..n + len].to_vec();
        bytes = &bytes[n + len..];
        out.push(Resp { body, ..resp });
    }
    out
}

fn network(link: LinkConfig, seed: u64) -> Network {
    let wire = FramePool::new(frame_size(link.mtu), 1 << 20);
    Network::new(
        (0..2u8).map(host_mac).collect(),
        move |_, _| link.clone(),
        seed,
        wire,
    )
}

fn link() -> LinkConfig {
    LinkConfig {
        rate_bps: Some(1_000_000_000),
        delay: Duration::from_millis(1),
        ..LinkConfig::default()
    }
}

/// Run `client` against a server with `cfg` over `link`.
fn run_with(
    client: RawClient,
    cfg: HttpConfig,
    link: LinkConfig,
    server_tcp: Config,
    seed: u64,
) -> (RawClient, HttpServer) {
    let mut net = network(link.clone(), seed);
    let mut a = StackNode::new(
        host_stack(&net, 0, Config::default(), seed, link.mtu, 8192),
        client,
    );
    let mut b = StackNode::new(
        host_stack(&net, 1, server_tcp, seed, link.mtu, 8192),
        HttpServer::new(cfg),
    );
    let out = net.run(
        &mut [&mut a, &mut b],
        Limits {
            time: Duration::from_secs(120),
            ..Limits::default()
        },
    );
    assert!(out.is_finished(), "{}", out.describe());
    (a.app, b.app)
}

fn run(client: RawClient) -> (RawClient, HttpServer) {
    let cfg = HttpConfig {
        port: PORT,
        ..HttpConfig::default()
    };
    run_with(client, cfg, link(), Config::default(), 1)
}

const H: &str = "Host: t\r\n";

#[test]
fn pipelined_keep_alive_requests_are_answered_in_order() {
    let req = format!(
        "GET / HTTP/1.1\r\n{H}\r\n\
         HEAD / HTTP/1.1\r\n{H}\r\n\
         GET /bytes/100000 HTTP/1.1\r\n{H}\r\n\
         POST /echo HTTP/1.1\r\n{H}Content-Length: 11\r\n\r\nhello world\
         POST /echo HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;x=y\r\n there\r\n0\r\nT: 1\r\n\r\n\
         GET /bytes/0 HTTP/1.1\r\n{H}\r\n\
         GET /?q=1 HTTP/1.1\r\n{H}Connection: close\r\n\r\n"
    );
    // Whole, and in pieces of 1 and 7 bytes (every boundary inside heads,
    // chunk lines and bodies).
    for piece in [usize::MAX, 7, 1] {
        let mut c = RawClient::new(req.as_bytes());
        c.piece = piece;
        let (c, s) = run(c);
        let heads = [false, true, false, false, false, false, false];
        let r = parse_responses(&c.got, &heads);
        let statuses: Vec<u16> = r.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200; 7], "piece {piece}");
        assert_eq!(r[0].body, b"Hello from xdptcp\n");
        assert_eq!(r[1].body, b"");
        assert_eq!(r[1].header("content-length"), Some("18"));
        assert_eq!(r[2].body.len(), 100_000);
        assert!(r[2]
            .body
            .iter()
            .enumerate()
            .all(|(i, b)| *b == pattern_byte(i as u64)));
        assert_eq!(r[3].body, b"hello world");
        assert_eq!(r[4].body, b"hello there");
        assert_eq!(r[5].body, b"");
        assert_eq!(r[6].header("connection"), Some("close"));
        for x in &r {
            assert_eq!(x.header("server"), Some("xdptcp"));
            let date = x.header("date").unwrap();
            assert!(date.ends_with(" GMT") && date.len() == 29, "{date}");
        }
        assert!(c.read_closed, "the server closes after Connection: close");
        assert_eq!(c.closed, Some(CloseReason::Normal));
        assert_eq!(s.stats.requests, 7);
        assert_eq!(s.stats.responses_2xx, 7);
    }
}

#[test]
fn bad_requests_get_their_status_and_a_clean_close() {
    let big_head = format!("GET / HTTP/1.1\r\n{H}X-Big: {}\r\n\r\n", "a".repeat(9000));
    let many: String = (0..80).map(|i| format!("X-{i}: v\r\n")).collect();
    let cases: Vec<(String, u16)> = vec![
        ("BLAH\r\n\r\n".into(), 400),
        ("GET / HTTP/1.1\r\n\r\n".to_string(), 400), // no Host
        (format!("GET /missing HTTP/1.1\r\n{H}\r\n"), 404),
        (format!("DELETE / HTTP/1.1\r\n{H}\r\n"), 405),
        (format!("GET /echo HTTP/1.1\r\n{H}\r\n"), 405),
        (
            format!("POST /echo HTTP/1.1\r\n{H}Content-Length: 999999999\r\n\r\n"),
            413,
        ),
        (big_head, 431),
        (format!("GET / HTTP/1.1\r\n{H}{many}\r\n"), 431),
        (
            format!("POST /echo HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\n\r\nzz\r\n"),
            400,
        ),
        (
            format!(
                "POST /echo HTTP/1.1\r\n{H}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            ),
            400,
        ),
        (format!("GET /bytes/99999999999 HTTP/1.1\r\n{H}\r\n"), 400),
    ];
    for (req, want) in cases {
        // A good request before the bad one is answered first.
        let full = format!("GET / HTTP/1.1\r\n{H}\r\n{req}GET / HTTP/1.1\r\n{H}\r\n");
        let (c, s) = run(RawClient::new(full.as_bytes()));
        let r = parse_responses(&c.got, &[]);
        let statuses: Vec<u16> = r.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [200, want], "{req:?}");
        assert_eq!(r[1].header("connection"), Some("close"));
        assert!(c.read_closed, "{req:?}");
        assert_eq!(c.closed, Some(CloseReason::Normal), "{req:?}");
        assert_eq!(s.stats.responses_4xx, 1);
    }
}

#[test]
fn incomplete_request_then_fin_is_a_400() {
    let mut c = RawClient::new(format!("GET / HTTP/1.1\r\n{H}").as_bytes());
    c.half_close = true;
    let (c, s) = run(c);
    let r = parse_responses(&c.got, &[]);
    assert_eq!(
        r.len(),
        1,
        "{:?} {:?} {:?}",
        s.stats,
        c.closed,
        c.read_closed
    );
    assert_eq!(r[0].status, 400);
    // A complete request followed by FIN is answered, then closed.
    let mut c = RawClient::new(format!("GET / HTTP/1.1\r\n{H}\r\n").as_bytes());
    c.half_close = true;
    let (c, _) = run(c);
    let r = parse_responses(&c.got, &[]);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].status, 200);
    assert_eq!(c.closed, Some(CloseReason::Normal));
}

#[test]
fn a_silent_client_is_timed_out() {
    let cfg = HttpConfig {
        port: PORT,
        idle_timeout: Duration::from_secs(2),
        ..HttpConfig::default()
    };
    let (c, s) = run_with(
        RawClient::new(b""),
        cfg.clone(),
        link(),
        Config::default(),
        3,
    );
    assert!(c.got.is_empty());
    assert!(c.read_closed);
    assert_eq!(s.stats.idle_timeouts, 1);
    // Half a request head: a 408, then the close.
    let (c, s) = run_with(
        RawClient::new(b"GET / HT"),
        cfg,
        link(),
        Config::default(),
        3,
    );
    let r = parse_responses(&c.got, &[]);
    assert_eq!(r[0].status, 408);
    assert_eq!(s.stats.idle_timeouts, 1);
}

#[test]
fn large_bodies_stream_through_small_buffers_and_loss() {
    let n = 5_000_000u64;
    let req = format!("GET /bytes/{n} HTTP/1.1\r\n{H}Connection: close\r\n\r\n");
    let mut c = RawClient::new(req.as_bytes());
    // Everything after the head is checked as it arrives, then dropped.
    let lossy = LinkConfig {
        loss: 0.01,
        reorder: 0.01,
        ..link()
    };
    let small = Config {
        snd_buf: 16 * 1024,
        ..Config::default()
    };
    c.check_pattern_from = Some(usize::MAX);
    let cfg = HttpConfig {
        port: PORT,
        ..HttpConfig::default()
    };
    // First find the head length with a tiny request of the same shape.
    let head_len = {
        let (c0, _) = run(RawClient::new(
            format!("GET /bytes/0 HTTP/1.1\r\n{H}Connection: close\r\n\r\n").as_bytes(),
        ));
        c0.got.len() + n.to_string().len() - 1
    };
    c.check_pattern_from = Some(head_len);
    let (c, s) = run_with(c, cfg, lossy, small, 7);
    assert_eq!(c.checked, n);
    assert_eq!(c.pattern_bad, None);
    let r = parse_responses(&c.got, &[true]);
    assert_eq!(r[0].status, 200);
    assert_eq!(r[0].header("content-length"), Some(n.to_string().as_str()));
    assert_eq!(c.closed, Some(CloseReason::Normal));
    assert_eq!(s.stats.bytes_out, head_len as u64 + n);
}

#[test]
fn big_echo_bodies_round_trip() {
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut req = format!(
        "POST /echo HTTP/1.1\r\n{H}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    // Chunked, in uneven chunks.
    req.extend_from_slice(
        format!(
            "POST /echo HTTP/1.1\r\n{H}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .as_bytes(),
    );
    for part in body.chunks(7777) {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let (c, _) = run(RawClient::new(&req));
    let r = parse_responses(&c.got, &[]);
    assert_eq!(r.len(), 2);
    assert_eq!(r[0].body, body);
    assert_eq!(r[1].body, body);
}
