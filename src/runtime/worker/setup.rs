//! The set-up phase: the thread pinned, one stack and one app per
//! interface, the worker's state.

use super::{now, RuntimeApp, Worker, WorkerCtx, WorkerSetup, WorkerStats};
use crate::io::xdp::sys::PollSet;
use crate::io::xdp::{CacheGuard, XdpDevice};
use crate::runtime::inbox::Outbox;
use crate::runtime::migrate::Moved;
use crate::runtime::returns::Returns;
use crate::stack::Stack;

impl<A: RuntimeApp> Worker<A> {
    /// Pin the thread, build one stack and one app per interface, and
    /// let every app set itself up.
    pub(super) fn new(setup: WorkerSetup, make_app: &(dyn Fn(WorkerCtx) -> A + Sync)) -> Worker<A> {
        let WorkerSetup {
            index: me,
            queue,
            core,
            devices,
            inboxes,
            stop,
            stop_sync,
            start_sync: _,
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
        // This thread's caches of free chunks, one per UMEM (usually one
        // for every interface); they outlive the stacks (see `Worker`'s
        // fields): frames dropped with the stacks return to the caches,
        // which then hand everything back.
        let mut umems: Vec<&std::sync::Arc<crate::io::xdp::SharedUmem>> = Vec::new();
        for (dev, _, _) in &devices {
            if !umems.iter().any(|u| u.id() == dev.umem().id()) {
                umems.push(dev.umem());
            }
        }
        let caches: Vec<CacheGuard> = umems.iter().map(|u| u.worker_cache()).collect();
        let n_ifaces = devices.len();
        let mut stacks: Vec<Stack<XdpDevice>> = Vec::with_capacity(n_ifaces);
        let mut apps: Vec<A> = Vec::with_capacity(devices.len());
        for (i, (dev, cfg, rss)) in devices.into_iter().enumerate() {
            let mut stack = Stack::new(cfg, dev, t0);
            if workers > 1 {
                stack.log_flows();
                stack.log_tokens();
                // Nothing reaches the TX ring before the turn's new flows
                // are published (`Worker::poll`).
                stack.device_mut().set_flush_when_full(false);
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
                    crate::runtime::owner::port_lands_on(
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
        let st = WorkerStats {
            worker: me,
            queue,
            core: pinned,
            handoff_out_by_iface: vec![0; n_ifaces],
            ..Default::default()
        };
        let pollset = PollSet::new(
            stacks
                .iter()
                .map(|s| s.device().socket().fd())
                .chain(std::iter::once(inboxes[me].wake_fd())),
        );
        let wake_idx = pollset.len() - 1;
        let multipath = n_ifaces > 1 && stacks.iter().any(|s| s.config().tcp.mptcp);
        Worker {
            me,
            workers,
            multipath,
            links_seen: vec![true; n_ifaces],
            link_gen: 0,
            moved: Moved::default(),
            idle: 0,
            pollset,
            wake_idx,
            refuse_moves: std::env::var_os("XDPTCP_TEST_REFUSE_MOVES").is_some(),
            returns: Returns::default(),
            outbox: Outbox::new(workers),
            batch: Vec::with_capacity(crate::io::xdp::socket::BATCH),
            st,
            apps,
            stacks,
            caches,
            epoch,
            busy_poll,
            links,
            tokens,
            directory,
            stop_sync,
            stop_flag: stop,
            inboxes,
        }
    }
}
