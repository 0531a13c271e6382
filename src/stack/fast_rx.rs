//! The receive path's common case: a TCP segment in an Ethernet/IPv4
//! frame without options or fragmentation, to the interface's one
//! address, read at fixed offsets (`wire::common_tcp`) and handed to the
//! same TCP demux as the general path (`demux::tcp_segment`). Any other
//! frame (VLAN, ARP, IP options, a fragment, another or a second address,
//! an invalid source, TCP options beyond timestamps, a bad checksum or
//! length) goes through `demux` as before, which handles and counts it.

use super::Stack;
use crate::io::{Device, Frame};
use crate::tcp::TcpRepr;
use crate::time::Instant;
use crate::wire::common_tcp::{self, CommonTcp};

impl<D: Device> Stack<D> {
    /// `receive` without its clock update.
    #[inline(always)]
    pub(super) fn rx(&mut self, now: Instant, frame: D::Frame, len: usize) {
        let len = len.min(frame.buf().len());
        let mut seg = TcpRepr::default();
        match self.rx_common(frame.buf(), len, &mut seg) {
            Some(c) => {
                let k = &mut self.iface.counters;
                k.rx_packets += 1;
                k.rx_bytes += len as u64;
                k.rx_csum_partial_accepted += u64::from(c.partial);
                let (start, end) = c.payload;
                self.tcp_segment(now, (c.src, c.dst, c.ecn), &seg, frame, start, end);
            }
            None => self.demux(now, frame, len),
        }
    }

    /// Whether `buf[..len]` takes the fast path (`seg` then holds its TCP
    /// header), `None` for the general one.
    #[inline(always)]
    pub(super) fn rx_common(&self, buf: &[u8], len: usize, seg: &mut TcpRepr) -> Option<CommonTcp> {
        // RFC 1122 §3.3.4.2: on a one-address interface "ours" is one
        // compare; with several the general path's `is_local` decides.
        let [one] = self.iface.addrs.as_slice() else {
            return None;
        };
        let partial_ok = self.cfg.accept_partial_checksum;
        let c = common_tcp::parse(buf, len, &self.iface.mac, one.addr, partial_ok, seg)?;
        // RFC 1122 §3.2.1.3: an invalid source is the general path's to
        // drop and count.
        (!self.iface.is_bad_source(c.src)).then_some(c)
    }
}

#[cfg(test)]
#[path = "fast_rx_tests.rs"]
mod tests;
