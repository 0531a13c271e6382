//! The transmit side's rule for frames lent to the device: a segment whose
//! send frame is still in flight (its previous transmission not completed,
//! as on an AF_XDP TX ring) waits and leaves from the same frame once the
//! device is done with it; it is never copied. And a connection's
//! prebuilt headers follow its next hop's MAC.

use crate::app::Event;
use crate::io::mem::scenario::{host_config, host_ip, host_mac};
use crate::io::mem::{FramePool, HeapFrame, SimDevice, FRAME_SIZE};
use crate::io::{Device, Frame};
use crate::stack::{ConnId, Stack};
use crate::tcp::Config;
use crate::time::Instant;
use crate::wire::MacAddr;
use core::net::SocketAddrV4;

const PORT: u16 = 7;

/// A simulated device that lends frames the way the AF_XDP device does: a
/// frame given to `transmit_ref` stays in flight (`can_rewrite` false)
/// until `complete`, as a chunk stays the kernel's until the completion
/// ring returns it.
struct Lending {
    dev: SimDevice,
    /// Buffers (by address) whose transmission has not completed.
    in_flight: Vec<usize>,
    /// `transmit_ref` calls on a frame still in flight (must stay 0).
    rewrites_in_flight: usize,
    /// Packets sent by `transmit_ref` (lent) and by `transmit` (built in
    /// a frame of their own: ACKs, or a copy).
    lent: usize,
    owned: usize,
}

fn key(f: &HeapFrame) -> usize {
    f.buf().as_ptr() as usize
}

impl Lending {
    /// Every transmission completed.
    fn complete(&mut self) {
        self.in_flight.clear();
    }
}

impl Device for Lending {
    type Frame = HeapFrame;
    fn alloc(&mut self) -> Option<HeapFrame> {
        self.dev.alloc()
    }
    fn transmit(&mut self, f: HeapFrame, start: usize, end: usize) -> bool {
        self.owned += 1;
        self.dev.transmit(f, start, end)
    }
    fn transmit_ref(&mut self, f: &mut HeapFrame, start: usize, end: usize) -> bool {
        if self.in_flight.contains(&key(f)) {
            self.rewrites_in_flight += 1;
        }
        self.in_flight.push(key(f));
        self.lent += 1;
        self.dev.transmit_ref(f, start, end)
    }
    fn can_rewrite(&self, f: &HeapFrame) -> bool {
        !self.in_flight.contains(&key(f))
    }
    fn mtu(&self) -> usize {
        self.dev.mtu()
    }
}

fn stack(i: u8) -> Stack<Lending> {
    let tcp = Config {
        timestamps: false,
        ..Config::default()
    };
    let dev = SimDevice::new(
        FramePool::new(FRAME_SIZE, 256),
        FramePool::new(FRAME_SIZE, 256),
        FramePool::new(FRAME_SIZE, 1 << 16),
        1500,
        1 << 16,
    );
    let dev = Lending {
        dev,
        in_flight: Vec::new(),
        rewrites_in_flight: 0,
        lent: 0,
        owned: 0,
    };
    let mut s = Stack::new(host_config(i, tcp, 5), dev, Instant::ZERO);
    let j = 1 - i;
    s.arp_insert_static(host_ip(j), host_mac(j));
    s
}

/// Move what `from` sent into `to` (or drop it all), then let `to` poll.
/// Returns the packets moved.
fn carry(from: &mut Stack<Lending>, to: &mut Stack<Lending>, now: Instant, drop: bool) -> usize {
    let mut n = 0;
    while let Some((w, len)) = from.device_mut().dev.take_tx() {
        n += 1;
        if !drop {
            if let Some(f) = to.device_mut().dev.rx_frame(&w.buf()[..len]) {
                to.receive(now, f, len);
            }
        }
    }
    to.poll(now);
    n
}

/// An established pair: a's connection id and b's.
fn pair(a: &mut Stack<Lending>, b: &mut Stack<Lending>) -> (ConnId, ConnId) {
    b.listen(PORT).unwrap();
    let now = Instant::ZERO;
    let ca = a.connect(now, SocketAddrV4::new(host_ip(1), PORT)).unwrap();
    a.poll(now);
    for _ in 0..3 {
        carry(a, b, now, false);
        carry(b, a, now, false);
    }
    let cb = core::iter::from_fn(|| b.next_event())
        .find_map(|e| match e {
            Event::Accepted { id, .. } => Some(id),
            _ => None,
        })
        .expect("accepted");
    while a.next_event().is_some() {}
    (ca, cb)
}

#[test]
fn a_retransmission_waits_for_its_frame_and_leaves_uncopied() {
    let mut a = stack(0);
    let mut b = stack(1);
    let (ca, cb) = pair(&mut a, &mut b);
    a.device_mut().complete();

    // 100 bytes leave in the send frame itself, and are lost.
    let t0 = Instant::from_millis(10);
    let data = [0x5au8; 100];
    assert_eq!(a.send(ca, &data), Ok(100));
    a.poll(t0);
    assert_eq!(carry(&mut a, &mut b, t0, true), 1);
    assert_eq!(a.device().in_flight.len(), 1);

    // The retransmission timer fires while the device still holds the
    // frame: nothing leaves, no frame is taken for a copy.
    let rtos = |s: &Stack<Lending>| s.conns.get(ca).unwrap().conn.stats().rto_timeouts;
    let mut t = t0;
    for _ in 0..10 {
        t = a.poll_at().expect("timer armed");
        a.poll(t);
        if rtos(&a) > 0 {
            break;
        }
    }
    assert_eq!(rtos(&a), 1);
    assert_eq!(a.device_mut().dev.take_tx().map(|_| ()), None, "copied");
    assert_eq!(a.counters().tx_rewrite_waits, 1);
    let (lent, owned) = (a.device().lent, a.device().owned);
    assert_eq!(a.device_mut().dev.take_tx().map(|_| ()), None);
    a.poll(t);
    assert_eq!(a.device_mut().dev.take_tx().map(|_| ()), None);
    assert_eq!(a.counters().tx_rewrite_waits, 2);

    // Completed: the next poll sends it from the same frame.
    a.device_mut().complete();
    a.poll(t);
    assert_eq!(a.device().lent, lent + 1, "sent from its own frame");
    assert_eq!(a.device().owned, owned, "not copied");
    assert_eq!(a.device().in_flight.len(), 1);
    assert_eq!(carry(&mut a, &mut b, t, false), 1);
    let mut got = Vec::new();
    b.recv_with(cb, &mut |s| {
        got.extend_from_slice(s);
        s.len()
    })
    .unwrap();
    assert_eq!(got, data);
    assert_eq!(a.device().rewrites_in_flight, 0);
    assert_eq!(a.counters().tx_rewrite_waits, 2);
}

/// The connection's prebuilt headers (`tx_template.rs`) follow its next
/// hop's MAC: once ARP holds a new one, the next segment goes there.
#[test]
fn a_connection_s_segments_follow_a_new_next_hop_mac() {
    let mut a = stack(0);
    let mut b = stack(1);
    let (ca, _) = pair(&mut a, &mut b);
    // Two short segments in a row, the first unacknowledged: no Nagle.
    a.set_nodelay(ca, true).unwrap();
    let send_and_see = |a: &mut Stack<Lending>, t: Instant| {
        assert_eq!(a.send(ca, &[7u8; 10]), Ok(10));
        a.poll(t);
        let (w, len) = a.device_mut().dev.take_tx().expect("a segment");
        let pkt = &w.buf()[..len];
        // Ethernet destination, then source; IPv4 header checksum valid.
        assert_eq!(crate::wire::checksum::sum(&pkt[14..34]), 0xffff);
        (
            MacAddr(pkt[..6].try_into().unwrap()),
            MacAddr(pkt[6..12].try_into().unwrap()),
        )
    };
    let t = Instant::from_millis(10);
    assert_eq!(send_and_see(&mut a, t), (host_mac(1), host_mac(0)));
    let moved = MacAddr([0x02, 0, 0, 0, 0, 0x42]);
    a.arp_insert_static(host_ip(1), moved);
    assert_eq!(send_and_see(&mut a, t), (moved, host_mac(0)));
}
