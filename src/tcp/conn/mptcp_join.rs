//! The hooks of an MP_JOIN subflow (RFC 8684 §3.2). Passive (the peer
//! joined one of our connections): MP_JOIN on our SYN/ACK (built in
//! `mptcp::syn_options`), the third ACK's HMAC checked here, the fourth
//! ACK, and the reset of a subflow that fails the check. Active (we join
//! the peer's): MP_JOIN on our SYN, the SYN/ACK's truncated HMAC checked,
//! the third ACK repeated until the fourth ACK arrives. The handshake
//! state is [`crate::mptcp::Join`]; the stack found the connection by its
//! token.

use super::mptcp::push;
use super::mptcp_rx::MapVerdict;
use super::{ConnEvents, Connection, State};
use crate::io::Frame;
use crate::mptcp::rxcsum;
use crate::mptcp::session::widen;
use crate::mptcp::{join, Join, JoinPhase, RxDsn, RxMapping};
use crate::tcp::{Config, FourTuple, SeqNumber, TcpRepr};
use crate::time::Instant;
use crate::wire::mptcp::{DssMapping, MpJoin, MptcpOption};
use crate::wire::tcp::whole_options;
use crate::wire::MptcpRaw;

impl<F: Frame> Connection<F> {
    /// Passive open of a joining subflow from its SYN (RFC 8684 §3.2):
    /// SYN-RECEIVED; the SYN-ACK with our MP_JOIN leaves on the next
    /// `poll_transmit`.
    pub fn accept_join(
        cfg: &Config,
        tuple: FourTuple,
        syn: &TcpRepr,
        iss: SeqNumber,
        now: Instant,
        join: Join,
    ) -> Self {
        let mut c = Self::new_tcb(cfg, tuple, iss, State::SynReceived, now);
        c.mptcp.join = Some(Box::new(join));
        c.mptcp_rx_joined();
        c.on_passive_syn(syn, now);
        c
    }

    /// Active open of a subflow joining one of our connections (RFC 8684
    /// §3.2): SYN-SENT; the SYN with our MP_JOIN leaves on the next
    /// `poll_transmit`.
    pub fn connect_join(
        cfg: &Config,
        tuple: FourTuple,
        iss: SeqNumber,
        now: Instant,
        join: Join,
    ) -> Self {
        let mut c = Self::connect(cfg, tuple, iss, now);
        c.mptcp.join = Some(Box::new(join));
        c.mptcp_rx_joined();
        c
    }

    /// Our SYN/ACK on an active join: false when it failed HMAC-B (the
    /// subflow is then reset and closed).
    pub(super) fn join_on_syn_ack(&mut self, seg: &TcpRepr) -> bool {
        let Some(j) = &mut self.mptcp.join else {
            return true;
        };
        if j.on_syn_ack(seg.options.mptcp.as_slice()).is_ok() {
            // RFC 8684 §3.2: the third ACK is repeated until the fourth
            // ACK arrives (Linux: on a timer above the RTT).
            j.third_ack_at = Some(self.now + self.loss.rtt.rto());
            return true;
        }
        // RFC 8684 §3.2: "If these HMACs are not valid, then the host MUST
        // close the subflow with a TCP RST", MP_TCPRST "MPTCP-specific
        // error". Our SYN is acknowledged: the RST takes SEG.ACK.
        self.stats.mptcp_join_synack_bad_hmac += 1;
        let mut rst = self.base_repr(seg.ack, crate::wire::TcpFlags::RST);
        let mut raw = MptcpRaw::default();
        push(&mut raw, &join::reject_option());
        rst.options.mptcp = raw;
        self.rst_pending = Some(rst);
        self.events.insert(ConnEvents::RESET);
        self.enter_closed();
        false
    }

    /// When an active join waiting for the fourth ACK repeats its third
    /// ACK.
    pub(super) fn join_deadline(&self) -> Option<Instant> {
        self.mptcp.join.as_ref().and_then(|j| j.third_ack_at)
    }

    /// The MPTCP timers of this subflow: the third ACK's repetition and
    /// our announcements (`mptcp::mptcp_announce_deadline`).
    pub(super) fn mptcp_deadline(&self) -> Option<Instant> {
        match (self.join_deadline(), self.mptcp_announce_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// An active join still waiting for the fourth ACK: the third ACK
    /// goes again, backing off as the RTO, and the subflow is given up
    /// after `syn_retries` repeats.
    pub(super) fn join_third_ack_due(&mut self) {
        let Some(j) = &mut self.mptcp.join else {
            return;
        };
        if j.phase != JoinPhase::AckSent {
            j.third_ack_at = None;
            return;
        }
        self.rcv.ack_now = true;
        j.third_ack_repeats += 1;
        let n = j.third_ack_repeats;
        if n > self.cfg.syn_retries {
            self.mptcp_reset();
            return;
        }
        let backoff = 1u32 << n.min(6);
        j.third_ack_at = Some(self.now + self.loss.rtt.rto() * backoff);
    }

    /// Whether this subflow is a backup path (RFC 8684 §3.3.8): flag B of
    /// the peer's MP_JOIN, or its latest MP_PRIO on the subflow.
    pub fn mptcp_backup(&self) -> bool {
        match (&self.mptcp.join, &self.mptcp.session) {
            (Some(j), _) => j.backup,
            (None, Some(m)) => m.backup,
            _ => false,
        }
    }

    /// The join state, if this is an MP_JOIN subflow (either side).
    pub fn mptcp_join(&self) -> Option<&Join> {
        self.mptcp.join.as_deref()
    }

    /// An acceptable segment on a joined subflow, after its ACK was
    /// processed. The first one (the third ACK) must carry HMAC-A; then
    /// the fourth ACK goes out at once (RFC 8684 §3.2: "host B ... MUST
    /// respond with an ACK", so that A knows the third ACK arrived before
    /// it sends data). Later ones carry the DSS mappings of the data the
    /// peer sends on this subflow (RFC 8684 §3.3). Returns false when the
    /// segment is dropped or the subflow was reset.
    pub(super) fn join_on_segment(&mut self, seg: &TcpRepr, payload: &[u8]) -> bool {
        let Some(j) = &mut self.mptcp.join else {
            return true;
        };
        if j.phase == JoinPhase::Verified {
            return self.join_on_data(seg, payload);
        }
        if j.is_active() {
            if j.phase == JoinPhase::AckSent && !seg.flags.syn() {
                // The fourth ACK: the subflow is fully established.
                j.on_fourth_ack();
                self.stats.mptcp_subflows_opened += 1;
                return self.join_on_data(seg, payload);
            }
            return true;
        }
        match j.on_third_ack(seg.options.mptcp.as_slice()) {
            Ok(()) => {
                self.stats.mptcp_joins_accepted += 1;
                self.rcv.ack_now = true;
                self.join_on_data(seg, payload)
            }
            Err(_) => {
                // RFC 8684 §3.2: "If these HMACs are not valid, then the host
                // MUST close the subflow with a TCP RST", with an MP_TCPRST
                // "MPTCP-specific error" (as Linux does).
                self.stats.mptcp_joins_rejected_hmac += 1;
                self.queue_active_reset();
                if let Some(rst) = &mut self.rst_pending {
                    let mut raw = MptcpRaw::default();
                    push(&mut raw, &join::reject_option());
                    rst.options.mptcp = raw;
                }
                self.events.insert(ConnEvents::RESET);
                self.enter_closed();
                false
            }
        }
    }

    /// The DSS of a segment on a verified joined subflow: its mapping and
    /// DATA_FIN, kept for the connection (`mptcp_rx`), and the peer's
    /// DATA_ACK of our data, for the connection's send side (`mptcp_tx`).
    fn join_on_data(&mut self, seg: &TcpRepr, payload: &[u8]) -> bool {
        self.mptcp_tx_note_edge(seg);
        let mut mapping = None;
        let mut fin = None;
        let mut failed = None;
        for raw in whole_options(seg.options.mptcp.as_slice()) {
            match MptcpOption::parse(raw) {
                Ok(MptcpOption::Dss(d)) => {
                    if let Some(a) = d.data_ack {
                        // For the connection's send side (`mptcp_tx`).
                        self.mptcp_tx_note_data_ack(RxDsn {
                            value: a,
                            wide: d.ack64,
                        });
                    }
                    if let Some(m) = &d.mapping {
                        if m.ssn == 0 && d.data_fin && m.len == 1 {
                            // A DATA_FIN without data (RFC 8684 §3.3.3).
                            fin = Some(RxDsn {
                                value: m.dsn,
                                wide: m.dsn64,
                            });
                        } else if m.len == 0 {
                            // The infinite mapping (§3.7): not in this stage.
                            self.stats.mptcp_bad_options += 1;
                        } else {
                            mapping = RxMapping::from_dss(m, d.data_fin);
                            if d.data_fin {
                                let data = (m.len - 1) as u64;
                                fin = Some(
                                    RxDsn {
                                        value: m.dsn,
                                        wide: m.dsn64,
                                    }
                                    .plus(data),
                                );
                            }
                            if let Some(want) = m.checksum {
                                failed = self.join_check_sum(seg, m, d.data_fin, want, payload);
                            }
                        }
                    }
                }
                Ok(MptcpOption::AddAddr(a)) => self.mptcp_path_signal(Some(&a), None),
                Ok(MptcpOption::RemoveAddr(r)) => self.mptcp_path_signal(None, Some(&r)),
                Ok(MptcpOption::MpJoin(MpJoin::Ack { .. })) => {
                    // The peer repeats its third ACK: our fourth ACK was
                    // lost. Answer again (as Linux does), or it never
                    // uses the subflow.
                    self.rcv.ack_now = true;
                }
                // RFC 8684 §3.3.8: this subflow becomes a backup path (B = 1)
                // or a regular one.
                Ok(MptcpOption::MpPrio { backup }) => {
                    if let Some(j) = &mut self.mptcp.join {
                        j.backup = backup;
                    }
                    self.stats.mptcp_prio_received += 1;
                }
                Ok(_) => {}
                Err(_) => self.stats.mptcp_bad_options += 1,
            }
        }
        if let Some(dsn) = failed {
            self.join_fail(dsn);
            return false;
        }
        match self.mptcp_note(mapping, fin) {
            MapVerdict::Ok => true,
            MapVerdict::Drop => false,
            MapVerdict::Invalid => {
                self.mptcp_reset();
                false
            }
        }
    }

    /// The DSS checksum of mapping `m` on a joined subflow (RFC 8684
    /// §3.3.1), as on the first subflow: verified once all of the
    /// mapping's bytes are in, also across segments. Returns the DSN of
    /// the mapping's start when it failed.
    fn join_check_sum(
        &mut self,
        seg: &TcpRepr,
        m: &DssMapping,
        data_fin: bool,
        want: u16,
        payload: &[u8],
    ) -> Option<u64> {
        let rel = seg.seq.0.wrapping_sub(self.rcv.irs.0.wrapping_add(1));
        let x = self.mptcp.rx.as_deref_mut()?;
        let start = widen(x.csum_hint, m.ssn.wrapping_sub(1));
        x.csum_hint = start;
        let at = widen(start, rel);
        let dsn = RxDsn {
            value: m.dsn,
            wide: m.dsn64,
        }
        .widen(x.meta_ack.unwrap_or(0));
        let data_len = u64::from(m.len) - u64::from(data_fin);
        let o = rxcsum::check(&mut x.csum, start, data_len, dsn, m, want, at, payload);
        let s = &mut self.stats;
        s.mptcp_checksums_verified += o.verified as u64;
        s.mptcp_checksums_unverified += o.unverified as u64;
        s.mptcp_checksum_failures += o.failed as u64;
        o.failed.then_some(dsn)
    }

    /// RFC 8684 §3.7: a checksum failed on a joined subflow: the
    /// connection has another subflow (its first), so this one is closed
    /// with a RST carrying MP_FAIL (the DSN of the failed mapping) and
    /// MP_TCPRST "middlebox interference"; the peer sends the data again
    /// on the others. Its bytes are not delivered.
    fn join_fail(&mut self, dsn: u64) {
        self.queue_active_reset();
        if let Some(rst) = &mut self.rst_pending {
            let mut raw = MptcpRaw::default();
            push(&mut raw, &MptcpOption::MpFail { dsn });
            push(
                &mut raw,
                &MptcpOption::MpTcpRst {
                    flags: 0,
                    reason: join::rst_reason::MIDDLEBOX_INTERFERENCE,
                },
            );
            rst.options.mptcp = raw;
            self.stats.mptcp_mp_fail_sent += 1;
        }
        self.events.insert(ConnEvents::RESET);
        self.enter_closed();
    }
}
