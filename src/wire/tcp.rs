//! TCP header and options (RFC 9293 §3.1, RFC 7323, RFC 2018, RFC 8684 §3).

mod options;
#[cfg(test)]
mod tests;

pub(crate) use options::Layout;
pub use options::{
    KIND_EOL, KIND_MPTCP, KIND_MSS, KIND_NOP, KIND_SACK, KIND_SACK_PERMITTED, KIND_TIMESTAMPS,
    KIND_WS, MAX_OPTIONS_LEN,
};

use super::checksum::{self, RxChecksum};
use super::{Result, WireError};
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

/// `a - b` in bytes, saturating at 0 when `a` is before `b`. Operands often
/// come from peer segments (SEG.ACK, SEG.SEQ, SACK blocks), so an unordered
/// pair is hostile input, not a bug: it must not panic, even in debug builds.
impl Sub<SeqNumber> for SeqNumber {
    type Output = usize;
    fn sub(self, other: SeqNumber) -> usize {
        self.diff(other).max(0) as usize
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
    pub fn psh(self) -> bool {
        self.contains(Self::PSH)
    }
    pub fn urg(self) -> bool {
        self.contains(Self::URG)
    }
    pub fn ece(self) -> bool {
        self.contains(Self::ECE)
    }
    pub fn cwr(self) -> bool {
        self.contains(Self::CWR)
    }
    /// True when any of the bits in `other` is set.
    pub fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }
}

impl core::ops::BitAnd for TcpFlags {
    type Output = TcpFlags;
    fn bitand(self, o: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & o.0)
    }
}

impl core::ops::Not for TcpFlags {
    type Output = TcpFlags;
    fn not(self) -> TcpFlags {
        TcpFlags(!self.0)
    }
}

/// tcpdump-style flag letters: `S`, `.` (ACK), `F`, `R`, `P`, `U`, `E`, `W`.
impl core::fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for (flag, c) in [
            (Self::SYN, 'S'),
            (Self::FIN, 'F'),
            (Self::RST, 'R'),
            (Self::PSH, 'P'),
            (Self::URG, 'U'),
            (Self::ECE, 'E'),
            (Self::CWR, 'W'),
            (Self::ACK, '.'),
        ] {
            if self.contains(flag) {
                write!(f, "{c}")?;
            }
        }
        Ok(())
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
/// Equality compares only the blocks in use.
#[derive(Debug, Clone, Copy, Default)]
pub struct SackBlocks {
    pub len: u8,
    pub blocks: [(SeqNumber, SeqNumber); 4],
}

impl SackBlocks {
    pub fn as_slice(&self) -> &[(SeqNumber, SeqNumber)] {
        // Clamped: `len` is a public field and may be set out of range.
        &self.blocks[..(self.len as usize).min(self.blocks.len())]
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
/// Equality compares only the bytes in use.
#[derive(Debug, Clone, Copy)]
pub struct MptcpRaw {
    pub len: u8,
    pub bytes: [u8; 40],
}

impl PartialEq for SackBlocks {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SackBlocks {}

impl PartialEq for MptcpRaw {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for MptcpRaw {}

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
        // Clamped: `len` is a public field and may be set out of range.
        &self.bytes[..(self.len as usize).min(self.bytes.len())]
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Build from whole MPTCP options (kind, length, body each); `None`
    /// if they exceed 40 bytes.
    pub fn from_slice(raw: &[u8]) -> Option<MptcpRaw> {
        let mut m = MptcpRaw::default();
        m.bytes.get_mut(..raw.len())?.copy_from_slice(raw);
        m.len = raw.len() as u8;
        Some(m)
    }
    /// Append one whole option; returns false (and appends nothing) when it
    /// does not fit.
    pub fn append(&mut self, option: &[u8]) -> bool {
        let at = self.as_slice().len();
        match self.bytes.get_mut(at..at + option.len()) {
            Some(dst) => {
                dst.copy_from_slice(option);
                self.len = (at + option.len()) as u8;
                true
            }
            None => false,
        }
    }
    /// Iterate over the whole options (kind 30, length, body), stopping at
    /// the first that does not walk (length < 2 or past the end).
    pub fn options(&self) -> impl Iterator<Item = &[u8]> {
        whole_options(self.as_slice())
    }
}

/// Iterate over the whole options in `raw` (kind, length, body each; no
/// NOP or EOL), stopping at the first that does not walk (length < 2 or
/// past the end).
pub fn whole_options(raw: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = raw;
    core::iter::from_fn(move || {
        let len = *rest.get(1)? as usize;
        if len < 2 || len > rest.len() {
            return None;
        }
        let (opt, tail) = rest.split_at(len);
        rest = tail;
        Some(opt)
    })
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

/// Offsets in the fixed TCP header (RFC 9293 §3.1).
const OFF_DATA_OFFSET: usize = 12;
const OFF_FLAGS: usize = 13;
const OFF_CHECKSUM: usize = 16;

/// IP protocol number of TCP, for the pseudo-header.
const PROTO_TCP: u8 = 6;

impl TcpRepr {
    /// The fixed header, without options.
    pub const MIN_HEADER_LEN: usize = 20;
    /// The largest header: data offset 15 words.
    pub const MAX_HEADER_LEN: usize = 60;

    /// Parse a TCP segment (header + payload) that arrived from `src` to
    /// `dst`, verifying the checksum over the pseudo-header (RFC 9293 §3.1).
    /// Returns the header and the offset where the payload starts.
    pub fn parse(segment: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<(TcpRepr, usize)> {
        Self::parse_rx(segment, src, dst, false).map(|(r, off, _)| (r, off))
    }

    /// [`Self::parse`], also accepting (with `accept_partial`) a checksum
    /// field that holds only the pseudo-header sum, as a Linux peer with
    /// transmit checksum offload sends it over veth. The flag in the result
    /// says whether the segment was taken on that ground.
    pub fn parse_rx(
        segment: &[u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        accept_partial: bool,
    ) -> Result<(TcpRepr, usize, bool)> {
        let mut repr = TcpRepr::default();
        let (off, partial) = Self::parse_rx_into(&mut repr, segment, src, dst, accept_partial)?;
        Ok((repr, off, partial))
    }

    /// [`Self::parse_rx`] into `repr`, which must be `TcpRepr::default()`:
    /// the receive path fills its own value in place instead of moving the
    /// header (about 120 bytes with its options) out of a `Result` twice.
    /// On error `repr` holds whatever was parsed so far.
    pub fn parse_rx_into(
        repr: &mut TcpRepr,
        segment: &[u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        accept_partial: bool,
    ) -> Result<(usize, bool)> {
        if segment.len() < Self::MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        // Verified before the header fields are trusted, so corruption is
        // counted as a bad checksum rather than as a bad length.
        let ph = checksum::pseudo_header(src, dst, PROTO_TCP, segment.len());
        let partial = match checksum::verify_l4(segment, OFF_CHECKSUM, ph, accept_partial) {
            RxChecksum::Valid => false,
            RxChecksum::Partial => true,
            RxChecksum::Bad => return Err(WireError::BadChecksum),
        };
        Self::parse_unchecked_into(repr, segment).map(|off| (off, partial))
    }

    /// Parse without verifying the checksum (the NIC or a test already did).
    pub fn parse_unchecked(segment: &[u8]) -> Result<(TcpRepr, usize)> {
        let mut repr = TcpRepr::default();
        let off = Self::parse_unchecked_into(&mut repr, segment)?;
        Ok((repr, off))
    }

    /// [`Self::parse_unchecked`] into `repr` (`TcpRepr::default()`).
    #[inline]
    fn parse_unchecked_into(repr: &mut TcpRepr, segment: &[u8]) -> Result<usize> {
        let h: &[u8; 20] = segment
            .get(..Self::MIN_HEADER_LEN)
            .and_then(|h| h.try_into().ok())
            .ok_or(WireError::Truncated)?;
        // RFC 9293 §3.1: Data Offset, the header length in 32-bit words.
        let header_len = (h[OFF_DATA_OFFSET] >> 4) as usize * 4;
        if header_len < Self::MIN_HEADER_LEN {
            return Err(WireError::BadLength);
        }
        let opts = segment
            .get(Self::MIN_HEADER_LEN..header_len)
            .ok_or(WireError::Truncated)?;
        let be32 = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        repr.src_port = u16::from_be_bytes([h[0], h[1]]);
        repr.dst_port = u16::from_be_bytes([h[2], h[3]]);
        repr.seq = SeqNumber(be32(4));
        repr.ack = SeqNumber(be32(8));
        // The 8-bit control field (CWR..FIN); the bit before it (NS, now
        // AE in accurate ECN) and the reserved bits are ignored.
        repr.flags = TcpFlags(h[OFF_FLAGS]);
        repr.window = u16::from_be_bytes([h[14], h[15]]);
        repr.urgent = u16::from_be_bytes([h[18], h[19]]);
        repr.options.parse_into(opts)?;
        Ok(header_len)
    }

    /// One's-complement sum of pseudo-header and segment: 0xffff when the
    /// checksum field is right.
    fn checksum_sum(segment: &[u8], src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        let ph = checksum::pseudo_header(src, dst, PROTO_TCP, segment.len());
        checksum::combine(&[ph, checksum::sum(segment)])
    }

    /// Length of the options area this repr emits, padded to 4 (at most 40;
    /// SACK blocks, then MPTCP options, that do not fit are left out).
    pub fn options_len(&self) -> usize {
        self.options.layout().len
    }

    /// Length of the header this repr emits: 20 + options, padded to 4.
    pub fn header_len(&self) -> usize {
        Self::MIN_HEADER_LEN + self.options_len()
    }

    /// This repr as `emit` writes it: without the SACK blocks and MPTCP
    /// options that do not fit in the 40-byte options area. Parsing what
    /// `emit` wrote gives exactly this.
    pub fn canonical(&self) -> TcpRepr {
        let layout = self.options.layout();
        let mut r = *self;
        r.options.sack.len = layout.sack_blocks as u8;
        r.options.sack.blocks[layout.sack_blocks..].fill(Default::default());
        let mptcp = self.options.mptcp.as_slice();
        r.options.mptcp =
            MptcpRaw::from_slice(&mptcp[..layout.mptcp_len.min(mptcp.len())]).unwrap_or_default();
        r
    }

    /// Write the header into `segment[..header_len()]` without the checksum
    /// (the field is zeroed). Returns the header length.
    ///
    /// # Panics
    /// If `segment` is shorter than `header_len()` (a caller bug).
    pub fn emit_header(&self, segment: &mut [u8]) -> usize {
        self.emit_header_with(&self.options.layout(), segment)
    }

    /// [`TcpRepr::emit_header`] with the options' layout already computed
    /// (the transmit path needs the header's length before writing it).
    pub(crate) fn emit_header_with(&self, layout: &Layout, segment: &mut [u8]) -> usize {
        let header_len = Self::MIN_HEADER_LEN + layout.len;
        let (h, opts) = segment[..header_len].split_at_mut(Self::MIN_HEADER_LEN);
        h[0..2].copy_from_slice(&self.src_port.to_be_bytes());
        h[2..4].copy_from_slice(&self.dst_port.to_be_bytes());
        h[4..8].copy_from_slice(&self.seq.0.to_be_bytes());
        h[8..12].copy_from_slice(&self.ack.0.to_be_bytes());
        h[OFF_DATA_OFFSET] = ((header_len / 4) as u8) << 4;
        h[OFF_FLAGS] = self.flags.0;
        h[14..16].copy_from_slice(&self.window.to_be_bytes());
        h[16..18].copy_from_slice(&[0, 0]);
        h[18..20].copy_from_slice(&self.urgent.to_be_bytes());
        self.options.write(layout, opts);
        header_len
    }

    /// Write the header into `segment[..header_len()]` and the checksum over
    /// the whole `segment` (header + payload already in place after it).
    ///
    /// # Panics
    /// If `segment` is shorter than `header_len()` (a caller bug).
    pub fn emit(&self, segment: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
        self.emit_header(segment);
        Self::fill_checksum(segment, src, dst);
    }

    /// Compute and store the checksum of a whole segment whose checksum
    /// field is zero (RFC 9293 §3.1).
    ///
    /// # Panics
    /// If `segment` is shorter than 20 bytes (a caller bug).
    pub fn fill_checksum(segment: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
        let c = !Self::checksum_sum(segment, src, dst);
        segment[OFF_CHECKSUM..OFF_CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
    }

    /// [`Self::fill_checksum`] for a sender that keeps the pseudo-header's
    /// sum over the addresses and protocol (`ph_addrs`, see
    /// [`Self::pseudo_header_addrs`]): only the length is added here.
    #[inline]
    pub fn fill_checksum_with(segment: &mut [u8], ph_addrs: u16) {
        let len = segment.len() as u16;
        let c = !checksum::combine(&[ph_addrs, len, checksum::sum(segment)]);
        segment[OFF_CHECKSUM..OFF_CHECKSUM + 2].copy_from_slice(&c.to_be_bytes());
    }

    /// [`Self::fill_partial_checksum`] from a kept `ph_addrs`.
    #[inline]
    pub fn fill_partial_checksum_with(segment: &mut [u8], ph_addrs: u16) {
        let ph = checksum::combine(&[ph_addrs, segment.len() as u16]);
        segment[OFF_CHECKSUM..OFF_CHECKSUM + 2].copy_from_slice(&ph.to_be_bytes());
    }

    /// The TCP pseudo-header's sum (RFC 9293 §3.1) without the length:
    /// the part fixed for a connection.
    pub fn pseudo_header_addrs(src: Ipv4Addr, dst: Ipv4Addr) -> u16 {
        checksum::pseudo_header(src, dst, PROTO_TCP, 0)
    }

    /// Store the pseudo-header sum (RFC 9293 §3.1), folded and not
    /// complemented, in the checksum field of a whole segment: what a
    /// device completing the checksum expects there (Linux
    /// `CHECKSUM_PARTIAL`, AF_XDP `XDP_TXMD_FLAGS_CHECKSUM`). Summing the
    /// segment with that field in place and complementing the result gives
    /// the full checksum.
    ///
    /// # Panics
    /// If `segment` is shorter than 20 bytes (a caller bug).
    pub fn fill_partial_checksum(segment: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) {
        let ph = checksum::pseudo_header(src, dst, PROTO_TCP, segment.len());
        segment[OFF_CHECKSUM..OFF_CHECKSUM + 2].copy_from_slice(&ph.to_be_bytes());
    }

    /// Sequence space this segment occupies: payload plus one for SYN and
    /// one for FIN (RFC 9293 §3.4).
    pub fn seg_len(&self, payload_len: usize) -> usize {
        payload_len + self.flags.syn() as usize + self.flags.fin() as usize
    }
}
