//! CUBIC congestion control (RFC 9438).

/// CUBIC window state.
#[derive(Debug)]
pub struct Cubic {
    _private: (),
}

impl Cubic {
    pub fn new(mss: usize, iw_segments: u32) -> Self {
        let _ = (mss, iw_segments);
        todo!()
    }
}
