//! A joined MPTCP subflow moves to the worker where its packets arrive
//! (issue 8; design.md, "flows owned where they arrive").
//!
//! Our path manager opens joins on the connection's worker, but on veth
//! the queue the peer's answers land on is the kernel's transmit hash,
//! which we cannot choose, and Linux picks a new one after an RTO: such a
//! subflow's every packet was handed over from another worker for its
//! whole life. Once its packets keep arriving elsewhere (its SYN/ACK, or
//! [`STRAYS`] strays close together), its worker takes it out of its
//! stack whole ([`Migrant`]: the TCB, its frames in the shared UMEM moved
//! by handle) and the arrival worker installs it as a subflow of a
//! connection in another worker (`mptcp_remote`), keeping its place in
//! the connection's scheduler. The connection level stays with its token
//! (RFC 8684 §3.2: a subflow is just a TCP flow of the connection).
//! A subflow run for another worker moves on the same way (its
//! connection's worker is told), after [`STAY`] at least: no ping-pong.

use super::mptcp_remote::{MetaRef, MovedFrom, RemoteMsg, RemoteOf, SubRef};
use super::tcp_table::ConnEntry;
use super::Stack;
use crate::io::Device;
use crate::tcp::{Connection, FourTuple, State};
use crate::time::Instant;
use core::time::Duration;

/// Strays (segments handed over by another worker) that move a subflow,
/// each within [`STRAY_GAP`] of the previous one.
pub const STRAYS: u16 = 8;
/// Strays further apart than this start the count again (a re-hash's
/// stragglers, or reordering, move nothing).
pub const STRAY_GAP: Duration = Duration::from_millis(200);
/// A subflow that moved stays at least this long where it went (so that
/// a flow whose packets come on two queues at once does not ping-pong).
pub const STAY: Duration = Duration::from_millis(100);

/// A joined subflow on its way to another worker.
pub struct Migrant<F: crate::io::Frame> {
    conn: Connection<F>,
    tuple: FourTuple,
    /// Its connection, in worker `meta_worker`.
    meta: MetaRef,
    meta_worker: usize,
    /// Where it ran, to keep its place in the connection's scheduler.
    from: MovedFrom,
    connected: bool,
    /// Where its connection publishes its level (`LevelCell`): read in
    /// its new worker too.
    level: Option<std::sync::Arc<crate::tcp::conn::LevelCell>>,
}

impl<F: crate::io::Frame> Migrant<F> {
    /// Its flow.
    pub fn tuple(&self) -> FourTuple {
        self.tuple
    }
}

impl<D: Device> Stack<D> {
    /// A segment of `tuple` that another worker received was run here
    /// (`syn_ack`: it was a SYN/ACK). Returns the flow, taken out of this
    /// stack, when it should move to that worker: an established joined
    /// subflow whose packets keep arriving there.
    pub fn mptcp_stray(
        &mut self,
        now: Instant,
        tuple: &FourTuple,
        syn_ack: bool,
    ) -> Option<Migrant<D::Frame>> {
        let (me, here) = self.remote.as_deref().map(|r| (r.me, r.stack))?;
        let id = self.conns.lookup(tuple)?;
        let e = self.conns.get_mut(id)?;
        // Its connection: in this stack, in another of the worker's, or
        // in another worker.
        let remote = e.remote_of.is_some();
        let (worker, stack, meta) = match (e.subflow_of, e.foreign_of, e.remote_of) {
            (Some(m), _, _) => (me, here, m),
            (None, Some((s, m)), _) => (me, s, m),
            (None, None, Some(r)) => (r.worker, r.meta.stack, r.meta.conn),
            _ => return None,
        };
        let n = e.note_stray(now);
        let settled = e.moved_at.is_none_or(|t| now.saturating_since(t) >= STAY);
        let due = syn_ack && e.moved_at.is_none() || n >= STRAYS && settled;
        if !due || e.conn.state() != State::Established {
            return None;
        }
        let token = e.conn.mptcp_join().map(|j| j.token)?;
        if !remote && stack == here && !self.mptcp_holds(token, meta) {
            return None;
        }
        // What it has to send, and what it holds for the connection,
        // leaves from its new worker (`mptcp_migrate_in` marks it dirty):
        // sent from here, an ACK could reach the peer after what the new
        // worker sends next (the two transmit rings are not ordered).
        let mut e = self.conns.detach(id)?;
        // RFC 8684 §3.3.4: it checks its data against the connection's
        // window in its new worker too, read from the connection's cell.
        let level = match e.level.take() {
            Some(c) => Some(c),
            None if !remote && stack == here => {
                let m = self.conns.get_mut(meta);
                m.and_then(|m| m.conn.mptcp_level_cell())
            }
            None => None,
        };
        if e.pool_waiting {
            self.pool.waiters.retain(|w| *w != id);
        }
        if e.half_open {
            if let Some(l) = e.listener.and_then(|p| self.listeners.get_mut(&p)) {
                l.half_open = l.half_open.saturating_sub(1);
            }
        }
        let from = if remote {
            // Its connection's worker learns where it went from its new
            // worker; what it sends here meanwhile is dropped.
            if let Some(r) = self.remote.as_deref_mut() {
                r.mine.retain(|m| m.0 != id);
            }
            MovedFrom::Sub(
                me,
                SubRef {
                    stack: here,
                    conn: id,
                },
            )
        } else if stack == here {
            // The lent frames its ACK freed go back now; those in its
            // queue stay lent to it, returned from its new worker
            // (`mptcp_remote`'s `Back`).
            if let Some((_, v)) = e.conn.mptcp_lent_leaving() {
                if let Some(m) = self.conns.get_mut(meta) {
                    m.conn.mptcp_frames_back(v.into_iter());
                }
            }
            self.mptcp.subs.retain(|s| s.0 != id);
            self.mptcp_count_join(meta, token, false);
            MovedFrom::Slot(e.conn.mptcp_tx_detach())
        } else {
            if let Some((slot, v)) = e.conn.mptcp_lent_leaving() {
                self.mptcp_returns.push((stack, meta, slot, v));
            }
            self.mptcp.foreign.subs.retain(|s| s.0 != id);
            // Its place stays (no slot given back): only the count drops.
            self.mptcp.foreign.released(stack, meta, token, None, None);
            MovedFrom::Slot(e.conn.mptcp_tx_detach())
        };
        self.iface.counters.mptcp_subflows_migrated_out += 1;
        Some(Migrant {
            conn: e.conn,
            tuple: e.tuple,
            meta: MetaRef {
                stack,
                conn: meta,
                token,
            },
            meta_worker: worker,
            from,
            connected: e.connected,
            level,
        })
    }

    /// Install `m`, a subflow of a connection in another worker: run here
    /// from now on (`mptcp_remote`), at `now`. One back in its
    /// connection's worker stays such a subflow, its messages going
    /// through this worker's own rings. False if it cannot be (its
    /// flow is here already, or no room): it is dropped, and the
    /// connection sends its data again on the others once it stalls.
    pub fn mptcp_migrate_in(&mut self, now: Instant, m: Migrant<D::Frame>) -> bool {
        self.mptcp_migrate_try_in(now, m, false).is_ok()
    }

    /// [`Self::mptcp_migrate_in`], giving `m` back whole if it cannot be
    /// installed, for the worker to return it where it came from. `back`:
    /// it is that return (it left this stack a moment ago, counted here:
    /// `max_conns` does not refuse it).
    #[allow(clippy::result_large_err)]
    pub fn mptcp_migrate_try_in(
        &mut self,
        now: Instant,
        m: Migrant<D::Frame>,
        back: bool,
    ) -> Result<(), Migrant<D::Frame>> {
        if self.remote.is_none()
            || self.conns.contains(&m.tuple)
            || !back && self.conns.len() >= self.cfg.max_conns
        {
            self.iface.counters.mptcp_migrations_dropped += 1;
            return Err(m);
        }
        let mut entry = ConnEntry::new(m.conn, m.tuple, None);
        entry.connected = m.connected;
        entry.moved_at = Some(now);
        entry.level = m.level;
        entry.remote_of = Some(RemoteOf {
            worker: m.meta_worker,
            meta: m.meta,
            busy: false,
        });
        let id = self.conns.insert(entry);
        let Some(r) = self.remote.as_deref_mut() else {
            return Ok(());
        };
        r.mine.push((id, Default::default()));
        let sub = SubRef {
            stack: r.stack,
            conn: id,
        };
        r.out.push((
            m.meta_worker,
            RemoteMsg::Joined {
                to: m.meta,
                sub,
                up: true,
                ack: None,
                moved: Some(m.from),
            },
        ));
        self.iface.counters.mptcp_remote_subflows += 1;
        self.iface.counters.mptcp_subflows_migrated_in += 1;
        self.mark_dirty(id);
        self.after_op(id);
        self.mptcp_remote_forward(id);
        Ok(())
    }
}
