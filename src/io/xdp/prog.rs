//! The XDP redirect program (`bpf/xdp_redirect.bpf.c`), embedded in the
//! binary as a libbpf-cargo skeleton: loading, attaching (native or generic,
//! with fallback), filling its maps, reading its counters, detaching.

use super::{Error, ErrorKind};
use core::net::Ipv4Addr;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, OpenObject, XdpFlags};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};

#[allow(
    clippy::all,
    clippy::pedantic,
    unused,
    non_camel_case_types,
    non_snake_case
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/xdp_redirect.skel.rs"));
}
use skel::{XdpRedirectSkel, XdpRedirectSkelBuilder};

/// Mirrors `bpf/xdp_redirect.h`.
pub const MAX_QUEUES: u32 = 64;
/// Mirrors `bpf/xdp_redirect.h`.
pub const MAX_ADDRS: u32 = 64;
const CNT_REDIRECTED: u32 = 0;
const CNT_PASSED: u32 = 1;
const CNT_MALFORMED: u32 = 2;
const CNT_NO_SOCKET: u32 = 3;

/// `BPF_PROG_LOAD` flag: the XDP program accepts multi-buffer packets.
const BPF_F_XDP_HAS_FRAGS: u32 = 1 << 5;

/// XDP actions (`enum xdp_action`), as returned by the program.
pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_REDIRECT: u32 = 4;

/// How to attach the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum XdpMode {
    /// Native (driver) mode, falling back to generic (SKB) mode.
    #[default]
    Auto,
    /// Native (driver) mode only.
    Native,
    /// Generic (SKB) mode only.
    Generic,
}

impl core::str::FromStr for XdpMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(XdpMode::Auto),
            "native" => Ok(XdpMode::Native),
            "generic" => Ok(XdpMode::Generic),
            _ => Err(format!(
                "xdp mode must be auto, native or generic, not {s:?}"
            )),
        }
    }
}

/// The mode the program actually runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum AttachedMode {
    Native,
    Generic,
}

impl AttachedMode {
    fn flags(self) -> XdpFlags {
        match self {
            AttachedMode::Native => XdpFlags::DRV_MODE,
            AttachedMode::Generic => XdpFlags::SKB_MODE,
        }
    }
}

/// The program's per-CPU counters, summed over CPUs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct XdpCounters {
    pub redirected: u64,
    pub passed: u64,
    pub malformed: u64,
    /// Ours, but XSKMAP had no socket for the queue (fell back to XDP_PASS).
    pub no_socket: u64,
}

/// One loaded instance of the program (one per interface: each has its own
/// XSKMAP and address set). Dropping it detaches it.
pub struct XdpProgram {
    skel: XdpRedirectSkel<'static>,
    /// The BPF link, the interface index and the mode.
    link: Option<(OwnedFd, i32, AttachedMode)>,
}

fn bpf_err(what: &str, e: libbpf_rs::Error) -> Error {
    Error::new(ErrorKind::Bpf, format!("{what}: {e}"))
}

impl XdpProgram {
    /// Load the embedded object into the kernel (needs CAP_BPF / root).
    pub fn load() -> Result<Self, Error> {
        Self::load_with(false)
    }

    /// Load the program, as `xdp.frags` when `frags` (`BPF_F_XDP_HAS_FRAGS`):
    /// the driver may then hand it packets larger than one page, in several
    /// buffers, and an AF_XDP socket bound with `XDP_USE_SG` receives them
    /// as chained descriptors. The program reads only the headers, which
    /// are in the first buffer, so the same code serves both.
    pub fn load_with(frags: bool) -> Result<Self, Error> {
        // The skeleton borrows its object storage for its whole life; one
        // small allocation per loaded program is leaked to make it 'static
        // (the libbpf object itself is still freed when the skeleton drops).
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = XdpRedirectSkelBuilder::default()
            .open(storage)
            .map_err(|e| bpf_err("opening the XDP object", e))?;
        if frags {
            open.progs.xdptcp_redirect.set_flags(BPF_F_XDP_HAS_FRAGS);
        }
        let skel = open
            .load()
            .map_err(|e| bpf_err("loading the XDP program", e))?;
        Ok(XdpProgram { skel, link: None })
    }

    /// Attach to `ifindex` in `mode` through a BPF link; fails if any XDP
    /// program is already attached there (ErrorKind::AlreadyAttached).
    ///
    /// A link (unlike a netlink attachment) belongs to its file descriptor:
    /// closing it detaches the program whatever the calling thread's network
    /// namespace, and the kernel closes it if the process dies, so the
    /// interface is never left with a stale program.
    pub fn attach(&mut self, ifindex: i32, mode: XdpMode) -> Result<AttachedMode, Error> {
        if self.link.is_some() {
            return Err(Error::new(
                ErrorKind::AlreadyAttached,
                "the program is already attached".into(),
            ));
        }
        let tries: &[AttachedMode] = match mode {
            XdpMode::Auto => &[AttachedMode::Native, AttachedMode::Generic],
            XdpMode::Native => &[AttachedMode::Native],
            XdpMode::Generic => &[AttachedMode::Generic],
        };
        let prog_fd = self.skel.progs.xdptcp_redirect.as_fd().as_raw_fd();
        let mut last = 0;
        for &m in tries {
            let opts = libbpf_sys::bpf_link_create_opts {
                sz: core::mem::size_of::<libbpf_sys::bpf_link_create_opts>() as _,
                flags: m.flags().bits(),
                ..Default::default()
            };
            // SAFETY: `opts` is a properly sized, initialized options struct
            // that outlives the call; prog_fd is our loaded program's fd.
            let fd = unsafe {
                libbpf_sys::bpf_link_create(prog_fd, ifindex, libbpf_sys::BPF_XDP, &opts)
            };
            if fd >= 0 {
                // SAFETY: bpf_link_create returned a new fd that we own.
                self.link = Some((unsafe { OwnedFd::from_raw_fd(fd) }, ifindex, m));
                return Ok(m);
            }
            last = -fd;
            if last == libc::EBUSY || last == libc::EEXIST {
                return Err(Error::new(
                    ErrorKind::AlreadyAttached,
                    "an XDP program is already attached".into(),
                ));
            }
            if last == libc::ENODEV {
                return Err(Error::new(
                    ErrorKind::NoSuchInterface,
                    format!("no interface with index {ifindex}"),
                ));
            }
            if last == libc::EPERM || last == libc::EACCES {
                return Err(Error::new(
                    ErrorKind::Permission,
                    "not allowed to attach XDP programs".into(),
                ));
            }
        }
        Err(Error::new(
            ErrorKind::Bpf,
            format!(
                "attaching the XDP program: {}",
                std::io::Error::from_raw_os_error(last)
            ),
        ))
    }

    /// Detach from the interface (idempotent): closes the link.
    pub fn detach(&mut self) {
        self.link = None;
    }

    /// Where the program is attached, if it is.
    pub fn attached(&self) -> Option<(i32, AttachedMode)> {
        self.link.as_ref().map(|&(_, i, m)| (i, m))
    }

    /// Steer packets to `addr` (and ARP for it) to the stack.
    pub fn add_local_addr(&self, addr: Ipv4Addr) -> Result<(), Error> {
        let key = u32::from_ne_bytes(addr.octets());
        self.skel
            .maps
            .local_addrs
            .update(&key.to_ne_bytes(), &[1u8], MapFlags::ANY)
            .map_err(|e| bpf_err("adding a local address", e))
    }

    /// Hand packets arriving on `queue` to the AF_XDP socket `fd`.
    pub fn set_socket(&self, queue: u32, fd: RawFd) -> Result<(), Error> {
        if queue >= MAX_QUEUES {
            return Err(Error::new(
                ErrorKind::TooManyQueues,
                format!("queue {queue} >= {MAX_QUEUES}"),
            ));
        }
        self.skel
            .maps
            .xsks_map
            .update(
                &queue.to_ne_bytes(),
                &(fd as u32).to_ne_bytes(),
                MapFlags::ANY,
            )
            .map_err(|e| bpf_err("inserting a socket into XSKMAP", e))
    }

    /// Stop handing packets of `queue` to a socket.
    pub fn clear_socket(&self, queue: u32) {
        let _ = self.skel.maps.xsks_map.delete(&queue.to_ne_bytes());
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(&self) -> XdpCounters {
        let read = |idx: u32| -> u64 {
            match self
                .skel
                .maps
                .counters
                .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
            {
                Ok(Some(per_cpu)) => per_cpu
                    .iter()
                    .filter_map(|v| v.get(..8).and_then(|b| b.try_into().ok()))
                    .map(u64::from_ne_bytes)
                    .sum(),
                _ => 0,
            }
        };
        XdpCounters {
            redirected: read(CNT_REDIRECTED),
            passed: read(CNT_PASSED),
            malformed: read(CNT_MALFORMED),
            no_socket: read(CNT_NO_SOCKET),
        }
    }

    /// Run the program once on `packet` with BPF_PROG_TEST_RUN (no NIC
    /// involved; rx_queue_index is 0) and return its XDP action.
    pub fn test_run(&self, packet: &[u8]) -> Result<u32, Error> {
        let input = libbpf_rs::ProgramInput {
            data_in: Some(packet),
            ..Default::default()
        };
        let out = self
            .skel
            .progs
            .xdptcp_redirect
            .test_run(input)
            .map_err(|e| bpf_err("BPF_PROG_TEST_RUN", e))?;
        Ok(out.return_value)
    }
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        self.detach();
    }
}
