//! Bulk echo connections from the kernel's side, every byte checked.

use super::netns;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// A deterministic byte stream per connection (xorshift).
pub fn fill(seed: u64, buf: &mut [u8], state: &mut u64) {
    if *state == 0 {
        *state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    }
    for chunk in buf.chunks_mut(8) {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        let b = state.to_le_bytes();
        chunk.copy_from_slice(&b[..chunk.len()]);
    }
}

/// One connection: send `n` bytes (writer thread), read the echo, compare
/// SHA-256 of both directions. Runs in the kernel peer's namespace.
pub fn bulk_conn(nsk: &str, target: &str, seed: u64, n: usize) -> Result<(), String> {
    netns::enter(nsk);
    let addr: SocketAddr = target.parse().unwrap();
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connect {seed}: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut w = s.try_clone().unwrap();
    let writer = std::thread::spawn(move || -> Result<[u8; 32], String> {
        let mut h = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut state = 0;
        let mut left = n;
        while left > 0 {
            let k = left.min(buf.len());
            fill(seed, &mut buf[..k], &mut state);
            h.update(&buf[..k]);
            w.write_all(&buf[..k])
                .map_err(|e| format!("write {seed}: {e}"))?;
            left -= k;
        }
        w.shutdown(Shutdown::Write)
            .map_err(|e| format!("shutdown {seed}: {e}"))?;
        Ok(h.finalize().into())
    });
    let mut r = s;
    let mut h = Sha256::new();
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let k = r
            .read(&mut buf)
            .map_err(|e| format!("read {seed} after {got} bytes: {e}"))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        got += k;
    }
    let sent = writer.join().map_err(|_| "writer panicked".to_string())??;
    if got != n {
        return Err(format!("conn {seed}: echoed {got} of {n} bytes"));
    }
    let echoed: [u8; 32] = h.finalize().into();
    if echoed != sent {
        return Err(format!("conn {seed}: SHA-256 of the echo differs"));
    }
    Ok(())
}
