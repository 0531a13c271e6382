//! Our mappings on one subflow (RFC 8684 §3.3.1): which data sequence
//! numbers its bytes carry, so that every segment's DSS names the DSN of
//! its first byte. Offsets are subflow-relative (0 = the byte after the
//! SYN) and 64-bit; contiguous ranges merge, so a subflow fed a run of
//! consecutive chunks keeps one entry.

use std::collections::VecDeque;

/// One range: subflow offsets `rel..rel + len` carry DSNs `dsn..`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxMapping {
    pub rel: u64,
    pub dsn: u64,
    pub len: u64,
}

/// A subflow's mappings, oldest first.
#[derive(Debug, Clone, Default)]
pub struct TxMaps {
    maps: VecDeque<TxMapping>,
}

impl TxMaps {
    /// Subflow offsets from `rel` carry `len` bytes from `dsn`. Returns
    /// whether it ran on from the last range (same frame may take it).
    pub fn push(&mut self, rel: u64, dsn: u64, len: u64) -> bool {
        if let Some(m) = self.maps.back_mut() {
            if m.rel + m.len == rel && m.dsn.wrapping_add(m.len) == dsn {
                m.len += len;
                return true;
            }
        }
        self.maps.push_back(TxMapping { rel, dsn, len });
        false
    }

    /// The DSN of subflow offset `rel`, and how many bytes from it run on
    /// in the same range.
    pub fn dsn_of(&self, rel: u64) -> Option<(u64, u64)> {
        let i = self.maps.partition_point(|m| m.rel + m.len <= rel);
        let m = self.maps.get(i)?;
        (m.rel <= rel).then(|| (m.dsn.wrapping_add(rel - m.rel), m.rel + m.len - rel))
    }

    /// The last DSN mapped, plus one (where a run would go on).
    pub fn end_dsn(&self) -> Option<u64> {
        self.maps.back().map(|m| m.dsn.wrapping_add(m.len))
    }

    /// Forget the ranges wholly before `rel` (acknowledged on the subflow).
    pub fn ack(&mut self, rel: u64) {
        while self.maps.front().is_some_and(|m| m.rel + m.len <= rel) {
            self.maps.pop_front();
        }
    }

    pub fn len(&self) -> usize {
        self.maps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_merge_when_contiguous_and_are_found() {
        let mut t = TxMaps::default();
        assert!(!t.push(0, 1000, 100));
        assert!(t.push(100, 1100, 50));
        assert!(!t.push(150, 5000, 10));
        assert_eq!(t.len(), 2);
        assert_eq!(t.dsn_of(0), Some((1000, 150)));
        assert_eq!(t.dsn_of(149), Some((1149, 1)));
        assert_eq!(t.dsn_of(155), Some((5005, 5)));
        assert_eq!(t.dsn_of(160), None);
        assert_eq!(t.end_dsn(), Some(5010));
        t.ack(150);
        assert_eq!(t.len(), 1);
        assert_eq!(t.dsn_of(100), None);
        assert_eq!(t.dsn_of(150), Some((5000, 10)));
    }
}
