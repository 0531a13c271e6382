//! A stack and its application as a simulator [`Node`].

use super::device::SimDevice;
use super::frame::HeapFrame;
use super::net::Node;
use crate::app::{App, Event};
use crate::stack::Stack;
use crate::time::Instant;

/// An application that can tell the simulator when it is done.
pub trait SimApp: App<SimDevice> {
    /// Whether the application has finished its work (the simulation ends
    /// when every node is finished). Servers without an end say `true`.
    fn finished(&self, stack: &Stack<SimDevice>) -> bool {
        let _ = stack;
        true
    }
    /// When the application wants `on_poll` without any event (its own
    /// timers). Default: never.
    fn poll_at(&self) -> Option<Instant> {
        None
    }
}

/// Rounds of (events, app poll, stack poll) per service call: a poll may
/// raise events that the app answers with more data to poll out.
const SERVICE_ROUNDS: usize = 16;

/// Virtual time between two invariant checks of a node.
const CHECK_EVERY: core::time::Duration = core::time::Duration::from_millis(1);

/// One stack and its application.
pub struct StackNode<A> {
    pub stack: Stack<SimDevice>,
    pub app: A,
    /// An event taken from the stack to see whether any were pending.
    stash: Option<Event>,
    /// Check the stack's invariants after every service call.
    pub check: bool,
    /// The first invariant found broken (with the virtual time).
    pub violation: Option<String>,
    /// When the invariants were last checked (at most once per virtual
    /// millisecond: what they catch persists until checked).
    checked_at: Option<Instant>,
    /// Finished only once the stack holds no connection either (TIME-WAIT
    /// run out) and no packet waits for ARP (a neighbour being resolved,
    /// or given up on, still holds its frames).
    pub drain: bool,
}

impl<A: SimApp> StackNode<A> {
    pub fn new(stack: Stack<SimDevice>, app: A) -> Self {
        StackNode {
            stack,
            app,
            stash: None,
            check: false,
            violation: None,
            checked_at: None,
            drain: false,
        }
    }
}

impl<A: SimApp> Node for StackNode<A> {
    fn receive(&mut self, now: Instant, _port: usize, frame: HeapFrame, len: usize) {
        self.stack.receive(now, frame, len);
    }

    fn service(&mut self, now: Instant) {
        for _ in 0..SERVICE_ROUNDS {
            while let Some(ev) = self.stash.take().or_else(|| self.stack.next_event()) {
                self.app.on_event(&mut self.stack, now, ev);
            }
            self.app.on_poll(&mut self.stack, now);
            self.stack.poll(now);
            self.stash = self.stack.next_event();
            if self.stash.is_none() {
                break;
            }
        }
        let due = self
            .checked_at
            .is_none_or(|t| now.saturating_since(t) >= CHECK_EVERY);
        if self.check && self.violation.is_none() && due {
            self.checked_at = Some(now);
            if let Err(e) = self.stack.check_invariants() {
                self.violation = Some(format!("{:.3} ms: {e}", now.micros() as f64 / 1000.0));
            }
        }
    }

    fn poll_at(&self) -> Option<Instant> {
        if self.stash.is_some() {
            // Events are waiting: service again without moving time on.
            return Some(Instant::ZERO);
        }
        [self.stack.poll_at(), self.app.poll_at()]
            .into_iter()
            .flatten()
            .min()
    }

    fn device_mut(&mut self, _port: usize) -> &mut SimDevice {
        self.stack.device_mut()
    }

    fn finished(&self) -> bool {
        self.app.finished(&self.stack)
            && (!self.drain || self.stack.conn_count() == 0 && self.stack.arp_stats().1 == 0)
    }
}

/// The application of a host's extra interfaces: none (their stacks carry
/// MPTCP subflows of connections the first interface's application owns).
#[derive(Debug, Default)]
pub struct NoApp;

impl App<SimDevice> for NoApp {
    fn on_event(&mut self, _: &mut Stack<SimDevice>, _: Instant, _: Event) {}
}

impl SimApp for NoApp {}

/// A multihomed host, as a worker with several `--iface`s runs it: one
/// stack per interface, the application on the first (`main`), and MPTCP
/// routed between the stacks (`stack::mptcp_route`) before each round of
/// transmissions. Interface `p` is port `p` of the node.
pub struct HostNode<A> {
    pub main: StackNode<A>,
    pub extra: Vec<StackNode<NoApp>>,
}

impl<A: SimApp> HostNode<A> {
    pub fn new(main: StackNode<A>, extra: Vec<StackNode<NoApp>>) -> Self {
        let mut h = HostNode { main, extra };
        if !h.extra.is_empty() {
            for (i, s) in h.stacks().into_iter().enumerate() {
                s.mptcp_set_shared(i);
            }
        }
        h
    }

    /// Every interface's stack, in port order.
    pub fn stacks(&mut self) -> Vec<&mut Stack<SimDevice>> {
        core::iter::once(&mut self.main.stack)
            .chain(self.extra.iter_mut().map(|n| &mut n.stack))
            .collect()
    }

    /// The first broken invariant of any of the stacks.
    pub fn violation(&self) -> Option<String> {
        core::iter::once(&self.main.violation)
            .chain(self.extra.iter().map(|n| &n.violation))
            .find_map(|v| v.clone())
    }

    fn route(&mut self) {
        if !self.extra.is_empty() {
            crate::stack::mptcp_route(&mut self.stacks());
        }
    }
}

impl<A: SimApp> Node for HostNode<A> {
    fn receive(&mut self, now: Instant, port: usize, frame: HeapFrame, len: usize) {
        match port.checked_sub(1) {
            None => self.main.receive(now, 0, frame, len),
            Some(i) => {
                if let Some(n) = self.extra.get_mut(i) {
                    n.receive(now, 0, frame, len);
                }
            }
        }
    }

    fn service(&mut self, now: Instant) {
        // As the worker: what arrived is routed between the stacks, then
        // each runs its application and transmits; routing again lets a
        // subflow's answer leave in this round rather than the next.
        self.route();
        self.main.service(now);
        self.extra.iter_mut().for_each(|n| n.service(now));
        self.route();
        self.main.service(now);
        self.extra.iter_mut().for_each(|n| n.service(now));
    }

    fn poll_at(&self) -> Option<Instant> {
        core::iter::once(self.main.poll_at())
            .chain(self.extra.iter().map(|n| n.poll_at()))
            .flatten()
            .min()
    }

    fn device_mut(&mut self, port: usize) -> &mut SimDevice {
        match port.checked_sub(1).and_then(|i| self.extra.get_mut(i)) {
            Some(n) => n.stack.device_mut(),
            None => self.main.stack.device_mut(),
        }
    }

    fn finished(&self) -> bool {
        self.main.finished() && self.extra.iter().all(|n| n.finished())
    }

    fn ports(&self) -> usize {
        1 + self.extra.len()
    }
}
