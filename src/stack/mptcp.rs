//! MPTCP at the stack level (RFC 8684): keys and tokens (§3.1) — every
//! connection using MPTCP gets a key whose token no other connection here
//! holds, so a later MP_JOIN names exactly one connection — and the
//! passive side of MP_JOIN (§3.2): a SYN naming a token becomes a subflow
//! of that connection, or is refused with RST + MP_TCPRST, counted by
//! reason.

use super::mptcp_foreign::PendingJoin;
use super::mptcp_remote::{CloseHow, RemoteOf};
use super::tcp_table::ConnEntry;
use super::{ConnId, Stack};
use crate::io::Device;
use crate::mptcp::join::{self, JoinSyn};
use crate::mptcp::pm::Signals;
use crate::mptcp::{Join, KeySource, LocalAddr, PathManager, Phase, RemoteAddr};
use crate::tcp::{self, Connection, FourTuple, Payload, TcpRepr};
use crate::time::Instant;
use crate::wire::MptcpRaw;
use core::net::SocketAddrV4;
use hashbrown::HashMap;

/// Draws before giving up on a unique token (2^-32 odds each): the
/// connection then falls back to plain TCP rather than share one.
const MAX_DRAWS: u32 = 16;

/// A token in use: the connection holding it (its first subflow) and the
/// extra subflows joined to it, live or half-open.
#[derive(Debug, Clone)]
pub(super) struct TokenEntry {
    conn: ConnId,
    joined: u8,
    /// The path manager of a connection we opened (`mptcp_pm`), once it
    /// is fully established and may have extra subflows.
    pm: Option<Box<PathManager>>,
    /// Addresses announced before the path manager started.
    early: Vec<(u8, SocketAddrV4)>,
}

/// Work for the path managers (`mptcp_pm::pm_run`).
#[derive(Debug, Default)]
pub(super) struct PmWork {
    /// Tokens whose path manager has subflows to open.
    pub due: Vec<u32>,
    /// Subflows to close: (the connection, the peer's Address ID it
    /// withdrew; `None`: all, the connection was aborted).
    pub removals: Vec<(ConnId, Option<u8>)>,
    /// Connections we accepted, newly established with MPTCP: they
    /// announce our other addresses (RFC 8684 §3.4.1).
    pub announce: Vec<ConnId>,
    /// Subflows to close because our address they leave from was
    /// withdrawn: (the connection, our address).
    pub withdrawn: Vec<(ConnId, core::net::Ipv4Addr)>,
}

impl PmWork {
    pub(super) fn is_empty(&self) -> bool {
        self.due.is_empty()
            && self.removals.is_empty()
            && self.announce.is_empty()
            && self.withdrawn.is_empty()
    }
}

/// The key source and the tokens in use.
pub(super) struct Tokens {
    keys: KeySource,
    in_use: HashMap<u32, TokenEntry>,
    /// Joins and subflow data for the worker's other stacks.
    pub(super) foreign: super::mptcp_foreign::Foreign,
    pub(super) pm_work: PmWork,
    /// Which ports active joins may use.
    pub(super) port_filter: Option<super::mptcp_pm::PortFilter>,
    /// Joined subflows here whose connection is here too: (subflow,
    /// connection), for the scheduler.
    pub(super) subs: Vec<(ConnId, ConnId)>,
    /// Our Address IDs across the worker's stacks (`mptcp_pm::addr_ids`),
    /// once the worker's stacks were seen together; empty for a stack
    /// alone.
    pub(super) addr_ids: Vec<(core::net::Ipv4Addr, u8)>,
    /// Our addresses withdrawn (`Stack::mptcp_withdraw_address`): no
    /// longer announced, joined from, or accepting joins.
    pub(super) withdrawn: Vec<core::net::Ipv4Addr>,
    /// Tokens drawn (true) and released (false) since the last drain, if
    /// the runtime asked for it (its token directory, for joins that
    /// arrive on another worker's queue).
    pub(super) log: Option<Vec<(u32, bool)>>,
}

impl Tokens {
    pub(super) fn new(secret: &[u8; 16]) -> Self {
        Tokens {
            keys: KeySource::new(secret),
            in_use: HashMap::new(),
            foreign: Default::default(),
            pm_work: PmWork::default(),
            port_filter: None,
            subs: Vec::new(),
            addr_ids: Vec::new(),
            withdrawn: Vec::new(),
            log: None,
        }
    }

    /// Start the path manager of the connection holding `token`.
    pub(super) fn set_pm(&mut self, token: u32, pm: PathManager) {
        if let Some(t) = self.in_use.get_mut(&token) {
            let mut pm = pm;
            for (id, a) in t.early.drain(..) {
                pm.add_remote(id, a);
            }
            t.pm = Some(Box::new(pm));
            self.pm_work.due.push(token);
        }
    }

    /// The path manager of the connection holding `token`, if it runs one.
    pub(super) fn pm_mut(&mut self, token: u32) -> Option<&mut PathManager> {
        self.in_use.get_mut(&token)?.pm.as_deref_mut()
    }

    /// The next subflow the path manager of `token` wants, from one of
    /// `locals`, with our Address ID for it.
    /// `usable`: those of `locals` not withdrawn (Address IDs are places
    /// in `locals`, all of them).
    pub(super) fn pm_next(
        &mut self,
        token: u32,
        locals: &[LocalAddr],
        usable: &[LocalAddr],
    ) -> Option<(LocalAddr, RemoteAddr, u8)> {
        let pm = self.pm_mut(token)?;
        let (l, r) = pm.next(usable)?;
        Some((l, r, pm.local_id(l, locals)))
    }

    /// Our address `ip` came back: every path manager may open subflows
    /// from it again.
    pub(super) fn pm_restore_local(&mut self, ip: core::net::Ipv4Addr) {
        for (&token, t) in self.in_use.iter_mut() {
            if t.pm.as_deref_mut().is_some_and(|pm| pm.restore_local(ip)) {
                self.pm_work.due.push(token);
            }
        }
    }

    /// Announced and withdrawn addresses for the path manager of
    /// `token` (`port`: the first subflow's remote port, for
    /// announcements without one). Before the path manager starts they
    /// wait in `early`.
    pub(super) fn pm_signal(&mut self, token: u32, sig: &Signals, port: u16) {
        let Some(t) = self.in_use.get_mut(&token) else {
            return;
        };
        let mut due = false;
        for &(id, ip, p) in &sig.added {
            let a = SocketAddrV4::new(ip, p.unwrap_or(port));
            match t.pm.as_deref_mut() {
                Some(pm) => due |= pm.add_remote(id, a),
                None if t.early.len() < crate::mptcp::pm::MAX_REMOTE => t.early.push((id, a)),
                None => {}
            }
        }
        for &id in &sig.removed {
            t.early.retain(|e| e.0 != id);
            if let Some(pm) = t.pm.as_deref_mut() {
                pm.remove_remote(id);
            }
        }
        if due {
            self.pm_work.due.push(token);
        }
    }

    /// Connection `conn` leaves this stack for another worker's
    /// (`mptcp_conn_migrate`): the entry of its token, if it holds one.
    /// Not logged: the runtime hands the token directory's entry over.
    pub(super) fn take(&mut self, token: u32, conn: ConnId) -> Option<TokenEntry> {
        if self.in_use.get(&token)?.conn != conn {
            return None;
        }
        self.pm_work.due.retain(|&t| t != token);
        self.in_use.remove(&token)
    }

    /// The connection holding `token` here, if any.
    pub(super) fn holder(&self, token: u32) -> Option<ConnId> {
        self.in_use.get(&token).map(|t| t.conn)
    }

    /// Whether `token` is free here (a moved connection can hold it).
    pub(super) fn is_free(&self, token: u32) -> bool {
        !self.in_use.contains_key(&token)
    }

    /// A connection moved here as `conn` holds `token` from now on; its
    /// path manager, if it started, goes on here.
    pub(super) fn put(&mut self, token: u32, conn: ConnId, mut t: TokenEntry) {
        t.conn = conn;
        if t.pm.is_some() {
            self.pm_work.due.push(token);
        }
        self.in_use.insert(token, t);
    }

    /// The number of subflows joined to the connection holding `token`
    /// (all stacks and workers), if `conn` holds it.
    pub(super) fn joined(&self, token: u32, conn: ConnId) -> Option<u8> {
        self.in_use
            .get(&token)
            .filter(|t| t.conn == conn)
            .map(|t| t.joined)
    }

    /// A fresh MP_JOIN nonce (R-A of an active join).
    pub(super) fn next_nonce(&mut self) -> u32 {
        self.keys.next_nonce()
    }
}

/// What a join needs of the connection holding its token.
#[derive(Debug, Clone)]
pub struct JoinTarget {
    pub conn: ConnId,
    pub local_key: crate::mptcp::Key,
    pub remote_key: crate::mptcp::Key,
    /// Our address on its first subflow (Address ID 0).
    pub first_ip: std::net::Ipv4Addr,
    /// Extra subflows it has.
    pub joined: u8,
    /// Its coupled congestion control (RFC 6356), if on.
    pub lia: Option<std::sync::Arc<crate::tcp::cc::lia::LiaGroup>>,
}

impl<D: Device> Stack<D> {
    /// Give connection `id` its MPTCP key if it wants one (an active open
    /// with MPTCP on, or a passive one whose peer offered it).
    pub(super) fn mptcp_assign_key(&mut self, id: ConnId) {
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };
        if !e.conn.mptcp_wants_key() {
            return;
        }
        for _ in 0..MAX_DRAWS {
            let key = self.mptcp.keys.next_key();
            let token = key.token();
            if self.mptcp.in_use.contains_key(&token) {
                self.iface.counters.mptcp_token_collisions += 1;
                continue;
            }
            self.mptcp.in_use.insert(
                token,
                TokenEntry {
                    conn: id,
                    joined: 0,
                    pm: None,
                    early: Vec::new(),
                },
            );
            e.conn.set_mptcp_key(key);
            if let Some(log) = &mut self.mptcp.log {
                log.push((token, true));
            }
            return;
        }
    }

    /// Connection `id` is gone: its token is free again; a joined subflow
    /// frees its place among the connection's subflows (one here, or, by
    /// message, one in another stack of the worker).
    pub(super) fn mptcp_release(
        &mut self,
        id: ConnId,
        conn: &mut Connection<D::Frame>,
        subflow_of: Option<ConnId>,
        foreign_of: Option<(usize, ConnId)>,
        remote_of: Option<RemoteOf>,
    ) {
        if let (Some(_), Some(r)) = (conn.mptcp_join(), remote_of) {
            let back = conn.mptcp_take_returns();
            self.mptcp_remote_released(id, r, conn.mptcp_last_data_ack(), back);
            return;
        }
        if let (Some(token), Some((stack, meta))) = (conn.mptcp_join().map(|j| j.token), foreign_of)
        {
            // The connection's lent frames go back to it first.
            if let Some(slot) = conn.mptcp_tx_slot() {
                let frames = conn.mptcp_take_returns();
                if !frames.is_empty() {
                    self.mptcp_returns.push((stack, meta, slot, frames));
                }
            }
            self.mptcp.foreign.released(
                stack,
                meta,
                token,
                conn.mptcp_tx_slot(),
                conn.mptcp_last_data_ack(),
            );
            self.mptcp.foreign.subs.retain(|s| s.0 != id);
            return;
        }
        if let (Some(token), Some(of)) = (conn.mptcp_join().map(|j| j.token), subflow_of) {
            self.mptcp.subs.retain(|s| s.0 != id);
            // Its last DATA_ACK first (the one that acknowledged the
            // DATA_FIN may have closed it); what it was given goes to
            // the connection's other subflows.
            if let (Some(slot), Some(m)) = (conn.mptcp_tx_slot(), self.conns.get_mut(of)) {
                if let Some(a) = conn.mptcp_last_data_ack() {
                    m.conn.mptcp_note_data_ack(a);
                }
                // Its lent frames back before its data is reinjected.
                m.conn.mptcp_collect_back(conn, true);
                m.conn.mptcp_slot_gone(slot);
                self.mark_dirty(of);
            }
            // Only if the token still names that connection (it may have
            // gone first, and its token been drawn again since).
            if let Some(t) = self.mptcp.in_use.get_mut(&token) {
                if t.conn == of {
                    t.joined = t.joined.saturating_sub(1);
                }
            }
            return;
        }
        if let Some(t) = conn.mptcp().and_then(|m| m.local_token()) {
            if self.mptcp.in_use.get(&t).is_some_and(|e| e.conn == id) {
                self.mptcp.in_use.remove(&t);
                self.mptcp_remote_forget(id);
                if let Some(log) = &mut self.mptcp.log {
                    log.push((t, false));
                }
            }
        }
    }

    /// First subflow `id` in TIME-WAIT: once its connection is closed
    /// (RFC 8684 §3.3.3, both DATA_FINs DATA_ACKed) its token is released
    /// now rather than after 2·MSL, so that the directory does not fill
    /// with dead connections and a join for it gets the answer for an
    /// unknown token (§3.2: RST with MP_TCPRST). The TIME-WAIT itself
    /// stays for the subflow's FINs.
    pub(super) fn mptcp_release_closed(&mut self, id: ConnId) {
        let Some(e) = self.conns.get(id) else {
            return;
        };
        if !e.conn.mptcp_conn_closed() {
            return;
        }
        let Some(t) = e.conn.mptcp().and_then(|m| m.local_token()) else {
            return;
        };
        // Only if it still names this connection (tokens are reused).
        if self.mptcp.holder(t) != Some(id) {
            return;
        }
        self.mptcp.in_use.remove(&t);
        self.mptcp.pm_work.due.retain(|&d| d != t);
        self.mptcp_remote_forget(id);
        if let Some(log) = &mut self.mptcp.log {
            log.push((t, false));
        }
        self.iface.counters.mptcp_tokens_released_closed += 1;
    }

    /// RFC 8684 §3.3.3: "once the DATA_FIN has been acknowledged, all
    /// remaining subflows MUST be closed with standard FIN exchanges".
    /// Called when connection `meta`'s first subflow closes: its subflows
    /// here close now (a join still in its handshake simply ends), those
    /// in the worker's other stacks at the next `mptcp_route`.
    /// `data_fin`: the connection's first subflow is gone and their FINs
    /// carry its DATA_FIN, at that DSN (`tcp::conn::mptcp_first`).
    pub(super) fn mptcp_end_subflows(&mut self, meta: ConnId, data_fin: Option<u64>) {
        if let Some(e) = self.conns.get_mut(meta) {
            e.subflows_closed = true;
        }
        let subs: Vec<ConnId> = self
            .mptcp
            .subs
            .iter()
            .filter(|s| s.1 == meta)
            .map(|s| s.0)
            .collect();
        for id in subs {
            self.close_subflow(id, data_fin);
        }
        if self.mptcp.foreign.index().is_some() {
            self.mptcp.foreign.meta_closing.push((meta, data_fin));
        }
        self.mptcp_remote_close(meta, CloseHow::DataFin(data_fin));
    }

    /// Close subflow `id` of a connection that ended (`data_fin`: its FIN
    /// carries the connection's DATA_FIN).
    pub(super) fn close_subflow(&mut self, id: ConnId, data_fin: Option<u64>) {
        if let Some(e) = self.conns.get_mut(id) {
            e.conn.mptcp_close_subflow(data_fin);
            self.mark_dirty(id);
            self.after_op(id);
        }
    }

    /// A join we opened for connection `meta` (here, or in another stack
    /// of the worker) was refused (`Connection::mptcp_early_join_refused`).
    pub(super) fn mptcp_join_refused(
        &mut self,
        meta: Option<ConnId>,
        foreign: Option<(usize, ConnId)>,
    ) {
        if let Some((stack, meta)) = foreign {
            self.mptcp.foreign.refused.push((stack, meta));
        } else if let Some(m) = meta {
            self.mptcp_early_join_refused(m);
        }
    }

    /// `mptcp_join_refused` for connection `meta` here.
    pub(super) fn mptcp_early_join_refused(&mut self, meta: ConnId) {
        if self
            .conns
            .get_mut(meta)
            .is_some_and(|m| m.conn.mptcp_early_join_refused())
        {
            self.mark_dirty(meta);
        }
    }

    /// A join of connection `conn` (holding `token`) was accepted
    /// (`+1`) or went (`-1`) in another stack of the worker.
    pub(super) fn mptcp_count_join(&mut self, conn: ConnId, token: u32, up: bool) {
        if let Some(t) = self.mptcp.in_use.get_mut(&token) {
            if t.conn == conn {
                t.joined = if up {
                    t.joined.saturating_add(1)
                } else {
                    t.joined.saturating_sub(1)
                };
            }
        }
    }

    /// Draw MPTCP keys from stream `stream` of the stack's secret: the
    /// workers of one interface share its secret (SYN cookies must be
    /// valid on any of them), and without streams of their own they would
    /// hand out the same keys and tokens in the same order. Called before
    /// the first connection.
    pub fn mptcp_key_stream(&mut self, stream: u64) {
        self.mptcp.keys = KeySource::with_stream(&self.cfg.secret, stream);
    }

    /// Start logging the tokens this stack draws and releases (for a
    /// runtime's token directory); drain with [`Self::drain_token_log`].
    pub fn log_tokens(&mut self) {
        self.mptcp.log.get_or_insert_with(Vec::new);
    }

    /// Every token drawn (`true`) or released (`false`) since the last
    /// call, in order. Drained before the transmit kick, a token is
    /// published before the first segment that carries its key leaves.
    pub fn drain_token_log(&mut self, mut f: impl FnMut(u32, bool)) {
        if let Some(log) = &mut self.mptcp.log {
            for (t, drawn) in log.drain(..) {
                f(t, drawn);
            }
        }
    }

    /// Tokens held by live connections.
    pub fn mptcp_tokens(&self) -> usize {
        self.mptcp.in_use.len()
    }

    /// A SYN for a listening port that may carry MP_JOIN. Returns false
    /// when it does not (a plain or MP_CAPABLE SYN for the listener);
    /// true when it was handled here: a new joining subflow in
    /// SYN-RECEIVED, or a RST refusing it.
    pub(super) fn mptcp_join_syn(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        seg: &TcpRepr,
        port: u16,
    ) -> bool {
        if !self.cfg.tcp.mptcp {
            return false;
        }
        let Some(syn) = JoinSyn::find(seg.options.mptcp.as_slice()) else {
            return false;
        };
        // RFC 8684 §3.2: "If the token is unknown or the host wants to
        // refuse subflow establishment (for example, due to a limit on the
        // number of subflows it will permit), the receiving host will send
        // back a reset (RST) signal ... containing an MP_TCPRST option".
        match self.mptcp_join_target(syn.token) {
            Some(t) => {
                self.mptcp_accept_join(now, tuple, seg, port, &syn, t, JoinOf::Here);
            }
            // Another interface's stack of this worker may hold it, or
            // another worker (the subflow then runs here all the same).
            None if self.mptcp.foreign.ask(now, tuple, seg, port, syn.token) => {}
            None if self.mptcp_remote_ask(PendingJoin::new(now, tuple, seg, port, syn.token)) => {}
            None => {
                self.iface.counters.mptcp_joins_rejected_token += 1;
                self.send_join_reset(now, &tuple, seg);
            }
        }
        true
    }

    /// Subflows of connection `id` whose windows LIA couples (RFC 6356;
    /// `MptcpCc::Lia`), 0 when they are not coupled.
    pub fn mptcp_coupled(&self, id: ConnId) -> usize {
        self.conns
            .get(id)
            .and_then(|e| e.conn.lia_group())
            .map_or(0, |g| g.len())
    }

    /// The connection holding `token`, if it is established with MPTCP
    /// (both keys known once MP_CAPABLE completed).
    pub fn mptcp_join_target(&self, token: u32) -> Option<JoinTarget> {
        let t = self.mptcp.in_use.get(&token)?;
        // A connection whose subflows are closing takes no new one.
        let e = self.conns.get(t.conn).filter(|e| !e.subflows_closed)?;
        let m = e.conn.mptcp()?;
        match (m.phase, m.local_key, m.remote_key) {
            (Phase::Established, Some(local_key), Some(remote_key)) => Some(JoinTarget {
                conn: t.conn,
                local_key,
                remote_key,
                first_ip: *e.tuple.local.ip(),
                joined: t.joined,
                lia: e.conn.lia_group().cloned(),
            }),
            _ => None,
        }
    }

    /// Accept a join of `target` (in this stack, in another stack of the
    /// worker, or in another worker: `of`): a new subflow in
    /// SYN-RECEIVED, or a RST when the connection has all the subflows it
    /// may have. Returns the subflow, if created.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn mptcp_accept_join(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        seg: &TcpRepr,
        port: u16,
        syn: &JoinSyn,
        target: JoinTarget,
        of: JoinOf,
    ) -> Option<ConnId> {
        if self.mptcp.withdrawn.contains(tuple.local.ip()) {
            // RFC 8684 §3.4.2: an address we withdrew takes no subflow.
            self.iface.counters.mptcp_joins_rejected_withdrawn += 1;
            self.send_join_reset(now, &tuple, seg);
            return None;
        }
        if target.joined >= self.cfg.tcp.mptcp_max_subflows {
            self.iface.counters.mptcp_joins_rejected_limit += 1;
            self.send_join_reset(now, &tuple, seg);
            return None;
        }
        // Address ID 0 is the address of the first subflow (RFC 8684
        // §3.2); our other addresses are numbered across the worker's
        // stacks, as our announcements name them (`mptcp_pm::addr_ids`).
        let local_addr_id = if *tuple.local.ip() == target.first_ip {
            0
        } else {
            self.mptcp_addr_id(*tuple.local.ip())
        };
        let nonce = self.mptcp.keys.next_nonce();
        let j = Join::new(
            syn,
            target.local_key,
            target.remote_key,
            nonce,
            local_addr_id,
        );
        let iss = self.isn.isn(&tuple, now);
        let mut conn = Connection::accept_join(&self.cfg.tcp, tuple, seg, iss, now, j);
        conn.set_lia_group(target.lia);
        let mut entry = ConnEntry::new(conn, tuple, Some(port));
        entry.half_open = true;
        match of {
            JoinOf::Here => {
                entry.subflow_of = Some(target.conn);
                if let Some(te) = self.mptcp.in_use.get_mut(&syn.token) {
                    te.joined += 1;
                }
            }
            JoinOf::Stack(stack) => entry.foreign_of = Some((stack, target.conn)),
            JoinOf::Worker(r) => entry.remote_of = Some(r),
        }
        if let Some(l) = self.listeners.get_mut(&port) {
            l.half_open += 1;
        }
        let id = self.conns.insert(entry);
        match of {
            JoinOf::Here => self.mptcp.subs.push((id, target.conn)),
            JoinOf::Stack(stack) => self.mptcp.foreign.subs.push((id, stack, target.conn)),
            JoinOf::Worker(_) => {}
        }
        self.iface.counters.conns_opened += 1;
        self.mark_dirty(id);
        self.after_op(id);
        Some(id)
    }

    /// Whether connection `conn` holds `token` here.
    pub(super) fn mptcp_holds(&self, token: u32, conn: ConnId) -> bool {
        self.mptcp
            .in_use
            .get(&token)
            .is_some_and(|t| t.conn == conn)
    }

    /// RFC 9293 §3.10.7.1 reset of a refused join, with MP_TCPRST
    /// "MPTCP-specific error" (RFC 8684 §3.2, §3.6); rate-limited as every
    /// stateless RST.
    pub(super) fn send_join_reset(&mut self, now: Instant, tuple: &FourTuple, seg: &TcpRepr) {
        let Some(mut rst) = tcp::reset_for(seg, 0) else {
            return;
        };
        let mut b = [0u8; 40];
        let n = join::reject_option().emit(&mut b);
        rst.options.mptcp = MptcpRaw::from_slice(&b[..n]).unwrap_or_default();
        if !self.limits.rst.take(now) {
            self.iface.counters.rst_rate_limited += 1;
            return;
        }
        if self.iface.emit_tcp(now, tuple, &rst, Payload::None, false) {
            self.iface.counters.rst_sent += 1;
        }
    }

    /// After input on joined subflow `id` of connection `meta`: its
    /// in-order data moves, frames and all, to the connection's data
    /// level (RFC 8684 §3.3: reassembly by DSN across subflows), and the
    /// subflow takes the connection's DATA_ACK and window for its next
    /// segments (§3.3.2, §3.3.4). Both live in this stack: no lock, no
    /// copy.
    pub(super) fn mptcp_forward(&mut self, id: ConnId, meta: ConnId) {
        if let Some((m, s)) = self.conns.get2_mut(meta, id) {
            // The scheduler knows it from the moment it is verified.
            // The same stack: the same frames.
            m.conn.mptcp_register_joined(&mut s.conn, true);
            if m.conn.mptcp_joined_data_ack(&mut s.conn) {
                self.mark_dirty(meta);
            }
        }
        let taken = self.mptcp_subflow_take(id);
        let r = self.mptcp_meta_data(meta, taken);
        self.mptcp_subflow_reply(id, r);
    }

    /// Before input on joined subflow `id`: it takes the connection's
    /// receive window as it stands (RFC 8684 §3.3.4: its data is checked
    /// against the connection-level window, which the peer may have
    /// learnt on another subflow since). Its connection in another stack
    /// of the worker, or in another worker, publishes its level in a cell
    /// (`LevelCell`), read here, before the worker's next `mptcp_route`
    /// or the connection's next message.
    pub(super) fn mptcp_refresh_level(&mut self, id: ConnId) {
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };
        // Plain TCP and first subflows have neither: one branch (`&`
        // evaluates both tests without one of its own).
        if e.subflow_of.is_none() & e.level.is_none() {
            return;
        }
        let Some(meta) = e.subflow_of else {
            // Read on any thread, newer than the messages maybe: the
            // subflow only moves forward (`mptcp_level`'s doc).
            if let Some(v) = e.level.as_deref().and_then(|c| c.load()) {
                e.conn.mptcp_set_data_level(v);
            }
            return;
        };
        if let Some((m, s)) = self.conns.get2_mut(meta, id) {
            if let Some(v) = m.conn.mptcp_data_level() {
                s.conn.mptcp_set_data_level(v);
            }
        }
    }

    /// The mapped data a joined subflow holds for its connection.
    pub(super) fn mptcp_subflow_take(&mut self, id: ConnId) -> Option<Joined<D::Frame>> {
        self.conns.get_mut(id)?.conn.mptcp_take_joined()
    }

    /// Connection `meta` takes a joined subflow's data (from this stack
    /// or another of the worker's): what the subflow is told back.
    pub(super) fn mptcp_meta_data(
        &mut self,
        meta: ConnId,
        taken: Option<Joined<D::Frame>>,
    ) -> MetaReply<D::Frame> {
        let mut r = MetaReply {
            ok: true,
            ack: false,
            level: None,
            queue: None,
        };
        let moved = taken.is_some();
        if let Some(m) = self.conns.get_mut(meta) {
            if let Some((mut items, fin)) = taken {
                (r.ok, r.ack) = m.conn.mptcp_data_in(&mut items, fin);
                r.queue = Some(items);
            }
            r.level = m.conn.mptcp_data_level();
        }
        if moved && r.level.is_some() {
            // Data reached the connection: its events (readable, end of
            // data) go to the application now.
            self.after_op(meta);
        }
        r
    }

    /// A joined subflow hears back from its connection: the emptied
    /// queue, the DATA_ACK and window, an ACK due, or a reset.
    pub(super) fn mptcp_subflow_reply(&mut self, id: ConnId, r: MetaReply<D::Frame>) {
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };
        if let Some(q) = r.queue {
            e.conn.mptcp_return_queue(q);
        }
        if let Some(v) = r.level {
            e.conn.mptcp_set_data_level(v);
        }
        if r.ack {
            e.conn.mptcp_ack_now();
        }
        if !r.ok {
            e.conn.abort();
        }
        if r.ack || !r.ok {
            self.mark_dirty(id);
        }
    }
}

impl<D: Device> Stack<D> {
    /// Before `id` transmits: if it is an MPTCP connection with data for
    /// its subflows, or a subflow of one here, the scheduler hands out
    /// what it can (RFC 8684 §3.3.8), its subflows taking turns until none
    /// takes more. Plain TCP: two checks.
    pub(super) fn mptcp_schedule_for(&mut self, id: ConnId, now: Instant) {
        let Some(e) = self.conns.get(id) else { return };
        let meta = match e.subflow_of {
            Some(m) => m,
            None if e.conn.mptcp_tx_pending() => id,
            None => return,
        };
        // Lent frames the subflow's ACKs freed go back to the connection.
        if meta != id && e.conn.mptcp_has_returns() {
            if let Some((m, s)) = self.conns.get2_mut(meta, id) {
                m.conn.mptcp_collect_back(&mut s.conn, false);
            }
        }
        if !self
            .conns
            .get(meta)
            .is_some_and(|m| m.conn.mptcp_tx_pending())
        {
            return;
        }
        let mut budget = self.data_frame_budget();
        let Stack {
            conns,
            iface,
            mptcp,
            ..
        } = self;
        let mut alloc = || match &mut budget {
            Some(0) => None,
            Some(k) => {
                *k -= 1;
                iface.dev.alloc()
            }
            None => iface.dev.alloc(),
        };
        // What each subflow can take now, and the DATA_ACK each saw (when
        // it moves, the connection may send its DATA_FIN: bit 0 below).
        if let Some(m) = conns.get_mut(meta) {
            m.conn.mptcp_refresh_view(None);
        }
        let mut acked = false;
        for &(sub, of) in mptcp.subs.iter() {
            if of == meta {
                if let Some((m, s)) = conns.get2_mut(meta, sub) {
                    acked |= m.conn.mptcp_joined_data_ack(&mut s.conn);
                    m.conn.mptcp_refresh_view(Some(&s.conn));
                }
            }
        }
        // Bit 0: the connection took data; bit i + 1: `subs[i]` did.
        let mut moved = acked as u64;
        let bit = |i: usize| 1u64.checked_shl(i as u32 + 1).unwrap_or(1 << 63);
        for _ in 0..MAX_ROUNDS {
            let mut n = 0;
            // The joined subflows first: each pull refreshes what the
            // scheduler knows of the subflow.
            for (i, &(sub, of)) in mptcp.subs.iter().enumerate() {
                if of != meta {
                    continue;
                }
                if let Some((m, s)) = conns.get2_mut(meta, sub) {
                    let k = m.conn.mptcp_pull_joined(&mut s.conn, &mut alloc, true);
                    if k > 0 {
                        moved |= bit(i);
                    }
                    n += k;
                }
            }
            if let Some(m) = conns.get_mut(meta) {
                let k = m.conn.mptcp_pull_first(&mut alloc);
                moved |= (k > 0) as u64;
                n += k;
            }
            if n == 0 {
                break;
            }
        }
        // Those that took data send it now (`id` itself is about to).
        if moved & 1 != 0 && meta != id {
            self.transmit_conn(meta, now);
            self.mark_dirty(meta);
        }
        for i in 0..self.mptcp.subs.len() {
            let (sub, of) = self.mptcp.subs[i];
            if of == meta && sub != id && moved & bit(i) != 0 {
                self.transmit_conn(sub, now);
                self.mark_dirty(sub);
            }
        }
    }
}

/// The scheduler between connection `meta` of stack `there` and its
/// subflow `sub` in stack `here` (another interface's, same worker): each
/// takes chunks in turn, frames from its own stack.
pub(super) fn schedule_across<D: Device>(
    there: &mut Stack<D>,
    meta: ConnId,
    here: &mut Stack<D>,
    sub: ConnId,
) {
    // Lent frames the subflow's ACKs freed go back to the connection.
    if let (Some(m), Some(s)) = (there.conns.get_mut(meta), here.conns.get_mut(sub)) {
        if s.conn.mptcp_has_returns() {
            m.conn.mptcp_collect_back(&mut s.conn, false);
        }
    }
    if !there
        .conns
        .get(meta)
        .is_some_and(|m| m.conn.mptcp_tx_pending())
    {
        return;
    }
    let lend = same_pool(there, here);
    let (mut b_there, mut b_here) = (there.data_frame_budget(), here.data_frame_budget());
    let (mut first, mut joined) = (0, 0);
    if let (Some(m), Some(s)) = (there.conns.get_mut(meta), here.conns.get_mut(sub)) {
        // A DATA_ACK the subflow saw may let the connection send its
        // DATA_FIN: it transmits as if it took data.
        first += m.conn.mptcp_joined_data_ack(&mut s.conn) as usize;
        m.conn.mptcp_refresh_view(None);
        m.conn.mptcp_refresh_view(Some(&s.conn));
    }
    for _ in 0..MAX_ROUNDS {
        let Some(m) = there.conns.get_mut(meta) else {
            return;
        };
        let Some(s) = here.conns.get_mut(sub) else {
            return;
        };
        let (ti, hi) = (&mut there.iface, &mut here.iface);
        let k1 = m
            .conn
            .mptcp_pull_joined(&mut s.conn, &mut || budgeted(&mut b_here, hi), lend);
        let k0 = m.conn.mptcp_pull_first(&mut || budgeted(&mut b_there, ti));
        first += k0;
        joined += k1;
        if k0 + k1 == 0 {
            break;
        }
    }
    let (tn, hn) = (there.now, here.now);
    if first > 0 {
        there.transmit_conn(meta, tn);
        there.mark_dirty(meta);
    }
    if joined > 0 {
        here.transmit_conn(sub, hn);
        here.mark_dirty(sub);
    }
}

/// Whether two stacks' devices take each other's frames (one UMEM, one
/// simulator pool): a subflow in one is lent the other's chunks.
pub(super) fn same_pool<D: Device>(a: &Stack<D>, b: &Stack<D>) -> bool {
    let id = a.iface.dev.frame_pool_id();
    id.is_some() && id == b.iface.dev.frame_pool_id()
}

pub(super) fn budgeted<D: Device>(
    budget: &mut Option<usize>,
    iface: &mut super::Iface<D>,
) -> Option<D::Frame> {
    match budget {
        Some(0) => None,
        Some(k) => {
            *k -= 1;
            iface.dev.alloc()
        }
        None => iface.dev.alloc(),
    }
}

impl<D: Device> Stack<D> {
    /// A joined subflow of connection `meta` here, living in another
    /// stack, is gone: its data goes to the other subflows.
    /// `ack`: the last DATA_ACK it saw, not passed on yet.
    pub(super) fn mptcp_foreign_gone(
        &mut self,
        meta: ConnId,
        slot: usize,
        ack: Option<crate::mptcp::RxDsn>,
    ) {
        if let Some(m) = self.conns.get_mut(meta) {
            if let Some(a) = ack {
                m.conn.mptcp_note_data_ack(a);
            }
            m.conn.mptcp_slot_gone(slot);
            self.mark_dirty(meta);
        }
    }
}

/// Rounds of pulls in one scheduling pass (each hands at most one chunk
/// per subflow and round).
pub(super) const MAX_ROUNDS: usize = 256;

/// A joined subflow's mapped data and DATA_FIN, for its connection.
pub type Joined<F> = (crate::tcp::MappedQueue<F>, Option<crate::mptcp::RxDsn>);

/// What a connection tells a joined subflow after taking its data.
pub struct MetaReply<F> {
    ok: bool,
    ack: bool,
    level: Option<crate::tcp::DataLevelView>,
    queue: Option<crate::tcp::MappedQueue<F>>,
}

impl<F> MetaReply<F> {
    /// The connection is gone: the subflow is reset.
    pub(super) fn reset() -> Self {
        MetaReply {
            ok: false,
            ack: false,
            level: None,
            queue: None,
        }
    }
}

/// Where the connection of a new joined subflow lives.
#[derive(Debug, Clone, Copy)]
pub(super) enum JoinOf {
    /// In this stack.
    Here,
    /// In this stack of the worker (`mptcp_foreign`).
    Stack(usize),
    /// In another worker (`mptcp_remote`).
    Worker(RemoteOf),
}
