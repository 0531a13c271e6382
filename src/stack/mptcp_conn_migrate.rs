//! An MPTCP connection moves whole to the worker where its first
//! subflow's packets arrive (issue 8; design.md, "flows owned where they
//! arrive"): its first subflow's TCB, which carries the connection level
//! (data sequence space, reassembly, scheduler), its token's entry (path
//! manager included) and the application's state, with the plain TCP
//! machinery (`tcp_migrate`, `crate::app_migrate`). RFC 8684 §3.1: the
//! token names the connection, not a worker; the runtime hands the token
//! directory's entry over once the connection is installed there.
//!
//! A connection with path-management work pending for it stays. One
//! with joined subflows (here, in another stack of the worker, or in
//! another worker) moves between workers while established, and its
//! subflows follow its token (`mptcp_rehome`).

use super::mptcp::TokenEntry;
use super::{ConnId, Stack};
use crate::io::Device;

impl<D: Device> Stack<D> {
    /// Whether MPTCP connection `id` (its first subflow) may move: see
    /// the module's doc.
    pub(super) fn mptcp_conn_movable(&self, id: ConnId) -> bool {
        let Some(e) = self.conns.get(id) else {
            return false;
        };
        if e.subflows_closed || e.conn.mptcp_meta_only() {
            return false;
        }
        let w = &self.mptcp.pm_work;
        if w.removals.iter().any(|r| r.0 == id)
            || w.withdrawn.iter().any(|r| r.0 == id)
            || w.announce.contains(&id)
        {
            return false;
        }
        // Its token counts every subflow joined to it, wherever it runs
        // (and every join we opened for it).
        let alone = !self.mptcp.subs.iter().any(|s| s.1 == id)
            && !self.mptcp_remote_has_subs(id)
            && match e.conn.mptcp().and_then(|m| m.local_token()) {
                Some(t) => self.mptcp.joined(t, id) == Some(0),
                None => true,
            };
        // With subflows, it moves between workers only, established (not
        // closing), and they follow its token (`mptcp_rehome`).
        alone || self.remote.is_some() && e.conn.state() == crate::tcp::State::Established
    }

    /// Connection `id` leaves: the entry of the token it holds, if any.
    pub(super) fn mptcp_conn_take(&mut self, id: ConnId) -> Option<(u32, TokenEntry)> {
        let t = self.conns.get(id)?.conn.mptcp()?.local_token()?;
        Some((t, self.mptcp.take(t, id)?))
    }

    /// Whether a connection holding `token` can move here (tokens are
    /// unique per stack: one drawn here already cannot).
    pub(super) fn mptcp_conn_token_free(&self, token: Option<&(u32, TokenEntry)>) -> bool {
        token.is_none_or(|(t, _)| self.mptcp.is_free(*t))
    }

    /// Connection `id`, moved here, holds `token` from now on.
    pub(super) fn mptcp_conn_put(&mut self, id: ConnId, token: Option<(u32, TokenEntry)>) {
        if let Some((t, entry)) = token {
            self.mptcp.put(t, id, entry);
        }
    }
}
