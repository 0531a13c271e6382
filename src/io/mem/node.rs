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
    /// When the application wants to be polled without any traffic (its
    /// own timers). Default: never.
    fn poll_at(&self) -> Option<Instant> {
        None
    }
}

/// Rounds of (events, app poll, stack poll) per service call: a poll may
/// raise events that the app answers with more data to poll out.
const SERVICE_ROUNDS: usize = 16;

/// One stack and its application.
pub struct StackNode<A> {
    pub stack: Stack<SimDevice>,
    pub app: A,
    /// An event taken from the stack to see whether any were pending.
    stash: Option<Event>,
}

impl<A: SimApp> StackNode<A> {
    pub fn new(stack: Stack<SimDevice>, app: A) -> Self {
        StackNode {
            stack,
            app,
            stash: None,
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
    }

    fn poll_at(&self) -> Option<Instant> {
        if self.stash.is_some() {
            // Events are waiting: service again without moving time on.
            return Some(Instant::ZERO);
        }
        match (self.stack.poll_at(), self.app.poll_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn device_mut(&mut self) -> &mut SimDevice {
        self.stack.device_mut()
    }

    fn finished(&self) -> bool {
        self.app.finished(&self.stack)
    }
}
