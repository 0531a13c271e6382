//! One run-to-completion worker: its queue's socket on every interface, one
//! stack and one app per interface, and an inbox of frames handed over by
//! other workers (the flows it owns that arrived on their queues).

use super::directory::FlowDirectory;
use super::links::LinkWatch;
use super::migrate::Moved;
use super::owner::{classify, tuple_hash, Dest};
use super::tokens::{TokenDirectory, TokenInsert};
use crate::app::{dispatch, App};
use crate::app_migrate::{move_in, move_out_of, ConnMove};
use crate::io::xdp::rss::Rss;
use crate::io::xdp::sys::{EventFd, PollSet};
use crate::io::xdp::{CacheGuard, DeviceCounters, XdpDevice, XdpFrame};
use crate::io::Frame;
use crate::stack::{Migrant, RemoteMsg, Stack, StackConfig, StackCounters};
use crate::tcp::FourTuple;
use crate::time::Instant;
use core::net::Ipv4Addr;
use crossbeam::queue::ArrayQueue;
use std::sync::atomic::{fence, AtomicBool, Ordering};
use std::sync::Arc;

/// Frames handed to a worker per loop iteration at most.
const INBOX_BATCH: usize = 256;
/// Busy loops without work before the worker sleeps in `poll(2)`.
const SPINS_BEFORE_SLEEP: u32 = 64;
/// Longest sleep (a missed wake-up costs at most this much latency).
const MAX_SLEEP_MS: i32 = 10;

/// An MPTCP message between the stacks of two workers
/// (`stack::mptcp_remote`).
pub type MpMsg = RemoteMsg<XdpFrame>;

/// A worker's inbox: frames handed over by other workers, MPTCP messages
/// from each other worker (one ring per sender: each is read in order),
/// and an eventfd that wakes the worker when it sleeps in `poll(2)`.
pub struct Inbox {
    queue: ArrayQueue<Inbound>,
    msgs: Vec<ArrayQueue<MpMsg>>,
    sleeping: AtomicBool,
    wake: EventFd,
}

impl Inbox {
    /// Room for `capacity` frames and for `msgs` messages from each of
    /// `workers` workers.
    pub fn new(capacity: usize, msgs: usize, workers: usize) -> std::io::Result<Inbox> {
        Ok(Inbox {
            queue: ArrayQueue::new(capacity),
            msgs: (0..workers).map(|_| ArrayQueue::new(msgs)).collect(),
            sleeping: AtomicBool::new(false),
            wake: EventFd::new()?,
        })
    }

    /// Wake the owner if it sleeps, after a push.
    fn notify(&self) {
        // Pairs with the fence in `sleep`: either the owner sees the push
        // before sleeping, or we see it sleeping and wake it.
        fence(Ordering::SeqCst);
        if self.sleeping.load(Ordering::Relaxed) {
            self.wake.notify();
        }
    }

    /// Hand `h` over; wakes the owner if it sleeps. Gives `h` back if full.
    fn push(&self, h: Handoff) -> Result<(), Handoff> {
        self.push_any(Inbound::Frame(h)).map_err(|i| match i {
            Inbound::Frame(h) => h,
            Inbound::Flow { .. } | Inbound::Conn { .. } => unreachable!("a frame was pushed"),
        })
    }

    /// Hand a frame or a flow over (one ring: a flow moved here is
    /// installed before the frames its old owner forwards after it).
    fn push_any(&self, i: Inbound) -> Result<(), Inbound> {
        self.queue.push(i)?;
        self.notify();
        Ok(())
    }

    /// A message from worker `from`; given back if its ring is full.
    // Messages go by value into the ring's slots: boxing the large ones
    // (a subflow's view) would allocate per message.
    #[allow(clippy::result_large_err)]
    fn push_msg(&self, from: usize, m: MpMsg) -> Result<(), MpMsg> {
        match self.msgs.get(from) {
            Some(q) => q.push(m)?,
            None => return Err(m),
        }
        self.notify();
        Ok(())
    }

    pub fn pop(&self) -> Option<Inbound> {
        self.queue.pop()
    }

    /// Drop whatever waits (at teardown: the frames go back to their
    /// pools).
    pub fn drain(&self) {
        while self.queue.pop().is_some() {}
        for q in &self.msgs {
            while q.pop().is_some() {}
        }
    }

    fn is_empty(&self) -> bool {
        self.queue.is_empty() && self.msgs.iter().all(|q| q.is_empty())
    }
}

/// Messages to other workers that found their ring full, in order, per
/// worker: sent before any newer one (bounded in practice: a subflow has
/// one data message in flight at a time).
struct Outbox {
    waiting: Vec<std::collections::VecDeque<MpMsg>>,
}

impl Outbox {
    fn send(&mut self, inboxes: &[Inbox], me: usize, to: usize, m: MpMsg) {
        let Some(w) = self.waiting.get_mut(to) else {
            return;
        };
        if !w.is_empty() {
            w.push_back(m);
            return;
        }
        if let Err(m) = inboxes[to].push_msg(me, m) {
            w.push_back(m);
        }
    }

    /// Send what waits; whether some still does.
    fn flush(&mut self, inboxes: &[Inbox], me: usize) -> bool {
        let mut left = false;
        for (to, w) in self.waiting.iter_mut().enumerate() {
            while let Some(m) = w.pop_front() {
                if let Err(m) = inboxes[to].push_msg(me, m) {
                    w.push_front(m);
                    break;
                }
            }
            left |= !w.is_empty();
        }
        left
    }
}

/// What a worker's inbox holds.
pub enum Inbound {
    Frame(Handoff),
    /// A flow that moves here (`stack::Migrant`), on interface `iface`,
    /// from worker `from`; `back`: it is coming back, refused there.
    Flow {
        iface: usize,
        from: usize,
        back: bool,
        flow: Box<Migrant<XdpFrame>>,
    },
    /// A TCP or MPTCP connection that moves here with its app's state
    /// (`app_migrate::ConnMove`; an MPTCP one with its connection level
    /// and token), the same way.
    Conn {
        iface: usize,
        from: usize,
        back: bool,
        conn: Box<ConnMove<XdpFrame>>,
    },
}

/// How long a move refused on arrival keeps trying to go back to the
/// worker it came from while that worker's inbox is full (it only is if
/// that worker is stuck).
const RETURN_FOR: core::time::Duration = core::time::Duration::from_secs(2);

/// Moves refused on arrival (`Inbound::Flow`/`Conn` whose flow is here
/// already, or that the app or the table here cannot take), on their way
/// back to the worker they came from, which installs them again: nothing
/// already accepted is lost on a move. One that finds that worker's
/// inbox full waits here and is tried again each loop (bounded by
/// [`RETURN_FOR`], counted).
#[derive(Default)]
struct Returns {
    waiting: Vec<(usize, Inbound, Instant)>,
}

impl Returns {
    fn send(
        &mut self,
        inboxes: &[Inbox],
        to: usize,
        i: Inbound,
        now: Instant,
        st: &mut WorkerStats,
    ) {
        st.flows_migration_refused += 1;
        if let Err(i) = inboxes[to].push_any(i) {
            st.flows_return_retries += 1;
            self.waiting.push((to, i, now));
        }
    }

    /// The outcome of a move that arrived here: installed (`Ok`), or
    /// refused, as the `Inbound` that takes it back whole to the worker
    /// it came from, with its strays here and what that worker forwards
    /// meanwhile. Refused on its way back too, nothing can hold it
    /// (counted). Returns whether it was installed as a new arrival.
    fn settle(
        &mut self,
        res: Result<(), Inbound>,
        a: Arrival,
        inboxes: &[Inbox],
        moved: &mut Moved,
        now: Instant,
        st: &mut WorkerStats,
    ) -> bool {
        match res {
            Ok(()) if a.back => {
                moved.forget(a.iface, &a.tuple);
                st.flows_migration_returned += 1;
                false
            }
            Ok(()) => {
                st.flows_migrated_in += 1;
                true
            }
            Err(i) if !a.back => {
                moved.record(a.iface, a.tuple, a.from, now);
                self.send(inboxes, a.from, i, now, st);
                false
            }
            Err(_) => {
                st.flows_migration_dropped += 1;
                false
            }
        }
    }

    /// Try again what waits; whether some still does.
    fn flush(&mut self, inboxes: &[Inbox], now: Instant, st: &mut WorkerStats) -> bool {
        let mut left = Vec::new();
        for (to, i, since) in self.waiting.drain(..) {
            match inboxes[to].push_any(i) {
                Ok(()) => {}
                Err(_) if now.saturating_since(since) >= RETURN_FOR => {
                    st.flows_migration_dropped += 1;
                }
                Err(i) => {
                    st.flows_return_retries += 1;
                    left.push((to, i, since));
                }
            }
        }
        self.waiting = left;
        !self.waiting.is_empty()
    }
}

/// A move that arrived (`Inbound::Flow`/`Conn`): its flow, the worker
/// it came from, and whether it is coming back.
struct Arrival {
    iface: usize,
    tuple: FourTuple,
    from: usize,
    back: bool,
}

/// A frame on its way to the worker that owns its flow (a UMEM handle: no
/// packet bytes move).
pub struct Handoff {
    pub iface: usize,
    /// The worker it arrived on (or that forwards it).
    pub from: usize,
    pub frame: XdpFrame,
    pub len: usize,
    /// A copy of a frame that every worker sees (ARP); captured once, by
    /// the worker it arrived on.
    pub copy: bool,
}

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

/// Counters of one worker.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WorkerStats {
    pub worker: usize,
    pub queue: u32,
    pub core: Option<usize>,
    pub rx_packets: u64,
    pub rx_bytes: u64,
    /// Frames of flows owned by another worker, passed on (frame handles).
    pub handoff_out: u64,
    /// The same, per interface (in `--iface` order).
    pub handoff_out_by_iface: Vec<u64>,
    /// Frames received from other workers.
    pub handoff_in: u64,
    /// Hand-offs lost because the owner's inbox was full.
    pub handoff_dropped: u64,
    /// TCP segments of flows no worker knew (new connections, strays of
    /// closed ones): run here, where they arrived.
    pub flows_unknown: u64,
    /// Those segments by kind: only SYNs are new flows (issue 8).
    pub flows_unknown_kinds: UnknownKinds,
    /// Flows opened here that found no room in the flow directory (their
    /// strays then stay where they arrive).
    pub directory_full: u64,
    /// ARP frames copied to the other workers.
    pub arp_copies: u64,
    /// MPTCP subflows run here whose connection another worker holds
    /// (RFC 8684 §3.2 joins whose token is there: the subflow is owned
    /// where its packets arrive; `stack::mptcp_remote`).
    pub mptcp_subflows_owned: u64,
    /// Bytes those subflows received, handed to the connections' workers
    /// (frames, not copies).
    pub mptcp_bytes_for_other_workers: u64,
    /// Bytes of those connections' data those subflows took to send
    /// (frames the connections' workers filled).
    pub mptcp_bytes_sent_for_other_workers: u64,
    /// MPTCP messages sent to and received from other workers.
    pub mptcp_msgs_out: u64,
    pub mptcp_msgs_in: u64,
    /// MPTCP subflows (`stack::Migrant`) and TCP or MPTCP connections
    /// (`app_migrate::ConnMove`; an MPTCP one with its connection level
    /// and token) moved to the worker where their packets arrive: from
    /// here (the inbox was not full: else they stay) and to here.
    pub flows_migrated_out: u64,
    pub flows_migrated_in: u64,
    /// Of `flows_migrated_in`, those installed after the loop ended: on
    /// their way when the run stopped (then reset with the rest).
    pub flows_migrated_in_at_stop: u64,
    /// Moves that arrived here and could not be installed (their flow
    /// here already, no room, the app refused): sent back to the worker
    /// they came from.
    pub flows_migration_refused: u64,
    /// Moves from here that came back so (installed here again).
    pub flows_migration_returned: u64,
    /// Loops a refused move waited for room in its old worker's inbox.
    pub flows_return_retries: u64,
    /// Moves lost: refused twice (there and back), or their old worker's
    /// inbox full for `RETURN_FOR`.
    pub flows_migration_dropped: u64,
    /// Segments of flows moved away that still reached this worker,
    /// forwarded to the new owner.
    pub flows_forwarded: u64,
    /// Tokens drawn here that found no room in the token directory (joins
    /// for them arriving on other workers' queues are refused).
    pub token_directory_full: u64,
    /// Tokens drawn here that another worker's stack holds too (tokens
    /// are unique per stack; its joins go to that worker, whose HMAC
    /// check refuses them).
    pub token_conflicts: u64,
    /// Interfaces seen losing their carrier (their addresses withdrawn
    /// from MPTCP connections) and getting it back.
    pub links_down: u64,
    pub links_up: u64,
    pub loops: u64,
    pub sleeps: u64,
    pub stacks: Vec<StackCounters>,
    pub devices: Vec<DeviceCounters>,
    /// The kernel's view of each socket (XDP_STATISTICS).
    pub xsk: Vec<XskStats>,
    pub apps: Vec<serde_json::Value>,
}

/// TCP segments of flows no worker knew, by their flags: a SYN opens a
/// flow; the rest are strays of flows that ended (or that no one
/// recorded), answered per RFC 9293 §3.10.7.1 (a reset, unless they are
/// one).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct UnknownKinds {
    pub syn: u64,
    pub syn_ack: u64,
    pub rst: u64,
    pub fin: u64,
    /// With payload (no SYN, RST or FIN).
    pub data: u64,
    /// Pure ACKs.
    pub ack: u64,
}

impl UnknownKinds {
    fn count(&mut self, pkt: &[u8]) {
        let f = tcp_flags(pkt);
        let (syn, ack, rst, fin) = (f & 0x02 != 0, f & 0x10 != 0, f & 0x04 != 0, f & 0x01 != 0);
        let c = if syn && ack {
            &mut self.syn_ack
        } else if syn {
            &mut self.syn
        } else if rst {
            &mut self.rst
        } else if fin {
            &mut self.fin
        } else if tcp_payload_len(pkt) > 0 {
            &mut self.data
        } else {
            &mut self.ack
        };
        *c += 1;
    }
}

/// The TCP payload length of a frame `classify` found TCP (0 if short).
fn tcp_payload_len(pkt: &[u8]) -> usize {
    let ihl = usize::from(pkt.get(14).map_or(0, |v| v & 0x0f)) * 4;
    let total = pkt
        .get(16..18)
        .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let doff = usize::from(pkt.get(14 + ihl + 12).map_or(0, |v| v >> 4)) * 4;
    total.saturating_sub(ihl + doff)
}

/// XDP_STATISTICS of one socket: drops the kernel saw.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct XskStats {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
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

/// RFC 8684 §3.4.2: the addresses of an interface that lost its carrier
/// are withdrawn from this worker's MPTCP connections (REMOVE_ADDR, its
/// subflows reset), unless an interface still up owns them too, and
/// restored when it is back (announced and joined again).
fn follow_links(
    links: &LinkWatch,
    seen: &mut [bool],
    stacks: &mut [Stack<XdpDevice>],
    st: &mut WorkerStats,
) {
    for i in 0..seen.len() {
        let up = links.is_up(i);
        if up == seen[i] {
            continue;
        }
        seen[i] = up;
        // Subflows on the interface stop (or resume) taking data, whatever
        // becomes of the address.
        stacks[i].link_state(up);
        let addrs: Vec<Ipv4Addr> = stacks[i].config().addrs.iter().map(|a| a.addr).collect();
        for ip in addrs {
            // An address that another interface still up owns too (one
            // address behind several interfaces) is still ours to use:
            // only the subflows on the dead interface die, of their own
            // timeouts.
            let elsewhere = (0..seen.len()).any(|j| {
                j != i && seen[j] && stacks[j].config().addrs.iter().any(|a| a.addr == ip)
            });
            if up {
                crate::stack::mptcp_restore_address(stacks, ip);
            } else if !elsewhere {
                crate::stack::mptcp_withdraw_address(stacks, ip);
            }
        }
        if up {
            st.links_up += 1;
        } else {
            st.links_down += 1;
        }
    }
}

/// The TCP flags of a frame `classify` found TCP (0 if short).
fn tcp_flags(pkt: &[u8]) -> u8 {
    let l4 = 14 + usize::from(pkt.get(14).map_or(0, |v| v & 0x0f)) * 4;
    pkt.get(l4 + 13).copied().unwrap_or(0)
}

/// Connections reset at a time when a run stops, between drains of the
/// transmit ring.
const STOP_BATCH: usize = 256;

impl WorkerStats {
    /// A move popped from the inbox after the loop ended, installed
    /// (`in_`) or not, going back to where it came from (`back`) or not.
    fn count_stop_install(&mut self, in_: bool, back: bool) {
        match (in_, back) {
            (true, true) => self.flows_migration_returned += 1,
            (true, false) => {
                self.flows_migrated_in += 1;
                self.flows_migrated_in_at_stop += 1;
            }
            (false, _) => self.flows_migration_dropped += 1,
        }
    }
}

/// How long a stopping worker still answers what arrives (see `run`).
const STOP_DRAIN: core::time::Duration = core::time::Duration::from_millis(30);

/// Reset every connection of `stacks` and let the resets leave
/// (bounded: the ring drains 32 per kick on veth; a reset that finds no
/// room is counted in `tx_ring_full`).
fn reset_all(stacks: &mut [Stack<XdpDevice>], t: Instant) {
    for stack in stacks.iter_mut() {
        let mut left = stack.conn_count();
        for _ in 0..=left / STOP_BATCH {
            left = stack.abort_all(t, STOP_BATCH);
            for _ in 0..STOP_BATCH {
                if !stack.device_mut().flush() {
                    break;
                }
            }
            if left == 0 {
                break;
            }
        }
    }
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
    let mut outbox = Outbox {
        waiting: (0..workers).map(|_| Default::default()).collect(),
    };
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
            .chain(std::iter::once(inboxes[me].wake.fd())),
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
                .and_then(|app| move_out_of(&mut stacks, h.iface, app, t, &tuple, syn_ack))
            {
                let Some(stack) = stacks.get_mut(h.iface) else {
                    continue;
                };
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
                let Some(m) = inboxes[me].msgs[from].pop() else {
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
            stack.mptcp_remote_unpark(t);
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
        if timeout > 0 {
            let inbox = &inboxes[me];
            inbox.sleeping.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if inbox.is_empty() {
                st.sleeps += 1;
                pollset.wait(timeout);
                if pollset.readable(wake_idx) {
                    inbox.wake.drain();
                }
            }
            inbox.sleeping.store(false, Ordering::Relaxed);
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
    while let Some(i) = inboxes[me].pop() {
        match i {
            Inbound::Frame(_) => {}
            Inbound::Conn {
                iface, back, conn, ..
            } => {
                let in_ = match (stacks.get_mut(iface), apps.get_mut(iface)) {
                    (Some(stack), Some(app)) => move_in(stack, app, t, *conn).is_ok(),
                    _ => false,
                };
                st.count_stop_install(in_, back);
            }
            Inbound::Flow {
                iface, back, flow, ..
            } => {
                let in_ = stacks
                    .get_mut(iface)
                    .is_some_and(|s| s.mptcp_migrate_try_in(t, *flow, true).is_ok());
                st.count_stop_install(in_, back);
            }
        }
    }
    // The run is over: reset what is still open, as a process's exit
    // closes its sockets, so that peers do not keep retransmitting to us,
    // and let the resets leave (bounded: the ring drains 32 per kick on
    // veth; a reset that finds no room is counted in `tx_ring_full`).
    reset_all(&mut stacks, t);
    // Answers to what was sent just before the stop still arrive: a
    // SYN/ACK to a SYN the stop aborted (RFC 9293 §3.10.5: nothing is
    // sent in SYN-SENT) was lost in our rings while the program still
    // steered it here, and Linux kept its half-open connection and sent
    // the SYN/ACK again a second later, into the next run (`flows_unknown`
    // SYN/ACKs there, as many as Linux's `TCPTimeouts`). For a short
    // while they are still read and answered: a segment of no connection
    // gets a reset (RFC 9293 §3.10.7.1). Then whatever opened meanwhile
    // (a SYN to a listener) is reset too.
    let until = std::time::Instant::now() + STOP_DRAIN;
    while std::time::Instant::now() < until {
        let t = now(epoch);
        let mut any = false;
        for stack in stacks.iter_mut() {
            stack.device_mut().recv(&mut batch);
            any |= !batch.is_empty();
            for (frame, len) in batch.drain(..) {
                stack.receive(t, frame, len);
            }
            stack.poll(t);
            for _ in 0..STOP_BATCH {
                if !stack.device_mut().flush() {
                    break;
                }
            }
        }
        if !any {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
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

/// The workers' meeting point at the end of a run: every worker folds its
/// cache's count of live frames, then worker 0 reads the totals while the
/// others wait (bounded: a worker that died does not hang the rest).
pub struct StopSync {
    /// Workers out of their loops (`left_loop`).
    left: std::sync::atomic::AtomicUsize,
    arrived: std::sync::atomic::AtomicUsize,
    released: AtomicBool,
    /// Frames held by the stacks when the workers stopped, per interface.
    pub held: Vec<std::sync::atomic::AtomicIsize>,
}

impl StopSync {
    pub fn new(ifaces: usize) -> StopSync {
        StopSync {
            left: std::sync::atomic::AtomicUsize::new(0),
            arrived: std::sync::atomic::AtomicUsize::new(0),
            released: AtomicBool::new(false),
            held: (0..ifaces)
                .map(|_| std::sync::atomic::AtomicIsize::new(0))
                .collect(),
        }
    }

    /// Arrive; worker 0 gets the slots to fill once all arrived (then
    /// calls `release`), the others wait for that.
    fn meet(&self, me: usize, workers: usize) -> Option<&[std::sync::atomic::AtomicIsize]> {
        self.arrived.fetch_add(1, Ordering::AcqRel);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let wait = |done: &dyn Fn() -> bool| {
            while !done() && std::time::Instant::now() < deadline {
                std::thread::sleep(std::time::Duration::from_micros(200));
            }
            done()
        };
        if me == 0 {
            wait(&|| self.arrived.load(Ordering::Acquire) >= workers).then_some(&self.held[..])
        } else {
            wait(&|| self.released.load(Ordering::Acquire));
            None
        }
    }

    /// Leave the loop, and wait until all `workers` did (bounded: a
    /// worker that died does not hang the rest).
    fn left_loop(&self, workers: usize) {
        self.left.fetch_add(1, Ordering::AcqRel);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while self.left.load(Ordering::Acquire) < workers && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    fn release(&self) {
        self.released.store(true, Ordering::Release);
    }
}
