//! Flow ownership: which worker runs a packet.
//!
//! A TCP flow belongs to the worker whose queue its first packet arrived
//! on; the worker's stack knows its flows, and the shared
//! [`FlowDirectory`](super::directory::FlowDirectory) tells the others, for
//! the rare packet that arrives elsewhere (on veth the sender's transmit
//! queue decides, and Linux re-hashes a flow after an RTO). Stateless
//! traffic (ICMP, UDP, fragments) runs where it arrives; ARP runs
//! everywhere (each worker's stack keeps its own ARP cache).
//!
//! [`owner`] is a fixed hash of the 4-tuple over the workers: active opens
//! pick source ports whose hash lands on the opening worker, which is where
//! a device with a known RSS function would deliver the answers.

use crate::io::xdp::rss::Rss;
use crate::io::Device;
use crate::stack::{ConnId, Error as StackError, Ipv4Cidr, Stack};
use crate::tcp::FourTuple;
use crate::time::Instant;
use core::net::{Ipv4Addr, SocketAddrV4};

/// Where a received frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dest {
    /// A TCP segment of this flow (seen from the stack: local = our side):
    /// to its owner.
    Tcp(FourTuple),
    /// Every worker (ARP: each stack learns the peer's address).
    All,
    /// The worker it arrived on.
    Here,
}

/// A 64-bit mix of the TCP flow `(local, local_port, remote, remote_port)`
/// (addresses as big-endian u32): the splitmix64 finalizer, cheap and
/// spreading every input bit.
pub fn flow_hash(local: u32, local_port: u16, remote: u32, remote_port: u16) -> u64 {
    let a = (u64::from(local) << 32) | u64::from(remote);
    let b = (u64::from(local_port) << 16) | u64::from(remote_port);
    let mut h = a ^ b.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    h
}

/// [`flow_hash`] of a tuple, mixed with the interface index.
pub fn tuple_hash(t: &FourTuple, iface: usize) -> u64 {
    flow_hash(
        u32::from(*t.local.ip()),
        t.local.port(),
        u32::from(*t.remote.ip()),
        t.remote.port(),
    ) ^ (iface as u64).wrapping_mul(0xff51_afd7_ed55_8ccd)
}

/// The worker a fixed hash of the TCP flow picks among `workers` (used to
/// choose source ports of active opens).
pub fn owner(local: u32, local_port: u16, remote: u32, remote_port: u16, workers: usize) -> usize {
    if workers <= 1 {
        return 0;
    }
    let h = flow_hash(local, local_port, remote, remote_port);
    (((h >> 32) * workers as u64) >> 32) as usize
}

/// Classify a received Ethernet frame (checked parsing: anything short or
/// odd runs where it arrived, and the stack counts it).
pub fn classify(pkt: &[u8]) -> Dest {
    let be16 = |i: usize| pkt.get(i..i + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let be32 = |i: usize| {
        pkt.get(i..i + 4)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    };
    match be16(12) {
        Some(0x0806) => return Dest::All,
        Some(0x0800) => {}
        _ => return Dest::Here,
    }
    let (Some(&vihl), Some(&proto), Some(frag)) = (pkt.get(14), pkt.get(23), be16(20)) else {
        return Dest::Here;
    };
    // RFC 791: fragments (MF set or an offset) carry no (or a partial) TCP
    // header; the stack drops or reassembles them where they land.
    if proto != 6 || frag & 0x3fff != 0 {
        return Dest::Here;
    }
    let l4 = 14 + usize::from(vihl & 0x0f) * 4;
    match (be32(26), be32(30), be16(l4), be16(l4 + 2)) {
        (Some(src), Some(dst), Some(sport), Some(dport)) => Dest::Tcp(FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::from(dst), dport),
            remote: SocketAddrV4::new(Ipv4Addr::from(src), sport),
        }),
        _ => Dest::Here,
    }
}

/// A local port in `range` whose flow to `remote:remote_port` from `local`
/// is owned by worker `me`, starting the search at `start` (so an active
/// open never needs a hand-off). `None` if no port in the range fits.
#[allow(clippy::too_many_arguments)]
pub fn port_for_worker(
    local: u32,
    remote: u32,
    remote_port: u16,
    range: (u16, u16),
    start: u16,
    me: usize,
    workers: usize,
    rss: Option<&Rss>,
) -> Option<u16> {
    let (lo, hi) = range;
    if lo > hi {
        return None;
    }
    let span = u32::from(hi - lo) + 1;
    let first = u32::from(start.clamp(lo, hi) - lo);
    (0..span)
        .map(|i| lo + ((first + i) % span) as u16)
        .find(|&p| port_lands_on(local, remote, remote_port, p, me, workers, rss))
}

/// Whether the flow from `local:port` to `remote:remote_port` is owned by
/// worker `me` (with the device's `rss`: its answers arrive on `me`'s
/// queue).
pub fn port_lands_on(
    local: u32,
    remote: u32,
    remote_port: u16,
    port: u16,
    me: usize,
    workers: usize,
    rss: Option<&Rss>,
) -> bool {
    match rss {
        // The device's own hash of the answers (from the remote to us):
        // they arrive on queue `me`, this worker's.
        Some(r) => r.queue(remote, local, remote_port, port) == Some(me as u32),
        None => owner(local, port, remote, remote_port, workers) == me,
    }
}

/// Active open from worker `me` of `workers`: a local port whose flow this
/// worker owns (so the peer's answers, wherever they arrive, are handed to
/// the opener). `cursor` is the caller's rotating search start. Ports whose
/// 4-tuple is still in use (e.g. TIME-WAIT) are skipped.
pub fn connect_owned<D: Device>(
    stack: &mut Stack<D>,
    now: Instant,
    remote: SocketAddrV4,
    me: usize,
    workers: usize,
    cursor: &mut u16,
) -> Result<ConnId, StackError> {
    let cfg = stack.config();
    let rip = u32::from(*remote.ip());
    let on_subnet = |c: &Ipv4Cidr| {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(c.prefix.min(32)))
            .unwrap_or(0);
        u32::from(c.addr) & mask == rip & mask
    };
    let local = cfg
        .addrs
        .iter()
        .find(|c| on_subnet(c))
        .or(cfg.addrs.first())
        .ok_or(StackError::Unreachable)?
        .addr;
    connect_owned_from(stack, now, local, remote, me, workers, cursor, None)
}

/// [`connect_owned`] from a chosen local address (one of the stack's);
/// with the device's `rss`, ports are chosen so that the answers arrive on
/// this worker's queue.
#[allow(clippy::too_many_arguments)]
pub fn connect_owned_from<D: Device>(
    stack: &mut Stack<D>,
    now: Instant,
    local: core::net::Ipv4Addr,
    remote: SocketAddrV4,
    me: usize,
    workers: usize,
    cursor: &mut u16,
    rss: Option<&Rss>,
) -> Result<ConnId, StackError> {
    let rip = u32::from(*remote.ip());
    let range = stack.config().ephemeral_ports;
    let lip = u32::from(local);
    let (lo, hi) = range;
    let span = if lo <= hi { u32::from(hi - lo) + 1 } else { 0 };
    // Each try moves the cursor past one owned port: `span` tries visit
    // every port of the range at least once.
    for _ in 0..span {
        let port = port_for_worker(lip, rip, remote.port(), range, *cursor, me, workers, rss)
            .ok_or(StackError::Exhausted)?;
        *cursor = if port >= hi { lo } else { port + 1 };
        match stack.connect_from(now, SocketAddrV4::new(local, port), remote) {
            Err(StackError::AddrInUse) => continue,
            r => return r,
        }
    }
    Err(StackError::Exhausted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mem::{FramePool, SimDevice};
    use crate::stack::StackConfig;
    use crate::wire::MacAddr;

    #[test]
    fn connect_owned_opens_flows_this_worker_owns() {
        let addr = Ipv4Cidr {
            addr: Ipv4Addr::new(198, 18, 0, 2),
            prefix: 24,
        };
        let cfg = StackConfig {
            max_conns: 64,
            ephemeral_ports: (50000, 50099),
            ..StackConfig::new(MacAddr([2, 0, 0, 0, 0, 2]), addr, [7; 16])
        };
        let pool = || FramePool::new(2048, 1024);
        let dev = SimDevice::new(pool(), pool(), pool(), 1500, 256);
        let mut stack = Stack::new(cfg, dev, Instant::ZERO);
        let remote = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80);
        let mut cursor = 50000;
        let mut ports = Vec::new();
        for _ in 0..10 {
            let id = connect_owned(&mut stack, Instant::ZERO, remote, 2, 4, &mut cursor).unwrap();
            let t = stack.tuple(id).unwrap();
            let o = owner(
                u32::from(*t.local.ip()),
                t.local.port(),
                u32::from(*t.remote.ip()),
                t.remote.port(),
                4,
            );
            assert_eq!(o, 2);
            ports.push(t.local.port());
        }
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 10, "every open gets its own port");
        // The range holds about 25 ports this worker owns: then it is exhausted.
        let mut opened = 10;
        while connect_owned(&mut stack, Instant::ZERO, remote, 2, 4, &mut cursor).is_ok() {
            opened += 1;
            assert!(opened <= 100);
        }
        assert!((11..=60).contains(&opened), "{opened}");
    }

    fn tcp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16) -> Vec<u8> {
        let mut p = vec![0u8; 54];
        p[12..14].copy_from_slice(&[0x08, 0x00]);
        p[14] = 0x45;
        p[20] = 0x40; // DF
        p[23] = 6;
        p[26..30].copy_from_slice(&src);
        p[30..34].copy_from_slice(&dst);
        p[34..36].copy_from_slice(&sport.to_be_bytes());
        p[36..38].copy_from_slice(&dport.to_be_bytes());
        p
    }

    #[test]
    fn tcp_is_classified_by_its_tuple() {
        let p = tcp([198, 18, 0, 1], [198, 18, 0, 2], 40000, 7);
        let want = FourTuple {
            local: "198.18.0.2:7".parse().unwrap(),
            remote: "198.18.0.1:40000".parse().unwrap(),
        };
        assert_eq!(classify(&p), Dest::Tcp(want));
        assert_ne!(tuple_hash(&want, 0), tuple_hash(&want, 1));
    }

    #[test]
    fn owners_spread_over_workers() {
        let mut seen = [0u32; 4];
        for port in 40000..41000u16 {
            seen[owner(0xc612_0002, 7, 0xc612_0001, port, 4)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 150), "{seen:?}");
    }

    #[test]
    fn other_traffic_stays_or_is_shared() {
        let mut arp = vec![0u8; 42];
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(classify(&arp), Dest::All);
        let mut udp = tcp([198, 18, 0, 1], [198, 18, 0, 2], 1, 2);
        udp[23] = 17;
        assert_eq!(classify(&udp), Dest::Here);
        let mut frag = tcp([198, 18, 0, 1], [198, 18, 0, 2], 1, 2);
        frag[20] = 0x20; // MF
        assert_eq!(classify(&frag), Dest::Here);
        assert_eq!(classify(&tcp([1; 4], [2; 4], 1, 2)[..36]), Dest::Here);
        assert_eq!(classify(&[]), Dest::Here);
        let mut v6 = vec![0u8; 60];
        v6[12..14].copy_from_slice(&[0x86, 0xdd]);
        assert_eq!(classify(&v6), Dest::Here);
    }

    #[test]
    fn active_opens_can_pick_a_port_the_worker_owns() {
        for me in 0..4 {
            let p = port_for_worker(
                0xc612_0002,
                0xc612_0001,
                80,
                (49152, 65535),
                50000,
                me,
                4,
                None,
            )
            .unwrap();
            assert!(p >= 49152);
            assert_eq!(owner(0xc612_0002, p, 0xc612_0001, 80, 4), me);
            // With the device's RSS, the answers' queue is the worker's.
            let rss = Rss {
                key: (0..40).map(|i| (i * 37 + 11) as u8).collect(),
                indir: (0..128).map(|i| i % 4).collect(),
            };
            let p = port_for_worker(
                0xc612_0002,
                0xc612_0001,
                80,
                (49152, 65535),
                50000,
                me,
                4,
                Some(&rss),
            )
            .unwrap();
            assert_eq!(rss.queue(0xc612_0001, 0xc612_0002, 80, p), Some(me as u32));
        }
        assert_eq!(port_for_worker(1, 2, 80, (5, 4), 5, 0, 4, None), None);
    }
}
