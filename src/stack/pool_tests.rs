//! Two stacks over simulated devices, wired by hand (no link model), to
//! check the TX reserve, the fair share, the `Writable` wake-up and RX
//! pruning exactly.

use super::*;
use crate::io::mem::scenario::{host_config, host_ip, host_mac};
use crate::io::mem::{FramePool, SimDevice, FRAME_SIZE};
use crate::io::Frame;
use crate::stack::{ConnId, Stack};
use crate::tcp::Config;
use crate::time::Instant;
use core::net::SocketAddrV4;
use core::time::Duration;

const PORT: u16 = 7;

fn stack(i: u8, tx: usize, rx: usize, pool: PoolConfig) -> Stack<SimDevice> {
    let tcp = Config {
        timestamps: false,
        // Room for a burst of 48 segments in the RX test.
        initial_window: 64,
        // The pool is what limits here, not the send buffer (the old
        // fixed default).
        snd_buf: 4 << 20,
        snd_buf_max: 4 << 20,
        ..Config::default()
    };
    let mut cfg = host_config(i, tcp, 3);
    cfg.pool = pool;
    let dev = SimDevice::new(
        FramePool::new(FRAME_SIZE, tx),
        FramePool::new(FRAME_SIZE, rx),
        FramePool::new(FRAME_SIZE, 1 << 16),
        1500,
        1 << 16,
    );
    let mut s = Stack::new(cfg, dev, Instant::ZERO);
    let j = 1 - i;
    s.arp_insert_static(host_ip(j), host_mac(j));
    s
}

/// Move every packet `from` transmitted into `to` (`drop` filters by
/// packet index), then let `to` answer. Returns packets moved.
fn carry(
    from: &mut Stack<SimDevice>,
    to: &mut Stack<SimDevice>,
    now: Instant,
    drop: &mut dyn FnMut(usize) -> bool,
) -> usize {
    let mut n = 0;
    while let Some((w, len)) = from.device_mut().take_tx() {
        if !drop(n) {
            if let Some(f) = to.device_mut().rx_frame(&w.buf()[..len]) {
                to.receive(now, f, len);
            }
        }
        n += 1;
    }
    to.poll(now);
    n
}

fn events<D: Device>(s: &mut Stack<D>) -> Vec<Event> {
    core::iter::from_fn(|| s.next_event()).collect()
}

/// A connected pair: `conns` connections from a to b, b's side accepted.
fn pair(a: &mut Stack<SimDevice>, b: &mut Stack<SimDevice>, conns: usize) -> Vec<(ConnId, ConnId)> {
    b.listen(PORT).unwrap();
    let now = Instant::ZERO;
    let ids: Vec<ConnId> = (0..conns)
        .map(|_| a.connect(now, SocketAddrV4::new(host_ip(1), PORT)).unwrap())
        .collect();
    a.poll(now);
    for _ in 0..3 {
        carry(a, b, now, &mut |_| false);
        carry(b, a, now, &mut |_| false);
    }
    let mut accepted = Vec::new();
    for ev in events(b) {
        if let Event::Accepted { id, .. } = ev {
            accepted.push(id);
        }
    }
    events(a);
    assert_eq!(accepted.len(), conns);
    ids.into_iter().zip(accepted).collect()
}

#[test]
fn default_reserve_sizes() {
    assert_eq!(default_reserve(None), 64);
    assert_eq!(default_reserve(Some(2048)), 128);
    assert_eq!(default_reserve(Some(1024)), 64);
    assert_eq!(default_reserve(Some(256)), 64);
    // A small pool keeps three quarters for data.
    assert_eq!(default_reserve(Some(64)), 16);
    assert_eq!(default_reserve(Some(1 << 16)), 4096);
    assert_eq!(hysteresis(128), 32);
    assert_eq!(hysteresis(16), 8);
}

#[test]
fn application_data_stops_at_the_reserve_and_waiters_wake() {
    let mut a = stack(0, 256, 256, PoolConfig::default());
    let mut b = stack(1, 256, 256, PoolConfig::default());
    let ids = pair(&mut a, &mut b, 3);
    assert_eq!(a.pool.tx_reserve, 64);
    let mss = a.conns.get(ids[0].0).unwrap().conn.snd_mss();
    assert_eq!(a.device().free_frames(), Some(256));

    // The first writer takes every frame above the reserve, no more.
    let data = vec![0x5a; 1 << 20];
    let n0 = a.send(ids[0].0, &data).unwrap();
    assert_eq!(n0, 192 * mss);
    assert_eq!(a.device().free_frames(), Some(64));
    assert_eq!(a.counters().tx_pool_short_writes, 1);
    // The others get nothing (and had nothing queued) and wait.
    assert_eq!(a.send(ids[1].0, &data).unwrap(), 0);
    assert_eq!(a.send(ids[2].0, &data).unwrap(), 0);
    assert_eq!(a.counters().tx_pool_short_writes, 3);
    // Conn 0 was cut short by the pool too: it waits first.
    let waiting: Vec<ConnId> = a.pool.waiters.iter().copied().collect();
    assert_eq!(waiting, vec![ids[0].0, ids[1].0, ids[2].0]);
    // A second short write does not queue a connection twice.
    assert_eq!(a.send(ids[1].0, &data).unwrap(), 0);
    assert_eq!(a.pool.waiters.len(), 3);
    assert!(!a.pool_wake_due());

    // Control traffic still finds frames: b sends data, a ACKs it.
    let now = Instant::ZERO;
    assert_eq!(b.send(ids[0].1, b"ping").unwrap(), 4);
    b.poll(now);
    carry(&mut b, &mut a, now, &mut |_| false);
    let mut got = [0u8; 8];
    assert_eq!(a.recv(ids[0].0, &mut got).unwrap(), 4);
    assert_eq!(a.counters().tx_no_frame, 0);

    // Run until conn 0's data is acknowledged; the waiters get Writable
    // (in order) though they never had data queued.
    let mut woken = Vec::new();
    let mut t = now;
    for _ in 0..200 {
        t += Duration::from_millis(1);
        a.poll(t);
        carry(&mut a, &mut b, t, &mut |_| false);
        for ev in events(&mut b) {
            if let Event::Readable { id } = ev {
                while b.recv_with(id, &mut |s| s.len()).unwrap() > 0 {}
            }
        }
        b.poll(t);
        carry(&mut b, &mut a, t, &mut |_| false);
        for ev in events(&mut a) {
            if let Event::Writable { id } = ev {
                woken.push(id);
            }
        }
        if a.pool.waiters.is_empty() {
            break;
        }
    }
    assert_eq!(woken, vec![ids[0].0, ids[1].0, ids[2].0]);
    // Conn 0's own ACKs queued its Writable (its buffer had room again);
    // the pool added the other two.
    assert_eq!(a.counters().tx_pool_wakeups, 2);
    assert!(a.pool.waiters.is_empty());
    assert!(a.device().free_frames().unwrap() >= 64 + hysteresis(64));
}

#[test]
fn waiters_get_a_fair_share() {
    let mut a = stack(0, 256, 256, PoolConfig::default());
    let mut b = stack(1, 256, 256, PoolConfig::default());
    let ids = pair(&mut a, &mut b, 4);
    let mss = a.conns.get(ids[0].0).unwrap().conn.snd_mss();
    let data = vec![1u8; 1 << 20];
    // Conn 0 fills to the reserve; 1 and 2 wait.
    a.send(ids[0].0, &data).unwrap();
    assert_eq!(a.send(ids[1].0, &data).unwrap(), 0);
    assert_eq!(a.send(ids[2].0, &data).unwrap(), 0);
    // Free 100 frames (conn 0 aborts: its send buffer goes back).
    a.abort(ids[0].0).unwrap();
    let free = a.device().free_frames().unwrap();
    assert_eq!(free, 256);
    // With two waiters, conn 3 gets a third of the 192 frames above the
    // reserve, and waits too.
    assert_eq!(a.data_frame_budget(), Some(64));
    assert_eq!(a.send(ids[3].0, &data).unwrap(), 64 * mss);
    assert_eq!(a.pool.waiters.len(), 3);
    // The closed connection's entry would be skipped; the live ones wake.
    a.poll(Instant::ZERO);
    let woken: Vec<ConnId> = events(&mut a)
        .into_iter()
        .filter_map(|e| match e {
            Event::Writable { id } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(woken, vec![ids[1].0, ids[2].0, ids[3].0]);
}

#[test]
fn closing_a_waiter_removes_it() {
    let mut a = stack(0, 128, 128, PoolConfig::default());
    let mut b = stack(1, 128, 128, PoolConfig::default());
    let ids = pair(&mut a, &mut b, 2);
    let data = vec![1u8; 1 << 20];
    a.send(ids[0].0, &data).unwrap();
    assert_eq!(a.send(ids[1].0, &data).unwrap(), 0);
    assert_eq!(a.pool.waiters.len(), 2);
    a.abort(ids[1].0).unwrap();
    let waiting: Vec<ConnId> = a.pool.waiters.iter().copied().collect();
    assert_eq!(waiting, vec![ids[0].0]);
}

#[test]
fn explicit_reserves() {
    let pool = PoolConfig {
        tx_reserve: Some(10),
        rx_reserve: Some(5),
    };
    let a = stack(0, 100, 50, pool);
    assert_eq!((a.pool.tx_reserve, a.pool.rx_reserve), (10, 5));
    assert_eq!(a.data_frame_budget(), Some(90));
}

#[test]
fn rx_pressure_prunes_out_of_order_data_and_the_transfer_completes() {
    // b's RX pool: 64 frames, reserve 32. a sends 48 segments and the
    // first is lost: 47 out-of-order frames would leave 17 free.
    let mut a = stack(0, 1024, 1024, PoolConfig::default());
    let rx = PoolConfig {
        tx_reserve: None,
        rx_reserve: Some(32),
    };
    let mut b = stack(1, 1024, 64, rx);
    let ids = pair(&mut a, &mut b, 1);
    let mss = a.conns.get(ids[0].0).unwrap().conn.snd_mss();
    // An initial window of 64 segments sends them in one burst.
    let total = 48 * mss;
    let data: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    assert_eq!(a.send(ids[0].0, &data).unwrap(), total);
    let mut t = Instant::ZERO;
    let mut got = Vec::new();
    let mut first = true;
    for _ in 0..5000 {
        a.poll(t);
        let lose_first = core::mem::take(&mut first);
        carry(&mut a, &mut b, t, &mut |i| lose_first && i == 0);
        // Pruning happened inside b.poll: never below the reserve after it.
        assert!(b.device().rx_free_frames().unwrap() >= 32);
        while b
            .recv_with(ids[0].1, &mut |s| {
                got.extend_from_slice(s);
                s.len()
            })
            .unwrap()
            > 0
        {}
        events(&mut b);
        b.poll(t);
        carry(&mut b, &mut a, t, &mut |_| false);
        events(&mut a);
        if got.len() == total {
            break;
        }
        t += Duration::from_millis(5);
    }
    assert!(got == data, "{} of {} bytes", got.len(), total);
    let c = b.counters();
    assert!(c.rx_ooo_pruned >= 1, "{c:?}");
    assert_eq!(c.rx_pool_starved, 0);
    assert_eq!(b.device().stats().rx_no_frame, 0);
}

#[test]
fn unread_in_order_data_is_reported_not_rescanned_every_poll() {
    // b's RX pool: 64 frames, reserve 32; 40 in-order segments that the
    // application leaves unread hold 40 frames: nothing to prune.
    let mut a = stack(0, 1024, 1024, PoolConfig::default());
    let rx = PoolConfig {
        tx_reserve: None,
        rx_reserve: Some(32),
    };
    let mut b = stack(1, 1024, 64, rx);
    let ids = pair(&mut a, &mut b, 1);
    let mss = a.conns.get(ids[0].0).unwrap().conn.snd_mss();
    let data = vec![7u8; 40 * mss];
    assert_eq!(a.send(ids[0].0, &data).unwrap(), data.len());
    let t = Instant::from_millis(1);
    a.poll(t);
    carry(&mut a, &mut b, t, &mut |_| false);
    assert_eq!(b.device().rx_free_frames(), Some(24));
    assert_eq!(b.counters().rx_pool_starved, 1);
    assert_eq!(b.counters().rx_ooo_pruned, 0);
    // No rescan within RESCAN; one after it.
    b.poll(t + Duration::from_micros(999));
    assert_eq!(b.counters().rx_pool_starved, 1);
    b.poll(t + RESCAN);
    assert_eq!(b.counters().rx_pool_starved, 2);
    // The application reads: the frames come back.
    let mut n = 0;
    while let Ok(k @ 1..) = b.recv_with(ids[0].1, &mut |s| s.len()) {
        n += k;
    }
    assert_eq!(n, data.len());
    assert_eq!(b.device().rx_free_frames(), Some(64));
    b.poll(t + RESCAN * 2);
    assert_eq!(b.counters().rx_pool_starved, 2);
    assert_eq!(b.pool.starved_at, None);
}

/// A device that cannot tell its free frames (the trait defaults).
struct Opaque(SimDevice);

impl Device for Opaque {
    type Frame = crate::io::mem::HeapFrame;
    fn alloc(&mut self) -> Option<Self::Frame> {
        self.0.alloc()
    }
    fn transmit(&mut self, f: Self::Frame, start: usize, end: usize) -> bool {
        self.0.transmit(f, start, end)
    }
    fn transmit_ref(&mut self, f: &mut Self::Frame, start: usize, end: usize) -> bool {
        self.0.transmit_ref(f, start, end)
    }
    fn mtu(&self) -> usize {
        self.0.mtu()
    }
}

#[test]
fn unknown_pool_size_wakes_waiters_when_a_frame_is_free() {
    let s = stack(0, 128, 128, PoolConfig::default());
    let cfg = s.config().clone();
    let dev = SimDevice::new(
        FramePool::new(FRAME_SIZE, 128),
        FramePool::new(FRAME_SIZE, 128),
        FramePool::new(FRAME_SIZE, 1 << 16),
        1500,
        1 << 16,
    );
    let mut a = Stack::new(cfg, Opaque(dev), Instant::ZERO);
    a.arp_insert_static(host_ip(1), host_mac(1));
    assert_eq!(a.pool.tx_reserve, MIN_RESERVE);
    assert_eq!(a.data_frame_budget(), None);
    // Two active opens (still in SYN-SENT, which accepts data): the wake
    // path only needs visible connections with send space.
    let c0 = a
        .connect(Instant::ZERO, SocketAddrV4::new(host_ip(1), PORT))
        .unwrap();
    let c1 = a
        .connect(Instant::ZERO, SocketAddrV4::new(host_ip(1), PORT + 1))
        .unwrap();
    let data = vec![0u8; 1 << 20];
    // SYN-SENT accepts data; with no size known it takes the whole pool.
    assert!(a.send(c0, &data).unwrap() > 0);
    assert_eq!(a.device_mut().0.alloc().map(|_| ()), None);
    assert_eq!(a.send(c1, &data).unwrap(), 0);
    assert_eq!(a.pool.waiters.len(), 2);
    // No frame free: no wake-up.
    a.poll(Instant::ZERO);
    assert!(!events(&mut a)
        .iter()
        .any(|e| matches!(e, Event::Writable { .. })));
    // Frames come back (c0 aborted): the next poll probes and wakes c1.
    a.abort(c0).unwrap();
    a.poll(Instant::ZERO);
    let woken: Vec<ConnId> = events(&mut a)
        .into_iter()
        .filter_map(|e| match e {
            Event::Writable { id } => Some(id),
            _ => None,
        })
        .collect();
    assert_eq!(woken, vec![c1]);
    assert!(a.pool.waiters.is_empty());
}
