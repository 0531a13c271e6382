//! The loss-recovery part of the TCB: RTT and RTO (RFC 6298), congestion
//! control (RFC 5681, 9438), fast recovery (RFC 6582, 6675, PRR of RFC
//! 6937), D-SACK (RFC 2883), tail loss probes (RFC 8985 §7) and the
//! sender's ECN reaction (RFC 3168 §6.1.2).

use super::{dsack::Dsack, prr::Prr};
use crate::tcp::cc;
use crate::tcp::rtt::RttEstimator;
use crate::tcp::{Config, SeqNumber};

/// Loss recovery phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Recovery {
    Open,
    /// Fast recovery (RFC 6675 §5 / RFC 6582) until `point` is acked.
    Fast {
        point: SeqNumber,
    },
    /// After an RTO, until `point` is acked (RFC 6675 §5.1).
    Loss {
        point: SeqNumber,
    },
}

/// What the sender knows about the path's delay and losses.
pub(super) struct LossRecovery {
    pub rtt: RttEstimator,
    pub cc: cc::Controller,
    pub recovery: Recovery,
    /// RFC 6582 "recover": at most one window reduction per window of data.
    pub recover: SeqNumber,
    pub dupacks: u32,
    /// Retransmit the first lost segment even if the window is full (entry
    /// into recovery, NewReno partial ACK, RTO).
    pub rexmit_head: bool,
    /// RFC 6937 state of the current fast recovery.
    pub prr: Prr,
    /// D-SACK evidence of spurious retransmissions.
    pub dsack: Dsack,
    /// Our TSval when the first RTO of the episode fired (Eifel detection).
    pub rto_tsval: Option<u32>,
    /// Consecutive RTO expirations without progress.
    pub rtx_count: u32,
    /// SND.NXT when the outstanding tail loss probe was sent.
    pub tlp_high: Option<SeqNumber>,
    pub tlp_pending: bool,
    /// RFC 3168 §6.1.2: set CWR on the next new data segment.
    pub cwr_pending: bool,
    /// RFC 3168 §6.1.2: at most one reaction to ECE per window of data.
    pub ecn_recover: SeqNumber,
}

impl LossRecovery {
    pub(super) fn new(cfg: &Config, iss: SeqNumber, mss: usize) -> Self {
        LossRecovery {
            rtt: RttEstimator::new(cfg.rto_initial, cfg.rto_min, cfg.rto_max),
            cc: cc::new(cfg.cc, mss, cfg.initial_window),
            recovery: Recovery::Open,
            recover: iss,
            dupacks: 0,
            rexmit_head: false,
            prr: Prr::default(),
            dsack: Dsack::default(),
            rto_tsval: None,
            rtx_count: 0,
            tlp_high: None,
            tlp_pending: false,
            cwr_pending: false,
            ecn_recover: iss,
        }
    }
}

impl LossRecovery {
    /// RFC 5681 §3.2 / RFC 6675 §5: count a duplicate ACK; an ACK of new
    /// data outside recovery resets the count.
    #[inline]
    pub(super) fn count_dupack(&mut self, is_dupack: bool, acked: usize) {
        if is_dupack {
            self.dupacks += 1;
        } else if acked > 0 && self.recovery == Recovery::Open {
            self.dupacks = 0;
        }
    }

    /// In fast recovery (RFC 6675 §5, RFC 6582).
    #[inline]
    pub(super) fn in_fast_recovery(&self) -> bool {
        matches!(self.recovery, Recovery::Fast { .. })
    }
}
