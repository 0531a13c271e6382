//! The active side of MP_JOIN (RFC 8684 §3.2) between two of our stacks:
//! a client with two local addresses opens an MPTCP connection, and once
//! it is fully established its path manager joins a second subflow from
//! its other address. Checked on the wire: the SYN's MP_JOIN (the peer's
//! token, our Address ID), the SYN/ACK's truncated HMAC verified (a
//! corrupted one answered with RST + MP_TCPRST, counted), the third ACK
//! with the full HMAC repeated until the fourth ACK arrives (and the
//! subflow given up when it never does), the subflow limit, and the
//! stream intact across all of it. The server side is our passive join
//! (`tests/stack_mptcp_join.rs`), whose HMACs are checked against a
//! Linux capture, as the active side's are in `src/mptcp/join/tests.rs`.

mod common;
use common::*;
use std::net::Ipv4Addr;
use std::time::Duration;
use xdptcp::app::Event;
use xdptcp::mptcp::crypto::Key;
use xdptcp::stack::{ConnId, Ipv4Cidr, Stack};
use xdptcp::time::Instant;
use xdptcp::wire::mptcp::{MpJoin, MptcpOption};
use xdptcp::wire::{MptcpRaw, TcpRepr};

/// The client's second address (same subnet: one link joins both).
const IP_A2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);

fn mp_opts(seg: &TcpRepr) -> Vec<MptcpOption> {
    seg.options
        .mptcp
        .options()
        .map(|b| MptcpOption::parse(b).unwrap())
        .collect()
}

fn join_of(seg: &TcpRepr) -> Option<MpJoin> {
    mp_opts(seg).into_iter().find_map(|o| match o {
        MptcpOption::MpJoin(j) => Some(j),
        _ => None,
    })
}

/// What the link does with a frame: deliver it, drop it, or deliver this
/// one instead.
enum Fate {
    Pass,
    Drop,
    Replace(Vec<u8>),
}

/// What the link does with each TCP frame: (from A to B, on the joined
/// subflow, the segment, its payload length).
type Filter = Box<dyn FnMut(bool, bool, &TcpRepr, usize) -> Fate>;

struct Net {
    a: Stack<TestDevice>,
    b: Stack<TestDevice>,
    now: Instant,
    filter: Filter,
    /// Every TCP segment A sent on the joined subflow, in order.
    joined: Vec<TcpRepr>,
    /// The application's connection at A, once connected.
    id: Option<ConnId>,
}

impl Net {
    /// A client with `subflows` extra subflows allowed, and a server
    /// accepting two.
    fn new(subflows: u8) -> Net {
        let mut ca = config(MAC_A, IP_A);
        ca.addrs.push(Ipv4Cidr {
            addr: IP_A2,
            prefix: 24,
        });
        ca.tcp.mptcp = true;
        ca.tcp.mptcp_max_subflows = subflows;
        let mut cb = config(MAC_B, IP_B);
        cb.tcp.mptcp = true;
        cb.tcp.mptcp_max_subflows = 2;
        let mut b = Stack::new(cb, TestDevice::new(1024), Instant::ZERO);
        b.listen(80).unwrap();
        Net {
            a: Stack::new(ca, TestDevice::new(1024), Instant::ZERO),
            b,
            now: Instant::ZERO,
            filter: Box::new(|_, _, _, _| Fate::Pass),
            joined: Vec::new(),
            id: None,
        }
    }

    /// Move frames until both stacks are quiet (bounded), `step` apart.
    fn pump(&mut self, step: Duration) {
        for _ in 0..2000 {
            self.a.poll(self.now);
            self.b.poll(self.now);
            let to_b = self.a.device_mut().take_tx();
            let to_a = self.b.device_mut().take_tx();
            if to_b.is_empty() && to_a.is_empty() {
                return;
            }
            self.now += step;
            for (from_a, frames) in [(true, to_b), (false, to_a)] {
                for f in frames {
                    let f = if f.len() > 34 && f[23] == 6 {
                        let (_, ip, seg, payload) = parse_tcp(&f);
                        let on_join = ip.src == IP_A2 || ip.dst == IP_A2;
                        if from_a && on_join {
                            self.joined.push(seg);
                        }
                        match (self.filter)(from_a, on_join, &seg, payload.len()) {
                            Fate::Pass => f,
                            Fate::Drop => continue,
                            Fate::Replace(g) => g,
                        }
                    } else {
                        f
                    };
                    let to = if from_a { &mut self.b } else { &mut self.a };
                    rx(to, self.now, &f);
                }
            }
        }
        panic!("the stacks never went quiet");
    }

    /// Let `d` of virtual time pass in `step`s, exchanging frames.
    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.now += Duration::from_millis(10);
            self.pump(Duration::from_micros(100));
        }
    }

    /// Connect A to B and exchange `msg` both ways (the server's DSS makes
    /// the connection fully established for A's path manager).
    fn connect(&mut self, msg: &[u8]) -> (ConnId, ConnId) {
        let id = self.a.connect(self.now, sa(IP_B, 80)).unwrap();
        self.pump(Duration::from_micros(100));
        let bid = std::iter::from_fn(|| self.b.next_event())
            .find_map(|e| match e {
                Event::Accepted { id, .. } => Some(id),
                _ => None,
            })
            .expect("accepted");
        self.echo(id, bid, msg);
        self.id = Some(id);
        (id, bid)
    }

    /// `msg` from A to B, echoed back, checked at both ends.
    fn echo(&mut self, id: ConnId, bid: ConnId, msg: &[u8]) {
        assert_eq!(self.a.send(id, msg).unwrap(), msg.len());
        self.pump(Duration::from_micros(100));
        let mut buf = vec![0u8; msg.len() + 16];
        let n = self.b.recv(bid, &mut buf).unwrap();
        assert_eq!(&buf[..n], msg);
        assert_eq!(self.b.send(bid, &buf[..n]).unwrap(), n);
        self.pump(Duration::from_micros(100));
        let n = self.a.recv(id, &mut buf).unwrap();
        assert_eq!(&buf[..n], msg);
    }

    /// A's segments on the subflow from its second address.
    fn join_segments(&self) -> Vec<TcpRepr> {
        self.joined.clone()
    }
}

#[test]
fn the_client_joins_from_its_second_address() {
    let mut n = Net::new(2);
    let (id, bid) = n.connect(b"first subflow");
    n.run_for(Duration::from_millis(100));
    let c = n.a.counters();
    assert_eq!(c.mptcp_join_syns_sent, 1, "one pair: A2 -> B");
    assert_eq!(c.mptcp_subflows_opened, 1);
    assert_eq!(c.mptcp_subflows_failed, 0);
    assert_eq!(n.b.counters().mptcp_joins_accepted, 1);
    let j = n.join_segments();
    // SYN: MP_JOIN with our Address ID for the second local address (0
    // is the first subflow's, the others 1 + their place in the list).
    assert!(j[0].flags.syn() && !j[0].flags.ack());
    match join_of(&j[0]) {
        Some(MpJoin::Syn { addr_id, .. }) => assert_eq!(addr_id, 2),
        o => panic!("SYN without MP_JOIN: {o:?}"),
    }
    // Third ACK: the full HMAC-A; nothing after it carries MP_JOIN.
    assert!(matches!(join_of(&j[1]), Some(MpJoin::Ack { .. })));
    assert!(j[2..].iter().all(|s| join_of(s).is_none()));
    assert_eq!(n.a.connections().count(), 2);
    // The connection carries on, intact.
    n.echo(id, bid, b"after the join");
    assert_eq!(n.a.counters().mptcp_subflows_failed, 0);
}

#[test]
fn no_join_without_a_subflow_limit_or_before_full_establishment() {
    // The limit is 0 by default: no join.
    let mut n = Net::new(0);
    n.connect(b"x");
    n.run_for(Duration::from_millis(100));
    assert_eq!(n.a.counters().mptcp_join_syns_sent, 0);
    // Before the server's first DSS: no join either.
    let mut n = Net::new(2);
    n.a.connect(n.now, sa(IP_B, 80)).unwrap();
    n.pump(Duration::from_micros(100));
    n.run_for(Duration::from_millis(50));
    assert_eq!(n.a.counters().mptcp_join_syns_sent, 0);
}

/// Rebuild B's frame `seg` with its MP_JOIN SYN/ACK's HMAC changed.
fn corrupt_synack(seg: &TcpRepr, dst: Ipv4Addr) -> Option<Vec<u8>> {
    if !(seg.flags.syn() && seg.flags.ack()) {
        return None;
    }
    let Some(MpJoin::SynAck {
        backup,
        addr_id,
        hmac,
        nonce,
    }) = join_of(seg)
    else {
        return None;
    };
    let o = MptcpOption::MpJoin(MpJoin::SynAck {
        backup,
        addr_id,
        hmac: hmac ^ 1,
        nonce,
    });
    let mut b = [0u8; 40];
    let len = o.emit(&mut b);
    let mut s = *seg;
    s.options.mptcp = MptcpRaw::from_slice(&b[..len]).unwrap();
    Some(tcp_frame_ips(IP_B, dst, &s, &[]))
}

#[test]
fn a_wrong_hmac_b_resets_the_subflow_with_mp_tcprst() {
    let mut n = Net::new(2);
    n.filter = Box::new(|from_a, _, seg, _| match from_a {
        false => corrupt_synack(seg, IP_A2).map_or(Fate::Pass, Fate::Replace),
        true => Fate::Pass,
    });
    let (id, bid) = n.connect(b"first subflow");
    n.run_for(Duration::from_millis(100));
    let c = n.a.counters();
    assert_eq!(c.mptcp_join_syns_sent, 1);
    assert_eq!(c.mptcp_join_synack_bad_hmac, 1);
    assert_eq!(c.mptcp_subflows_failed, 1);
    assert_eq!(c.mptcp_subflows_opened, 0);
    let j = n.join_segments();
    let rst = j.iter().find(|s| s.flags.rst()).expect("RST sent");
    assert!(
        mp_opts(rst)
            .iter()
            .any(|o| matches!(o, MptcpOption::MpTcpRst { reason: 1, .. })),
        "{rst:?}"
    );
    assert!(j
        .iter()
        .all(|s| !matches!(join_of(s), Some(MpJoin::Ack { .. }))));
    // B's half of the subflow went with the RST; the connection lives on.
    n.run_for(Duration::from_millis(100));
    assert_eq!(n.a.connections().count(), 1);
    assert_eq!(n.b.connections().count(), 1);
    n.echo(id, bid, b"still intact");
}

#[test]
fn the_third_ack_is_repeated_until_the_fourth_ack() {
    // B's answers on the joined subflow after its SYN/ACK are lost for a
    // while: A repeats the third ACK, and the subflow opens once one of
    // B's ACKs arrives.
    let mut n = Net::new(2);
    let lost = std::rc::Rc::new(std::cell::Cell::new(true));
    let l = lost.clone();
    n.filter = Box::new(move |from_a, on_join, seg, _| {
        if !from_a && on_join && !seg.flags.syn() && l.get() {
            Fate::Drop
        } else {
            Fate::Pass
        }
    });
    let (id, bid) = n.connect(b"first subflow");
    n.run_for(Duration::from_secs(4));
    let thirds = n
        .join_segments()
        .iter()
        .filter(|s| matches!(join_of(s), Some(MpJoin::Ack { .. })))
        .count();
    assert!(thirds >= 3, "third ACK sent {thirds} times");
    assert_eq!(n.a.counters().mptcp_subflows_opened, 0);
    lost.set(false);
    n.run_for(Duration::from_secs(10));
    assert_eq!(n.a.counters().mptcp_subflows_opened, 1);
    assert_eq!(n.a.counters().mptcp_subflows_failed, 0);
    n.echo(id, bid, b"after the fourth ACK");
}

#[test]
fn a_subflow_whose_fourth_ack_never_comes_is_given_up() {
    let mut n = Net::new(2);
    n.filter = Box::new(|from_a, on_join, seg, _| {
        if !from_a && on_join && !seg.flags.syn() {
            Fate::Drop
        } else {
            Fate::Pass
        }
    });
    let (id, bid) = n.connect(b"first subflow");
    n.run_for(Duration::from_secs(600));
    let c = n.a.counters();
    assert_eq!(c.mptcp_subflows_failed, 1);
    assert_eq!(c.mptcp_subflows_opened, 0);
    assert!(n.join_segments().iter().any(|s| s.flags.rst()));
    assert_eq!(n.a.connections().count(), 1);
    n.echo(id, bid, b"still intact");
}

const IP_S1: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
const MAC_S1: xdptcp::wire::MacAddr = xdptcp::wire::MacAddr([2, 0, 0, 0, 0, 3]);

/// One worker, two interfaces: the client's stacks `s[0]` (198.18.0.1/24)
/// and `s[1]` (198.18.1.1/16, on the server's link too), routed as the
/// runtime routes them (`mptcp_route`), and the server `b`; `s1_dead`
/// (`s0_dead`) cuts interface 1's (0's) link both ways; interface 0's
/// link delays each frame by `delay0` one way.
struct TwoIfaces {
    s: [Stack<TestDevice>; 2],
    b: Stack<TestDevice>,
    now: Instant,
    s1_dead: bool,
    s0_dead: bool,
    delay0: Duration,
    /// Frames on interface 0's link: (due, toward b, frame).
    wire0: std::collections::VecDeque<(Instant, bool, Vec<u8>)>,
}

impl TwoIfaces {
    fn new(sched: xdptcp::mptcp::sched::SchedKind) -> TwoIfaces {
        let client = |mac, ip, prefix| {
            let mut c = config(mac, ip);
            c.addrs[0].prefix = prefix;
            c.gateway = None;
            c.tcp.mptcp = true;
            c.tcp.mptcp_max_subflows = 2;
            c.tcp.mptcp_scheduler = sched;
            Stack::new(c, TestDevice::new(1024), Instant::ZERO)
        };
        let mut s = [client(MAC_A, IP_A, 24), client(MAC_S1, IP_S1, 16)];
        s[0].mptcp_set_shared(0);
        s[1].mptcp_set_shared(1);
        let mut cb = config(MAC_B, IP_B);
        cb.addrs[0].prefix = 16;
        cb.tcp.mptcp = true;
        cb.tcp.mptcp_max_subflows = 2;
        let mut b = Stack::new(cb, TestDevice::new(1024), Instant::ZERO);
        b.listen(80).unwrap();
        TwoIfaces {
            s,
            b,
            now: Instant::ZERO,
            s1_dead: false,
            s0_dead: false,
            delay0: Duration::ZERO,
            wire0: Default::default(),
        }
    }

    /// One millisecond: route, poll, deliver. Returns the server's
    /// connection once accepted.
    fn round(&mut self) -> Option<ConnId> {
        self.now += Duration::from_millis(1);
        let now = self.now;
        {
            let [s0, s1] = &mut self.s;
            xdptcp::stack::mptcp_route(&mut [s0, s1]);
        }
        for s in &mut self.s {
            s.poll(now);
        }
        self.b.poll(now);
        let due = now + self.delay0;
        for f in self.s[0].device_mut().take_tx() {
            self.wire0.push_back((due, true, f));
        }
        let from_s1 = self.s[1].device_mut().take_tx();
        for f in self.b.device_mut().take_tx() {
            // Ethernet broadcast (ARP) reaches both; else by destination.
            let bcast = f[..6] == [0xff; 6];
            if (bcast || f[..6] == MAC_S1.0) && !self.s1_dead {
                rx(&mut self.s[1], now, &f);
            }
            if bcast || f[..6] == MAC_A.0 {
                self.wire0.push_back((due, false, f));
            }
        }
        if !self.s1_dead {
            for f in &from_s1 {
                rx(&mut self.b, now, f);
            }
        }
        while self.wire0.front().is_some_and(|w| w.0 <= now) {
            let (_, to_b, f) = self.wire0.pop_front().unwrap();
            if !self.s0_dead {
                rx(if to_b { &mut self.b } else { &mut self.s[0] }, now, &f);
            }
        }
        let mut accepted = None;
        while let Some(e) = self.b.next_event() {
            if let Event::Accepted { id, .. } = e {
                accepted = Some(id);
            }
        }
        accepted
    }
}

/// The connection opens on interface 0 and its path manager joins from
/// interface 1's stack: `mptcp_route` opens the subflow there, and it
/// belongs to the connection in stack 0.
#[test]
fn a_join_leaves_from_another_interfaces_stack() {
    let mut w = TwoIfaces::new(Default::default());
    let id = w.s[0].connect(w.now, sa(IP_B, 80)).unwrap();
    let mut bid = None;
    let mut echoed = Vec::new();
    for round in 0..400 {
        bid = w.round().or(bid);
        if let Some(bid) = bid {
            let mut buf = [0u8; 256];
            if let Ok(n) = w.b.recv(bid, &mut buf) {
                if n > 0 {
                    w.b.send(bid, &buf[..n]).unwrap();
                }
            }
        }
        if round == 5 {
            w.s[0].send(id, b"over interface 0").unwrap();
        }
        let mut buf = [0u8; 256];
        if let Ok(n) = w.s[0].recv(id, &mut buf) {
            echoed.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(echoed, b"over interface 0");
    let [s0, s1] = &w.s;
    assert_eq!(s1.counters().mptcp_join_syns_sent, 1);
    assert_eq!(s1.counters().mptcp_subflows_opened, 1);
    assert_eq!(s0.counters().mptcp_join_syns_sent, 0);
    assert_eq!(w.b.counters().mptcp_joins_accepted, 1);
    assert_eq!(s1.connections().count(), 1);
    assert_eq!(w.b.connections().count(), 2);
}

/// Interface 1 loses its carrier mid-transfer (the runtime's link
/// watcher calls `Stack::link_state`): what its subflow held goes again on
/// the first at once (RFC 8684 §3.3.6), before any retransmission timer
/// (200 ms at least) could have said so; the stream arrives intact. The
/// carrier back, the subflow takes data again.
#[test]
fn a_carrier_lost_sends_what_its_subflow_held_on_the_other_at_once() {
    let mut w = TwoIfaces::new(xdptcp::mptcp::sched::SchedKind::RoundRobin);
    w.delay0 = Duration::from_millis(5);
    let id = w.s[0].connect(w.now, sa(IP_B, 80)).unwrap();
    let total = 4 << 20;
    let data: Vec<u8> = (0..total).map(|i| (i * 7 + i / 251) as u8).collect();
    let (mut sent, mut got, mut bid) = (0, Vec::new(), None);
    let joined = |w: &TwoIfaces| w.s[0].counters().mptcp_bytes_joined;
    let (mut down_at, mut up_at, mut joined_at_up) = (None, None, 0);
    for round in 0..20_000 {
        bid = w.round().or(bid);
        if let Some(bid) = bid {
            let mut buf = [0u8; 4096];
            while let Ok(n) = w.b.recv(bid, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        // 256 KB ahead of the reader at most: the send buffer's frames
        // come from the device's 1,024.
        let ahead = (got.len() + (256 << 10)).min(total);
        if sent < ahead {
            sent += w.s[0].send(id, &data[sent..ahead]).unwrap_or(0);
        }
        if down_at.is_none() && joined(&w) > 256 << 10 {
            // Down with data in flight on the joined subflow.
            w.s1_dead = true;
            assert_eq!(w.s[1].link_state(false), 1);
            down_at = Some(round);
        }
        if down_at.is_some_and(|d| round == d + 5) {
            let c = w.s[0].counters();
            assert!(c.mptcp_reinjections >= 1, "nothing reinjected 5 ms after");
            assert_eq!(c.mptcp_data_rtos, 0);
        }
        if down_at.is_some_and(|d| round == d + 500) {
            w.s1_dead = false;
            assert_eq!(w.s[1].link_state(true), 1);
            up_at = Some(round);
            joined_at_up = joined(&w);
        }
        if got.len() == total {
            break;
        }
    }
    assert!(got == data, "{} of {total} bytes, intact: false", got.len());
    assert_eq!(w.s[1].counters().mptcp_subflows_link_down, 1);
    assert!(
        up_at.is_some(),
        "the transfer ended before the carrier came back"
    );
    assert!(
        joined(&w) > joined_at_up + (64 << 10),
        "the joined subflow took {} bytes after the carrier came back",
        joined(&w) - joined_at_up
    );
}

/// RFC 8684 §3.4.2: interface 0, the first subflow's, loses its carrier
/// while the joined subflow on interface 1 lives (the runtime's link
/// watcher: `link_state`, then the address withdrawn). The first
/// subflow's address is Address ID 0, never announced: its REMOVE_ADDR
/// goes on the joined subflow, so B drops its end of the dead first
/// subflow at once instead of retransmitting into it until it times out,
/// and the transfer completes over interface 1.
#[test]
fn the_first_interface_down_sends_remove_addr_0_on_the_joined_subflow() {
    let mut w = TwoIfaces::new(Default::default());
    let id = w.s[0].connect(w.now, sa(IP_B, 80)).unwrap();
    let total = 1 << 20;
    let data: Vec<u8> = (0..total).map(|i| (i * 7 + i / 251) as u8).collect();
    let (mut sent, mut got, mut bid) = (0, Vec::new(), None);
    let mut down_at = None;
    for round in 0..20_000 {
        bid = w.round().or(bid);
        if let Some(bid) = bid {
            let mut buf = [0u8; 4096];
            while let Ok(n) = w.b.recv(bid, &mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
        }
        let ahead = (got.len() + (256 << 10)).min(total);
        if sent < ahead {
            sent += w.s[0].send(id, &data[sent..ahead]).unwrap_or(0);
        }
        if down_at.is_none() && w.s[0].counters().mptcp_bytes_joined > 128 << 10 {
            w.s0_dead = true;
            w.s[0].link_state(false);
            let [s0, s1] = &mut w.s;
            xdptcp::stack::mptcp_withdraw_address(&mut [s0, s1], IP_A);
            down_at = Some(round);
        }
        if down_at.is_some_and(|d| round == d + 20) {
            // Within a few round trips, long before any timeout.
            let cb = w.b.counters();
            assert_eq!(
                cb.mptcp_remove_addr_received, 1,
                "REMOVE_ADDR 0 not received"
            );
            assert_eq!(
                cb.mptcp_first_subflow_ended, 1,
                "B's first subflow not ended"
            );
        }
        if got.len() == total {
            break;
        }
    }
    assert!(down_at.is_some(), "never joined");
    assert!(got == data, "{} of {total} bytes, intact: false", got.len());
    assert_eq!(w.s[1].counters().mptcp_remove_addr_sent, 1);
    assert_eq!(w.s[0].counters().mptcp_first_subflow_ended, 1);
}

/// B's second address, announced by hand (B's own announcements are off
/// in these tests) or by B itself.
const IP_B2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 4);

/// The two keys, from A's MP_CAPABLE third ACK: (A's, B's).
fn keys_of(seg: &TcpRepr) -> Option<(u64, u64)> {
    mp_opts(seg).into_iter().find_map(|o| match o {
        MptcpOption::MpCapable(c) => c.sender_key.zip(c.receiver_key),
        _ => None,
    })
}

fn add_addr(seg: &TcpRepr, id: u8, ip: Ipv4Addr, hmac: Option<u64>) -> Vec<u8> {
    let o = MptcpOption::AddAddr(xdptcp::wire::mptcp::AddAddr {
        echo: false,
        addr_id: id,
        addr: ip.into(),
        port: None,
        hmac,
    });
    let mut b = [0u8; 40];
    let n = o.emit(&mut b);
    // In place of the segment's DSS (no room for both beside it).
    let mut s = *seg;
    s.options.mptcp = MptcpRaw::from_slice(&b[..n]).unwrap();
    tcp_frame_ips(IP_B, IP_A, &s, &[])
}

/// B2's Address ID: what B's SYN/ACK on a join to it says (1 + its place
/// in B's addresses), so that the announcement and the subflow agree.
const B2_ID: u8 = 2;

/// Announce B2 (Address ID `B2_ID`) on B's first pure ACK to A after the
/// handshake, with the right HMAC or a wrong one; what A then sent.
fn announce(good: bool) -> (Net, Vec<TcpRepr>) {
    use std::cell::RefCell;
    use std::rc::Rc;
    let mut n = Net::new(2);
    n.b.listen(80).ok();
    let keys: Rc<RefCell<Option<(u64, u64)>>> = Rc::default();
    let sent_by_a: Rc<RefCell<Vec<TcpRepr>>> = Rc::default();
    let (k, log) = (keys.clone(), sent_by_a.clone());
    let mut done = false;
    n.filter = Box::new(move |from_a, on_join, seg, len| {
        if from_a {
            log.borrow_mut().push(*seg);
            if k.borrow().is_none() {
                *k.borrow_mut() = keys_of(seg);
            }
            return Fate::Pass;
        }
        let pure_ack = len == 0 && !seg.flags.syn() && seg.flags.ack() && !seg.flags.fin();
        match *k.borrow() {
            Some((ka, kb)) if !done && !on_join && pure_ack => {
                done = true;
                let ip = IP_B2.into();
                let h = xdptcp::mptcp::crypto::add_addr_hmac(Key(kb), Key(ka), B2_ID, ip, None);
                Fate::Replace(add_addr(seg, B2_ID, IP_B2, Some(h ^ u64::from(!good))))
            }
            _ => Fate::Pass,
        }
    });
    let mut cb = n.b.config().clone();
    cb.addrs.push(Ipv4Cidr {
        addr: IP_B2,
        prefix: 24,
    });
    // B's own announcements off: only the one made by hand here.
    cb.tcp.mptcp_announce = false;
    n.b = Stack::new(cb, TestDevice::new(1024), Instant::ZERO);
    n.b.listen(80).unwrap();
    let (id, _) = n.connect(b"first subflow");
    // B acknowledges this with a pure ACK (its delayed ACK).
    n.a.send(id, b"more").unwrap();
    n.run_for(Duration::from_millis(200));
    let sent = sent_by_a.borrow().clone();
    (n, sent)
}

#[test]
fn a_removed_address_takes_its_subflow_with_it() {
    let (mut n, _) = announce(true);
    assert_eq!(
        n.a.connections()
            .filter(|(t, _)| *t.remote.ip() == IP_B2)
            .count(),
        1
    );
    // RFC 8684 §3.4.2: B withdraws B2 on its next pure ACK on the first
    // subflow.
    let first_port =
        n.a.connections()
            .find(|(t, _)| *t.local.ip() == IP_A && *t.remote.ip() == IP_B)
            .unwrap()
            .0
            .local
            .port();
    let mut done = false;
    n.filter = Box::new(move |from_a, _, seg, len| {
        if from_a
            || done
            || seg.dst_port != first_port
            || len > 0
            || seg.flags.syn()
            || seg.flags.fin()
        {
            return Fate::Pass;
        }
        done = true;
        let mut ids = [0u8; 37];
        ids[0] = B2_ID;
        let o = MptcpOption::RemoveAddr(xdptcp::wire::mptcp::RemoveAddr { count: 1, ids });
        let mut b = [0u8; 40];
        let k = o.emit(&mut b);
        let mut s = *seg;
        s.options.mptcp = MptcpRaw::from_slice(&b[..k]).unwrap();
        Fate::Replace(tcp_frame_ips(IP_B, IP_A, &s, &[]))
    });
    assert_eq!(
        n.a.connections().count(),
        3,
        "the first subflow and two joins"
    );
    // A's data makes B send a pure ACK (its delayed ACK) on the subflow
    // the scheduler put it on: a few writes, until one went on the first.
    for _ in 0..20 {
        n.a.send(n.id.unwrap(), b"once more").unwrap();
        n.run_for(Duration::from_millis(50));
        if n.a.counters().mptcp_remove_addr_received > 0 {
            break;
        }
    }
    let c = n.a.counters();
    assert_eq!(c.mptcp_remove_addr_received, 1);
    assert_eq!(c.mptcp_subflows_removed, 1);
    assert!(n.a.connections().all(|(t, _)| *t.remote.ip() != IP_B2));
    // A2 -> B stays, and the connection with it.
    assert_eq!(n.a.connections().count(), 2);
}

fn echoes(sent: &[TcpRepr]) -> usize {
    sent.iter()
        .flat_map(mp_opts)
        .filter(|o| matches!(o, MptcpOption::AddAddr(a) if a.echo && a.addr_id == B2_ID && a.hmac.is_none()))
        .count()
}

#[test]
fn an_announced_address_is_echoed_and_joined() {
    let (n, sent) = announce(true);
    let c = n.a.counters();
    assert_eq!(c.mptcp_add_addr_received, 1);
    assert_eq!(c.mptcp_add_addr_bad_hmac, 0);
    assert_eq!(echoes(&sent), 1, "one echo (RFC 8684 §3.4.1 E flag)");
    // Full mesh, limit 2: A2 -> B (ID 0) and one pair to B2.
    assert_eq!(c.mptcp_join_syns_sent, 2);
    assert_eq!(c.mptcp_subflows_opened, 2);
    let to_b2 =
        n.a.connections()
            .filter(|(t, _)| *t.remote.ip() == IP_B2)
            .count();
    assert_eq!(to_b2, 1);
}

#[test]
fn an_announcement_with_a_bad_hmac_is_ignored() {
    let (n, sent) = announce(false);
    let c = n.a.counters();
    assert_eq!(c.mptcp_add_addr_received, 0);
    assert_eq!(c.mptcp_add_addr_bad_hmac, 1);
    assert_eq!(echoes(&sent), 0);
    assert!(n.a.connections().all(|(t, _)| *t.remote.ip() != IP_B2));
}

/// RFC 8684 §3.5: the application aborts the connection: a RST with
/// MP_FASTCLOSE (the peer's key) on each subflow; the peer drops it all.
#[test]
fn an_abort_sends_mp_fastclose_on_every_subflow() {
    let mut n = Net::new(2);
    let (id, _) = n.connect(b"first subflow");
    n.run_for(Duration::from_millis(100));
    assert_eq!(n.a.counters().mptcp_subflows_opened, 1);
    let log: std::rc::Rc<std::cell::RefCell<Vec<TcpRepr>>> = Default::default();
    let l = log.clone();
    n.filter = Box::new(move |from_a, _, seg, _| {
        if from_a && seg.flags.rst() {
            l.borrow_mut().push(*seg);
        }
        Fate::Pass
    });
    n.a.abort(id).unwrap();
    n.run_for(Duration::from_millis(100));
    let rsts = log.borrow();
    assert_eq!(rsts.len(), 2, "{rsts:?}");
    for r in rsts.iter() {
        assert!(
            mp_opts(r)
                .iter()
                .any(|o| matches!(o, MptcpOption::MpFastclose { .. })),
            "{r:?}"
        );
    }
    assert_eq!(n.a.counters().mptcp_fastcloses_sent, 2);
    assert_eq!(n.a.counters().mptcp_subflows_closed, 1);
    assert_eq!(n.a.connections().count(), 0);
    assert_eq!(n.b.connections().count(), 0);
}

/// B with its second address B2 announcing it itself (RFC 8684 §3.4.1):
/// every segment B sent is logged in the returned list.
fn server_announcing(drop_echoes: bool) -> (Net, std::rc::Rc<std::cell::RefCell<Vec<TcpRepr>>>) {
    let mut n = Net::new(2);
    let mut cb = n.b.config().clone();
    cb.addrs.push(Ipv4Cidr {
        addr: IP_B2,
        prefix: 24,
    });
    n.b = Stack::new(cb, TestDevice::new(1024), Instant::ZERO);
    n.b.listen(80).unwrap();
    let log: std::rc::Rc<std::cell::RefCell<Vec<TcpRepr>>> = Default::default();
    let l = log.clone();
    n.filter = Box::new(move |from_a, _, seg, _| {
        if !from_a {
            l.borrow_mut().push(*seg);
        } else if drop_echoes
            && mp_opts(seg)
                .iter()
                .any(|o| matches!(o, MptcpOption::AddAddr(a) if a.echo))
        {
            return Fate::Drop;
        }
        Fate::Pass
    });
    (n, log)
}

/// B's ADD_ADDR options (not echoes), in the order sent.
fn announcements(sent: &[TcpRepr]) -> Vec<xdptcp::wire::mptcp::AddAddr> {
    sent.iter()
        .flat_map(mp_opts)
        .filter_map(|o| match o {
            MptcpOption::AddAddr(a) if !a.echo => Some(a),
            _ => None,
        })
        .collect()
}

#[test]
fn our_server_announces_its_other_address_and_our_client_joins_it() {
    let (mut n, log) = server_announcing(false);
    let (id, bid) = n.connect(b"first subflow");
    n.run_for(Duration::from_millis(300));
    let sent = log.borrow().clone();
    let ann = announcements(&sent);
    // One announcement, of B2 only (B is the first subflow's, ID 0), under
    // the ID B's SYN/ACK of a join to B2 carries (1 + its place), with the
    // HMAC of RFC 8684 §3.4.1 (B's key first).
    assert_eq!(ann.len(), 1, "{ann:?}");
    let a = ann[0];
    assert_eq!((a.addr_id, a.addr, a.port), (B2_ID, IP_B2.into(), None));
    let cb = n.b.counters();
    assert_eq!(cb.mptcp_add_addr_sent, 1);
    assert_eq!(cb.mptcp_add_addr_echoed, 1);
    assert_eq!(cb.mptcp_add_addr_retransmits, 0);
    let ca = n.a.counters();
    assert_eq!(ca.mptcp_add_addr_received, 1);
    assert_eq!(
        ca.mptcp_add_addr_bad_hmac, 0,
        "our HMAC is the one A checks"
    );
    // Full mesh, limit 2: A2 -> B and A -> B2, both opened.
    assert_eq!(ca.mptcp_subflows_opened, 2);
    assert_eq!(
        n.a.connections()
            .filter(|(t, _)| *t.remote.ip() == IP_B2)
            .count(),
        1
    );
    // The SYN/ACK of the join to B2 names it as announced.
    let synack_id = sent
        .iter()
        .filter(|s| s.flags.syn() && s.flags.ack())
        .filter_map(|s| match join_of(s) {
            Some(MpJoin::SynAck { addr_id, .. }) => Some(addr_id),
            _ => None,
        })
        .collect::<Vec<_>>();
    assert!(synack_id.contains(&B2_ID), "{synack_id:?}");
    assert_eq!(n.b.counters().mptcp_joins_accepted, 2);
    n.echo(id, bid, b"over three subflows");
}

#[test]
fn an_announcement_is_retransmitted_until_echoed_backing_off_and_bounded() {
    let (mut n, log) = server_announcing(true);
    n.connect(b"first subflow");
    n.run_for(Duration::from_secs(30));
    let times: Vec<usize> = log
        .borrow()
        .iter()
        .enumerate()
        .filter(|(_, s)| !announcements(std::slice::from_ref(*s)).is_empty())
        .map(|(i, _)| i)
        .collect();
    let cb = n.b.counters();
    // The first transmission and 3 retransmissions (no echo got through),
    // then no more.
    assert_eq!(times.len(), 4, "{times:?}");
    assert_eq!(cb.mptcp_add_addr_sent, 1);
    assert_eq!(cb.mptcp_add_addr_retransmits, 3);
    assert_eq!(cb.mptcp_add_addr_echoed, 0);
    // A echoed every one (the echoes were lost) and still joined B2.
    assert_eq!(n.a.counters().mptcp_add_addr_received, 4);
}

#[test]
fn no_announcement_when_off_or_when_joins_are_refused() {
    for (announce, subflows) in [(false, 2), (true, 0)] {
        let mut n = Net::new(2);
        let mut cb = n.b.config().clone();
        cb.addrs.push(Ipv4Cidr {
            addr: IP_B2,
            prefix: 24,
        });
        cb.tcp.mptcp_announce = announce;
        cb.tcp.mptcp_max_subflows = subflows;
        n.b = Stack::new(cb, TestDevice::new(1024), Instant::ZERO);
        n.b.listen(80).unwrap();
        n.connect(b"first subflow");
        n.run_for(Duration::from_millis(300));
        assert_eq!(n.b.counters().mptcp_add_addr_sent, 0);
        assert_eq!(n.a.counters().mptcp_add_addr_received, 0);
    }
}

/// A's subflows to B2.
fn to_b2(n: &Net) -> usize {
    n.a.connections()
        .filter(|(t, _)| *t.remote.ip() == IP_B2)
        .count()
}

/// RFC 8684 §3.4.2: B withdraws B2 (`Stack::mptcp_withdraw_address`):
/// one REMOVE_ADDR with B2's Address ID on the first subflow, B's subflow
/// over B2 reset, A forgets B2 and the connection carries on.
#[test]
fn a_withdrawn_address_is_removed_with_remove_addr() {
    let (mut n, log) = server_announcing(false);
    let (id, bid) = n.connect(b"first subflow");
    n.run_for(Duration::from_millis(300));
    assert_eq!(to_b2(&n), 1);
    let before = log.borrow().len();
    assert_eq!(n.b.mptcp_withdraw_address(IP_B2), 1);
    n.run_for(Duration::from_millis(300));
    let removes: Vec<(u16, Vec<u8>)> = log.borrow()[before..]
        .iter()
        .flat_map(|s| {
            mp_opts(s).into_iter().filter_map(move |o| match o {
                MptcpOption::RemoveAddr(r) => Some((s.dst_port, r.ids().to_vec())),
                _ => None,
            })
        })
        .collect();
    let first_port =
        n.a.connections()
            .find(|(t, _)| *t.local.ip() == IP_A && *t.remote.ip() == IP_B)
            .unwrap()
            .0
            .local
            .port();
    assert_eq!(removes, vec![(first_port, vec![B2_ID])]);
    let cb = n.b.counters();
    assert_eq!(cb.mptcp_remove_addr_sent, 1);
    assert_eq!(cb.mptcp_subflows_withdrawn, 1);
    assert_eq!(n.a.counters().mptcp_remove_addr_received, 1);
    assert_eq!(to_b2(&n), 0, "A's subflow to B2 is gone");
    assert!(n.b.connections().all(|(t, _)| *t.local.ip() != IP_B2));
    n.echo(id, bid, b"after the removal");
    // Not announced again, not joined again.
    n.run_for(Duration::from_secs(5));
    assert_eq!(to_b2(&n), 0);
    assert_eq!(n.b.counters().mptcp_add_addr_sent, 1);
}

/// B's address B2 comes back after its withdrawal
/// (`Stack::mptcp_restore_address`, an interface up again): B announces
/// it again (RFC 8684 §3.4.1: an Address ID may be reused after its
/// REMOVE_ADDR), A joins it again, and data flows over it.
#[test]
fn a_restored_address_is_announced_and_joined_again() {
    let (mut n, _log) = server_announcing(false);
    let (id, bid) = n.connect(b"first subflow");
    n.run_for(Duration::from_millis(300));
    assert_eq!(n.b.mptcp_withdraw_address(IP_B2), 1);
    n.run_for(Duration::from_millis(300));
    assert_eq!(to_b2(&n), 0);
    assert!(!n.b.mptcp_restore_address(IP_A), "never withdrawn");
    assert!(n.b.mptcp_restore_address(IP_B2));
    assert!(!n.b.mptcp_restore_address(IP_B2), "restored already");
    n.run_for(Duration::from_millis(300));
    let cb = n.b.counters();
    assert_eq!(cb.mptcp_add_addr_sent, 2, "{cb:?}");
    assert_eq!(cb.mptcp_add_addr_echoed, 2);
    assert_eq!(to_b2(&n), 1, "A joined B2 again");
    assert_eq!(n.b.counters().mptcp_joins_accepted, 3);
    n.echo(id, bid, b"after the return");
}
