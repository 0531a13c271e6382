//! The event API that applications are written against, the same in the
//! simulator and on AF_XDP workers.
//!
//! Run to completion: after the stack has processed a batch of input, the
//! worker calls [`dispatch`], which hands each pending [`Event`] to the
//! [`App`]; the app reacts by calling the stack's socket methods
//! (`recv_with`, `send`, `shutdown`, `connect`, ...) right there.

use crate::io::Device;
use crate::stack::{ConnId, Stack};
use crate::time::Instant;
use std::any::Any;

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// Both directions closed normally.
    Normal,
    /// The peer reset the connection.
    Reset,
    /// Retransmissions, user timeout or keepalive gave up.
    TimedOut,
    /// The local application aborted it.
    Aborted,
    /// An active open was refused (RST to our SYN).
    Refused,
    /// A hard ICMP error (port or protocol unreachable, administratively
    /// prohibited) ended an opening connection (RFC 1122 §4.2.3.9).
    Unreachable,
}

/// Something an application must react to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// A passive open on `port` completed.
    Accepted { id: ConnId, port: u16 },
    /// An active open completed.
    Connected { id: ConnId },
    /// In-order data is ready to read.
    Readable { id: ConnId },
    /// Send space freed up after a short write.
    Writable { id: ConnId },
    /// The peer finished sending (FIN received); queued data stays readable.
    ReadClosed { id: ConnId },
    /// The connection is gone; `id` is no longer valid after this event.
    Closed { id: ConnId, reason: CloseReason },
    /// Datagrams are queued on the UDP socket bound to `port`.
    UdpReadable { port: u16 },
    /// ICMP errors are queued for the UDP socket bound to `port`
    /// (`Stack::udp_take_error`).
    UdpError { port: u16 },
}

/// An application: reacts to events by calling the stack.
pub trait App<D: Device> {
    fn on_event(&mut self, stack: &mut Stack<D>, now: Instant, ev: Event);
    /// Called once per worker loop iteration after events (for apps that
    /// generate load on their own schedule). Default: nothing.
    fn on_poll(&mut self, _stack: &mut Stack<D>, _now: Instant) {}
    /// Connection `id` is about to move to another worker, where its
    /// packets arrive (`crate::app_migrate`): give up what the app keeps
    /// for it, for [`App::import`] of the same app there. `None` (the
    /// default, or an id the app does not hold): it stays here.
    fn export(&mut self, _id: ConnId) -> Option<Box<dyn Any + Send>> {
        None
    }
    /// Take over connection `id`, moved here, with `state` from
    /// [`App::export`]; its pending events follow. `state` given back,
    /// untouched, if the app cannot take it (not this app's): the
    /// connection then goes back where it came from, with it. Never
    /// called unless `export` gave something.
    fn import(
        &mut self,
        _stack: &mut Stack<D>,
        _now: Instant,
        _id: ConnId,
        state: Box<dyn Any + Send>,
    ) -> Result<(), Box<dyn Any + Send>> {
        Err(state)
    }
}

/// Deliver every pending event to `app`.
// Inline: it runs twice per stack in each worker loop.
#[inline]
pub fn dispatch<D: Device, A: App<D> + ?Sized>(stack: &mut Stack<D>, app: &mut A, now: Instant) {
    // What the application sends may leave at once, at this time.
    stack.advance_clock(now);
    while let Some(ev) = stack.next_event() {
        app.on_event(stack, now, ev);
    }
    app.on_poll(stack, now);
}
