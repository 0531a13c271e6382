//! The network and the virtual-time driver.
//!
//! N interfaces ("ports": one per node, or several for a multihomed node)
//! are joined by a full mesh of one-way [`Link`]s within each segment (an
//! L2 network; one by default); a frame goes to the port owning its
//! destination MAC in the sender's segment (broadcasts to every other port
//! of it), so several segments are several independent paths between the
//! same nodes, and a segment can be taken down at a given time. The
//! driver delivers packets in time order (an event queue ordered by arrival
//! time, ties by send order), lets every node run (receive, app events,
//! poll), and then jumps virtual time to the next thing that can happen: the
//! earliest arrival or the earliest `poll_at` of any node. It stops when all
//! nodes are finished, and reports a failure when the virtual-time or
//! iteration limit is reached or nothing is left to happen (a stall).

use super::device::SimDevice;
use super::frame::{FramePool, HeapFrame};
use super::link::{InFlight, Link, LinkConfig, LinkStats, PathHop};
use super::trace::{TraceKind, TraceRecord, Tracer};
use crate::io::Frame;
use crate::time::Instant;
use crate::wire::MacAddr;
use core::time::Duration;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// Something the driver runs: a stack and its application, or a test double.
pub trait Node {
    /// A packet arrived on interface `port` (already copied into one of
    /// that interface's RX frames).
    fn receive(&mut self, now: Instant, port: usize, frame: HeapFrame, len: usize);
    /// Run the application and the stack's timers and transmissions.
    fn service(&mut self, now: Instant);
    /// When the node next needs `service` without a packet arriving.
    fn poll_at(&self) -> Option<Instant>;
    /// The device of interface `port` (`0..ports()`).
    fn device_mut(&mut self, port: usize) -> &mut SimDevice;
    /// Whether the node has done all it was meant to do.
    fn finished(&self) -> bool;
    /// Interfaces of the node; each has its own MAC in the network.
    fn ports(&self) -> usize {
        1
    }
}

/// Bounds on a run, so it can never spin forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Virtual time the run may last.
    pub time: Duration,
    /// Driver iterations the run may take.
    pub iterations: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            time: Duration::from_secs(600),
            iterations: 200_000_000,
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every node finished at this time.
    Finished(Instant),
    /// The next event lies beyond the virtual-time limit.
    TimeLimit(Instant),
    /// The iteration limit was reached (a node keeps asking to be polled
    /// without time moving on, or the run is simply too long).
    IterationLimit(Instant),
    /// Nothing is scheduled and not every node is finished: a deadlock.
    Idle(Instant),
}

impl Outcome {
    pub fn is_finished(&self) -> bool {
        matches!(self, Outcome::Finished(_))
    }
    pub fn at(&self) -> Instant {
        match *self {
            Outcome::Finished(t)
            | Outcome::TimeLimit(t)
            | Outcome::IterationLimit(t)
            | Outcome::Idle(t) => t,
        }
    }
    /// A one-line explanation of a failed run.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Finished(t) => format!("finished at {} ms of virtual time", t.millis()),
            Outcome::TimeLimit(t) => format!(
                "stalled: virtual time limit reached (last activity at {} ms, nothing due before the limit)",
                t.millis()
            ),
            Outcome::IterationLimit(t) => {
                format!("stalled: iteration limit reached at {} ms", t.millis())
            }
            Outcome::Idle(t) => format!(
                "stalled: nothing left to do at {} ms, transfer unfinished",
                t.millis()
            ),
        }
    }
}

struct Arrival {
    at: Instant,
    seq: u64,
    link: usize,
    src: usize,
    /// The destination port (an index into the network's MACs).
    dst: usize,
    frame: HeapFrame,
    len: usize,
}

impl PartialEq for Arrival {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Arrival {}
impl PartialOrd for Arrival {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Arrival {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

/// Packets one node may receive per driver iteration (an RX batch).
const RX_BATCH: usize = 64;

/// The links between N ports and the event queue.
pub struct Network {
    /// One per port, in node order (node 0's ports first).
    macs: Vec<MacAddr>,
    /// The segment of each port: frames only travel within one.
    segment: Vec<usize>,
    /// From this time on, segment `s` carries nothing (`down[s]`).
    down: Vec<Option<Instant>>,
    /// `links[i * n + j]`: from port i to port j (unused when i == j or
    /// when they are in different segments).
    links: Vec<Link>,
    /// The link a frame from port i to port j takes: `route[i * n + j]`,
    /// `i * n + j` itself unless several pairs share one (a bottleneck).
    route: Vec<usize>,
    wire: FramePool,
    queue: BinaryHeap<Reverse<Arrival>>,
    seq: u64,
    now: Instant,
    iterations: u64,
    /// Frames whose destination MAC belongs to no node.
    pub unknown_dst: u64,
    tracer: Option<Tracer>,
    observer: Option<Observer>,
}

/// Sees every frame a node sends, before the link impairs it: `(now,
/// sending node, frame)`. For checkers such as [`super::audit::Auditor`].
pub type Observer = Box<dyn FnMut(Instant, usize, &[u8])>;

impl Network {
    /// Nodes with these MACs; `cfg(i, j)` shapes the link from i to j;
    /// `wire` holds frames in flight.
    pub fn new(
        macs: Vec<MacAddr>,
        cfg: impl Fn(usize, usize) -> LinkConfig,
        seed: u64,
        wire: FramePool,
    ) -> Self {
        let n = macs.len();
        let mut links = Vec::with_capacity(n * n);
        for i in 0..n {
            for j in 0..n {
                let idx = (i * n + j) as u64;
                links.push(Link::new(cfg(i, j), super::mix(seed ^ super::mix(idx + 1))));
            }
        }
        Network {
            segment: vec![0; n],
            route: (0..n * n).collect(),
            down: vec![None],
            macs,
            links,
            wire,
            queue: BinaryHeap::new(),
            seq: 0,
            now: Instant::ZERO,
            iterations: 0,
            unknown_dst: 0,
            tracer: None,
            observer: None,
        }
    }

    /// Put port `i` in segment `segment[i]` (default: all in segment 0).
    pub fn set_segments(&mut self, segment: Vec<usize>) {
        assert_eq!(segment.len(), self.macs.len(), "one segment per port");
        let n = segment.iter().max().map_or(1, |m| m + 1);
        self.down.resize(n, None);
        self.segment = segment;
    }

    /// From `at` on, segment `s` loses every frame: sent, queued or in
    /// flight (a cable pulled, a radio gone).
    pub fn set_segment_down(&mut self, s: usize, at: Instant) {
        if let Some(d) = self.down.get_mut(s) {
            *d = Some(at);
        }
    }

    /// Whether port `i`'s segment is down at `t`.
    fn is_down(&self, i: usize, t: Instant) -> bool {
        self.down[self.segment[i]].is_some_and(|d| d <= t)
    }

    /// The links from `i` to `j` of all `pairs` become one, the first
    /// pair's: a bottleneck they share (one queue, one rate, the first
    /// pair's impairments), e.g. the access link several paths cross.
    /// Their `link_stats` are then the shared link's.
    pub fn share_link(&mut self, pairs: &[(usize, usize)]) {
        let n = self.macs.len();
        let Some(&(i0, j0)) = pairs.first() else {
            return;
        };
        let shared = self.route[i0 * n + j0];
        for &(i, j) in pairs {
            self.route[i * n + j] = shared;
        }
    }

    /// Show every frame sent to `o` (see [`Observer`]).
    pub fn set_observer(&mut self, o: Observer) {
        self.observer = Some(o);
    }

    /// Node `i` now answers to `mac` (a replaced NIC, a moved VM): frames
    /// to its old MAC reach no one from here on.
    pub fn set_mac(&mut self, i: usize, mac: MacAddr) {
        if let Some(m) = self.macs.get_mut(i) {
            *m = mac;
        }
    }

    /// Report every frame sent, dropped and delivered to `t`.
    pub fn set_tracer(&mut self, t: Tracer) {
        self.tracer = Some(t);
    }

    /// The wire pool (give it to each node's [`SimDevice`]).
    pub fn wire(&self) -> &FramePool {
        &self.wire
    }

    pub fn now(&self) -> Instant {
        self.now
    }

    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// Put a router with a smaller MTU on every link (see [`PathHop`]).
    pub fn set_path_hop(&mut self, hop: Option<PathHop>) {
        for l in &mut self.links {
            l.hop = hop;
        }
    }

    /// Statistics of the link from port `i` to port `j`.
    pub fn link_stats(&self, i: usize, j: usize) -> LinkStats {
        self.links[self.route[i * self.macs.len() + j]].stats
    }

    /// Everything all links did, summed.
    pub fn total_link_stats(&self) -> LinkStats {
        let mut t = LinkStats::default();
        for l in &self.links {
            let s = l.stats;
            t.tx_packets += s.tx_packets;
            t.tx_bytes += s.tx_bytes;
            t.delivered += s.delivered;
            t.dropped_loss += s.dropped_loss;
            t.dropped_mtu += s.dropped_mtu;
            t.dropped_queue += s.dropped_queue;
            t.dropped_no_frame += s.dropped_no_frame;
            t.reordered += s.reordered;
            t.duplicated += s.duplicated;
            t.corrupted += s.corrupted;
            t.ce_marked += s.ce_marked;
            t.dropped_path_mtu += s.dropped_path_mtu;
            t.icmp_frag_needed += s.icmp_frag_needed;
            t.dropped_down += s.dropped_down;
            t.largest_passed = t.largest_passed.max(s.largest_passed);
        }
        t
    }

    /// Put a frame transmitted by port `src` on the right link(s).
    fn transmit(&mut self, src: usize, frame: HeapFrame, len: usize) {
        if let Some(o) = self.observer.as_mut() {
            o(self.now, src, &frame.buf()[..len]);
        }
        let n = self.macs.len();
        let dst_mac = frame
            .buf()
            .get(..6)
            .map(|m| MacAddr(m.try_into().unwrap_or([0; 6])));
        let Some(dst_mac) = dst_mac else {
            self.unknown_dst += 1;
            return;
        };
        let seg = self.segment[src];
        // Group bit set: broadcast or multicast, to every other port of
        // the segment.
        if dst_mac.0[0] & 1 == 1 {
            for j in 0..n {
                if j == src || self.segment[j] != seg {
                    continue;
                }
                let Some(mut copy) = self.wire.alloc() else {
                    self.links[self.route[src * n + j]].stats.dropped_no_frame += 1;
                    continue;
                };
                copy.buf_mut()[..len].copy_from_slice(&frame.buf()[..len]);
                self.enqueue(src, j, copy, len);
            }
            return;
        }
        let found = (0..n).find(|&j| self.segment[j] == seg && self.macs[j] == dst_mac);
        match found {
            Some(j) if j != src => self.enqueue(src, j, frame, len),
            _ => self.unknown_dst += 1,
        }
    }

    fn enqueue(&mut self, src: usize, dst: usize, frame: HeapFrame, len: usize) {
        let link = self.route[src * self.macs.len() + dst];
        if self.is_down(src, self.now) {
            self.links[link].stats.tx_packets += 1;
            self.links[link].stats.dropped_down += 1;
            if let Some(t) = self.tracer.as_mut() {
                t(&TraceRecord {
                    at: self.now,
                    src,
                    dst,
                    kind: TraceKind::Lost,
                    frame: &frame.buf()[..len],
                });
            }
            return;
        }
        // Trace from a copy taken before sending: the link may corrupt the
        // frame in place. Only when tracing (no copy per packet otherwise).
        let traced = self
            .tracer
            .is_some()
            .then(|| (self.links[link].stats, frame.buf()[..len].to_vec()));
        let (queue, seq) = (&mut self.queue, &mut self.seq);
        let wire = &self.wire;
        self.links[link].send(
            self.now,
            frame,
            len,
            &mut || wire.alloc(),
            &mut |p: InFlight| {
                *seq += 1;
                queue.push(Reverse(Arrival {
                    at: p.at,
                    seq: *seq,
                    link,
                    src,
                    dst,
                    frame: p.frame,
                    len: p.len,
                }));
            },
        );
        // What a router on the path sent back travels the reverse direction.
        for (f, len) in core::mem::take(&mut self.links[link].bounced) {
            self.enqueue(dst, src, f, len);
        }
        let (Some((before, copy)), Some(t)) = (traced, self.tracer.as_mut()) else {
            return;
        };
        let after = self.links[link].stats;
        let kind = if after.dropped_loss > before.dropped_loss {
            TraceKind::Lost
        } else if after.dropped_queue > before.dropped_queue {
            TraceKind::QueueDrop
        } else if after.dropped_mtu > before.dropped_mtu {
            TraceKind::MtuDrop
        } else {
            TraceKind::Sent
        };
        t(&TraceRecord {
            at: self.now,
            src,
            dst,
            kind,
            frame: &copy,
        });
    }

    /// Run until every node is finished or a limit is reached. The ports
    /// of `nodes[0]` have the first MACs, then those of `nodes[1]`, ...
    pub fn run(&mut self, nodes: &mut [&mut dyn Node], limits: Limits) -> Outcome {
        // Port -> (node, its interface).
        let owner: Vec<(usize, usize)> = nodes
            .iter()
            .enumerate()
            .flat_map(|(i, n)| (0..n.ports()).map(move |p| (i, p)))
            .collect();
        assert_eq!(owner.len(), self.macs.len(), "one MAC per port");
        let deadline = self.now + limits.time;
        let start_iterations = self.iterations;
        let mut received = vec![0usize; owner.len()];
        loop {
            // Deliver what is due, at most one RX batch per node.
            received.iter_mut().for_each(|r| *r = 0);
            let mut deferred = Vec::new();
            while let Some(Reverse(a)) = self.queue.peek() {
                if a.at > self.now {
                    break;
                }
                let Some(Reverse(a)) = self.queue.pop() else {
                    break;
                };
                if self.is_down(a.dst, a.at) {
                    // The segment went down while the frame was on it.
                    self.links[a.link].stats.dropped_down += 1;
                    continue;
                }
                if received[a.dst] >= RX_BATCH {
                    deferred.push(Reverse(a));
                    if deferred.len() >= RX_BATCH * owner.len() {
                        break;
                    }
                    continue;
                }
                received[a.dst] += 1;
                self.links[a.link].stats.delivered += 1;
                if let Some(t) = self.tracer.as_mut() {
                    t(&TraceRecord {
                        at: self.now,
                        src: a.src,
                        dst: a.dst,
                        kind: TraceKind::Delivered,
                        frame: &a.frame.buf()[..a.len],
                    });
                }
                let (i, port) = owner[a.dst];
                let node = &mut *nodes[i];
                if let Some(f) = node.device_mut(port).rx_frame(&a.frame.buf()[..a.len]) {
                    drop(a.frame);
                    node.receive(self.now, port, f, a.len);
                }
            }
            self.queue.extend(deferred);

            let mut first_port = 0;
            for node in nodes.iter_mut() {
                node.service(self.now);
                for port in 0..node.ports() {
                    while let Some((f, len)) = node.device_mut(port).take_tx() {
                        self.transmit(first_port + port, f, len);
                    }
                }
                first_port += node.ports();
            }
            self.iterations += 1;

            if nodes.iter().all(|n| n.finished()) {
                return Outcome::Finished(self.now);
            }
            if self.iterations - start_iterations >= limits.iterations {
                return Outcome::IterationLimit(self.now);
            }
            let next_arrival = self.queue.peek().map(|Reverse(a)| a.at);
            let next = nodes
                .iter()
                .filter_map(|n| n.poll_at())
                .chain(next_arrival)
                .min();
            match next {
                None => return Outcome::Idle(self.now),
                Some(t) if t > deadline => return Outcome::TimeLimit(self.now),
                Some(t) => self.now = self.now.max(t),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::Device;

    const A: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
    const B: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

    /// Sends `to_send` frames to `peer`, one per `gap`, and bounces back
    /// frames whose byte 12 is 0 (marking the bounce with 1).
    struct Pinger {
        dev: SimDevice,
        peer: MacAddr,
        to_send: u32,
        gap: Duration,
        next: Instant,
        echoes: Vec<(Instant, u8)>,
        bounce: Vec<u8>,
        /// When each ping arrived.
        pinged_at: Vec<Instant>,
        want: usize,
    }

    impl Pinger {
        fn new(wire: &FramePool, peer: MacAddr, to_send: u32, want: usize) -> Self {
            let pool = FramePool::new(256, 64);
            Pinger {
                dev: SimDevice::new(
                    pool.clone(),
                    FramePool::new(256, 64),
                    wire.clone(),
                    1500,
                    64,
                ),
                peer,
                to_send,
                gap: Duration::from_millis(1),
                next: Instant::ZERO,
                echoes: Vec::new(),
                bounce: Vec::new(),
                pinged_at: Vec::new(),
                want,
            }
        }
        fn send(&mut self, id: u8, mark: u8) {
            let mut f = self.dev.alloc().unwrap();
            let b = f.buf_mut();
            b[..6].copy_from_slice(&self.peer.0);
            b[12] = mark;
            b[13] = id;
            assert!(self.dev.transmit(f, 0, 100));
        }
    }

    impl Node for Pinger {
        fn receive(&mut self, now: Instant, _port: usize, frame: HeapFrame, _len: usize) {
            let b = frame.buf();
            if b[12] == 0 {
                self.bounce.push(b[13]);
                self.pinged_at.push(now);
            } else {
                self.echoes.push((now, b[13]));
            }
        }
        fn service(&mut self, now: Instant) {
            for id in core::mem::take(&mut self.bounce) {
                self.send(id, 1);
            }
            while self.to_send > 0 && self.next <= now {
                self.to_send -= 1;
                self.send(self.to_send as u8, 0);
                self.next += self.gap;
            }
        }
        fn poll_at(&self) -> Option<Instant> {
            (self.to_send > 0).then_some(self.next)
        }
        fn device_mut(&mut self, _port: usize) -> &mut SimDevice {
            &mut self.dev
        }
        fn finished(&self) -> bool {
            self.echoes.len() >= self.want
        }
    }

    fn net(cfg: LinkConfig, seed: u64) -> Network {
        Network::new(
            vec![A, B],
            move |_, _| cfg.clone(),
            seed,
            FramePool::new(256, 1000),
        )
    }

    #[test]
    fn round_trips_in_virtual_time() {
        let cfg = LinkConfig {
            rate_bps: None,
            delay: Duration::from_millis(5),
            ..LinkConfig::default()
        };
        let mut n = net(cfg, 1);
        let mut a = Pinger::new(n.wire(), B, 3, 3);
        let mut b = Pinger::new(n.wire(), A, 0, 0);
        let out = n.run(&mut [&mut a, &mut b], Limits::default());
        assert_eq!(out, Outcome::Finished(Instant::from_millis(12)));
        let got: Vec<_> = a.echoes.iter().map(|e| (e.0.millis(), e.1)).collect();
        assert_eq!(got, vec![(10, 2), (11, 1), (12, 0)]);
        assert_eq!(n.link_stats(0, 1).delivered, 3);
        assert_eq!(n.link_stats(1, 0).delivered, 3);
        assert_eq!(n.wire().stats().in_use, 0);
    }

    #[test]
    fn stalls_are_reported() {
        // Every packet is lost: nothing comes back, the run goes idle.
        let cfg = LinkConfig {
            loss: 1.0,
            ..LinkConfig::default()
        };
        let mut n = net(cfg.clone(), 1);
        let mut a = Pinger::new(n.wire(), B, 3, 1);
        let mut b = Pinger::new(n.wire(), A, 0, 0);
        let out = n.run(&mut [&mut a, &mut b], Limits::default());
        assert_eq!(out, Outcome::Idle(Instant::from_millis(2)));
        // A node that keeps asking for time beyond the limit.
        let mut n = net(cfg.clone(), 1);
        let mut a = Pinger::new(n.wire(), B, 1000, 1);
        let mut b = Pinger::new(n.wire(), A, 0, 0);
        let lim = Limits {
            time: Duration::from_millis(10),
            ..Limits::default()
        };
        assert_eq!(
            n.run(&mut [&mut a, &mut b], lim),
            Outcome::TimeLimit(Instant::from_millis(10))
        );
        let mut n = net(cfg, 1);
        let mut a = Pinger::new(n.wire(), B, 1000, 1);
        let mut b = Pinger::new(n.wire(), A, 0, 0);
        let lim = Limits {
            iterations: 5,
            ..Limits::default()
        };
        assert!(matches!(
            n.run(&mut [&mut a, &mut b], lim),
            Outcome::IterationLimit(_)
        ));
    }

    #[test]
    fn segments_are_separate_paths_and_a_segment_goes_down() {
        // a, b on segment 0; c, d on segment 1, with b's MAC reused by d:
        // a MAC is only looked up within the sender's segment.
        let cfg = LinkConfig {
            delay: Duration::from_millis(1),
            ..LinkConfig::default()
        };
        let mut n = Network::new(
            vec![A, B, A, B],
            move |_, _| cfg.clone(),
            3,
            FramePool::new(256, 100),
        );
        n.set_segments(vec![0, 0, 1, 1]);
        // Segment 1 goes down at 2.5 ms: c's third ping (sent at 2 ms,
        // due at 3 ms) dies on the wire, its fourth is never carried.
        n.set_segment_down(1, Instant::from_micros(2500));
        let mut a = Pinger::new(n.wire(), MacAddr::BROADCAST, 4, 4);
        let mut b = Pinger::new(n.wire(), A, 0, 0);
        let mut c = Pinger::new(n.wire(), B, 4, 0);
        let mut d = Pinger::new(n.wire(), A, 0, 0);
        let lim = Limits {
            time: Duration::from_millis(20),
            ..Limits::default()
        };
        let out = n.run(&mut [&mut a, &mut b, &mut c, &mut d], lim);
        assert!(out.is_finished(), "{out:?}");
        assert_eq!(a.echoes.len(), 4, "a's broadcasts reach b only");
        assert_eq!(n.link_stats(0, 1).delivered, 4);
        assert_eq!(
            n.link_stats(0, 2).tx_packets + n.link_stats(0, 3).tx_packets,
            0
        );
        // c -> d: two pings before the cut, then their echoes: the first
        // two come back (d echoes at 1 and 2 ms, back at 2 ms and 3 ms:
        // the second echo is lost in flight).
        assert_eq!(n.link_stats(2, 3).delivered, 2);
        assert_eq!(n.link_stats(2, 3).dropped_down, 2);
        assert_eq!(c.echoes.len(), 1);
        assert_eq!(n.link_stats(3, 2).dropped_down, 1);
        assert_eq!(n.total_link_stats().dropped_down, 3);
    }

    #[test]
    fn a_shared_link_queues_both_senders() {
        // 100-byte frames at 800 kbit/s: 1 ms on the wire each, 1 ms of
        // propagation. a and b ping c at once; c echoes.
        let c_mac = MacAddr([2, 0, 0, 0, 0, 3]);
        let run = |shared: bool| {
            let cfg = LinkConfig {
                rate_bps: Some(800_000),
                delay: Duration::from_millis(1),
                ..LinkConfig::default()
            };
            let mut n = Network::new(
                vec![A, B, c_mac],
                move |_, _| cfg.clone(),
                5,
                FramePool::new(256, 100),
            );
            if shared {
                n.share_link(&[(0, 2), (1, 2)]);
            }
            // c bounces every ping to its `peer`, a: a waits for both.
            let mut a = Pinger::new(n.wire(), c_mac, 1, 2);
            let mut b = Pinger::new(n.wire(), c_mac, 1, 0);
            let mut c = Pinger::new(n.wire(), A, 0, 0);
            let out = n.run(&mut [&mut a, &mut b, &mut c], Limits::default());
            assert!(out.is_finished(), "{out:?}");
            let at: Vec<u64> = c.pinged_at.iter().map(|t| t.millis()).collect();
            (n.link_stats(0, 2), n.link_stats(1, 2), at)
        };
        let (a2c, b2c, at) = run(false);
        assert_eq!((a2c.delivered, b2c.delivered), (1, 1));
        assert_eq!(at, vec![2, 2], "separate links: no wait");
        let (a2c, b2c, at) = run(true);
        // One link now: both frames went through it, and its stats are
        // the same whichever pair is asked.
        assert_eq!(a2c, b2c);
        assert_eq!(a2c.delivered, 2);
        // The second ping waited 1 ms behind the first.
        assert_eq!(at, vec![2, 3]);
    }

    #[test]
    fn broadcast_reaches_every_other_node_and_unknown_is_counted() {
        let cfg = LinkConfig::default();
        let c = MacAddr([2, 0, 0, 0, 0, 3]);
        let mut n = Network::new(
            vec![A, B, c],
            move |_, _| cfg.clone(),
            7,
            FramePool::new(256, 100),
        );
        let mut a = Pinger::new(n.wire(), MacAddr::BROADCAST, 1, 1);
        let mut b = Pinger::new(n.wire(), A, 0, 0);
        let mut x = Pinger::new(n.wire(), MacAddr([2, 0, 0, 0, 0, 9]), 1, 0);
        let out = n.run(&mut [&mut a, &mut b, &mut x], Limits::default());
        assert!(out.is_finished(), "{out:?}");
        // b answers a; x answers to a MAC nobody has, as does its own ping.
        assert_eq!(a.echoes.len(), 1);
        assert_eq!(
            n.link_stats(0, 1).delivered + n.link_stats(0, 2).delivered,
            2
        );
        assert_eq!(n.unknown_dst, 2);
    }
}
