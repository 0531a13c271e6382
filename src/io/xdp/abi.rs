//! The kernel's AF_XDP ABI (`include/uapi/linux/if_xdp.h`): the structures
//! and constants the ring layer ([`super::ring`], [`super::xsk`]) passes to
//! `setsockopt`, `getsockopt`, `mmap` and `bind`. Layouts are the kernel's,
//! field for field (`#[repr(C)]`).

/// Address family and socket option level.
pub const AF_XDP: libc::c_int = 44;
pub const SOL_XDP: libc::c_int = 283;

/// Socket options (level `SOL_XDP`).
pub const XDP_MMAP_OFFSETS: libc::c_int = 1;
pub const XDP_RX_RING: libc::c_int = 2;
pub const XDP_TX_RING: libc::c_int = 3;
pub const XDP_UMEM_REG: libc::c_int = 4;
pub const XDP_UMEM_FILL_RING: libc::c_int = 5;
pub const XDP_UMEM_COMPLETION_RING: libc::c_int = 6;
pub const XDP_STATISTICS: libc::c_int = 7;
pub const XDP_OPTIONS: libc::c_int = 8;
/// `XDP_OPTIONS` flag: the socket is bound in zero-copy mode.
pub const XDP_OPTIONS_ZEROCOPY: u32 = 1;

/// `mmap` offsets selecting a ring of the socket.
pub const XDP_PGOFF_RX_RING: libc::off_t = 0;
pub const XDP_PGOFF_TX_RING: libc::off_t = 0x8000_0000;
pub const XDP_UMEM_PGOFF_FILL_RING: libc::off_t = 0x1_0000_0000;
pub const XDP_UMEM_PGOFF_COMPLETION_RING: libc::off_t = 0x1_8000_0000;

/// `sockaddr_xdp.sxdp_flags`.
pub const XDP_SHARED_UMEM: u16 = 1 << 0;
pub const XDP_COPY: u16 = 1 << 1;
pub const XDP_ZEROCOPY: u16 = 1 << 2;
pub const XDP_USE_NEED_WAKEUP: u16 = 1 << 3;
/// Multi-buffer (Linux ≥ 6.6): a packet larger than a chunk arrives as
/// several RX descriptors, all but the last with [`XDP_PKT_CONTD`].
pub const XDP_USE_SG: u16 = 1 << 4;

/// Ring flag word: the kernel wants a syscall to make progress.
pub const XDP_RING_NEED_WAKEUP: u32 = 1 << 0;

/// `xdp_umem_reg.flags`: the kernel completes the checksums requested in
/// TX metadata in software (`skb_checksum_help`) instead of leaving them to
/// the device (Linux ≥ 6.11; meant for testing).
pub const XDP_UMEM_TX_SW_CSUM: u32 = 1 << 1;
/// `xdp_umem_reg.flags`: `tx_metadata_len` is valid (Linux ≥ 6.11; 6.8–6.10
/// read the field without the flag).
pub const XDP_UMEM_TX_METADATA_LEN: u32 = 1 << 2;

/// `xdp_desc.options`: more descriptors of the same packet follow.
pub const XDP_PKT_CONTD: u32 = 1 << 0;
/// `xdp_desc.options`: `struct xsk_tx_metadata` precedes the packet, at
/// `addr - tx_metadata_len`.
pub const XDP_TX_METADATA: u32 = 1 << 1;
/// `xsk_tx_metadata.flags`: request the L4 checksum.
pub const XDP_TXMD_FLAGS_CHECKSUM: u64 = 1 << 1;

/// `struct xdp_umem_reg`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct XdpUmemReg {
    pub addr: u64,
    pub len: u64,
    pub chunk_size: u32,
    pub headroom: u32,
    pub flags: u32,
    pub tx_metadata_len: u32,
}

/// `struct xdp_ring_offset`: where a ring's words live in its mapping.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct XdpRingOffset {
    pub producer: u64,
    pub consumer: u64,
    pub desc: u64,
    pub flags: u64,
}

/// `struct xdp_mmap_offsets`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct XdpMmapOffsets {
    pub rx: XdpRingOffset,
    pub tx: XdpRingOffset,
    pub fr: XdpRingOffset,
    pub cr: XdpRingOffset,
}

/// `struct sockaddr_xdp`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct SockaddrXdp {
    pub family: u16,
    pub flags: u16,
    pub ifindex: u32,
    pub queue_id: u32,
    pub shared_umem_fd: u32,
}

/// `struct xdp_desc`: one RX or TX ring entry.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct XdpDesc {
    pub addr: u64,
    pub len: u32,
    pub options: u32,
}

/// `struct xdp_statistics`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct XdpStatistics {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

/// `struct xsk_tx_metadata` with its `request` arm: written in front of a
/// TX packet (at `addr - TX_METADATA_LEN`).
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
pub struct XskTxMetadata {
    pub flags: u64,
    /// Offset of the L4 header from the packet's first byte.
    pub csum_start: u16,
    /// Offset of the checksum field from `csum_start`.
    pub csum_offset: u16,
    /// The rest of the union (`launch_time`, `completion.tx_timestamp`).
    pub _rest: u32,
}

/// Bytes of TX metadata in front of every TX packet (a multiple of 8, as
/// the kernel requires).
pub const TX_METADATA_LEN: usize = core::mem::size_of::<XskTxMetadata>();

const _: () = assert!(core::mem::size_of::<XdpUmemReg>() == 32);
const _: () = assert!(core::mem::size_of::<XdpMmapOffsets>() == 128);
const _: () = assert!(core::mem::size_of::<SockaddrXdp>() == 16);
const _: () = assert!(core::mem::size_of::<XdpDesc>() == 16);
const _: () = assert!(TX_METADATA_LEN == 16);
