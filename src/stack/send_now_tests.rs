//! `send` transmitting at once (`Connection::send_now`, `app_send_dirty`)
//! agrees with the poll round it skips: twin pairs of stacks, one with
//! `send_now` on and one with it off, run the same exchange, one write
//! per side and step (small writes both ways that take the lean path,
//! through `send`, `send_with` and `echo_received`,
//! writes of several segments and writes behind unsent data that do not,
//! Nagle holding a short segment,
//! delayed and immediate ACKs, window updates after late reads, idle
//! restarts after long pauses, two losses with SACK recovery, ECN, FIN),
//! and after every step each side's frames so far, its TCB
//! (`Connection::tcb_digest`), counters, timer-wheel mark and pending
//! application events are compared. An update the lean path skipped (a
//! timer, SND.NXT's bookkeeping, the ACK owed, the wheel) shows as a
//! difference. (Two writes in one turn are where the two differ by
//! design, as Linux's `tcp_push` after each `sendmsg`: the first leaves
//! alone, not coalesced with the second.)

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
    fn mtu(&self) -> usize {
        self.dev.mtu()
    }
}

fn stack(i: u8, send_now: bool) -> Stack<Capture> {
    let tcp = Config {
        send_now,
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
        sent: Vec::new(),
    };
    let mut s = Stack::new(host_config(i, tcp, 13), dev, Instant::ZERO);
    s.arp_insert_static(host_ip(1 - i), host_mac(1 - i));
    s
}

/// Move what `from` sent into `to`; packets whose number (counting from 1
/// over the whole run) is in `lose` are lost.
fn carry(
    from: &mut Stack<Capture>,
    to: &mut Stack<Capture>,
    now: Instant,
    seen: &mut usize,
    lose: &[usize],
) {
    while let Some((w, len)) = from.device_mut().dev.take_tx() {
        *seen += 1;
        if lose.contains(seen) {
            continue;
        }
        if let Some(f) = to.device_mut().dev.rx_frame(&w.buf()[..len]) {
            to.receive(now, f, len);
        }
    }
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

/// Everything of one side the two paths must agree on after a step.
///
/// The timer wheel is lazy: which entry it holds for a connection (and
/// the TCB's mark of a deadline armed below it) depends on whether the
/// write's re-arm ran before or after the poll fired the entries due, so
/// it is not compared; what is, on each side, is that the wheel wakes the
/// connection no later than its next deadline (a re-arm skipped fails it).
fn side_state(s: &Stack<Capture>, id: Option<ConnId>) -> String {
    let conn = id.and_then(|id| s.conns.get(id)).map(|e| {
        if let Some(due) = e.conn.poll_at() {
            assert!(
                e.armed_at.is_some_and(|a| a <= due),
                "the wheel ({:?}) misses the deadline {due:?}",
                e.armed_at
            );
        }
        let digest = e.conn.tcb_digest();
        // The TimerSet's mark for the wheel, `low: N`, left out.
        let digest = match digest.split_once(", low: ") {
            Some((a, b)) => format!("{a}{}", &b[b.find(' ').unwrap_or(0)..]),
            None => digest,
        };
        format!(
            "{digest}\nstats {:?}\ndirty {} readable_queued {} writable_queued {}",
            e.conn.stats(),
            e.dirty,
            e.readable_queued,
            e.writable_queued
        )
    });
    format!(
        "{conn:?}\nevents {:?}\nframes {}",
        s.events,
        s.device().sent.len()
    )
}

/// One run's twin pairs: `(lean, general)`.
struct Twins {
    a: [Stack<Capture>; 2],
    b: [Stack<Capture>; 2],
}

/// Run the exchange on both pairs, comparing them after every step;
/// returns how many writes left at once (lean pair) and the bytes read.
fn run() -> (usize, (usize, usize)) {
    let mut t = Twins {
        a: [stack(0, true), stack(0, false)],
        b: [stack(1, true), stack(1, false)],
    };
    let big = vec![0x3cu8; 6000];
    let mut ca = [None, None];
    let mut cb = [None, None];
    let mut seen = [0usize, 0];
    let mut read = [(0usize, 0usize); 2];
    let mut at_once = [0usize, 0];
    let (mut echoed, mut in_place) = ([0usize, 0], [0usize, 0]);
    let mut echo_at_once = [0usize, 0];
    // Packets lost: data in flight both times, so SACK recovery (where
    // the lean path must step aside) comes between lean writes.
    let lose = [60, 61, 400];
    for ((a, b), c) in t.a.iter_mut().zip(t.b.iter_mut()).zip(ca.iter_mut()) {
        b.listen(PORT).unwrap();
        *c = Some(
            a.connect(Instant::ZERO, SocketAddrV4::new(host_ip(1), PORT))
                .unwrap(),
        );
        a.poll(Instant::ZERO);
    }
    let mut now = Instant::ZERO;
    for step in 0..700u32 {
        // Mostly 300 µs apart; now and then a pause past the RTO (the
        // next write restarts from idle) or past the delayed ACK.
        now += core::time::Duration::from_micros(match step % 97 {
            50 => 3_000_000,
            20 | 70 => 60_000,
            _ => 300,
        });
        for k in 0..2 {
            let (a, b) = (&mut t.a[k], &mut t.b[k]);
            carry(a, b, now, &mut seen[k], &lose);
            carry(b, a, now, &mut seen[k], &lose);
            a.advance_clock(now);
            b.advance_clock(now);
            while let Some(ev) = b.next_event() {
                match ev {
                    Event::Accepted { id, .. } => cb[k] = Some(id),
                    Event::Readable { id } if step % 5 != 2 => read[k].1 += read_all(b, id),
                    _ => {}
                }
            }
            while let Some(ev) = a.next_event() {
                if let Event::Readable { id } = ev {
                    if step % 7 != 3 {
                        read[k].0 += read_all(a, id);
                    }
                }
            }
            let (Some(x), Some(y)) = (ca[k], cb[k]) else {
                a.poll(now);
                b.poll(now);
                continue;
            };
            let mut op = |s: &mut Stack<Capture>, f: &mut dyn FnMut(&mut Stack<Capture>)| {
                let before = s.device().sent.len();
                f(s);
                at_once[k] += (s.device().sent.len() > before) as usize;
            };
            let mut write = |s: &mut Stack<Capture>, id, data: &[u8]| {
                op(s, &mut |s| {
                    let _ = s.send(id, data);
                })
            };
            match step % 6 {
                // Request/response: a small write each way.
                0 if !(300..400).contains(&step) => write(a, x, &[step as u8; 64]),
                // The server echoes what it left unread (its frames lent
                // to the send queue), or writes in place.
                1 if step % 12 == 7 => op(b, &mut |s| {
                    let before = s.device().sent.len();
                    echoed[k] += s.echo_received(y).unwrap_or(0);
                    echo_at_once[k] += (s.device().sent.len() > before) as usize;
                }),
                1 if step % 18 == 13 => op(b, &mut |s| {
                    let mut left = 40usize;
                    in_place[k] += 1;
                    let _ = s.send_with(y, &mut |dst| {
                        let n = dst.len().min(left);
                        dst[..n].fill(0x77);
                        left -= n;
                        n
                    });
                }),
                1 if !(200..300).contains(&step) => write(b, y, &[!(step as u8); 17]),
                // A short write one step after another (Nagle may hold
                // it: the lean path steps aside), a full one after that.
                2 if step % 4 == 2 => write(a, x, &[1; 10]),
                4 if step % 4 == 0 => write(a, x, &[2; 1448]),
                // Several segments: the general path.
                3 if step % 18 == 3 => write(a, x, &big[..(step as usize * 37) % 6000 + 1]),
                5 if step < 600 => write(b, y, &big[..(step as usize * 13) % 3000 + 1]),
                _ => {}
            }
            if step == 620 {
                a.close(x).unwrap();
            }
            if step == 640 {
                b.close(y).unwrap();
            }
            a.poll(now);
            b.poll(now);
        }
        for (side, s, id) in [("client", &t.a, ca), ("server", &t.b, cb)] {
            let (lean, general) = (side_state(&s[0], id[0]), side_state(&s[1], id[1]));
            assert_eq!(lean, general, "step {step}: {side} differs");
            let (l, g) = (&s[0].device().sent, &s[1].device().sent);
            if let Some(i) = (0..l.len()).find(|&i| l[i] != g[i]) {
                panic!("step {step}: {side} frame {i} differs");
            }
        }
    }
    assert_eq!(at_once[1], 0, "the general pair sent from `send`");
    assert!(echoed[0] > 0 && in_place[0] > 0, "{echoed:?} {in_place:?}");
    // An echo of lent frames left at once too.
    assert!(
        echo_at_once[0] > 0 && echo_at_once[1] == 0,
        "{echo_at_once:?}"
    );
    assert_eq!((echoed[0], in_place[0]), (echoed[1], in_place[1]));
    assert_eq!(read[0], read[1], "bytes read");
    let rexmits = t.a[0].counters().retransmits + t.b[0].counters().retransmits;
    assert!(rexmits > 0, "the losses were repaired");
    (at_once[0], read[0])
}

#[test]
fn send_at_once_agrees_with_the_poll_round() {
    let (at_once, read) = run();
    // The lean path was taken, often, both ways.
    assert!(at_once > 100, "{at_once} writes sent at once");
    assert!(read.0 > 10_000 && read.1 > 100_000, "read {read:?}");
}
