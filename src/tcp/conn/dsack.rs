//! Using D-SACK (RFC 2883 §5, RFC 3708): a duplicate reported for data we
//! retransmitted means the retransmission was spurious — the network
//! reordered (or delayed) the original. That raises DupThresh and RACK's
//! reordering window (RFC 8985 §6.2 step 4), and when every retransmission
//! of a fast recovery proves spurious, the window reduction is undone.

use crate::tcp::SeqNumber;
use std::collections::VecDeque;

/// Retransmissions remembered for matching D-SACK blocks.
const LOG_LEN: usize = 64;
/// Largest RACK.reo_wnd_mult (RFC 8985 §6.2: bounded by SRTT anyway).
const MAX_REO_MULT: u32 = 16;

#[derive(Debug, Default)]
pub(crate) struct Dsack {
    /// Recently retransmitted ranges and their distance below the highest
    /// SACKed segment when retransmitted (in segments).
    log: VecDeque<(SeqNumber, SeqNumber, usize)>,
    /// Retransmissions of the latest fast recovery, and how many of them
    /// D-SACK showed needless.
    episode_retrans: u32,
    episode_dsacked: u32,
    /// RACK.reo_wnd_mult.
    pub reo_wnd_mult: u32,
}

impl Dsack {
    /// A fast recovery starts: count its retransmissions afresh.
    pub fn start_episode(&mut self) {
        self.episode_retrans = 0;
        self.episode_dsacked = 0;
    }

    /// The episode cannot be undone (an RTO, or it was already undone).
    pub fn end_episode(&mut self) {
        self.episode_retrans = u32::MAX / 2;
        self.episode_dsacked = 0;
    }

    pub fn on_retransmit(&mut self, start: SeqNumber, end: SeqNumber, fack_dist: usize) {
        if self.log.len() == LOG_LEN {
            self.log.pop_front();
        }
        self.log.push_back((start, end, fack_dist));
        self.episode_retrans = self.episode_retrans.saturating_add(1);
    }

    /// A D-SACK block `[l, r)`: the reordering distance of the matching
    /// retransmission, if it was one of ours.
    pub fn on_dsack(&mut self, l: SeqNumber, r: SeqNumber) -> Option<usize> {
        let i = self.log.iter().position(|&(s, e, _)| s <= l && r <= e)?;
        let (_, _, dist) = self.log.remove(i)?;
        self.episode_dsacked += 1;
        self.reo_wnd_mult = (self.reo_wnd_mult + 1).min(MAX_REO_MULT);
        Some(dist)
    }

    /// Every retransmission of the episode was needless.
    pub fn all_spurious(&self) -> bool {
        self.episode_retrans > 0 && self.episode_dsacked >= self.episode_retrans
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_and_counts() {
        let mut d = Dsack::default();
        d.start_episode();
        d.on_retransmit(SeqNumber(100), SeqNumber(200), 5);
        d.on_retransmit(SeqNumber(300), SeqNumber(400), 2);
        assert_eq!(d.on_dsack(SeqNumber(500), SeqNumber(600)), None);
        assert_eq!(d.on_dsack(SeqNumber(100), SeqNumber(200)), Some(5));
        assert!(!d.all_spurious());
        assert_eq!(d.on_dsack(SeqNumber(300), SeqNumber(350)), Some(2));
        assert!(d.all_spurious());
        assert_eq!(d.reo_wnd_mult, 2);
        d.end_episode();
        assert!(!d.all_spurious());
    }
}
