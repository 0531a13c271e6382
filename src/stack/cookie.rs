//! PLACEHOLDER until `tcpparts` lands SynCookies (same API).

use crate::tcp::{FourTuple, SeqNumber, TcpRepr};
use crate::time::Instant;

pub struct SynCookies {
    _secret: [u8; 16],
}

impl SynCookies {
    pub fn new(secret: [u8; 16]) -> Self {
        SynCookies { _secret: secret }
    }
    pub fn generate(
        &self,
        tuple: &FourTuple,
        syn: &TcpRepr,
        our_mss: u16,
        timestamps_enabled: bool,
        now: Instant,
    ) -> (SeqNumber, Option<u32>) {
        let _ = (tuple, syn, our_mss, timestamps_enabled, now);
        todo!("tcpparts: SynCookies::generate")
    }
    pub fn check(
        &self,
        tuple: &FourTuple,
        ack: &TcpRepr,
        now: Instant,
    ) -> Option<(TcpRepr, SeqNumber)> {
        let _ = (tuple, ack, now);
        todo!("tcpparts: SynCookies::check")
    }
}
