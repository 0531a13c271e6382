//! The send queue: application data written into frames (payload at
//! `io::HEADROOM`), kept until acknowledged so a retransmission re-emits the
//! same frame with headers rewritten in place.
//!
//! A segment never spans two frames. A frame is filled up to the sender MSS
//! while none of its bytes has been transmitted (Nagle coalescing); after
//! that, new data goes to a fresh frame.

use super::SeqNumber;
use crate::io::{Frame, HEADROOM};
use crate::tcp::Payload;
use std::collections::VecDeque;

/// One frame of the send queue: payload `frame.buf()[off..end]` carries the
/// sequence numbers starting at `seq`. `off` moves forward on partial ACKs.
pub(crate) struct SendFrame<F> {
    pub frame: F,
    pub seq: SeqNumber,
    pub off: usize,
    pub end: usize,
}

impl<F> SendFrame<F> {
    fn len(&self) -> usize {
        self.end - self.off
    }
    fn end_seq(&self) -> SeqNumber {
        self.seq + self.len()
    }
}

/// Unacknowledged and unsent application data, in frames.
pub(crate) struct SendBuffer<F> {
    frames: VecDeque<SendFrame<F>>,
    /// Sequence number of the first buffered byte (SND.UNA once data flows).
    head: SeqNumber,
    len: usize,
    /// Sum of the truesize of the frames held (like Linux's
    /// sk_wmem_queued): what the queue costs, whatever the payload.
    mem: usize,
    /// Index of the frame `locate` found last: the next lookup is usually
    /// in it or the one after (SND.NXT moves forward a segment at a time),
    /// so a bulk sender with hundreds of frames queued skips the binary
    /// search. Only a guess, checked before use.
    hint: core::cell::Cell<usize>,
}

/// Where a segment's payload lives: frame index, byte offset, length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Slice {
    pub idx: usize,
    pub off: usize,
    pub len: usize,
}

impl<F: Frame> SendBuffer<F> {
    pub fn new(head: SeqNumber) -> Self {
        SendBuffer {
            frames: VecDeque::new(),
            head,
            len: 0,
            mem: 0,
            hint: core::cell::Cell::new(0),
        }
    }

    /// Bytes buffered (unacknowledged plus unsent).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Sequence number after the last buffered byte.
    pub fn tail(&self) -> SeqNumber {
        self.head + self.len
    }

    /// Frames held.
    pub fn frames(&self) -> usize {
        self.frames.len()
    }

    /// Memory held: sum of the frames' truesize.
    pub fn mem(&self) -> usize {
        self.mem
    }

    /// Bytes the last frame can still take without a new frame: it is
    /// topped up to `seg_cap` while none of it was sent (`sent_upto` is
    /// SND.NXT).
    pub fn topup_room(&self, seg_cap: usize, sent_upto: SeqNumber) -> usize {
        match self.frames.back() {
            Some(last) if last.seq >= sent_upto => {
                // Unsent, so `off` is where the frame's payload began.
                let cap = (last.off + seg_cap.max(1)).min(last.frame.buf().len());
                cap.saturating_sub(last.end)
            }
            _ => 0,
        }
    }

    /// Restart the (empty) buffer at `head` (after the handshake fixes ISS).
    pub fn reset_head(&mut self, head: SeqNumber) {
        if self.len == 0 {
            self.head = head;
        }
    }

    /// Copy up to `limit` bytes of `data` into frames. The last frame is
    /// topped up to `seg_cap` payload bytes if none of it was sent yet
    /// (`sent_upto` is SND.NXT). Returns bytes accepted.
    pub fn write(
        &mut self,
        data: &[u8],
        limit: usize,
        seg_cap: usize,
        sent_upto: SeqNumber,
        alloc: &mut dyn FnMut() -> Option<F>,
    ) -> usize {
        let data = &data[..data.len().min(limit)];
        let mut n = 0;
        self.write_with(data.len(), seg_cap, sent_upto, alloc, &mut |dst| {
            let k = dst.len().min(data.len() - n);
            dst[..k].copy_from_slice(&data[n..n + k]);
            n += k;
            k
        })
    }

    /// [`write`](Self::write) of `data` into `frame` alone, appended as a
    /// new frame (at most `seg_cap` bytes of it): the small write of the
    /// steady state, without `write_with`'s top-up and allocation loop.
    /// Returns bytes accepted (0 drops the frame).
    #[inline]
    pub fn write_frame(&mut self, mut frame: F, data: &[u8], seg_cap: usize) -> usize {
        let cap = (HEADROOM + seg_cap.max(1)).min(frame.buf().len());
        let k = cap.saturating_sub(HEADROOM).min(data.len());
        if k == 0 {
            return 0;
        }
        frame.buf_mut()[HEADROOM..HEADROOM + k].copy_from_slice(&data[..k]);
        let seq = self.tail();
        self.mem += frame.truesize();
        self.frames.push_back(SendFrame {
            frame,
            seq,
            off: HEADROOM,
            end: HEADROOM + k,
        });
        self.len += k;
        k
    }

    /// Like [`write`](Self::write), but `fill` writes the bytes straight
    /// into the frames: it is offered free space and returns how much it
    /// wrote (less than offered: it has nothing more). Up to `limit` bytes.
    pub fn write_with(
        &mut self,
        limit: usize,
        seg_cap: usize,
        sent_upto: SeqNumber,
        alloc: &mut dyn FnMut() -> Option<F>,
        fill: &mut dyn FnMut(&mut [u8]) -> usize,
    ) -> usize {
        let seg_cap = seg_cap.max(1);
        let mut n = 0;
        if let Some(last) = self.frames.back_mut() {
            if last.seq >= sent_upto {
                let cap = (last.off + seg_cap).min(last.frame.buf().len());
                if last.end < cap {
                    let room = (cap - last.end).min(limit);
                    let k = fill(&mut last.frame.buf_mut()[last.end..last.end + room]).min(room);
                    last.end += k;
                    n = k;
                    if k < room {
                        self.len += n;
                        return n;
                    }
                }
            }
        }
        while n < limit {
            let Some(mut frame) = alloc() else { break };
            let cap = (HEADROOM + seg_cap).min(frame.buf().len());
            if cap <= HEADROOM {
                break;
            }
            let room = (cap - HEADROOM).min(limit - n);
            let k = fill(&mut frame.buf_mut()[HEADROOM..HEADROOM + room]).min(room);
            if k == 0 {
                break;
            }
            let seq = self.head + (self.len + n);
            self.mem += frame.truesize();
            self.frames.push_back(SendFrame {
                frame,
                seq,
                off: HEADROOM,
                end: HEADROOM + k,
            });
            n += k;
            if k < room {
                break;
            }
        }
        self.len += n;
        n
    }

    /// Append `frame[start..end]` as it is: a frame lent by the receive
    /// side (an echo), its payload sent from where it arrived.
    pub fn push_frame(&mut self, frame: F, start: usize, end: usize) {
        let seq = self.tail();
        self.mem += frame.truesize();
        self.len += end - start;
        self.frames.push_back(SendFrame {
            frame,
            seq,
            off: start,
            end,
        });
    }

    /// Release everything before `upto` (a cumulative ACK). Returns bytes freed.
    #[inline]
    pub fn ack(&mut self, upto: SeqNumber) -> usize {
        if upto > self.head && upto >= self.tail() {
            // Everything acknowledged (the usual ACK of a clean path): the
            // frames dropped at once, without a walk; the one frame of a
            // request/response popped (`clear` goes through the deque's
            // two slices, out of line).
            if self.frames.len() == 1 {
                self.frames.pop_front();
            } else {
                self.frames.clear();
            }
            return self.released_all();
        }
        self.ack_into(upto, drop)
    }

    /// The queue emptied by an ACK of everything: the bytes it held.
    fn released_all(&mut self) -> usize {
        let freed = self.len;
        self.hint.set(0);
        self.head = self.tail();
        self.len = 0;
        self.mem = 0;
        freed
    }

    /// [`ack`](Self::ack), each frame it frees handed to `give` (an MPTCP
    /// subflow gives the connection's lent frames back) instead of dropped.
    pub fn ack_into(&mut self, upto: SeqNumber, mut give: impl FnMut(SendFrame<F>)) -> usize {
        if upto <= self.head {
            return 0;
        }
        if upto >= self.tail() {
            // Everything acknowledged: each frame to `give`, no offsets.
            self.frames.drain(..).for_each(&mut give);
            return self.released_all();
        }
        let upto = upto.min(self.tail());
        let freed = upto - self.head;
        while let Some(f) = self.frames.front_mut() {
            if f.end_seq() <= upto {
                if let Some(f) = self.frames.pop_front() {
                    self.mem -= f.frame.truesize();
                    self.hint.set(self.hint.get().saturating_sub(1));
                    give(f);
                }
            } else {
                if f.seq < upto {
                    let k = upto - f.seq;
                    f.off += k;
                    f.seq = upto;
                }
                break;
            }
        }
        self.head = upto;
        self.len -= freed;
        freed
    }

    /// The bytes from `seq` on, within the one frame that holds `seq`, at
    /// most `max` of them.
    #[inline]
    pub fn locate(&self, seq: SeqNumber, max: usize) -> Option<Slice> {
        // The hinted frame, tested here: SND.NXT is nearly always in it
        // (the one frame of a small write), and the general lookup is a
        // call. The frames cover [head, tail) without gaps, so a frame
        // holding `seq` is also the bounds check.
        let h = self.hint.get();
        if let Some(f) = self.frames.get(h) {
            if f.seq <= seq && seq < f.end_seq() {
                let off = f.off + (seq - f.seq);
                return Some(Slice {
                    idx: h,
                    off,
                    len: (f.end - off).min(max),
                });
            }
        }
        self.locate_slow(seq, max)
    }

    /// [`Self::locate`] when `seq` is not in the hinted frame.
    #[inline(never)]
    fn locate_slow(&self, seq: SeqNumber, max: usize) -> Option<Slice> {
        if seq < self.head || seq >= self.tail() {
            return None;
        }
        let holds = |i: usize| {
            self.frames
                .get(i)
                .is_some_and(|f| f.seq <= seq && seq < f.end_seq())
        };
        // The frame after the hinted one (a bulk sender's next segment).
        let h = self.hint.get() + 1;
        let idx = if holds(h) {
            h
        } else {
            self.frames.partition_point(|f| f.end_seq() <= seq)
        };
        self.hint.set(idx);
        let f = self.frames.get(idx)?;
        if seq < f.seq {
            return None;
        }
        let off = f.off + (seq - f.seq);
        Some(Slice {
            idx,
            off,
            len: (f.end - off).min(max),
        })
    }

    /// The bytes of `s`, at most `max` of them (read-only: a copy's source).
    pub fn bytes(&self, s: Slice, max: usize) -> &[u8] {
        match self.frames.get(s.idx) {
            Some(f) => {
                let end = (s.off + s.len.min(max)).min(f.end);
                &f.frame.buf()[s.off.min(end)..end]
            }
            None => &[],
        }
    }

    /// Bytes from `seq` to the end of its frame.
    pub fn frame_remaining(&self, seq: SeqNumber) -> usize {
        self.locate(seq, usize::MAX).map_or(0, |s| s.len)
    }

    /// The payload to emit for `s`: in place when the segment starts at the
    /// frame's first live byte (what lies before it is headroom or acked
    /// data, free for headers), else as bytes to copy.
    pub fn payload(&mut self, s: Slice) -> Payload<'_, F> {
        let Some(f) = self.frames.get_mut(s.idx) else {
            return Payload::None;
        };
        let end = (s.off + s.len).min(f.end);
        if s.off == f.off && s.off >= HEADROOM {
            Payload::InPlace {
                frame: &mut f.frame,
                start: s.off,
                end,
            }
        } else {
            Payload::Bytes(&f.frame.buf()[s.off..end])
        }
    }

    /// Make the bytes from `seq` (unsent: SND.NXT or later) contiguous in
    /// the frame that holds `seq`, up to `want` of them, by moving the
    /// following frames' bytes into it (within its buffer). Returns how
    /// many bytes from `seq` that frame holds now. For the rare path MTU
    /// probe (RFC 4821 §7.4), which must be larger than the frames were
    /// filled to; the copy is a few hundred bytes every few minutes.
    pub fn gather(&mut self, seq: SeqNumber, want: usize) -> usize {
        let Some(s) = self.locate(seq, usize::MAX) else {
            return 0;
        };
        let mut have = s.len;
        while have < want {
            // Rare (see above): making the ring contiguous moves no frame
            // data and allocates nothing.
            let (head, rest) = self.frames.make_contiguous().split_at_mut(s.idx + 1);
            let (Some(dst), Some(src)) = (head.last_mut(), rest.first_mut()) else {
                break;
            };
            let room = dst.frame.buf().len() - dst.end;
            let k = (want - have).min(room).min(src.len());
            if k == 0 {
                break;
            }
            let (from, to) = (src.off, dst.end);
            dst.frame.buf_mut()[to..to + k].copy_from_slice(&src.frame.buf()[from..from + k]);
            dst.end += k;
            src.off += k;
            src.seq = src.seq + k;
            have += k;
            if src.len() == 0 {
                if let Some(f) = self.frames.remove(s.idx + 1) {
                    self.mem -= f.frame.truesize();
                }
            }
        }
        have
    }

    /// Take out the frames wholly at or after `from` (unsent data), for
    /// another queue (`append`); the frames move, no byte is copied.
    pub fn split_off_from(&mut self, from: SeqNumber) -> VecDeque<SendFrame<F>> {
        let mut out = VecDeque::new();
        while self.frames.back().is_some_and(|f| f.seq >= from) {
            if let Some(f) = self.frames.pop_back() {
                self.len -= f.len();
                self.mem -= f.frame.truesize();
                out.push_front(f);
            }
        }
        self.hint.set(0);
        out
    }

    /// Append frames taken from another queue, whose first byte becomes
    /// this queue's tail (their sequence numbers are renumbered).
    pub fn append(&mut self, frames: VecDeque<SendFrame<F>>) {
        for mut f in frames {
            f.seq = self.tail();
            self.len += f.len();
            self.mem += f.frame.truesize();
            self.frames.push_back(f);
        }
    }

    /// Take out the first frame whole (its bytes leave the queue, whose
    /// head moves past them): an MPTCP chunk lent to a subflow.
    pub fn pop_front(&mut self) -> Option<SendFrame<F>> {
        let f = self.frames.pop_front()?;
        self.len -= f.len();
        self.mem -= f.frame.truesize();
        self.head = f.end_seq();
        self.hint.set(0);
        Some(f)
    }

    /// The first frame's sequence number and payload length.
    pub fn front_frame(&self) -> Option<(SeqNumber, usize)> {
        self.frames.front().map(|f| (f.seq, f.len()))
    }

    /// The `len` payload bytes before `end` of the frame whose data ends
    /// at sequence number `end`, acknowledged or not (they are still in
    /// its buffer): a lent chunk copied for a reinjection.
    pub fn frame_tail(&self, end: SeqNumber, len: usize) -> Option<&[u8]> {
        let i = self.frames.partition_point(|f| f.end_seq() < end);
        let f = self.frames.get(i)?;
        if f.end_seq() != end || f.end < len {
            return None;
        }
        f.frame.buf().get(f.end - len..f.end)
    }

    /// Drop everything (abort, reset).
    pub fn clear(&mut self) {
        self.frames.clear();
        self.head = self.tail();
        self.len = 0;
        self.mem = 0;
    }
}

mod probe_copy;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::test_frame::VecFrame as V;
    fn alloc() -> Option<V> {
        Some(V(vec![0; 2048]))
    }

    #[test]
    fn write_fill_ack_locate() {
        let mut b = SendBuffer::<V>::new(SeqNumber(1000));
        let data: Vec<u8> = (0..3000u32).map(|i| i as u8).collect();
        assert_eq!(
            b.write(&data[..100], usize::MAX, 1000, SeqNumber(1000), &mut alloc),
            100
        );
        // Unsent: topped up.
        assert_eq!(
            b.write(&data[100..], usize::MAX, 1000, SeqNumber(1000), &mut alloc),
            2900
        );
        assert_eq!(b.frames(), 3);
        assert_eq!(b.len(), 3000);
        let s = b.locate(SeqNumber(1000), 5000).unwrap();
        assert_eq!((s.idx, s.off, s.len), (0, HEADROOM, 1000));
        let s = b.locate(SeqNumber(2500), 100).unwrap();
        assert_eq!((s.idx, s.off, s.len), (1, HEADROOM + 500, 100));
        match b.payload(s) {
            Payload::Bytes(x) => assert_eq!(x, &data[1500..1600]),
            _ => panic!("expected bytes"),
        }
        assert_eq!(b.ack(SeqNumber(2500)), 1500);
        let s = b.locate(SeqNumber(2500), 5000).unwrap();
        assert_eq!((s.idx, s.off, s.len), (0, HEADROOM + 500, 500));
        assert!(matches!(b.payload(s), Payload::InPlace { .. }));
        // Sent frames are not topped up.
        assert_eq!(
            b.write(&[1], usize::MAX, 1000, SeqNumber(3500), &mut alloc),
            1
        );
        assert_eq!(b.frames(), 3);
        // The new frame at 4000 is unsent: topped up.
        assert_eq!(
            b.write(&[1], usize::MAX, 1000, SeqNumber(4000), &mut alloc),
            1
        );
        assert_eq!(b.frames(), 3);
        assert_eq!(b.len(), 1502);
        assert!(b.locate(SeqNumber(2499), 1).is_none());
    }

    /// `write_frame` queues what `write` queues into an empty queue: the
    /// same bytes, sequence numbers, offsets and memory; at most a
    /// segment of `data`; nothing (and no frame) when the frame has no
    /// room past the headroom.
    #[test]
    fn write_frame_is_write_into_one_fresh_frame() {
        let data: Vec<u8> = (0..200u32).map(|i| i as u8).collect();
        for (len, seg_cap) in [(64, 1448), (200, 100), (1, 1)] {
            let mut a = SendBuffer::<V>::new(SeqNumber(7));
            let mut b = SendBuffer::<V>::new(SeqNumber(7));
            // `write` given one frame, as `write_frame` is.
            let mut one = alloc();
            let want = a.write(&data[..len], usize::MAX, seg_cap, SeqNumber(7), &mut || {
                one.take()
            });
            assert_eq!(want, len.min(seg_cap));
            let f = alloc().unwrap();
            assert_eq!(b.write_frame(f, &data[..len], seg_cap), want);
            assert_eq!(
                (b.len(), b.frames(), b.mem()),
                (a.len(), a.frames(), a.mem())
            );
            let (sa, sb) = (a.locate(SeqNumber(7), 5000), b.locate(SeqNumber(7), 5000));
            assert_eq!(sa, sb);
            let s = sb.unwrap();
            assert_eq!(b.bytes(s, usize::MAX), &data[..want]);
        }
        let mut b = SendBuffer::<V>::new(SeqNumber(7));
        assert_eq!(b.write_frame(V(vec![0; HEADROOM]), &data, 100), 0);
        assert_eq!((b.len(), b.frames(), b.mem()), (0, 0, 0));
    }

    /// The ACK of everything (`ack`'s whole-queue release) leaves the
    /// queue as the per-frame walk does: empty, no memory, the next write
    /// at the old tail; an ACK beyond the tail (a FIN's) is clamped, and
    /// an ACK short of it keeps the rest.
    #[test]
    fn ack_of_everything_empties_the_queue() {
        let data = [7u8; 2500];
        let mut b = SendBuffer::<V>::new(SeqNumber(10));
        assert_eq!(b.write(&data, 2500, 1000, SeqNumber(10), &mut alloc), 2500);
        assert_eq!(b.ack(SeqNumber(2509)), 2499);
        assert_eq!((b.len(), b.frames()), (1, 1));
        assert!(b.locate(SeqNumber(2509), 10).is_some());
        assert_eq!(b.ack(SeqNumber(2511)), 1);
        assert_eq!((b.len(), b.frames(), b.mem()), (0, 0, 0));
        assert_eq!(b.tail(), SeqNumber(2510));
        assert_eq!(b.write(&data[..5], 5, 1000, SeqNumber(2510), &mut alloc), 5);
        let s = b.locate(SeqNumber(2510), 10).unwrap();
        assert_eq!((s.idx, s.off, s.len), (0, HEADROOM, 5));
        assert_eq!(b.ack(SeqNumber(2515)), 5);
        assert_eq!((b.len(), b.frames(), b.mem()), (0, 0, 0));
        assert!(b.locate(SeqNumber(2515), 1).is_none());
    }

    #[test]
    fn a_lent_frame_is_sent_from_where_its_payload_lies_and_topped_up_to_one_segment() {
        let mut b = SendBuffer::<V>::new(SeqNumber(0));
        let mut f = alloc().unwrap();
        f.buf_mut()[300..310].copy_from_slice(b"0123456789");
        b.push_frame(f, 300, 310);
        assert_eq!((b.len(), b.frames()), (10, 1));
        // Unsent: topped up to one segment from its payload's start.
        assert_eq!(b.topup_room(100, SeqNumber(0)), 90);
        assert_eq!(b.write(b"ab", 2, 100, SeqNumber(0), &mut alloc), 2);
        let s = b.locate(SeqNumber(0), 100).unwrap();
        assert_eq!((s.off, s.len), (300, 12));
        match b.payload(s) {
            Payload::InPlace { start, end, .. } => assert_eq!((start, end), (300, 312)),
            _ => panic!("a lent frame goes out in place"),
        }
        assert_eq!(b.ack(SeqNumber(12)), 12);
        assert_eq!(b.frames(), 0);
    }

    #[test]
    fn gather_makes_a_probe_contiguous() {
        let mut b = SendBuffer::<V>::new(SeqNumber(0));
        let data: Vec<u8> = (0..4000u32).map(|i| (i * 7) as u8).collect();
        // Frames of 1000 bytes; 500 sent.
        assert_eq!(
            b.write(&data, usize::MAX, 1000, SeqNumber(0), &mut alloc),
            4000
        );
        assert_eq!(b.frames(), 4);
        let mem = b.mem();
        // 1,400 bytes from 500: the rest of frame 0 and 900 of frame 1.
        assert_eq!(b.gather(SeqNumber(500), 1400), 1400);
        assert_eq!(b.frames(), 4);
        let s = b.locate(SeqNumber(500), 1400).unwrap();
        assert_eq!((s.idx, s.len), (0, 1400));
        match b.payload(s) {
            Payload::Bytes(x) => assert_eq!(x, &data[500..1900]),
            _ => panic!("expected bytes"),
        }
        // Never beyond the frame's buffer (2,048 less the headroom, 500
        // bytes of it before SEQ 500).
        assert_eq!(b.gather(SeqNumber(500), 100_000), 2048 - HEADROOM - 500);
        assert_eq!(b.mem(), mem);
        // A frame emptied by the gathering is released.
        let mut b = SendBuffer::<V>::new(SeqNumber(0));
        assert_eq!(
            b.write(&data, usize::MAX, 500, SeqNumber(0), &mut alloc),
            4000
        );
        assert_eq!(b.frames(), 8);
        let mem = b.mem();
        assert_eq!(b.gather(SeqNumber(200), 1000), 1000);
        assert_eq!(b.frames(), 7);
        assert!(b.mem() < mem);
        // Everything still in order, at the same sequence numbers.
        let mut seq = 0;
        while let Some(s) = b.locate(SeqNumber(seq), usize::MAX) {
            let x = match b.payload(s) {
                Payload::Bytes(x) => x.to_vec(),
                Payload::InPlace { frame, start, end } => frame.buf()[start..end].to_vec(),
                Payload::None => break,
            };
            assert_eq!(x, &data[seq as usize..seq as usize + x.len()]);
            seq += x.len() as u32;
        }
        assert_eq!(seq, 4000);
    }
}
