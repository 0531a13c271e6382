//! MPTCP keys and tokens of one stack (RFC 8684 §3.1): every connection
//! using MPTCP gets a key whose token no other connection here holds, so a
//! later MP_JOIN names exactly one connection.

use super::{ConnId, Stack};
use crate::io::{Device, Frame};
use crate::mptcp::KeySource;
use crate::tcp::Connection;
use hashbrown::HashMap;

/// Draws before giving up on a unique token (2^-32 odds each): the
/// connection then falls back to plain TCP rather than share one.
const MAX_DRAWS: u32 = 16;

/// The key source and the tokens in use.
pub(super) struct Tokens {
    keys: KeySource,
    in_use: HashMap<u32, ConnId>,
}

impl Tokens {
    pub(super) fn new(secret: &[u8; 16]) -> Self {
        Tokens {
            keys: KeySource::new(secret),
            in_use: HashMap::new(),
        }
    }
}

impl<D: Device> Stack<D> {
    /// Give connection `id` its MPTCP key if it wants one (an active open
    /// with MPTCP on, or a passive one whose peer offered it).
    pub(super) fn mptcp_assign_key(&mut self, id: ConnId) {
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };
        if !e.conn.mptcp_wants_key() {
            return;
        }
        for _ in 0..MAX_DRAWS {
            let key = self.mptcp.keys.next_key();
            let token = key.token();
            if self.mptcp.in_use.contains_key(&token) {
                self.iface.counters.mptcp_token_collisions += 1;
                continue;
            }
            self.mptcp.in_use.insert(token, id);
            e.conn.set_mptcp_key(key);
            return;
        }
    }

    /// Connection `id` is gone: its token is free again.
    pub(super) fn mptcp_release<F: Frame>(&mut self, id: ConnId, conn: &Connection<F>) {
        if let Some(t) = conn.mptcp().and_then(|m| m.local_token()) {
            if self.mptcp.in_use.get(&t) == Some(&id) {
                self.mptcp.in_use.remove(&t);
            }
        }
    }

    /// Tokens held by live connections.
    pub fn mptcp_tokens(&self) -> usize {
        self.mptcp.in_use.len()
    }
}
