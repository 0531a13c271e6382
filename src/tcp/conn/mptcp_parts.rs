//! The MPTCP part of a subflow's TCB (RFC 8684): the connection-level
//! session, join state, receive and send across subflows, and coupled
//! congestion control (RFC 6356). All `None` on a plain TCP connection.

use super::{mptcp_rx::MpRx, mptcp_tx::MetaTx, mptcp_tx::MpTx};
use crate::io::Frame;

/// MPTCP state of one subflow (and, on the first, of the connection).
pub(super) struct MptcpParts<F: Frame> {
    /// RFC 8684: the connection-level state when MPTCP was asked for or
    /// offered; `None` for plain TCP. Boxed: most connections are plain.
    pub session: Option<Box<crate::mptcp::Session>>,
    /// RFC 8684 §3.2: this is an extra subflow the peer joined to one of
    /// our connections; `None` otherwise. Boxed as `session`.
    pub join: Option<Box<crate::mptcp::Join>>,
    /// Receive across subflows (RFC 8684 §3.3): this subflow's mappings,
    /// and on the first subflow the connection-level queue by DSN that
    /// the application reads. `None` for plain TCP.
    pub rx: Option<Box<MpRx<F>>>,
    /// With `MptcpCc::Lia` (RFC 6356): the connection's coupled subflows
    /// (created by the first subflow, given to joined ones).
    pub lia: Option<std::sync::Arc<crate::tcp::cc::lia::LiaGroup>>,
    /// Send across subflows (RFC 8684 §3.3): this subflow's mappings of
    /// our data, and on the first subflow the connection's send queue and
    /// scheduler. `None`: plain TCP, or our data one to one on the first
    /// subflow.
    pub tx: Option<Box<MpTx<F>>>,
    /// RFC 8684 §3.3.6: this first subflow died (reset, timed out, or its
    /// path gone) while a joined subflow lives, so the TCB only holds the
    /// connection-level state the application uses: it sends nothing,
    /// runs no timer and takes no segment (`mptcp_tx`).
    pub meta_only: bool,
    /// On the first subflow, once a joined subflow in another stack of
    /// the worker or in another worker reads it: where the data level is
    /// published (`mptcp_level`). It moves with the TCB.
    pub level: Option<std::sync::Arc<super::mptcp_level::LevelCell>>,
}

impl<F: Frame> Default for MptcpParts<F> {
    fn default() -> Self {
        MptcpParts {
            session: None,
            join: None,
            rx: None,
            lia: None,
            tx: None,
            meta_only: false,
            level: None,
        }
    }
}

impl<F: Frame> MptcpParts<F> {
    /// On the first subflow: the connection's send queue and scheduler
    /// (`mptcp_tx`); `None` elsewhere.
    pub fn meta_tx_mut(&mut self) -> Option<&mut MetaTx<F>> {
        self.tx.as_deref_mut().and_then(|t| t.meta.as_deref_mut())
    }
}
