//! Stack micro-benchmarks: a bulk transfer between two stacks back to back
//! over a device modelled on AF_XDP's (pooled frames; a transmission of a
//! frame the stack keeps lends it to the peer, as a TX descriptor does,
//! instead of copying it: see `Link`) (receive demux, connection lookup, ACK batching, the
//! zero-copy transmit path and the timer wheel, with the TCP core), and the
//! closed-port path (parse + RST) that a SYN scan exercises, and a 64-byte
//! echo round trip (request, echo, both ACKs piggybacked).
//!
//! `cargo bench --bench stack` (add `-- --quick` for a short run).
//! Instructions per echo round trip (user space, both stacks):
//! `valgrind --tool=callgrind --toggle-collect='*echo_round_trip*'
//! target/release/deps/stack-HASH --bench --test echo` and divide the total
//! by the round trips counted (1,000 per iteration plus 100 of warm-up).
//! The echo server's own part of it: `--toggle-collect='*server_turn*'`.
//! The same with TX checksum offload on both links and the partial
//! checksum accepted, as the stack runs on veth (`--tx-checksum auto`):
//! `--test offload` (its name has no "echo", so `--test echo` does not run
//! it, and its pair is built only when it runs).

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::cell::RefCell;
use std::rc::Rc;
use xdptcp::app::Event;
use xdptcp::io::{Device, Frame};
use xdptcp::stack::{Ipv4Cidr, Stack, StackConfig};
use xdptcp::time::Instant;
use xdptcp::wire::{
    EtherType, EthernetRepr, IpProtocol, Ipv4Repr, MacAddr, SeqNumber, TcpFlags, TcpRepr,
};

const FRAME: usize = 2048;

thread_local! {
    /// The free buffers of the bench's devices: one pool, as one UMEM
    /// shared by both ends (criterion runs the bench on one thread).
    static POOL: RefCell<Vec<Rc<[u8]>>> = const { RefCell::new(Vec::new()) };
}

/// The bench device's frame, modelled on an AF_XDP UMEM chunk: a pooled
/// buffer that a transmission lends to the peer rather than copies (the
/// AF_XDP device's `transmit_ref` puts a descriptor on the TX ring; the
/// kernel, or the NIC, moves the bytes: no user-space copy). The buffer
/// is shared by reference count, so the peer's handle sees the sender's
/// bytes; `off` is where this handle's view starts (the packet's first
/// byte on the receiving side, as the RX descriptor's address). The
/// buffer goes back to its pool when its last handle drops (as a chunk
/// does once its completion, and the peer's read, are done).
struct BenchFrame {
    buf: Rc<[u8]>,
    off: usize,
}

impl Frame for BenchFrame {
    #[inline]
    fn buf(&self) -> &[u8] {
        &self.buf[self.off..]
    }
    #[inline]
    fn buf_mut(&mut self) -> &mut [u8] {
        // Lent (a transmission or the peer's read still holds it): copy
        // on write. The stack asks `can_rewrite` before rewriting a frame
        // it lent, so this is the rare case.
        if Rc::get_mut(&mut self.buf).is_none() {
            self.buf = Rc::from(&self.buf[..]);
        }
        let off = self.off;
        match Rc::get_mut(&mut self.buf) {
            Some(b) => &mut b[off..],
            None => &mut [],
        }
    }
    /// The whole chunk, as AF_XDP charges it, wherever the view starts.
    fn truesize(&self) -> usize {
        self.buf.len()
    }
}

impl Drop for BenchFrame {
    #[inline]
    fn drop(&mut self) {
        // The last handle: the buffer goes back to the pool.
        if Rc::strong_count(&self.buf) == 1 {
            let buf = self.buf.clone();
            POOL.with(|p| p.borrow_mut().push(buf));
        }
    }
}

/// Transmitted frames wait here until `shuttle` hands them to the peer
/// (each with the length of its packet); frames come from a pool and go
/// back to it when their last handle drops, so the measured work is the
/// stacks', not the allocator's. `transmit_ref` lends the frame, as the
/// AF_XDP device does (`src/io/xdp/socket.rs`): no copy, the sender may
/// not rewrite it until the peer is done with it (`can_rewrite`).
/// (Until 2026-12-05 it copied each frame into a new one: alloc, memcpy,
/// push, about 110 instructions per segment that the real device does
/// not do.)
struct Link {
    tx: Vec<(BenchFrame, usize)>,
    /// TX checksum offload (the device sums TCP, as AF_XDP TX metadata
    /// does on veth): the stack writes only the pseudo-header sum.
    offload: bool,
}

impl Default for Link {
    fn default() -> Self {
        Link {
            tx: Vec::with_capacity(64),
            offload: false,
        }
    }
}

/// A buffer the pool has not made yet (only until the pool's peak).
#[cold]
fn new_buf() -> Rc<[u8]> {
    Rc::from(vec![0u8; FRAME])
}

impl Device for Link {
    type Frame = BenchFrame;
    #[inline]
    fn alloc(&mut self) -> Option<BenchFrame> {
        let buf = POOL.with(|p| p.borrow_mut().pop()).unwrap_or_else(new_buf);
        Some(BenchFrame { buf, off: 0 })
    }
    fn transmit(&mut self, mut frame: BenchFrame, start: usize, end: usize) -> bool {
        if start > end || end > frame.buf().len() {
            return false;
        }
        frame.off += start;
        self.tx.push((frame, end - start));
        true
    }
    /// Lends the frame: a second handle on the same buffer, viewed from
    /// `start` (what a TX descriptor says), no copy.
    fn transmit_ref(&mut self, frame: &mut BenchFrame, start: usize, end: usize) -> bool {
        if start > end || end > frame.buf().len() {
            return false;
        }
        let lent = BenchFrame {
            buf: frame.buf.clone(),
            off: frame.off + start,
        };
        self.tx.push((lent, end - start));
        true
    }
    /// Not while the peer (or the link) still holds a lent handle.
    fn can_rewrite(&self, frame: &BenchFrame) -> bool {
        Rc::strong_count(&frame.buf) == 1
    }
    fn mtu(&self) -> usize {
        1500
    }
    fn tx_checksum_offload(&self) -> bool {
        self.offload
    }
}

fn config(last: u8) -> StackConfig {
    let addr = Ipv4Cidr {
        addr: Ipv4Addr::new(198, 18, 0, last),
        prefix: 24,
    };
    StackConfig {
        arp_stale: Duration::from_secs(3600),
        ephemeral_ports: (40000, 60000),
        ..StackConfig::new(MacAddr([2, 0, 0, 0, 0, last]), addr, [last; 16])
    }
}

/// Move frames across the link (moving frame handles, so the receiver
/// reads the payload where the sender wrote it, as two AF_XDP sockets on
/// one UMEM, or a NIC's DMA, would give it); returns whether anything moved.
fn shuttle(from: &mut Stack<Link>, to: &mut Stack<Link>, now: Instant) -> bool {
    // Drained in place: the vector keeps its capacity (no reallocation).
    let tx = &mut from.device_mut().tx;
    let moved = !tx.is_empty();
    for (f, len) in tx.drain(..) {
        to.receive(now, f, len);
    }
    moved
}

/// Transfer `total` bytes from a new connection A -> B; returns bytes read.
fn bulk(total: usize) -> usize {
    let mut a = Stack::new(config(1), Link::default(), Instant::ZERO);
    let mut b = Stack::new(config(2), Link::default(), Instant::ZERO);
    b.listen(80).unwrap();
    let mut now = Instant::ZERO;
    let id = a
        .connect(now, SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80))
        .unwrap();
    let chunk = vec![0x5au8; 64 * 1024];
    let (mut sent, mut read) = (0, 0);
    for _ in 0..1_000_000 {
        while sent < total {
            match a.send(id, &chunk[..(total - sent).min(chunk.len())]) {
                Ok(0) | Err(_) => break,
                Ok(n) => sent += n,
            }
        }
        while a.next_event().is_some() {}
        while let Some(ev) = b.next_event() {
            if let Event::Readable { id } = ev {
                read += b.recv_with(id, &mut |s| s.len()).unwrap();
            }
        }
        if read >= total {
            break;
        }
        a.poll(now);
        b.poll(now);
        now += Duration::from_micros(10);
        let moved = shuttle(&mut a, &mut b, now) | shuttle(&mut b, &mut a, now);
        if !moved {
            if let Some(t) = [a.poll_at(), b.poll_at()].into_iter().flatten().min() {
                now = now.max(t);
            }
        }
    }
    read
}

/// Two stacks with an established connection A -> B (B echoes), ready
/// for 64-byte request/response round trips.
struct EchoPair {
    a: Stack<Link>,
    b: Stack<Link>,
    ca: xdptcp::stack::ConnId,
    cb: xdptcp::stack::ConnId,
    now: Instant,
}

/// `offload`: both links with TX checksum offload and both stacks
/// accepting the partial checksum it leaves, as on veth.
fn echo_pair(offload: bool) -> EchoPair {
    let stack = |last| {
        let cfg = StackConfig {
            accept_partial_checksum: offload,
            ..config(last)
        };
        let link = Link {
            offload,
            ..Link::default()
        };
        Stack::new(cfg, link, Instant::ZERO)
    };
    let (mut a, mut b) = (stack(1), stack(2));
    b.listen(7).unwrap();
    let now = Instant::ZERO;
    let ca = a
        .connect(now, SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 7))
        .unwrap();
    let mut cb = None;
    for _ in 0..100 {
        a.poll(now);
        b.poll(now);
        shuttle(&mut a, &mut b, now);
        shuttle(&mut b, &mut a, now);
        while let Some(ev) = b.next_event() {
            if let Event::Accepted { id, .. } = ev {
                cb = Some(id);
            }
        }
        while a.next_event().is_some() {}
        if cb.is_some() {
            break;
        }
    }
    let mut p = EchoPair {
        a,
        b,
        ca,
        cb: cb.expect("accepted"),
        now,
    };
    // Warm up: frames pooled, ARP and windows settled.
    for _ in 0..100 {
        echo_round_trip(&mut p);
    }
    // The device's lent frames carry the right bytes each way (not
    // counted: outside the measured functions, and it leaves the
    // connection as it found it, everything acknowledged).
    echo_checked(&mut p, 64);
    echo_checked(&mut p, 5000);
    p
}

/// One request of `n` bytes with a pattern, echoed by B as it arrives;
/// panics unless the bytes B reads and the bytes A reads back are the
/// bytes A sent (the bench device's frames lent, not copied, and viewed
/// from their descriptors' offsets).
fn echo_checked(p: &mut EchoPair, n: usize) {
    let req: Vec<u8> = (0..n).map(|i| (i * 7 + 3) as u8).collect();
    let (mut sent, mut at_b, mut at_a) = (0, Vec::new(), Vec::new());
    let mut echoed = 0;
    for _ in 0..1000 {
        if sent < n {
            sent += p.a.send(p.ca, &req[sent..]).unwrap();
        }
        p.now += Duration::from_micros(20);
        p.a.poll(p.now);
        shuttle(&mut p.a, &mut p.b, p.now);
        while let Some(ev) = p.b.next_event() {
            if let Event::Readable { id } = ev {
                p.b.recv_with(id, &mut |s| {
                    at_b.extend_from_slice(s);
                    s.len()
                })
                .unwrap();
            }
        }
        while echoed < at_b.len() {
            match p.b.send(p.cb, &at_b[echoed..]) {
                Ok(0) | Err(_) => break,
                Ok(k) => echoed += k,
            }
        }
        p.b.poll(p.now);
        shuttle(&mut p.b, &mut p.a, p.now);
        while let Some(ev) = p.a.next_event() {
            if let Event::Readable { id } = ev {
                p.a.recv_with(id, &mut |s| {
                    at_a.extend_from_slice(s);
                    s.len()
                })
                .unwrap();
            }
        }
        if at_a.len() >= n {
            break;
        }
    }
    assert!(at_b == req, "the server read other bytes than were sent");
    assert!(at_a == req, "the client read other bytes than were echoed");
    // Every ACK delivered: both sides idle again for the measured runs.
    for _ in 0..4 {
        p.now += Duration::from_micros(20);
        p.a.poll(p.now);
        p.b.poll(p.now);
        shuttle(&mut p.a, &mut p.b, p.now);
        shuttle(&mut p.b, &mut p.a, p.now);
    }
    while p.a.next_event().is_some() {}
    while p.b.next_event().is_some() {}
}

/// One 64-byte request from A, echoed by B, read back by A: two segments
/// (each carrying the ACK of the other), with the event dispatch and
/// polling the runtime does. Never inlined, so callgrind can count
/// instructions per round trip (`--toggle-collect='*echo_round_trip*'`).
#[inline(never)]
fn echo_round_trip(p: &mut EchoPair) {
    let req = [0x42u8; 64];
    p.now += Duration::from_micros(20);
    assert_eq!(p.a.send(p.ca, &req), Ok(64));
    p.a.poll(p.now);
    server_turn(p);
    shuttle(&mut p.b, &mut p.a, p.now);
    let mut got = 0;
    while let Some(ev) = p.a.next_event() {
        if let Event::Readable { id } = ev {
            got += p.a.recv_with(id, &mut |s| s.len()).unwrap();
        }
    }
    assert_eq!(got, 64);
    let _ = p.cb;
}

/// The echo server's work for one request: the request's frame received
/// (with the bench link's hand-over of it), read, echoed, and the answer
/// transmitted (into the bench link). Never inlined, so callgrind can
/// count it alone (`--toggle-collect='*server_turn*'`): what one
/// request/response costs a server.
#[inline(never)]
fn server_turn(p: &mut EchoPair) {
    shuttle(&mut p.a, &mut p.b, p.now);
    let mut buf = [0u8; 64];
    while let Some(ev) = p.b.next_event() {
        if let Event::Readable { id } = ev {
            let n =
                p.b.recv_with(id, &mut |s| {
                    buf[..s.len()].copy_from_slice(s);
                    s.len()
                })
                .unwrap();
            assert_eq!(p.b.send(id, &buf[..n]), Ok(n));
        }
    }
    p.b.poll(p.now);
}

fn syn_frame() -> Vec<u8> {
    let seg = TcpRepr {
        src_port: 5555,
        dst_port: 81,
        seq: SeqNumber(1000),
        flags: TcpFlags::SYN,
        window: 64240,
        ..TcpRepr::default()
    };
    let (src, dst) = (Ipv4Addr::new(198, 18, 0, 2), Ipv4Addr::new(198, 18, 0, 1));
    let h = seg.header_len();
    let mut f = vec![0u8; 34 + h];
    seg.emit(&mut f[34..], src, dst);
    Ipv4Repr::new(src, dst, IpProtocol::Tcp, h).emit(&mut f[14..34]);
    EthernetRepr {
        dst: MacAddr([2, 0, 0, 0, 0, 1]),
        src: MacAddr([2, 0, 0, 0, 0, 2]),
        ethertype: EtherType::Ipv4,
    }
    .emit(&mut f[..14]);
    f
}

fn benches(c: &mut Criterion) {
    const TOTAL: usize = 4 << 20;
    let mut g = c.benchmark_group("stack");
    g.throughput(Throughput::Bytes(TOTAL as u64));
    g.bench_function("bulk_4MiB_back_to_back", |bench| {
        bench.iter(|| assert_eq!(bulk(TOTAL), TOTAL))
    });
    // 1,000 round trips per iteration: under callgrind (`--test` runs one
    // iteration) the instructions of `echo_round_trip` divided by 1,000.
    g.throughput(Throughput::Elements(1000));
    // Each pair is built when its bench first runs, so that a filtered
    // run counts only its own warm-up (100 round trips).
    let mut p = None;
    g.bench_function("echo_64B_round_trips_x1000", |bench| {
        let p = p.get_or_insert_with(|| echo_pair(false));
        bench.iter(|| {
            for _ in 0..1000 {
                echo_round_trip(p);
            }
        })
    });
    // The same round trips with checksum offload (see the module doc).
    let mut q = None;
    g.bench_function("offload_64B_round_trips_x1000", |bench| {
        let q = q.get_or_insert_with(|| echo_pair(true));
        bench.iter(|| {
            for _ in 0..1000 {
                echo_round_trip(q);
            }
        })
    });
    g.throughput(Throughput::Elements(1));
    let mut s = Stack::new(config(1), Link::default(), Instant::ZERO);
    s.arp_insert_static(Ipv4Addr::new(198, 18, 0, 2), MacAddr([2, 0, 0, 0, 0, 2]));
    let syn = syn_frame();
    g.bench_function("syn_to_closed_port_rst", |bench| {
        bench.iter(|| {
            let mut f = s.device_mut().alloc().unwrap();
            f.buf_mut()[..syn.len()].copy_from_slice(&syn);
            s.receive(Instant::ZERO, f, syn.len());
            let (f, _) = s.device_mut().tx.pop().expect("RST");
            drop(f);
        })
    });
    g.finish();
}

criterion_group!(stack, benches);
criterion_main!(stack);
