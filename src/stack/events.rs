//! The application's event queue: a `Vec` read from a head index and
//! emptied once read to its end (a dispatch takes every event queued), so
//! that queueing an event is a plain push and taking one a load, with no
//! ring arithmetic and no out-of-line call.

use crate::app::Event;

/// Taken events may stay at the front of the buffer until the queue
/// empties; past this many (an application that never takes the last
/// event) the next push moves the live ones down, so memory stays bounded
/// by the events pending.
const COMPACT_AT: usize = 64;

/// Events waiting for the application, oldest first.
#[derive(Debug, Default)]
pub(super) struct EventQueue {
    buf: Vec<Event>,
    /// Index in `buf` of the oldest event not yet taken.
    head: usize,
}

impl EventQueue {
    #[inline]
    pub fn push_back(&mut self, ev: Event) {
        if self.head >= COMPACT_AT && self.head * 2 >= self.buf.len() {
            self.compact();
        }
        self.buf.push(ev);
    }

    /// Drop the taken events from the front (amortized: at most once per
    /// `COMPACT_AT` events taken).
    #[cold]
    fn compact(&mut self) {
        self.buf.drain(..self.head);
        self.head = 0;
    }

    #[inline]
    pub fn front(&self) -> Option<&Event> {
        self.buf.get(self.head)
    }

    #[inline]
    pub fn pop_front(&mut self) -> Option<Event> {
        let ev = *self.buf.get(self.head)?;
        self.head += 1;
        if self.head == self.buf.len() {
            // Read to the end: empty again (`Event` is `Copy`, nothing to drop).
            self.buf.clear();
            self.head = 0;
        }
        Some(ev)
    }

    pub fn len(&self) -> usize {
        self.buf.len() - self.head
    }

    /// The pending events, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Event> {
        self.buf[self.head..].iter()
    }

    /// Keep only the pending events `keep` accepts, in order.
    pub fn retain(&mut self, keep: impl FnMut(&Event) -> bool) {
        self.compact();
        self.buf.retain(keep);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::ConnId;

    fn readable(i: u32) -> Event {
        Event::Readable {
            id: ConnId {
                index: i,
                generation: 0,
            },
        }
    }

    #[test]
    fn first_in_first_out_across_refills() {
        let mut q = EventQueue::default();
        assert!(q.len() == 0 && q.front().is_none() && q.pop_front().is_none());
        q.push_back(readable(1));
        q.push_back(readable(2));
        assert_eq!(q.pop_front(), Some(readable(1)));
        // Pushed while one is still pending: after it.
        q.push_back(readable(3));
        assert_eq!(q.len(), 2);
        assert_eq!(q.front(), Some(&readable(2)));
        assert_eq!(q.pop_front(), Some(readable(2)));
        assert_eq!(q.pop_front(), Some(readable(3)));
        assert_eq!(q.len(), 0);
        assert_eq!((q.buf.len(), q.head), (0, 0));
        q.push_back(readable(4));
        assert_eq!(q.pop_front(), Some(readable(4)));
        assert_eq!(q.pop_front(), None);
    }

    #[test]
    fn memory_bounded_when_never_emptied() {
        // One event always pending: the taken ones must not pile up.
        let mut q = EventQueue::default();
        q.push_back(readable(0));
        for i in 1..10_000u32 {
            q.push_back(readable(i));
            assert_eq!(q.pop_front(), Some(readable(i - 1)));
            assert_eq!(q.len(), 1);
        }
        assert!(q.buf.len() <= 2 * COMPACT_AT + 2, "{} kept", q.buf.len());
        assert_eq!(q.pop_front(), Some(readable(9_999)));
    }

    #[test]
    fn retain_keeps_pending_order() {
        let mut q = EventQueue::default();
        for i in 0..6 {
            q.push_back(readable(i));
        }
        q.pop_front();
        q.retain(|ev| !matches!(ev, Event::Readable { id } if id.index % 2 == 0));
        assert_eq!(q.len(), 3);
        for i in [1, 3, 5] {
            assert_eq!(q.pop_front(), Some(readable(i)));
        }
        assert_eq!(q.len(), 0);
    }
}
