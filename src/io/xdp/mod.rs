//! AF_XDP: the XDP program, the shared UMEM and its frames, one socket per
//! queue, and the [`crate::io::Device`] over it.

pub mod abi;
pub mod iface;
pub mod multibuf;
pub mod netdev;
pub mod pcap;
pub mod pool;
pub mod prog;
pub mod ring;
pub mod rss;
pub mod socket;
pub mod sys;
pub mod umem;
pub mod xsk;

pub use prog::{AttachedMode, XdpCounters, XdpMode, XdpProgram};
pub use socket::{DeviceCounters, XdpDevice, XdpSocket, ZeroCopy};
pub use umem::{CacheGuard, FrameAccount, SharedUmem, TxChecksum, XdpFrame};

/// What went wrong, coarse enough for a CLI to tell user errors apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The interface does not exist.
    NoSuchInterface,
    /// Not allowed (not root / no CAP_BPF, CAP_NET_ADMIN, CAP_NET_RAW).
    Permission,
    /// More queues asked for than the interface has (or XSKMAP holds).
    TooManyQueues,
    /// Another XDP program is attached to the interface.
    AlreadyAttached,
    /// Zero-copy was required but the driver cannot do it.
    ZeroCopyUnavailable,
    /// Anything else from libbpf / the kernel.
    Bpf,
    /// Socket or UMEM creation failed.
    Socket,
    /// The kernel already owns the address the stack was given.
    AddressInUse,
    /// Bad arguments (e.g. no interface given, unwritable --pcap file).
    Usage,
}

impl ErrorKind {
    /// Whether this is the user's to fix (CLI exit code 2) rather than a
    /// failure of the system.
    pub fn is_user_error(self) -> bool {
        !matches!(self, ErrorKind::Bpf | ErrorKind::Socket)
    }
}

/// An AF_XDP setup error.
#[derive(Debug, Clone)]
pub struct Error {
    pub kind: ErrorKind,
    pub msg: String,
}

impl Error {
    pub fn new(kind: ErrorKind, msg: String) -> Self {
        Error { kind, msg }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for Error {}
