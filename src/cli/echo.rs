//! `xdptcp echo`: the echo server on AF_XDP (TCP, and UDP with `--udp`).

use crate::cli::EXIT_USAGE;
use clap::Args;
use std::path::PathBuf;
use xdptcp::app::{App, Event};
use xdptcp::apps::echo::EchoServer;
use xdptcp::io::xdp::{XdpDevice, XdpMode, ZeroCopy};
use xdptcp::runtime::{self, IfaceSpec, RunReport, RuntimeApp, RuntimeConfig};
use xdptcp::stack::Stack;
use xdptcp::time::Instant;

#[derive(Args, Debug)]
pub struct EchoArgs {
    /// Interface and the address xdptcp owns on it: NAME=IPV4/PREFIX (repeatable).
    #[arg(long = "iface", required = true, value_parser = parse_iface)]
    pub ifaces: Vec<IfaceSpec>,
    /// TCP (and UDP) port.
    #[arg(long, default_value_t = 7)]
    pub port: u16,
    /// Also echo UDP datagrams on the port.
    #[arg(long)]
    pub udp: bool,
    /// Queues (= worker threads); default: all queues of the interface.
    #[arg(long)]
    pub queues: Option<u32>,
    /// CPU cores for the workers, e.g. 0,1 or 0-3.
    #[arg(long, value_parser = parse_cores)]
    pub cores: Option<CoreList>,
    /// XDP attach mode.
    #[arg(long, default_value = "auto", value_parser = ["auto", "native", "generic"])]
    pub xdp_mode: String,
    /// AF_XDP zero-copy.
    #[arg(long, default_value = "auto", value_parser = ["auto", "on", "off"])]
    pub zero_copy: String,
    /// Stop after this many seconds (default: at SIGINT/SIGTERM).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Write the counters as JSON to this file on exit.
    #[arg(long)]
    pub stats_json: Option<PathBuf>,
    /// Write the stack's own traffic to this pcap file.
    #[arg(long)]
    pub pcap: Option<PathBuf>,
}

/// `--cores` as parsed.
#[derive(Debug, Clone)]
pub struct CoreList(pub Vec<usize>);

fn parse_iface(s: &str) -> Result<IfaceSpec, String> {
    s.parse()
}

fn parse_cores(s: &str) -> Result<CoreList, String> {
    let mut out = Vec::new();
    for part in s.split(',') {
        let bad = || format!("--cores {s:?}: expected a list like 0,1 or 0-3");
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b || b - a > 1024 {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err(format!("--cores {s:?}: empty"));
    }
    Ok(CoreList(out))
}

/// The TCP echo server plus a UDP echo on the same port.
struct EchoApp {
    tcp: EchoServer,
    udp_port: Option<u16>,
    udp_bound: bool,
    udp_echoed: u64,
}

impl App<XdpDevice> for EchoApp {
    fn on_event(&mut self, stack: &mut Stack<XdpDevice>, now: Instant, ev: Event) {
        match ev {
            Event::UdpReadable { port } if Some(port) == self.udp_port => {
                while let Some((src, pkt)) = stack.udp_recv(port) {
                    if stack.udp_send(port, src, pkt.data()).is_ok() {
                        self.udp_echoed += 1;
                    }
                }
            }
            _ => self.tcp.on_event(stack, now, ev),
        }
    }

    fn on_poll(&mut self, stack: &mut Stack<XdpDevice>, now: Instant) {
        if let (Some(port), false) = (self.udp_port, self.udp_bound) {
            self.udp_bound = true;
            if let Err(e) = stack.udp_bind(port) {
                eprintln!("xdptcp: udp bind {port}: {e:?}");
            }
        }
        App::<XdpDevice>::on_poll(&mut self.tcp, stack, now);
    }
}

impl RuntimeApp for EchoApp {
    fn stats_json(&self) -> serde_json::Value {
        serde_json::json!({ "tcp": self.tcp.stats, "udp_echoed": self.udp_echoed, "live": self.tcp.live() })
    }
}

fn print_report(r: &RunReport) {
    for i in &r.ifaces {
        eprintln!(
            "xdptcp: {} {}: xdp redirected {} passed {} malformed {} no_socket {}",
            i.name, i.addr, i.xdp.redirected, i.xdp.passed, i.xdp.malformed, i.xdp.no_socket
        );
    }
    for w in &r.workers {
        let s = w.stacks.iter().fold((0, 0, 0, 0), |a, s| {
            (
                a.0 + s.rx_packets,
                a.1 + s.tx_packets,
                a.2 + s.conns_opened,
                a.3 + s.retransmits,
            )
        });
        eprintln!(
            "xdptcp: worker {} (queue {}, core {:?}): rx {} pkts {} B, handoff out {} in {} dropped {}, stack rx {} tx {} conns {} rexmit {}",
            w.worker, w.queue, w.core, w.rx_packets, w.rx_bytes, w.handoff_out, w.handoff_in, w.handoff_dropped,
            s.0, s.1, s.2, s.3
        );
    }
    if r.pcap_written + r.pcap_dropped > 0 {
        eprintln!(
            "xdptcp: pcap: {} packets written, {} dropped",
            r.pcap_written, r.pcap_dropped
        );
    }
}

pub fn run(a: EchoArgs) -> i32 {
    let cfg = RuntimeConfig {
        ifaces: a.ifaces.clone(),
        queues: a.queues,
        cores: a.cores.map(|c| c.0),
        xdp_mode: a.xdp_mode.parse::<XdpMode>().unwrap_or_default(),
        zero_copy: a.zero_copy.parse::<ZeroCopy>().unwrap_or_default(),
        duration: match a.duration {
            Some(d) if d.is_finite() && d > 0.0 => Some(std::time::Duration::from_secs_f64(d)),
            Some(_) => {
                eprintln!("xdptcp: --duration must be a positive number of seconds");
                return EXIT_USAGE;
            }
            None => None,
        },
        pcap: a.pcap.clone(),
        ..RuntimeConfig::default()
    };
    let port = a.port;
    let udp = a.udp;
    let ready = |ifaces: &[runtime::IfaceReport]| {
        for i in ifaces {
            eprintln!(
                "xdptcp: echo on {} {} port {}{}: xdp {:?}, {} queue(s), {}",
                i.name,
                i.addr,
                port,
                if udp { " (tcp+udp)" } else { "" },
                i.xdp_mode,
                i.queues,
                if i.zero_copy {
                    "zero-copy"
                } else {
                    "copy mode"
                }
            );
        }
    };
    let make = |_ctx: runtime::WorkerCtx| EchoApp {
        tcp: EchoServer::new(port),
        udp_port: udp.then_some(port),
        udp_bound: false,
        udp_echoed: 0,
    };
    match runtime::run(&cfg, make, &ready) {
        Ok(report) => {
            print_report(&report);
            if let Some(path) = &a.stats_json {
                let json = serde_json::to_string_pretty(&report).unwrap_or_default();
                if let Err(e) = std::fs::write(path, json) {
                    eprintln!("xdptcp: --stats-json {}: {e}", path.display());
                    return 1;
                }
            }
            0
        }
        Err(e) => {
            eprintln!("xdptcp: {e}");
            if e.kind.is_user_error() {
                EXIT_USAGE
            } else {
                1
            }
        }
    }
}
