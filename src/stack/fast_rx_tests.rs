//! The fast receive path is taken for the common frame and does there
//! exactly what the general path does; every unusual frame falls back and
//! is handled (or dropped and counted) as before. Each case runs on two
//! twin stacks in the same state: one given the frame by `receive` (fast
//! path when eligible), the other by `demux` (the general path only); what
//! they then hold, send, count and tell the application must be the same.

use crate::app::Event;
use crate::io::mem::scenario::{host_config, host_ip, host_mac};
use crate::io::mem::{FramePool, SimDevice, FRAME_SIZE};
use crate::io::Frame;
use crate::stack::{ConnId, Ipv4Cidr, Stack};
use crate::tcp::{Config, TcpRepr};
use crate::time::Instant;
use crate::wire::{checksum, ArpOp, ArpRepr, MacAddr};
use core::net::{Ipv4Addr, SocketAddrV4};

const PORT: u16 = 7;
const DATA: &[u8] = b"sixty-four bytes of echo, more or less";

/// How the receiving stack (host 1) is set up.
#[derive(Clone, Copy)]
struct Setup {
    timestamps: bool,
    partial_ok: bool,
    second_addr: bool,
}

const COMMON: Setup = Setup {
    timestamps: true,
    partial_ok: false,
    second_addr: false,
};

fn stack(i: u8, s: Setup) -> Stack<SimDevice> {
    let dev = SimDevice::new(
        FramePool::new(FRAME_SIZE, 256),
        FramePool::new(FRAME_SIZE, 256),
        FramePool::new(FRAME_SIZE, 1 << 16),
        1500,
        1 << 16,
    );
    let tcp = Config {
        timestamps: s.timestamps,
        ..Config::default()
    };
    let mut cfg = host_config(i, tcp, 5);
    cfg.accept_partial_checksum = s.partial_ok;
    if s.second_addr && i == 1 {
        cfg.addrs.push(Ipv4Cidr {
            addr: Ipv4Addr::new(198, 18, 9, 1),
            prefix: 24,
        });
    }
    let mut st = Stack::new(cfg, dev, Instant::ZERO);
    st.arp_insert_static(host_ip(1 - i), host_mac(1 - i));
    st
}

/// Frames `from` sent, as bytes.
fn sent(from: &mut Stack<SimDevice>) -> Vec<Vec<u8>> {
    core::iter::from_fn(|| from.device_mut().take_tx())
        .map(|(f, len)| f.buf()[..len].to_vec())
        .collect()
}

fn deliver(to: &mut Stack<SimDevice>, frame: &[u8], now: Instant, general: bool) {
    let f = to.device_mut().rx_frame(frame).expect("an rx frame");
    if general {
        to.demux(now, f, frame.len());
    } else {
        to.receive(now, f, frame.len());
    }
}

/// A client (host 0) connected to a server (host 1); both ids.
struct World {
    a: Stack<SimDevice>,
    b: Stack<SimDevice>,
    cb: ConnId,
    /// A data segment from a to b (not yet delivered), as sent.
    seg: Vec<u8>,
}

fn world(s: Setup) -> World {
    let mut a = stack(0, s);
    let mut b = stack(1, s);
    b.listen(PORT).unwrap();
    let now = Instant::ZERO;
    let ca = a.connect(now, SocketAddrV4::new(host_ip(1), PORT)).unwrap();
    a.poll(now);
    for _ in 0..3 {
        for f in sent(&mut a) {
            deliver(&mut b, &f, now, true);
        }
        b.poll(now);
        for f in sent(&mut b) {
            deliver(&mut a, &f, now, true);
        }
        a.poll(now);
    }
    let cb = core::iter::from_fn(|| b.next_event())
        .find_map(|e| match e {
            Event::Accepted { id, .. } => Some(id),
            _ => None,
        })
        .expect("accepted");
    let t = Instant::from_millis(1);
    assert_eq!(a.send(ca, DATA), Ok(DATA.len()));
    a.poll(t);
    let mut out = sent(&mut a);
    assert_eq!(out.len(), 1);
    World {
        a,
        b,
        cb,
        seg: out.remove(0),
    }
}

/// Everything observable about the receiver after `frame`: its counters,
/// what it sent, its events and the data the application can read.
fn outcome(
    w: &mut World,
    frame: &[u8],
    general: bool,
) -> (String, Vec<Vec<u8>>, Vec<Event>, Vec<u8>) {
    let t = Instant::from_millis(2);
    deliver(&mut w.b, frame, t, general);
    w.b.poll(t);
    let events: Vec<Event> = core::iter::from_fn(|| w.b.next_event()).collect();
    let mut data = vec![0u8; 256];
    let n = w.b.recv(w.cb, &mut data).unwrap_or(0);
    data.truncate(n);
    let t = Instant::from_millis(300);
    w.b.poll(t);
    let _ = &w.a;
    (
        format!("{:?}", w.b.counters()),
        sent(&mut w.b),
        events,
        data,
    )
}

/// Whether `frame` takes the fast path on `w`'s receiver, and the
/// outcome, which must be the general path's on a twin.
fn run(s: Setup, edit: impl Fn(&mut Vec<u8>)) -> (bool, String, Vec<u8>) {
    let (mut w, mut twin) = (world(s), world(s));
    assert_eq!(w.seg, twin.seg, "twins");
    let mut frame = w.seg.clone();
    edit(&mut frame);
    let mut seg = TcpRepr::default();
    let fast = w.b.rx_common(&frame, frame.len(), &mut seg).is_some();
    let got = outcome(&mut w, &frame, false);
    let general = outcome(&mut twin, &frame, true);
    assert_eq!(got, general, "fast path differs from the general one");
    (fast, got.0, got.3)
}

/// A counter from the Debug form of the counters.
fn counter(counters: &str, name: &str) -> u64 {
    let at = counters.find(&format!(" {name}: ")).expect(name) + name.len() + 3;
    let digits: String = counters[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().unwrap()
}

/// Recompute the IPv4 header and TCP checksums after an edit.
fn fix(v: &mut [u8]) {
    let ihl = usize::from(v[14] & 0x0f) * 4;
    v[24..26].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&v[14..14 + ihl]);
    v[24..26].copy_from_slice(&c.to_be_bytes());
    let total = usize::from(u16::from_be_bytes([v[16], v[17]]));
    let tcp = 14 + ihl..14 + total;
    v[tcp.start + 16..tcp.start + 18].copy_from_slice(&[0, 0]);
    let addr = |i: usize| Ipv4Addr::new(v[i], v[i + 1], v[i + 2], v[i + 3]);
    let ph = checksum::pseudo_header(addr(26), addr(30), 6, tcp.len());
    let c = !checksum::combine(&[ph, checksum::sum(&v[tcp.clone()])]);
    v[tcp.start + 16..tcp.start + 18].copy_from_slice(&c.to_be_bytes());
}

/// Insert `bytes` at `at`, growing the IPv4 total length (when `at` is
/// inside the datagram) by as much.
fn insert(v: &mut Vec<u8>, at: usize, bytes: &[u8]) {
    v.splice(at..at, bytes.iter().copied());
    if at > 14 {
        let total = u16::from_be_bytes([v[16], v[17]]) + bytes.len() as u16;
        v[16..18].copy_from_slice(&total.to_be_bytes());
    }
}

/// The TCP header starts here in the unedited frame.
const TCP: usize = 34;

#[test]
fn the_common_frame_takes_the_fast_path_as_the_general_path_would() {
    let w = world(COMMON);
    // The sender's own bytes: already what `fix` writes.
    let mut again = w.seg.clone();
    fix(&mut again);
    assert_eq!(again, w.seg);
    assert_eq!(usize::from(w.seg[TCP + 12] >> 4) * 4, 32, "NOP, NOP, TS");
    let (fast, counters, data) = run(COMMON, |_| {});
    assert!(fast);
    assert_eq!(data, DATA);
    assert_eq!(counter(&counters, "rx_packets"), 3);

    // The header the fast path reads is the one the general parse builds.
    let mut seg = TcpRepr::default();
    let c = w.b.rx_common(&w.seg, w.seg.len(), &mut seg).unwrap();
    let ends = 14 + usize::from(u16::from_be_bytes([w.seg[16], w.seg[17]]));
    let (general, off, partial) =
        TcpRepr::parse_rx(&w.seg[TCP..ends], host_ip(0), host_ip(1), false).unwrap();
    assert_eq!(seg, general);
    assert!(seg.options.timestamps.is_some());
    assert_eq!(c.payload, (TCP + off, ends));
    let ecn = w.seg[15] & 3;
    assert_eq!(
        (c.src, c.dst, c.ecn, c.partial),
        (host_ip(0), host_ip(1), ecn, partial)
    );
}

#[test]
fn a_frame_without_tcp_options_and_with_link_padding_takes_the_fast_path() {
    let s = Setup {
        timestamps: false,
        ..COMMON
    };
    let (fast, _, data) = run(s, |_| {});
    assert!(fast);
    assert_eq!(data, DATA);
    // Ethernet padding after the datagram is not payload; DF is allowed.
    let (fast, _, data) = run(s, |v| {
        v[20] |= 0x40;
        fix(v);
        v.extend_from_slice(&[0xee; 10]);
    });
    assert!(fast);
    assert_eq!(data, DATA);
}

#[test]
fn a_partial_checksum_is_taken_fast_only_where_accepted() {
    // The field holds only the pseudo-header sum (Linux's CHECKSUM_PARTIAL).
    let partial = |v: &mut Vec<u8>| {
        let len = v.len() - TCP;
        let ph = checksum::pseudo_header(host_ip(0), host_ip(1), 6, len);
        v[TCP + 16..TCP + 18].copy_from_slice(&ph.to_be_bytes());
    };
    let s = Setup {
        partial_ok: true,
        ..COMMON
    };
    let (fast, counters, data) = run(s, partial);
    assert!(fast);
    assert_eq!(data, DATA);
    assert_eq!(counter(&counters, "rx_csum_partial_accepted"), 1);
    let (fast, counters, data) = run(COMMON, partial);
    assert!(!fast);
    assert!(data.is_empty());
    assert_eq!(counter(&counters, "drop_bad_checksum"), 1);
}

#[test]
fn unusual_frames_fall_back_and_are_handled_as_before() {
    // (what, edit, delivered, the counter that must count it)
    type Edit = fn(&mut Vec<u8>);
    let cases: [(&str, Edit, bool, Option<&str>); 14] = [
        (
            "IP options",
            |v| {
                insert(v, TCP, &[1, 1, 1, 1]);
                v[14] = 0x46;
                fix(v);
            },
            true,
            None,
        ),
        (
            "first fragment",
            |v| {
                v[20] |= 0x20;
                fix(v);
            },
            false,
            None,
        ),
        (
            "later fragment",
            |v| {
                v[21] = 8;
                fix(v);
            },
            false,
            None,
        ),
        (
            "other address",
            |v| {
                v[33] = 77;
                fix(v);
            },
            false,
            Some("drop_not_for_us"),
        ),
        (
            "bad TCP checksum",
            |v| *v.last_mut().unwrap() ^= 1,
            false,
            Some("drop_bad_checksum"),
        ),
        (
            "bad IP checksum",
            |v| v[24] ^= 1,
            false,
            Some("drop_bad_checksum"),
        ),
        (
            "link broadcast",
            |v| v[..6].copy_from_slice(&[0xff; 6]),
            false,
            Some("drop_not_for_us"),
        ),
        (
            "VLAN tag",
            |v| insert(v, 12, &[0x81, 0, 0, 5]),
            false,
            Some("drop_unsupported"),
        ),
        (
            "short frame",
            |v| v.truncate(TCP + 10),
            false,
            Some("drop_truncated"),
        ),
        (
            "datagram beyond the frame",
            |v| v.truncate(v.len() - 1),
            false,
            Some("drop_truncated"),
        ),
        (
            "invalid source",
            |v| {
                v[29] = 255;
                fix(v);
            },
            false,
            Some("drop_bad_source"),
        ),
        (
            "TCP options beyond TS",
            |v| {
                insert(v, TCP + 32, &[1, 1, 1, 1]);
                v[TCP + 12] = 9 << 4;
                fix(v);
            },
            true,
            None,
        ),
        (
            "TS not in the NOP, NOP, TS layout",
            |v| {
                v.copy_within(TCP + 22..TCP + 32, TCP + 20);
                v[TCP + 30..TCP + 32].copy_from_slice(&[1, 1]);
                fix(v);
            },
            true,
            None,
        ),
        (
            "TCP data offset below 5",
            |v| {
                v[TCP + 12] = 4 << 4;
                fix(v);
            },
            false,
            Some("drop_bad_length"),
        ),
    ];
    for (what, edit, delivered, count) in cases {
        let (fast, counters, data) = run(COMMON, edit);
        assert!(!fast, "{what}: taken by the fast path");
        assert_eq!(!data.is_empty(), delivered, "{what}");
        if delivered {
            assert_eq!(data, DATA, "{what}");
        }
        if let Some(name) = count {
            assert_eq!(counter(&counters, name), 1, "{what}: {name}");
        }
    }
}

#[test]
fn a_second_address_sends_every_frame_the_general_way() {
    let s = Setup {
        second_addr: true,
        ..COMMON
    };
    let (fast, _, data) = run(s, |_| {});
    assert!(!fast);
    assert_eq!(data, DATA);
}

#[test]
fn arp_falls_back_and_is_answered() {
    let (mut w, mut twin) = (world(COMMON), world(COMMON));
    let arp = ArpRepr {
        op: ArpOp::Request,
        sender_mac: host_mac(0),
        sender_ip: host_ip(0),
        target_mac: MacAddr([0; 6]),
        target_ip: host_ip(1),
    };
    let mut frame = vec![0u8; 14 + ArpRepr::LEN];
    frame[..6].copy_from_slice(&[0xff; 6]);
    frame[6..12].copy_from_slice(&host_mac(0).0);
    frame[12..14].copy_from_slice(&[0x08, 0x06]);
    arp.emit(&mut frame[14..]);
    let mut seg = TcpRepr::default();
    assert!(w.b.rx_common(&frame, frame.len(), &mut seg).is_none());
    let got = outcome(&mut w, &frame, false);
    assert_eq!(got, outcome(&mut twin, &frame, true));
    // The reply, and no data.
    assert!(got.1.iter().any(|f| f[12..14] == [0x08, 0x06]));
    assert!(got.3.is_empty());
}
