//! AF_XDP sockets and UMEM registration on the kernel's ABI (`if_xdp.h`):
//! the memory region, `XDP_UMEM_REG` (with `tx_metadata_len`, which libxdp
//! 1.6 and so xsk-rs 0.11 cannot pass), ring setup, `mmap` of the rings,
//! `bind` (alone or sharing the UMEM), statistics and wake-ups.
//!
//! Why not xsk-rs: its UMEM is registered by libxdp without TX metadata,
//! and its TX descriptors always start at a chunk's data offset; zero-copy
//! transmit needs descriptors at any offset inside a chunk, and checksum
//! offload needs `struct xsk_tx_metadata` in front of each packet. Every
//! part of the ring layer depends on the UMEM registration, so all of it
//! lives here and in [`super::ring`].

use super::abi::*;
use super::ring::{CompRing, FillRing, RxRing, TxRing};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// An anonymous, page-aligned memory region for a UMEM.
pub struct Region {
    base: *mut u8,
    len: usize,
}

// SAFETY: the region is plain memory; who may touch which chunk is decided
// by the frame handles and rings above it.
unsafe impl Send for Region {}
// SAFETY: see above.
unsafe impl Sync for Region {}

impl Region {
    /// Map `len` bytes of zeroed memory, populated up front.
    pub fn new(len: usize) -> io::Result<Self> {
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                core::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_POPULATE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Region {
            base: p.cast(),
            len,
        })
    }

    pub fn base(&self) -> *mut u8 {
        self.base
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: mapped in `new` with this length; the owner drops the
        // region only when no frame handle or ring can reach it (see
        // `SharedUmem`'s drop).
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

fn cvt(r: libc::c_int) -> io::Result<()> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn setsockopt<T>(fd: RawFd, opt: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: the kernel reads `size_of::<T>()` bytes from a live `T`.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            SOL_XDP,
            opt,
            (v as *const T).cast(),
            core::mem::size_of::<T>() as libc::socklen_t,
        )
    })
}

fn getsockopt<T: Default>(fd: RawFd, opt: libc::c_int) -> io::Result<T> {
    let mut v = T::default();
    let mut len = core::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into a live `T`; every
    // `T` used here is plain integers, valid for any bytes.
    cvt(unsafe { libc::getsockopt(fd, SOL_XDP, opt, (&mut v as *mut T).cast(), &mut len) })?;
    Ok(v)
}

/// A new AF_XDP socket.
pub fn socket() -> io::Result<OwnedFd> {
    // SAFETY: socket(2) has no memory preconditions.
    let fd = unsafe { libc::socket(AF_XDP, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
    cvt(fd)?;
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// How TX metadata is registered with the UMEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UmemFlags {
    /// Reserve [`TX_METADATA_LEN`] bytes of `struct xsk_tx_metadata` in
    /// front of every TX packet.
    pub tx_metadata: bool,
    /// `XDP_UMEM_TX_SW_CSUM`: the kernel completes requested checksums in
    /// software before the packet leaves.
    pub tx_sw_csum: bool,
}

/// Register `region` as the UMEM of socket `fd`: chunks of `chunk_size`,
/// no extra headroom.
pub fn register_umem(fd: RawFd, region: &Region, chunk_size: u32, f: UmemFlags) -> io::Result<()> {
    let mut reg = XdpUmemReg {
        addr: region.base() as u64,
        len: region.len() as u64,
        chunk_size,
        headroom: 0,
        flags: 0,
        tx_metadata_len: 0,
    };
    if f.tx_metadata {
        reg.flags |= XDP_UMEM_TX_METADATA_LEN;
        reg.tx_metadata_len = TX_METADATA_LEN as u32;
    }
    if f.tx_sw_csum {
        reg.flags |= XDP_UMEM_TX_SW_CSUM;
    }
    setsockopt(fd, XDP_UMEM_REG, &reg)
}

/// The rings of one socket, mapped.
pub struct Rings {
    pub fill: FillRing,
    pub comp: CompRing,
    pub rx: RxRing,
    pub tx: TxRing,
}

/// Ring sizes (powers of two).
#[derive(Debug, Clone, Copy)]
pub struct RingSizes {
    pub fill: u32,
    pub comp: u32,
    pub rx: u32,
    pub tx: u32,
}

/// Create and map the four rings of `fd` (whose UMEM is registered on it
/// or will be shared with it at bind).
pub fn setup_rings(fd: RawFd, s: RingSizes) -> io::Result<Rings> {
    setsockopt(fd, XDP_UMEM_FILL_RING, &s.fill)?;
    setsockopt(fd, XDP_UMEM_COMPLETION_RING, &s.comp)?;
    setsockopt(fd, XDP_RX_RING, &s.rx)?;
    setsockopt(fd, XDP_TX_RING, &s.tx)?;
    let off: XdpMmapOffsets = getsockopt(fd, XDP_MMAP_OFFSETS)?;
    Ok(Rings {
        fill: FillRing::map(fd, &off.fr, s.fill, XDP_UMEM_PGOFF_FILL_RING)?,
        comp: CompRing::map(fd, &off.cr, s.comp, XDP_UMEM_PGOFF_COMPLETION_RING)?,
        rx: RxRing::map(fd, &off.rx, s.rx, XDP_PGOFF_RX_RING)?,
        tx: TxRing::map(fd, &off.tx, s.tx, XDP_PGOFF_TX_RING)?,
    })
}

/// Bind `fd` to `(ifindex, queue)`. `shared`: the socket the UMEM was
/// registered on, when this is not it.
pub fn bind(
    fd: RawFd,
    ifindex: u32,
    queue: u32,
    flags: u16,
    shared: Option<RawFd>,
) -> io::Result<()> {
    let sa = SockaddrXdp {
        family: AF_XDP as u16,
        flags: flags | if shared.is_some() { XDP_SHARED_UMEM } else { 0 },
        ifindex,
        queue_id: queue,
        shared_umem_fd: shared.map_or(0, |f| f as u32),
    };
    // SAFETY: the kernel reads a `sockaddr_xdp` from a live struct of
    // exactly that layout.
    cvt(unsafe {
        libc::bind(
            fd,
            (&sa as *const SockaddrXdp).cast(),
            core::mem::size_of::<SockaddrXdp>() as libc::socklen_t,
        )
    })
}

/// The interface index of `name`, if it exists.
pub fn ifindex(name: &str) -> Option<u32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: a NUL-terminated string that outlives the call.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// `XDP_STATISTICS` of a socket.
pub fn statistics(fd: RawFd) -> io::Result<XdpStatistics> {
    getsockopt(fd, XDP_STATISTICS)
}

/// Whether the socket is bound in zero-copy mode (`XDP_OPTIONS`).
pub fn is_zero_copy(fd: RawFd) -> bool {
    getsockopt::<u32>(fd, XDP_OPTIONS).is_ok_and(|o| o & XDP_OPTIONS_ZEROCOPY != 0)
}

/// Kick the kernel to process the TX ring (need_wakeup).
pub fn kick_tx(fd: RawFd) {
    // SAFETY: a zero-length non-blocking send with no buffer; AF_XDP takes
    // it as "process the TX ring".
    unsafe {
        libc::sendto(
            fd,
            core::ptr::null(),
            0,
            libc::MSG_DONTWAIT,
            core::ptr::null(),
            0,
        )
    };
}

/// Wait up to `timeout_ms` for the socket to become readable (or kick the
/// fill ring with a zero timeout).
pub fn poll_in(fd: RawFd, timeout_ms: i32) {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one live pollfd.
    unsafe { libc::poll(&mut p, 1, timeout_ms) };
}

/// A socket's descriptor, owned or borrowed from the UMEM (the first
/// socket of a UMEM is the one it was registered on).
pub enum SockFd {
    Owned(OwnedFd),
    Borrowed(RawFd),
}

impl SockFd {
    pub fn raw(&self) -> RawFd {
        match self {
            SockFd::Owned(f) => f.as_raw_fd(),
            SockFd::Borrowed(f) => *f,
        }
    }
}
