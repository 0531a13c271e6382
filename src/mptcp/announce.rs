//! The addresses we announce to the peer of one MPTCP connection (RFC 8684
//! §3.4.1) and those we withdraw (§3.4.2).
//!
//! ADD_ADDR is sent unreliably on a pure ACK; the peer acknowledges it with
//! an ADD_ADDR carrying the E flag (the echo). Until the echo arrives the
//! announcement goes again, backing off from the subflow's RTO, a bounded
//! number of times (Linux retransmits on its `add_addr_timeout` timer, 3
//! times at most). REMOVE_ADDR has no echo: it goes once.
//!
//! Sans-IO: times are arguments; the connection asks what is due when it
//! builds a pure ACK and when its timer fires.

use crate::time::Instant;
use core::net::{IpAddr, Ipv4Addr};
use core::time::Duration;

/// Addresses announced per connection, at most (as the path manager's
/// [`super::pm::MAX_LOCAL`]).
pub const MAX_ANNOUNCED: usize = 8;
/// Transmissions of one announcement without an echo before we stop
/// (the first one and 3 retransmissions, as Linux's ADD_ADDR_RETRANS_MAX).
pub const MAX_SENDS: u8 = 4;

/// One of our addresses announced to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    /// Our Address ID for it (RFC 8684 §3.4.1), the one our joins and
    /// our SYN/ACKs of the peer's joins to it carry.
    pub id: u8,
    pub addr: Ipv4Addr,
    /// Times sent so far.
    pub sends: u8,
    /// When it is (next) due; `None`: echoed, or given up.
    pub due: Option<Instant>,
    /// The peer echoed it (E flag).
    pub echoed: bool,
}

/// The announcements and withdrawals of one connection.
#[derive(Debug, Clone, Default)]
pub struct Announcer {
    list: Vec<Announcement>,
    /// Address IDs to withdraw on the next pure ACK (REMOVE_ADDR).
    withdraw: Vec<u8>,
}

impl Announcer {
    /// Announce `addr` as Address ID `id`, first due at `now`. False when
    /// it is known already (under that ID) or there is no room.
    pub fn announce(&mut self, id: u8, addr: Ipv4Addr, now: Instant) -> bool {
        if id == 0 || self.list.iter().any(|a| a.id == id) || self.list.len() >= MAX_ANNOUNCED {
            return false;
        }
        self.list.push(Announcement {
            id,
            addr,
            sends: 0,
            due: Some(now),
            echoed: false,
        });
        true
    }

    /// The announcement due at `now`, if any.
    pub fn due(&self, now: Instant) -> Option<Announcement> {
        self.list
            .iter()
            .find(|a| a.due.is_some_and(|t| t <= now))
            .copied()
    }

    /// Announcement `id` was sent at `now`: the next transmission waits
    /// `rto` doubled per transmission so far (RFC 6298 §5.5's back-off),
    /// none after [`MAX_SENDS`]. Returns whether it was a retransmission.
    pub fn sent(&mut self, id: u8, now: Instant, rto: Duration) -> bool {
        let Some(a) = self.list.iter_mut().find(|a| a.id == id) else {
            return false;
        };
        a.sends = a.sends.saturating_add(1);
        a.due = (a.sends < MAX_SENDS).then(|| now + rto * (1u32 << a.sends.min(6)));
        a.sends > 1
    }

    /// The peer echoed Address ID `id` with `addr` (RFC 8684 §3.4.1).
    /// Returns whether it acknowledged an announcement still waiting.
    pub fn on_echo(&mut self, id: u8, addr: IpAddr) -> bool {
        match self
            .list
            .iter_mut()
            .find(|a| a.id == id && IpAddr::V4(a.addr) == addr)
        {
            Some(a) if !a.echoed => {
                a.echoed = true;
                a.due = None;
                true
            }
            _ => false,
        }
    }

    /// When the next announcement is due.
    pub fn deadline(&self) -> Option<Instant> {
        let d = self.list.iter().filter_map(|a| a.due).min();
        if self.withdraw.is_empty() {
            d
        } else {
            // A withdrawal waits for a pure ACK, which the timer asks for.
            Some(Instant::ZERO)
        }
    }

    /// The announcements made (echoed or not).
    pub fn announced(&self) -> &[Announcement] {
        &self.list
    }

    /// Withdraw Address ID `id` (RFC 8684 §3.4.2): no longer announced,
    /// and a REMOVE_ADDR goes on the next pure ACK. False when it is
    /// queued already.
    pub fn withdraw(&mut self, id: u8) -> bool {
        self.list.retain(|a| a.id != id);
        if self.withdraw.contains(&id) || self.withdraw.len() >= MAX_ANNOUNCED {
            return false;
        }
        self.withdraw.push(id);
        true
    }

    /// The Address IDs to withdraw now (emptied).
    pub fn take_withdrawals(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.withdraw)
    }

    /// Whether something waits for a pure ACK at `now`.
    pub fn pending(&self, now: Instant) -> bool {
        !self.withdraw.is_empty() || self.due(now).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
    const RTO: Duration = Duration::from_millis(200);

    #[test]
    fn retransmitted_with_backoff_until_echoed() {
        let mut n = Announcer::default();
        let t0 = Instant::ZERO;
        assert!(n.announce(2, A, t0));
        assert!(!n.announce(2, A, t0), "one ID, one announcement");
        assert!(!n.announce(0, A, t0), "ID 0 is the first subflow's");
        assert_eq!(n.due(t0).map(|a| a.id), Some(2));
        assert!(!n.sent(2, t0, RTO));
        assert_eq!(n.deadline(), Some(t0 + RTO * 2));
        assert!(n.due(t0 + RTO).is_none());
        assert!(n.sent(2, t0 + RTO * 2, RTO));
        assert_eq!(n.deadline(), Some(t0 + RTO * 6));
        assert!(!n.on_echo(2, IpAddr::V4(Ipv4Addr::new(198, 18, 1, 3))));
        assert!(n.on_echo(2, IpAddr::V4(A)));
        assert!(!n.on_echo(2, IpAddr::V4(A)), "counted once");
        assert_eq!(n.deadline(), None);
    }

    #[test]
    fn given_up_after_max_sends() {
        let mut n = Announcer::default();
        let mut t = Instant::ZERO;
        n.announce(3, A, t);
        let mut sends = 0;
        for _ in 0..100 {
            let Some(d) = n.deadline() else { break };
            t = t.max(d);
            n.sent(3, t, RTO);
            sends += 1;
        }
        assert_eq!(sends, MAX_SENDS);
        assert!(n.due(t + Duration::from_secs(3600)).is_none());
    }

    #[test]
    fn a_withdrawn_address_is_no_longer_announced() {
        let mut n = Announcer::default();
        n.announce(2, A, Instant::ZERO);
        assert!(n.withdraw(2));
        assert!(!n.withdraw(2));
        assert!(n.announced().is_empty());
        assert!(n.pending(Instant::ZERO));
        assert_eq!(n.take_withdrawals(), vec![2]);
        assert!(!n.pending(Instant::ZERO));
    }
}
