//! A worker's inbox (frames, moves and MPTCP messages handed over by
//! other workers) and its outbox (messages that found a ring full).

use crate::app_migrate::ConnMove;
use crate::io::xdp::sys::{EventFd, PollSet};
use crate::io::xdp::XdpFrame;
use crate::stack::{Migrant, RemoteMsg};
use crossbeam::queue::ArrayQueue;
use std::sync::atomic::{fence, AtomicBool, Ordering};

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
    pub(super) fn push(&self, h: Handoff) -> Result<(), Handoff> {
        self.push_any(Inbound::Frame(h)).map_err(|i| match i {
            Inbound::Frame(h) => h,
            Inbound::Flow { .. } | Inbound::Conn { .. } => unreachable!("a frame was pushed"),
        })
    }

    /// Hand a frame or a flow over (one ring: a flow moved here is
    /// installed before the frames its old owner forwards after it).
    pub(super) fn push_any(&self, i: Inbound) -> Result<(), Inbound> {
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

    /// The next message from worker `from`.
    // Inline: tried for each worker in every loop of the owner.
    #[inline]
    pub(super) fn pop_msg(&self, from: usize) -> Option<MpMsg> {
        self.msgs.get(from).and_then(|q| q.pop())
    }

    /// The eventfd that `notify` writes (for the owner's `poll(2)` set).
    pub(super) fn wake_fd(&self) -> std::os::fd::RawFd {
        self.wake.fd()
    }

    /// The owner sleeps in `pollset` (`wake_idx`: this inbox's eventfd)
    /// for at most `timeout` ms, unless something waits already; whether
    /// it slept.
    pub(super) fn sleep(&self, pollset: &mut PollSet, wake_idx: usize, timeout: i32) -> bool {
        self.sleeping.store(true, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let slept = self.is_empty();
        if slept {
            pollset.wait(timeout);
            if pollset.readable(wake_idx) {
                self.wake.drain();
            }
        }
        self.sleeping.store(false, Ordering::Relaxed);
        slept
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
pub(super) struct Outbox {
    waiting: Vec<std::collections::VecDeque<MpMsg>>,
}

impl Outbox {
    /// Nothing waiting, for each of `workers` workers.
    pub(super) fn new(workers: usize) -> Outbox {
        Outbox {
            waiting: (0..workers).map(|_| Default::default()).collect(),
        }
    }

    pub(super) fn send(&mut self, inboxes: &[Inbox], me: usize, to: usize, m: MpMsg) {
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
    pub(super) fn flush(&mut self, inboxes: &[Inbox], me: usize) -> bool {
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
