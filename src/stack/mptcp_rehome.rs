//! An MPTCP connection with joined subflows moves to the worker where its
//! first subflow's packets arrive, and its subflows follow its token
//! (issue 8; design.md: "flows owned where they arrive", "MPTCP's
//! connection-level state is owned by the worker that owns its token").
//!
//! The subflows stay where their own packets arrive; only where their
//! connection is changes (RFC 8684 §3.2: a subflow is a TCP flow of the
//! connection, named by its token, not by a worker):
//! - joined subflows in this worker's stacks become, in place, subflows
//!   of a connection in a worker (`mptcp_remote`), keeping their places
//!   in its scheduler ([`mptcp_conn_unlink`]); their `Joined` reaches the
//!   connection through the token's owner;
//! - subflows in other workers (and their scheduler slots) move with the
//!   connection (`TcpMigrant`); its new worker tells each of them
//!   (`Rehome`), and a subflow follows a message from the worker the
//!   token directory names;
//! - messages for the connection still on their way to its old worker
//!   (and joins' questions for its token) are forwarded, with their
//!   sender, to the worker holding the token ([`route`]); while the
//!   connection itself is on its way, they wait (`parked`), and go where
//!   it was installed: there, or back here if it was refused there.
//!   Nothing already accepted is lost.

use super::mptcp_foreign::PendingJoin;
use super::mptcp_remote::{MetaRef, MovedFrom, RemoteMsg, RemoteOf, Sub, SubRef};
use super::{ConnId, Stack};
use crate::io::Device;
use crate::tcp::conn::LevelCell;
use crate::tcp::State;
use crate::time::Instant;
use core::time::Duration;
use std::borrow::BorrowMut;
use std::sync::Arc;

/// How long messages for a connection on its way to another worker wait
/// for the token directory to name it (it names it once the connection
/// is installed; a refused move comes back within a pass, its returns
/// retried for 2 s at most: `runtime::worker`).
const PARK_FOR: Duration = Duration::from_secs(3);

/// Forwards of one message at most (a connection moved again meanwhile).
const MAX_HOPS: u8 = 4;

/// The token of the connection a message is for: a join's question, or
/// a subflow's message.
fn token_of<F>(m: &RemoteMsg<F>) -> Option<u32> {
    match m {
        RemoteMsg::JoinAsk { token, .. } => Some(*token),
        m => meta_of(m).map(|to| to.token),
    }
}

/// The connection a message from a subflow is for.
fn meta_of<F>(m: &RemoteMsg<F>) -> Option<MetaRef> {
    match m {
        RemoteMsg::Joined { to, .. }
        | RemoteMsg::Data { to, .. }
        | RemoteMsg::Signals { to, .. }
        | RemoteMsg::View { to, .. }
        | RemoteMsg::Back { to, .. } => Some(*to),
        _ => None,
    }
}

/// `m` for connection `conn` (its id in the stack holding its token now).
fn readdress<F>(m: &mut RemoteMsg<F>, conn: ConnId) {
    match m {
        RemoteMsg::Joined { to, .. }
        | RemoteMsg::Data { to, .. }
        | RemoteMsg::Signals { to, .. }
        | RemoteMsg::View { to, .. }
        | RemoteMsg::Back { to, .. } => to.conn = conn,
        _ => {}
    }
}

/// A message from worker `from` for `stacks`: unwrapped if forwarded,
/// and readdressed to its connection if that moved here. Returns it with
/// its sender, or `None` when it was forwarded on or waits here.
pub(super) fn route<D: Device, S: BorrowMut<Stack<D>>>(
    stacks: &mut [S],
    from: usize,
    msg: RemoteMsg<D::Frame>,
) -> Option<(usize, RemoteMsg<D::Frame>)> {
    let (from, hops, mut msg) = match msg {
        RemoteMsg::Via { from, hops, msg } => (from, hops, *msg),
        m => (from, 0, m),
    };
    let Some(token) = token_of(&msg) else {
        return Some((from, msg));
    };
    let stack = match meta_of(&msg) {
        Some(to) => {
            let Some(s) = stacks.get_mut(to.stack) else {
                return Some((from, msg));
            };
            let s = s.borrow_mut();
            if s.mptcp_meta_valid(&to) {
                return Some((from, msg));
            }
            // Tokens are unique per stack: the one holding it is the
            // connection, moved here since the subflow learnt its id.
            if let Some(conn) = s.mptcp.holder(to.token) {
                readdress(&mut msg, conn);
                return Some((from, msg));
            }
            to.stack
        }
        // A join's question, which any stack holding the token answers:
        // else the one it left, if it is leaving.
        None => {
            let held = |s: &S| !s.borrow().mptcp.is_free(token);
            let moving = |s: &S| {
                let r = s.borrow().remote.as_deref();
                r.is_some_and(|r| r.moving.iter().any(|m| m.0 == token))
            };
            if stacks.iter().any(held) {
                return Some((from, msg));
            }
            stacks.iter().position(moving).unwrap_or(0)
        }
    };
    let Some(s) = stacks.get_mut(stack) else {
        return Some((from, msg));
    };
    let s = s.borrow_mut();
    let Some(r) = s.remote.as_deref_mut() else {
        return Some((from, msg));
    };
    if r.moving.iter().any(|m| m.0 == token) {
        r.parked.push((from, hops, msg));
        s.iface.counters.mptcp_msgs_parked += 1;
        return None;
    }
    match (r.locate)(token) {
        Some(w) if w != r.me && hops < MAX_HOPS => {
            let msg = Box::new(msg);
            let hops = hops + 1;
            r.out.push((w, RemoteMsg::Via { from, hops, msg }));
            s.iface.counters.mptcp_msgs_forwarded += 1;
            None
        }
        // Gone: as for any connection that went (a subflow sending data
        // is reset).
        _ => Some((from, msg)),
    }
}

/// A join SYN in stack `i` whose token no stack of this worker holds
/// and the token directory does not name elsewhere: if its connection is
/// leaving one of `stacks` (the directory names its new worker once it is
/// installed), the question for it waits with that connection's messages
/// and goes where it went (RFC 8684 §3.2: the token names the
/// connection, wherever it runs). False otherwise (refuse it).
pub(super) fn park_join<D: Device, S: BorrowMut<Stack<D>>>(
    stacks: &mut [S],
    i: usize,
    p: PendingJoin,
) -> bool {
    let moving = |s: &S| {
        let r = s.borrow().remote.as_deref();
        r.is_some_and(|r| r.moving.iter().any(|m| m.0 == p.token))
    };
    let Some(j) = stacks.iter().position(moving) else {
        return false;
    };
    let Some(r) = stacks.get_mut(i).and_then(|s| {
        s.borrow_mut()
            .remote
            .as_deref_mut()
            .map(|r| (r.me, r.ask(p)))
    }) else {
        return false;
    };
    let (me, msg) = r;
    let msg = match msg {
        Some(Some(m)) => m,
        Some(None) => return true,
        None => return false,
    };
    let s = stacks[j].borrow_mut();
    if let Some(r) = s.remote.as_deref_mut() {
        r.parked.push((me, 0, msg));
        s.iface.counters.mptcp_msgs_parked += 1;
    }
    true
}

impl<D: Device> Stack<D> {
    /// Joined subflow `id` here (of connection `meta` in this stack or
    /// another of the worker's) becomes, in place, a subflow of `meta` as
    /// a connection in worker `worker` (it is about to leave for another
    /// worker): its place in the scheduler goes with the connection
    /// (`MovedFrom::Slot`), and what it holds for the connection goes as
    /// a message. `local`: `meta` is in this stack. `cell`: where the
    /// connection publishes its level, read from now on across workers.
    fn mptcp_sub_rehome(
        &mut self,
        id: ConnId,
        (worker, meta, local): (usize, MetaRef, bool),
        cell: Option<Arc<LevelCell>>,
    ) {
        let Some(stack) = self.remote.as_deref().map(|r| r.stack) else {
            return;
        };
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };
        let slot = e.conn.mptcp_tx_detach();
        e.subflow_of = None;
        e.foreign_of = None;
        e.remote_of = Some(RemoteOf {
            worker,
            meta,
            busy: false,
        });
        // RFC 8684 §3.3.4: the connection's window, before each segment
        // (its own: the one it read in another stack, if any).
        if e.level.is_none() {
            e.level = cell;
        }
        if local {
            self.mptcp.subs.retain(|s| s.0 != id);
            self.mptcp_count_join(meta.conn, meta.token, false);
        } else {
            self.mptcp.foreign.subs.retain(|s| s.0 != id);
            self.mptcp.foreign.dirty.retain(|s| s.0 != id);
        }
        let sub = SubRef { stack, conn: id };
        if let Some(r) = self.remote.as_deref_mut() {
            r.mine.push((id, Default::default()));
            r.out.push((
                worker,
                RemoteMsg::Joined {
                    to: meta,
                    sub,
                    up: true,
                    ack: None,
                    moved: Some(MovedFrom::Slot(slot)),
                },
            ));
        }
        self.iface.counters.mptcp_subflows_rehomed += 1;
        self.iface.counters.mptcp_remote_subflows += 1;
        self.mark_dirty(id);
        self.mptcp_remote_forward(id);
    }

    /// Subflow `sub` here, if it is one of the connection holding
    /// `of.token` (its messages may come from the worker it left, until
    /// they stop coming); it follows the connection to worker `from` when
    /// the token directory names `from`.
    pub(super) fn mptcp_remote_sub_follow(
        &mut self,
        from: usize,
        sub: &SubRef,
        of: &MetaRef,
    ) -> bool {
        let Some(ro) = self.conns.get(sub.conn).and_then(|e| e.remote_of) else {
            return false;
        };
        if ro.meta.token != of.token || ro.meta.stack != of.stack {
            return false;
        }
        if ro.worker == from && ro.meta == *of {
            return true;
        }
        let here = self
            .remote
            .as_deref()
            .is_some_and(|r| (r.locate)(of.token) == Some(from));
        if here {
            if let Some(ro) = self
                .conns
                .get_mut(sub.conn)
                .and_then(|e| e.remote_of.as_mut())
            {
                ro.worker = from;
                ro.meta = *of;
            }
        }
        true
    }

    /// Connection `meta` leaves: its subflows in other workers, with
    /// their slots (they go with it), and its token noted as moving.
    pub(super) fn mptcp_remote_take_links(&mut self, meta: ConnId, token: Option<u32>) -> Vec<Sub> {
        let Some(r) = self.remote.as_deref_mut() else {
            return Vec::new();
        };
        if let Some(t) = token {
            r.moving.retain(|m| m.0 != t);
            r.moving.push((t, None));
        }
        let (links, rest) = core::mem::take(&mut r.subs)
            .into_iter()
            .partition(|s| s.meta == meta);
        r.subs = rest;
        links
    }

    /// Whether this stack can hold a connection with `links`.
    pub(super) fn mptcp_links_fit(&self, links: &[Sub]) -> bool {
        links.is_empty() || self.remote.is_some()
    }

    /// Connection `meta` moved here holds `links`.
    pub(super) fn mptcp_remote_put_links(&mut self, meta: ConnId, links: Vec<Sub>) {
        if let Some(r) = self.remote.as_deref_mut() {
            r.subs.extend(links.into_iter().map(|s| Sub { meta, ..s }));
        }
    }

    /// Connection `meta` runs here: each of its subflows in other workers
    /// hears where it is now.
    pub(super) fn mptcp_remote_rehome_links(&mut self, meta: ConnId) {
        let Some(token) = self
            .conns
            .get(meta)
            .and_then(|e| e.conn.mptcp()?.local_token())
        else {
            return;
        };
        let Some(r) = self.remote.as_deref_mut() else {
            return;
        };
        let of = MetaRef {
            stack: r.stack,
            conn: meta,
            token,
        };
        for s in r.subs.iter().filter(|s| s.meta == meta) {
            r.out.push((s.worker, RemoteMsg::Rehome { sub: s.sub, of }));
        }
    }

    /// Messages held for connections on their way to another worker go
    /// where each is now (once the token directory names it, or it came
    /// back here), once a pass; those whose connection is nowhere after
    /// [`PARK_FOR`] are dropped (counted).
    pub fn mptcp_remote_unpark(&mut self, now: Instant) {
        let Some(r) = self.remote.as_deref_mut() else {
            return;
        };
        if r.moving.is_empty() {
            return;
        }
        let me = r.me;
        let mut settled = Vec::new();
        r.moving.retain_mut(|(t, since)| {
            let since = *since.get_or_insert(now);
            let to = if !self.mptcp.is_free(*t) {
                Some(me)
            } else {
                (r.locate)(*t).filter(|&w| w != me)
            };
            match to {
                Some(w) => settled.push((*t, Some(w))),
                None if now.saturating_since(since) >= PARK_FOR => settled.push((*t, None)),
                None => return true,
            }
            false
        });
        for (t, to) in settled {
            let (go, stay) = core::mem::take(&mut r.parked)
                .into_iter()
                .partition(|p| token_of(&p.2) == Some(t));
            r.parked = stay;
            let go: Vec<(usize, u8, RemoteMsg<D::Frame>)> = go;
            for (from, hops, msg) in go {
                match to {
                    // Back here: run through this worker's own ring.
                    Some(w) => {
                        let msg = Box::new(msg);
                        r.out.push((w, RemoteMsg::Via { from, hops, msg }));
                    }
                    None => self.iface.counters.mptcp_msgs_dropped += 1,
                }
            }
        }
    }
}

/// Before MPTCP connection `meta` leaves stack `i` of this worker (it
/// runs there now): whether its joined subflows in the worker's stacks
/// can follow it (all established: a join still in its handshake
/// cannot).
pub fn mptcp_conn_subs_ready<D: Device, S: BorrowMut<Stack<D>>>(
    stacks: &mut [S],
    i: usize,
    meta: ConnId,
) -> bool {
    let token = stacks.get(i).and_then(|s| {
        let e = s.borrow().conns.get(meta)?;
        e.conn.mptcp()?.local_token()
    });
    (0..stacks.len()).all(|k| {
        let s = stacks[k].borrow();
        // Signals and joins queued for it between the worker's stacks are
        // taken here first (the next `mptcp_route`), then it may go.
        let f = &s.mptcp.foreign;
        if token.is_some_and(|t| f.waits_for(i, meta, t))
            || k == i && f.meta_closing.iter().any(|c| c.0 == meta)
        {
            return false;
        }
        let subs = local_subs(s, k, i, meta);
        let established = |id: &ConnId| {
            s.conns
                .get(*id)
                .is_some_and(|e| e.conn.state() == State::Established)
        };
        // Each becomes a subflow of a connection in a worker: its stack
        // must talk to workers.
        (subs.is_empty() || s.remote.is_some()) && subs.iter().all(established)
    })
}

/// Joined subflows in stack `s` (index `k`) of connection `meta` in stack
/// `i` of the same worker.
fn local_subs<D: Device>(s: &Stack<D>, k: usize, i: usize, meta: ConnId) -> Vec<ConnId> {
    if k == i {
        let subs = s.mptcp.subs.iter().filter(|x| x.1 == meta);
        subs.map(|x| x.0).collect()
    } else {
        let subs = s.mptcp.foreign.subs.iter();
        subs.filter(|x| x.1 == i && x.2 == meta)
            .map(|x| x.0)
            .collect()
    }
}

/// MPTCP connection `meta` of stack `i` leaves this worker
/// ([`mptcp_conn_subs_ready`] said its subflows can follow): each joined
/// subflow in the worker's stacks becomes a subflow of a connection in a
/// worker, in place (see the module's doc).
pub fn mptcp_conn_unlink<D: Device, S: BorrowMut<Stack<D>>>(
    stacks: &mut [S],
    i: usize,
    meta: ConnId,
) {
    let Some(s) = stacks.get_mut(i) else {
        return;
    };
    let s = s.borrow_mut();
    let Some(token) = s
        .conns
        .get(meta)
        .and_then(|e| e.conn.mptcp()?.local_token())
    else {
        return;
    };
    let Some(me) = s.remote.as_deref().map(|r| r.me) else {
        return;
    };
    let links = s.mptcp_remote_has_subs(meta);
    let to = MetaRef {
        stack: i,
        conn: meta,
        token,
    };
    let mut any = links;
    let mut cell = None;
    for k in 0..stacks.len() {
        let subs = local_subs(stacks[k].borrow(), k, i, meta);
        any |= !subs.is_empty();
        if !subs.is_empty() && cell.is_none() {
            let m = stacks[i].borrow_mut().conns.get_mut(meta);
            cell = m.and_then(|m| m.conn.mptcp_level_cell());
        }
        for id in subs {
            let c = cell.clone();
            stacks[k]
                .borrow_mut()
                .mptcp_sub_rehome(id, (me, to, k == i), c);
            if k != i {
                stacks[i].borrow_mut().mptcp_count_join(meta, token, false);
            }
        }
    }
    if any {
        stacks[i]
            .borrow_mut()
            .iface
            .counters
            .mptcp_conns_migrated_with_subflows += 1;
    }
}
