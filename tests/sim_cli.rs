//! The `xdptcp sim` command line: JSON fields, exit codes, argument errors.

use std::process::{Command, Output};

fn sim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdptcp"))
        .arg("sim")
        .args(args)
        .output()
        .expect("run xdptcp")
}

fn json(out: &Output) -> serde_json::Value {
    let s = String::from_utf8_lossy(&out.stdout);
    assert_eq!(s.trim().lines().count(), 1, "one JSON object: {s}");
    serde_json::from_str(s.trim()).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn json_report_has_the_contract_fields() {
    let out = sim(&[
        "--bytes", "64K", "--conns", "2", "--loss", "0.02", "--seed", "5", "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&out);
    assert_eq!(j["intact"], true);
    assert_eq!(j["bytes"], 2 * 65536);
    assert_eq!(j["conns"], 2);
    assert_eq!(j["seed"], 5);
    for f in ["virtual_ms", "goodput_mbps"] {
        assert!(j[f].as_f64().is_some_and(|v| v > 0.0), "{f}: {j}");
    }
    for f in [
        "retransmits",
        "rto_timeouts",
        "fast_recoveries",
        "dropped_corrupt",
    ] {
        assert!(j[f].as_u64().is_some(), "{f}: {j}");
    }
    assert!(j["link"]["dropped_loss"].as_u64().is_some());
    assert_eq!(j["connections"].as_array().map(|a| a.len()), Some(2));
}

#[test]
fn same_seed_same_output() {
    let args = [
        "--bytes",
        "100K",
        "--loss",
        "0.05",
        "--reorder",
        "0.1",
        "--seed",
        "9",
        "--json",
    ];
    let a = sim(&args);
    let b = sim(&args);
    assert_eq!(a.status.code(), Some(0));
    assert_eq!(a.stdout, b.stdout);
}

#[test]
fn human_summary() {
    let out = sim(&[
        "--bytes",
        "32K",
        "--cc",
        "newreno",
        "--no-sack",
        "--no-timestamps",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(
        s.contains("INTACT") && s.contains("goodput") && s.contains("NewReno"),
        "{s}"
    );
}

#[test]
fn a_stall_fails_with_a_message() {
    // Not a link losing everything: its ARP fails and the connection ends
    // as unreachable (below); a transfer outlasting the time limit.
    let out = sim(&[
        "--bytes",
        "100M",
        "--rate-mbps",
        "10",
        "--time-limit",
        "2",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(json(&out)["intact"], false);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("transfer failed") && e.contains("stalled"),
        "{e}"
    );
}

#[test]
fn a_link_losing_everything_fails_as_unreachable() {
    // The SYN never leaves: ARP gets no answer, and the connection still
    // opening ends as unreachable (Linux: EHOSTUNREACH) within seconds.
    let out = sim(&["--bytes", "10K", "--loss", "1", "--time-limit", "20"]);
    assert_eq!(out.status.code(), Some(1));
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(s.contains("client unreachable"), "{s}");
}

#[test]
fn bad_arguments_exit_2_with_one_line() {
    let cases: &[&[&str]] = &[
        &["--loss", "1.5"],
        &["--reorder", "-0.1"],
        &["--dup", "x"],
        &["--corrupt", "2"],
        &["--ce", "1.5"],
        &["--ce-queue", "x"],
        &["--mtu", "0"],
        &["--mtu", "100"],
        &["--mtu", "65000"],
        &["--rate-mbps", "0"],
        &["--cc", "vegas"],
        &["--conns", "0"],
        &["--conns", "100000"],
        &["--bytes", "lots"],
        &["--bytes", "12Q"],
        &["--delay-ms", "-3"],
        &["--frobnicate"],
        &["--seed", "-1"],
        &["--paths", "2"],
        &["--mptcp", "--paths", "0"],
        &["--mptcp", "--paths", "9"],
        &["--mptcp", "--paths", "2", "--path", "10,5"],
        &["--mptcp", "--path", "10"],
        &["--mptcp", "--path", "10,5,2"],
        &["--mptcp", "--path", "10,5", "--path-down", "3@100"],
        &["--mptcp", "--path", "10,5", "--path-down", "2"],
        &["--mptcp", "--server-addrs", "per-path"],
        &["--mptcp", "--paths", "2", "--server-addrs", "many"],
    ];
    for args in cases {
        let out = sim(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(e.trim().lines().count(), 1, "{args:?}: {e}");
    }
    // No subcommand at all is a usage error too.
    let out = Command::new(env!("CARGO_BIN_EXE_xdptcp")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// `--scheduler` and `--mptcp-cc` on every app command and `sim`: a bad name, or
/// either without `--mptcp`, is one line and exit 2. Parsed before
/// anything touches an interface: no root needed.
/// `--rcv-buf-max` beyond 64M on an AF_XDP app: one line, exit 2,
/// before any interface is touched.
#[test]
fn rcv_buf_max_beyond_its_limit_is_one_line_exit_2() {
    for bad in ["1G", "65M", "lots"] {
        let out = Command::new(env!("CARGO_BIN_EXE_xdptcp"))
            .args(["echo", "--iface", "x=198.18.0.2/24", "--rcv-buf-max", bad])
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{bad}: {e}");
        assert_eq!(e.trim().lines().count(), 1, "{bad}: {e}");
        assert!(e.contains("--rcv-buf-max"), "{bad}: {e}");
    }
}

#[test]
fn bad_mptcp_scheduler_or_cc_is_one_line_exit_2() {
    let apps: [&[&str]; 4] = [
        &["echo", "--iface", "x=198.18.0.2/24"],
        &["http", "--iface", "x=198.18.0.2/24"],
        &[
            "loadgen",
            "--iface",
            "x=198.18.0.1/24",
            "--target",
            "198.18.0.2:80",
        ],
        &["sim"],
    ];
    let cases: [(&[&str], &[&str]); 4] = [
        (
            &["--mptcp", "--scheduler", "fastest"],
            &["fastest", "minrtt, roundrobin, redundant"],
        ),
        (
            &["--mptcp", "--mptcp-cc", "olia"],
            &["olia", "uncoupled, lia"],
        ),
        (&["--scheduler", "roundrobin"], &["--mptcp"]),
        (&["--mptcp-cc", "lia"], &["--mptcp"]),
    ];
    for app in apps {
        for (args, says) in cases {
            let out = Command::new(env!("CARGO_BIN_EXE_xdptcp"))
                .args(app)
                .args(args)
                .output()
                .unwrap();
            let e = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{app:?} {args:?}: {e}");
            assert_eq!(e.trim().lines().count(), 1, "{app:?} {args:?}: {e}");
            for w in says {
                assert!(e.contains(w), "{app:?} {args:?}: {e}");
            }
        }
    }
}

#[test]
fn shared_bottleneck_reports_both_flows() {
    let out = sim(&[
        "--mptcp",
        "--shared-bottleneck",
        "5",
        "--rate-mbps",
        "10",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let j = json(&out);
    let (m, p) = (
        j["mptcp_mbps"].as_f64().unwrap(),
        j["plain_mbps"].as_f64().unwrap(),
    );
    assert!(m > 1.0 && p > 1.0, "{j}");
    assert!(j["error"].is_null(), "{j}");
    // Without --mptcp, or with paths of its own: a usage error.
    for args in [
        &["--shared-bottleneck", "5"][..],
        &["--mptcp", "--shared-bottleneck", "5", "--paths", "2"],
        &["--mptcp", "--shared-bottleneck", "1"],
    ] {
        let out = sim(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim().lines().count(),
            1
        );
    }
}

/// `--server-addrs per-path`: the server announces its second address,
/// the client joins it; the JSON has the `addresses` counters and the
/// reproducing command line keeps the flag.
#[test]
fn per_path_server_addresses_are_announced_and_joined() {
    let out = sim(&[
        "--mptcp",
        "--paths",
        "2",
        "--bytes",
        "256K",
        "--server-addrs",
        "per-path",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let j = json(&out);
    let a = &j["addresses"];
    assert_eq!(a["add_addr_sent"], 1, "{a}");
    assert_eq!(a["add_addr_received"], 1, "{a}");
    assert_eq!(a["joins_to_announced"], 1, "{a}");
    assert_eq!(a["subflows_opened"], 1, "{a}");
    assert_eq!(j["params"]["server_addrs"], "per-path");
}
