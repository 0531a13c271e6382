//! One UMEM shared by all queues of an interface, its lock-free pool of free
//! chunks, and [`XdpFrame`]: a [`Frame`] over one chunk.
//!
//! A chunk is `FRAME_SIZE` bytes; the kernel writes a received packet at
//! `XDP_PACKET_HEADROOM` (256) into it, and we build transmitted packets at
//! the same offset, so a frame's buffer is `chunk[256..]`. Frames are handles
//! (an address plus an `Arc` to the UMEM): handing one to another worker
//! moves no packet bytes. Dropping a frame returns its chunk to the pool
//! (from any thread); workers take chunks from the pool to refill their fill
//! rings and to build packets.

use super::{Error, ErrorKind};
use crate::io::Frame;
use crossbeam::queue::ArrayQueue;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use xsk_rs::config::{FrameSize, QueueSize, UmemConfig};
use xsk_rs::umem::frame::FrameDesc;
use xsk_rs::Umem;

/// Chunk size: a power of two (chunks are found by masking), large enough for
/// 256 bytes of XDP headroom plus a 1500-byte MTU frame.
pub const FRAME_SIZE: usize = 2048;
/// Ring sizes (fill, completion, rx, tx) per socket.
pub const RING_SIZE: u32 = 2048;

/// The UMEM, shared (via `Arc`) by every socket of one interface and every
/// frame in flight.
pub struct SharedUmem {
    umem: Umem,
    /// Start of the mmap'd region.
    base: *mut u8,
    len: usize,
    /// Offset of packet data inside a chunk (XDP_PACKET_HEADROOM).
    data_off: usize,
    /// Free chunks, as descriptors at `chunk + data_off`.
    free: ArrayQueue<FrameDesc>,
    frames: usize,
    /// Frames `XdpDevice::alloc` leaves in the pool for the fill rings.
    rx_reserve: AtomicUsize,
}

// SAFETY: `base` points into the mmap'd region owned by `umem` (kept alive
// as long as this struct); distinct chunks are only ever accessed through
// the one `XdpFrame` (or ring slot) that owns them, so sharing the pointer
// across threads creates no data race.
unsafe impl Send for SharedUmem {}
// SAFETY: see above; `free` is a lock-free MPMC queue.
unsafe impl Sync for SharedUmem {}

impl SharedUmem {
    /// Create a UMEM of `frames` chunks.
    pub fn new(frames: u32) -> Result<Arc<Self>, Error> {
        let err = |m: String| Error::new(ErrorKind::Socket, m);
        let count =
            NonZeroU32::new(frames).ok_or_else(|| err("UMEM needs at least one frame".into()))?;
        let config = UmemConfig::builder()
            .frame_size(FrameSize::new(FRAME_SIZE as u32).map_err(|e| err(format!("{e}")))?)
            .fill_queue_size(QueueSize::new(RING_SIZE).map_err(|e| err(format!("{e}")))?)
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
        let free = ArrayQueue::new(descs.len());
        for d in descs {
            let _ = free.push(d);
        }
        Ok(Arc::new(SharedUmem {
            umem,
            base,
            len: frames as usize * FRAME_SIZE,
            data_off,
            free,
            frames: frames as usize,
            rx_reserve: AtomicUsize::new(0),
        }))
    }

    /// The xsk-rs handle (to create sockets on).
    pub fn umem(&self) -> &Umem {
        &self.umem
    }

    /// Frames that transmit allocations leave for receiving.
    pub fn rx_reserve(&self) -> usize {
        self.rx_reserve.load(Ordering::Relaxed)
    }

    /// Set the receive reserve (at most half the UMEM).
    pub fn set_rx_reserve(&self, n: usize) {
        self.rx_reserve
            .store(n.min(self.frames / 2), Ordering::Relaxed);
    }

    /// Chunks in the UMEM.
    pub fn frames(&self) -> usize {
        self.frames
    }

    /// Chunks currently in the free pool.
    pub fn free_frames(&self) -> usize {
        self.free.len()
    }

    /// Take a free chunk descriptor (for a fill ring or a new frame).
    pub(crate) fn take_desc(&self) -> Option<FrameDesc> {
        self.free.pop()
    }

    /// Return a chunk descriptor to the pool.
    pub(crate) fn put_desc(&self, desc: FrameDesc) {
        // The pool holds every chunk, so it can never be full; if it were,
        // dropping the descriptor only leaks one chunk.
        let _ = self.free.push(desc);
    }

    /// Offset of packet data inside a chunk.
    pub fn data_off(&self) -> usize {
        self.data_off
    }

    /// Whether `addr..addr+len` lies inside one chunk of this UMEM.
    fn in_bounds(&self, addr: usize, len: usize) -> bool {
        let chunk = addr & !(FRAME_SIZE - 1);
        addr < self.len && addr + len <= chunk + FRAME_SIZE
    }
}

/// A frame: one UMEM chunk, from `addr` to the end of the chunk.
pub struct XdpFrame {
    desc: FrameDesc,
    umem: Arc<SharedUmem>,
}

// SAFETY: an `XdpFrame` is the unique owner of its chunk (it came from the
// pool or from an RX descriptor and is on no ring), and `SharedUmem` is
// Send + Sync; moving the handle to another thread moves that ownership.
unsafe impl Send for XdpFrame {}

impl XdpFrame {
    /// Wrap a descriptor this process owns (taken from the pool, or consumed
    /// from an RX ring). Returns `None` (and keeps the chunk) if the kernel
    /// handed out an address outside the UMEM.
    pub(crate) fn from_desc(desc: FrameDesc, umem: &Arc<SharedUmem>) -> Option<Self> {
        if !umem.in_bounds(desc.addr(), 0) {
            return None;
        }
        Some(XdpFrame {
            desc,
            umem: umem.clone(),
        })
    }

    /// A fresh frame from the pool.
    pub fn alloc(umem: &Arc<SharedUmem>) -> Option<Self> {
        let desc = umem.take_desc()?;
        Some(XdpFrame {
            desc,
            umem: umem.clone(),
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
    pub(crate) fn into_desc(self, len: usize) -> FrameDesc {
        let mut desc = self.desc;
        // SAFETY: the chunk is owned by `self`; the cursor only records the
        // length (clamped to the chunk) in `desc`.
        unsafe { self.umem.umem.data_mut(&mut desc) }
            .cursor()
            .set_pos(len);
        core::mem::forget(self);
        desc
    }

    /// The UMEM this frame belongs to.
    pub fn umem(&self) -> &Arc<SharedUmem> {
        &self.umem
    }
}

impl Frame for XdpFrame {
    fn buf(&self) -> &[u8] {
        // SAFETY: `addr..addr+cap` is inside one chunk of the mapped region
        // (checked at construction), the region lives as long as
        // `self.umem`, and this frame is the chunk's only owner.
        unsafe { core::slice::from_raw_parts(self.umem.base.add(self.desc.addr()), self.cap()) }
    }

    fn buf_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `buf`; `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(self.umem.base.add(self.desc.addr()), self.cap()) }
    }

    fn truesize(&self) -> usize {
        FRAME_SIZE
    }
}

impl Drop for XdpFrame {
    fn drop(&mut self) {
        self.umem.put_desc(self.desc);
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
        let d = f.into_desc(60);
        assert_eq!(umem.free_frames(), 1);
        assert_eq!((d.addr(), d.lengths().data()), (addr, 60));
        let f = XdpFrame::from_desc(d, &umem).unwrap();
        drop(f);
        assert_eq!(umem.free_frames(), 2);
    }
}
