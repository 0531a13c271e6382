//! Round robin: each chunk to the next subflow with room after the one
//! that took the last, so equal paths carry equal shares.

use super::{backups_only, eligible, Pick, SchedKind, Scheduler, SubflowView};

#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobin {
    /// The subflow that took the last chunk.
    last: Option<usize>,
}

impl Scheduler for RoundRobin {
    fn kind(&self) -> SchedKind {
        SchedKind::RoundRobin
    }

    fn pick(&mut self, subs: &[SubflowView]) -> Pick {
        let n = subs.len().min(Pick::MAX);
        if n == 0 {
            return Pick::default();
        }
        let backups = backups_only(subs);
        let start = self.last.map_or(0, |l| l + 1);
        let next = (0..n)
            .map(|k| (start + k) % n)
            .find(|&i| eligible(&subs[i], backups));
        next.map_or(Pick::default(), Pick::one)
    }

    fn taken(&mut self, i: usize) {
        self.last = Some(i);
    }
}
