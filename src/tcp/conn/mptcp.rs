//! The MPTCP hooks of a subflow (RFC 8684): MP_CAPABLE on the handshake,
//! a DSS (mapping, Data ACK, DATA_FIN) on every synchronized segment, the
//! peer's options checked on arrival. The connection-level state lives in
//! [`crate::mptcp::Session`]; this file only connects it to the TCB.

use super::mptcp_rx::MapVerdict;
use super::options::TS_LEN;
use super::{ConnEvents, Connection, State};
use crate::io::Frame;
use crate::mptcp::{crypto::Key, JoinPhase, Phase, RxVerdict, Session};
use crate::tcp::cc::lia::{Lia, LiaGroup};
use crate::tcp::{MptcpCc, TcpRepr};
use crate::time::Instant;
use crate::wire::mptcp::{AddAddr, Dss, DssMapping, MptcpOption, RemoveAddr};
use crate::wire::tcp::whole_options;
use crate::wire::MptcpRaw;
use core::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

/// Option bytes a data segment reserves for MPTCP: DSS with an 8-byte
/// Data ACK and an 8-byte DSN mapping with checksum (RFC 8684 §3.3,
/// 4 + 8 + 8 + 4 + 2 + 2). The first-data MP_CAPABLE (24) fits too.
pub(super) const DSS_LEN: usize = 28;

impl<F: Frame> Connection<F> {
    /// Options the MSS must leave room for on every data segment:
    /// timestamps and, while MPTCP is in use, the DSS.
    pub(super) fn fixed_opts_len(&self) -> usize {
        let ts = if self.opts.ts { TS_LEN } else { 0 };
        ts + if self.mptcp_in_use() { DSS_LEN } else { 0 }
    }

    pub(super) fn mptcp_in_use(&self) -> bool {
        self.mptcp.join.is_some() || self.mptcp.session.as_ref().is_some_and(|m| m.is_mptcp())
    }

    /// RFC 6356: with `MptcpCc::Lia`, an MPTCP subflow's window grows
    /// coupled with its connection's other subflows (the first subflow
    /// creates the group, joined ones get it from the stack).
    pub(super) fn mptcp_couple_cc(&mut self, iw: u32) {
        if self.cfg.mptcp_cc != MptcpCc::Lia || !self.mptcp_in_use() {
            return;
        }
        let group = self.mptcp.lia.get_or_insert_with(LiaGroup::new).clone();
        self.loss.cc = crate::tcp::cc::Controller::Lia(Lia::new(group, self.snd.mss, iw));
    }

    /// The coupled-congestion group of this connection, if it has one.
    pub fn lia_group(&self) -> Option<&Arc<LiaGroup>> {
        self.mptcp.lia.as_ref()
    }

    /// A joined subflow couples with `group` (its connection's) once
    /// established.
    pub fn set_lia_group(&mut self, group: Option<Arc<LiaGroup>>) {
        self.mptcp.lia = group;
    }

    /// The connection-level MPTCP state, when MPTCP was offered or asked
    /// for (its `phase` tells whether it fell back).
    pub fn mptcp(&self) -> Option<&Session> {
        self.mptcp.session.as_deref()
    }

    /// Whether the stack should supply a key (`set_mptcp_key`): an active
    /// open with MPTCP enabled before its SYN left, or a passive one whose
    /// peer offered MP_CAPABLE.
    pub fn mptcp_wants_key(&self) -> bool {
        match &self.mptcp.session {
            None if self.mptcp.join.is_some() => false,
            None => self.cfg.mptcp && self.state == State::SynSent && self.syn.sent_at.is_none(),
            Some(m) => m.local_key.is_none() && m.phase != Phase::Fallback,
        }
    }

    /// Our MPTCP key (the stack keeps its token unique).
    pub fn set_mptcp_key(&mut self, key: Key) {
        match &mut self.mptcp.session {
            Some(m) => m.set_local_key(key),
            None if self.cfg.mptcp && self.state == State::SynSent => {
                self.mptcp.session = Some(Box::new(Session::client(key, self.cfg.mptcp_checksum)));
            }
            None => {}
        }
    }

    /// The peer's SYN offered MP_CAPABLE (or not): set up the server side.
    pub(super) fn mptcp_on_syn(&mut self, syn: &TcpRepr) {
        if !self.cfg.mptcp || syn.options.mptcp.is_empty() || self.mptcp.join.is_some() {
            return;
        }
        let cap = syn
            .options
            .mptcp
            .options()
            .find_map(|o| match MptcpOption::parse(o) {
                Ok(MptcpOption::MpCapable(c)) => Some(c),
                _ => None,
            });
        let mut s = Session::server(cap.as_ref(), self.cfg.mptcp_checksum);
        s.deny_join = self.cfg.mptcp_max_subflows == 0;
        if s.phase == Phase::Fallback {
            self.stats.mptcp_fallbacks += 1;
        }
        self.mptcp.session = Some(Box::new(s));
    }

    /// The client's SYN-ACK: MP_CAPABLE with the server's key, or fallback.
    pub(super) fn mptcp_on_syn_ack(&mut self, seg: &TcpRepr) {
        let Some(m) = &mut self.mptcp.session else {
            return;
        };
        let v = m.on_syn_ack(seg.options.mptcp.as_slice());
        self.count_verdict(&v);
    }

    /// SYNs crossed (simultaneous open): MP_CAPABLE has no exchange for
    /// that (RFC 8684 §3.1 pairs a SYN with a SYN/ACK), so plain TCP.
    pub(super) fn mptcp_simultaneous_open(&mut self) {
        if self.mptcp.session.as_mut().is_some_and(|m| m.abandon()) {
            self.stats.mptcp_fallbacks += 1;
        }
    }

    /// The MPTCP option of our SYN or SYN-ACK. A server without a key (the
    /// stack gave none) answers as plain TCP.
    pub(super) fn mptcp_syn_options(&mut self, raw: &mut MptcpRaw) {
        if let Some(j) = &self.mptcp.join {
            if j.is_active() {
                push(raw, &j.syn_option());
            } else {
                push(raw, &j.syn_ack_option());
            }
            return;
        }
        let Some(m) = &mut self.mptcp.session else {
            return;
        };
        if m.local_key.is_none() && m.abandon() {
            self.stats.mptcp_fallbacks += 1;
            return;
        }
        if let Some(o) = m.syn_option() {
            push(raw, &o);
        }
    }

    /// Subflow offset of `seq` in our send space (0 = first data byte).
    fn snd_rel(&self, seq: crate::tcp::SeqNumber) -> u32 {
        seq.0.wrapping_sub(self.snd.iss.0.wrapping_add(1))
    }

    /// The MPTCP option of a synchronized segment from `seq` with `len`
    /// data bytes (`fin`: it carries our FIN).
    pub(super) fn mptcp_data_options(
        &mut self,
        seq: crate::tcp::SeqNumber,
        len: usize,
        fin: bool,
    ) -> MptcpRaw {
        let mut raw = MptcpRaw::default();
        if !self.mptcp_in_use() || !self.state.is_synchronized() && self.state != State::SynReceived
        {
            return raw;
        }
        let data_ack = self.mptcp_data_ack();
        if let Some(j) = self
            .mptcp
            .join
            .as_deref()
            .filter(|j| j.phase == JoinPhase::AckSent)
        {
            // RFC 8684 §3.2: our third ACK carries HMAC-A, until the
            // fourth ACK shows it arrived.
            push(&mut raw, &j.third_ack_option());
            return raw;
        }
        if len == 0 && !fin {
            // RFC 8684 §3.7: MP_FAIL, and RFC 8684 §3.4.1: the echo of an
            // announcement, on a pure ACK (they fit beside timestamps and
            // a DATA_ACK, not a mapping).
            if let Some(dsn) = self
                .mptcp
                .session
                .as_deref_mut()
                .and_then(|m| m.take_mp_fail())
            {
                push(&mut raw, &MptcpOption::MpFail { dsn });
                self.stats.mptcp_mp_fail_sent += 1;
            } else if let Some(e) = self
                .mptcp
                .rx
                .as_deref_mut()
                .and_then(|x| x.signals.echo.take())
            {
                push(&mut raw, &MptcpOption::AddAddr(e));
            } else if let Some(id) = self
                .mptcp
                .join
                .as_deref_mut()
                .and_then(|j| j.remove_addr.take())
            {
                let mut ids = [0u8; 37];
                ids[0] = id;
                push(
                    &mut raw,
                    &MptcpOption::RemoveAddr(RemoveAddr { count: 1, ids }),
                );
                self.stats.mptcp_remove_addr_sent += 1;
            } else if self.mptcp.join.is_none() {
                self.mptcp_signal_options(&mut raw);
            }
        }
        let dsn = self.mptcp_tx_dsn(seq, len, fin);
        if let Some(j) = &self.mptcp.join {
            // A joined subflow's segments carry the connection's DATA_ACK
            // (RFC 8684 §3.3.2: "the DATA_ACK ... can be sent on any
            // subflow") and the mapping of the data the scheduler gave it.
            let checksum = self
                .mptcp
                .tx
                .as_deref()
                .is_some_and(|t| t.csum)
                .then_some(0);
            let mapping = match (dsn, len > 0) {
                (Some(d), true) => Some(DssMapping {
                    dsn: d,
                    dsn64: true,
                    ssn: self.snd_rel(seq).wrapping_add(1),
                    len: len as u16,
                    checksum,
                }),
                // The connection's DATA_FIN on this subflow's bare FIN (its
                // first subflow is gone): RFC 8684 §3.3.3, "a DATA_FIN
                // without data", SSN 0 and data-level length 1.
                (Some(d), false) => Some(DssMapping {
                    dsn: d,
                    dsn64: true,
                    ssn: 0,
                    len: 1,
                    checksum,
                }),
                _ => None,
            };
            let data_fin = fin && len == 0 && mapping.is_some();
            let ack = data_ack.filter(|_| j.phase == JoinPhase::Verified);
            if ack.is_some() || mapping.is_some() {
                push(
                    &mut raw,
                    &MptcpOption::Dss(Dss {
                        data_ack: ack,
                        ack64: true,
                        mapping,
                        data_fin,
                    }),
                );
            }
            return raw;
        }
        let rel = self.snd_rel(seq);
        let fresh = seq == self.snd.nxt;
        let mut infinite = false;
        if let Some(m) = &mut self.mptcp.session {
            let was = m.is_mptcp();
            if let Some(o) = m.segment_option(rel, len, fin, data_ack, dsn, fresh) {
                push(&mut raw, &o);
            }
            infinite = was && !m.is_mptcp();
        }
        if infinite {
            // The infinite mapping went out (RFC 8684 §3.7). The segment
            // is being built over a slice of the send queue: the data the
            // subflow's ACK covers is released at the next ACK, not now.
            self.stats.mptcp_infinite_maps_sent += 1;
            self.mptcp_fell_back(false);
            self.mptcp_rx_follow_tail();
        }
        raw
    }

    /// Whether `seg` carries a DSS checksum still to fill in.
    pub(super) fn mptcp_needs_checksum(&self, seg: &TcpRepr) -> bool {
        (self
            .mptcp
            .session
            .as_ref()
            .is_some_and(|m| m.checksum && m.is_mptcp())
            || self.mptcp.join.is_some() && self.mptcp.tx.as_deref().is_some_and(|t| t.csum))
            && !seg.options.mptcp.is_empty()
    }

    /// Fill in the DSS checksum of `seg`, whose payload sums to `data_sum`.
    pub(super) fn mptcp_fill_checksum(&self, seg: &mut TcpRepr, data_sum: u16) {
        let n = seg.options.mptcp.as_slice().len();
        match &self.mptcp.session {
            Some(m) => m.fill_checksum(&mut seg.options.mptcp.bytes[..n], data_sum),
            // A joined subflow: its DSS mapping names the DSN.
            None => crate::mptcp::session::fill_dss_checksum(
                &mut seg.options.mptcp.bytes[..n],
                data_sum,
            ),
        }
    }

    /// An acceptable segment's MPTCP options, after its ACK was processed
    /// and before its data is queued: what to do with its data.
    pub(super) fn mptcp_on_segment(
        &mut self,
        seg: &TcpRepr,
        payload: &[u8],
        establishing: bool,
    ) -> MptcpRx {
        let rel = seg.seq.0.wrapping_sub(self.rcv.irs.0.wrapping_add(1));
        let Some(m) = &mut self.mptcp.session else {
            return MptcpRx::Deliver;
        };
        let was = m.is_mptcp();
        let v = m.on_segment(seg.options.mptcp.as_slice(), rel, payload, establishing);
        let now = m.is_mptcp();
        let data_acked = now && self.mptcp_data_ack_moved(seg.options.mptcp.as_slice());
        if now {
            self.mptcp_tx_note_edge(seg);
        }
        self.count_verdict(&v);
        if v.add_addr.is_some() || v.remove_addr.is_some() {
            self.mptcp_path_signal(v.add_addr.as_ref(), v.remove_addr.as_ref());
        }
        if let Some((start, dsn)) = v.infinite {
            self.stats.mptcp_infinite_maps_received += 1;
            self.mptcp_rx_infinite(start, dsn);
        }
        if v.infinite_implied && !self.mptcp_rx_infinite_at_tail() {
            self.mptcp_reset();
            return MptcpRx::Stop;
        }
        if was && !now {
            self.mptcp_fell_back(true);
        }
        if self
            .mptcp
            .session
            .as_ref()
            .is_some_and(|m| m.fail.out.is_some())
        {
            // Our MP_FAIL, or the echo of the peer's, on a pure ACK now.
            self.rcv.ack_now = true;
        }
        if data_acked {
            self.mptcp_snd_release(self.snd.una);
            self.mptcp_tx_data_acked();
        }
        if v.reset {
            // RFC 8684 §3.3.1: a failed checksum (this stage resets rather
            // than deliver wrong bytes); §3.5: the peer's MP_FASTCLOSE.
            self.mptcp_reset();
            return MptcpRx::Stop;
        }
        match self.mptcp_note(v.mapping, v.data_fin) {
            MapVerdict::Ok => MptcpRx::Deliver,
            MapVerdict::Drop => MptcpRx::Stop,
            MapVerdict::Invalid => {
                self.mptcp_reset();
                MptcpRx::Stop
            }
        }
    }

    /// Plain TCP from here: the DSS room in each segment is freed, and the
    /// subflow's ACK alone releases our data (now, with `release`).
    fn mptcp_fell_back(&mut self, release: bool) {
        self.snd.mss += DSS_LEN;
        self.loss.cc.set_mss(self.snd.mss);
        if release {
            self.mptcp_snd_release(self.snd.una);
        }
    }

    /// RFC 8684 §3.3.2: take the peer's DATA_ACK among `opts`; whether it
    /// moved.
    fn mptcp_data_ack_moved(&mut self, opts: &[u8]) -> bool {
        let sent = self.snd.nxt.0.wrapping_sub(self.snd.iss.0.wrapping_add(1));
        // With the connection's send side, DSNs apart from this subflow's.
        let meta_sent = match (self.meta_tx(), self.mptcp.session.as_deref()) {
            (Some(_), Some(s)) => self.mptcp_tx_sent_of(s),
            _ => None,
        };
        let Some(m) = &mut self.mptcp.session else {
            return false;
        };
        match meta_sent {
            Some(sent) => {
                crate::mptcp::session::data_ack_in(opts).is_some_and(|a| m.note_data_ack(a, sent))
            }
            None => m.on_data_ack(opts, sent),
        }
    }

    /// The peer's probe of our zero window, one byte below RCV.NXT (RFC
    /// 9293 §3.8.6.1; Linux's probe repeats SND.UNA - 1) is not acceptable
    /// and is dropped (§3.10.7.4), but its DATA_ACK is current and is
    /// taken. Our window can be closed because the application waits for
    /// send space that only this DATA_ACK frees (the peer's data level
    /// acknowledged our data after its subflow had ACKed it, and the probe
    /// is the next segment it sends): dropping it deadlocked an echo
    /// against Linux.
    pub(super) fn mptcp_on_window_probe(&mut self, seg: &TcpRepr) {
        let opts = seg.options.mptcp.as_slice();
        if self
            .mptcp
            .join
            .as_ref()
            .is_some_and(|j| j.phase == JoinPhase::Verified)
        {
            // A joined subflow: the connection takes it (`mptcp_tx`).
            if let Some(a) = crate::mptcp::session::data_ack_in(opts) {
                self.mptcp_tx_note_data_ack(a);
            }
            return;
        }
        if self.mptcp.session.as_ref().is_some_and(|m| m.is_mptcp())
            && self.mptcp_data_ack_moved(opts)
        {
            self.mptcp_snd_release(self.snd.una);
            self.mptcp_tx_data_acked();
        }
    }

    /// A pure ACK that RFC 9293's acceptability test refuses but Linux's
    /// takes: Linux processes the options of any segment passing
    /// `tcp_sequence` (not wholly before RCV.WUP, the RCV.NXT its last ACK
    /// carried, and not beyond the window's right edge), e.g. a pure ACK
    /// that data sent after it overtook, or one at the right edge. RFC 8684
    /// is silent, and its ADD_ADDR / REMOVE_ADDR ride such ACKs: a
    /// REMOVE_ADDR goes once (it has no echo), so dropping it lost it and
    /// left a dead subflow to time out. Its path-management signals are
    /// taken here (its DATA_ACK by `mptcp_on_window_probe`); not data.
    pub(super) fn mptcp_on_stray_ack(&mut self, seg: &TcpRepr) {
        let joined = self
            .mptcp
            .join
            .as_ref()
            .is_some_and(|j| j.phase == JoinPhase::Verified);
        if !joined && !self.mptcp.session.as_ref().is_some_and(|m| m.is_mptcp()) {
            return;
        }
        for raw in whole_options(seg.options.mptcp.as_slice()) {
            match MptcpOption::parse(raw) {
                Ok(MptcpOption::AddAddr(a)) => self.mptcp_path_signal(Some(&a), None),
                Ok(MptcpOption::RemoveAddr(r)) => self.mptcp_path_signal(None, Some(&r)),
                _ => {}
            }
        }
    }

    /// Release the send queue up to `ack` (the subflow's cumulative ACK),
    /// held back, while MPTCP is in use, to what the peer's DATA_ACK
    /// covers: RFC 8684 §3.3.2 has the sender keep data until it is
    /// acknowledged at the connection level as well as on the subflow,
    /// so that data a subflow took but the peer's data level never got can
    /// be sent again (on another subflow). Our data maps one to one onto
    /// the first subflow in this stage, so the DATA_ACK names a subflow
    /// offset. A joined subflow (no data of ours) and a connection that
    /// fell back release at the subflow's ACK.
    pub(super) fn mptcp_snd_release(&mut self, ack: crate::tcp::SeqNumber) {
        let upto = match &self.mptcp.session {
            // Copies of the connection's data (`mptcp_tx`): the
            // connection's queue holds it for the DATA_ACK.
            Some(m) if self.mptcp_tx_copies() => {
                let mptcp = m.is_mptcp();
                let covered = self.snd.iss + 1 + m.data_acked() as u32 as usize;
                if !mptcp {
                    self.mptcp_tx_fallback_acked(ack);
                }
                self.mptcp_tx_sub_acked(ack);
                match mptcp {
                    true => self.mptcp_prefix_release(ack, covered),
                    false => ack,
                }
            }
            Some(m) if m.is_mptcp() => {
                let covered = self.snd.iss + 1 + m.data_acked() as u32 as usize;
                if covered < ack {
                    covered
                } else {
                    ack
                }
            }
            _ => ack,
        };
        if self.mptcp_tx_release(upto) > 0 {
            self.new_space();
        }
    }

    /// Bytes of our data sent and not yet covered by the peer's
    /// DATA_ACK: held for the connection (RFC 8684 §3.3.2).
    pub fn mptcp_snd_unacked(&self) -> usize {
        if let Some(m) = self.meta_tx() {
            return m.given_unacked();
        }
        let tail = self.snd.queue.tail();
        let nxt = if self.snd.nxt < tail {
            self.snd.nxt
        } else {
            tail
        };
        self.snd.queue.len().saturating_sub(tail - nxt)
    }

    /// Reset the subflow (on the first subflow: the connection).
    pub(super) fn mptcp_reset(&mut self) {
        self.queue_active_reset();
        self.events.insert(ConnEvents::RESET);
        self.enter_closed();
    }

    /// After a segment's data and FIN: in-order subflow data moves to the
    /// data level (`mptcp_rx`). The peer's DATA_FIN reached in order is
    /// the connection-level end of data (the application's EOF); a
    /// subflow FIN is not.
    pub(super) fn mptcp_after_data(&mut self) {
        if self.mptcp.rx.is_none() {
            return;
        }
        let fin_before = self.mptcp_data_fin_done();
        if self.rcv.fin_done && self.mptcp.join.is_none() {
            // RFC 8684 §3.7: after the infinite mapping, the subflow's FIN
            // ends the data stream.
            if let Some(f) = self.rcv.fin {
                self.mptcp_rx_fin_at(f.0.wrapping_sub(self.rcv.irs.0.wrapping_add(1)));
            }
        }
        if !self.mptcp_drain() {
            self.mptcp_reset();
            return;
        }
        if self.mptcp.join.is_none() {
            // Only the DATA_FIN ends the application's data.
            self.events.set(
                ConnEvents::READ_CLOSED,
                !fin_before && self.mptcp_data_fin_done(),
            );
        }
    }

    /// An ADD_ADDR or REMOVE_ADDR from the peer (RFC 8684 §3.4), on any
    /// subflow: an announcement with a valid HMAC is echoed and kept for
    /// the path manager, a bad one ignored; withdrawn IDs are kept too.
    pub(super) fn mptcp_path_signal(&mut self, add: Option<&AddAddr>, remove: Option<&RemoveAddr>) {
        let keys = match (&self.mptcp.session, &self.mptcp.join) {
            (_, Some(j)) => Some(j.keys()),
            (Some(m), None) => m.local_key.zip(m.remote_key),
            (None, None) => None,
        };
        if let (Some(a), Some(m)) = (add.filter(|a| a.echo), self.mptcp.session.as_deref_mut()) {
            // RFC 8684 §3.4.1: the echo of our announcement: it arrived,
            // no more retransmissions.
            if m.announce.on_echo(a.addr_id, a.addr) {
                self.stats.mptcp_add_addr_echoed += 1;
            }
        }
        if self.mptcp.rx.is_none() && self.mptcp.join.is_none() {
            // An announcement may come before the peer's first data (ours
            // do): the receive state that keeps it starts here.
            self.mptcp_rx_meta();
        }
        let Some(x) = self.mptcp.rx.as_deref_mut() else {
            return;
        };
        if let (Some(a), Some((local, remote))) = (add, keys) {
            if a.echo {
                // Handled above.
            } else if x.signals.on_add_addr(a, remote, local) {
                self.stats.mptcp_add_addr_received += 1;
                self.rcv.ack_now = true;
            } else {
                self.stats.mptcp_add_addr_bad_hmac += 1;
            }
        }
        if let Some(r) = remove {
            self.stats.mptcp_remove_addr_received += 1;
            x.signals.on_remove_addr(r.ids());
        }
        if x.signals.pending() {
            self.events.insert(ConnEvents::MPTCP_SIGNAL);
        }
    }

    /// RFC 8684 §3.5: the connection is abandoned at once: the RST of
    /// this subflow carries MP_FASTCLOSE with the peer's key ("Option R":
    /// a RST with MP_FASTCLOSE on every subflow, which the stack does),
    /// so the peer drops the whole connection, not just this subflow.
    pub(super) fn mptcp_fastclose_option(&mut self) {
        let remote = match (&self.mptcp.session, &self.mptcp.join) {
            (_, Some(j)) => Some(j.keys().1),
            (Some(m), None) if m.is_mptcp() => m.remote_key,
            _ => None,
        };
        if let (Some(k), Some(rst)) = (remote, &mut self.rst_pending) {
            push(
                &mut rst.options.mptcp,
                &MptcpOption::MpFastclose { receiver_key: k.0 },
            );
            self.stats.mptcp_fastcloses_sent += 1;
        }
    }

    /// An ADD_ADDR echo, or an announcement or withdrawal of ours, waits
    /// for a pure ACK (a data segment has no room for it): the ACK request
    /// outlives the data segments sent meanwhile.
    pub(super) fn mptcp_echo_pending(&self) -> bool {
        self.mptcp
            .rx
            .as_ref()
            .is_some_and(|x| x.signals.echo.is_some())
            || self
                .mptcp
                .join
                .as_ref()
                .is_some_and(|j| j.remove_addr.is_some())
            || self
                .mptcp
                .session
                .as_ref()
                .is_some_and(|m| m.announce.pending(self.now) || m.fail.out.is_some())
    }

    /// Announce our addresses `addrs` (Address ID, address) to the peer
    /// (RFC 8684 §3.4.1), on the first subflow of an MPTCP connection
    /// whose keys are known (the HMAC needs both). Returns how many are
    /// new.
    pub fn mptcp_announce(&mut self, addrs: &[(u8, Ipv4Addr)]) -> usize {
        let now = self.now;
        let Some(m) = self.mptcp.session.as_deref_mut().filter(|m| {
            m.phase == Phase::Established && m.local_key.is_some() && m.remote_key.is_some()
        }) else {
            return 0;
        };
        let n = addrs
            .iter()
            .filter(|&&(id, a)| m.announce.announce(id, a, now))
            .count();
        if n > 0 {
            self.rcv.ack_now = true;
        }
        n
    }

    /// Withdraw our Address ID `id` (RFC 8684 §3.4.2): a REMOVE_ADDR goes
    /// on the next pure ACK of this (first) subflow, and the address is no
    /// longer announced. Returns whether it was queued.
    pub fn mptcp_withdraw(&mut self, id: u8) -> bool {
        let Some(m) = self
            .mptcp
            .session
            .as_deref_mut()
            .filter(|m| m.phase == Phase::Established)
        else {
            return false;
        };
        if id == 0 || !m.announce.withdraw(id) {
            return false;
        }
        self.rcv.ack_now = true;
        true
    }

    /// Withdraw our Address ID `id` on this joined subflow (RFC 8684
    /// §3.4.2: "on any subflow"): a REMOVE_ADDR on its next pure ACK. For
    /// Address ID 0, the first subflow's address, when the first subflow
    /// can carry nothing more. Returns whether it was queued (the subflow
    /// is a verified join, established).
    pub fn mptcp_withdraw_on_join(&mut self, id: u8) -> bool {
        let ok = self.state == State::Established;
        let Some(j) = self
            .mptcp
            .join
            .as_deref_mut()
            .filter(|j| ok && j.phase == JoinPhase::Verified)
        else {
            return false;
        };
        j.remove_addr = Some(id);
        self.rcv.ack_now = true;
        true
    }

    /// The addresses this connection announced: (Address ID, address,
    /// echoed).
    pub fn mptcp_announced(&self) -> Vec<(u8, Ipv4Addr, bool)> {
        self.mptcp.session.as_ref().map_or(Vec::new(), |m| {
            m.announce
                .announced()
                .iter()
                .map(|a| (a.id, a.addr, a.echoed))
                .collect()
        })
    }

    /// Our own path-management signal for a pure ACK: a withdrawal
    /// (REMOVE_ADDR, once), else an announcement due (ADD_ADDR with its
    /// HMAC, RFC 8684 §3.4.1: HMAC(Key=(Key-A + Key-B), Msg=(Address ID
    /// + IP Address + Port)), A the sender, so our key first).
    fn mptcp_signal_options(&mut self, raw: &mut MptcpRaw) {
        let (now, rto) = (self.now, self.loss.rtt.rto());
        let Some(m) = self.mptcp.session.as_deref_mut() else {
            return;
        };
        let (Some(local), Some(remote)) = (m.local_key, m.remote_key) else {
            return;
        };
        let gone = m.announce.take_withdrawals();
        if !gone.is_empty() {
            let mut ids = [0u8; 37];
            let k = gone.len().min(ids.len());
            ids[..k].copy_from_slice(&gone[..k]);
            push(
                raw,
                &MptcpOption::RemoveAddr(RemoveAddr {
                    count: k as u8,
                    ids,
                }),
            );
            self.stats.mptcp_remove_addr_sent += 1;
            return;
        }
        let Some(a) = m.announce.due(now) else {
            return;
        };
        let ip = IpAddr::V4(a.addr);
        let hmac = crate::mptcp::crypto::add_addr_hmac(local, remote, a.id, ip, None);
        push(
            raw,
            &MptcpOption::AddAddr(AddAddr {
                echo: false,
                addr_id: a.id,
                addr: ip,
                port: None,
                hmac: Some(hmac),
            }),
        );
        if m.announce.sent(a.id, now, rto) {
            self.stats.mptcp_add_addr_retransmits += 1;
        } else {
            self.stats.mptcp_add_addr_sent += 1;
        }
    }

    /// When an announcement of ours is due again, or a withdrawal waits.
    pub(super) fn mptcp_announce_deadline(&self) -> Option<Instant> {
        self.mptcp
            .session
            .as_ref()
            .and_then(|m| m.announce.deadline())
    }

    /// The path-management signals received since the last call.
    pub fn mptcp_take_signals(&mut self) -> Option<crate::mptcp::pm::Signals> {
        let x = self.mptcp.rx.as_deref_mut()?;
        if !x.signals.pending() {
            return None;
        }
        let echo = x.signals.echo.take();
        let s = std::mem::take(&mut x.signals);
        x.signals.echo = echo;
        Some(s)
    }

    fn count_verdict(&mut self, v: &RxVerdict) {
        let s = &mut self.stats;
        s.mptcp_fallbacks += v.fallback.is_some() as u64;
        s.mptcp_bad_options += v.bad_options as u64;
        s.mptcp_checksum_failures += v.checksum_failed as u64;
        s.mptcp_checksums_verified += v.checksum_verified as u64;
        s.mptcp_checksums_unverified += v.checksum_unverified as u64;
        s.mptcp_fastcloses += v.fastclose as u64;
        s.mptcp_prio_received += v.prio.is_some() as u64;
        s.mptcp_mp_fail_received += v.mp_fail as u64;
    }
}

pub(super) fn push(raw: &mut MptcpRaw, o: &MptcpOption) {
    let mut b = [0u8; 40];
    let n = o.emit(&mut b);
    raw.append(&b[..n]);
}

/// What the MPTCP layer makes of a received segment's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MptcpRx {
    /// Queue it on the subflow (from where it moves to the data level).
    Deliver,
    /// The connection was reset, or the segment is dropped.
    Stop,
}
