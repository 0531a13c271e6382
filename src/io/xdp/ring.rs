//! The four single-producer/single-consumer rings of an AF_XDP socket, read
//! and written directly in the memory the kernel maps for them.
//!
//! Each ring is a power-of-two array of entries (`u64` addresses for the
//! fill and completion rings, [`XdpDesc`] for RX and TX) plus a producer and
//! a consumer index that only ever grow (wrapping) and a flags word. The
//! protocol is the kernel's (Documentation/networking/af_xdp.rst, and the
//! barriers of `net/xdp/xsk_queue.h`): a producer writes entries, then
//! publishes them with a release store of the producer index; a consumer
//! reads the producer index with acquire, reads the entries, then hands
//! their slots back with a release store of the consumer index. Each side
//! caches the other's index and only re-reads it when the cache says the
//! ring is full (producer) or empty (consumer).

use super::abi::{XdpDesc, XdpRingOffset, XDP_RING_NEED_WAKEUP};
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU32, Ordering};

/// One mapped ring with entries of type `T`. Used through [`ProdRing`] and
/// [`ConsRing`], which hold one side each.
struct Ring<T> {
    map: *mut libc::c_void,
    map_len: usize,
    producer: *const AtomicU32,
    consumer: *const AtomicU32,
    flags: *const AtomicU32,
    entries: *mut T,
    mask: u32,
    size: u32,
}

// SAFETY: the mapping is owned by the ring (unmapped on drop), and the ring
// is used by one thread at a time (`&mut self` for every index update); the
// kernel is the other side of the protocol, synchronised through the
// atomic indices.
unsafe impl<T> Send for Ring<T> {}

impl<T: Copy> Ring<T> {
    /// Map the ring of `size` entries at page offset `pgoff` of socket `fd`,
    /// laid out as `off` says (from `XDP_MMAP_OFFSETS`).
    fn map(fd: RawFd, off: &XdpRingOffset, size: u32, pgoff: libc::off_t) -> std::io::Result<Self> {
        let map_len = off.desc as usize + size as usize * core::mem::size_of::<T>();
        // SAFETY: a fresh shared mapping of the socket's ring; the kernel
        // checks the offset and length against the ring it allocated.
        let map = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_POPULATE,
                fd,
                pgoff,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let at = |o: u64| map.cast::<u8>().wrapping_add(o as usize);
        Ok(Ring {
            map,
            map_len,
            producer: at(off.producer).cast(),
            consumer: at(off.consumer).cast(),
            flags: at(off.flags).cast(),
            entries: at(off.desc).cast(),
            mask: size - 1,
            size,
        })
    }

    fn producer(&self) -> &AtomicU32 {
        // SAFETY: the index is a 4-byte aligned u32 inside the live mapping,
        // only ever accessed atomically (by us and by the kernel).
        unsafe { &*self.producer }
    }

    fn consumer(&self) -> &AtomicU32 {
        // SAFETY: as for `producer`.
        unsafe { &*self.consumer }
    }

    fn needs_wakeup(&self) -> bool {
        // SAFETY: as for `producer`: the flags word of the live mapping.
        unsafe { &*self.flags }.load(Ordering::Relaxed) & XDP_RING_NEED_WAKEUP != 0
    }

    fn write(&mut self, idx: u32, v: T) {
        // SAFETY: `idx & mask` is within the `size` entries of the mapping;
        // the slot belongs to the producer (it lies between the consumer
        // index and the producer index plus the free room).
        unsafe { self.entries.add((idx & self.mask) as usize).write(v) }
    }

    fn read(&self, idx: u32) -> T {
        // SAFETY: as in `write`; the slot was published by the producer
        // (acquired through its index) and is not yet handed back.
        unsafe { self.entries.add((idx & self.mask) as usize).read() }
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // SAFETY: the mapping was made in `map` with this length and nothing
        // refers to it once the ring is gone.
        unsafe { libc::munmap(self.map, self.map_len) };
    }
}

/// Our producer side of a ring (fill, TX).
pub struct ProdRing<T> {
    ring: Ring<T>,
    /// Our producer index (published up to here).
    prod: u32,
    /// The consumer index last read from the kernel.
    cached_cons: u32,
}

impl<T: Copy> ProdRing<T> {
    pub(crate) fn map(
        fd: RawFd,
        off: &XdpRingOffset,
        size: u32,
        pgoff: libc::off_t,
    ) -> std::io::Result<Self> {
        let ring = Ring::map(fd, off, size, pgoff)?;
        let prod = ring.producer().load(Ordering::Relaxed);
        let cached_cons = ring.consumer().load(Ordering::Acquire);
        Ok(ProdRing {
            ring,
            prod,
            cached_cons,
        })
    }

    /// Free slots, re-reading the consumer index only if fewer than `want`
    /// are known free.
    pub fn free(&mut self, want: u32) -> u32 {
        let free = self.ring.size - self.prod.wrapping_sub(self.cached_cons);
        if free >= want {
            return free;
        }
        // Acquire: the kernel is done with the slots it consumed.
        self.cached_cons = self.ring.consumer().load(Ordering::Acquire);
        self.ring.size - self.prod.wrapping_sub(self.cached_cons)
    }

    /// Produce as many of `items` as fit; returns how many.
    pub fn produce(&mut self, items: &[T]) -> usize {
        let n = (items.len() as u32).min(self.free(items.len() as u32));
        for (i, &v) in items[..n as usize].iter().enumerate() {
            self.ring.write(self.prod.wrapping_add(i as u32), v);
        }
        if n > 0 {
            self.prod = self.prod.wrapping_add(n);
            // Release: the entries are visible before the index that
            // publishes them.
            self.ring.producer().store(self.prod, Ordering::Release);
        }
        n as usize
    }

    /// Entries produced and not yet consumed by the kernel.
    pub fn in_flight(&mut self) -> u32 {
        self.cached_cons = self.ring.consumer().load(Ordering::Acquire);
        self.prod.wrapping_sub(self.cached_cons)
    }

    /// The `n` entries produced last (newest last), e.g. descriptors the
    /// kernel may not have consumed yet when the socket goes away.
    pub fn last_produced(&self, n: u32, out: &mut Vec<T>) {
        let n = n.min(self.ring.size);
        for i in (1..=n).rev() {
            out.push(self.ring.read(self.prod.wrapping_sub(i)));
        }
    }

    pub fn needs_wakeup(&self) -> bool {
        self.ring.needs_wakeup()
    }

    pub fn size(&self) -> u32 {
        self.ring.size
    }
}

/// Our consumer side of a ring (RX, completion).
pub struct ConsRing<T> {
    ring: Ring<T>,
    /// Our consumer index (handed back up to here).
    cons: u32,
    /// The producer index last read from the kernel.
    cached_prod: u32,
}

impl<T: Copy> ConsRing<T> {
    pub(crate) fn map(
        fd: RawFd,
        off: &XdpRingOffset,
        size: u32,
        pgoff: libc::off_t,
    ) -> std::io::Result<Self> {
        let ring = Ring::map(fd, off, size, pgoff)?;
        let cons = ring.consumer().load(Ordering::Relaxed);
        Ok(ConsRing {
            ring,
            cons,
            cached_prod: cons,
        })
    }

    /// Consume up to `out.len()` entries into `out`; returns how many.
    pub fn consume(&mut self, out: &mut [T]) -> usize {
        let mut avail = self.cached_prod.wrapping_sub(self.cons);
        if (avail as usize) < out.len() {
            // Acquire: the entries the kernel published are visible.
            self.cached_prod = self.ring.producer().load(Ordering::Acquire);
            avail = self.cached_prod.wrapping_sub(self.cons);
        }
        let n = (avail as usize).min(out.len());
        for (i, slot) in out[..n].iter_mut().enumerate() {
            *slot = self.ring.read(self.cons.wrapping_add(i as u32));
        }
        if n > 0 {
            self.cons = self.cons.wrapping_add(n as u32);
            // Release: our reads of the slots happen before the kernel may
            // reuse them.
            self.ring.consumer().store(self.cons, Ordering::Release);
        }
        n
    }

    pub fn needs_wakeup(&self) -> bool {
        self.ring.needs_wakeup()
    }

    /// Entries known to wait beyond those consumed (as of the producer
    /// index last read: a lower bound, without touching the kernel's
    /// cache line).
    pub fn cached_pending(&self) -> u32 {
        self.cached_prod.wrapping_sub(self.cons)
    }
}

/// Fill and completion rings carry UMEM addresses; RX and TX descriptors.
pub type FillRing = ProdRing<u64>;
pub type CompRing = ConsRing<u64>;
pub type RxRing = ConsRing<XdpDesc>;
pub type TxRing = ProdRing<XdpDesc>;
