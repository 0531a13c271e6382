//! Packet scripts: opening handshakes and option negotiation (RFC 9293
//! §3.5, RFC 7323, RFC 2018, RFC 3168 §6.1.1), SYN retransmission.

mod tcp_harness;
use tcp_harness::*;
use xdptcp::tcp::{Connection, SeqNumber, State, TcpFlags};
use xdptcp::time::Instant;

#[test]
fn active_open_negotiates_options() {
    let c = Connection::connect(&cfg(), tuple(), SeqNumber(ISS), Instant::ZERO);
    let mut s = Script::new(c);
    assert_eq!(s.c.state(), State::SynSent);
    let out = s.poll();
    assert_eq!(out.len(), 1);
    check(&out[0], S, ISS, 0, 0);
    let o = &out[0].seg.options;
    assert_eq!(o.mss, Some(1460));
    // RFC 7323 §2.3: the shift that lets the window reach the receive
    // ceiling (16 MiB by default: 65535 << 9 is the first above it).
    assert_eq!(o.window_scale, Some(9));
    assert!(o.sack_permitted);
    assert_eq!(o.timestamps, Some((0, 0)));
    // RFC 7323 §2.2: SYN window unscaled, at most 65535.
    assert_eq!(out[0].seg.window, 65535);
    assert!(s.poll().is_empty(), "no spinning");
    // SYN-ACK with MSS 1000, wscale 3, SACK, TS.
    s.at_ms(10);
    let sa = seg(S | A, PEER_ISS, ISS + 1, 20000)
        .mss(1000)
        .ws(3)
        .sack_perm()
        .ts(77, 0);
    let out = s.io(sa, &[]);
    assert_eq!(s.c.state(), State::Established);
    assert!(s.c.take_events().connected());
    assert_eq!(out.len(), 1);
    check(&out[0], A, ISS + 1, PEER_ISS + 1, 0);
    assert_eq!(out[0].seg.options.timestamps, Some((10, 77)));
    assert_eq!(out[0].seg.options.mss, None);
    // MSS 1000 less 12 bytes of timestamps.
    assert_eq!(s.c.snd_mss(), 988);
    // Window in the SYN-ACK was not scaled.
    assert_eq!(s.c.snd_wnd(), 20000);
    // RTT from the SYN.
    assert_eq!(s.c.srtt(), Some(std::time::Duration::from_millis(10)));
    // The window we advertise is scaled by our shift 7.
    let w = out[0].seg.window as usize;
    assert!(w > 0 && w < 65535);
}

#[test]
fn passive_open_accept_negotiates_subset() {
    let syn = seg(S, PEER_ISS, 0, 8192).mss(1200).sack_perm();
    let c = Connection::accept(&cfg(), tuple(), &syn, SeqNumber(ISS), Instant::ZERO);
    let mut s = Script::new(c);
    assert_eq!(s.c.state(), State::SynReceived);
    let out = s.poll();
    assert_eq!(out.len(), 1);
    check(&out[0], S | A, ISS, PEER_ISS + 1, 0);
    let o = &out[0].seg.options;
    assert_eq!(o.mss, Some(1460));
    // Peer sent no wscale and no timestamps: we must not send them.
    assert_eq!(o.window_scale, None);
    assert_eq!(o.timestamps, None);
    assert!(o.sack_permitted);
    s.at_ms(5);
    let out = s.io(seg(A, PEER_ISS + 1, ISS + 1, 8192), &[]);
    assert!(out.is_empty());
    assert_eq!(s.c.state(), State::Established);
    assert!(s.c.take_events().connected());
    // No scaling: the window is taken as is; MSS = min(1200, 1460).
    assert_eq!(s.c.snd_wnd(), 8192);
    assert_eq!(s.c.snd_mss(), 1200);
}

#[test]
fn listen_syn_synack_ack_and_data() {
    let mut s = Script::new(Connection::listen(&cfg(), tuple(), SeqNumber(ISS)));
    assert_eq!(s.c.state(), State::Listen);
    // A stray ACK to a listener gets <SEQ=SEG.ACK><CTL=RST>.
    let out = s.io(seg(A, 1, 777, 100), &[]);
    assert_eq!(out.len(), 1);
    check(&out[0], R, 777, 0, 0);
    // A RST is ignored.
    assert!(s.io(seg(R, 1, 0, 0), &[]).is_empty());
    let syn = seg(S, PEER_ISS, 0, 65535)
        .mss(1460)
        .ws(2)
        .sack_perm()
        .ts(50, 0);
    let out = s.io(syn, &[]);
    assert_eq!(s.c.state(), State::SynReceived);
    check(&out[0], S | A, ISS, PEER_ISS + 1, 0);
    assert_eq!(out[0].seg.options.window_scale, Some(9));
    assert_eq!(out[0].seg.options.timestamps, Some((0, 50)));
    // A retransmitted SYN makes us resend the SYN-ACK.
    let out = s.io(syn, &[]);
    assert_eq!(out.len(), 1);
    check(&out[0], S | A, ISS, PEER_ISS + 1, 0);
    // Final ACK with data.
    s.at_ms(3);
    let out = s.io(seg(A | P, PEER_ISS + 1, ISS + 1, 100).ts(51, 0), b"hello");
    assert_eq!(s.c.state(), State::Established);
    let ev = s.c.take_events();
    assert!(ev.connected() && ev.readable());
    assert_eq!(s.read_all(), b"hello");
    // Delayed ACK: nothing yet, timer at 3 + 40 ms.
    assert!(out.is_empty(), "{out:?}");
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(43)));
    let out = s.fire();
    check(&out[0], A, ISS + 1, PEER_ISS + 6, 0);
    // Scaled send window: 100 << 2.
    assert_eq!(s.c.snd_wnd(), 400);
}

#[test]
fn rst_in_syn_received_returns_to_listen() {
    let mut s = Script::new(Connection::listen(&cfg(), tuple(), SeqNumber(ISS)));
    s.io(seg(S, PEER_ISS, 0, 65535), &[]);
    assert_eq!(s.c.state(), State::SynReceived);
    s.io(seg(R, PEER_ISS + 1, 0, 0), &[]);
    assert_eq!(s.c.state(), State::Listen);
}

#[test]
fn bad_ack_in_syn_received_gets_rst() {
    let syn = seg(S, PEER_ISS, 0, 8192);
    let c = Connection::accept(&cfg(), tuple(), &syn, SeqNumber(ISS), Instant::ZERO);
    let mut s = Script::new(c);
    s.poll();
    let out = s.io(seg(A, PEER_ISS + 1, ISS + 50, 8192), &[]);
    assert_eq!(out.len(), 1);
    check(&out[0], R, ISS + 50, 0, 0);
    assert_eq!(s.c.state(), State::SynReceived);
}

#[test]
fn simultaneous_open() {
    let c = Connection::connect(&cfg(), tuple(), SeqNumber(ISS), Instant::ZERO);
    let mut s = Script::new(c);
    s.poll();
    // The peer's SYN crosses ours.
    let out = s.io(
        seg(S, PEER_ISS, 0, 65535)
            .mss(1460)
            .ws(7)
            .sack_perm()
            .ts(9, 0),
        &[],
    );
    assert_eq!(s.c.state(), State::SynReceived);
    assert_eq!(out.len(), 1);
    check(&out[0], S | A, ISS, PEER_ISS + 1, 0);
    // The peer's SYN-ACK completes it.
    let out = s.io(
        seg(S | A, PEER_ISS, ISS + 1, 65535)
            .mss(1460)
            .ws(7)
            .sack_perm()
            .ts(10, 0),
        &[],
    );
    // A SYN in SYN-RECEIVED that is not a plain retransmission: challenge.
    assert_eq!(s.c.state(), State::SynReceived);
    assert_eq!(out.len(), 1);
    let out = s.io(seg(A, PEER_ISS + 1, ISS + 1, 1000).ts(10, 0), &[]);
    assert!(out.is_empty());
    assert_eq!(s.c.state(), State::Established);
    assert!(s.c.take_events().connected());
}

#[test]
fn syn_retransmission_backoff_and_timeout() {
    let mut c = cfg();
    c.syn_retries = 3;
    let mut s = Script::new(Connection::connect(
        &c,
        tuple(),
        SeqNumber(ISS),
        Instant::ZERO,
    ));
    assert_eq!(s.poll().len(), 1);
    // RFC 6298 §2.1/§5.5: 1 s, then 2 s, 4 s.
    let mut t = 0;
    for (i, gap) in [1000u64, 2000, 4000].iter().enumerate() {
        t += gap;
        assert_eq!(s.c.poll_at(), Some(Instant::from_millis(t)), "retry {i}");
        let out = s.fire();
        assert_eq!(out.len(), 1);
        check(&out[0], S, ISS, 0, 0);
        assert_eq!(out[0].seg.options.timestamps, Some((t as u32, 0)));
    }
    t += 8000;
    assert_eq!(s.c.poll_at(), Some(Instant::from_millis(t)));
    assert!(s.fire().is_empty());
    assert_eq!(s.c.state(), State::Closed);
    let ev = s.c.take_events();
    assert!(ev.closed() && ev.timed_out());
    assert_eq!(s.c.poll_at(), None);
    assert_eq!(s.c.stats().rto_timeouts, 4);
}

#[test]
fn syn_sent_rejects_bad_ack_and_accepts_rst() {
    let mut s = Script::new(Connection::connect(
        &cfg(),
        tuple(),
        SeqNumber(ISS),
        Instant::ZERO,
    ));
    s.poll();
    // Unacceptable ACK: RST <SEQ=SEG.ACK>.
    let out = s.io(seg(S | A, PEER_ISS, ISS + 7, 1000), &[]);
    assert_eq!(out.len(), 1);
    check(&out[0], R, ISS + 7, 0, 0);
    assert_eq!(s.c.state(), State::SynSent);
    // A RST without an acceptable ACK is dropped.
    assert!(s.io(seg(R, 0, 0, 0), &[]).is_empty());
    assert_eq!(s.c.state(), State::SynSent);
    // RST with acceptable ACK: connection refused.
    s.io(seg(R | A, 0, ISS + 1, 0), &[]);
    assert_eq!(s.c.state(), State::Closed);
    let ev = s.c.take_events();
    assert!(ev.closed() && ev.reset());
}

/// RFC 7323 §2.3: our shift follows the receive ceiling (as Linux's
/// `tcp_select_initial_window`) unless the configuration pins one, and
/// our advertised windows are scaled by it.
#[test]
fn our_window_scale_from_the_receive_ceiling_or_pinned() {
    for (rcv_buf, rcv_buf_max, pinned, want) in [
        (1 << 20, 0, None, 5),
        (256 << 10, 256 << 10, None, 3),
        (4 << 20, 64 << 20, None, 11),
        (4 << 20, 1 << 30, None, 14),
        (4 << 20, 64 << 20, Some(7), 7),
        (4 << 20, 64 << 20, Some(20), 14),
    ] {
        let mut c = cfg();
        (c.rcv_buf, c.rcv_buf_max, c.window_scale) = (rcv_buf, rcv_buf_max, pinned);
        let conn = Connection::connect(&c, tuple(), SeqNumber(ISS), Instant::ZERO);
        let mut s = Script::new(conn);
        let out = s.poll();
        let what = format!("{rcv_buf} {rcv_buf_max} {pinned:?}");
        assert_eq!(out[0].seg.options.window_scale, Some(want), "{what}");
        s.at_ms(10);
        let out = s.io(seg(S | A, PEER_ISS, ISS + 1, 65535).mss(1460).ws(0), &[]);
        assert_eq!(s.c.state(), State::Established);
        // The ACK's window: half the buffer before any frame was seen
        // (`advertised_window_is_scaled_and_from_memory`), over 2^shift.
        let wnd = (rcv_buf / 2).min(65535 << want);
        assert_eq!(
            out[0].seg.window as usize,
            wnd.div_ceil(1 << want),
            "{what}"
        );
    }
}

#[test]
fn window_scale_clamped_to_14_and_applied() {
    let c = Connection::connect(&cfg(), tuple(), SeqNumber(ISS), Instant::ZERO);
    let mut s = Script::new(c);
    s.poll();
    s.io(seg(S | A, PEER_ISS, ISS + 1, 65535).mss(1460).ws(20), &[]);
    // The SYN-ACK window is not scaled.
    assert_eq!(s.c.snd_wnd(), 65535);
    s.io(seg(A, PEER_ISS + 1, ISS + 1, 3), &[]);
    assert_eq!(s.c.snd_wnd(), 3 << 14);
}

#[test]
fn ecn_negotiation() {
    let mut c = cfg();
    c.ecn = true;
    let mut s = Script::new(Connection::connect(
        &c,
        tuple(),
        SeqNumber(ISS),
        Instant::ZERO,
    ));
    let out = s.poll();
    assert_eq!(out[0].flags(), S | TcpFlags::ECE | TcpFlags::CWR);
    assert!(!out[0].ect);
    // Passive side answers ECE only.
    let syn = seg(S | TcpFlags::ECE | TcpFlags::CWR, PEER_ISS, 0, 1000);
    let mut p = Script::new(Connection::accept(
        &c,
        tuple(),
        &syn,
        SeqNumber(ISS),
        Instant::ZERO,
    ));
    let out = p.poll();
    assert_eq!(out[0].flags(), S | A | TcpFlags::ECE);
    // Without ECN on our side: plain SYN-ACK.
    let mut p = Script::new(Connection::accept(
        &cfg(),
        tuple(),
        &syn,
        SeqNumber(ISS),
        Instant::ZERO,
    ));
    assert_eq!(p.poll()[0].flags(), S | A);
}

#[test]
fn from_cookie_is_established_with_cookie_options() {
    // What the cookie encoded: ISN 5000, MSS 1400, wscale 5, SACK, TS.
    let syn = seg(S, PEER_ISS, 0, 0).mss(1400).ws(5).sack_perm().ts(40, 0);
    // The final ACK echoes our SYN-ACK's TSval (sent at 100 ms).
    let ack = seg(A, PEER_ISS + 1, ISS + 1, 100).ts(41, 100);
    let now = Instant::from_millis(130);
    let c = Connection::from_cookie(&cfg(), tuple(), &syn, SeqNumber(ISS), &ack, now);
    let mut s = Script::new(c);
    s.at_ms(130);
    assert_eq!(s.c.state(), State::Established);
    assert!(s.c.take_events().connected());
    assert_eq!(s.c.snd_wnd(), 100 << 5);
    assert_eq!(s.c.snd_mss(), 1400 - 12);
    assert_eq!(s.c.srtt(), Some(std::time::Duration::from_millis(30)));
    s.send(b"hi");
    let out = s.poll();
    check(&out[0], A | P, ISS + 1, PEER_ISS + 1, 2);
    assert_eq!(out[0].seg.options.timestamps, Some((130, 41)));
}

#[test]
fn syn_ack_retransmitted_then_timeout() {
    let mut c = cfg();
    c.syn_retries = 2;
    let syn = seg(S, PEER_ISS, 0, 8192);
    let mut s = Script::new(Connection::accept(
        &c,
        tuple(),
        &syn,
        SeqNumber(ISS),
        Instant::ZERO,
    ));
    assert_eq!(s.poll().len(), 1);
    let out = s.fire();
    assert_eq!(s.now, Instant::from_millis(1000));
    check(&out[0], S | A, ISS, PEER_ISS + 1, 0);
    let out = s.fire();
    assert_eq!(s.now, Instant::from_millis(3000));
    check(&out[0], S | A, ISS, PEER_ISS + 1, 0);
    assert!(s.fire().is_empty());
    assert_eq!(s.c.state(), State::Closed);
    assert!(s.c.take_events().timed_out());
}

#[test]
fn lost_syn_means_initial_window_of_one() {
    let mut s = Script::new(Connection::connect(
        &cfg(),
        tuple(),
        SeqNumber(ISS),
        Instant::ZERO,
    ));
    s.poll();
    s.fire();
    s.at_ms(1010);
    s.io(seg(S | A, PEER_ISS, ISS + 1, 65535).mss(1460), &[]);
    // RFC 6928 §2 / RFC 5681 §3.1: one segment after a retransmitted SYN.
    assert_eq!(s.c.cwnd(), 1460);
    // Karn: no sample from the retransmitted SYN without timestamps echo.
    assert_eq!(s.c.srtt(), None);
}

#[test]
fn advertised_window_is_scaled_and_from_memory() {
    let mut c = cfg();
    c.rcv_buf = 1 << 20;
    let mut s = Script::new(Connection::connect(
        &c,
        tuple(),
        SeqNumber(ISS),
        Instant::ZERO,
    ));
    let out = s.poll();
    // Half the buffer before any frame was seen (payload/truesize 1/2),
    // capped to 65535 in the SYN.
    assert_eq!(out[0].seg.window, 65535);
    s.at_ms(10);
    let out = s.io(seg(S | A, PEER_ISS, ISS + 1, 65535).mss(1460).ws(7), &[]);
    // Scaled by our shift (from the receive ceiling, RFC 7323 §2.3).
    assert_eq!(out[0].seg.window, ((1 << 19) >> c.rcv_wscale()) as u16);
}

#[test]
fn from_cookie_accepts_data_right_away() {
    let syn = seg(S, PEER_ISS, 0, 0).mss(1460).ws(7).sack_perm().ts(40, 0);
    let ack = seg(A, PEER_ISS + 1, ISS + 1, 100).ts(41, 100);
    let now = Instant::from_millis(130);
    let c = Connection::from_cookie(&cfg(), tuple(), &syn, SeqNumber(ISS), &ack, now);
    let mut s = Script::new(c);
    s.at_ms(131);
    // Data within the window the cookie SYN-ACK offered.
    s.io(seg(A | P, PEER_ISS + 1, ISS + 1, 100).ts(42, 100), b"GET /");
    assert_eq!(s.read_all(), b"GET /");
}
