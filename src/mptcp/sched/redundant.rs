//! Redundant: every chunk on every subflow with room (lowest latency and
//! loss resilience for the price of the bandwidth; the copies beyond the
//! first are counted as `mptcp_redundant_bytes`). The peer's data level
//! keeps the first copy to arrive and trims the others.

use super::{backups_only, eligible, Pick, SchedKind, Scheduler, SubflowView};

#[derive(Debug, Clone, Copy, Default)]
pub struct Redundant;

impl Scheduler for Redundant {
    fn kind(&self) -> SchedKind {
        SchedKind::Redundant
    }

    fn pick(&mut self, subs: &[SubflowView]) -> Pick {
        let backups = backups_only(subs);
        let mut p = Pick::default();
        for (i, s) in subs.iter().enumerate().take(Pick::MAX) {
            if eligible(s, backups) {
                p.0 |= 1 << i;
            }
        }
        p
    }
}
