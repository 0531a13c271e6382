//! Listeners: passive opens (RFC 9293 §3.10.7.2), the per-listener SYN
//! backlog and SYN cookies beyond it (RFC 4987 §3.6), and the accept backlog.

use super::tcp_table::ConnEntry;
use super::Stack;
use crate::io::{Device, Pkt};
use crate::tcp::{self, Connection, FourTuple, Payload, TcpFlags, TcpOptions, TcpRepr};
use crate::time::Instant;
use core::time::Duration;

/// How long after the last cookie was sent a listener still accepts cookie
/// ACKs (Linux: TCP_SYNCOOKIE_VALID). Outside of a SYN flood a bare ACK to a
/// listener is answered with RST, never checked as a cookie, so cookies
/// cannot be guessed at leisure.
pub(crate) const COOKIE_WINDOW: Duration = Duration::from_secs(120);

/// A listening port.
#[derive(Debug, Default)]
pub(crate) struct Listener {
    /// Connections in SYN-RECEIVED (count against `syn_backlog`).
    pub half_open: usize,
    /// `Accepted` events queued and not yet taken by the app.
    pub accept_pending: usize,
    /// The last SYN cookie was sent at this time.
    pub last_cookie: Option<Instant>,
}

impl<D: Device> Stack<D> {
    /// A segment for a listening port that matches no connection.
    pub(super) fn listen_input(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        seg: &TcpRepr,
        payload: Pkt<D::Frame>,
        ce: bool,
    ) {
        let port = tuple.local.port();
        let Some(l) = self.listeners.get(&port) else {
            return;
        };
        // RFC 9293 §3.10.7.2: "An incoming RST segment could not be valid
        // ... should be ignored."
        if seg.flags.rst() {
            self.iface.counters.drop_tcp_invalid += 1;
            return;
        }
        if seg.flags.ack() {
            // RFC 4987 §3.6: the ACK completing a cookie handshake.
            let recent = l
                .last_cookie
                .is_some_and(|t| now.saturating_since(t) <= COOKIE_WINDOW);
            if !seg.flags.syn() && recent {
                match self.cookies.check(&tuple, seg, now) {
                    Some((syn, _)) if !self.cookie_replays.first(tuple, syn.seq) => {
                        self.iface.counters.syn_cookies_replayed += 1;
                        return;
                    }
                    Some((syn, iss)) => {
                        self.iface.counters.syn_cookies_ok += 1;
                        self.accept_cookie(now, tuple, &syn, iss, seg, payload, ce);
                        return;
                    }
                    None => {
                        // While cookies are in use, a segment that fails
                        // the check cannot be told from a later segment of
                        // a cookie handshake that overtook the one
                        // completing it (its SEG.SEQ no longer yields the
                        // cookie), or from that peer's ACK of a duplicated
                        // SYN-ACK. A RST would kill that connection (as it
                        // does on Linux); dropped, the first segment's
                        // retransmission completes the handshake. Counted;
                        // a stale peer is reset once the window closes.
                        self.iface.counters.syn_cookies_bad += 1;
                        return;
                    }
                }
            }
            // RFC 9293 §3.10.7.2: "Any acknowledgment is bad if it arrives on
            // a connection still in the LISTEN state. An acceptable reset
            // segment should be formed for any arriving ACK-bearing segment."
            self.send_reset(now, &tuple, seg, payload.len());
            return;
        }
        // RFC 9293 §3.10.7.2: other segments without SYN are dropped; a
        // SYN with FIN is an illegal combination (a scanner's probe) that
        // Linux discards in LISTEN too.
        if !seg.flags.syn() || seg.flags.fin() {
            self.iface.counters.drop_tcp_invalid += 1;
            return;
        }
        if self.conns.len() >= self.cfg.max_conns {
            self.iface.counters.drop_conn_limit += 1;
            return;
        }
        if l.accept_pending >= self.cfg.accept_backlog {
            self.iface.counters.drop_syn_backlog += 1;
            return;
        }
        // RFC 8684 §3.2: a SYN with MP_JOIN names an existing connection
        // by its token (no SYN cookie: the join needs state).
        if self.mptcp_join_syn(now, tuple, seg, port) {
            return;
        }
        if self
            .listeners
            .get(&port)
            .is_some_and(|l| l.half_open >= self.cfg.syn_backlog)
        {
            self.send_cookie_syn_ack(now, &tuple, seg);
            return;
        }
        // RFC 6528 ISN; RFC 9293 §3.10.7.2: SYN-RECEIVED, SYN-ACK on poll.
        let iss = self.isn.isn(&tuple, now);
        let conn = Connection::accept(&self.cfg.tcp, tuple, seg, iss, now);
        let mut entry = ConnEntry::new(conn, tuple, Some(port));
        entry.half_open = true;
        if let Some(l) = self.listeners.get_mut(&port) {
            l.half_open += 1;
        }
        let id = self.conns.insert(entry);
        self.mptcp_assign_key(id);
        self.iface.counters.conns_opened += 1;
        self.mark_dirty(id);
        self.after_op(id);
    }

    /// A cookie ACK passed the check: the connection starts ESTABLISHED
    /// (RFC 4987 §3.1); data riding on the ACK is then processed normally.
    #[allow(clippy::too_many_arguments)]
    fn accept_cookie(
        &mut self,
        now: Instant,
        tuple: FourTuple,
        syn: &TcpRepr,
        iss: tcp::SeqNumber,
        ack: &TcpRepr,
        payload: Pkt<D::Frame>,
        ce: bool,
    ) {
        let port = tuple.local.port();
        if self.conns.len() >= self.cfg.max_conns {
            self.iface.counters.drop_conn_limit += 1;
            return;
        }
        if self
            .listeners
            .get(&port)
            .is_some_and(|l| l.accept_pending >= self.cfg.accept_backlog)
        {
            self.iface.counters.drop_syn_backlog += 1;
            return;
        }
        let conn = Connection::from_cookie(&self.cfg.tcp, tuple, syn, iss, ack, now);
        let id = self.conns.insert(ConnEntry::new(conn, tuple, Some(port)));
        self.iface.counters.conns_opened += 1;
        if !payload.is_empty() || ack.flags.fin() {
            if let Some(e) = self.conns.get_mut(id) {
                e.conn.handle_segment(now, ack, payload, ce);
            }
        }
        self.mark_dirty(id);
        self.after_op(id);
    }

    /// RFC 4987 §3.6: answer a SYN beyond the backlog with a SYN-ACK whose
    /// ISN encodes the connection, keeping no state.
    fn send_cookie_syn_ack(&mut self, now: Instant, tuple: &FourTuple, syn: &TcpRepr) {
        let cfg = &self.cfg.tcp;
        let ts = cfg.timestamps && syn.options.timestamps.is_some();
        let (iss, tsval) = self.cookies.generate(tuple, syn, cfg.mss, ts, now);
        let mut options = TcpOptions {
            mss: Some(cfg.mss),
            ..TcpOptions::default()
        };
        // The cookie carries window scale and SACK-permitted in the low bits
        // of our TSval (as Linux does): without timestamps they cannot be
        // remembered, so they are not offered (RFC 7323 §2.2 / RFC 2018 §2:
        // then neither side uses them).
        if let (true, Some((syn_tsval, _)), Some(tsval)) = (ts, syn.options.timestamps, tsval) {
            if syn.options.window_scale.is_some() {
                options.window_scale = Some(cfg.rcv_wscale());
            }
            options.sack_permitted = cfg.sack && syn.options.sack_permitted;
            // RFC 7323 §3.2: TSecr echoes the SYN's TSval.
            options.timestamps = Some((tsval, syn_tsval));
        }
        // No ECE: `Connection::from_cookie` does not negotiate ECN (RFC 3168
        // §6.1.1 lets the responder decline by not setting ECE).
        let flags = TcpFlags::SYN | TcpFlags::ACK;
        let synack = TcpRepr {
            src_port: syn.dst_port,
            dst_port: syn.src_port,
            seq: iss,
            ack: syn.seq + 1,
            flags,
            // RFC 7323 §2.2: the window of a SYN segment is never scaled.
            window: cfg.rcv_buf.min(u16::MAX as usize) as u16,
            urgent: 0,
            options,
        };
        if self
            .iface
            .emit_tcp(now, tuple, &synack, Payload::None, false)
        {
            self.iface.counters.syn_cookies_sent += 1;
            if let Some(l) = self.listeners.get_mut(&tuple.local.port()) {
                l.last_cookie = Some(now);
            }
        } else {
            self.iface.counters.drop_syn_backlog += 1;
        }
    }

    /// RFC 9293 §3.10.7.1: reset a segment that belongs to no connection.
    pub(super) fn send_reset(
        &mut self,
        now: Instant,
        tuple: &FourTuple,
        seg: &TcpRepr,
        payload_len: usize,
    ) {
        if let Some(rst) = tcp::reset_for(seg, payload_len) {
            // Stateless RSTs are rate-limited (FreeBSD badport_bandlim).
            if !self.limits.rst.take(now) {
                self.iface.counters.rst_rate_limited += 1;
                return;
            }
            if self.iface.emit_tcp(now, tuple, &rst, Payload::None, false) {
                self.iface.counters.rst_sent += 1;
            }
        }
    }
}
