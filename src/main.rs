//! The `xdptcp` binary: see [`cli`] for the subcommands.

mod cli;

use mimalloc::MiMalloc;

#[global_allocator]
static GLOBAL: MiMalloc = MiMalloc;

fn main() {
    std::process::exit(cli::main());
}
