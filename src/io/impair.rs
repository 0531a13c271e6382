//! The impairment layer of the AF_XDP path (`--impair`): what a stack sends
//! and what it receives each cross a simulated link first — the
//! simulator's own [`Link`] model (rate, tail-drop queue, delay, jitter,
//! loss, reordering, duplication, corruption), so that the veth harness can
//! reproduce netem's matrix where the kernel has no netem.
//!
//! Deterministic given the seed: each direction of each queue draws from
//! its own generator seeded from `seed`, the queue and the direction (the
//! timing is real time, so a run is reproducible in its decisions, not in
//! its clock). Bounded: at most `limit` frames wait per direction (netem's
//! `limit`, 1,000 by default); beyond, a packet is dropped and counted. No
//! allocation per packet: the wait queues are reserved up front.

use crate::io::mem::{mix, Link, LinkConfig, LinkStats};
use crate::io::Frame;
use crate::time::Instant;
use core::time::Duration;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// `--impair` as parsed: `loss=P,dup=P,reorder=P,delay=MS,jitter=MS,
/// corrupt=P,rate=MBPS[/MBPS][,limit=N][,seed=S]`; probabilities are
/// fractions (`0.01`) or percentages (`1%`), per packet and direction; a
/// rate `TX/RX` differs by direction (what the stack sends / receives).
#[derive(Debug, Clone, PartialEq)]
pub struct ImpairSpec {
    pub loss: f64,
    pub dup: f64,
    pub reorder: f64,
    /// One-way delay added in each direction.
    pub delay: Duration,
    /// Extra uniform delay in `[0, jitter]` (order-preserving, as netem's
    /// with a rate: reordering is `reorder`'s business).
    pub jitter: Duration,
    pub corrupt: f64,
    /// Serialisation rate in Mbit/s of what the stack sends; `None`:
    /// unlimited.
    pub rate_mbps: Option<f64>,
    /// Of what it receives (`rate=TX/RX`; `rate=R` sets both).
    pub rx_rate_mbps: Option<f64>,
    /// Frames that may wait per direction.
    pub limit: usize,
    pub seed: u64,
}

impl Default for ImpairSpec {
    fn default() -> Self {
        ImpairSpec {
            loss: 0.0,
            dup: 0.0,
            reorder: 0.0,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            corrupt: 0.0,
            rate_mbps: None,
            rx_rate_mbps: None,
            limit: 1000,
            seed: 1,
        }
    }
}

fn probability(key: &str, v: &str) -> Result<f64, String> {
    let (num, scale) = match v.strip_suffix('%') {
        Some(n) => (n, 100.0),
        None => (v, 1.0),
    };
    match num.parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&(p / scale)) => Ok(p / scale),
        _ => Err(format!(
            "{key}={v}: expected a probability 0..1 or a percentage 0%..100%"
        )),
    }
}

fn millis(key: &str, v: &str) -> Result<Duration, String> {
    match v.parse::<f64>() {
        Ok(ms) if ms.is_finite() && (0.0..=60_000.0).contains(&ms) => {
            Ok(Duration::from_secs_f64(ms / 1000.0))
        }
        _ => Err(format!("{key}={v}: expected milliseconds 0..60000")),
    }
}

impl core::str::FromStr for ImpairSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut spec = ImpairSpec::default();
        for item in s.split(',').filter(|i| !i.is_empty()) {
            let Some((key, v)) = item.split_once('=') else {
                return Err(format!("{item:?}: expected KEY=VALUE"));
            };
            match key {
                "loss" => spec.loss = probability(key, v)?,
                "dup" => spec.dup = probability(key, v)?,
                "reorder" => spec.reorder = probability(key, v)?,
                "corrupt" => spec.corrupt = probability(key, v)?,
                "delay" => spec.delay = millis(key, v)?,
                "jitter" => spec.jitter = millis(key, v)?,
                "rate" => {
                    let mbps = |r: &str| match r.parse::<f64>() {
                        Ok(r) if r.is_finite() && r > 0.0 && r <= 1e6 => Ok(r),
                        _ => Err(format!("rate={v}: expected Mbit/s (more than 0), or TX/RX")),
                    };
                    let (tx, rx) = v.split_once('/').unwrap_or((v, v));
                    spec.rate_mbps = Some(mbps(tx)?);
                    spec.rx_rate_mbps = Some(mbps(rx)?);
                }
                "limit" => match v.parse::<usize>() {
                    Ok(n) if (1..=1 << 20).contains(&n) => spec.limit = n,
                    _ => return Err(format!("limit={v}: expected frames 1..1048576")),
                },
                "seed" => {
                    spec.seed = v
                        .parse()
                        .map_err(|_| format!("seed={v}: expected an unsigned integer"))?
                }
                _ => {
                    return Err(format!(
                        "unknown key {key:?} (loss, dup, reorder, delay, jitter, corrupt, rate, limit, seed)"
                    ))
                }
            }
        }
        Ok(spec)
    }
}

impl ImpairSpec {
    /// The simulated link of direction `d`.
    pub fn link_config(&self, d: Dir) -> LinkConfig {
        let rate = match d {
            Dir::Tx => self.rate_mbps,
            Dir::Rx => self.rx_rate_mbps,
        };
        LinkConfig {
            rate_bps: rate.map(|r| (r * 1e6) as u64),
            delay: self.delay,
            jitter: self.jitter,
            loss: self.loss,
            reorder: self.reorder,
            // A held-back packet is overtaken by those sent within the
            // next millisecond or so (or the next jitter span).
            reorder_delay: self.jitter.max(Duration::from_millis(1)),
            duplicate: self.dup,
            corrupt: self.corrupt,
            // The device's MTU is the real one; the link adds none.
            mtu: usize::MAX,
            queue_limit: self.limit,
            ce_mark: 0.0,
            ce_queue: None,
        }
    }
}

/// A direction: [`Dir::Tx`] is what the stack sends, [`Dir::Rx`] what it
/// receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Tx,
    Rx,
}

/// Counters of both directions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImpairStats {
    pub tx: LinkStats,
    pub rx: LinkStats,
    /// Packets dropped because `limit` frames were already waiting.
    pub tx_dropped_limit: u64,
    pub rx_dropped_limit: u64,
}

/// A packet waiting for its time.
struct Held<F> {
    at: Instant,
    /// Arrival order among packets due at the same time.
    seq: u64,
    frame: F,
    len: usize,
}

impl<F> PartialEq for Held<F> {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl<F> Eq for Held<F> {}
impl<F> PartialOrd for Held<F> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<F> Ord for Held<F> {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

struct Direction<F> {
    link: Link<F>,
    held: BinaryHeap<Reverse<Held<F>>>,
    seq: u64,
    limit: usize,
    dropped_limit: u64,
}

impl<F: Frame> Direction<F> {
    fn new(spec: &ImpairSpec, d: Dir, seed: u64) -> Self {
        Direction {
            link: Link::new(spec.link_config(d), seed),
            held: BinaryHeap::with_capacity(spec.limit + 1),
            seq: 0,
            limit: spec.limit,
            dropped_limit: 0,
        }
    }

    fn offer(&mut self, now: Instant, frame: F, len: usize, alloc: &mut dyn FnMut() -> Option<F>) {
        let (held, seq, limit, dropped) = (
            &mut self.held,
            &mut self.seq,
            self.limit,
            &mut self.dropped_limit,
        );
        self.link.send(now, frame, len, alloc, &mut |p| {
            if held.len() >= limit {
                *dropped += 1; // Dropping the frame returns it to its pool.
                return;
            }
            *seq += 1;
            held.push(Reverse(Held {
                at: p.at,
                seq: *seq,
                frame: p.frame,
                len: p.len,
            }));
        });
    }

    fn pop_due(&mut self, now: Instant) -> Option<(F, usize)> {
        if self.held.peek().is_some_and(|h| h.0.at <= now) {
            let h = self.held.pop()?.0;
            self.link.stats.delivered += 1;
            return Some((h.frame, h.len));
        }
        None
    }
}

/// Both directions of one device (one queue).
pub struct Impairer<F> {
    tx: Direction<F>,
    rx: Direction<F>,
    epoch: std::time::Instant,
}

impl<F: Frame> Impairer<F> {
    /// The impairments of `spec` for stream `stream` (e.g. the queue
    /// index): each direction gets its own generator.
    pub fn new(spec: &ImpairSpec, stream: u64) -> Self {
        let base = mix(spec.seed ^ mix(stream));
        Impairer {
            tx: Direction::new(spec, Dir::Tx, mix(base ^ 1)),
            rx: Direction::new(spec, Dir::Rx, mix(base ^ 2)),
            epoch: std::time::Instant::now(),
        }
    }

    /// Time on this impairer's clock.
    pub fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn dir(&mut self, d: Dir) -> &mut Direction<F> {
        match d {
            Dir::Tx => &mut self.tx,
            Dir::Rx => &mut self.rx,
        }
    }

    /// Put `frame[..len]` (an Ethernet frame) on direction `d`'s link;
    /// `alloc` gives frames for duplicates.
    pub fn offer(&mut self, d: Dir, frame: F, len: usize, alloc: &mut dyn FnMut() -> Option<F>) {
        let now = self.now();
        self.dir(d).offer(now, frame, len, alloc);
    }

    /// The next packet of direction `d` whose time has come.
    pub fn pop_due(&mut self, d: Dir) -> Option<(F, usize)> {
        let now = self.now();
        self.dir(d).pop_due(now)
    }

    /// Frames waiting in both directions.
    pub fn held(&self) -> usize {
        self.tx.held.len() + self.rx.held.len()
    }

    /// How long until the next waiting packet is due (zero if one is).
    pub fn due_in(&self) -> Option<Duration> {
        let now = self.now();
        [&self.tx, &self.rx]
            .iter()
            .filter_map(|d| d.held.peek().map(|h| h.0.at))
            .min()
            .map(|at| at.saturating_since(now))
    }

    pub fn stats(&self) -> ImpairStats {
        ImpairStats {
            tx: self.tx.link.stats,
            rx: self.rx.link.stats,
            tx_dropped_limit: self.tx.dropped_limit,
            rx_dropped_limit: self.rx.dropped_limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mem::{FramePool, HeapFrame};

    #[test]
    fn spec_parses_and_rejects() {
        let s: ImpairSpec =
            "loss=0.01,dup=1%,reorder=0.2,delay=5,jitter=2.5,corrupt=0,rate=100,seed=7"
                .parse()
                .unwrap();
        assert_eq!(s.loss, 0.01);
        assert!((s.dup - 0.01).abs() < 1e-12);
        assert_eq!(s.delay, Duration::from_millis(5));
        assert_eq!(s.jitter, Duration::from_micros(2500));
        assert_eq!((s.rate_mbps, s.rx_rate_mbps), (Some(100.0), Some(100.0)));
        let a: ImpairSpec = "rate=100/10".parse().unwrap();
        assert_eq!((a.rate_mbps, a.rx_rate_mbps), (Some(100.0), Some(10.0)));
        assert_eq!((s.seed, s.limit), (7, 1000));
        assert_eq!("".parse::<ImpairSpec>(), Ok(ImpairSpec::default()));
        for bad in [
            "loss=2", "loss=x", "dup=101%", "delay=-1", "rate=0", "rate=1/x", "bogus=1", "loss",
            "limit=0",
        ] {
            let e = bad.parse::<ImpairSpec>().unwrap_err();
            assert!(!e.contains('\n') && !e.is_empty(), "{bad}: {e}");
        }
    }

    /// Frames numbered by their first byte, offered 100 µs apart in
    /// simulated time (the real clock is not used: `Direction` directly).
    fn run(spec: &ImpairSpec, n: usize, seed: u64) -> (Vec<u8>, ImpairStats) {
        let pool = FramePool::new(256, 10_000);
        let mut d: Direction<HeapFrame> = Direction::new(spec, Dir::Tx, seed);
        let mut out = Vec::new();
        for i in 0..n {
            let now = Instant::from_micros(i as u64 * 100);
            let mut f = pool.alloc().unwrap();
            f.buf_mut()[..100].fill(i as u8);
            d.offer(now, f, 100, &mut || pool.alloc());
            while let Some((f, _)) = d.pop_due(now) {
                out.push(f.buf()[50]);
            }
        }
        while let Some((f, _)) = d.pop_due(Instant::from_micros(u64::MAX / 2)) {
            out.push(f.buf()[50]);
        }
        let st = ImpairStats {
            tx: d.link.stats,
            tx_dropped_limit: d.dropped_limit,
            ..ImpairStats::default()
        };
        (out, st)
    }

    #[test]
    fn impairments_apply_deterministically_and_frames_come_back() {
        let spec: ImpairSpec = "loss=0.05,dup=0.05,reorder=0.1,delay=2,jitter=1,corrupt=0.05"
            .parse()
            .unwrap();
        let (a, sa) = run(&spec, 2000, 9);
        let (b, _) = run(&spec, 2000, 9);
        let (c, _) = run(&spec, 2000, 10);
        assert_eq!(a, b, "same seed, same decisions");
        assert_ne!(a, c);
        let s = sa.tx;
        assert!((50..150).contains(&s.dropped_loss), "{s:?}");
        assert!((50..150).contains(&s.duplicated), "{s:?}");
        assert!(s.reordered > 100 && s.corrupted > 50, "{s:?}");
        assert_eq!(a.len() as u64, 2000 - s.dropped_loss + s.duplicated);
        assert!(a.windows(2).any(|w| w[1] < w[0]), "reordered");
    }

    #[test]
    fn the_wait_queue_is_bounded_and_a_rate_spaces_packets() {
        // 100-byte frames at 0.8 Mbit/s take 1 ms each: offered every
        // 100 µs, the queue fills and the excess is dropped.
        let spec: ImpairSpec = "rate=0.8,limit=50".parse().unwrap();
        let (out, st) = run(&spec, 1000, 1);
        assert!(out.len() < 200, "{}", out.len());
        assert!(st.tx.dropped_queue + st.tx_dropped_limit > 800, "{st:?}");
    }
}
