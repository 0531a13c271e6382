//! The peer's DSS mappings on one subflow (RFC 8684 §3.3.1): which data
//! sequence numbers the subflow's bytes carry. A mapping arrives with the
//! segments it covers (Linux repeats it on each), possibly out of order on
//! the subflow; it is kept until the subflow's in-order data has passed
//! it. Mappings need not be one to one with the subflow: a peer spreads
//! one stream over several subflows, and re-sends (reinjects) at the
//! connection level what another subflow held, so the data level
//! reassembles by DSN (see `tcp::conn::mptcp_rx`).
//!
//! Subflow offsets are 32-bit (0 = the byte after the SYN), compared
//! within the receive window; DSNs are kept as received ([`RxDsn`]) and
//! widened to 64 bits at the data level against its own progress.

use crate::wire::mptcp::DssMapping;
use std::collections::VecDeque;

/// Mappings kept per subflow. Contiguous ones merge, so this bounds the
/// discontinuities in the data sequence space within one subflow's
/// window (a peer switching subflows every few segments). A segment whose
/// mapping finds no room is dropped (the peer sends it again).
pub const MAX_MAPPINGS: usize = 256;

/// A data sequence number as received: all 64 bits, or the low 32 (DSS
/// flag m clear, RFC 8684 §3.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxDsn {
    pub value: u64,
    /// All 64 bits are known.
    pub wide: bool,
}

impl RxDsn {
    /// The DSN `n` bytes further.
    pub fn plus(self, n: u64) -> RxDsn {
        let value = if self.wide {
            self.value.wrapping_add(n)
        } else {
            (self.value as u32).wrapping_add(n as u32) as u64
        };
        RxDsn { value, ..self }
    }

    /// The 64-bit DSN nearest to `near` (RFC 8684 §3.3.1: "the receiver
    /// MUST ... expand" a 32-bit DSN against the data sequence space).
    pub fn widen(self, near: u64) -> u64 {
        if self.wide {
            return self.value;
        }
        let d = (self.value as u32).wrapping_sub(near as u32) as i32 as i64;
        near.wrapping_add(d as u64)
    }
}

/// One received mapping of subflow bytes onto the data sequence space.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RxMapping {
    /// Subflow offset of its first byte (SSN − 1).
    pub start: u32,
    /// Data bytes it covers (a DATA_FIN octet excluded).
    pub len: u32,
    /// DSN of its first byte.
    pub dsn: RxDsn,
}

impl RxMapping {
    /// The mapping a DSS carries (`fin`: its last octet is the DATA_FIN,
    /// RFC 8684 §3.3.3). `None` for a DATA_FIN without data (SSN 0) and
    /// for the infinite mapping (length 0, §3.7).
    pub fn from_dss(m: &DssMapping, fin: bool) -> Option<RxMapping> {
        let len = (m.len as u32).saturating_sub(fin as u32);
        if m.ssn == 0 || len == 0 {
            return None;
        }
        Some(RxMapping {
            start: m.ssn.wrapping_sub(1),
            len,
            dsn: RxDsn {
                value: m.dsn,
                wide: m.dsn64,
            },
        })
    }

    fn end(&self) -> u32 {
        self.start.wrapping_add(self.len)
    }
}

/// Why a mapping or the subflow's data cannot be taken (RFC 8684 §3.3.1:
/// an invalid mapping; the subflow is reset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    /// A second mapping for the same subflow bytes names other DSNs.
    Conflict,
    /// In-order subflow bytes that no mapping covers.
    Unmapped,
    /// No room to remember the mapping: drop the segment.
    Full,
}

/// `a - b` as a signed distance on the 32-bit subflow offsets.
fn dist(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

/// The mappings of one subflow not yet passed by its in-order data,
/// sorted by subflow offset.
#[derive(Debug)]
pub struct RxMaps {
    maps: VecDeque<RxMapping>,
    /// Subflow offset of the next in-order byte to map.
    pub next: u32,
    /// The peer's infinite mapping (RFC 8684 §3.7): from this subflow
    /// offset on, bytes map one to one from this DSN.
    infinite: Option<(u32, RxDsn)>,
    /// The end of the furthest mapping noted (subflow offset, DSN).
    tail: Option<(u32, RxDsn)>,
    /// Our infinite mapping went out: the peer falls back when it gets
    /// it, and its bytes after its last mapping run on from there.
    follow_tail: bool,
}

impl Default for RxMaps {
    fn default() -> Self {
        RxMaps {
            maps: VecDeque::with_capacity(MAX_MAPPINGS),
            next: 0,
            infinite: None,
            tail: None,
            follow_tail: false,
        }
    }
}

impl RxMaps {
    /// Mappings held.
    pub fn len(&self) -> usize {
        self.maps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// Remember `m`. A repeat of a known mapping is nothing new, and a
    /// mapping that runs on from a known one (subflow bytes and DSNs both
    /// contiguous, as one-to-one stretches are) extends it, so a window
    /// of segments each carrying its own mapping costs one entry. A
    /// mapping wholly behind the in-order point is old news.
    pub fn note(&mut self, m: RxMapping) -> Result<(), MapError> {
        if self.tail.is_none_or(|(end, _)| dist(m.end(), end) > 0) {
            self.tail = Some((m.end(), m.dsn.plus(m.len as u64)));
        }
        if dist(m.end(), self.next) <= 0 {
            return Ok(());
        }
        let i = self.maps.partition_point(|x| dist(x.start, m.start) <= 0);
        // The mapping before (or at) `m`'s start: `m` agrees with it, or
        // the bytes they share name other DSNs.
        if i > 0 {
            let p = self.maps[i - 1];
            let off = m.start.wrapping_sub(p.start);
            if off <= p.len {
                if p.dsn.plus(off as u64) != m.dsn {
                    if off < p.len {
                        // RFC 8684 §3.3.1: a mapping, once given, cannot
                        // be changed: the same bytes named again must
                        // agree.
                        return Err(MapError::Conflict);
                    }
                } else {
                    let end = off + m.len;
                    if end > p.len {
                        self.maps[i - 1].len = end;
                        self.absorb_next(i - 1)?;
                    }
                    return Ok(());
                }
            }
        }
        if self.maps.len() >= MAX_MAPPINGS {
            return Err(MapError::Full);
        }
        self.maps.insert(i, m);
        self.absorb_next(i)
    }

    /// Mapping `i` grew: fold in the following ones it reaches.
    fn absorb_next(&mut self, i: usize) -> Result<(), MapError> {
        while let Some(n) = self.maps.get(i + 1).copied() {
            let p = self.maps[i];
            let off = n.start.wrapping_sub(p.start);
            if off > p.len {
                return Ok(());
            }
            if p.dsn.plus(off as u64) != n.dsn {
                if off < p.len {
                    return Err(MapError::Conflict);
                }
                return Ok(());
            }
            self.maps[i].len = p.len.max(off + n.len);
            self.maps.remove(i + 1);
        }
        Ok(())
    }

    /// Map `len` in-order subflow bytes at `self.next`: the DSN of the
    /// first and how many of them follow on contiguously in the data
    /// sequence space (across consecutive mappings). Moves `next` over
    /// them; mappings passed are forgotten.
    pub fn take(&mut self, len: u32) -> Result<(RxDsn, u32), MapError> {
        let at = self.next;
        while self.maps.front().is_some_and(|m| dist(m.end(), at) <= 0) {
            self.maps.pop_front();
        }
        if let Some((start, dsn)) = self.infinite {
            if dist(at, start) >= 0 {
                self.maps.clear();
                self.next = at.wrapping_add(len);
                return Ok((dsn.plus(at.wrapping_sub(start) as u64), len));
            }
        }
        let Some(m) = self.maps.front().copied() else {
            if let Some(dsn) = self.tail_dsn(at) {
                // RFC 8684 §3.7: the peer fell back on our infinite
                // mapping; its mappings ended exactly here.
                self.infinite = Some((at, dsn));
                self.next = at.wrapping_add(len);
                return Ok((dsn, len));
            }
            return Err(MapError::Unmapped);
        };
        if dist(m.start, at) > 0 {
            return Err(MapError::Unmapped);
        }
        let off = at.wrapping_sub(m.start);
        let first = m.dsn.plus(off as u64);
        let mut got = (m.len - off).min(len);
        // A segment may run on into the next mapping (segments collapsed
        // under memory pressure): fine while the DSNs run on too.
        let mut i = 1;
        while got < len {
            let Some(n) = self.maps.get(i) else { break };
            let pos = at.wrapping_add(got);
            if n.start != pos || n.dsn != first.plus(got as u64) {
                break;
            }
            got += n.len.min(len - got);
            i += 1;
        }
        self.next = at.wrapping_add(got);
        Ok((first, got))
    }

    /// The peer's infinite mapping (RFC 8684 §3.7): subflow bytes from
    /// offset `start` on are the data stream from `dsn`, one to one; no
    /// mapping follows.
    pub fn set_infinite(&mut self, start: u32, dsn: RxDsn) {
        self.infinite = Some((start, dsn));
    }

    /// The infinite mapping implied where the mappings end (the peer fell
    /// back and its own did not reach us); false if none was ever noted.
    pub fn set_infinite_at_tail(&mut self) -> bool {
        let Some((end, dsn)) = self.tail else {
            return false;
        };
        self.set_infinite(end, dsn);
        true
    }

    /// Our infinite mapping went out (RFC 8684 §3.7): once the peer's
    /// mappings end, its bytes map one to one from where they ended (it
    /// falls back when ours reaches it and sends no mapping after).
    pub fn follow_tail(&mut self) {
        self.follow_tail = true;
    }

    /// The DSN of subflow offset `at` where the peer's mappings end, after
    /// our infinite mapping.
    fn tail_dsn(&self, at: u32) -> Option<RxDsn> {
        self.tail
            .filter(|&(end, _)| self.follow_tail && end == at)
            .map(|(_, dsn)| dsn)
    }

    /// The DSN of subflow offset `at` under the infinite mapping, given or
    /// implied.
    pub fn infinite_dsn(&self, at: u32) -> Option<RxDsn> {
        let Some((start, dsn)) = self.infinite else {
            return self.tail_dsn(at);
        };
        (dist(at, start) >= 0).then(|| dsn.plus(at.wrapping_sub(start) as u64))
    }

    /// Whether the bytes at subflow offsets `off - 1` and `off` are both
    /// mapped, to consecutive DSNs: only then may one frame hold both
    /// (the receive queue's collapsing under memory pressure).
    pub fn runs_on(&self, off: u32) -> bool {
        match (self.dsn_at(off.wrapping_sub(1)), self.dsn_at(off)) {
            (Some(a), Some(b)) => a.plus(1) == b,
            _ => false,
        }
    }

    /// The DSN a mapping held gives the byte at subflow offset `off`.
    pub fn dsn_at(&self, off: u32) -> Option<RxDsn> {
        let i = self.maps.partition_point(|x| dist(x.start, off) <= 0);
        let m = self.maps.get(i.checked_sub(1)?)?;
        let o = off.wrapping_sub(m.start);
        (o < m.len).then(|| m.dsn.plus(o as u64))
    }

    /// The subflow skipped `n` in-order bytes without mapping them.
    pub fn skip(&mut self, n: u32) {
        self.next = self.next.wrapping_add(n);
    }
}

#[cfg(test)]
mod tests;
