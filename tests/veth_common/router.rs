//! A path through a router namespace with a smaller MTU behind it, for
//! the path-MTU cells of the fault matrix:
//!
//! ```text
//! ns Ps (stack)            ns Pr (router, ip_forward=1)           ns Pk (kernel)
//! Ps0 --- 1500 --- Pr0 198.18.4.1   Pr1 198.18.5.1 --- 1280 --- Pk0 198.18.5.2
//! xdptcp owns 198.18.4.2                                        route to .4/24 via .5.1
//! ```
//!
//! The kernel's link has MTU 1,280 on both ends, yet its route to the
//! stack says `advmss 1460`: it announces the MSS of a 1,500-byte path,
//! as a host on a larger LAN behind a smaller tunnel would, so the stack
//! must learn the path MTU (from the router's ICMP, or by probing when the
//! router's nftables drop those). Both ends of every veth are inside the
//! namespaces; the namespaces are deleted on drop.

use std::process::{Command, Stdio};

pub const STACK: &str = "198.18.4.2";
pub const GATEWAY: &str = "198.18.4.1";
pub const PATH_MTU: u32 = 1280;

pub struct RouterPath {
    pub prefix: String,
}

fn ip(args: &[&str]) {
    let ok = Command::new("ip")
        .args(args)
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "ip {}", args.join(" "));
}

impl RouterPath {
    /// Build it; with `filter_icmp` the router drops the ICMP
    /// "fragmentation needed" messages it sends (a PMTUD black hole).
    pub fn up(tag: &str, filter_icmp: bool) -> RouterPath {
        let p = format!("{tag}{}", std::process::id() % 100_000);
        let r = RouterPath { prefix: p.clone() };
        let (s, rt, k) = (r.ns("s"), r.ns("r"), r.ns("k"));
        for ns in [&s, &rt, &k] {
            ip(&["netns", "add", ns]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        let (s0, r0, r1, k0) = (
            format!("{p}s0"),
            format!("{p}r0"),
            format!("{p}r1"),
            format!("{p}k0"),
        );
        ip(&[
            "-n", &s, "link", "add", &s0, "type", "veth", "peer", "name", &r0, "netns", &rt,
        ]);
        ip(&[
            "-n", &rt, "link", "add", &r1, "mtu", "1280", "type", "veth", "peer", "name", &k0,
            "netns", &k,
        ]);
        ip(&["-n", &k, "link", "set", &k0, "mtu", "1280"]);
        ip(&["-n", &rt, "addr", "add", "198.18.4.1/24", "dev", &r0]);
        ip(&["-n", &rt, "addr", "add", "198.18.5.1/24", "dev", &r1]);
        ip(&["-n", &k, "addr", "add", "198.18.5.2/24", "dev", &k0]);
        for (ns, dev) in [(&s, &s0), (&rt, &r0), (&rt, &r1), (&k, &k0)] {
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        ip(&[
            "-n",
            &k,
            "route",
            "add",
            "198.18.4.0/24",
            "via",
            "198.18.5.1",
            "advmss",
            "1460",
        ]);
        r.sh("r", "sysctl -qw net.ipv4.ip_forward=1");
        // Count the stack's packets of exactly the path MTU the router
        // forwards (proof that the stack found 1,280, not just something
        // below), and drop the router's ICMP when asked.
        let drop = if filter_icmp {
            "add rule ip pm out icmp type destination-unreachable icmp code frag-needed counter drop\n"
        } else {
            ""
        };
        let rules = format!(
            "add table ip pm\n\
             add chain ip pm through {{ type filter hook forward priority 0; policy accept; }}\n\
             add chain ip pm out {{ type filter hook output priority 0; policy accept; }}\n\
             add rule ip pm through ip saddr {STACK} ip length {PATH_MTU} counter\n\
             {drop}"
        );
        let mut c = r.command("r", "nft");
        c.args(["-f", "-"]).stdin(Stdio::piped());
        let mut child = c.spawn().expect("nft");
        {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(rules.as_bytes())
                .unwrap();
        }
        assert!(child.wait().is_ok_and(|s| s.success()), "nft rules");
        r
    }

    /// Namespace `which` ("s", "r" or "k").
    pub fn ns(&self, which: &str) -> String {
        format!("{}{which}", self.prefix)
    }

    /// The stack's interface (in ns "s").
    pub fn iface(&self) -> String {
        format!("{}s0", self.prefix)
    }

    pub fn command(&self, ns: &str, prog: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(ns), prog]);
        c
    }

    fn sh(&self, ns: &str, script: &str) {
        let ok = self
            .command(ns, "sh")
            .args(["-c", script])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "{script}");
    }

    /// The router's nftables counters: (stack packets of exactly the path
    /// MTU forwarded, ICMP "fragmentation needed" dropped).
    pub fn counters(&self) -> (u64, u64) {
        let out = self
            .command("r", "nft")
            .args(["list", "table", "ip", "pm"])
            .output()
            .expect("nft list");
        let text = String::from_utf8_lossy(&out.stdout);
        let packets = |needle: &str| {
            text.lines()
                .find(|l| l.contains(needle))
                .and_then(|l| l.split("packets ").nth(1))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        (packets("ip length"), packets("frag-needed"))
    }
}

impl Drop for RouterPath {
    fn drop(&mut self) {
        for ns in ["s", "r", "k"] {
            let ns = self.ns(ns);
            if let Ok(o) = Command::new("ip").args(["netns", "pids", &ns]).output() {
                for pid in String::from_utf8_lossy(&o.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<u32>() {
                        xdptcp::io::xdp::sys::kill(pid, libc::SIGKILL);
                    }
                }
            }
            let _ = Command::new("ip").args(["netns", "delete", &ns]).status();
        }
    }
}
