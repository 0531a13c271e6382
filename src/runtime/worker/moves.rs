//! Flows that follow their packets: a move that arrives here is installed
//! (or sent back, `Returns`), and a flow whose packets keep arriving on
//! another worker moves there.

use super::{Inbound, RuntimeApp, Worker};
use crate::app_migrate::{move_in, move_out_of, ConnMove};
use crate::io::xdp::XdpFrame;
use crate::runtime::returns::Arrival;
use crate::runtime::tokens::TokenInsert;
use crate::stack::Migrant;
use crate::tcp::FourTuple;
use crate::time::Instant;

impl<A: RuntimeApp> Worker<A> {
    /// An MPTCP subflow that moves here (`Inbound::Flow`) from worker
    /// `from`; `back`: it comes back, refused there.
    pub(super) fn install_flow(
        &mut self,
        iface: usize,
        from: usize,
        back: bool,
        flow: Box<Migrant<XdpFrame>>,
        t: Instant,
    ) {
        let me = self.me;
        let tuple = flow.tuple();
        let Some(stack) = self.stacks.get_mut(iface) else {
            return;
        };
        let res = stack
            .mptcp_migrate_try_in(t, *flow, back)
            .map_err(|flow| Inbound::Flow {
                iface,
                from: me,
                back: true,
                flow: Box::new(flow),
            });
        let arrival = Arrival {
            iface,
            tuple,
            from,
            back,
        };
        self.returns.settle(
            res,
            arrival,
            &self.inboxes,
            &mut self.moved,
            t,
            &mut self.st,
        );
    }

    /// A TCP or MPTCP connection that moves here with its app's state
    /// (`Inbound::Conn`), the same way.
    pub(super) fn install_conn(
        &mut self,
        iface: usize,
        from: usize,
        back: bool,
        conn: Box<ConnMove<XdpFrame>>,
        t: Instant,
    ) {
        let me = self.me;
        let (Some(stack), Some(app)) = (self.stacks.get_mut(iface), self.apps.get_mut(iface))
        else {
            return;
        };
        let (tuple, token) = (conn.tuple(), conn.token());
        let conn = if self.refuse_moves && !back {
            Err(*conn)
        } else {
            move_in(stack, app, t, *conn)
        };
        // Refused here (its flow, or its MPTCP token, held
        // here already: tokens are unique per stack; or the
        // app refused): back to the worker that still holds
        // its token.
        let res = conn.map(drop).map_err(|conn| Inbound::Conn {
            iface,
            from: me,
            back: true,
            conn: Box::new(conn),
        });
        let arrival = Arrival {
            iface,
            tuple,
            from,
            back,
        };
        let arrived = self.returns.settle(
            res,
            arrival,
            &self.inboxes,
            &mut self.moved,
            t,
            &mut self.st,
        );
        // RFC 8684 §3.2: joins for its token come here from
        // now on.
        if let Some(tk) = token.filter(|_| arrived && from != me) {
            match self.tokens.transfer(tk, from, me) {
                TokenInsert::Ok => {}
                TokenInsert::HeldElsewhere => self.st.token_conflicts += 1,
                TokenInsert::Full => self.st.token_directory_full += 1,
            }
        }
    }

    /// A segment of `tuple` (run here) that arrived on worker `to`: the
    /// flow moves there, where its packets arrive, if it can (an MPTCP
    /// subflow, or a connection with its app's state); if `to`'s inbox
    /// is full it stays here (never lost).
    pub(super) fn move_out(
        &mut self,
        iface: usize,
        to: usize,
        tuple: FourTuple,
        syn_ack: bool,
        t: Instant,
    ) {
        let me = self.me;
        let st = &mut self.st;
        let Some(stack) = self.stacks.get_mut(iface) else {
            return;
        };
        if let Some(flow) = stack.mptcp_stray(t, &tuple, syn_ack) {
            let i = Inbound::Flow {
                iface,
                from: me,
                back: false,
                flow: Box::new(flow),
            };
            match self.inboxes[to].push_any(i) {
                Ok(()) => {
                    self.moved.record(iface, tuple, to, t);
                    st.flows_migrated_out += 1;
                }
                // The inbox is full: it stays here (never lost).
                Err(Inbound::Flow { flow, .. }) => {
                    if stack.mptcp_migrate_try_in(t, *flow, true).is_err() {
                        st.flows_migration_dropped += 1;
                    }
                }
                Err(_) => {}
            }
        } else if let Some(m) = self
            .apps
            .get_mut(iface)
            .and_then(|app| move_out_of(&mut self.stacks, iface, app, t, &tuple, syn_ack))
        {
            let Some(stack) = self.stacks.get_mut(iface) else {
                return;
            };
            // A connection goes with its app's state (an MPTCP one
            // with its connection level and token); if the inbox is
            // full it stays here (never lost).
            let i = Inbound::Conn {
                iface,
                from: me,
                back: false,
                conn: Box::new(m),
            };
            match self.inboxes[to].push_any(i) {
                Ok(()) => {
                    self.moved.record(iface, tuple, to, t);
                    st.flows_migrated_out += 1;
                }
                Err(Inbound::Conn { conn, .. }) => {
                    let back = self
                        .apps
                        .get_mut(iface)
                        .is_some_and(|app| move_in(stack, app, t, *conn).is_ok());
                    if !back {
                        st.flows_migration_dropped += 1;
                    }
                }
                Err(_) => {}
            }
        }
    }
}
