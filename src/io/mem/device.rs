//! The simulated NIC: transmit frames come from a TX pool, receive frames
//! from an RX pool (separate, like a NIC's fill ring, so a sender whose
//! frames are all held for retransmission can still receive ACKs), and
//! transmitting copies the bytes onto the wire (copying here *is* the wire).

use super::frame::{FramePool, HeapFrame, PoolStats};
use crate::io::{Device, Frame};
use std::collections::VecDeque;

/// Device counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeviceStats {
    pub tx_packets: u64,
    /// Transmits refused: TX ring full, no wire frame, or a bad range.
    pub tx_dropped: u64,
    pub rx_packets: u64,
    /// Arrivals dropped because the RX pool was empty.
    pub rx_no_frame: u64,
    pub tx_pool: PoolStats,
    pub rx_pool: PoolStats,
}

/// A simulated network device of one stack.
pub struct SimDevice {
    tx_pool: FramePool,
    rx_pool: FramePool,
    wire: FramePool,
    /// Packets transmitted and not yet taken by the network.
    outbox: VecDeque<(HeapFrame, usize)>,
    tx_ring: usize,
    mtu: usize,
    tx_packets: u64,
    tx_dropped: u64,
    rx_packets: u64,
    rx_no_frame: u64,
}

impl SimDevice {
    /// `tx_ring`: packets the outbox holds before `transmit` fails.
    pub fn new(
        tx_pool: FramePool,
        rx_pool: FramePool,
        wire: FramePool,
        mtu: usize,
        tx_ring: usize,
    ) -> Self {
        SimDevice {
            tx_pool,
            rx_pool,
            wire,
            outbox: VecDeque::new(),
            tx_ring,
            mtu,
            tx_packets: 0,
            tx_dropped: 0,
            rx_packets: 0,
            rx_no_frame: 0,
        }
    }

    /// The next transmitted packet (a wire frame and its length).
    pub fn take_tx(&mut self) -> Option<(HeapFrame, usize)> {
        self.outbox.pop_front()
    }

    /// Copy an arriving packet into an RX frame (`None`, counted, when the RX
    /// pool is empty).
    pub fn rx_frame(&mut self, bytes: &[u8]) -> Option<HeapFrame> {
        let Some(mut f) = self.rx_pool.alloc() else {
            self.rx_no_frame += 1;
            return None;
        };
        let n = bytes.len().min(f.buf().len());
        f.buf_mut()[..n].copy_from_slice(&bytes[..n]);
        self.rx_packets += 1;
        Some(f)
    }

    pub fn stats(&self) -> DeviceStats {
        DeviceStats {
            tx_packets: self.tx_packets,
            tx_dropped: self.tx_dropped,
            rx_packets: self.rx_packets,
            rx_no_frame: self.rx_no_frame,
            tx_pool: self.tx_pool.stats(),
            rx_pool: self.rx_pool.stats(),
        }
    }

    fn push(&mut self, bytes: Option<&[u8]>) -> bool {
        let Some(bytes) = bytes else {
            self.tx_dropped += 1;
            return false;
        };
        if self.outbox.len() >= self.tx_ring {
            self.tx_dropped += 1;
            return false;
        }
        let Some(mut w) = self.wire.alloc() else {
            self.tx_dropped += 1;
            return false;
        };
        let Some(dst) = w.buf_mut().get_mut(..bytes.len()) else {
            self.tx_dropped += 1;
            return false;
        };
        dst.copy_from_slice(bytes);
        self.outbox.push_back((w, bytes.len()));
        self.tx_packets += 1;
        true
    }
}

impl Device for SimDevice {
    type Frame = HeapFrame;

    fn alloc(&mut self) -> Option<HeapFrame> {
        self.tx_pool.alloc()
    }

    fn transmit(&mut self, frame: HeapFrame, start: usize, end: usize) -> bool {
        self.push(frame.buf().get(start..end))
    }

    fn transmit_ref(&mut self, frame: &mut HeapFrame, start: usize, end: usize) -> bool {
        self.push(frame.buf().get(start..end))
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    fn free_frames(&self) -> Option<usize> {
        let s = self.tx_pool.stats();
        Some(s.limit.saturating_sub(s.in_use))
    }

    fn total_frames(&self) -> Option<usize> {
        Some(self.tx_pool.stats().limit)
    }

    fn rx_free_frames(&self) -> Option<usize> {
        let s = self.rx_pool.stats();
        Some(s.limit.saturating_sub(s.in_use))
    }

    fn rx_total_frames(&self) -> Option<usize> {
        Some(self.rx_pool.stats().limit)
    }

    /// Stacks whose devices share a TX pool (a host's interfaces in the
    /// multipath simulator, as one UMEM in the runtime) may lend each
    /// other frames.
    fn frame_pool_id(&self) -> Option<usize> {
        Some(self.tx_pool.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transmit_copies_and_frees() {
        let tx = FramePool::new(128, 4);
        let rx = FramePool::new(128, 1);
        let wire = FramePool::new(128, 100);
        let mut dev = SimDevice::new(tx.clone(), rx, wire, 1500, 2);
        let mut f = dev.alloc().unwrap();
        f.buf_mut()[10..14].copy_from_slice(b"abcd");
        assert!(dev.transmit_ref(&mut f, 10, 14));
        assert!(dev.transmit(f, 11, 13));
        assert_eq!(tx.stats().in_use, 0);
        // Ring full.
        let g = dev.alloc().unwrap();
        assert!(!dev.transmit(g, 0, 1));
        // Bad range.
        let mut g = dev.alloc().unwrap();
        assert!(!dev.transmit_ref(&mut g, 0, 4096));
        let (w, n) = dev.take_tx().unwrap();
        assert_eq!(&w.buf()[..n], b"abcd");
        let (w, n) = dev.take_tx().unwrap();
        assert_eq!(&w.buf()[..n], b"bc");
        assert!(dev.take_tx().is_none());
        let r = dev.rx_frame(b"xy").unwrap();
        assert_eq!(&r.buf()[..2], b"xy");
        assert!(dev.rx_frame(b"z").is_none());
        let s = dev.stats();
        assert_eq!(
            (s.tx_packets, s.tx_dropped, s.rx_packets, s.rx_no_frame),
            (2, 2, 1, 1)
        );
    }
}
