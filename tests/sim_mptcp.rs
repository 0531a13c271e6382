//! MPTCP v1 on one subflow in the simulator: both stacks MPTCP over clean
//! and impaired links (loss, reordering, duplication, corruption), with and
//! without the DSS checksum, bulk both ways, every byte checked; and the
//! fallbacks: an MPTCP client against a plain server, a plain client
//! against an MPTCP server, each connection completing as plain TCP.

mod common;

use common::sim::{link, run_complete, run_exact};
use core::time::Duration;
use xdptcp::apps::bulk::RrConfig;
use xdptcp::io::mem::scenario::{default_queue, run_bulk, BulkParams, BulkReport};
use xdptcp::io::mem::Limits;

fn params(seed: u64, mptcp: [bool; 2], checksum: bool) -> BulkParams {
    BulkParams {
        bytes: 1 << 20,
        conns: 4,
        bidir: true,
        seed,
        mptcp,
        mptcp_checksum: checksum,
        link: link(100, 5, 0.0),
        limits: Limits {
            time: Duration::from_secs(600),
            ..Limits::default()
        },
        ..BulkParams::default()
    }
}

/// `p` (from `params`, both ways) run to completion, every byte checked.
#[track_caller]
fn run_both_ways(p: &BulkParams) -> BulkReport {
    let ctx = format!("mptcp {:?} link {:?}", p.mptcp, p.link);
    run_exact(p, p.bytes * p.conns as u64 * 2, &ctx)
}

#[test]
fn mptcp_bulk_both_ways_clean_and_impaired() {
    for (seed, checksum, loss, reorder, dup, corrupt) in [
        (1, false, 0.0, 0.0, 0.0, 0.0),
        (2, true, 0.0, 0.0, 0.0, 0.0),
        (3, false, 0.02, 0.05, 0.01, 0.0),
        (4, true, 0.02, 0.05, 0.01, 0.005),
        (5, true, 0.05, 0.0, 0.0, 0.0),
    ] {
        let mut p = params(seed, [true, true], checksum);
        p.link.loss = loss;
        p.link.reorder = reorder;
        p.link.duplicate = dup;
        p.link.corrupt = corrupt;
        let r = run_both_ways(&p);
        let [c, s] = &r.stacks;
        let ctx = format!("seed {seed}: {c:?} {s:?}");
        assert_eq!(c.mptcp_established, p.conns as u64, "{ctx}");
        assert_eq!(s.mptcp_established, p.conns as u64, "{ctx}");
        for st in [c, s] {
            assert_eq!(st.mptcp_fallbacks, 0, "{ctx}");
            assert_eq!(st.mptcp_bad_options, 0, "{ctx}");
            assert_eq!(st.mptcp_checksum_failures, 0, "{ctx}");
            assert_eq!(st.mptcp_mapping_mismatches, 0, "{ctx}");
        }
    }
}

#[test]
fn mptcp_client_against_plain_server_falls_back() {
    let r = run_both_ways(&params(7, [true, false], false));
    let [c, s] = &r.stacks;
    assert_eq!(c.mptcp_fallbacks, 4);
    assert_eq!(c.mptcp_established + s.mptcp_established, 0);
    assert_eq!(s.mptcp_fallbacks, 0, "the server was never asked");
}

#[test]
fn plain_client_against_mptcp_server_is_plain_tcp() {
    let r = run_both_ways(&params(8, [false, true], false));
    let [c, s] = &r.stacks;
    assert_eq!(c.mptcp_established + s.mptcp_established, 0);
    assert_eq!(c.mptcp_fallbacks + s.mptcp_fallbacks, 0);
}

/// Two paths (`xdptcp sim --paths 2`): each host has an interface and a
/// stack per path, as a worker with two `--iface`s; the client's path
/// manager joins over path 2 and our scheduler sends over both; path 2
/// dies mid-way and the transfer completes intact, its data reinjected.
#[test]
fn two_paths_one_dying_mid_transfer() {
    let mut p = params(7, [true, true], false);
    p.conns = 1;
    p.bidir = false;
    p.bytes = 4 << 20;
    p.link.rate_bps = Some(10_000_000);
    p.extra_paths = vec![p.link.clone()];
    p.path_down = Some((1, Duration::from_millis(1000)));
    let r = run_complete(&p, "path 2 down at 1 s");
    let [p1, _] = r.paths[0];
    let [p2, p2_back] = r.paths[1];
    println!(
        "path 1 {} bytes, path 2 {} bytes, {} lost while down",
        p1.tx_bytes,
        p2.tx_bytes,
        p2.dropped_down + p2_back.dropped_down
    );
    assert!(p2.tx_bytes > 500_000, "path 2 carried {}", p2.tx_bytes);
    assert!(p2.dropped_down > 0);
    assert!(r.stacks[0].mptcp_reinjections > 0);
}

/// Issue 8: the connection survives its FIRST subflow. Path 1 (the
/// first subflow's, holding the application's handle and the
/// connection-level queues) dies 1 s in: each side's first subflow
/// stalls, what it held goes again over path 2, its subflow role ends
/// (`mptcp_first_subflow_ended`) and the DATA_FINs ride path 2's FINs.
/// The transfer completes intact and both ends close normally; one way
/// (the client sends, the server receives) and both ways. Both ends are
/// our stack, so each run has us as client and as server.
#[test]
fn first_path_dying_mid_transfer() {
    for bidir in [false, true] {
        let mut p = params(7, [true, true], false);
        p.conns = 1;
        p.bidir = bidir;
        p.bytes = 4 << 20;
        p.link.rate_bps = Some(10_000_000);
        p.extra_paths = vec![p.link.clone()];
        p.path_down = Some((0, Duration::from_millis(1000)));
        let ctx = format!("bidir {bidir}");
        let r = run_complete(&p, &ctx);
        let c = &r.connections[0];
        assert_eq!(
            (c.client_close.as_str(), c.server_close.as_str()),
            ("normal", "normal"),
            "{ctx}"
        );
        let [p1, p1_back] = r.paths[0];
        let [p2, p2_back] = r.paths[1];
        println!(
            "first path down at 1 s ({ctx}): path 1 {} + {} bytes, path 2 {} + {} bytes, \
             {} lost while down, {:.2} Mbit/s, first subflows ended {}/{}",
            p1.tx_bytes,
            p1_back.tx_bytes,
            p2.tx_bytes,
            p2_back.tx_bytes,
            p1.dropped_down + p1_back.dropped_down,
            r.goodput_mbps,
            r.stacks[0].mptcp_first_subflow_ended,
            r.stacks[1].mptcp_first_subflow_ended
        );
        assert!(p1.dropped_down + p1_back.dropped_down > 0, "{ctx}");
        assert!(
            p2.tx_bytes > 2 << 20,
            "{ctx}: path 2 carried {}",
            p2.tx_bytes
        );
        for s in &r.stacks {
            assert_eq!(s.mptcp_first_subflow_ended, 1, "{ctx}: {s:?}");
            assert_eq!(s.mptcp_mapping_mismatches, 0, "{ctx}");
        }
        assert!(r.stacks[0].mptcp_reinjections > 0, "{ctx}");
    }
}

/// RFC 8684 §3.3.6: the first path dies while the server has given all
/// its data out and has nothing new to write (requests and responses:
/// the response stranded on the dead first subflow is all there is until
/// the next request, which waits for it). Nothing new asks the scheduler,
/// so only the data-level retransmission timer (`tcp::conn::mptcp_rto`)
/// sends it again on the other subflow; without it the exchange stalled
/// (`xdptcp sim --bytes 1000 --conns 1 --requests 20 --req-size 1000
/// --resp-size 200000 --rate-mbps 10 --delay-ms 5 --mptcp --path 10,5
/// --path-down 1@150 --time-limit 20 --seed 11`: 257380 bytes in 20 s).
#[test]
fn first_path_dying_with_nothing_new_to_send() {
    for down_ms in [150, 300, 500] {
        let mut p = params(11, [true, true], false);
        p.conns = 1;
        p.bidir = false;
        p.bytes = 1000;
        p.work.rr = Some(RrConfig {
            requests: 20,
            req: (1000, 1000),
            resp: (200_000, 200_000),
        });
        let rate_bps = Some(10_000_000);
        p.link.rate_bps = rate_bps;
        p.link.queue_limit = default_queue(rate_bps, p.link.delay);
        p.extra_paths = vec![p.link.clone()];
        p.path_down = Some((0, Duration::from_millis(down_ms)));
        // 4 MB at 10 Mbit/s takes about 4 s: a stall runs into the limit.
        p.limits.time = Duration::from_secs(20);
        let ctx = format!("path 1 down at {down_ms} ms");
        let r = run_complete(&p, &ctx);
        let rtos: u64 = r.stacks.iter().map(|s| s.mptcp_data_rtos).sum();
        println!(
            "{ctx}: {} bytes in {:.0} virtual ms, data-level timeouts {rtos}",
            r.bytes, r.virtual_ms
        );
    }
}

/// One connection client to server over `paths` (rate Mbit/s, one-way
/// delay ms, loss), `bytes` long; the report.
fn over_paths(seed: u64, bytes: u64, paths: &[(u64, u64, f64)], lia: bool) -> BulkReport {
    over_paths_with(seed, bytes, paths, lia, |_| {})
}

/// `over_paths` with the parameters adjusted by `tweak` last.
fn over_paths_with(
    seed: u64,
    bytes: u64,
    paths: &[(u64, u64, f64)],
    lia: bool,
    tweak: impl FnOnce(&mut BulkParams),
) -> BulkReport {
    let link = |&(rate, delay, loss): &(u64, u64, f64)| link(rate, delay, loss);
    let mut p = params(seed, [true, true], false);
    p.conns = 1;
    p.bidir = false;
    p.bytes = bytes;
    p.link = link(&paths[0]);
    p.extra_paths = paths[1..].iter().map(link).collect();
    if lia {
        p.mptcp_cc = xdptcp::tcp::MptcpCc::Lia;
    }
    tweak(&mut p);
    run_complete(&p, &format!("{paths:?}"))
}

/// RFC 8684 / issue goal: over two equal rate-limited paths one MPTCP
/// connection moves well above one path's worth (goal 1.8x; the figure is
/// printed), and each path carries a share.
#[test]
fn two_equal_paths_aggregate() {
    let one = over_paths(11, 8 << 20, &[(10, 10, 0.0)], false);
    let two = over_paths(11, 8 << 20, &[(10, 10, 0.0), (10, 10, 0.0)], false);
    let ratio = two.goodput_mbps / one.goodput_mbps;
    println!(
        "two 10 Mbit/s paths: {:.2} Mbit/s vs one path {:.2} Mbit/s = {ratio:.2}x",
        two.goodput_mbps, one.goodput_mbps
    );
    for (i, [c2s, _]) in two.paths.iter().enumerate() {
        println!("  path {}: {} bytes client to server", i + 1, c2s.tx_bytes);
        assert!(
            c2s.tx_bytes > (8 << 20) / 4,
            "path {} carried {}",
            i + 1,
            c2s.tx_bytes
        );
    }
    assert!(ratio >= 1.8, "{ratio:.2}x");
}

/// Issue goal: 30 Mbit/s at 1 ms plus 10 Mbit/s at 50 ms give at least
/// 90 % of the sum of the two (36 Mbit/s; printed, with the share of
/// what one plain TCP connection moves on each path alone, in the same
/// run). 64 MiB, so that the slow path's start (ARP and the join take
/// two of its round trips, slow start five more) is not most of the
/// transfer. Without opportunistic retransmission and penalisation
/// this was 34.36 Mbit/s: the fast path sat idle while the
/// connection-level window waited for data in the slow path's queue,
/// and at the end of the stream for the slow path's last bytes.
#[test]
fn fast_and_slow_paths_reach_90_percent_of_the_sum() {
    let paths = [(30, 1, 0.0), (10, 50, 0.0)];
    let plain = |path| {
        over_paths_with(12, 64 << 20, &paths[path..=path], false, |p| {
            p.mptcp = [false, false]
        })
    };
    let (fast, slow) = (plain(0), plain(1));
    let both = over_paths(12, 64 << 20, &paths, false);
    let sum = fast.goodput_mbps + slow.goodput_mbps;
    let c = &both.stacks[0];
    println!(
        "30/1ms + 10/50ms: {:.2} Mbit/s = {:.1} % of 40, {:.1} % of plain TCP alone on each \
         ({:.2} + {:.2}); {} opportunistic retransmissions, {} penalisations",
        both.goodput_mbps,
        both.goodput_mbps / 40.0 * 100.0,
        both.goodput_mbps / sum * 100.0,
        fast.goodput_mbps,
        slow.goodput_mbps,
        c.mptcp_opportunistic_retransmits,
        c.mptcp_penalisations,
    );
    assert!(both.goodput_mbps >= 36.0, "{:.2} Mbit/s", both.goodput_mbps);
    assert!(c.mptcp_opportunistic_retransmits > 0);
    assert!(c.mptcp_penalisations > 0);
}

/// The same paths with a receive buffer (1 MiB of frames) far below what
/// the slow path's round trip and queue need: lowest-RTT-first alone
/// moved 20.45 Mbit/s, less than the fast path alone (28.10), the window
/// held by the slow path most of the time. Re-sending the oldest data on
/// the fast path and halving the slow path's window keeps the connection
/// above the fast path alone.
#[test]
fn window_held_by_the_slow_path_is_not_head_of_line_blocked() {
    let paths = [(30, 1, 0.0), (10, 50, 0.0)];
    let fast = over_paths(12, 16 << 20, &paths[..1], false);
    let both = over_paths_with(12, 16 << 20, &paths, false, |p| p.rcv_buf = Some(1 << 20));
    let c = &both.stacks[0];
    println!(
        "rcv-buf 1M, 30/1ms + 10/50ms: {:.2} Mbit/s (30/1 ms alone {:.2}); \
         {} opportunistic retransmissions, {} penalisations",
        both.goodput_mbps,
        fast.goodput_mbps,
        c.mptcp_opportunistic_retransmits,
        c.mptcp_penalisations
    );
    assert!(
        both.goodput_mbps > fast.goodput_mbps,
        "{:.2} vs {:.2}",
        both.goodput_mbps,
        fast.goodput_mbps
    );
    assert!(c.mptcp_penalisations > 0);
}

/// Loss on both paths: intact.
#[test]
fn loss_on_both_paths_intact() {
    let r = over_paths(13, 4 << 20, &[(20, 5, 0.02), (20, 15, 0.02)], false);
    assert!(r.retransmits > 0);
}

/// Coupled (RFC 6356): over two equal disjoint lossy paths LIA does at
/// least as well as one TCP flow on the best path (goal 1, §2) but takes
/// less than two uncoupled subflows, each of which is a full TCP flow on
/// its path (the fairness it gives up for a shared bottleneck, goal 2).
#[test]
fn lia_beats_one_path_and_yields_to_two_uncoupled() {
    let paths = [(10, 10, 0.005), (10, 10, 0.005)];
    let one = over_paths(14, 8 << 20, &paths[..1], false);
    let unc = over_paths(14, 8 << 20, &paths, false);
    let lia = over_paths(14, 8 << 20, &paths, true);
    println!(
        "two lossy 10 Mbit/s paths: one path {:.2}, uncoupled {:.2}, LIA {:.2} Mbit/s",
        one.goodput_mbps, unc.goodput_mbps, lia.goodput_mbps
    );
    assert!(lia.goodput_mbps >= one.goodput_mbps);
    assert!(lia.goodput_mbps < unc.goodput_mbps);
}

/// Every scheduler (`xdptcp sim --scheduler`) over two equal 10 Mbit/s
/// paths, one way: minrtt and roundrobin spread the data over both,
/// redundant sends all of it on each; then with 1 % loss on both paths
/// and path 2 dying 1 s in, each still completes intact.
#[test]
fn every_scheduler_over_two_paths_and_a_dying_one() {
    use xdptcp::mptcp::sched::SchedKind;
    for sched in [
        SchedKind::MinRtt,
        SchedKind::RoundRobin,
        SchedKind::Redundant,
    ] {
        let mut p = params(11, [true, true], false);
        p.conns = 1;
        p.bidir = false;
        p.bytes = 4 << 20;
        p.mptcp_scheduler = sched;
        p.link.rate_bps = Some(10_000_000);
        p.extra_paths = vec![p.link.clone()];
        let r = run_complete(&p, &format!("{sched}"));
        let sent = [r.paths[0][0].tx_bytes, r.paths[1][0].tx_bytes];
        println!(
            "{sched}: path 1 {} bytes, path 2 {} bytes",
            sent[0], sent[1]
        );
        let data = p.bytes as f64;
        for (i, &b) in sent.iter().enumerate() {
            let share = b as f64 / data;
            match sched {
                // Each carries a copy (and its headers).
                SchedKind::Redundant => assert!(share > 0.98, "{sched}: path {i} {b}"),
                _ => assert!((0.3..0.75).contains(&share), "{sched}: path {i} {b}"),
            }
        }
        let redundant = r.stacks[0].mptcp_redundant_bytes;
        assert_eq!(redundant > 0, sched == SchedKind::Redundant, "{redundant}");

        p.link.loss = 0.01;
        p.extra_paths = vec![p.link.clone()];
        p.path_down = Some((1, Duration::from_millis(1000)));
        let r = run_complete(&p, &format!("{sched} dying"));
        assert!(r.paths[1][0].dropped_down > 0, "{sched}: path 2 never died");
    }
}

/// A receive buffer smaller than one segment (`swarm --multipath`, master
/// seed 1, run 1837: 5120 bytes, MTU 5465): the connection-level window
/// never reaches a full segment, and a subflow took only full segments, so
/// a request written once the window was that small was never sent and
/// both ends waited for ever. An idle subflow now takes what the window
/// allows.
#[test]
fn receive_window_below_one_segment_does_not_stall() {
    for (seed, mtu) in [(1, 5465), (2, 9000)] {
        let r = over_paths_with(seed, 100, &[(10, 4, 0.0), (100, 3, 0.0)], false, |p| {
            p.link.mtu = mtu;
            for l in &mut p.extra_paths {
                l.mtu = mtu;
            }
            p.rcv_buf = Some(5120);
            p.work.rr = Some(RrConfig {
                requests: 20,
                req: (1500, 2500),
                resp: (30_000, 40_000),
            });
            // About 1 s of traffic: a stall runs into the limit.
            p.limits.time = Duration::from_secs(60);
        });
        println!(
            "mtu {mtu}: {} bytes in {:.0} virtual ms",
            r.bytes, r.virtual_ms
        );
    }
}

/// The client aborts every odd-numbered connection once the server has
/// acknowledged what it wrote (`--abort-after`; `swarm --multipath`,
/// master seed 20261203, run 4866): over two paths the first subflow's
/// `bytes_acked` counts only its own share, so the abort never came and
/// both ends waited for ever. It now waits for the connection's DATA_ACK
/// (`Stack::send_unacked`).
#[test]
fn abort_after_data_acked_over_two_paths() {
    let r = over_paths_with(3, 40_000, &[(100, 20, 0.0), (100, 10, 0.0)], false, |p| {
        p.conns = 4;
        // Small windows and segments spread each connection over both
        // paths from the start.
        p.link.mtu = 576;
        for l in &mut p.extra_paths {
            l.mtu = 576;
        }
        p.rcv_buf = Some(7168);
        p.snd_buf = Some(22528);
        p.work.write_size = (17, 131);
        p.work.abort_after = Some(20_000);
        p.limits.time = Duration::from_secs(60);
    });
    let joined: u64 = r.stacks.iter().map(|s| s.mptcp_bytes_joined).sum();
    println!(
        "{} bytes in {:.0} virtual ms, {joined} bytes on joined subflows",
        r.bytes, r.virtual_ms
    );
    assert!(joined > 0, "the second path carried none");
}

/// Issue 8: data the application writes before a second subflow exists
/// (here during the handshake, before MPTCP is even established) is
/// spread over both paths once the join completes, not left on the
/// first subflow (where it used to stay, one to one, for as long as the
/// application kept that queue from draining).
#[test]
fn a_write_before_the_join_is_spread_over_both_paths() {
    let bytes = 8 << 20;
    let r = over_paths_with(13, bytes, &[(10, 10, 0.0), (10, 10, 0.0)], false, |p| {
        p.work.early_write = true
    });
    for (i, [c2s, _]) in r.paths.iter().enumerate() {
        println!(
            "write before the join: path {} {} bytes client to server, {:.2} Mbit/s",
            i + 1,
            c2s.tx_bytes,
            r.goodput_mbps
        );
        assert!(
            c2s.tx_bytes > bytes / 4,
            "path {} carried {}",
            i + 1,
            c2s.tx_bytes
        );
    }
}

/// The data written before the join and sent one to one on the first
/// subflow has no copy in the connection's queue, only in that subflow's:
/// when its path dies right after the join, the other subflow reinjects
/// it from there (RFC 8684 §3.3.6) and the transfer goes on at once,
/// rather than when the dead subflow gives up its retransmissions (some
/// 500 s of virtual time, `max_retries`).
#[test]
fn first_path_dying_after_a_write_before_the_join() {
    let mut p = params(14, [true, true], false);
    p.conns = 1;
    p.bidir = false;
    p.bytes = 2 << 20;
    p.link.rate_bps = Some(10_000_000);
    p.link.delay = Duration::from_millis(1);
    p.link.queue_limit = default_queue(p.link.rate_bps, p.link.delay);
    p.extra_paths = vec![p.link.clone()];
    p.work.early_write = true;
    p.path_down = Some((0, Duration::from_millis(20)));
    let r = run_complete(&p, "path 1 down at 20 ms, written early");
    let done = r.completion_ms_max.unwrap_or(f64::MAX);
    println!(
        "path 1 {} bytes, path 2 {} bytes, done at {done:.0} ms, reinjections {}",
        r.paths[0][0].tx_bytes, r.paths[1][0].tx_bytes, r.stacks[0].mptcp_reinjections
    );
    assert!(done < 60_000.0, "completed at {done} ms");
}

/// Seed 14's one 2 MB upload over two equal 10 Mbit/s paths, the first
/// path dying `ms` milliseconds in (around the MP_CAPABLE handshake).
fn first_path_down_at(ms: u64) -> BulkParams {
    let mut p = params(14, [true, true], false);
    p.conns = 1;
    p.bidir = false;
    p.bytes = 2 << 20;
    p.link.rate_bps = Some(10_000_000);
    p.link.queue_limit = default_queue(p.link.rate_bps, p.link.delay);
    p.extra_paths = vec![p.link.clone()];
    p.path_down = Some((0, Duration::from_millis(ms)));
    p
}

/// The first path dies during the MP_CAPABLE handshake (the SYN/ACK is
/// lost at 20 ms): no key reached the client, so no join can exist and the
/// connection has no path at all. It must fail cleanly and soon, as
/// Linux's connect() does (EHOSTUNREACH once its neighbour fails), not
/// retransmit SYNs into the dead path for 550 s of virtual time (the
/// simulator's 15 SYN retries) and be taken for a stall.
#[test]
fn first_path_dying_during_the_handshake_fails_promptly() {
    let r = run_bulk(&first_path_down_at(20));
    let c = &r.connections[0];
    println!(
        "{}: {} ({}, client {}) at {:.0} ms",
        r.outcome, c.outcome, r.stacks[0].drop_arp_failed, c.client_close, r.virtual_ms
    );
    assert!(r.failure(false).is_none(), "{:?}", r.failure(false));
    assert_eq!(
        (c.outcome.as_str(), c.client_close.as_str()),
        ("aborted", "unreachable")
    );
    assert!(r.virtual_ms < 60_000.0, "ended at {} ms", r.virtual_ms);
}

/// The first path dies after the SYN/ACK but before the server's first
/// DSS showed the client that its third ACK arrived (RFC 8684 §3.1: not
/// fully established), 27 to 31 ms into seed 14's run, after the server
/// got the third ACK. Once the first subflow stalls, the client joins on
/// the live path (RFC 8684 §3.2: it holds the server's key), and the join
/// carries the transfer to its end. Before, the client retransmitted into
/// the dead path and timed out at 522 s. (Down at 21 to 25 ms, the third
/// ACK never reached the server: see the next test.)
#[test]
fn first_path_dying_before_full_establishment_joins_on_the_live_path() {
    for ms in (27..=31).step_by(2) {
        let r = run_bulk(&first_path_down_at(ms));
        let c = &r.connections[0];
        println!(
            "down at {ms} ms: {} ({}) at {:.0} ms, path 2 {} bytes",
            r.outcome, c.outcome, r.virtual_ms, r.paths[1][0].tx_bytes
        );
        assert!(
            r.failure(false).is_none(),
            "{ms} ms: {:?}",
            r.failure(false)
        );
        assert_eq!(c.outcome, "completed", "{ms} ms");
        assert!(
            r.virtual_ms < 60_000.0,
            "{ms} ms: ended at {} ms",
            r.virtual_ms
        );
        assert!(
            r.paths[1][0].tx_bytes > 2 << 20,
            "{ms} ms: path 2 carried it"
        );
    }
}

/// The first path dies `ms` into seed 14's run (21 to 25 ms): after the
/// SYN/ACK, before the third ACK (our key, RFC 8684 §3.1) reached the
/// server. The server cannot take a join then (its HMAC needs our key,
/// §3.2), so it refuses the client's early join; once the first path's
/// neighbour fails too, no path can carry the third ACK and the
/// connection ends as unreachable, within seconds. Before, the client
/// retransmitted into the dead path and timed out at 522 s.
#[track_caller]
fn first_path_dying_before_the_third_ack_arrived_fails_promptly(ms: u64) {
    let r = run_bulk(&first_path_down_at(ms));
    let c = &r.connections[0];
    let s = &r.stacks[0];
    println!(
        "down at {ms} ms: {} ({}, client {}) at {:.0} ms, early joins refused {}, ended {}",
        r.outcome,
        c.outcome,
        c.client_close,
        r.virtual_ms,
        s.mptcp_early_join_refusals,
        s.mptcp_early_unreachable
    );
    assert!(r.failure(false).is_none(), "{:?}", r.failure(false));
    assert_eq!(
        (c.outcome.as_str(), c.client_close.as_str()),
        ("aborted", "unreachable")
    );
    assert!(s.mptcp_early_join_refusals >= 1, "no join refused");
    assert_eq!(s.mptcp_early_unreachable, 1);
    assert!(r.virtual_ms < 60_000.0, "ended at {} ms", r.virtual_ms);
}

#[test]
fn first_path_dying_at_21_ms_before_the_third_ack_arrived_fails_promptly() {
    first_path_dying_before_the_third_ack_arrived_fails_promptly(21);
}

#[test]
fn first_path_dying_at_23_ms_before_the_third_ack_arrived_fails_promptly() {
    first_path_dying_before_the_third_ack_arrived_fails_promptly(23);
}

#[test]
fn first_path_dying_at_25_ms_before_the_third_ack_arrived_fails_promptly() {
    first_path_dying_before_the_third_ack_arrived_fails_promptly(25);
}
