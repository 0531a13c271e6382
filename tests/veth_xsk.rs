//! The AF_XDP layer alone, on a 4-queue veth in namespaces of our own: the
//! program attaches natively, one socket per queue over one shared UMEM
//! receives the kernel peer's ARP requests and pings to the stack's address,
//! and answers them by hand through `XdpDevice` (so the peer's `ping`
//! succeeds), while the kernel in the stack's namespace keeps its own
//! address. Dropping the program detaches it.

mod veth_common;
use common::netns::{self, Harness};
use veth_common as common;

use core::net::Ipv4Addr;
use std::time::{Duration, Instant};
use xdptcp::io::xdp::iface::IfaceInfo;
use xdptcp::io::xdp::umem::RING_SIZE;
use xdptcp::io::xdp::{
    AttachedMode, SharedUmem, XdpDevice, XdpMode, XdpProgram, XdpSocket, ZeroCopy,
};
use xdptcp::io::{Device, Frame};

const STACK: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// Answer an ARP request for STACK or an ICMP echo request to STACK in
/// place; returns the reply's length.
fn answer(p: &mut [u8], len: usize, mac: [u8; 6]) -> Option<usize> {
    let p = &mut p[..len];
    if len >= 42 && p[12..14] == [0x08, 0x06] && p[20..22] == [0, 1] && p[38..42] == STACK.octets()
    {
        let peer_mac: [u8; 6] = p[22..28].try_into().ok()?;
        let peer_ip: [u8; 4] = p[28..32].try_into().ok()?;
        p[0..6].copy_from_slice(&peer_mac);
        p[6..12].copy_from_slice(&mac);
        p[20..22].copy_from_slice(&[0, 2]);
        p[22..28].copy_from_slice(&mac);
        p[28..32].copy_from_slice(&STACK.octets());
        p[32..38].copy_from_slice(&peer_mac);
        p[38..42].copy_from_slice(&peer_ip);
        return Some(42);
    }
    if len >= 42 && p[12..14] == [0x08, 0x00] && p[23] == 1 && p[30..34] == STACK.octets() {
        let ihl = usize::from(p[14] & 0xf) * 4;
        if p.get(14 + ihl) != Some(&8) {
            return None;
        }
        let (dst, src): ([u8; 6], [u8; 6]) = (p[0..6].try_into().ok()?, p[6..12].try_into().ok()?);
        p[0..6].copy_from_slice(&src);
        p[6..12].copy_from_slice(&dst);
        let (s, d): ([u8; 4], [u8; 4]) = (p[26..30].try_into().ok()?, p[30..34].try_into().ok()?);
        p[26..30].copy_from_slice(&d);
        p[30..34].copy_from_slice(&s);
        let icmp = 14 + ihl;
        p[icmp] = 0;
        // RFC 1624 incremental update: the type word went from 0x0800 to 0.
        let c = u16::from_be_bytes([p[icmp + 2], p[icmp + 3]]);
        let sum = u32::from(c) + 0x0800;
        let c = ((sum & 0xffff) + (sum >> 16)) as u16;
        p[icmp + 2..icmp + 4].copy_from_slice(&c.to_be_bytes());
        return Some(len);
    }
    None
}

#[test]
fn af_xdp_sockets_on_every_queue_answer_arp_and_ping() {
    let t = "af_xdp_sockets_on_every_queue_answer_arp_and_ping";
    if !common::require(common::is_root(), t, "needs root for namespaces and AF_XDP") {
        return;
    }
    let h = Harness::up("xq", 4, &[]);
    let nss = h.nss();
    let iface = h.iface();
    let mut pinger = {
        let mut c = h.command("k", "ping");
        c.args(["-c", "5", "-i", "0.2", "-W", "2", &STACK.to_string()]);
        c
    };
    let worker = std::thread::spawn(move || {
        netns::enter(&nss);
        let info = IfaceInfo::get(&iface).unwrap();
        assert_eq!(info.rx_queues, 4);
        let mut prog = XdpProgram::load().unwrap();
        assert_eq!(
            prog.attach(info.ifindex, XdpMode::Auto).unwrap(),
            AttachedMode::Native
        );
        // A second attach is refused: one XDP program per interface.
        let mut other = XdpProgram::load().unwrap();
        let e = other.attach(info.ifindex, XdpMode::Auto).unwrap_err();
        assert_eq!(e.kind, xdptcp::io::xdp::ErrorKind::AlreadyAttached);
        drop(other);
        prog.add_local_addr(STACK).unwrap();
        let umem = SharedUmem::new(4 * 4096).unwrap();
        let devs: Vec<XdpDevice> = (0..4)
            .map(|q| {
                let s = XdpSocket::new(&umem, &iface, q, ZeroCopy::Auto).unwrap();
                // veth has no zero-copy support: auto falls back to copy mode.
                assert!(!s.zero_copy());
                prog.set_socket(q, s.fd()).unwrap();
                let mut d = XdpDevice::new(s, umem.clone(), info.mtu);
                d.set_fill_target(RING_SIZE as usize);
                d
            })
            .collect();
        (prog, devs, info)
    });
    let (prog, mut devs, info) = worker.join().unwrap();
    let mut child = pinger.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    let mut per_queue = [0u64; 4];
    let mut batch = Vec::new();
    let mut status = None;
    while Instant::now() < deadline && status.is_none() {
        for (q, dev) in devs.iter_mut().enumerate() {
            dev.recv(&mut batch);
            for (mut f, len) in batch.drain(..) {
                per_queue[q] += 1;
                if let Some(n) = answer(f.buf_mut(), len, info.mac.0) {
                    assert!(dev.transmit(f, 0, n));
                }
            }
            dev.flush();
        }
        status = child.try_wait().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            child.wait().unwrap()
        }
    };
    assert!(
        status.success(),
        "ping 198.18.0.2 through AF_XDP failed; per queue {per_queue:?}"
    );
    let total: u64 = per_queue.iter().sum();
    assert!(total >= 6, "at least 1 ARP + 5 pings, got {per_queue:?}");
    let c = prog.counters();
    assert!(c.redirected >= 6, "{c:?}");
    assert_eq!(c.no_socket, 0, "{c:?}");
    // The kernel in the stack's namespace still answers on its own address.
    let out = h.run("k", &["ping", "-c", "1", "-W", "2", "198.18.0.3"]);
    assert!(out.status.success(), "kernel ping");
    // Every frame is either on a (full) fill ring or back in the pool.
    for d in &mut devs {
        d.flush();
        d.refill();
    }
    let umem = devs[0].umem().clone();
    assert_eq!(umem.free_frames(), umem.frames() - 4 * RING_SIZE as usize);
    drop(devs);
    drop(prog);
    let out = h.run("s", &["ip", "link", "show", &h.iface()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("xdp"), "XDP program left attached: {text}");
}

/// The MAC address of `dev` in namespace `ns` ("k" or "s").
fn mac_of(h: &Harness, ns: &str, dev: &str) -> [u8; 6] {
    let out = h.run(ns, &["cat", &format!("/sys/class/net/{dev}/address")]);
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u8> = text
        .trim()
        .split(':')
        .filter_map(|b| u8::from_str_radix(b, 16).ok())
        .collect();
    v.try_into()
        .unwrap_or_else(|_| panic!("no MAC for {dev}: {text:?}"))
}

/// Issue 8 / 6: one UMEM for two interfaces. A socket on the second veth
/// pair shares the first's UMEM (`XDP_SHARED_UMEM` across devices, its own
/// fill and completion rings), so the frame a ping arrives in on the first
/// interface leaves, answered, on the second: the pinger's replies come
/// back over the other veth pair, with no copy (a device given a frame of
/// another UMEM copies it, counted in `tx_foreign_copies`). The devices
/// tell the stack so (`frame_pool_id`), and the pool is whole at the end.
#[test]
fn a_frame_received_on_one_interface_leaves_on_another_from_the_same_umem() {
    let t = "a_frame_received_on_one_interface_leaves_on_another_from_the_same_umem";
    if !common::require(common::is_root(), t, "needs root for namespaces and AF_XDP") {
        return;
    }
    let h = Harness::up("xr", 1, &["--paths", "2"]);
    let (k1, s1) = (format!("{}k1", h.prefix), format!("{}s1", h.prefix));
    let k1_mac = mac_of(&h, "k", &k1);
    // The replies reach the pinger's address (on k0) through k1: no
    // reverse-path filter in the test's kernel namespace.
    for conf in ["all", "default", k1.as_str()] {
        let key = format!("net.ipv4.conf.{conf}.rp_filter=0");
        assert!(h.run("k", &["sysctl", "-qw", &key]).status.success());
    }
    let rx_k1 = |h: &Harness| -> u64 {
        let out = h.run(
            "k",
            &["cat", &format!("/sys/class/net/{k1}/statistics/rx_packets")],
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or(0)
    };
    let k1_before = rx_k1(&h);
    let nss = h.nss();
    let (a, b) = (h.iface(), s1.clone());
    let setup = std::thread::spawn(move || {
        netns::enter(&nss);
        let ia = IfaceInfo::get(&a).unwrap();
        let ib = IfaceInfo::get(&b).unwrap();
        // The netdev netlink family answers for the device (what a
        // zero-copy driver does with TX metadata is asked there).
        let f = xdptcp::io::xdp::netdev::dev_features(ia.ifindex as u32);
        // veth: native XDP, redirect, but no zero-copy AF_XDP.
        assert!(f.is_some_and(|f| f.xdp & 1 != 0 && !f.zero_copy()), "{f:?}");
        let mut pa = XdpProgram::load().unwrap();
        pa.attach(ia.ifindex, XdpMode::Auto).unwrap();
        pa.add_local_addr(STACK).unwrap();
        let mut pb = XdpProgram::load().unwrap();
        pb.attach(ib.ifindex, XdpMode::Auto).unwrap();
        pb.add_local_addr(Ipv4Addr::new(198, 18, 1, 2)).unwrap();
        let umem = SharedUmem::new(2 * 4096).unwrap();
        let sa = XdpSocket::new(&umem, &a, 0, ZeroCopy::Auto).unwrap();
        // Registered on `a`'s socket; `b`'s shares it across devices.
        let sb = XdpSocket::new(&umem, &b, 0, ZeroCopy::Auto).unwrap();
        pa.set_socket(0, sa.fd()).unwrap();
        pb.set_socket(0, sb.fd()).unwrap();
        let mut da = XdpDevice::new(sa, umem.clone(), ia.mtu);
        let mut db = XdpDevice::new(sb, umem.clone(), ib.mtu);
        da.set_fill_target(RING_SIZE as usize);
        db.set_fill_target(RING_SIZE as usize);
        (pa, pb, da, db, ia, ib)
    });
    let (pa, pb, mut da, mut db, ia, ib) = setup.join().unwrap();
    assert!(da.frame_pool_id().is_some());
    assert_eq!(da.frame_pool_id(), db.frame_pool_id());
    let mut pinger = h.command("k", "ping");
    pinger.args(["-c", "5", "-i", "0.2", "-W", "2", &STACK.to_string()]);
    let mut child = pinger.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    let (mut crossed, mut batch, mut status) = (0u64, Vec::new(), None);
    while Instant::now() < deadline && status.is_none() {
        da.recv(&mut batch);
        for (mut f, len) in batch.drain(..) {
            let Some(n) = answer(f.buf_mut(), len, ia.mac.0) else {
                continue;
            };
            if f.buf()[12..14] == [0x08, 0x06] {
                // ARP: answered where it was asked.
                assert!(da.transmit(f, 0, n));
                continue;
            }
            // The echo reply leaves through the other pair, in the frame
            // it arrived in.
            f.buf_mut()[0..6].copy_from_slice(&k1_mac);
            f.buf_mut()[6..12].copy_from_slice(&ib.mac.0);
            assert!(db.transmit(f, 0, n));
            crossed += 1;
        }
        da.flush();
        db.flush();
        status = child.try_wait().unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    let status = match status {
        Some(s) => s,
        None => {
            let _ = child.kill();
            child.wait().unwrap()
        }
    };
    assert!(
        status.success(),
        "ping answered through the other interface failed: {crossed} replies sent on {s1}"
    );
    assert!(crossed >= 5, "{crossed}");
    assert!(
        rx_k1(&h) >= k1_before + 5,
        "the replies did not arrive on {k1}"
    );
    assert_eq!(db.counters().tx_foreign_copies, 0, "no copy: one UMEM");
    assert!(db.counters().tx_packets >= 5);
    // Every chunk is on one of the two fill rings or back in the pool.
    for d in [&mut da, &mut db] {
        for _ in 0..100 {
            if !d.flush() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        d.refill();
    }
    let umem = da.umem().clone();
    assert_eq!(umem.free_frames(), umem.frames() - 2 * RING_SIZE as usize);
    assert_eq!(umem.live_frames(), 0);
    drop((da, db, pa, pb));
}

/// Datagrams for STACK from the kernel peer (argv: count).
const PY_SEND: &str = "import socket,sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for _ in range(int(sys.argv[1])):
    s.sendto(b'x' * 32, ('198.18.0.2', 9))
";

/// Wait (at most 5 s) until the program has redirected `n` packets, and a
/// moment more for the last of them to reach the socket's rings.
fn wait_redirected(prog: &XdpProgram, n: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    while prog.counters().redirected < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(100));
    prog.counters().redirected
}

/// Frames the kernel moved from the fill ring to the RX ring, not read yet,
/// are replaced on the fill ring at the next refill: a backlog the worker
/// has not caught up with leaves the kernel its whole fill ring to receive
/// into. They used to count against the fill target until read, so a second
/// burst arriving before the first was read found the fill ring nearly
/// empty and was dropped (`rx_fill_ring_empty_descs`: the 16,000-connection
/// burst of `veth_datapath` lost hundreds to thousands that way).
#[test]
fn an_unread_rx_backlog_does_not_starve_the_fill_ring() {
    let t = "an_unread_rx_backlog_does_not_starve_the_fill_ring";
    if !common::require(common::is_root(), t, "needs root for namespaces and AF_XDP") {
        return;
    }
    // Each burst takes most of the fill ring (the device starts with it
    // full), neither fits twice.
    const TARGET: usize = RING_SIZE as usize;
    const ROUND: u64 = 1500;
    let h = Harness::up("xf", 1, &[]);
    let (nss, iface) = (h.nss(), h.iface());
    let (prog, mut dev, info) = std::thread::spawn(move || {
        netns::enter(&nss);
        let info = IfaceInfo::get(&iface).unwrap();
        let mut prog = XdpProgram::load().unwrap();
        prog.attach(info.ifindex, XdpMode::Auto).unwrap();
        prog.add_local_addr(STACK).unwrap();
        let umem = SharedUmem::new(4 * TARGET as u32).unwrap();
        let s = XdpSocket::new(&umem, &iface, 0, ZeroCopy::Auto).unwrap();
        prog.set_socket(0, s.fd()).unwrap();
        let mut d = XdpDevice::new(s, umem, info.mtu);
        d.set_fill_target(TARGET);
        (prog, d, info)
    })
    .join()
    .unwrap();
    // The peer reaches STACK without asking for its address (no ARP to
    // answer: nothing is read until the end).
    let mac = info.mac.0.map(|b| format!("{b:02x}")).join(":");
    let k0 = format!("{}k0", h.prefix);
    let out = h.run(
        "k",
        &[
            "ip",
            "neigh",
            "replace",
            "198.18.0.2",
            "lladdr",
            &mac,
            "dev",
            &k0,
            "nud",
            "permanent",
        ],
    );
    assert!(out.status.success(), "ip neigh: {out:?}");
    let before = prog.counters().redirected;
    // A first burst, left unread on the RX ring.
    assert!(h
        .run("k", &["python3", "-c", PY_SEND, &ROUND.to_string()])
        .status
        .success());
    let got = wait_redirected(&prog, before + ROUND);
    assert!(got >= before + ROUND, "redirected {got}");
    // The worker runs again: the fill ring is topped up to its target,
    // whatever still waits on the RX ring.
    let mut refilled = 0;
    while refilled < 10 * TARGET {
        let n = dev.refill();
        if n == 0 {
            break;
        }
        refilled += n;
    }
    // A second burst before the first was read.
    assert!(h
        .run("k", &["python3", "-c", PY_SEND, &ROUND.to_string()])
        .status
        .success());
    let got = wait_redirected(&prog, before + 2 * ROUND);
    assert!(got >= before + 2 * ROUND, "redirected {got}");
    let x = dev.socket().xdp_statistics().unwrap();
    assert_eq!(
        (x.rx_fill_ring_empty_descs, x.rx_dropped),
        (0, 0),
        "refilled {refilled} while {ROUND} waited unread: {x:?}"
    );
    // Both bursts are there to read.
    let mut batch = Vec::new();
    let mut udp = 0u64;
    for _ in 0..1000 {
        if dev.recv(&mut batch) == 0 {
            break;
        }
        for (f, len) in batch.drain(..) {
            let p = &f.buf()[..len];
            if len >= 34 && p[12..14] == [0x08, 0x00] && p[23] == 17 && p[30..34] == STACK.octets()
            {
                udp += 1;
            }
        }
    }
    assert_eq!(udp, 2 * ROUND, "datagrams read");
    drop(dev);
    drop(prog);
}

/// The peer's `tcp-segmentation-offload` line and whether `ip link set
/// mtu` succeeds on it.
fn peer_tso(h: &Harness) -> String {
    let k0 = format!("{}k0", h.prefix);
    let out = h.run("k", &["ethtool", "-k", &k0]);
    assert!(out.status.success(), "ethtool -k: {out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find(|l| l.starts_with("tcp-segmentation-offload:"))
        .unwrap_or("")
        .to_string()
}

fn set_mtu(h: &Harness, ns: &str, dev: &str, mtu: u32) -> bool {
    let m = mtu.to_string();
    let out = h.run(ns, &["ip", "link", "set", dev, "mtu", &m]);
    out.status.success()
}

/// What issue 6's bulk ceiling rests on (kernel `veth_xdp_set`,
/// `veth_fix_features`): an XDP program on a veth takes TSO from the peer
/// and caps its MTU at one page; loading it as `xdp.frags` lifts the cap
/// but not the TSO removal, so at MTU 1500 every packet the peer sends is
/// one ≤ 1514-byte frame either way and multi-buffer receive cannot bring
/// 64 KB segments. Only a larger MTU gives multi-buffer packets, which an
/// `XDP_USE_SG` socket receives as chained descriptors of one chunk each:
/// a 5,042-byte ping arrives as 1,792 + 1,792 + 1,458 bytes, the first
/// holding the headers. If a kernel ever keeps the peer's TSO with a frags
/// program, this fails, and multi-buffer receive becomes worth taking.
#[test]
fn a_frags_program_lifts_the_peer_mtu_cap_but_keeps_its_tso_off() {
    let t = "a_frags_program_lifts_the_peer_mtu_cap_but_keeps_its_tso_off";
    if !common::require(common::is_root(), t, "needs root for namespaces and AF_XDP") {
        return;
    }
    let h = Harness::up("xm", 1, &[]);
    let (k0, s0) = (format!("{}k0", h.prefix), h.iface());
    assert!(peer_tso(&h).ends_with(": on"), "{}", peer_tso(&h));
    // A program without frags: TSO off, the peer's MTU capped below 9,000.
    let nss = h.nss();
    let iface = s0.clone();
    let (prog, info) = std::thread::spawn(move || {
        netns::enter(&nss);
        let info = IfaceInfo::get(&iface).unwrap();
        let mut prog = XdpProgram::load().unwrap();
        assert_eq!(
            prog.attach(info.ifindex, XdpMode::Native).unwrap(),
            AttachedMode::Native
        );
        (prog, info)
    })
    .join()
    .unwrap();
    assert!(peer_tso(&h).starts_with("tcp-segmentation-offload: off"));
    assert!(!set_mtu(&h, "k", &k0, 9000), "peer MTU 9000 without frags");
    drop(prog);
    assert!(peer_tso(&h).ends_with(": on"), "detached: {}", peer_tso(&h));
    // With frags: the cap is gone, TSO is still taken.
    assert!(set_mtu(&h, "k", &k0, 9000) && set_mtu(&h, "s", &s0, 9000));
    let nss = h.nss();
    let iface = s0.clone();
    let (prog, mut dev) = std::thread::spawn(move || {
        netns::enter(&nss);
        let mut prog = XdpProgram::load_with(true).unwrap();
        prog.attach(info.ifindex, XdpMode::Native).unwrap();
        prog.add_local_addr(STACK).unwrap();
        let umem = SharedUmem::new(4096).unwrap();
        let s = XdpSocket::with_sg(&umem, &iface, 0, ZeroCopy::Auto, true).unwrap();
        prog.set_socket(0, s.fd()).unwrap();
        (prog, XdpDevice::new(s, umem, 9000))
    })
    .join()
    .unwrap();
    assert!(
        peer_tso(&h).starts_with("tcp-segmentation-offload: off"),
        "{}",
        peer_tso(&h)
    );
    // One 5,042-byte frame (ICMP 8 + 5,000, IPv4 20, Ethernet 14), sent
    // without asking for our address (no ARP answered here).
    let mac = mac_of(&h, "s", &s0).map(|b| format!("{b:02x}")).join(":");
    let out = h.run(
        "k",
        &[
            "ip",
            "neigh",
            "replace",
            "198.18.0.2",
            "lladdr",
            &mac,
            "dev",
            &k0,
        ],
    );
    assert!(out.status.success(), "ip neigh: {out:?}");
    let before = prog.counters().redirected;
    let _ = h.run(
        "k",
        &["ping", "-c", "1", "-s", "5000", "-W", "1", "198.18.0.2"],
    );
    let got = wait_redirected(&prog, before + 1);
    assert_eq!(got, before + 1, "redirected");
    let mut batch = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while batch.len() < 3 && Instant::now() < deadline {
        dev.recv(&mut batch);
    }
    let lens: Vec<usize> = batch.iter().map(|(_, l)| *l).collect();
    assert_eq!(lens, [1792, 1792, 1458], "one packet's descriptors");
    let first = &batch[0].0.buf()[..1792];
    assert_eq!(first[12..14], [0x08, 0x00]);
    assert_eq!(
        u16::from_be_bytes([first[16], first[17]]),
        5028,
        "IPv4 total length"
    );
    // The continuations are payload only, in order: ping's pattern (byte
    // i of the data is i mod 256) runs on across the three frames.
    let all: Vec<u8> = batch
        .iter()
        .flat_map(|(f, l)| f.buf()[..*l].to_vec())
        .collect();
    let data = &all[14 + 20 + 8..];
    assert!((16..data.len()).all(|i| data[i] == i as u8), "payload");
    let umem = dev.umem().clone();
    drop(batch);
    drop(dev);
    drop(prog);
    assert_eq!(umem.live_frames(), 0, "frames handed out and not returned");
}
