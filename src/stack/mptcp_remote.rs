//! MPTCP across workers (RFC 8684 §3.2, §3.3; issue 8, stage 2). A
//! subflow is run by the worker where its packets arrive, its connection
//! by the worker holding its token; the two stacks exchange messages
//! ([`RemoteMsg`]) that the runtime carries over bounded lock-free rings,
//! one per pair of workers, in order.
//!
//! The subflow's worker (B) receives a join SYN whose token none of its
//! stacks holds, but another worker does (the runtime's token directory,
//! through [`Stack::mptcp_set_remote`]'s `locate`): it asks that worker
//! (A) for what the join needs (keys, first address, subflow count,
//! coupled congestion group, the DATA_ACK and window), and A answers.
//! The subflow then lives in B: its packets are processed there, its
//! in-order mapped frames go to A's data level (handed over, not copied:
//! both workers' stacks of an interface share its UMEM), and A's DATA_ACK
//! and window come back with the emptied queue (and are read before each
//! segment from the connection's `LevelCell`, whose `Arc` the answer
//! carries: RFC 8684 §3.3.4, the connection-level window). A tells B
//! when the subflow must close (the DATA_FIN acknowledged, a REMOVE_ADDR,
//! our address withdrawn, MP_FASTCLOSE); B tells A when it joined or
//! went, and the path-management signals it received.
//!
//! Our data goes the other way: A's scheduler has a slot for the
//! subflow, B publishes what it can take (`View`, once per worker pass
//! when it changed, with the peer's DATA_ACK it saw), and A hands it
//! the chunks granted (`Chunks`, see `tcp::conn::mptcp_tx::remote`):
//! the connection's own frames, lent (the workers share one UMEM), or
//! copies in frames of the subflow's interface when that is another
//! pool. B returns the lent frames its subflow's ACK freed (`Back`,
//! once a pass, at most [`MAX_BACK`] a message), and all it holds
//! before telling A that the subflow went; A frees them at the
//! DATA_ACK, or reads them for a reinjection. The buffers of `Chunks`
//! and `Back` go round: each message carries one of the other kind home
//! (`mptcp_spares`), so the steady state allocates none. So such a
//! subflow carries the connection on when A's own subflows die (RFC 8684
//! §3.3.6): our DATA_FIN rides its FIN (`Close`), the peer's comes in
//! its data.

use super::mptcp::{JoinTarget, Joined, MetaReply};
use super::mptcp_foreign::PendingJoin;
use super::mptcp_spares::{count_growth, Spares};
use super::{ConnId, Stack};
use crate::io::Device;
use crate::mptcp::join::JoinSyn;
use crate::mptcp::pm::Signals;
use crate::mptcp::RxDsn;
use crate::tcp::{Chunk, CopyRanges, RemoteSlot, RemoteView, Returned};
use crate::time::Instant;
use core::net::Ipv4Addr;
use std::borrow::BorrowMut;

/// Joins waiting for another worker's answer, at most (beyond: refused
/// as an unknown token; the peer retries).
const MAX_ASKS: usize = 64;

/// Frames one `Back` message returns at most (more go with the next).
const MAX_BACK: usize = 64;

/// How long a join waits for another worker's answer before a
/// retransmission of its SYN asks again: longer than a question waits
/// for a moving connection (`mptcp_rehome`'s 3 s) before it is dropped,
/// so a dropped question or a lost answer never leaves the join unheard.
const ASK_EXPIRY: core::time::Duration = core::time::Duration::from_secs(4);

/// A connection in another worker's stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetaRef {
    /// Its stack's index among the worker's (one per interface).
    pub stack: usize,
    pub conn: ConnId,
    /// Its token (a `ConnId` alone could name a later connection).
    pub token: u32,
}

/// A subflow in another worker's stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubRef {
    pub stack: usize,
    pub conn: ConnId,
}

/// What the token's worker answers a join with.
#[derive(Debug)]
pub struct JoinAnswer {
    pub target: JoinTarget,
    pub stack: usize,
    /// The connection's DATA_ACK and window (RFC 8684 §3.3.4), for the
    /// subflow's fourth ACK.
    pub level: Option<crate::tcp::DataLevelView>,
    /// Where the connection publishes them (`LevelCell`), read by the
    /// subflow before each segment (one process: shared, not copied).
    pub cell: Option<std::sync::Arc<crate::tcp::conn::LevelCell>>,
}

/// Why the connection tells a subflow to close.
#[derive(Debug, Clone, Copy)]
pub enum CloseHow {
    /// RFC 8684 §3.3.3: the connection ended (its DATA_FIN at this DSN
    /// when the first subflow is gone).
    DataFin(Option<u64>),
    /// §3.4.2: the peer withdrew this Address ID (`None`: all, with
    /// MP_FASTCLOSE, §3.5).
    Remove(Option<u8>),
    /// §3.4.2: our address was withdrawn.
    Withdrawn(Ipv4Addr),
}

/// A message between the stacks of two workers (B: the subflow's, A: the
/// connection's).
pub enum RemoteMsg<F> {
    /// B → A: which connection holds `token`? (`tag` names the waiting
    /// join in B's stack `stack`.)
    JoinAsk { token: u32, stack: usize, tag: u32 },
    /// A → B: the answer; `None`: no established MPTCP connection holds it.
    JoinInfo {
        stack: usize,
        tag: u32,
        answer: Option<Box<JoinAnswer>>,
    },
    /// B → A: subflow `sub` joined the connection (`up`) or went (with
    /// the last DATA_ACK it saw and did not pass on); `moved`: it moved
    /// here from where it ran (`mptcp_migrate`) and keeps its place in
    /// A's scheduler.
    Joined {
        to: MetaRef,
        sub: SubRef,
        up: bool,
        ack: Option<RxDsn>,
        moved: Option<MovedFrom>,
    },
    /// B → A: the subflow's in-order mapped data and DATA_FIN.
    Data {
        to: MetaRef,
        sub: SubRef,
        items: Joined<F>,
    },
    /// A → B: the emptied queue, DATA_ACK and window, an ACK due, or a
    /// reset (an invalid mapping, or the connection is gone).
    Reply {
        sub: SubRef,
        of: MetaRef,
        reply: MetaReply<F>,
    },
    /// B → A: path-management signals received on the subflow.
    Signals { to: MetaRef, sig: Signals },
    /// B → A: what the subflow can take now, and the DATA_ACK it saw
    /// (`spare`: a `Chunks` buffer B emptied, going home: it answers
    /// `Chunks` more often than `Back` does).
    View {
        to: MetaRef,
        sub: SubRef,
        v: RemoteView,
        spare: Vec<Chunk<F>>,
    },
    /// A → B: our data for the subflow (the first, maybe empty, also
    /// tells it that it sends for the connection, `csum`: with DSS
    /// checksums; `penalise`: the scheduler penalised the subflow, its
    /// window is halved; `copy_back`: a reinjection needs copies of the
    /// frames lent to it that overlap these DSN ranges; `spare`: a `Back`
    /// buffer A emptied, going home, `mptcp_spares`).
    Chunks {
        sub: SubRef,
        of: MetaRef,
        csum: bool,
        penalise: bool,
        copy_back: CopyRanges,
        items: Vec<Chunk<F>>,
        spare: Vec<Returned<F>>,
    },
    /// B → A: frames the connection lent to subflow `sub` that its ACK
    /// freed (or copies of those it still holds, or chunks it could not
    /// take): the connection's again. `untaken`: chunks (lent or copies)
    /// that found the subflow gone from B (moved on): to send again.
    /// `spare`: a `Chunks` buffer B emptied, going home.
    Back {
        to: MetaRef,
        sub: SubRef,
        frames: Vec<Returned<F>>,
        untaken: bool,
        spare: Vec<Chunk<F>>,
    },
    /// A → B: close the subflow.
    Close {
        sub: SubRef,
        of: MetaRef,
        how: CloseHow,
    },
    /// A → B: the connection moved to A (as `of`): the subflow's messages
    /// go there from now on (`mptcp_rehome`).
    Rehome { sub: SubRef, of: MetaRef },
    /// A message for a connection that moved on, forwarded by a worker to
    /// the one holding its token: `from` sent it, `hops` forwards so far.
    Via {
        from: usize,
        hops: u8,
        msg: Box<RemoteMsg<F>>,
    },
}

/// A `Chunks` message's chunks, and the `Back` buffer that came home
/// with them.
type ChunksIn<F> = (Vec<Chunk<F>>, Vec<Returned<F>>);

/// A `Back` message's frames, and the `Chunks` buffer that came home
/// with them.
type BackIn<F> = (Vec<Returned<F>>, Vec<Chunk<F>>);

/// Where a subflow that moved to another worker ran before
/// (`mptcp_migrate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MovedFrom {
    /// In A, the connection's worker, with this place in its scheduler
    /// (none yet).
    Slot(Option<usize>),
    /// In another worker, as subflow `SubRef` there.
    Sub(usize, SubRef),
}

/// A joined subflow's link to its connection in another worker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteOf {
    pub worker: usize,
    pub meta: MetaRef,
    /// Its data is on the way to the connection: the next goes once the
    /// reply is back (one message in flight per subflow).
    pub busy: bool,
}

/// This stack's exchanges with other workers.
pub(super) struct Remote<F> {
    /// This worker, and this stack's index among its stacks.
    pub(super) me: usize,
    pub(super) stack: usize,
    /// The worker holding a token, if any (the token directory).
    pub(super) locate: Box<dyn Fn(u32) -> Option<usize>>,
    /// Messages to send: (worker, message).
    pub(super) out: Vec<(usize, RemoteMsg<F>)>,
    /// Joins waiting for an answer: (tag, the join).
    asks: Vec<(u32, PendingJoin)>,
    next_tag: u32,
    /// Subflows in other workers of connections here.
    pub(super) subs: Vec<Sub>,
    /// Subflows here of connections in other workers, and the view each
    /// published last.
    pub(super) mine: Vec<(ConnId, RemoteView)>,
    /// Tokens of connections that left this stack for another worker,
    /// until the token directory names it (or they came back): messages
    /// for them wait in `parked` (`mptcp_rehome`). The time is set on
    /// the first pass that sees it.
    pub(super) moving: Vec<(u32, Option<Instant>)>,
    /// Messages for those: (sender, forwards so far, message).
    pub(super) parked: Vec<(usize, u8, RemoteMsg<F>)>,
    /// Emptied `Back` and `Chunks` buffers, for the next messages (or to
    /// go home with them).
    rets: Spares<Returned<F>>,
    chunk_bufs: Spares<Chunk<F>>,
}

impl<F> Remote<F> {
    fn new(me: usize, stack: usize, locate: Box<dyn Fn(u32) -> Option<usize>>) -> Self {
        Remote {
            me,
            stack,
            locate,
            out: Vec::new(),
            asks: Vec::new(),
            next_tag: 0,
            subs: Vec::new(),
            mine: Vec::new(),
            moving: Vec::new(),
            parked: Vec::new(),
            rets: Spares::default(),
            chunk_bufs: Spares::default(),
        }
    }

    /// `Back` of `frames` for connection `to` in `worker` from subflow
    /// `sub` here, with a `Chunks` buffer going home. Every `Back` goes
    /// this way.
    fn send_back(
        &mut self,
        worker: usize,
        (to, sub): (MetaRef, SubRef),
        frames: Vec<Returned<F>>,
        untaken: bool,
    ) {
        let spare = self.chunk_bufs.take();
        let msg = RemoteMsg::Back {
            to,
            sub,
            frames,
            untaken,
            spare,
        };
        self.out.push((worker, msg));
    }

    /// Join `p` waits for an answer: the question to send (`Some(None)`:
    /// it waits already, the peer's SYN again; `None`: too many wait).
    pub(super) fn ask(&mut self, p: PendingJoin) -> Option<Option<RemoteMsg<F>>> {
        // A question unanswered for that long was dropped on the way;
        // its late answer, if any, then finds no tag and is ignored.
        self.asks
            .retain(|a| p.now.saturating_since(a.1.now) < ASK_EXPIRY);
        if self.asks.iter().any(|a| a.1.tuple == p.tuple) {
            return Some(None);
        }
        if self.asks.len() >= MAX_ASKS {
            return None;
        }
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1);
        self.asks.push((tag, p));
        let (token, stack) = (p.token, self.stack);
        Some(Some(RemoteMsg::JoinAsk { token, stack, tag }))
    }
}

/// A subflow in another worker of a connection here (it moves with the
/// connection: `mptcp_rehome`).
pub(super) struct Sub {
    pub(super) meta: ConnId,
    pub(super) worker: usize,
    pub(super) sub: SubRef,
    /// Its slot in the connection's scheduler (none: it does not
    /// schedule, or no room).
    pub(super) rs: Option<RemoteSlot>,
}

impl<D: Device> Stack<D> {
    /// This stack is `stack` of worker `me` among several: joins for
    /// tokens another worker holds (`locate(token)`) are run here, with
    /// that worker (see the module's doc).
    pub fn mptcp_set_remote(
        &mut self,
        me: usize,
        stack: usize,
        locate: Box<dyn Fn(u32) -> Option<usize>>,
    ) {
        self.remote = Some(Box::new(Remote::new(me, stack, locate)));
    }

    /// The messages for other workers since the last call: `f(worker,
    /// message)`, in order. What this stack's subflows of connections
    /// elsewhere can take now goes with them, when it changed.
    pub fn mptcp_remote_drain(&mut self, mut f: impl FnMut(usize, RemoteMsg<D::Frame>)) {
        self.mptcp_remote_publish();
        if let Some(r) = self.remote.as_deref_mut() {
            for (w, m) in r.out.drain(..) {
                f(w, m);
            }
        }
    }

    pub(super) fn remote_send(&mut self, worker: usize, msg: RemoteMsg<D::Frame>) {
        if let Some(r) = self.remote.as_deref_mut() {
            r.out.push((worker, msg));
        }
    }

    /// A join SYN whose token no stack of this worker holds: ask the
    /// worker holding it (or, while its connection leaves this stack,
    /// the one it goes to: `mptcp_rehome::park_join`). False when none
    /// does (refuse it).
    pub(super) fn mptcp_remote_ask(&mut self, p: PendingJoin) -> bool {
        let Some(r) = self.remote.as_deref_mut() else {
            return false;
        };
        let Some(w) = (r.locate)(p.token).filter(|&w| w != r.me) else {
            return super::mptcp_rehome::park_join(&mut [&mut *self], 0, p);
        };
        match r.ask(p) {
            Some(Some(m)) => r.out.push((w, m)),
            Some(None) => {}
            None => return false,
        }
        true
    }

    /// After input on subflow `id` of a connection in another worker: its
    /// mapped data, if any, goes there (RFC 8684 §3.3), one message at a
    /// time.
    pub(super) fn mptcp_remote_forward(&mut self, id: ConnId) {
        let Some(stack) = self.remote.as_deref().map(|r| r.stack) else {
            return;
        };
        let Some(e) = self.conns.get_mut(id) else {
            return;
        };
        let Some(ro) = e.remote_of.filter(|r| !r.busy) else {
            return;
        };
        let Some(items) = e.conn.mptcp_take_joined() else {
            return;
        };
        if let Some(r) = e.remote_of.as_mut() {
            r.busy = true;
        }
        let bytes: usize = items.0.iter().map(|(_, p)| p.len()).sum();
        self.iface.counters.mptcp_remote_bytes += bytes as u64;
        let sub = SubRef { stack, conn: id };
        self.remote_send(
            ro.worker,
            RemoteMsg::Data {
                to: ro.meta,
                sub,
                items,
            },
        );
    }

    /// Subflow `id`, of a connection in another worker, is gone (`ack`:
    /// the last DATA_ACK it saw, not passed on yet; `back`: the frames
    /// of the connection's it held, which go back first: its data is
    /// reinjected from them, RFC 8684 §3.3.6).
    pub(super) fn mptcp_remote_released(
        &mut self,
        id: ConnId,
        ro: RemoteOf,
        ack: Option<RxDsn>,
        back: Vec<Returned<D::Frame>>,
    ) {
        let Some(r) = self.remote.as_deref_mut() else {
            return;
        };
        r.mine.retain(|m| m.0 != id);
        let sub = SubRef {
            stack: r.stack,
            conn: id,
        };
        let to = ro.meta;
        let made = &mut self.iface.counters.mptcp_remote_back_bufs;
        let mut back = back.into_iter();
        while back.len() > 0 {
            let mut frames = r.rets.take_at_least(MAX_BACK, made);
            frames.extend(back.by_ref().take(MAX_BACK));
            r.send_back(ro.worker, (to, sub), frames, false);
        }
        r.out.push((
            ro.worker,
            RemoteMsg::Joined {
                to,
                sub,
                up: false,
                ack,
                moved: None,
            },
        ));
    }

    /// Each subflow here of a connection in another worker tells it what
    /// it can take, when that changed or it saw a DATA_ACK (RFC 8684
    /// §3.3.2: the DATA_ACK may come on any subflow).
    fn mptcp_remote_publish(&mut self) {
        let Some(r) = self.remote.as_deref_mut() else {
            return;
        };
        let stack = r.stack;
        for k in 0..r.mine.len() {
            let Some(&(id, _)) = r.mine.get(k) else {
                break;
            };
            let Some(e) = self.conns.get_mut(id) else {
                continue;
            };
            let Some(ro) = e.remote_of else { continue };
            // The lent frames its ACKs freed (before the view: the room
            // they made is the connection's again first), in a buffer come
            // home with a `Chunks`.
            if e.conn.mptcp_has_returns() {
                let made = &mut self.iface.counters.mptcp_remote_back_bufs;
                let mut frames = r.rets.take_at_least(MAX_BACK, made);
                e.conn.mptcp_returns_into(&mut frames, MAX_BACK);
                let sub = SubRef { stack, conn: id };
                r.send_back(ro.worker, (ro.meta, sub), frames, false);
            }
            let Some(v) = e.conn.mptcp_remote_view_out() else {
                continue;
            };
            let news = v.data_ack.is_some() || v.edge_seen.is_some();
            let shape = RemoteView {
                data_ack: None,
                edge_seen: None,
                ..v
            };
            let Some((_, last)) = r.mine.get_mut(k) else {
                break;
            };
            if !news && shape == *last {
                continue;
            }
            *last = shape;
            let sub = SubRef { stack, conn: id };
            r.out.push((
                ro.worker,
                RemoteMsg::View {
                    to: ro.meta,
                    sub,
                    v,
                    spare: r.chunk_bufs.take(),
                },
            ));
        }
    }

    /// Signals subflow `id` received, for its connection in another
    /// worker.
    pub(super) fn mptcp_remote_signals(&mut self, ro: RemoteOf, sig: Signals) {
        self.remote_send(ro.worker, RemoteMsg::Signals { to: ro.meta, sig });
    }

    /// Connection `meta` here tells its subflows in other workers to close.
    pub(super) fn mptcp_remote_close(&mut self, meta: ConnId, how: CloseHow) {
        let Some(token) = self.mptcp_token_of(meta) else {
            return;
        };
        let Some(r) = self.remote.as_deref_mut() else {
            return;
        };
        let of = MetaRef {
            stack: r.stack,
            conn: meta,
            token,
        };
        for s in &r.subs {
            if s.meta == meta {
                let sub = s.sub;
                r.out.push((s.worker, RemoteMsg::Close { sub, of, how }));
            }
        }
    }

    /// Whether connection `meta` here has subflows in other workers.
    pub(super) fn mptcp_remote_has_subs(&self, meta: ConnId) -> bool {
        self.remote
            .as_deref()
            .is_some_and(|r| r.subs.iter().any(|s| s.meta == meta))
    }

    /// Connection `meta` here is gone: forget its subflows elsewhere (told
    /// to close before, when it ended).
    pub(super) fn mptcp_remote_forget(&mut self, meta: ConnId) {
        if let Some(r) = self.remote.as_deref_mut() {
            r.subs.retain(|s| s.meta != meta);
        }
    }

    /// The token connection `meta` holds, if it still holds it.
    fn mptcp_token_of(&self, meta: ConnId) -> Option<u32> {
        let t = self.conns.get(meta)?.conn.mptcp()?.local_token()?;
        self.mptcp_holds(t, meta).then_some(t)
    }

    /// A message from a worker's subflow for connection `to` here: whether
    /// `to` still names that connection.
    pub(super) fn mptcp_meta_valid(&self, to: &MetaRef) -> bool {
        self.mptcp_holds(to.token, to.conn)
    }

    fn mptcp_join_info(&mut self, now: Instant, from: usize, tag: u32, a: Option<Box<JoinAnswer>>) {
        let Some(r) = self.remote.as_deref_mut() else {
            return;
        };
        let Some(i) = r.asks.iter().position(|x| x.0 == tag) else {
            return;
        };
        let (_, p) = r.asks.swap_remove(i);
        let stack = r.stack;
        let syn = JoinSyn::find(p.seg.options.mptcp.as_slice());
        let (Some(a), Some(syn)) = (a, syn) else {
            self.iface.counters.mptcp_joins_rejected_token += 1;
            self.send_join_reset(now, &p.tuple, &p.seg);
            return;
        };
        let JoinAnswer {
            target,
            stack: meta_stack,
            level,
            cell,
        } = *a;
        let meta = MetaRef {
            stack: meta_stack,
            conn: target.conn,
            token: p.token,
        };
        let ro = RemoteOf {
            worker: from,
            meta,
            busy: false,
        };
        let of = super::mptcp::JoinOf::Worker(ro);
        let Some(id) = self.mptcp_accept_join(now, p.tuple, &p.seg, p.port, &syn, target, of)
        else {
            return;
        };
        if let Some(e) = self.conns.get_mut(id) {
            if let Some(v) = level {
                e.conn.mptcp_set_data_level(v);
            }
            // From now on it reads the connection's level before each
            // segment (`Stack::mptcp_refresh_level`).
            e.level = cell;
        }
        self.iface.counters.mptcp_remote_subflows += 1;
        if let Some(r) = self.remote.as_deref_mut() {
            r.mine.push((id, RemoteView::default()));
        }
        let sub = SubRef { stack, conn: id };
        self.remote_send(
            from,
            RemoteMsg::Joined {
                to: meta,
                sub,
                up: true,
                ack: None,
                moved: None,
            },
        );
    }

    /// A subflow in worker `from` joined connection `to.conn` here, or
    /// went (`ack`: the last DATA_ACK it saw).
    fn mptcp_remote_joined(
        &mut self,
        from: usize,
        to: MetaRef,
        sub: SubRef,
        (up, moved): (bool, Option<MovedFrom>),
        ack: Option<RxDsn>,
    ) {
        if !self.mptcp_meta_valid(&to) {
            if up {
                // The connection went meanwhile: so does the subflow.
                let how = CloseHow::Remove(None);
                self.remote_send(from, RemoteMsg::Close { sub, of: to, how });
            } else {
                self.iface.counters.mptcp_remote_msgs_gone += 1;
            }
            return;
        }
        if let Some(MovedFrom::Sub(w, old)) = moved {
            if self.mptcp_remote_moved(from, to, sub, (w, old)) {
                self.remote_send(from, RemoteMsg::Rehome { sub, of: to });
                return;
            }
        }
        self.mptcp_count_join(to.conn, to.token, up);
        if !up {
            let Some(r) = self.remote.as_deref_mut() else {
                return;
            };
            let Some(i) = r.subs.iter().position(|s| s.worker == from && s.sub == sub) else {
                return;
            };
            let gone = r.subs.swap_remove(i);
            if let Some(e) = self.conns.get_mut(to.conn) {
                if let Some(a) = ack {
                    e.conn.mptcp_note_data_ack(a);
                }
                // RFC 8684 §3.3.6: what it was given goes on the others
                // (with none left, the connection is reset).
                if let Some(rs) = gone.rs {
                    e.conn.mptcp_slot_gone(rs.slot);
                }
            }
            self.mark_dirty(to.conn);
            return;
        }
        let Some(e) = self.conns.get_mut(to.conn) else {
            return;
        };
        // RFC 8684 §3.7: no fallback to TCP once joined; and the
        // scheduler gets a slot for it.
        e.conn.mptcp_mark_joined();
        // A subflow that moved keeps its place (and what it was given).
        let reg = match moved {
            Some(MovedFrom::Slot(Some(slot))) => e.conn.mptcp_remote_slot_kept(slot),
            _ => None,
        }
        .or_else(|| e.conn.mptcp_register_remote());
        let Some(r) = self.remote.as_deref_mut() else {
            return;
        };
        if moved.is_some() {
            // It may still name the worker its connection left
            // (`mptcp_rehome`).
            r.out.push((from, RemoteMsg::Rehome { sub, of: to }));
        }
        r.subs.push(Sub {
            meta: to.conn,
            worker: from,
            sub,
            rs: reg.map(|(slot, _)| RemoteSlot {
                slot,
                ..RemoteSlot::default()
            }),
        });
        if let Some((_, csum)) = reg {
            let items = Vec::new();
            let (of, w) = (to, from);
            r.out.push((
                w,
                RemoteMsg::Chunks {
                    sub,
                    of,
                    csum,
                    penalise: false,
                    copy_back: CopyRanges::default(),
                    items,
                    spare: Vec::new(),
                },
            ));
        }
    }

    /// Subflow `old` of worker `w`, of connection `of` here, moved to
    /// worker `from` as `sub` with its send queue and the frames lent to
    /// it: it keeps its place in the scheduler and what it was given
    /// (returned from its new worker, as a local subflow's move does);
    /// only the chunks still on their way to its old worker come back
    /// from there untaken, to go again. False if it is not known here.
    fn mptcp_remote_moved(
        &mut self,
        from: usize,
        of: MetaRef,
        sub: SubRef,
        (w, old): (usize, SubRef),
    ) -> bool {
        let meta = of.conn;
        let Some(r) = self.remote.as_deref_mut() else {
            return false;
        };
        let Some(s) = r
            .subs
            .iter_mut()
            .find(|s| s.meta == meta && s.worker == w && s.sub == old)
        else {
            return false;
        };
        s.worker = from;
        s.sub = sub;
        let rs = s.rs;
        let Some(e) = self.conns.get_mut(meta) else {
            return true;
        };
        let Some(csum) = rs.and_then(|rs| e.conn.mptcp_remote_slot_moved(rs.slot)) else {
            return true;
        };
        // Its new worker sends for the connection from now on.
        r.out.push((
            from,
            RemoteMsg::Chunks {
                sub,
                of,
                csum,
                penalise: false,
                copy_back: CopyRanges::default(),
                items: Vec::new(),
                spare: Vec::new(),
            },
        ));
        self.mark_dirty(meta);
        true
    }

    /// What subflow `sub` in worker `from` can take now, for connection
    /// `to.conn` here.
    fn mptcp_remote_view(&mut self, from: usize, to: MetaRef, sub: SubRef, v: RemoteView) {
        if !self.mptcp_meta_valid(&to) {
            self.iface.counters.mptcp_remote_msgs_gone += 1;
            return;
        }
        let Some(r) = self.remote.as_deref_mut() else {
            return;
        };
        let Some(rs) = r
            .subs
            .iter_mut()
            .find(|s| s.worker == from && s.sub == sub)
            .and_then(|s| s.rs.as_mut())
        else {
            // RFC 8684 §3.3.2: a DATA_ACK counts from any subflow (one
            // made local since it sent this, `mptcp_localize`).
            if let (Some(a), Some(e)) = (v.data_ack, self.conns.get_mut(to.conn)) {
                if e.conn.mptcp_note_data_ack(a) {
                    self.mark_dirty(to.conn);
                }
            }
            return;
        };
        let Some(e) = self.conns.get_mut(to.conn) else {
            return;
        };
        if e.conn.mptcp_remote_view(rs, v) {
            // The DATA_ACK moved: the connection may send more, or its
            // DATA_FIN.
            self.mark_dirty(to.conn);
        }
    }

    /// Our data from the connection in worker `from` for subflow `sub`
    /// here: it sends it.
    fn mptcp_remote_chunks(
        &mut self,
        from: usize,
        sub: SubRef,
        of: MetaRef,
        (csum, penalise, copy_back): (bool, bool, CopyRanges),
        (mut items, spare): ChunksIn<D::Frame>,
    ) {
        // Made local meanwhile (`mptcp_localize`): its still.
        let local = self.mptcp_sub_local_of(sub.conn, of.token);
        let here = local || self.mptcp_remote_sub_follow(from, &sub, &of);
        // A `Back` buffer home again: for our next `Back`, or to go back
        // with chunks we send. Chunks refused (rare) go back in a spare.
        let mut back = match self.remote.as_deref_mut() {
            Some(r) => {
                r.rets.keep(spare);
                r.rets.take()
            }
            None => Vec::new(),
        };
        let cap = back.capacity();
        let mut untaken = false;
        let mut n = 0u64;
        match self.conns.get_mut(sub.conn).filter(|_| here) {
            Some(e) => {
                e.conn.mptcp_remote_tx_setup(csum);
                if penalise {
                    e.conn.mptcp_remote_penalise();
                    self.iface.counters.mptcp_remote_penalised += 1;
                }
                for c in items.drain(..) {
                    let len = c.len as u64;
                    match e.conn.mptcp_push_chunk(c) {
                        Ok(()) => n += len,
                        Err(c) => back.extend(c.into_returned()),
                    }
                }
                if !copy_back.is_empty() {
                    let dev = &mut self.iface.dev;
                    e.conn.mptcp_copy_back(&copy_back, &mut || dev.alloc());
                }
            }
            // Not a subflow here (any more: it moved on, keeping what it
            // was given): the chunks go back as they are, for the
            // connection to send their ranges again.
            None => {
                back.extend(items.drain(..).map(Chunk::untaken));
                untaken = true;
            }
        }
        if let Some(r) = self.remote.as_deref_mut() {
            // Emptied: it goes home with our next `Back`.
            r.chunk_bufs.keep(items);
            if back.is_empty() {
                r.rets.keep(back);
            } else {
                count_growth(&back, cap, &mut self.iface.counters.mptcp_remote_back_bufs);
                r.send_back(from, (of, sub), back, untaken);
            }
        }
        if n > 0 || !copy_back.is_empty() {
            self.iface.counters.mptcp_remote_tx_bytes += n;
            self.mark_dirty(sub.conn);
        }
    }

    /// Frames connection `to.conn` here lent to a subflow in another
    /// worker come back (or copies of them; `untaken`: chunks that found
    /// it gone, to send again).
    fn mptcp_remote_back(
        &mut self,
        to: MetaRef,
        (mut frames, spare): BackIn<D::Frame>,
        untaken: bool,
    ) {
        // The connection gone, the frames are freed.
        let valid = self.mptcp_meta_valid(&to);
        let e = self.conns.get_mut(to.conn).filter(|_| valid);
        let any = match (e, untaken) {
            (Some(e), true) => e.conn.mptcp_chunks_untaken(frames.drain(..)),
            (Some(e), false) => e.conn.mptcp_frames_back(frames.drain(..)),
            (None, _) => {
                self.iface.counters.mptcp_remote_msgs_gone += 1;
                frames.clear();
                false
            }
        };
        if let Some(r) = self.remote.as_deref_mut() {
            // Both buffers are kept: the emptied one goes home with our
            // next `Chunks` (`mptcp_spares`).
            r.rets.keep(frames);
            r.chunk_bufs.keep(spare);
        }
        if any {
            // A reinjection may have waited for their bytes.
            self.mark_dirty(to.conn);
        }
    }

    /// Data from a subflow in worker `from` for connection `to.conn` here.
    fn mptcp_remote_data(
        &mut self,
        from: usize,
        to: MetaRef,
        sub: SubRef,
        items: Joined<D::Frame>,
    ) {
        let reply = if self.mptcp_meta_valid(&to) {
            self.mptcp_meta_data(to.conn, Some(items))
        } else {
            // The connection is gone: the subflow is reset.
            MetaReply::reset()
        };
        self.remote_send(from, RemoteMsg::Reply { sub, of: to, reply });
    }

    /// The connection's reply to subflow `sub` here.
    fn mptcp_remote_reply(
        &mut self,
        from: usize,
        sub: SubRef,
        of: MetaRef,
        r: MetaReply<D::Frame>,
    ) {
        if !self.mptcp_remote_sub_follow(from, &sub, &of) {
            self.iface.counters.mptcp_remote_msgs_gone += 1;
            return;
        }
        if let Some(ro) = self
            .conns
            .get_mut(sub.conn)
            .and_then(|e| e.remote_of.as_mut())
        {
            ro.busy = false;
        }
        self.mptcp_subflow_reply(sub.conn, r);
        // What arrived meanwhile goes now.
        self.mptcp_remote_forward(sub.conn);
    }

    /// The connection tells subflow `sub` here to close.
    fn mptcp_remote_closing(&mut self, from: usize, sub: SubRef, of: MetaRef, how: CloseHow) {
        let local = self.mptcp_sub_local_of(sub.conn, of.token);
        if !local && !self.mptcp_remote_sub_follow(from, &sub, &of) {
            self.iface.counters.mptcp_remote_msgs_gone += 1;
            return;
        }
        let id = sub.conn;
        match how {
            CloseHow::DataFin(d) => self.close_subflow(id, d),
            CloseHow::Remove(addr_id) => {
                let matches = self
                    .conns
                    .get(id)
                    .and_then(|e| e.conn.mptcp_join())
                    .is_some_and(|j| addr_id.is_none_or(|a| j.remote_addr_id == a));
                if !matches {
                    return;
                }
                match addr_id {
                    Some(_) => self.iface.counters.mptcp_subflows_removed += 1,
                    None => self.mptcp_fastclose(id),
                }
                self.abort_conn(id);
            }
            CloseHow::Withdrawn(ip) => {
                if self
                    .conns
                    .get(id)
                    .is_some_and(|e| *e.tuple.local.ip() == ip)
                {
                    self.iface.counters.mptcp_subflows_withdrawn += 1;
                    self.abort_conn(id);
                }
            }
        }
    }
}

/// A message from worker `from` for this worker's `stacks` (`stacks[i]`:
/// the stack given index `i` with [`Stack::mptcp_set_remote`]).
pub fn mptcp_remote_input<D: Device, S: BorrowMut<Stack<D>>>(
    stacks: &mut [S],
    now: Instant,
    from: usize,
    msg: RemoteMsg<D::Frame>,
) {
    // A message for a connection that moved: to where it is now.
    let Some((from, msg)) = super::mptcp_rehome::route(stacks, from, msg) else {
        return;
    };
    match msg {
        RemoteMsg::JoinAsk { token, stack, tag } => {
            // The stack holding the token answers (any stack if none does).
            let found = (0..stacks.len()).find_map(|j| {
                let s = stacks[j].borrow_mut();
                let t = s.mptcp_join_target(token)?;
                let conn = &mut s.conns.get_mut(t.conn)?.conn;
                let cell = conn.mptcp_level_cell();
                let level = conn.mptcp_data_level();
                Some(Box::new(JoinAnswer {
                    target: t,
                    stack: j,
                    level,
                    cell,
                }))
            });
            let j = found.as_ref().map_or(0, |a| a.stack);
            if let Some(s) = stacks.get_mut(j) {
                let answer = found;
                s.borrow_mut()
                    .remote_send(from, RemoteMsg::JoinInfo { stack, tag, answer });
            }
        }
        RemoteMsg::JoinInfo { stack, tag, answer } => {
            if let Some(s) = stacks.get_mut(stack) {
                s.borrow_mut().mptcp_join_info(now, from, tag, answer);
            }
        }
        RemoteMsg::Joined {
            to,
            sub,
            up,
            ack,
            moved,
        } => {
            if let Some(s) = stacks.get_mut(to.stack) {
                s.borrow_mut()
                    .mptcp_remote_joined(from, to, sub, (up, moved), ack);
            }
        }
        RemoteMsg::View { to, sub, v, spare } => {
            if let Some(s) = stacks.get_mut(to.stack) {
                let s = s.borrow_mut();
                if let Some(r) = s.remote.as_deref_mut() {
                    r.chunk_bufs.keep(spare);
                }
                s.mptcp_remote_view(from, to, sub, v);
            }
        }
        RemoteMsg::Chunks {
            sub,
            of,
            csum,
            penalise,
            copy_back,
            items,
            spare,
        } => {
            if let Some(s) = stacks.get_mut(sub.stack) {
                let flags = (csum, penalise, copy_back);
                s.borrow_mut()
                    .mptcp_remote_chunks(from, sub, of, flags, (items, spare));
            }
        }
        RemoteMsg::Back {
            to,
            sub: _,
            frames,
            untaken,
            spare,
        } => {
            if let Some(s) = stacks.get_mut(to.stack) {
                s.borrow_mut()
                    .mptcp_remote_back(to, (frames, spare), untaken);
            }
        }
        RemoteMsg::Data { to, sub, items } => {
            if let Some(s) = stacks.get_mut(to.stack) {
                s.borrow_mut().mptcp_remote_data(from, to, sub, items);
            }
        }
        RemoteMsg::Reply { sub, of, reply } => {
            if let Some(s) = stacks.get_mut(sub.stack) {
                s.borrow_mut().mptcp_remote_reply(from, sub, of, reply);
            }
        }
        RemoteMsg::Signals { to, sig } => {
            if let Some(s) = stacks.get_mut(to.stack) {
                let s = s.borrow_mut();
                if s.mptcp_meta_valid(&to) {
                    s.mptcp_follow_signals(to.conn, &sig);
                } else {
                    s.iface.counters.mptcp_remote_msgs_gone += 1;
                }
            }
        }
        RemoteMsg::Close { sub, of, how } => {
            if let Some(s) = stacks.get_mut(sub.stack) {
                s.borrow_mut().mptcp_remote_closing(from, sub, of, how);
            }
        }
        RemoteMsg::Rehome { sub, of } => {
            if let Some(s) = stacks.get_mut(sub.stack) {
                s.borrow_mut().mptcp_remote_sub_follow(from, &sub, &of);
            }
        }
        // Unwrapped by `route`.
        RemoteMsg::Via { .. } => {}
    }
}

/// Our data for this worker's connections' subflows in other workers
/// (RFC 8684 §3.3.8): each such subflow takes what the scheduler grants
/// it, copied into frames of its interface's stack here (the workers of
/// an interface share its UMEM), sent to its worker as one message.
/// Returns bytes given. Run by the worker once per pass.
pub fn mptcp_remote_schedule<D: Device, S: BorrowMut<Stack<D>>>(stacks: &mut [S]) -> usize {
    let mut given = 0;
    for i in 0..stacks.len() {
        forget_gone_links(stacks[i].borrow_mut());
        let n = stacks[i]
            .borrow()
            .remote
            .as_deref()
            .map_or(0, |r| r.subs.len());
        for k in 0..n {
            let Some((j, meta)) = stacks[i]
                .borrow()
                .remote
                .as_deref()
                .and_then(|r| r.subs.get(k))
                .filter(|s| s.rs.is_some())
                .map(|s| (s.sub.stack, s.meta))
            else {
                continue;
            };
            let pending = stacks[i]
                .borrow()
                .conns
                .get(meta)
                .is_some_and(|m| m.conn.mptcp_tx_pending());
            if !pending || j >= stacks.len() {
                continue;
            }
            // The token that names the connection to the subflow's worker,
            // before anything is taken from it: without one (it no longer
            // holds it here) nothing is taken, and its data stays with it
            // (RFC 8684 §3.3.6: sent on the subflows it can still reach).
            let Some(token) = stacks[i].borrow().mptcp_token_of(meta) else {
                stacks[i]
                    .borrow_mut()
                    .iface
                    .counters
                    .mptcp_remote_sched_unheld += 1;
                continue;
            };
            // A buffer that came home with a `Back` (none made in the
            // steady state: `mptcp_spares`).
            let mut out = stacks[i]
                .borrow_mut()
                .remote
                .as_deref_mut()
                .map_or_else(Vec::new, |r| r.chunk_bufs.take());
            let cap = out.capacity();
            // Chunks are lent when the connection's frames can leave on
            // the subflow's interface (this worker's stack `j` shares its
            // UMEM with the subflow's).
            let pool = |x: usize| stacks[x].borrow().iface.dev.frame_pool_id();
            let lend = pool(i).is_some() && pool(i) == pool(j);
            if let Some(rs) = stacks[i]
                .borrow_mut()
                .remote
                .as_deref_mut()
                .and_then(|r| r.subs.get_mut(k)?.rs.as_mut())
            {
                rs.lend = lend;
            }
            if j == i {
                let s = stacks[i].borrow_mut();
                let mut budget = s.data_frame_budget();
                let Stack {
                    conns,
                    iface,
                    remote,
                    ..
                } = s;
                given += remote_pull(conns, remote, k, &mut out, &mut || {
                    super::mptcp::budgeted(&mut budget, iface)
                });
            } else if let Some((here, there)) = super::mptcp_foreign::pair(stacks, i, j) {
                let (here, there) = (here.borrow_mut(), there.borrow_mut());
                let mut budget = there.data_frame_budget();
                let iface = &mut there.iface;
                given += remote_pull(&mut here.conns, &mut here.remote, k, &mut out, &mut || {
                    super::mptcp::budgeted(&mut budget, iface)
                });
            }
            let (penalise, copy_back) = stacks[i]
                .borrow_mut()
                .remote
                .as_deref_mut()
                .and_then(|r| r.subs.get_mut(k)?.rs.as_mut())
                .map_or((false, CopyRanges::default()), |rs| {
                    let p = core::mem::take(&mut rs.penalised);
                    (p, core::mem::take(&mut rs.copy_back))
                });
            let s = stacks[i].borrow_mut();
            if out.is_empty() && !penalise && copy_back.is_empty() {
                if let Some(r) = s.remote.as_deref_mut() {
                    r.chunk_bufs.keep(out);
                }
                continue;
            }
            count_growth(&out, cap, &mut s.iface.counters.mptcp_remote_chunk_bufs);
            // The scheduler may have held the connection's other subflows
            // back for this one: they take what is left at its next pass.
            s.mark_dirty(meta);
            let link = s.remote.as_deref().and_then(|r| r.subs.get(k));
            let link = link.map(|l| (l.sub, l.worker));
            let (Some(r), Some((sub, worker))) = (s.remote.as_deref_mut(), link) else {
                // No message can carry them: what was taken goes back to
                // the connection, to be sent again (never lost).
                if let Some(e) = s.conns.get_mut(meta) {
                    e.conn
                        .mptcp_chunks_untaken(out.drain(..).map(Chunk::untaken));
                }
                continue;
            };
            let of = MetaRef {
                stack: r.stack,
                conn: meta,
                token,
            };
            // The registration's (first) message set the checksum mode.
            // An emptied `Back` buffer goes home with it.
            let msg = RemoteMsg::Chunks {
                sub,
                of,
                csum: false,
                penalise,
                copy_back,
                items: out,
                spare: r.rets.take(),
            };
            r.out.push((worker, msg));
        }
    }
    given
}

/// Links to subflows elsewhere of connections gone from stack `s` (each
/// is forgotten when its connection goes: none expected) are dropped,
/// counted.
fn forget_gone_links<D: Device>(s: &mut Stack<D>) {
    let Stack { conns, remote, .. } = s;
    let Some(r) = remote.as_deref_mut() else {
        return;
    };
    let before = r.subs.len();
    r.subs.retain(|l| conns.get(l.meta).is_some());
    s.iface.counters.mptcp_remote_links_gone += (before - r.subs.len()) as u64;
}

/// Subflow `subs[k]` of `remote` takes its chunks from its connection in
/// `conns` into `out`.
fn remote_pull<F: crate::io::Frame>(
    conns: &mut super::tcp_table::ConnTable<F>,
    remote: &mut Option<Box<Remote<F>>>,
    k: usize,
    out: &mut Vec<Chunk<F>>,
    alloc: &mut dyn FnMut() -> Option<F>,
) -> usize {
    let Some(s) = remote.as_deref_mut().and_then(|r| r.subs.get_mut(k)) else {
        return 0;
    };
    let (Some(rs), Some(e)) = (s.rs.as_mut(), conns.get_mut(s.meta)) else {
        return 0;
    };
    e.conn.mptcp_pull_remote(rs, alloc, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::mem::HeapFrame;
    use crate::tcp::{FourTuple, TcpRepr};
    use core::net::SocketAddrV4;

    fn remote() -> Remote<HeapFrame> {
        Remote::new(0, 0, Box::new(|_| Some(1)))
    }

    fn join(ms: u64) -> PendingJoin {
        let tuple = FourTuple {
            local: SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 7),
            remote: SocketAddrV4::new(Ipv4Addr::new(198, 18, 1, 2), 40000),
        };
        PendingJoin::new(Instant::from_millis(ms), tuple, &TcpRepr::default(), 7, 42)
    }

    fn asked(q: Option<Option<RemoteMsg<HeapFrame>>>) -> Option<u32> {
        match q {
            Some(Some(RemoteMsg::JoinAsk { tag, .. })) => Some(tag),
            _ => None,
        }
    }

    #[test]
    fn a_join_whose_question_went_unanswered_asks_again() {
        let mut r = remote();
        assert_eq!(asked(r.ask(join(0))), Some(0));
        // The SYN again while the answer is on its way: no second question.
        assert!(matches!(r.ask(join(1_000)), Some(None)));
        // The answer never came (dropped with a moving connection's
        // messages): the next retransmission asks again.
        assert_eq!(asked(r.ask(join(5_000))), Some(1));
        assert_eq!(r.asks.len(), 1);
    }

    fn worker_stack() -> Stack<crate::io::mem::SimDevice> {
        use crate::io::mem::{FramePool, SimDevice, FRAME_SIZE};
        let pool = || FramePool::new(FRAME_SIZE, 64);
        let dev = SimDevice::new(pool(), pool(), pool(), 1500, 1 << 16);
        let tcp = crate::tcp::Config {
            mptcp: true,
            ..crate::tcp::Config::default()
        };
        let cfg = crate::io::mem::scenario::host_config(0, tcp, 5);
        let mut s = Stack::new(cfg, dev, Instant::ZERO);
        // Worker 0 of two; the token directory names no worker.
        s.mptcp_set_remote(0, 0, Box::new(|_| None));
        s
    }

    /// Messages from worker 1 for a connection (or a subflow) no longer
    /// here, and gone from the token directory, are dropped and counted;
    /// a subflow's join is answered (it closes), not dropped.
    #[test]
    fn messages_for_what_is_gone_from_a_worker_are_dropped_and_counted() {
        let mut s = worker_stack();
        let gone = ConnId {
            index: 3,
            generation: 7,
        };
        let to = MetaRef {
            stack: 0,
            conn: gone,
            token: 0x1234_5678,
        };
        let sub = SubRef {
            stack: 0,
            conn: gone,
        };
        let msgs: Vec<RemoteMsg<HeapFrame>> = vec![
            RemoteMsg::View {
                to,
                sub,
                v: RemoteView::default(),
                spare: Vec::new(),
            },
            RemoteMsg::Signals {
                to,
                sig: Signals::default(),
            },
            RemoteMsg::Back {
                to,
                sub,
                frames: Vec::new(),
                untaken: false,
                spare: Vec::new(),
            },
            RemoteMsg::Joined {
                to,
                sub,
                up: false,
                ack: None,
                moved: None,
            },
            RemoteMsg::Reply {
                sub,
                of: to,
                reply: MetaReply::reset(),
            },
            RemoteMsg::Close {
                sub,
                of: to,
                how: CloseHow::DataFin(None),
            },
        ];
        let n = msgs.len() as u64;
        for m in msgs {
            mptcp_remote_input(core::slice::from_mut(&mut s), Instant::ZERO, 1, m);
        }
        assert_eq!(s.counters().mptcp_remote_msgs_gone, n);
        let up = RemoteMsg::Joined {
            to,
            sub,
            up: true,
            ack: None,
            moved: None,
        };
        mptcp_remote_input(core::slice::from_mut(&mut s), Instant::ZERO, 1, up);
        assert_eq!(s.counters().mptcp_remote_msgs_gone, n);
        let mut out = Vec::new();
        s.mptcp_remote_drain(|w, m| out.push((w, m)));
        assert!(matches!(out.as_slice(), [(1, RemoteMsg::Close { .. })]));
    }

    /// The scheduler drops (and counts) a link to a subflow elsewhere of a
    /// connection gone from here, rather than skipping it pass after pass.
    #[test]
    fn a_link_of_a_connection_gone_is_forgotten_by_the_scheduler() {
        let mut s = worker_stack();
        let gone = ConnId {
            index: 3,
            generation: 7,
        };
        let r = s.remote.as_deref_mut().unwrap();
        r.subs.push(Sub {
            meta: gone,
            worker: 1,
            sub: SubRef {
                stack: 0,
                conn: gone,
            },
            rs: Some(RemoteSlot::default()),
        });
        assert_eq!(mptcp_remote_schedule(core::slice::from_mut(&mut s)), 0);
        assert_eq!(s.counters().mptcp_remote_links_gone, 1);
        assert!(s.remote.as_deref().unwrap().subs.is_empty());
        let mut out = 0;
        s.mptcp_remote_drain(|_, _| out += 1);
        assert_eq!(out, 0, "nothing sent for it");
    }
}
