//! A SYN flood against `xdptcp echo` (one worker) over veth: spoofed SYNs
//! at a paced rate (`XDPTCP_SYNFLOOD_RATE` per second, default 100,000,
//! for `XDPTCP_SYNFLOOD_SECS`, default 3) from an AF_PACKET socket on the
//! kernel's end, half from random on-link sources (their SYN-ACKs wait for
//! ARP answers that never come: the bounded ARP queue) and half from
//! random off-link sources (answered through `--gateway`), while Linux
//! clients keep connecting and echoing. At least 99 % of them are served
//! (SYN cookies once the SYN backlog is full), a connection opened before
//! the flood keeps echoing intact, and the process RSS stays bounded; the
//! RSS before, during and after and the SYN rate reached are printed.

mod veth_common;
use veth_common as common;
use veth_common::netns::{self, Harness};

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xdptcp::wire::checksum;

const BIN: &str = env!("CARGO_BIN_EXE_xdptcp");
const STACK: &str = "198.18.0.2:7";
const S_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The harness's fixed MACs (scripts/harness.sh kmac/smac, path 0).
const K_MAC: [u8; 6] = [2, 0, 0xc6, 0x12, 0, 1];
const S_MAC: [u8; 6] = [2, 0, 0xc6, 0x12, 0, 3];
/// The echo's UMEM: `--frames` of 4 KiB (mapped up front, touched as
/// frames are used: part of the RSS whatever the load).
const FRAMES: u64 = 32768;

fn env_or(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v > 0.0)
        .unwrap_or(default)
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// A spoofed SYN from `src:sport` to the echo port, full checksums.
fn syn(frame: &mut [u8; 54], src: Ipv4Addr, sport: u16, seq: u32) {
    frame[..6].copy_from_slice(&S_MAC);
    frame[6..12].copy_from_slice(&K_MAC);
    frame[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut frame[14..34];
    ip.fill(0);
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&40u16.to_be_bytes());
    ip[6] = 0x40;
    ip[8] = 64;
    ip[9] = 6;
    ip[12..16].copy_from_slice(&src.octets());
    ip[16..20].copy_from_slice(&S_IP.octets());
    let c = checksum::checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let t = &mut frame[34..54];
    t.fill(0);
    t[0..2].copy_from_slice(&sport.to_be_bytes());
    t[2..4].copy_from_slice(&7u16.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02;
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    let ph = checksum::pseudo_header(src, S_IP, 6, 20);
    let c = !checksum::combine(&[ph, checksum::sum(t)]);
    t[16..18].copy_from_slice(&c.to_be_bytes());
}

/// Send spoofed SYNs at `rate` per second for `secs`; returns SYNs sent.
fn flood(kif: &str, rate: f64, secs: f64) -> Result<u64, String> {
    let mut sock =
        xdptcp::io::xdp::sys::packet_socket(kif).map_err(|e| format!("AF_PACKET: {e}"))?;
    let mut frame = [0u8; 54];
    let mut x: u32 = 0x9e37_79b9;
    let start = Instant::now();
    let end = Duration::from_secs_f64(secs);
    let mut sent = 0u64;
    loop {
        let el = start.elapsed();
        if el >= end {
            break;
        }
        let due = (el.as_secs_f64() * rate) as u64;
        if sent >= due {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        // At most a millisecond's worth per round, so pacing holds.
        for _ in 0..(due - sent).min((rate / 1000.0) as u64 + 1) {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let b = x.to_be_bytes();
            // Half on-link (198.18.0.16-255, never the kernel's .1, the
            // stack's .2 or .3), half off-link (198.19.x.y).
            let src = if b[0] & 1 == 0 {
                Ipv4Addr::new(198, 18, 0, 16 + b[1] % 240)
            } else {
                Ipv4Addr::new(198, 19, b[1], b[2].max(1))
            };
            syn(&mut frame, src, 1024 + (x >> 16) as u16 % 60000, x);
            match sock.write(&frame) {
                Ok(_) => sent += 1,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                // ENOBUFS: the device's queue is full (a loaded machine);
                // back off as for WouldBlock, the pacing catches up.
                Err(e) if e.raw_os_error() == Some(105) => break,
                Err(e) => return Err(format!("flood send: {e}")),
            }
        }
    }
    Ok(sent)
}

/// Legitimate clients: connect, 64 bytes each way checked, close; four at
/// a time until `stop` (at most 2,000). Returns (attempted, served).
fn clients(nsk: &str, stop: &AtomicBool) -> (u64, u64) {
    let attempted = AtomicU64::new(0);
    let served = AtomicU64::new(0);
    std::thread::scope(|s| {
        for w in 0..4u64 {
            let (attempted, served) = (&attempted, &served);
            s.spawn(move || {
                netns::enter(nsk);
                let addr: SocketAddr = STACK.parse().unwrap();
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) && i < 500 {
                    attempted.fetch_add(1, Ordering::Relaxed);
                    let msg: Vec<u8> = (0..64).map(|k| (w * 31 + i * 7 + k) as u8).collect();
                    let ok = (|| -> std::io::Result<bool> {
                        let mut c = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
                        c.set_read_timeout(Some(Duration::from_secs(5)))?;
                        c.write_all(&msg)?;
                        let mut back = [0u8; 64];
                        c.read_exact(&mut back)?;
                        Ok(back[..] == msg[..])
                    })();
                    if matches!(ok, Ok(true)) {
                        served.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
    });
    (attempted.into_inner(), served.into_inner())
}

#[test]
fn syn_flood_with_legitimate_clients_served() {
    let t = "syn_flood_with_legitimate_clients_served";
    if !common::require(common::is_root(), t, "needs root for namespaces and AF_XDP") {
        return;
    }
    let rate = env_or("XDPTCP_SYNFLOOD_RATE", 100_000.0);
    let secs = env_or("XDPTCP_SYNFLOOD_SECS", 3.0);
    let h = Harness::up("sf", 1, &[]);
    let stats = std::env::temp_dir().join(format!("xdptcp-synflood-{}.json", std::process::id()));
    let iface = format!("{}=198.18.0.2/24", h.iface());
    let frames = FRAMES.to_string();
    let child = Command::new("ip")
        .args(["netns", "exec", &h.nss(), BIN, "echo", "--iface", &iface])
        .args([
            "--gateway",
            "198.18.0.1",
            "--queues",
            "1",
            "--frames",
            &frames,
        ])
        .args(["--duration", "300", "--stats-json", stats.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning xdptcp echo");
    // `ip netns exec` execs the program: the child is xdptcp itself.
    let pid = child.id();
    assert!(
        netns::wait_listening(&h.nsk(), STACK),
        "xdptcp echo did not start listening"
    );
    let nsk = h.nsk();
    let kif = format!("{}k0", h.prefix);

    // The live connection, opened before the flood: 1,000-byte rounds
    // echoed and checked until the flood is over and 20 more.
    let flood_over = Arc::new(AtomicBool::new(false));
    let live = {
        let (nsk, over) = (nsk.clone(), flood_over.clone());
        std::thread::spawn(move || -> Result<u64, String> {
            netns::enter(&nsk);
            let mut s = TcpStream::connect_timeout(&STACK.parse().unwrap(), Duration::from_secs(5))
                .map_err(|e| e.to_string())?;
            s.set_nodelay(true).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            let deadline = Instant::now() + Duration::from_secs(120);
            let (mut rounds, mut after) = (0u64, 0);
            while after < 20 && Instant::now() < deadline {
                let msg: Vec<u8> = (0..1000u32)
                    .map(|k| (k * 13 + rounds as u32) as u8)
                    .collect();
                s.write_all(&msg)
                    .map_err(|e| format!("round {rounds}: {e}"))?;
                let mut back = vec![0u8; 1000];
                s.read_exact(&mut back)
                    .map_err(|e| format!("round {rounds}: {e}"))?;
                if back != msg {
                    return Err(format!("round {rounds}: echo differs"));
                }
                rounds += 1;
                if over.load(Ordering::Relaxed) {
                    after += 1;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(rounds)
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let rss_before = rss_kib(pid);

    // The flood, the legitimate clients beside it, and RSS samples.
    let clients_stop = AtomicBool::new(false);
    let (sent, flood_secs, (attempted, served), rss_during) = std::thread::scope(|s| {
        let f = s.spawn(|| {
            netns::enter(&nsk);
            let t0 = Instant::now();
            let r = flood(&kif, rate, secs);
            (r, t0.elapsed().as_secs_f64())
        });
        let c = s.spawn(|| clients(&nsk, &clients_stop));
        let mut rss_max = 0;
        while !f.is_finished() {
            rss_max = rss_max.max(rss_kib(pid));
            std::thread::sleep(Duration::from_millis(100));
        }
        let (sent, el) = f.join().unwrap();
        clients_stop.store(true, Ordering::Relaxed);
        let cl = c.join().unwrap();
        (sent, el, cl, rss_max)
    });
    flood_over.store(true, Ordering::Relaxed);
    let sent = sent.expect("the flood ran");
    let live = live.join().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let rss_after = rss_kib(pid);
    let (code, err) = netns::stop(child);
    let text = std::fs::read_to_string(&stats).unwrap_or_default();
    let _ = std::fs::remove_file(&stats);
    let report: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    let c = |k: &str| common::stack_counter(&report, k);

    let achieved = sent as f64 / flood_secs;
    eprintln!(
        "SYN flood: {sent} spoofed SYNs in {flood_secs:.2} s = {achieved:.0} SYN/s (asked {rate:.0}/s{})",
        if achieved < 0.95 * rate { "; this machine's sender could not reach it" } else { "" }
    );
    eprintln!(
        "stack: cookies sent {}, cookie handshakes {}, ARP queue drops {}, connections opened {}",
        c("syn_cookies_sent"),
        c("syn_cookies_ok"),
        c("drop_arp_queue"),
        c("conns_opened")
    );
    eprintln!(
        "legitimate clients: {served} of {attempted} served ({:.2} %)",
        100.0 * served as f64 / attempted.max(1) as f64
    );
    eprintln!(
        "RSS: before {} KiB, during (max) {} KiB, after {} KiB",
        rss_before, rss_during, rss_after
    );
    let rounds = live.unwrap_or_else(|e| panic!("the live connection broke: {e}\n{err}"));
    assert!(rounds >= 20);
    assert_eq!(code, 0, "xdptcp echo exit status\n{err}");
    assert!(
        attempted >= 20,
        "too few legitimate connections tried: {attempted}"
    );
    assert!(
        served * 100 >= attempted * 99,
        "only {served} of {attempted} legitimate connections served"
    );
    assert!(
        c("syn_cookies_sent") > 0,
        "the flood never reached SYN cookies"
    );
    // Bounded: the UMEM (mapped at start, touched as frames are used) plus
    // 64 MiB for everything else, whatever the flood.
    let bound = rss_before + FRAMES * 4 + 64 * 1024;
    assert!(
        rss_before > 0 && rss_during <= bound && rss_after <= bound,
        "RSS beyond {bound} KiB"
    );
}
