//! xdptcp: a kernel-bypass TCP/IP stack on AF_XDP.
//!
//! Layering (see `design.md`):
//! - [`wire`]: checked views and parsed forms of every header we speak.
//! - [`tcp`]: the sans-IO TCP core (time is an argument, frames come from [`io`]).
//! - [`stack`]: one worker's stack: demux, ARP, ICMP, UDP, TCP tables, timers.
//! - [`app`]: the event API apps are written against.
//! - [`io`]: frames and devices: the simulator (`io::mem`) and AF_XDP (`io::xdp`).
//! - [`apps`]: echo, bulk transfer, (later) http and loadgen.

pub mod app;
pub mod app_migrate;
pub mod apps;
pub mod io;
pub mod mptcp;
pub mod runtime;
pub mod stack;
pub mod tcp;
pub mod time;
pub mod wire;
