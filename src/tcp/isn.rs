//! Initial sequence numbers (RFC 6528): ISN = M + F(4-tuple, secret), where M
//! is a 4-microsecond clock and F a keyed hash (SipHash-2-4).

use super::{FourTuple, SeqNumber};
use crate::time::Instant;

/// Generates RFC 6528 ISNs from a per-stack secret.
#[derive(Clone)]
pub struct IsnGenerator {
    key: [u8; 16],
}

impl IsnGenerator {
    pub fn new(key: [u8; 16]) -> Self {
        IsnGenerator { key }
    }

    /// RFC 6528 §3: ISN = M + F(localip, localport, remoteip, remoteport, secretkey).
    pub fn isn(&self, tuple: &FourTuple, now: Instant) -> SeqNumber {
        let _ = (tuple, now, self.key);
        todo!()
    }
}
