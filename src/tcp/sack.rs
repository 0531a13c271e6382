//! The sender's record of transmitted segments: the SACK scoreboard of
//! RFC 6675 §3 (SACKed, lost, retransmitted) kept per segment, plus the send
//! times used for RTT samples (Karn's rule, RFC 6298 §3).

use super::SeqNumber;
use crate::time::Instant;
use std::collections::VecDeque;

/// RFC 6675 §2: DupThresh.
pub(crate) const DUP_THRESH: usize = 3;

/// One transmitted segment `[start, end)`; the last sequence number is a FIN
/// when `fin`.
#[derive(Debug, Clone, Copy)]
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
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Acked {
    /// Time of the oldest fully acknowledged segment never retransmitted.
    pub rtt_sent_at: Option<Instant>,
    /// Some acknowledged segment had been retransmitted.
    pub any_retrans: bool,
    /// Segments fully acknowledged.
    pub segs: usize,
}

/// Transmitted, not yet cumulatively acknowledged segments, in order.
#[derive(Debug, Default)]
pub(crate) struct Scoreboard {
    segs: VecDeque<Sent>,
    sacked_bytes: usize,
    /// Lost and not SACKed.
    lost_bytes: usize,
    /// Retransmitted, not SACKed.
    retrans_bytes: usize,
    outstanding: usize,
}

impl Scoreboard {
    pub fn is_empty(&self) -> bool {
        self.segs.is_empty()
    }

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
    pub fn ack(&mut self, ack: SeqNumber) -> Acked {
        let mut r = Acked::default();
        while let Some(s) = self.segs.front().copied() {
            if s.end <= ack {
                self.account(&s, false);
                self.segs.pop_front();
                r.segs += 1;
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

    /// Mark `[left, right)` SACKed (RFC 2018 §4). Returns bytes newly SACKed.
    pub fn sack(&mut self, left: SeqNumber, right: SeqNumber) -> usize {
        let mut i = self.segs.partition_point(|s| s.end <= left);
        let mut newly = 0;
        while let Some(s) = self.segs.get(i).copied() {
            if s.start >= right {
                break;
            }
            if s.start < left {
                self.split(i, left);
                i += 1;
                continue;
            }
            if s.end > right {
                self.split(i, right);
                continue;
            }
            if !s.sacked {
                newly += s.len();
                self.update(i, |s| s.sacked = true);
            }
            i += 1;
        }
        newly
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
            if segs_above >= DUP_THRESH || bytes_above > (DUP_THRESH - 1) * smss {
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

    /// Mark the first segment lost (NewReno: the hole at SND.UNA).
    pub fn mark_head_lost(&mut self) {
        if self.segs.front().is_some_and(|s| !s.sacked && !s.lost) {
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

    /// RFC 6675 §4 NextSeg rule 1: the first lost segment not yet
    /// retransmitted.
    pub fn next_lost(&self) -> Option<usize> {
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

    /// Send time of the first outstanding segment.
    pub fn first_sent_at(&self) -> Option<Instant> {
        self.segs.front().map(|s| s.sent_at)
    }

    pub fn clear(&mut self) {
        *self = Scoreboard::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb(n: u32) -> Scoreboard {
        let mut b = Scoreboard::default();
        for i in 0..n {
            b.push(SeqNumber(i * 100), SeqNumber(i * 100 + 100), false, Instant(i as u64));
        }
        b
    }

    #[test]
    fn pipe_and_islost() {
        let mut b = sb(10);
        assert_eq!(b.pipe(), 1000);
        // SACK segments 3 and 5..7.
        assert_eq!(b.sack(SeqNumber(300), SeqNumber(400)), 100);
        assert_eq!(b.sack(SeqNumber(500), SeqNumber(700)), 200);
        assert_eq!(b.pipe(), 700);
        // Three segments SACKed above 0,1,2 -> lost; 4 has two above.
        assert!(b.mark_lost(100));
        assert_eq!(b.pipe(), 400);
        assert_eq!(b.next_lost(), Some(0));
        b.on_retransmit(0, Instant(50));
        assert_eq!(b.pipe(), 500);
        assert_eq!(b.next_lost(), Some(1));
        // Rule 3 finds 4 (below high SACK, not lost).
        assert_eq!(b.next_rule3(), Some(4));
        let a = b.ack(SeqNumber(150));
        assert_eq!(a.segs, 1);
        assert!(a.any_retrans);
        assert_eq!(b.get(0).unwrap().start, SeqNumber(150));
        assert_eq!(b.pipe(), 400);
    }

    #[test]
    fn sack_splits_partial_segments() {
        let mut b = sb(3);
        assert_eq!(b.sack(SeqNumber(150), SeqNumber(250)), 100);
        assert_eq!(b.len(), 5);
        assert_eq!(b.sacked_bytes(), 100);
        b.mark_all_lost();
        assert_eq!(b.sacked_bytes(), 0);
        assert_eq!(b.pipe(), 0);
    }
}
