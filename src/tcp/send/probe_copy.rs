//! A PLPMTUD probe (RFC 4821 §7.3) built from a copy: on an MPTCP subflow
//! holding frames lent by its connection (`mptcp_tx::lend`), gathering
//! would reshape frames that must go back whole, so the probe's bytes go
//! into a fresh frame instead and the frames they came from are left as
//! they were (those wholly copied leave the queue for their owner).

use super::{SendBuffer, SendFrame};
use crate::io::{Frame, HEADROOM};
use crate::tcp::SeqNumber;

impl<F: Frame> SendBuffer<F> {
    /// Put the `want` bytes from `seq` (the start of a frame) into one
    /// fresh frame from `alloc`, which takes their place in the queue. A
    /// frame they only partly covered keeps its bytes and loses those
    /// sequence numbers (its `off` moves, as on a partial ACK). Returns
    /// the frames wholly copied, taken out of the queue, or `None` (the
    /// queue unchanged) when `seq` starts no frame, fewer than `want`
    /// bytes follow it, or no frame holds `want` bytes.
    pub fn probe_copy(
        &mut self,
        seq: SeqNumber,
        want: usize,
        alloc: &mut dyn FnMut() -> Option<F>,
    ) -> Option<Vec<SendFrame<F>>> {
        let s = self.locate(seq, usize::MAX)?;
        let first = self.frames.get(s.idx)?;
        if first.seq != seq || self.tail() - seq < want || want == 0 {
            return None;
        }
        let mut fresh = alloc()?;
        let dst = fresh.buf_mut().get_mut(HEADROOM..HEADROOM + want)?;
        let mut have = 0;
        let mut i = s.idx;
        while have < want {
            let f = self.frames.get(i)?;
            let k = (want - have).min(f.len());
            dst[have..have + k].copy_from_slice(&f.frame.buf()[f.off..f.off + k]);
            have += k;
            i += 1;
        }
        // The bytes are copied: now the queue changes.
        let mut taken = Vec::new();
        let mut left = want;
        while left > 0 {
            let Some(f) = self.frames.get_mut(s.idx) else {
                break;
            };
            if f.len() <= left {
                left -= f.len();
                if let Some(f) = self.frames.remove(s.idx) {
                    self.mem -= f.frame.truesize();
                    taken.push(f);
                }
            } else {
                f.off += left;
                f.seq = f.seq + left;
                left = 0;
            }
        }
        self.mem += fresh.truesize();
        self.frames.insert(
            s.idx,
            SendFrame {
                frame: fresh,
                seq,
                off: HEADROOM,
                end: HEADROOM + want,
            },
        );
        self.hint.set(0);
        Some(taken)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::test_frame::VecFrame as V;

    fn alloc() -> Option<V> {
        Some(V(vec![0; 2048]))
    }

    #[test]
    fn the_probe_is_a_copy_and_the_frames_keep_their_bytes() {
        let mut b = SendBuffer::<V>::new(SeqNumber(0));
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        assert_eq!(
            b.write(&data, usize::MAX, 1000, SeqNumber(0), &mut alloc),
            3000
        );
        let (len, frames) = (b.len(), b.frames());
        // Not at a frame's start: nothing done.
        assert!(b.probe_copy(SeqNumber(500), 1400, &mut alloc).is_none());
        assert_eq!(b.frames(), frames);
        // 1,400 bytes from 1,000: frame 1 wholly, 400 of frame 2.
        let taken = b.probe_copy(SeqNumber(1000), 1400, &mut alloc).unwrap();
        assert_eq!(taken.len(), 1);
        let t = &taken[0];
        assert_eq!(
            (t.seq, t.off, t.end),
            (SeqNumber(1000), HEADROOM, HEADROOM + 1000)
        );
        assert_eq!(&t.frame.buf()[HEADROOM..HEADROOM + 1000], &data[1000..2000]);
        assert_eq!(b.len(), len);
        let s = b.locate(SeqNumber(1000), usize::MAX).unwrap();
        assert_eq!(s.len, 1400);
        assert_eq!(b.bytes(s, 1400), &data[1000..2400]);
        // Frame 2 kept its bytes; its first 400 left the queue.
        let s = b.locate(SeqNumber(2400), usize::MAX).unwrap();
        assert_eq!(b.bytes(s, 600), &data[2400..3000]);
        assert_eq!(b.frame_tail(SeqNumber(3000), 1000), Some(&data[2000..3000]));
        // Beyond the data: nothing done.
        assert!(b.probe_copy(SeqNumber(2400), 700, &mut alloc).is_none());
    }
}
