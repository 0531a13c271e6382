//! A harness instance (scripts/harness.sh) that is torn down on drop, and
//! entering its namespaces from a thread.

use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// `harness.sh up` with a prefix unique to this harness (see
/// [`Harness::up`]); `down` on drop.
/// With `XDPTCP_PCAP_DIR` set, everything the kernel side sends and
/// receives is captured to `DIR/PREFIX.pcap` (tcpdump, headers only) for
/// a failure to be read afterwards.
pub struct Harness {
    pub prefix: String,
    pub queues: u32,
    capture: Option<Child>,
}

fn harness(prefix: &str, args: &[&str]) -> Output {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/harness.sh");
    Command::new("bash")
        .arg(script)
        .args(["--prefix", prefix])
        .args(args)
        .output()
        .expect("running scripts/harness.sh")
}

/// Harnesses made by this process so far (each gets its own prefix).
static HARNESSES: AtomicU32 = AtomicU32::new(0);

/// `n` in base 36, at least `width` digits (lower case).
fn base36(mut n: u32, width: usize) -> String {
    let mut d = Vec::new();
    while n > 0 || d.len() < width {
        d.push(char::from_digit(n % 36, 36).unwrap_or('0'));
        n /= 36;
    }
    d.iter().rev().collect()
}

impl Harness {
    /// `tag` (one or two letters) names the test in the prefix. The prefix
    /// is unique to this harness: the whole process id (so that test
    /// binaries running at once stay apart) and a count of this process's
    /// harnesses (tests of one binary run in parallel, and some share a
    /// tag or a helper: with the tag and process id only, two of them
    /// used the same namespaces, and the first to finish removed them
    /// under the other).
    pub fn up(tag: &str, queues: u32, extra: &[&str]) -> Harness {
        assert!(
            (1..=2).contains(&tag.len()),
            "harness tag {tag:?}: one or two letters (the prefix has 9 characters at most)"
        );
        let n = HARNESSES.fetch_add(1, Ordering::Relaxed);
        // Process ids are below 2^22 (pid_max): 5 base-36 digits.
        let prefix = format!(
            "{tag}{}{}",
            base36(std::process::id(), 5),
            base36(n % 1296, 2)
        );
        let q = queues.to_string();
        let mut args = vec!["--queues", q.as_str()];
        args.extend_from_slice(extra);
        args.push("up");
        let out = harness(&prefix, &args);
        let mut h = Harness {
            prefix,
            queues,
            capture: None,
        };
        assert!(
            out.status.success(),
            "harness up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Ok(dir) = std::env::var("XDPTCP_PCAP_DIR") {
            let file = format!("{dir}/{}.pcap", h.prefix);
            let child = h
                .command("k", "tcpdump")
                .args(["-i", "any", "-s", "160", "-U", "-w", &file])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .expect("tcpdump (XDPTCP_PCAP_DIR is set)");
            h.capture = Some(child);
            // tcpdump needs a moment before it captures.
            std::thread::sleep(Duration::from_millis(300));
        }
        h
    }
    pub fn nsk(&self) -> String {
        format!("{}k", self.prefix)
    }
    pub fn nss(&self) -> String {
        format!("{}s", self.prefix)
    }
    /// The stack's interface (in ns `nss`).
    pub fn iface(&self) -> String {
        format!("{}s0", self.prefix)
    }
    /// Run a command in namespace `ns` ("k" or "s") and wait for it.
    pub fn run(&self, ns: &str, cmd: &[&str]) -> Output {
        let mut args = vec!["exec", ns];
        args.extend_from_slice(cmd);
        harness(&self.prefix, &args)
    }
    /// A `Command` that runs in namespace `ns` ("k" or "s").
    pub fn command(&self, ns: &str, prog: &str) -> Command {
        let name = if ns == "k" { self.nsk() } else { self.nss() };
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &name, prog]);
        c
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(c) = self.capture.take() {
            let _ = stop(c);
        }
        let _ = harness(&self.prefix, &["down"]);
    }
}

/// Move the calling thread into network namespace `ns` (by name).
pub fn enter(ns: &str) {
    xdptcp::io::xdp::sys::enter_netns(&format!("/run/netns/{ns}"))
        .unwrap_or_else(|e| panic!("setns {ns}: {e}"));
}

/// Whether a kernel TCP client in namespace `ns` can connect to `addr`
/// within 20 s (the server under test is listening).
pub fn wait_listening(ns: &str, addr: &str) -> bool {
    let ns = ns.to_string();
    let addr: SocketAddr = addr.parse().expect("a socket address");
    std::thread::spawn(move || {
        enter(&ns);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    })
    .join()
    .unwrap()
}

/// SIGINT to `child`, a bounded wait (then SIGKILL), and its exit code
/// (-1 if killed by a signal) and stderr.
pub fn stop(mut child: Child) -> (i32, String) {
    xdptcp::io::xdp::sys::kill(child.id(), libc::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    (status.code().unwrap_or(-1), err)
}
