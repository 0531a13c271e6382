//! The free chunks of one UMEM: per-worker caches exchanged with a shared
//! pool in magazines (batches of [`MAG`] descriptors), so that nothing
//! shared is touched per packet.
//!
//! A worker registers a cache for each UMEM it serves ([`Pool::worker_cache`]);
//! from then on, on that thread, taking a chunk (fill ring, new frame) and
//! returning one (a dropped frame, a completed transmission) work on a
//! thread-local `Vec`. Only when the cache runs dry or grows past
//! [`CACHE_MAX`] does a whole magazine move to or from the shared pool: one
//! lock-free queue operation per [`MAG`] chunks. Threads without a cache
//! (the runtime's main thread, tests) go to the shared pool directly.
//!
//! The pool also counts the [`XdpFrame`](super::XdpFrame) handles alive
//! (net, per cache, folded into one atomic when a cache is dropped), so
//! that the UMEM is only unmapped once no handle can reach it any more.

use crossbeam::queue::ArrayQueue;
use std::cell::RefCell;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};

/// Descriptors per magazine (the unit of exchange with the shared pool).
pub const MAG: usize = 64;
/// A worker's cache spills a magazine once it holds more than this.
pub const CACHE_MAX: usize = 4 * MAG;

/// The shared part: full magazines, recycled empty ones, and counts.
pub(crate) struct Pool {
    full: ArrayQueue<Vec<u64>>,
    empty: ArrayQueue<Vec<u64>>,
    /// Descriptors in `full`.
    shared_free: AtomicUsize,
    /// Frame handles created minus destroyed, by threads without a cache
    /// and by caches already dropped.
    live: AtomicIsize,
    /// Chunks left on a socket's rings (fill, RX, TX, completion) when its
    /// device was dropped: the kernel's until the socket closes.
    kernel_held: AtomicUsize,
}

/// One thread's cache for one pool.
struct Cache {
    pool: *const Pool,
    descs: Vec<u64>,
    /// Frame handles created minus destroyed on this thread.
    live: isize,
    /// Registrations (a worker may register the same UMEM twice).
    refs: usize,
}

thread_local! {
    static CACHES: RefCell<Vec<Cache>> = const { RefCell::new(Vec::new()) };
}

/// Run `f` on this thread's cache of `pool`, or `None` if there is none.
#[inline]
fn with_cache<R>(pool: *const Pool, f: impl FnOnce(Option<&mut Cache>) -> R) -> R {
    let mut f = Some(f);
    let r = CACHES.try_with(|c| match c.try_borrow_mut() {
        Ok(mut v) => {
            let f = f.take().expect("called once");
            f(v.iter_mut().find(|c| c.pool == pool))
        }
        Err(_) => (f.take().expect("called once"))(None),
    });
    match r {
        Ok(r) => r,
        // Thread-local storage already torn down (thread exit).
        Err(_) => (f.take().expect("not called yet"))(None),
    }
}

impl Pool {
    /// A pool holding `descs` (every chunk of the UMEM).
    pub fn new(descs: Vec<u64>) -> Pool {
        let frames = descs.len();
        // At most one magazine per chunk can be non-empty; empty ones are
        // recycled and dropped when the queue is full.
        let cap = frames.max(1);
        let pool = Pool {
            full: ArrayQueue::new(cap),
            empty: ArrayQueue::new(cap),
            shared_free: AtomicUsize::new(0),
            live: AtomicIsize::new(0),
            kernel_held: AtomicUsize::new(0),
        };
        for chunk in descs.chunks(MAG) {
            pool.push_mag(chunk);
        }
        pool
    }

    /// Move `descs` into the shared pool as one magazine.
    fn push_mag(&self, descs: &[u64]) {
        if descs.is_empty() {
            return;
        }
        let mut m = self.empty.pop().unwrap_or_else(|| Vec::with_capacity(MAG));
        m.clear();
        m.extend_from_slice(descs);
        self.shared_free.fetch_add(descs.len(), Ordering::Relaxed);
        // Cannot fail: there are fewer non-empty magazines than chunks.
        if let Err(m) = self.full.push(m) {
            self.shared_free.fetch_sub(m.len(), Ordering::Relaxed);
        }
    }

    /// Append one magazine from the shared pool to `out`; false if none.
    fn pop_mag(&self, out: &mut Vec<u64>) -> bool {
        let Some(mut m) = self.full.pop() else {
            return false;
        };
        self.shared_free.fetch_sub(m.len(), Ordering::Relaxed);
        out.extend_from_slice(&m);
        m.clear();
        let _ = self.empty.push(m);
        true
    }

    /// Register a cache for this thread (or count one more registration).
    pub fn register(&self) {
        let me = self as *const Pool;
        let _ = CACHES.try_with(|c| {
            let mut v = c.borrow_mut();
            match v.iter_mut().find(|c| c.pool == me) {
                Some(c) => c.refs += 1,
                None => v.push(Cache {
                    pool: me,
                    descs: Vec::with_capacity(CACHE_MAX + 2 * MAG),
                    live: 0,
                    refs: 1,
                }),
            }
        });
    }

    /// Drop one registration; the last one hands the cache's chunks and
    /// its handle count to the shared pool.
    pub fn unregister(&self) {
        let me = self as *const Pool;
        let gone = CACHES.try_with(|c| {
            let mut v = c.borrow_mut();
            let i = v.iter().position(|c| c.pool == me)?;
            v[i].refs -= 1;
            (v[i].refs == 0).then(|| v.swap_remove(i))
        });
        if let Ok(Some(c)) = gone {
            for chunk in c.descs.chunks(MAG) {
                self.push_mag(chunk);
            }
            self.live.fetch_add(c.live, Ordering::AcqRel);
        }
    }

    /// Take one free chunk.
    #[inline]
    pub fn take(&self) -> Option<u64> {
        with_cache(self as *const Pool, |c| match c {
            Some(c) => {
                if c.descs.is_empty() {
                    self.pop_mag(&mut c.descs);
                }
                c.descs.pop()
            }
            None => {
                let mut v = Vec::with_capacity(MAG);
                if !self.pop_mag(&mut v) {
                    return None;
                }
                let d = v.pop();
                self.push_mag(&v);
                d
            }
        })
    }

    /// Take up to `out.len()` free chunks into `out`; returns how many.
    pub fn take_many(&self, out: &mut [u64]) -> usize {
        with_cache(self as *const Pool, |c| match c {
            Some(c) => {
                let mut n = 0;
                while n < out.len() {
                    if c.descs.is_empty() && !self.pop_mag(&mut c.descs) {
                        break;
                    }
                    let k = c.descs.len().min(out.len() - n);
                    let from = c.descs.len() - k;
                    out[n..n + k].copy_from_slice(&c.descs[from..]);
                    c.descs.truncate(from);
                    n += k;
                }
                n
            }
            None => {
                let mut n = 0;
                let mut v = Vec::with_capacity(MAG);
                while n < out.len() && self.pop_mag(&mut v) {
                    let k = v.len().min(out.len() - n);
                    out[n..n + k].copy_from_slice(&v[v.len() - k..]);
                    v.truncate(v.len() - k);
                    n += k;
                }
                self.push_mag(&v);
                n
            }
        })
    }

    /// Return chunks.
    #[inline]
    pub fn put_many(&self, descs: &[u64]) {
        with_cache(self as *const Pool, |c| match c {
            Some(c) => {
                c.descs.extend_from_slice(descs);
                while c.descs.len() > CACHE_MAX {
                    let from = c.descs.len() - MAG;
                    self.push_mag(&c.descs[from..]);
                    c.descs.truncate(from);
                }
            }
            None => {
                for chunk in descs.chunks(MAG) {
                    self.push_mag(chunk);
                }
            }
        })
    }

    /// Move this thread's count of frame handles into the shared count.
    pub fn fold_live(&self) {
        with_cache(self as *const Pool, |c| {
            if let Some(c) = c {
                self.live.fetch_add(c.live, Ordering::AcqRel);
                c.live = 0;
            }
        })
    }

    /// Count frame handles created (`n > 0`) or destroyed (`n < 0`).
    #[inline]
    pub fn live_add(&self, n: isize) {
        with_cache(self as *const Pool, |c| match c {
            Some(c) => c.live += n,
            None => {
                self.live.fetch_add(n, Ordering::AcqRel);
            }
        })
    }

    /// Return one chunk and count its handle destroyed (a frame's drop).
    #[inline]
    pub fn put_frame(&self, d: u64) {
        with_cache(self as *const Pool, |c| match c {
            Some(c) => {
                c.descs.push(d);
                c.live -= 1;
                if c.descs.len() > CACHE_MAX {
                    let from = c.descs.len() - MAG;
                    self.push_mag(&c.descs[from..]);
                    c.descs.truncate(from);
                }
            }
            None => {
                self.push_mag(&[d]);
                // Last: once the count may reach zero, the pool may go.
                self.live.fetch_sub(1, Ordering::AcqRel);
            }
        })
    }

    /// Free chunks: the shared pool plus this thread's cache.
    #[inline]
    pub fn free(&self) -> usize {
        let local = with_cache(self as *const Pool, |c| c.map_or(0, |c| c.descs.len()));
        self.shared_free.load(Ordering::Relaxed) + local
    }

    /// Record `n` chunks left on the rings of a socket going away.
    pub fn add_kernel_held(&self, n: usize) {
        self.kernel_held.fetch_add(n, Ordering::Relaxed);
    }

    /// Chunks left on the rings of sockets gone away.
    pub fn kernel_held(&self) -> usize {
        self.kernel_held.load(Ordering::Relaxed)
    }

    /// Descriptors in the shared pool (not in any cache).
    #[cfg(test)]
    pub fn shared_free(&self) -> usize {
        self.shared_free.load(Ordering::Relaxed)
    }

    /// Frame handles alive, as far as caches dropped so far tell.
    pub fn live(&self) -> isize {
        self.live.load(Ordering::Acquire)
    }
}
