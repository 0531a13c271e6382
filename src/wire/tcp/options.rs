//! TCP options: parsing every option we understand (RFC 9293 §3.2, RFC 7323,
//! RFC 2018, RFC 8684 §3) and writing them in a canonical compact layout.

use super::{SackBlocks, SeqNumber, TcpOptions};
use crate::wire::{Result, WireError};

/// Option kinds (IANA "TCP Option Kind Numbers").
pub const KIND_EOL: u8 = 0;
pub const KIND_NOP: u8 = 1;
pub const KIND_MSS: u8 = 2;
pub const KIND_WS: u8 = 3;
pub const KIND_SACK_PERMITTED: u8 = 4;
pub const KIND_SACK: u8 = 5;
pub const KIND_TIMESTAMPS: u8 = 8;
pub const KIND_MPTCP: u8 = 30;

/// The options area is at most 40 bytes (data offset 15 words, RFC 9293 §3.1).
pub const MAX_OPTIONS_LEN: usize = 40;

fn be16(b: &[u8]) -> u16 {
    match b {
        [a, b, ..] => u16::from_be_bytes([*a, *b]),
        _ => 0,
    }
}

fn be32(b: &[u8]) -> u32 {
    match b {
        [a, b, c, d, ..] => u32::from_be_bytes([*a, *b, *c, *d]),
        _ => 0,
    }
}

impl TcpOptions {
    /// Parse the options area (the bytes between the fixed header and the
    /// data offset).
    ///
    /// RFC 9293 §3.2: an option is a single kind byte (EOL, NOP) or kind,
    /// length (counting kind and length) and data. Unknown kinds are skipped
    /// by their length (RFC 9293 §3.1: "must be prepared to handle an
    /// illegal option length ... without crashing"); a length below 2, past
    /// the end of the area, or wrong for a known kind is `BadLength`. A
    /// repeated option overwrites the earlier one, except MPTCP options,
    /// which are all kept in order.
    pub fn parse(opts: &[u8]) -> Result<TcpOptions> {
        let mut o = TcpOptions::default();
        o.parse_into(opts)?;
        Ok(o)
    }

    /// `parse` into `self`, which should be `TcpOptions::default()`; parsing
    /// in place saves copying the (large) options struct on the hot path.
    pub fn parse_into(&mut self, mut opts: &[u8]) -> Result<()> {
        let o = self;
        // RFC 7323 Appendix A: the recommended `NOP,NOP,TS` layout on data
        // segments is taken in one step (like Linux's fast path).
        if let [KIND_NOP, KIND_NOP, KIND_TIMESTAMPS, 10, a, b, c, d, e, f, g, h, rest @ ..] = opts {
            o.timestamps = Some((
                u32::from_be_bytes([*a, *b, *c, *d]),
                u32::from_be_bytes([*e, *f, *g, *h]),
            ));
            opts = rest;
        }
        loop {
            let (kind, len) = match opts {
                [] | [KIND_EOL, ..] => break,
                [KIND_NOP, rest @ ..] => {
                    opts = rest;
                    continue;
                }
                [_] => return Err(WireError::BadLength),
                [kind, len, ..] => (*kind, *len as usize),
            };
            if len < 2 || len > opts.len() {
                return Err(WireError::BadLength);
            }
            let (opt, rest) = opts.split_at(len);
            let data = &opt[2..];
            match (kind, len) {
                // RFC 9293 §3.2: MSS, length 4.
                (KIND_MSS, 4) => o.mss = Some(be16(data)),
                // RFC 7323 §2.2: Window Scale, length 3.
                (KIND_WS, 3) => o.window_scale = data.first().copied(),
                // RFC 2018 §2: SACK-permitted, length 2.
                (KIND_SACK_PERMITTED, 2) => o.sack_permitted = true,
                // RFC 2018 §3: SACK, length 2 + 8n; at most 4 blocks fit.
                (KIND_SACK, 10 | 18 | 26 | 34) => {
                    let mut sack = SackBlocks::default();
                    for block in data.chunks_exact(8) {
                        sack.push(
                            SeqNumber(be32(block)),
                            SeqNumber(be32(block.get(4..).unwrap_or_default())),
                        );
                    }
                    o.sack = sack;
                }
                // RFC 7323 §3.2: Timestamps, length 10.
                (KIND_TIMESTAMPS, 10) => {
                    o.timestamps = Some((be32(data), be32(data.get(4..).unwrap_or_default())))
                }
                (KIND_MSS | KIND_WS | KIND_SACK_PERMITTED | KIND_SACK | KIND_TIMESTAMPS, _) => {
                    return Err(WireError::BadLength)
                }
                // RFC 8684 §3: MPTCP options are kept whole for the MPTCP layer.
                (KIND_MPTCP, _) => {
                    // Always fits: the whole options area is at most 40 bytes.
                    o.mptcp.append(opt);
                }
                _ => {}
            }
            opts = rest;
        }
        Ok(())
    }

    /// The timestamps, when they are the only option: what every segment
    /// of a connection with timestamps carries once established (RFC 7323
    /// Appendix A's `NOP,NOP,TS`), laid out and written in one step.
    fn timestamps_only(&self) -> Option<(u32, u32)> {
        let others = self.mss.is_some()
            | self.window_scale.is_some()
            | self.sack_permitted
            | (self.sack.len != 0)
            | (self.mptcp.len != 0);
        self.timestamps.filter(|_| !others)
    }

    /// The layout `write` uses for these options (what fits in 40 bytes).
    pub(crate) fn layout(&self) -> Layout {
        if self.timestamps_only().is_some() {
            return Layout {
                sack_blocks: 0,
                mptcp_len: 0,
                len: 12,
            };
        }
        let ts_block = if self.timestamps.is_some() {
            12
        } else if self.sack_permitted {
            4
        } else {
            0
        };
        let fixed = if self.mss.is_some() { 4 } else { 0 }
            + ts_block
            + if self.window_scale.is_some() { 4 } else { 0 };
        let padded = |n: usize, m: usize| {
            let sack = if n > 0 { 4 + 8 * n } else { 0 };
            (fixed + sack + m + 3) & !3
        };
        let mptcp = self.mptcp.as_slice();
        let mut sack_blocks = self.sack.as_slice().len();
        let mut mptcp_len = mptcp.len();
        // Never emit an invalid header: drop SACK blocks from the end (the
        // first block reports the most recent data, RFC 2018 §4), then
        // whole MPTCP options from the end, until everything fits.
        while padded(sack_blocks, mptcp_len) > MAX_OPTIONS_LEN && sack_blocks > 0 {
            sack_blocks -= 1;
        }
        if padded(sack_blocks, mptcp_len) > MAX_OPTIONS_LEN {
            let room = MAX_OPTIONS_LEN - fixed;
            mptcp_len = whole_options_prefix(mptcp, room);
        }
        Layout {
            sack_blocks,
            mptcp_len,
            len: padded(sack_blocks, mptcp_len),
        }
    }

    /// Write the options per `layout` into `buf[..layout.len]`:
    /// MSS; SACK-permitted+timestamps (`SACKOK,TS`, or `NOP,NOP,TS`, or
    /// `NOP,NOP,SACKOK`); `NOP,WS`; `NOP,NOP,SACK`; MPTCP options; zero
    /// padding (EOL) to a multiple of 4. This is the layout Linux uses.
    pub(crate) fn write(&self, layout: &Layout, buf: &mut [u8]) {
        if let (Some((val, ecr)), 12) = (self.timestamps_only(), layout.len) {
            let b: &mut [u8; 12] = buf.first_chunk_mut().expect("options area");
            b[..4].copy_from_slice(&[KIND_NOP, KIND_NOP, KIND_TIMESTAMPS, 10]);
            b[4..8].copy_from_slice(&val.to_be_bytes());
            b[8..].copy_from_slice(&ecr.to_be_bytes());
            return;
        }
        let buf = &mut buf[..layout.len];
        let mut at = 0;
        let mut put = |bytes: &[u8]| {
            buf[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        if let Some(mss) = self.mss {
            let m = mss.to_be_bytes();
            put(&[KIND_MSS, 4, m[0], m[1]]);
        }
        if let Some((val, ecr)) = self.timestamps {
            if self.sack_permitted {
                put(&[KIND_SACK_PERMITTED, 2, KIND_TIMESTAMPS, 10]);
            } else {
                put(&[KIND_NOP, KIND_NOP, KIND_TIMESTAMPS, 10]);
            }
            put(&val.to_be_bytes());
            put(&ecr.to_be_bytes());
        } else if self.sack_permitted {
            put(&[KIND_NOP, KIND_NOP, KIND_SACK_PERMITTED, 2]);
        }
        if let Some(ws) = self.window_scale {
            put(&[KIND_NOP, KIND_WS, 3, ws]);
        }
        let blocks = self.sack.as_slice();
        let blocks = &blocks[..layout.sack_blocks.min(blocks.len())];
        if !blocks.is_empty() {
            put(&[KIND_NOP, KIND_NOP, KIND_SACK, (2 + 8 * blocks.len()) as u8]);
            for (l, r) in blocks {
                put(&l.0.to_be_bytes());
                put(&r.0.to_be_bytes());
            }
        }
        if layout.mptcp_len > 0 {
            let mptcp = self.mptcp.as_slice();
            put(&mptcp[..layout.mptcp_len.min(mptcp.len())]);
        }
        // At most 3 bytes of padding: a short loop beats a memset call.
        for b in &mut buf[at..] {
            *b = KIND_EOL;
        }
    }
}

/// Longest prefix of `raw` made of whole options (by their length bytes) no
/// longer than `room`; 0 if `raw` does not walk cleanly.
fn whole_options_prefix(raw: &[u8], room: usize) -> usize {
    let mut at = 0;
    let mut best = 0;
    while at < raw.len() {
        let len = match raw.get(at + 1) {
            Some(&l) if l >= 2 => l as usize,
            _ => return best,
        };
        if at + len > raw.len() || at + len > room {
            return best;
        }
        at += len;
        best = at;
    }
    best
}

/// Where `TcpOptions::write` puts things: how many SACK blocks and MPTCP
/// bytes fit, and the padded length of the options area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub sack_blocks: usize,
    pub mptcp_len: usize,
    pub len: usize,
}
