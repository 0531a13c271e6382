//! Packet scripts for the passive MP_JOIN handshake at the stack level
//! (RFC 8684 §3.2): a hand-driven peer opens an MPTCP connection, then
//! joins extra subflows to it. Checked segment by segment: our SYN/ACK's
//! truncated HMAC and nonce, the third ACK's full HMAC verified, the fourth
//! ACK, and every refusal (unknown token, bad HMAC, subflow limit) as RST
//! with MP_TCPRST "MPTCP-specific error", counted by reason. The HMAC
//! functions themselves are checked against a Linux capture in
//! `src/mptcp/join/tests.rs`. Then data over two subflows (RFC 8684
//! §3.3): one stream interleaved over both, out of order at the data
//! level, reinjected duplicates, the DATA_FIN on the joined subflow, and
//! the Data ACK and the one receive window on both.

mod common;
use common::*;
use xdptcp::app::Event;
use xdptcp::mptcp::crypto::{dss_checksum, join_hmac_160, join_hmac_64, Key};
use xdptcp::mptcp::sched::SchedKind;
use xdptcp::stack::{RemoteMsg, Stack};
use xdptcp::tcp::MptcpCc;
use xdptcp::time::Instant;
use xdptcp::wire::checksum::sum;
use xdptcp::wire::mptcp::{Dss, DssMapping, MpCapable, MpJoin, MptcpOption};
use xdptcp::wire::{MptcpRaw, SeqNumber, TcpFlags, TcpOptions, TcpRepr};

/// The peer's key (host A of RFC 8684 §3.2) and its join nonces.
const KEY_A: Key = Key(0x38ae6ee5132aa987);
const PEER_ISS: u32 = 1000;

fn raw(opts: &[MptcpOption]) -> MptcpRaw {
    let mut r = MptcpRaw::default();
    for o in opts {
        let mut b = [0u8; 40];
        let n = o.emit(&mut b);
        assert!(r.append(&b[..n]));
    }
    r
}

fn mp_opts(seg: &TcpRepr) -> Vec<MptcpOption> {
    seg.options
        .mptcp
        .options()
        .map(|b| MptcpOption::parse(b).unwrap())
        .collect()
}

fn seg(port: u16, seq: u32, ack: u32, flags: TcpFlags, mp: &[MptcpOption]) -> TcpRepr {
    TcpRepr {
        src_port: port,
        dst_port: 80,
        seq: SeqNumber(seq),
        ack: SeqNumber(ack),
        flags,
        window: 65535,
        options: TcpOptions {
            mss: flags.syn().then_some(1460),
            mptcp: raw(mp),
            ..TcpOptions::default()
        },
        ..TcpRepr::default()
    }
}

struct Peer {
    s: Stack<TestDevice>,
    now: Instant,
    /// Our (the stack's) key, learnt from its SYN/ACK.
    key_b: Key,
    /// The connection, and our ISS on its first subflow.
    id: Option<xdptcp::stack::ConnId>,
    iss0: u32,
    /// The DSS checksum is in use: our mappings carry it.
    csum: bool,
    /// The receive buffer asked for, if not the default.
    rcv_buf: Option<usize>,
}

impl Peer {
    /// Send `seg` and return what the stack answers.
    fn send(&mut self, seg: &TcpRepr) -> Vec<TcpRepr> {
        self.now += std::time::Duration::from_millis(1);
        rx(&mut self.s, self.now, &tcp_frame_b_to_a(seg, &[]));
        self.s.poll(self.now);
        self.s
            .device_mut()
            .take_tx()
            .iter()
            .map(|f| parse_tcp(f).2)
            .collect()
    }

    /// A stack listening on 80 with one MPTCP connection from port 5000.
    fn connected(max_subflows: u8) -> Peer {
        Self::connected_with(max_subflows, None)
    }

    /// As `connected`, with a receive buffer of `rcv_buf` bytes.
    fn connected_with(max_subflows: u8, rcv_buf: Option<usize>) -> Peer {
        Self::connected_sched(max_subflows, rcv_buf, SchedKind::MinRtt)
    }

    /// As `connected_with`, our data scheduled by `sched`.
    fn connected_sched(max_subflows: u8, rcv_buf: Option<usize>, sched: SchedKind) -> Peer {
        Self::connected_cc(max_subflows, rcv_buf, sched, MptcpCc::Uncoupled)
    }

    /// As `connected_sched`, with the subflows' congestion control `cc`.
    fn connected_cc(
        max_subflows: u8,
        rcv_buf: Option<usize>,
        sched: SchedKind,
        cc: MptcpCc,
    ) -> Peer {
        Self::connected_full(max_subflows, rcv_buf, sched, cc, false)
    }

    /// As `connected`, our side asking for the DSS checksum (RFC 8684
    /// §3.3.1): every mapping the peer sends carries one.
    fn connected_checksum(max_subflows: u8) -> Peer {
        let p = Self::connected_full(
            max_subflows,
            None,
            SchedKind::MinRtt,
            MptcpCc::Uncoupled,
            true,
        );
        assert!(p.csum);
        p
    }

    fn connected_full(
        max_subflows: u8,
        rcv_buf: Option<usize>,
        sched: SchedKind,
        cc: MptcpCc,
        csum: bool,
    ) -> Peer {
        let dev = TestDevice::new(256);
        Self::connected_dev(max_subflows, rcv_buf, (sched, cc), csum, dev)
    }

    /// As `connected_full`, the stack on `dev`.
    fn connected_dev(
        max_subflows: u8,
        rcv_buf: Option<usize>,
        (sched, cc): (SchedKind, MptcpCc),
        csum: bool,
        dev: TestDevice,
    ) -> Peer {
        let mut cfg = config(MAC_A, IP_A);
        cfg.tcp.mptcp_checksum = csum;
        cfg.tcp.mptcp_scheduler = sched;
        if let Some(b) = rcv_buf {
            cfg.tcp.rcv_buf = b;
        }
        cfg.tcp.mptcp_cc = cc;
        cfg.tcp.mptcp = true;
        cfg.tcp.mptcp_max_subflows = max_subflows;
        let mut s = Stack::new(cfg, dev, Instant::ZERO);
        s.listen(80).unwrap();
        rx(&mut s, Instant::ZERO, &arp_request_b_for_a());
        s.poll(Instant::ZERO);
        s.device_mut().take_tx();
        let mut p = Peer {
            s,
            now: Instant::ZERO,
            key_b: Key(0),
            id: None,
            iss0: 0,
            csum,
            rcv_buf,
        };
        let cap = |sender, receiver| {
            MptcpOption::MpCapable(MpCapable {
                version: 1,
                flags: 0x01,
                sender_key: sender,
                receiver_key: receiver,
                ..MpCapable::default()
            })
        };
        let out = p.send(&seg(5000, PEER_ISS, 0, TcpFlags::SYN, &[cap(None, None)]));
        assert_eq!(out.len(), 1);
        let sa = &out[0];
        p.key_b = match mp_opts(sa).as_slice() {
            [MptcpOption::MpCapable(MpCapable {
                sender_key: Some(k),
                ..
            })] => Key(*k),
            o => panic!("SYN/ACK without MP_CAPABLE key: {o:?}"),
        };
        let third = seg(
            5000,
            PEER_ISS + 1,
            sa.seq.0 + 1,
            TcpFlags::ACK,
            &[cap(Some(KEY_A.0), Some(p.key_b.0))],
        );
        p.send(&third);
        p.iss0 = sa.seq.0;
        match p.s.next_event() {
            Some(Event::Accepted { id, .. }) => p.id = Some(id),
            e => panic!("expected Accepted, got {e:?}"),
        }
        assert_eq!(p.s.counters().mptcp_established, 1);
        p
    }

    fn join_syn(&mut self, port: u16, token: u32, nonce: u32) -> Vec<TcpRepr> {
        let j = MptcpOption::MpJoin(MpJoin::Syn {
            backup: true,
            addr_id: 1,
            token,
            nonce,
        });
        self.send(&seg(port, PEER_ISS, 0, TcpFlags::SYN, &[j]))
    }

    /// A join up to our SYN/ACK: returns it and our nonce R-B, after
    /// checking its HMAC-B against the keys and nonces.
    fn join_to_syn_ack(&mut self, port: u16, r_a: u32) -> (TcpRepr, u32) {
        let out = self.join_syn(port, self.key_b.token(), r_a);
        assert_eq!(out.len(), 1, "{out:?}");
        let sa = out[0];
        assert_eq!(sa.flags, TcpFlags::SYN | TcpFlags::ACK);
        assert_eq!(sa.ack.0, PEER_ISS + 1);
        let (hmac, r_b, addr_id) = match mp_opts(&sa).as_slice() {
            [MptcpOption::MpJoin(MpJoin::SynAck {
                hmac,
                nonce,
                addr_id,
                ..
            })] => (*hmac, *nonce, *addr_id),
            o => panic!("SYN/ACK without MP_JOIN: {o:?}"),
        };
        // RFC 8684 §3.2: HMAC-B = HMAC(Key=(Key-B + Key-A), Msg=(R-B + R-A)),
        // leftmost 64 bits; address ID 0: the first subflow's address.
        assert_eq!(hmac, join_hmac_64(self.key_b, KEY_A, r_b, r_a));
        assert_eq!(addr_id, 0);
        (sa, r_b)
    }

    /// Send `seg` carrying `payload`; return what the stack answers.
    fn send_data(&mut self, seg: &TcpRepr, payload: &[u8]) -> Vec<TcpRepr> {
        self.now += std::time::Duration::from_millis(1);
        rx(&mut self.s, self.now, &tcp_frame_b_to_a(seg, payload));
        self.s.poll(self.now);
        self.s
            .device_mut()
            .take_tx()
            .iter()
            .map(|f| parse_tcp(f).2)
            .collect()
    }

    /// A joined subflow from `port`, through the fourth ACK: our ISS on it.
    fn joined(&mut self, port: u16, r_a: u32) -> u32 {
        let (sa, r_b) = self.join_to_syn_ack(port, r_a);
        let out = self.third_ack(port, &sa, join_hmac_160(KEY_A, self.key_b, r_a, r_b));
        assert_eq!(out.len(), 1, "the fourth ACK: {out:?}");
        sa.seq.0
    }

    /// `data` (the stream's bytes from data offset `off`) sent on the
    /// subflow from `port` at subflow offset `sub`, with its DSS mapping
    /// (`fin`: the DATA_FIN follows it); `iss` is our ISS there.
    fn data(
        &mut self,
        port: u16,
        iss: u32,
        sub: u32,
        off: u64,
        data: &[u8],
        fin: bool,
    ) -> Vec<TcpRepr> {
        let (dsn, ssn, len) = (
            KEY_A.idsn() + 1 + off,
            sub + 1,
            data.len() as u16 + fin as u16,
        );
        let d = MptcpOption::Dss(Dss {
            data_ack: Some(self.key_b.idsn() + 1),
            ack64: true,
            mapping: Some(DssMapping {
                dsn,
                dsn64: true,
                ssn,
                len,
                checksum: self.csum.then(|| dss_checksum(dsn, ssn, len, sum(data))),
            }),
            data_fin: fin,
        });
        let sg = seg(port, PEER_ISS + 1 + sub, iss + 1, TcpFlags::ACK, &[d]);
        self.send_data(&sg, data)
    }

    /// What the application can read now.
    fn read(&mut self) -> Vec<u8> {
        let mut buf = vec![0u8; 1 << 16];
        let id = self.id.unwrap();
        let n = self.s.recv(id, &mut buf).unwrap();
        buf.truncate(n);
        buf
    }

    fn third_ack(&mut self, port: u16, sa: &TcpRepr, hmac: [u8; 20]) -> Vec<TcpRepr> {
        let j = MptcpOption::MpJoin(MpJoin::Ack { hmac });
        self.send(&seg(port, PEER_ISS + 1, sa.seq.0 + 1, TcpFlags::ACK, &[j]))
    }
}

/// The RST of a refused join: RST + MP_TCPRST reason 0x01.
fn assert_join_rst(out: &[TcpRepr]) {
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].flags.rst(), "{:?}", out[0]);
    assert_eq!(
        mp_opts(&out[0]),
        vec![MptcpOption::MpTcpRst {
            flags: 0,
            reason: 0x01
        }]
    );
}

#[test]
fn join_completes_with_verified_hmac_and_fourth_ack() {
    let mut p = Peer::connected(2);
    let r_a = 0xf4908819;
    let (sa, r_b) = p.join_to_syn_ack(5001, r_a);
    // Not yet a subflow: the third ACK is still to come.
    assert_eq!(p.s.counters().mptcp_joins_accepted, 0);
    // RFC 8684 §3.2: HMAC-A = HMAC(Key=(Key-A + Key-B), Msg=(R-A + R-B)).
    let out = p.third_ack(5001, &sa, join_hmac_160(KEY_A, p.key_b, r_a, r_b));
    // The fourth ACK, at once, with the connection's Data ACK (RFC 8684
    // §3.3.2: it may go on any subflow); no MP_PRIO: the subflow takes
    // data like the first.
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].flags, TcpFlags::ACK);
    assert_eq!(
        mp_opts(&out[0]),
        vec![MptcpOption::Dss(Dss {
            data_ack: Some(KEY_A.idsn() + 1),
            ack64: true,
            mapping: None,
            data_fin: false,
        })]
    );
    assert_eq!(out[0].ack.0, PEER_ISS + 1);
    assert_eq!(out[0].seq, sa.seq + 1);
    let c = p.s.counters();
    assert_eq!(c.mptcp_joins_accepted, 1);
    assert_eq!(c.mptcp_joins_rejected_hmac, 0);
    // The application sees the connection only, not its subflows.
    assert!(p.s.next_event().is_none());
    assert_eq!(p.s.mptcp_tokens(), 1);
}

/// `MptcpCc::Lia` (RFC 6356): the joined subflow's window is coupled
/// with the first subflow's; uncoupled by default.
#[test]
fn lia_couples_the_joined_subflow_with_the_first() {
    for (cc, coupled) in [(MptcpCc::Uncoupled, [0, 0]), (MptcpCc::Lia, [1, 2])] {
        let mut p = Peer::connected_cc(2, None, SchedKind::MinRtt, cc);
        let id = p.id.expect("connection");
        assert_eq!(p.s.mptcp_coupled(id), coupled[0], "{cc:?}");
        let r_a = 0x1234;
        let (sa, r_b) = p.join_to_syn_ack(5001, r_a);
        p.third_ack(5001, &sa, join_hmac_160(KEY_A, p.key_b, r_a, r_b));
        assert_eq!(p.s.counters().mptcp_joins_accepted, 1);
        assert_eq!(p.s.mptcp_coupled(id), coupled[1], "{cc:?}");
    }
}

#[test]
fn unknown_token_is_refused_with_mp_tcprst() {
    let mut p = Peer::connected(2);
    let out = p.join_syn(5001, p.key_b.token() ^ 1, 7);
    assert_join_rst(&out);
    // <SEQ=0><ACK=SEG.SEQ+1><CTL=RST,ACK> (RFC 9293 §3.10.7.1).
    assert_eq!(out[0].ack.0, PEER_ISS + 1);
    assert_eq!(p.s.counters().mptcp_joins_rejected_token, 1);
    assert!(p.s.next_event().is_none());
}

#[test]
fn bad_hmac_in_third_ack_resets_the_subflow() {
    let mut p = Peer::connected(2);
    let r_a = 11;
    let (sa, r_b) = p.join_to_syn_ack(5001, r_a);
    let mut h = join_hmac_160(KEY_A, p.key_b, r_a, r_b);
    h[19] ^= 0x80;
    let out = p.third_ack(5001, &sa, h);
    assert_join_rst(&out);
    assert_eq!(out[0].seq, sa.seq + 1);
    let c = p.s.counters();
    assert_eq!(c.mptcp_joins_rejected_hmac, 1);
    assert_eq!(c.mptcp_joins_accepted, 0);
    // A third ACK without the MP_JOIN at all is refused the same way.
    let (sa, _) = p.join_to_syn_ack(5002, 12);
    let out = p.send(&seg(5002, PEER_ISS + 1, sa.seq.0 + 1, TcpFlags::ACK, &[]));
    assert_join_rst(&out);
    assert_eq!(p.s.counters().mptcp_joins_rejected_hmac, 2);
    // The connection itself is untouched and still holds its token.
    assert_eq!(p.s.mptcp_tokens(), 1);
    assert!(p.s.next_event().is_none());
}

#[test]
fn joins_are_refused_by_default() {
    // `mptcp_max_subflows` 0, the default: no extra subflow at all.
    let mut p = Peer::connected(0);
    let out = p.join_syn(5001, p.key_b.token(), 31);
    assert_join_rst(&out);
    assert_eq!(p.s.counters().mptcp_joins_rejected_limit, 1);
    assert_eq!(xdptcp::tcp::Config::default().mptcp_max_subflows, 0);
}

#[test]
fn subflows_beyond_the_limit_are_refused_and_freed_places_reused() {
    let mut p = Peer::connected(1);
    let (sa, r_b) = p.join_to_syn_ack(5001, 21);
    p.third_ack(5001, &sa, join_hmac_160(KEY_A, p.key_b, 21, r_b));
    assert_eq!(p.s.counters().mptcp_joins_accepted, 1);
    // One extra subflow is the limit: the next join is refused.
    let out = p.join_syn(5002, p.key_b.token(), 22);
    assert_join_rst(&out);
    assert_eq!(p.s.counters().mptcp_joins_rejected_limit, 1);
    // The first extra subflow goes (the peer resets it): its place is free.
    let rst = seg(5001, PEER_ISS + 1, 0, TcpFlags::RST, &[]);
    p.send(&rst);
    p.join_to_syn_ack(5003, 23);
    assert_eq!(p.s.counters().mptcp_joins_rejected_limit, 1);
}

/// The stream's bytes from offset `off`.
fn stream(off: usize, len: usize) -> Vec<u8> {
    (off..off + len).map(|i| (i * 7 + i / 251) as u8).collect()
}

/// The Data ACK of a segment we sent.
fn data_ack(seg: &TcpRepr) -> Option<u64> {
    mp_opts(seg).iter().find_map(|o| match o {
        MptcpOption::Dss(d) => d.data_ack,
        _ => None,
    })
}

#[test]
fn one_stream_interleaved_over_two_subflows_is_read_in_order() {
    let mut p = Peer::connected(2);
    let iss1 = p.joined(5001, 41);
    let iss0 = p.iss0;
    // Data offsets 0..100 on the first subflow, 100..300 on the joined
    // one, 300..400 on the first again (its subflow offset 100).
    p.data(5000, iss0, 0, 0, &stream(0, 100), false);
    let out = p.data(5001, iss1, 0, 100, &stream(100, 200), false);
    p.data(5000, iss0, 100, 300, &stream(300, 100), false);
    assert_eq!(p.read(), stream(0, 400));
    let c = p.s.counters();
    assert_eq!(c.mptcp_mapping_mismatches, 0);
    assert_eq!(p.s.recv_available(p.id.unwrap()).unwrap(), 0);
    // The joined subflow's ACK of its bytes carries the connection's Data
    // ACK (RFC 8684 §3.3.2) as it stood then.
    if let Some(a) = out.last() {
        assert_eq!(a.ack.0, PEER_ISS + 1 + 200);
        assert_eq!(data_ack(a), Some(KEY_A.idsn() + 1 + 300));
    }
    assert_eq!(p.s.counters().mptcp_joined_bytes, 200);
}

#[test]
fn a_gap_at_the_data_level_held_by_the_other_subflow() {
    let mut p = Peer::connected(2);
    let iss1 = p.joined(5001, 42);
    let iss0 = p.iss0;
    // The joined subflow's chunk (data offsets 100..200) arrives first: in
    // order on its subflow, ahead at the data level. Acknowledged on the
    // subflow at once, the Data ACK still at the gap, nothing readable.
    let out = p.data(5001, iss1, 0, 100, &stream(100, 100), false);
    let a = out.last().expect("an ACK on the joined subflow");
    assert_eq!(a.dst_port, 5001);
    assert_eq!(a.ack.0, PEER_ISS + 101);
    assert_eq!(data_ack(a), Some(KEY_A.idsn() + 1));
    assert_eq!(p.s.recv_available(p.id.unwrap()).unwrap(), 0);
    assert!(std::iter::from_fn(|| p.s.next_event()).all(|e| !matches!(e, Event::Readable { .. })));
    // The first subflow fills the gap: all 200 bytes, in data order, and
    // its ACK carries the Data ACK past both.
    let out = p.data(5000, iss0, 0, 0, &stream(0, 100), false);
    let a = out.last().expect("an ACK on the first subflow");
    assert_eq!(data_ack(a), Some(KEY_A.idsn() + 1 + 200));
    assert!(std::iter::from_fn(|| p.s.next_event()).any(|e| matches!(e, Event::Readable { .. })));
    assert_eq!(p.read(), stream(0, 200));
    assert_eq!(p.s.counters().mptcp_data_ooo, 1);
}

#[test]
fn data_reinjected_on_the_other_subflow_is_trimmed() {
    // A peer whose subflow fails reinjects its unacknowledged data at the
    // connection level on another subflow (RFC 8684 §3.3.6; Linux does):
    // the data level already has part of it.
    let mut p = Peer::connected(2);
    let iss1 = p.joined(5001, 43);
    let iss0 = p.iss0;
    p.data(5000, iss0, 0, 0, &stream(0, 300), false);
    // 200..400 again on the joined subflow (200..300 old), then 0..100
    // wholly old.
    p.data(5001, iss1, 0, 200, &stream(200, 200), false);
    p.data(5001, iss1, 200, 0, &stream(0, 100), false);
    assert_eq!(p.read(), stream(0, 400));
    let c = p.s.counters();
    assert_eq!(c.mptcp_data_dups, 2);
    assert_eq!(c.mptcp_mapping_mismatches, 0);
    assert_eq!(c.mptcp_joined_bytes, 100);
}

#[test]
fn data_fin_on_the_joined_subflow_ends_the_data_once_all_is_in() {
    let mut p = Peer::connected(2);
    let iss1 = p.joined(5001, 44);
    let iss0 = p.iss0;
    // The last bytes and the DATA_FIN on the joined subflow, before the
    // first subflow's bytes: no end of data yet.
    p.data(5001, iss1, 0, 100, &stream(100, 50), true);
    let evs: Vec<_> = std::iter::from_fn(|| p.s.next_event()).collect();
    assert!(
        !evs.iter().any(|e| matches!(e, Event::ReadClosed { .. })),
        "{evs:?}"
    );
    let out = p.data(5000, iss0, 0, 0, &stream(0, 100), false);
    let evs: Vec<_> = std::iter::from_fn(|| p.s.next_event()).collect();
    assert_eq!(
        evs.iter()
            .filter(|e| matches!(e, Event::ReadClosed { .. }))
            .count(),
        1,
        "{evs:?}"
    );
    // The Data ACK covers the DATA_FIN (RFC 8684 §3.3.3).
    let a = out.last().expect("an ACK");
    assert_eq!(data_ack(a), Some(KEY_A.idsn() + 1 + 150 + 1));
    assert_eq!(p.read(), stream(0, 150));
}

#[test]
fn every_subflow_offers_the_connections_window() {
    // RFC 8684 §3.3.4: one receive window for the connection. Unread data
    // that arrived on the first subflow narrows the window the joined
    // subflow advertises too (no window scaling here: a buffer below 64 KiB).
    let mut p = Peer::connected_with(2, Some(60_000));
    let iss1 = p.joined(5001, 45);
    let iss0 = p.iss0;
    // Data ahead at the data level on the joined subflow: acknowledged at
    // once, with the window as it stands.
    let out = p.data(5001, iss1, 0, 50_000, &stream(50_000, 1000), false);
    let w0 = out.last().expect("an ACK").window;
    // 20 KB arrive on the first subflow and stay unread.
    let mut off = 0u64;
    for _ in 0..20 {
        let sub = off as u32;
        p.data(5000, iss0, sub, off, &stream(off as usize, 1000), false);
        off += 1000;
    }
    // The joined subflow's next ACK: its right edge may not run past the
    // connection's free space (it would without the cap: its own queue is
    // empty).
    let out = p.data(5001, iss1, 1000, 51_000, &stream(51_000, 1000), false);
    let w1 = out.last().expect("an ACK").window;
    assert!(w1 < w0, "joined subflow's window {w1} not below {w0}");
}

#[test]
fn a_joined_subflow_takes_data_up_to_the_connections_window() {
    // RFC 8684 §3.3.4: a segment is acceptable when its data lies within
    // the connection-level window, even beyond the window its own subflow
    // last advertised: the peer learnt the connection's edge on another
    // subflow (Linux sends up to it on any subflow).
    let mut p = Peer::connected_with(2, Some(60_000));
    let iss1 = p.joined(5001, 46);
    let iss0 = p.iss0;
    // 27 KB on the joined subflow, unread: its window narrows to little.
    let mut out = Vec::new();
    let n = 27u32;
    for k in 0..n {
        let o = k as usize * 1000;
        out = p.data(5001, iss1, k * 1000, o as u64, &stream(o, 1000), false);
    }
    let w1 = out.last().expect("an ACK").window as u32;
    assert!(w1 < 4000, "window {w1}");
    // The application reads; the window reopens, and the first subflow
    // (not the joined one) tells the peer, acknowledging 3 KB.
    let mut off = n as usize * 1000;
    assert_eq!(p.read().len(), off);
    for k in 0..3u32 {
        out = p.data(5000, iss0, k * 1000, off as u64, &stream(off, 1000), false);
        off += 1000;
    }
    let a = out.last().expect("an ACK");
    assert_eq!(data_ack(a), Some(KEY_A.idsn() + 1 + off as u64));
    assert!(a.window as u32 > 4 * w1, "{a:?}");
    assert_eq!(p.read().len(), 3000);
    // 8 KB on the joined subflow, last segment first: beyond its own
    // right edge (subflow offset 27000 + w1) and out of order there,
    // within the connection's window (DATA_ACK + window).
    let before = p.s.counters().out_of_window;
    for k in (0..8u32).rev() {
        let o = off + k as usize * 1000;
        p.data(
            5001,
            iss1,
            n * 1000 + k * 1000,
            o as u64,
            &stream(o, 1000),
            false,
        );
    }
    let got = p.read();
    assert_eq!(got.len(), 8000, "dropped beyond the subflow's window");
    assert!(got == stream(off, 8000));
    assert_eq!(p.s.counters().out_of_window, before);
    assert_eq!(p.s.counters().mptcp_mapping_mismatches, 0);
}

/// The second interface's address, and the peer's there.
const IP_A2: std::net::Ipv4Addr = std::net::Ipv4Addr::new(198, 18, 1, 1);
const IP_B2: std::net::Ipv4Addr = std::net::Ipv4Addr::new(198, 18, 1, 2);

/// One worker's two stacks, one per interface, as the runtime runs them:
/// `frame` arrives at stack `at`, the worker routes MPTCP between them,
/// both transmit. Returns what each sent.
fn worker_rx(
    stacks: [&mut Stack<TestDevice>; 2],
    now: Instant,
    at: usize,
    frame: &[u8],
) -> [Vec<TcpRepr>; 2] {
    let mut stacks = stacks;
    rx(stacks[at], now, frame);
    xdptcp::stack::mptcp_route(&mut stacks);
    stacks.map(|s| {
        s.poll(now);
        s.device_mut()
            .take_tx()
            .iter()
            .filter(|f| f.len() > 34 && f[23] == 6)
            .map(|f| parse_tcp(f).2)
            .collect()
    })
}

/// The peer joins connection `p` (opened on interface A, stack `p.s`)
/// from its second address to our address on interface B, whose stack
/// (returned) holds no token: the worker finds the connection in A's
/// stack, and the subflow lives in B's. Returns B's stack, the subflow's
/// SYN/ACK (our ISS there) and the time.
fn join_on_second_interface(p: &mut Peer) -> (Stack<TestDevice>, TcpRepr, Instant) {
    let mut cfg2 = config(MAC_A, IP_A2);
    cfg2.tcp.mptcp = true;
    cfg2.tcp.mptcp_max_subflows = 2;
    if let Some(b) = p.rcv_buf {
        cfg2.tcp.rcv_buf = b;
    }
    let mut s2 = Stack::new(cfg2, TestDevice::new(256), p.now);
    s2.listen(80).unwrap();
    let arp = xdptcp::wire::ArpRepr {
        op: xdptcp::wire::ArpOp::Request,
        sender_mac: MAC_B,
        sender_ip: IP_B2,
        target_mac: xdptcp::wire::MacAddr::default(),
        target_ip: IP_A2,
    };
    rx(
        &mut s2,
        p.now,
        &arp_frame(xdptcp::wire::MacAddr::BROADCAST, arp),
    );
    s2.poll(p.now);
    s2.device_mut().take_tx();
    p.s.mptcp_set_shared(0);
    s2.mptcp_set_shared(1);
    let (key_b, r_a) = (p.key_b, 0x5151);
    let j = MptcpOption::MpJoin(MpJoin::Syn {
        backup: false,
        addr_id: 2,
        token: key_b.token(),
        nonce: r_a,
    });
    let now = p.now + std::time::Duration::from_millis(1);
    let syn = tcp_frame_ips(
        IP_B2,
        IP_A2,
        &seg(6000, PEER_ISS, 0, TcpFlags::SYN, &[j]),
        &[],
    );
    let [a, b] = worker_rx([&mut p.s, &mut s2], now, 1, &syn);
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(b.len(), 1, "{b:?}");
    let sa = b[0];
    let r_b = match mp_opts(&sa).as_slice() {
        [MptcpOption::MpJoin(MpJoin::SynAck { hmac, nonce, .. })] => {
            assert_eq!(*hmac, join_hmac_64(key_b, KEY_A, *nonce, r_a));
            *nonce
        }
        o => panic!("SYN/ACK without MP_JOIN: {o:?}"),
    };
    let third = MptcpOption::MpJoin(MpJoin::Ack {
        hmac: join_hmac_160(KEY_A, key_b, r_a, r_b),
    });
    let ack = seg(6000, PEER_ISS + 1, sa.seq.0 + 1, TcpFlags::ACK, &[third]);
    let [_, b] = worker_rx(
        [&mut p.s, &mut s2],
        now,
        1,
        &tcp_frame_ips(IP_B2, IP_A2, &ack, &[]),
    );
    assert_eq!(b.len(), 1, "the fourth ACK: {b:?}");
    assert_eq!(s2.counters().mptcp_joins_accepted, 1);
    (s2, sa, now)
}

/// A round of the worker with nothing received: it routes MPTCP
/// between its stacks and both transmit (nothing, here).
fn worker_idle(stacks: [&mut Stack<TestDevice>; 2], now: Instant) {
    let mut stacks = stacks;
    xdptcp::stack::mptcp_route(&mut stacks);
    for s in stacks {
        s.poll(now);
        let sent = s.device_mut().take_tx();
        assert!(sent.is_empty(), "{} frame(s) sent", sent.len());
    }
}

#[test]
fn a_join_on_another_interfaces_stack_carries_data_for_the_connection() {
    // The connection was opened on interface A (stack `p.s`); the peer
    // joins from its second address to our address on interface B, whose
    // stack holds no token: the worker finds the connection in A's stack,
    // the subflow lives in B's, and its data reaches the connection.
    let mut p = Peer::connected(2);
    let (mut s2, sa, now) = join_on_second_interface(&mut p);
    let key_b = p.key_b;
    // Data offsets 0..100 on the joined subflow (interface B), 100..200
    // on the first (interface A): one stream for the application on A.
    let d = |off: u64, sub: u32, len: u16| dss_at(key_b, off, sub, len);
    let s1 = seg(
        6000,
        PEER_ISS + 1,
        sa.seq.0 + 1,
        TcpFlags::ACK,
        &[d(0, 0, 100)],
    );
    worker_rx(
        [&mut p.s, &mut s2],
        now,
        1,
        &tcp_frame_ips(IP_B2, IP_A2, &s1, &stream(0, 100)),
    );
    assert_eq!(p.read(), stream(0, 100));
    let s0 = seg(
        5000,
        PEER_ISS + 1,
        p.iss0 + 1,
        TcpFlags::ACK,
        &[d(100, 0, 100)],
    );
    worker_rx(
        [&mut p.s, &mut s2],
        now,
        0,
        &tcp_frame_b_to_a(&s0, &stream(100, 100)),
    );
    assert_eq!(p.read(), stream(100, 100));
    // The subflow on B carries the connection's Data ACK.
    let s1 = seg(
        6000,
        PEER_ISS + 101,
        sa.seq.0 + 1,
        TcpFlags::ACK,
        &[d(200, 100, 10)],
    );
    let s1b = seg(
        6000,
        PEER_ISS + 121,
        sa.seq.0 + 1,
        TcpFlags::ACK,
        &[d(220, 120, 10)],
    );
    worker_rx(
        [&mut p.s, &mut s2],
        now,
        1,
        &tcp_frame_ips(IP_B2, IP_A2, &s1b, &stream(220, 10)),
    );
    let [_, b] = worker_rx(
        [&mut p.s, &mut s2],
        now,
        1,
        &tcp_frame_ips(IP_B2, IP_A2, &s1, &stream(200, 10)),
    );
    let last = b.last().expect("an ACK on interface B");
    assert_eq!(data_ack(last), Some(KEY_A.idsn() + 1 + 210));
    // Counted by the connection (A's stack): bytes that came by joins.
    assert_eq!(p.s.counters().mptcp_joined_bytes, 110);
    // The application on A sees one connection, no other.
    assert!(std::iter::from_fn(|| s2.next_event()).all(|e| !matches!(e, Event::Accepted { .. })));
}

/// A DSS with the peer's DATA_ACK (nothing of ours sent) and a mapping of
/// `len` bytes from data offset `off` at subflow offset `sub`.
fn dss_at(key_b: Key, off: u64, sub: u32, len: u16) -> MptcpOption {
    MptcpOption::Dss(Dss {
        data_ack: Some(key_b.idsn() + 1),
        ack64: true,
        mapping: Some(DssMapping {
            dsn: KEY_A.idsn() + 1 + off,
            dsn64: true,
            ssn: sub + 1,
            len,
            checksum: None,
        }),
        data_fin: false,
    })
}

#[test]
fn a_subflow_in_another_interfaces_stack_takes_data_up_to_the_connections_window() {
    // RFC 8684 §3.3.4 across a worker's stacks: the joined subflow lives
    // in interface B's stack, its connection in A's. The window the first
    // subflow advertises on A reaches B's subflow before its next segment
    // (the connection publishes its level), not only after it, at the
    // worker's next routing between the stacks: before, the first segment
    // beyond B's own edge was dropped (`out_of_window`) and came only
    // with the peer's retransmission.
    let mut p = Peer::connected_with(2, Some(60_000));
    let (mut s2, sa, mut now) = join_on_second_interface(&mut p);
    let (key_b, iss1, iss0) = (p.key_b, sa.seq.0, p.iss0);
    let on_b = |sub: u32, off: usize, len: usize| {
        let sg = seg(
            6000,
            PEER_ISS + 1 + sub,
            iss1 + 1,
            TcpFlags::ACK,
            &[dss_at(key_b, off as u64, sub, len as u16)],
        );
        tcp_frame_ips(IP_B2, IP_A2, &sg, &stream(off, len))
    };
    let mut tick = || {
        now += std::time::Duration::from_millis(1);
        now
    };
    // 27 KB on B's subflow, unread: the window it advertises narrows.
    let n = 27usize;
    let mut w1 = 0;
    for k in 0..n {
        let [_, b] = worker_rx(
            [&mut p.s, &mut s2],
            tick(),
            1,
            &on_b(k as u32 * 1000, k * 1000, 1000),
        );
        if let Some(a) = b.last() {
            w1 = a.window as u32;
        }
    }
    assert!(w1 > 0 && w1 < 4000, "window on B {w1}");
    // A round of the worker with nothing received: the subflow on B took
    // the connection's level at its last routing and has no news since.
    worker_idle([&mut p.s, &mut s2], tick());
    let mut off = n * 1000;
    assert_eq!(p.read(), stream(0, off));
    // The application reads; 3 KB on the first subflow (interface A): its
    // ACK tells the peer the reopened connection-level window.
    let mut a_out = Vec::new();
    for k in 0..3u32 {
        let sg = seg(
            5000,
            PEER_ISS + 1 + k * 1000,
            iss0 + 1,
            TcpFlags::ACK,
            &[dss_at(key_b, off as u64, k * 1000, 1000)],
        );
        let [a, _] = worker_rx(
            [&mut p.s, &mut s2],
            tick(),
            0,
            &tcp_frame_b_to_a(&sg, &stream(off, 1000)),
        );
        a_out.extend(a);
        off += 1000;
    }
    let a = a_out.last().expect("an ACK on A");
    assert_eq!(data_ack(a), Some(KEY_A.idsn() + 1 + off as u64));
    assert!(a.window as u32 > 4 * w1, "{a:?}");
    assert_eq!(p.read(), stream(n * 1000, 3000));
    // 8 KB on B's subflow, last segment first: beyond the edge B's
    // subflow last advertised, within the one A advertised since.
    let drops = (s2.counters().out_of_window, p.s.counters().out_of_window);
    for k in (0..8).rev() {
        let f = on_b((n + k) as u32 * 1000, off + k * 1000, 1000);
        worker_rx([&mut p.s, &mut s2], tick(), 1, &f);
    }
    let got = p.read();
    assert_eq!(got.len(), 8000, "dropped on B beyond its own window");
    assert!(got == stream(off, 8000));
    let after = (s2.counters().out_of_window, p.s.counters().out_of_window);
    assert_eq!(after, drops, "out-of-window drops (B, A)");
    assert_eq!(s2.counters().mptcp_mapping_mismatches, 0);
}

#[test]
fn a_join_no_stack_of_the_worker_knows_is_refused() {
    let mut p = Peer::connected(2);
    p.s.mptcp_set_shared(0);
    let j = MptcpOption::MpJoin(MpJoin::Syn {
        backup: false,
        addr_id: 2,
        token: p.key_b.token() ^ 1,
        nonce: 1,
    });
    let mut cfg = config(MAC_A, IP_A2);
    cfg.tcp.mptcp = true;
    let mut s2 = Stack::new(cfg, TestDevice::new(256), p.now);
    s2.listen(80).unwrap();
    s2.mptcp_set_shared(1);
    let syn = tcp_frame_ips(
        IP_B2,
        IP_A2,
        &seg(6000, PEER_ISS, 0, TcpFlags::SYN, &[j]),
        &[],
    );
    let now = p.now;
    worker_rx([&mut p.s, &mut s2], now, 1, &syn);
    assert_eq!(s2.counters().mptcp_joins_rejected_token, 1);
}

/// Two workers' stacks, as the runtime runs them (`stack::mptcp_remote`):
/// `frame` arrives at `stacks[at]`, both poll, then the MPTCP messages
/// each sends are handed to the other (in order, as the rings do) until
/// none is left. Returns what each transmitted.
fn workers_rx(
    stacks: [&mut Stack<TestDevice>; 2],
    now: Instant,
    at: usize,
    frame: Option<&[u8]>,
) -> [Vec<TcpRepr>; 2] {
    workers_rx_data(stacks, now, at, frame).map(|v| v.into_iter().map(|s| s.0).collect())
}

/// As `workers_rx`, with each segment's payload.
fn workers_rx_data(
    stacks: [&mut Stack<TestDevice>; 2],
    now: Instant,
    at: usize,
    frame: Option<&[u8]>,
) -> [Vec<(TcpRepr, Vec<u8>)>; 2] {
    let [a, b] = stacks;
    let mut stacks = [a, b];
    if let Some(f) = frame {
        rx(stacks[at], now, f);
    }
    for _ in 0..16 {
        for s in stacks.iter_mut() {
            s.poll(now);
            xdptcp::stack::mptcp_remote_schedule(&mut [&mut **s]);
        }
        let mut moved = false;
        for from in 0..2 {
            let mut msgs = Vec::new();
            stacks[from].mptcp_remote_drain(|to, m| {
                assert_eq!(to, 1 - from);
                msgs.push(m);
            });
            for m in msgs {
                moved = true;
                let mut one = [&mut *stacks[1 - from]];
                xdptcp::stack::mptcp_remote_input(&mut one, now, from, m);
            }
        }
        if !moved {
            break;
        }
    }
    stacks.map(|s| {
        s.poll(now);
        s.device_mut()
            .take_tx()
            .iter()
            .filter(|f| f.len() > 34 && f[23] == 6)
            .map(|f| {
                let (_, _, seg, payload) = parse_tcp(f);
                (seg, payload)
            })
            .collect()
    })
}

/// Our data in `segs`, by DSN offset (from our IDSN + 1) and subflow
/// offset (from `iss` + 1); panics on data without a mapping.
fn our_data(segs: &[(TcpRepr, Vec<u8>)], key: Key, iss: u32) -> Vec<(u64, u32, Vec<u8>)> {
    segs.iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(seg, p)| {
            let m = mp_opts(seg)
                .into_iter()
                .find_map(|o| match o {
                    MptcpOption::Dss(Dss {
                        mapping: Some(m), ..
                    }) => Some(m),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("data without a mapping: {seg:?}"));
            let sub_off = seg.seq.0.wrapping_sub(iss + 1);
            assert_eq!(m.ssn, sub_off + 1, "{seg:?}");
            assert_eq!(m.len as usize, p.len());
            (m.dsn - (key.idsn() + 1), sub_off, p.clone())
        })
        .collect()
}

/// Worker 1's stack beside worker 0's (`p.s`, which holds the
/// connection and its token): a join for the token arriving on worker 1
/// runs there, with the keys worker 0 gives it.
fn second_worker(p: &mut Peer) -> Stack<TestDevice> {
    second_worker_on(p, TestDevice::new(256))
}

/// As `second_worker`, its stack on `dev`.
fn second_worker_on(p: &mut Peer, dev: TestDevice) -> Stack<TestDevice> {
    let token = p.key_b.token();
    let mut cfg2 = config(MAC_A, IP_A);
    cfg2.tcp.mptcp = true;
    cfg2.tcp.mptcp_max_subflows = 2;
    if let Some(b) = p.rcv_buf {
        cfg2.tcp.rcv_buf = b;
    }
    let mut s2 = Stack::new(cfg2, dev, p.now);
    s2.listen(80).unwrap();
    rx(&mut s2, p.now, &arp_request_b_for_a());
    s2.poll(p.now);
    s2.device_mut().take_tx();
    p.s.mptcp_set_remote(0, 0, Box::new(|_| Some(0)));
    s2.mptcp_set_remote(1, 0, Box::new(move |t| (t == token).then_some(0)));
    s2
}

/// The peer's MP_JOIN SYN arriving on worker 1 (`second_worker`): the
/// SYN/ACK worker 1 alone answers (its HMAC checked, RFC 8684 §3.2), and
/// the peer's third ACK to it, as a frame.
fn join_on_second_worker(
    p: &mut Peer,
    s2: &mut Stack<TestDevice>,
    now: Instant,
) -> (TcpRepr, Vec<u8>) {
    let r_a = 0x5151;
    let j = MptcpOption::MpJoin(MpJoin::Syn {
        backup: false,
        addr_id: 2,
        token: p.key_b.token(),
        nonce: r_a,
    });
    let syn = tcp_frame_b_to_a(&seg(6000, PEER_ISS, 0, TcpFlags::SYN, &[j]), &[]);
    let [a, b] = workers_rx([&mut p.s, s2], now, 1, Some(&syn));
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(b.len(), 1, "{b:?}");
    let sa = b[0];
    let r_b = match mp_opts(&sa).as_slice() {
        [MptcpOption::MpJoin(MpJoin::SynAck { hmac, nonce, .. })] => {
            assert_eq!(*hmac, join_hmac_64(p.key_b, KEY_A, *nonce, r_a));
            *nonce
        }
        o => panic!("SYN/ACK without MP_JOIN: {o:?}"),
    };
    let third = MptcpOption::MpJoin(MpJoin::Ack {
        hmac: join_hmac_160(KEY_A, p.key_b, r_a, r_b),
    });
    let ack = seg(6000, PEER_ISS + 1, sa.seq.0 + 1, TcpFlags::ACK, &[third]);
    (sa, tcp_frame_b_to_a(&ack, &[]))
}

#[test]
fn our_data_goes_on_a_subflow_another_worker_runs_which_outlives_the_first() {
    // Issue 8, stage 2, the send direction: the connection is on worker 0
    // (`p.s`), its joined subflow on worker 1 (`s2`). The scheduler on
    // worker 0 hands that subflow chunks (frames, by message), each sent
    // there mapped (RFC 8684 §3.3.1); the DATA_ACK it sees comes back and
    // frees the connection's queue. Then the first subflow is reset: the
    // connection goes on over worker 1's subflow alone (§3.3.6), and its
    // DATA_FIN rides that subflow's FIN (§3.3.3).
    let mut p = Peer::connected(2);
    let mut s2 = second_worker(&mut p);
    let mut now = p.now + std::time::Duration::from_millis(1);
    let (sa, ack) = join_on_second_worker(&mut p, &mut s2, now);
    workers_rx([&mut p.s, &mut s2], now, 1, Some(&ack));
    assert_eq!(s2.counters().mptcp_remote_subflows, 1);
    let iss1 = sa.seq.0;
    let key_b = p.key_b;
    let dack = |data: u64| {
        MptcpOption::Dss(Dss {
            data_ack: Some(key_b.idsn() + 1 + data),
            ack64: true,
            mapping: None,
            data_fin: false,
        })
    };
    // 40 KB written on worker 0: both subflows' initial windows fill.
    let id = p.id.unwrap();
    let data = stream(0, 80_000);
    assert_eq!(p.s.send(id, &data[..40_000]).unwrap(), 40_000);
    let mut got: Vec<Option<u8>> = vec![None; data.len()];
    // What arrived, checked against the stream: the DATA_ACK it earns,
    // and the bytes the subflow on worker 0 / 1 sent (subflow offsets).
    let mut take = |segs: &[(TcpRepr, Vec<u8>)], iss: u32| -> (u64, u32) {
        let mut end = 0;
        for (dsn, sub, bytes) in our_data(segs, key_b, iss) {
            let d = dsn as usize;
            assert_eq!(bytes[..], data[d..d + bytes.len()], "DSN offset {d}");
            for (k, x) in bytes.iter().enumerate() {
                got[d + k] = Some(*x);
            }
            end = end.max(sub + bytes.len() as u32);
        }
        let cum = got.iter().position(|g| g.is_none()).unwrap_or(got.len());
        (cum as u64, end)
    };
    let [a, b] = workers_rx_data([&mut p.s, &mut s2], now, 0, None);
    let (_, sent0) = take(&a, p.iss0);
    let (_, sent1) = take(&b, iss1);
    assert!(
        sent1 >= 10_000,
        "worker 1's subflow sent {sent1} (first: {sent0})"
    );
    // Worker 1's subflow acknowledged, with the DATA_ACK (RFC 8684
    // §3.3.2: on any subflow); the first subflow's bytes not.
    let mut cum = 0;
    let mut sub1 = sent1;
    now += std::time::Duration::from_millis(1);
    let a1 = seg(
        6000,
        PEER_ISS + 1,
        iss1 + 1 + sub1,
        TcpFlags::ACK,
        &[dack(cum)],
    );
    let [a, b] = workers_rx_data(
        [&mut p.s, &mut s2],
        now,
        1,
        Some(&tcp_frame_b_to_a(&a1, &[])),
    );
    assert!(sent0 > 0, "the first subflow carries its share");
    for (segs, iss) in [(&a, p.iss0), (&b, iss1)] {
        let (c, e) = take(segs, iss);
        cum = cum.max(c);
        if iss == iss1 {
            sub1 = sub1.max(e);
        }
    }
    // The first subflow is reset (its path died): the connection lives
    // on, and the rest, with what the first subflow held unacknowledged,
    // goes on worker 1's subflow (RFC 8684 §3.3.6).
    now += std::time::Duration::from_millis(1);
    let rst = seg(5000, PEER_ISS + 1, 0, TcpFlags::RST, &[]);
    let [a, b] = workers_rx_data(
        [&mut p.s, &mut s2],
        now,
        0,
        Some(&tcp_frame_b_to_a(&rst, &[])),
    );
    assert!(
        std::iter::from_fn(|| p.s.next_event()).all(|e| !matches!(e, Event::Closed { .. })),
        "the connection ended with its first subflow"
    );
    assert!(our_data(&a, key_b, p.iss0).is_empty());
    let (c, e1) = take(&b, iss1);
    cum = cum.max(c);
    sub1 = sub1.max(e1);
    let mut more = false;
    for _ in 0..64 {
        if cum == data.len() as u64 {
            break;
        }
        now += std::time::Duration::from_millis(1);
        let a1 = seg(
            6000,
            PEER_ISS + 1,
            iss1 + 1 + sub1,
            TcpFlags::ACK,
            &[dack(cum)],
        );
        let [a, b] = workers_rx_data(
            [&mut p.s, &mut s2],
            now,
            1,
            Some(&tcp_frame_b_to_a(&a1, &[])),
        );
        assert!(our_data(&a, key_b, p.iss0).is_empty());
        let (c, e1) = take(&b, iss1);
        cum = cum.max(c);
        sub1 = sub1.max(e1);
        if cum == 40_000 && !more {
            // More written now goes on worker 1's subflow alone.
            assert_eq!(p.s.send(id, &data[40_000..]).unwrap(), 40_000);
            more = true;
        }
    }
    assert_eq!(
        cum,
        data.len() as u64,
        "the stream, whole, on worker 1's subflow"
    );
    now += std::time::Duration::from_millis(1);
    let a1 = seg(
        6000,
        PEER_ISS + 1,
        iss1 + 1 + sub1,
        TcpFlags::ACK,
        &[dack(cum)],
    );
    workers_rx(
        [&mut p.s, &mut s2],
        now,
        1,
        Some(&tcp_frame_b_to_a(&a1, &[])),
    );
    // The application closes: every byte is DATA_ACKed, so the DATA_FIN
    // goes at once, on worker 1's subflow's FIN.
    p.s.close(id).unwrap();
    now += std::time::Duration::from_millis(1);
    let [_, b] = workers_rx_data([&mut p.s, &mut s2], now, 0, None);
    let fin = b
        .iter()
        .map(|s| &s.0)
        .find(|s| s.flags.fin())
        .expect("worker 1's FIN");
    assert!(
        mp_opts(fin)
            .iter()
            .any(|o| matches!(o, MptcpOption::Dss(Dss { data_fin: true, .. }))),
        "{fin:?}"
    );
}

/// One step of two workers (as `workers_rx_data`, one round of their
/// messages): both poll and schedule, then each one's messages reach the
/// other. Returns whether any message went.
fn workers_step(stacks: [&mut Stack<TestDevice>; 2], now: Instant) -> bool {
    let [a, b] = stacks;
    let mut stacks = [a, b];
    for s in stacks.iter_mut() {
        s.poll(now);
        xdptcp::stack::mptcp_remote_schedule(&mut [&mut **s]);
    }
    let mut moved = false;
    for from in 0..2 {
        let mut msgs = Vec::new();
        stacks[from].mptcp_remote_drain(|_, m| msgs.push(m));
        for m in msgs {
            moved = true;
            xdptcp::stack::mptcp_remote_input(&mut [&mut *stacks[1 - from]], now, from, m);
        }
    }
    moved
}

#[test]
fn a_reinjection_copies_back_only_the_frames_it_needs_from_another_worker() {
    // Issue 8, RFC 8684 §3.3.6: the connection on worker 0 lends its
    // chunks to its joined subflow on worker 1 (one pool, as one UMEM).
    // That subflow is slow (a 50 ms round trip against 1 ms) and the
    // peer has not acknowledged what it holds: the DATA_ACK waits at its
    // first byte while the first subflow, all acknowledged, could send.
    // Minrtt re-sends that oldest data on the first subflow
    // (opportunistic retransmission), one segment at a time; its bytes
    // are in worker 1's queue, so worker 0 asks for the range it needs
    // (`copy_back`) and worker 1 copies the frame overlapping it, not
    // the ten it holds.
    let live = std::rc::Rc::new(std::cell::Cell::new(0));
    let dev = || TestDevice::shared(256, &live, 1);
    let sched = (SchedKind::MinRtt, MptcpCc::Uncoupled);
    let mut p = Peer::connected_dev(2, None, sched, false, dev());
    let mut s2 = second_worker_on(&mut p, dev());
    let mut now = p.now + std::time::Duration::from_millis(1);
    let (sa, ack) = join_on_second_worker(&mut p, &mut s2, now);
    // The third ACK 50 ms after the SYN/ACK: the joined subflow's RTT.
    now += std::time::Duration::from_millis(50);
    workers_rx([&mut p.s, &mut s2], now, 1, Some(&ack));
    assert_eq!(s2.counters().mptcp_remote_subflows, 1);
    let (iss1, key_b) = (sa.seq.0, p.key_b);
    let id = p.id.unwrap();
    let data = stream(0, 200_000);
    let mut written = p.s.send(id, &data).unwrap();
    now += std::time::Duration::from_millis(1);
    let [a, b] = workers_rx_data([&mut p.s, &mut s2], now, 0, None);
    let first = our_data(&a, key_b, p.iss0);
    let joined = our_data(&b, key_b, iss1);
    let held: usize = joined.iter().map(|d| d.2.len()).sum();
    assert!(
        joined.len() >= 5,
        "worker 1's subflow took {} segments",
        joined.len()
    );
    assert_eq!(s2.counters().mptcp_tx_reinject_copied_bytes, 0);
    // The peer acknowledges all the first subflow sends, its DATA_ACK
    // stopping at the joined subflow's first byte; nothing on that one.
    let hole = joined.iter().map(|d| d.0).min().unwrap();
    let mut sent0 = first
        .iter()
        .map(|d| d.1 + d.2.len() as u32)
        .max()
        .unwrap_or(0);
    let dack = MptcpOption::Dss(Dss {
        data_ack: Some(key_b.idsn() + 1 + hole),
        ack64: true,
        mapping: None,
        data_fin: false,
    });
    for _ in 0..20 {
        now += std::time::Duration::from_millis(1);
        let a1 = seg(
            5000,
            PEER_ISS + 1,
            p.iss0 + 1 + sent0,
            TcpFlags::ACK,
            &[dack],
        );
        rx(&mut p.s, now, &tcp_frame_b_to_a(&a1, &[]));
        // One round of messages at a time: the first copy back is seen
        // before the next request goes.
        while workers_step([&mut p.s, &mut s2], now) {
            if s2.counters().mptcp_tx_reinject_copied_bytes > 0 {
                break;
            }
        }
        for f in p.s.device_mut().take_tx() {
            let (_, _, seg, payload) = parse_tcp(&f);
            if !payload.is_empty() {
                sent0 = sent0.max(seg.seq.0.wrapping_sub(p.iss0 + 1) + payload.len() as u32);
            }
        }
        s2.device_mut().take_tx();
        written += p.s.send(id, &data[written..]).unwrap_or(0);
        if s2.counters().mptcp_tx_reinject_copied_bytes > 0 {
            break;
        }
    }
    let back = s2.counters().mptcp_tx_reinject_copied_bytes;
    // The copy comes back and goes out on the first subflow.
    now += std::time::Duration::from_millis(1);
    workers_rx([&mut p.s, &mut s2], now, 0, None);
    let opp = p.s.counters().mptcp_opportunistic_retransmits;
    println!(
        "worker 1 held {held} bytes in {} segments; first copy back {back}, opportunistic {opp}",
        joined.len()
    );
    assert!(back > 0, "no copy back asked");
    assert!(opp > 0, "no opportunistic retransmission");
    // One segment's frame (the range one re-send needs), not all held.
    assert!(back <= 1460, "copied back {back} of the {held} held");
}

#[test]
fn a_join_arriving_on_another_worker_runs_there_and_feeds_the_connection() {
    // Issue 8: the connection is on worker 0 (`p.s`); the peer's join
    // arrives on worker 1's queue (`s2`), whose stack holds no token. The
    // subflow runs on worker 1, with the keys worker 0 gives it; its data
    // reaches the connection on worker 0 as messages, and the
    // connection's Data ACK comes back onto the subflow.
    let mut p = Peer::connected(2);
    let mut s2 = second_worker(&mut p);
    let now = p.now + std::time::Duration::from_millis(1);
    let (sa, ack) = join_on_second_worker(&mut p, &mut s2, now);
    let [_, b] = workers_rx([&mut p.s, &mut s2], now, 1, Some(&ack));
    assert_eq!(b.len(), 1, "the fourth ACK: {b:?}");
    // It carries the connection's Data ACK, learnt from worker 0.
    assert_eq!(data_ack(&b[0]), Some(KEY_A.idsn() + 1));
    assert_eq!(s2.counters().mptcp_joins_accepted, 1);
    assert_eq!(s2.counters().mptcp_remote_subflows, 1);
    let key_b = p.key_b;
    let d = |off: u64, sub: u32, len: u16| {
        MptcpOption::Dss(Dss {
            data_ack: Some(key_b.idsn() + 1),
            ack64: true,
            mapping: Some(DssMapping {
                dsn: KEY_A.idsn() + 1 + off,
                dsn64: true,
                ssn: sub + 1,
                len,
                checksum: None,
            }),
            data_fin: false,
        })
    };
    // Offsets 0..100 on the subflow of worker 1, 100..200 on the first
    // subflow (worker 0): one stream for the application on worker 0.
    let s1 = seg(
        6000,
        PEER_ISS + 1,
        sa.seq.0 + 1,
        TcpFlags::ACK,
        &[d(0, 0, 100)],
    );
    workers_rx(
        [&mut p.s, &mut s2],
        now,
        1,
        Some(&tcp_frame_b_to_a(&s1, &stream(0, 100))),
    );
    assert_eq!(p.read(), stream(0, 100));
    let s0 = seg(
        5000,
        PEER_ISS + 1,
        p.iss0 + 1,
        TcpFlags::ACK,
        &[d(100, 0, 100)],
    );
    workers_rx(
        [&mut p.s, &mut s2],
        now,
        0,
        Some(&tcp_frame_b_to_a(&s0, &stream(100, 100))),
    );
    assert_eq!(p.read(), stream(100, 100));
    // Out of order at the data level, then the hole filled: the ACK on
    // worker 1's subflow carries the connection's Data ACK past both.
    let s1 = seg(
        6000,
        PEER_ISS + 101,
        sa.seq.0 + 1,
        TcpFlags::ACK,
        &[d(200, 100, 10)],
    );
    let s1b = seg(
        6000,
        PEER_ISS + 111,
        sa.seq.0 + 1,
        TcpFlags::ACK,
        &[d(220, 110, 10)],
    );
    let s0b = seg(
        5000,
        PEER_ISS + 101,
        p.iss0 + 1,
        TcpFlags::ACK,
        &[d(210, 100, 10)],
    );
    workers_rx(
        [&mut p.s, &mut s2],
        now,
        1,
        Some(&tcp_frame_b_to_a(&s1, &stream(200, 10))),
    );
    workers_rx(
        [&mut p.s, &mut s2],
        now,
        1,
        Some(&tcp_frame_b_to_a(&s1b, &stream(220, 10))),
    );
    workers_rx(
        [&mut p.s, &mut s2],
        now,
        0,
        Some(&tcp_frame_b_to_a(&s0b, &stream(210, 10))),
    );
    assert_eq!(p.read(), stream(200, 30));
    // The connection's Data ACK reaches worker 1's subflow: its next ACK
    // (delayed: one segment in order) carries it.
    let s1c = seg(
        6000,
        PEER_ISS + 121,
        sa.seq.0 + 1,
        TcpFlags::ACK,
        &[d(230, 120, 10)],
    );
    workers_rx(
        [&mut p.s, &mut s2],
        now,
        1,
        Some(&tcp_frame_b_to_a(&s1c, &stream(230, 10))),
    );
    let later = now + std::time::Duration::from_millis(500);
    let [_, b] = workers_rx([&mut p.s, &mut s2], later, 1, None);
    let last = b.last().expect("an ACK from worker 1");
    assert_eq!(data_ack(last), Some(KEY_A.idsn() + 1 + 240));
    assert_eq!(p.read(), stream(230, 10));
    // Worker 1 handed over the 130 bytes its subflow took; the data level
    // counts 120 as advanced by them (220..230 waited for 210..220, which
    // came on the first subflow).
    assert_eq!(s2.counters().mptcp_remote_bytes, 130);
    assert_eq!(p.s.counters().mptcp_joined_bytes, 120);
    // Only worker 0's application sees the connection.
    assert!(std::iter::from_fn(|| s2.next_event()).all(|e| !matches!(e, Event::Accepted { .. })));
    // The application aborts: the subflow on worker 1 goes too, its RST
    // carrying MP_FASTCLOSE (RFC 8684 §3.5), and worker 0 hears it went.
    p.s.abort(p.id.unwrap()).unwrap();
    let [_, b] = workers_rx([&mut p.s, &mut s2], now, 0, None);
    let rst = b.iter().find(|s| s.flags.rst()).expect("the subflow's RST");
    assert!(
        mp_opts(rst)
            .iter()
            .any(|o| matches!(o, MptcpOption::MpFastclose { .. })),
        "{rst:?}"
    );
    assert_eq!(s2.conn_count(), 0);
}

#[test]
fn a_subflow_in_another_worker_takes_data_up_to_the_connections_window() {
    // RFC 8684 §3.3.4 across workers: the joined subflow runs on worker 1
    // (`s2`), its connection on worker 0 (`p.s`). The window the first
    // subflow advertises on worker 0 reaches the subflow before its next
    // segment (it reads the level the connection publishes, `LevelCell`),
    // not only with the connection's next message to worker 1: before,
    // the first segment beyond the subflow's own edge was dropped on
    // worker 1 (`out_of_window`) and came only with the peer's
    // retransmission.
    let mut p = Peer::connected_with(2, Some(60_000));
    let mut s2 = second_worker(&mut p);
    let mut now = p.now + std::time::Duration::from_millis(1);
    let (sa, ack) = join_on_second_worker(&mut p, &mut s2, now);
    workers_rx([&mut p.s, &mut s2], now, 1, Some(&ack));
    assert_eq!(s2.counters().mptcp_remote_subflows, 1);
    let (key_b, iss1, iss0) = (p.key_b, sa.seq.0, p.iss0);
    let on_1 = |sub: u32, off: usize, len: usize| {
        let sg = seg(
            6000,
            PEER_ISS + 1 + sub,
            iss1 + 1,
            TcpFlags::ACK,
            &[dss_at(key_b, off as u64, sub, len as u16)],
        );
        tcp_frame_b_to_a(&sg, &stream(off, len))
    };
    let mut tick = || {
        now += std::time::Duration::from_millis(1);
        now
    };
    // 27 KB on worker 1's subflow, unread: the window it advertises
    // narrows (it learns the connection's level from worker 0's replies).
    let n = 27usize;
    let mut w1 = 0;
    for k in 0..n {
        let f = on_1(k as u32 * 1000, k * 1000, 1000);
        let [_, b] = workers_rx([&mut p.s, &mut s2], tick(), 1, Some(&f));
        if let Some(a) = b.last() {
            w1 = a.window as u32;
        }
    }
    assert!(w1 > 0 && w1 < 4000, "window on worker 1 {w1}");
    let mut off = n * 1000;
    assert_eq!(p.read(), stream(0, off));
    // The application reads; 3 KB on the first subflow (worker 0): its
    // ACK tells the peer the reopened connection-level window. No message
    // goes to worker 1 for it.
    let mut a_out = Vec::new();
    for k in 0..3u32 {
        let sg = seg(
            5000,
            PEER_ISS + 1 + k * 1000,
            iss0 + 1,
            TcpFlags::ACK,
            &[dss_at(key_b, off as u64, k * 1000, 1000)],
        );
        let f = tcp_frame_b_to_a(&sg, &stream(off, 1000));
        let [a, b] = workers_rx([&mut p.s, &mut s2], tick(), 0, Some(&f));
        assert!(b.is_empty(), "worker 1 sent {b:?}");
        a_out.extend(a);
        off += 1000;
    }
    let a = a_out.last().expect("an ACK on worker 0");
    assert_eq!(data_ack(a), Some(KEY_A.idsn() + 1 + off as u64));
    assert!(a.window as u32 > 4 * w1, "{a:?}");
    assert_eq!(p.read(), stream(n * 1000, 3000));
    // 8 KB on worker 1's subflow, last segment first: beyond the edge it
    // last advertised, within the one worker 0 advertised since.
    let drops = (s2.counters().out_of_window, p.s.counters().out_of_window);
    for k in (0..8).rev() {
        let f = on_1((n + k) as u32 * 1000, off + k * 1000, 1000);
        workers_rx([&mut p.s, &mut s2], tick(), 1, Some(&f));
    }
    let got = p.read();
    assert_eq!(got.len(), 8000, "dropped on worker 1 beyond its own window");
    assert!(got == stream(off, 8000));
    let after = (s2.counters().out_of_window, p.s.counters().out_of_window);
    assert_eq!(after, drops, "out-of-window drops (worker 1, worker 0)");
    assert_eq!(s2.counters().mptcp_mapping_mismatches, 0);
}

/// Worker `s`'s MPTCP messages since the last call, in order.
fn drain_msgs(s: &mut Stack<TestDevice>) -> Vec<RemoteMsg<TestFrame>> {
    let mut msgs = Vec::new();
    s.mptcp_remote_drain(|_, m| msgs.push(m));
    msgs
}

/// The DATA_ACKs of what `s` sent since the last call.
fn sent_data_acks(s: &mut Stack<TestDevice>) -> Vec<u64> {
    let tx = s.device_mut().take_tx();
    let segs = tx.iter().filter(|f| f.len() > 34 && f[23] == 6);
    segs.filter_map(|f| data_ack(&parse_tcp(f).2)).collect()
}

#[test]
fn a_stale_reply_from_the_connections_worker_moves_no_subflow_level_back() {
    // The subflow on worker 1 reads its connection's level (`LevelCell`)
    // before each segment, so it may know a later DATA_ACK than a reply
    // from worker 0 still in the ring: that reply must not take it back
    // (RFC 8684 §3.3.2: the DATA_ACK only grows; the window goes with it).
    let mut p = Peer::connected_with(2, Some(60_000));
    let mut s2 = second_worker(&mut p);
    let mut now = p.now + std::time::Duration::from_millis(1);
    let (sa, ack) = join_on_second_worker(&mut p, &mut s2, now);
    workers_rx([&mut p.s, &mut s2], now, 1, Some(&ack));
    let (key_b, iss1, iss0) = (p.key_b, sa.seq.0, p.iss0);
    let on_1 = |sub: u32, off: usize, len: usize| {
        let sg = seg(
            6000,
            PEER_ISS + 1 + sub,
            iss1 + 1,
            TcpFlags::ACK,
            &[dss_at(key_b, off as u64, sub, len as u16)],
        );
        tcp_frame_b_to_a(&sg, &stream(off, len))
    };
    now += std::time::Duration::from_millis(1);
    workers_rx([&mut p.s, &mut s2], now, 1, Some(&on_1(0, 0, 1000)));
    // 1 KB more on worker 1's subflow: worker 0's reply (DATA_ACK 2000)
    // stays in the ring.
    now += std::time::Duration::from_millis(1);
    rx(&mut s2, now, &on_1(1000, 1000, 1000));
    s2.poll(now);
    for m in drain_msgs(&mut s2) {
        xdptcp::stack::mptcp_remote_input(&mut [&mut p.s], now, 1, m);
    }
    p.s.poll(now);
    let mut held = drain_msgs(&mut p.s);
    assert!(!held.is_empty(), "worker 0's reply");
    // Worker 1's delayed ACK goes: the next segment leaves one pending.
    now += std::time::Duration::from_millis(500);
    s2.poll(now);
    sent_data_acks(&mut s2);
    // 3 KB on the first subflow (worker 0): the DATA_ACK is 5000.
    for k in 0..3u32 {
        let sg = seg(
            5000,
            PEER_ISS + 1 + k * 1000,
            iss0 + 1,
            TcpFlags::ACK,
            &[dss_at(key_b, 2000 + k as u64 * 1000, k * 1000, 1000)],
        );
        rx(
            &mut p.s,
            now,
            &tcp_frame_b_to_a(&sg, &stream(2000 + k as usize * 1000, 1000)),
        );
        p.s.poll(now);
    }
    held.extend(drain_msgs(&mut p.s));
    assert_eq!(p.read(), stream(0, 5000));
    let at = |n: u64| KEY_A.idsn() + 1 + n;
    // Worker 1's subflow takes a segment: it reads DATA_ACK 5000 first.
    rx(&mut s2, now, &on_1(2000, 5000, 1000));
    s2.poll(now);
    let before = sent_data_acks(&mut s2);
    // Then the stale reply arrives (the data it lets go stays in the
    // ring), and the delayed ACK goes.
    for m in held {
        xdptcp::stack::mptcp_remote_input(&mut [&mut s2], now, 0, m);
    }
    let later = now + std::time::Duration::from_millis(500);
    s2.poll(later);
    let after = sent_data_acks(&mut s2);
    assert!(before.iter().all(|&a| a == at(5000)), "before {before:?}");
    assert!(!after.is_empty(), "an ACK after the reply");
    assert!(after.iter().all(|&a| a == at(5000)), "after {after:?}");
}

#[test]
fn a_joined_subflow_whose_segments_arrive_on_another_worker_moves_there() {
    // Issue 8: a subflow joined on worker 0 (`p.s`, which holds the
    // connection), whose segments then keep arriving on worker 1's queue
    // (the peer re-hashed it) and are handed over: after `STRAYS` of
    // them close together, worker 0 takes it out of its stack whole and
    // worker 1 runs it (`stack::Migrant`), as a subflow of the connection
    // on worker 0. Its place in the scheduler goes with it; the stream
    // stays intact both ways.
    let mut p = Peer::connected(2);
    let mut s2 = second_worker(&mut p);
    let iss1 = p.joined_regular(6000, 0x5151);
    let tuple = xdptcp::tcp::FourTuple {
        local: core::net::SocketAddrV4::new(IP_A, 80),
        remote: core::net::SocketAddrV4::new(IP_B, 6000),
    };
    // Handed over to worker 0, which runs them: every byte reaches the
    // application; the flow moves at the last one, not before.
    let strays = u64::from(xdptcp::stack::STRAYS);
    let mut moved = None;
    for k in 0..strays {
        p.data(
            6000,
            iss1,
            k as u32 * 100,
            k * 100,
            &stream(k as usize * 100, 100),
            false,
        );
        assert!(moved.is_none(), "moved after {k} strays");
        moved = p.s.mptcp_stray(p.now, &tuple, false);
    }
    let m = moved.expect("the subflow moves after its strays");
    assert_eq!(m.tuple(), tuple);
    assert_eq!(p.read(), stream(0, strays as usize * 100));
    assert!(!p.s.has_conn(&tuple));
    assert_eq!(p.s.counters().mptcp_subflows_migrated_out, 1);
    let mut now = p.now;
    assert!(s2.mptcp_migrate_in(now, m));
    workers_rx([&mut p.s, &mut s2], now, 1, None);
    assert!(s2.has_conn(&tuple));
    assert_eq!(s2.counters().mptcp_subflows_migrated_in, 1);
    // Its next segments arrive on worker 1 and run there: the data goes
    // on to the connection on worker 0, in order, and worker 1's ACK
    // covers the subflow's whole sequence space (the TCB moved as it was).
    let key_b = p.key_b;
    let off = strays * 100;
    let d = MptcpOption::Dss(Dss {
        data_ack: Some(key_b.idsn() + 1),
        ack64: true,
        mapping: Some(DssMapping {
            dsn: KEY_A.idsn() + 1 + off,
            dsn64: true,
            ssn: off as u32 + 1,
            len: 100,
            checksum: None,
        }),
        data_fin: false,
    });
    now += std::time::Duration::from_millis(1);
    let sg = seg(
        6000,
        PEER_ISS + 1 + off as u32,
        iss1 + 1,
        TcpFlags::ACK | TcpFlags::PSH,
        &[d],
    );
    let frame = tcp_frame_b_to_a(&sg, &stream(off as usize, 100));
    workers_rx([&mut p.s, &mut s2], now, 1, Some(&frame));
    assert_eq!(p.read(), stream(off as usize, 100));
    let later = now + std::time::Duration::from_millis(500);
    let [_, b] = workers_rx([&mut p.s, &mut s2], later, 1, None);
    let ack = b.last().expect("worker 1 acknowledges");
    assert_eq!(ack.ack.0, PEER_ISS + 1 + off as u32 + 100);
    assert_eq!(data_ack(ack), Some(KEY_A.idsn() + 1 + off + 100));
    // Our data: the scheduler on worker 0 gives the moved subflow its
    // share, sent from worker 1, mapped (RFC 8684 §3.3.1).
    let id = p.id.unwrap();
    let data = stream(0, 40_000);
    assert_eq!(p.s.send(id, &data).unwrap(), 40_000);
    let [_, b] = workers_rx_data([&mut p.s, &mut s2], later, 0, None);
    let ours = our_data(&b, key_b, iss1);
    assert!(!ours.is_empty(), "worker 1's subflow sent none of our data");
    for (dsn, _, bytes) in ours {
        let d = dsn as usize;
        assert_eq!(bytes[..], data[d..d + bytes.len()], "DSN offset {d}");
    }
    // A subflow that moved stays put for a while (`STAY`), whatever
    // arrives elsewhere (no ping-pong); then it may move on.
    let soon = now + xdptcp::stack::STAY / 2;
    for _ in 0..2 * strays {
        assert!(s2.mptcp_stray(soon, &tuple, false).is_none());
    }
    let after = now + xdptcp::stack::STAY;
    let on = (0..strays).find_map(|_| s2.mptcp_stray(after, &tuple, false));
    assert!(on.is_some(), "it moves on after STAY");
}

#[test]
fn the_schedulers_penalty_reaches_a_subflow_another_worker_runs() {
    // Issue 8: `minrtt`'s opportunistic retransmission (Raiciu et al.,
    // NSDI 2012 §4.2) at the end of the stream: the fast first subflow
    // (worker 0) sends again what the slow joined subflow (worker 1, RTT
    // 100 ms) holds, and penalises it. Its window is worker 1's: the
    // penalty goes there with the next chunks and halves it.
    let mut p = Peer::connected(2);
    let mut s2 = second_worker(&mut p);
    let mut now = p.now + std::time::Duration::from_millis(1);
    let (sa, ack) = join_on_second_worker(&mut p, &mut s2, now);
    now += std::time::Duration::from_millis(100);
    workers_rx([&mut p.s, &mut s2], now, 1, Some(&ack));
    let (iss1, key_b) = (sa.seq.0, p.key_b);
    let id = p.id.unwrap();
    let data = stream(0, 40_000);
    assert_eq!(p.s.send(id, &data).unwrap(), 40_000);
    p.s.close(id).unwrap();
    let [a, b] = workers_rx_data([&mut p.s, &mut s2], now, 0, None);
    assert!(
        !our_data(&b, key_b, iss1).is_empty(),
        "the slow subflow took none"
    );
    // The first subflow's data acknowledged at once, each time (the slow
    // one's never): it takes the rest, then what the slow one holds.
    let mut got = vec![false; data.len()];
    let mut sent0 = 0u32;
    let mut segs = a;
    for _ in 0..8 {
        for (dsn, sub, bytes) in our_data(&segs, key_b, p.iss0) {
            got[dsn as usize..dsn as usize + bytes.len()].fill(true);
            sent0 = sent0.max(sub + bytes.len() as u32);
        }
        if s2.counters().mptcp_remote_penalised > 0 {
            break;
        }
        let cum = got.iter().position(|g| !g).unwrap_or(got.len()) as u64;
        let dack = MptcpOption::Dss(Dss {
            data_ack: Some(key_b.idsn() + 1 + cum),
            ack64: true,
            mapping: None,
            data_fin: false,
        });
        now += std::time::Duration::from_millis(1);
        let a0 = seg(
            5000,
            PEER_ISS + 1,
            p.iss0 + 1 + sent0,
            TcpFlags::ACK,
            &[dack],
        );
        let frame = tcp_frame_b_to_a(&a0, &[]);
        let [a, _] = workers_rx_data([&mut p.s, &mut s2], now, 0, Some(&frame));
        segs = a;
    }
    assert!(
        p.s.counters().mptcp_penalisations > 0,
        "{:?}",
        p.s.counters()
    );
    assert_eq!(
        s2.counters().mptcp_remote_penalised,
        1,
        "{:?}",
        s2.counters()
    );
}

#[test]
fn a_join_whose_token_no_worker_holds_is_refused() {
    let mut p = Peer::connected(2);
    let token = p.key_b.token();
    let mut cfg2 = config(MAC_A, IP_A);
    cfg2.tcp.mptcp = true;
    let mut s2 = Stack::new(cfg2, TestDevice::new(256), p.now);
    s2.listen(80).unwrap();
    rx(&mut s2, p.now, &arp_request_b_for_a());
    s2.poll(p.now);
    s2.device_mut().take_tx();
    p.s.mptcp_set_remote(0, 0, Box::new(|_| None));
    // The directory says worker 0, but worker 0 holds no such connection.
    s2.mptcp_set_remote(1, 0, Box::new(|_| Some(0)));
    let j = MptcpOption::MpJoin(MpJoin::Syn {
        backup: false,
        addr_id: 2,
        token: token ^ 1,
        nonce: 1,
    });
    let syn = tcp_frame_b_to_a(&seg(6000, PEER_ISS, 0, TcpFlags::SYN, &[j]), &[]);
    let now = p.now;
    let [_, b] = workers_rx([&mut p.s, &mut s2], now, 1, Some(&syn));
    assert_join_rst(&b);
    assert_eq!(s2.counters().mptcp_joins_rejected_token, 1);
    assert_eq!(s2.conn_count(), 0);
}

#[test]
fn mp_prio_on_a_joined_subflow_is_acted_on() {
    // The join asked for a backup path (flag B); MP_PRIO B = 0 on the
    // subflow makes it a regular one (RFC 8684 §3.3.8).
    let mut p = Peer::connected(2);
    let iss1 = p.joined(5001, 43);
    let prio = MptcpOption::MpPrio { backup: false };
    p.send(&seg(5001, PEER_ISS + 1, iss1 + 1, TcpFlags::ACK, &[prio]));
    assert_eq!(p.s.counters().mptcp_prio_received, 1);
    assert_eq!(p.s.counters().mptcp_bad_options, 0);
}

// Our data over two subflows (RFC 8684 §3.3.8, §3.3.6): the scheduler's
// choices, each segment's mapping, the DATA_ACK releasing the data and
// reinjection when a subflow goes.

/// A data segment we sent: its subflow (peer port), subflow offset, DSN
/// offset (from our IDSN + 1) and bytes.
#[derive(Debug, Clone)]
struct OurData {
    port: u16,
    sub_off: u32,
    data_off: u64,
    bytes: Vec<u8>,
}

impl Peer {
    /// A joined subflow that is a regular path: the join asked for a
    /// backup one (flag B), MP_PRIO B = 0 makes it regular (RFC 8684
    /// §3.3.8).
    fn joined_regular(&mut self, port: u16, r_a: u32) -> u32 {
        let iss = self.joined(port, r_a);
        let prio = MptcpOption::MpPrio { backup: false };
        self.send(&seg(port, PEER_ISS + 1, iss + 1, TcpFlags::ACK, &[prio]));
        iss
    }

    /// Everything the stack sent since the last call, data segments
    /// decoded by their DSS mapping (checked against the subflow offset).
    fn take_data(&mut self, iss: &[(u16, u32)]) -> Vec<OurData> {
        let mut out = Vec::new();
        for f in self.s.device_mut().take_tx() {
            let (_, _, seg, payload) = parse_tcp(&f);
            if payload.is_empty() {
                continue;
            }
            let port = seg.dst_port;
            let my_iss = iss.iter().find(|(p, _)| *p == port).unwrap().1;
            let sub_off = seg.seq.0.wrapping_sub(my_iss + 1);
            let m = mp_opts(&seg)
                .into_iter()
                .find_map(|o| match o {
                    MptcpOption::Dss(Dss {
                        mapping: Some(m), ..
                    }) => Some(m),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("data without a mapping: {seg:?}"));
            // One mapping per segment: its subflow bytes exactly.
            assert_eq!(m.ssn, sub_off + 1, "{seg:?}");
            assert_eq!(m.len as usize, payload.len(), "{seg:?}");
            out.push(OurData {
                port,
                sub_off,
                data_off: m.dsn - (self.key_b.idsn() + 1),
                bytes: payload,
            });
        }
        out
    }

    /// ACK subflow `port` up to subflow offset `upto` with a DATA_ACK of
    /// `data` bytes of ours.
    fn ack_ours(&mut self, port: u16, iss: u32, upto: u32, data: u64) -> Vec<TcpRepr> {
        let d = MptcpOption::Dss(Dss {
            data_ack: Some(self.key_b.idsn() + 1 + data),
            ack64: true,
            mapping: None,
            data_fin: false,
        });
        let (rcv, _) = (PEER_ISS + 1, 0);
        self.send(&seg(port, rcv, iss + 1 + upto, TcpFlags::ACK, &[d]))
    }
}

/// The stream rebuilt from our segments by DSN; `None` if a byte differs
/// between copies or is missing.
fn by_dsn(segs: &[OurData], len: usize) -> Option<Vec<u8>> {
    let mut v: Vec<Option<u8>> = vec![None; len];
    for d in segs {
        for (k, b) in d.bytes.iter().enumerate() {
            let at = d.data_off as usize + k;
            match v.get(at)? {
                Some(x) if x != b => return None,
                _ => v[at] = Some(*b),
            }
        }
    }
    v.into_iter().collect()
}

fn on(segs: &[OurData], port: u16) -> usize {
    segs.iter()
        .filter(|d| d.port == port)
        .map(|d| d.bytes.len())
        .sum()
}

#[test]
fn roundrobin_spreads_our_data_over_both_subflows_mapped_by_dsn() {
    let mut p = Peer::connected_sched(2, None, SchedKind::RoundRobin);
    let iss1 = p.joined_regular(5001, 51);
    let iss = [(5000, p.iss0), (5001, iss1)];
    let data = stream(0, 20_000);
    let id = p.id.unwrap();
    assert_eq!(p.s.send(id, &data).unwrap(), 20_000);
    let now = p.now;
    p.s.poll(now);
    let segs = p.take_data(&iss);
    let (a, b) = (on(&segs, 5000), on(&segs, 5001));
    // Both initial windows' worth went out, shared in turns.
    assert_eq!(a + b, 20_000);
    assert!(a >= 9_000 && b >= 9_000, "first {a}, joined {b}");
    assert!(by_dsn(&segs, a + b).as_deref() == Some(&data[..a + b]));
    // Each subflow's own bytes are in order on it.
    for port in [5000, 5001] {
        let mut next = 0;
        for d in segs.iter().filter(|d| d.port == port) {
            assert_eq!(d.sub_off, next);
            next += d.bytes.len() as u32;
        }
    }
    let c = p.s.counters();
    assert_eq!(c.mptcp_reinjections, 0);
    assert_eq!(c.mptcp_redundant_bytes, 0);
    // Subflow ACKs alone release nothing at the connection level; the
    // DATA_ACK does.
    p.ack_ours(5000, p.iss0, a as u32, 0);
    p.ack_ours(5001, iss1, b as u32, 0);
    assert_eq!(p.s.mptcp_snd_unacked(id).unwrap(), 20_000);
    p.ack_ours(5000, p.iss0, a as u32, 12_000);
    assert_eq!(p.s.mptcp_snd_unacked(id).unwrap(), 8_000);
    p.ack_ours(5001, iss1, b as u32, 20_000);
    assert_eq!(p.s.mptcp_snd_unacked(id).unwrap(), 0);
    assert_eq!(p.s.counters().mptcp_bytes_first, a as u64);
    assert_eq!(p.s.counters().mptcp_bytes_joined, b as u64);
}

#[test]
fn minrtt_fills_the_first_subflow_then_spills_onto_the_joined_one() {
    let mut p = Peer::connected_sched(2, None, SchedKind::MinRtt);
    let iss1 = p.joined_regular(5001, 52);
    let iss = [(5000, p.iss0), (5001, iss1)];
    let id = p.id.unwrap();
    // Less than one window: the first subflow (ties on RTT go to it).
    p.s.send(id, &stream(0, 5_000)).unwrap();
    let now = p.now;
    p.s.poll(now);
    let segs = p.take_data(&iss);
    assert_eq!((on(&segs, 5000), on(&segs, 5001)), (5_000, 0));
    // More than its window holds: the rest spills onto the joined one.
    p.s.send(id, &stream(5_000, 30_000)).unwrap();
    let now = p.now;
    p.s.poll(now);
    let more = p.take_data(&iss);
    assert!(on(&more, 5001) > 0, "{:?}", more.len());
    let all: Vec<OurData> = segs.into_iter().chain(more).collect();
    let total = on(&all, 5000) + on(&all, 5001);
    let got = by_dsn(&all, total);
    assert!(
        got.as_deref() == Some(&stream(0, total)[..]),
        "{:?}",
        all.iter()
            .map(|d| (d.port, d.sub_off, d.data_off, d.bytes.len()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        p.s.counters().mptcp_bytes_first + p.s.counters().mptcp_bytes_joined,
        total as u64
    );
}

#[test]
fn redundant_sends_every_chunk_on_both_subflows() {
    let mut p = Peer::connected_sched(2, None, SchedKind::Redundant);
    let iss1 = p.joined_regular(5001, 53);
    let iss = [(5000, p.iss0), (5001, iss1)];
    let id = p.id.unwrap();
    p.s.send(id, &stream(0, 6_000)).unwrap();
    let now = p.now;
    p.s.poll(now);
    let segs = p.take_data(&iss);
    assert_eq!((on(&segs, 5000), on(&segs, 5001)), (6_000, 6_000));
    assert!(by_dsn(&segs, 6_000).as_deref() == Some(&stream(0, 6_000)[..]));
    assert_eq!(p.s.counters().mptcp_redundant_bytes, 6_000);
}

#[test]
fn a_reset_subflows_data_is_reinjected_on_the_other_with_its_dsns() {
    let mut p = Peer::connected_sched(2, None, SchedKind::RoundRobin);
    let iss1 = p.joined_regular(5001, 54);
    let iss = [(5000, p.iss0), (5001, iss1)];
    let id = p.id.unwrap();
    p.s.send(id, &stream(0, 8_000)).unwrap();
    let now = p.now;
    p.s.poll(now);
    let segs = p.take_data(&iss);
    let lost: Vec<&OurData> = segs.iter().filter(|d| d.port == 5001).collect();
    assert!(!lost.is_empty());
    // The first subflow's data is acknowledged (subflow and data level up
    // to the joined subflow's first chunk); the joined one is reset.
    let a = on(&segs, 5000);
    let first_gap = lost[0].data_off;
    p.ack_ours(5000, p.iss0, a as u32, first_gap);
    let rst = seg(5001, PEER_ISS + 1, iss1 + 1, TcpFlags::RST, &[]);
    p.now += std::time::Duration::from_millis(1);
    rx(&mut p.s, p.now, &tcp_frame_b_to_a(&rst, &[]));
    let now = p.now;
    p.s.poll(now);
    let mut again = p.take_data(&iss);
    let now = p.now + std::time::Duration::from_millis(1);
    p.s.poll(now);
    again.extend(p.take_data(&iss));
    assert!(p.s.counters().mptcp_reinjections >= 1);
    // Everything the joined subflow held went again on the first, at its
    // original DSNs.
    for l in &lost {
        let covered = again.iter().any(|d| {
            d.port == 5000
                && d.data_off <= l.data_off
                && l.data_off + l.bytes.len() as u64 <= d.data_off + d.bytes.len() as u64
                || d.port == 5000 && d.data_off == l.data_off
        });
        assert!(covered, "{l:?} not reinjected: {again:?}");
    }
    let all: Vec<OurData> = segs
        .into_iter()
        .filter(|d| d.port == 5000)
        .chain(again)
        .collect();
    assert!(by_dsn(&all, 8_000).as_deref() == Some(&stream(0, 8_000)[..]));
}

#[test]
fn a_backup_subflow_is_left_alone_while_the_first_is_usable() {
    // The join asked for a backup path (flag B): roundrobin passes it by.
    let mut p = Peer::connected_sched(2, None, SchedKind::RoundRobin);
    let iss1 = p.joined(5001, 55);
    let iss = [(5000, p.iss0), (5001, iss1)];
    let id = p.id.unwrap();
    p.s.send(id, &stream(0, 20_000)).unwrap();
    let now = p.now;
    p.s.poll(now);
    let segs = p.take_data(&iss);
    assert!(on(&segs, 5000) > 0);
    assert_eq!(on(&segs, 5001), 0);
}

/// `whole` (the stream from data offset `off`) as one mapping with its
/// DSS checksum, at subflow offset `sub` of the subflow from `port`; this
/// segment carries `whole[at..at + len]`, one byte flipped if `corrupt`
/// (as a middlebox rewriting payload would, the TCP checksum fixed up).
#[allow(clippy::too_many_arguments)]
fn mapped_part(
    p: &mut Peer,
    port: u16,
    iss: u32,
    sub: u32,
    off: u64,
    whole: &[u8],
    at: usize,
    len: usize,
    corrupt: bool,
) -> Vec<TcpRepr> {
    let (dsn, ssn) = (KEY_A.idsn() + 1 + off, sub + 1);
    let d = MptcpOption::Dss(Dss {
        data_ack: Some(p.key_b.idsn() + 1),
        ack64: true,
        mapping: Some(DssMapping {
            dsn,
            dsn64: true,
            ssn,
            len: whole.len() as u16,
            checksum: Some(dss_checksum(dsn, ssn, whole.len() as u16, sum(whole))),
        }),
        data_fin: false,
    });
    let mut payload = whole[at..at + len].to_vec();
    if corrupt {
        payload[len / 2] ^= 0x20;
    }
    let sg = seg(
        port,
        PEER_ISS + 1 + sub + at as u32,
        iss + 1,
        TcpFlags::ACK,
        &[d],
    );
    p.send_data(&sg, &payload)
}

/// RFC 8684 §3.3.1, §3.7: the DSS checksum is verified on a joined
/// subflow as on the first, also for a mapping spanning two segments; a
/// mapping that fails it is not delivered, and the subflow is reset with
/// MP_FAIL (the mapping's DSN) and MP_TCPRST "middlebox interference",
/// while the connection carries on over the first subflow, intact.
#[test]
fn joined_subflow_checksums_verified_and_a_failure_resets_it_with_mp_fail() {
    let mut p = Peer::connected_checksum(2);
    let iss1 = p.joined(5001, 43);
    let iss0 = p.iss0;
    p.data(5000, iss0, 0, 0, &stream(0, 100), false);
    let before = p.s.counters().mptcp_checksums_verified;
    // Data offsets 100..400, one mapping over two segments.
    let whole = stream(100, 300);
    mapped_part(&mut p, 5001, iss1, 0, 100, &whole, 0, 120, false);
    mapped_part(&mut p, 5001, iss1, 0, 100, &whole, 120, 180, false);
    let c = p.s.counters();
    assert_eq!(c.mptcp_checksums_verified, before + 1);
    assert_eq!(c.mptcp_checksum_failures, 0);
    assert_eq!(c.mptcp_checksums_unverified, 0);
    assert_eq!(p.read(), stream(0, 400));
    // 400..500 on the joined subflow, corrupted on the way.
    let out = mapped_part(
        &mut p,
        5001,
        iss1,
        300,
        400,
        &stream(400, 100),
        0,
        100,
        true,
    );
    let rst = out.iter().find(|s| s.flags.rst()).expect("a RST: {out:?}");
    assert_eq!(rst.src_port, 80);
    assert_eq!(rst.dst_port, 5001);
    assert_eq!(
        mp_opts(rst),
        vec![
            MptcpOption::MpFail {
                dsn: KEY_A.idsn() + 1 + 400
            },
            MptcpOption::MpTcpRst {
                flags: 0,
                reason: 0x06
            }
        ]
    );
    let c = p.s.counters();
    assert_eq!(c.mptcp_checksum_failures, 1);
    assert_eq!(c.mptcp_mp_fail_sent, 1);
    assert_eq!(
        p.s.recv_available(p.id.unwrap()).unwrap(),
        0,
        "not delivered"
    );
    assert_eq!(p.s.connections().count(), 1, "the first subflow stays");
    // The peer sends it again on the first subflow: read intact.
    p.data(5000, iss0, 100, 400, &stream(400, 100), false);
    assert_eq!(p.read(), stream(400, 100));
}

/// RFC 8684 §3.3.3: the connection is closed once both DATA_FINs are
/// DATA_ACKed; its first subflow lingers in TIME-WAIT (RFC 9293
/// §3.10.7.4) but its token goes at once, as Linux removes it when the
/// msk closes: no longer in the stack's tokens (nor, through the token
/// log, in the runtime's directory), and a join naming it gets the answer
/// for an unknown token (§3.2: RST with MP_TCPRST). The TIME-WAIT still
/// ACKs the peer's retransmitted FIN.
#[test]
fn a_closed_connections_token_is_released_while_its_first_subflow_is_in_time_wait() {
    let mut p = Peer::connected(2);
    p.s.log_tokens();
    let id = p.id.unwrap();
    let iss0 = p.iss0;
    let token = p.key_b.token();
    // The peer's 100 bytes, echoed and DATA_ACKed.
    p.data(5000, iss0, 0, 0, &stream(0, 100), false);
    assert_eq!(p.read(), stream(0, 100));
    assert_eq!(p.s.send(id, &stream(0, 100)).unwrap(), 100);
    p.s.poll(p.now);
    let out: Vec<TcpRepr> =
        p.s.device_mut()
            .take_tx()
            .iter()
            .map(|f| parse_tcp(f).2)
            .collect();
    assert!(!out.is_empty());
    let acked = |n: u64| {
        MptcpOption::Dss(Dss {
            data_ack: Some(p.key_b.idsn() + 1 + n),
            ack64: true,
            mapping: None,
            data_fin: false,
        })
    };
    let (ack100, ack101) = (acked(100), acked(101));
    let a = seg(5000, PEER_ISS + 101, iss0 + 101, TcpFlags::ACK, &[ack100]);
    p.send(&a);
    // The peer's DATA_FIN (a pure ACK, RFC 8684 §3.3.3), then ours rides
    // our FIN.
    let fin = MptcpOption::Dss(Dss {
        data_ack: Some(p.key_b.idsn() + 1 + 100),
        ack64: true,
        mapping: Some(DssMapping {
            dsn: KEY_A.idsn() + 1 + 100,
            dsn64: true,
            ssn: 0,
            len: 1,
            checksum: None,
        }),
        data_fin: true,
    });
    p.send(&seg(
        5000,
        PEER_ISS + 101,
        iss0 + 101,
        TcpFlags::ACK,
        &[fin],
    ));
    p.s.shutdown(id).unwrap();
    p.s.poll(p.now);
    let out: Vec<TcpRepr> =
        p.s.device_mut()
            .take_tx()
            .iter()
            .map(|f| parse_tcp(f).2)
            .collect();
    assert!(out.last().is_some_and(|o| o.flags.fin()), "{out:?}");
    assert_eq!(p.s.mptcp_tokens(), 1, "held until the connection closes");
    // Its ACK|FIN ACKs our FIN and DATA_ACKs our DATA_FIN.
    let ack_fin = TcpFlags::ACK | TcpFlags::FIN;
    let peer_fin = seg(5000, PEER_ISS + 101, iss0 + 102, ack_fin, &[ack101]);
    let out = p.send(&peer_fin);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].ack.0, PEER_ISS + 102);
    // Closed for the application; the subflow lingers in TIME-WAIT.
    assert_eq!((p.s.conn_count(), p.s.time_wait_count()), (1, 1));
    // The token is gone, here and (logged) for the runtime's directory.
    assert_eq!(p.s.mptcp_tokens(), 0);
    assert_eq!(p.s.counters().mptcp_tokens_released_closed, 1);
    let mut log = Vec::new();
    p.s.drain_token_log(|t, drawn| log.push((t, drawn)));
    assert_eq!(log.last(), Some(&(token, false)), "{log:?}");
    // A join for it: refused as an unknown token.
    let out = p.join_syn(5001, token, 9);
    assert_join_rst(&out);
    assert_eq!(p.s.counters().mptcp_joins_rejected_token, 1);
    // Its FIN again (our ACK lost): TIME-WAIT ACKs it.
    let out = p.send(&peer_fin);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(!out[0].flags.rst());
    assert_eq!(out[0].ack.0, PEER_ISS + 102);
    assert_eq!((p.s.conn_count(), p.s.time_wait_count()), (1, 1));
}

/// Workers 0 and 1 (`stacks[w]`), as the runtime runs them: `frame`, if
/// any, arrives at `stacks[at]`; each polls, schedules and releases the
/// messages parked for a connection that moved; every message goes to
/// the worker it is addressed to (its own too: a connection that left
/// has them forwarded, `mptcp_rehome`), until none is left. Returns the
/// TCP segments each transmitted.
fn workers_carry(
    stacks: [&mut Stack<TestDevice>; 2],
    now: Instant,
    at: usize,
    frame: Option<&[u8]>,
) -> [Vec<TcpRepr>; 2] {
    let [a, b] = stacks;
    let mut stacks = [a, b];
    if let Some(f) = frame {
        rx(stacks[at], now, f);
    }
    for _ in 0..16 {
        let mut msgs = Vec::new();
        for (w, s) in stacks.iter_mut().enumerate() {
            s.poll(now);
            xdptcp::stack::mptcp_remote_schedule(&mut [&mut **s]);
            s.mptcp_remote_unpark(now);
            s.mptcp_remote_drain(|to, m| msgs.push((w, to, m)));
        }
        if msgs.is_empty() {
            break;
        }
        for (from, to, m) in msgs {
            xdptcp::stack::mptcp_remote_input(&mut [&mut *stacks[to]], now, from, m);
        }
    }
    stacks.map(|s| {
        s.poll(now);
        let tx = s.device_mut().take_tx();
        let segs = tx.iter().filter(|f| f.len() > 34 && f[23] == 6);
        segs.map(|f| parse_tcp(f).2).collect()
    })
}

/// RFC 8684 §3.3.4 across workers, after a move: the connection (`p.s`,
/// worker `conn_w`) and its joined subflow from port 6000 (worker
/// `1 - conn_w`, our ISS `iss1`, its bytes so far `base`, all read). The
/// subflow fills up with unread data: the window it advertises narrows.
/// The application reads and the first subflow takes 3 KB: it
/// advertises the reopened window, and no message goes to the
/// subflow's worker for it. Then 8 KB on the subflow beyond the edge it
/// last advertised, within the connection's: taken at once (it read the
/// edge from the connection's `LevelCell`), none dropped out of window.
fn the_edge_reaches_the_subflow(
    p: &mut Peer,
    other: &mut Stack<TestDevice>,
    conn_w: usize,
    iss1: u32,
    base: usize,
) {
    let sub_w = 1 - conn_w;
    let (key_b, iss0) = (p.key_b, p.iss0);
    let on_sub = |k: usize, len: usize| {
        let (sub, off) = ((base + k * 1000) as u32, base + k * 1000);
        let sg = seg(
            6000,
            PEER_ISS + 1 + sub,
            iss1 + 1,
            TcpFlags::ACK,
            &[dss_at(key_b, off as u64, sub, len as u16)],
        );
        tcp_frame_b_to_a(&sg, &stream(off, len))
    };
    let mut now = p.now;
    let mut step = |p: &mut Peer, other: &mut Stack<TestDevice>, at: usize, f: &[u8]| {
        now += std::time::Duration::from_millis(1);
        p.now = now;
        let mut out = match conn_w {
            0 => workers_carry([&mut p.s, other], now, at, Some(f)),
            _ => workers_carry([other, &mut p.s], now, at, Some(f)),
        };
        (
            std::mem::take(&mut out[conn_w]),
            std::mem::take(&mut out[sub_w]),
        )
    };
    let n = 27usize;
    let mut w_sub = 0;
    for k in 0..n {
        let (_, out) = step(p, other, sub_w, &on_sub(k, 1000));
        if let Some(a) = out.last() {
            w_sub = a.window as u32;
        }
    }
    assert!(w_sub > 0 && w_sub < 4000, "the subflow's window {w_sub}");
    let mut off = base + n * 1000;
    assert_eq!(p.read(), stream(base, n * 1000));
    let mut first = Vec::new();
    for k in 0..3u32 {
        let sg = seg(
            5000,
            PEER_ISS + 1 + k * 1000,
            iss0 + 1,
            TcpFlags::ACK,
            &[dss_at(key_b, off as u64, k * 1000, 1000)],
        );
        let f = tcp_frame_b_to_a(&sg, &stream(off, 1000));
        let (a, b) = step(p, other, conn_w, &f);
        assert!(b.is_empty(), "the subflow's worker sent {b:?}");
        first.extend(a);
        off += 1000;
    }
    let a = first.last().expect("an ACK on the first subflow");
    assert_eq!(data_ack(a), Some(KEY_A.idsn() + 1 + off as u64));
    assert!(a.window as u32 > 4 * w_sub, "{a:?}");
    assert_eq!(p.read(), stream(off - 3000, 3000));
    let drops = other.counters().out_of_window;
    for k in (0..8).rev() {
        let f = {
            let (sub, o) = ((base + (n + k) * 1000) as u32, off + k * 1000);
            let sg = seg(
                6000,
                PEER_ISS + 1 + sub,
                iss1 + 1,
                TcpFlags::ACK,
                &[dss_at(key_b, o as u64, sub, 1000)],
            );
            tcp_frame_b_to_a(&sg, &stream(o, 1000))
        };
        step(p, other, sub_w, &f);
    }
    let got = p.read();
    assert_eq!(got.len(), 8000, "dropped beyond the subflow's own window");
    assert!(got == stream(off, 8000));
    assert_eq!(other.counters().out_of_window, drops, "out-of-window drops");
    assert_eq!(other.counters().mptcp_mapping_mismatches, 0);
}

#[test]
fn a_subflow_that_moved_takes_data_up_to_the_edge_learnt_on_the_first() {
    // The joined subflow runs on worker 0 beside its connection, then its
    // segments arrive on worker 1 and it moves there (`mptcp_migrate`):
    // the connection's `LevelCell` goes with it, so it still takes data
    // up to the window the first subflow advertised since (RFC 8684
    // §3.3.4). Without the cell it dropped the first segment beyond its
    // own edge, until the peer's retransmission.
    let mut p = Peer::connected_with(2, Some(60_000));
    let mut s2 = second_worker(&mut p);
    let iss1 = p.joined_regular(6000, 0x5151);
    let tuple = xdptcp::tcp::FourTuple {
        local: core::net::SocketAddrV4::new(IP_A, 80),
        remote: core::net::SocketAddrV4::new(IP_B, 6000),
    };
    let strays = usize::from(xdptcp::stack::STRAYS);
    let mut moved = None;
    for k in 0..strays {
        let (o, d) = (k * 100, stream(k * 100, 100));
        p.data(6000, iss1, o as u32, o as u64, &d, false);
        moved = moved.or_else(|| p.s.mptcp_stray(p.now, &tuple, false));
    }
    let m = moved.expect("the subflow moves after its strays");
    assert!(s2.mptcp_migrate_in(p.now, m));
    workers_carry([&mut p.s, &mut s2], p.now, 1, None);
    assert!(s2.has_conn(&tuple) && !p.s.has_conn(&tuple));
    assert_eq!(p.read(), stream(0, strays * 100));
    the_edge_reaches_the_subflow(&mut p, &mut s2, 0, iss1, strays * 100);
}

#[test]
fn a_connection_that_moved_still_publishes_its_edge_to_its_subflow_in_another_worker() {
    // The connection and its joined subflow on worker 0; the connection
    // moves to worker 1 (its first subflow's segments arrive there), its
    // token with it; the subflow stays, now run for a connection in
    // another worker (`mptcp_conn_unlink`), reading the `LevelCell` the
    // connection took along: the window the first subflow advertises on
    // worker 1 reaches it before its next segment (RFC 8684 §3.3.4).
    let mut p = Peer::connected_with(2, Some(60_000));
    let mut s2 = second_worker(&mut p);
    let token = p.key_b.token();
    // The token directory: worker 0 holds the token, then worker 1.
    let home = std::rc::Rc::new(std::cell::Cell::new(0usize));
    for (w, s) in [&mut p.s, &mut s2].into_iter().enumerate() {
        let h = home.clone();
        s.mptcp_set_remote(w, 0, Box::new(move |t| (t == token).then(|| h.get())));
    }
    let iss1 = p.joined_regular(6000, 0x5151);
    let id = p.id.expect("the connection");
    assert!(xdptcp::stack::mptcp_conn_subs_ready(&mut [&mut p.s], 0, id));
    xdptcp::stack::mptcp_conn_unlink(&mut [&mut p.s], 0, id);
    let m = p.s.tcp_migrate_out(id).expect("it leaves");
    let now = p.now;
    let Ok(id2) = s2.tcp_migrate_in(now, m) else {
        panic!("refused on worker 1");
    };
    home.set(1);
    // `p` drives the connection's worker from now on.
    std::mem::swap(&mut p.s, &mut s2);
    p.id = Some(id2);
    workers_carry([&mut s2, &mut p.s], now, 0, None);
    assert_eq!(p.s.mptcp_tokens(), 1);
    assert_eq!(s2.mptcp_remote_subflows_here(), 1);
    the_edge_reaches_the_subflow(&mut p, &mut s2, 1, iss1, 0);
}
