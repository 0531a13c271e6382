//! `xdptcp echo`: the echo server on AF_XDP (TCP, and UDP with `--udp`).

use crate::cli::datapath::{runtime_error, DataPath};
use clap::Args;
use xdptcp::app::{App, Event};
use xdptcp::apps::echo::EchoServer;
use xdptcp::io::xdp::XdpDevice;
use xdptcp::runtime::{self, RuntimeApp};
use xdptcp::stack::{ConnId, Stack};
use xdptcp::time::Instant;

#[derive(Args, Debug)]
pub struct EchoArgs {
    /// TCP (and UDP) port.
    #[arg(long, default_value_t = 7)]
    pub port: u16,
    /// Also echo UDP datagrams on the port.
    #[arg(long)]
    pub udp: bool,
    #[command(flatten)]
    pub mp: crate::cli::args::MptcpServerArgs,
    #[command(flatten)]
    pub dp: DataPath,
}

/// The TCP echo server plus a UDP echo on the same port.
struct EchoApp {
    tcp: EchoServer,
    udp_port: Option<u16>,
    udp_bound: bool,
    udp_echoed: u64,
    /// Reassembled datagrams are gathered here to be echoed.
    scratch: Vec<u8>,
}

impl App<XdpDevice> for EchoApp {
    fn on_event(&mut self, stack: &mut Stack<XdpDevice>, now: Instant, ev: Event) {
        match ev {
            Event::UdpReadable { port } if Some(port) == self.udp_port => {
                while let Some((src, d)) = stack.udp_recv(port) {
                    // A datagram that came in fragments is gathered into
                    // one buffer (reused) to be sent back, in fragments.
                    let data = match d.contiguous() {
                        Some(b) => b,
                        None => {
                            self.scratch.clear();
                            d.copy_to(&mut self.scratch);
                            &self.scratch
                        }
                    };
                    if stack.udp_send(port, src, data).is_ok() {
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

    fn export(&mut self, id: ConnId) -> Option<Box<dyn std::any::Any + Send>> {
        App::<XdpDevice>::export(&mut self.tcp, id)
    }

    fn import(
        &mut self,
        stack: &mut Stack<XdpDevice>,
        now: Instant,
        id: ConnId,
        state: Box<dyn std::any::Any + Send>,
    ) -> Result<(), Box<dyn std::any::Any + Send>> {
        self.tcp.import(stack, now, id, state)
    }
}

impl RuntimeApp for EchoApp {
    fn stats_json(&self) -> serde_json::Value {
        serde_json::json!({ "tcp": self.tcp.stats, "udp_echoed": self.udp_echoed, "live": self.tcp.live() })
    }
}

pub fn run(a: EchoArgs) -> i32 {
    let mut cfg = match a.dp.runtime_config() {
        Ok(c) => c,
        Err(code) => return code,
    };
    a.mp.apply(&mut cfg.tcp);
    let port = a.port;
    let udp = a.udp;
    let mptcp = a.mp.mptcp;
    let ready = |ifaces: &[runtime::IfaceReport]| {
        for i in ifaces {
            eprintln!(
                "xdptcp: echo on {} {} port {}{}{}: xdp {:?}, {} queue(s), {}, {}",
                i.name,
                i.addr,
                port,
                if udp { " (tcp+udp)" } else { "" },
                if mptcp { " (mptcp)" } else { "" },
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
    let make = |ctx: runtime::WorkerCtx| EchoApp {
        tcp: EchoServer::with_capacity(port, cfg.conns_prealloc_per_worker(ctx.workers)),
        udp_port: udp.then_some(port),
        udp_bound: false,
        udp_echoed: 0,
        scratch: Vec::new(),
    };
    match runtime::run(&cfg, make, &ready) {
        Ok(report) => a.dp.finish(&report),
        Err(e) => runtime_error(&e),
    }
}
