//! Lowest RTT first (Linux's default MPTCP scheduler): of the subflows
//! with room in their window, the one with the smallest smoothed RTT;
//! ties go to the lower index (the first subflow).

use super::{backups_only, eligible, Pick, SchedKind, Scheduler, SubflowView};

#[derive(Debug, Clone, Copy, Default)]
pub struct MinRtt;

impl Scheduler for MinRtt {
    fn kind(&self) -> SchedKind {
        SchedKind::MinRtt
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
