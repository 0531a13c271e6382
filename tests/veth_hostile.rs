//! Hostile peers against `xdptcp echo` over veth, with the Linux kernel on
//! the other side: UDP datagrams larger than the MTU, fragmented by the
//! kernel, are reassembled and echoed back in fragments that the kernel
//! reassembles.

mod veth_common;
use veth_common as common;
use veth_common::netns::{self, Harness};

use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");
const STACK: &str = "198.18.0.2:7";

fn ready(test: &str) -> bool {
    common::require(
        common::is_root(),
        test,
        "needs root for namespaces and AF_XDP",
    )
}

/// Start `xdptcp echo --udp` in the stack's namespace, with its counters
/// written to `stats` on exit, and wait until it listens.
fn start_echo(h: &Harness, stats: &std::path::Path) -> Child {
    let iface = format!("{}=198.18.0.2/24", h.iface());
    let child = Command::new("ip")
        .args(["netns", "exec", &h.nss(), BIN, "echo", "--udp"])
        .args(["--iface", &iface, "--duration", "300"])
        .args(["--stats-json", stats.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning xdptcp echo");
    assert!(
        netns::wait_listening(&h.nsk(), STACK),
        "xdptcp echo did not start listening"
    );
    child
}

fn stop_and_report(child: Child, stats: &std::path::Path) -> (i32, String, serde_json::Value) {
    let (code, err) = netns::stop(child);
    let text = std::fs::read_to_string(stats).unwrap_or_default();
    let _ = std::fs::remove_file(stats);
    let report = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (code, err, report)
}

#[test]
fn udp_datagrams_in_fragments_echo_against_kernel() {
    let t = "udp_datagrams_in_fragments_echo_against_kernel";
    if !ready(t) {
        return;
    }
    let h = Harness::up("hf", 1, &[]);
    let stats = std::env::temp_dir().join(format!("xdptcp-veth-frag-{}.json", std::process::id()));
    let child = start_echo(&h, &stats);
    let nsk = h.nsk();
    // Sizes from one fragment past the MTU to the largest UDP datagram.
    const SIZES: [usize; 5] = [1473, 3000, 8000, 30_000, 65_507];
    let r = std::thread::spawn(move || -> Result<(), String> {
        netns::enter(&nsk);
        let sa: SocketAddr = STACK.parse().unwrap();
        let u = UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
        u.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut buf = vec![0u8; 70_000];
        for (k, &n) in SIZES.iter().enumerate() {
            let msg: Vec<u8> = (0..n).map(|i| ((i * 7 + k) % 251) as u8).collect();
            let mut ok = false;
            // A lost fragment loses the datagram: a few bounded tries.
            for _ in 0..5 {
                u.send_to(&msg, sa).map_err(|e| format!("{n}: {e}"))?;
                if let Ok((got, from)) = u.recv_from(&mut buf) {
                    if from != sa || buf[..got] != msg[..] {
                        return Err(format!("{n}: echo differs ({got} bytes from {from})"));
                    }
                    ok = true;
                    break;
                }
            }
            if !ok {
                return Err(format!("{n}-byte datagram: no echo"));
            }
        }
        Ok(())
    })
    .join()
    .unwrap();
    let (code, err, report) = stop_and_report(child, &stats);
    eprintln!("{err}");
    r.unwrap();
    assert_eq!(code, 0, "xdptcp echo exit status");
    // Every datagram but none came in fragments, and left in fragments.
    let reassembled = common::stack_counter(&report, "frag_reassembled");
    assert!(reassembled >= SIZES.len() as u64, "{report}");
    assert!(
        common::stack_counter(&report, "frag_tx") >= 2 * SIZES.len() as u64,
        "{report}"
    );
    assert_eq!(common::stack_counter(&report, "drop_frag_overlap"), 0);
}

// ---------------------------------------------------------------------------
// The hostile-input corpus: raw frames from an AF_PACKET socket on the
// kernel's end of the veth, while a kernel TCP client echoes through the
// stack.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use xdptcp::wire::checksum;

const K_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const S_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The harness's fixed MACs (scripts/harness.sh kmac/smac, path 0).
const K_MAC: [u8; 6] = [2, 0, 0xc6, 0x12, 0, 1];
const S_MAC: [u8; 6] = [2, 0, 0xc6, 0x12, 0, 3];
/// Marks the corpus's own frames (TTL) so the sniffer skips them.
const TTL: u8 = 77;

fn ether(dst: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(14 + payload.len());
    v.extend_from_slice(&dst);
    v.extend_from_slice(&K_MAC);
    v.extend_from_slice(&ethertype.to_be_bytes());
    v.extend_from_slice(payload);
    v
}

/// An IPv4 header (no options) + `payload`, `frag` the flags/offset field.
fn ip_raw(src: Ipv4Addr, proto: u8, ident: u16, frag: u16, payload: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 20];
    h[0] = 0x45;
    h[2..4].copy_from_slice(&((20 + payload.len()) as u16).to_be_bytes());
    h[4..6].copy_from_slice(&ident.to_be_bytes());
    h[6..8].copy_from_slice(&frag.to_be_bytes());
    h[8] = TTL;
    h[9] = proto;
    h[12..16].copy_from_slice(&src.octets());
    h[16..20].copy_from_slice(&S_IP.octets());
    let c = checksum::checksum(&h);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

fn ip(proto: u8, payload: &[u8]) -> Vec<u8> {
    ip_raw(K_IP, proto, 0xbeef, 0x4000, payload)
}

/// A TCP segment K_IP -> S_IP with raw `options` (padded to 4 bytes by the
/// caller) and a correct checksum.
#[allow(clippy::too_many_arguments)]
fn tcp_raw(
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    options: &[u8],
    data: &[u8],
) -> Vec<u8> {
    let hl = 20 + options.len();
    let mut t = vec![0u8; hl];
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&dport.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[8..12].copy_from_slice(&ack.to_be_bytes());
    t[12] = ((hl / 4) as u8) << 4;
    t[13] = flags;
    t[14..16].copy_from_slice(&8192u16.to_be_bytes());
    t[20..].copy_from_slice(options);
    t.extend_from_slice(data);
    let ph = checksum::pseudo_header(K_IP, S_IP, 6, t.len());
    let c = !checksum::combine(&[ph, checksum::sum(&t)]);
    t[16..18].copy_from_slice(&c.to_be_bytes());
    t
}

fn udp_raw(sport: u16, dport: u16, len_field: u16, data: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; 8];
    u[0..2].copy_from_slice(&sport.to_be_bytes());
    u[2..4].copy_from_slice(&dport.to_be_bytes());
    u[4..6].copy_from_slice(&len_field.to_be_bytes());
    u.extend_from_slice(data);
    let ph = checksum::pseudo_header(K_IP, S_IP, 17, u.len());
    let c = !checksum::combine(&[ph, checksum::sum(&u)]);
    u[6..8].copy_from_slice(&c.to_be_bytes());
    u
}

fn icmp_raw(t: u8, code: u8, rest: &[u8]) -> Vec<u8> {
    let mut m = vec![t, code, 0, 0];
    m.extend_from_slice(rest);
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    m
}

fn arp_raw(op: u16, sender_mac: [u8; 6], sender_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sender_mac);
    a.extend_from_slice(&sender_ip.octets());
    a.extend_from_slice(&[0; 6]);
    a.extend_from_slice(&target_ip.octets());
    a
}

/// Deterministic filler bytes.
fn noise(seed: u32, n: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).max(1);
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// The live connection's state as the kernel last sent it: (its SND.NXT,
/// the stack's SND.NXT as it acknowledged it).
fn sniff_live(sock: &mut std::fs::File, port: u16) -> Option<(u32, u32)> {
    let mut buf = [0u8; 2048];
    let mut last = None;
    // Drain what was captured (bounded: the socket is non-blocking).
    for _ in 0..100_000 {
        let Ok(n) = sock.read(&mut buf) else { break };
        let f = &buf[..n];
        if n < 54 || f[12..14] != [8, 0] || f[6..12] != K_MAC || f[22] == TTL || f[23] != 6 {
            continue;
        }
        let hl = usize::from(f[14] & 0x0f) * 4;
        let tot = usize::from(u16::from_be_bytes([f[16], f[17]]));
        let t = &f[14 + hl..];
        if u16::from_be_bytes([t[0], t[1]]) != port {
            continue;
        }
        let seq = u32::from_be_bytes([t[4], t[5], t[6], t[7]]);
        let ack = u32::from_be_bytes([t[8], t[9], t[10], t[11]]);
        let doff = usize::from(t[12] >> 4) * 4;
        let len = tot.saturating_sub(hl + doff) as u32;
        last = Some((seq.wrapping_add(len), ack));
    }
    last
}

/// Counters the corpus must have moved: (name, at least). `xdp.` names are
/// the XDP program's counters (malformed frames go to the kernel).
type Expect = Vec<(&'static str, u64)>;

/// Build the corpus against the live connection from `port` whose state is
/// `live` = (kernel SND.NXT, stack SND.NXT).
fn corpus(port: u16, live: (u32, u32)) -> (Vec<Vec<u8>>, Expect) {
    let (rcv, snd) = live;
    let mut v: Vec<Vec<u8>> = Vec::new();
    let mut e: Expect = Vec::new();
    let mut extra: Expect = Vec::new();
    let mut add = |frames: Vec<Vec<u8>>, counter: &'static str| {
        e.push((counter, frames.len() as u64));
        v.extend(frames);
    };
    const SYN: u8 = 0x02;
    const FIN: u8 = 0x01;
    const RST: u8 = 0x04;
    const PSH: u8 = 0x08;
    const ACK: u8 = 0x10;
    const URG: u8 = 0x20;
    let good_syn = tcp_raw(40001, 7, 1, 0, SYN, &[], &[]);

    // Ethernet and IPv4 headers cut short, bad versions and lengths: the
    // XDP program's bounds checks pass them to the kernel as malformed.
    add(vec![ether(S_MAC, 0x0800, &[])], "xdp.malformed");
    add(
        vec![ether(S_MAC, 0x0800, &ip(6, &good_syn)[..12])],
        "xdp.malformed",
    );
    let mut p = ip(6, &good_syn);
    p[0] = 0x65;
    add(vec![ether(S_MAC, 0x0800, &p)], "xdp.malformed");
    let mut p = ip(6, &good_syn);
    p[0] = 0x44;
    add(vec![ether(S_MAC, 0x0800, &p)], "xdp.malformed");
    add(
        vec![ether(S_MAC, 0x0800, &ip(6, &good_syn[..10]))],
        "xdp.malformed",
    );
    add(
        vec![ether(S_MAC, 0x0800, &ip(17, &[0, 7, 0, 7]))],
        "xdp.malformed",
    );
    let mut t = good_syn.clone();
    t[12] = 4 << 4;
    add(vec![ether(S_MAC, 0x0800, &ip(6, &t))], "xdp.malformed");
    add(
        vec![ether(S_MAC, 0x0806, &arp_raw(1, K_MAC, K_IP, S_IP)[..20])],
        "xdp.malformed",
    );
    // What passes the XDP checks reaches the stack, which counts it.
    let mut p = ip(6, &good_syn);
    p[2..4].copy_from_slice(&1000u16.to_be_bytes());
    p[10..12].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&p[..20]);
    p[10..12].copy_from_slice(&c.to_be_bytes());
    add(vec![ether(S_MAC, 0x0800, &p)], "drop_truncated");
    let mut p = ip(6, &good_syn);
    p[10] ^= 0x55;
    add(vec![ether(S_MAC, 0x0800, &p)], "drop_bad_checksum");
    for src in [
        Ipv4Addr::new(198, 18, 0, 255),
        S_IP,
        Ipv4Addr::LOCALHOST,
        Ipv4Addr::new(224, 0, 0, 1),
    ] {
        add(
            vec![ether(S_MAC, 0x0800, &ip_raw(src, 6, 1, 0x4000, &good_syn))],
            "drop_bad_source",
        );
    }
    add(
        vec![ether(S_MAC, 0x0800, &ip(47, &noise(1, 40)))],
        "drop_unsupported",
    );
    add(
        vec![ether([2, 0, 0, 0, 0, 0x99], 0x0800, &ip(6, &good_syn))],
        "drop_not_for_us",
    );
    // TCP: bad checksum, data offset past the segment, bad option lengths.
    let mut t = good_syn.clone();
    t[17] ^= 0x01;
    add(vec![ether(S_MAC, 0x0800, &ip(6, &t))], "drop_bad_checksum");
    let mut t = tcp_raw(40002, 7, 1, 0, SYN, &[], &[]);
    t[12] = 15 << 4;
    let c = {
        t[16..18].copy_from_slice(&[0, 0]);
        let ph = checksum::pseudo_header(K_IP, S_IP, 6, t.len());
        !checksum::combine(&[ph, checksum::sum(&t)])
    };
    t[16..18].copy_from_slice(&c.to_be_bytes());
    add(vec![ether(S_MAC, 0x0800, &ip(6, &t))], "drop_truncated");
    for opts in [
        &[2u8, 0, 0, 0][..],              // MSS with length 0
        &[8, 1, 0, 0][..],                // timestamps with length 1
        &[3, 40, 7, 0][..],               // window scale running past the header
        &[2, 4, 5, 180, 8, 10, 0, 0][..], // timestamps cut off
        &[1, 1, 1, 2][..],                // a kind with no length byte
    ] {
        add(
            vec![ether(
                S_MAC,
                0x0800,
                &ip(6, &tcp_raw(40003, 7, 1, 0, SYN, opts, &[])),
            )],
            "drop_bad_length",
        );
    }
    // Illegal flag sets to the listener, and segments to port 0.
    for flags in [
        SYN | FIN,
        SYN | RST,
        0,
        FIN | PSH | URG,
        FIN,
        SYN | FIN | RST | PSH | URG,
    ] {
        add(
            vec![ether(
                S_MAC,
                0x0800,
                &ip(6, &tcp_raw(40004, 7, 9, 0, flags, &[], &[])),
            )],
            "drop_tcp_invalid",
        );
    }
    add(
        vec![ether(
            S_MAC,
            0x0800,
            &ip(6, &tcp_raw(40005, 0, 1, 0, SYN, &[], &[])),
        )],
        "drop_bad_port",
    );
    add(
        vec![ether(
            S_MAC,
            0x0800,
            &ip(6, &tcp_raw(40006, 9, 1, 0, SYN, &[], &[])),
        )],
        "drop_no_listener",
    );
    // Blind attacks into the live connection (RFC 5961): in-window RST and
    // SYN get challenge ACKs; data whose ACK acknowledges unsent data or is
    // far too old, or that carries no ACK, is dropped, never delivered.
    let off = 20_011; // In the window, never RCV.NXT itself.
    add(
        vec![ether(
            S_MAC,
            0x0800,
            &ip(
                6,
                &tcp_raw(port, 7, rcv.wrapping_add(off), 0, RST, &[], &[]),
            ),
        )],
        "challenge_acks",
    );
    add(
        vec![ether(
            S_MAC,
            0x0800,
            &ip(
                6,
                &tcp_raw(port, 7, rcv.wrapping_add(off), 0, SYN, &[], &[]),
            ),
        )],
        "challenge_acks",
    );
    add(
        vec![ether(
            S_MAC,
            0x0800,
            &ip(
                6,
                &tcp_raw(
                    port,
                    7,
                    rcv.wrapping_add(off),
                    snd.wrapping_add(1 << 30),
                    ACK | PSH,
                    &[],
                    b"INJECTED",
                ),
            ),
        )],
        "acks_of_unsent",
    );
    add(
        vec![ether(
            S_MAC,
            0x0800,
            &ip(
                6,
                &tcp_raw(
                    port,
                    7,
                    rcv.wrapping_add(off),
                    snd.wrapping_sub(1 << 30),
                    ACK | PSH,
                    &[],
                    b"INJECTED",
                ),
            ),
        )],
        "old_ack_drops",
    );
    add(
        vec![ether(
            S_MAC,
            0x0800,
            &ip(
                6,
                &tcp_raw(port, 7, rcv.wrapping_add(off), 0, PSH, &[], b"INJECTED"),
            ),
        )],
        "no_ack_drops",
    );
    add(
        vec![ether(
            S_MAC,
            0x0800,
            &ip(
                6,
                &tcp_raw(port, 7, rcv.wrapping_add(1 << 31), 0, RST, &[], &[]),
            ),
        )],
        "out_of_window",
    );
    // UDP: lengths, checksum, ports.
    add(
        vec![ether(S_MAC, 0x0800, &ip(17, &udp_raw(5000, 7, 2000, b"x")))],
        "drop_truncated",
    );
    add(
        vec![ether(S_MAC, 0x0800, &ip(17, &udp_raw(5000, 7, 4, b"xyz")))],
        "drop_bad_length",
    );
    let mut u = udp_raw(5000, 7, 12, b"abcd");
    u[9] ^= 1;
    add(vec![ether(S_MAC, 0x0800, &ip(17, &u))], "drop_bad_checksum");
    add(
        vec![ether(
            S_MAC,
            0x0800,
            &ip(17, &udp_raw(5000, 9, 12, b"abcd")),
        )],
        "drop_udp_no_socket",
    );
    add(
        vec![ether(S_MAC, 0x0800, &ip(17, &udp_raw(0, 7, 12, b"abcd")))],
        "drop_bad_port",
    );
    // Random bytes after valid IPv4 headers.
    for k in 0..4 {
        add(
            vec![ether(S_MAC, 0x0800, &ip(17, &noise(10 + k, 64)))],
            "drop_bad_checksum|drop_bad_length|drop_truncated|drop_udp_no_socket|drop_bad_port",
        );
        add(
            vec![ether(S_MAC, 0x0800, &ip(6, &noise(20 + k, 64)))],
            "drop_bad_checksum|drop_bad_length|drop_truncated|drop_bad_port",
        );
    }
    // ICMP: truncated, bad checksum, an error quoting nothing of ours, an
    // unknown type, and an echo request with trailing junk (answered).
    add(
        vec![ether(S_MAC, 0x0800, &ip(1, &[8, 0]))],
        "drop_truncated",
    );
    let mut m = icmp_raw(8, 0, &[0, 1, 0, 1, 1, 2, 3]);
    m[5] ^= 1;
    add(vec![ether(S_MAC, 0x0800, &ip(1, &m))], "drop_bad_checksum");
    let quote = ip_raw(S_IP, 6, 3, 0, &tcp_raw(7, 55555, 1, 0, ACK, &[], &[])[..8]);
    add(
        vec![ether(
            S_MAC,
            0x0800,
            &ip(1, &icmp_raw(3, 3, &[&[0u8; 4][..], &quote].concat())),
        )],
        "drop_icmp_unmatched",
    );
    add(
        vec![ether(S_MAC, 0x0800, &ip(1, &icmp_raw(42, 0, &[0; 4])))],
        "icmp_other",
    );
    let mut f = ether(S_MAC, 0x0800, &ip(1, &icmp_raw(8, 0, &[0, 9, 0, 1, 7, 7])));
    f.extend_from_slice(&noise(3, 40));
    add(vec![f], "icmp_echo_replies");
    // Fragments: overlapping, bad lengths, an incomplete datagram, and a
    // SYN in tiny fragments, the last first (offset field 1 = 8 bytes;
    // reassembled; port 9 is closed: a RST).
    let d = udp_raw(5000, 7, 1608, &noise(4, 1600));
    add(
        vec![
            ether(S_MAC, 0x0800, &ip_raw(K_IP, 17, 0x1001, 0x2000, &d[..800])),
            ether(
                S_MAC,
                0x0800,
                &ip_raw(K_IP, 17, 0x1001, 0x2000 | 50, &d[400..1200]),
            ),
        ],
        "frag_rx",
    );
    extra.push(("drop_frag_overlap", 1));
    add(
        vec![ether(
            S_MAC,
            0x0800,
            &ip_raw(K_IP, 17, 0x1002, 0x2000, &d[..12]),
        )],
        "drop_frag_bad",
    );
    add(
        vec![ether(
            S_MAC,
            0x0800,
            &ip_raw(K_IP, 17, 0x1003, 0x1fff, &d[..100]),
        )],
        "drop_frag_bad",
    );
    add(
        vec![ether(
            S_MAC,
            0x0800,
            &ip_raw(K_IP, 17, 0x1004, 0x2000, &d[..800]),
        )],
        "frag_rx",
    );
    let syn9 = tcp_raw(40007, 9, 1, 0, SYN, &[], &[]);
    add(
        vec![
            ether(S_MAC, 0x0800, &ip_raw(K_IP, 6, 0x1005, 1, &syn9[8..])),
            ether(S_MAC, 0x0800, &ip_raw(K_IP, 6, 0x1005, 0x2000, &syn9[..8])),
        ],
        "frag_rx",
    );
    extra.push(("frag_reassembled", 1));
    extra.push(("drop_no_listener", 1));
    // ARP: someone else claiming the stack's address (gratuitous request
    // and reply); an ARP for another hardware type (not ours: passed).
    let evil = [2, 0, 0, 0, 0x66, 0x66];
    add(
        vec![ether([0xff; 6], 0x0806, &arp_raw(1, evil, S_IP, S_IP))],
        "arp_conflicts",
    );
    add(
        vec![ether(S_MAC, 0x0806, &arp_raw(2, evil, S_IP, S_IP))],
        "arp_conflicts",
    );
    let mut a = arp_raw(1, K_MAC, K_IP, S_IP);
    a[4] = 8;
    add(vec![ether(S_MAC, 0x0806, &a)], "xdp.passed");
    add(vec![ether(S_MAC, 0x88b5, &noise(5, 100))], "xdp.passed");
    e.extend(extra);
    (v, e)
}

#[test]
fn hostile_corpus_against_echo_leaves_the_live_connection_intact() {
    let t = "hostile_corpus_against_echo_leaves_the_live_connection_intact";
    if !ready(t) {
        return;
    }
    let h = Harness::up("hc", 1, &[]);
    let stats =
        std::env::temp_dir().join(format!("xdptcp-veth-corpus-{}.json", std::process::id()));
    let child = start_echo(&h, &stats);
    let nsk = h.nsk();
    let kif = format!("{}k0", h.prefix);
    let stop = Arc::new(AtomicBool::new(false));
    let (port_tx, port_rx) = std::sync::mpsc::channel();
    // The live connection: 1,000-byte rounds echoed and checked, until the
    // corpus is done and 20 more (bounded by 60 s).
    let live = {
        let (nsk, stop) = (nsk.clone(), stop.clone());
        std::thread::spawn(move || -> Result<u64, String> {
            netns::enter(&nsk);
            let mut s = TcpStream::connect_timeout(&STACK.parse().unwrap(), Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            port_tx.send(s.local_addr().unwrap().port()).unwrap();
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            let (mut rounds, mut after) = (0u64, 0);
            while after < 20 && std::time::Instant::now() < deadline {
                let msg = noise(rounds as u32 + 100, 1000);
                s.write_all(&msg)
                    .map_err(|e| format!("round {rounds}: {e}"))?;
                let mut back = vec![0u8; 1000];
                s.read_exact(&mut back)
                    .map_err(|e| format!("round {rounds}: {e}"))?;
                if back != msg {
                    return Err(format!("round {rounds}: echo differs"));
                }
                rounds += 1;
                if stop.load(Ordering::Relaxed) {
                    after += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(rounds)
        })
    };
    let port: u16 = port_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("live connection");
    let attack = std::thread::spawn(move || -> Result<Expect, String> {
        netns::enter(&nsk);
        let mut sock =
            xdptcp::io::xdp::sys::packet_socket(&kif).map_err(|e| format!("AF_PACKET: {e}"))?;
        let mut all = Expect::new();
        // Three passes, each from freshly sniffed sequence numbers.
        for _ in 0..3 {
            std::thread::sleep(Duration::from_millis(100));
            let live = sniff_live(&mut sock, port).ok_or("no live segment sniffed")?;
            let (frames, expect) = corpus(port, live);
            for f in &frames {
                sock.write_all(f).map_err(|e| format!("send: {e}"))?;
                std::thread::sleep(Duration::from_millis(1));
            }
            all.extend(expect);
        }
        // The service continues: a new connection and a UDP datagram.
        let mut s = TcpStream::connect_timeout(&STACK.parse().unwrap(), Duration::from_secs(5))
            .map_err(|e| format!("new connection: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"still here").map_err(|e| e.to_string())?;
        let mut b = [0u8; 10];
        s.read_exact(&mut b)
            .map_err(|e| format!("new connection: {e}"))?;
        if &b != b"still here" {
            return Err("new connection: echo differs".into());
        }
        Ok(all)
    });
    let expect = attack.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    let rounds = live.join().unwrap();
    let (code, err, report) = stop_and_report(child, &stats);
    eprintln!("{err}");
    let expect = expect.unwrap();
    let rounds = rounds.expect("the live connection survived the corpus");
    assert!(rounds >= 20);
    assert_eq!(code, 0, "xdptcp echo exit status");
    // Every kind of drop is counted by its reason.
    let xdp = |name: &str| -> u64 {
        report["ifaces"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|i| i["xdp"][name].as_u64().unwrap_or(0))
            .sum()
    };
    let mut want: std::collections::BTreeMap<&str, u64> = Default::default();
    for (name, n) in expect {
        *want.entry(name).or_default() += n;
    }
    let mut missing = Vec::new();
    for (name, n) in &want {
        let got: u64 = name
            .split('|')
            .map(|c| match c.strip_prefix("xdp.") {
                Some(x) => xdp(x),
                None => common::stack_counter(&report, c),
            })
            .sum();
        eprintln!("{name}: {got} (at least {n})");
        if got < *n {
            missing.push(format!("{name}: {got} < {n}"));
        }
    }
    assert!(missing.is_empty(), "{missing:?}\n{report}");
}
