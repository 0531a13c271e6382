//! The linear scoreboard the fast one replaced, kept as the reference its
//! answers are checked against (property test in `super::tests`).

use super::{sent_after, Acked, Rack, Sent, DUP_THRESH, MAX_REORDERING};
use crate::tcp::SeqNumber;
use crate::time::Instant;
use core::time::Duration;
use std::collections::VecDeque;

/// Transmitted, not yet cumulatively acknowledged segments, in order.
#[derive(Debug, Default)]
pub(crate) struct RefScoreboard {
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
}

impl RefScoreboard {
    pub fn len(&self) -> usize {
        self.segs.len()
    }

    pub fn get(&self, i: usize) -> Option<&Sent> {
        self.segs.get(i)
    }

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

    /// Cumulative ACK up to `ack`.
    pub fn ack(&mut self, ack: SeqNumber, now: Instant, min_rtt: Option<Duration>) -> Acked {
        let mut r = Acked::default();
        while let Some(s) = self.segs.front().copied() {
            if s.end <= ack {
                self.account(&s, false);
                self.segs.pop_front();
                if !s.sacked {
                    self.rack_note(&s, now, min_rtt);
                }
                r.segs += 1;
                r.largest = r.largest.max(s.len() - usize::from(s.fin));
                r.latest_sent = Some(r.latest_sent.map_or(s.sent_at, |t| t.max(s.sent_at)));
                if s.ever_retrans {
                    r.any_retrans = true;
                } else if r.rtt_sent_at.is_none() && !r.any_retrans {
                    r.rtt_sent_at = Some(s.sent_at);
                }
            } else {
                if s.start < ack {
                    self.update(0, |s| s.start = ack);
                }
                break;
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
            if s.start < left || s.end > right {
                i += 1;
                continue;
            }
            if !s.sacked {
                newly += s.len();
                self.update(i, |s| s.sacked = true);
                self.rack_note(&s, now, min_rtt);
            }
            i += 1;
        }
        newly
    }

    /// The DupThresh in use: 3, raised by observed reordering.
    pub fn dupthresh(&self) -> usize {
        self.rack.reordering.max(DUP_THRESH)
    }

    /// Highest SACKed sequence number (end of the highest SACKed segment).
    pub fn high_sacked(&self) -> Option<SeqNumber> {
        self.segs.iter().rev().find(|s| s.sacked).map(|s| s.end)
    }

    /// RFC 6675 §4 IsLost applied to every segment: lost when DupThresh
    /// SACKed segments, or more than (DupThresh - 1)·SMSS SACKed bytes, lie
    /// above it. Returns whether the first segment is lost.
    pub fn mark_lost(&mut self, smss: usize) -> bool {
        let mut segs_above = 0;
        let mut bytes_above = 0;
        for i in (0..self.segs.len()).rev() {
            let s = self.segs[i];
            if s.sacked {
                segs_above += 1;
                bytes_above += s.len();
                continue;
            }
            let thresh = self.dupthresh();
            if segs_above >= thresh || bytes_above > (thresh - 1) * smss {
                if !s.lost {
                    self.update(i, |s| s.lost = true);
                } else {
                    // Everything below is already marked.
                    break;
                }
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
    }

    /// Forget loss marks (after a spurious RTO).
    pub fn unmark_lost(&mut self) {
        for i in 0..self.segs.len() {
            self.update(i, |s| {
                s.lost = false;
                s.retrans = false;
            });
        }
    }

    /// RFC 6675 §4 NextSeg rule 1: the first lost segment not yet
    /// retransmitted.
    pub fn next_lost(&self) -> Option<usize> {
        if self.pending_bytes == 0 {
            return None;
        }
        self.segs
            .iter()
            .position(|s| s.lost && !s.retrans && !s.sacked)
    }

    /// RFC 6675 NextSeg rule 3: the first unSACKed segment below the highest
    /// SACKed one, neither lost nor retransmitted.
    pub fn next_rule3(&self) -> Option<usize> {
        let high = self.high_sacked()?;
        self.segs
            .iter()
            .position(|s| s.end <= high && !s.sacked && !s.retrans && !s.lost)
    }

    /// Segment `i` was (re)transmitted at `now`.
    pub fn on_retransmit(&mut self, i: usize, now: Instant) {
        self.update(i, |s| {
            s.retrans = true;
            s.ever_retrans = true;
            s.sent_at = now;
        });
    }

    /// RFC 8985 §6.2 steps 2-3: a segment was delivered (ACKed or SACKed).
    fn rack_note(&mut self, s: &Sent, now: Instant, min_rtt: Option<Duration>) {
        if !s.ever_retrans && s.end < self.rack.fack {
            // Delivered below newer data without a retransmission: the
            // network reordered by this many segments (RFC 6675 §2 allows
            // DupThresh to adapt, e.g. RFC 4653).
            self.rack.reordering_seen = true;
            let dist = (self.rack.fack - s.end) / s.len().max(1) + 1;
            self.rack.reordering = self.rack.reordering.max(dist.min(MAX_REORDERING));
        }
        if s.end > self.rack.fack || self.rack.xmit.is_none() {
            self.rack.fack = s.end;
        }
        let rtt = now.saturating_since(s.sent_at);
        // The ACK may be for the original transmission: ambiguous.
        if s.ever_retrans && min_rtt.is_some_and(|m| rtt < m) {
            return;
        }
        let newer = match self.rack.xmit {
            None => true,
            Some(x) => sent_after(s.sent_at, s.end, x, self.rack.end),
        };
        if newer {
            self.rack.xmit = Some(s.sent_at);
            self.rack.end = s.end;
            self.rack.rtt_us = rtt.as_micros() as u64;
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
        let (end, rtt) = (self.rack.end, self.rack.rtt());
        let mut newly = false;
        let mut timer: Option<Instant> = None;
        for i in 0..self.segs.len() {
            let s = self.segs[i];
            if s.start >= end {
                break;
            }
            if s.sacked || (s.lost && !s.retrans) || !sent_after(x, end, s.sent_at, s.end) {
                continue;
            }
            let deadline = s.sent_at + rtt + reo_wnd;
            if deadline <= now {
                self.update(i, |s| {
                    s.lost = true;
                    s.retrans = false;
                });
                newly = true;
            } else {
                timer = Some(timer.map_or(deadline, |t| t.min(deadline)));
            }
        }
        (newly, timer)
    }

    /// The last segment (TLP retransmits it).
    pub fn last(&self) -> Option<usize> {
        self.segs.len().checked_sub(1)
    }
}
