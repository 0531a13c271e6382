//! A harness instance (scripts/harness.sh) that is torn down on drop, and
//! entering its namespaces from a thread.

use std::process::{Command, Output};

/// `harness.sh up` with a prefix unique to this test process; `down` on drop.
pub struct Harness {
    pub prefix: String,
    pub queues: u32,
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

impl Harness {
    /// `tag` (a letter or two) keeps tests of one binary apart.
    pub fn up(tag: &str, queues: u32, extra: &[&str]) -> Harness {
        let prefix = format!("{tag}{}", std::process::id() % 100_000);
        let q = queues.to_string();
        let mut args = vec!["--queues", q.as_str()];
        args.extend_from_slice(extra);
        args.push("up");
        let out = harness(&prefix, &args);
        let h = Harness { prefix, queues };
        assert!(
            out.status.success(),
            "harness up: {}",
            String::from_utf8_lossy(&out.stderr)
        );
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
        let _ = harness(&self.prefix, &["down"]);
    }
}

/// Move the calling thread into network namespace `ns` (by name).
pub fn enter(ns: &str) {
    xdptcp::io::xdp::sys::enter_netns(&format!("/run/netns/{ns}"))
        .unwrap_or_else(|e| panic!("setns {ns}: {e}"));
}
