//! Flows that moved to another worker (`stack::Migrant`, issue 8): the
//! worker they left forwards what still reaches it for them, for a while
//! (segments that raced the move, or that other workers handed over
//! before the flow directory named the new owner). Worker-local, looked
//! at only for segments of flows this worker's stacks do not hold.

use crate::tcp::FourTuple;
use crate::time::Instant;
use core::time::Duration;

/// How long a moved flow's segments are forwarded from here (the flow
/// directory names its new owner well before).
const FORWARD_FOR: Duration = Duration::from_secs(2);
/// Moved flows remembered at most (the oldest is forgotten first).
const MAX_MOVED: usize = 256;

/// Flows that left this worker: (interface, flow, new owner, when).
#[derive(Default)]
pub struct Moved {
    flows: Vec<(usize, FourTuple, usize, Instant)>,
}

impl Moved {
    /// Flow `tuple` of interface `iface` moved to worker `to` at `now`.
    pub fn record(&mut self, iface: usize, tuple: FourTuple, to: usize, now: Instant) {
        self.flows
            .retain(|f| (f.0, f.1) != (iface, tuple) && now.saturating_since(f.3) < FORWARD_FOR);
        if self.flows.len() >= MAX_MOVED {
            self.flows.remove(0);
        }
        self.flows.push((iface, tuple, to, now));
    }

    /// Flow `tuple` of interface `iface` is back here: nothing of it is
    /// forwarded any more.
    pub fn forget(&mut self, iface: usize, tuple: &FourTuple) {
        self.flows.retain(|f| (f.0, f.1) != (iface, *tuple));
    }

    /// The worker flow `tuple` of interface `iface` moved to, if lately.
    pub fn owner(&mut self, iface: usize, tuple: &FourTuple, now: Instant) -> Option<usize> {
        if self.flows.is_empty() {
            return None;
        }
        self.flows
            .retain(|f| now.saturating_since(f.3) < FORWARD_FOR);
        self.flows
            .iter()
            .find(|f| f.0 == iface && f.1 == *tuple)
            .map(|f| f.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moved_flows_are_forwarded_for_a_while() {
        let t = |p: u16| FourTuple {
            local: format!("198.18.0.2:{p}").parse().unwrap(),
            remote: "198.18.0.1:80".parse().unwrap(),
        };
        let mut m = Moved::default();
        let at = Instant::from_micros(1_000_000);
        m.record(0, t(1), 3, at);
        assert_eq!(m.owner(0, &t(1), at), Some(3));
        assert_eq!(m.owner(1, &t(1), at), None, "another interface");
        assert_eq!(m.owner(0, &t(2), at), None);
        m.forget(0, &t(1));
        assert_eq!(m.owner(0, &t(1), at), None, "came back");
        m.record(0, t(1), 3, at);
        assert_eq!(m.owner(0, &t(1), at + FORWARD_FOR), None, "forgotten");
        for p in 0..1000 {
            m.record(0, t(p), 1, at);
        }
        assert_eq!(m.flows.len(), MAX_MOVED);
        assert_eq!(m.owner(0, &t(999), at), Some(1));
    }
}
