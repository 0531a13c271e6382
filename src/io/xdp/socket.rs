//! One AF_XDP socket per (interface, queue) (its own RX/TX and
//! fill/completion rings over the shared UMEM) and [`XdpDevice`], the [`Device`] a worker's stack runs on.
//!
//! Ring work is batched: `recv` consumes up to a batch of RX descriptors and
//! refills the fill ring; `transmit` only queues a descriptor, and `flush`
//! submits the batch, kicks the kernel when it asks for it (need_wakeup) and
//! reaps completions back into the pool.

use super::abi::{
    XdpDesc, XdpStatistics, XskTxMetadata, TX_METADATA_LEN, XDP_COPY, XDP_PKT_CONTD,
    XDP_TXMD_FLAGS_CHECKSUM, XDP_TX_METADATA, XDP_USE_NEED_WAKEUP, XDP_USE_SG, XDP_ZEROCOPY,
};
use super::multibuf::{MultibufCounters, Splitter};
use super::pcap::PcapTap;
use super::sys;
use super::umem::{
    chunk_data, SharedUmem, XdpFrame, FILL_RING_SIZE, FRAME_SIZE, RING_SIZE, RX_RING_SIZE,
};
use super::xsk::{self, RingSizes, Rings, SockFd};
use super::{Error, ErrorKind};
use crate::io::impair::{Dir, Impairer};
use crate::io::{Device, Frame};
use std::os::fd::RawFd;
use std::sync::Arc;

/// Descriptors moved per ring operation.
pub const BATCH: usize = 64;
/// Descriptors queued for transmission before a forced flush.
const TX_BATCH: usize = 256;

/// `--zero-copy auto|on|off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ZeroCopy {
    /// Zero-copy if the driver can, else copy mode.
    #[default]
    Auto,
    /// Zero-copy or fail.
    On,
    /// Copy mode.
    Off,
}

impl core::str::FromStr for ZeroCopy {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(ZeroCopy::Auto),
            "on" => Ok(ZeroCopy::On),
            "off" => Ok(ZeroCopy::Off),
            _ => Err(format!("zero-copy must be auto, on or off, not {s:?}")),
        }
    }
}

/// Ring and device counters of one socket.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct DeviceCounters {
    /// Packets received: with `--rx-multibuf` a packet in several buffers
    /// counts once (its last descriptor), as it does on the wire.
    pub rx_packets: u64,
    /// RX descriptors read (one per buffer: more than `rx_packets` when
    /// packets arrive in several).
    pub rx_descs: u64,
    pub tx_packets: u64,
    /// Transmit refused: the batch and the TX ring were full.
    pub tx_ring_full: u64,
    /// `transmit_ref` copies (only with `--impair`, whose link model holds
    /// frames of its own).
    pub tx_copies: u64,
    /// `transmit_ref` lendings: a kept frame put on the TX ring itself.
    pub tx_zero_copy: u64,
    /// Frames of another UMEM given to this device (an interface that
    /// could not share the UMEM): copied into one of this UMEM's, since a
    /// descriptor can only name this UMEM's chunks.
    pub tx_foreign_copies: u64,
    /// TCP segments whose checksum was requested through TX metadata.
    pub tx_csum_offloaded: u64,
    /// TCP segments sent with the checksum computed by the stack.
    pub tx_csum_software: u64,
    /// `alloc` found the pool empty.
    pub alloc_failed: u64,
    /// The fill ring could not be refilled completely (pool empty).
    pub fill_short: u64,
    /// The fewest descriptors seen on the fill ring when a receive began
    /// (what the kernel could still receive into; 0: it may have dropped).
    pub fill_ring_low: u64,
    /// The most RX descriptors seen waiting at one receive (the backlog
    /// the worker had not read yet; a lower bound between re-reads).
    pub rx_backlog_max: u64,
    /// The fewest free frames seen in the pool when the fill ring was
    /// refilled (the calling worker's view: the shared pool plus its cache).
    pub pool_free_low: u64,
    /// RX descriptors pointing outside the UMEM (never expected).
    pub rx_bad_desc: u64,
    /// `sendto` kicks for TX, `poll` kicks for the fill ring.
    pub tx_wakeups: u64,
    pub fill_wakeups: u64,
    /// `recvfrom` calls driving busy polling (`--busy-poll`).
    pub busy_polls: u64,
    /// `--impair`: what the impairment layer did (both directions).
    pub impair: crate::io::impair::ImpairStats,
    /// `--rx-multibuf`: segments received in several buffers.
    #[serde(flatten)]
    pub multibuf: MultibufCounters,
}

/// One AF_XDP socket bound to `(iface, queue)`: its descriptor and its
/// four rings (`super::xsk`, `super::ring`).
pub struct XdpSocket {
    queue: u32,
    // Declared before `fd`: the rings are unmapped before the socket closes.
    rings: Rings,
    fd: SockFd,
    zero_copy: bool,
}

impl XdpSocket {
    /// Create and bind a socket on `iface` queue `queue` over `umem`. The
    /// first socket of a UMEM is the one it is registered on; the others
    /// share it (`XDP_SHARED_UMEM`, each with its own fill and completion
    /// rings). The XDP program is ours: the caller writes `fd()` into
    /// XSKMAP.
    pub fn new(
        umem: &Arc<SharedUmem>,
        iface: &str,
        queue: u32,
        zc: ZeroCopy,
    ) -> Result<Self, Error> {
        Self::with_sg(umem, iface, queue, zc, false)
    }

    /// [`XdpSocket::new`], bound with `XDP_USE_SG` when `sg` (multi-buffer
    /// receive: a packet larger than a chunk arrives as chained
    /// descriptors). Sockets sharing the UMEM inherit it from the first
    /// (the kernel refuses the flag on them). Fails where the kernel or
    /// driver does not support it.
    pub fn with_sg(
        umem: &Arc<SharedUmem>,
        iface: &str,
        queue: u32,
        zc: ZeroCopy,
        sg: bool,
    ) -> Result<Self, Error> {
        let ifindex = xsk::ifindex(iface).ok_or_else(|| {
            Error::new(
                ErrorKind::NoSuchInterface,
                format!("no interface named {iface:?}"),
            )
        })?;
        let sock_err = |what: &str, e: std::io::Error| {
            let kind = match e.raw_os_error() {
                Some(libc::EPERM) | Some(libc::EACCES) => ErrorKind::Permission,
                _ => ErrorKind::Socket,
            };
            Error::new(
                kind,
                format!("AF_XDP socket on {iface} queue {queue}: {what}: {e}"),
            )
        };
        let (fd, shared) = match umem.claim_reg_fd() {
            Ok(fd) => (SockFd::Borrowed(fd), None),
            Err(reg) => (
                SockFd::Owned(xsk::socket().map_err(|e| sock_err("socket", e))?),
                Some(reg),
            ),
        };
        let sizes = RingSizes {
            fill: FILL_RING_SIZE,
            comp: RING_SIZE,
            rx: RX_RING_SIZE,
            tx: RING_SIZE,
        };
        let rings = xsk::setup_rings(fd.raw(), sizes).map_err(|e| sock_err("rings", e))?;
        // Sockets sharing a UMEM inherit its first socket's mode (the kernel
        // refuses mode flags with XDP_SHARED_UMEM).
        let modes: &[u16] = match (shared, zc) {
            (Some(_), _) => &[0],
            (None, ZeroCopy::Auto) => &[XDP_ZEROCOPY, XDP_COPY],
            (None, ZeroCopy::On) => &[XDP_ZEROCOPY],
            (None, ZeroCopy::Off) => &[XDP_COPY],
        };
        let mut last = None;
        for &mode in modes {
            let flags = if shared.is_some() {
                0
            } else {
                mode | XDP_USE_NEED_WAKEUP | if sg { XDP_USE_SG } else { 0 }
            };
            match xsk::bind(fd.raw(), ifindex, queue, flags, shared) {
                Ok(()) => {
                    let zero_copy = xsk::is_zero_copy(fd.raw());
                    if zc == ZeroCopy::On && !zero_copy {
                        // A shared UMEM binds in the mode of its first
                        // socket (the kernel's `xp_assign_dev_shared`).
                        return Err(Error::new(
                            ErrorKind::ZeroCopyUnavailable,
                            format!(
                                "AF_XDP socket on {iface} queue {queue}: the shared UMEM is in copy mode"
                            ),
                        ));
                    }
                    return Ok(XdpSocket {
                        queue,
                        rings,
                        fd,
                        zero_copy,
                    });
                }
                Err(e) => last = Some(e),
            }
        }
        let e = last.expect("at least one bind mode was tried");
        let kind = match e.raw_os_error() {
            Some(libc::ENODEV) => ErrorKind::NoSuchInterface,
            Some(libc::EPERM) | Some(libc::EACCES) => ErrorKind::Permission,
            Some(libc::EBUSY) => ErrorKind::Socket,
            _ if zc == ZeroCopy::On => ErrorKind::ZeroCopyUnavailable,
            _ => ErrorKind::Socket,
        };
        let what = match kind {
            ErrorKind::ZeroCopyUnavailable => "zero-copy AF_XDP socket",
            _ => "AF_XDP socket",
        };
        Err(Error::new(
            kind,
            format!("{what} on {iface} queue {queue}: bind: {e}"),
        ))
    }

    /// The socket's file descriptor (for XSKMAP).
    pub fn fd(&self) -> RawFd {
        self.fd.raw()
    }

    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Whether the kernel bound the socket in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    /// Ask the kernel to busy-poll this socket's queue (SO_PREFER_BUSY_POLL,
    /// SO_BUSY_POLL `usecs`, SO_BUSY_POLL_BUDGET `budget`): the NAPI then
    /// runs when the worker calls into the socket, not in softirq.
    pub fn set_busy_poll(&self, usecs: u32, budget: u32) -> Result<(), Error> {
        sys::set_busy_poll(self.fd(), usecs, budget).map_err(|e| {
            Error::new(
                ErrorKind::Socket,
                format!("--busy-poll on queue {}: {e}", self.queue),
            )
        })
    }

    /// Kernel-side statistics (drops for a full RX ring, empty fill ring...).
    pub fn xdp_statistics(&self) -> Option<XdpStatistics> {
        xsk::statistics(self.fd()).ok()
    }
}

/// The [`Device`] of one worker: one socket plus its share of the UMEM.
///
/// Transmit is zero-copy: a descriptor points at the packet wherever it
/// starts inside its chunk (a TCP segment's headers sit in the send frame's
/// headroom, in front of its payload), and a frame the stack keeps
/// (`transmit_ref`) stays marked in flight until its completion returns.
/// With TX metadata (`--tx-checksum offload|verify`), every IPv4 TCP
/// segment asks the kernel (or the NIC) for its checksum: the stack leaves
/// the pseudo-header sum in the field, as `CHECKSUM_PARTIAL` does.
pub struct XdpDevice {
    sock: XdpSocket,
    umem: Arc<SharedUmem>,
    mtu: usize,
    tx_batch: Vec<XdpDesc>,
    rx_scratch: Vec<XdpDesc>,
    addr_scratch: Vec<u64>,
    counters: DeviceCounters,
    capture: Option<PcapTap>,
    /// Descriptors on the fill ring (produced, not yet received back).
    fill_outstanding: usize,
    /// Descriptors on the TX ring or its completion ring (produced, not yet
    /// reaped).
    tx_outstanding: usize,
    /// Descriptors kept on the fill ring itself (not counting what the
    /// kernel moved to the RX ring): the ring's size, or less when the
    /// UMEM is small (the rest is for transmitting and the RX backlog).
    fill_target: usize,
    /// TCP checksums are requested through TX metadata.
    csum_offload: bool,
    /// `--impair`: frames cross simulated links on their way in and out.
    impair: Option<Box<Impairer<XdpFrame>>>,
    /// A full TX batch is flushed from within a transmit (see
    /// [`XdpDevice::set_flush_when_full`]).
    flush_when_full: bool,
    /// `--rx-multibuf`: chained descriptors become per-frame segments.
    multibuf: Option<Box<Splitter>>,
}

/// Where the TCP checksum of an Ethernet frame is: `(csum_start,
/// csum_offset)` for an unfragmented IPv4 TCP segment, else `None`.
fn tcp_csum_location(pkt: &[u8]) -> Option<(u16, u16)> {
    const ETH: usize = 14;
    if pkt.len() < ETH + 20 || pkt[12..14] != [0x08, 0x00] || pkt[ETH] >> 4 != 4 {
        return None;
    }
    let ihl = usize::from(pkt[ETH] & 0x0f) * 4;
    let frag = u16::from_be_bytes([pkt[ETH + 6], pkt[ETH + 7]]) & 0x3fff;
    // RFC 9293 §3.1: the checksum field is the 9th 16-bit word of the header.
    let (start, off) = (ETH + ihl, 16);
    (ihl >= 20 && pkt[ETH + 9] == 6 && frag == 0 && start + off + 2 <= pkt.len())
        .then_some((start as u16, off as u16))
}

/// Packets that `descs` end: every descriptor but those a packet in
/// several buffers continues in the next (`XDP_PKT_CONTD`, set only on a
/// socket bound with `XDP_USE_SG`). A packet whose first buffers came in
/// the previous batch counts in this one.
fn rx_packets_in(descs: &[XdpDesc]) -> u64 {
    let contd = descs.iter().filter(|d| d.options & XDP_PKT_CONTD != 0);
    (descs.len() - contd.count()) as u64
}

impl XdpDevice {
    /// Wrap `sock` and fill its fill ring. `mtu` is the link's IP MTU.
    pub fn new(sock: XdpSocket, umem: Arc<SharedUmem>, mtu: usize) -> Self {
        let max_mtu = FRAME_SIZE - umem.data_off() - 14;
        let csum_offload = umem.tx_metadata();
        let mut dev = XdpDevice {
            sock,
            umem,
            mtu: mtu.min(max_mtu),
            tx_batch: Vec::with_capacity(TX_BATCH),
            rx_scratch: vec![XdpDesc::default(); BATCH],
            addr_scratch: vec![0; BATCH],
            counters: DeviceCounters::default(),
            capture: None,
            fill_outstanding: 0,
            tx_outstanding: 0,
            fill_target: 0,
            csum_offload,
            impair: None,
            flush_when_full: true,
            multibuf: None,
        };
        // The lows start at their ceilings.
        dev.counters.fill_ring_low = u64::from(FILL_RING_SIZE);
        dev.counters.pool_free_low = dev.umem.frames() as u64;
        // A modest default (other queues share the UMEM); the runtime
        // raises it to half of each queue's share.
        dev.set_fill_target(RING_SIZE as usize);
        dev
    }

    /// Keep `n` descriptors on the fill ring (at most its size); tops the
    /// ring up to that. The runtime gives each queue half of its share of
    /// the UMEM.
    pub fn set_fill_target(&mut self, n: usize) {
        self.fill_target = n.clamp(BATCH, FILL_RING_SIZE as usize);
        let on_ring = self.sock.rings.fill.in_flight() as usize;
        self.fill_up(on_ring);
    }

    /// Whether a transmit that finds the TX batch full flushes it (puts
    /// it on the ring and kicks the kernel: the default) or lets it grow
    /// until the next [`Self::flush`]. The runtime turns this off so that
    /// nothing a worker's turn transmits reaches the ring before the flows
    /// it opened are in the flow directory (`runtime::worker`). The batch
    /// stays bounded by the UMEM: each descriptor holds one of its frames.
    pub fn set_flush_when_full(&mut self, on: bool) {
        self.flush_when_full = on;
    }

    /// Take packets received in several buffers (the socket bound with
    /// `XDP_USE_SG`): TCP segments are handed on as per-frame segments
    /// (`super::multibuf`), anything else in several buffers is dropped.
    pub fn set_rx_multibuf(&mut self, on: bool) {
        self.multibuf = on.then(Box::default);
    }

    /// Record every transmitted frame (`--pcap`).
    pub fn set_capture(&mut self, tap: Option<PcapTap>) {
        self.capture = tap;
    }

    /// Impair what this device sends and receives (`io::impair`). The
    /// impairment link stands for the wire, after checksumming: its
    /// corruption must reach the peer as corruption, so checksums are then
    /// computed in software.
    pub fn set_impair(&mut self, imp: Option<Impairer<XdpFrame>>) {
        self.impair = imp.map(Box::new);
        self.csum_offload = self.umem.tx_metadata() && self.impair.is_none();
    }

    /// How long until an impaired packet waiting in either direction is
    /// due (the worker must not sleep past it).
    pub fn impair_due_in(&self) -> Option<core::time::Duration> {
        self.impair.as_ref().and_then(|i| i.due_in())
    }

    /// Release the impaired packets that are due: received ones onto
    /// `rx` (if given), sent ones onto the TX ring.
    fn impair_release(&mut self, rx: Option<&mut Vec<(XdpFrame, usize)>>) {
        let Some(mut imp) = self.impair.take() else {
            return;
        };
        if let Some(out) = rx {
            while let Some(p) = imp.pop_due(Dir::Rx) {
                out.push(p);
            }
        }
        while let Some((f, len)) = imp.pop_due(Dir::Tx) {
            self.queue_tx(f, 0, len);
        }
        self.counters.impair = imp.stats();
        self.impair = Some(imp);
    }

    /// The capture tap, if any (the runtime records received frames).
    pub fn capture(&self) -> Option<&PcapTap> {
        self.capture.as_ref()
    }

    pub fn socket(&self) -> &XdpSocket {
        &self.sock
    }

    pub fn umem(&self) -> &Arc<SharedUmem> {
        &self.umem
    }

    pub fn counters(&self) -> &DeviceCounters {
        &self.counters
    }

    /// Hand up to one batch of free chunks to the fill ring, as far as it
    /// holds fewer than its target; returns how many.
    pub fn refill(&mut self) -> usize {
        let on_ring = self.sock.rings.fill.in_flight() as usize;
        self.refill_upto(self.fill_target.saturating_sub(on_ring))
    }

    /// Hand up to `room` (at most one batch) free chunks to the fill ring.
    fn refill_upto(&mut self, room: usize) -> usize {
        let want = self.sock.rings.fill.free(BATCH as u32) as usize;
        let want = want.min(BATCH).min(room);
        if want == 0 {
            return 0;
        }
        let n = self.umem.take_descs(&mut self.addr_scratch[..want]);
        if n < want {
            self.counters.fill_short += 1;
        }
        let free = self.umem.free_frames() as u64;
        self.counters.pool_free_low = self.counters.pool_free_low.min(free);
        // The chunks came from the pool: this process owns them and they
        // are on no other ring.
        let done = self.sock.rings.fill.produce(&self.addr_scratch[..n]);
        self.fill_outstanding += done;
        self.umem.put_descs(&self.addr_scratch[done..n]);
        done
    }

    /// Top the fill ring up from `on_ring` descriptors (the kernel's view,
    /// just read) to its target, batch by batch, then wake the kernel if it
    /// asks for it. The target counts the fill ring alone: frames the
    /// kernel already moved to the RX ring are replaced at once, so a
    /// backlog the worker has not read yet never leaves the kernel short
    /// of frames to receive into (it used to: fill ring and RX ring
    /// together were held to the target, and a burst that got 16,000
    /// packets ahead of the worker found the fill ring empty).
    fn fill_up(&mut self, on_ring: usize) {
        let mut room = self.fill_target.saturating_sub(on_ring);
        while room > 0 {
            let n = self.refill_upto(room);
            room -= n;
            if n < BATCH {
                break;
            }
        }
        if self.sock.rings.fill.needs_wakeup() {
            self.counters.fill_wakeups += 1;
            xsk::poll_in(self.sock.fd(), 0);
        }
    }

    /// Receive up to one batch: each frame with the packet at offset 0 of
    /// its buffer, and the packet length. The fill ring is topped up first,
    /// so that the kernel always has every free slot to receive into while
    /// this batch is processed (a burst waits in the RX ring rather than
    /// being dropped for want of fill descriptors).
    pub fn recv(&mut self, out: &mut Vec<(XdpFrame, usize)>) -> usize {
        let first = out.len();
        let on_ring = self.sock.rings.fill.in_flight() as usize;
        self.counters.fill_ring_low = self.counters.fill_ring_low.min(on_ring as u64);
        if on_ring < self.fill_target || self.sock.rings.fill.needs_wakeup() {
            self.fill_up(on_ring);
        }
        let n = self.sock.rings.rx.consume(&mut self.rx_scratch);
        let backlog = (n as u64) + u64::from(self.sock.rings.rx.cached_pending());
        self.counters.rx_backlog_max = self.counters.rx_backlog_max.max(backlog);
        let mut wrapped = 0;
        for d in &self.rx_scratch[..n] {
            let len = d.len as usize;
            if let Some(sp) = self.multibuf.as_mut() {
                let contd = d.options & XDP_PKT_CONTD != 0;
                wrapped += sp.push(&self.umem, d.addr, len, contd, out);
                continue;
            }
            match XdpFrame::from_rx_addr(d.addr, &self.umem) {
                Some(f) if len <= f.buf().len() => {
                    wrapped += 1;
                    out.push((f, len));
                }
                Some(f) => {
                    // A bad length: the chunk goes back to the pool.
                    wrapped += 1;
                    self.counters.rx_bad_desc += 1;
                    drop(f);
                }
                None => self.counters.rx_bad_desc += 1,
            }
        }
        if let Some(sp) = self.multibuf.as_mut() {
            self.counters.multibuf = sp.counters;
            self.counters.rx_bad_desc += core::mem::take(&mut sp.bad_desc);
        }
        self.umem.core().pool.live_add(wrapped);
        self.counters.rx_descs += n as u64;
        self.counters.rx_packets += rx_packets_in(&self.rx_scratch[..n]);
        self.fill_outstanding = self.fill_outstanding.saturating_sub(n);
        if let Some(imp) = self.impair.as_mut() {
            // What arrived crosses the receive link; what is due comes out.
            let umem = &self.umem;
            for (f, len) in out.drain(first..) {
                imp.offer(Dir::Rx, f, len, &mut || XdpFrame::alloc(umem));
            }
            self.impair_release(Some(out));
        }
        n
    }

    /// Wait until the socket is readable or `timeout_ms` passed (idle).
    pub fn wait(&mut self, timeout_ms: i32) {
        xsk::poll_in(self.sock.fd(), timeout_ms);
    }

    /// Submit queued transmissions, kick the kernel (at most once: one
    /// `sendto` per worker loop iteration, and only when the kernel asks
    /// for it through need_wakeup), reap completions. Returns whether
    /// descriptors are still waiting on the TX ring (copy mode sends 32 per
    /// kick): the worker then loops again instead of sleeping.
    pub fn flush(&mut self) -> bool {
        self.impair_release(None);
        self.reap();
        if !self.tx_batch.is_empty() {
            // Every queued descriptor points into a chunk marked in flight
            // (`Core::tx_begin`), of this UMEM.
            let done = self.sock.rings.tx.produce(&self.tx_batch);
            self.counters.tx_packets += done as u64;
            self.tx_outstanding += done;
            self.tx_batch.drain(..done);
        }
        if self.tx_in_flight() > 0 && self.sock.rings.tx.needs_wakeup() {
            self.counters.tx_wakeups += 1;
            xsk::kick_tx(self.sock.fd());
        }
        self.reap();
        !self.tx_batch.is_empty() || self.tx_in_flight() > 0
    }

    /// Drive the socket's busy polling (`--busy-poll`): with
    /// SO_PREFER_BUSY_POLL the kernel runs the queue's NAPI in this call
    /// instead of in softirq, up to SO_BUSY_POLL_BUDGET packets.
    pub fn busy_poll(&mut self) {
        self.counters.busy_polls += 1;
        sys::recv_dontwait(self.sock.fd());
    }

    fn tx_in_flight(&mut self) -> usize {
        self.sock.rings.tx.in_flight() as usize
    }

    /// Take completed transmissions off the completion ring: chunks whose
    /// handle is gone go back to the pool; the others become rewritable.
    fn reap(&mut self) {
        loop {
            let n = self.sock.rings.comp.consume(&mut self.addr_scratch);
            let core = self.umem.core();
            let mut back = 0;
            for i in 0..n {
                let a = self.addr_scratch[i];
                if (a as usize) < core.len() && core.tx_complete(a) {
                    self.addr_scratch[back] = chunk_data(a);
                    back += 1;
                }
            }
            self.umem.put_descs(&self.addr_scratch[..back]);
            self.tx_outstanding = self.tx_outstanding.saturating_sub(n);
            if n < BATCH {
                break;
            }
        }
    }

    /// Make room in the TX batch (flushing once); false if still full.
    /// Always room when full batches wait for `flush`.
    fn tx_room(&mut self) -> bool {
        if self.flush_when_full && self.tx_batch.len() >= TX_BATCH {
            let _ = self.flush();
            if self.tx_batch.len() >= TX_BATCH {
                self.counters.tx_ring_full += 1;
                return false;
            }
        }
        true
    }

    /// The descriptor for `frame[start..end]`: TX metadata written in front
    /// of the packet when the TCP checksum is to be offloaded.
    fn tx_desc(&mut self, frame: &mut XdpFrame, start: usize, end: usize) -> XdpDesc {
        let addr = frame.umem_addr() + start as u64;
        let mut options = 0;
        if let Some((csum_start, csum_offset)) = tcp_csum_location(&frame.buf()[start..end]) {
            if self.csum_offload {
                let md = XskTxMetadata {
                    flags: XDP_TXMD_FLAGS_CHECKSUM,
                    csum_start,
                    csum_offset,
                    _rest: 0,
                };
                // `struct xsk_tx_metadata` in native byte order.
                let mut bytes = [0u8; TX_METADATA_LEN];
                bytes[..8].copy_from_slice(&md.flags.to_ne_bytes());
                bytes[8..10].copy_from_slice(&md.csum_start.to_ne_bytes());
                bytes[10..12].copy_from_slice(&md.csum_offset.to_ne_bytes());
                if frame.write_in_chunk(addr - TX_METADATA_LEN as u64, &bytes) {
                    options = XDP_TX_METADATA;
                    self.counters.tx_csum_offloaded += 1;
                }
            } else {
                self.counters.tx_csum_software += 1;
            }
        }
        if let Some(tap) = &self.capture {
            tap.capture(&frame.buf()[start..end]);
        }
        XdpDesc {
            addr,
            len: (end - start) as u32,
            options,
        }
    }

    /// Send a copy of another UMEM's `frame[start..end]` from one of this
    /// UMEM's frames (the original stays with its owner, or goes back to
    /// its own pool when dropped).
    fn transmit_foreign(&mut self, frame: &XdpFrame, start: usize, end: usize) -> bool {
        if start > end || end > frame.buf().len() {
            return false;
        }
        let Some(mut copy) = self.alloc() else {
            return false;
        };
        let len = end - start;
        let Some(dst) = copy.buf_mut().get_mut(..len) else {
            return false;
        };
        dst.copy_from_slice(&frame.buf()[start..end]);
        self.counters.tx_foreign_copies += 1;
        self.transmit(copy, 0, len)
    }

    fn queue_tx(&mut self, mut frame: XdpFrame, start: usize, end: usize) -> bool {
        if start > end || end > frame.buf().len() || !self.tx_room() {
            return false;
        }
        let d = self.tx_desc(&mut frame, start, end);
        // The handle is given up: the completion returns the chunk.
        self.umem.core().tx_begin(d.addr, true);
        let _ = frame.into_addr();
        self.tx_batch.push(d);
        true
    }
}

impl Device for XdpDevice {
    type Frame = XdpFrame;

    /// Refuses once the pool is down to its reserve: the last frames are
    /// kept for the fill rings, so that ACKs (which free send buffers) can
    /// still be received when transmit data has used up the UMEM.
    fn alloc(&mut self) -> Option<XdpFrame> {
        if self.umem.free_frames() <= self.umem.rx_reserve() {
            self.reap();
            if self.umem.free_frames() <= self.umem.rx_reserve() {
                self.counters.alloc_failed += 1;
                return None;
            }
        }
        let f = XdpFrame::alloc(&self.umem);
        if f.is_none() {
            self.counters.alloc_failed += 1;
        }
        f
    }

    /// Puts a descriptor at `frame[start]` on the TX ring: no copy, however
    /// far into the chunk the packet starts.
    fn transmit(&mut self, mut frame: XdpFrame, start: usize, end: usize) -> bool {
        if !frame.is_of(&self.umem) {
            return self.transmit_foreign(&frame, start, end);
        }
        if let Some(imp) = self.impair.as_mut() {
            // Through the transmit link first (the packet moved to the
            // frame's start: the link model keeps lengths, not offsets).
            if start > end || end > frame.buf().len() {
                return false;
            }
            frame.buf_mut().copy_within(start..end, 0);
            let umem = &self.umem;
            imp.offer(Dir::Tx, frame, end - start, &mut || XdpFrame::alloc(umem));
            self.impair_release(None);
            return true;
        }
        self.queue_tx(frame, start, end)
    }

    /// Lends `frame[start..end]` to the TX ring (zero-copy): the chunk is
    /// marked in flight until its completion returns, and `can_rewrite`
    /// says false until then. With `--impair` the packet is copied (the
    /// link model holds its own frames).
    fn transmit_ref(&mut self, frame: &mut XdpFrame, start: usize, end: usize) -> bool {
        if start > end || end > frame.buf().len() {
            return false;
        }
        if !frame.is_of(&self.umem) {
            return self.transmit_foreign(frame, start, end);
        }
        if self.impair.is_some() {
            let Some(mut copy) = self.alloc() else {
                return false;
            };
            let len = end - start;
            copy.buf_mut()[..len].copy_from_slice(&frame.buf()[start..end]);
            self.counters.tx_copies += 1;
            return self.transmit(copy, 0, len);
        }
        if frame.tx_pending() || !self.tx_room() {
            return false;
        }
        let d = self.tx_desc(frame, start, end);
        self.umem.core().tx_begin(d.addr, false);
        self.counters.tx_zero_copy += 1;
        self.tx_batch.push(d);
        true
    }

    /// False while a transmission of `frame` is in flight: its bytes are
    /// the kernel's (or the NIC's) until the completion ring returns it.
    fn can_rewrite(&self, frame: &XdpFrame) -> bool {
        !frame.tx_pending()
    }

    fn tx_checksum_offload(&self) -> bool {
        self.csum_offload
    }

    fn mtu(&self) -> usize {
        self.mtu
    }

    /// What `alloc` can still hand out (the shared pool above the receive
    /// reserve; other queues draw from it too).
    fn free_frames(&self) -> Option<usize> {
        Some(
            self.umem
                .free_frames()
                .saturating_sub(self.umem.rx_reserve()),
        )
    }

    fn total_frames(&self) -> Option<usize> {
        Some(self.umem.frames())
    }

    /// Frames the kernel can receive into: this socket's fill ring plus the
    /// shared pool that refills it.
    fn rx_free_frames(&self) -> Option<usize> {
        Some(self.fill_outstanding + self.umem.free_frames())
    }

    fn rx_total_frames(&self) -> Option<usize> {
        Some(self.umem.frames())
    }

    /// The UMEM's identity: devices of every interface sharing one UMEM
    /// take each other's frames.
    fn frame_pool_id(&self) -> Option<usize> {
        Some(self.umem.id())
    }
}

impl Drop for XdpDevice {
    fn drop(&mut self) {
        // Queued-but-unsent descriptors: their chunks go back to the pool,
        // or to the frame handles that still hold them.
        let core = self.umem.core();
        for d in self.tx_batch.drain(..) {
            if core.tx_complete(d.addr) {
                core.pool.put_many(&[chunk_data(d.addr)]);
            }
        }
        self.reap();
        // What is still on the TX ring stays the kernel's until the socket
        // closes (counted so that the UMEM's account balances), unless a
        // frame handle holds it: that handle returns it when dropped.
        let mut left = Vec::new();
        self.sock
            .rings
            .tx
            .last_produced(self.tx_outstanding as u32, &mut left);
        let core = self.umem.core();
        let orphans = left.iter().filter(|d| core.tx_complete(d.addr)).count();
        core.pool.add_kernel_held(self.fill_outstanding + orphans);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn desc(contd: bool) -> XdpDesc {
        XdpDesc {
            addr: 0,
            len: 1514,
            options: if contd { XDP_PKT_CONTD } else { 0 },
        }
    }

    #[test]
    fn a_packet_in_several_buffers_counts_once() {
        // One-buffer packets: one each.
        assert_eq!(rx_packets_in(&[desc(false), desc(false)]), 2);
        // A packet in three buffers, then one in one.
        let batch = [desc(true), desc(true), desc(false), desc(false)];
        assert_eq!(rx_packets_in(&batch), 2);
        // A packet whose last buffers come with the next batch counts
        // there.
        assert_eq!(rx_packets_in(&[desc(false), desc(true)]), 1);
        assert_eq!(rx_packets_in(&[desc(true), desc(false)]), 1);
        assert_eq!(rx_packets_in(&[]), 0);
    }
}
