//! The straight transmit path (`tx_template::L2L3Template::write_plain_ts`)
//! writes every frame byte for byte as the general path does (a
//! `TcpRepr` laid out, the whole segment summed, the IPv4 header built):
//! twin pairs of stacks, one with `plain_tx` on and one with it off, run
//! the same exchange (handshake, small and full-sized writes both ways,
//! delayed and immediate ACKs, window updates after reads, a loss with
//! SACK and its recovery, ECN, FIN) and every frame each stack sends is
//! compared. A field left stale in the per-connection block (seq, ack,
//! flags, window, a timestamp, a length, the identification, a checksum)
//! makes them differ.

use crate::app::Event;
use crate::io::mem::scenario::{host_config, host_ip, host_mac};
use crate::io::mem::{FramePool, HeapFrame, SimDevice, FRAME_SIZE};
use crate::io::{Device, Frame};
use crate::stack::{ConnId, Stack};
use crate::tcp::Config;
use crate::time::Instant;
use core::net::SocketAddrV4;

const PORT: u16 = 80;

/// A simulated device that keeps a copy of every frame sent.
struct Capture {
    dev: SimDevice,
    offload: bool,
    sent: Vec<Vec<u8>>,
}

impl Device for Capture {
    type Frame = HeapFrame;
    fn alloc(&mut self) -> Option<HeapFrame> {
        self.dev.alloc()
    }
    fn transmit(&mut self, f: HeapFrame, start: usize, end: usize) -> bool {
        self.sent.push(f.buf()[start..end].to_vec());
        self.dev.transmit(f, start, end)
    }
    fn transmit_ref(&mut self, f: &mut HeapFrame, start: usize, end: usize) -> bool {
        self.sent.push(f.buf()[start..end].to_vec());
        self.dev.transmit_ref(f, start, end)
    }
    fn tx_checksum_offload(&self) -> bool {
        self.offload
    }
    fn mtu(&self) -> usize {
        self.dev.mtu()
    }
}

fn stack(i: u8, plain_tx: bool, offload: bool) -> Stack<Capture> {
    let tcp = Config {
        plain_tx,
        ecn: true,
        ..Config::default()
    };
    let dev = SimDevice::new(
        FramePool::new(FRAME_SIZE, 1024),
        FramePool::new(FRAME_SIZE, 1024),
        FramePool::new(FRAME_SIZE, 1 << 16),
        1500,
        1 << 16,
    );
    let dev = Capture {
        dev,
        offload,
        sent: Vec::new(),
    };
    let mut cfg = host_config(i, tcp, 11);
    cfg.accept_partial_checksum = offload;
    let mut s = Stack::new(cfg, dev, Instant::ZERO);
    s.arp_insert_static(host_ip(1 - i), host_mac(1 - i));
    s
}

/// Move what `from` sent into `to`; the `drop`th packet (counting from
/// 1 over the whole run, 0: none) is lost. Then `to` polls.
fn carry(
    from: &mut Stack<Capture>,
    to: &mut Stack<Capture>,
    now: Instant,
    seen: &mut usize,
    drop: usize,
) {
    while let Some((w, len)) = from.device_mut().dev.take_tx() {
        *seen += 1;
        if *seen == drop {
            continue;
        }
        if let Some(f) = to.device_mut().dev.rx_frame(&w.buf()[..len]) {
            to.receive(now, f, len);
        }
    }
    to.poll(now);
}

fn read_all(s: &mut Stack<Capture>, id: ConnId) -> usize {
    let mut n = 0;
    while let Ok(k) = s.recv_with(id, &mut |b| b.len()) {
        if k == 0 {
            break;
        }
        n += k;
    }
    n
}

/// What one run did.
struct Run {
    /// Every frame each side sent.
    a: Vec<Vec<u8>>,
    b: Vec<Vec<u8>>,
    /// Bytes each side read.
    read: (usize, usize),
    rexmits: u64,
}

fn run(plain_tx: bool, offload: bool) -> Run {
    let (mut a, mut b) = (stack(0, plain_tx, offload), stack(1, plain_tx, offload));
    b.listen(PORT).unwrap();
    let mut now = Instant::ZERO;
    let ca = a.connect(now, SocketAddrV4::new(host_ip(1), PORT)).unwrap();
    a.poll(now);
    let mut cb = None;
    let mut seen = 0;
    // Packet 40 is lost: data in flight, so SACK, recovery and the
    // general path's segments come between straight-path ones.
    let lose = 40;
    let (mut read_a, mut read_b) = (0, 0);
    let big = vec![0x3cu8; 5000];
    for step in 0..400u32 {
        now = Instant::from_micros(u64::from(step) * 700);
        if let Some(id) = cb {
            match step % 7 {
                // From 200 to 300 the client only acknowledges.
                0 if !(200..300).contains(&step) => {
                    let _ = a.send(ca, &[step as u8; 64]);
                }
                // From 100 to 200 the server only acknowledges.
                1 if !(100..200).contains(&step) => {
                    let _ = b.send(id, &[!(step as u8); 17]);
                }
                3 if step % 21 == 3 && !(200..300).contains(&step) => {
                    let _ = a.send(ca, &big[..(step as usize * 37) % 5000 + 1]);
                }
                5 if !(100..200).contains(&step) => {
                    let _ = b.send(id, &big[..(step as usize * 13) % 3000 + 1]);
                }
                _ => {}
            }
            if step == 330 {
                a.close(ca).unwrap();
            }
            if step == 350 {
                b.close(id).unwrap();
            }
        }
        a.poll(now);
        b.poll(now);
        carry(&mut a, &mut b, now, &mut seen, lose);
        carry(&mut b, &mut a, now, &mut seen, lose);
        while let Some(ev) = b.next_event() {
            match ev {
                Event::Accepted { id, .. } => cb = Some(id),
                Event::Readable { id } if step % 3 != 2 => read_b += read_all(&mut b, id),
                _ => {}
            }
        }
        while let Some(ev) = a.next_event() {
            if let Event::Readable { id } = ev {
                read_a += read_all(&mut a, id);
            }
        }
    }
    let rexmits = a.counters().retransmits + b.counters().retransmits;
    let sent = |s: &mut Stack<Capture>| core::mem::take(&mut s.device_mut().sent);
    Run {
        a: sent(&mut a),
        b: sent(&mut b),
        read: (read_a, read_b),
        rexmits,
    }
}

fn twins_send_the_same_frames(offload: bool) {
    let (p, g) = (run(true, offload), run(false, offload));
    for (side, p, g) in [("client", &p.a, &g.a), ("server", &p.b, &g.b)] {
        for (i, (p, g)) in p.iter().zip(g.iter()).enumerate() {
            assert_eq!(p, g, "{side}: frame {i} differs");
        }
        assert_eq!(p.len(), g.len(), "{side}: frames sent");
        // The straight path's form was there: timestamps, ACK, no SYN,
        // the 32-byte TCP header; with and without payload.
        let plain = |len_check: fn(usize) -> bool| {
            p.iter()
                .filter(|f| f.len() >= 66 && f[46] == 0x80 && f[47] & 0x02 == 0)
                .filter(|f| len_check(f.len() - 66))
                .count()
        };
        assert!(plain(|n| n > 0) > 20, "{side}: data segments");
        assert!(plain(|n| n == 0) > 5, "{side}: pure ACKs");
    }
    assert_eq!(p.read, g.read, "bytes read");
    assert!(p.read.0 > 10_000 && p.read.1 > 10_000, "read {:?}", p.read);
    assert!(p.rexmits > 0, "the loss was repaired");
}

#[test]
fn straight_path_frames_match_the_general_path() {
    twins_send_the_same_frames(false);
}

#[test]
fn straight_path_frames_match_the_general_path_with_checksum_offload() {
    twins_send_the_same_frames(true);
}
