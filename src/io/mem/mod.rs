//! The deterministic network simulator: heap frames, simulated links with
//! impairments, virtual time and a seeded RNG.
//!
//! - [`frame`]: [`HeapFrame`]s from bounded, counted [`FramePool`]s.
//! - [`audit`]: an independent checker of what goes on the wire.
//! - [`device`]: [`SimDevice`], the `Device` a stack sees.
//! - [`link`]: one direction of a link: rate, queue, delay, jitter, loss,
//!   reordering, duplication, corruption, MTU.
//! - [`net`]: the [`Network`] of N nodes and the virtual-time driver.
//! - [`node`]: a stack plus its app as a node.
//! - [`scenario`]: the bulk-transfer experiment behind `xdptcp sim`.
//! - [`bottleneck`]: an MPTCP connection and a plain TCP flow sharing one
//!   bottleneck (`xdptcp sim --shared-bottleneck`).
//! - [`trace`]: per-packet traces of a run.
//!
//! Same seed, same run: all randomness comes from seeded PCG generators and
//! every ordering decision is deterministic.

pub mod audit;
pub mod bottleneck;
pub mod device;
pub mod frame;
pub mod link;
pub mod net;
pub mod node;
pub mod scenario;
pub mod trace;

pub use device::{DeviceStats, SimDevice};
pub use frame::{FramePool, HeapFrame, PoolStats, FRAME_SIZE};
pub use link::{Link, LinkConfig, LinkStats, PathHop};
pub use net::{Limits, Network, Node, Outcome};
pub use node::{SimApp, StackNode};

use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

/// SplitMix64 finaliser: spreads a seed (or a seed and an index) over all
/// 64 bits, so neighbouring seeds give unrelated generators.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The simulator's random generator for `seed`.
pub fn rng(seed: u64) -> Pcg64Mcg {
    Pcg64Mcg::seed_from_u64(mix(seed))
}
