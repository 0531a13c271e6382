//! A TCP connection (or an MPTCP connection, its first subflow with the
//! connection level) moves with its application state to the worker
//! where its packets arrive (`stack::TcpMigrant`; issue 6 item 4): the
//! glue between the stack and [`App::export`] / [`App::import`], the same
//! for the runtime's workers and for tests that run two stacks as two.

use crate::app::App;
use crate::io::Device;
use crate::stack::{ConnId, Stack, TcpMigrant};
use crate::tcp::FourTuple;
use crate::time::Instant;
use std::any::Any;

/// A connection and its application's state on their way to another
/// worker.
pub struct ConnMove<F: crate::io::Frame> {
    conn: TcpMigrant<F>,
    state: Box<dyn Any + Send>,
}

impl<F: crate::io::Frame> ConnMove<F> {
    /// Its flow.
    pub fn tuple(&self) -> FourTuple {
        self.conn.tuple()
    }

    /// The MPTCP token of the connection, if it is one (`TcpMigrant::token`).
    pub fn token(&self) -> Option<u32> {
        self.conn.token()
    }
}

/// A segment of `tuple` that another worker received was just run in
/// `stack` (`syn_ack`: it was a SYN/ACK). Returns the connection with
/// `app`'s state for it, taken out of both, when it should move to that
/// worker (`Stack::tcp_stray`) and the app can move it; otherwise it stays.
pub fn move_out<D: Device, A: App<D> + ?Sized>(
    stack: &mut Stack<D>,
    app: &mut A,
    now: Instant,
    tuple: &FourTuple,
    syn_ack: bool,
) -> Option<ConnMove<D::Frame>> {
    move_out_of(core::slice::from_mut(stack), 0, app, now, tuple, syn_ack)
}

/// [`move_out`] from `stacks[i]`, one of a worker's stacks (one per
/// interface): an MPTCP connection's joined subflows in the others follow
/// it too (`stack::mptcp_conn_unlink`).
pub fn move_out_of<D: Device, A: App<D> + ?Sized>(
    stacks: &mut [Stack<D>],
    i: usize,
    app: &mut A,
    now: Instant,
    tuple: &FourTuple,
    syn_ack: bool,
) -> Option<ConnMove<D::Frame>> {
    let id = stacks.get_mut(i)?.tcp_stray(now, tuple, syn_ack)?;
    if !crate::stack::mptcp_conn_subs_ready(stacks, i, id) {
        return None;
    }
    let state = app.export(id)?;
    crate::stack::mptcp_conn_unlink(stacks, i, id);
    let stack = &mut stacks[i];
    match stack.tcp_migrate_out(id) {
        Some(conn) => Some(ConnMove { conn, state }),
        None => {
            // Cannot happen (`tcp_stray` just found it); the app gets its
            // state back all the same.
            let _ = app.import(stack, now, id, state);
            None
        }
    }
}

/// Install `m` in `stack` and its state in `app`, at `now`. Given back
/// whole, with the app's state, if the flow is in `stack` already or the
/// app cannot take the state: the caller puts it back where it came from
/// (nothing the application accepted is lost on a move).
#[allow(clippy::result_large_err)]
pub fn move_in<D: Device, A: App<D> + ?Sized>(
    stack: &mut Stack<D>,
    app: &mut A,
    now: Instant,
    m: ConnMove<D::Frame>,
) -> Result<ConnId, ConnMove<D::Frame>> {
    let ConnMove { conn, state } = m;
    let id = match stack.tcp_migrate_install(now, conn) {
        Ok(id) => id,
        Err(conn) => return Err(ConnMove { conn, state }),
    };
    match app.import(stack, now, id, state) {
        Ok(()) => {
            stack.tcp_migrate_commit(id);
            Ok(id)
        }
        Err(state) => match stack.tcp_migrate_uninstall(id) {
            Some(conn) => Err(ConnMove { conn, state }),
            // Cannot happen (installed just above, nothing ran since).
            None => Ok(id),
        },
    }
}

/// [`App::import`] for an app that keeps its connections' state of type
/// `T` by id: `state` given back (the connection goes back where it was)
/// if it is not a `T`.
pub fn adopt<T: 'static>(
    conns: &mut hashbrown::HashMap<ConnId, T>,
    id: ConnId,
    state: Box<dyn Any + Send>,
) -> Result<(), Box<dyn Any + Send>> {
    let c = state.downcast::<T>()?;
    conns.insert(id, *c);
    Ok(())
}
