//! Lowest RTT first (Linux's default MPTCP scheduler): of the subflows
//! with room in their window, the one with the smallest smoothed RTT;
//! ties go to the lower index (the first subflow).
//!
//! With opportunistic retransmission and penalisation (Raiciu et al.,
//! NSDI 2012 §4.2, as the out-of-tree Linux MPTCP's default scheduler):
//! lowest-RTT-first alone leaves the fast path idle whenever the peer's
//! connection-level window is filled by data still in flight on the slow
//! path (head-of-line blocking at the data level). The send path
//! (`tcp::conn::mptcp_tx`) then re-sends that oldest data on the fast
//! subflow and halves the slow subflow's window.

use super::{backups_only, eligible, Pick, SchedKind, Scheduler, SubflowView};

#[derive(Debug, Clone, Copy, Default)]
pub struct MinRtt;

impl Scheduler for MinRtt {
    fn kind(&self) -> SchedKind {
        SchedKind::MinRtt
    }

    fn opportunistic(&self) -> bool {
        true
    }

    fn pick(&mut self, subs: &[SubflowView]) -> Pick {
        let backups = backups_only(subs);
        subs.iter()
            .enumerate()
            .take(Pick::MAX)
            .filter(|(_, s)| eligible(s, backups))
            .min_by_key(|(i, s)| (s.srtt, *i))
            .map_or(Pick::default(), |(i, _)| Pick::one(i))
    }
}
