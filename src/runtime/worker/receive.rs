//! The receive phase: one interface's RX batch, each frame run here or
//! handed to the worker that owns its flow.

use super::{Handoff, Inbox, RuntimeApp, Worker, WorkerStats};
use crate::io::xdp::XdpFrame;
use crate::io::Frame;
use crate::runtime::owner::{classify, tuple_hash, Dest};
use crate::time::Instant;

impl<A: RuntimeApp> Worker<A> {
    /// Receive what waits on interface `i`'s socket; the frames read.
    pub(super) fn receive(&mut self, i: usize, t: Instant) -> usize {
        let me = self.me;
        let workers = self.workers;
        let stacks = &mut self.stacks;
        let st = &mut self.st;
        if self.busy_poll {
            stacks[i].device_mut().busy_poll();
        }
        let dev = stacks[i].device_mut();
        let before = dev.counters().rx_packets;
        dev.recv(&mut self.batch);
        // Packets as on the wire: one in several buffers counts once
        // (`--rx-multibuf`), however many frames it became.
        st.rx_packets += dev.counters().rx_packets - before;
        let work = self.batch.len();
        for (frame, len) in self.batch.drain(..) {
            st.rx_frames += 1;
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
                    let owner = self.moved.owner(i, &tuple, t).or_else(|| {
                        self.directory
                            .lookup(tuple_hash(&tuple, i))
                            .filter(|&w| w != me)
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
                    let h = Handoff {
                        iface: i,
                        from: me,
                        frame,
                        len,
                        copy: false,
                    };
                    hand_over(&self.inboxes[w], h, st);
                    continue;
                }
                Dest::All if workers > 1 => copy_arp(&self.inboxes, me, i, &frame, len, st),
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
                Dest::Tcp(tuple) => self
                    .directory
                    .lookup(tuple_hash(&tuple, i))
                    .filter(|&w| w != me),
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
            hand_over(&self.inboxes[w], h, st);
        }
        work
    }
}

/// Hand `h` to the worker that owns its flow (counted; lost if that
/// worker's inbox is full).
fn hand_over(inbox: &Inbox, h: Handoff, st: &mut WorkerStats) {
    let iface = h.iface;
    match inbox.push(h) {
        Ok(()) => {
            st.handoff_out += 1;
            st.handoff_out_by_iface[iface] += 1;
        }
        Err(_) => st.handoff_dropped += 1,
    }
}

/// A copy of an ARP frame that arrived on interface `i` for every other
/// worker (each keeps its own ARP cache).
fn copy_arp(
    inboxes: &[Inbox],
    me: usize,
    i: usize,
    frame: &XdpFrame,
    len: usize,
    st: &mut WorkerStats,
) {
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
