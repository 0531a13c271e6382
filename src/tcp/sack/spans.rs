//! Ranges of the scoreboard known to be wholly SACKed, so that walks over
//! it jump over SACKed runs instead of visiting every segment in them (as
//! Linux's `recv_sack_cache` spares re-walking the blocks of the last ACK).
//! A cache: forgetting a span only costs time, never changes an answer.

use crate::tcp::SeqNumber;

/// Spans kept: a few per ACK's SACK blocks (RFC 2018 §3: at most four).
const CAP: usize = 16;

/// Disjoint `[a, b)` ranges whose ends are segment boundaries and whose
/// segments are all SACKed. Unordered; small enough to scan.
#[derive(Debug, Default, Clone)]
pub(super) struct Spans {
    v: [(SeqNumber, SeqNumber); CAP],
    n: usize,
}

impl Spans {
    pub fn clear(&mut self) {
        self.n = 0;
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The span holding the segment `[start, end)`.
    pub fn find(&self, start: SeqNumber, end: SeqNumber) -> Option<(SeqNumber, SeqNumber)> {
        self.v[..self.n]
            .iter()
            .copied()
            .find(|&(a, b)| a <= start && end <= b)
    }

    /// `[a, b)` is wholly SACKed: add it, merged with the spans it overlaps
    /// or touches (their union is SACKed too).
    pub fn insert(&mut self, mut a: SeqNumber, mut b: SeqNumber) {
        let mut k = 0;
        for j in 0..self.n {
            let (x, y) = self.v[j];
            if x <= b && a <= y {
                if x < a {
                    a = x;
                }
                if y > b {
                    b = y;
                }
            } else {
                self.v[k] = (x, y);
                k += 1;
            }
        }
        self.n = k;
        if self.n == CAP {
            // Forget the lowest: the next cumulative ACK likely covers it.
            let mut lo = 0;
            for j in 1..self.n {
                if self.v[j].0 < self.v[lo].0 {
                    lo = j;
                }
            }
            self.v[lo] = self.v[self.n - 1];
            self.n -= 1;
        }
        self.v[self.n] = (a, b);
        self.n += 1;
    }

    /// A cumulative ACK removed (or trimmed) everything below `ack`.
    pub fn ack(&mut self, ack: SeqNumber) {
        let mut k = 0;
        for j in 0..self.n {
            let (a, b) = self.v[j];
            if b > ack {
                self.v[k] = (if a < ack { ack } else { a }, b);
                k += 1;
            }
        }
        self.n = k;
    }
}
