//! The connection-level ("meta") state of one MPTCP connection (RFC 8684
//! §3.1, §3.3, §3.7), held by its first subflow: keys, IDSNs, the
//! negotiation and its fallbacks (including the MP_FAIL / infinite mapping
//! exchange after a DSS checksum failure), the data sequence space and
//! DATA_FIN. Our data maps one to one onto the first subflow until another
//! subflow joins (`tcp::conn::mptcp_tx` then maps it); the peer's mappings
//! are checked here and reassembled by DSN (`tcp::conn::mptcp_rx`).
//!
//! Sans-IO like the TCP core: inputs are options and offsets, outputs are
//! options and verdicts. Offsets are 32-bit on the subflow and widened to
//! 64 bits here against the last value seen, so transfers beyond 4 GiB
//! keep the right DSNs.

use super::crypto::{self, Key};
use super::rxcsum::{self, RxChecksum};
use super::rxmap::{RxDsn, RxMapping};
use crate::wire::checksum;
use crate::wire::mptcp::{
    cap_flags, AddAddr, Dss, DssMapping, MpCapable, MptcpOption, RemoveAddr, MPTCP_VERSION,
};
use crate::wire::tcp::whole_options;

/// Which end of the handshake we are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Sent the SYN (host A of RFC 8684 §3.1).
    Client,
    /// Answered it (host B).
    Server,
}

/// Where the negotiation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// MP_CAPABLE offered (SYN) or answered (SYN/ACK); not yet confirmed.
    Offered,
    /// Both keys exchanged: MPTCP in use.
    Established,
    /// Plain TCP from now on (RFC 8684 §3.7).
    Fallback,
}

/// Why a connection fell back to plain TCP (counted apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FallbackReason {
    /// The SYN/ACK (or the peer's SYN) had no usable MP_CAPABLE.
    NotOffered,
    /// The third ACK carried no MPTCP option (stripped on the path).
    Stripped,
    /// The first data arrived without a mapping (RFC 8684 §3.7).
    NoMapping,
    /// The peer's infinite mapping, after a DSS checksum failure (RFC 8684
    /// §3.7): the subflow carries the data stream as plain TCP.
    InfiniteMapping,
}

/// The MP_FAIL exchange of RFC 8684 §3.7 on a connection that never had
/// another subflow: instead of a reset, a checksum failure falls back to
/// TCP through an infinite mapping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MpFail {
    /// MP_FAIL to send on the next pure ACK: the DSN of our failed
    /// mapping, or the echo of the peer's.
    pub out: Option<u64>,
    /// We sent MP_FAIL: the peer's infinite mapping is due.
    pub awaiting_infinite: bool,
    /// The peer sent MP_FAIL: our next data segment carries the infinite
    /// mapping, and plain TCP follows.
    pub send_infinite: bool,
}

/// What a received segment's MPTCP options mean for the subflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RxVerdict {
    /// The connection just fell back to plain TCP.
    pub fallback: Option<FallbackReason>,
    /// Reset the connection: a mapping breaking the one-to-one rule, a
    /// failed DSS checksum, or keys that are not ours.
    pub reset: bool,
    /// Malformed or unexpected MPTCP options seen (ignored).
    pub bad_options: u32,
    /// A DSS checksum failed.
    pub checksum_failed: bool,
    /// A DSS checksum was verified (a whole mapping).
    pub checksum_verified: bool,
    /// A mapping spans several segments: its checksum was not verified.
    pub checksum_unverified: bool,
    /// The peer closed the connection with MP_FASTCLOSE.
    pub fastclose: bool,
    /// The mapping the segment carried (for the subflow's [`RxMaps`]).
    pub mapping: Option<RxMapping>,
    /// The DSN of the peer's DATA_FIN, when the segment carried it.
    pub data_fin: Option<RxDsn>,
    /// Path management (RFC 8684 §3.4): an ADD_ADDR or REMOVE_ADDR the
    /// segment carried, for the path manager.
    pub add_addr: Option<AddAddr>,
    pub remove_addr: Option<RemoveAddr>,
    /// The segment carried MP_PRIO: the peer's new backup flag for this
    /// subflow.
    pub prio: Option<bool>,
    /// The segment carried MP_FAIL (RFC 8684 §3.7).
    pub mp_fail: bool,
    /// The peer's infinite mapping (RFC 8684 §3.7): from subflow offset
    /// `.0` on, the subflow's bytes are the data stream from DSN `.1`.
    pub infinite: Option<(u32, RxDsn)>,
    /// The peer fell back without the infinite mapping reaching us: one
    /// is implied where its mappings end.
    pub infinite_implied: bool,
}

/// Fill in the checksum of a DSS mapping `opt` (left zero) whose payload
/// sums to `data_sum` (RFC 8684 §3.3.1); other options are left alone.
pub fn fill_dss_checksum(opt: &mut [u8], data_sum: u16) {
    if let Ok(MptcpOption::Dss(Dss {
        mapping:
            Some(DssMapping {
                dsn,
                ssn,
                len,
                checksum: Some(_),
                ..
            }),
        ..
    })) = MptcpOption::parse(opt)
    {
        let c = crypto::dss_checksum(dsn, ssn, len, data_sum);
        let n = opt.len();
        opt[n - 2..].copy_from_slice(&c.to_be_bytes());
    }
}

/// The DATA_ACK a segment's options carry, if any.
pub fn data_ack_in(opts: &[u8]) -> Option<RxDsn> {
    whole_options(opts).find_map(|o| match MptcpOption::parse(o) {
        Ok(MptcpOption::Dss(d)) => d.data_ack.map(|a| RxDsn {
            value: a,
            wide: d.ack64,
        }),
        _ => None,
    })
}

/// The data mapping a segment's DSS carries, if any.
pub fn mapping_in(opts: &[u8]) -> Option<crate::mptcp::RxMapping> {
    whole_options(opts).find_map(|o| match MptcpOption::parse(o) {
        Ok(MptcpOption::Dss(d)) => d
            .mapping
            .as_ref()
            .and_then(|m| crate::mptcp::RxMapping::from_dss(m, d.data_fin)),
        _ => None,
    })
}

/// Widen a 32-bit offset to 64 bits, nearest to `hint` (RFC 8684 §3.3.1:
/// the receiver must expand 32-bit values the same way).
pub(crate) fn widen(hint: u64, low: u32) -> u64 {
    let d = low.wrapping_sub(hint as u32) as i32 as i64;
    hint.wrapping_add(d as u64)
}

/// The connection-level state of one MPTCP connection.
#[derive(Debug, Clone)]
pub struct Session {
    pub role: Role,
    pub phase: Phase,
    /// Our key (RFC 8684 §3.1), set by the stack so that its token is
    /// unique there.
    pub local_key: Option<Key>,
    pub remote_key: Option<Key>,
    local_idsn: u64,
    remote_idsn: Option<u64>,
    /// We ask for the DSS checksum (flag A).
    want_checksum: bool,
    /// Negotiated: checksums on every mapping (either side asked).
    pub checksum: bool,
    /// The client saw a DSS from the server, so it stops repeating
    /// MP_CAPABLE (RFC 8684 §3.1).
    peer_dss_seen: bool,
    /// A mapping was received (later data without one is not a fallback).
    mapping_seen: bool,
    /// The data level's in-order DSN (0 until set), near which 32-bit
    /// DSNs are widened.
    data_hint: u64,
    /// We accept no extra subflow: our SYN/ACK sets flag C (RFC 8684
    /// §3.1), so the peer does not try to join (a refused join would make
    /// a Linux peer reinject its unacknowledged data at the connection
    /// level, which one subflow mapped one to one cannot take).
    pub deny_join: bool,
    /// The peer's SYN/ACK set flag C: no new subflow to the first
    /// subflow's address and port (RFC 8684 §3.1).
    pub peer_denies_join: bool,
    /// Widening hints for our and the peer's subflow offsets.
    snd_hint: u64,
    rcv_hint: u64,
    /// The peer's mapping being checksummed as its segments arrive.
    rx_csum: Option<RxChecksum>,
    /// How much of our data the peer's DATA_ACK covers (RFC 8684 §3.3.2),
    /// as a 64-bit offset from our first data byte (IDSN + 1); until a
    /// DATA_ACK arrives, nothing.
    data_acked: u64,
    /// The peer asked, with MP_PRIO, that this (first) subflow be a backup
    /// path (RFC 8684 §3.3.8).
    pub backup: bool,
    /// Our addresses announced to the peer and withdrawn (RFC 8684 §3.4).
    pub announce: super::Announcer,
    /// Another subflow joined the connection at some point: a checksum
    /// failure then resets rather than fall back (RFC 8684 §3.7: the
    /// infinite mapping needs the data in one stream; as Linux's
    /// `allow_infinite_fallback`).
    pub joined: bool,
    /// The MP_FAIL exchange, when a checksum failed on this subflow.
    pub fail: MpFail,
    /// A client: a join we opened before full establishment was refused
    /// (`Connection::mptcp_early_join_refused`).
    pub early_join_refused: bool,
}

impl Session {
    /// A client that offers MP_CAPABLE in its SYN.
    pub fn client(key: Key, want_checksum: bool) -> Self {
        Self::new(Role::Client, Some(key), want_checksum)
    }

    /// A server that saw `syn` (the MP_CAPABLE of the peer's SYN, if any):
    /// answers with MP_CAPABLE, or falls back at once. The key comes with
    /// [`Session::set_local_key`].
    pub fn server(syn: Option<&MpCapable>, want_checksum: bool) -> Self {
        let mut s = Self::new(Role::Server, None, want_checksum);
        match syn {
            // RFC 8684 §3.1: version 1 (a higher version is answered with
            // ours), H: HMAC-SHA256; a SYN MP_CAPABLE carries no key.
            Some(c) if c.version >= MPTCP_VERSION && c.hmac_sha256() && c.sender_key.is_none() => {
                s.checksum = want_checksum || c.checksum_required();
            }
            _ => s.phase = Phase::Fallback,
        }
        s
    }

    fn new(role: Role, key: Option<Key>, want_checksum: bool) -> Self {
        let mut s = Session {
            role,
            phase: Phase::Offered,
            local_key: None,
            remote_key: None,
            local_idsn: 0,
            remote_idsn: None,
            want_checksum,
            checksum: want_checksum,
            peer_dss_seen: false,
            mapping_seen: false,
            data_hint: 0,
            deny_join: false,
            peer_denies_join: false,
            snd_hint: 0,
            rcv_hint: 0,
            rx_csum: None,
            data_acked: 0,
            backup: false,
            announce: Default::default(),
            joined: false,
            fail: MpFail::default(),
            early_join_refused: false,
        };
        if let Some(k) = key {
            s.set_local_key(k);
        }
        s
    }

    pub fn set_local_key(&mut self, key: Key) {
        self.local_key = Some(key);
        self.local_idsn = key.idsn();
    }

    fn set_remote_key(&mut self, key: Key) {
        self.remote_key = Some(key);
        self.remote_idsn = Some(key.idsn());
    }

    /// Our token (RFC 8684 §3.1), once we have a key.
    pub fn local_token(&self) -> Option<u32> {
        self.local_key.map(Key::token)
    }

    /// Whether our path manager may open subflows now (RFC 8684 §3.2):
    /// `None` never (not the client, or plain TCP); `Some(true)` once
    /// the connection is fully established, i.e. the server's DSS (or
    /// ADD_ADDR) showed
    /// that our MP_CAPABLE third ACK arrived (a join racing it over
    /// another path would find no token there).
    ///
    /// `stalled`: the first subflow's path looks dead before the server's
    /// first DSS came. RFC 8684 §3.2 asks only that the MP_CAPABLE
    /// handshake be done on our side (we hold the server's key, so the
    /// token and HMACs exist): a join on another path then carries the
    /// connection on if the server got our third ACK. If it did not, the
    /// join is refused and the first subflow keeps retrying (a refusal
    /// alone proves nothing: Linux and this stack refuse a join with the
    /// same MP_TCPRST reason for a token unknown, a connection not yet
    /// fully established, or one closing) until its neighbour fails too
    /// (`Connection::mptcp_early_unreachable`).
    pub fn joins_allowed(&self, stalled: bool) -> Option<bool> {
        if self.role != Role::Client || self.phase == Phase::Fallback {
            return None;
        }
        Some(
            self.phase == Phase::Established
                && (self.peer_dss_seen || stalled)
                && self.remote_key.is_some(),
        )
    }

    /// Whether MPTCP is in use (not fallen back).
    pub fn is_mptcp(&self) -> bool {
        self.phase != Phase::Fallback
    }

    /// Give up MPTCP for plain TCP (e.g. a simultaneous open, which the
    /// MP_CAPABLE exchange of RFC 8684 §3.1 does not cover, or an endpoint
    /// without a key). True if MPTCP was in use until now.
    pub fn abandon(&mut self) -> bool {
        let was = self.phase != Phase::Fallback;
        self.phase = Phase::Fallback;
        was
    }

    fn fall_back(&mut self, why: FallbackReason, v: &mut RxVerdict) {
        if self.phase != Phase::Fallback {
            self.phase = Phase::Fallback;
            v.fallback = Some(why);
        }
    }

    fn flags(&self) -> u8 {
        cap_flags::H | if self.checksum { cap_flags::A } else { 0 }
    }

    /// The MPTCP option of our SYN (client) or SYN/ACK (server).
    pub fn syn_option(&self) -> Option<MptcpOption> {
        if self.phase == Phase::Fallback {
            return None;
        }
        let sender_key = match self.role {
            Role::Client => None,
            Role::Server => Some(self.local_key?.0),
        };
        // RFC 8684 §3.1, flag C: "the sender of this option will not
        // accept additional MPTCP subflows to the source address and port".
        let c = if self.role == Role::Server && self.deny_join {
            cap_flags::C
        } else {
            0
        };
        Some(MptcpOption::MpCapable(MpCapable {
            version: MPTCP_VERSION,
            flags: cap_flags::H
                | c
                | if self.want_checksum || self.checksum {
                    cap_flags::A
                } else {
                    0
                },
            sender_key,
            ..MpCapable::default()
        }))
    }

    /// The client got the SYN/ACK: MP_CAPABLE with the server's key, or
    /// fallback (RFC 8684 §3.1: "If the SYN/ACK does not contain
    /// MP_CAPABLE ... the connection falls back to regular TCP").
    pub fn on_syn_ack(&mut self, opts: &[u8]) -> RxVerdict {
        let mut v = RxVerdict::default();
        if self.phase == Phase::Fallback {
            return v;
        }
        match first_capable(opts, &mut v) {
            Some(c) if c.version == MPTCP_VERSION && c.hmac_sha256() && c.sender_key.is_some() => {
                if let Some(k) = c.sender_key {
                    self.set_remote_key(Key(k));
                }
                self.checksum = self.want_checksum || c.checksum_required();
                self.peer_denies_join = c.flags & cap_flags::C != 0;
                self.phase = Phase::Established;
            }
            _ => self.fall_back(FallbackReason::NotOffered, &mut v),
        }
        v
    }

    /// A synchronized-state segment arrived from the peer with `opts` (its
    /// raw MPTCP options), `len` payload bytes at subflow offset `rel`;
    /// `establishing`: it completes our passive handshake (the third ACK).
    pub fn on_segment(
        &mut self,
        opts: &[u8],
        rel: u32,
        payload: &[u8],
        establishing: bool,
    ) -> RxVerdict {
        let mut v = RxVerdict::default();
        if self.phase == Phase::Fallback {
            return v;
        }
        if self.fail.awaiting_infinite && opts.is_empty() {
            // RFC 8684 §3.7: the peer answered our MP_FAIL and fell back
            // (a peer in MPTCP sends DSS on every segment). Its infinite
            // mapping rides on its next data, which a window closed
            // meanwhile may not take (no DATA_ACK frees our send buffer
            // any more): its data goes on one to one from where its
            // mappings ended.
            v.infinite_implied = true;
            self.fail = MpFail::default();
            self.fall_back(FallbackReason::InfiniteMapping, &mut v);
            return v;
        }
        let mut any = false;
        let mut mapped = false;
        for raw in whole_options(opts) {
            any = true;
            match MptcpOption::parse(raw) {
                Ok(MptcpOption::MpCapable(c)) => {
                    // The third ACK or first data (RFC 8684 §3.1): both
                    // keys; the receiver's must be ours.
                    match (c.sender_key, c.receiver_key) {
                        (Some(s), Some(r)) if Some(Key(r)) == self.local_key => {
                            if self.remote_key.is_none() {
                                self.set_remote_key(Key(s));
                            }
                            if c.checksum_required() {
                                self.checksum = true;
                            }
                            if let Some(len) = c.data_len {
                                // The implied mapping: DSN = IDSN + 1, SSN 1.
                                let m = DssMapping {
                                    dsn: self.remote_idsn.unwrap_or(0).wrapping_add(1),
                                    dsn64: true,
                                    ssn: 1,
                                    len,
                                    checksum: c.checksum,
                                };
                                self.check_mapping(&m, false, rel, payload, &mut v);
                                mapped = true;
                            }
                        }
                        (Some(_), Some(_)) => {
                            v.bad_options += 1;
                            v.reset = true;
                        }
                        _ => v.bad_options += 1,
                    }
                }
                Ok(MptcpOption::Dss(d)) => {
                    if self.role == Role::Client {
                        self.peer_dss_seen = true;
                    }
                    if let Some(m) = d.mapping {
                        self.check_mapping(&m, d.data_fin, rel, payload, &mut v);
                        mapped = true;
                    }
                }
                // RFC 8684 §3.5: MP_FASTCLOSE on an ACK, with our key: answer
                // with a RST and drop the connection (on a RST, the TCP layer
                // has already closed it). Another key is ignored.
                Ok(MptcpOption::MpFastclose { receiver_key }) => {
                    if Some(Key(receiver_key)) == self.local_key {
                        v.fastclose = true;
                        v.reset = true;
                    } else {
                        v.bad_options += 1;
                    }
                }
                Ok(MptcpOption::AddAddr(a)) => {
                    // An announcement shows, as a DSS does, that the
                    // server has our keys: fully established (as Linux).
                    if !a.echo && self.role == Role::Client {
                        self.peer_dss_seen = true;
                    }
                    v.add_addr = Some(a);
                }
                Ok(MptcpOption::RemoveAddr(r)) => v.remove_addr = Some(r),
                // RFC 8684 §3.3.8: the subflow it arrives on becomes a
                // backup path (B = 1) or a regular one.
                Ok(MptcpOption::MpPrio { backup }) => {
                    self.backup = backup;
                    v.prio = Some(backup);
                }
                // RFC 8684 §3.7: the peer found one of our mappings corrupted.
                Ok(MptcpOption::MpFail { dsn }) => self.on_mp_fail(dsn, &mut v),
                // MP_TCPRST comes with a RST, which the TCP layer acts on.
                Ok(_) => {}
                Err(_) => v.bad_options += 1,
            }
        }
        if establishing && self.phase == Phase::Offered {
            if any {
                self.phase = Phase::Established;
            } else {
                self.fall_back(FallbackReason::Stripped, &mut v);
                return v;
            }
        }
        if mapped {
            self.mapping_seen = true;
        } else if !payload.is_empty() && !self.mapping_seen {
            // RFC 8684 §3.7: "if the first data packet ... does not
            // contain a DSS option ... fall back".
            self.fall_back(FallbackReason::NoMapping, &mut v);
        }
        v
    }

    /// Note a received mapping (RFC 8684 §3.3.1) for the data level and
    /// verify its checksum when the segment holds all of it, or as its
    /// segments arrive in order. The DSNs need not follow the subflow one
    /// to one: the data level reassembles by DSN.
    fn check_mapping(
        &mut self,
        m: &DssMapping,
        fin: bool,
        rel: u32,
        payload: &[u8],
        v: &mut RxVerdict,
    ) {
        let data_len = m.len as u64 - (fin as u64).min(m.len as u64);
        if m.len == 0 {
            self.on_infinite_mapping(m, v);
            return;
        }
        if m.ssn == 0 && fin && m.len == 1 {
            // A DATA_FIN without data (RFC 8684 §3.3.3).
            let dsn = self.widen_dsn(m);
            v.data_fin = Some(RxDsn {
                value: m.dsn,
                wide: m.dsn64,
            });
            if self.checksum {
                if let Some(c) = m.checksum {
                    if crypto::dss_checksum(dsn, 0, 1, 0) != c {
                        self.on_checksum_failure(dsn, v);
                    }
                }
            }
            return;
        }
        let start = m.ssn.wrapping_sub(1);
        let start64 = widen(self.rcv_hint, start);
        if self.remote_idsn.is_none() {
            // The key-bearing options were lost: the first 64-bit mapping
            // starts the data sequence space (RFC 8684 §3.1: the first
            // data is at IDSN + 1).
            if m.dsn64 {
                self.remote_idsn = Some(m.dsn.wrapping_sub(1).wrapping_sub(start64));
            } else {
                v.bad_options += 1;
                return;
            }
        }
        let dsn = self.widen_dsn(m);
        self.rcv_hint = start64;
        v.mapping = RxMapping::from_dss(m, fin);
        if fin {
            v.data_fin = Some(RxDsn {
                value: dsn.wrapping_add(data_len),
                wide: true,
            });
        }
        if self.checksum {
            match m.checksum {
                Some(c) if start == rel && data_len == payload.len() as u64 => {
                    let s = checksum::sum(payload);
                    if crypto::dss_checksum(dsn, m.ssn, m.len, s) != c {
                        self.on_checksum_failure(dsn, v);
                    } else {
                        v.checksum_verified = true;
                    }
                }
                Some(c) => self.checksum_across(start64, data_len, dsn, m, c, rel, payload, v),
                // RFC 8684 §3.3.1: a mapping without the negotiated checksum
                // is a protocol error.
                None => {
                    v.bad_options += 1;
                    v.reset = true;
                }
            }
        }
    }

    /// The checksum of a mapping spanning several segments: summed as its
    /// bytes arrive in order, checked when complete. A mapping whose bytes
    /// arrive out of order is counted unverified.
    #[allow(clippy::too_many_arguments)]
    fn checksum_across(
        &mut self,
        start: u64,
        data_len: u64,
        dsn: u64,
        m: &DssMapping,
        want: u16,
        rel: u32,
        payload: &[u8],
        v: &mut RxVerdict,
    ) {
        let at = widen(self.rcv_hint, rel);
        let o = rxcsum::check(
            &mut self.rx_csum,
            start,
            data_len,
            dsn,
            m,
            want,
            at,
            payload,
        );
        v.checksum_unverified |= o.unverified;
        v.checksum_verified |= o.verified;
        if o.failed {
            self.on_checksum_failure(dsn, v);
        }
    }

    /// RFC 8684 §3.7: a DSS checksum failed (a middlebox changed the
    /// payload). With other subflows about, or twice, the connection
    /// resets. Alone, the data is taken as TCP took it (the subflow has
    /// ACKed it; the peer, once fallen back, will not send it again) and
    /// MP_FAIL asks the peer for the infinite mapping that ends MPTCP on
    /// this connection.
    fn on_checksum_failure(&mut self, dsn: u64, v: &mut RxVerdict) {
        v.checksum_failed = true;
        if self.joined || self.fail != MpFail::default() {
            v.reset = true;
            return;
        }
        self.fail.out = Some(dsn);
        self.fail.awaiting_infinite = true;
    }

    /// The peer's MP_FAIL (RFC 8684 §3.7): the echo of ours, or a
    /// failure of our data, answered with an echo and the infinite
    /// mapping on our next data. With other subflows the peer resets the
    /// subflow it names (the RST carries it), and nothing is to do here.
    fn on_mp_fail(&mut self, dsn: u64, v: &mut RxVerdict) {
        v.mp_fail = true;
        if self.fail.awaiting_infinite || self.joined || self.fail.send_infinite {
            return;
        }
        self.fail.out = Some(dsn);
        self.fail.send_infinite = true;
    }

    /// The peer's infinite mapping (RFC 8684 §3.7: data-level length 0):
    /// its subflow carries the rest of the data stream one to one, with
    /// no more options. Only on a connection that was never joined.
    fn on_infinite_mapping(&mut self, m: &DssMapping, v: &mut RxVerdict) {
        if self.joined || m.ssn == 0 {
            v.bad_options += 1;
            return;
        }
        v.infinite = Some((
            m.ssn.wrapping_sub(1),
            RxDsn {
                value: m.dsn,
                wide: m.dsn64,
            },
        ));
        self.fail = MpFail::default();
        self.fall_back(FallbackReason::InfiniteMapping, v);
    }

    /// The MP_FAIL to put on the next pure ACK, if one waits.
    pub fn take_mp_fail(&mut self) -> Option<u64> {
        self.fail.out.take()
    }

    /// A received DSN widened to 64 bits (m = 0 carries the low 32 bits)
    /// against the data level's progress.
    fn widen_dsn(&self, m: &DssMapping) -> u64 {
        let near = if self.data_hint != 0 {
            self.data_hint
        } else {
            self.remote_idsn.unwrap_or(0).wrapping_add(1)
        };
        RxDsn {
            value: m.dsn,
            wide: m.dsn64,
        }
        .widen(near)
    }

    /// The peer's initial data sequence number, once known.
    pub fn remote_idsn(&self) -> Option<u64> {
        self.remote_idsn
    }

    /// Bytes of our data the peer's DATA_ACK covers (from our IDSN + 1).
    pub fn data_acked(&self) -> u64 {
        self.data_acked
    }

    /// The peer's DATA_ACK in `opts` (RFC 8684 §3.3.2), when it covers
    /// more of our data: `sent` is how far our data went (the subflow
    /// offset of SND.NXT, the DATA_FIN included, one to one). A DATA_ACK
    /// beyond what was sent, or behind the one we have, is ignored (as
    /// RFC 9293 §3.10.7.4 ignores the ACK of unsent data). Returns whether
    /// it moved (the caller releases the data it covers).
    pub fn on_data_ack(&mut self, opts: &[u8], sent: u32) -> bool {
        match data_ack_in(opts) {
            Some(a) => self.note_data_ack(a, widen(self.snd_hint, sent)),
            None => false,
        }
    }

    /// A DATA_ACK `a` (from any subflow), against `sent`: the 64-bit
    /// offset of our data sent so far, DATA_FIN included (see
    /// [`Session::on_data_ack`]).
    pub fn note_data_ack(&mut self, a: RxDsn, sent: u64) -> bool {
        if self.phase != Phase::Established {
            return false;
        }
        let RxDsn { value, wide } = a;
        let base = self.local_idsn.wrapping_add(1);
        let acked = RxDsn { value, wide }
            .widen(base.wrapping_add(self.data_acked))
            .wrapping_sub(base);
        if acked <= self.data_acked || acked > sent {
            return false;
        }
        self.data_acked = acked;
        true
    }

    /// Our IDSN + 1: the DSN of our first data byte.
    pub fn local_data_start(&self) -> u64 {
        self.local_idsn.wrapping_add(1)
    }

    /// The data level's in-order point (to widen 32-bit DSNs near it).
    pub fn set_data_hint(&mut self, nxt: u64) {
        self.data_hint = nxt;
    }

    /// The MPTCP option of a synchronized-state segment we send: `len`
    /// data bytes at subflow offset `rel`, `fin` when it carries our FIN
    /// (the DATA_FIN rides on it: one subflow closes with the connection);
    /// `data_ack` is the data level's cumulative point (RFC 8684 §3.3.2).
    /// `None` after fallback.
    /// A checksum field is left zero for [`Session::fill_checksum`].
    pub fn data_option(
        &mut self,
        rel: u32,
        len: usize,
        fin: bool,
        data_ack: Option<u64>,
        dsn: Option<u64>,
    ) -> Option<MptcpOption> {
        self.segment_option(rel, len, fin, data_ack, dsn, true)
    }

    /// [`Session::data_option`] for new data (`fresh`) or a
    /// retransmission, which never carries the infinite mapping: the peer
    /// drops bytes it already has, and the mapping with them.
    pub fn segment_option(
        &mut self,
        rel: u32,
        len: usize,
        fin: bool,
        data_ack: Option<u64>,
        dsn: Option<u64>,
        fresh: bool,
    ) -> Option<MptcpOption> {
        if self.phase == Phase::Fallback {
            return None;
        }
        let local = self.local_key?;
        let rel64 = widen(self.snd_hint, rel);
        if len > 0 {
            self.snd_hint = rel64;
        }
        if self.role == Role::Client && !self.peer_dss_seen && !fin {
            // RFC 8684 §3.1: until the server's first DSS, the client
            // repeats MP_CAPABLE with both keys (the third ACK may have been
            // lost); the first data carries its mapping implied (DSN IDSN+1).
            // A FIN needs the DATA_FIN flag, which only DSS has.
            let remote = self.remote_key?;
            let first_data = len > 0 && rel == 0;
            if len == 0 || first_data {
                return Some(MptcpOption::MpCapable(MpCapable {
                    version: MPTCP_VERSION,
                    flags: self.flags(),
                    sender_key: Some(local.0),
                    receiver_key: Some(remote.0),
                    data_len: first_data.then_some(len as u16),
                    checksum: (first_data && self.checksum).then_some(0),
                }));
            }
        }
        // `dsn`: the connection's send side mapped these bytes (or placed
        // the DATA_FIN); else they map one to one.
        let dsn = dsn.unwrap_or(self.local_idsn.wrapping_add(1).wrapping_add(rel64));
        if self.fail.send_infinite && self.fail.out.is_none() && len > 0 && fresh {
            // RFC 8684 §3.7: answering the peer's MP_FAIL, the infinite
            // mapping (data-level length 0) from this segment's first
            // byte; plain TCP from here on. Only after our echo of its
            // MP_FAIL went out on a pure ACK: a peer that fell back reads
            // no option (Linux then resets the subflow when its wait for
            // the echo times out).
            self.fail = MpFail::default();
            self.phase = Phase::Fallback;
            return Some(MptcpOption::Dss(Dss {
                data_ack,
                ack64: true,
                mapping: Some(DssMapping {
                    dsn,
                    dsn64: true,
                    ssn: rel.wrapping_add(1),
                    len: 0,
                    checksum: self.checksum.then_some(0),
                }),
                data_fin: false,
            }));
        }
        let mapping = if len > 0 || fin {
            let (dsn, ssn, l) = if len == 0 {
                // A DATA_FIN without data: SSN 0, length 1 (RFC 8684 §3.3.3).
                (dsn, 0, 1)
            } else {
                (dsn, rel.wrapping_add(1), len as u16 + fin as u16)
            };
            Some(DssMapping {
                dsn,
                dsn64: true,
                ssn,
                len: l,
                checksum: self.checksum.then_some(0),
            })
        } else {
            None
        };
        if data_ack.is_none() && mapping.is_none() {
            return None;
        }
        Some(MptcpOption::Dss(Dss {
            data_ack,
            ack64: true,
            mapping,
            data_fin: fin,
        }))
    }

    /// Fill in the DSS checksum of an option built by `data_option`, now
    /// that the payload is known: `data_sum` is its one's-complement sum
    /// ([`checksum::sum`]) (RFC 8684 §3.3.1).
    pub fn fill_checksum(&self, opt: &mut [u8], data_sum: u16) {
        if let Ok(MptcpOption::MpCapable(MpCapable {
            data_len: Some(len),
            checksum: Some(_),
            ..
        })) = MptcpOption::parse(opt)
        {
            let c = crypto::dss_checksum(self.local_idsn.wrapping_add(1), 1, len, data_sum);
            let n = opt.len();
            opt[n - 2..].copy_from_slice(&c.to_be_bytes());
            return;
        }
        fill_dss_checksum(opt, data_sum);
    }
}

/// The first MP_CAPABLE in `raw`; other options that do not parse are
/// counted.
fn first_capable(raw: &[u8], v: &mut RxVerdict) -> Option<MpCapable> {
    for o in whole_options(raw) {
        match MptcpOption::parse(o) {
            Ok(MptcpOption::MpCapable(c)) => return Some(c),
            Ok(_) => {}
            Err(_) => v.bad_options += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests;
