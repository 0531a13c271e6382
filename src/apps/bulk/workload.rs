//! Shapes of traffic beyond one bulk stream, for the simulator's swarm:
//! request/response exchanges, many small writes, a slow reader (zero
//! windows, persist), a client that aborts in the middle of a transfer.
//! Every size is drawn deterministically from the run seed, so both ends
//! agree on it without telling each other.

use super::CHUNK;
use crate::io::mem::mix;
use core::time::Duration;

/// Request/response: the client sends `requests` requests; the server
/// answers each once it has all of it; the client sends the next once it has
/// the whole answer. Sizes are drawn from the inclusive ranges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrConfig {
    pub requests: u32,
    pub req: (u64, u64),
    pub resp: (u64, u64),
}

/// Everything about a run's traffic other than its size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workload {
    /// Bytes server → client per connection when bidirectional (`None`:
    /// the same as client → server).
    pub reverse_bytes: Option<u64>,
    pub rr: Option<RrConfig>,
    /// Size of each application write, drawn from this inclusive range
    /// (at most [`CHUNK`]).
    pub write_size: (usize, usize),
    /// The server reads at most this many bytes per period (a slow reader:
    /// its window closes and the sender persists).
    pub read_pace: Option<(usize, Duration)>,
    /// The client aborts every odd-numbered connection once it has sent this
    /// many payload bytes.
    pub abort_after: Option<u64>,
    /// The client writes as soon as it connects, during the handshake
    /// (before MPTCP is established and any other subflow exists).
    pub early_write: bool,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            reverse_bytes: None,
            rr: None,
            write_size: (CHUNK, CHUNK),
            read_pace: None,
            abort_after: None,
            early_write: false,
        }
    }
}

/// A value in `lo..=hi` for (`seed`, connection, `what`, `k`).
pub(super) fn draw(seed: u64, conn: u32, what: u64, k: u64, (lo, hi): (u64, u64)) -> u64 {
    let hi = hi.max(lo);
    let h = mix(seed ^ mix((conn as u64) << 32 ^ what << 56 ^ k));
    lo + h % (hi - lo + 1)
}

const REQ: u64 = 1;
const RESP: u64 = 2;
pub(super) const WRITE: u64 = 3;

impl RrConfig {
    pub(super) fn req_len(&self, seed: u64, conn: u32, k: u32) -> u64 {
        draw(seed, conn, REQ, k as u64, self.req)
    }
    pub(super) fn resp_len(&self, seed: u64, conn: u32, k: u32) -> u64 {
        draw(seed, conn, RESP, k as u64, self.resp)
    }
    /// Total bytes of one direction of connection `conn`.
    pub(super) fn total(&self, seed: u64, conn: u32, client: bool) -> u64 {
        (0..self.requests)
            .map(|k| {
                if client {
                    self.req_len(seed, conn, k)
                } else {
                    self.resp_len(seed, conn, k)
                }
            })
            .sum()
    }
}

/// How much one side of a request/response connection may have sent, given
/// what it has received: the client may send request k+1 once response k is
/// complete; the server may send response k once request k is complete.
#[derive(Debug, Clone)]
pub(super) struct Pacer {
    rr: RrConfig,
    seed: u64,
    conn: u32,
    client: bool,
    /// Exchanges completed from this side's view.
    k: u32,
    /// Own bytes allowed so far.
    pub(super) allowed: u64,
    /// Received bytes at which the next step happens.
    need: u64,
}

impl Pacer {
    pub(super) fn new(rr: RrConfig, seed: u64, conn: u32, client: bool) -> Self {
        let mut p = Pacer {
            rr,
            seed,
            conn,
            client,
            k: 0,
            allowed: 0,
            need: 0,
        };
        if rr.requests > 0 {
            if client {
                p.allowed = rr.req_len(seed, conn, 0);
                p.need = rr.resp_len(seed, conn, 0);
            } else {
                p.need = rr.req_len(seed, conn, 0);
            }
        }
        p
    }

    /// The other side's bytes received so far is `got`.
    pub(super) fn on_received(&mut self, got: u64) {
        while self.k < self.rr.requests && got >= self.need {
            let (s, c, k) = (self.seed, self.conn, self.k);
            if self.client {
                self.k += 1;
                if self.k < self.rr.requests {
                    self.allowed += self.rr.req_len(s, c, self.k);
                    self.need += self.rr.resp_len(s, c, self.k);
                }
            } else {
                self.allowed += self.rr.resp_len(s, c, k);
                self.k += 1;
                if self.k < self.rr.requests {
                    self.need += self.rr.req_len(s, c, self.k);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pacers_alternate_and_end_with_the_totals() {
        let rr = RrConfig {
            requests: 5,
            req: (1, 100),
            resp: (1, 1000),
        };
        let mut c = Pacer::new(rr, 9, 3, true);
        let mut s = Pacer::new(rr, 9, 3, false);
        assert_eq!(s.allowed, 0);
        // Ping-pong until neither may send more.
        for _ in 0..20 {
            s.on_received(c.allowed);
            c.on_received(s.allowed);
        }
        assert_eq!(c.allowed, rr.total(9, 3, true));
        assert_eq!(s.allowed, rr.total(9, 3, false));
        // The client's first request does not wait for anything.
        let c0 = Pacer::new(rr, 9, 3, true);
        assert_eq!(c0.allowed, rr.req_len(9, 3, 0));
    }

    #[test]
    fn draws_stay_in_range_and_repeat() {
        for k in 0..1000 {
            let v = draw(1, 2, 3, k, (10, 20));
            assert!((10..=20).contains(&v));
            assert_eq!(v, draw(1, 2, 3, k, (10, 20)));
        }
        assert_eq!(draw(1, 2, 3, 4, (7, 7)), 7);
    }
}
