//! `Connection::send`'s short path: with the queue empty (everything
//! written before acknowledged), a write of at most a segment and the
//! buffer is taken whole without computing `send_capacity`. Here every
//! write, short path or not, must accept exactly min(its length, the
//! capacity asked just before): the short path only where that capacity
//! could not cut it, the general path everywhere else (a queue holding
//! frames, a write beyond the buffer or a segment).

mod tcp_harness;
use tcp_harness::*;
use xdptcp::tcp::Config;

const N: u32 = ISS + 1;

/// `send` of `len` bytes accepts min(len, send_capacity()).
#[track_caller]
fn write(s: &mut Script, len: usize) -> usize {
    let cap = s.c.send_capacity();
    let n = s.send(&vec![3; len]);
    assert_eq!(n, len.min(cap), "write of {len}, capacity {cap}");
    n
}

#[test]
fn a_write_accepts_what_the_capacity_allows_on_either_path() {
    // A small buffer (the floor autotuning starts from), so writes reach it.
    let cfg = Config {
        snd_buf: 2000,
        snd_buf_max: 2000,
        ..cfg()
    };
    let mut s = established(&cfg);
    s.at_ms(20);
    let mut acked = N;
    for round in 0..4u32 {
        // Empty queue, small write: the short path.
        let mut sent = write(&mut s, 64);
        // A queue holding a frame: the general path, up to the buffer.
        sent += write(&mut s, 1200);
        sent += write(&mut s, 1200);
        assert!(
            s.c.send_capacity() < 1200,
            "round {round}: the buffer is full"
        );
        s.poll();
        // Everything acknowledged: the queue empties.
        acked = acked.wrapping_add(sent as u32);
        s.at_ms(30 + 10 * round as u64);
        s.input(pack(acked), &[]);
        s.poll();
        assert_eq!(s.c.in_flight(), 0);
    }
    // Empty queue, a write beyond the buffer: cut by the capacity.
    let small = Config {
        snd_buf: 500,
        snd_buf_max: 500,
        ..cfg
    };
    let mut s = established(&small);
    assert_eq!(write(&mut s, 1000), 500);
}
