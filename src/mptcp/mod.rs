//! Multipath TCP v1 (RFC 8684).
//!
//! Subflows are TCP connections of the existing core ([`crate::tcp`]); the
//! MPTCP layer above them holds the connection-level ("meta") state: the
//! keys and tokens, the data sequence space and its mappings, DATA_ACK and
//! DATA_FIN.
//!
//! - [`crypto`]: keys, token, IDSN, the MP_JOIN and ADD_ADDR HMACs, the DSS
//!   checksum.
//! - [`session`]: the connection-level state: negotiation and fallback, the
//!   data sequence space (one subflow, mapped one to one), DATA_FIN.

pub mod crypto;
pub mod session;

pub use crypto::{Key, KeySource};
pub use session::{FallbackReason, Phase, Role, RxVerdict, Session};
