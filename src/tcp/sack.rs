//! The sender's record of transmitted segments: the SACK scoreboard of
//! RFC 6675 §3 (SACKed, lost, retransmitted) kept per segment, the send
//! times used for RTT samples (Karn's rule, RFC 6298 §3), and RACK's
//! time-based loss detection (RFC 8985 §6).
//!
//! Every ACK's work is kept independent of the data in flight (as Linux
//! does): SACKed runs are skipped through a cache of wholly SACKed spans
//! ([`spans`]), IsLost walks down from the highest SACK and stops at the
//! first hole already lost, and NextSeg resumes from cursors below which
//! no candidate lies.

#[cfg(test)]
mod reference;
mod spans;

use super::SeqNumber;
use crate::time::Instant;
use core::time::Duration;
use spans::Spans;
use std::collections::VecDeque;

/// RFC 6675 §2: DupThresh.
pub(crate) const DUP_THRESH: usize = 3;
/// Largest reordering degree (segments) DupThresh adapts to (as Linux's
/// tcp_max_reordering).
const MAX_REORDERING: usize = 300;

/// One transmitted segment `[start, end)`; the last sequence number is a FIN
/// when `fin`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sent {
    pub start: SeqNumber,
    pub end: SeqNumber,
    pub fin: bool,
    /// Time of the latest (re)transmission.
    pub sent_at: Instant,
    pub sacked: bool,
    /// Deemed lost (RFC 6675 IsLost, a NewReno hole, or an RTO).
    pub lost: bool,
    /// Retransmitted since it was marked lost (counts in `pipe` again).
    pub retrans: bool,
    /// Ever retransmitted: no RTT sample from it (Karn).
    pub ever_retrans: bool,
}

impl Sent {
    pub fn len(&self) -> usize {
        self.end - self.start
    }
}

/// What a cumulative ACK removed from the scoreboard.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Acked {
    /// Time of the oldest fully acknowledged segment never retransmitted.
    pub rtt_sent_at: Option<Instant>,
    /// Some acknowledged segment had been retransmitted.
    pub any_retrans: bool,
    /// Segments fully acknowledged.
    pub segs: usize,
    /// Latest (re)transmission time among them.
    pub latest_sent: Option<Instant>,
    /// Largest payload among them (path MTU evidence).
    pub largest: usize,
}

impl Acked {
    /// What `count` makes of segment `s` alone.
    #[inline]
    fn one(s: &Sent) -> Acked {
        Acked {
            rtt_sent_at: (!s.ever_retrans).then_some(s.sent_at),
            any_retrans: s.ever_retrans,
            segs: 1,
            latest_sent: Some(s.sent_at),
            largest: s.len() - usize::from(s.fin),
        }
    }

    /// Segment `s` is fully acknowledged: count it.
    #[inline]
    fn count(&mut self, s: &Sent) {
        self.segs += 1;
        self.largest = self.largest.max(s.len() - usize::from(s.fin));
        self.latest_sent = Some(self.latest_sent.map_or(s.sent_at, |t| t.max(s.sent_at)));
        if s.ever_retrans {
            self.any_retrans = true;
        } else if self.rtt_sent_at.is_none() && !self.any_retrans {
            self.rtt_sent_at = Some(s.sent_at);
        }
    }
}

/// RFC 8985 §6.1: the most recently sent segment known to be delivered.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub(crate) struct Rack {
    /// RACK.xmit_ts (None before the first delivery).
    pub xmit: Option<Instant>,
    /// RACK.end_seq.
    pub end: SeqNumber,
    /// RACK.rtt in µs (the common ACK stores it without a `Duration`).
    pub rtt_us: u64,
    /// RACK.fack: the highest SACKed or ACKed sequence.
    pub fack: SeqNumber,
    /// RACK.reordering_seen.
    pub reordering_seen: bool,
    /// Observed reordering degree in segments (RFC 4653 spirit): the
    /// DupThresh in use, never below 3.
    pub reordering: usize,
    /// TSecr of the ACK being processed (0: none), set before its
    /// deliveries are noted (`Connection::on_ack`, `on_predicted`).
    pub ack_ecr: u32,
}

impl Rack {
    /// RACK.rtt.
    pub fn rtt(&self) -> Duration {
        Duration::from_micros(self.rtt_us)
    }

    /// RFC 8985 §6.2 steps 2-3: segment `s` was delivered (ACKed or SACKed).
    #[inline]
    fn note(&mut self, s: &Sent, now: Instant, min_rtt: Option<Duration>) {
        if !s.ever_retrans && s.end < self.fack {
            // Delivered below newer data without a retransmission: the
            // network reordered by this many segments (RFC 6675 §2 allows
            // DupThresh to adapt, e.g. RFC 4653).
            self.reordering_seen = true;
            let dist = (self.fack - s.end) / s.len().max(1) + 1;
            self.reordering = self.reordering.max(dist.min(MAX_REORDERING));
        }
        if s.end > self.fack || self.xmit.is_none() {
            self.fack = s.end;
        }
        let rtt_us = now.micros().saturating_sub(s.sent_at.micros());
        // RFC 8985 §6.2 step 2: the ACK of a retransmitted segment may be
        // for its original transmission: ignored when the RTT since the
        // retransmission is below min_RTT, or when the ACK's TSecr is
        // earlier than the retransmission's TSval.
        if s.ever_retrans
            && (min_rtt.is_some_and(|m| Duration::from_micros(rtt_us) < m)
                || crate::tcp::rtt::echo_before(self.ack_ecr, s.sent_at))
        {
            return;
        }
        let newer = match self.xmit {
            None => true,
            Some(x) => sent_after(s.sent_at, s.end, x, self.end),
        };
        if newer {
            self.xmit = Some(s.sent_at);
            self.end = s.end;
            self.rtt_us = rtt_us;
        }
    }
}

/// One transmission (first or retransmission) of `[start, end)` at `at`.
#[derive(Debug, Clone, Copy)]
struct Xmit {
    at: Instant,
    start: SeqNumber,
    end: SeqNumber,
}

/// Whether (t1, e1) was sent after (t2, e2) (RFC 8985 §6.2 step 2).
fn sent_after(t1: Instant, e1: SeqNumber, t2: Instant, e2: SeqNumber) -> bool {
    t1 > t2 || (t1 == t2 && e1 > e2)
}

/// Whether transmission `e` came before RACK.xmit_ts `x` (or at it, below
/// RACK.end_seq `end`): only such entries may hold segments RACK marks.
fn sent_before_rack(e: &Xmit, x: Instant, end: SeqNumber) -> bool {
    e.at < x || (e.at == x && e.start < end)
}

/// Transmitted, not yet cumulatively acknowledged segments, in order.
#[derive(Debug, Default, Clone)]
pub(crate) struct Scoreboard {
    pub rack: Rack,
    segs: VecDeque<Sent>,
    sacked_bytes: usize,
    /// Lost and not SACKed.
    lost_bytes: usize,
    /// Retransmitted, not SACKed.
    retrans_bytes: usize,
    /// Lost, not yet retransmitted, not SACKed (NextSeg rule 1 candidates).
    pending_bytes: usize,
    outstanding: usize,
    /// End of the highest SACKed segment.
    high: Option<SeqNumber>,
    /// Wholly SACKed ranges, to skip.
    spans: Spans,
    /// No NextSeg rule 1 candidate (lost, not retransmitted, not SACKed)
    /// starts below this (None: scan from SND.UNA).
    floor_lost: Option<SeqNumber>,
    /// No rule 3 candidate (not SACKed, lost or retransmitted) starts below
    /// this.
    floor_rule3: Option<SeqNumber>,
    /// Transmissions ordered by (time, start) (Linux's `tsorted_sent_queue`):
    /// RACK walks only those sent before the newest delivered segment. An entry
    /// is dropped once none of its segments can be marked by RACK (ACKed,
    /// SACKed, lost and awaiting retransmission, or sent again since).
    xmits: VecDeque<Xmit>,
    /// Whether `xmits` is kept. Until the first retransmission or RACK walk
    /// since the scoreboard was last empty, the segments themselves are the
    /// log (first transmissions only, so in (time, start) order): nothing
    /// is logged per segment on a path without loss.
    logged: bool,
}

impl Scoreboard {
    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    pub fn get(&self, i: usize) -> Option<&Sent> {
        self.segs.get(i)
    }

    #[cfg(test)]
    pub fn sacked_bytes(&self) -> usize {
        self.sacked_bytes
    }

    /// RFC 6675 §4 SetPipe: bytes not SACKed and not lost, plus bytes
    /// retransmitted (and not SACKed since).
    pub fn pipe(&self) -> usize {
        self.outstanding - self.sacked_bytes - self.lost_bytes + self.retrans_bytes
    }

    fn account(&mut self, s: &Sent, sign: bool) {
        let n = s.len();
        let f = |v: &mut usize| {
            if sign {
                *v += n
            } else {
                *v -= n
            }
        };
        f(&mut self.outstanding);
        if s.sacked {
            f(&mut self.sacked_bytes);
        } else {
            if s.lost {
                f(&mut self.lost_bytes);
            }
            if s.retrans {
                f(&mut self.retrans_bytes);
            } else if s.lost {
                f(&mut self.pending_bytes);
            }
        }
        if sign && !s.sacked && !s.retrans {
            // A NextSeg candidate appeared: lower its cursor.
            let floor = if s.lost {
                &mut self.floor_lost
            } else {
                &mut self.floor_rule3
            };
            if floor.is_some_and(|x| s.start < x) {
                *floor = Some(s.start);
            }
        }
    }

    /// Index of the first segment starting at or above `seq`.
    fn index_of(&self, seq: SeqNumber) -> usize {
        self.segs.partition_point(|s| s.start < seq)
    }

    /// The index after the SACKed segment `i` and the SACKed span it lies in.
    fn skip_sacked(&self, i: usize) -> usize {
        match self
            .segs
            .get(i)
            .and_then(|s| self.spans.find(s.start, s.end))
        {
            Some((_, b)) => self.index_of(b).max(i + 1),
            None => i + 1,
        }
    }

    fn update(&mut self, i: usize, f: impl FnOnce(&mut Sent)) {
        let Some(mut s) = self.segs.get(i).copied() else {
            return;
        };
        self.account(&s, false);
        f(&mut s);
        self.account(&s, true);
        self.segs[i] = s;
    }

    /// Record a first transmission.
    pub fn push(&mut self, start: SeqNumber, end: SeqNumber, fin: bool, now: Instant) {
        let s = Sent {
            start,
            end,
            fin,
            sent_at: now,
            sacked: false,
            lost: false,
            retrans: false,
            ever_retrans: false,
        };
        self.account(&s, true);
        self.segs.push_back(s);
        if self.logged {
            self.log_xmit(now, start, end);
        }
    }

    /// Start keeping `xmits` (see `logged`).
    fn keep_log(&mut self) {
        if !self.logged {
            self.rebuild_xmits();
        }
    }

    /// Log a transmission, in (time, start) order: usually at the back; a
    /// retransmission sent right after higher new data in the same instant
    /// goes a few entries before it.
    fn log_xmit(&mut self, at: Instant, start: SeqNumber, end: SeqNumber) {
        let x = Xmit { at, start, end };
        if self
            .xmits
            .back()
            .is_none_or(|b| b.at < at || (b.at == at && b.start <= start))
        {
            self.xmits.push_back(x);
        } else {
            let i = self
                .xmits
                .partition_point(|e| e.at < at || (e.at == at && e.start <= start));
            self.xmits.insert(i, x);
        }
    }

    /// The transmission log from the scoreboard itself (after loss marks
    /// were undone: entries dropped for lost segments count again).
    fn rebuild_xmits(&mut self) {
        self.logged = true;
        self.xmits.clear();
        for s in &self.segs {
            self.xmits.push_back(Xmit {
                at: s.sent_at,
                start: s.start,
                end: s.end,
            });
        }
        self.xmits
            .make_contiguous()
            .sort_unstable_by(|a, b| a.at.cmp(&b.at).then(a.start.diff(b.start).cmp(&0)));
    }

    /// Split segment `i` so that a new segment starts at `at`.
    pub fn split(&mut self, i: usize, at: SeqNumber) {
        let Some(s) = self.segs.get(i).copied() else {
            return;
        };
        if at <= s.start || at >= s.end {
            return;
        }
        let mut a = s;
        a.end = at;
        a.fin = false;
        let mut b = s;
        b.start = at;
        self.segs[i] = a;
        self.segs.insert(i + 1, b);
    }

    /// Cumulative ACK up to `ack`. The ACK of the one segment in flight on
    /// a clean board (request/response, the last ACK of every flight) is
    /// decided and done inline at the caller; the rest out of line.
    #[inline(always)]
    pub fn ack(&mut self, ack: SeqNumber, now: Instant, min_rtt: Option<Duration>) -> Acked {
        if self.segs.len() == 1 && self.is_clean() {
            if let Some(&s) = self.segs.front().filter(|s| s.end <= ack) {
                return self.ack_only_clean(s, ack, now, min_rtt);
            }
        }
        self.ack_out_of_line(ack, now, min_rtt)
    }

    /// [`Self::ack`] but for the one clean segment.
    #[inline(never)]
    fn ack_out_of_line(
        &mut self,
        ack: SeqNumber,
        now: Instant,
        min_rtt: Option<Duration>,
    ) -> Acked {
        if self.is_clean() {
            if self.segs.back().is_some_and(|b| b.end <= ack) {
                return self.ack_all_clean(ack, now, min_rtt);
            }
            return self.ack_clean(ack, now, min_rtt);
        }
        self.ack_general(ack, now, min_rtt)
    }

    /// [`Scoreboard::ack`] of every segment on a clean board (the ACK of
    /// all in flight on a lossless path): each is delivered (RFC 8985
    /// §6.2 steps 2-3) and counted as `ack_clean` would, then the board is
    /// emptied at once instead of segment by segment (nothing but
    /// `outstanding` counts a clean segment).
    fn ack_all_clean(&mut self, ack: SeqNumber, now: Instant, min_rtt: Option<Duration>) -> Acked {
        let mut r = Acked::default();
        let (a, b) = self.segs.as_slices();
        for s in a.iter().chain(b) {
            self.rack.note(s, now, min_rtt);
            r.count(s);
        }
        self.emptied(ack);
        r
    }

    /// [`Self::ack_all_clean`] of the one segment `s` in flight (the
    /// request/response case): no loop, inline into the ACK's path.
    #[inline(always)]
    fn ack_only_clean(
        &mut self,
        s: Sent,
        ack: SeqNumber,
        now: Instant,
        min_rtt: Option<Duration>,
    ) -> Acked {
        self.rack.note(&s, now, min_rtt);
        self.emptied(ack);
        Acked::one(&s)
    }

    /// A clean board's every segment acknowledged by `ack`: emptied at once.
    #[inline(always)]
    fn emptied(&mut self, ack: SeqNumber) {
        self.segs.clear();
        self.outstanding = 0;
        for floor in [&mut self.floor_lost, &mut self.floor_rule3] {
            if floor.is_some_and(|x| x < ack) {
                *floor = Some(ack);
            }
        }
    }

    fn ack_general(&mut self, ack: SeqNumber, now: Instant, min_rtt: Option<Duration>) -> Acked {
        let mut r = Acked::default();
        while let Some(s) = self.segs.front().copied() {
            if s.end <= ack {
                self.account(&s, false);
                self.segs.pop_front();
                if !s.sacked {
                    self.rack_note(&s, now, min_rtt);
                }
                r.count(&s);
            } else {
                if s.start < ack {
                    self.update(0, |s| s.start = ack);
                }
                break;
            }
        }
        // Keep the marks inside the window (sequence numbers wrap).
        while self.xmits.front().is_some_and(|x| x.end <= ack) {
            self.xmits.pop_front();
        }
        self.spans.ack(ack);
        if self.high.is_some_and(|h| h <= ack) {
            self.high = None;
        }
        for floor in [&mut self.floor_lost, &mut self.floor_rule3] {
            if floor.is_some_and(|x| x < ack) {
                *floor = Some(ack);
            }
        }
        if self.segs.is_empty() {
            // Everything acknowledged: the log is implied again.
            self.xmits.clear();
            self.logged = false;
        }
        r
    }

    /// Nothing SACKed, lost or retransmitted, no transmission log and no
    /// SACK marks (`high`, `spans`): every ACK of a lossless path. Then a
    /// segment only counts as outstanding.
    #[inline(always)]
    fn is_clean(&self) -> bool {
        self.sacked_bytes == 0
            && self.lost_bytes == 0
            && self.retrans_bytes == 0
            && !self.logged
            && self.high.is_none()
            && self.spans.is_empty()
    }

    /// [`Scoreboard::ack`] in the clean state ([`Scoreboard::is_clean`]):
    /// the same result without the per-state bookkeeping.
    fn ack_clean(&mut self, ack: SeqNumber, now: Instant, min_rtt: Option<Duration>) -> Acked {
        let mut r = Acked::default();
        while let Some(s) = self.segs.front().copied() {
            if s.end > ack {
                if s.start < ack {
                    // As `update` would: the shortened segment is a rule 3
                    // candidate from `ack` on.
                    self.outstanding -= ack - s.start;
                    if let Some(f) = self.segs.front_mut() {
                        f.start = ack;
                    }
                    if self.floor_rule3.is_some_and(|x| ack < x) {
                        self.floor_rule3 = Some(ack);
                    }
                }
                break;
            }
            self.outstanding -= s.len();
            self.segs.pop_front();
            self.rack_note(&s, now, min_rtt);
            r.count(&s);
        }
        for floor in [&mut self.floor_lost, &mut self.floor_rule3] {
            if floor.is_some_and(|x| x < ack) {
                *floor = Some(ack);
            }
        }
        r
    }

    /// Mark the segments wholly inside `[left, right)` SACKed (RFC 2018
    /// §4). Partly covered segments stay unSACKed (at worst a needless
    /// retransmission): splitting them would let a hostile receiver blow
    /// the scoreboard up into one entry per byte. Returns bytes newly
    /// SACKed.
    pub fn sack(
        &mut self,
        left: SeqNumber,
        right: SeqNumber,
        now: Instant,
        min_rtt: Option<Duration>,
    ) -> usize {
        let mut i = self.segs.partition_point(|s| s.end <= left);
        let mut newly = 0;
        while let Some(s) = self.segs.get(i).copied() {
            if s.start >= right {
                break;
            }
            if s.sacked {
                // Already SACKed: nothing to do for it or its span.
                i = self.skip_sacked(i);
                continue;
            }
            if s.start < left || s.end > right {
                i += 1;
                continue;
            }
            newly += s.len();
            self.update(i, |s| s.sacked = true);
            self.rack_note(&s, now, min_rtt);
            if self.high.is_none_or(|h| s.end > h) {
                self.high = Some(s.end);
            }
            i += 1;
        }
        // Every segment wholly inside the block is SACKed now.
        let first = self.index_of(left);
        let past = self.segs.partition_point(|s| s.end <= right);
        if first < past {
            if let (Some(a), Some(b)) = (self.segs.get(first), self.segs.get(past - 1)) {
                self.spans.insert(a.start, b.end);
            }
        }
        newly
    }

    /// The DupThresh in use: 3, raised by observed reordering.
    pub fn dupthresh(&self) -> usize {
        self.rack.reordering.max(DUP_THRESH)
    }

    /// Highest SACKed sequence number (end of the highest SACKed segment).
    pub fn high_sacked(&self) -> Option<SeqNumber> {
        self.high
    }

    /// RFC 6675 §4 IsLost applied to every segment: lost when DupThresh
    /// SACKed segments, or more than (DupThresh - 1)·SMSS SACKed bytes, lie
    /// above it. Returns whether the first segment is lost.
    ///
    /// The walk starts at the highest SACKed segment (nothing above it has
    /// SACKs above), jumps over SACKed spans, and stops at the first hole
    /// that is already lost (everything below was marked before), so its
    /// cost is the holes newly marked, not the window.
    pub fn mark_lost(&mut self, smss: usize) -> bool {
        let thresh = self.dupthresh();
        if let Some(high) = self.high {
            let mut i = self.segs.partition_point(|s| s.end < high);
            let mut segs_above = 0;
            let mut bytes_above = 0;
            while let Some(s) = self.segs.get(i).copied() {
                if s.sacked {
                    // The SACKed span ending here (if known), in one step.
                    let lo = self
                        .spans
                        .find(s.start, s.end)
                        .map_or(i, |(a, _)| self.index_of(a).min(i));
                    let start = self.segs.get(lo).map_or(s.start, |f| f.start);
                    segs_above += i - lo + 1;
                    bytes_above += s.end - start;
                    let Some(next) = lo.checked_sub(1) else { break };
                    i = next;
                    continue;
                }
                if segs_above >= thresh || bytes_above > (thresh - 1) * smss {
                    if !s.lost {
                        self.update(i, |s| s.lost = true);
                    } else {
                        // Everything below is already marked.
                        break;
                    }
                }
                let Some(next) = i.checked_sub(1) else { break };
                i = next;
            }
        }
        self.segs.front().is_some_and(|s| s.lost && !s.sacked)
    }

    /// Mark the first segment lost (NewReno: the hole at SND.UNA), to be
    /// retransmitted (again, if an earlier retransmission was lost too).
    pub fn mark_head_lost(&mut self) {
        if self.segs.front().is_some_and(|s| !s.sacked) {
            self.update(0, |s| {
                s.lost = true;
                s.retrans = false;
            });
        }
    }

    /// RFC 6675 §5.1 / RFC 2018 §8: after an RTO forget SACK information and
    /// consider everything outstanding lost.
    pub fn mark_all_lost(&mut self) {
        for i in 0..self.segs.len() {
            self.update(i, |s| {
                s.sacked = false;
                s.lost = true;
                s.retrans = false;
            });
        }
        self.high = None;
        self.spans.clear();
    }

    /// RFC 1191 §6.4 (Linux tcp_simple_retransmit): the path MTU fell, so
    /// every segment in flight larger than `mss` was dropped on the way:
    /// mark those not SACKed lost (to be resent at the new size). Returns
    /// how many were marked.
    pub fn mark_lost_above(&mut self, mss: usize) -> usize {
        let mut n = 0;
        for i in 0..self.segs.len() {
            let s = self.segs[i];
            let data = s.len() - usize::from(s.fin);
            if !s.sacked && (!s.lost || s.retrans) && data > mss {
                self.update(i, |s| {
                    s.lost = true;
                    s.retrans = false;
                });
                n += 1;
            }
        }
        n
    }

    /// Forget loss marks (after a spurious RTO).
    pub fn unmark_lost(&mut self) {
        for i in 0..self.segs.len() {
            self.update(i, |s| {
                s.lost = false;
                s.retrans = false;
            });
        }
        self.rebuild_xmits();
    }

    /// Whether some segment is marked lost and not yet retransmitted
    /// (`next_lost` would look): the test alone.
    #[inline]
    pub fn lost_pending(&self) -> bool {
        self.pending_bytes != 0
    }

    /// RFC 6675 §4 NextSeg rule 1: the first lost segment not yet
    /// retransmitted.
    #[inline]
    pub fn next_lost(&mut self) -> Option<usize> {
        // Inline: nothing is pending on every ACK and transmit of a
        // lossless path, and the call would cost more than the answer.
        if self.pending_bytes == 0 {
            return None;
        }
        self.next_lost_scan()
    }

    fn next_lost_scan(&mut self) -> Option<usize> {
        let mut i = self.floor_lost.map_or(0, |x| self.index_of(x));
        while let Some(s) = self.segs.get(i) {
            if s.sacked {
                i = self.skip_sacked(i);
            } else if s.lost && !s.retrans {
                self.floor_lost = Some(s.start);
                return Some(i);
            } else {
                i += 1;
            }
        }
        self.floor_lost = self.segs.back().map(|s| s.end);
        None
    }

    /// RFC 6675 NextSeg rule 3: the first unSACKed segment below the highest
    /// SACKed one, neither lost nor retransmitted.
    pub fn next_rule3(&mut self) -> Option<usize> {
        let high = self.high?;
        let mut i = self.floor_rule3.map_or(0, |x| self.index_of(x));
        while let Some(s) = self.segs.get(i) {
            if s.end > high {
                // None above the highest SACK qualifies (yet).
                self.floor_rule3 = Some(s.start);
                return None;
            }
            if s.sacked {
                i = self.skip_sacked(i);
            } else if !s.retrans && !s.lost {
                self.floor_rule3 = Some(s.start);
                return Some(i);
            } else {
                i += 1;
            }
        }
        self.floor_rule3 = self.segs.back().map(|s| s.end);
        None
    }

    /// Segment `i` was (re)transmitted at `now`.
    pub fn on_retransmit(&mut self, i: usize, now: Instant) {
        // The first transmissions are logged before this one goes after
        // them.
        self.keep_log();
        self.update(i, |s| {
            s.retrans = true;
            s.ever_retrans = true;
            s.sent_at = now;
        });
        if let Some(s) = self.segs.get(i).copied() {
            self.log_xmit(now, s.start, s.end);
        }
    }

    /// RFC 8985 §6.2 steps 2-3: a segment was delivered (ACKed or SACKed).
    fn rack_note(&mut self, s: &Sent, now: Instant, min_rtt: Option<Duration>) {
        self.rack.note(s, now, min_rtt);
    }

    /// Whether `rack_detect` has anything to examine: some logged
    /// transmission precedes the newest delivered one. When not, it would
    /// return `(false, None)` whatever the reordering window.
    pub fn rack_has_candidates(&self) -> bool {
        let first = match self.logged {
            true => self.xmits.front().copied(),
            // The oldest transmission is the first segment's.
            false => self.segs.front().map(|s| Xmit {
                at: s.sent_at,
                start: s.start,
                end: s.end,
            }),
        };
        match (self.rack.xmit, first) {
            (Some(x), Some(e)) => sent_before_rack(&e, x, self.rack.end),
            _ => false,
        }
    }

    /// RFC 8985 §6.2 step 5: mark lost every outstanding segment sent before
    /// the newest delivered one and older than RACK.rtt + `reo_wnd`.
    /// Returns whether any was newly marked and the earliest deadline of
    /// the others (the reordering timer). Segments above RACK.end_seq are
    /// not examined (they were sent later, except rare retransmissions,
    /// which a later delivery catches).
    pub fn rack_detect(&mut self, now: Instant, reo_wnd: Duration) -> (bool, Option<Instant>) {
        let Some(x) = self.rack.xmit else {
            return (false, None);
        };
        self.keep_log();
        let (end, rtt) = (self.rack.end, self.rack.rtt());
        let mut newly = false;
        let mut timer: Option<Instant> = None;
        // Only transmissions before RACK.xmit_ts, or at it below
        // RACK.end_seq, hold segments sent before the newest delivered one;
        // entries left with nothing to mark are dropped (live ones are
        // packed towards the end of the walked prefix).
        let before = |e: &Xmit| sent_before_rack(e, x, end);
        // Usually nothing is (cumulative ACKs pop the log from the front).
        let n = if self.xmits.front().is_some_and(before) {
            self.xmits.partition_point(before)
        } else {
            0
        };
        let mut w = n;
        for r in (0..n).rev() {
            let Some(e) = self.xmits.get(r).copied() else {
                break;
            };
            let mut live = false;
            let mut i = self.index_of(e.start);
            while let Some(s) = self.segs.get(i).copied() {
                if s.start >= e.end {
                    break;
                }
                i += 1;
                // Sent again since (a later entry has it), SACKed, or lost
                // and awaiting its retransmission.
                if s.sent_at != e.at || s.sacked || (s.lost && !s.retrans) {
                    continue;
                }
                // Segments above RACK.end_seq are not examined (they were
                // sent later, except rare retransmissions, which a later
                // delivery catches).
                if s.start >= end || !sent_after(x, end, s.sent_at, s.end) {
                    live = true;
                    continue;
                }
                let deadline = s.sent_at + rtt + reo_wnd;
                if deadline <= now {
                    self.update(i - 1, |s| {
                        s.lost = true;
                        s.retrans = false;
                    });
                    newly = true;
                } else {
                    timer = Some(timer.map_or(deadline, |t| t.min(deadline)));
                    live = true;
                }
            }
            if live {
                w -= 1;
                self.xmits[w] = e;
            }
        }
        for _ in 0..w {
            self.xmits.pop_front();
        }
        (newly, timer)
    }

    /// The last segment (TLP retransmits it).
    pub fn last(&self) -> Option<usize> {
        self.segs.len().checked_sub(1)
    }

    pub fn clear(&mut self) {
        *self = Scoreboard::default();
    }
}

#[cfg(test)]
mod tests;
