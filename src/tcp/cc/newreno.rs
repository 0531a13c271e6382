//! NewReno congestion control (RFC 5681, RFC 6582, with RFC 3465 ABC).

/// NewReno window state.
#[derive(Debug)]
pub struct NewReno {
    _private: (),
}

impl NewReno {
    pub fn new(mss: usize, iw_segments: u32) -> Self {
        let _ = (mss, iw_segments);
        todo!()
    }
}
