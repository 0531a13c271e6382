//! Wire formats: checked parsing and emission of every header the stack speaks.
//!
//! Each module offers a parsed form (`*Repr`) with `parse` (checked: a bad
//! length, version or checksum is an [`WireError`], never a panic) and `emit`
//! (writes into a caller-supplied buffer).

pub mod arp;
pub mod checksum;
pub mod common_tcp;
pub mod ethernet;
pub mod icmp;
pub mod icmp_error;
pub mod ipv4;
pub mod mptcp;
pub mod tcp;
pub mod udp;

pub use arp::{ArpOp, ArpRepr};
pub use ethernet::{EtherType, EthernetRepr, MacAddr};
pub use icmp::IcmpRepr;
pub use icmp_error::IcmpError;
pub use ipv4::{FragInfo, IpProtocol, Ipv4Repr};
pub use tcp::{MptcpRaw, SackBlocks, SeqNumber, TcpFlags, TcpOptions, TcpRepr};
pub use udp::UdpRepr;

/// Why a packet was rejected. Each variant is a drop counter in the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireError {
    /// Shorter than its header or than its own length field says.
    Truncated,
    /// A length field that is inconsistent (header length < minimum, option
    /// length running past the header, total length < header length, ...).
    BadLength,
    /// Header checksum or transport checksum mismatch.
    BadChecksum,
    /// IP version other than 4, ARP hardware/protocol other than Ethernet/IPv4.
    BadVersion,
    /// An IPv4 fragment (MF set or non-zero offset) where a whole datagram
    /// is needed (e.g. the quote of an ICMP error).
    Fragment,
    /// Well-formed but not something we handle (ethertype, ICMP type, ...).
    Unsupported,
}

impl core::fmt::Display for WireError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let s = match self {
            WireError::Truncated => "truncated",
            WireError::BadLength => "bad_length",
            WireError::BadChecksum => "bad_checksum",
            WireError::BadVersion => "bad_version",
            WireError::Fragment => "fragment",
            WireError::Unsupported => "unsupported",
        };
        f.write_str(s)
    }
}

pub type Result<T> = core::result::Result<T, WireError>;
