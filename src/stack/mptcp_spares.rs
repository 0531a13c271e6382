//! Message buffers that go round between workers (issue 8: the hot path
//! allocates nothing).
//!
//! `Chunks` (A → B) and `Back` (B → A) carry their frames in a `Vec`,
//! by value in the ring's slot (a fixed array of [`super::mptcp_remote`]'s
//! 64 frames would make every slot kilobytes long). As `Data`/`Reply`
//! hand their queue back, each message also carries an emptied buffer of
//! the other kind home: `Chunks` a `Back` buffer its sender emptied,
//! `Back` and `View` (which answers `Chunks` more often than `Back`
//! does) a `Chunks` one. Each stack keeps a few of each ([`Spares`]):
//! once as many are in circulation as are in flight at once, none is
//! made (counted: `mptcp_remote_back_bufs`, `mptcp_remote_chunk_bufs`).
//!
//! No ordering is involved: a buffer moves with its message through the
//! ring (whose hand-over is the only synchronisation), owned by one
//! worker at a time.

/// Spare buffers one stack keeps of one kind, at most.
const SPARES: usize = 8;

/// Emptied buffers, kept for the next message.
pub(super) struct Spares<T> {
    bufs: [Vec<T>; SPARES],
}

impl<T> Default for Spares<T> {
    fn default() -> Self {
        Spares {
            bufs: core::array::from_fn(|_| Vec::new()),
        }
    }
}

impl<T> Spares<T> {
    /// A spare buffer, or an empty one that allocates on first use
    /// (`Vec::new`: none until then).
    pub(super) fn take(&mut self) -> Vec<T> {
        match self.bufs.iter_mut().find(|v| v.capacity() > 0) {
            Some(v) => core::mem::take(v),
            None => Vec::new(),
        }
    }

    /// A spare buffer with room for `min` at least, made (or grown) if
    /// none has: counted in `made`.
    pub(super) fn take_at_least(&mut self, min: usize, made: &mut u64) -> Vec<T> {
        let mut v = self.take();
        if v.capacity() < min {
            *made += 1;
            v.reserve_exact(min);
        }
        v
    }

    /// Keep `v`, emptied by its receiver, if there is room (else it is
    /// freed). What it still holds is dropped.
    pub(super) fn keep(&mut self, mut v: Vec<T>) {
        if v.capacity() == 0 {
            return;
        }
        v.clear();
        if let Some(s) = self.bufs.iter_mut().find(|s| s.capacity() == 0) {
            *s = v;
        }
    }
}

/// Counts `v`'s growth since it had capacity `before` (a buffer made or
/// grown allocates) into `n`.
pub(super) fn count_growth<T>(v: &Vec<T>, before: usize, n: &mut u64) {
    if v.capacity() > before {
        *n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_buffer_is_taken_again_and_the_surplus_freed() {
        let mut s = Spares::<u32>::default();
        assert_eq!(s.take().capacity(), 0, "none kept yet");
        let mut v = Vec::with_capacity(64);
        v.push(1);
        let p = v.as_ptr();
        s.keep(v);
        let again = s.take();
        assert_eq!((again.as_ptr(), again.len()), (p, 0), "the same, emptied");
        for _ in 0..SPARES + 2 {
            s.keep(Vec::with_capacity(4));
        }
        let kept = (0..SPARES + 2).filter(|_| s.take().capacity() > 0).count();
        assert_eq!(kept, SPARES);
    }
}
