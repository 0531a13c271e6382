//! A worker's counters (`--stats-json`), and the peeks at a TCP frame
//! they need.

use crate::io::xdp::{DeviceCounters, XdpDevice};
use crate::stack::{Stack, StackCounters};

/// Counters of one worker.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct WorkerStats {
    pub worker: usize,
    pub queue: u32,
    pub core: Option<usize>,
    /// Packets received (the devices' `rx_packets`).
    pub rx_packets: u64,
    /// Frames handed on from them: more than the packets with
    /// `--rx-multibuf`, which makes one segment per buffer.
    pub rx_frames: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// Frames of flows owned by another worker, passed on (frame handles).
    pub handoff_out: u64,
    /// The same, per interface (in `--iface` order).
    pub handoff_out_by_iface: Vec<u64>,
    /// Frames received from other workers.
    pub handoff_in: u64,
    /// Hand-offs lost because the owner's inbox was full.
    pub handoff_dropped: u64,
    /// TCP segments of flows no worker knew (new connections, strays of
    /// closed ones): run here, where they arrived.
    pub flows_unknown: u64,
    /// Those segments by kind: only SYNs are new flows (issue 8).
    pub flows_unknown_kinds: UnknownKinds,
    /// Flows opened here that found no room in the flow directory (their
    /// strays then stay where they arrive).
    pub directory_full: u64,
    /// ARP frames copied to the other workers.
    pub arp_copies: u64,
    /// MPTCP subflows run here whose connection another worker holds
    /// (RFC 8684 §3.2 joins whose token is there: the subflow is owned
    /// where its packets arrive; `stack::mptcp_remote`).
    pub mptcp_subflows_owned: u64,
    /// Bytes those subflows received, handed to the connections' workers
    /// (frames, not copies).
    pub mptcp_bytes_for_other_workers: u64,
    /// Bytes of those connections' data those subflows took to send
    /// (frames the connections' workers filled).
    pub mptcp_bytes_sent_for_other_workers: u64,
    /// MPTCP messages sent to and received from other workers.
    pub mptcp_msgs_out: u64,
    pub mptcp_msgs_in: u64,
    /// MPTCP subflows (`stack::Migrant`) and TCP or MPTCP connections
    /// (`app_migrate::ConnMove`; an MPTCP one with its connection level
    /// and token) moved to the worker where their packets arrive: from
    /// here (the inbox was not full: else they stay) and to here.
    pub flows_migrated_out: u64,
    pub flows_migrated_in: u64,
    /// Of `flows_migrated_in`, those installed after the loop ended: on
    /// their way when the run stopped (then reset with the rest).
    pub flows_migrated_in_at_stop: u64,
    /// Moves that arrived here and could not be installed (their flow
    /// here already, no room, the app refused): sent back to the worker
    /// they came from.
    pub flows_migration_refused: u64,
    /// Moves from here that came back so (installed here again).
    pub flows_migration_returned: u64,
    /// Loops a refused move waited for room in its old worker's inbox.
    pub flows_return_retries: u64,
    /// Moves lost: refused twice (there and back), or their old worker's
    /// inbox full for `RETURN_FOR`.
    pub flows_migration_dropped: u64,
    /// Segments of flows moved away that still reached this worker,
    /// forwarded to the new owner.
    pub flows_forwarded: u64,
    /// Tokens drawn here that found no room in the token directory (joins
    /// for them arriving on other workers' queues are refused).
    pub token_directory_full: u64,
    /// Tokens drawn here that another worker's stack holds too (tokens
    /// are unique per stack; its joins go to that worker, whose HMAC
    /// check refuses them).
    pub token_conflicts: u64,
    /// Interfaces seen losing their carrier (their addresses withdrawn
    /// from MPTCP connections) and getting it back.
    pub links_down: u64,
    pub links_up: u64,
    /// Connections still in SYN-SENT when the run stopped (aborted: their
    /// SYN/ACKs are answered during the stop's drain, `stop::answer_late`).
    pub stop_syn_sent: u64,
    /// SYN/ACKs of no connection answered (a reset) during that drain.
    pub stop_synacks_answered: u64,
    /// Milliseconds the drain lasted.
    pub stop_drain_ms: u64,
    pub loops: u64,
    pub sleeps: u64,
    pub stacks: Vec<StackCounters>,
    pub devices: Vec<DeviceCounters>,
    /// The kernel's view of each socket (XDP_STATISTICS).
    pub xsk: Vec<XskStats>,
    pub apps: Vec<serde_json::Value>,
}

/// TCP segments of flows no worker knew, by their flags: a SYN opens a
/// flow; the rest are strays of flows that ended (or that no one
/// recorded), answered per RFC 9293 §3.10.7.1 (a reset, unless they are
/// one).
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct UnknownKinds {
    pub syn: u64,
    pub syn_ack: u64,
    pub rst: u64,
    pub fin: u64,
    /// With payload (no SYN, RST or FIN).
    pub data: u64,
    /// Pure ACKs.
    pub ack: u64,
}

impl UnknownKinds {
    pub(super) fn count(&mut self, pkt: &[u8]) {
        let f = tcp_flags(pkt);
        let (syn, ack, rst, fin) = (f & 0x02 != 0, f & 0x10 != 0, f & 0x04 != 0, f & 0x01 != 0);
        let c = if syn && ack {
            &mut self.syn_ack
        } else if syn {
            &mut self.syn
        } else if rst {
            &mut self.rst
        } else if fin {
            &mut self.fin
        } else if tcp_payload_len(pkt) > 0 {
            &mut self.data
        } else {
            &mut self.ack
        };
        *c += 1;
    }
}

/// The TCP payload length of a frame `classify` found TCP (0 if short).
fn tcp_payload_len(pkt: &[u8]) -> usize {
    let ihl = usize::from(pkt.get(14).map_or(0, |v| v & 0x0f)) * 4;
    let total = pkt
        .get(16..18)
        .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
    let doff = usize::from(pkt.get(14 + ihl + 12).map_or(0, |v| v >> 4)) * 4;
    total.saturating_sub(ihl + doff)
}

/// XDP_STATISTICS of one socket: drops the kernel saw.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct XskStats {
    pub rx_dropped: u64,
    pub rx_invalid_descs: u64,
    pub tx_invalid_descs: u64,
    pub rx_ring_full: u64,
    pub rx_fill_ring_empty_descs: u64,
    pub tx_ring_empty_descs: u64,
}

impl WorkerStats {
    /// A move popped from the inbox after the loop ended, installed
    /// (`in_`) or not, going back to where it came from (`back`) or not.
    pub(super) fn count_stop_install(&mut self, in_: bool, back: bool) {
        match (in_, back) {
            (true, true) => self.flows_migration_returned += 1,
            (true, false) => {
                self.flows_migrated_in += 1;
                self.flows_migrated_in_at_stop += 1;
            }
            (false, _) => self.flows_migration_dropped += 1,
        }
    }

    /// A stack's counters, its device's, its socket's and its app's, at
    /// the end of a run.
    pub(super) fn add_stack(&mut self, stack: &Stack<XdpDevice>, app: serde_json::Value) {
        let c = stack.counters();
        self.mptcp_subflows_owned += c.mptcp_remote_subflows;
        self.mptcp_bytes_for_other_workers += c.mptcp_remote_bytes;
        self.mptcp_bytes_sent_for_other_workers += c.mptcp_remote_tx_bytes;
        self.stacks.push(c);
        self.devices.push(*stack.device().counters());
        let x = stack.device().socket().xdp_statistics();
        self.xsk
            .push(x.map_or_else(XskStats::default, |x| XskStats {
                rx_dropped: x.rx_dropped,
                rx_invalid_descs: x.rx_invalid_descs,
                tx_invalid_descs: x.tx_invalid_descs,
                rx_ring_full: x.rx_ring_full,
                rx_fill_ring_empty_descs: x.rx_fill_ring_empty_descs,
                tx_ring_empty_descs: x.tx_ring_empty_descs,
            }));
        self.apps.push(app);
    }
}

/// The TCP flags of a frame `classify` found TCP (0 if short).
pub(super) fn tcp_flags(pkt: &[u8]) -> u8 {
    let l4 = 14 + usize::from(pkt.get(14).map_or(0, |v| v & 0x0f)) * 4;
    pkt.get(l4 + 13).copied().unwrap_or(0)
}
