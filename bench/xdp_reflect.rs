//! A raw AF_XDP reflector: the data path's own ceiling, for
//! `bench/echo_vs_linux.sh`.
//!
//! ```text
//! xdp_reflect IFACE ADDR SECONDS
//! ```
//!
//! Attaches xdptcp's XDP program to IFACE queue 0, steers IPv4 packets for
//! ADDR into one AF_XDP socket (the same ring layer, UMEM and frame pool as
//! `xdptcp echo`: `io::xdp`), and sends each one straight back with its
//! Ethernet and IPv4 addresses and its TCP/UDP ports swapped. No protocol
//! work at all: what `xdptcp echo` does beyond this is the stack's cost.
//! The swap keeps every checksum valid (the IPv4 header sum and the L4
//! pseudo-header sum are symmetric in source and destination). Runs on the
//! calling thread (pin it with taskset) for SECONDS, then prints
//! `PACKETS_PER_S RECEIVED SENT`. With `XDP_REFLECT_MULTIBUF` set in the
//! environment the program is loaded as `xdp.frags` and the socket bound
//! with `XDP_USE_SG` (multi-buffer receive; at MTU 1,500 every packet
//! still fits one frame, and the rate is the same).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};
use xdptcp::io::xdp::iface::IfaceInfo;
use xdptcp::io::xdp::{SharedUmem, XdpDevice, XdpMode, XdpProgram, XdpSocket, ZeroCopy};
use xdptcp::io::{Device, Frame};

const ETH: usize = 14;

/// Swap source and destination at every layer; false if not IPv4.
fn reflect(p: &mut [u8]) -> bool {
    if p.len() < ETH + 20 || p[12..14] != [0x08, 0x00] {
        return false;
    }
    for i in 0..6 {
        p.swap(i, 6 + i);
    }
    for i in 0..4 {
        p.swap(ETH + 12 + i, ETH + 16 + i);
    }
    let l4 = ETH + usize::from(p[ETH] & 0x0f) * 4;
    if matches!(p[ETH + 9], 6 | 17) && p.len() >= l4 + 4 {
        for i in 0..2 {
            p.swap(l4 + i, l4 + 2 + i);
        }
    }
    true
}

fn run(iface: &str, addr: Ipv4Addr, secs: f64) -> Result<(f64, u64, u64), String> {
    let info = IfaceInfo::get(iface).map_err(|e| e.to_string())?;
    let mb = std::env::var_os("XDP_REFLECT_MULTIBUF").is_some();
    let mut prog = XdpProgram::load_with(mb).map_err(|e| e.to_string())?;
    prog.attach(info.ifindex, XdpMode::Native)
        .map_err(|e| e.to_string())?;
    prog.add_local_addr(addr).map_err(|e| e.to_string())?;
    // Checksums stay as they came: no TX metadata.
    let umem = SharedUmem::new(32768).map_err(|e| e.to_string())?;
    let _cache = umem.worker_cache();
    let sock =
        XdpSocket::with_sg(&umem, iface, 0, ZeroCopy::Auto, mb).map_err(|e| e.to_string())?;
    prog.set_socket(0, sock.fd()).map_err(|e| e.to_string())?;
    let mut dev = XdpDevice::new(sock, umem.clone(), info.mtu);
    dev.set_fill_target(16384);
    let mut batch = Vec::with_capacity(64);
    let (mut rx, mut tx) = (0u64, 0u64);
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs_f64(secs);
    let mut idle = 0u32;
    while Instant::now() < end {
        let n = dev.recv(&mut batch);
        rx += n as u64;
        for (mut f, len) in batch.drain(..) {
            if reflect(&mut f.buf_mut()[..len]) && dev.transmit(f, 0, len) {
                tx += 1;
            }
        }
        let busy = dev.flush();
        if n == 0 && !busy {
            idle += 1;
            if idle > 1000 {
                dev.wait(10);
            }
        } else {
            idle = 0;
        }
    }
    let el = t0.elapsed().as_secs_f64();
    Ok((tx as f64 / el, rx, tx))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let parsed = match args.as_slice() {
        [_, iface, addr, secs] => addr
            .parse::<Ipv4Addr>()
            .ok()
            .zip(secs.parse::<f64>().ok().filter(|s| *s > 0.0 && *s < 3600.0))
            .map(|(a, s)| (iface.clone(), a, s)),
        _ => None,
    };
    let Some((iface, addr, secs)) = parsed else {
        eprintln!("usage: xdp_reflect IFACE IPV4 SECONDS (SECONDS in 0..3600)");
        std::process::exit(2);
    };
    match run(&iface, addr, secs) {
        Ok((pps, rx, tx)) => println!("{pps:.0} {rx} {tx}"),
        Err(e) => {
            eprintln!("xdp_reflect: {e}");
            std::process::exit(1);
        }
    }
}
