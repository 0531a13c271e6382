//! Two stacks back to back through their devices: an active open (with ARP
//! resolution on both sides), 1 MB one way, byte-exact, then an orderly close
//! on both sides and TIME-WAIT on the active closer.

mod common;
use common::*;
use std::time::Duration;
use xdptcp::app::{CloseReason, Event};
use xdptcp::stack::{ConnId, Stack};
use xdptcp::time::Instant;

const TOTAL: usize = 1 << 20;

fn pattern(i: usize) -> u8 {
    (i.wrapping_mul(31) ^ (i >> 9)) as u8
}

#[test]
fn two_stacks_exchange_one_megabyte() {
    let mut a = Stack::new(config(MAC_A, IP_A), TestDevice::new(4096), Instant::ZERO);
    let mut b = Stack::new(config(MAC_B, IP_B), TestDevice::new(4096), Instant::ZERO);
    b.listen(80).unwrap();
    let mut now = Instant::ZERO;
    let ca = a.connect(now, sa(IP_B, 80)).unwrap();
    let mut cb: Option<ConnId> = None;
    let mut sent = 0usize;
    let mut received = Vec::with_capacity(TOTAL);
    let (mut a_closed, mut b_closed) = (false, false);
    let mut b_shut = false;
    let mut a_shut = false;
    let mut a_connected = false;
    let (mut data_frames, mut ect_frames, mut a_frames) = (0usize, 0usize, 0usize);

    for _round in 0..200_000 {
        // Link: everything transmitted arrives at the peer 100 us later.
        let to_b = a.device_mut().take_tx();
        let to_a = b.device_mut().take_tx();
        let in_flight = !to_b.is_empty() || !to_a.is_empty();
        a_frames += to_b.len();
        if in_flight {
            now += Duration::from_micros(100);
        }
        for f in &to_b {
            if let Some(ip) = parse(f).ip {
                if ip.payload_len > 100 {
                    data_frames += 1;
                    // RFC 3168 §6.1.4: new data of an ECN connection is ECT(0).
                    ect_frames += usize::from(ip.ecn == 2);
                }
            }
            rx(&mut b, now, f);
        }
        for f in &to_a {
            rx(&mut a, now, f);
        }

        // App on A: write the pattern as space allows, then FIN.
        while let Some(ev) = a.next_event() {
            match ev {
                Event::Closed { id, reason } => {
                    assert_eq!((id, reason), (ca, CloseReason::Normal));
                    a_closed = true;
                }
                Event::ReadClosed { id } => assert_eq!(id, ca),
                Event::Connected { id } => {
                    assert_eq!(id, ca);
                    a_connected = true;
                }
                Event::Writable { .. } | Event::Readable { .. } => {}
                other => panic!("A: {other:?}"),
            }
        }
        if !a_closed && !a_shut {
            while sent < TOTAL {
                let end = (sent + 16384).min(TOTAL);
                let chunk: Vec<u8> = (sent..end).map(pattern).collect();
                match a.send(ca, &chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => sent += n,
                }
            }
            // RFC 9293 §3.10.4: CLOSE in SYN-SENT deletes the TCB: FIN only
            // once connected.
            if sent == TOTAL && a_connected {
                a.shutdown(ca).unwrap();
                a_shut = true;
            }
        }
        // App on B: read everything; close after the peer's FIN.
        while let Some(ev) = b.next_event() {
            match ev {
                Event::Accepted { id, port } => {
                    assert_eq!(port, 80);
                    cb = Some(id);
                }
                Event::Readable { id } => {
                    b.recv_with(id, &mut |s| {
                        received.extend_from_slice(s);
                        s.len()
                    })
                    .unwrap();
                }
                Event::ReadClosed { id } => {
                    b.recv_with(id, &mut |s| {
                        received.extend_from_slice(s);
                        s.len()
                    })
                    .unwrap();
                    if !b_shut {
                        b.shutdown(id).unwrap();
                        b_shut = true;
                    }
                }
                Event::Closed { reason, .. } => {
                    assert_eq!(reason, CloseReason::Normal);
                    b_closed = true;
                }
                Event::Writable { .. } => {}
                other => panic!("B: {other:?}"),
            }
        }
        a.poll(now);
        b.poll(now);
        if a_closed && b_closed {
            break;
        }
        if !in_flight && a.device().tx.is_empty() && b.device().tx.is_empty() {
            let next = [a.poll_at(), b.poll_at()].into_iter().flatten().min();
            match next {
                Some(t) if t > now => now = t,
                Some(_) => {}
                None => panic!(
                    "stalled at {now:?}: sent {sent} received {}\n{:?}\n{:?}\n{:?}",
                    received.len(),
                    a.counters(),
                    b.counters(),
                    a.conn_stats(ca)
                ),
            }
        }
    }
    assert!(cb.is_some());
    assert_eq!(received.len(), TOTAL);
    assert!(
        received.iter().enumerate().all(|(i, &x)| x == pattern(i)),
        "byte-exact"
    );
    assert!(a_closed && b_closed, "both closed");
    assert_eq!(b.conn_count(), 0, "B closed via LAST-ACK");
    // A lingers in TIME-WAIT until 2 MSL.
    assert_eq!(a.conn_count(), 1);
    let closed_at = now;
    for _ in 0..10 {
        let t = a.poll_at().expect("TIME-WAIT timer");
        a.poll(t);
        now = t;
        if a.conn_count() == 0 {
            break;
        }
    }
    assert_eq!(a.conn_count(), 0);
    // RFC 9293 §3.4.2: 2 MSL (MSL = 30 s by default), counted from A's
    // entry into TIME-WAIT, one link delay before `closed_at`.
    assert!(now.saturating_since(closed_at) >= Duration::from_millis(59_999));
    assert!(now.saturating_since(closed_at) <= Duration::from_millis(60_100));
    assert_eq!(a.counters().conns_closed, 1);
    assert_eq!(a.counters().retransmits, 0);
    // Data left zero-copy (headers written into the send frames' headroom)
    // and ECN was negotiated (both stacks default to ecn = true).
    assert!(
        a.device().ref_tx >= TOTAL / 1460,
        "{} in place",
        a.device().ref_tx
    );
    assert!(data_frames >= TOTAL / 1460);
    assert_eq!(ect_frames, data_frames);
    // Every packet handed to the device is counted.
    assert_eq!(
        a.counters().tx_packets as usize,
        a_frames + a.device().tx.len()
    );
    assert_eq!(b.counters().rx_packets as usize, a_frames);
    assert_eq!(a.device().live.get(), 0);
    assert_eq!(b.device().live.get(), 0);
}
