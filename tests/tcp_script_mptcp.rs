//! Packet scripts for MPTCP v1 on one subflow (RFC 8684 §3.1, §3.3,
//! §3.7): the passive handshake replayed from a Linux <-> Linux capture
//! (same keys: our options must be the bytes Linux's server sent), the
//! active handshake, DSS on every segment, DATA_FIN, the DSS checksum, and
//! each fallback with the connection continuing as plain TCP.

mod tcp_harness;
use tcp_harness::*;
use xdptcp::mptcp::crypto::{dss_checksum, Key};
use xdptcp::mptcp::Phase;
use xdptcp::tcp::{Config, Connection, SeqNumber, State, TcpRepr};
use xdptcp::time::Instant;
use xdptcp::wire::checksum;
use xdptcp::wire::mptcp::{Dss, DssMapping, MptcpOption};
use xdptcp::wire::MptcpRaw;

/// Keys of the captured Linux connection: client (the peer here) and
/// server (us, when passive).
const KEY_A: u64 = 0x38ae6ee5132aa987;
const KEY_B: u64 = 0xee29f78c747973d7;

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn mcfg() -> Config {
    Config {
        mptcp: true,
        // The captured Linux server accepted joins (no flag C).
        mptcp_max_subflows: 2,
        ..cfg()
    }
}

trait Mp {
    fn mp(self, raw: &[u8]) -> Self;
}
impl Mp for TcpRepr {
    fn mp(mut self, raw: &[u8]) -> Self {
        self.options.mptcp = MptcpRaw::from_slice(raw).unwrap();
        self
    }
}

/// The MPTCP options of an emitted segment, parsed.
fn mp_opts(o: &Out) -> Vec<MptcpOption> {
    o.seg
        .options
        .mptcp
        .options()
        .map(|b| MptcpOption::parse(b).unwrap())
        .collect()
}

fn dss(o: &Out) -> Dss {
    match mp_opts(o).as_slice() {
        [MptcpOption::Dss(d)] => *d,
        other => panic!("expected one DSS, got {other:?} in {:?}", o.seg),
    }
}

fn opt_bytes(o: MptcpOption) -> Vec<u8> {
    let mut b = [0u8; 40];
    let n = o.emit(&mut b);
    b[..n].to_vec()
}

/// A passive connection from a Linux-like SYN (`syn_opt`), keyed KEY_B,
/// up to the SYN-ACK.
fn passive(syn_opt: &str, cfg: &Config) -> (Script, Out) {
    let syn = seg(S, PEER_ISS, 0, 65535)
        .mss(1460)
        .ws(7)
        .sack_perm()
        .ts(100, 0)
        .mp(&hex(syn_opt));
    let mut c = Connection::accept(cfg, tuple(), &syn, SeqNumber(ISS), Instant::ZERO);
    assert!(c.mptcp_wants_key());
    c.set_mptcp_key(Key(KEY_B));
    let mut s = Script::new(c);
    let out = s.poll();
    assert_eq!(out.len(), 1);
    (s, out[0].clone())
}

#[test]
fn syn_ack_sets_flag_c_when_no_join_is_accepted() {
    // RFC 8684 §3.1: flag C, "will not accept additional MPTCP subflows
    // to the source address and port" (the default: no extra subflow).
    let cfg = Config {
        mptcp_max_subflows: 0,
        ..mcfg()
    };
    let (_, sa) = passive("1e040101", &cfg);
    assert_eq!(
        sa.seg.options.mptcp.as_slice(),
        hex("1e0c0121ee29f78c747973d7")
    );
}

#[test]
fn passive_handshake_and_data_are_what_linux_sent() {
    let (mut s, sa) = passive("1e040101", &mcfg());
    check(&sa, S | A, ISS, PEER_ISS + 1, 0);
    // Our SYN/ACK option is byte for byte Linux's: version 1, H, our key.
    assert_eq!(
        sa.seg.options.mptcp.as_slice(),
        hex("1e0c0101ee29f78c747973d7")
    );
    // The third ACK: both keys.
    s.at_ms(1);
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(101, 0)
            .mp(&hex("1e14010138ae6ee5132aa987ee29f78c747973d7")),
        &[],
    );
    assert_eq!(s.c.state(), State::Established);
    assert_eq!(s.c.mptcp().unwrap().phase, Phase::Established);
    // 12 bytes of timestamps and 28 for the DSS come off the MSS.
    assert_eq!(s.c.snd_mss(), 1460 - 12 - 28);
    // Linux's first data: one 3000-byte mapping (MP_CAPABLE form) over
    // three segments.
    let cap = hex("1e16010138ae6ee5132aa987ee29f78c747973d70bb8");
    let data = pattern(0, 3000);
    let mut off = 0;
    for len in [1424, 1424, 152] {
        s.input(
            seg(A, PEER_ISS + 1 + off as u32, ISS + 1, 1000)
                .ts(102, 0)
                .mp(&cap),
            &data[off..off + len],
        );
        off += len;
    }
    let out = s.poll();
    assert!(!out.is_empty());
    // Our ACK carries the Data ACK Linux's server sent: IDSN(A) + 1 + 3000.
    let last = out.last().unwrap();
    check(last, A, ISS + 1, PEER_ISS + 1 + 3000, 0);
    assert_eq!(
        last.seg.options.mptcp.as_slice(),
        hex("1e0c20030dc00f8d6e23e282")
    );
    assert_eq!(s.read_all(), data);
    // Our data: DSN = IDSN(B) + 1 at SSN 1, as Linux's server mapped it.
    assert_eq!(s.send(&[7; 2000]), 2000);
    let out = s.poll();
    assert_eq!(out.len(), 2, "{out:?}");
    let d = dss(&out[0]);
    assert_eq!(d.data_ack, Some(0x0dc00f8d6e23e282));
    let m = d.mapping.unwrap();
    assert_eq!((m.dsn, m.ssn, m.len), (0xb82f042442ea6560, 1, 1420));
    let m = dss(&out[1]).mapping.unwrap();
    assert_eq!(
        (m.dsn, m.ssn, m.len),
        (0xb82f042442ea6560 + 1420, 1421, 580)
    );
    assert_eq!(s.c.stats().mptcp_fallbacks, 0);
    assert_eq!(s.c.stats().mptcp_bad_options, 0);
    // A subflow's segments carry MPTCP options: never the plain path
    // (`tcp::conn::plain_tx`).
    assert_eq!(s.sink.plain, 0);
}

/// Passive, through the third ACK and the peer's first 100 bytes.
fn passive_established(cfg: &Config, syn_opt: &str) -> Script {
    passive_established_synack(cfg, syn_opt).0
}

/// `passive_established`, with the SYN/ACK we sent.
fn passive_established_synack(cfg: &Config, syn_opt: &str) -> (Script, Out) {
    let (mut s, synack) = passive(syn_opt, cfg);
    s.at_ms(1);
    let csum = cfg.mptcp_checksum || syn_opt == "1e040181";
    let flags = if csum { 0x81 } else { 0x01 };
    let ack = opt_bytes(MptcpOption::MpCapable(xdptcp::wire::mptcp::MpCapable {
        version: 1,
        flags,
        sender_key: Some(KEY_A),
        receiver_key: Some(KEY_B),
        ..Default::default()
    }));
    s.input(seg(A, PEER_ISS + 1, ISS + 1, 1000).ts(101, 0).mp(&ack), &[]);
    assert_eq!(s.c.state(), State::Established);
    (s, synack)
}

/// A DSS mapping from the peer: `len` bytes at data offset `off`.
fn peer_dss(off: u64, len: u16, fin: bool, csum: Option<&[u8]>) -> Vec<u8> {
    let dsn = Key(KEY_A).idsn() + 1 + off;
    let ssn = off as u32 + 1;
    let checksum = csum.map(|d| dss_checksum(dsn, ssn, len, checksum::sum(d)));
    opt_bytes(MptcpOption::Dss(Dss {
        data_ack: Some(Key(KEY_B).idsn() + 1),
        ack64: true,
        mapping: Some(DssMapping {
            dsn,
            dsn64: true,
            ssn,
            len,
            checksum,
        }),
        data_fin: fin,
    }))
}

#[test]
fn data_fin_is_the_applications_eof_once() {
    let mut s = passive_established(&mcfg(), "1e040101");
    let d = pattern(0, 100);
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(102, 0)
            .mp(&peer_dss(0, 100, false, None)),
        &d,
    );
    let _ = s.c.take_events();
    // DATA_FIN on a pure ACK (as Linux sends it): DSN after the data, SSN
    // 0, length 1 (RFC 8684 §3.3.3); no subflow FIN yet.
    let fin_dsn = Key(KEY_A).idsn() + 1 + 100;
    let df = opt_bytes(MptcpOption::Dss(Dss {
        data_ack: Some(Key(KEY_B).idsn() + 1),
        ack64: true,
        mapping: Some(DssMapping {
            dsn: fin_dsn,
            dsn64: true,
            ssn: 0,
            len: 1,
            checksum: None,
        }),
        data_fin: true,
    }));
    let out = s.io(
        seg(A, PEER_ISS + 101, ISS + 1, 1000).ts(103, 0).mp(&df),
        &[],
    );
    assert!(s.c.take_events().read_closed(), "DATA_FIN is the EOF");
    assert_eq!(s.c.state(), State::Established, "the subflow stays open");
    // The Data ACK covers the DATA_FIN.
    let last = out.last().expect("an ACK of the DATA_FIN");
    assert_eq!(dss(last).data_ack, Some(fin_dsn + 1));
    assert_eq!(s.read_all(), d);
    // We close: FIN with DATA_FIN, the mapping SSN 0 / length 1.
    s.c.shutdown();
    let out = s.poll();
    let fin = out.last().unwrap();
    assert!(fin.flags().fin());
    let d = dss(fin);
    assert!(d.data_fin);
    let m = d.mapping.unwrap();
    assert_eq!((m.dsn, m.ssn, m.len), (Key(KEY_B).idsn() + 1, 0, 1));
    // Linux ACKs it and closes the subflow with FIN: no second EOF.
    s.input(
        seg(A | F, PEER_ISS + 101, ISS + 2, 1000)
            .ts(104, 0)
            .mp(&hex("1e0c2003")
                .into_iter()
                .chain((Key(KEY_B).idsn() + 2).to_be_bytes())
                .collect::<Vec<_>>()),
        &[],
    );
    assert!(!s.c.take_events().read_closed(), "EOF reported once");
    assert_eq!(s.c.state(), State::TimeWait);
}

#[test]
fn dss_checksum_sent_and_checked() {
    // Linux asks for checksums (flag A in its SYN): our SYN/ACK has A too.
    let (_, sa) = passive("1e040181", &mcfg());
    assert_eq!(sa.seg.options.mptcp.as_slice()[3], 0x81);
    let mut s = passive_established(&mcfg(), "1e040181");
    // Our data carries a checksum over its pseudo-header and payload.
    s.send(&pattern(0, 500));
    let out = s.poll();
    let m = dss(&out[0]).mapping.unwrap();
    let want = dss_checksum(m.dsn, m.ssn, m.len, checksum::sum(&out[0].data));
    assert_eq!(m.checksum, Some(want));
    // A good mapping from the peer is taken.
    let d = pattern(0, 100);
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(102, 0)
            .mp(&peer_dss(0, 100, false, Some(&d))),
        &d,
    );
    assert_eq!(s.read_all(), d);
    assert_eq!(s.c.stats().mptcp_checksums_verified, 1);
}

/// Established with checksums, the peer's first 100 bytes taken, then
/// 100 bytes whose payload a middlebox changed: the output.
fn corrupted_after_100(s: &mut Script) -> Vec<Out> {
    let d = pattern(0, 100);
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(102, 0)
            .mp(&peer_dss(0, 100, false, Some(&d))),
        &d,
    );
    let mut bad = pattern(100, 100);
    let opt = peer_dss(100, 100, false, Some(&bad));
    bad[7] ^= 0x20;
    s.io(
        seg(A, PEER_ISS + 101, ISS + 1, 1000).ts(103, 0).mp(&opt),
        &bad,
    )
}

#[test]
fn a_checksum_failure_alone_falls_back_to_tcp_through_the_infinite_mapping() {
    let mut s = passive_established(&mcfg(), "1e040181");
    let out = corrupted_after_100(&mut s);
    // RFC 8684 §3.7, one subflow: no reset; MP_FAIL names the failed
    // mapping's DSN on a pure ACK, and the bytes are taken as TCP took
    // them (their subflow ACK is out: the peer will not resend them).
    assert_eq!(s.c.state(), State::Established);
    assert!(!out.iter().any(|o| o.flags().rst()), "{out:?}");
    let fail_dsn = Key(KEY_A).idsn() + 1 + 100;
    let ack = out.last().expect("an ACK");
    assert!(ack.data.is_empty());
    assert!(
        mp_opts(ack).contains(&MptcpOption::MpFail { dsn: fail_dsn }),
        "{:?}",
        mp_opts(ack)
    );
    let st = s.c.stats();
    assert_eq!((st.mptcp_checksum_failures, st.mptcp_mp_fail_sent), (1, 1));
    let mut want = pattern(0, 200);
    want[107] ^= 0x20;
    assert_eq!(s.read_all(), want);
    // The peer (as Linux) echoes MP_FAIL, then its next data carries the
    // infinite mapping (data-level length 0) and no option follows.
    let echo = opt_bytes(MptcpOption::MpFail { dsn: fail_dsn });
    s.input(
        seg(A, PEER_ISS + 201, ISS + 1, 1000).ts(104, 0).mp(&echo),
        &[],
    );
    let inf = opt_bytes(MptcpOption::Dss(Dss {
        data_ack: Some(Key(KEY_B).idsn() + 1),
        ack64: true,
        mapping: Some(DssMapping {
            dsn: Key(KEY_A).idsn() + 1 + 200,
            dsn64: true,
            ssn: 201,
            len: 0,
            checksum: Some(0),
        }),
        data_fin: false,
    }));
    s.input(
        seg(A, PEER_ISS + 201, ISS + 1, 1000).ts(105, 0).mp(&inf),
        &pattern(200, 100),
    );
    s.input(
        seg(A, PEER_ISS + 301, ISS + 1, 1000).ts(106, 0),
        &pattern(300, 100),
    );
    assert_eq!(s.read_all(), pattern(200, 200));
    assert_eq!(s.c.mptcp().unwrap().phase, Phase::Fallback);
    let st = s.c.stats();
    assert_eq!(
        (
            st.mptcp_infinite_maps_received,
            st.mptcp_mp_fail_received,
            st.mptcp_fallbacks
        ),
        (1, 1, 1)
    );
    // Plain TCP both ways: our data carries no MPTCP option, and the
    // peer's FIN is the end of the data.
    s.send(&pattern(0, 300));
    let out = s.poll();
    assert!(!out.is_empty());
    assert!(
        out.iter()
            .all(|o| o.seg.options.mptcp.as_slice().is_empty()),
        "{out:?}"
    );
    let _ = s.c.take_events();
    s.input(seg(A | F, PEER_ISS + 401, ISS + 301, 1000).ts(107, 0), &[]);
    assert!(
        s.c.take_events().read_closed(),
        "the subflow's FIN is the EOF"
    );
}

#[test]
fn a_peer_that_fell_back_before_its_infinite_mapping_reached_us_is_followed() {
    // Linux falls back when it sends the infinite mapping, on data that a
    // closed window may not take; its next segments carry no option. From
    // such a segment on, its bytes run on from where its mappings ended.
    let mut s = passive_established(&mcfg(), "1e040181");
    corrupted_after_100(&mut s);
    s.input(seg(A, PEER_ISS + 201, ISS + 1, 1000).ts(104, 0), &[]);
    assert_eq!(s.c.mptcp().unwrap().phase, Phase::Fallback);
    s.input(
        seg(A, PEER_ISS + 201, ISS + 1, 1000).ts(105, 0),
        &pattern(200, 100),
    );
    let mut want = pattern(0, 300);
    want[107] ^= 0x20;
    assert_eq!(s.read_all(), want);
    assert_eq!(s.c.stats().mptcp_fallbacks, 1);
}

#[test]
fn the_infinite_mapping_carries_the_bytes_at_its_offset() {
    // The peer's MP_FAIL comes on an ACK of our data at the subflow level
    // while its DATA_ACK lags (Linux's does): the copies only the DATA_ACK
    // held go when the infinite mapping falls back, while the segment that
    // carries it is being built: it must still send its own bytes. Both
    // with the connection's queue (joins accepted) and without, where the
    // subflow's own queue holds the data for the DATA_ACK.
    for joins in [2, 0] {
        let cfg = Config {
            mptcp_max_subflows: joins,
            ..mcfg()
        };
        infinite_mapping_after_a_lagging_data_ack(&cfg);
    }
}

fn infinite_mapping_after_a_lagging_data_ack(cfg: &Config) {
    let mut s = passive_established(cfg, "1e040181");
    s.send(&pattern(0, 8000));
    let out = s.poll();
    let end = out
        .iter()
        .map(|o| o.seg.seq.0 + o.data.len() as u32)
        .max()
        .unwrap();
    let sent = end.wrapping_sub(ISS + 1);
    assert!(sent >= 5 * 1400, "{sent}");
    // The first segment DATA_ACKed, then all of them ACKed on the subflow
    // only, with MP_FAIL.
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1 + 1400, 1000)
            .ts(102, 0)
            .mp(&data_ack_of(1400)),
        &[],
    );
    let mut fail = data_ack_of(1400);
    fail.extend(opt_bytes(MptcpOption::MpFail {
        dsn: Key(KEY_B).idsn() + 1,
    }));
    s.io(seg(A, PEER_ISS + 1, end, 1000).ts(103, 0).mp(&fail), &[]);
    s.send(&pattern(8000, 3000));
    let out = s.poll();
    let first = out.iter().find(|o| !o.data.is_empty()).expect("data");
    assert_eq!(dss(first).mapping.map(|m| m.len), Some(0), "{out:?}");
    for o in out.iter().filter(|o| !o.data.is_empty()) {
        let off = o.seg.seq.0.wrapping_sub(ISS + 1) as usize;
        assert_eq!(o.data, pattern(off, o.data.len()), "bytes at offset {off}");
    }
    assert_eq!(s.c.stats().mptcp_infinite_maps_sent, 1);
}

#[test]
fn a_retransmission_does_not_carry_the_infinite_mapping() {
    // Linux drops a segment it already has, and an infinite mapping on it
    // with it (RFC 8684 §3.7): only new data carries the mapping.
    let mut s = passive_established(&mcfg(), "1e040181");
    s.send(&pattern(0, 500));
    let out = s.poll();
    assert_eq!(out.len(), 1);
    let fail = opt_bytes(MptcpOption::MpFail {
        dsn: Key(KEY_B).idsn() + 1,
    });
    let out = s.io(
        seg(A, PEER_ISS + 1, ISS + 1, 1000).ts(102, 0).mp(&fail),
        &[],
    );
    assert!(out.iter().all(|o| o.data.is_empty()), "{out:?}");
    // The tail goes again (loss probe or timeout): a plain mapping.
    let out = s.fire();
    let again = out.iter().find(|o| o.seg.seq.0 == ISS + 1).expect("resent");
    assert_eq!(dss(again).mapping.map(|m| m.len), Some(500), "{out:?}");
    assert!(s.c.mptcp().unwrap().is_mptcp());
    // Acknowledged; new data: the infinite mapping.
    s.input(
        seg(A, PEER_ISS + 1, ISS + 501, 1000)
            .ts(103, 0)
            .mp(&data_ack_of(500)),
        &[],
    );
    s.send(&pattern(500, 100));
    let out = s.poll();
    let new = out
        .iter()
        .find(|o| o.seg.seq.0 == ISS + 501)
        .unwrap_or_else(|| panic!("new data: {out:?}"));
    assert_eq!(dss(new).mapping.map(|m| m.len), Some(0), "{out:?}");
    assert_eq!(s.c.mptcp().unwrap().phase, Phase::Fallback);
}

#[test]
fn the_peers_mp_fail_is_echoed_and_answered_with_the_infinite_mapping() {
    let mut s = passive_established(&mcfg(), "1e040181");
    s.send(&pattern(0, 500));
    let out = s.poll();
    assert!(dss(&out[0]).mapping.is_some());
    // The peer found our mapping corrupted (RFC 8684 §3.7): MP_FAIL on its
    // ACK. We echo it on a pure ACK.
    let dsn = Key(KEY_B).idsn() + 1;
    let fail = opt_bytes(MptcpOption::MpFail { dsn });
    let out = s.io(
        seg(A, PEER_ISS + 1, ISS + 501, 1000).ts(102, 0).mp(&fail),
        &[],
    );
    let echo = out.last().expect("the echo");
    assert!(
        mp_opts(echo).contains(&MptcpOption::MpFail { dsn }),
        "{out:?}"
    );
    // Our next data segment carries the infinite mapping from its first
    // byte; the ones after it no option: plain TCP.
    s.send(&pattern(500, 3000));
    let out = s.poll();
    assert!(out.len() >= 2, "{out:?}");
    let m = dss(&out[0]).mapping.expect("the infinite mapping");
    assert_eq!((m.dsn, m.ssn, m.len), (Key(KEY_B).idsn() + 1 + 500, 501, 0));
    assert!(
        out[1..]
            .iter()
            .all(|o| o.seg.options.mptcp.as_slice().is_empty()),
        "{out:?}"
    );
    let st = s.c.stats();
    assert_eq!(
        (
            st.mptcp_mp_fail_received,
            st.mptcp_mp_fail_sent,
            st.mptcp_infinite_maps_sent
        ),
        (1, 1, 1)
    );
    assert_eq!(s.c.mptcp().unwrap().phase, Phase::Fallback);
    // No DATA_ACK comes now: the subflow's ACK releases the data.
    let end = out
        .iter()
        .map(|o| o.seg.seq.0 + o.data.len() as u32)
        .max()
        .unwrap();
    s.input(seg(A, PEER_ISS + 1, end, 1000).ts(103, 0), &[]);
    assert_eq!(s.c.mptcp_snd_unacked(), 0);
}

#[test]
fn data_out_of_order_at_the_data_level_is_reassembled_by_dsn() {
    // RFC 8684 §3.3: the subflow's bytes need not map one to one. Here
    // the subflow's first 100 bytes carry data offsets 50..150, the next
    // 50 bytes offsets 0..50: in order on the subflow, out of order at the
    // data level. Nothing is readable until the gap is filled; then all
    // 150 bytes are, in data order.
    let mut s = passive_established(&mcfg(), "1e040101");
    let out = s.io(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(102, 0)
            .mp(&peer_dss_at(50, 0, 100)),
        &pattern(50, 100),
    );
    assert_eq!(s.c.state(), State::Established);
    assert_eq!(s.c.recv_available(), 0, "held for the gap");
    // The subflow acknowledges the bytes; the Data ACK stays at the gap.
    let last = out.last().expect("an ACK");
    assert_eq!(last.seg.ack.0, PEER_ISS + 101);
    assert_eq!(dss(last).data_ack, Some(Key(KEY_A).idsn() + 1));
    let out = s.io(
        seg(A, PEER_ISS + 101, ISS + 1, 1000)
            .ts(103, 0)
            .mp(&peer_dss_at(0, 100, 50)),
        &pattern(0, 50),
    );
    assert!(s.c.take_events().readable());
    assert_eq!(s.read_all(), pattern(0, 150));
    let last = out.last().expect("an ACK");
    assert_eq!(dss(last).data_ack, Some(Key(KEY_A).idsn() + 1 + 150));
    assert_eq!(s.c.stats().mptcp_data_ooo, 1);
    assert_eq!(s.c.stats().mptcp_mapping_mismatches, 0);
}

#[test]
fn subflow_bytes_without_a_mapping_reset() {
    // RFC 8684 §3.3.1: subflow data that no mapping covers cannot be
    // placed in the data stream: an invalid mapping, the subflow (here
    // the connection) is reset and no byte is delivered.
    let mut s = passive_established(&mcfg(), "1e040101");
    // 100 bytes at subflow offset 0, the mapping covering offsets 10..110.
    let out = s.io(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(102, 0)
            .mp(&peer_dss_at(0, 10, 100)),
        &pattern(0, 100),
    );
    assert_eq!(s.c.state(), State::Closed);
    assert!(out.iter().any(|o| o.flags().rst()));
    assert_eq!(s.c.stats().mptcp_mapping_mismatches, 1);
    assert_eq!(s.read_all(), Vec::<u8>::new(), "no byte delivered");
}

#[test]
fn a_second_mapping_naming_other_dsns_for_the_same_bytes_resets() {
    // RFC 8684 §3.3.1: a mapping cannot be changed once given.
    let mut s = passive_established(&mcfg(), "1e040101");
    // Offsets 100..200 are mapped (out of order: nothing at 0..100 yet).
    s.input(
        seg(A, PEER_ISS + 101, ISS + 1, 1000)
            .ts(102, 0)
            .mp(&peer_dss_at(100, 100, 100)),
        &pattern(100, 100),
    );
    assert_eq!(s.c.state(), State::Established);
    // The same subflow bytes again, named as data offsets 500..600.
    s.input(
        seg(A, PEER_ISS + 101, ISS + 1, 1000)
            .ts(103, 0)
            .mp(&peer_dss_at(500, 100, 100)),
        &pattern(100, 100),
    );
    assert_eq!(s.c.state(), State::Closed);
    assert_eq!(s.c.stats().mptcp_mapping_mismatches, 1);
}

#[test]
fn third_ack_stripped_falls_back_to_tcp() {
    let (mut s, _) = passive("1e040101", &mcfg());
    s.at_ms(1);
    // A middlebox removed the MPTCP option from the third ACK.
    s.input(seg(A, PEER_ISS + 1, ISS + 1, 1000).ts(101, 0), &[]);
    assert_eq!(s.c.state(), State::Established);
    assert_eq!(s.c.mptcp().unwrap().phase, Phase::Fallback);
    assert_eq!(s.c.stats().mptcp_fallbacks, 1);
    // Plain TCP from here: full MSS, no MPTCP option, data both ways.
    assert_eq!(s.c.snd_mss(), 1448);
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000).ts(102, 0),
        &pattern(0, 10),
    );
    s.send(&[1; 10]);
    let out = s.poll();
    assert!(
        out.iter().all(|o| o.seg.options.mptcp.is_empty()),
        "{out:?}"
    );
    assert_eq!(s.read_all(), pattern(0, 10));
}

#[test]
fn first_data_without_mapping_falls_back_to_tcp() {
    let mut s = passive_established(&mcfg(), "1e040101");
    assert_eq!(s.c.mptcp().unwrap().phase, Phase::Established);
    // RFC 8684 §3.7: the first data has no DSS.
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000).ts(102, 0),
        &pattern(0, 50),
    );
    assert_eq!(s.c.mptcp().unwrap().phase, Phase::Fallback);
    assert_eq!(s.c.stats().mptcp_fallbacks, 1);
    assert_eq!(s.read_all(), pattern(0, 50), "the data is kept");
    let out = s.poll();
    assert!(
        out.iter().all(|o| o.seg.options.mptcp.is_empty()),
        "{out:?}"
    );
}

#[test]
fn active_open_offers_and_falls_back_when_not_answered() {
    let mut c = Connection::connect(&mcfg(), tuple(), SeqNumber(ISS), Instant::ZERO);
    assert!(c.mptcp_wants_key());
    c.set_mptcp_key(Key(KEY_A));
    let mut s = Script::new(c);
    let syn = s.poll();
    // The SYN offers MP_CAPABLE v1 with H and no key (RFC 8684 §3.1), as
    // Linux's SYN.
    assert_eq!(syn[0].seg.options.mptcp.as_slice(), hex("1e040101"));
    s.at_ms(10);
    // The server answers plain TCP.
    let sa = seg(S | A, PEER_ISS, ISS + 1, 65535)
        .mss(1460)
        .ws(7)
        .sack_perm()
        .ts(100, 0);
    let out = s.io(sa, &[]);
    assert_eq!(s.c.state(), State::Established);
    assert_eq!(s.c.mptcp().unwrap().phase, Phase::Fallback);
    assert_eq!(s.c.stats().mptcp_fallbacks, 1);
    assert!(out.iter().all(|o| o.seg.options.mptcp.is_empty()));
    assert_eq!(s.c.snd_mss(), 1448);
}

#[test]
fn active_open_sends_both_keys_then_dss() {
    let mut c = Connection::connect(&mcfg(), tuple(), SeqNumber(ISS), Instant::ZERO);
    c.set_mptcp_key(Key(KEY_A));
    let mut s = Script::new(c);
    s.poll();
    s.at_ms(10);
    let sa = seg(S | A, PEER_ISS, ISS + 1, 65535)
        .mss(1460)
        .ws(7)
        .sack_perm()
        .ts(100, 0)
        .mp(&hex("1e0c0101ee29f78c747973d7"));
    let out = s.io(sa, &[]);
    // The third ACK: both keys, byte for byte Linux's.
    assert_eq!(
        out[0].seg.options.mptcp.as_slice(),
        hex("1e14010138ae6ee5132aa987ee29f78c747973d7")
    );
    // First data: MP_CAPABLE with the data-level length; later segments
    // (before the server's first DSS) carry DSS mappings.
    s.send(&pattern(0, 3000));
    let out = s.poll();
    assert_eq!(out.len(), 3, "{out:?}");
    match mp_opts(&out[0]).as_slice() {
        [MptcpOption::MpCapable(c)] => {
            assert_eq!(c.data_len, Some(out[0].data.len() as u16));
            assert_eq!(c.receiver_key, Some(KEY_B));
        }
        o => panic!("{o:?}"),
    }
    let m = dss(&out[1]).mapping.unwrap();
    assert_eq!(m.dsn, Key(KEY_A).idsn() + 1 + out[0].data.len() as u64);
    // After the server's DSS, pure ACKs carry a DSS (Data ACK) too.
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1 + 3000, 1000)
            .ts(101, 0)
            .mp(&hex("1e0c2003")
                .into_iter()
                .chain((Key(KEY_A).idsn() + 3001).to_be_bytes())
                .collect::<Vec<_>>()),
        &[],
    );
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1 + 3000, 1000).ts(101, 0).mp(&{
            let dsn = Key(KEY_B).idsn() + 1;
            opt_bytes(MptcpOption::Dss(Dss {
                data_ack: Some(Key(KEY_A).idsn() + 3001),
                ack64: true,
                mapping: Some(DssMapping {
                    dsn,
                    dsn64: true,
                    ssn: 1,
                    len: 5,
                    checksum: None,
                }),
                data_fin: false,
            }))
        }),
        &[9; 5],
    );
    let out = s.fire();
    let last = out.last().unwrap();
    assert_eq!(dss(last).data_ack, Some(Key(KEY_B).idsn() + 1 + 5));
    assert_eq!(s.c.stats().mptcp_fallbacks, 0);
}

/// An active open with the checksum run's client key, the server (Linux)
/// answering with its key and flag A: checksums on.
fn csum_client() -> Script {
    let mut c = Connection::connect(&mcfg(), tuple(), SeqNumber(ISS), Instant::ZERO);
    c.set_mptcp_key(Key(0xe1d28efa68a62749));
    let mut s = Script::new(c);
    s.poll();
    s.at_ms(10);
    let sa = seg(S | A, PEER_ISS, ISS + 1, 65535)
        .mss(1460)
        .ws(7)
        .sack_perm()
        .ts(100, 0)
        .mp(&hex("1e0c0181650c8a2c39aec3c7"));
    s.io(sa, &[]);
    assert!(s.c.mptcp().unwrap().checksum);
    s
}

/// Linux's server mapped 3000 bytes of 'x' at SSN 1 in one DSS with
/// checksum 663e and sent them in several segments, each repeating it.
const LINUX_CSUM_DSS: &str = "1e1c200f8c6d051915c1ba6f82066315615565b5000000010bb8663e";

fn feed(s: &mut Script, splits: &[usize], dss: &[u8], corrupt_at: Option<usize>) {
    let mut data = vec![b'x'; 3000];
    if let Some(i) = corrupt_at {
        data[i] = b'y';
    }
    let mut off = 0;
    for &len in splits {
        s.input(
            seg(A, PEER_ISS + 1 + off as u32, ISS + 1, 1000)
                .ts(101, 0)
                .mp(dss),
            &data[off..off + len],
        );
        off += len;
    }
}

#[test]
fn checksum_of_a_mapping_over_several_segments_is_checked() {
    let dss = hex(LINUX_CSUM_DSS);
    // As Linux split it, and at an odd boundary (bytes at odd positions
    // of the mapping pair the other way round).
    for splits in [
        &[1420, 1420, 160][..],
        &[1001, 1420, 579],
        &[1, 2, 3, 1420, 1420, 154],
    ] {
        let mut s = csum_client();
        feed(&mut s, splits, &dss, None);
        assert_eq!(s.c.state(), State::Established, "{splits:?}");
        assert_eq!(s.read_all(), vec![b'x'; 3000]);
        let st = s.c.stats();
        assert_eq!(st.mptcp_checksum_failures, 0, "{splits:?}");
        assert_eq!(st.mptcp_checksums_unverified, 0, "{splits:?}");
        assert_eq!(st.mptcp_checksums_verified, 1, "{splits:?}");
    }
    // One byte changed in the last segment: the whole mapping fails when
    // complete, and MP_FAIL asks for the fallback (RFC 8684 §3.7).
    let mut s = csum_client();
    feed(&mut s, &[1420, 1420, 160], &dss, Some(2950));
    assert_eq!(s.c.state(), State::Established);
    assert_eq!(s.c.stats().mptcp_checksum_failures, 1);
    assert!(s.c.mptcp().unwrap().fail.awaiting_infinite);
    // Out of order inside the mapping: not verifiable, counted.
    let mut s = csum_client();
    let data = vec![b'x'; 3000];
    for (off, len) in [(1420usize, 1420usize), (0, 1420), (2840, 160)] {
        s.input(
            seg(A, PEER_ISS + 1 + off as u32, ISS + 1, 1000)
                .ts(101, 0)
                .mp(&dss),
            &data[off..off + len],
        );
    }
    assert_eq!(s.c.state(), State::Established);
    assert_eq!(s.c.stats().mptcp_checksums_unverified, 1);
    assert_eq!(s.read_all(), data);
}

#[test]
fn mp_fastclose_with_our_key_resets() {
    let mut s = passive_established(&mcfg(), "1e040101");
    // With another key: ignored, counted.
    let other = opt_bytes(MptcpOption::MpFastclose { receiver_key: 0x99 });
    s.io(
        seg(A, PEER_ISS + 1, ISS + 1, 1000).ts(102, 0).mp(&other),
        &[],
    );
    assert_eq!(s.c.state(), State::Established);
    assert_eq!(s.c.stats().mptcp_bad_options, 1);
    // RFC 8684 §3.5: with our key, the connection is reset.
    let ours = opt_bytes(MptcpOption::MpFastclose {
        receiver_key: KEY_B,
    });
    let out = s.io(
        seg(A, PEER_ISS + 1, ISS + 1, 1000).ts(103, 0).mp(&ours),
        &[],
    );
    assert_eq!(s.c.state(), State::Closed);
    assert!(out.iter().any(|o| o.flags().rst()), "{out:?}");
    assert!(s.c.take_events().reset());
    assert_eq!(s.c.stats().mptcp_fastcloses, 1);
}

/// A DSS mapping of `len` bytes at data offset `data_off` carried at
/// subflow offset `sub_off` (not one to one).
fn peer_dss_at(data_off: u64, sub_off: u32, len: u16) -> Vec<u8> {
    let mut opt = peer_dss(data_off, len, false, None);
    // The mapping's SSN field (bytes 20..24 of the DSS option as built).
    opt[20..24].copy_from_slice(&(sub_off + 1).to_be_bytes());
    opt
}

#[test]
fn a_data_level_duplicate_on_the_subflow_is_trimmed_not_delivered() {
    // Linux's MPTCP zero-window probe (seen on the veth against Linux
    // 6.18): one byte that re-sends the last byte already sent at the
    // data level, at a new subflow sequence number; the next mapping then
    // continues one byte off one to one. The stream must stay intact.
    let mut s = passive_established(&mcfg(), "1e040101");
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(102, 0)
            .mp(&peer_dss(0, 100, false, None)),
        &pattern(0, 100),
    );
    s.input(
        seg(A, PEER_ISS + 101, ISS + 1, 1000)
            .ts(103, 0)
            .mp(&peer_dss_at(99, 100, 1)),
        &pattern(99, 1),
    );
    s.input(
        seg(A, PEER_ISS + 102, ISS + 1, 1000)
            .ts(104, 0)
            .mp(&peer_dss_at(100, 101, 100)),
        &pattern(100, 100),
    );
    assert_eq!(s.c.state(), State::Established);
    assert_eq!(s.c.stats().mptcp_mapping_mismatches, 0);
    assert_eq!(s.c.stats().mptcp_data_dups, 1);
    assert_eq!(s.read_all(), pattern(0, 200));
}

#[test]
fn a_reinjection_overlapping_both_sides_is_trimmed() {
    // A peer reinjects at the connection level (RFC 8684 §3.3.6) what a
    // failed subflow held, on this one: a mapping partly old, partly new.
    let mut s = passive_established(&mcfg(), "1e040101");
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(102, 0)
            .mp(&peer_dss(0, 100, false, None)),
        &pattern(0, 100),
    );
    // Data offsets 60..160 at subflow offsets 100..200.
    s.input(
        seg(A, PEER_ISS + 101, ISS + 1, 1000)
            .ts(103, 0)
            .mp(&peer_dss_at(60, 100, 100)),
        &pattern(60, 100),
    );
    assert_eq!(s.c.state(), State::Established);
    assert_eq!(s.read_all(), pattern(0, 160));
    assert_eq!(s.c.stats().mptcp_data_dups, 1);
}

/// A DSS carrying only the peer's DATA_ACK: `n` bytes of our data.
fn data_ack_of(n: u64) -> Vec<u8> {
    opt_bytes(MptcpOption::Dss(Dss {
        data_ack: Some(Key(KEY_B).idsn() + 1 + n),
        ack64: true,
        mapping: None,
        data_fin: false,
    }))
}

#[test]
fn our_data_is_held_until_the_data_ack_covers_it() {
    // RFC 8684 §3.3.2: data acknowledged on the subflow stays queued until
    // the peer's DATA_ACK covers it (it may have to go out again on
    // another subflow); the DATA_ACK releases it, also on its own.
    let mut s = passive_established(&mcfg(), "1e040101");
    assert_eq!(s.send(&pattern(0, 3000)), 3000);
    let out = s.poll();
    assert_eq!(out.iter().map(|o| o.data.len()).sum::<usize>(), 3000);
    s.input(
        seg(A, PEER_ISS + 1, ISS + 3001, 1000)
            .ts(102, 0)
            .mp(&data_ack_of(1000)),
        &[],
    );
    assert_eq!(
        s.c.mptcp_snd_unacked(),
        2000,
        "subflow-acked, not DATA_ACKed"
    );
    assert!(s.c.snd_frames() > 0);
    // A DATA_ACK of data never sent is ignored.
    s.input(
        seg(A, PEER_ISS + 1, ISS + 3001, 1000)
            .ts(103, 0)
            .mp(&data_ack_of(5000)),
        &[],
    );
    assert_eq!(s.c.mptcp_snd_unacked(), 2000);
    // The DATA_ACK catching up alone (same subflow ACK) releases the rest.
    s.input(
        seg(A, PEER_ISS + 1, ISS + 3001, 1000)
            .ts(104, 0)
            .mp(&data_ack_of(3000)),
        &[],
    );
    assert_eq!(s.c.mptcp_snd_unacked(), 0);
    assert_eq!(s.c.snd_frames(), 0);
}

#[test]
fn a_full_send_buffer_becomes_writable_on_the_data_ack_not_the_subflow_ack() {
    let cfg = Config {
        snd_buf: 4000,
        ..mcfg()
    };
    let mut s = passive_established(&cfg, "1e040101");
    let n = s.send(&pattern(0, 10_000));
    assert!(n < 10_000 && n > 0, "{n}");
    let _ = s.poll();
    let _ = s.c.take_events();
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1 + n as u32, 1000)
            .ts(102, 0)
            .mp(&data_ack_of(0)),
        &[],
    );
    assert!(
        !s.c.take_events().writable(),
        "the subflow ACK frees nothing"
    );
    assert_eq!(s.c.send_capacity(), 0);
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1 + n as u32, 1000)
            .ts(103, 0)
            .mp(&data_ack_of(n as u64)),
        &[],
    );
    assert!(s.c.take_events().writable());
    assert!(s.c.send_capacity() > 0);
}

#[test]
fn a_window_probe_below_rcv_nxt_brings_the_data_ack() {
    // Seen against Linux: our window closed while the echo waited for send
    // space that only the DATA_ACK frees; Linux's data level acknowledged
    // after its subflow had ACKed, and its next segment was a zero-window
    // probe (SEG.SEQ = RCV.NXT - 1). Not acceptable, the probe is dropped
    // (RFC 9293), but its DATA_ACK must be taken or both sides wait.
    let cfg = Config {
        snd_buf: 4000,
        ..mcfg()
    };
    let mut s = passive_established(&cfg, "1e040101");
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(102, 0)
            .mp(&peer_dss(0, 100, false, None)),
        &pattern(0, 100),
    );
    let n = s.send(&pattern(0, 10_000));
    assert!(n < 10_000 && n > 0, "{n}");
    let _ = s.poll();
    let _ = s.c.take_events();
    s.input(
        seg(A, PEER_ISS + 101, ISS + 1 + n as u32, 1000)
            .ts(103, 0)
            .mp(&data_ack_of(0)),
        &[],
    );
    assert_eq!(s.c.send_capacity(), 0);
    let before = s.c.stats().out_of_window;
    s.input(
        seg(A, PEER_ISS + 100, ISS + 1 + n as u32, 1000)
            .ts(104, 0)
            .mp(&data_ack_of(n as u64)),
        &[],
    );
    assert_eq!(
        s.c.stats().out_of_window,
        before + 1,
        "the probe is dropped"
    );
    assert!(s.c.take_events().writable());
    assert!(s.c.send_capacity() > 0);
    assert_eq!(s.c.mptcp_snd_unacked(), 0);
}

#[test]
fn mp_prio_makes_the_subflow_a_backup_and_back() {
    // RFC 8684 §3.3.8: MP_PRIO changes the priority of the subflow it
    // arrives on (B = 1: backup, used only when no regular path is).
    let mut s = passive_established(&mcfg(), "1e040101");
    assert!(!s.c.mptcp_backup());
    let prio = |b| opt_bytes(MptcpOption::MpPrio { backup: b });
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(102, 0)
            .mp(&prio(true)),
        &[],
    );
    assert!(s.c.mptcp_backup());
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(103, 0)
            .mp(&prio(false)),
        &[],
    );
    assert!(!s.c.mptcp_backup());
    assert_eq!(s.c.stats().mptcp_prio_received, 2);
    assert_eq!(s.c.stats().mptcp_bad_options, 0);
}

#[test]
fn collapsing_under_pressure_keeps_a_frame_within_one_mapping() {
    // `swarm --multipath` (master seed 20261203, run 1903): out of order
    // on the subflow, data offsets 100..200 at subflow offsets 100..200,
    // then a reinjection of data 0..50 at 200..250 (the mappings' DSNs do
    // not run on there), then data 200..250 at 250..300, which finds the
    // receive memory full: what is queued is collapsed. Once the hole
    // fills, no frame may span two mappings that do not run on: the data
    // level would take it for an invalid mapping and reset the connection.
    let cfg = Config {
        // Three of the harness's 2048-byte frames, not four.
        rcv_buf: 7000,
        ..mcfg()
    };
    let mut s = passive_established(&cfg, "1e040101");
    let mut ts = 102;
    for (data, sub) in [(100usize, 100u32), (150, 150), (0, 200), (200, 250)] {
        s.input(
            seg(A, PEER_ISS + 1 + sub, ISS + 1, 1000)
                .ts(ts, 0)
                .mp(&peer_dss_at(data as u64, sub, 50)),
            &pattern(data, 50),
        );
        ts += 1;
    }
    assert!(s.c.stats().collapsed > 0, "{:?}", s.c.stats());
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(ts, 0)
            .mp(&peer_dss(0, 100, false, None)),
        &pattern(0, 100),
    );
    assert_eq!(s.c.state(), State::Established);
    assert_eq!(s.c.stats().mptcp_mapping_mismatches, 0);
    assert_eq!(s.read_all(), pattern(0, 250));
}

#[test]
fn a_remove_addr_on_a_pure_ack_linux_would_accept_is_taken() {
    // Linux takes the options of a segment that passes its `tcp_sequence`
    // (not before RCV.WUP, not beyond the right edge), wider than RFC
    // 9293's test. A REMOVE_ADDR on a pure ACK that the peer's later data
    // overtook (SEG.SEQ < RCV.NXT, but not before the RCV.NXT our last ACK
    // carried) is dropped by TCP and must still reach the path manager: it
    // is sent once.
    let mut s = passive_established(&mcfg(), "1e040101");
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(102, 0)
            .mp(&peer_dss(0, 100, false, None)),
        &pattern(0, 100),
    );
    // REMOVE_ADDR of Address ID 0.
    let rm = opt_bytes(MptcpOption::RemoveAddr(xdptcp::wire::mptcp::RemoveAddr {
        count: 1,
        ids: [0u8; 37],
    }));
    let before = s.c.stats().out_of_window;
    s.input(seg(A, PEER_ISS + 1, ISS + 1, 1000).ts(102, 0).mp(&rm), &[]);
    let st = s.c.stats();
    assert_eq!(st.out_of_window, before + 1, "TCP still drops it");
    assert_eq!(st.mptcp_remove_addr_received, 1, "its REMOVE_ADDR is taken");
    assert!(s.c.take_events().mptcp_signal());
    // Once we ACKed the data (RCV.WUP moved), an older one is not taken.
    let _ = s.poll();
    s.input(seg(A, PEER_ISS + 1, ISS + 1, 1000).ts(102, 0).mp(&rm), &[]);
    assert_eq!(s.c.stats().mptcp_remove_addr_received, 1);
}

/// An MPTCP server that received 8,000 bytes in eight mapped segments and
/// ACKed them: the script, the right edge that ACK advertised, and a
/// REMOVE_ADDR of Address ID 0 to send it.
fn eight_segments_received() -> (Script, SeqNumber, Vec<u8>) {
    let (mut s, synack) = passive_established_synack(&mcfg(), "1e040101");
    let ws = synack.seg.options.window_scale.expect("window scaling");
    for i in 0..8u32 {
        let off = i * 1000;
        s.input(
            seg(A, PEER_ISS + 1 + off, ISS + 1, 1000)
                .ts(102, 0)
                .mp(&peer_dss(off as u64, 1000, false, None)),
            &pattern(off as usize, 1000),
        );
    }
    let ack = s.poll().pop().expect("an ACK").seg;
    let edge = ack.ack + ((ack.window as usize) << ws);
    let rm = opt_bytes(MptcpOption::RemoveAddr(xdptcp::wire::mptcp::RemoveAddr {
        count: 1,
        ids: [0u8; 37],
    }));
    (s, edge, rm)
}

#[test]
fn a_remove_addr_a_probe_s_length_past_the_connections_edge_is_taken_alone() {
    // RFC 9293 §3.8.6.1: a peer probing our closed connection-level window
    // (Linux's MPTCP-level window probe) sends data past it, and its pure
    // ACKs carry that SND.NXT afterwards: Linux 6.18 removed Address ID 0
    // with such a pure ACK, up to a segment past our edge (issue 8, the
    // removal test). Its REMOVE_ADDR is taken; TCP still refuses it.
    // Unread: the connection's edge is the one just advertised.
    let (mut s, edge, rm) = eight_segments_received();
    let wnd_before = s.c.snd_wnd();
    s.input(seg(A, (edge + 500).0, ISS + 1, 77).ts(103, 0).mp(&rm), &[]);
    let st = s.c.stats();
    assert_eq!(st.out_of_window, 1, "TCP refuses it");
    assert_eq!(s.c.snd_wnd(), wnd_before, "its window not taken");
    assert_eq!(st.mptcp_remove_addr_received, 1, "its REMOVE_ADDR is taken");
    // Further than a segment: nothing.
    s.input(seg(A, (edge + 3000).0, ISS + 1, 77).ts(104, 0).mp(&rm), &[]);
    assert_eq!(s.c.stats().mptcp_remove_addr_received, 1);
}

#[test]
fn a_remove_addr_on_a_pure_ack_up_to_the_connections_edge_is_taken() {
    // RFC 8684 §3.3.4: the peer sends up to the connection-level right
    // edge on any subflow (Linux's `SndWndShared`), so the sequence number
    // of its pure ACK (its SND.NXT on this subflow) may lie beyond this
    // subflow's own right edge when data it sent there was lost. Linux
    // 6.18 removes Address ID 0 that way: a REMOVE_ADDR on such a pure
    // ACK, then its RST. The connection's edge moved on (the application
    // read; another subflow may have advertised it) after this subflow's
    // last advertisement.
    let (mut s, edge, rm) = eight_segments_received();
    assert_eq!(s.read_all().len(), 8000);
    // Beyond this subflow's edge (its data before it lost on the way).
    // Issue 8: such a pure ACK is acceptable, its ACK and window taken
    // too: dropped, our sends waited for the peer's retransmission timer
    // and, our window closed, stalled.
    let wnd_before = s.c.snd_wnd();
    let beyond = edge + 1000;
    s.input(seg(A, beyond.0, ISS + 1, 77).ts(103, 0).mp(&rm), &[]);
    let st = s.c.stats();
    assert_eq!(st.out_of_window, 0, "TCP takes it");
    assert_eq!(s.c.snd_wnd() * 1000, wnd_before * 77, "its window taken");
    assert_eq!(st.mptcp_remove_addr_received, 1, "its REMOVE_ADDR is taken");
    assert!(s.c.take_events().mptcp_signal());
    // Beyond the connection's edge too: not taken (nor its ACK).
    let far = edge + (64 << 20);
    s.input(seg(A, far.0, ISS + 1, 1000).ts(104, 0).mp(&rm), &[]);
    assert_eq!(s.c.stats().mptcp_remove_addr_received, 1);
}

/// Header prediction (`tcp::conn::predict`) steps aside for MPTCP: a
/// subflow's in-order data with its DSS mapping, and in-order data with
/// timestamps only (which plain TCP would predict), both take the general
/// path, where the mappings and the connection level are handled.
#[test]
fn mptcp_segments_are_never_predicted() {
    let mut s = passive_established(&mcfg(), "1e040101");
    let ins = s.c.stats().segs_in;
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(102, 0)
            .mp(&peer_dss(0, 100, false, None)),
        &pattern(0, 100),
    );
    s.input(
        seg(A, PEER_ISS + 101, ISS + 1, 1000).ts(103, 0),
        &pattern(100, 100),
    );
    assert_eq!(s.c.stats().segs_in, ins + 2);
    assert_eq!(s.c.stats().segs_predicted, 0);
    assert_eq!(s.read_all(), pattern(0, 100), "the mapped data only");
}

/// A DATA_FIN from the peer on a pure ACK (as Linux sends it) after `off`
/// bytes: DSN after the data, SSN 0, length 1 (RFC 8684 §3.3.3).
fn peer_data_fin(off: u64) -> Vec<u8> {
    opt_bytes(MptcpOption::Dss(Dss {
        data_ack: Some(Key(KEY_B).idsn() + 1),
        ack64: true,
        mapping: Some(DssMapping {
            dsn: Key(KEY_A).idsn() + 1 + off,
            dsn64: true,
            ssn: 0,
            len: 1,
            checksum: None,
        }),
        data_fin: true,
    }))
}

/// An echo connection scheduling over subflows (its connection-level
/// queue set up by the first write, RFC 8684 §3.3.8): the peer's 100
/// bytes read and echoed, the echo ACKed and DATA_ACKed.
fn echoed_100() -> Script {
    let mut s = passive_established(&mcfg(), "1e040101");
    let d = pattern(0, 100);
    s.input(
        seg(A, PEER_ISS + 1, ISS + 1, 1000)
            .ts(102, 0)
            .mp(&peer_dss(0, 100, false, None)),
        &d,
    );
    assert_eq!(s.read_all(), d);
    assert_eq!(s.send(&d), 100);
    let out = s.poll();
    assert_eq!(out.iter().map(|o| o.data.len()).sum::<usize>(), 100);
    s.input(
        seg(A, PEER_ISS + 101, ISS + 101, 1000)
            .ts(103, 0)
            .mp(&data_ack_of(100)),
        &[],
    );
    assert_eq!(s.c.mptcp_snd_unacked(), 0);
    s
}

/// RFC 9293 §3.10.7.4 and RFC 8684 §3.3.3 (subflows close as TCP does):
/// Linux's order on veth (`veth_mptcp`'s joins across workers, in a
/// capture). Its DATA_FIN comes first; our FIN carries ours; its ACK|FIN
/// ACKs both, and one more pure ACK follows. The connection is done at the
/// data level, but our first
/// subflow's FIN went first: it lingers in TIME-WAIT, ACKs the FIN, takes
/// the last ACK without a word and ACKs a retransmitted FIN again, for
/// 2·MSL. On main its subflow role ended on the ACK of our FIN, before
/// the FIN in the same segment was taken: the connection closed without
/// ACKing it and answered the rest with RSTs.
#[test]
fn the_first_subflow_lingers_in_time_wait_after_the_connection_is_done() {
    let mut s = echoed_100();
    s.at_ms(2);
    s.input(
        seg(A, PEER_ISS + 101, ISS + 101, 1000)
            .ts(104, 0)
            .mp(&peer_data_fin(100)),
        &[],
    );
    assert!(s.c.take_events().read_closed());
    s.c.shutdown();
    let out = s.poll();
    let fin = out.last().expect("our FIN");
    assert!(fin.flags().fin() && dss(fin).data_fin);
    assert_eq!(s.c.state(), State::FinWait1);
    // Its ACK of our FIN with the DATA_ACK of our DATA_FIN, and its FIN:
    // we ACK it and linger.
    s.at_ms(3);
    let out = s.io(
        seg(A | F, PEER_ISS + 101, ISS + 102, 1000)
            .ts(106, 0)
            .mp(&data_ack_of(101)),
        &[],
    );
    assert_eq!(s.c.state(), State::TimeWait);
    assert_eq!(out.len(), 1, "{out:?}");
    check(&out[0], A, ISS + 102, PEER_ISS + 102, 0);
    // Its last pure ACK: absorbed, no RST.
    s.at_ms(4);
    let out = s.io(
        seg(A, PEER_ISS + 102, ISS + 102, 1000)
            .ts(107, 0)
            .mp(&data_ack_of(101)),
        &[],
    );
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(s.c.state(), State::TimeWait);
    assert_eq!(s.c.stats().mptcp_dead_subflow_drops, 0);
    // Its FIN again (our ACK lost): ACKed again.
    s.at_ms(1000);
    let out = s.io(
        seg(A | F, PEER_ISS + 101, ISS + 102, 1000)
            .ts(1100, 0)
            .mp(&data_ack_of(101)),
        &[],
    );
    assert_eq!(out.len(), 1, "{out:?}");
    check(&out[0], A, ISS + 102, PEER_ISS + 102, 0);
    // 2·MSL after that FIN, the subflow (and the connection) is gone.
    let out = s.fire();
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(s.c.state(), State::Closed);
    assert_eq!(s.now, Instant::from_millis(1000) + mcfg().msl * 2);
}

/// The peer's DATA_FIN comes while our first subflow waits in FIN-WAIT-2,
/// our DATA_FIN DATA_ACKed: the connection is done (RFC 8684 §3.3.3), and
/// the subflow waits in TIME-WAIT for the FIN that may never come (the
/// peer's first subflow may be gone), which, if it comes, is ACKed (RFC
/// 9293 §3.10.7.4), not reset.
#[test]
fn a_late_fin_on_the_first_subflow_of_a_done_connection_is_acked() {
    let mut s = echoed_100();
    s.c.shutdown();
    let out = s.poll();
    assert!(out.last().expect("our FIN").flags().fin());
    // Our DATA_FIN and FIN ACKed, then the peer's DATA_FIN on a pure ACK.
    s.at_ms(2);
    s.io(
        seg(A, PEER_ISS + 101, ISS + 102, 1000)
            .ts(104, 0)
            .mp(&data_ack_of(101)),
        &[],
    );
    assert_eq!(s.c.state(), State::FinWait2);
    s.at_ms(3);
    let out = s.io(
        seg(A, PEER_ISS + 101, ISS + 102, 1000)
            .ts(105, 0)
            .mp(&peer_data_fin(100)),
        &[],
    );
    assert!(s.c.take_events().read_closed());
    assert_eq!(s.c.state(), State::TimeWait);
    // The DATA_ACK of its DATA_FIN still goes out.
    let last = out.last().expect("the DATA_ACK of the peer's DATA_FIN");
    assert!(!last.flags().rst());
    assert_eq!(dss(last).data_ack, Some(Key(KEY_A).idsn() + 102));
    // The subflow's FIN, late: ACKed.
    s.at_ms(50);
    let out = s.io(
        seg(A | F, PEER_ISS + 101, ISS + 102, 1000)
            .ts(150, 0)
            .mp(&data_ack_of(101)),
        &[],
    );
    assert_eq!(out.len(), 1, "{out:?}");
    check(&out[0], A, ISS + 102, PEER_ISS + 102, 0);
    assert_eq!(s.c.state(), State::TimeWait);
}
