//! The end of a run: the workers' meeting point, and the steps of a
//! worker's stop phase (moves still on their way installed, every
//! connection reset, late answers).

use super::inbox::{Inbound, Inbox};
use super::owner::{classify, Dest};
use super::worker_stats::{tcp_flags, WorkerStats};
use crate::app::App;
use crate::app_migrate::move_in;
use crate::io::xdp::{XdpDevice, XdpFrame};
use crate::io::Frame;
use crate::stack::Stack;
use crate::time::Instant;
use std::sync::atomic::{AtomicBool, Ordering};

/// Connections reset at a time when a run stops, between drains of the
/// transmit ring.
const STOP_BATCH: usize = 256;

/// How long a stopping worker still answers what arrives (`answer_late`).
const STOP_DRAIN: core::time::Duration = core::time::Duration::from_millis(30);

/// How long it keeps answering at most while SYN/ACKs to the SYNs the stop
/// aborted are still due: past Linux's first SYN/ACK retransmission, one
/// second after the first (RFC 6298 §2.1's initial RTO).
const STOP_DRAIN_MAX: core::time::Duration = core::time::Duration::from_millis(1500);

/// Reset every connection of `stacks` and let the resets leave
/// (bounded: the ring drains 32 per kick on veth; a reset that finds no
/// room is counted in `tx_ring_full`).
pub(super) fn reset_all(stacks: &mut [Stack<XdpDevice>], t: Instant) {
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

/// Install the moves that were on their way to this worker when the run
/// stopped (after every worker left its loop: nothing is pushed any
/// more), so that the resets reach them too; the frames go back to their
/// pools.
pub(super) fn install_arrivals<A: App<XdpDevice>>(
    inbox: &Inbox,
    stacks: &mut [Stack<XdpDevice>],
    apps: &mut [A],
    t: Instant,
    st: &mut WorkerStats,
) {
    while let Some(i) = inbox.pop() {
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
}

/// Connections of `stacks` in SYN-SENT: SYN/ACKs still due.
pub(super) fn syn_sent(stacks: &[Stack<XdpDevice>]) -> usize {
    stacks.iter().map(|s| s.syn_sent_count()).sum()
}

/// Answers to what was sent just before the stop still arrive: a
/// SYN/ACK to a SYN the stop aborted (RFC 9293 §3.10.5: nothing is
/// sent in SYN-SENT) that is not read here is lost in our rings, and
/// Linux keeps its half-open connection and sends the SYN/ACK again a
/// second later, into the next run (`flows_unknown` SYN/ACKs there, as
/// many as Linux's `TCPTimeouts`). They are still read and answered: a
/// segment of no connection gets a reset (RFC 9293 §3.10.7.1), which
/// ends Linux's half-open connection. For `STOP_DRAIN`, and longer (up
/// to `STOP_DRAIN_MAX`) while the workers' SYN/ACKs counted in `sync`
/// are due: on a loaded machine Linux's answer to a SYN sent just
/// before the stop took more than `STOP_DRAIN` (3 to 7 SYN/ACKs of the
/// earlier run in 4 of 10 runs beside busy loops), and it may come on
/// any worker's queue, so every worker reads until none is due.
pub(super) fn answer_late(
    stacks: &mut [Stack<XdpDevice>],
    batch: &mut Vec<(XdpFrame, usize)>,
    now: impl Fn() -> Instant,
    sync: &StopSync,
    st: &mut WorkerStats,
) {
    let start = std::time::Instant::now();
    loop {
        let waited = start.elapsed();
        let due = sync.synacks_due.load(Ordering::Acquire) > 0;
        if waited >= STOP_DRAIN_MAX || (waited >= STOP_DRAIN && !due) {
            break;
        }
        let t = now();
        let mut any = false;
        for stack in stacks.iter_mut() {
            stack.device_mut().recv(batch);
            any |= !batch.is_empty();
            for (frame, len) in batch.drain(..) {
                // Every connection is gone: a SYN/ACK is one of those due.
                let pkt = frame.buf().get(..len).unwrap_or(&[]);
                let tcp = matches!(classify(pkt), Dest::Tcp(_));
                if tcp && tcp_flags(pkt) & 0x12 == 0x12 {
                    st.stop_synacks_answered += 1;
                    sync.synack_answered();
                }
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
    st.stop_drain_ms = start.elapsed().as_millis() as u64;
}

/// The workers' meeting point at the end of a run: every worker folds its
/// cache's count of live frames, then worker 0 reads the totals while the
/// others wait (bounded: a worker that died does not hang the rest).
pub struct StopSync {
    /// Workers out of their loops (`left_loop`).
    left: std::sync::atomic::AtomicUsize,
    arrived: std::sync::atomic::AtomicUsize,
    released: AtomicBool,
    /// SYN/ACKs still due to the workers' SYNs aborted at the stop
    /// (`answer_late`).
    synacks_due: std::sync::atomic::AtomicUsize,
    /// Frames held by the stacks when the workers stopped, per interface.
    pub held: Vec<std::sync::atomic::AtomicIsize>,
}

impl StopSync {
    pub fn new(ifaces: usize) -> StopSync {
        StopSync {
            left: std::sync::atomic::AtomicUsize::new(0),
            arrived: std::sync::atomic::AtomicUsize::new(0),
            released: AtomicBool::new(false),
            synacks_due: std::sync::atomic::AtomicUsize::new(0),
            held: (0..ifaces)
                .map(|_| std::sync::atomic::AtomicIsize::new(0))
                .collect(),
        }
    }

    /// Arrive; worker 0 gets the slots to fill once all arrived (then
    /// calls `release`), the others wait for that.
    pub(super) fn meet(
        &self,
        me: usize,
        workers: usize,
    ) -> Option<&[std::sync::atomic::AtomicIsize]> {
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

    /// `n` more SYN/ACKs are due (connections in SYN-SENT at the stop);
    /// counted before `left_loop`, so that every worker's are in once all
    /// left.
    pub(super) fn expect_synacks(&self, n: usize) {
        self.synacks_due.fetch_add(n, Ordering::AcqRel);
    }

    /// One of them came (any SYN/ACK after the stop's resets is).
    fn synack_answered(&self) {
        let _ = self
            .synacks_due
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    /// Leave the loop, and wait until all `workers` did (bounded: a
    /// worker that died does not hang the rest).
    pub(super) fn left_loop(&self, workers: usize) {
        self.left.fetch_add(1, Ordering::AcqRel);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while self.left.load(Ordering::Acquire) < workers && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    pub(super) fn release(&self) {
        self.released.store(true, Ordering::Release);
    }
}
