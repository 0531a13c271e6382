//! One UMEM shared by every queue of every interface of the process (an
//! interface that refuses to share gets its own) and [`XdpFrame`]: a
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
//! A chunk lent to the TX ring while a frame handle keeps it
//! (`Device::transmit_ref`) is marked in flight ([`Core::tx_begin`]) until its
//! completion comes back; a handle dropped meanwhile leaves the chunk to the
//! completion, which returns it to the pool.
//!
//! Lifetime: frames do not keep the UMEM alive. The pool counts the frame
//! handles alive; when the last `Arc<SharedUmem>` goes while some handle
//! still exists (a frame kept past the run), the mapping and the core are
//! leaked rather than freed under it.

use super::pool::Pool;
use super::xsk::{self, Region, UmemFlags};
use super::{Error, ErrorKind};
use crate::io::Frame;
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};

/// Where UMEM identities come from: unique in the process, never 0.
static NEXT_ID: AtomicUsize = AtomicUsize::new(1);
use std::sync::Arc;

/// Chunk size: a power of two (chunks are found by masking), large enough for
/// 256 bytes of XDP headroom plus a 1500-byte MTU frame.
pub const FRAME_SIZE: usize = 2048;
/// Where the kernel writes a received packet in a chunk
/// (`XDP_PACKET_HEADROOM`; the UMEM adds no headroom of its own). Frames
/// start here; TX metadata goes in the bytes before a packet.
pub const DATA_OFF: usize = 256;
/// Fill ring size per socket: deep enough that a burst of 16,000 SYNs
/// (clients connecting at once) lands in frames even if the worker is
/// descheduled for the whole burst, instead of being dropped.
pub const FILL_RING_SIZE: u32 = 16384;
/// RX ring size per socket: twice the fill ring, so that what a worker
/// running behind a burst has not read yet waits here while the fill ring
/// is kept topped up (16,000 SYNs and the ACKs and requests of the
/// connections already answered: the backlog went past 22,000 on veth).
pub const RX_RING_SIZE: u32 = 2 * FILL_RING_SIZE;
/// TX and completion ring sizes per socket.
pub const RING_SIZE: u32 = 2048;

/// A chunk's transmission state ([`Core::tx_state`]): a descriptor of it
/// is on the TX ring and not yet back from the completion ring.
pub(crate) const TX_PENDING: u8 = 1;
/// The chunk's frame handle was given up (plain `transmit`) or dropped
/// while `TX_PENDING`: the completion returns the chunk to the pool.
pub(crate) const TX_ORPHAN: u8 = 2;

/// How the UMEM's transmit checksums are done (`--tx-checksum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TxChecksum {
    /// Offload through TX metadata if the kernel takes it, else software.
    #[default]
    Auto,
    /// Offload through TX metadata, or fail.
    Offload,
    /// The stack computes every checksum.
    Software,
    /// Offload, with the kernel completing each checksum in software
    /// (`XDP_UMEM_TX_SW_CSUM`) before the packet leaves: what the peer
    /// receives is then fully summed, so it checks what we requested.
    Verify,
}

impl TxChecksum {
    /// For the start-up line.
    pub fn describe(self) -> &'static str {
        match self {
            TxChecksum::Auto => "TCP checksums offloaded where possible",
            TxChecksum::Offload => "TCP checksums offloaded (TX metadata)",
            TxChecksum::Software => "TCP checksums in software",
            TxChecksum::Verify => "TCP checksums offloaded, completed by the kernel in software",
        }
    }
}

impl core::str::FromStr for TxChecksum {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(TxChecksum::Auto),
            "offload" => Ok(TxChecksum::Offload),
            "software" => Ok(TxChecksum::Software),
            "verify" => Ok(TxChecksum::Verify),
            _ => Err(format!(
                "tx-checksum must be auto, offload, software or verify, not {s:?}"
            )),
        }
    }
}

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
    /// Per chunk: `TX_PENDING` / `TX_ORPHAN`. One byte per chunk, written
    /// by the worker that transmits it and the one that reaps its
    /// completion (the same, unless a frame handle moved).
    tx_state: Box<[AtomicU8]>,
}

impl Core {
    /// Whether `addr..addr+len` lies inside one chunk of this UMEM.
    fn in_bounds(&self, addr: usize, len: usize) -> bool {
        let chunk = addr & !(FRAME_SIZE - 1);
        addr < self.len && addr + len <= chunk + FRAME_SIZE
    }

    /// Bytes in the UMEM.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn tx_state(&self, addr: u64) -> &AtomicU8 {
        &self.tx_state[addr as usize / FRAME_SIZE]
    }

    /// Mark the chunk of `addr` in flight; `orphan`: its handle is given up.
    pub(crate) fn tx_begin(&self, addr: u64, orphan: bool) {
        let v = TX_PENDING | if orphan { TX_ORPHAN } else { 0 };
        // Relaxed: only the thread holding the chunk's frame handle (this
        // one) writes the state while it is not pending; the kernel learns
        // of the descriptor through the TX ring's release store.
        self.tx_state(addr).store(v, Ordering::Relaxed);
    }

    /// A transmission of `addr`'s chunk completed: whether the chunk now
    /// goes back to the pool (its handle is gone).
    pub(crate) fn tx_complete(&self, addr: u64) -> bool {
        // AcqRel, paired with `tx_release`'s compare-exchange: of the two
        // (the completion and the handle's drop), whichever comes second
        // sees the other's write, so exactly one returns the chunk.
        self.tx_state(addr).swap(0, Ordering::AcqRel) & TX_ORPHAN != 0
    }

    /// Whether the chunk of `addr` has a transmission in flight.
    pub(crate) fn tx_pending(&self, addr: u64) -> bool {
        // Acquire: pairs with `tx_complete`'s release, so the kernel's use
        // of the chunk is over before the caller rewrites it.
        self.tx_state(addr).load(Ordering::Acquire) & TX_PENDING != 0
    }

    /// The frame handle of `addr`'s chunk goes away: true if a transmission
    /// is still in flight (the completion will return the chunk), false if
    /// the caller returns it now.
    fn tx_release(&self, addr: u64) -> bool {
        let s = self.tx_state(addr);
        let mut cur = s.load(Ordering::Acquire);
        while cur & TX_PENDING != 0 {
            match s.compare_exchange(cur, cur | TX_ORPHAN, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
        false
    }
}

/// The UMEM, shared (via `Arc`) by every socket and device of the
/// interfaces that use it: sockets on other devices and queues share it
/// with `XDP_SHARED_UMEM`, each with its own fill and completion rings.
pub struct SharedUmem {
    /// Identity in the process ([`SharedUmem::id`]).
    id: usize,
    region: ManuallyDrop<Region>,
    /// The socket the UMEM is registered on; the first `XdpSocket` binds it,
    /// the others share the UMEM through it.
    reg_fd: OwnedFd,
    reg_fd_taken: AtomicBool,
    /// TX metadata is registered (`tx_metadata_len`): fixed for the UMEM.
    tx_metadata: bool,
    /// What transmit checksums resolved to; `software_checksums` may turn
    /// an offload into `Software` before devices are made.
    checksum: std::sync::Mutex<TxChecksum>,
    core: NonNull<Core>,
}

// SAFETY: `base` points into the mmap'd region owned by `region` (kept
// alive as long as this struct, or leaked); distinct chunks are only ever
// accessed through the one `XdpFrame` (or ring slot) that owns them, so
// sharing the pointer across threads creates no data race. The pool is made
// of lock-free queues, atomics and thread-local caches.
unsafe impl Send for SharedUmem {}
// SAFETY: see above.
unsafe impl Sync for SharedUmem {}

impl SharedUmem {
    /// Create a UMEM of `frames` chunks, transmit checksums in software.
    pub fn new(frames: u32) -> Result<Arc<Self>, Error> {
        Self::with_checksum(frames, TxChecksum::Software)
    }

    /// Create a UMEM of `frames` chunks, registered for `checksum`: with
    /// TX metadata unless `Software` (`Auto` falls back to software if the
    /// kernel refuses the metadata).
    pub fn with_checksum(frames: u32, checksum: TxChecksum) -> Result<Arc<Self>, Error> {
        let err = |m: String| Error::new(ErrorKind::Socket, m);
        if frames == 0 {
            return Err(err("UMEM needs at least one frame".into()));
        }
        let len = frames as usize * FRAME_SIZE;
        let region = Region::new(len).map_err(|e| err(format!("mapping the UMEM: {e}")))?;
        let reg_fd = xsk::socket().map_err(|e| {
            let kind = match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => ErrorKind::Permission,
                _ => ErrorKind::Socket,
            };
            Error::new(kind, format!("AF_XDP socket: {e}"))
        })?;
        let flags = |tx_metadata, tx_sw_csum| UmemFlags {
            tx_metadata,
            tx_sw_csum,
        };
        let reg = |f| xsk::register_umem(reg_fd.as_raw_fd(), &region, FRAME_SIZE as u32, f);
        let (checksum, r) = match checksum {
            TxChecksum::Software => (checksum, reg(flags(false, false))),
            TxChecksum::Offload => (checksum, reg(flags(true, false))),
            TxChecksum::Verify => (checksum, reg(flags(true, true))),
            TxChecksum::Auto => match reg(flags(true, false)) {
                Ok(()) => (TxChecksum::Offload, Ok(())),
                // A kernel before 6.8 knows no TX metadata.
                Err(_) => (TxChecksum::Software, reg(flags(false, false))),
            },
        };
        r.map_err(|e| {
            let what = match checksum {
                TxChecksum::Offload | TxChecksum::Verify => {
                    " with TX metadata (checksum offload needs Linux 6.8, verify 6.11; \
                     try --tx-checksum software)"
                }
                _ => "",
            };
            Error::new(
                ErrorKind::Socket,
                format!("registering the UMEM{what}: {e}"),
            )
        })?;
        let base = region.base();
        let descs = (0..frames as u64)
            .map(|i| i * FRAME_SIZE as u64 + DATA_OFF as u64)
            .collect();
        let core = Box::new(Core {
            base,
            len,
            data_off: DATA_OFF,
            frames: frames as usize,
            pool: Pool::new(descs),
            rx_reserve: AtomicUsize::new(0),
            tx_state: (0..frames).map(|_| AtomicU8::new(0)).collect(),
        });
        Ok(Arc::new(SharedUmem {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            region: ManuallyDrop::new(region),
            reg_fd,
            reg_fd_taken: AtomicBool::new(false),
            tx_metadata: checksum != TxChecksum::Software,
            checksum: std::sync::Mutex::new(checksum),
            core: NonNull::from(Box::leak(core)),
        }))
    }

    pub(crate) fn core(&self) -> &Core {
        // SAFETY: the core lives at least as long as this struct.
        unsafe { self.core.as_ref() }
    }

    /// The socket the UMEM is registered on, for the first socket to bind
    /// (`Ok`), or to share the UMEM through (`Err`) for the others.
    pub(crate) fn claim_reg_fd(&self) -> Result<RawFd, RawFd> {
        let fd = self.reg_fd.as_raw_fd();
        match self.reg_fd_taken.swap(true, Ordering::AcqRel) {
            false => Ok(fd),
            true => Err(fd),
        }
    }

    /// This UMEM's identity, unique in the process: devices whose UMEMs
    /// have the same id take each other's frames.
    pub fn id(&self) -> usize {
        self.id
    }

    /// Whether transmitted packets carry TX metadata (checksum offload):
    /// registered with it, and no device of the UMEM refused it.
    pub fn tx_metadata(&self) -> bool {
        self.tx_metadata && self.tx_checksum() != TxChecksum::Software
    }

    /// How transmit checksums are done (never `Auto`: what it resolved to).
    pub fn tx_checksum(&self) -> TxChecksum {
        *self.checksum.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One device of the UMEM cannot take TX metadata: every device of it
    /// computes checksums in software (decided once for the UMEM, before
    /// its devices are made; the metadata room stays registered, unused).
    pub fn software_checksums(&self) {
        *self.checksum.lock().unwrap_or_else(|e| e.into_inner()) = TxChecksum::Software;
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

    /// Take up to `out.len()` free chunks (addresses of their data start).
    pub(crate) fn take_descs(&self, out: &mut [u64]) -> usize {
        self.core().pool.take_many(out)
    }

    /// Return chunks to the pool (addresses anywhere inside them).
    pub(crate) fn put_descs(&self, descs: &[u64]) {
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
            ManuallyDrop::drop(&mut self.region);
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
    /// UMEM offset of the first byte of `buf()`.
    addr: u64,
    core: NonNull<Core>,
}

// SAFETY: an `XdpFrame` is the unique owner of its chunk (it came from the
// pool or from an RX descriptor and is on no ring), and the core it points
// to is Sync and outlives every frame handle (see `SharedUmem`'s drop);
// moving the handle to another thread moves that ownership.
unsafe impl Send for XdpFrame {}

/// The data start of the chunk holding `addr`: the pool's form of an
/// address (completions come back at whatever offset a packet started).
pub(crate) fn chunk_data(addr: u64) -> u64 {
    (addr & !(FRAME_SIZE as u64 - 1)) + DATA_OFF as u64
}

impl XdpFrame {
    fn core(&self) -> &Core {
        // SAFETY: the core is freed only when no frame handle is alive, and
        // this one is.
        unsafe { self.core.as_ref() }
    }

    /// Wrap an address this process owns (consumed from an RX ring).
    /// Returns `None` (and keeps the chunk) if the kernel handed out an
    /// address outside the UMEM. The caller counts the handle alive
    /// (`Pool::live_add`), once per batch.
    pub(crate) fn from_rx_addr(addr: u64, umem: &SharedUmem) -> Option<Self> {
        if !umem.core().in_bounds(addr as usize, 0) {
            return None;
        }
        Some(XdpFrame {
            addr,
            core: umem.core,
        })
    }

    /// Wrap an address this process owns, counting the handle.
    #[cfg(test)]
    pub(crate) fn from_addr(addr: u64, umem: &SharedUmem) -> Option<Self> {
        let f = Self::from_rx_addr(addr, umem)?;
        umem.core().pool.live_add(1);
        Some(f)
    }

    /// A fresh frame from the pool.
    pub fn alloc(umem: &SharedUmem) -> Option<Self> {
        let pool = &umem.core().pool;
        let addr = pool.take()?;
        pool.live_add(1);
        Some(XdpFrame {
            addr,
            core: umem.core,
        })
    }

    /// A fresh frame from the pool of the UMEM this frame belongs to.
    pub fn alloc_sibling(&self) -> Option<Self> {
        let pool = &self.core().pool;
        let addr = pool.take()?;
        pool.live_add(1);
        Some(XdpFrame {
            addr,
            core: self.core,
        })
    }

    /// UMEM address of the first byte of `buf()`.
    pub fn addr(&self) -> usize {
        self.addr as usize
    }

    pub(crate) fn umem_addr(&self) -> u64 {
        self.addr
    }

    fn cap(&self) -> usize {
        let a = self.addr as usize;
        (a & !(FRAME_SIZE - 1)) + FRAME_SIZE - a
    }

    /// Give up the handle without returning the chunk to the pool (its
    /// address goes onto a ring instead). Returns the address.
    pub(crate) fn into_addr(self) -> u64 {
        let addr = self.addr;
        self.core().pool.live_add(-1);
        core::mem::forget(self);
        addr
    }

    /// Whether this frame is a chunk of `umem`.
    pub fn is_of(&self, umem: &SharedUmem) -> bool {
        self.core == umem.core
    }

    /// Whether a transmission of this frame (`Device::transmit_ref`) is
    /// still in flight.
    pub fn tx_pending(&self) -> bool {
        self.core().tx_pending(self.addr)
    }

    /// Write `bytes` at UMEM offset `at`, inside this frame's chunk but
    /// possibly before `buf()` (TX metadata in front of a packet that
    /// starts at the frame's first byte).
    pub(crate) fn write_in_chunk(&mut self, at: u64, bytes: &[u8]) -> bool {
        let chunk = self.addr & !(FRAME_SIZE as u64 - 1);
        if at < chunk || at as usize + bytes.len() > chunk as usize + FRAME_SIZE {
            return false;
        }
        let base = self.core().base;
        // SAFETY: `at..at+len` lies inside this frame's chunk (checked
        // above), which the frame owns exclusively (`&mut self`), in the
        // live mapping.
        unsafe {
            core::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(at as usize), bytes.len())
        };
        true
    }
}

impl Frame for XdpFrame {
    fn buf(&self) -> &[u8] {
        let c = self.core();
        // SAFETY: `addr..addr+cap` is inside one chunk of the mapped region
        // (checked at construction), the region lives as long as any frame
        // handle, and this frame is the chunk's only owner.
        unsafe { core::slice::from_raw_parts(c.base.add(self.addr as usize), self.cap()) }
    }

    fn buf_mut(&mut self) -> &mut [u8] {
        let base = self.core().base;
        // SAFETY: as in `buf`; `&mut self` makes the access exclusive.
        unsafe { core::slice::from_raw_parts_mut(base.add(self.addr as usize), self.cap()) }
    }

    fn truesize(&self) -> usize {
        FRAME_SIZE
    }

    /// The whole chunk: the kernel's `XDP_PACKET_HEADROOM` in front of a
    /// received packet becomes room for headers.
    fn reclaim_headroom(&mut self) -> usize {
        let chunk = self.addr & !(FRAME_SIZE as u64 - 1);
        let k = (self.addr - chunk) as usize;
        self.addr = chunk;
        k
    }
}

impl Drop for XdpFrame {
    fn drop(&mut self) {
        let core = self.core();
        if core.tx_release(self.addr) {
            // In flight: the completion returns the chunk.
            core.pool.live_add(-1);
            return;
        }
        core.pool.put_frame(chunk_data(self.addr));
    }
}

impl core::fmt::Debug for XdpFrame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "XdpFrame({:#x})", self.addr)
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
    fn into_addr_keeps_the_chunk_off_the_pool() {
        let umem = SharedUmem::new(2).unwrap();
        let f = XdpFrame::alloc(&umem).unwrap();
        let addr = f.addr();
        let d = f.into_addr();
        assert_eq!(umem.free_frames(), 1);
        assert_eq!(d as usize, addr);
        let f = XdpFrame::from_addr(d, &umem).unwrap();
        drop(f);
        assert_eq!(umem.free_frames(), 2);
    }

    #[test]
    fn a_chunk_in_flight_returns_to_the_pool_once_both_its_handle_and_its_transmission_are_done() {
        let umem = SharedUmem::new(4).unwrap();
        let core = umem.core();
        // Completion first, then the handle's drop: the drop returns it.
        let mut f = XdpFrame::alloc(&umem).unwrap();
        let a = f.umem_addr() + 100; // a descriptor inside the chunk
        assert!(!f.tx_pending());
        core.tx_begin(a, false);
        assert!(f.tx_pending());
        assert!(!core.tx_complete(a), "the handle still holds the chunk");
        assert!(!f.tx_pending());
        f.buf_mut()[0] = 1; // rewritable again
        drop(f);
        assert_eq!(umem.free_frames(), 4);
        // The handle's drop first, then the completion: the completion does.
        let f = XdpFrame::alloc(&umem).unwrap();
        let a = f.umem_addr() + 7;
        core.tx_begin(a, false);
        drop(f);
        assert_eq!(umem.free_frames(), 3, "in flight: not back yet");
        assert_eq!(umem.live_frames(), 0);
        assert!(core.tx_complete(a));
        assert_eq!(chunk_data(a), a - 7);
        umem.put_descs(&[chunk_data(a)]);
        assert_eq!(umem.free_frames(), 4);
        // A frame given up to the ring (plain transmit) is the completion's.
        let f = XdpFrame::alloc(&umem).unwrap();
        let a = f.into_addr();
        core.tx_begin(a, true);
        assert!(core.tx_complete(a));
    }

    #[test]
    fn reclaimed_headroom_covers_the_whole_chunk_and_the_pool_gets_the_data_offset_back() {
        let umem = SharedUmem::new(1).unwrap();
        let mut f = XdpFrame::alloc(&umem).unwrap();
        let a = f.umem_addr();
        assert_eq!(f.reclaim_headroom(), DATA_OFF);
        assert_eq!(f.buf().len(), FRAME_SIZE);
        drop(f);
        let g = XdpFrame::alloc(&umem).unwrap();
        assert_eq!(g.umem_addr(), a);
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
