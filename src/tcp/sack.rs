//! The sender's record of transmitted segments: the SACK scoreboard of
//! RFC 6675 §3 (SACKed, lost, retransmitted) kept per segment, the send
//! times used for RTT samples (Karn's rule, RFC 6298 §3), and RACK's
//! time-based loss detection (RFC 8985 §6).

use super::SeqNumber;
use crate::time::Instant;
use core::time::Duration;
use std::collections::VecDeque;

/// RFC 6675 §2: DupThresh.
pub(crate) const DUP_THRESH: usize = 3;
/// Largest reordering degree (segments) DupThresh adapts to (as Linux's
/// tcp_max_reordering).
const MAX_REORDERING: usize = 300;

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
    /// Latest (re)transmission time among them.
    pub latest_sent: Option<Instant>,
}

/// RFC 8985 §6.1: the most recently sent segment known to be delivered.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Rack {
    /// RACK.xmit_ts (None before the first delivery).
    pub xmit: Option<Instant>,
    /// RACK.end_seq.
    pub end: SeqNumber,
    /// RACK.rtt.
    pub rtt: Duration,
    /// RACK.fack: the highest SACKed or ACKed sequence.
    pub fack: SeqNumber,
    /// RACK.reordering_seen.
    pub reordering_seen: bool,
    /// Observed reordering degree in segments (RFC 4653 spirit): the
    /// DupThresh in use, never below 3.
    pub reordering: usize,
}

/// Whether (t1, e1) was sent after (t2, e2) (RFC 8985 §6.2 step 2).
fn sent_after(t1: Instant, e1: SeqNumber, t2: Instant, e2: SeqNumber) -> bool {
    t1 > t2 || (t1 == t2 && e1 > e2)
}

/// Transmitted, not yet cumulatively acknowledged segments, in order.
#[derive(Debug, Default)]
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
            self.rack.rtt = rtt;
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
        let (end, rtt) = (self.rack.end, self.rack.rtt);
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

    pub fn clear(&mut self) {
        *self = Scoreboard::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Instant = Instant(1000);

    fn sb(n: u32) -> Scoreboard {
        let mut b = Scoreboard::default();
        for i in 0..n {
            b.push(
                SeqNumber(i * 100),
                SeqNumber(i * 100 + 100),
                false,
                Instant(i as u64),
            );
        }
        b
    }

    #[test]
    fn pipe_and_islost() {
        let mut b = sb(10);
        assert_eq!(b.pipe(), 1000);
        // SACK segments 3 and 5..7.
        assert_eq!(b.sack(SeqNumber(300), SeqNumber(400), T, None), 100);
        assert_eq!(b.sack(SeqNumber(500), SeqNumber(700), T, None), 200);
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
        let a = b.ack(SeqNumber(150), T, None);
        assert_eq!(a.segs, 1);
        assert!(a.any_retrans);
        assert_eq!(b.get(0).unwrap().start, SeqNumber(150));
        assert_eq!(b.pipe(), 400);
    }

    #[test]
    fn sack_ignores_partly_covered_segments() {
        let mut b = sb(3);
        assert_eq!(b.sack(SeqNumber(150), SeqNumber(250), T, None), 0);
        assert_eq!(b.sack(SeqNumber(150), SeqNumber(300), T, None), 100);
        assert_eq!(b.len(), 3);
        assert_eq!(b.sacked_bytes(), 100);
        b.mark_all_lost();
        assert_eq!(b.sacked_bytes(), 0);
        assert_eq!(b.pipe(), 0);
    }

    #[test]
    fn rack_marks_old_segments_lost_after_rtt_plus_reo_wnd() {
        let mut b = Scoreboard::default();
        // Segments 0..4 sent at 0, 10, 20, 30 ms.
        for i in 0..4u32 {
            b.push(
                SeqNumber(i * 100),
                SeqNumber(i * 100 + 100),
                false,
                Instant::from_millis(i as u64 * 10),
            );
        }
        // Segment 2 SACKed at 50 ms: RACK.rtt = 30 ms.
        b.sack(
            SeqNumber(200),
            SeqNumber(300),
            Instant::from_millis(50),
            None,
        );
        assert_eq!(b.rack.rtt, Duration::from_millis(30));
        // At 50 ms with reo_wnd 5: segment 0 (0+35 <= 50) lost, 1 (10+35=45) lost.
        let (lost, timer) = b.rack_detect(Instant::from_millis(50), Duration::from_millis(5));
        assert!(lost);
        assert_eq!(timer, None);
        assert_eq!(b.next_lost(), Some(0));
        b.on_retransmit(0, Instant::from_millis(50));
        assert_eq!(b.next_lost(), Some(1));
        // Segment 3 was sent after the delivered one: not examined.
        assert!(!b.get(3).unwrap().lost);
        // Segment 1 delivered without retransmission below FACK: reordering.
        b.sack(
            SeqNumber(100),
            SeqNumber(200),
            Instant::from_millis(60),
            None,
        );
        assert!(b.rack.reordering_seen);
        // A timer for a segment not yet old enough.
        let mut c = Scoreboard::default();
        c.push(SeqNumber(0), SeqNumber(100), false, Instant::from_millis(0));
        c.push(
            SeqNumber(100),
            SeqNumber(200),
            false,
            Instant::from_millis(1),
        );
        c.sack(
            SeqNumber(100),
            SeqNumber(200),
            Instant::from_millis(11),
            None,
        );
        let (lost, timer) = c.rack_detect(Instant::from_millis(11), Duration::from_millis(2));
        assert!(!lost);
        assert_eq!(timer, Some(Instant::from_millis(12)));
    }
}
