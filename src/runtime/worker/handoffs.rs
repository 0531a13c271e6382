//! The inbox phase: frames, moves and MPTCP messages that other workers
//! handed to this one.

use super::{Handoff, Inbound, RuntimeApp, Worker};
use crate::io::Frame;
use crate::runtime::owner::{classify, Dest};
use crate::runtime::worker_stats::tcp_flags;
use crate::time::Instant;

/// Frames handed to a worker per loop iteration at most.
const INBOX_BATCH: usize = 256;

impl<A: RuntimeApp> Worker<A> {
    /// Take what other workers handed over (at most `INBOX_BATCH`); the
    /// items taken.
    pub(super) fn drain_inbox(&mut self, t: Instant) -> usize {
        let mut work = 0;
        for _ in 0..INBOX_BATCH {
            let Some(inbound) = self.inboxes[self.me].pop() else {
                break;
            };
            work += 1;
            match inbound {
                Inbound::Frame(h) => self.take_handoff(h, t),
                Inbound::Flow {
                    iface,
                    from,
                    back,
                    flow,
                } => self.install_flow(iface, from, back, flow, t),
                Inbound::Conn {
                    iface,
                    from,
                    back,
                    conn,
                } => self.install_conn(iface, from, back, conn, t),
            }
        }
        work
    }

    /// A frame another worker handed over: run here, or forwarded to
    /// where its flow moved; a stray that keeps arriving on another
    /// worker takes its flow there (`move_out`).
    fn take_handoff(&mut self, h: Handoff, t: Instant) {
        let me = self.me;
        self.st.handoff_in += 1;
        let Some(stack) = self.stacks.get_mut(h.iface) else {
            return;
        };
        // A stray of a flow here (not an ARP copy): it may have moved
        // on (forward it), or keep arriving on `h.from` (move it there).
        let stray = match classify(h.frame.buf().get(..h.len).unwrap_or(&[])) {
            Dest::Tcp(tuple) if !h.copy => Some(tuple),
            _ => None,
        };
        if let Some(w) = stray
            .filter(|tuple| !stack.has_conn(tuple))
            .and_then(|tuple| self.moved.owner(h.iface, &tuple, t))
            .filter(|&w| w != me)
        {
            // Still from where it arrived: a stray there, not here.
            match self.inboxes[w].push(h) {
                Ok(()) => self.st.flows_forwarded += 1,
                Err(_) => self.st.handoff_dropped += 1,
            }
            return;
        }
        let syn_ack = tcp_flags(&h.frame.buf()[..h.len]) & 0x12 == 0x12;
        if let Some(tap) = stack.device().capture().filter(|_| !h.copy) {
            tap.capture(&h.frame.buf()[..h.len]);
        }
        stack.receive(t, h.frame, h.len);
        let Some(tuple) = stray.filter(|_| h.from != me) else {
            return;
        };
        self.move_out(h.iface, h.from, tuple, syn_ack, t);
    }

    /// MPTCP messages from the other workers, each sender's in order (at
    /// most `INBOX_BATCH` from each); the messages taken.
    pub(super) fn take_messages(&mut self, t: Instant) -> usize {
        let mut work = 0;
        for from in 0..self.workers {
            for _ in 0..INBOX_BATCH {
                let Some(m) = self.inboxes[self.me].pop_msg(from) else {
                    break;
                };
                work += 1;
                self.st.mptcp_msgs_in += 1;
                crate::stack::mptcp_remote_input(&mut self.stacks, t, from, m);
            }
        }
        work
    }
}
