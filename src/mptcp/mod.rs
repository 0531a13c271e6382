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
//!   data sequence space, DATA_FIN.
//! - [`join`]: the MP_JOIN handshake of an extra subflow, either side.
//! - [`announce`]: the addresses we announce (ADD_ADDR, until echoed) and
//!   withdraw (REMOVE_ADDR).
//! - [`pm`]: the path manager of a connection we opened: which subflows
//!   to open (full mesh).
//! - [`rxmap`]: the peer's DSS mappings on one subflow, until its in-order
//!   data has been mapped onto the data sequence space.
//! - [`rxcsum`]: the DSS checksum of the peer's mappings, verified as
//!   their segments arrive.
//! - [`txmap`]: our mappings on one subflow (its bytes' DSNs).
//! - [`sched`]: which subflow sends the next chunk (minrtt, roundrobin,
//!   redundant, behind one trait).

pub mod announce;
pub mod crypto;
pub mod join;
pub mod pm;
pub mod rxcsum;
pub mod rxmap;
pub mod sched;
pub mod session;
pub mod txmap;

pub use announce::Announcer;
pub use crypto::{Key, KeySource};
pub use join::{Join, JoinPhase, JoinReject, JoinSyn};
pub use pm::{LocalAddr, PathManager, RemoteAddr};
pub use rxmap::{MapError, RxDsn, RxMapping, RxMaps};
pub use session::{FallbackReason, Phase, Role, RxVerdict, Session};
