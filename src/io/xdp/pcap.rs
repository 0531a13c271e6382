//! `--pcap FILE`: the stack's own traffic in classic pcap format.
//!
//! Workers never block on the file: each captured packet is copied into a
//! buffer and offered to a bounded channel (`try_send`); if the writer
//! thread falls behind, packets are counted as dropped instead. Capturing is
//! a debugging aid, so the copy per packet is accepted while it is on.

use crossbeam::channel::{bounded, Receiver, Sender, TrySendError};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Packets buffered between the workers and the writer.
const QUEUE: usize = 65536;
/// LINKTYPE_ETHERNET.
const LINKTYPE_ETHERNET: u32 = 1;
const SNAPLEN: u32 = 65535;

/// A worker's handle: cheap to clone.
#[derive(Clone)]
pub struct PcapTap {
    tx: Sender<(u64, Vec<u8>)>,
    dropped: Arc<AtomicU64>,
    epoch: std::time::SystemTime,
    start: std::time::Instant,
}

impl PcapTap {
    /// Record one Ethernet frame (never blocks).
    pub fn capture(&self, frame: &[u8]) {
        let now = self.epoch + self.start.elapsed();
        let us = now
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0);
        match self.tx.try_send((us, frame.to_vec())) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The writer thread and its file.
pub struct PcapWriter {
    tap: Option<PcapTap>,
    thread: Option<JoinHandle<std::io::Result<u64>>>,
    dropped: Arc<AtomicU64>,
}

impl PcapWriter {
    /// Create `path` (truncating it) and start the writer thread.
    pub fn create(path: &Path) -> std::io::Result<Self> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
        // Global header: magic, version 2.4, thiszone, sigfigs, snaplen, network.
        out.write_all(&0xa1b2_c3d4u32.to_le_bytes())?;
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&SNAPLEN.to_le_bytes())?;
        out.write_all(&LINKTYPE_ETHERNET.to_le_bytes())?;
        out.flush()?;
        let (tx, rx) = bounded(QUEUE);
        let dropped = Arc::new(AtomicU64::new(0));
        let thread = std::thread::Builder::new()
            .name("xdptcp-pcap".into())
            .spawn(move || write_loop(out, rx))?;
        Ok(PcapWriter {
            tap: Some(PcapTap {
                tx,
                dropped: dropped.clone(),
                epoch: std::time::SystemTime::now(),
                start: std::time::Instant::now(),
            }),
            thread: Some(thread),
            dropped,
        })
    }

    pub fn tap(&self) -> Option<PcapTap> {
        self.tap.clone()
    }

    /// Stop accepting packets, write out what is queued and close the file.
    /// Returns (packets written, packets dropped). All taps must be dropped
    /// first (the writer ends when the last sender is gone).
    pub fn finish(mut self) -> std::io::Result<(u64, u64)> {
        self.tap = None;
        let written = match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("pcap writer panicked")))?,
            None => 0,
        };
        Ok((written, self.dropped.load(Ordering::Relaxed)))
    }
}

fn write_loop(mut out: BufWriter<File>, rx: Receiver<(u64, Vec<u8>)>) -> std::io::Result<u64> {
    let mut n = 0u64;
    for (us, pkt) in rx {
        let len = pkt.len().min(SNAPLEN as usize);
        out.write_all(&((us / 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&((us % 1_000_000) as u32).to_le_bytes())?;
        out.write_all(&(len as u32).to_le_bytes())?;
        out.write_all(&(pkt.len() as u32).to_le_bytes())?;
        out.write_all(&pkt[..len])?;
        n += 1;
    }
    out.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_classic_pcap_file() {
        let path =
            std::env::temp_dir().join(format!("xdptcp-pcap-test-{}.pcap", std::process::id()));
        let w = PcapWriter::create(&path).unwrap();
        let tap = w.tap().unwrap();
        tap.capture(&[0xaa; 60]);
        tap.capture(&[0xbb; 42]);
        drop(tap);
        assert_eq!(w.finish().unwrap(), (2, 0));
        let bytes = std::fs::read(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        assert_eq!(bytes.len(), 24 + 16 + 60 + 16 + 42);
        assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
        assert_eq!(&bytes[20..24], &1u32.to_le_bytes());
        assert_eq!(&bytes[24 + 8..24 + 12], &60u32.to_le_bytes());
        assert!(bytes[40..100].iter().all(|&b| b == 0xaa));
        assert_eq!(&bytes[100 + 8..100 + 12], &42u32.to_le_bytes());
    }
}
