//! One direction of a simulated link: a serialiser at a fixed rate behind a
//! tail-drop queue, then propagation delay with jitter, and the impairments
//! (loss, reordering, duplication, corruption, MTU).
//!
//! Model, in the order a packet meets it:
//! 1. MTU: an IP packet (frame minus the Ethernet header) above `mtu` is
//!    dropped, as a switch would.
//! 2. Queue: at most `queue_limit` packets wait for the serialiser; beyond
//!    that the packet is tail-dropped.
//! 3. Serialisation at `rate_bps` (frame bytes, no preamble or FCS).
//! 4. Loss on the wire (the packet still occupied the serialiser).
//! 5. Propagation `delay` plus a uniform `jitter`; jitter alone never
//!    reorders (a packet never overtakes the one sent before it).
//! 6. Reordering: the packet takes a detour of an extra random delay and may
//!    be overtaken by later packets.
//! 7. Corruption: one random byte anywhere in the frame is flipped.
//! 8. Duplication: a second copy arrives a little later.
//!
//! ECN (RFC 3168 §5): an AQM on the queue marks ECN-capable packets CE
//! instead of dropping them, at random (`ce_mark`) and/or whenever at least
//! `ce_queue` packets are waiting (a step-marking AQM).

use super::frame::HeapFrame;
use crate::io::Frame;
use crate::time::Instant;
use crate::wire::ipv4::{ECN_CE, ECN_ECT0, ECN_ECT1};
use crate::wire::Ipv4Repr;
use core::time::Duration;
use rand::Rng;
use rand_pcg::Pcg64Mcg;

/// Ethernet header length (the MTU counts the IP packet only).
const ETH_HEADER: usize = 14;

/// Impairments and shape of one link direction.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// Bits per second; `None` = infinitely fast.
    pub rate_bps: Option<u64>,
    /// One-way propagation delay.
    pub delay: Duration,
    /// Extra uniform random delay in `[0, jitter]` (FIFO-preserving).
    pub jitter: Duration,
    /// Probability that a packet is lost.
    pub loss: f64,
    /// Probability that a packet is held back (and overtaken).
    pub reorder: f64,
    /// Largest extra delay of a held-back packet (uniform in `(0, max]`),
    /// on top of four packet serialisation times so that reordering also
    /// happens on slow links.
    pub reorder_delay: Duration,
    /// Probability that a packet is delivered twice.
    pub duplicate: f64,
    /// Probability that one byte of a packet is flipped.
    pub corrupt: f64,
    /// Largest IP packet (bytes) the link carries.
    pub mtu: usize,
    /// Packets that may wait for the serialiser.
    pub queue_limit: usize,
    /// Probability that an ECN-capable packet is marked CE.
    pub ce_mark: f64,
    /// Mark ECN-capable packets CE while this many packets are queued.
    pub ce_queue: Option<usize>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            rate_bps: Some(1_000_000_000),
            delay: Duration::from_millis(1),
            jitter: Duration::ZERO,
            loss: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(1),
            duplicate: 0.0,
            corrupt: 0.0,
            mtu: 1500,
            queue_limit: 1000,
            ce_mark: 0.0,
            ce_queue: None,
        }
    }
}

/// A router on the path whose MTU is below the link's (the interfaces keep
/// theirs): larger IPv4 packets are dropped there, and with `icmp` it sends
/// the sender an ICMP "fragmentation needed" with its MTU (RFC 1191 §4) —
/// or, without, nothing (a PMTUD black hole, RFC 2923 §2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PathHop {
    pub mtu: usize,
    pub icmp: bool,
}

/// What happened on one link direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct LinkStats {
    /// Packets offered to the link.
    pub tx_packets: u64,
    pub tx_bytes: u64,
    /// Packets (and duplicates) handed to the receiver.
    pub delivered: u64,
    pub dropped_loss: u64,
    pub dropped_mtu: u64,
    pub dropped_queue: u64,
    /// Copies that could not be made (wire pool exhausted).
    pub dropped_no_frame: u64,
    pub reordered: u64,
    pub duplicated: u64,
    pub corrupted: u64,
    /// ECN-capable packets marked CE.
    pub ce_marked: u64,
    /// Packets above the path hop's MTU (see [`PathHop`]).
    pub dropped_path_mtu: u64,
    /// ICMP "fragmentation needed" sent back by the path hop.
    pub icmp_frag_needed: u64,
    /// Lost because the segment was down (see `Network::set_segment_down`).
    pub dropped_down: u64,
    /// The largest IP packet that got past the MTU and the path hop.
    pub largest_passed: u64,
}

/// A packet on its way: arrives at `at` (microseconds of virtual time).
pub struct InFlight<F = HeapFrame> {
    pub at: Instant,
    pub frame: F,
    pub len: usize,
}

/// One direction of a link, over frames `F` (heap frames in the simulator;
/// UMEM frames in the AF_XDP impairment layer, `io::impair`).
pub struct Link<F = HeapFrame> {
    pub cfg: LinkConfig,
    pub stats: LinkStats,
    rng: Pcg64Mcg,
    /// When the serialiser is free again (nanoseconds).
    busy_until_ns: u64,
    /// Departure times (ns) of packets still queued or being serialised.
    backlog: std::collections::VecDeque<u64>,
    /// Arrival time of the last in-order packet (FIFO under jitter).
    last_arrival_us: u64,
    /// A router with a smaller MTU on this direction.
    pub hop: Option<PathHop>,
    /// ICMP messages the hop sends back to the sender (taken by the
    /// network and put on the reverse direction).
    pub bounced: Vec<(F, usize)>,
}

impl<F: Frame> Link<F> {
    pub fn new(cfg: LinkConfig, seed: u64) -> Self {
        Link {
            cfg,
            stats: LinkStats::default(),
            rng: super::rng(seed),
            busy_until_ns: 0,
            backlog: std::collections::VecDeque::new(),
            last_arrival_us: 0,
            hop: None,
            bounced: Vec::new(),
        }
    }

    /// Serialisation time of `len` bytes, in nanoseconds.
    fn ser_ns(&self, len: usize) -> u64 {
        match self.cfg.rate_bps {
            Some(r) if r > 0 => ((len as u128 * 8 * 1_000_000_000).div_ceil(r as u128)) as u64,
            _ => 0,
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen::<f64>() < p
    }

    fn uniform_us(&mut self, max: Duration) -> u64 {
        let m = max.as_micros() as u64;
        if m == 0 {
            0
        } else {
            self.rng.gen_range(0..=m)
        }
    }

    /// Set CE on an ECN-capable IPv4 packet (fixing the header checksum).
    fn mark_ce(&mut self, frame: &mut F, len: usize) {
        let Some(f) = frame.buf_mut().get_mut(..len) else {
            return;
        };
        let is_ipv4 = f.get(12..14) == Some(&[0x08, 0x00][..]);
        let Some(ip) = f.get_mut(ETH_HEADER..) else {
            return;
        };
        let ecn = ip.get(1).map_or(0, |b| b & 0x03);
        if is_ipv4 && (ecn == ECN_ECT0 || ecn == ECN_ECT1) {
            Ipv4Repr::set_ecn_in_place(ip, ECN_CE);
            self.stats.ce_marked += 1;
        }
    }

    /// The hop's answer to an oversized IPv4 `frame` with DF set: an ICMP
    /// "fragmentation needed" (RFC 1191 §4) from the packet's destination
    /// address (standing in for the router's), MACs swapped.
    fn frag_needed(&mut self, frame: &[u8], mtu: usize, alloc: &mut dyn FnMut() -> Option<F>) {
        let Some(ip) = frame.get(ETH_HEADER..) else {
            return;
        };
        let df = ip.get(6).is_some_and(|b| b & 0x40 != 0);
        let Ok((orig, _)) = Ipv4Repr::parse(ip) else {
            return;
        };
        if !df || frame.get(12..14) != Some(&[0x08, 0x00][..]) {
            return;
        }
        let Some(mut f) = alloc() else {
            self.stats.dropped_no_frame += 1;
            return;
        };
        let buf = f.buf_mut();
        let icmp_at = ETH_HEADER + Ipv4Repr::HEADER_LEN;
        let mtu16 = mtu.min(u16::MAX as usize) as u16;
        let n = crate::wire::icmp_error::emit_frag_needed(&mut buf[icmp_at..], ip, mtu16);
        if n == 0 {
            return;
        }
        let mut rip = Ipv4Repr::new(orig.dst, orig.src, crate::wire::IpProtocol::Icmp, n);
        rip.dont_frag = false;
        rip.emit(&mut buf[ETH_HEADER..icmp_at]);
        buf[..6].copy_from_slice(&frame[6..12]);
        buf[6..12].copy_from_slice(&frame[..6]);
        buf[12..14].copy_from_slice(&[0x08, 0x00]);
        self.stats.icmp_frag_needed += 1;
        self.bounced.push((f, icmp_at + n));
    }

    /// Offer `frame[..len]` (a full Ethernet frame) at `now`; every copy
    /// that will arrive is passed to `out`. `alloc` supplies frames for
    /// duplicates and the hop's ICMP messages.
    pub fn send(
        &mut self,
        now: Instant,
        mut frame: F,
        len: usize,
        alloc: &mut dyn FnMut() -> Option<F>,
        out: &mut dyn FnMut(InFlight<F>),
    ) {
        let len = len.min(frame.buf().len());
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += len as u64;
        if len.saturating_sub(ETH_HEADER) > self.cfg.mtu {
            self.stats.dropped_mtu += 1;
            return;
        }
        if let Some(hop) = self.hop {
            if len.saturating_sub(ETH_HEADER) > hop.mtu {
                self.stats.dropped_path_mtu += 1;
                if hop.icmp {
                    self.frag_needed(&frame.buf()[..len], hop.mtu, alloc);
                }
                return;
            }
        }
        self.stats.largest_passed = self
            .stats
            .largest_passed
            .max(len.saturating_sub(ETH_HEADER) as u64);
        // Queue and serialiser.
        let now_ns = now.micros() * 1000;
        while self.backlog.front().is_some_and(|&d| d <= now_ns) {
            self.backlog.pop_front();
        }
        if self.backlog.len() >= self.cfg.queue_limit.max(1) {
            self.stats.dropped_queue += 1;
            return;
        }
        // RFC 3168 §5: an AQM marks ECT packets CE rather than dropping.
        let congested = self.cfg.ce_queue.is_some_and(|q| self.backlog.len() >= q);
        if congested || self.chance(self.cfg.ce_mark) {
            self.mark_ce(&mut frame, len);
        }
        let ser = self.ser_ns(len);
        let depart_ns = self.busy_until_ns.max(now_ns) + ser;
        self.busy_until_ns = depart_ns;
        self.backlog.push_back(depart_ns);

        if self.chance(self.cfg.loss) {
            self.stats.dropped_loss += 1;
            return;
        }
        let mut arrive = depart_ns.div_ceil(1000) + self.cfg.delay.as_micros() as u64;
        arrive += self.uniform_us(self.cfg.jitter);
        if self.chance(self.cfg.reorder) {
            // A detour: later packets may overtake this one.
            self.stats.reordered += 1;
            let span = self.cfg.reorder_delay + Duration::from_nanos(4 * ser);
            arrive = arrive.max(self.last_arrival_us) + 1 + self.uniform_us(span);
        } else {
            arrive = arrive.max(self.last_arrival_us);
            self.last_arrival_us = arrive;
        }
        if self.chance(self.cfg.corrupt) {
            self.stats.corrupted += 1;
            let i = self.rng.gen_range(0..len.max(1));
            let flip: u8 = self.rng.gen_range(1..=255);
            if let Some(b) = frame.buf_mut().get_mut(i) {
                *b ^= flip;
            }
        }
        if self.chance(self.cfg.duplicate) {
            match alloc() {
                Some(mut copy) => {
                    self.stats.duplicated += 1;
                    copy.buf_mut()[..len].copy_from_slice(&frame.buf()[..len]);
                    let extra = 1 + self.uniform_us(self.cfg.jitter) + ser / 1000;
                    out(InFlight {
                        at: Instant::from_micros(arrive + extra),
                        frame: copy,
                        len,
                    });
                }
                None => self.stats.dropped_no_frame += 1,
            }
        }
        out(InFlight {
            at: Instant::from_micros(arrive),
            frame,
            len,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mem::FramePool;

    /// (arrival, fill byte, whether the bytes are no longer all equal)
    fn run(cfg: LinkConfig, n: usize, gap_us: u64) -> (Link, Vec<(u64, u8, bool)>) {
        let wire = FramePool::new(256, 100_000);
        let mut link = Link::new(cfg, 42);
        let mut got = Vec::new();
        for i in 0..n {
            let mut f = wire.alloc().unwrap();
            f.buf_mut()[..200].fill(i as u8);
            link.send(
                Instant::from_micros(i as u64 * gap_us),
                f,
                200,
                &mut || wire.alloc(),
                &mut |p| {
                    let b = &p.frame.buf()[..p.len];
                    got.push((p.at.micros(), b[100], b.iter().any(|&x| x != b[0])))
                },
            );
        }
        (link, got)
    }

    #[test]
    fn serialisation_and_delay() {
        // 200 bytes at 1.6 Mbit/s = 1 ms each; all sent at once queue up.
        let cfg = LinkConfig {
            rate_bps: Some(1_600_000),
            delay: Duration::from_millis(10),
            ..LinkConfig::default()
        };
        let (link, got) = run(cfg, 5, 0);
        let times: Vec<u64> = got.iter().map(|g| g.0).collect();
        assert_eq!(times, vec![11_000, 12_000, 13_000, 14_000, 15_000]);
        assert_eq!(link.stats.tx_packets, 5);
    }

    #[test]
    fn tail_drop_and_mtu() {
        let cfg = LinkConfig {
            rate_bps: Some(1_600_000),
            queue_limit: 3,
            mtu: 150,
            ..LinkConfig::default()
        };
        let (link, got) = run(cfg.clone(), 5, 0);
        assert!(got.is_empty());
        assert_eq!(link.stats.dropped_mtu, 5);
        let cfg = LinkConfig { mtu: 1500, ..cfg };
        let (link, got) = run(cfg, 5, 0);
        assert_eq!(got.len(), 3);
        assert_eq!(link.stats.dropped_queue, 2);
    }

    #[test]
    fn jitter_keeps_order_reorder_breaks_it() {
        let cfg = LinkConfig {
            rate_bps: None,
            jitter: Duration::from_millis(5),
            ..LinkConfig::default()
        };
        let (_, got) = run(cfg.clone(), 500, 10);
        assert!(got.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 != w[1].1));
        let cfg = LinkConfig {
            reorder: 0.3,
            ..cfg
        };
        let (link, mut got) = run(cfg, 500, 10);
        got.sort_by_key(|g| g.0);
        let seq: Vec<u8> = got.iter().map(|g| g.1).collect();
        assert!(seq.windows(2).any(|w| w[1] != w[0].wrapping_add(1)));
        let r = link.stats.reordered;
        assert!((100..200).contains(&r), "reordered {r}");
    }

    #[test]
    fn loss_dup_corrupt_rates() {
        let cfg = LinkConfig {
            loss: 0.1,
            duplicate: 0.1,
            corrupt: 0.1,
            ..LinkConfig::default()
        };
        let (link, got) = run(cfg, 10_000, 20);
        let s = link.stats;
        for v in [s.dropped_loss, s.duplicated, s.corrupted] {
            assert!((850..1150).contains(&v), "{s:?}");
        }
        assert_eq!(got.len() as u64, 10_000 - s.dropped_loss + s.duplicated);
        // Every corrupted packet (and maybe its duplicate) arrives damaged.
        let damaged = got.iter().filter(|g| g.2).count() as u64;
        assert!(damaged >= s.corrupted && damaged <= s.corrupted + s.duplicated);
    }

    #[test]
    fn ce_marks_only_ecn_capable_ipv4() {
        let wire = FramePool::new(256, 100);
        let cfg = LinkConfig {
            ce_mark: 1.0,
            ..LinkConfig::default()
        };
        let mut link = Link::new(cfg, 1);
        // A minimal IPv4 header with a valid checksum, ECN field `ecn`.
        let frame = |ecn: u8| {
            let mut f = wire.alloc().unwrap();
            let b = f.buf_mut();
            b[..60].fill(0);
            b[12..14].copy_from_slice(&[0x08, 0x00]);
            let ip = crate::wire::Ipv4Repr {
                src: core::net::Ipv4Addr::new(198, 18, 0, 1),
                dst: core::net::Ipv4Addr::new(198, 18, 0, 2),
                protocol: crate::wire::IpProtocol::Tcp,
                payload_len: 26,
                ttl: 64,
                dscp: 0,
                ecn,
                ident: 1,
                dont_frag: true,
            };
            ip.emit(&mut b[14..34]);
            f
        };
        let mut got = Vec::new();
        for ecn in [ECN_ECT0, 0, ECN_ECT1] {
            link.send(
                Instant::ZERO,
                frame(ecn),
                60,
                &mut || wire.alloc(),
                &mut |p| {
                    let (ip, _) =
                        Ipv4Repr::parse(&p.frame.buf()[14..60]).expect("checksum still valid");
                    got.push(ip.ecn);
                },
            );
        }
        assert_eq!(got, vec![ECN_CE, 0, ECN_CE]);
        assert_eq!(link.stats.ce_marked, 2);
    }

    #[test]
    fn same_seed_same_run() {
        let cfg = LinkConfig {
            loss: 0.2,
            reorder: 0.2,
            jitter: Duration::from_millis(1),
            ..LinkConfig::default()
        };
        let a = run(cfg.clone(), 300, 5).1;
        let b = run(cfg, 300, 5).1;
        assert_eq!(a, b);
    }
}
