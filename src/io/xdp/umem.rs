//! One UMEM shared by all queues of an interface and [`XdpFrame`]: a
//! [`Frame`] over one chunk.
//!
//! A chunk is `FRAME_SIZE` bytes; the kernel writes a received packet at
//! `XDP_PACKET_HEADROOM` (256) into it, and we build transmitted packets at
//! the same offset, so a frame's buffer is `chunk[256..]`. Frames are handles
//! (a descriptor and a pointer to the UMEM's core, no reference count):
//! handing one to another worker moves no packet bytes. Dropping a frame
//! returns its chunk to the free pool (see [`super::pool`]): to the dropping
//! worker's own cache, so nothing shared is touched per packet.
//!
//! Lifetime: frames do not keep the UMEM alive. The pool counts the frame
//! handles alive; when the last `Arc<SharedUmem>` goes while some handle
//! still exists (a frame kept past the run), the mapping and the core are
//! leaked rather than freed under it.

use super::pool::Pool;
use super::{Error, ErrorKind};
use crate::io::Frame;
use std::mem::ManuallyDrop;
use std::num::NonZeroU32;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use xsk_rs::config::{FrameSize, QueueSize, UmemConfig};
use xsk_rs::umem::frame::FrameDesc;
use xsk_rs::Umem;

/// Chunk size: a power of two (chunks are found by masking), large enough for
/// 256 bytes of XDP headroom plus a 1500-byte MTU frame.
pub const FRAME_SIZE: usize = 2048;
/// Fill and RX ring sizes per socket: deep enough that a burst of 16,000
/// SYNs (clients connecting at once) waits in the rings even if the worker
/// is descheduled for the whole burst, instead of being dropped.
pub const RX_RING_SIZE: u32 = 16384;
/// TX and completion ring sizes per socket.
pub const RING_SIZE: u32 = 2048;

/// What frames need to reach: the mapping and the free pool. Owned by
/// [`SharedUmem`], freed with it unless frame handles are still alive.
pub(crate) struct Core {
    /// Start of the mmap'd region.
    base: *mut u8,
    len: usize,
    /// Offset of packet data inside a chunk (XDP_PACKET_HEADROOM).
    data_off: usize,
    frames: usize,
    pub(crate) pool: Pool,
    /// Frames `XdpDevice::alloc` leaves in the pool for the fill rings.
    rx_reserve: AtomicUsize,
}

impl Core {
    /// Whether `addr..addr+len` lies inside one chunk of this UMEM.
    fn in_bounds(&self, addr: usize, len: usize) -> bool {
        let chunk = addr & !(FRAME_SIZE - 1);
        addr < self.len && addr + len <= chunk + FRAME_SIZE
    }
}

/// The UMEM, shared (via `Arc`) by every socket and device of one interface.
pub struct SharedUmem {
    umem: ManuallyDrop<Umem>,
    core: NonNull<Core>,
}

// SAFETY: `base` points into the mmap'd region owned by `umem` (kept alive
// as long as this struct, or leaked); distinct chunks are only ever accessed
// through the one `XdpFrame` (or ring slot) that owns them, so sharing the
// pointer across threads creates no data race. The pool is made of
// lock-free queues, atomics and thread-local caches.
unsafe impl Send for SharedUmem {}
// SAFETY: see above.
unsafe impl Sync for SharedUmem {}

impl SharedUmem {
    /// Create a UMEM of `frames` chunks.
    pub fn new(frames: u32) -> Result<Arc<Self>, Error> {
        let err = |m: String| Error::new(ErrorKind::Socket, m);
        let count =
            NonZeroU32::new(frames).ok_or_else(|| err("UMEM needs at least one frame".into()))?;
        let config = UmemConfig::builder()
            .frame_size(FrameSize::new(FRAME_SIZE as u32).map_err(|e| err(format!("{e}")))?)
            .fill_queue_size(QueueSize::new(RX_RING_SIZE).map_err(|e| err(format!("{e}")))?)
            .comp_queue_size(QueueSize::new(RING_SIZE).map_err(|e| err(format!("{e}")))?)
            .frame_headroom(0)
            .build()
            .map_err(|e| err(format!("UMEM config: {e}")))?;
        let data_off = config.xdp_headroom() as usize;
        let (umem, descs) =
            Umem::new(config, count, false).map_err(|e| err(format!("creating the UMEM: {e}")))?;
        let first = descs
            .first()
            .ok_or_else(|| err("UMEM has no frames".into()))?;
        // SAFETY: `first` is a descriptor of this UMEM, fresh from
        // `Umem::new`, not on any ring; reading its (empty) data only
        // yields a pointer into the region.
        let first_ptr = unsafe { umem.data(first) }.as_ptr() as *mut u8;
        // The first chunk starts the region.
        let base = first_ptr.wrapping_sub(first.addr());
        let core = Box::new(Core {
            base,
            len: frames as usize * FRAME_SIZE,
            data_off,
            frames: frames as usize,
            pool: Pool::new(descs),
            rx_reserve: AtomicUsize::new(0),
        });
        Ok(Arc::new(SharedUmem {
            umem: ManuallyDrop::new(umem),
            core: NonNull::from(Box::leak(core)),
        }))
    }

    pub(crate) fn core(&self) -> &Core {
        // SAFETY: the core lives at least as long as this struct.
        unsafe { self.core.as_ref() }
    }

    /// The xsk-rs handle (to create sockets on).
    pub fn umem(&self) -> &Umem {
        &self.umem
    }

    /// Frames that transmit allocations leave for receiving.
    pub fn rx_reserve(&self) -> usize {
        self.core().rx_reserve.load(Ordering::Relaxed)
    }

    /// Set the receive reserve (at most half the UMEM).
    pub fn set_rx_reserve(&self, n: usize) {
        let c = self.core();
        c.rx_reserve.store(n.min(c.frames / 2), Ordering::Relaxed);
    }

    /// Chunks in the UMEM.
    pub fn frames(&self) -> usize {
        self.core().frames
    }

    /// Chunks free: the shared pool plus the calling thread's cache.
    pub fn free_frames(&self) -> usize {
        self.core().pool.free()
    }

    /// Frame handles alive, as far as the caches dropped so far tell (exact
    /// once every worker has stopped).
    pub fn live_frames(&self) -> isize {
        self.core().pool.live()
    }

    /// Where every chunk is, once the workers have stopped (their caches
    /// returned) and every device is gone: see [`FrameAccount`].
    pub fn account(&self) -> FrameAccount {
        let c = self.core();
        let free = c.pool.free();
        let kernel = c.pool.kernel_held();
        FrameAccount {
            total: c.frames,
            free,
            kernel,
            live: c.pool.live(),
            lost: c.frames as isize - free as isize - kernel as isize - c.pool.live(),
        }
    }

    /// Give the calling thread its own cache of free chunks until the guard
    /// is dropped (a worker, for the run). Frames dropped on this thread
    /// return to the cache.
    pub fn worker_cache(self: &Arc<Self>) -> CacheGuard {
        self.core().pool.register();
        CacheGuard {
            umem: self.clone(),
            _not_send: core::marker::PhantomData,
        }
    }

    /// Take up to `out.len()` free chunk descriptors.
    pub(crate) fn take_descs(&self, out: &mut [FrameDesc]) -> usize {
        self.core().pool.take_many(out)
    }

    /// Return chunk descriptors to the pool.
    pub(crate) fn put_descs(&self, descs: &[FrameDesc]) {
        self.core().pool.put_many(descs)
    }

    /// Offset of packet data inside a chunk.
    pub fn data_off(&self) -> usize {
        self.core().data_off
    }
}

impl Drop for SharedUmem {
    fn drop(&mut self) {
        if self.core().pool.live() != 0 {
            // A frame handle outlived every device: leave the mapping and
            // the core to it (freeing them would leave it dangling).
            return;
        }
        // SAFETY: no frame handle is alive (the count is exact now: every
        // worker cache holds an `Arc` to this UMEM, so all were dropped and
        // folded their counts in), and this is the last `SharedUmem`
        // reference: nothing can reach the core or the mapping any more.
        unsafe {
            drop(Box::from_raw(self.core.as_ptr()));
            ManuallyDrop::drop(&mut self.umem);
        }
    }
}

/// Where the chunks of a UMEM are.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FrameAccount {
    pub total: usize,
    /// In the free pool.
    pub free: usize,
    /// On the rings of sockets (fill ring, unconsumed RX, TX not completed).
    pub kernel: usize,
    /// Held by frame handles (connection buffers, queues).
    pub live: isize,
    /// None of the above: leaked (always 0).
    pub lost: isize,
}

/// A worker thread's cache of one UMEM's free chunks (see
/// [`SharedUmem::worker_cache`]); dropping it hands the chunks back.
pub struct CacheGuard {
    umem: Arc<SharedUmem>,
    _not_send: core::marker::PhantomData<*const ()>,
}

impl CacheGuard {
    /// Fold this thread's count of frame handles into the shared one (so
    /// that `live_frames` is exact while the worker still runs, idle).
    pub fn fold_live(&self) {
        self.umem.core().pool.fold_live();
    }
}

impl Drop for CacheGuard {
    fn drop(&mut self) {
        self.umem.core().pool.unregister();
    }
}

/// A frame: one UMEM chunk, from `addr` to the end of the chunk.
pub struct XdpFrame {
    desc: FrameDesc,
    core: NonNull<Core>,
}

// SAFETY: an `XdpFrame` is the unique owner of its chunk (it came from the
// pool or from an RX descriptor and is on no ring), and the core it points
// to is Sync and outlives every frame handle (see `SharedUmem`'s drop);
// moving the handle to another thread moves that ownership.
unsafe impl Send for XdpFrame {}

impl XdpFrame {
    fn core(&self) -> &Core {
        // SAFETY: the core is freed only when no frame handle is alive, and
        // this one is.
        unsafe { self.core.as_ref() }
    }

    /// Wrap a descriptor this process owns (consumed from an RX ring).
    /// Returns `None` (and keeps the chunk) if the kernel handed out an
    /// address outside the UMEM. The caller counts the handle alive
    /// (`Pool::live_add`), once per batch.
    pub(crate) fn from_rx_desc(desc: FrameDesc, umem: &SharedUmem) -> Option<Self> {
        if !umem.core().in_bounds(desc.addr(), 0) {
            return None;
        }
        Some(XdpFrame {
            desc,
            core: umem.core,
        })
    }

    /// Wrap a descriptor this process owns, counting the handle.
    #[cfg(test)]
    pub(crate) fn from_desc(desc: FrameDesc, umem: &SharedUmem) -> Option<Self> {
        let f = Self::from_rx_desc(desc, umem)?;
        umem.core().pool.live_add(1);
        Some(f)
    }

    /// A fresh frame from the pool.
    pub fn alloc(umem: &SharedUmem) -> Option<Self> {
        let pool = &umem.core().pool;
        let desc = pool.take()?;
        pool.live_add(1);
        Some(XdpFrame {
            desc,
            core: umem.core,
        })
    }

    /// A fresh frame from the pool of the UMEM this frame belongs to.
    pub fn alloc_sibling(&self) -> Option<Self> {
        let pool = &self.core().pool;
        let desc = pool.take()?;
        pool.live_add(1);
        Some(XdpFrame {
            desc,
            core: self.core,
        })
    }

    /// UMEM address of the first byte of `buf()`.
    pub fn addr(&self) -> usize {
        self.desc.addr()
    }

    fn cap(&self) -> usize {
        let chunk = self.desc.addr() & !(FRAME_SIZE - 1);
        chunk + FRAME_SIZE - self.desc.addr()
    }

    /// Give up the handle without returning the chunk to the pool (the
    /// descriptor goes onto a ring instead). `len` becomes the descriptor's
    /// length.
    pub(crate) fn into_desc(self, umem: &SharedUmem, len: usize) -> FrameDesc {
        let mut desc = self.desc;
        // SAFETY: the chunk is owned by `self`; the cursor only records the
        // length (clamped to the chunk) in `desc`.
        unsafe { umem.umem.data_mut(&mut desc) }
            .cursor()
            .set_pos(len);
        self.core().pool.live_add(-1);
        core::mem::forget(self);
        desc
    }

    /// Whether this frame is a chunk of `umem`.
    pub fn is_of(&self, umem: &SharedUmem) -> bool {
        self.core == umem.core
    }
}

impl Frame for XdpFrame {
    fn buf(&self) -> &[u8] {
        let c = self.core();
        // SAFETY: `addr..addr+cap` is inside one chunk of the mapped region
        // (checked at construction), the region lives as long as any frame
        // handle, and this frame is the chunk's only owner.
        unsafe { core::slice::from_raw_parts(c.base.add(self.desc.addr()), self.cap()) }
    }

    fn buf_mut(&mut self) -> &mut [u8] {
        let base = self.core().base;
        // SAFETY: as in `buf`; `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(base.add(self.desc.addr()), self.cap()) }
    }

    fn truesize(&self) -> usize {
        FRAME_SIZE
    }
}

impl Drop for XdpFrame {
    fn drop(&mut self) {
        self.core().pool.put_frame(self.desc);
    }
}

impl core::fmt::Debug for XdpFrame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "XdpFrame({:#x})", self.desc.addr())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_cover_their_chunk_and_return_to_the_pool() {
        let umem = SharedUmem::new(8).unwrap();
        assert_eq!(umem.free_frames(), 8);
        let mut a = XdpFrame::alloc(&umem).unwrap();
        assert_eq!(umem.free_frames(), 7);
        assert_eq!(a.buf().len(), FRAME_SIZE - umem.data_off());
        a.buf_mut().fill(0xab);
        let b = XdpFrame::alloc(&umem).unwrap();
        assert_ne!(a.addr() & !(FRAME_SIZE - 1), b.addr() & !(FRAME_SIZE - 1));
        // Frames move across threads and go back to the pool when dropped.
        std::thread::spawn(move || drop(a)).join().unwrap();
        drop(b);
        assert_eq!(umem.free_frames(), 8);
        let frames: Vec<_> = (0..8).map(|_| XdpFrame::alloc(&umem).unwrap()).collect();
        assert!(XdpFrame::alloc(&umem).is_none());
        drop(frames);
        assert_eq!(umem.free_frames(), 8);
    }

    #[test]
    fn into_desc_keeps_the_chunk_off_the_pool() {
        let umem = SharedUmem::new(2).unwrap();
        let f = XdpFrame::alloc(&umem).unwrap();
        let addr = f.addr();
        let d = f.into_desc(&umem, 60);
        assert_eq!(umem.free_frames(), 1);
        assert_eq!((d.addr(), d.lengths().data()), (addr, 60));
        let f = XdpFrame::from_desc(d, &umem).unwrap();
        drop(f);
        assert_eq!(umem.free_frames(), 2);
    }

    #[test]
    fn a_worker_cache_trades_whole_magazines_and_gives_everything_back() {
        use super::super::pool::{CACHE_MAX, MAG};
        let umem = SharedUmem::new(1024).unwrap();
        let shared = |u: &SharedUmem| u.core().pool.shared_free();
        let u = umem.clone();
        let stray = std::thread::spawn(move || {
            let _cache = u.worker_cache();
            let mut frames: Vec<_> = (0..300).map(|_| XdpFrame::alloc(&u).unwrap()).collect();
            // Whole magazines left the shared pool, not single chunks.
            assert_eq!(shared(&u), 1024 - 5 * MAG);
            assert_eq!(u.free_frames(), 1024 - 300);
            let stray = frames.pop().unwrap();
            drop(frames);
            // The cache keeps at most CACHE_MAX; the rest went back whole.
            assert!(shared(&u) >= 1024 - CACHE_MAX - MAG, "{}", shared(&u));
            assert_eq!(u.free_frames(), 1024 - 1);
            stray
        })
        .join()
        .unwrap();
        // The worker is gone: its cache is back in the shared pool, and the
        // one frame it handed to this thread is the only handle alive.
        assert_eq!(umem.free_frames(), 1023);
        assert_eq!(umem.live_frames(), 1);
        drop(stray);
        assert_eq!(umem.free_frames(), 1024);
        assert_eq!(umem.live_frames(), 0);
    }
}
