//! Facts about a network interface, asked of the kernel with ioctls (which
//! answer for the calling thread's network namespace, unlike sysfs).

use super::rss::Rss;
use super::{Error, ErrorKind};
use crate::wire::MacAddr;
use std::ffi::CString;

/// What the runtime needs to know about an interface.
#[derive(Debug, Clone)]
pub struct IfaceInfo {
    pub name: String,
    pub ifindex: i32,
    pub mac: MacAddr,
    pub mtu: usize,
    /// Receive queues (ETHTOOL_GCHANNELS: rx or combined channels).
    pub rx_queues: u32,
    /// Driver name (ETHTOOL_GDRVINFO), e.g. "veth"; empty if unknown.
    pub driver: String,
    /// The device's Toeplitz RSS key and indirection table
    /// (ETHTOOL_GRSSH), if it has and tells them (veth does not).
    pub rss: Option<Rss>,
}

impl IfaceInfo {
    /// Whether this is a veth: its peer's segments may arrive with only the
    /// pseudo-header sum in the checksum field (`CHECKSUM_PARTIAL`, which no
    /// hardware finishes between two namespaces of one host).
    pub fn is_veth(&self) -> bool {
        self.driver == "veth"
    }
}

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_GCHANNELS: u32 = 0x3c;
const ETHTOOL_GDRVINFO: u32 = 0x03;
const ETHTOOL_GRSSH: u32 = 0x46;
/// `ETH_RSS_HASH_TOP`: the Toeplitz hash function.
const ETH_RSS_HASH_TOP: u8 = 1;

/// `struct ethtool_rxfh` (linux/ethtool.h) followed by room for the
/// indirection table (u32 each) and the key.
#[repr(C)]
struct EthtoolRxfh {
    cmd: u32,
    rss_context: u32,
    indir_size: u32,
    key_size: u32,
    hfunc: u8,
    input_xfrm: u8,
    rsvd8: [u8; 2],
    rsvd32: u32,
    rss_config: [u32; RXFH_ROOM],
}

/// Room after the header: up to 4,096 table entries plus a 64-byte key.
const RXFH_ROOM: usize = 4096 + 16;

/// `struct ethtool_drvinfo` (linux/ethtool.h).
#[repr(C)]
struct EthtoolDrvinfo {
    cmd: u32,
    driver: [u8; 32],
    version: [u8; 32],
    fw_version: [u8; 32],
    bus_info: [u8; 32],
    erom_version: [u8; 32],
    reserved2: [u8; 12],
    n_priv_flags: u32,
    n_stats: u32,
    testinfo_len: u32,
    eedump_len: u32,
    regdump_len: u32,
}

#[repr(C)]
#[derive(Default)]
struct EthtoolChannels {
    cmd: u32,
    max_rx: u32,
    max_tx: u32,
    max_other: u32,
    max_combined: u32,
    rx_count: u32,
    tx_count: u32,
    other_count: u32,
    combined_count: u32,
}

/// An `ifreq` with the name set; the union is large enough for every use here.
fn ifreq(name: &str) -> libc::ifreq {
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { core::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *d = s as libc::c_char;
    }
    req
}

struct Sock(libc::c_int);
impl Drop for Sock {
    fn drop(&mut self) {
        // SAFETY: the fd was opened by `Sock::open` and is closed once.
        unsafe { libc::close(self.0) };
    }
}
impl Sock {
    fn open() -> Option<Sock> {
        // SAFETY: plain socket(2) call.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        (fd >= 0).then_some(Sock(fd))
    }
    fn ioctl(&self, req: libc::c_ulong, ifr: &mut libc::ifreq) -> bool {
        // SAFETY: `ifr` is a valid ifreq for the requests used here
        // (SIOCGIFHWADDR, SIOCGIFMTU, SIOCETHTOOL with a pointer to a live
        // EthtoolChannels, EthtoolDrvinfo or EthtoolRxfh whose sizes the
        // kernel checks against what it wrote in the first call).
        unsafe { libc::ioctl(self.0, req as _, ifr as *mut libc::ifreq) == 0 }
    }
}

impl IfaceInfo {
    pub fn get(name: &str) -> Result<Self, Error> {
        let nodev = || {
            Error::new(
                ErrorKind::NoSuchInterface,
                format!("no such interface: {name:?}"),
            )
        };
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(nodev());
        }
        let cname = CString::new(name).map_err(|_| nodev())?;
        // SAFETY: `cname` is a valid NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) } as i32;
        if ifindex == 0 {
            return Err(nodev());
        }
        let sock = Sock::open().ok_or_else(nodev)?;
        let mut req = ifreq(name);
        if !sock.ioctl(libc::SIOCGIFHWADDR, &mut req) {
            return Err(nodev());
        }
        // SAFETY: SIOCGIFHWADDR filled the hwaddr member of the union.
        let hw = unsafe { req.ifr_ifru.ifru_hwaddr.sa_data };
        let mut mac = [0u8; 6];
        for (d, s) in mac.iter_mut().zip(hw.iter()) {
            *d = *s as u8;
        }
        let mut req = ifreq(name);
        if !sock.ioctl(libc::SIOCGIFMTU, &mut req) {
            return Err(nodev());
        }
        // SAFETY: SIOCGIFMTU filled the mtu member of the union.
        let mtu = unsafe { req.ifr_ifru.ifru_mtu }.max(0) as usize;
        let mut ch = EthtoolChannels {
            cmd: ETHTOOL_GCHANNELS,
            ..Default::default()
        };
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_data = (&mut ch as *mut EthtoolChannels).cast();
        let rx_queues = if sock.ioctl(SIOCETHTOOL, &mut req) {
            ch.rx_count.max(ch.combined_count)
        } else {
            1
        };
        let mut drv = EthtoolDrvinfo {
            cmd: ETHTOOL_GDRVINFO,
            driver: [0; 32],
            version: [0; 32],
            fw_version: [0; 32],
            bus_info: [0; 32],
            erom_version: [0; 32],
            reserved2: [0; 12],
            n_priv_flags: 0,
            n_stats: 0,
            testinfo_len: 0,
            eedump_len: 0,
            regdump_len: 0,
        };
        let mut req = ifreq(name);
        req.ifr_ifru.ifru_data = (&mut drv as *mut EthtoolDrvinfo).cast();
        let driver = if sock.ioctl(SIOCETHTOOL, &mut req) {
            let end = drv.driver.iter().position(|&b| b == 0).unwrap_or(32);
            String::from_utf8_lossy(&drv.driver[..end]).into_owned()
        } else {
            String::new()
        };
        let rss = query_rss(&sock, name);
        Ok(IfaceInfo {
            name: name.to_string(),
            ifindex,
            mac: MacAddr(mac),
            mtu,
            rx_queues: rx_queues.max(1),
            driver,
            rss,
        })
    }
}

/// ETHTOOL_GRSSH: first the sizes, then the table and key. `None` if the
/// device does not answer, uses another hash function, or is too large.
fn query_rss(sock: &Sock, name: &str) -> Option<Rss> {
    let mut rxfh = Box::new(EthtoolRxfh {
        cmd: ETHTOOL_GRSSH,
        rss_context: 0,
        indir_size: 0,
        key_size: 0,
        hfunc: 0,
        input_xfrm: 0,
        rsvd8: [0; 2],
        rsvd32: 0,
        rss_config: [0; RXFH_ROOM],
    });
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_data = (&mut *rxfh as *mut EthtoolRxfh).cast();
    if !sock.ioctl(SIOCETHTOOL, &mut req) {
        return None;
    }
    let (n, k) = (rxfh.indir_size as usize, rxfh.key_size as usize);
    if n == 0 || k == 0 || n + k.div_ceil(4) > RXFH_ROOM {
        return None;
    }
    let mut req = ifreq(name);
    req.ifr_ifru.ifru_data = (&mut *rxfh as *mut EthtoolRxfh).cast();
    if !sock.ioctl(SIOCETHTOOL, &mut req) || rxfh.hfunc & ETH_RSS_HASH_TOP == 0 {
        return None;
    }
    let indir = rxfh.rss_config[..n].to_vec();
    let key: Vec<u8> = rxfh.rss_config[n..n + k.div_ceil(4)]
        .iter()
        .flat_map(|w| w.to_ne_bytes())
        .take(k)
        .collect();
    Some(Rss { key, indir })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_exists_and_bad_names_do_not() {
        let lo = IfaceInfo::get("lo").unwrap();
        assert_eq!(lo.ifindex, 1);
        assert_eq!(lo.mac, MacAddr([0; 6]));
        assert!(lo.mtu >= 1500);
        // The loopback device has no ethtool driver info; it is no veth,
        // and it has no RSS.
        assert!(!lo.is_veth());
        assert!(lo.rss.is_none());
        assert_eq!(
            IfaceInfo::get("../lo").unwrap_err().kind,
            ErrorKind::NoSuchInterface
        );
        assert_eq!(
            IfaceInfo::get("nope-xdptcp").unwrap_err().kind,
            ErrorKind::NoSuchInterface
        );
        assert_eq!(
            IfaceInfo::get("").unwrap_err().kind,
            ErrorKind::NoSuchInterface
        );
    }
}
