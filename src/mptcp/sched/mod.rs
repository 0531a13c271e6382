//! Which subflow sends the next chunk of the connection's data (RFC 8684
//! §3.3.8 leaves the choice to the implementation; the issue asks for
//! three). A scheduler sees one [`SubflowView`] per subflow and answers
//! with the set of subflows that take the next chunk ([`Pick`]):
//!
//! - [`MinRtt`] (the default, as Linux's): the subflow with the lowest
//!   smoothed RTT among those with room in their congestion window, with
//!   opportunistic retransmission and penalisation of a slower subflow
//!   that holds up the connection-level window
//!   ([`Scheduler::opportunistic`]);
//! - [`RoundRobin`]: the subflows with room in turn;
//! - [`Redundant`]: every subflow with room (each chunk on all of them).
//!
//! All three keep backup subflows (MP_JOIN or MP_PRIO flag B, §3.3.8) for
//! when no other subflow is usable (alive and not stalled): a usable
//! non-backup subflow without room means waiting for it, not spilling
//! onto a backup path.
//!
//! Sans-IO and deterministic: the views are the input, the pick the
//! output; `tcp::conn::mptcp_tx` asks it as each subflow pulls.

mod minrtt;
mod redundant;
mod roundrobin;

pub use minrtt::MinRtt;
pub use redundant::Redundant;
pub use roundrobin::RoundRobin;

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

/// What a scheduler knows of one subflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SubflowView {
    /// Smoothed RTT (RFC 6298 SRTT; the initial RTO before a sample).
    pub srtt: Duration,
    /// Its smallest RTT sample (windowed, `tcp::rtt`; zero before one):
    /// the path's round trip without the queue its own window built.
    /// Sizes the connection-level send buffer (`tcp::conn::snd_space`).
    pub min_rtt: Duration,
    /// Bytes it may send now: congestion and send window less what is
    /// in flight or queued on it.
    pub room: usize,
    /// Bytes in flight on it (its delivery rate is about that per
    /// `srtt`); 0 before its first RTT sample. Sizes the
    /// connection-level send buffer (`tcp::conn::snd_space`).
    pub in_flight: usize,
    /// A backup path (flag B of its MP_JOIN, or the peer's MP_PRIO).
    pub backup: bool,
    /// Alive and not stalled (no RTO backoff beyond the threshold, not
    /// reset): a candidate at all.
    pub usable: bool,
}

/// The subflows that take the next chunk: bit `i` for `views[i]`. Empty:
/// nobody now (wait for room).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pick(pub u64);

impl Pick {
    /// The most subflows a pick can name.
    pub const MAX: usize = 64;

    pub fn one(i: usize) -> Self {
        Pick(1u64.checked_shl(i as u32).unwrap_or(0))
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, i: usize) -> bool {
        i < Self::MAX && self.0 & (1 << i) != 0
    }

    /// The subflows named, in index order.
    pub fn iter(self) -> impl Iterator<Item = usize> {
        (0..Self::MAX).filter(move |&i| self.contains(i))
    }
}

/// A packet scheduler (the trait the connection's send path calls).
pub trait Scheduler: fmt::Debug + Send {
    /// Which kind this is.
    fn kind(&self) -> SchedKind;
    /// The subflows that take the next chunk.
    fn pick(&mut self, subs: &[SubflowView]) -> Pick;
    /// Subflow `i` took the chunk it was picked for (a pick may go
    /// unused: the subflow asking was not the one picked).
    fn taken(&mut self, _i: usize) {}
    /// Whether a subflow picked while the connection-level window is
    /// exhausted re-sends the oldest unacknowledged data a slower
    /// subflow holds, and that subflow is penalised (opportunistic
    /// retransmission and penalisation, Raiciu et al., "How Hard Can It
    /// Be? Designing and Implementing a Deployable Multipath TCP", NSDI
    /// 2012, §4.2). `tcp::conn::mptcp_tx` does both.
    fn opportunistic(&self) -> bool {
        false
    }
}

/// The schedulers there are (`--scheduler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SchedKind {
    #[default]
    MinRtt,
    RoundRobin,
    Redundant,
}

impl SchedKind {
    pub const NAMES: &'static str = "minrtt, roundrobin, redundant";

    /// A fresh scheduler of this kind.
    pub fn build(self) -> Box<dyn Scheduler> {
        match self {
            SchedKind::MinRtt => Box::new(MinRtt),
            SchedKind::RoundRobin => Box::<RoundRobin>::default(),
            SchedKind::Redundant => Box::new(Redundant),
        }
    }
}

impl FromStr for SchedKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "minrtt" => Ok(SchedKind::MinRtt),
            "roundrobin" => Ok(SchedKind::RoundRobin),
            "redundant" => Ok(SchedKind::Redundant),
            _ => Err(format!(
                "unknown scheduler `{s}`: use one of {}",
                SchedKind::NAMES
            )),
        }
    }
}

impl fmt::Display for SchedKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SchedKind::MinRtt => "minrtt",
            SchedKind::RoundRobin => "roundrobin",
            SchedKind::Redundant => "redundant",
        })
    }
}

/// Whether the backup subflows are the candidates: RFC 8684 §3.3.8, a
/// backup path is used only when no regular one is usable.
fn backups_only(subs: &[SubflowView]) -> bool {
    !subs.iter().any(|s| s.usable && !s.backup)
}

/// Whether `s` may take the next chunk: a candidate (usable, of the class
/// in use) with room.
fn eligible(s: &SubflowView, backups: bool) -> bool {
    s.usable && s.backup == backups && s.room > 0
}

#[cfg(test)]
mod tests;
