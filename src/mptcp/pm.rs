//! The path manager of an MPTCP connection we opened (RFC 8684 §3.2,
//! §3.4): which subflows to open. Full mesh, as Linux's in-kernel path
//! manager with `subflow` endpoints: one subflow from each of our local
//! addresses to each address the peer is known by (the address of the
//! first subflow, Address ID 0, plus those it announced with ADD_ADDR),
//! each pair tried once, within a limit the stack enforces.
//!
//! Sans-IO: the stack lists its local addresses and asks for the next
//! pair to try; announcements and removals come in as they arrive.

use super::crypto::{self, Key};
use crate::wire::mptcp::AddAddr;
use core::net::{IpAddr, Ipv4Addr, SocketAddrV4};

/// Addresses of the peer kept per connection, at most (RFC 8684 §3.4.1:
/// a host may ignore announcements beyond its resources; Linux's
/// `add_addr_accepted` limit is at most 8).
pub const MAX_REMOTE: usize = 8;
/// Local addresses a subflow may leave from, at most.
pub const MAX_LOCAL: usize = 8;

/// An address the peer is known by, with its Address ID (§3.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteAddr {
    pub id: u8,
    pub addr: SocketAddrV4,
}

/// One of our addresses a subflow can leave from: the worker's stack
/// (one per interface) and an address of that stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalAddr {
    pub stack: usize,
    pub ip: Ipv4Addr,
}

/// The subflows a connection has opened or tried.
#[derive(Debug, Clone)]
pub struct PathManager {
    /// The first subflow's local end (Address ID 0, RFC 8684 §3.2).
    first: LocalAddr,
    remotes: Vec<RemoteAddr>,
    /// (local, remote Address ID) pairs opened or tried (the first
    /// subflow's among them).
    tried: Vec<(LocalAddr, u8)>,
}

impl PathManager {
    /// The connection's first subflow went from `first` to `remote`.
    pub fn new(first: LocalAddr, remote: SocketAddrV4) -> Self {
        PathManager {
            first,
            remotes: vec![RemoteAddr {
                id: 0,
                addr: remote,
            }],
            tried: vec![(first, 0)],
        }
    }

    /// The peer announced `addr` as Address ID `id` (ADD_ADDR, §3.4.1).
    /// False when it was already known (a repeated announcement) or
    /// there is no room for it. An ID announced again with another
    /// address replaces it, and its pairs may be tried again.
    pub fn add_remote(&mut self, id: u8, addr: SocketAddrV4) -> bool {
        if let Some(r) = self.remotes.iter_mut().find(|r| r.id == id) {
            if r.addr == addr || id == 0 {
                return false;
            }
            r.addr = addr;
            self.tried.retain(|t| t.1 != id);
            return true;
        }
        if self.remotes.len() >= MAX_REMOTE {
            return false;
        }
        self.remotes.push(RemoteAddr { id, addr });
        true
    }

    /// The peer withdrew Address ID `id` (REMOVE_ADDR, §3.4.2): no new
    /// subflow goes there until it is announced again. Returns whether
    /// it was known.
    pub fn remove_remote(&mut self, id: u8) -> bool {
        let before = self.remotes.len();
        self.remotes.retain(|r| r.id != id);
        // Announced again later, it is a new address to try.
        self.tried.retain(|t| t.1 != id || id == 0);
        before != self.remotes.len()
    }

    /// Our address `ip` is usable again after a withdrawal (RFC 8684
    /// §3.4.2): the pairs leaving from it may be tried again, but for the
    /// first subflow's own.
    pub fn restore_local(&mut self, ip: Ipv4Addr) -> bool {
        let first = (self.first, 0);
        let before = self.tried.len();
        self.tried.retain(|t| t.0.ip != ip || *t == first);
        before != self.tried.len()
    }

    /// The peer's addresses known now (the first one's ID is 0).
    pub fn remotes(&self) -> &[RemoteAddr] {
        &self.remotes
    }

    /// The next pair not yet tried, from `locals` (in a stable order:
    /// an address's place there is its Address ID, see
    /// [`PathManager::local_id`]); marked as tried.
    pub fn next(&mut self, locals: &[LocalAddr]) -> Option<(LocalAddr, RemoteAddr)> {
        for r in &self.remotes {
            for l in locals.iter().take(MAX_LOCAL) {
                if !self.tried.contains(&(*l, r.id)) {
                    self.tried.push((*l, r.id));
                    return Some((*l, *r));
                }
            }
        }
        None
    }

    /// Our Address ID for `local` (RFC 8684 §3.2): 0 for the first
    /// subflow's, else 1 + its place in `locals`.
    pub fn local_id(&self, local: LocalAddr, locals: &[LocalAddr]) -> u8 {
        if local.ip == self.first.ip {
            return 0;
        }
        locals
            .iter()
            .position(|l| l.ip == local.ip)
            .map_or(0, |i| (i + 1).min(u8::MAX as usize) as u8)
    }
}

/// Path-management signals a subflow received (RFC 8684 §3.4), for the
/// stack to give to the connection's path manager. Bounded: beyond
/// [`MAX_REMOTE`] each, later ones are dropped (and counted by the
/// caller).
#[derive(Debug, Clone, Default)]
pub struct Signals {
    /// Addresses announced with a valid HMAC: (Address ID, address, port;
    /// `None`: the first subflow's port).
    pub added: Vec<(u8, Ipv4Addr, Option<u16>)>,
    /// Address IDs withdrawn.
    pub removed: Vec<u8>,
    /// The announcement to echo (RFC 8684 §3.4.1: "the receiver MUST
    /// acknowledge ... with an ADD_ADDR option with the E bit set").
    pub echo: Option<AddAddr>,
}

impl Signals {
    /// Whether the stack has something to take.
    pub fn pending(&self) -> bool {
        !self.added.is_empty() || !self.removed.is_empty()
    }

    /// A received ADD_ADDR (not an echo) whose HMAC is checked with the
    /// connection's keys: `sender` the peer's, `receiver` ours (§3.4.1:
    /// HMAC(Key=(Key-A + Key-B), Msg=(Address ID + IP Address + Port)),
    /// A the sender). Returns whether it was accepted; an IPv6 address
    /// is acknowledged but not used (the stack is IPv4).
    pub fn on_add_addr(&mut self, a: &AddAddr, sender: Key, receiver: Key) -> bool {
        if a.echo {
            return true;
        }
        let want = crypto::add_addr_hmac(sender, receiver, a.addr_id, a.addr, a.port);
        if a.hmac != Some(want) {
            return false;
        }
        self.echo = Some(AddAddr {
            echo: true,
            hmac: None,
            ..*a
        });
        if let (IpAddr::V4(ip), true) = (a.addr, self.added.len() < MAX_REMOTE) {
            self.added.push((a.addr_id, ip, a.port));
        }
        true
    }

    /// A received REMOVE_ADDR (§3.4.2).
    pub fn on_remove_addr(&mut self, ids: &[u8]) {
        for &id in ids {
            if self.removed.len() < MAX_REMOTE && !self.removed.contains(&id) {
                self.removed.push(id);
            }
        }
    }
}

#[cfg(test)]
mod tests;
