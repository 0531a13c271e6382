//! What a device's driver does for AF_XDP, asked of the kernel's `netdev`
//! generic netlink family: whether it can bind zero-copy
//! (`NETDEV_A_DEV_XDP_FEATURES` has `xsk-zerocopy`, Linux ≥ 6.3), and in
//! zero-copy mode whether it honours TX metadata's checksum request
//! (`NETDEV_A_DEV_XSK_FEATURES` has `tx-checksum`, Linux ≥ 6.8; in copy
//! mode the kernel builds the skb itself and honours it on any device).

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const NLMSG_HDR: usize = 16;
const GENL_HDR: usize = 4;
const NLM_F_REQUEST: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NETDEV_CMD_DEV_GET: u8 = 1;
const NETDEV_A_DEV_IFINDEX: u16 = 1;
const NETDEV_A_DEV_XDP_FEATURES: u16 = 3;
const NETDEV_A_DEV_XSK_FEATURES: u16 = 6;
/// `NETDEV_XDP_ACT_XSK_ZEROCOPY`.
pub const XDP_XSK_ZEROCOPY: u64 = 8;
/// `NETDEV_XSK_FLAGS_TX_CHECKSUM`.
pub const XSK_TX_CHECKSUM: u64 = 2;

/// One generic netlink request: header, genl header, attributes.
fn request(family: u16, cmd: u8, attrs: &[(u16, &[u8])]) -> Vec<u8> {
    let mut m = vec![0u8; NLMSG_HDR];
    m.extend_from_slice(&[cmd, 1, 0, 0]);
    for (ty, v) in attrs {
        let len = 4 + v.len();
        m.extend_from_slice(&(len as u16).to_ne_bytes());
        m.extend_from_slice(&ty.to_ne_bytes());
        m.extend_from_slice(v);
        m.resize(m.len().next_multiple_of(4), 0);
    }
    let len = m.len() as u32;
    m[0..4].copy_from_slice(&len.to_ne_bytes());
    m[4..6].copy_from_slice(&family.to_ne_bytes());
    m[6..8].copy_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    m[8..12].copy_from_slice(&1u32.to_ne_bytes());
    m
}

/// The attribute `want` of the first message in `buf` (a reply), if it
/// is not an error; every length checked.
fn attr(buf: &[u8], want: u16) -> Option<&[u8]> {
    let len = u32::from_ne_bytes(buf.get(0..4)?.try_into().ok()?) as usize;
    let ty = u16::from_ne_bytes(buf.get(4..6)?.try_into().ok()?);
    if ty == NLMSG_ERROR || len > buf.len() {
        return None;
    }
    let mut at = NLMSG_HDR + GENL_HDR;
    while at + 4 <= len {
        let alen = usize::from(u16::from_ne_bytes(buf[at..at + 2].try_into().ok()?));
        let aty = u16::from_ne_bytes(buf[at + 2..at + 4].try_into().ok()?) & 0x3fff;
        if alen < 4 || at + alen > len {
            return None;
        }
        if aty == want {
            return Some(&buf[at + 4..at + alen]);
        }
        at += alen.next_multiple_of(4);
    }
    None
}

/// Send `req` and read one reply.
fn ask(fd: &OwnedFd, req: &[u8], buf: &mut [u8]) -> Option<usize> {
    // SAFETY: `req` is a live buffer of `req.len()` bytes; the kernel's
    // netlink socket is the destination (connected implicitly to pid 0).
    let n = unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) };
    if n < 0 || n as usize != req.len() {
        return None;
    }
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    (n > 0).then_some(n as usize)
}

/// A device's AF_XDP abilities (flags of `netdev` netlink).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevFeatures {
    /// `xdp-features` (`XDP_XSK_ZEROCOPY`, ...).
    pub xdp: u64,
    /// `xsk-features` (`XSK_TX_CHECKSUM`, ...); 0 on kernels without it.
    pub xsk: u64,
}

impl DevFeatures {
    /// The driver can bind AF_XDP sockets in zero-copy mode.
    pub fn zero_copy(&self) -> bool {
        self.xdp & XDP_XSK_ZEROCOPY != 0
    }
}

/// The u64 attribute `want` of a reply, if present and long enough.
fn u64_attr(buf: &[u8], want: u16) -> Option<u64> {
    let v = attr(buf, want)?;
    Some(u64::from_ne_bytes(v.get(..8)?.try_into().ok()?))
}

/// The device's features, or `None` if the kernel cannot tell (no
/// `netdev` family: before Linux 6.3).
pub fn dev_features(ifindex: u32) -> Option<DevFeatures> {
    // SAFETY: socket(2) has no memory preconditions.
    let raw = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_GENERIC,
        )
    };
    if raw < 0 {
        return None;
    }
    // SAFETY: a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let tv = libc::timeval {
        tv_sec: 1,
        tv_usec: 0,
    };
    // SAFETY: a live `timeval` of the size given; a reply that never
    // comes must not hang the start-up.
    unsafe {
        libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_RCVTIMEO,
            (&tv as *const libc::timeval).cast(),
            core::mem::size_of::<libc::timeval>() as libc::socklen_t,
        )
    };
    let mut buf = vec![0u8; 8192];
    let req = request(
        GENL_ID_CTRL,
        CTRL_CMD_GETFAMILY,
        &[(CTRL_ATTR_FAMILY_NAME, b"netdev\0")],
    );
    let n = ask(&fd, &req, &mut buf)?;
    let id = attr(&buf[..n], CTRL_ATTR_FAMILY_ID)?;
    let family = u16::from_ne_bytes(id.get(..2)?.try_into().ok()?);
    let req = request(
        family,
        NETDEV_CMD_DEV_GET,
        &[(NETDEV_A_DEV_IFINDEX, &ifindex.to_ne_bytes())],
    );
    let n = ask(&fd, &req, &mut buf)?;
    let reply = &buf[..n];
    // The reply names the device: not an error.
    attr(reply, NETDEV_A_DEV_IFINDEX)?;
    Some(DevFeatures {
        xdp: u64_attr(reply, NETDEV_A_DEV_XDP_FEATURES).unwrap_or(0),
        xsk: u64_attr(reply, NETDEV_A_DEV_XSK_FEATURES).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_is_padded_and_its_reply_attributes_are_found_with_checked_lengths() {
        let r = request(7, 1, &[(1, &[5, 0, 0, 0]), (2, b"ab")]);
        assert_eq!(r.len(), NLMSG_HDR + GENL_HDR + 8 + 8);
        assert_eq!(
            u32::from_ne_bytes(r[0..4].try_into().unwrap()) as usize,
            r.len()
        );
        // Read back as a reply: both attributes, the second padded.
        assert_eq!(attr(&r, 1), Some(&[5, 0, 0, 0][..]));
        assert_eq!(attr(&r, 2), Some(&b"ab"[..]));
        assert_eq!(attr(&r, 3), None);
        // Truncated or lying lengths are refused, never read past.
        assert_eq!(attr(&r[..r.len() - 4], 2), None);
        let mut bad = r.clone();
        bad[NLMSG_HDR + GENL_HDR..NLMSG_HDR + GENL_HDR + 2].copy_from_slice(&200u16.to_ne_bytes());
        assert_eq!(attr(&bad, 1), None);
        let mut err = r;
        err[4..6].copy_from_slice(&NLMSG_ERROR.to_ne_bytes());
        assert_eq!(attr(&err, 1), None);
        assert_eq!(attr(&[0u8; 3], 1), None);
    }
}
