//! Moves refused on arrival, on their way back to the worker they came
//! from: how a move's arrival is settled.

use super::inbox::{Inbound, Inbox};
use super::migrate::Moved;
use super::worker_stats::WorkerStats;
use crate::tcp::FourTuple;
use crate::time::Instant;

/// How long a move refused on arrival keeps trying to go back to the
/// worker it came from while that worker's inbox is full (it only is if
/// that worker is stuck).
const RETURN_FOR: core::time::Duration = core::time::Duration::from_secs(2);

/// Moves refused on arrival (`Inbound::Flow`/`Conn` whose flow is here
/// already, or that the app or the table here cannot take), on their way
/// back to the worker they came from, which installs them again: nothing
/// already accepted is lost on a move. One that finds that worker's
/// inbox full waits here and is tried again each loop (bounded by
/// [`RETURN_FOR`], counted).
#[derive(Default)]
pub(super) struct Returns {
    waiting: Vec<(usize, Inbound, Instant)>,
}

impl Returns {
    fn send(
        &mut self,
        inboxes: &[Inbox],
        to: usize,
        i: Inbound,
        now: Instant,
        st: &mut WorkerStats,
    ) {
        st.flows_migration_refused += 1;
        if let Err(i) = inboxes[to].push_any(i) {
            st.flows_return_retries += 1;
            self.waiting.push((to, i, now));
        }
    }

    /// The outcome of a move that arrived here: installed (`Ok`), or
    /// refused, as the `Inbound` that takes it back whole to the worker
    /// it came from, with its strays here and what that worker forwards
    /// meanwhile. Refused on its way back too, nothing can hold it
    /// (counted). Returns whether it was installed as a new arrival.
    pub(super) fn settle(
        &mut self,
        res: Result<(), Inbound>,
        a: Arrival,
        inboxes: &[Inbox],
        moved: &mut Moved,
        now: Instant,
        st: &mut WorkerStats,
    ) -> bool {
        match res {
            Ok(()) if a.back => {
                moved.forget(a.iface, &a.tuple);
                st.flows_migration_returned += 1;
                false
            }
            Ok(()) => {
                st.flows_migrated_in += 1;
                true
            }
            Err(i) if !a.back => {
                moved.record(a.iface, a.tuple, a.from, now);
                self.send(inboxes, a.from, i, now, st);
                false
            }
            Err(_) => {
                st.flows_migration_dropped += 1;
                false
            }
        }
    }

    /// Try again what waits; whether some still does.
    pub(super) fn flush(&mut self, inboxes: &[Inbox], now: Instant, st: &mut WorkerStats) -> bool {
        let mut left = Vec::new();
        for (to, i, since) in self.waiting.drain(..) {
            match inboxes[to].push_any(i) {
                Ok(()) => {}
                Err(_) if now.saturating_since(since) >= RETURN_FOR => {
                    st.flows_migration_dropped += 1;
                }
                Err(i) => {
                    st.flows_return_retries += 1;
                    left.push((to, i, since));
                }
            }
        }
        self.waiting = left;
        !self.waiting.is_empty()
    }
}

/// A move that arrived (`Inbound::Flow`/`Conn`): its flow, the worker
/// it came from, and whether it is coming back.
pub(super) struct Arrival {
    pub(super) iface: usize,
    pub(super) tuple: FourTuple,
    pub(super) from: usize,
    pub(super) back: bool,
}
