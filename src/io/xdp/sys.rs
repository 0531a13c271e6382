//! Small safe wrappers over the system calls the AF_XDP runtime needs
//! (kept here so that `unsafe` stays in the AF_XDP layer).

use core::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Whether the process runs with effective uid 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether the kernel has `addr` on any interface of the calling thread's
/// network namespace.
pub fn kernel_owns(addr: Ipv4Addr) -> bool {
    let mut list: *mut libc::ifaddrs = core::ptr::null_mut();
    // SAFETY: getifaddrs allocates a list that we walk read-only and free
    // once; an ifa_addr of family AF_INET points to a sockaddr_in.
    unsafe {
        if libc::getifaddrs(&mut list) != 0 {
            return false;
        }
        let mut found = false;
        let mut p = list;
        while !p.is_null() {
            let a = (*p).ifa_addr;
            if !a.is_null() && i32::from((*a).sa_family) == libc::AF_INET {
                let sin = &*(a as *const libc::sockaddr_in);
                found |= u32::from_be(sin.sin_addr.s_addr) == u32::from(addr);
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(list);
        found
    }
}

/// SO_PREFER_BUSY_POLL, SO_BUSY_POLL and SO_BUSY_POLL_BUDGET on `fd`.
pub fn set_busy_poll(fd: RawFd, usecs: u32, budget: u32) -> std::io::Result<()> {
    const SO_PREFER_BUSY_POLL: libc::c_int = 69;
    const SO_BUSY_POLL_BUDGET: libc::c_int = 70;
    for (opt, v) in [
        (SO_PREFER_BUSY_POLL, 1u32),
        (libc::SO_BUSY_POLL, usecs),
        (SO_BUSY_POLL_BUDGET, budget),
    ] {
        // SAFETY: setsockopt reads 4 bytes from a live u32.
        let r = unsafe {
            libc::setsockopt(
                fd,
                libc::SOL_SOCKET,
                opt,
                (&v as *const u32).cast(),
                core::mem::size_of::<u32>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A non-blocking `recvfrom` with no buffer on an AF_XDP socket: with busy
/// polling, the kernel runs the queue's NAPI in it.
pub fn recv_dontwait(fd: RawFd) {
    // SAFETY: a zero-length receive into no buffer; AF_XDP sockets take
    // no data through recvfrom.
    unsafe {
        libc::recvfrom(
            fd,
            core::ptr::null_mut(),
            0,
            libc::MSG_DONTWAIT,
            core::ptr::null_mut(),
            core::ptr::null_mut(),
        )
    };
}

/// A non-blocking eventfd: one thread notifies, another polls it.
pub struct EventFd(OwnedFd);

impl EventFd {
    pub fn new() -> std::io::Result<EventFd> {
        // SAFETY: plain eventfd(2) call.
        let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor nobody else owns.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Make the fd readable (wakes a poller).
    pub fn notify(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd.
        unsafe { libc::write(self.0.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Reset the counter (after a wake-up).
    pub fn drain(&self) {
        let mut v: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our (non-blocking) eventfd.
        unsafe { libc::read(self.0.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

/// A set of descriptors to wait on for input.
pub struct PollSet(Vec<libc::pollfd>);

impl PollSet {
    pub fn new(fds: impl IntoIterator<Item = RawFd>) -> PollSet {
        PollSet(
            fds.into_iter()
                .map(|fd| libc::pollfd {
                    fd,
                    events: libc::POLLIN,
                    revents: 0,
                })
                .collect(),
        )
    }

    /// Wait up to `timeout_ms` for input on any descriptor.
    pub fn wait(&mut self, timeout_ms: i32) {
        for p in self.0.iter_mut() {
            p.revents = 0;
        }
        // SAFETY: the pointer and length describe our live pollfd array.
        unsafe {
            libc::poll(
                self.0.as_mut_ptr(),
                self.0.len() as libc::nfds_t,
                timeout_ms,
            )
        };
    }

    /// Whether descriptor `i` was readable after the last `wait`.
    pub fn readable(&self, i: usize) -> bool {
        self.0.get(i).is_some_and(|p| p.revents != 0)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Move the calling thread into the network namespace at `path` (e.g.
/// `/run/netns/NAME`): sockets it creates afterwards live there.
pub fn enter_netns(path: &str) -> std::io::Result<()> {
    let f = std::fs::File::open(path)?;
    // SAFETY: setns(2) on a descriptor we hold open for the call.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// A raw packet socket (AF_PACKET, every ethertype) bound to interface
/// `ifname`, non-blocking: writing a buffer sends it as one Ethernet frame,
/// reading returns one frame seen on the interface (either direction).
/// Tests use it to put hand-made frames on a veth.
pub fn packet_socket(ifname: &str) -> std::io::Result<std::fs::File> {
    let name = std::ffi::CString::new(ifname)?;
    // SAFETY: if_nametoindex(3) reads a NUL-terminated string we own.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(std::io::Error::last_os_error());
    }
    let proto = (libc::ETH_P_ALL as u16).to_be();
    let flags = libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC;
    // SAFETY: socket(2) with constant arguments; the result is checked.
    let fd = unsafe { libc::socket(libc::AF_PACKET, flags, i32::from(proto)) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = proto;
    sll.sll_ifindex = index as i32;
    // SAFETY: bind(2) reads `size_of::<sockaddr_ll>()` bytes of `sll`,
    // which lives across the call.
    let r = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (&sll as *const libc::sockaddr_ll).cast(),
            std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(std::fs::File::from(fd))
}

/// Send `sig` to process `pid`.
pub fn kill(pid: u32, sig: i32) -> bool {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(pid as libc::pid_t, sig) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventfd_wakes_a_poller() {
        let e = EventFd::new().unwrap();
        let mut p = PollSet::new([e.fd()]);
        p.wait(0);
        assert!(!p.readable(0));
        e.notify();
        p.wait(1000);
        assert!(p.readable(0));
        e.drain();
        p.wait(0);
        assert!(!p.readable(0));
    }

    #[test]
    fn loopback_address_is_the_kernels() {
        assert!(kernel_owns(Ipv4Addr::LOCALHOST));
        assert!(!kernel_owns(Ipv4Addr::new(198, 19, 255, 254)));
    }
}
