//! One AF_XDP socket per queue (its own RX/TX and fill/completion rings over
//! the shared UMEM) and [`XdpDevice`], the [`Device`] a worker's stack runs on.
//!
//! Ring work is batched: `recv` consumes up to a batch of RX descriptors and
//! refills the fill ring; `transmit` only queues a descriptor, and `flush`
//! submits the batch, kicks the kernel when it asks for it (need_wakeup) and
//! reaps completions back into the pool.

use super::pcap::PcapTap;
use super::sys;
use super::umem::{SharedUmem, XdpFrame, FRAME_SIZE, RING_SIZE, RX_RING_SIZE};
use super::{Error, ErrorKind};
use crate::io::impair::{Dir, Impairer};
use crate::io::{Device, Frame};
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;
use xsk_rs::config::{BindFlags, Interface, LibxdpFlags, QueueSize, SocketConfig};
use xsk_rs::umem::frame::FrameDesc;
use xsk_rs::{CompQueue, FillQueue, RxQueue, Socket, TxQueue};

/// Descriptors moved per ring operation.
pub const BATCH: usize = 64;
/// Descriptors queued for transmission before a forced flush.
const TX_BATCH: usize = 256;

const SOL_XDP: libc::c_int = 283;
const XDP_OPTIONS: libc::c_int = 8;
const XDP_OPTIONS_ZEROCOPY: u32 = 1;

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
    pub rx_packets: u64,
    pub tx_packets: u64,
    /// Transmit refused: the batch and the TX ring were full.
    pub tx_ring_full: u64,
    /// `transmit_ref` copies (TCP data kept for retransmission).
    pub tx_copies: u64,
    /// `alloc` found the pool empty.
    pub alloc_failed: u64,
    /// The fill ring could not be refilled completely (pool empty).
    pub fill_short: u64,
    /// RX descriptors pointing outside the UMEM (never expected).
    pub rx_bad_desc: u64,
    /// `sendto` kicks for TX, `poll` kicks for the fill ring.
    pub tx_wakeups: u64,
    pub fill_wakeups: u64,
    /// `recvfrom` calls driving busy polling (`--busy-poll`).
    pub busy_polls: u64,
    /// `--impair`: what the impairment layer did (both directions).
    pub impair: crate::io::impair::ImpairStats,
}

/// One AF_XDP socket bound to `(iface, queue)`.
pub struct XdpSocket {
    queue: u32,
    tx: TxQueue,
    rx: RxQueue,
    fq: FillQueue,
    cq: CompQueue,
    zero_copy: bool,
}

fn os_error(e: &xsk_rs::socket::SocketCreateError) -> Option<i32> {
    std::error::Error::source(e)
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .and_then(|io| io.raw_os_error())
}

impl XdpSocket {
    /// Create and bind a socket on `iface` queue `queue` over `umem`. The XDP
    /// program is ours (INHIBIT_PROG_LOAD): the caller writes `fd()` into
    /// XSKMAP.
    pub fn new(
        umem: &Arc<SharedUmem>,
        iface: &str,
        queue: u32,
        zc: ZeroCopy,
    ) -> Result<Self, Error> {
        let name: Interface = iface.parse().map_err(|_| {
            Error::new(
                ErrorKind::NoSuchInterface,
                format!("bad interface name {iface:?}"),
            )
        })?;
        let modes: &[BindFlags] = match zc {
            ZeroCopy::Auto => &[BindFlags::XDP_ZEROCOPY, BindFlags::XDP_COPY],
            ZeroCopy::On => &[BindFlags::XDP_ZEROCOPY],
            ZeroCopy::Off => &[BindFlags::XDP_COPY],
        };
        let qsize =
            |n| QueueSize::new(n).map_err(|e| Error::new(ErrorKind::Socket, format!("{e}")));
        let (rx_ring, tx_ring) = (qsize(RX_RING_SIZE)?, qsize(RING_SIZE)?);
        let mut last = None;
        for &mode in modes {
            let config = SocketConfig::builder()
                .rx_queue_size(rx_ring)
                .tx_queue_size(tx_ring)
                .libxdp_flags(LibxdpFlags::XSK_LIBXDP_FLAGS_INHIBIT_PROG_LOAD)
                .bind_flags(mode | BindFlags::XDP_USE_NEED_WAKEUP)
                .build();
            // SAFETY: INHIBIT_PROG_LOAD is set (required when sharing the
            // UMEM), and each (iface, queue) pair is bound once per UMEM by
            // the caller.
            match unsafe { Socket::new(config, umem.umem(), &name, queue) } {
                Ok((tx, rx, Some((fq, cq)))) => {
                    let mut s = XdpSocket {
                        queue,
                        tx,
                        rx,
                        fq,
                        cq,
                        zero_copy: false,
                    };
                    s.zero_copy = s.query_zero_copy();
                    return Ok(s);
                }
                Ok((_, _, None)) => {
                    return Err(Error::new(
                        ErrorKind::Socket,
                        format!("{iface} queue {queue} is already bound on this UMEM"),
                    ))
                }
                Err(e) => last = Some(e),
            }
        }
        let e = last.expect("at least one bind mode was tried");
        let errno = os_error(&e);
        let kind = match errno {
            Some(libc::ENODEV) => ErrorKind::NoSuchInterface,
            Some(libc::EPERM) | Some(libc::EACCES) => ErrorKind::Permission,
            Some(libc::EBUSY) => ErrorKind::Socket,
            Some(libc::EOPNOTSUPP) | Some(libc::EPROTONOSUPPORT) if zc == ZeroCopy::On => {
                ErrorKind::ZeroCopyUnavailable
            }
            _ if zc == ZeroCopy::On => ErrorKind::ZeroCopyUnavailable,
            _ => ErrorKind::Socket,
        };
        let detail = errno
            .map(|n| std::io::Error::from_raw_os_error(n).to_string())
            .unwrap_or_default();
        let what = match kind {
            ErrorKind::ZeroCopyUnavailable => "zero-copy AF_XDP socket",
            _ => "AF_XDP socket",
        };
        Err(Error::new(
            kind,
            format!("{what} on {iface} queue {queue}: {e}: {detail}"),
        ))
    }

    /// The socket's file descriptor (for XSKMAP).
    pub fn fd(&self) -> RawFd {
        self.rx.fd().as_raw_fd()
    }

    pub fn queue(&self) -> u32 {
        self.queue
    }

    /// Whether the kernel bound the socket in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.zero_copy
    }

    fn query_zero_copy(&self) -> bool {
        let mut opts: u32 = 0;
        let mut len = core::mem::size_of::<u32>() as libc::socklen_t;
        // SAFETY: getsockopt writes at most `len` bytes into `opts`, a
        // local u32 that outlives the call.
        let ret = unsafe {
            libc::getsockopt(
                self.fd(),
                SOL_XDP,
                XDP_OPTIONS,
                (&mut opts as *mut u32).cast(),
                &mut len,
            )
        };
        ret == 0 && opts & XDP_OPTIONS_ZEROCOPY != 0
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
    pub fn xdp_statistics(&self) -> Option<xsk_rs::socket::XdpStatistics> {
        self.rx.fd().xdp_statistics().ok()
    }
}

/// The [`Device`] of one worker: one socket plus its share of the UMEM.
pub struct XdpDevice {
    sock: XdpSocket,
    umem: Arc<SharedUmem>,
    mtu: usize,
    tx_batch: Vec<FrameDesc>,
    scratch: Vec<FrameDesc>,
    counters: DeviceCounters,
    capture: Option<PcapTap>,
    /// Descriptors on the fill ring (produced, not yet received back).
    fill_outstanding: usize,
    /// Descriptors on the TX ring or its completion ring (produced, not yet
    /// reaped).
    tx_outstanding: usize,
    /// Descriptors kept on the fill ring: the ring's size, or less when the
    /// UMEM is small (the rest is for transmitting).
    fill_target: usize,
    /// `--impair`: frames cross simulated links on their way in and out.
    impair: Option<Box<Impairer<XdpFrame>>>,
}

impl XdpDevice {
    /// Wrap `sock` and fill its fill ring. `mtu` is the link's IP MTU.
    pub fn new(sock: XdpSocket, umem: Arc<SharedUmem>, mtu: usize) -> Self {
        let max_mtu = FRAME_SIZE - umem.data_off() - 14;
        let mut dev = XdpDevice {
            sock,
            umem,
            mtu: mtu.min(max_mtu),
            tx_batch: Vec::with_capacity(TX_BATCH),
            scratch: vec![FrameDesc::default(); BATCH],
            counters: DeviceCounters::default(),
            capture: None,
            fill_outstanding: 0,
            tx_outstanding: 0,
            fill_target: 0,
            impair: None,
        };
        // A modest default (other queues share the UMEM); the runtime
        // raises it to half of each queue's share.
        dev.set_fill_target(RING_SIZE as usize);
        dev
    }

    /// Keep at most `n` descriptors on the fill ring (at most its size);
    /// tops the ring up to that. The runtime gives each queue half of its
    /// share of the UMEM.
    pub fn set_fill_target(&mut self, n: usize) {
        self.fill_target = n.clamp(BATCH, RX_RING_SIZE as usize);
        self.fill_up();
    }

    /// Record every transmitted frame (`--pcap`).
    pub fn set_capture(&mut self, tap: Option<PcapTap>) {
        self.capture = tap;
    }

    /// Impair what this device sends and receives (`io::impair`).
    pub fn set_impair(&mut self, imp: Option<Impairer<XdpFrame>>) {
        self.impair = imp.map(Box::new);
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

    /// Hand up to one batch of free chunks to the fill ring; returns how many.
    pub fn refill(&mut self) -> usize {
        let room = self.fill_target.saturating_sub(self.fill_outstanding);
        let want = self.sock.fq.nb_free(BATCH as u32) as usize;
        let want = want.min(BATCH).min(room);
        if want == 0 {
            return 0;
        }
        let n = self.umem.take_descs(&mut self.scratch[..want]);
        if n < want {
            self.counters.fill_short += 1;
        }
        // SAFETY: the descriptors came from the pool, so this process owns
        // their chunks and they are on no other ring; they belong to the
        // UMEM this fill ring was created with.
        let done = unsafe { self.sock.fq.produce(&self.scratch[..n]) };
        self.fill_outstanding += done;
        self.umem.put_descs(&self.scratch[done..n]);
        done
    }

    /// Top the fill ring up to full (batch by batch), then wake the kernel
    /// if it asks for it.
    fn fill_up(&mut self) {
        while self.refill() == BATCH {}
        if self.sock.fq.needs_wakeup() {
            self.counters.fill_wakeups += 1;
            let _ = self.sock.fq.wakeup(self.sock.rx.fd_mut(), 0);
        }
    }

    /// Receive up to one batch: each frame with the packet at offset 0 of
    /// its buffer, and the packet length. The fill ring is topped up first,
    /// so that the kernel always has every free slot to receive into while
    /// this batch is processed (a burst waits in the RX ring rather than
    /// being dropped for want of fill descriptors).
    pub fn recv(&mut self, out: &mut Vec<(XdpFrame, usize)>) -> usize {
        let first = out.len();
        if self.fill_outstanding < self.fill_target || self.sock.fq.needs_wakeup() {
            self.fill_up();
        }
        // SAFETY: `scratch` is ours; consumed descriptors describe chunks the
        // kernel hands back to us, of this socket's UMEM.
        let n = unsafe { self.sock.rx.consume(&mut self.scratch) };
        let mut wrapped = 0;
        for d in &self.scratch[..n] {
            let len = d.lengths().data();
            match XdpFrame::from_rx_desc(*d, &self.umem) {
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
        self.umem.core().pool.live_add(wrapped);
        self.counters.rx_packets += n as u64;
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
        let _ = self.sock.rx.poll(timeout_ms);
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
            let free = self.sock.tx.nb_free(self.tx_batch.len() as u32) as usize;
            let n = free.min(self.tx_batch.len());
            // SAFETY: every queued descriptor came from an `XdpFrame` given
            // up with `into_desc` (so no frame aliases it) of this UMEM.
            let done = unsafe { self.sock.tx.produce(&self.tx_batch[..n]) };
            self.counters.tx_packets += done as u64;
            self.tx_outstanding += done;
            self.tx_batch.drain(..done);
        }
        if self.tx_in_flight() > 0 && self.sock.tx.needs_wakeup() {
            self.counters.tx_wakeups += 1;
            let _ = self.sock.tx.wakeup();
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
        RING_SIZE as usize - self.sock.tx.nb_free_exact() as usize
    }

    /// Move completed transmissions back into the pool.
    fn reap(&mut self) {
        loop {
            // SAFETY: completed descriptors are chunks the kernel is done
            // with; they return to the pool, their only owner.
            let n = unsafe { self.sock.cq.consume(&mut self.scratch) };
            self.umem.put_descs(&self.scratch[..n]);
            self.tx_outstanding = self.tx_outstanding.saturating_sub(n);
            if n < BATCH {
                break;
            }
        }
    }

    fn queue_tx(&mut self, mut frame: XdpFrame, start: usize, end: usize) -> bool {
        if start > end || end > frame.buf().len() {
            return false;
        }
        if self.tx_batch.len() == TX_BATCH {
            let _ = self.flush();
            if self.tx_batch.len() == TX_BATCH {
                self.counters.tx_ring_full += 1;
                return false;
            }
        }
        if start != 0 {
            // xsk-rs descriptors always start at the chunk's data offset:
            // move the packet there (small packets only: data segments go
            // through `transmit_ref`, which copies anyway).
            frame.buf_mut().copy_within(start..end, 0);
        }
        if let Some(tap) = &self.capture {
            tap.capture(&frame.buf()[..end - start]);
        }
        self.tx_batch.push(frame.into_desc(&self.umem, end - start));
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

    fn transmit(&mut self, mut frame: XdpFrame, start: usize, end: usize) -> bool {
        if let Some(imp) = self.impair.as_mut() {
            // Through the transmit link first (the packet moved to the
            // chunk's start, where a descriptor points).
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

    /// Copies `frame[start..end]` into a fresh UMEM frame: the caller keeps
    /// its frame for retransmission and may rewrite it at once (so
    /// `can_rewrite` is always true). Lending the frame itself to the TX
    /// ring would save this copy; it needs completion tracking per frame.
    fn transmit_ref(&mut self, frame: &XdpFrame, start: usize, end: usize) -> bool {
        if start > end || end > frame.buf().len() {
            return false;
        }
        let Some(mut copy) = self.alloc() else {
            return false;
        };
        let len = end - start;
        if len > copy.buf().len() {
            return false;
        }
        copy.buf_mut()[..len].copy_from_slice(&frame.buf()[start..end]);
        self.counters.tx_copies += 1;
        self.transmit(copy, 0, len)
    }

    fn can_rewrite(&self, _frame: &XdpFrame) -> bool {
        true
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
}

impl Drop for XdpDevice {
    fn drop(&mut self) {
        // Queued-but-unsent descriptors go back to the pool.
        self.umem.put_descs(&self.tx_batch);
        self.tx_batch.clear();
        self.reap();
        // What is still on the rings stays the kernel's until the socket
        // closes; counted so that the UMEM's account balances.
        self.umem
            .core()
            .pool
            .add_kernel_held(self.fill_outstanding + self.tx_outstanding);
    }
}
