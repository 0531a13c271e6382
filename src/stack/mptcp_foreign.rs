//! MPTCP across the stacks of one worker (RFC 8684 §3.2, §3.3). A worker
//! runs one stack per interface, and tokens are per stack: a join that
//! arrives on interface B for a connection opened on interface A finds no
//! token in B's stack. B then asks the worker's other stacks
//! ([`mptcp_route`], run by the worker between receiving and
//! transmitting): the stack holding the token gives the keys, the subflow
//! is created in B (its packets arrive and leave there) and belongs to
//! the connection in A; its mapped frames move to A's data level and A's
//! DATA_ACK and window come back, in the same thread, without locks or
//! copies. Stacks of different workers do not meet here: a join whose
//! token another worker holds is run where it arrived, exchanging
//! messages with that worker (`mptcp_remote`).

use super::{ConnId, Stack};
use crate::io::Device;
use crate::mptcp::join::JoinSyn;
use crate::tcp::{FourTuple, TcpRepr};
use crate::time::Instant;
use std::borrow::BorrowMut;
use std::collections::VecDeque;

/// Joins waiting for the other stacks' answer, at most (beyond: refused
/// as an unknown token).
const MAX_PENDING: usize = 64;

/// A subflow gone: (the other stack, the connection there, its token, the
/// subflow's place there, the last DATA_ACK it saw).
type Released = (
    usize,
    ConnId,
    u32,
    Option<usize>,
    Option<crate::mptcp::RxDsn>,
);

/// A join SYN whose token this stack does not hold.
#[derive(Debug, Clone, Copy)]
pub(super) struct PendingJoin {
    pub(super) now: Instant,
    pub(super) tuple: FourTuple,
    pub(super) seg: TcpRepr,
    pub(super) port: u16,
    pub(super) token: u32,
}

impl PendingJoin {
    pub(super) fn new(
        now: Instant,
        tuple: FourTuple,
        seg: &TcpRepr,
        port: u16,
        token: u32,
    ) -> Self {
        PendingJoin {
            now,
            tuple,
            seg: *seg,
            port,
            token,
        }
    }
}

/// This stack's exchanges with the worker's other stacks.
#[derive(Debug, Default)]
pub(super) struct Foreign {
    /// The stack's index among the worker's stacks; `None`: alone (joins
    /// of unknown tokens are refused at once).
    index: Option<usize>,
    pending: VecDeque<PendingJoin>,
    /// Subflows here whose connection is in another stack, with news for
    /// it: (subflow, the other stack, the connection there).
    pub(super) dirty: Vec<(ConnId, usize, ConnId)>,
    /// Connections here that ended: their subflows in the other stacks
    /// close (`Stack::mptcp_end_subflows`), their FINs carrying the
    /// DATA_FIN at this DSN when the first subflow is gone.
    pub(super) meta_closing: Vec<(ConnId, Option<u64>)>,
    /// Subflows gone: (the other stack, the connection there, its token,
    /// the subflow's place there, the last DATA_ACK it saw).
    released: Vec<Released>,
    /// Joins opened here for a connection in another stack and refused:
    /// (the other stack, the connection there).
    pub(super) refused: Vec<(usize, ConnId)>,
    /// Subflows here whose connection is in another stack: (subflow, the
    /// other stack, the connection there), for the scheduler.
    pub(super) subs: Vec<(ConnId, usize, ConnId)>,
    /// Path-management signals received here for a connection in another
    /// stack: (the other stack, the connection there, the signals).
    pub(super) signals: Vec<(usize, ConnId, crate::mptcp::pm::Signals)>,
}

impl Foreign {
    /// Queue a join for the other stacks. False when there are none (or
    /// too many wait): refuse it now.
    pub(super) fn ask(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        seg: &TcpRepr,
        port: u16,
        token: u32,
    ) -> bool {
        if self.index.is_none() || self.pending.len() >= MAX_PENDING {
            return false;
        }
        self.pending
            .push_back(PendingJoin::new(now, tuple, seg, port, token));
        true
    }

    /// This stack's index among the worker's, if it shares.
    pub(super) fn index(&self) -> Option<usize> {
        self.index
    }

    /// Whether work queued here (for the next `mptcp_route`) names
    /// connection `meta` of stack `i`, or its `token`: path-management
    /// signals, a subflow gone, a join refused, or a join waiting for the
    /// token's holder. Such a connection does not leave the worker until
    /// it is done (it would find the connection gone, `mptcp_rehome`).
    pub(super) fn waits_for(&self, i: usize, meta: ConnId, token: u32) -> bool {
        self.signals.iter().any(|x| x.0 == i && x.1 == meta)
            || self.released.iter().any(|x| x.0 == i && x.1 == meta)
            || self.refused.contains(&(i, meta))
            || self.pending.iter().any(|p| p.token == token)
    }

    pub(super) fn released(
        &mut self,
        stack: usize,
        meta: ConnId,
        token: u32,
        slot: Option<usize>,
        ack: Option<crate::mptcp::RxDsn>,
    ) {
        self.released.push((stack, meta, token, slot, ack));
    }
}

impl<D: Device> Stack<D> {
    /// This is stack `index` of a worker with several: joins for tokens
    /// held by the others are routed by [`mptcp_route`].
    pub fn mptcp_set_shared(&mut self, index: usize) {
        self.mptcp.foreign.index = Some(index);
    }

    /// After input on subflow `id` of connection `meta` in stack `stack`:
    /// news for it.
    pub(super) fn mptcp_forward_foreign(&mut self, id: ConnId, stack: usize, meta: ConnId) {
        self.mptcp.foreign.dirty.push((id, stack, meta));
    }
}

/// `stacks[a]` and `stacks[b]` at once (`a != b`).
pub(super) fn pair<T>(v: &mut [T], a: usize, b: usize) -> Option<(&mut T, &mut T)> {
    if a == b || a >= v.len() || b >= v.len() {
        return None;
    }
    if a < b {
        let (l, r) = v.split_at_mut(b);
        Some((&mut l[a], &mut r[0]))
    } else {
        let (l, r) = v.split_at_mut(a);
        Some((&mut r[0], &mut l[b]))
    }
}

/// Route MPTCP between the stacks of one worker: the path managers'
/// active joins (`mptcp_pm`), joins for tokens another stack holds, joined subflows' data to their connection and its
/// DATA_ACK and window back, freed subflow places. Run by the worker
/// after receiving and before transmitting, so that a subflow's ACK
/// carries its connection's state. `stacks[i]` must be the stack given
/// index `i` with [`Stack::mptcp_set_shared`].
pub fn mptcp_route<D: Device, S: BorrowMut<Stack<D>>>(stacks: &mut [S]) {
    super::mptcp_pm::assign_addr_ids(stacks);
    for i in 0..stacks.len() {
        super::mptcp_pm::pm_run(stacks, i);
        while let Some(p) = stacks[i].borrow_mut().mptcp.foreign.pending.pop_front() {
            let found = (0..stacks.len())
                .filter(|&j| j != i)
                .find_map(|j| Some((j, stacks[j].borrow().mptcp_join_target(p.token)?)));
            let syn = JoinSyn::find(p.seg.options.mptcp.as_slice());
            match (found, syn) {
                (Some((j, t)), Some(syn)) => {
                    let here = stacks[i].borrow_mut();
                    let meta = t.conn;
                    let of = super::mptcp::JoinOf::Stack(j);
                    let id = here.mptcp_accept_join(p.now, p.tuple, &p.seg, p.port, &syn, t, of);
                    if id.is_some() {
                        stacks[j].borrow_mut().mptcp_count_join(meta, p.token, true);
                    }
                }
                // Another worker may hold it (`mptcp_remote`), or its
                // connection is leaving another stack here.
                (None, Some(_)) if stacks[i].borrow_mut().mptcp_remote_ask(p) => {}
                (None, Some(_)) if super::mptcp_rehome::park_join(stacks, i, p) => {}
                _ => {
                    let s = stacks[i].borrow_mut();
                    s.iface.counters.mptcp_joins_rejected_token += 1;
                    s.send_join_reset(p.now, &p.tuple, &p.seg);
                }
            }
        }
        while let Some((j, meta, sig)) = stacks[i].borrow_mut().mptcp.foreign.signals.pop() {
            if let Some(s) = stacks.get_mut(j) {
                s.borrow_mut().mptcp_follow_signals(meta, &sig);
            }
        }
        while let Some((j, meta)) = stacks[i].borrow_mut().mptcp.foreign.refused.pop() {
            if let Some(s) = stacks.get_mut(j) {
                s.borrow_mut().mptcp_early_join_refused(meta);
            }
        }
        // Lent frames of gone subflows first: their data is reinjected
        // from them (RFC 8684 §3.3.6).
        let returns = core::mem::take(&mut stacks[i].borrow_mut().mptcp_returns);
        for (j, meta, _slot, frames) in returns {
            if let Some(s) = stacks.get_mut(j) {
                if let Some(m) = s.borrow_mut().conns.get_mut(meta) {
                    m.conn.mptcp_frames_back(frames.into_iter());
                }
            }
        }
        while let Some((j, meta, token, slot, ack)) =
            stacks[i].borrow_mut().mptcp.foreign.released.pop()
        {
            if let Some(s) = stacks.get_mut(j) {
                let s = s.borrow_mut();
                s.mptcp_count_join(meta, token, false);
                if let Some(slot) = slot {
                    s.mptcp_foreign_gone(meta, slot, ack);
                }
            }
        }
        // Our data for subflows here whose connection is there (RFC 8684
        // §3.3.8): copied into this stack's frames (another UMEM).
        for k in 0..stacks[i].borrow().mptcp.foreign.subs.len() {
            let Some(&(sub, j, meta)) = stacks[i].borrow().mptcp.foreign.subs.get(k) else {
                break;
            };
            let Some((here, there)) = pair(stacks, i, j) else {
                continue;
            };
            let (here, there) = (here.borrow_mut(), there.borrow_mut());
            // What the subflow can take now, every round (the connection's
            // own scheduling pass sees it too).
            if let (Some(m), Some(s)) = (there.conns.get_mut(meta), here.conns.get(sub)) {
                m.conn.mptcp_refresh_view(Some(&s.conn));
            }
            super::mptcp::schedule_across(there, meta, here, sub);
        }
        while let Some((meta, data_fin)) = stacks[i].borrow_mut().mptcp.foreign.meta_closing.pop() {
            for k in (0..stacks.len()).filter(|&k| k != i) {
                let s = stacks[k].borrow_mut();
                let subs: Vec<ConnId> = s
                    .mptcp
                    .foreign
                    .subs
                    .iter()
                    .filter(|&&(_, j, m)| j == i && m == meta)
                    .map(|s| s.0)
                    .collect();
                for sub in subs {
                    s.close_subflow(sub, data_fin);
                }
            }
        }
        while let Some((sub, j, meta)) = stacks[i].borrow_mut().mptcp.foreign.dirty.pop() {
            let Some((here, there)) = pair(stacks, i, j) else {
                continue;
            };
            let (here, there) = (here.borrow_mut(), there.borrow_mut());
            let lend = super::mptcp::same_pool(there, here);
            if let (Some(m), Some(s)) = (there.conns.get_mut(meta), here.conns.get_mut(sub)) {
                // From now on it reads the connection's level before each
                // segment (`Stack::mptcp_refresh_level`).
                if s.level.is_none() {
                    s.level = m.conn.mptcp_level_cell();
                }
                m.conn.mptcp_register_joined(&mut s.conn, lend);
                if m.conn.mptcp_joined_data_ack(&mut s.conn) {
                    there.mark_dirty(meta);
                }
            }
            let taken = here.mptcp_subflow_take(sub);
            let r = there.mptcp_meta_data(meta, taken);
            here.mptcp_subflow_reply(sub, r);
        }
    }
}
