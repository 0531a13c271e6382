//! Driving connections: the dirty list (one `poll_transmit` per connection
//! per poll, so a receive batch yields one ACK per connection, not one per
//! segment), the timer wheel (lazy: an entry that fires for a connection
//! gone or re-armed is skipped), and turning `ConnEvents` into app events.

use super::emit::TcpTx;
use super::iface::Iface;
use super::tcp_table::ConnEntry;
use super::timer::TimerWheel;
use super::{ConnId, Stack, StackCounters};
use crate::app::{CloseReason, Event};
use crate::io::Device;
use crate::tcp::{ConnEvents, ConnStats, SendNow, State};
use crate::time::Instant;

/// States in which the handshake has completed.
fn synchronized(s: State) -> bool {
    !matches!(
        s,
        State::Closed | State::Listen | State::SynSent | State::SynReceived
    )
}

/// Add a connection's counters to `c`: when it is removed (into the
/// stack's sums of closed connections) and, for live ones, when the
/// counters are read. Not per operation: that cost ~10 % of a round trip.
/// Each name is one field of both `ConnStats` and `StackCounters`.
pub(super) fn add_conn_counters(c: &mut StackCounters, s: &ConnStats) {
    macro_rules! add {
        ($($f:ident),* $(,)?) => { $( c.$f += s.$f; )* };
    }
    add!(
        retransmits,
        rto_timeouts,
        fast_recoveries,
        pmtu_reductions,
        black_holes,
        pmtu_probes,
        pmtu_raises,
        pmtu_probe_failures,
        stale_fins,
        fin_wait2_timeouts,
        acks_of_unsent,
        tx_beyond_snd_nxt,
        mptcp_fallbacks,
        mptcp_bad_options,
        mptcp_checksum_failures,
        mptcp_checksums_verified,
        mptcp_checksums_unverified,
        mptcp_mapping_mismatches,
        mptcp_fastcloses,
        mptcp_data_dups,
        mptcp_data_ooo,
        mptcp_data_mem_drops,
        mptcp_prio_received,
        mptcp_bytes_first,
        mptcp_bytes_joined,
        mptcp_reinjections,
        mptcp_data_rtos,
        mptcp_redundant_bytes,
        mptcp_opportunistic_retransmits,
        mptcp_penalisations,
        mptcp_tx_copied_bytes,
        mptcp_tx_lent_bytes,
        mptcp_tx_reinject_copied_bytes,
        mptcp_tx_lent_uncopied_bytes,
        mptcp_joined_bytes,
        mptcp_joins_accepted,
        mptcp_joins_rejected_hmac,
        mptcp_subflows_opened,
        mptcp_join_synack_bad_hmac,
        mptcp_add_addr_received,
        mptcp_add_addr_bad_hmac,
        mptcp_remove_addr_received,
        mptcp_add_addr_sent,
        mptcp_add_addr_retransmits,
        mptcp_add_addr_echoed,
        mptcp_remove_addr_sent,
        mptcp_mp_fail_sent,
        mptcp_mp_fail_received,
        mptcp_infinite_maps_sent,
        mptcp_infinite_maps_received,
        mptcp_fastcloses_sent,
        mptcp_first_subflow_ended,
        mptcp_early_join_refusals,
        mptcp_early_unreachable,
        mptcp_dead_subflow_drops,
        challenge_acks,
        out_of_window,
        paws_drops,
        old_ack_drops,
        no_ack_drops,
    );
}

/// Neighbour confirmations are sent to ARP at most this often per connection.
/// (In µs, as `Instant`: the test runs after every operation.)
const NUD_CONFIRM_EVERY_US: u64 = 1_000_000;

/// RFC 1122 §2.3.2.1: TCP tells ARP about its next hop. Forward progress
/// (new data acknowledged, new data received in order) confirms the
/// neighbour; a retransmission timeout without progress asks for it to be
/// re-verified, so a neighbour whose MAC changed is found again in seconds.
/// Inline: four calls per echo round trip, most returning at once.
#[inline(always)]
fn nud_feedback<D: Device>(iface: &mut Iface<D>, e: &mut ConnEntry<D::Frame>, now: Instant) {
    let s = e.conn.stats();
    let seen = (s.bytes_acked + s.bytes_received, s.rto_timeouts);
    if seen == e.nud_seen {
        return;
    }
    let progress = seen.0 > e.nud_seen.0;
    let timed_out = seen.1 > e.nud_seen.1;
    e.nud_seen = seen;
    // Progress within NUD_CONFIRM_EVERY_US of the last confirmation (every
    // round trip of a busy connection) needs no route lookup at all.
    let confirm_due = e
        .nud_confirmed
        .is_none_or(|t| now.micros().saturating_sub(t.micros()) >= NUD_CONFIRM_EVERY_US);
    if progress && !confirm_due {
        return;
    }
    nud_tell(iface, e, now, progress, timed_out);
}

/// `nud_feedback`'s report to ARP (at most once a second per connection
/// while it progresses; on an RTO): out of line.
#[inline(never)]
fn nud_tell<D: Device>(
    iface: &mut Iface<D>,
    e: &mut ConnEntry<D::Frame>,
    now: Instant,
    progress: bool,
    timed_out: bool,
) {
    let Some(hop) = iface.next_hop(*e.tuple.remote.ip()) else {
        return;
    };
    if progress {
        e.nud_confirmed = Some(now);
        iface.arp.confirm(hop, now);
    } else if timed_out {
        e.nud_confirmed = None;
        iface.arp.reverify(hop);
    }
}

/// After a read (`recv_with`) or a write that was not sent at once, for
/// the entry at hand: `id`
/// marked dirty; whether `after_op` must still run (not ESTABLISHED).
#[inline(always)]
pub(super) fn app_io_dirty<F: crate::io::Frame>(
    dirty: &mut Vec<ConnId>,
    id: ConnId,
    e: &mut ConnEntry<F>,
) -> bool {
    if !e.dirty {
        e.dirty = true;
        dirty.push(id);
    }
    !(e.connected && e.conn.state() == State::Established)
}

/// After `send` queued data on the entry `e` of `id`: the segment leaves
/// at once when it is all the poll would send for the connection
/// (`Connection::send_now`, RFC 9293 §3.7.4's push as Linux's
/// `tcp_push`), followed by `after_op`'s common case, and the
/// connection leaves the dirty list (the poll round is skipped); else it
/// is marked dirty as `app_io_dirty` does. Whether `after_op` (its
/// general case) must still run.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(super) fn app_send_dirty<D: Device>(
    iface: &mut Iface<D>,
    events: &mut super::events::EventQueue,
    timers: &mut TimerWheel<(ConnId, Instant)>,
    dirty: &mut Vec<ConnId>,
    retry: &mut Vec<ConnId>,
    now: Instant,
    id: ConnId,
    e: &mut ConnEntry<D::Frame>,
) -> bool {
    // The entry's own test of `after_op_plain`: no MPTCP level above it.
    let plain = e.subflow_of.is_none()
        && e.foreign_of.is_none()
        && e.remote_of.is_none()
        && !e.pm_wait
        && e.connected
        && !e.half_open;
    if plain {
        let mut sink = TcpTx {
            iface,
            tuple: e.tuple,
            head: &mut e.head,
            now,
            blocked: false,
        };
        match e.conn.send_now(now, &mut sink) {
            SendNow::Done => {
                // `flush_dirty` skips an entry no longer marked.
                if e.dirty {
                    e.dirty = false;
                    if dirty.last() == Some(&id) {
                        dirty.pop();
                    }
                }
                // `after_op_plain`'s case: the entry was tested above, and
                // `send_now` sends only in ESTABLISHED; the events alone
                // are left to test.
                if e.conn.events().io_only() {
                    Stack::<D>::after_op_io(events, timers, iface, now, id, e);
                    return false;
                }
                return true;
            }
            SendNow::Blocked => retry.push(id),
            SendNow::More | SendNow::NotTaken => {}
        }
    }
    app_io_dirty(dirty, id, e)
}

impl<D: Device> Stack<D> {
    /// `poll_transmit` is due for `id` on the next `poll`.
    pub(super) fn mark_dirty(&mut self, id: ConnId) {
        if let Some(e) = self.conns.get_mut(id) {
            if !e.dirty {
                e.dirty = true;
                self.dirty.push(id);
            }
        }
    }

    /// After an application write that queued data (`send_with`,
    /// `echo_received`; `send` does the same with the entry at hand): its
    /// segment sent at once when it is all the poll would send
    /// (`app_send_dirty`); else the connection is marked dirty, so the
    /// next `poll` transmits and runs `after_op`. In ESTABLISHED such a
    /// call changes no state, raises no event and moves no deadline
    /// earlier (queued data only ends a keepalive wait), so `after_op`
    /// now would do nothing; in other states it runs now.
    pub(super) fn after_app_write(&mut self, id: ConnId) {
        let Stack {
            conns,
            iface,
            dirty,
            retry,
            events,
            timers,
            now,
            ..
        } = self;
        let Some(e) = conns.get_mut(id) else {
            return;
        };
        if app_send_dirty(iface, events, timers, dirty, retry, *now, id, e) {
            self.after_op(id);
        }
    }

    /// Let `id` emit what is due at `now`.
    pub(super) fn transmit_conn(&mut self, id: ConnId, now: Instant) {
        let Stack {
            conns,
            iface,
            retry,
            ..
        } = self;
        let Some(e) = conns.get_mut(id) else {
            return;
        };
        let mut sink = TcpTx {
            iface,
            tuple: e.tuple,
            head: &mut e.head,
            now,
            blocked: false,
        };
        e.conn.poll_transmit(now, &mut sink);
        if sink.blocked {
            retry.push(id);
        }
    }

    /// After every input, timer or app call on `id`: sync counters, turn its
    /// events into app events, keep the SYN backlog count, remove it when
    /// closed, and re-arm its timer.
    ///
    /// The common case (most calls on a busy connection: a send, a read,
    /// a flush, an ACK, data) is here: plain TCP, established and counted
    /// as such, nothing to tell the application but that it may read or
    /// write; everything else is [`Self::after_op_general`], out of line,
    /// so that this call saves and restores few registers.
    pub(super) fn after_op(&mut self, id: ConnId) {
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };
        if !Self::after_op_plain(
            &mut self.events,
            &mut self.timers,
            &mut self.iface,
            self.now,
            id,
            e,
        ) {
            self.after_op_general(id);
        }
    }

    /// [`Self::after_op`]'s common case on the entry `e` of `id` that the
    /// caller holds (the receive path has it at hand: no second lookup);
    /// `false` when the case does not apply and [`Self::after_op_general`]
    /// must run.
    #[inline(always)]
    pub(super) fn after_op_plain(
        events: &mut super::events::EventQueue,
        timers: &mut TimerWheel<(ConnId, Instant)>,
        iface: &mut Iface<D>,
        now: Instant,
        id: ConnId,
        e: &mut ConnEntry<D::Frame>,
    ) -> bool {
        // `io_only`: a new kind of event is outside `ConnEvents::IO`, never
        // taken for I/O.
        if e.subflow_of.is_none()
            && e.foreign_of.is_none()
            && e.remote_of.is_none()
            && !e.pm_wait
            && e.conn.events().io_only()
            && e.conn.state() == State::Established
            && e.connected
            && !e.half_open
        {
            Self::after_op_io(events, timers, iface, now, id, e);
            return true;
        }
        false
    }

    /// [`Self::after_op_plain`]'s work once its case is known to apply.
    #[inline(always)]
    fn after_op_io(
        events: &mut super::events::EventQueue,
        timers: &mut TimerWheel<(ConnId, Instant)>,
        iface: &mut Iface<D>,
        now: Instant,
        id: ConnId,
        e: &mut ConnEntry<D::Frame>,
    ) {
        let ev = e.conn.take_events();
        nud_feedback(iface, e, now);
        if e.visible && !e.detached {
            Self::io_events(events, id, e, ev);
        }
        Self::rearm_inline(timers, id, e);
    }

    /// [`Self::after_op`] for everything but its common case (MPTCP, any
    /// state change, any event beyond I/O).
    #[inline(never)]
    pub(super) fn after_op_general(&mut self, id: ConnId) {
        let Some(mut e) = self.conns.get_mut(id) else {
            return;
        };
        // Looked up again only after MPTCP's calls, which need `self`.
        if e.subflow_of.is_some() || e.foreign_of.is_some() || e.remote_of.is_some() || e.pm_wait {
            if let Some(meta) = e.subflow_of {
                self.mptcp_forward(id, meta);
            } else if let Some((stack, meta)) = e.foreign_of {
                self.mptcp_forward_foreign(id, stack, meta);
            } else if e.remote_of.is_some() {
                self.mptcp_remote_forward(id);
            } else {
                self.mptcp_pm_check(id);
            }
            let Some(again) = self.conns.get_mut(id) else {
                return;
            };
            e = again;
        }
        let ev = e.conn.take_events();
        let state = e.conn.state();

        nud_feedback(&mut self.iface, e, self.now);

        // The common case (most calls on a busy connection: a send, a read,
        // a flush, an ACK, data): established and counted as such, nothing
        // to tell the application but that it may read or write.
        // Everything below would do only this and the timer.
        // `io_only`: a new kind of event is outside `ConnEvents::IO`, never
        // taken for I/O.
        if ev.io_only() && state == State::Established && e.connected && !e.half_open {
            if e.visible && !e.detached {
                Self::io_events(&mut self.events, id, e, ev);
            }
            Self::rearm_inline(&mut self.timers, id, e);
            return;
        }

        if ev.mptcp_signal() {
            self.mptcp_on_signals(id);
        }
        // RFC 8684 §3.3.3: once the DATA_FIN is acknowledged, the other
        // subflows close. It rides the first subflow's FIN, which leaves
        // only when all our data is DATA_ACKed: that FIN acknowledged (or
        // the subflow gone) is the sign.
        let ending = matches!(state, State::FinWait2 | State::TimeWait | State::Closed);
        if ending && self.conns.get(id).is_some_and(|e| e.mptcp_meta_open()) {
            self.mptcp_end_subflows(id, None);
        }
        if state == State::TimeWait {
            self.mptcp_release_closed(id);
        }
        // Its first subflow gone or stalled, the connection's DATA_FIN goes
        // on the FINs of the others (RFC 8684 §3.3.3: on any subflow).
        if matches!(state, State::FinWait1 | State::Closing | State::LastAck) {
            if let Some(dsn) = self
                .conns
                .get_mut(id)
                .and_then(|e| e.conn.mptcp_data_fin_due())
            {
                self.mptcp_end_subflows(id, Some(dsn));
            }
        }
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };

        // RFC 4987 §3.1: a half-open connection leaves the SYN backlog when
        // it completes or dies.
        if e.half_open && state != State::SynReceived {
            e.half_open = false;
            if let Some(l) = e.listener.and_then(|p| self.listeners.get_mut(&p)) {
                l.half_open = l.half_open.saturating_sub(1);
            }
        }

        let closed = ev.closed() || state == State::Closed;
        if !e.connected && (ev.connected() || synchronized(state)) {
            e.connected = true;
            if e.conn.mptcp().is_some_and(|m| m.is_mptcp()) {
                self.iface.counters.mptcp_established += 1;
                // RFC 8684 §3.4.1: a connection we accepted announces our
                // other addresses (`mptcp_pm::pm_run`).
                let joins = self.cfg.tcp.mptcp_max_subflows > 0 && self.cfg.tcp.mptcp_announce;
                if joins && e.listener.is_some() && e.subflow_of.is_none() && !e.is_joined() {
                    self.mptcp.pm_work.announce.push(id);
                }
            }
            match e.listener {
                // A joined subflow belongs to its connection: no `Accepted`.
                _ if e.subflow_of.is_some() || e.is_joined() => {}
                Some(port) if !e.visible && !closed => {
                    e.visible = true;
                    self.events.push_back(Event::Accepted { id, port });
                    if let Some(l) = self.listeners.get_mut(&port) {
                        l.accept_pending += 1;
                    }
                }
                None => self.events.push_back(Event::Connected { id }),
                Some(_) => {}
            }
        }
        if e.visible && !e.detached {
            if ev.readable() && !e.readable_queued {
                e.readable_queued = true;
                self.events.push_back(Event::Readable { id });
            }
            if ev.read_closed() {
                self.events.push_back(Event::ReadClosed { id });
            }
            if ev.writable() && !e.writable_queued {
                e.writable_queued = true;
                self.events.push_back(Event::Writable { id });
            }
        }

        let reason = || {
            if e.aborted {
                CloseReason::Aborted
            } else if ev.reset() {
                if e.listener.is_none() && !e.connected {
                    CloseReason::Refused
                } else {
                    CloseReason::Reset
                }
            } else if ev.unreachable() {
                CloseReason::Unreachable
            } else if ev.timed_out() {
                CloseReason::TimedOut
            } else {
                CloseReason::Normal
            }
        };
        // A normal end waits until the application has read what arrived
        // before the FIN: `Closed` invalidates the id. (A reset, timeout or
        // abort discards the data, as RFC 9293 §3.10.7.4 does for RST.)
        // Only asked when closing or in TIME-WAIT.
        let (reason, wait_for_reader) = if closed || state == State::TimeWait {
            let reason = reason();
            let unread = e.visible && !e.detached && e.conn.recv_available() > 0;
            (reason, reason == CloseReason::Normal && unread)
        } else {
            (CloseReason::Normal, false)
        };

        if closed && !wait_for_reader {
            // A join we opened, refused: its connection may be one the
            // server never saw (`mptcp_join_refused`).
            let refused =
                ev.reset() && !e.connected && e.conn.mptcp_join().is_some_and(|j| j.is_active());
            if refused {
                let of = (e.subflow_of, e.foreign_of);
                self.mptcp_join_refused(of.0, of.1);
            }
            let Some(e) = self.conns.get_mut(id) else {
                return;
            };
            if e.visible && !e.detached {
                self.events.push_back(Event::Closed { id, reason });
                e.detached = true;
            }
            self.close_conn(id, false);
            return;
        }

        // Both directions are done: the application is finished with the
        // connection; TIME-WAIT (RFC 9293 §3.10.7.4) lingers out of its sight.
        if state == State::TimeWait && e.visible && !e.detached && !wait_for_reader {
            e.detached = true;
            self.events.push_back(Event::Closed {
                id,
                reason: CloseReason::Normal,
            });
        }
        // TIME-WAIT is bounded (Linux tcp_max_tw_buckets): beyond the
        // limit a connection skips it, once the application is done.
        if state == State::TimeWait && !e.in_time_wait && (e.detached || !e.visible) {
            if self.time_wait >= self.cfg.max_time_wait {
                self.iface.counters.time_wait_overflow += 1;
                self.close_conn(id, false);
                return;
            }
            e.in_time_wait = true;
            self.time_wait += 1;
        }
        self.rearm(id);
    }

    /// `Readable` and `Writable` for the application, once each until it
    /// acts on them (as the general path below, which also orders them
    /// around `ReadClosed`). Inline: its call cost as much as its body
    /// (two calls per echo round trip on each side).
    #[inline(always)]
    fn io_events(
        events: &mut super::events::EventQueue,
        id: ConnId,
        e: &mut ConnEntry<D::Frame>,
        ev: ConnEvents,
    ) {
        if ev.readable() && !e.readable_queued {
            e.readable_queued = true;
            events.push_back(Event::Readable { id });
        }
        if ev.writable() && !e.writable_queued {
            e.writable_queued = true;
            events.push_back(Event::Writable { id });
        }
    }

    /// Remove a connection, letting it emit a last segment (the RST of an
    /// abort). `announce`: queue `Closed{Aborted}` if the app still holds it.
    pub(super) fn close_conn(&mut self, id: ConnId, announce: bool) {
        let now = self.now;
        self.transmit_conn(id, now);
        let Some(mut e) = self.conns.remove(id) else {
            return;
        };
        if announce && e.visible && !e.detached {
            self.events.push_back(Event::Closed {
                id,
                reason: CloseReason::Aborted,
            });
        }
        if e.half_open {
            if let Some(l) = e.listener.and_then(|p| self.listeners.get_mut(&p)) {
                l.half_open = l.half_open.saturating_sub(1);
            }
        }
        if e.in_time_wait {
            self.time_wait -= 1;
        }
        if e.pool_waiting {
            // Keep the waiter list bounded by the live connections.
            self.pool.waiters.retain(|w| *w != id);
        }
        add_conn_counters(&mut self.iface.counters, e.conn.stats());
        if let Some(j) = e.conn.mptcp_join().filter(|j| j.is_active()) {
            let c = &mut self.iface.counters;
            if j.phase == crate::mptcp::JoinPhase::Verified {
                c.mptcp_subflows_closed += 1;
            } else {
                c.mptcp_subflows_failed += 1;
            }
        }
        self.mptcp_release(id, &mut e.conn, e.subflow_of, e.foreign_of, e.remote_of);
        self.iface.counters.conns_closed += 1;
    }

    /// Make sure the wheel holds an entry no later than the connection's
    /// next deadline (later ones are left to fire and re-arm lazily).
    pub(super) fn rearm(&mut self, id: ConnId) {
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };
        Self::rearm_entry(&mut self.timers, id, e);
    }

    /// `rearm` for an entry already at hand.
    fn rearm_entry(
        timers: &mut TimerWheel<(ConnId, Instant)>,
        id: ConnId,
        e: &mut ConnEntry<D::Frame>,
    ) {
        Self::rearm_inline(timers, id, e);
    }

    /// `rearm_entry` inline, for `after_op`'s common case: four calls per
    /// echo round trip, nearly all of which schedule nothing (the next
    /// deadline is not earlier than the wheel's entry). The connection
    /// tells whether it can be (a timer armed below the entry since the
    /// last look); only then is its deadline computed.
    #[inline(always)]
    fn rearm_inline(
        timers: &mut TimerWheel<(ConnId, Instant)>,
        id: ConnId,
        e: &mut ConnEntry<D::Frame>,
    ) {
        if let Some(a) = e.armed_at {
            if !e.conn.deadline_may_precede(a) {
                return;
            }
        }
        let Some(at) = e.conn.poll_at_mark() else {
            return;
        };
        if e.armed_at.is_none_or(|a| at < a) {
            e.armed_at = Some(at);
            timers.schedule(at, (id, at));
        }
    }

    /// Fire the timer entries due by `now`.
    pub(super) fn run_timers(&mut self, now: Instant) {
        self.timers.expire(now, &mut self.expired);
        if self.expired.is_empty() {
            return; // Most polls: nothing due.
        }
        let mut expired = core::mem::take(&mut self.expired);
        for (id, at) in expired.drain(..) {
            let Some(e) = self.conns.get_mut(id) else {
                continue; // The connection is gone.
            };
            if e.armed_at != Some(at) {
                continue; // Superseded by an earlier entry.
            }
            e.armed_at = None;
            if e.conn.poll_at().is_some_and(|p| p <= now) {
                e.conn.handle_timeout(now);
                self.mark_dirty(id);
                self.after_op(id);
            } else {
                self.rearm(id);
            }
        }
        self.expired = expired;
    }

    /// `poll_transmit` every dirty connection once.
    pub(super) fn flush_dirty(&mut self, now: Instant) {
        let mut list = core::mem::take(&mut self.dirty);
        for &id in &list {
            let Some(e) = self.conns.get_mut(id) else {
                continue;
            };
            if !e.dirty {
                // Sent from `send` since it was listed (`app_send_dirty`),
                // or listed twice.
                continue;
            }
            e.dirty = false;
            self.mptcp_schedule_for(id, now);
            self.transmit_conn(id, now);
            self.after_op(id);
        }
        list.clear();
        if self.dirty.is_empty() {
            self.dirty = list;
        }
    }
}

#[cfg(test)]
#[path = "send_now_tests.rs"]
mod send_now_tests;
