//! One run-to-completion worker: its queue's socket on every interface, one
//! stack and one app per interface, and an inbox of frames handed over by
//! other workers (the flows it owns that arrived on their queues).
//!
//! [`run`] is a loop over the phases of a `Worker`, one method each:
//! `new` (`worker/setup.rs`), `receive` (`worker/receive.rs`), `drain_inbox` and `take_messages`
//! (`worker/handoffs.rs`, the moves they install or trigger in
//! `worker/moves.rs`), `poll` and `idle` here; then `stop` (its steps in
//! `stop.rs`).

mod handoffs;
mod moves;
mod receive;
mod setup;

use super::directory::FlowDirectory;
use super::inbox::Outbox;
pub use super::inbox::{Handoff, Inbound, Inbox, MpMsg};
use super::links::{follow_links, LinkWatch};
use super::migrate::Moved;
use super::owner::tuple_hash;
use super::returns::Returns;
use super::start::StartSync;
pub use super::stop::StopSync;
use super::stop::{answer_late, install_arrivals, reset_all, syn_sent};
use super::tokens::{TokenDirectory, TokenInsert};
pub use super::worker_stats::{UnknownKinds, WorkerStats, XskStats};
use crate::app::{dispatch, App};
use crate::io::xdp::rss::Rss;
use crate::io::xdp::sys::PollSet;
use crate::io::xdp::{CacheGuard, XdpDevice, XdpFrame};
use crate::stack::{Stack, StackConfig};
use crate::time::Instant;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

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
    /// The workers' meeting point before their loops.
    pub start_sync: Arc<StartSync>,
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

/// One worker's state, for the life of its thread.
// Fields drop in declaration order: whatever holds frames (the inbox's
// waiting moves and messages, the apps, the stacks) before `caches`, the
// thread's caches of free chunks, which then hand everything back.
struct Worker<A> {
    me: usize,
    workers: usize,
    /// The carriers this worker acted on (`follow_links`); none when no
    /// connection can use another path (one interface, or no MPTCP).
    multipath: bool,
    links_seen: Vec<bool>,
    link_gen: u64,
    /// Flows moved away, and where (their strays are forwarded there).
    moved: Moved,
    /// Busy loops without work so far.
    idle: u32,
    /// Every socket, then this worker's wake-up eventfd (`wake_idx`).
    pollset: PollSet,
    wake_idx: usize,
    /// Fault injection for tests (`tests/veth_echo.rs`): every plain
    /// connection moving here is refused, as if its flow were here
    /// already: each must go back and keep working.
    refuse_moves: bool,
    returns: Returns,
    outbox: Outbox,
    batch: Vec<(XdpFrame, usize)>,
    st: WorkerStats,
    apps: Vec<A>,
    stacks: Vec<Stack<XdpDevice>>,
    caches: Vec<CacheGuard>,
    epoch: std::time::Instant,
    busy_poll: bool,
    links: Arc<LinkWatch>,
    tokens: Arc<TokenDirectory>,
    directory: Arc<FlowDirectory>,
    stop_sync: Arc<StopSync>,
    stop_flag: Arc<AtomicBool>,
    inboxes: Arc<Vec<Inbox>>,
}

/// Run until `stop` is set; returns the worker's counters.
pub fn run<A: RuntimeApp>(
    setup: WorkerSetup,
    make_app: &(dyn Fn(WorkerCtx) -> A + Sync),
) -> WorkerStats {
    let start_sync = setup.start_sync.clone();
    let mut w = Worker::new(setup, make_app);
    // Every worker set up before any sends: answers that arrive on
    // another worker's queue find it reading (`start`).
    start_sync.arrive_and_wait(w.workers, &w.stop_flag);
    w.start();
    while !w.stop_flag.load(Ordering::Relaxed) {
        w.st.loops += 1;
        let t = now(w.epoch);
        w.follow_links();
        let mut work = 0usize;
        for i in 0..w.stacks.len() {
            work += w.receive(i, t);
        }
        work += w.drain_inbox(t);
        work += w.take_messages(t);
        let (busy, next) = w.poll(t);
        w.idle(work + busy, next);
    }
    w.stop()
}

impl<A: RuntimeApp> Worker<A> {
    /// Let every app set itself up (listen, open its first connections)
    /// once all workers are ready, before traffic is read.
    fn start(&mut self) {
        let t = now(self.epoch);
        for (stack, app) in self.stacks.iter_mut().zip(self.apps.iter_mut()) {
            dispatch(stack, app, t);
        }
    }

    /// Act on carrier changes (`links::follow_links`), when a connection
    /// can use another path.
    fn follow_links(&mut self) {
        if self.multipath && self.links.generation() != self.link_gen {
            self.link_gen = self.links.generation();
            follow_links(
                &self.links,
                &mut self.links_seen,
                &mut self.stacks,
                &mut self.st,
            );
        }
    }

    /// Run the apps and the stacks (timers, transmissions), publish the
    /// flows and tokens opened here, and send what waits for other
    /// workers; whether there is more to do at once, and when the next
    /// timer is due.
    fn poll(&mut self, t: Instant) -> (usize, Option<Instant>) {
        let me = self.me;
        let mut work = 0usize;
        let stacks = &mut self.stacks;
        let st = &mut self.st;
        // Subflows that came together with their connection in this
        // worker stop talking to it through rings.
        if self.workers > 1 {
            crate::stack::mptcp_remote_localize(stacks);
        }
        if stacks.len() > 1 {
            crate::stack::mptcp_route(stacks);
        }
        // Our data for subflows other workers run (`stack::mptcp_remote`).
        if self.workers > 1 && crate::stack::mptcp_remote_schedule(stacks) > 0 {
            work += 1;
        }
        let mut next: Option<Instant> = None;
        for (i, (stack, app)) in stacks.iter_mut().zip(self.apps.iter_mut()).enumerate() {
            dispatch(stack, app, t);
            stack.poll(t);
            // Events raised while transmitting (e.g. Writable) are served
            // at once rather than a loop later.
            dispatch(stack, app, t);
            // Flows opened here are this worker's: tell the others before
            // their first segment can leave. On veth the kick runs the
            // peer's receive path at once, and its answer may be polled by
            // another worker right away: if the flow were not in the
            // directory yet, that worker would answer it with a reset.
            // What the turn transmitted waits in the device's batch until
            // the flush below, however much it is (`set_flush_when_full`
            // is off with several workers: a full batch used to be
            // flushed and kicked from inside a transmit, and 256 SYNs of
            // one turn's opens on top of other segments left before their
            // flows were here). Ordering: each insert is a release (CAS or
            // store) before the flush's release of the TX ring's producer
            // index in program order; the kernel takes the descriptor with
            // an acquire, and the answer reaches the other worker through
            // its RX ring (kernel release, our acquire), so its lookup
            // (acquire) happens after the insert and sees it.
            stack.drain_flow_log(|tuple, open| {
                let h = tuple_hash(tuple, i);
                if !open {
                    self.directory.remove(h, me);
                } else if !self.directory.insert(h, me) {
                    st.directory_full += 1;
                }
            });
            // The same for MPTCP tokens, before the kick that sends the
            // key they come from (RFC 8684 §3.1): a join for one cannot
            // reach another worker before the token is in the directory.
            stack.drain_token_log(|token, drawn| {
                if !drawn {
                    self.tokens.remove(token, me);
                    return;
                }
                match self.tokens.insert(token, me) {
                    TokenInsert::Ok => {}
                    TokenInsert::HeldElsewhere => st.token_conflicts += 1,
                    TokenInsert::Full => st.token_directory_full += 1,
                }
            });
            stack.mptcp_remote_unpark(t);
            stack.mptcp_remote_drain(|to, m| {
                st.mptcp_msgs_out += 1;
                self.outbox.send(&self.inboxes, me, to, m);
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
        if self.returns.flush(&self.inboxes, t, st) {
            work += 1;
        }
        if self.outbox.flush(&self.inboxes, me) {
            // Messages wait for room in a ring: loop again.
            work += 1;
        }
        (work, next)
    }

    /// After a loop that did `work`: spin a while, then sleep until a
    /// socket is readable, the `next` timer, or at most `MAX_SLEEP_MS`
    /// (hand-offs from other workers are seen then).
    fn idle(&mut self, work: usize, next: Option<Instant>) {
        if work > 0 {
            self.idle = 0;
            return;
        }
        self.idle += 1;
        if self.idle < SPINS_BEFORE_SLEEP {
            std::hint::spin_loop();
            return;
        }
        let until = next
            .map(|n| n.saturating_since(now(self.epoch)).as_millis() as i32)
            .unwrap_or(MAX_SLEEP_MS);
        let timeout = until.clamp(0, MAX_SLEEP_MS);
        if timeout > 0 && self.inboxes[self.me].sleep(&mut self.pollset, self.wake_idx, timeout) {
            self.st.sleeps += 1;
        }
    }

    /// The stop phase: install the moves still on their way, reset every
    /// connection, answer late arrivals, then count; returns the
    /// counters.
    fn stop(mut self) -> WorkerStats {
        let (me, workers) = (self.me, self.workers);
        // Moves on their way when the run stopped are installed before the
        // resets below, so that they are reset too (a move dropped with the
        // inbox left its peer's connection open: Linux retransmitted into the
        // next run) and every move out is a move in. Once every worker has
        // left its loop (bounded wait), nothing is pushed any more.
        // Handshakes in progress: their SYN/ACKs are still to be answered
        // (`answer_late`); counted before all leave, so that every worker
        // waits for every worker's.
        // What the stop sends (resets, late answers) is flushed as it
        // goes: no flow is published any more.
        for stack in &mut self.stacks {
            stack.device_mut().set_flush_when_full(true);
        }
        let half_open = syn_sent(&self.stacks);
        self.st.stop_syn_sent = half_open as u64;
        self.stop_sync.expect_synacks(half_open);
        self.stop_sync.left_loop(workers);
        let t = now(self.epoch);
        self.returns.flush(&self.inboxes, t, &mut self.st);
        install_arrivals(
            &self.inboxes[me],
            &mut self.stacks,
            &mut self.apps,
            t,
            &mut self.st,
        );
        // The run is over: reset what is still open, as a process's exit
        // closes its sockets, so that peers do not keep retransmitting to us,
        // and let the resets leave (bounded: the ring drains 32 per kick on
        // veth; a reset that finds no room is counted in `tx_ring_full`).
        reset_all(&mut self.stacks, t);
        // Late answers to what was sent just before the stop (see
        // `answer_late`), then whatever opened meanwhile is reset too.
        let epoch = self.epoch;
        answer_late(
            &mut self.stacks,
            &mut self.batch,
            || now(epoch),
            &self.stop_sync,
            &mut self.st,
        );
        reset_all(&mut self.stacks, now(self.epoch));
        for (stack, app) in self.stacks.iter().zip(self.apps.iter()) {
            self.st.add_stack(stack, app.stats_json());
        }
        // Count the frames the stacks hold now that traffic has stopped (the
        // connections' buffers), before anything is torn down.
        for c in &self.caches {
            c.fold_live();
        }
        if let Some(held) = self.stop_sync.meet(me, workers) {
            for (stack, slot) in self.stacks.iter().zip(held) {
                slot.store(stack.device().umem().live_frames(), Ordering::Relaxed);
            }
            self.stop_sync.release();
        }
        std::mem::take(&mut self.st)
    }
}
