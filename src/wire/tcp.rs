//! TCP header and options (RFC 9293 §3.1, RFC 7323, RFC 2018, RFC 8684 §3).

use super::Result;
use core::cmp::Ordering;
use core::net::Ipv4Addr;
use core::ops::{Add, Sub};

/// A TCP sequence number: arithmetic and comparison modulo 2^32
/// (RFC 9293 §3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// Signed distance `self - other`, valid when they are less than 2^31 apart.
    pub fn diff(self, other: SeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }
    pub fn max(self, other: SeqNumber) -> SeqNumber {
        if self > other {
            self
        } else {
            other
        }
    }
    pub fn min(self, other: SeqNumber) -> SeqNumber {
        if self < other {
            self
        } else {
            other
        }
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

impl Add<usize> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, n: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(n as u32))
    }
}

impl Sub<usize> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, n: usize) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(n as u32))
    }
}

/// `a - b` in bytes; `a` must not be before `b`.
impl Sub<SeqNumber> for SeqNumber {
    type Output = usize;
    fn sub(self, other: SeqNumber) -> usize {
        let d = self.diff(other);
        debug_assert!(d >= 0, "sequence number subtraction underflow");
        d.max(0) as usize
    }
}

/// TCP control bits (RFC 9293 §3.1, RFC 3168 §6.1 for ECE/CWR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    pub const FIN: TcpFlags = TcpFlags(0x01);
    pub const SYN: TcpFlags = TcpFlags(0x02);
    pub const RST: TcpFlags = TcpFlags(0x04);
    pub const PSH: TcpFlags = TcpFlags(0x08);
    pub const ACK: TcpFlags = TcpFlags(0x10);
    pub const URG: TcpFlags = TcpFlags(0x20);
    pub const ECE: TcpFlags = TcpFlags(0x40);
    pub const CWR: TcpFlags = TcpFlags(0x80);

    pub fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn fin(self) -> bool {
        self.contains(Self::FIN)
    }
    pub fn syn(self) -> bool {
        self.contains(Self::SYN)
    }
    pub fn rst(self) -> bool {
        self.contains(Self::RST)
    }
    pub fn ack(self) -> bool {
        self.contains(Self::ACK)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, o: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | o.0)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, o: TcpFlags) {
        self.0 |= o.0;
    }
}

/// Up to four SACK blocks (RFC 2018 §3), `[left, right)` each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SackBlocks {
    pub len: u8,
    pub blocks: [(SeqNumber, SeqNumber); 4],
}

impl SackBlocks {
    pub fn as_slice(&self) -> &[(SeqNumber, SeqNumber)] {
        &self.blocks[..self.len as usize]
    }
    /// Append a block; ignored when four are already present.
    pub fn push(&mut self, left: SeqNumber, right: SeqNumber) {
        if (self.len as usize) < self.blocks.len() {
            self.blocks[self.len as usize] = (left, right);
            self.len += 1;
        }
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Raw MPTCP options (kind 30, RFC 8684 §3), each kept whole (kind, length,
/// body) and concatenated; the options area is at most 40 bytes so they fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MptcpRaw {
    pub len: u8,
    pub bytes: [u8; 40],
}

impl Default for MptcpRaw {
    fn default() -> Self {
        MptcpRaw {
            len: 0,
            bytes: [0; 40],
        }
    }
}

impl MptcpRaw {
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The TCP options we understand. Unknown options are skipped on parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpOptions {
    /// Maximum segment size (RFC 9293 §3.7.1), SYN only.
    pub mss: Option<u16>,
    /// Window scale shift (RFC 7323 §2), SYN only; values above 14 are kept
    /// as received (the TCP layer clamps them to 14).
    pub window_scale: Option<u8>,
    /// SACK-permitted (RFC 2018 §2), SYN only.
    pub sack_permitted: bool,
    /// SACK blocks (RFC 2018 §3).
    pub sack: SackBlocks,
    /// Timestamps (TSval, TSecr) (RFC 7323 §3).
    pub timestamps: Option<(u32, u32)>,
    /// MPTCP options, raw.
    pub mptcp: MptcpRaw,
}

/// A parsed TCP header (RFC 9293 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpRepr {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: SeqNumber,
    /// Acknowledgment number; meaningful only when `flags` has ACK.
    pub ack: SeqNumber,
    pub flags: TcpFlags,
    /// The window field as on the wire (not scaled).
    pub window: u16,
    pub urgent: u16,
    pub options: TcpOptions,
}

impl TcpRepr {
    /// Parse a TCP segment (header + payload) that arrived from `src` to
    /// `dst`, verifying the checksum over the pseudo-header (RFC 9293 §3.1).
    /// Returns the header and the offset where the payload starts.
    pub fn parse(segment: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<(TcpRepr, usize)> {
        let _ = (segment, src, dst);
        todo!("wire::tcp::parse")
    }

    /// Parse without verifying the checksum (the NIC or a test already did).
    pub fn parse_unchecked(segment: &[u8]) -> Result<(TcpRepr, usize)> {
        let _ = segment;
        todo!("wire::tcp::parse_unchecked")
    }

    /// Length of the header this repr emits: 20 + options, padded to 4.
    pub fn header_len(&self) -> usize {
        todo!("wire::tcp::header_len")
    }

    /// Write the header into `segment[..header_len()]` and the checksum over
    /// the whole `segment` (header + payload already in place after it).
    pub fn emit(&self, segment: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
        let _ = (segment, src, dst);
        todo!("wire::tcp::emit")
    }

    /// Sequence space this segment occupies: payload plus one for SYN and
    /// one for FIN (RFC 9293 §3.4).
    pub fn seg_len(&self, payload_len: usize) -> usize {
        payload_len + self.flags.syn() as usize + self.flags.fin() as usize
    }
}
