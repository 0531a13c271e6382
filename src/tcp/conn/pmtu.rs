//! The path: ICMP errors for the connection (RFC 1122 §4.2.3.9, validated as
//! RFC 5927 §4.1 asks), path MTU discovery from "fragmentation needed"
//! (RFC 1191), and black-hole detection when those are filtered (RFC 4821
//! §7.7 / RFC 8899 §4.3, as Linux's tcp_mtu_probing). Growing back is
//! `plpmtud`'s: probing, never trusting an ICMP to raise the size.

use super::options::TS_LEN;
use super::{ConnEvents, Connection, Recovery, State};
use crate::io::Frame;
use crate::tcp::SeqNumber;
use crate::time::Instant;

/// IPv4 + TCP headers without options.
const HEADERS: usize = 40;
/// Smallest path MTU believed (Linux ip_rt_min_pmtu: 512 + 20 + 20). RFC
/// 1191 §3 allows 68, but nothing real is that small, and a forged ICMP
/// (with a guessed in-window sequence number) must not shrink segments to
/// a few bytes.
pub(crate) const MIN_PMTU: usize = 552;
/// Black-hole detection lowers the MSS first to this (Linux tcp_base_mss;
/// RFC 4821 §7.2 suggests 1024 as the initial search floor for IPv4).
const BASE_MSS: usize = 1024;
/// RTOs of the same segment before a black hole is suspected (Linux
/// tcp_retries1 = 3) ...
const BLACK_HOLE_RTOS: u32 = 3;
/// ... or, once full-sized segments have been delivered at the current
/// size, twice as many: then the path carried them, and three RTOs in a
/// row are far more likely heavy loss (10 % loss gives 1 in 1,000) than a
/// route change into a black hole (six: 1 in 10^6).
const BLACK_HOLE_RTOS_PROVEN: u32 = 6;
/// RFC 1191 §7: the MTU plateaus, for routers that send no next-hop MTU.
const PLATEAUS: [usize; 10] = [32000, 17914, 8166, 4352, 2002, 1492, 1006, 508, 296, 68];

/// RFC 792 / RFC 1122 types and codes the classification needs.
const DEST_UNREACHABLE: u8 = 3;
const FRAG_NEEDED: u8 = 4;

/// An ICMP error about a segment of this connection: the type and code,
/// the sequence number the quoted TCP header carries, and for
/// "fragmentation needed" the next-hop MTU and the quoted total length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IcmpNotice {
    pub icmp_type: u8,
    pub code: u8,
    pub seq: SeqNumber,
    pub next_hop_mtu: u16,
    pub quoted_len: u16,
}

/// How TCP treats an ICMP error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpClass {
    /// Destination unreachable, fragmentation needed (RFC 1191).
    FragNeeded,
    /// RFC 1122 §4.2.3.9: protocol and port unreachable (codes 2, 3), and
    /// the administratively prohibited codes (9, 10, 13; Linux treats them
    /// as fatal too). They abort a connection that is still opening.
    Hard,
    /// Everything else (net/host unreachable, time exceeded, parameter
    /// problem, ...): reported, never fatal (RFC 5461).
    Soft,
}

impl IcmpClass {
    pub fn of(icmp_type: u8, code: u8) -> IcmpClass {
        match (icmp_type, code) {
            (DEST_UNREACHABLE, FRAG_NEEDED) => IcmpClass::FragNeeded,
            (DEST_UNREACHABLE, 2 | 3 | 9 | 10 | 13) => IcmpClass::Hard,
            _ => IcmpClass::Soft,
        }
    }
}

/// What the connection learned about its path.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PathState {
    /// The path MTU learned (ICMP, black-hole detection or probing), if
    /// below the negotiated size.
    pub mtu: Option<usize>,
    /// The upward search (RFC 4821 probing).
    pub plpmtud: super::plpmtud::Plpmtud,
    /// The latest soft error (type, code), reported to the application.
    pub soft_error: Option<(u8, u8)>,
    /// A full-sized segment at the current size was acknowledged.
    pub full_delivered: bool,
    /// The next hop failed to answer ARP for one of our segments
    /// (`neighbour_failed`).
    pub neighbour_failed: bool,
}

/// The next RFC 1191 §7 plateau below `len`.
fn plateau_below(len: usize) -> usize {
    PLATEAUS.iter().copied().find(|&p| p < len).unwrap_or(68)
}

impl<F: Frame> Connection<F> {
    /// RFC 1122 §4.2.3.9: an ICMP error the stack directed to this
    /// connection (its quoted 4-tuple matched).
    pub fn handle_icmp_error(&mut self, now: Instant, e: &IcmpNotice) {
        self.now = self.now.max(now);
        self.on_icmp_error(e);
        self.update_timers();
    }

    /// The next hop never answered ARP for one of our segments (RFC 1122
    /// §2.3.2.2: it was discarded). A connection still opening has no path
    /// at all: it ends as unreachable, as Linux's connect() fails with
    /// EHOSTUNREACH (its neighbour failure becomes a local ICMP host
    /// unreachable, which `tcp_v4_err` applies to SYN-SENT and SYN-RECEIVED),
    /// after seconds instead of every SYN retry. An established connection
    /// keeps trying (RFC 5461: never fatal once established), unless it is
    /// an MPTCP connection still opening at its level
    /// (`mptcp_early_unreachable`).
    pub fn neighbour_failed(&mut self, now: Instant) {
        self.now = self.now.max(now);
        self.path.neighbour_failed = true;
        if matches!(self.state, State::SynSent | State::SynReceived) {
            self.events.insert(ConnEvents::UNREACHABLE);
            self.enter_closed();
        } else if !self.mptcp_early_unreachable() {
            self.path.soft_error = Some((DEST_UNREACHABLE, 1));
        }
        self.update_timers();
    }

    fn on_icmp_error(&mut self, e: &IcmpNotice) {
        if matches!(self.state, State::Closed | State::Listen | State::TimeWait) {
            self.stats.icmp_ignored += 1;
            return;
        }
        // RFC 5927 §4.1: the quoted sequence number must be one in flight,
        // SND.UNA <= SEG.SEQ < SND.NXT (an ICMP forged blind must guess it).
        if !(self.snd.una <= e.seq && e.seq < self.snd.nxt) {
            self.stats.icmp_ignored += 1;
            return;
        }
        match IcmpClass::of(e.icmp_type, e.code) {
            IcmpClass::FragNeeded => self.on_frag_needed(e),
            IcmpClass::Hard if matches!(self.state, State::SynSent | State::SynReceived) => {
                // RFC 1122 §4.2.3.9: a hard error aborts an opening
                // connection (RFC 5461: not an established one).
                self.stats.icmp_hard_errors += 1;
                self.events.insert(ConnEvents::UNREACHABLE);
                self.enter_closed();
            }
            _ => {
                // RFC 1122 §4.2.3.9: soft errors are reported, not fatal.
                self.stats.icmp_soft_errors += 1;
                self.path.soft_error = Some((e.icmp_type, e.code));
            }
        }
    }

    /// RFC 1191 §6.4: fragmentation needed. "A host MUST never increase
    /// its estimate of the Path MTU in response to the contents of a
    /// Datagram Too Big message"; an older router's 0 means the next
    /// plateau below the quoted length (§5).
    fn on_frag_needed(&mut self, e: &IcmpNotice) {
        self.stats.icmp_frag_needed += 1;
        let cur = self.path_mss() + HEADERS;
        let m = match e.next_hop_mtu {
            0 => plateau_below(usize::from(e.quoted_len).min(cur + 1)),
            m => usize::from(m),
        };
        if m >= cur {
            return;
        }
        self.lower_path_mtu(m.max(MIN_PMTU), true);
    }

    /// The segment size the path allows now (MSS, options not subtracted).
    fn path_mss(&self) -> usize {
        let ts = if self.opts.ts { TS_LEN } else { 0 };
        self.snd.mss + ts
    }

    /// Lower the path MTU to `mtu` (if that is lower): smaller segments
    /// from now on, and what is in flight at the old size resent now
    /// (not a congestion signal: cwnd is kept, as Linux's
    /// tcp_simple_retransmit).
    fn lower_path_mtu(&mut self, mtu: usize, from_icmp: bool) {
        if mtu >= self.path_mss() + HEADERS {
            return;
        }
        self.path.mtu = Some(mtu);
        self.path.full_delivered = false;
        self.stats.pmtu_reductions += 1;
        self.snd.mss = (mtu - HEADERS).saturating_sub(self.fixed_opts_len()).max(1);
        self.loss.cc.set_mss(self.snd.mss);
        if self.snd.sb.mark_lost_above(self.snd.mss) > 0 && self.loss.recovery == Recovery::Open {
            self.loss.recovery = Recovery::Loss {
                point: self.snd.nxt,
            };
            self.loss.recover = self.snd.nxt;
            self.loss.rexmit_head = true;
        }
        self.plpmtud_lowered(from_icmp);
    }

    /// RFC 4821 §7.7 / RFC 8899 §4.3 black-hole detection, called on each
    /// RTO of data: after every `BLACK_HOLE_RTOS` timeouts of a segment
    /// larger than the next step, lower the MSS to `BASE_MSS`, then halve
    /// it, never below `MIN_PMTU`. Random loss can trigger it too; probing
    /// (`plpmtud`) then finds the size the path really has.
    pub(super) fn black_hole_check(&mut self) {
        let every = if self.path.full_delivered {
            BLACK_HOLE_RTOS_PROVEN
        } else {
            BLACK_HOLE_RTOS
        };
        if !self.cfg.plpmtud
            || self.loss.rtx_count == 0
            || !self.loss.rtx_count.is_multiple_of(every)
        {
            return;
        }
        let cur = self.path_mss();
        let target = if cur > BASE_MSS {
            BASE_MSS
        } else {
            (cur / 2).max(MIN_PMTU - HEADERS)
        };
        let ts = if self.opts.ts { TS_LEN } else { 0 };
        let head = self
            .snd
            .sb
            .get(0)
            .map_or(0, |s| s.len() - usize::from(s.fin));
        if target < cur && head > target.saturating_sub(ts) {
            self.stats.black_holes += 1;
            self.lower_path_mtu(target + HEADERS, false);
        }
    }

    /// An ACK delivered segments, the largest `largest` bytes.
    pub(super) fn note_delivered(&mut self, largest: usize) {
        if largest >= self.snd.mss {
            self.path.full_delivered = true;
        }
    }

    /// The path MTU learned, if one lowered the segment size.
    pub fn path_mtu(&self) -> Option<usize> {
        self.path.mtu
    }

    /// The latest soft ICMP error (type, code) reported for this connection.
    pub fn soft_error(&self) -> Option<(u8, u8)> {
        self.path.soft_error
    }
}
