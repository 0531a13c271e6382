//! `xdptcp http`: the HTTP/1.1 server on AF_XDP.

use crate::cli::datapath::{runtime_error, secs, DataPath};
use crate::cli::EXIT_USAGE;
use clap::Args;
use std::path::PathBuf;
use xdptcp::apps::http::{HttpConfig, HttpServer};
use xdptcp::runtime;

#[derive(Args, Debug)]
pub struct HttpArgs {
    /// TCP port.
    #[arg(long, default_value_t = 80)]
    pub port: u16,
    /// Serve the files under this directory (GET and HEAD).
    #[arg(long)]
    pub root: Option<PathBuf>,
    /// Close a connection idle for this many seconds.
    #[arg(long, default_value_t = 60.0)]
    pub idle_timeout: f64,
    /// Largest request body accepted (POST /echo), e.g. 16M; beyond: 413.
    #[arg(long, default_value = "16M", value_parser = crate::cli::args::parse_size)]
    pub max_body: u64,
    #[command(flatten)]
    pub mp: crate::cli::args::MptcpServerArgs,
    #[command(flatten)]
    pub dp: DataPath,
}

pub fn run(a: HttpArgs) -> i32 {
    let mut cfg = match a.dp.runtime_config() {
        Ok(c) => c,
        Err(code) => return code,
    };
    let idle_timeout = match secs("--idle-timeout", a.idle_timeout) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("xdptcp: {e}");
            return EXIT_USAGE;
        }
    };
    if let Some(root) = &a.root {
        if !root.is_dir() {
            eprintln!(
                "xdptcp: --root {}: not a directory (give the directory to serve)",
                root.display()
            );
            return EXIT_USAGE;
        }
    }
    if a.port == 0 {
        eprintln!("xdptcp: --port must be 1..65535");
        return EXIT_USAGE;
    }
    // Many short-lived connections: smaller per-connection buffers.
    cfg.tcp.snd_buf = 256 << 10;
    a.mp.apply(&mut cfg.tcp);
    let http = HttpConfig {
        port: a.port,
        root: a.root.clone(),
        idle_timeout,
        max_body: a.max_body,
    };
    let port = a.port;
    let ready = |ifaces: &[runtime::IfaceReport]| {
        for i in ifaces {
            eprintln!(
                "xdptcp: http on {} {} port {}: xdp {:?}, {} queue(s), {}, {}",
                i.name,
                i.addr,
                port,
                i.xdp_mode,
                i.queues,
                if i.zero_copy {
                    "zero-copy"
                } else {
                    "copy mode"
                },
                i.tx_checksum.describe()
            );
        }
    };
    let make = |_ctx: runtime::WorkerCtx| HttpServer::new(http.clone());
    match runtime::run(&cfg, make, &ready) {
        Ok(report) => {
            let total = report
                .workers
                .iter()
                .flat_map(|w| w.apps.iter())
                .filter_map(|v| v.get("http"))
                .fold((0u64, 0u64), |acc, h| {
                    (
                        acc.0 + h["requests"].as_u64().unwrap_or(0),
                        acc.1 + h["accepted"].as_u64().unwrap_or(0),
                    )
                });
            eprintln!(
                "xdptcp: http: {} requests on {} connections",
                total.0, total.1
            );
            a.dp.finish(&report)
        }
        Err(e) => runtime_error(&e),
    }
}
