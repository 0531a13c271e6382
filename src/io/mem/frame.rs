//! Heap frames and the pool they come from.
//!
//! The simulator is single-threaded, so a pool is shared through `Rc`: each
//! [`HeapFrame`] keeps a handle to its pool and gives its buffer back on drop.
//! Buffers are allocated lazily up to the pool's limit and then recycled, so
//! a steady-state run does not touch the allocator.

use crate::io::Frame;
use std::cell::RefCell;
use std::rc::Rc;

/// The default frame size: an Ethernet frame of MTU 1500 plus headroom fits.
pub const FRAME_SIZE: usize = 2048;

/// Occupancy of a pool.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct PoolStats {
    /// Frames handed out and not yet returned.
    pub in_use: usize,
    /// Highest `in_use` seen.
    pub peak: usize,
    /// Most frames that may be in use at once.
    pub limit: usize,
    /// `alloc` calls refused because `limit` frames were in use.
    pub exhausted: u64,
}

struct PoolInner {
    free: Vec<Box<[u8]>>,
    frame_size: usize,
    stats: PoolStats,
}

/// A bounded pool of fixed-size heap frames. Cloning shares the pool.
#[derive(Clone)]
pub struct FramePool {
    inner: Rc<RefCell<PoolInner>>,
}

impl FramePool {
    /// A pool of at most `limit` frames of `frame_size` bytes each.
    pub fn new(frame_size: usize, limit: usize) -> Self {
        FramePool {
            inner: Rc::new(RefCell::new(PoolInner {
                free: Vec::new(),
                frame_size,
                stats: PoolStats {
                    limit,
                    ..PoolStats::default()
                },
            })),
        }
    }

    /// A frame, or `None` when `limit` frames are in use. The contents of a
    /// recycled frame are whatever its last user left there. Inline: a
    /// recycled frame is a few loads and stores, less than the call (one
    /// or two per segment sent); the first use of a buffer is out of line.
    #[inline]
    pub fn alloc(&self) -> Option<HeapFrame> {
        let mut p = self.inner.borrow_mut();
        if p.stats.in_use >= p.stats.limit {
            p.stats.exhausted += 1;
            return None;
        }
        let buf = match p.free.pop() {
            Some(b) => b,
            None => new_buf(p.frame_size),
        };
        p.stats.in_use += 1;
        p.stats.peak = p.stats.peak.max(p.stats.in_use);
        Some(HeapFrame {
            buf,
            pool: self.inner.clone(),
        })
    }

    pub fn frame_size(&self) -> usize {
        self.inner.borrow().frame_size
    }

    /// Which pool this is: equal for clones (the same pool), different
    /// for pools alive at the same time.
    pub fn id(&self) -> usize {
        Rc::as_ptr(&self.inner) as usize
    }

    pub fn stats(&self) -> PoolStats {
        self.inner.borrow().stats
    }
}

/// A buffer the pool has not made yet (only until the pool's peak).
#[cold]
fn new_buf(size: usize) -> Box<[u8]> {
    vec![0u8; size].into_boxed_slice()
}

/// A fixed-size heap buffer from a [`FramePool`]; dropping it returns the
/// buffer to the pool.
pub struct HeapFrame {
    buf: Box<[u8]>,
    pool: Rc<RefCell<PoolInner>>,
}

impl Frame for HeapFrame {
    fn buf(&self) -> &[u8] {
        &self.buf
    }
    fn buf_mut(&mut self) -> &mut [u8] {
        &mut self.buf
    }
}

impl Drop for HeapFrame {
    // Inline for the same reason as `alloc`: about two per segment.
    #[inline]
    fn drop(&mut self) {
        let buf = core::mem::take(&mut self.buf);
        let mut p = self.pool.borrow_mut();
        p.stats.in_use -= 1;
        p.free.push(buf);
    }
}

impl core::fmt::Debug for HeapFrame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "HeapFrame({} bytes)", self.buf.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_limits_and_recycles() {
        let pool = FramePool::new(64, 2);
        let mut a = pool.alloc().unwrap();
        a.buf_mut()[0] = 7;
        let b = pool.alloc().unwrap();
        assert!(pool.alloc().is_none());
        assert_eq!(pool.stats().in_use, 2);
        assert_eq!(pool.stats().exhausted, 1);
        assert_eq!(a.buf().len(), 64);
        assert_eq!(a.truesize(), 64);
        drop(a);
        assert_eq!(pool.stats().in_use, 1);
        // The recycled buffer comes back (contents are not cleared).
        let c = pool.alloc().unwrap();
        assert_eq!(c.buf()[0], 7);
        drop((b, c));
        let s = pool.stats();
        assert_eq!((s.in_use, s.peak, s.limit), (0, 2, 2));
    }

    #[test]
    fn clones_share_the_pool() {
        let pool = FramePool::new(16, 1);
        let other = pool.clone();
        let f = pool.alloc().unwrap();
        assert!(other.alloc().is_none());
        drop(f);
        assert!(other.alloc().is_some());
    }
}
