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
    /// run out).
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
    fn receive(&mut self, now: Instant, frame: HeapFrame, len: usize) {
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

    fn device_mut(&mut self) -> &mut SimDevice {
        self.stack.device_mut()
    }

    fn finished(&self) -> bool {
        self.app.finished(&self.stack) && (!self.drain || self.stack.conn_count() == 0)
    }
}
