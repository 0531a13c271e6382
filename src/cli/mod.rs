//! The command line: one file per subcommand.
//!
//! Exit codes: 0 success, 1 the command ran and failed (e.g. a transfer was
//! not intact), 2 bad arguments.

pub mod args;
pub mod datapath;
pub mod echo;
pub mod http;
pub mod loadgen;
pub mod sim;
pub mod swarm;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "xdptcp",
    version,
    about = "Kernel-bypass TCP/IP stack on AF_XDP"
)]
pub struct Cli {
    #[command(subcommand)]
    pub cmd: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Bulk transfer between two stacks over a simulated, impaired link,
    /// every byte verified (deterministic: same seed, same run).
    Sim(sim::SimArgs),
    /// Swarm testing: many random simulator runs from one master seed,
    /// invariants checked on each, failures printed as `xdptcp sim` lines.
    Swarm(swarm::SwarmArgs),
    /// Echo server on AF_XDP: TCP (and UDP with --udp) on the stack's own
    /// address, the XDP program steering exactly its packets.
    Echo(echo::EchoArgs),
    /// HTTP/1.1 server on AF_XDP: GET /, GET /bytes/N, POST /echo, and
    /// files under --root.
    Http(http::HttpArgs),
    /// Load generator on AF_XDP: echo, HTTP, bulk or connection-rate load
    /// against any server, latency in HdrHistogram.
    Loadgen(loadgen::LoadgenArgs),
}

/// Exit code for bad arguments.
pub const EXIT_USAGE: i32 = 2;

/// Parse the command line and run; returns the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return 0;
            }
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                let _ = e.print();
                return EXIT_USAGE;
            }
            // One line: clap's first line plus where to look.
            let msg = e.to_string();
            let first = msg.lines().next().unwrap_or("invalid arguments");
            let hint = msg
                .lines()
                .map(str::trim)
                .find(|l| l.starts_with("[possible values"));
            let mut hint = hint.map(|h| format!(" {h}")).unwrap_or_default();
            // A missing argument (`--scheduler` without `--mptcp`): say
            // which, from clap's indented list.
            if e.kind() == ErrorKind::MissingRequiredArgument {
                let missing: Vec<&str> = msg
                    .lines()
                    .skip(1)
                    .map(str::trim)
                    .take_while(|l| l.starts_with('-') || l.starts_with('<'))
                    .collect();
                if !missing.is_empty() {
                    hint = format!(" {}", missing.join(", "));
                }
            }
            eprintln!(
                "xdptcp: {}{hint} (see --help)",
                first.trim_start_matches("error: ")
            );
            return EXIT_USAGE;
        }
    };
    match cli.cmd {
        Command::Sim(a) => sim::run(a),
        Command::Swarm(a) => swarm::run(a),
        Command::Echo(a) => echo::run(a),
        Command::Http(a) => http::run(a),
        Command::Loadgen(a) => loadgen::run(a),
    }
}
