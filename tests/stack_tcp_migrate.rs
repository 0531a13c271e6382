//! Issue 6 item 4: a plain TCP connection moves to the worker where its
//! segments arrive. Two server stacks stand for two workers of one
//! interface (same MAC and address), each with its own echo server; the
//! test plays the runtime: a segment is run by the stack that holds its
//! flow, and one that arrived on the other worker (a stray) may then move
//! the connection there with its app state (`app_migrate`). A client
//! stack sends a pattern and checks the echo byte for byte while its
//! segments start arriving on the other worker (Linux re-hashed it).
//! Issue 8: an MPTCP connection (its first subflow, with the connection
//! level, its token and the app's state) moves the same way.

mod common;
use common::*;
use std::collections::HashMap;
use std::time::Duration;
use xdptcp::app::{dispatch, App, Event};
use xdptcp::app_migrate::{move_in, move_out};
use xdptcp::apps::echo::EchoServer;
use xdptcp::stack::{ConnId, RemoteMsg, Stack};
use xdptcp::tcp::FourTuple;
use xdptcp::time::Instant;
use xdptcp::wire::EtherType;

const TOTAL: usize = 256 * 1024;

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(131) ^ (i >> 11)) as u8
}

/// An echo server that cannot move its connections (`App::export`'s
/// default): they must stay where they are and keep working.
struct Stuck(EchoServer);

impl App<TestDevice> for Stuck {
    fn on_event(&mut self, stack: &mut Stack<TestDevice>, now: Instant, ev: Event) {
        self.0.on_event(stack, now, ev);
    }
    fn on_poll(&mut self, stack: &mut Stack<TestDevice>, now: Instant) {
        self.0.on_poll(stack, now);
    }
}

/// An echo server that gives its connections away but, if `.1`, cannot
/// take one in (`App::import` refuses, as an app whose table is full
/// would): a move to it must come back, whole, and keep working where it
/// was.
struct Refuses(EchoServer, bool);

impl App<TestDevice> for Refuses {
    fn on_event(&mut self, stack: &mut Stack<TestDevice>, now: Instant, ev: Event) {
        self.0.on_event(stack, now, ev);
    }
    fn on_poll(&mut self, stack: &mut Stack<TestDevice>, now: Instant) {
        self.0.on_poll(stack, now);
    }
    fn export(&mut self, id: ConnId) -> Option<Box<dyn std::any::Any + Send>> {
        App::<TestDevice>::export(&mut self.0, id)
    }
    fn import(
        &mut self,
        stack: &mut Stack<TestDevice>,
        now: Instant,
        id: ConnId,
        state: Box<dyn std::any::Any + Send>,
    ) -> Result<(), Box<dyn std::any::Any + Send>> {
        if self.1 {
            return Err(state);
        }
        self.0.import(stack, now, id, state)
    }
}

/// What a run of `N` workers did.
struct Run<const N: usize> {
    /// Segments run by the worker they did not arrive on (hand-offs).
    handoffs_before: usize,
    handoffs_after: usize,
    moved: Vec<Instant>,
    /// Moves refused where they arrived, installed back where they left.
    returned: usize,
    /// Joined subflows that moved (`Setup::MptcpJoined`).
    subflows_moved: usize,
    /// REMOVE_ADDRs the client sent (`remove_at_move`).
    removes_sent: usize,
    /// The servers' answers to the join SYN from `JOIN_PORT`: (SYN/ACK
    /// with MP_JOIN, RST).
    join_answers: (usize, usize),
    /// `MptcpJoined`: the servers' frames still out of their pool once
    /// the client closed and every server connection went.
    frames_left: usize,
    /// `MptcpJoined`: the servers' connections, tokens and subflows of
    /// connections in another worker when the echo completed (before the
    /// client closed).
    conns: (usize, usize),
    tokens: (usize, usize),
    remote_here: (usize, usize),
    /// `MptcpJoined`: the `Back` and `Chunks` messages the workers sent.
    backs: usize,
    chunk_msgs: usize,
    /// `MptcpJoined`: `Back` messages with chunks that found their
    /// subflow gone (moved on), from each worker.
    untaken: [usize; N],
    servers: [Stack<TestDevice>; N],
    client: Stack<TestDevice>,
}

/// How the stacks of a run are set up.
#[derive(Clone, Copy, PartialEq)]
enum Setup {
    Tcp,
    /// MPTCP on the client and the servers, each server drawing keys
    /// from its own stream (as a runtime's workers do).
    Mptcp,
    /// MPTCP, both servers drawing the same keys, and worker 1 holding
    /// another client's connection first: the token the moving
    /// connection holds is held there already.
    MptcpTokenClash,
    /// MPTCP as `Mptcp`, the servers being workers that exchange messages
    /// (`mptcp_remote`, the test carrying them and keeping the token
    /// directory), and the client joining a second subflow from its
    /// second address once established; that subflow's segments arrive
    /// on worker 0 throughout, or (`join_switches`) switch with the first
    /// subflow's.
    MptcpJoined {
        join_switches: bool,
        /// In the round the connection leaves worker 0, the client's
        /// REMOVE_ADDR of its joined subflow's address comes on that
        /// subflow, and a join SYN for the connection's token from
        /// [`JOIN_PORT`] arrives on worker 0.
        remove_at_move: bool,
        /// Once half the echo is back, the joined subflow's path goes
        /// dead both ways (its frames dropped): the subflow stalls.
        cut_join: bool,
        /// The joined subflow's segments arrive on worker 0 until half
        /// the echo is back, then on this worker: it moves there after
        /// its connection did (to worker 1), from a worker that ran it
        /// for the connection.
        join_late: Option<usize>,
    },
}

/// The port of the join SYN sent as the connection moves.
const JOIN_PORT: u16 = 6000;

/// The client's second address (its joined subflow's).
const IP_A2: std::net::Ipv4Addr = std::net::Ipv4Addr::new(198, 18, 0, 3);

/// A connection on its way between workers.
type Move = xdptcp::app_migrate::ConnMove<<TestDevice as xdptcp::io::Device>::Frame>;

/// Connection `m`, which left worker `owner`, arrives at worker `to`:
/// installed there, its token with it (the runtime's
/// `TokenDirectory::transfer`), or refused and installed again where it
/// came from.
fn settle<A: App<TestDevice>, const N: usize>(
    servers: &mut [Stack<TestDevice>; N],
    apps: &mut [A; N],
    now: Instant,
    (m, owner, to): (Move, usize, usize),
    tokens: &std::cell::RefCell<HashMap<u32, usize>>,
    run: &mut Run<N>,
) {
    let token = m.token();
    match move_in(&mut servers[to], &mut apps[to], now, m) {
        Ok(_) => {
            run.moved.push(now);
            if let Some(t) = token {
                tokens.borrow_mut().insert(t, to);
            }
        }
        Err(m) => {
            let back = move_in(&mut servers[owner], &mut apps[owner], now, m);
            assert!(back.is_ok(), "not back");
            run.returned += 1;
        }
    }
}

/// What the runtime does for workers' MPTCP messages, once a pass: each
/// worker's new tokens into the directory, its data for subflows other
/// workers run, and its messages carried to their workers, in order.
fn carry_messages<const N: usize>(
    servers: &mut [Stack<TestDevice>; N],
    now: Instant,
    tokens: &std::cell::RefCell<HashMap<u32, usize>>,
    run: &mut Run<N>,
) {
    let mut msgs = Vec::new();
    for (w, s) in servers.iter_mut().enumerate() {
        s.drain_token_log(|t, drawn| {
            let mut d = tokens.borrow_mut();
            if drawn {
                d.insert(t, w);
            } else if d.get(&t) == Some(&w) {
                d.remove(&t);
            }
        });
        xdptcp::stack::mptcp_remote_localize(std::slice::from_mut(s));
        xdptcp::stack::mptcp_remote_schedule(std::slice::from_mut(s));
        s.mptcp_remote_unpark(now);
        s.mptcp_remote_drain(|to, m| msgs.push((w, to, m)));
    }
    for (from, to, m) in msgs {
        match &m {
            RemoteMsg::Back { untaken, .. } => {
                run.backs += 1;
                run.untaken[from] += usize::from(*untaken);
            }
            RemoteMsg::Chunks { .. } => run.chunk_msgs += 1,
            _ => {}
        }
        xdptcp::stack::mptcp_remote_input(std::slice::from_mut(&mut servers[to]), now, from, m);
    }
    for s in servers.iter_mut() {
        s.poll(now);
    }
}

/// A pure ACK from the client after its segment `seg` (`len` bytes of
/// payload) on the joined subflow, carrying REMOVE_ADDR `id` (RFC 8684
/// §3.4.2): the peer withdrew that address.
fn remove_addr_frame(seg: &xdptcp::wire::TcpRepr, len: usize, id: u8) -> Vec<u8> {
    use xdptcp::wire::mptcp::{MptcpOption, RemoveAddr};
    let mut r = RemoveAddr {
        count: 1,
        ids: [0; 37],
    };
    r.ids[0] = id;
    let mut b = [0u8; 40];
    let n = MptcpOption::RemoveAddr(r).emit(&mut b);
    let mut out = *seg;
    out.seq = seg.seq + (len + usize::from(seg.flags.syn() || seg.flags.fin()));
    out.flags = xdptcp::wire::TcpFlags::ACK;
    out.options.mptcp = xdptcp::wire::MptcpRaw::from_slice(&b[..n]).expect("fits");
    out.options.sack = Default::default();
    let t = tcp_segment(IP_A2, IP_B, &out, &[]);
    eth(
        MAC_B,
        MAC_A,
        EtherType::Ipv4,
        &ipv4(IP_A2, IP_B, xdptcp::wire::IpProtocol::Tcp, &t),
    )
}

/// A join SYN (RFC 8684 §3.2) for `token` from the client's second
/// address, port [`JOIN_PORT`].
fn join_syn_frame(token: u32) -> Vec<u8> {
    use xdptcp::wire::mptcp::{MpJoin, MptcpOption};
    let j = MptcpOption::MpJoin(MpJoin::Syn {
        backup: false,
        addr_id: 9,
        token,
        nonce: 77,
    });
    let mut b = [0u8; 40];
    let n = j.emit(&mut b);
    let seg = xdptcp::wire::TcpRepr {
        src_port: JOIN_PORT,
        dst_port: 80,
        seq: xdptcp::wire::SeqNumber(5000),
        flags: xdptcp::wire::TcpFlags::SYN,
        window: 65535,
        options: xdptcp::wire::TcpOptions {
            mss: Some(1460),
            mptcp: xdptcp::wire::MptcpRaw::from_slice(&b[..n]).expect("fits"),
            ..Default::default()
        },
        ..Default::default()
    };
    let t = tcp_segment(IP_A2, IP_B, &seg, &[]);
    eth(
        MAC_B,
        MAC_A,
        EtherType::Ipv4,
        &ipv4(IP_A2, IP_B, xdptcp::wire::IpProtocol::Tcp, &t),
    )
}

/// `v[a]` and `v[b]` (`a != b`), both mutable.
fn two<T>(v: &mut [T], a: usize, b: usize) -> (&mut T, &mut T) {
    assert_ne!(a, b);
    if a < b {
        let (l, r) = v.split_at_mut(b);
        (&mut l[a], &mut r[0])
    } else {
        let (l, r) = v.split_at_mut(a);
        (&mut r[0], &mut l[b])
    }
}

/// The flow of TCP frame `f` as its receiver sees it.
fn rx_tuple(f: &[u8]) -> Option<FourTuple> {
    let p = parse(f);
    p.ip?;
    if p.eth.ethertype != EtherType::Ipv4 {
        return None;
    }
    let (_, ip, seg, _) = parse_tcp(f);
    Some(FourTuple {
        local: sa(ip.dst, seg.dst_port),
        remote: sa(ip.src, seg.src_port),
    })
}

/// Echo `TOTAL` bytes through workers running `apps`; the client's
/// segments arrive on worker 0 until it has its first `switch` bytes
/// back, then on worker 1.
fn run<A: App<TestDevice>>(apps: [A; 2], switch: usize) -> Run<2> {
    run_with(apps, switch, Setup::Tcp, false)
}

/// [`run`] with stacks set up as `setup` says; `occupied`: worker 1
/// holds a connection of the same flow from the start (it saw the SYN
/// too; what it sends is lost), so that the connection cannot move there.
fn run_with<A: App<TestDevice>, const N: usize>(
    mut apps: [A; N],
    switch: usize,
    setup: Setup,
    occupied: bool,
) -> Run<N> {
    let mptcp = setup != Setup::Tcp;
    let joined = matches!(setup, Setup::MptcpJoined { .. });
    let mut cfg = config(MAC_B, IP_B);
    // Short writes: the echo server keeps bytes of its own (app state).
    cfg.tcp.snd_buf = 16 * 1024;
    cfg.tcp.mptcp = mptcp;
    if joined {
        cfg.tcp.mptcp_max_subflows = 2;
        // The echo goes on both subflows, wherever each runs.
        cfg.tcp.mptcp_scheduler = xdptcp::mptcp::sched::SchedKind::RoundRobin;
    }
    // `MptcpJoined`: the workers share one pool (one UMEM in the
    // runtime): the connection lends its frames to subflows in either.
    let live = std::rc::Rc::new(std::cell::Cell::new(0));
    let dev = || match joined {
        true => TestDevice::shared(4096, &live, 1),
        false => TestDevice::new(4096),
    };
    let mut servers: [_; N] =
        core::array::from_fn(|_| Stack::new(cfg.clone(), dev(), Instant::ZERO));
    // The token directory (`runtime::tokens`), as the test keeps it.
    let tokens = std::rc::Rc::new(std::cell::RefCell::new(HashMap::<u32, usize>::new()));
    for (w, s) in servers.iter_mut().enumerate() {
        s.listen(80).unwrap();
        if setup == Setup::Mptcp || joined {
            s.mptcp_key_stream(w as u64 + 1);
        }
        if joined {
            s.log_tokens();
            let tokens = tokens.clone();
            s.mptcp_set_remote(w, 0, Box::new(move |t| tokens.borrow().get(&t).copied()));
        }
    }
    let mut ccfg = config(MAC_A, IP_A);
    ccfg.tcp.mptcp = mptcp;
    if joined {
        ccfg.addrs.push(xdptcp::stack::Ipv4Cidr {
            addr: IP_A2,
            prefix: 24,
        });
        ccfg.tcp.mptcp_max_subflows = 1;
    }
    let mut now = Instant::ZERO;
    if setup == Setup::MptcpTokenClash {
        // Another client's connection on worker 1 draws the first key of
        // the stream: the one worker 0 draws next.
        let mut other = config(
            xdptcp::wire::MacAddr([2, 0, 0, 0, 0, 3]),
            std::net::Ipv4Addr::new(198, 18, 0, 3),
        );
        other.tcp.mptcp = true;
        let mut o = Stack::new(other, TestDevice::new(4096), Instant::ZERO);
        o.connect(now, sa(IP_B, 80)).unwrap();
        for _ in 0..50 {
            now += Duration::from_micros(100);
            for f in o.device_mut().take_tx() {
                rx(&mut servers[1], now, &f);
            }
            for f in servers[1].device_mut().take_tx() {
                rx(&mut o, now, &f);
            }
            dispatch(&mut servers[1], &mut apps[1], now);
            servers[1].poll(now);
            o.poll(now);
        }
        assert_eq!(servers[1].counters().mptcp_established, 1);
        assert_eq!(servers[1].mptcp_tokens(), 1);
    }
    let mut c = Stack::new(ccfg, TestDevice::new(4096), Instant::ZERO);
    let cid: ConnId = c.connect(now, sa(IP_B, 80)).unwrap();
    let (mut sent, mut got) = (0usize, Vec::with_capacity(TOTAL));
    let mut run = Run {
        handoffs_before: 0,
        handoffs_after: 0,
        moved: Vec::new(),
        returned: 0,
        subflows_moved: 0,
        removes_sent: 0,
        join_answers: (0, 0),
        frames_left: 0,
        conns: (0, 0),
        tokens: (0, 0),
        remote_here: (0, 0),
        backs: 0,
        chunk_msgs: 0,
        untaken: [0; N],
        servers: core::array::from_fn(|_| {
            Stack::new(cfg.clone(), TestDevice::new(1), Instant::ZERO)
        }),
        client: Stack::new(config(MAC_A, IP_A), TestDevice::new(1), Instant::ZERO),
    };
    let mut buf = vec![0u8; 64 * 1024];
    // `MptcpJoined`: a connection moving arrives a round later (as through
    // the runtime's rings), the frames of its flow held meanwhile.
    let mut transit = None;
    let mut held = Vec::new();
    let mut closing = false;
    let cut_join = matches!(setup, Setup::MptcpJoined { cut_join: true, .. });
    let remove_at_move = matches!(
        setup,
        Setup::MptcpJoined {
            remove_at_move: true,
            ..
        }
    );
    // The client's joined subflow: its Address ID (from its MP_JOIN SYN)
    // and its last segment.
    let (mut join_id, mut join_last) = (None, None);
    // The servers' key, from their MP_CAPABLE SYN/ACK.
    let mut server_key = None;
    for _round in 0..100_000 {
        let mut to_server = c.device_mut().take_tx();
        if let Some(t) = transit.take() {
            settle(&mut servers, &mut apps, now, t, &tokens, &mut run);
            to_server.splice(0..0, held.drain(..));
        }
        let mut to_client = Vec::new();
        for (w, s) in servers.iter_mut().enumerate() {
            let tx = s.device_mut().take_tx();
            if !(occupied && w == 1) {
                to_client.extend(tx);
            }
        }
        if !to_server.is_empty() || !to_client.is_empty() {
            now += Duration::from_micros(100);
        }
        let switched = usize::from(got.len() >= switch);
        let cut = cut_join && got.len() >= TOTAL / 2;
        let on_join = |f: &Vec<u8>| {
            rx_tuple(f).is_some_and(|t| *t.remote.ip() == IP_A2 || *t.local.ip() == IP_A2)
        };
        if cut {
            to_server.retain(|f| !on_join(f));
            to_client.retain(|f| !on_join(f));
        }
        for f in &to_server {
            let Some(tuple) = rx_tuple(f) else {
                // ARP: every worker sees it.
                for s in servers.iter_mut() {
                    rx(s, now, f);
                }
                continue;
            };
            let at = match setup {
                Setup::MptcpJoined {
                    join_late: Some(w), ..
                } if *tuple.remote.ip() == IP_A2 => match got.len() >= TOTAL / 2 {
                    true => w,
                    false => 0,
                },
                Setup::MptcpJoined {
                    join_switches: false,
                    ..
                } if *tuple.remote.ip() == IP_A2 => 0,
                _ => switched,
            };
            if *tuple.remote.ip() == IP_A2 {
                let (_, _, seg, payload) = parse_tcp(f);
                for o in seg.options.mptcp.options() {
                    if let Ok(xdptcp::wire::mptcp::MptcpOption::MpJoin(
                        xdptcp::wire::mptcp::MpJoin::Syn { addr_id, .. },
                    )) = xdptcp::wire::mptcp::MptcpOption::parse(o)
                    {
                        join_id = Some(addr_id);
                    }
                }
                join_last = Some((seg, payload.len()));
            }
            if transit
                .as_ref()
                .is_some_and(|t: &(Move, usize, usize)| t.0.tuple() == tuple)
            {
                held.push(f.clone());
                continue;
            }
            let owner = (0..N).find(|&w| servers[w].has_conn(&tuple)).unwrap_or(at);
            if occupied && !servers[1].has_conn(&tuple) {
                rx(&mut servers[1], now, f);
                assert!(servers[1].has_conn(&tuple), "worker 1 holds the flow");
            }
            rx(&mut servers[owner], now, f);
            if owner == at {
                continue;
            }
            if switched == 0 {
                run.handoffs_before += 1;
            } else {
                run.handoffs_after += 1;
            }
            // A stray: the owner may move the flow to where it arrived.
            let (from, to) = two(&mut servers, owner, at);
            let (app_from, app_to) = two(&mut apps, owner, at);
            // A joined subflow moves by itself (`mptcp_migrate`).
            if let Some(m) = from.mptcp_stray(now, &tuple, false).filter(|_| joined) {
                let m = to.mptcp_migrate_try_in(now, m, false);
                assert!(m.is_ok(), "the subflow was refused");
                run.subflows_moved += 1;
            } else if let Some(m) = move_out(from, app_from, now, &tuple, false) {
                assert_eq!(m.tuple(), tuple);
                assert_eq!(m.token().is_some(), mptcp);
                // As the runtime does: refused there, it comes back here
                // whole (app state and MPTCP token included) and is
                // installed again.
                if joined {
                    transit = Some((m, owner, at));
                    if let (true, Some(id), Some((seg, len))) = (remove_at_move, join_id, join_last)
                    {
                        // Its REMOVE_ADDR on the joined subflow, now.
                        let f = remove_addr_frame(&seg, len, id);
                        let t = rx_tuple(&f).expect("a TCP frame");
                        let w = (0..N).find(|&w| servers[w].has_conn(&t)).unwrap_or(0);
                        rx(&mut servers[w], now, &f);
                        run.removes_sent += 1;
                        // A join for the leaving connection's token.
                        let k: u64 = server_key.expect("the servers' key");
                        let token = xdptcp::mptcp::crypto::Key(k).token();
                        rx(&mut servers[0], now, &join_syn_frame(token));
                    }
                    continue;
                }
                match move_in(to, app_to, now, m) {
                    Ok(_) => run.moved.push(now),
                    Err(m) => {
                        assert!(move_in(from, app_from, now, m).is_ok(), "not back");
                        run.returned += 1;
                    }
                }
            }
        }
        for f in &to_client {
            if remove_at_move && rx_tuple(f).is_some() {
                let (_, _, seg, _) = parse_tcp(f);
                for o in seg.options.mptcp.options() {
                    if let Ok(xdptcp::wire::mptcp::MptcpOption::MpCapable(m)) =
                        xdptcp::wire::mptcp::MptcpOption::parse(o)
                    {
                        server_key = server_key.or(m.sender_key);
                    }
                }
                if seg.dst_port == JOIN_PORT {
                    if seg.flags.rst() {
                        run.join_answers.1 += 1;
                    } else if seg.flags.syn() && !seg.options.mptcp.as_slice().is_empty() {
                        run.join_answers.0 += 1;
                    }
                }
            }
            rx(&mut c, now, f);
        }
        for (s, app) in servers.iter_mut().zip(apps.iter_mut()) {
            dispatch(s, app, now);
            s.poll(now);
            dispatch(s, app, now);
        }
        if joined {
            carry_messages(&mut servers, now, &tokens, &mut run);
        }
        while c.next_event().is_some() {}
        while sent < TOTAL {
            let end = (sent + 8192).min(TOTAL);
            let chunk: Vec<u8> = (sent..end).map(pattern).collect();
            match c.send(cid, &chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => sent += n,
            }
        }
        while let Ok(n) = c.recv(cid, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        c.poll(now);
        if got.len() == TOTAL && !joined {
            break;
        }
        if got.len() == TOTAL {
            // `MptcpJoined`: the client closes; done when the servers
            // hold no connection.
            if !closing {
                closing = true;
                let (s0, s1) = (&servers[0], &servers[1]);
                run.conns = (s0.conn_count(), s1.conn_count());
                run.tokens = (s0.mptcp_tokens(), s1.mptcp_tokens());
                run.remote_here = (
                    s0.mptcp_remote_subflows_here(),
                    s1.mptcp_remote_subflows_here(),
                );
                let _ = c.close(cid);
            }
            if servers.iter().all(|s| s.conn_count() == 0) {
                break;
            }
        }
        if to_server.is_empty() && to_client.is_empty() {
            // Nothing in flight: let the timers run.
            now += Duration::from_millis(10);
            c.poll(now);
        }
    }
    assert_eq!(got.len(), TOTAL, "echo incomplete");
    if joined {
        assert!(
            servers.iter().all(|s| s.conn_count() == 0),
            "the servers' connections closed"
        );
        run.frames_left = live.get();
    }
    assert!(
        got.iter().enumerate().all(|(i, b)| *b == pattern(i)),
        "echo garbled"
    );
    run.servers = servers;
    run.client = c;
    run
}

#[test]
fn a_plain_connection_whose_segments_arrive_on_another_worker_moves_there() {
    let apps = [EchoServer::new(80), EchoServer::new(80)];
    let r = run(apps, TOTAL / 4);
    let [s0, s1] = &r.servers;
    // It moved once, after `STRAYS` strays, with its app state: the
    // echo stayed byte-exact (checked in `run`) across the move.
    assert_eq!(r.moved.len(), 1, "moves at {:?}", r.moved);
    assert_eq!(r.handoffs_before, 0);
    assert_eq!(r.handoffs_after, usize::from(xdptcp::stack::STRAYS));
    assert_eq!(s0.counters().tcp_conns_migrated_out, 1);
    assert_eq!(s1.counters().tcp_conns_migrated_in, 1);
    assert_eq!(s0.conn_count(), 0, "it left worker 0");
    assert_eq!(s1.conn_count(), 1, "worker 1 runs it");
}

#[test]
fn a_connection_its_app_cannot_move_stays_and_keeps_working() {
    // `App::export` refuses: the stack must not lose the connection. It
    // stays on worker 0 and every later segment is handed over there.
    let apps = [Stuck(EchoServer::new(80)), Stuck(EchoServer::new(80))];
    let r = run(apps, TOTAL / 4);
    let [s0, s1] = &r.servers;
    assert!(r.moved.is_empty());
    assert!(r.handoffs_after > usize::from(xdptcp::stack::STRAYS));
    assert_eq!(s0.counters().tcp_conns_migrated_out, 0);
    assert_eq!(s0.conn_count(), 1);
    assert_eq!(s1.conn_count(), 0);
}

#[test]
fn a_move_the_other_worker_refuses_comes_back_and_keeps_working() {
    // Issue 8: worker 1's app cannot take the connection in. The move
    // must not lose it (it used to be aborted there): it goes back to
    // worker 0 with its app state, is asked again every `STRAYS` strays
    // after `STAY`, and the echo stays byte-exact (checked in `run`).
    let apps = [
        Refuses(EchoServer::new(80), false),
        Refuses(EchoServer::new(80), true),
    ];
    let r = run(apps, TOTAL / 4);
    let [s0, s1] = &r.servers;
    assert!(r.moved.is_empty(), "moves at {:?}", r.moved);
    assert!(r.returned >= 1, "never offered");
    assert_eq!(s1.counters().tcp_migrations_dropped, r.returned as u64);
    assert_eq!(s1.counters().tcp_conns_migrated_in, 0);
    assert_eq!(s0.counters().tcp_conns_migrated_in, r.returned as u64);
    assert_eq!(s0.conn_count(), 1, "worker 0 runs it again");
    assert_eq!(s1.conn_count(), 0, "nothing left on worker 1");
}

#[test]
fn a_move_onto_a_flow_already_there_comes_back_and_keeps_working() {
    // The other way to refuse: worker 1 holds a connection of that flow
    // already (its flow directory entry raced a stale one). The move is
    // given back whole and the connection keeps working on worker 0.
    let apps = [EchoServer::new(80), EchoServer::new(80)];
    let r = run_with(apps, TOTAL / 4, Setup::Tcp, true);
    let [s0, s1] = &r.servers;
    assert!(r.moved.is_empty(), "moves at {:?}", r.moved);
    assert!(r.returned >= 1, "never offered");
    assert_eq!(s1.counters().tcp_migrations_dropped, r.returned as u64);
    assert_eq!(s0.conn_count(), 1, "worker 0 runs it again");
}

#[test]
fn load_generator_connections_move_with_their_requests_outstanding() {
    // The load generator on two workers of one client host; the server's
    // answers land on the worker that opened each connection, until, at
    // 200 ms, all land on worker 1's queue (as Linux's transmit hash may
    // put them): after `STRAYS` strays each connection worker 0 opened
    // moves to worker 1, with its slot and the start times of its
    // requests outstanding (each answer is verified and completes the
    // oldest request outstanding, so a lost record is an error).
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use xdptcp::apps::loadgen::proto::{Mode, Proto};
    use xdptcp::apps::loadgen::stats::Shared;
    use xdptcp::apps::loadgen::{LoadApp, LoadConfig};
    let cfg = Arc::new(LoadConfig {
        proto: Proto {
            mode: Mode::Echo,
            size: 3000,
            request: Vec::new(),
            bytes_n: None,
            verify: true,
            seed: 5,
        },
        target: sa(IP_B, 80),
        conns: 4,
        pipeline: 2,
        rate: None,
        warmup: Duration::ZERO,
        timeout: Duration::from_secs(2),
        reverse: false,
        requests_per_conn: None,
    });
    let shared = Arc::new(Shared::default());
    let mut apps = [0, 1].map(|w| LoadApp::new(cfg.clone(), shared.clone(), w, 2));
    let mut clients =
        [0, 1].map(|_| Stack::new(config(MAC_A, IP_A), TestDevice::new(4096), Instant::ZERO));
    let mut server = Stack::new(config(MAC_B, IP_B), TestDevice::new(4096), Instant::ZERO);
    let mut echo = EchoServer::new(80);
    echo.listen(&mut server);
    let mut now = Instant::ZERO;
    let mut handoffs = 0;
    let switch = Instant::ZERO + Duration::from_millis(200);
    let end = Instant::ZERO + Duration::from_millis(500);
    while now < end {
        let mut to_server = Vec::new();
        for c in clients.iter_mut() {
            to_server.extend(c.device_mut().take_tx());
        }
        let to_client = server.device_mut().take_tx();
        now += if to_server.is_empty() && to_client.is_empty() {
            Duration::from_millis(1)
        } else {
            Duration::from_micros(100)
        };
        for f in &to_server {
            rx(&mut server, now, f);
        }
        for f in &to_client {
            let Some(tuple) = rx_tuple(f) else {
                for c in clients.iter_mut() {
                    rx(c, now, f);
                }
                continue;
            };
            let owner = usize::from(!clients[0].has_conn(&tuple));
            if now < switch || owner == 1 {
                rx(&mut clients[owner], now, f);
                continue;
            }
            handoffs += 1;
            let syn_ack = parse_tcp(f).2.flags.contains(xdptcp::wire::TcpFlags::SYN);
            rx(&mut clients[0], now, f);
            let [c0, c1] = &mut clients;
            let [a0, a1] = &mut apps;
            if let Some(m) = move_out(c0, a0, now, &tuple, syn_ack) {
                assert!(move_in(c1, a1, now, m).is_ok());
            }
        }
        dispatch(&mut server, &mut echo, now);
        server.poll(now);
        for (c, app) in clients.iter_mut().zip(apps.iter_mut()) {
            dispatch(c, app, now);
            c.poll(now);
            dispatch(c, app, now);
        }
    }
    drop(apps);
    let errors = shared.errors_total();
    let requests = shared.requests.load(Ordering::Relaxed);
    assert_eq!(errors, 0, "errors {:?}", shared.errors);
    assert!(requests > 100, "{requests} requests");
    // Worker 0 opened two of the four; both moved, each after `STRAYS`
    // segments handed over; worker 1 runs all four.
    let moved = clients[0].counters().tcp_conns_migrated_out;
    assert_eq!(moved, 2);
    assert_eq!(handoffs, 2 * usize::from(xdptcp::stack::STRAYS));
    assert_eq!(clients[1].counters().tcp_conns_migrated_in, 2);
    assert_eq!(clients[0].conn_count(), 0);
    assert_eq!(clients[1].conn_count(), 4);
    assert_eq!(shared.connections.load(Ordering::Relaxed), 4);
    assert_eq!(shared.opened.load(Ordering::Relaxed), 4);
}

/// Requests of the HTTP test, in order on one keep-alive connection:
/// (request head, request body, expected response body).
fn http_requests() -> Vec<(String, Vec<u8>, Vec<u8>)> {
    use xdptcp::apps::http::response::pattern_byte;
    let mut v = Vec::new();
    for i in 0..24usize {
        if i == HTTP_POST {
            let body: Vec<u8> = (0..HTTP_POST_LEN).map(pattern).collect();
            let head = format!(
                "POST /echo HTTP/1.1\r\nHost: b\r\nContent-Length: {HTTP_POST_LEN}\r\n\r\n"
            );
            v.push((head, body.clone(), body));
            continue;
        }
        let n = 100 + i * 397;
        let head = format!("GET /bytes/{n} HTTP/1.1\r\nHost: b\r\n\r\n");
        v.push((head, Vec::new(), (0..n as u64).map(pattern_byte).collect()));
    }
    v
}

/// The request whose body is sent slowly, across a move.
const HTTP_POST: usize = 16;
const HTTP_POST_LEN: usize = 200_000;

/// A complete response at the start of `got`: (its body, its length).
fn http_response(got: &[u8]) -> Option<(Vec<u8>, usize)> {
    let end = got.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let head = std::str::from_utf8(&got[..end]).expect("response head");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .trim()
        .parse()
        .unwrap();
    (got.len() >= end + len).then(|| (got[end..end + len].to_vec(), end + len))
}

#[test]
fn a_keep_alive_http_connection_moves_between_and_in_the_middle_of_requests() {
    // Issue 8: the HTTP server's `export`/`import`. One keep-alive
    // connection, one request at a time; the client's segments arrive on
    // worker 0, then on worker 1 from request 4 (it moves there between
    // requests), then on worker 0 again once half of a 200 KB `POST
    // /echo` body is written (it moves back in the middle of that request,
    // the body read so far in the server's state). Every response is
    // checked byte for byte; an import that drops the server's state
    // leaves the requests unanswered.
    use xdptcp::apps::http::{HttpConfig, HttpServer};
    let mut cfg = config(MAC_B, IP_B);
    cfg.tcp.snd_buf = 16 * 1024;
    let mut servers = [0, 1].map(|_| Stack::new(cfg.clone(), TestDevice::new(4096), Instant::ZERO));
    let mut apps = [0, 1].map(|_| HttpServer::new(HttpConfig::default()));
    for (s, a) in servers.iter_mut().zip(apps.iter_mut()) {
        a.listen(s);
    }
    let mut c = Stack::new(config(MAC_A, IP_A), TestDevice::new(4096), Instant::ZERO);
    let mut now = Instant::ZERO;
    let cid: ConnId = c.connect(now, sa(IP_B, 80)).unwrap();
    let reqs = http_requests();
    // The request being sent, how much of it (head + body) is written,
    // and the responses read so far.
    let (mut cur, mut written, mut got) = (0usize, 0usize, Vec::new());
    let mut wire: Vec<u8> = Vec::new();
    let mut moves: Vec<(usize, usize, Instant)> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut at = 0usize;
    for _round in 0..200_000 {
        if cur == reqs.len() {
            break;
        }
        let to_server = c.device_mut().take_tx();
        let mut to_client = Vec::new();
        for s in servers.iter_mut() {
            to_client.extend(s.device_mut().take_tx());
        }
        if !to_server.is_empty() || !to_client.is_empty() {
            now += Duration::from_micros(100);
        }
        for f in &to_server {
            let Some(tuple) = rx_tuple(f) else {
                for s in servers.iter_mut() {
                    rx(s, now, f);
                }
                continue;
            };
            let owner = (0..2).find(|&w| servers[w].has_conn(&tuple)).unwrap_or(at);
            rx(&mut servers[owner], now, f);
            if owner == at {
                continue;
            }
            let [s0, s1] = &mut servers;
            let [a0, a1] = &mut apps;
            let ((from, app_from), (to, app_to)) = if owner == 0 {
                ((s0, a0), (s1, a1))
            } else {
                ((s1, a1), (s0, a0))
            };
            if let Some(m) = move_out(from, app_from, now, &tuple, false) {
                assert!(move_in(to, app_to, now, m).is_ok());
                moves.push((cur, written, now));
            }
        }
        for f in &to_client {
            rx(&mut c, now, f);
        }
        for (s, app) in servers.iter_mut().zip(apps.iter_mut()) {
            dispatch(s, app, now);
            s.poll(now);
            dispatch(s, app, now);
        }
        while c.next_event().is_some() {}
        // Write the current request: the POST's body a piece per round,
        // once the first move has settled (`STAY`).
        let (head, body, _) = &reqs[cur];
        if wire.is_empty() && written == 0 {
            wire = head.as_bytes().iter().chain(body.iter()).copied().collect();
        }
        let settled = moves
            .first()
            .is_some_and(|m| now >= m.2 + Duration::from_millis(300));
        if cur != HTTP_POST || settled {
            let piece = if cur == HTTP_POST { 4096 } else { usize::MAX };
            let end = wire.len().min(written.saturating_add(piece));
            if written < end {
                if let Ok(n) = c.send(cid, &wire[written..end]) {
                    written += n;
                }
            }
        }
        at = match cur {
            _ if cur == HTTP_POST && written >= wire.len() / 2 => 0,
            4.. => 1,
            _ => 0,
        };
        while let Ok(n) = c.recv(cid, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if let Some((body, len)) = http_response(&got) {
            assert!(written == wire.len(), "a response before its request");
            assert!(body == reqs[cur].2, "response {cur} differs");
            got.drain(..len);
            cur += 1;
            written = 0;
            wire.clear();
        }
        c.poll(now);
        if to_server.is_empty() && to_client.is_empty() {
            now += Duration::from_millis(10);
            c.poll(now);
        }
    }
    assert_eq!(
        cur,
        reqs.len(),
        "responses {cur} of {}; moves {moves:?}",
        reqs.len()
    );
    assert!(got.is_empty());
    assert_eq!(moves.len(), 2, "moves {moves:?}");
    // The first between requests (from request 4 on: a GET is one
    // segment), the second in the middle of the POST's body.
    let (r0, r1) = (moves[0].0, moves[1].0);
    assert!((4..HTTP_POST).contains(&r0), "moves {moves:?}");
    assert_eq!(r1, HTTP_POST, "moves {moves:?}");
    let post = reqs[HTTP_POST].0.len() + HTTP_POST_LEN;
    assert!(moves[1].1 < post, "the POST was written whole: {moves:?}");
    let [s0, s1] = &servers;
    assert_eq!((s0.conn_count(), s1.conn_count()), (1, 0));
    assert_eq!(apps[0].stats.requests, 24 - apps[1].stats.requests);
    assert!(apps[1].stats.requests > 0);
}

#[test]
fn an_mptcp_connection_whose_segments_arrive_on_another_worker_moves_there() {
    // The first subflow moves with the connection level (data sequence
    // space, reassembly, send queue), its token and the echo's state: the
    // echo stays byte-exact (checked in `run`) and MPTCP throughout.
    let apps = [EchoServer::new(80), EchoServer::new(80)];
    let r = run_with(apps, TOTAL / 4, Setup::Mptcp, false);
    let [s0, s1] = &r.servers;
    assert_eq!(r.moved.len(), 1, "moves at {:?}", r.moved);
    assert_eq!(r.returned, 0);
    assert_eq!(r.handoffs_before, 0);
    assert_eq!(r.handoffs_after, usize::from(xdptcp::stack::STRAYS));
    assert_eq!(s0.counters().mptcp_conns_migrated_out, 1);
    assert_eq!(s1.counters().mptcp_conns_migrated_in, 1);
    assert_eq!(s0.counters().tcp_conns_migrated_out, 0);
    // Its token went with it (RFC 8684 §3.1: joins name it there).
    assert_eq!((s0.mptcp_tokens(), s1.mptcp_tokens()), (0, 1));
    assert_eq!((s0.conn_count(), s1.conn_count()), (0, 1));
    let c = r.client.counters();
    assert_eq!((c.mptcp_established, c.mptcp_fallbacks), (1, 0));
    assert_eq!(
        s0.counters().mptcp_fallbacks + s1.counters().mptcp_fallbacks,
        0
    );
}

#[test]
fn an_mptcp_connection_whose_token_the_arrival_worker_holds_stays() {
    // Tokens are unique per stack: worker 1 holds the same token already,
    // so it refuses the connection, which goes back and keeps working
    // where it is (every later segment handed over).
    let apps = [EchoServer::new(80), EchoServer::new(80)];
    let r = run_with(apps, TOTAL / 4, Setup::MptcpTokenClash, false);
    let [s0, s1] = &r.servers;
    assert!(r.moved.is_empty(), "moves at {:?}", r.moved);
    assert!(r.returned >= 1);
    assert!(r.handoffs_after > usize::from(xdptcp::stack::STRAYS));
    assert_eq!(
        s1.counters().mptcp_conn_migrations_refused as usize,
        r.returned
    );
    assert_eq!(s0.counters().mptcp_conns_migrated_in as usize, r.returned);
    assert_eq!((s0.mptcp_tokens(), s1.mptcp_tokens()), (1, 1));
    assert_eq!(s0.conn_count(), 1);
    let c = r.client.counters();
    assert_eq!((c.mptcp_established, c.mptcp_fallbacks), (1, 0));
}

#[test]
fn an_mptcp_connection_its_app_cannot_move_stays_and_keeps_working() {
    let apps = [Stuck(EchoServer::new(80)), Stuck(EchoServer::new(80))];
    let r = run_with(apps, TOTAL / 4, Setup::Mptcp, false);
    let [s0, s1] = &r.servers;
    assert!(r.moved.is_empty());
    assert!(r.handoffs_after > usize::from(xdptcp::stack::STRAYS));
    assert_eq!(s0.counters().mptcp_conns_migrated_out, 0);
    assert_eq!((s0.mptcp_tokens(), s1.mptcp_tokens()), (1, 0));
    assert_eq!((s0.conn_count(), s1.conn_count()), (1, 0));
}

/// A joined MPTCP connection whose first subflow's segments start arriving
/// on worker 1 (`join_switches`: its joined subflow's too), echoed
/// byte-exact (checked in `run_with`), MPTCP throughout.
fn joined_run(join_switches: bool) -> Run<2> {
    let apps = [EchoServer::new(80), EchoServer::new(80)];
    joined_run_with(apps, join_switches)
}

fn joined_run_with<A: App<TestDevice>>(apps: [A; 2], join_switches: bool) -> Run<2> {
    let setup = Setup::MptcpJoined {
        join_switches,
        remove_at_move: false,
        cut_join: false,
        join_late: None,
    };
    let r = run_with(apps, TOTAL / 4, setup, false);
    let c = r.client.counters();
    assert_eq!((c.mptcp_established, c.mptcp_fallbacks), (1, 0));
    assert_eq!(c.mptcp_subflows_opened, 1, "the client joined");
    r
}

#[test]
fn an_mptcp_connection_with_a_joined_subflow_moves_where_its_first_subflow_arrives() {
    // Issue 8: the connection (its first subflow, connection level, token
    // and app state) moves although a subflow is joined to it; that
    // subflow, whose segments keep arriving on worker 0, stays there and
    // becomes a subflow of the connection in worker 1 (`mptcp_rehome`).
    let r = joined_run(false);
    let [s0, s1] = &r.servers;
    assert_eq!(r.moved.len(), 1, "moves at {:?}", r.moved);
    assert_eq!((r.returned, r.subflows_moved), (0, 0));
    // Only the strays that moved it were handed over.
    assert_eq!(r.handoffs_after, usize::from(xdptcp::stack::STRAYS));
    assert_eq!(s0.counters().mptcp_conns_migrated_out, 1);
    assert_eq!(s0.counters().mptcp_conns_migrated_with_subflows, 1);
    assert_eq!(s0.counters().mptcp_subflows_rehomed, 1);
    assert_eq!(s1.counters().mptcp_conns_migrated_in, 1);
    assert_eq!(r.tokens, (0, 1));
    // The joined subflow runs where its segments arrive, the first
    // subflow (the connection) where its own do.
    assert_eq!(r.conns, (1, 1));
    assert!(
        s0.counters().mptcp_remote_bytes > 0,
        "the joined subflow fed the connection"
    );
    // Its messages sent while the connection was on its way waited on
    // worker 0, then went to worker 1.
    let c0 = s0.counters();
    assert!(
        c0.mptcp_msgs_parked > 0 && c0.mptcp_msgs_forwarded > 0,
        "{c0:?}"
    );
    assert_eq!(
        s0.counters().mptcp_msgs_dropped + s1.counters().mptcp_msgs_dropped,
        0
    );
    assert_eq!(
        s0.counters().mptcp_fallbacks + s1.counters().mptcp_fallbacks,
        0
    );
}

#[test]
fn an_mptcp_connection_with_a_joined_subflow_whose_move_is_refused_comes_back() {
    // Worker 1's app refuses every connection: each move comes back whole
    // (`Returns`), its joined subflow having become a subflow of a
    // connection in a worker (this one: `mptcp_rehome`); the messages
    // that went to the connection meanwhile wait and reach it back here.
    let apps = [
        Refuses(EchoServer::new(80), false),
        Refuses(EchoServer::new(80), true),
    ];
    let r = joined_run_with(apps, false);
    let [s0, s1] = &r.servers;
    assert!(r.moved.is_empty(), "moves at {:?}", r.moved);
    assert!(r.returned >= 1);
    let c0 = s0.counters();
    assert_eq!(c0.mptcp_conns_migrated_out as usize, r.returned);
    assert_eq!(c0.mptcp_conns_migrated_in as usize, r.returned);
    assert_eq!(c0.mptcp_subflows_rehomed, 1);
    assert!(c0.mptcp_msgs_parked > 0, "{c0:?}");
    assert_eq!(r.tokens, (1, 0));
    assert_eq!(r.conns, (2, 0));
    assert_eq!(c0.mptcp_msgs_dropped + s1.counters().mptcp_msgs_dropped, 0);
    // Back with its connection, the joined subflow is a local subflow of
    // it again (`mptcp_localize`): no longer fed through the rings.
    assert_eq!(c0.mptcp_subflows_made_local as usize, r.returned);
    assert_eq!(r.remote_here.0, 0);
}

#[test]
fn an_mptcp_connection_follows_its_subflows_to_the_worker_they_arrive_on() {
    // Both subflows' segments switch to worker 1: the joined subflow moves
    // there (`mptcp_migrate`) and so does the connection, whichever goes
    // first, and every segment runs where it arrives. Its subflow's
    // `Joined` sent to worker 0 as the connection left reaches it in
    // worker 1 (forwarded: `mptcp_rehome`).
    let r = joined_run(true);
    let [s0, s1] = &r.servers;
    assert_eq!(r.moved.len(), 1, "moves at {:?}", r.moved);
    assert_eq!(r.returned, 0);
    assert_eq!(s0.counters().mptcp_conns_migrated_out, 1);
    assert_eq!(s1.counters().mptcp_conns_migrated_in, 1);
    assert_eq!(r.tokens, (0, 1));
    assert_eq!(r.conns, (0, 2));
    assert_eq!(r.subflows_moved, 1);
    assert!(r.handoffs_after <= 2 * usize::from(xdptcp::stack::STRAYS));
    // Both in worker 1 now: the joined subflow is a local subflow of the
    // connection (`mptcp_localize`), not one talking to it through the
    // worker's own rings.
    assert_eq!(s1.counters().mptcp_subflows_made_local, 1);
    assert_eq!(r.remote_here.1, 0);
    assert_eq!(
        s0.counters().mptcp_msgs_dropped + s1.counters().mptcp_msgs_dropped,
        0
    );
}

#[test]
fn signals_and_joins_arriving_as_the_connection_moves_still_take_effect() {
    // Issue 8: in the round the connection leaves worker 0 (its joined
    // subflow just made one of a connection in a worker, the connection
    // on its way, the token directory still naming worker 0), the
    // client's REMOVE_ADDR of its joined subflow's address arrives on
    // that subflow, and a join SYN for the token arrives on worker 0.
    // The signal is carried to where the connection goes (RFC 8684
    // §3.4.2), which closes the subflow; the join's question waits with
    // the connection's messages and is answered there (§3.2: a SYN/ACK
    // with MP_JOIN, not the RST for an unknown token). The echo completes
    // on the first subflow (checked in `run_with`).
    let apps = [EchoServer::new(80), EchoServer::new(80)];
    let setup = Setup::MptcpJoined {
        join_switches: false,
        remove_at_move: true,
        cut_join: false,
        join_late: None,
    };
    let r = run_with(apps, TOTAL / 4, setup, false);
    let [s0, s1] = &r.servers;
    assert_eq!(r.moved.len(), 1, "moves at {:?}", r.moved);
    assert_eq!(r.removes_sent, 1);
    let removed = s0.counters().mptcp_subflows_removed + s1.counters().mptcp_subflows_removed;
    assert_eq!(removed, 1, "the subflow closed");
    assert_eq!(r.join_answers, (1, 0), "the join answered, not refused");
    let refused =
        s0.counters().mptcp_joins_rejected_token + s1.counters().mptcp_joins_rejected_token;
    assert_eq!(refused, 0);
    assert_eq!(r.conns, (0, 1));
    assert_eq!(
        s0.counters().mptcp_msgs_dropped + s1.counters().mptcp_msgs_dropped,
        0
    );
}

#[test]
fn chunks_for_a_subflow_in_another_worker_are_lent_and_all_come_back() {
    // Issue 8: the connection moves to worker 1, its joined subflow stays
    // on worker 0 as a subflow of a connection in another worker. The
    // echo's chunks for it are lent there, not copied (one pool): the
    // frames go to worker 0 by handle, come back (`Back`) when its ACK
    // freed them and are freed at the DATA_ACK (RFC 8684 §3.3.2); what
    // it held as a local subflow when the connection left comes back the
    // same way. Copies are left for reinjections. Once the client closed
    // and the servers' connections went, every frame is back.
    let r = joined_run(false);
    let [s0, s1] = &r.servers;
    let (c0, c1) = (s0.counters(), s1.counters());
    let lent = c0.mptcp_tx_lent_bytes + c1.mptcp_tx_lent_bytes;
    let copied = c0.mptcp_tx_copied_bytes + c1.mptcp_tx_copied_bytes;
    let again = c0.mptcp_tx_reinject_copied_bytes + c1.mptcp_tx_reinject_copied_bytes;
    let remote = c0.mptcp_remote_tx_bytes;
    println!(
        "lent {lent} copied {copied} reinjection copies {again} to worker 0's subflow {remote} \
         joined {} frames left {}",
        c0.mptcp_bytes_joined + c1.mptcp_bytes_joined,
        r.frames_left
    );
    assert_eq!(r.moved.len(), 1);
    assert!(remote > 16 * 1024, "worker 0's subflow sent {remote}");
    assert!(lent + copied >= TOTAL as u64);
    assert!(
        copied <= again,
        "copied {copied} beyond reinjections {again}"
    );
    assert!(copied * 20 < TOTAL as u64, "copied {copied}");
    assert_eq!(r.frames_left, 0, "frames out of the pool at the end");
}

#[test]
fn a_stalled_subflow_in_another_worker_copies_back_what_it_was_lent() {
    // Issue 8, RFC 8684 §3.3.6: the connection on worker 1 lent chunks to
    // its joined subflow on worker 0, then that subflow's path dies. Once
    // it stalls its ranges are reinjected on the first subflow; their
    // frames are in worker 0's queue, out of the connection's reach, so
    // worker 0 copies them back on request (`copy_back`, counted as
    // reinjection copies). The echo completes byte-exact (`run_with`),
    // and every frame is back once all is closed.
    let apps = [EchoServer::new(80), EchoServer::new(80)];
    let setup = Setup::MptcpJoined {
        join_switches: false,
        remove_at_move: false,
        cut_join: true,
        join_late: None,
    };
    let r = run_with(apps, TOTAL / 4, setup, false);
    let [s0, s1] = &r.servers;
    let (c0, c1) = (s0.counters(), s1.counters());
    let lent = c0.mptcp_tx_lent_bytes + c1.mptcp_tx_lent_bytes;
    let copied = c0.mptcp_tx_copied_bytes + c1.mptcp_tx_copied_bytes;
    let again = c0.mptcp_tx_reinject_copied_bytes;
    // Its data went again: the subflow stalled, or the data level's
    // timer ran out first.
    let reinjections = c1.mptcp_reinjections + c1.mptcp_data_rtos;
    println!(
        "lent {lent} copied {copied} copied back on worker 0 {again} reinjections {reinjections} \
         to worker 0's subflow {} frames left {}",
        c0.mptcp_remote_tx_bytes, r.frames_left
    );
    assert_eq!(r.moved.len(), 1);
    assert!(reinjections > 0);
    assert!(
        again > 0,
        "worker 0 copied back what the reinjection needed"
    );
    assert!(lent >= TOTAL as u64 / 2, "lent {lent}");
    assert_eq!(r.frames_left, 0, "frames out of the pool at the end");
}

#[test]
fn a_subflow_moving_to_another_worker_keeps_what_it_was_lent() {
    // Issue 8: both subflows' segments switch to worker 1; the joined
    // subflow moves there (`mptcp_migrate`) holding frames the
    // connection lent it, and the connection follows. The lent frames
    // move with it by handle and come back from its new worker (`Back`),
    // or in place once it is local to its connection again: nothing is
    // copied for the move, and every frame is back at the end.
    let r = joined_run(true);
    let [s0, s1] = &r.servers;
    let (c0, c1) = (s0.counters(), s1.counters());
    let lent = c0.mptcp_tx_lent_bytes + c1.mptcp_tx_lent_bytes;
    let copied = c0.mptcp_tx_copied_bytes + c1.mptcp_tx_copied_bytes;
    let again = c0.mptcp_tx_reinject_copied_bytes + c1.mptcp_tx_reinject_copied_bytes;
    let uncopied = c0.mptcp_tx_lent_uncopied_bytes + c1.mptcp_tx_lent_uncopied_bytes;
    println!(
        "lent {lent} copied {copied} reinjection copies {again} uncopied {uncopied} \
         joined {} frames left {}",
        c0.mptcp_bytes_joined + c1.mptcp_bytes_joined,
        r.frames_left
    );
    assert_eq!(r.subflows_moved, 1);
    assert!(c0.mptcp_bytes_joined + c1.mptcp_bytes_joined > 16 * 1024);
    assert!(lent + copied >= TOTAL as u64);
    assert_eq!((again, uncopied), (0, 0), "copies made for the move");
    assert!(copied * 20 < TOTAL as u64, "copied {copied}");
    assert_eq!(r.frames_left, 0, "frames out of the pool at the end");
}

#[test]
fn a_subflow_in_another_worker_moving_on_keeps_what_it_was_lent() {
    // Issue 8: the connection moves to worker 1, its joined subflow stays
    // on worker 0 as a subflow of a connection in another worker, lent
    // chunks there; then the subflow's segments switch to worker 1 too and
    // it moves (`mptcp_migrate`, from a worker that ran it for the
    // connection). It keeps its send queue, the frames lent to it and its
    // place in the scheduler: nothing is reinjected or copied for the
    // move (the chunks still on their way to worker 0 come back from
    // there untaken and go again), the echo is byte-exact (`run_with`),
    // and every frame is back at the end.
    let apps = [EchoServer::new(80), EchoServer::new(80)];
    let setup = Setup::MptcpJoined {
        join_switches: false,
        remove_at_move: false,
        cut_join: false,
        join_late: Some(1),
    };
    let r = run_with(apps, TOTAL / 4, setup, false);
    let [s0, s1] = &r.servers;
    let (c0, c1) = (s0.counters(), s1.counters());
    let lent = c0.mptcp_tx_lent_bytes + c1.mptcp_tx_lent_bytes;
    let copied = c0.mptcp_tx_copied_bytes + c1.mptcp_tx_copied_bytes;
    let again = c0.mptcp_tx_reinject_copied_bytes + c1.mptcp_tx_reinject_copied_bytes;
    let uncopied = c0.mptcp_tx_lent_uncopied_bytes + c1.mptcp_tx_lent_uncopied_bytes;
    let reinjections = c0.mptcp_reinjections + c1.mptcp_reinjections;
    println!(
        "lent {lent} copied {copied} reinjection copies {again} uncopied {uncopied} \
         reinjections {reinjections} data rtos {} to worker 0's subflow {} frames left {}",
        c0.mptcp_data_rtos + c1.mptcp_data_rtos,
        c0.mptcp_remote_tx_bytes,
        r.frames_left
    );
    assert_eq!(r.moved.len(), 1, "moves at {:?}", r.moved);
    assert_eq!(r.subflows_moved, 1);
    assert_eq!(c0.mptcp_subflows_migrated_out, 1);
    assert!(
        c0.mptcp_remote_tx_bytes > 16 * 1024,
        "worker 0's subflow sent little"
    );
    assert_eq!(reinjections, 0, "ranges reinjected at the move");
    assert_eq!((again, uncopied), (0, 0), "copies made for the move");
    assert!(copied * 20 < TOTAL as u64, "copied {copied}");
    assert_eq!(r.frames_left, 0, "frames out of the pool at the end");
}

#[test]
fn back_and_chunks_buffers_go_round_between_workers() {
    // Issue 8: the connection on worker 1 lends its echo to its joined
    // subflow on worker 0 (`Chunks`), which returns the frames its ACKs
    // free (`Back`), each message's frames in a `Vec` by value. Each
    // message carries an emptied buffer of the other kind home
    // (`mptcp_spares`): after the first few, no buffer is made. Before,
    // every `Back` and every `Chunks` made its own.
    let r = joined_run(false);
    let [s0, s1] = &r.servers;
    let (c0, c1) = (s0.counters(), s1.counters());
    let backs = c0.mptcp_remote_back_bufs + c1.mptcp_remote_back_bufs;
    let chunks = c0.mptcp_remote_chunk_bufs + c1.mptcp_remote_chunk_bufs;
    println!(
        "Back messages {} buffers made {backs}; Chunks messages {} buffers made or grown {chunks}",
        r.backs, r.chunk_msgs
    );
    assert!(r.backs >= 20 && r.chunk_msgs >= 50, "a steady transfer");
    assert!(
        backs <= 4,
        "Back buffers made: {backs} for {} messages",
        r.backs
    );
    assert!(chunks <= 8, "Chunks buffers made or grown: {chunks}");
    assert_eq!(r.frames_left, 0, "frames out of the pool at the end");
}

#[test]
fn a_subflow_in_another_worker_moving_to_a_third_keeps_what_it_was_lent() {
    // Issue 8, three workers: the connection moves from worker 0 to
    // worker 1 (A); its joined subflow stays on worker 0 (B) as a subflow
    // of a connection in another worker, lent chunks there; then the
    // subflow's segments switch to worker 2 (C) and it moves there
    // (`mptcp_migrate`), from one worker that ran it for the connection
    // to another, neither the connection's. It keeps its slot in A's
    // scheduler, what it was given and the frames lent to it (returned
    // from C); the chunks still on their way to B come back from there
    // untaken (`Back.untaken`) and go again. Nothing is reinjected or
    // copied for the move, the echo is byte-exact (`run_with`), and every
    // frame is back at the end.
    let apps = [0, 1, 2].map(|_| EchoServer::new(80));
    let setup = Setup::MptcpJoined {
        join_switches: false,
        remove_at_move: false,
        cut_join: false,
        join_late: Some(2),
    };
    let r = run_with(apps, TOTAL / 4, setup, false);
    let [s0, s1, s2] = &r.servers;
    let cs = [s0.counters(), s1.counters(), s2.counters()];
    let [c0, c1, c2] = &cs;
    let sum = |f: fn(&xdptcp::stack::StackCounters) -> u64| cs.iter().map(f).sum::<u64>();
    let lent = sum(|c| c.mptcp_tx_lent_bytes);
    let copied = sum(|c| c.mptcp_tx_copied_bytes);
    let again = sum(|c| c.mptcp_tx_reinject_copied_bytes);
    let uncopied = sum(|c| c.mptcp_tx_lent_uncopied_bytes);
    let reinjections = sum(|c| c.mptcp_reinjections);
    println!(
        "lent {lent} copied {copied} reinjection copies {again} uncopied {uncopied} \
         reinjections {reinjections} data rtos {} sent by the subflow on worker 0 {} on \
         worker 2 {} untaken Backs {:?} made local {} frames left {}",
        sum(|c| c.mptcp_data_rtos),
        c0.mptcp_remote_tx_bytes,
        c2.mptcp_remote_tx_bytes,
        r.untaken,
        sum(|c| c.mptcp_subflows_made_local),
        r.frames_left
    );
    assert_eq!(r.moved.len(), 1, "moves at {:?}", r.moved);
    assert_eq!(r.subflows_moved, 1);
    assert_eq!(c0.mptcp_subflows_migrated_out, 1);
    assert_eq!(c2.mptcp_subflows_migrated_in, 1);
    // A genuine third worker: the subflow never ran on the connection's.
    assert_eq!(sum(|c| c.mptcp_subflows_made_local), 0);
    assert_eq!(c1.mptcp_remote_tx_bytes, 0);
    assert!(
        c0.mptcp_remote_tx_bytes > 16 * 1024,
        "worker 0's subflow sent little"
    );
    assert!(
        c2.mptcp_remote_tx_bytes > 16 * 1024,
        "worker 2's subflow sent little"
    );
    assert!(
        r.untaken[0] > 0,
        "no chunks came back untaken from worker 0"
    );
    assert_eq!(reinjections, 0, "ranges reinjected at the move");
    assert_eq!((again, uncopied), (0, 0), "copies made for the move");
    assert!(copied * 20 < TOTAL as u64, "copied {copied}");
    assert_eq!(r.frames_left, 0, "frames out of the pool at the end");
}
