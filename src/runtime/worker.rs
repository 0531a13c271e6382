//! One run-to-completion worker: its queue's socket on every interface, one
//! stack and one app per interface, and an inbox of frames handed over by
//! other workers (the flows it owns that arrived on their queues).

use super::directory::FlowDirectory;
use super::inbox::Outbox;
pub use super::inbox::{Handoff, Inbound, Inbox, MpMsg};
use super::links::{follow_links, LinkWatch};
use super::migrate::Moved;
use super::owner::{classify, tuple_hash, Dest};
use super::returns::{Arrival, Returns};
pub use super::stop::StopSync;
use super::stop::{answer_late, install_arrivals, reset_all};
use super::tokens::{TokenDirectory, TokenInsert};
use super::worker_stats::tcp_flags;
pub use super::worker_stats::{UnknownKinds, WorkerStats, XskStats};
use crate::app::{dispatch, App};
use crate::app_migrate::{move_in, move_out};
use crate::io::xdp::rss::Rss;
use crate::io::xdp::sys::PollSet;
use crate::io::xdp::{CacheGuard, XdpDevice, XdpFrame};
use crate::io::Frame;
use crate::stack::{Stack, StackConfig};
use crate::time::Instant;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Frames handed to a worker per loop iteration at most.
const INBOX_BATCH: usize = 256;
/// Busy loops without work before the worker sleeps in `poll(2)`.
const SPINS_BEFORE_SLEEP: u32 = 64;
/// Longest sleep (a missed wake-up costs at most this much latency).
const MAX_SLEEP_MS: i32 = 10;

/// Where an app instance runs (for flow ownership of its active opens, see
/// [`super::owner::connect_owned`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerCtx {
    pub worker: usize,
    pub workers: usize,
    /// Index of the interface (in `--iface` order) of this app's stack.
    pub iface: usize,
    /// The interface's RSS, if the device tells it: the queue (= worker)
    /// a flow's packets arrive on can then be computed.
    pub rss: Option<Arc<Rss>>,
}

/// An app that the runtime can run and report on.
pub trait RuntimeApp: App<XdpDevice> {
    /// App counters for the stats report.
    fn stats_json(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    /// When the app next wants `on_poll` without traffic (its own timers,
    /// e.g. an open-loop schedule), so the worker does not sleep past it.
    fn poll_at(&self) -> Option<Instant> {
        None
    }
}

/// Everything a worker thread starts with.
pub struct WorkerSetup {
    pub index: usize,
    pub queue: u32,
    pub core: Option<core_affinity::CoreId>,
    /// One device (this queue's socket) and stack config per interface.
    pub devices: Vec<(XdpDevice, StackConfig, Option<Arc<Rss>>)>,
    /// Every worker's inbox, indexed by worker.
    pub inboxes: Arc<Vec<Inbox>>,
    pub stop: Arc<AtomicBool>,
    pub stop_sync: Arc<StopSync>,
    /// Which worker owns which TCP flow (shared by the workers).
    pub directory: Arc<FlowDirectory>,
    /// Which worker holds which MPTCP token (shared by the workers).
    pub tokens: Arc<TokenDirectory>,
    /// Each interface's carrier (read by the main thread).
    pub links: Arc<LinkWatch>,
    /// Drive the sockets' busy polling each loop (`--busy-poll`).
    pub busy_poll: bool,
    pub epoch: std::time::Instant,
}

fn now(epoch: std::time::Instant) -> Instant {
    Instant::from_micros(epoch.elapsed().as_micros() as u64)
}

/// Run until `stop` is set; returns the worker's counters.
pub fn run<A: RuntimeApp>(
    setup: WorkerSetup,
    make_app: &(dyn Fn(WorkerCtx) -> A + Sync),
) -> WorkerStats {
    let WorkerSetup {
        index: me,
        queue,
        core,
        devices,
        inboxes,
        stop,
        stop_sync,
        directory,
        tokens,
        links,
        busy_poll,
        epoch,
    } = setup;
    let pinned = core
        .filter(|&c| core_affinity::set_for_current(c))
        .map(|c| c.id);
    let workers = inboxes.len();
    let t0 = now(epoch);
    // This thread's caches of free chunks, one per UMEM; declared before
    // the stacks so that they outlive them (frames dropped with the stacks
    // return to the caches, which then hand everything back).
    let caches: Vec<CacheGuard> = devices
        .iter()
        .map(|(dev, _, _)| dev.umem().worker_cache())
        .collect();
    let n_ifaces = devices.len();
    let mut stacks: Vec<Stack<XdpDevice>> = Vec::with_capacity(n_ifaces);
    let mut apps: Vec<A> = Vec::with_capacity(devices.len());
    for (i, (dev, cfg, rss)) in devices.into_iter().enumerate() {
        let mut stack = Stack::new(cfg, dev, t0);
        if workers > 1 {
            stack.log_flows();
            stack.log_tokens();
            // Each worker's own MPTCP keys (the interface's secret is
            // shared by its workers).
            stack.mptcp_key_stream(me as u64);
        }
        // MPTCP: a join on one interface for a connection on another
        // (see `stack::mptcp_route`).
        if n_ifaces > 1 {
            stack.mptcp_set_shared(i);
        }
        // ... or on another worker (`stack::mptcp_remote`): the subflow
        // runs here, where its packets arrive.
        if workers > 1 && stack.config().tcp.mptcp {
            let tokens = tokens.clone();
            stack.mptcp_set_remote(me, i, Box::new(move |t| tokens.lookup(t)));
        }
        // MPTCP: the subflows our path manager opens land on this worker,
        // as plain active opens do (`owner::connect_owned`).
        if workers > 1 {
            let rss = rss.clone();
            stack.mptcp_set_port_filter(Box::new(move |l, r, port| {
                super::owner::port_lands_on(
                    u32::from(l),
                    u32::from(*r.ip()),
                    r.port(),
                    port,
                    me,
                    workers,
                    rss.as_deref(),
                )
            }));
        }
        stacks.push(stack);
        apps.push(make_app(WorkerCtx {
            worker: me,
            workers,
            iface: i,
            rss,
        }));
    }
    let mut st = WorkerStats {
        worker: me,
        queue,
        core: pinned,
        handoff_out_by_iface: vec![0; n_ifaces],
        ..Default::default()
    };
    let mut batch: Vec<(XdpFrame, usize)> = Vec::with_capacity(crate::io::xdp::socket::BATCH);
    // Declared after the caches: frames in waiting messages go back to
    // them when the worker ends.
    let mut outbox = Outbox::new(workers);
    let mut returns = Returns::default();
    // Fault injection for tests (`tests/veth_echo.rs`): every plain
    // connection moving here is refused, as if its flow were here
    // already: each must go back and keep working.
    let refuse_moves = std::env::var_os("XDPTCP_TEST_REFUSE_MOVES").is_some();
    // Every socket, then this worker's wake-up eventfd.
    let mut pollset = PollSet::new(
        stacks
            .iter()
            .map(|s| s.device().socket().fd())
            .chain(std::iter::once(inboxes[me].wake_fd())),
    );
    let wake_idx = pollset.len() - 1;
    let mut idle = 0u32;
    let mut moved = Moved::default();
    // Let every app set itself up (listen) before traffic arrives.
    for (stack, app) in stacks.iter_mut().zip(apps.iter_mut()) {
        dispatch(stack, app, t0);
    }
    // The carriers this worker acted on; none when no connection can use
    // another path (one interface, or no MPTCP).
    let mut link_gen = 0;
    let mut links_seen: Vec<bool> = vec![true; n_ifaces];
    let multipath = n_ifaces > 1 && stacks.iter().any(|s| s.config().tcp.mptcp);
    while !stop.load(Ordering::Relaxed) {
        st.loops += 1;
        let t = now(epoch);
        if multipath && links.generation() != link_gen {
            link_gen = links.generation();
            follow_links(&links, &mut links_seen, &mut stacks, &mut st);
        }
        let mut work = 0usize;
        #[allow(clippy::needless_range_loop)] // `stacks[i]` is re-borrowed per frame
        for i in 0..stacks.len() {
            if busy_poll {
                stacks[i].device_mut().busy_poll();
            }
            stacks[i].device_mut().recv(&mut batch);
            work += batch.len();
            for (frame, len) in batch.drain(..) {
                st.rx_packets += 1;
                st.rx_bytes += len as u64;
                let pkt = frame.buf().get(..len).unwrap_or(&[]);
                match classify(pkt) {
                    // A flow this worker's stack does not know: a new one
                    // (its first packet arrived here: ours), or a stray of
                    // a flow another worker owns (hand it over). An MPTCP
                    // join (RFC 8684 §3.2) whose token another worker
                    // holds is a new flow like any other: its subflow
                    // runs here (`stack::mptcp_remote`).
                    Dest::Tcp(tuple) if workers > 1 && !stacks[i].has_conn(&tuple) => {
                        let owner = moved.owner(i, &tuple, t).or_else(|| {
                            directory.lookup(tuple_hash(&tuple, i)).filter(|&w| w != me)
                        });
                        let Some(w) = owner else {
                            st.flows_unknown += 1;
                            st.flows_unknown_kinds.count(pkt);
                            if let Some(tap) = stacks[i].device().capture() {
                                tap.capture(&frame.buf()[..len]);
                            }
                            stacks[i].receive(t, frame, len);
                            continue;
                        };
                        match inboxes[w].push(Handoff {
                            iface: i,
                            from: me,
                            frame,
                            len,
                            copy: false,
                        }) {
                            Ok(()) => {
                                st.handoff_out += 1;
                                st.handoff_out_by_iface[i] += 1;
                            }
                            Err(_) => st.handoff_dropped += 1,
                        }
                        continue;
                    }
                    Dest::All if workers > 1 => {
                        for (w, inbox) in inboxes.iter().enumerate() {
                            if w == me {
                                continue;
                            }
                            if let Some(mut copy) = frame.alloc_sibling() {
                                copy.buf_mut()[..len].copy_from_slice(&frame.buf()[..len]);
                                // The other workers only need to learn the
                                // sender (RFC 826 merge): a request becomes
                                // a reply in their copy, so that the peer
                                // gets one answer, from the arrival worker.
                                if let Some(op) = copy.buf_mut().get_mut(20..22) {
                                    if op == [0, 1] {
                                        op.copy_from_slice(&[0, 2]);
                                    }
                                }
                                if inbox
                                    .push(Handoff {
                                        iface: i,
                                        from: me,
                                        frame: copy,
                                        len,
                                        copy: true,
                                    })
                                    .is_ok()
                                {
                                    st.arp_copies += 1;
                                }
                            }
                        }
                    }
                    _ => {}
                }
                if let Some(tap) = stacks[i].device().capture() {
                    tap.capture(&frame.buf()[..len]);
                }
                stacks[i].receive(t, frame, len);
            }
            // TCP that came in fragments, reassembled, of a flow this
            // stack does not hold: fragments are steered by addresses
            // only, so its owner may be another worker.
            for (frame, len) in stacks[i].take_strays() {
                let owner = match classify(&frame.buf()[..len]) {
                    Dest::Tcp(tuple) => {
                        directory.lookup(tuple_hash(&tuple, i)).filter(|&w| w != me)
                    }
                    _ => None,
                };
                let Some(w) = owner else {
                    stacks[i].receive(t, frame, len);
                    continue;
                };
                let h = Handoff {
                    iface: i,
                    from: me,
                    frame,
                    len,
                    copy: false,
                };
                match inboxes[w].push(h) {
                    Ok(()) => {
                        st.handoff_out += 1;
                        st.handoff_out_by_iface[i] += 1;
                    }
                    Err(_) => st.handoff_dropped += 1,
                }
            }
        }
        for _ in 0..INBOX_BATCH {
            let Some(inbound) = inboxes[me].pop() else {
                break;
            };
            work += 1;
            let h = match inbound {
                Inbound::Frame(h) => h,
                Inbound::Flow {
                    iface,
                    from,
                    back,
                    flow,
                } => {
                    let tuple = flow.tuple();
                    let Some(stack) = stacks.get_mut(iface) else {
                        continue;
                    };
                    let res =
                        stack
                            .mptcp_migrate_try_in(t, *flow, back)
                            .map_err(|flow| Inbound::Flow {
                                iface,
                                from: me,
                                back: true,
                                flow: Box::new(flow),
                            });
                    let arrival = Arrival {
                        iface,
                        tuple,
                        from,
                        back,
                    };
                    returns.settle(res, arrival, &inboxes, &mut moved, t, &mut st);
                    continue;
                }
                Inbound::Conn {
                    iface,
                    from,
                    back,
                    conn,
                } => {
                    let (Some(stack), Some(app)) = (stacks.get_mut(iface), apps.get_mut(iface))
                    else {
                        continue;
                    };
                    let (tuple, token) = (conn.tuple(), conn.token());
                    let conn = if refuse_moves && !back {
                        Err(*conn)
                    } else {
                        move_in(stack, app, t, *conn)
                    };
                    // Refused here (its flow, or its MPTCP token, held
                    // here already: tokens are unique per stack; or the
                    // app refused): back to the worker that still holds
                    // its token.
                    let res = conn.map(drop).map_err(|conn| Inbound::Conn {
                        iface,
                        from: me,
                        back: true,
                        conn: Box::new(conn),
                    });
                    let arrival = Arrival {
                        iface,
                        tuple,
                        from,
                        back,
                    };
                    let arrived = returns.settle(res, arrival, &inboxes, &mut moved, t, &mut st);
                    // RFC 8684 §3.2: joins for its token come here from
                    // now on.
                    if let Some(tk) = token.filter(|_| arrived && from != me) {
                        match tokens.transfer(tk, from, me) {
                            TokenInsert::Ok => {}
                            TokenInsert::HeldElsewhere => st.token_conflicts += 1,
                            TokenInsert::Full => st.token_directory_full += 1,
                        }
                    }
                    continue;
                }
            };
            st.handoff_in += 1;
            let Some(stack) = stacks.get_mut(h.iface) else {
                continue;
            };
            // A stray of a flow here (not an ARP copy): it may have moved
            // on (forward it), or keep arriving on `h.from` (move it there).
            let stray = match classify(h.frame.buf().get(..h.len).unwrap_or(&[])) {
                Dest::Tcp(tuple) if !h.copy => Some(tuple),
                _ => None,
            };
            if let Some(w) = stray
                .filter(|tuple| !stack.has_conn(tuple))
                .and_then(|tuple| moved.owner(h.iface, &tuple, t))
                .filter(|&w| w != me)
            {
                // Still from where it arrived: a stray there, not here.
                match inboxes[w].push(h) {
                    Ok(()) => st.flows_forwarded += 1,
                    Err(_) => st.handoff_dropped += 1,
                }
                continue;
            }
            let syn_ack = tcp_flags(&h.frame.buf()[..h.len]) & 0x12 == 0x12;
            if let Some(tap) = stack.device().capture().filter(|_| !h.copy) {
                tap.capture(&h.frame.buf()[..h.len]);
            }
            stack.receive(t, h.frame, h.len);
            let Some(tuple) = stray.filter(|_| h.from != me) else {
                continue;
            };
            if let Some(flow) = stack.mptcp_stray(t, &tuple, syn_ack) {
                let to = h.from;
                let i = Inbound::Flow {
                    iface: h.iface,
                    from: me,
                    back: false,
                    flow: Box::new(flow),
                };
                match inboxes[to].push_any(i) {
                    Ok(()) => {
                        moved.record(h.iface, tuple, to, t);
                        st.flows_migrated_out += 1;
                    }
                    // The inbox is full: it stays here (never lost).
                    Err(Inbound::Flow { flow, .. }) => {
                        if stack.mptcp_migrate_try_in(t, *flow, true).is_err() {
                            st.flows_migration_dropped += 1;
                        }
                    }
                    Err(_) => {}
                }
            } else if let Some(m) = apps
                .get_mut(h.iface)
                .and_then(|app| move_out(stack, app, t, &tuple, syn_ack))
            {
                // A connection goes with its app's state (an MPTCP one
                // with its connection level and token); if the inbox is
                // full it stays here (never lost).
                let to = h.from;
                let i = Inbound::Conn {
                    iface: h.iface,
                    from: me,
                    back: false,
                    conn: Box::new(m),
                };
                match inboxes[to].push_any(i) {
                    Ok(()) => {
                        moved.record(h.iface, tuple, to, t);
                        st.flows_migrated_out += 1;
                    }
                    Err(Inbound::Conn { conn, .. }) => {
                        let back = apps
                            .get_mut(h.iface)
                            .is_some_and(|app| move_in(stack, app, t, *conn).is_ok());
                        if !back {
                            st.flows_migration_dropped += 1;
                        }
                    }
                    Err(_) => {}
                }
            }
        }
        // MPTCP messages from the other workers, each sender's in order.
        for from in 0..workers {
            for _ in 0..INBOX_BATCH {
                let Some(m) = inboxes[me].pop_msg(from) else {
                    break;
                };
                work += 1;
                st.mptcp_msgs_in += 1;
                crate::stack::mptcp_remote_input(&mut stacks, t, from, m);
            }
        }
        if n_ifaces > 1 {
            crate::stack::mptcp_route(&mut stacks);
        }
        // Our data for subflows other workers run (`stack::mptcp_remote`).
        if workers > 1 && crate::stack::mptcp_remote_schedule(&mut stacks) > 0 {
            work += 1;
        }
        let mut next: Option<Instant> = None;
        for (i, (stack, app)) in stacks.iter_mut().zip(apps.iter_mut()).enumerate() {
            dispatch(stack, app, t);
            stack.poll(t);
            // Events raised while transmitting (e.g. Writable) are served
            // at once rather than a loop later.
            dispatch(stack, app, t);
            // Flows opened here are this worker's: tell the others before
            // the kick below sends their first segment. On veth the kick
            // runs the peer's receive path at once, and its answer may be
            // polled by another worker right away: if the flow were not in
            // the directory yet, that worker would answer it with a reset.
            stack.drain_flow_log(|tuple, open| {
                let h = tuple_hash(tuple, i);
                if !open {
                    directory.remove(h, me);
                } else if !directory.insert(h, me) {
                    st.directory_full += 1;
                }
            });
            // The same for MPTCP tokens, before the kick that sends the
            // key they come from (RFC 8684 §3.1): a join for one cannot
            // reach another worker before the token is in the directory.
            stack.drain_token_log(|token, drawn| {
                if !drawn {
                    tokens.remove(token, me);
                    return;
                }
                match tokens.insert(token, me) {
                    TokenInsert::Ok => {}
                    TokenInsert::HeldElsewhere => st.token_conflicts += 1,
                    TokenInsert::Full => st.token_directory_full += 1,
                }
            });
            stack.mptcp_remote_drain(|to, m| {
                st.mptcp_msgs_out += 1;
                outbox.send(&inboxes, me, to, m);
            });
            if stack.device_mut().flush() {
                // Transmissions still queued: loop again rather than sleep.
                work += 1;
            }
            // Impaired packets waiting for their time (`--impair`).
            let held = stack.device().impair_due_in().map(|d| t + d);
            for at in [stack.poll_at(), app.poll_at(), held].into_iter().flatten() {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        if returns.flush(&inboxes, t, &mut st) {
            work += 1;
        }
        if outbox.flush(&inboxes, me) {
            // Messages wait for room in a ring: loop again.
            work += 1;
        }
        if work > 0 {
            idle = 0;
            continue;
        }
        idle += 1;
        if idle < SPINS_BEFORE_SLEEP {
            std::hint::spin_loop();
            continue;
        }
        // Idle: sleep until a socket is readable, the next timer, or at most
        // MAX_SLEEP_MS (hand-offs from other workers are seen then).
        let until = next
            .map(|n| n.saturating_since(now(epoch)).as_millis() as i32)
            .unwrap_or(MAX_SLEEP_MS);
        let timeout = until.clamp(0, MAX_SLEEP_MS);
        if timeout > 0 && inboxes[me].sleep(&mut pollset, wake_idx, timeout) {
            st.sleeps += 1;
        }
    }
    // Moves on their way when the run stopped are installed before the
    // resets below, so that they are reset too (a move dropped with the
    // inbox left its peer's connection open: Linux retransmitted into the
    // next run) and every move out is a move in. Once every worker has
    // left its loop (bounded wait), nothing is pushed any more.
    stop_sync.left_loop(workers);
    let t = now(epoch);
    returns.flush(&inboxes, t, &mut st);
    install_arrivals(&inboxes[me], &mut stacks, &mut apps, t, &mut st);
    // The run is over: reset what is still open, as a process's exit
    // closes its sockets, so that peers do not keep retransmitting to us,
    // and let the resets leave (bounded: the ring drains 32 per kick on
    // veth; a reset that finds no room is counted in `tx_ring_full`).
    reset_all(&mut stacks, t);
    // Late answers to what was sent just before the stop (see
    // `answer_late`), then whatever opened meanwhile is reset too.
    answer_late(&mut stacks, &mut batch, || now(epoch));
    reset_all(&mut stacks, now(epoch));
    for (stack, app) in stacks.iter().zip(apps.iter()) {
        let c = stack.counters();
        st.mptcp_subflows_owned += c.mptcp_remote_subflows;
        st.mptcp_bytes_for_other_workers += c.mptcp_remote_bytes;
        st.mptcp_bytes_sent_for_other_workers += c.mptcp_remote_tx_bytes;
        st.stacks.push(c);
        st.devices.push(*stack.device().counters());
        let x = stack.device().socket().xdp_statistics();
        st.xsk.push(x.map_or_else(XskStats::default, |x| XskStats {
            rx_dropped: x.rx_dropped,
            rx_invalid_descs: x.rx_invalid_descs,
            tx_invalid_descs: x.tx_invalid_descs,
            rx_ring_full: x.rx_ring_full,
            rx_fill_ring_empty_descs: x.rx_fill_ring_empty_descs,
            tx_ring_empty_descs: x.tx_ring_empty_descs,
        }));
        st.apps.push(app.stats_json());
    }
    // Count the frames the stacks hold now that traffic has stopped (the
    // connections' buffers), before anything is torn down.
    for c in &caches {
        c.fold_live();
    }
    if let Some(held) = stop_sync.meet(me, workers) {
        for (stack, slot) in stacks.iter().zip(held) {
            slot.store(stack.device().umem().live_frames(), Ordering::Relaxed);
        }
        stop_sync.release();
    }
    st
}
