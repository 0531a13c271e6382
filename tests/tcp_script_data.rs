//! Packet scripts: the receive path (delayed ACKs, out-of-order, SACK and
//! D-SACK generation, windows, memory pressure) and the send path (Nagle,
//! zero-window probing).

mod tcp_harness;
use tcp_harness::*;
use xdptcp::tcp::State;
use xdptcp::time::Instant;

const N: u32 = ISS + 1;
const M: u32 = PEER_ISS + 1;
const MSS: u32 = 1448;

fn data(seq: u32, len: usize, tsval: u32) -> (xdptcp::tcp::TcpRepr, Vec<u8>) {
    let off = (seq - M) as usize;
    (seg(A, seq, N, 1000).ts(tsval, 10), pattern(off, len))
}

#[test]
fn delayed_ack_and_every_second_segment() {
    let mut s = established(&cfg());
    s.at_ms(20);
    let (h, d) = data(M, 1448, 200);
    assert!(s.io(h, &d).is_empty());
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(60)));
    // The second full-sized segment is ACKed at once.
    let (h, d) = data(M + MSS, 1448, 201);
    let out = s.io(h, &d);
    assert_eq!(out.len(), 1);
    check(&out[0], A, N, M + 2 * MSS, 0);
    assert_eq!(s.c.poll_at(), None);
    // A small segment waits for the delayed-ACK timer.
    s.at_ms(30);
    let (h, d) = data(M + 2 * MSS, 100, 202);
    assert!(s.io(h, &d).is_empty());
    let out = s.fire();
    assert_eq!(s.now, Instant::from_millis(70));
    check(&out[0], A, N, M + 2 * MSS + 100, 0);
    assert_eq!(out[0].seg.options.timestamps, Some((70, 202)));
    assert_eq!(s.read_all(), pattern(0, 2 * 1448 + 100));
    assert_eq!(s.c.stats().bytes_received, 2996);
}

#[test]
fn out_of_order_quick_ack_sack_and_dsack() {
    let mut s = established(&cfg());
    s.at_ms(20);
    // Hole at M..M+1448; segment 2 arrives.
    let (h, d) = data(M + MSS, 1448, 200);
    let out = s.io(h, &d);
    assert_eq!(out.len(), 1, "out-of-order data is ACKed at once");
    check(&out[0], A, N, M, 0);
    assert_eq!(out[0].sack(), vec![(M + MSS, M + 2 * MSS)]);
    // Segment 4 (another hole at 3).
    let (h, d) = data(M + 3 * MSS, 1448, 201);
    let out = s.io(h, &d);
    assert_eq!(
        out[0].sack(),
        vec![(M + 3 * MSS, M + 4 * MSS), (M + MSS, M + 2 * MSS)]
    );
    // Segment 6 and 8: with timestamps at most 3 blocks, newest first.
    let (h, d) = data(M + 5 * MSS, 1448, 202);
    s.io(h, &d);
    let (h, d) = data(M + 7 * MSS, 1448, 203);
    let out = s.io(h, &d);
    assert_eq!(
        out[0].sack(),
        vec![
            (M + 7 * MSS, M + 8 * MSS),
            (M + 5 * MSS, M + 6 * MSS),
            (M + 3 * MSS, M + 4 * MSS)
        ]
    );
    // Segment 3 joins 2..4: the block holding it comes first.
    let (h, d) = data(M + 2 * MSS, 1448, 204);
    let out = s.io(h, &d);
    assert_eq!(
        out[0].sack(),
        vec![
            (M + MSS, M + 4 * MSS),
            (M + 7 * MSS, M + 8 * MSS),
            (M + 5 * MSS, M + 6 * MSS)
        ]
    );
    // Fill the first hole: immediate cumulative ACK.
    let (h, d) = data(M, 1448, 205);
    let out = s.io(h, &d);
    check(&out[0], A, N, M + 4 * MSS, 0);
    assert_eq!(
        out[0].sack(),
        vec![(M + 7 * MSS, M + 8 * MSS), (M + 5 * MSS, M + 6 * MSS)]
    );
    // A duplicate: D-SACK first (RFC 2883), then the other blocks.
    let (h, d) = data(M + MSS, 1448, 206);
    let out = s.io(h, &d);
    check(&out[0], A, N, M + 4 * MSS, 0);
    assert_eq!(
        out[0].sack(),
        vec![
            (M + MSS, M + 2 * MSS),
            (M + 7 * MSS, M + 8 * MSS),
            (M + 5 * MSS, M + 6 * MSS)
        ]
    );
    assert_eq!(s.c.stats().dup_segs_in, 1);
    // Reported once.
    let (h, d) = data(M + 6 * MSS, 1448, 207);
    let out = s.io(h, &d);
    check(&out[0], A, N, M + 4 * MSS, 0);
    assert_eq!(out[0].sack(), vec![(M + 5 * MSS, M + 8 * MSS)]);
    let (h, d) = data(M + 4 * MSS, 1448, 208);
    let out = s.io(h, &d);
    check(&out[0], A, N, M + 8 * MSS, 0);
    assert!(out[0].sack().is_empty());
    assert_eq!(s.read_all(), pattern(0, 8 * 1448));
    assert_eq!(s.c.stats().ooo_segs_in, 6);
}

#[test]
fn partial_overlaps_are_trimmed_zero_copy() {
    let mut s = established(&cfg());
    s.at_ms(20);
    let (h, d) = data(M + 100, 200, 200);
    s.io(h, &d);
    // Overlaps the queued block on both sides.
    let (h, d) = data(M + 50, 400, 201);
    let out = s.io(h, &d);
    assert_eq!(
        out[0].sack()[0],
        (M + 100, M + 300),
        "D-SACK of the overlap"
    );
    let (h, d) = data(M, 60, 202);
    let out = s.io(h, &d);
    check(&out[0], A, N, M + 450, 0);
    assert_eq!(s.read_all(), pattern(0, 450));
}

#[test]
fn nagle_holds_small_segments_until_acked() {
    let mut s = established(&cfg());
    s.at_ms(20);
    s.send(b"aaaa");
    let out = s.poll();
    check(&out[0], A | P, N, M, 4);
    assert!(out[0].in_place);
    s.send(b"bbbb");
    s.send(b"cccc");
    assert!(
        s.poll().is_empty(),
        "Nagle: small segment waits for the ACK"
    );
    s.at_ms(30);
    let out = s.io(pack(N + 4), &[]);
    assert_eq!(out.len(), 1);
    check(&out[0], A | P, N + 4, M, 8);
    assert_eq!(out[0].data, b"bbbbcccc");
    // A full-sized segment is not held.
    let big = vec![7u8; 1448 + 10];
    s.send(&big);
    let out = s.poll();
    assert_eq!(out.len(), 1);
    check(&out[0], A, N + 12, M, 1448);
    // nodelay: the tail goes at once.
    s.c.set_nodelay(true);
    let out = s.poll();
    check(&out[0], A | P, N + 12 + 1448, M, 10);
}

#[test]
fn nodelay_sends_each_write() {
    let mut c = cfg();
    c.nodelay = true;
    let mut s = established(&c);
    s.at_ms(20);
    for i in 0..3u32 {
        s.send(b"xy");
        let out = s.poll();
        check(&out[0], A | P, N + 2 * i, M, 2);
    }
}

#[test]
fn segments_use_mss_and_in_place_frames() {
    let mut s = established(&cfg());
    s.at_ms(20);
    let d = pattern(0, 5000);
    assert_eq!(s.send(&d), 5000);
    let out = s.poll();
    assert_eq!(out.len(), 4);
    let mut got = Vec::new();
    for (i, o) in out.iter().enumerate() {
        assert!(o.in_place);
        assert_eq!(o.seq(), N + i as u32 * MSS);
        got.extend_from_slice(&o.data);
    }
    assert_eq!(got, d);
    assert_eq!(out[3].data.len(), 5000 - 3 * 1448);
    assert_eq!(out[3].flags(), A | P);
    // Partial ACK in the middle of segment 2, then RTO: the retransmission
    // starts at SND.UNA, in place (what precedes it was acked).
    s.io(pack(N + 2000), &[]);
    // A tail loss probe first (RFC 8985 §7): the last segment.
    let out = s.fire();
    check(&out[0], A | P, N + 3 * MSS, M, 5000 - 3 * 1448);
    assert!(out[0].in_place);
    let out = s.fire();
    check(&out[0], A, N + 2000, M, 2 * 1448 - 2000);
    assert!(out[0].in_place);
}

#[test]
fn zero_window_probe_and_persist_backoff() {
    let mut s = established(&cfg());
    s.at_ms(20);
    s.io(seg(A, M, N, 0).ts(200, 10), &[]);
    assert_eq!(s.c.snd_wnd(), 0);
    s.send(&pattern(0, 3000));
    assert!(s.poll().is_empty());
    // Persist at RTO (200 ms), then 400, 800 ms.
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(220)));
    let out = s.fire();
    assert_eq!(out.len(), 1);
    check(&out[0], A, N, M, 1);
    assert!(!out[0].ect);
    // The peer still has no room: it ACKs N with window 0.
    s.io(seg(A, M, N, 0).ts(201, 220), &[]);
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(620)));
    let out = s.fire();
    check(&out[0], A, N, M, 1);
    s.io(seg(A, M, N, 0).ts(202, 620), &[]);
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(1420)));
    assert_eq!(s.c.stats().zero_window_probes, 2);
    // The peer takes the byte and opens its window.
    s.at_ms(700);
    let out = s.io(seg(A, M, N + 1, 100).ts(203, 620), &[]);
    assert_eq!(out.len(), 3);
    // Segments do not span frames: the rest of the first frame goes alone.
    check(&out[0], A, N + 1, M, 1447);
    assert_eq!(out[0].data, pattern(1, 1447));
    check(&out[1], A, N + MSS, M, 1448);
    check(&out[2], A | P, N + 2 * MSS, M, 3000 - 2 * 1448);
}

/// RFC 9293 §3.10.7.4: an ACK of new data updates the window even when
/// its SEG.SEQ is below SND.WL1 (issue 8): out-of-order data set SND.WL1
/// ahead, then the peer's segments came back to RCV.NXT (Linux sends a
/// pure ACK at the right edge of a window we keep closed). Its answers to
/// our zero-window probes opened its window and were ignored: one byte
/// per persist interval, for good.
#[test]
fn ack_of_new_data_updates_the_window_below_snd_wl1() {
    let mut s = established(&cfg());
    s.at_ms(20);
    // Out of order (a hole at M), the peer's window shut: SND.WL1 = M + MSS.
    s.io(
        seg(A, M + MSS, N, 0).ts(200, 10),
        &pattern(MSS as usize, 1448),
    );
    assert_eq!(s.c.snd_wnd(), 0);
    s.send(&pattern(0, 3000));
    assert!(s.poll().is_empty());
    let out = s.fire();
    assert_eq!(out.len(), 1);
    check(&out[0], A, N, M, 1);
    // The peer takes the probe and opens its window, from SEG.SEQ = M.
    s.at_ms(300);
    let out = s.io(seg(A, M, N + 1, 100).ts(201, 220), &[]);
    assert_eq!(s.c.snd_wnd(), 100 << 7, "window update ignored");
    assert_eq!(out.len(), 3);
    check(&out[0], A, N + 1, M, 1447);
    check(&out[2], A | P, N + 2 * MSS, M, 3000 - 2 * 1448);
    assert_eq!(s.c.stats().zero_window_probes, 1);
}

#[test]
fn receive_window_closes_and_reopens_without_shrinking() {
    let mut c = cfg();
    c.rcv_buf = 8 * FRAME_SIZE;
    // Our window in steps of 128 bytes (the scripts' `<< 7`): with the
    // shift the 16 MiB ceiling would give (9), the edge already offered
    // (never moved left, RFC 7323 §2.4) keeps 1,024 bytes open after
    // the 8 frames are full, and the window never reads 0.
    c.window_scale = Some(7);
    let mut s = established(&c);
    s.at_ms(20);
    let mut seq = M;
    let mut right = 0u64;
    let mut ts = 200;
    let mut acks = Vec::new();
    loop {
        let (h, d) = data(seq, 1448, ts);
        ts += 1;
        let out = s.io(h, &d);
        let out = if out.is_empty() { s.fire() } else { out };
        let o = &out[0];
        let edge = o.ack() as u64 + ((o.seg.window as u64) << 7);
        assert!(edge >= right, "right edge moved left");
        right = edge;
        seq = o.ack();
        acks.push(o.seg.window);
        if o.seg.window == 0 || acks.len() > 20 {
            break;
        }
    }
    assert_eq!(*acks.last().unwrap(), 0, "window closed: {acks:?}");
    // Segment beyond the closed window is dropped with an ACK.
    let (h, d) = data(seq, 100, ts);
    let out = s.io(h, &d);
    check(&out[0], A, N, seq, 0);
    assert_eq!(out[0].seg.window, 0);
    // Reading opens the window: a window update is sent.
    let got = s.read_all();
    assert_eq!(got, pattern(0, (seq - M) as usize));
    let out = s.poll();
    assert_eq!(out.len(), 1);
    assert!(out[0].seg.window > 0);
}

#[test]
fn memory_pressure_collapses_small_out_of_order_segments() {
    let mut c = cfg();
    c.rcv_buf = 8 * FRAME_SIZE;
    let mut s = established(&c);
    s.at_ms(20);
    // 40 tiny contiguous segments behind a hole of 10 bytes.
    for i in 0..40u32 {
        let (h, d) = data(M + 10 + i * 10, 10, 200 + i);
        s.io(h, &d);
        assert!(s.c.rcv_mem() <= 8 * FRAME_SIZE);
    }
    assert!(s.c.stats().collapsed >= 30, "{:?}", s.c.stats());
    assert_eq!(s.c.stats().rcv_mem_drops, 0);
    let (h, d) = data(M, 10, 300);
    let out = s.io(h, &d);
    check(&out[0], A, N, M + 410, 0);
    assert_eq!(s.read_all(), pattern(0, 410));
    assert_eq!(s.c.rcv_mem(), 0);
}

#[test]
fn memory_pressure_drops_uncollapsible_out_of_order_data() {
    let mut c = cfg();
    c.rcv_buf = 8 * FRAME_SIZE;
    let mut s = established(&c);
    s.at_ms(20);
    // Discontiguous tiny segments cannot be collapsed: bounded, counted.
    for i in 0..40u32 {
        let (h, d) = data(M + 20 + i * 20, 10, 200 + i);
        s.io(h, &d);
        assert!(s.c.rcv_mem() <= 8 * FRAME_SIZE);
    }
    assert!(s.c.stats().rcv_mem_drops > 0);
    // In-order data still gets in (out-of-order data makes room).
    let (h, d) = data(M, 20, 300);
    let out = s.io(h, &d);
    check(&out[0], A, N, M + 30, 0);
    assert_eq!(s.read_all(), pattern(0, 30));
}

#[test]
fn data_before_handshake_completes_is_queued() {
    let mut s = xdptcp_connect();
    assert_eq!(s.send(b"early"), 5);
    s.at_ms(10);
    let out = s.io(seg(S | A, PEER_ISS, ISS + 1, 65535).mss(1460), &[]);
    assert_eq!(s.c.state(), State::Established);
    // The ACK carries the data.
    assert_eq!(out.len(), 1);
    check(&out[0], A | P, N, M, 5);
}

fn xdptcp_connect() -> Script {
    let c = xdptcp::tcp::Connection::connect(
        &cfg(),
        tuple(),
        xdptcp::tcp::SeqNumber(ISS),
        Instant::ZERO,
    );
    let mut s = Script::new(c);
    s.poll();
    s
}

#[test]
fn zero_window_still_takes_ack_and_bare_fin() {
    let mut c = cfg();
    c.rcv_buf = 4 * FRAME_SIZE;
    let mut s = established(&c);
    s.at_ms(20);
    s.send(b"req");
    s.poll();
    // Fill the window without reading.
    let mut seq = M;
    let mut ts = 200;
    loop {
        let (h, d) = data(seq, 1448, ts);
        ts += 1;
        let mut out = s.io(h, &d);
        if out.is_empty() {
            out = s.fire();
        }
        let o = out.last().unwrap();
        if o.ack() == seq {
            break; // dropped: window closed
        }
        seq = o.ack();
        if o.seg.window == 0 {
            break;
        }
    }
    // Data at RCV.NXT with a zero window: dropped, but its ACK counts.
    let out = s.io(seg(A, seq, N + 3, 1000).ts(ts, 0), &pattern(0, 100));
    check(&out[0], A, N + 3, seq, 0);
    assert!(s.c.send_queue_empty());
    // A bare FIN is accepted.
    let out = s.io(seg(F | A, seq, N + 3, 1000).ts(ts + 1, 0), &[]);
    check(&out[0], A, N + 3, seq + 1, 0);
    assert_eq!(s.c.state(), State::CloseWait);
}

#[test]
fn persist_never_gives_up_while_the_peer_answers() {
    let mut c = cfg();
    c.max_retries = 3;
    c.user_timeout = Some(std::time::Duration::from_secs(5));
    let mut s = established(&c);
    s.at_ms(20);
    s.io(seg(A, M, N, 0).ts(200, 10), &[]);
    s.send(&pattern(0, 100));
    s.poll();
    for i in 0..12u32 {
        let out = s.fire();
        assert_eq!(out.len(), 1, "probe {i}");
        check(&out[0], A, N, M, 1);
        s.io(seg(A, M, N, 0).ts(201 + i, 0), &[]);
        assert_eq!(s.c.state(), State::Established);
    }
    // Persist interval is capped by rto_max (60 s).
    assert!(s.c.poll_at().unwrap() <= s.now + std::time::Duration::from_secs(60));
    // Unanswered probes: give up after max_retries (or the user timeout).
    let mut n = 0;
    while s.c.state() != State::Closed && n < 10 {
        s.fire();
        n += 1;
    }
    assert_eq!(s.c.state(), State::Closed);
    assert!(s.c.take_events().timed_out());
}

#[test]
fn receiver_sws_no_tiny_window_updates() {
    let mut c = cfg();
    c.rcv_buf = 8 * FRAME_SIZE;
    // Our window in steps of 128 bytes (the scripts' `<< 7`): with the
    // shift the 16 MiB ceiling would give (9), the edge already offered
    // (never moved left, RFC 7323 §2.4) keeps 1,024 bytes open after
    // the 8 frames are full, and the window never reads 0.
    c.window_scale = Some(7);
    let mut s = established(&c);
    s.at_ms(20);
    // Fill until the window is closed.
    let mut seq = M;
    for ts in 200..220 {
        let (h, d) = data(seq, 1448, ts);
        let mut out = s.io(h, &d);
        if out.is_empty() {
            out = s.fire();
        }
        let o = out.last().unwrap();
        if o.ack() == seq || o.seg.window == 0 {
            seq = o.ack();
            break;
        }
        seq = o.ack();
    }
    // Reading a few bytes frees no frame: no window update.
    let mut buf = [0u8; 10];
    assert_eq!(s.c.recv(&mut buf), 10);
    assert!(s.poll().is_empty());
    // One frame freed is worth ~1330 bytes of window (payload/truesize):
    // less than an MSS, still no update (RFC 1122 §4.2.3.3).
    let mut big = vec![0u8; 1438];
    s.c.recv(&mut big);
    assert!(s.poll().is_empty());
    // Two frames: update.
    let mut big = vec![0u8; 1448];
    s.c.recv(&mut big);
    let out = s.poll();
    assert_eq!(out.len(), 1);
    check(&out[0], A, N, seq, 0);
    assert!((out[0].seg.window as usize) << 7 >= 1448);
}
