//! Shared helpers of the veth tests (root, AF_XDP, namespaces).
#![allow(dead_code)]

use std::process::Command;

/// Whether this process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Whether the test can run: `ok` is false when the environment lacks what
/// it needs (`why`). Under CI=true that is a failure; otherwise a loud SKIP.
pub fn require(ok: bool, test: &str, why: &str) -> bool {
    if ok {
        return true;
    }
    if std::env::var("CI").map(|v| v == "true").unwrap_or(false) {
        panic!("{test}: {why} (CI=true: this test must run)");
    }
    eprintln!("\n*** SKIP {test}: {why} ***\n");
    false
}
/// The sum of one stack counter over every worker of a `--stats-json`
/// report (`workers[].stacks[].NAME`).
pub fn stack_counter(report: &serde_json::Value, name: &str) -> u64 {
    report["workers"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|w| w["stacks"].as_array().into_iter().flatten())
        .map(|s| s[name].as_u64().unwrap_or(0))
        .sum()
}

/// The sum of one worker counter over every worker of a `--stats-json`
/// report (`workers[].NAME`); a counter missing from a worker fails.
pub fn worker_counter(report: &serde_json::Value, name: &str) -> u64 {
    report["workers"]
        .as_array()
        .expect("workers")
        .iter()
        .map(|w| w[name].as_u64().unwrap_or_else(|| panic!("no {name}: {w}")))
        .sum()
}

pub mod bulk;
pub mod netns;
pub mod router;
