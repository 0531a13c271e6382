//! A joined subflow run for a connection in a worker becomes a local
//! subflow of it again once both are in the same worker (issue 8): after
//! a move of the connection (`mptcp_rehome`) or of the subflow
//! (`mptcp_migrate`) put them together, or a refused move brought the
//! connection back. Until then its data, DATA_ACKs and our chunks go
//! through the worker's own rings; from then on it is scheduled and fed
//! in place, as a join accepted here would be (RFC 8684 §3.2: a subflow
//! belongs to the connection named by the token, wherever it runs).
//!
//! What it holds goes with it: its mappings and send queue (its own),
//! its place in the connection's scheduler with what it was given (the
//! slot is the connection's and stays), and the DATA_ACK it saw and did
//! not pass on (kept on the subflow, passed on by the local path). It
//! changes only with no data of its own on the way to the connection (a
//! reply pending); messages still in the ring for it or from it are
//! taken as those of a local subflow ([`Stack::mptcp_sub_local_of`],
//! `mptcp_remote`).

use super::mptcp_remote::{RemoteOf, SubRef};
use super::{ConnId, Stack};
use crate::io::Device;
use std::borrow::BorrowMut;

impl<D: Device> Stack<D> {
    /// Whether subflow `id` here, once of a connection in a worker, is now
    /// a local subflow (this stack or another of the worker's) of the
    /// connection holding `token`: what was on its way to it as a remote
    /// subflow is its still.
    pub(super) fn mptcp_sub_local_of(&self, id: ConnId, token: u32) -> bool {
        self.conns.get(id).is_some_and(|e| {
            e.remote_of.is_none()
                && (e.subflow_of.is_some() || e.foreign_of.is_some())
                && e.conn.mptcp_join().is_some_and(|j| j.token == token)
        })
    }

    /// Subflows here of connections in other workers, and of this one's
    /// (not yet made local).
    pub fn mptcp_remote_subflows_here(&self) -> usize {
        self.remote.as_deref().map_or(0, |r| r.mine.len())
    }
}

/// Once a pass: each subflow in the worker's `stacks` run for a
/// connection that is in this worker becomes a local subflow of it (see
/// the module's doc). Returns how many did.
pub fn mptcp_remote_localize<D: Device, S: BorrowMut<Stack<D>>>(stacks: &mut [S]) -> usize {
    let mut made = 0;
    for k in 0..stacks.len() {
        let s = stacks[k].borrow();
        let Some(r) = s.remote.as_deref() else {
            continue;
        };
        let me = r.me;
        let here: Vec<(ConnId, RemoteOf)> = r
            .mine
            .iter()
            .filter_map(|(id, _)| Some((*id, s.conns.get(*id)?.remote_of?)))
            .filter(|(_, ro)| ro.worker == me && !ro.busy)
            .collect();
        for (id, ro) in here {
            made += usize::from(localize(stacks, k, id, ro, me));
        }
    }
    made
}

/// Subflow `id` of stack `k`, run for connection `ro.meta` of this
/// worker (`me`), becomes its local subflow, if the connection knows it
/// (its `Joined` was taken) and its send side matches its slot.
fn localize<D: Device, S: BorrowMut<Stack<D>>>(
    stacks: &mut [S],
    k: usize,
    id: ConnId,
    ro: RemoteOf,
    me: usize,
) -> bool {
    let (i, meta) = (ro.meta.stack, ro.meta.conn);
    let sub = SubRef { stack: k, conn: id };
    // Chunks are lent to it from now on if its frames and the
    // connection's share a pool (`mptcp_tx::lend`).
    let pool = |x: usize| {
        stacks
            .get(x)
            .and_then(|s| s.borrow().iface.dev.frame_pool_id())
    };
    let lend = pool(i).is_some() && pool(i) == pool(k);
    let Some(there) = stacks.get_mut(i) else {
        return false;
    };
    let there = there.borrow_mut();
    if !there.mptcp_meta_valid(&ro.meta) {
        return false;
    }
    let Some(pos) = there.remote.as_deref().and_then(|r| {
        r.subs
            .iter()
            .position(|x| x.meta == meta && x.worker == me && x.sub == sub)
    }) else {
        return false;
    };
    let rs = there.remote.as_deref().and_then(|r| r.subs[pos].rs);
    let here = stacks[k].borrow_mut();
    let Some(e) = here.conns.get_mut(id) else {
        return false;
    };
    // A slot and no send side yet (its first chunks are on the way), or
    // the other way round: not now.
    if rs.is_some() != e.conn.mptcp_tx_slot().is_some() {
        return false;
    }
    if let Some(rs) = rs {
        e.conn.mptcp_tx_attach(rs.slot, lend);
    }
    e.remote_of = None;
    if k == i {
        e.subflow_of = Some(meta);
        here.mptcp.subs.push((id, meta));
    } else {
        e.foreign_of = Some((i, meta));
        here.mptcp.foreign.subs.push((id, i, meta));
        // Its news (data, DATA_ACK) go at the next `mptcp_route`.
        here.mptcp_forward_foreign(id, i, meta);
    }
    if let Some(r) = here.remote.as_deref_mut() {
        r.mine.retain(|m| m.0 != id);
    }
    here.iface.counters.mptcp_subflows_made_local += 1;
    here.mark_dirty(id);
    let there = stacks[i].borrow_mut();
    if let Some(r) = there.remote.as_deref_mut() {
        r.subs.remove(pos);
    }
    there.mark_dirty(meta);
    true
}
