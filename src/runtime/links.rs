//! Interfaces going down and coming back: the runtime's main thread reads
//! each `--iface`'s carrier from sysfs a few times a second and publishes
//! it here; a worker that sees the generation change withdraws the
//! addresses of an interface that lost its carrier from its MPTCP
//! connections (REMOVE_ADDR, RFC 8684 §3.4.2) and offers them again when
//! it is back (ADD_ADDR, joins). Nothing here is touched per packet: one
//! relaxed load per worker loop.

use super::worker_stats::WorkerStats;
use crate::io::xdp::XdpDevice;
use crate::stack::Stack;
use core::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// How often the main thread reads the carriers.
pub const PERIOD: std::time::Duration = std::time::Duration::from_millis(100);

/// Each interface's carrier, as last read, and a generation bumped on
/// every change.
#[derive(Debug)]
pub struct LinkWatch {
    up: Vec<AtomicBool>,
    generation: AtomicU64,
}

impl LinkWatch {
    /// `n` interfaces, all up.
    pub fn new(n: usize) -> LinkWatch {
        LinkWatch {
            up: (0..n).map(|_| AtomicBool::new(true)).collect(),
            generation: AtomicU64::new(0),
        }
    }

    /// Bumped whenever an interface's carrier changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether interface `i` had its carrier when last read.
    pub fn is_up(&self, i: usize) -> bool {
        self.up.get(i).is_none_or(|u| u.load(Ordering::Relaxed))
    }

    /// Record interface `i`'s carrier; true when it changed.
    pub fn set(&self, i: usize, up: bool) -> bool {
        let Some(u) = self.up.get(i) else {
            return false;
        };
        let changed = u.swap(up, Ordering::Relaxed) != up;
        if changed {
            self.generation.fetch_add(1, Ordering::Release);
        }
        changed
    }

    /// Read every interface's carrier (`names` in `--iface` order).
    pub fn poll(&self, names: &[String]) {
        for (i, name) in names.iter().enumerate() {
            self.set(i, carrier(name));
        }
    }
}

/// Whether `name` has its carrier: `/sys/class/net/NAME/carrier` reads
/// "1". An interface set down makes the read fail (EINVAL): no carrier;
/// a veth whose peer is down reads "0".
pub fn carrier(name: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{name}/carrier")).is_ok_and(|s| s.trim() == "1")
}

/// RFC 8684 §3.4.2: the addresses of an interface that lost its carrier
/// are withdrawn from this worker's MPTCP connections (REMOVE_ADDR, its
/// subflows reset), unless an interface still up owns them too, and
/// restored when it is back (announced and joined again).
pub(super) fn follow_links(
    links: &LinkWatch,
    seen: &mut [bool],
    stacks: &mut [Stack<XdpDevice>],
    st: &mut WorkerStats,
) {
    for i in 0..seen.len() {
        let up = links.is_up(i);
        if up == seen[i] {
            continue;
        }
        seen[i] = up;
        // Subflows on the interface stop (or resume) taking data, whatever
        // becomes of the address.
        stacks[i].link_state(up);
        let addrs: Vec<Ipv4Addr> = stacks[i].config().addrs.iter().map(|a| a.addr).collect();
        for ip in addrs {
            // An address that another interface still up owns too (one
            // address behind several interfaces) is still ours to use:
            // only the subflows on the dead interface die, of their own
            // timeouts.
            let elsewhere = (0..seen.len()).any(|j| {
                j != i && seen[j] && stacks[j].config().addrs.iter().any(|a| a.addr == ip)
            });
            if up {
                crate::stack::mptcp_restore_address(stacks, ip);
            } else if !elsewhere {
                crate::stack::mptcp_withdraw_address(stacks, ip);
            }
        }
        if up {
            st.links_up += 1;
        } else {
            st.links_down += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_bumps_the_generation_once() {
        let w = LinkWatch::new(2);
        assert!(w.is_up(0) && w.is_up(1));
        assert!(!w.set(0, true));
        assert_eq!(w.generation(), 0);
        assert!(w.set(1, false));
        assert!(!w.set(1, false));
        assert_eq!(w.generation(), 1);
        assert!(!w.is_up(1));
        assert!(w.set(1, true));
        assert_eq!(w.generation(), 2);
        assert!(!w.set(7, false), "no such interface");
    }

    #[test]
    fn an_interface_that_does_not_exist_has_no_carrier() {
        assert!(!carrier("xdptcp-none0"));
    }
}
