//! Applications written against [`crate::app`].
//!
//! - [`bulk`]: verified bulk transfer (client and server), used by `xdptcp sim`.
//! - [`echo`]: an echo server, used by the simulator and `xdptcp echo`.
//! - [`stream`]: the deterministic byte stream the bulk apps send and check.

pub mod bulk;
pub mod echo;
pub mod http;
pub mod loadgen;
pub mod stream;
