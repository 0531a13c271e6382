//! Verifying the DSS checksum of the peer's mappings on one subflow (RFC
//! 8684 §3.3.1): a mapping's checksum covers all of its data, which may
//! arrive over several segments. Used by the first subflow
//! ([`super::Session`]) and by joined subflows alike.

use super::crypto;
use crate::wire::checksum;
use crate::wire::mptcp::DssMapping;

/// A received mapping spanning several segments, summed as its bytes
/// arrive in order (RFC 8684 §3.3.1: the checksum covers the whole
/// mapping, so it can only be checked once all of it is there).
#[derive(Debug, Clone, Copy)]
pub struct RxChecksum {
    /// Data offset (64-bit, relative) of the mapping's first byte.
    start: u64,
    /// Its data bytes (the DATA_FIN octet excluded).
    data_len: u64,
    dsn: u64,
    ssn: u32,
    len: u16,
    want: u16,
    /// One's-complement sum of the bytes summed so far, in mapping order.
    sum: u16,
    done: u64,
    /// Bytes arrived out of order: this mapping cannot be verified.
    broken: bool,
}

impl RxChecksum {
    /// Fold in `payload`, which starts at data offset `at`. Returns
    /// `Some(ok)` once the mapping is complete, `None` while it is not;
    /// `Err` when bytes are missing (out of order: cannot be verified).
    fn add(&mut self, at: u64, payload: &[u8]) -> Result<Option<bool>, ()> {
        // Wrapping: the offsets come from the peer (a hostile one must not
        // overflow them), and an honest one stays far below 2^63.
        let pos = self.start.wrapping_add(self.done);
        let end = at.wrapping_add(payload.len() as u64);
        if end <= pos {
            // Already summed (a retransmission).
            return Ok(None);
        }
        if at > pos {
            return Err(());
        }
        let k = (pos - at) as usize;
        let take = (payload.len() - k).min((self.data_len - self.done) as usize);
        let s = checksum::sum(&payload[k..k + take]);
        // RFC 1071 §2(B): bytes at an odd position in the mapping pair the
        // other way round: their sum is the byte-swapped one.
        let s = if self.done % 2 == 1 {
            s.swap_bytes()
        } else {
            s
        };
        self.sum = checksum::combine(&[self.sum, s]);
        self.done += take as u64;
        if self.done < self.data_len {
            return Ok(None);
        }
        Ok(Some(
            crypto::dss_checksum(self.dsn, self.ssn, self.len, self.sum) == self.want,
        ))
    }
}

/// What one segment's bytes did to its mapping's checksum.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CsumOutcome {
    /// The mapping is complete and its checksum right.
    pub verified: bool,
    /// The mapping is complete and its checksum wrong.
    pub failed: bool,
    /// A mapping could not be verified (its bytes came out of order, or
    /// it was replaced before it was complete).
    pub unverified: bool,
}

/// Fold a segment into the check of its mapping `m` (checksum `want`):
/// the mapping starts at 64-bit subflow offset `start` (0: the first byte
/// after the SYN) with `data_len` data bytes at 64-bit DSN `dsn`; the
/// segment's `payload` is at subflow offset `at`. `cur` is the mapping
/// being summed on this subflow.
#[allow(clippy::too_many_arguments)]
pub fn check(
    cur: &mut Option<RxChecksum>,
    start: u64,
    data_len: u64,
    dsn: u64,
    m: &DssMapping,
    want: u16,
    at: u64,
    payload: &[u8],
) -> CsumOutcome {
    let mut o = CsumOutcome::default();
    if at == start && data_len == payload.len() as u64 {
        // The whole mapping in this segment.
        let ok = crypto::dss_checksum(dsn, m.ssn, m.len, checksum::sum(payload)) == want;
        o.verified = ok;
        o.failed = !ok;
        return o;
    }
    let same = cur.is_some_and(|r| r.start == start && r.dsn == dsn);
    if !same {
        if cur.take().is_some_and(|r| r.done < r.data_len && !r.broken) {
            o.unverified = true;
        }
        *cur = Some(RxChecksum {
            start,
            data_len,
            dsn,
            ssn: m.ssn,
            len: m.len,
            want,
            sum: 0,
            done: 0,
            broken: false,
        });
    }
    let Some(r) = cur else { return o };
    if r.broken {
        return o;
    }
    match r.add(at, payload) {
        Ok(None) => {}
        Ok(Some(ok)) => {
            *cur = None;
            o.verified = ok;
            o.failed = !ok;
        }
        Err(()) => {
            r.broken = true;
            o.unverified = true;
        }
    }
    o
}
