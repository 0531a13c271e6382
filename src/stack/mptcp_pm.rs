//! The active side of MP_JOIN at the stack level (RFC 8684 §3.2): once a
//! connection we opened is fully established with MPTCP, its path
//! manager ([`crate::mptcp::PathManager`]) opens further subflows, full
//! mesh, from each local address of the worker's stacks (one per
//! `--iface`) to each address the peer is known by, up to
//! `tcp::Config::mptcp_max_subflows` extra subflows (as Linux's `ip mptcp
//! limits set subflow N`). A subflow from another interface lives in that
//! interface's stack and belongs to the connection in this one, as
//! passive joins do (`mptcp_foreign`). Run by [`super::mptcp_route`]
//! (several stacks) or by `Stack::poll` (a stack alone).

use super::tcp_table::ConnEntry;
use super::{ConnId, JoinTarget, Stack};
use crate::io::Device;
use crate::mptcp::pm::Signals;
use crate::mptcp::{Join, LocalAddr, PathManager};
use crate::tcp::{Connection, FourTuple};
use core::net::{Ipv4Addr, SocketAddrV4};
use std::borrow::BorrowMut;

/// Which local ports an active join may use: `(local, remote, port)` is
/// true when the subflow's packets would arrive on this worker (the
/// runtime's flow ownership, as for plain active opens).
pub type PortFilter = Box<dyn Fn(Ipv4Addr, SocketAddrV4, u16) -> bool + Send>;

impl<D: Device> Stack<D> {
    /// Ports for active joins are chosen so that `f` holds (see
    /// [`PortFilter`]); without one, any free ephemeral port.
    pub fn mptcp_set_port_filter(&mut self, f: PortFilter) {
        self.mptcp.port_filter = Some(f);
    }

    /// This stack's index among the worker's stacks (0 when alone).
    pub(super) fn mptcp_index(&self) -> usize {
        self.mptcp.foreign.index().unwrap_or(0)
    }

    /// After an operation on client connection `id`, which still waits
    /// for its path manager: start it once the connection is fully
    /// established with MPTCP (or forget it when it is plain TCP).
    pub(super) fn mptcp_pm_check(&mut self, id: ConnId) {
        let index = self.mptcp_index();
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };
        let ready = e.conn.mptcp_joins_allowed();
        if ready == Some(false) {
            return;
        }
        e.pm_wait = false;
        let Some(m) = e.conn.mptcp().filter(|_| ready == Some(true)) else {
            return;
        };
        let (Some(token), denied) = (m.local_token(), m.peer_denies_join) else {
            return;
        };
        if self.cfg.tcp.mptcp_max_subflows == 0 {
            return;
        }
        let first = LocalAddr {
            stack: index,
            ip: *e.tuple.local.ip(),
        };
        let mut pm = PathManager::new(first, e.tuple.remote);
        if denied {
            // RFC 8684 §3.1 flag C: the peer takes no new subflow to the
            // first subflow's address and port.
            pm.remove_remote(0);
        }
        self.mptcp.set_pm(token, pm);
    }

    /// Open an active join from `local` to `remote` for connection
    /// `target` (in stack `owner`, or here when `None`). Returns whether
    /// the SYN was queued.
    pub(super) fn mptcp_open_join(
        &mut self,
        local: Ipv4Addr,
        remote: SocketAddrV4,
        join: Join,
        target: &JoinTarget,
        owner: Option<usize>,
    ) -> bool {
        let meta = target.conn;
        let now = self.now;
        if self.conns.len() >= self.cfg.max_conns
            || !self.iface.is_local(local)
            || self.iface.next_hop(*remote.ip()).is_none()
        {
            return false;
        }
        let Some(port) = self.mptcp_join_port(local, remote) else {
            return false;
        };
        let tuple = FourTuple {
            local: SocketAddrV4::new(local, port),
            remote,
        };
        let iss = self.isn.isn(&tuple, now);
        let mut conn = Connection::connect_join(&self.cfg.tcp, tuple, iss, now, join);
        conn.set_lia_group(target.lia.clone());
        let mut entry = ConnEntry::new(conn, tuple, None);
        match owner {
            None => entry.subflow_of = Some(meta),
            Some(stack) => entry.foreign_of = Some((stack, meta)),
        }
        let id = self.conns.insert(entry);
        // The scheduler feeds it like a passive join once it is verified.
        match owner {
            None => self.mptcp.subs.push((id, meta)),
            Some(stack) => self.mptcp.foreign.subs.push((id, stack, meta)),
        }
        self.iface.counters.conns_opened += 1;
        self.iface.counters.mptcp_join_syns_sent += 1;
        self.mark_dirty(id);
        self.after_op(id);
        true
    }

    /// A free ephemeral port for a join from `local` to `remote` that the
    /// port filter accepts (at most one sweep of the range).
    fn mptcp_join_port(&mut self, local: Ipv4Addr, remote: SocketAddrV4) -> Option<u16> {
        let (lo, hi) = self.cfg.ephemeral_ports;
        if lo == 0 || lo > hi {
            return None;
        }
        let span = u32::from(hi - lo) + 1;
        for _ in 0..span {
            let port = self.next_port.clamp(lo, hi);
            self.next_port = if port >= hi { lo } else { port + 1 };
            let t = FourTuple {
                local: SocketAddrV4::new(local, port),
                remote,
            };
            if self.listeners.contains_key(&port) || self.conns.contains(&t) {
                continue;
            }
            if self
                .mptcp
                .port_filter
                .as_ref()
                .is_some_and(|f| !f(local, remote, port))
            {
                continue;
            }
            return Some(port);
        }
        None
    }

    /// The path-management signals subflow `id` received (RFC 8684
    /// §3.4): announced addresses go to its connection's path manager
    /// (kept until it starts), withdrawn ones close their subflows. A
    /// subflow whose connection is in another stack of the worker hands
    /// them over (`mptcp_route`): Linux sends them on whichever subflow
    /// it likes, e.g. the REMOVE_ADDR of its first subflow's address on
    /// the other one.
    pub(super) fn mptcp_on_signals(&mut self, id: ConnId) {
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };
        let Some(sig) = e.conn.mptcp_take_signals() else {
            return;
        };
        match (e.subflow_of, e.foreign_of, e.remote_of) {
            (Some(m), _, _) => self.mptcp_follow_signals(m, &sig),
            (None, Some((stack, m)), _) => self.mptcp.foreign.signals.push((stack, m, sig)),
            (None, None, Some(r)) => self.mptcp_remote_signals(r, sig),
            (None, None, None) => self.mptcp_follow_signals(id, &sig),
        }
    }

    /// Signals for connection `meta` (here), from any of its subflows.
    pub(super) fn mptcp_follow_signals(&mut self, meta: ConnId, sig: &Signals) {
        let Some(m) = self.conns.get(meta) else {
            return;
        };
        let port = m.tuple.remote.port();
        let Some(token) = m.conn.mptcp().and_then(|s| s.local_token()) else {
            return;
        };
        for &addr_id in &sig.removed {
            // Address ID 0 is the peer's end of the first subflow, and of
            // any join it made from there.
            self.mptcp.pm_work.removals.push((meta, Some(addr_id)));
            if addr_id == 0
                && self
                    .conns
                    .get_mut(meta)
                    .is_some_and(|e| e.conn.mptcp_first_removed())
            {
                self.mark_dirty(meta);
            }
        }
        self.mptcp.pm_signal(token, sig, port);
    }

    /// The application aborts connection `id`: if it is an MPTCP
    /// connection, its RST and those of its subflows carry MP_FASTCLOSE
    /// (RFC 8684 §3.5); subflows in the worker's other stacks follow
    /// through `mptcp_route`, those in other workers by message
    /// (`mptcp_remote`).
    pub(super) fn mptcp_fastclose(&mut self, id: ConnId) {
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };
        if e.conn.mptcp().is_none_or(|m| !m.is_mptcp()) && e.conn.mptcp_join().is_none() {
            return;
        }
        e.conn.abort_with(true);
        if e.subflow_of.is_some() || e.is_joined() {
            return;
        }
        self.mptcp_close_subflows(None, id, None);
        if self.mptcp.foreign.index().is_some() {
            self.mptcp.pm_work.removals.push((id, None));
        }
        // Now, while the connection still holds its token.
        self.mptcp_remote_close(id, super::mptcp_remote::CloseHow::Remove(None));
    }

    /// Close the subflows of connection `meta` (here: `owner` None; in
    /// stack `owner`) whose peer end has Address ID `addr_id` (all of
    /// them: `None`, with MP_FASTCLOSE).
    pub(super) fn mptcp_close_subflows(
        &mut self,
        owner: Option<(usize, ConnId)>,
        meta: ConnId,
        addr_id: Option<u8>,
    ) {
        let ids = self.mptcp_subflows_where(owner, meta, |e| {
            e.conn
                .mptcp_join()
                .is_some_and(|j| addr_id.is_none_or(|a| j.remote_addr_id == a))
        });
        for c in ids {
            match addr_id {
                Some(_) => self.iface.counters.mptcp_subflows_removed += 1,
                None => self.mptcp_fastclose(c),
            }
            self.abort_conn(c);
        }
    }

    /// RFC 8684 §3.4.2: our address `ip` is no longer to be used (the
    /// application or runtime knows why: an interface going down, an
    /// address given up). Every MPTCP connection here that announced it
    /// sends REMOVE_ADDR with its Address ID on its first subflow and stops
    /// announcing it; subflows leaving from it are reset (`pm_run`: in
    /// whichever stack of the worker they live), and a first subflow
    /// leaving from it ends, its REMOVE_ADDR 0 on a joined subflow
    /// (`withdraw_first`); no new subflow uses it, and joins to it are
    /// refused. Call it on every stack of the worker (see
    /// [`mptcp_withdraw_address`]). Returns the connections that sent
    /// REMOVE_ADDR for an announced address.
    pub fn mptcp_withdraw_address(&mut self, ip: Ipv4Addr) -> usize {
        if !self.mptcp.withdrawn.contains(&ip) {
            self.mptcp.withdrawn.push(ip);
        }
        let metas: Vec<ConnId> = self
            .conns
            .ids()
            .filter(|&c| self.conns.get(c).is_some_and(|e| e.mptcp_meta_open()))
            .collect();
        let mut sent = 0;
        for meta in metas {
            let Some(e) = self.conns.get_mut(meta) else {
                continue;
            };
            let ids: Vec<u8> = e
                .conn
                .mptcp_announced()
                .iter()
                .filter(|a| a.1 == ip)
                .map(|a| a.0)
                .collect();
            for id in ids {
                if e.conn.mptcp_withdraw(id) {
                    sent += 1;
                }
            }
            self.mptcp.pm_work.withdrawn.push((meta, ip));
            self.mark_dirty(meta);
        }
        sent
    }

    /// Our address `ip`, withdrawn (see [`mptcp_withdraw_address`]), is
    /// usable again (an interface back up): connections we accepted
    /// announce it again (RFC 8684 §3.4.1), path managers may join from
    /// it again, and it accepts joins. Call it on every stack of the
    /// worker (see [`mptcp_restore_address`]). False when it was not
    /// withdrawn here.
    pub fn mptcp_restore_address(&mut self, ip: Ipv4Addr) -> bool {
        let before = self.mptcp.withdrawn.len();
        self.mptcp.withdrawn.retain(|&w| w != ip);
        if before == self.mptcp.withdrawn.len() {
            return false;
        }
        self.mptcp.pm_restore_local(ip);
        if self.cfg.tcp.mptcp_max_subflows > 0 && self.cfg.tcp.mptcp_announce {
            let accepted: Vec<ConnId> = self
                .conns
                .ids()
                .filter(|&c| {
                    self.conns
                        .get(c)
                        .is_some_and(|e| e.mptcp_meta_open() && e.listener.is_some())
                })
                .collect();
            self.mptcp.pm_work.announce.extend(accepted);
        }
        true
    }

    /// The carrier of this stack's interface went down (`up` false) or
    /// came back (the runtime's link watcher). Down, every MPTCP subflow
    /// here stops taking data and what it holds goes again on its
    /// connection's other subflows at once (RFC 8684 §3.3.6), rather than
    /// after its retransmission timeouts; the subflows stay (the address
    /// may be another interface's too, and a carrier may blink). Up, they
    /// take data again, and every connection here whose retransmission
    /// timer backed off during the outage retransmits now
    /// (`Connection::link_restored`). A connection in another stack of
    /// the worker sees its subflows here change at the next
    /// `mptcp_route`. Returns the subflows changed.
    pub fn link_state(&mut self, up: bool) -> usize {
        let ids: Vec<ConnId> = self.conns.ids().collect();
        let mut changed = 0;
        for id in ids {
            let Some(e) = self.conns.get_mut(id) else {
                continue;
            };
            let kicked = up && e.conn.link_restored();
            if !e.conn.mptcp_set_link(up) {
                if kicked {
                    self.mark_dirty(id);
                }
                continue;
            }
            changed += 1;
            // The connection's view of it, and a scheduling pass for what
            // it held (`mptcp_schedule_for`).
            let meta = e.subflow_of.unwrap_or(id);
            if meta == id {
                e.conn.mptcp_refresh_view(None);
            } else if let Some((m, s)) = self.conns.get2_mut(meta, id) {
                m.conn.mptcp_refresh_view(Some(&s.conn));
            }
            self.mark_dirty(meta);
            self.mark_dirty(id);
        }
        if !up {
            self.iface.counters.mptcp_subflows_link_down += changed as u64;
        }
        changed
    }

    /// Reset the subflows of connection `meta` (here: `owner` None; in
    /// stack `owner`) leaving from our address `ip`.
    pub(super) fn mptcp_close_local(
        &mut self,
        owner: Option<(usize, ConnId)>,
        meta: ConnId,
        ip: Ipv4Addr,
    ) {
        let ids = self.mptcp_subflows_where(owner, meta, |e| *e.tuple.local.ip() == ip);
        for c in ids {
            self.iface.counters.mptcp_subflows_withdrawn += 1;
            self.abort_conn(c);
        }
    }

    /// Queue a REMOVE_ADDR of our Address ID `id` on one established
    /// joined subflow here of connection `meta` (`owner` as below).
    /// Returns whether one took it.
    fn mptcp_withdraw_on_join(
        &mut self,
        owner: Option<(usize, ConnId)>,
        meta: ConnId,
        id: u8,
    ) -> bool {
        for c in self.mptcp_subflows_where(owner, meta, |_| true) {
            if self
                .conns
                .get_mut(c)
                .is_some_and(|e| e.conn.mptcp_withdraw_on_join(id))
            {
                self.mark_dirty(c);
                return true;
            }
        }
        false
    }

    /// The joined subflows here of connection `meta` (`owner` None: in
    /// this stack; else in stack `owner`) for which `pred` holds.
    fn mptcp_subflows_where(
        &self,
        owner: Option<(usize, ConnId)>,
        meta: ConnId,
        pred: impl Fn(&ConnEntry<D::Frame>) -> bool,
    ) -> Vec<ConnId> {
        self.conns
            .ids()
            .filter(|&c| {
                self.conns.get(c).is_some_and(|e| {
                    let of = match owner {
                        None => e.subflow_of == Some(meta),
                        Some(o) => e.foreign_of == Some(o),
                    };
                    of && pred(e)
                })
            })
            .collect()
    }

    /// Our Address ID for `ip`, one of this stack's addresses (RFC 8684
    /// §3.4.1): 1 + its place among the worker's addresses (as
    /// [`PathManager::local_id`] and our announcements number them).
    pub(super) fn mptcp_addr_id(&self, ip: Ipv4Addr) -> u8 {
        if let Some(&(_, id)) = self.mptcp.addr_ids.iter().find(|a| a.0 == ip) {
            return id;
        }
        self.cfg
            .addrs
            .iter()
            .position(|a| a.addr == ip)
            .map_or(0, |i| (i + 1).min(u8::MAX as usize) as u8)
    }

    /// Our addresses in this stack, as path-manager local ends.
    fn mptcp_locals(&self, stack: usize, out: &mut Vec<LocalAddr>) {
        for a in &self.cfg.addrs {
            let l = LocalAddr { stack, ip: a.addr };
            if !out.contains(&l) {
                out.push(l);
            }
        }
    }
}

/// Run the path managers of stack `i` that have work (a connection newly
/// established, an address announced): open the subflows they ask for
/// while the connection has room for them. `stacks[j]` is the worker's
/// stack `j`.
pub(super) fn pm_run<D: Device, S: BorrowMut<Stack<D>>>(stacks: &mut [S], i: usize) {
    if stacks[i].borrow().mptcp.pm_work.is_empty() {
        return;
    }
    let work = std::mem::take(&mut stacks[i].borrow_mut().mptcp.pm_work);
    // RFC 8684 §3.4.2: withdrawn addresses take their subflows with them,
    // wherever they live.
    for (meta, addr_id) in work.removals {
        for (j, s) in stacks.iter_mut().enumerate() {
            let owner = (j != i).then_some((i, meta));
            s.borrow_mut().mptcp_close_subflows(owner, meta, addr_id);
        }
        // And in other workers.
        let how = super::mptcp_remote::CloseHow::Remove(addr_id);
        stacks[i].borrow_mut().mptcp_remote_close(meta, how);
    }
    let due = work.due;
    let mut locals = Vec::new();
    for (j, s) in stacks.iter().enumerate() {
        s.borrow().mptcp_locals(j, &mut locals);
    }
    // RFC 8684 §3.4.2: withdrawn addresses are neither announced nor
    // joined from.
    let usable: Vec<LocalAddr> = locals
        .iter()
        .filter(|l| {
            stacks
                .get(l.stack)
                .is_none_or(|s| !s.borrow().mptcp.withdrawn.contains(&l.ip))
        })
        .copied()
        .collect();
    for (meta, ip) in work.withdrawn {
        for (j, s) in stacks.iter_mut().enumerate() {
            let owner = (j != i).then_some((i, meta));
            s.borrow_mut().mptcp_close_local(owner, meta, ip);
        }
        let how = super::mptcp_remote::CloseHow::Withdrawn(ip);
        stacks[i].borrow_mut().mptcp_remote_close(meta, how);
        withdraw_first(stacks, i, meta, ip);
    }
    // RFC 8684 §3.4.1: a server announces its other addresses, each
    // under the Address ID its SYN/ACK of a join to it will carry.
    for meta in work.announce {
        let here = stacks[i].borrow_mut();
        let Some(first) = here.conns.get(meta).map(|e| *e.tuple.local.ip()) else {
            continue;
        };
        let mut list: Vec<(u8, Ipv4Addr)> = Vec::new();
        for l in &usable {
            if l.ip != first && !list.iter().any(|a| a.1 == l.ip) {
                list.push((worker_addr_id(&locals, l.ip), l.ip));
            }
        }
        let Some(e) = here.conns.get_mut(meta) else {
            continue;
        };
        if e.conn.mptcp_announce(&list) > 0 {
            here.mark_dirty(meta);
        }
    }
    let limit = stacks[i].borrow().cfg.tcp.mptcp_max_subflows;
    for token in due {
        // Bounded: each round tries a new (local, remote) pair.
        for _ in 0..crate::mptcp::pm::MAX_LOCAL * crate::mptcp::pm::MAX_REMOTE {
            let here = stacks[i].borrow_mut();
            let Some(t) = here.mptcp_join_target(token) else {
                break;
            };
            if t.joined >= limit {
                break;
            }
            let Some((l, r, local_id)) = here.mptcp.pm_next(token, &locals, &usable) else {
                break;
            };
            let nonce = here.mptcp.next_nonce();
            let join = Join::active(t.local_key, t.remote_key, nonce, local_id);
            let opened = if l.stack == i {
                here.mptcp_open_join(l.ip, r.addr, join, &t, None)
            } else {
                match stacks.get_mut(l.stack) {
                    Some(s) => s
                        .borrow_mut()
                        .mptcp_open_join(l.ip, r.addr, join, &t, Some(i)),
                    None => false,
                }
            };
            if opened {
                let here = stacks[i].borrow_mut();
                here.mptcp_count_join(t.conn, token, true);
                // Address ID 0 is the first subflow's peer address; any
                // other came by ADD_ADDR (RFC 8684 §3.4.1).
                here.iface.counters.mptcp_joins_to_announced += (r.id != 0) as u64;
            }
        }
    }
}

/// RFC 8684 §3.4.2: our address `ip` withdrawn is that of connection
/// `meta`'s first subflow (stack `i`), Address ID 0, never announced: the
/// REMOVE_ADDR goes on a remaining joined subflow (in whichever stack of
/// the worker it lives), so the peer drops its end of the dead subflow at
/// once rather than when its retransmissions time out; and the first
/// subflow's role ends here too (as Linux closes its own subflows of a
/// removed address), its data going on the others.
fn withdraw_first<D: Device, S: BorrowMut<Stack<D>>>(
    stacks: &mut [S],
    i: usize,
    meta: ConnId,
    ip: Ipv4Addr,
) {
    let first = stacks[i].borrow().conns.get(meta).is_some_and(|e| {
        *e.tuple.local.ip() == ip && !e.conn.mptcp_meta_only() && e.conn.mptcp_join().is_none()
    });
    if !first {
        return;
    }
    let sent = stacks.iter_mut().enumerate().any(|(j, s)| {
        let owner = (j != i).then_some((i, meta));
        s.borrow_mut().mptcp_withdraw_on_join(owner, meta, 0)
    });
    let here = stacks[i].borrow_mut();
    if sent
        && here
            .conns
            .get_mut(meta)
            .is_some_and(|e| e.conn.mptcp_first_removed())
    {
        here.mark_dirty(meta);
    }
}

/// Our Address ID for `ip` among the worker's addresses `locals` (in
/// stack order): 1 + the place of its first appearance (Address ID 0 is
/// each connection's first subflow's address).
fn worker_addr_id(locals: &[LocalAddr], ip: Ipv4Addr) -> u8 {
    locals
        .iter()
        .position(|l| l.ip == ip)
        .map_or(0, |i| (i + 1).min(u8::MAX as usize) as u8)
}

/// Number the worker's addresses once (`Stack::mptcp_addr_id`), so that a
/// stack's SYN/ACK of a join names the address as the announcements and
/// the path managers of the worker do.
pub(super) fn assign_addr_ids<D: Device, S: BorrowMut<Stack<D>>>(stacks: &mut [S]) {
    if stacks.len() < 2 || !stacks[0].borrow().mptcp.addr_ids.is_empty() {
        return;
    }
    let mut locals = Vec::new();
    for (j, s) in stacks.iter().enumerate() {
        s.borrow().mptcp_locals(j, &mut locals);
    }
    for s in stacks.iter_mut() {
        let s = s.borrow_mut();
        let ids: Vec<(Ipv4Addr, u8)> = s
            .cfg
            .addrs
            .iter()
            .map(|a| (a.addr, worker_addr_id(&locals, a.addr)))
            .collect();
        s.mptcp.addr_ids = ids;
    }
}

/// [`Stack::mptcp_restore_address`] on every stack of a worker.
pub fn mptcp_restore_address<D: Device, S: BorrowMut<Stack<D>>>(
    stacks: &mut [S],
    ip: Ipv4Addr,
) -> bool {
    stacks.iter_mut().fold(false, |any, s| {
        s.borrow_mut().mptcp_restore_address(ip) | any
    })
}

/// [`Stack::mptcp_withdraw_address`] on every stack of a worker.
pub fn mptcp_withdraw_address<D: Device, S: BorrowMut<Stack<D>>>(
    stacks: &mut [S],
    ip: Ipv4Addr,
) -> usize {
    stacks
        .iter_mut()
        .map(|s| s.borrow_mut().mptcp_withdraw_address(ip))
        .sum()
}
