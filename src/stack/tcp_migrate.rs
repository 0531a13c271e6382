//! A plain TCP connection moves to the worker where its packets arrive
//! (issue 6 item 4; design.md, "flows owned where they arrive").
//!
//! On veth the queue a kernel peer's segments land on is its transmit
//! hash, which Linux changes after an RTO: from then on every segment of
//! the flow arrived on another worker and was handed over. Once they keep
//! doing so ([`STRAYS`] strays close together, or the SYN/ACK of an
//! active open), the connection leaves this stack whole ([`TcpMigrant`]:
//! the TCB with its frames in the shared UMEM, moved by handle; its
//! events not yet dispatched; its timers, which are the TCB's deadlines)
//! and the arrival worker installs it. The application's state for it
//! goes along (`crate::app_migrate`); an application that cannot move
//! it keeps it here. A moved connection stays at least [`STAY`].
//! An MPTCP connection with no other subflow moves the same way, its
//! connection level and token with it (`mptcp_conn_migrate`).

use super::mptcp::TokenEntry;
use super::mptcp_migrate::{STAY, STRAYS};
use super::mptcp_remote::Sub;
use super::tcp_table::ConnEntry;
use super::{ConnId, Stack};
use crate::app::Event;
use crate::io::{Device, Frame};
use crate::tcp::{FourTuple, State};
use crate::time::Instant;

/// A TCP connection (or an MPTCP connection: its first subflow) on its
/// way to another worker.
pub struct TcpMigrant<F: Frame> {
    entry: ConnEntry<F>,
    /// Its events the application has not been given yet, in order (the
    /// id they carry is its old one).
    events: Vec<Event>,
    /// An MPTCP connection's token and its entry (path manager, joins).
    token: Option<(u32, TokenEntry)>,
    /// Its subflows in other workers, with their scheduler slots
    /// (`mptcp_rehome`).
    links: Vec<Sub>,
}

impl<F: Frame> TcpMigrant<F> {
    /// Its flow.
    pub fn tuple(&self) -> FourTuple {
        self.entry.tuple
    }

    /// The MPTCP token it holds, if any (the runtime's token directory
    /// names its new worker once it is installed there).
    pub fn token(&self) -> Option<u32> {
        self.token.as_ref().map(|t| t.0)
    }
}

/// The connection an event is about, for the events that move with one.
fn movable_event(ev: &Event) -> Option<ConnId> {
    match *ev {
        Event::Connected { id }
        | Event::Readable { id }
        | Event::Writable { id }
        | Event::ReadClosed { id } => Some(id),
        _ => None,
    }
}

/// `ev` for connection `id` instead.
fn renamed(ev: Event, id: ConnId) -> Event {
    match ev {
        Event::Connected { .. } => Event::Connected { id },
        Event::Readable { .. } => Event::Readable { id },
        Event::Writable { .. } => Event::Writable { id },
        Event::ReadClosed { .. } => Event::ReadClosed { id },
        other => other,
    }
}

impl<D: Device> Stack<D> {
    /// A segment of `tuple` that another worker received was run here
    /// (`syn_ack`: it was a SYN/ACK). Returns the connection when it
    /// should move to that worker: a TCP connection the application
    /// holds, whose segments keep arriving there (an MPTCP one only with
    /// no other subflow: `mptcp_conn_migrate`). It stays here until
    /// [`Self::tcp_migrate_out`].
    pub fn tcp_stray(&mut self, now: Instant, tuple: &FourTuple, syn_ack: bool) -> Option<ConnId> {
        let id = self.conns.lookup(tuple)?;
        let e = self.conns.get_mut(id)?;
        // Joined subflows move with `mptcp_stray`.
        if e.subflow_of.is_some() || e.is_joined() {
            return None;
        }
        let mptcp = e.pm_wait || e.conn.mptcp().is_some();
        let n = e.note_stray(now);
        let settled = e.moved_at.is_none_or(|t| now.saturating_since(t) >= STAY);
        let due = syn_ack && e.moved_at.is_none() || n >= STRAYS && settled;
        // The application must hold it, and not be done with it: an
        // accepted one not announced yet, or one closing, stays.
        let open = matches!(
            e.conn.state(),
            State::Established | State::CloseWait | State::FinWait1 | State::FinWait2
        );
        if !due || !open || !e.visible || e.detached || e.aborted || e.half_open {
            return None;
        }
        let announced = !self
            .events
            .iter()
            .any(|ev| matches!(*ev, Event::Accepted { id: i, .. } | Event::Closed { id: i, .. } if i == id));
        if !announced || mptcp && !self.mptcp_conn_movable(id) {
            return None;
        }
        // Counted afresh: an app that refuses the move is asked again
        // only after as many strays more (not on every one).
        if let Some(e) = self.conns.get_mut(id) {
            e.strays = (0, None);
        }
        Some(id)
    }

    /// Take connection `id` out of this stack, to be installed by
    /// [`Self::tcp_migrate_in`] on another worker, with its pending
    /// events. What it has to send leaves from there: sent from here, an
    /// ACK could reach the peer after what the new worker sends next (the
    /// two transmit rings are not ordered), even after our RST, and draw a
    /// reset. Its flow stays in the flow directory under this worker until
    /// the other one records it.
    pub fn tcp_migrate_out(&mut self, id: ConnId) -> Option<TcpMigrant<D::Frame>> {
        self.conns.get(id)?;
        let token = self.mptcp_conn_take(id);
        let links = self.mptcp_remote_take_links(id, token.as_ref().map(|t| t.0));
        let mut events = Vec::new();
        self.events.retain(|ev| {
            let mine = movable_event(ev) == Some(id);
            if mine {
                events.push(*ev);
            }
            !mine
        });
        let entry = self.conns.detach(id)?;
        if entry.pool_waiting {
            self.pool.waiters.retain(|w| *w != id);
        }
        if entry.conn.mptcp().is_some() {
            self.iface.counters.mptcp_conns_migrated_out += 1;
        } else {
            self.iface.counters.tcp_conns_migrated_out += 1;
        }
        Some(TcpMigrant {
            entry,
            events,
            token,
            links,
        })
    }

    /// Install `m`, moved here from another worker at `now`, and queue
    /// its pending events. It may exceed `max_conns` (it was counted
    /// where it came from). Given back as [`Self::tcp_migrate_install`]
    /// says.
    // The migrant is handed back whole so the caller can decide (it holds
    // the application's state too).
    #[allow(clippy::result_large_err)]
    pub fn tcp_migrate_in(
        &mut self,
        now: Instant,
        m: TcpMigrant<D::Frame>,
    ) -> Result<ConnId, TcpMigrant<D::Frame>> {
        let id = self.tcp_migrate_install(now, m)?;
        self.tcp_migrate_commit(id);
        Ok(id)
    }

    /// [`Self::tcp_migrate_in`]'s first half: `m` in the table with its
    /// events, nothing run or sent for it yet, so that it can still be
    /// taken back out whole ([`Self::tcp_migrate_uninstall`]) if the
    /// application refuses it. Given back if its flow is here already, or
    /// the MPTCP token it holds (RFC 8684 §3.1: unique per stack).
    #[allow(clippy::result_large_err)]
    pub fn tcp_migrate_install(
        &mut self,
        now: Instant,
        m: TcpMigrant<D::Frame>,
    ) -> Result<ConnId, TcpMigrant<D::Frame>> {
        if self.conns.contains(&m.entry.tuple) {
            self.iface.counters.tcp_migrations_dropped += 1;
            return Err(m);
        }
        if !self.mptcp_conn_token_free(m.token.as_ref()) || !self.mptcp_links_fit(&m.links) {
            self.iface.counters.mptcp_conn_migrations_refused += 1;
            return Err(m);
        }
        let TcpMigrant {
            mut entry,
            events,
            token,
            links,
        } = m;
        let pool_waiting = entry.pool_waiting;
        // What the old stack's lists and wheel knew of it stays there
        // (stale ids): here it starts afresh.
        entry.dirty = false;
        entry.armed_at = None;
        entry.pool_waiting = false;
        entry.readable_queued = false;
        entry.writable_queued = false;
        entry.strays = (0, None);
        entry.moved_at = Some(now);
        entry.head = Default::default();
        let id = self.conns.insert(entry);
        self.mptcp_conn_put(id, token);
        self.mptcp_remote_put_links(id, links);
        if let Some(e) = self.conns.get_mut(id) {
            for ev in events {
                match ev {
                    Event::Readable { .. } => e.readable_queued = true,
                    Event::Writable { .. } => e.writable_queued = true,
                    _ => {}
                }
                self.events.push_back(renamed(ev, id));
            }
            if pool_waiting {
                e.pool_waiting = true;
                self.pool.waiters.push_back(id);
            }
        }
        Ok(id)
    }

    /// [`Self::tcp_migrate_in`]'s second half: connection `id` runs here.
    pub fn tcp_migrate_commit(&mut self, id: ConnId) {
        let Some(e) = self.conns.get(id) else {
            return;
        };
        if e.conn.mptcp().is_some() {
            self.iface.counters.mptcp_conns_migrated_in += 1;
        } else {
            self.iface.counters.tcp_conns_migrated_in += 1;
        }
        self.mptcp_remote_rehome_links(id);
        self.mark_dirty(id);
        self.after_op(id);
    }

    /// Undo [`Self::tcp_migrate_install`] of `id` (its application
    /// refused it): taken back out whole, with its events, and its flow
    /// unrecorded (the flow directory must not name this worker for a
    /// moment: the worker it goes back to records it again).
    pub fn tcp_migrate_uninstall(&mut self, id: ConnId) -> Option<TcpMigrant<D::Frame>> {
        let tuple = self.conns.get(id)?.tuple;
        let m = self.tcp_migrate_out(id)?;
        let out = if m.entry.conn.mptcp().is_some() {
            &mut self.iface.counters.mptcp_conns_migrated_out
        } else {
            &mut self.iface.counters.tcp_conns_migrated_out
        };
        *out -= 1;
        self.iface.counters.tcp_migrations_dropped += 1;
        self.conns.unlog_open(&tuple);
        Some(m)
    }
}
