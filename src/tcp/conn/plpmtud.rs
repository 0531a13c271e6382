//! Packetization-layer path MTU discovery upwards (RFC 4821 §7, with the
//! search of RFC 8899 §5): after the segment size was lowered — by an ICMP
//! "fragmentation needed" (RFC 1191) or by black-hole detection — probes
//! of a larger size, made of real data, find how large the path lets
//! packets be. A probe that is acknowledged raises the MSS; a lost probe
//! only lowers the search ceiling and is resent at the current size,
//! without a congestion response (RFC 4821 §7.6.2: probe loss is not a
//! congestion signal). When the search range is narrow it stops, and a
//! new search starts after `Config::pmtu_probe_interval` (RFC 8899 §5.1.1
//! PMTU_RAISE_TIMER; Linux tcp_probe_interval, 10 minutes), so a path
//! whose MTU rose is found again.

use super::{Connection, Recovery, State};
use crate::io::Frame;
use crate::tcp::sack::DUP_THRESH;
use crate::tcp::SeqNumber;
use crate::time::Instant;

/// IPv4 + TCP headers without options.
const HEADERS: usize = 40;
/// RFC 4821 §7.3: stop searching when the range is this narrow (Linux
/// tcp_probe_threshold).
const PROBE_THRESHOLD: u16 = 8;

/// The search range, in IP packet sizes: `low` is known to pass, `high`
/// is the largest that may (RFC 8899 §5.1.2 "search algorithm"). The
/// first probe tries `high` itself (a path that rose back usually rose
/// all the way: one probe finds it), then the range is halved, and when
/// it is narrower than `PROBE_THRESHOLD` `high` is tried once more, so
/// the search ends on the exact size (1,280 behind an IPv6-minimum
/// tunnel, not 1,273).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Search {
    low: u16,
    high: u16,
    first: bool,
    last_tried: bool,
}

/// The probe in flight: its sequence range and packet size.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MtuProbe {
    start: SeqNumber,
    end: SeqNumber,
    mtu: u16,
}

/// Upward PMTU search state (kept small: every connection has one).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Plpmtud {
    search: Option<Search>,
    probe: Option<MtuProbe>,
    /// When the next search starts (RFC 8899 §5.1.1 PMTU_RAISE_TIMER).
    raise_at: Option<Instant>,
}

fn mtu16(m: usize) -> u16 {
    m.min(usize::from(u16::MAX)) as u16
}

impl<F: Frame> Connection<F> {
    /// The packet size the segments have now (MSS plus fixed options plus
    /// headers).
    pub(super) fn current_mtu(&self) -> usize {
        self.snd.mss + self.fixed_opts_len() + HEADERS
    }

    /// The packet size negotiated at the handshake (the ceiling).
    fn negotiated_mtu(&self) -> usize {
        self.opts.peer_mss.min(self.cfg.mss as usize) + HEADERS
    }

    /// The segment size was just lowered. After black-hole detection the
    /// search starts at once (the drop may have been too deep, as Linux's
    /// tcp_mtu_probing does after tcp_base_mss); after an ICMP message,
    /// which told the size, only when the raise timer fires.
    pub(super) fn plpmtud_lowered(&mut self, from_icmp: bool) {
        let p = &mut self.path.plpmtud;
        p.probe = None;
        p.search = None;
        p.raise_at = Some(self.now + self.cfg.pmtu_probe_interval);
        if !from_icmp && self.cfg.plpmtud {
            self.plpmtud_start_search();
        }
    }

    /// Start a search from the current size up to the negotiated one.
    fn plpmtud_start_search(&mut self) {
        let low = mtu16(self.current_mtu());
        let high = mtu16(self.negotiated_mtu());
        let p = &mut self.path.plpmtud;
        p.raise_at = None;
        p.search = (high > low).then_some(Search {
            low,
            high,
            first: true,
            last_tried: false,
        });
    }

    /// The search converged (or cannot go on): wait for the raise timer.
    fn plpmtud_done(&mut self) {
        let below = self.current_mtu() < self.negotiated_mtu();
        let p = &mut self.path.plpmtud;
        p.search = None;
        p.probe = None;
        p.raise_at = below.then(|| self.now + self.cfg.pmtu_probe_interval);
    }

    /// Whether neither `plpmtud_raise_timer` nor `mtu_probe_len` has
    /// anything to do now (no search under way, the raise timer not due):
    /// `send_now`'s test.
    #[inline]
    pub(super) fn plpmtud_quiet(&self) -> bool {
        let p = &self.path.plpmtud;
        p.search.is_none() && !(p.raise_at.is_some_and(|t| self.now >= t) && self.cfg.plpmtud)
    }

    /// RFC 8899 §5.1.1: the raise timer fired: search again (called from
    /// `poll_transmit`; no timer of its own is needed: a probe needs data
    /// to send anyway).
    pub(super) fn plpmtud_raise_timer(&mut self) {
        if self.path.plpmtud.raise_at.is_some_and(|t| self.now >= t) && self.cfg.plpmtud {
            self.plpmtud_start_search();
        }
    }

    /// RFC 4821 §7.4: the payload of a probe to send now, if one is due
    /// and may go: the connection is open and not recovering, the windows
    /// allow it, and enough data follows it that its loss shows up as
    /// duplicate ACKs (Linux: DupThresh + 1 segments beyond the probe; on an
    /// MPTCP subflow the probe alone, below)
    /// rather than as a timeout. The probe's bytes are gathered into one
    /// frame (a segment never spans frames).
    pub(super) fn mtu_probe_len(&mut self, out: &mut dyn super::SegmentSink<F>) -> Option<usize> {
        let s = self.path.plpmtud.search?;
        if self.path.plpmtud.probe.is_some()
            || self.loss.recovery != Recovery::Open
            || !matches!(self.state, State::Established | State::CloseWait)
        {
            return None;
        }
        let mtu = if s.high <= s.low {
            self.plpmtud_done();
            return None;
        } else if s.first {
            s.high
        } else if s.high - s.low >= PROBE_THRESHOLD {
            s.low + (s.high - s.low) / 2
        } else if !s.last_tried {
            s.high
        } else {
            self.plpmtud_done();
            return None;
        };
        let mtu = usize::from(mtu);
        let len = mtu.saturating_sub(HEADERS + self.fixed_opts_len());
        if len <= self.snd.mss {
            self.plpmtud_done();
            return None;
        }
        let tail = self.snd.queue.tail();
        let unsent = if self.snd.nxt < tail {
            tail - self.snd.nxt
        } else {
            0
        };
        let (cwnd, used) = self.cwnd_budget();
        // An MPTCP subflow is handed only what its window takes (the rest
        // waits in the connection's queue and follows as it opens): the
        // probe's own bytes are enough; a lost probe is found by the
        // tail-loss probe or the RTO (`mtu_probe_on_retransmit`, `_on_rto`).
        let follow = match self.mptcp.tx.is_some() {
            true => 0,
            false => (DUP_THRESH + 1) * self.snd.mss,
        };
        if unsent < len + follow
            || self.usable_window() < len
            || cwnd.saturating_sub(used) < len + self.snd.mss
            // Gathering would reshape frames lent by the MPTCP connection,
            // which go back to it whole: the probe is a copy (frames from
            // `out`).
            || !self.mptcp_probe_maps_one(len)
            || self.mptcp_holds_lent() && !self.mptcp_probe_copy(len, &mut || out.alloc())
        {
            return None;
        }
        (self.snd.queue.gather(self.snd.nxt, len) >= len).then_some(len)
    }

    /// A probe of `len` bytes from `start` was sent.
    pub(super) fn mtu_probe_sent(&mut self, start: SeqNumber, len: usize) {
        let mtu = mtu16(len + HEADERS + self.fixed_opts_len());
        if let Some(s) = &mut self.path.plpmtud.search {
            if s.first {
                s.first = false;
            } else if s.high - s.low < PROBE_THRESHOLD {
                s.last_tried = true;
            }
        }
        self.path.plpmtud.probe = Some(MtuProbe {
            start,
            end: start + len,
            mtu,
        });
        self.stats.pmtu_probes += 1;
    }

    /// SND.UNA advanced: a probe acknowledged whole raises the MSS to its
    /// size (RFC 4821 §7.6.1).
    pub(super) fn mtu_probe_on_ack(&mut self) {
        let Some(p) = self.path.plpmtud.probe else {
            return;
        };
        if self.snd.una < p.end {
            return;
        }
        self.path.plpmtud.probe = None;
        if let Some(s) = &mut self.path.plpmtud.search {
            s.low = s.low.max(p.mtu);
        }
        let mss = usize::from(p.mtu) - HEADERS - self.fixed_opts_len();
        if mss > self.snd.mss {
            self.snd.mss = mss;
            self.loss.cc.set_mss(mss);
            self.stats.pmtu_raises += 1;
            self.path.mtu = (usize::from(p.mtu) < self.negotiated_mtu()).then_some(p.mtu.into());
        }
    }

    /// Loss detection is about to act: if the first hole is the probe,
    /// the probe failed (see `mtu_probe_failed`). Returns whether it was.
    pub(super) fn mtu_probe_lost(&mut self) -> bool {
        if !self
            .path
            .plpmtud
            .probe
            .is_some_and(|p| self.snd.una == p.start)
        {
            return false;
        }
        self.mtu_probe_failed();
        true
    }

    /// An RTO: a probe still in flight is taken as failed (the timeout
    /// itself is handled as usual).
    pub(super) fn mtu_probe_on_rto(&mut self) {
        if let Some(p) = self.path.plpmtud.probe.take() {
            self.stats.pmtu_probe_failures += 1;
            if let Some(s) = &mut self.path.plpmtud.search {
                s.high = s.high.min(p.mtu - 1);
            }
        }
    }

    /// Bytes from `start` are being retransmitted: if they are the
    /// probe's, it failed (whatever marked it lost), and an ACK of its
    /// range proves nothing about its size any more.
    pub(super) fn mtu_probe_on_retransmit(&mut self, start: SeqNumber) {
        if self
            .path
            .plpmtud
            .probe
            .is_some_and(|p| p.start <= start && start < p.end)
        {
            self.mtu_probe_failed();
        }
    }

    /// RFC 4821 §7.6.2: the probe was lost. The ceiling drops below it,
    /// and — loss of a probe being no congestion signal — it is resent at
    /// the current size, cut to size by `retransmit`, with cwnd kept (as
    /// `lower_path_mtu`, Linux's tcp_simple_retransmit); `recover` moves
    /// to SND.NXT so the duplicate ACKs its loss still causes do not start
    /// a fast recovery.
    fn mtu_probe_failed(&mut self) {
        let Some(p) = self.path.plpmtud.probe.take() else {
            return;
        };
        self.stats.pmtu_probe_failures += 1;
        if let Some(s) = &mut self.path.plpmtud.search {
            s.high = s.high.min(p.mtu - 1);
        }
        self.snd.sb.mark_lost_above(self.snd.mss);
        if self.loss.recovery == Recovery::Open {
            self.loss.recovery = Recovery::Loss {
                point: self.snd.nxt,
            };
            self.loss.recover = self.snd.nxt;
            self.loss.rexmit_head = true;
        }
    }
}
