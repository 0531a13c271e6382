//! Frames and devices: the boundary between the sans-IO core and real I/O.
//!
//! A [`Frame`] is a fixed-size packet buffer owned by the I/O layer: a heap
//! buffer in the simulator (`io::mem`), a UMEM chunk on AF_XDP (`io::xdp`).
//! The core never copies received payload out of its frame: receive queues
//! hold [`Pkt`]s (a frame plus the byte range that matters), and dropping a
//! frame hands it back to its pool.

pub mod impair;
pub mod mem;
pub mod xdp;

/// Bytes reserved in front of transmit payload so that Ethernet, IPv4 and the
/// largest TCP header (14 + 20 + 60 = 94) can be written in place.
pub const HEADROOM: usize = 128;

/// A packet buffer. Dropping it returns it to the pool it came from.
pub trait Frame: 'static {
    /// The whole buffer (its full capacity, not just the valid bytes).
    fn buf(&self) -> &[u8];
    /// The whole buffer, writable.
    fn buf_mut(&mut self) -> &mut [u8];
    /// Memory charged for holding this frame (like Linux's truesize): its
    /// capacity, whatever the payload length.
    fn truesize(&self) -> usize {
        self.buf().len()
    }
    /// Extend `buf()` backwards over room the device keeps in front of it
    /// (AF_XDP: the chunk's `XDP_PACKET_HEADROOM`), so that a received
    /// payload can take headers in place when it is sent back. Returns how
    /// many bytes `buf()` grew at its front (offsets into it move by that
    /// much); 0 where there is no such room.
    fn reclaim_headroom(&mut self) -> usize {
        0
    }
}

/// A frame and the byte range `start..end` of interest within it (e.g. the
/// TCP payload of a received segment).
pub struct Pkt<F> {
    pub frame: F,
    pub start: usize,
    pub end: usize,
}

impl<F: Frame> Pkt<F> {
    pub fn new(frame: F, start: usize, end: usize) -> Self {
        debug_assert!(start <= end && end <= frame.buf().len());
        Pkt { frame, start, end }
    }
    /// The bytes of interest.
    pub fn data(&self) -> &[u8] {
        &self.frame.buf()[self.start..self.end]
    }
    pub fn len(&self) -> usize {
        self.end - self.start
    }
    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }
    /// Drop `n` bytes from the front of the range.
    pub fn advance(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }
    /// Extend the frame over its device headroom (see
    /// [`Frame::reclaim_headroom`]), keeping the range on the same bytes.
    pub fn reclaim_headroom(&mut self) {
        let k = self.frame.reclaim_headroom();
        self.start += k;
        self.end += k;
    }
    /// Keep only the first `n` bytes of the range.
    pub fn truncate(&mut self, n: usize) {
        self.end = self.end.min(self.start + n);
    }
}

/// A network device seen by one worker's stack: a source of transmit frames
/// and a sink for finished packets (full Ethernet frames).
pub trait Device {
    type Frame: Frame;

    /// A free frame to build a packet in, or `None` if the pool is empty.
    fn alloc(&mut self) -> Option<Self::Frame>;

    /// Transmit `frame[start..end]` and give up the frame (pure ACKs, ARP,
    /// ICMP, copies). Returns false if the packet was dropped (ring full).
    fn transmit(&mut self, frame: Self::Frame, start: usize, end: usize) -> bool;

    /// Transmit `frame[start..end]` from a frame the caller keeps (a TCP send
    /// frame kept for retransmission). The device copies it or lends it to
    /// hardware; the caller must not rewrite it until `can_rewrite` says so.
    /// The device may write in the frame's chunk before `start` (TX
    /// metadata).
    fn transmit_ref(&mut self, frame: &mut Self::Frame, start: usize, end: usize) -> bool;

    /// Whether a frame passed to `transmit_ref` may be rewritten again (its
    /// previous transmission has completed). Copying devices: always true.
    fn can_rewrite(&self, _frame: &Self::Frame) -> bool {
        true
    }

    /// Whether the device completes TCP checksums (AF_XDP TX metadata,
    /// `XDP_TXMD_FLAGS_CHECKSUM`): the stack then leaves the pseudo-header
    /// sum in every TCP checksum field, as Linux does for
    /// `CHECKSUM_PARTIAL`, and the device or the kernel sums the rest.
    fn tx_checksum_offload(&self) -> bool {
        false
    }

    /// The link MTU (IP packet size, without the Ethernet header).
    fn mtu(&self) -> usize;

    /// Frames `alloc` could hand out now, if the device can tell. `None`
    /// (the default): unknown or unlimited. The stack keeps a reserve of
    /// them for control traffic (see `stack::PoolConfig`).
    fn free_frames(&self) -> Option<usize> {
        None
    }

    /// Size of the transmit pool, if known (sizes the default reserve).
    fn total_frames(&self) -> Option<usize> {
        None
    }

    /// Free receive frames (RX pool / fill ring), if the device can tell.
    /// Below the stack's RX reserve, out-of-order queues are pruned so that
    /// arrivals (ACKs, retransmissions filling holes) still find frames.
    fn rx_free_frames(&self) -> Option<usize> {
        None
    }

    /// Size of the receive pool, if known.
    fn rx_total_frames(&self) -> Option<usize> {
        None
    }

    /// Which pool this device's frames come from: two devices with the
    /// same `Some` value take each other's frames (one UMEM, or one
    /// simulator pool), so a frame may move between their stacks instead
    /// of being copied. `None` (the default): unknown, copy.
    fn frame_pool_id(&self) -> Option<usize> {
        None
    }
}
