//! What a run's report says about lost packets: every non-zero drop reason
//! of every layer (stack, AF_XDP socket, device rings, hand-offs), summed
//! over the workers, per interface.

use super::RunReport;

/// Non-zero drop counters of one interface, by reason.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IfaceDrops {
    pub iface: String,
    /// `(reason, count)`, in a fixed order: stack reasons (`bad_checksum`,
    /// `no_listener`, ...), then `xsk_*` (the kernel's XDP_STATISTICS),
    /// then `dev_*` (ring and pool shortages).
    pub reasons: Vec<(String, u64)>,
    /// Segments accepted with a partial checksum (not a drop; shown beside).
    pub csum_partial_accepted: u64,
}

/// Add every numeric field of `v` whose name passes `keep` into `acc`
/// (by name, keeping first-seen order).
fn add_fields(
    acc: &mut Vec<(String, u64)>,
    v: &serde_json::Value,
    keep: impl Fn(&str) -> Option<String>,
) {
    let Some(obj) = v.as_object() else { return };
    for (k, n) in obj {
        let (Some(name), Some(n)) = (keep(k), n.as_u64()) else {
            continue;
        };
        match acc.iter_mut().find(|(r, _)| *r == name) {
            Some((_, c)) => *c += n,
            None => acc.push((name, n)),
        }
    }
}

impl RunReport {
    /// Every non-zero drop reason, per interface (summed over workers), and
    /// hand-offs lost between workers under the name `handoff_dropped` on
    /// the first interface.
    pub fn drops(&self) -> Vec<IfaceDrops> {
        let mut out: Vec<IfaceDrops> = self
            .ifaces
            .iter()
            .map(|i| IfaceDrops {
                iface: i.name.clone(),
                ..Default::default()
            })
            .collect();
        for w in &self.workers {
            for (i, d) in out.iter_mut().enumerate() {
                if let Some(s) = w.stacks.get(i) {
                    d.csum_partial_accepted += s.rx_csum_partial_accepted;
                    let v = serde_json::to_value(s).unwrap_or_default();
                    add_fields(&mut d.reasons, &v, |k| {
                        k.strip_prefix("drop_").map(str::to_string)
                    });
                }
                if let Some(x) = w.xsk.get(i) {
                    let v = serde_json::to_value(x).unwrap_or_default();
                    // tx_ring_empty_descs counts kicks that found nothing
                    // to send: no packet was lost.
                    add_fields(&mut d.reasons, &v, |k| {
                        (k != "tx_ring_empty_descs").then(|| format!("xsk_{k}"))
                    });
                }
                if let Some(dev) = w.devices.get(i) {
                    let v = serde_json::to_value(dev).unwrap_or_default();
                    add_fields(&mut d.reasons, &v, |k| {
                        matches!(
                            k,
                            "tx_ring_full" | "alloc_failed" | "fill_short" | "rx_bad_desc"
                        )
                        .then(|| format!("dev_{k}"))
                    });
                }
            }
            if let Some(d) = out.first_mut() {
                add_fields(
                    &mut d.reasons,
                    &serde_json::json!({ "handoff_dropped": w.handoff_dropped }),
                    |k| Some(k.to_string()),
                );
            }
        }
        for d in out.iter_mut() {
            d.reasons.retain(|(_, n)| *n > 0);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::{IfaceReport, WorkerStats};
    use super::*;
    use crate::io::xdp::{AttachedMode, XdpCounters};
    use crate::stack::StackCounters;

    #[test]
    fn every_nonzero_drop_reason_is_listed_and_summed() {
        let iface = IfaceReport {
            name: "v0".into(),
            addr: "198.18.0.2/24".into(),
            driver: "veth".into(),
            accept_partial_checksum: true,
            xdp_mode: AttachedMode::Native,
            zero_copy: false,
            tx_checksum: crate::io::xdp::TxChecksum::Offload,
            queues: 2,
            umem: 1,
            umem_share: 2 * 4096,
            xdp: XdpCounters::default(),
            frames_held_at_stop: 0,
            frames: Default::default(),
        };
        let worker = |bad, partial| WorkerStats {
            stacks: vec![StackCounters {
                drop_bad_checksum: bad,
                drop_no_listener: 1,
                rx_csum_partial_accepted: partial,
                ..Default::default()
            }],
            xsk: vec![super::super::worker::XskStats {
                rx_dropped: 2,
                ..Default::default()
            }],
            ..Default::default()
        };
        let r = RunReport {
            ifaces: vec![iface],
            umems: Vec::new(),
            workers: vec![worker(3, 10), worker(0, 5)],
            pcap_written: 0,
            pcap_dropped: 0,
            seconds: 1.0,
        };
        let d = r.drops();
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].csum_partial_accepted, 15);
        let get = |k: &str| d[0].reasons.iter().find(|(r, _)| r == k).map(|x| x.1);
        assert_eq!(get("bad_checksum"), Some(3));
        assert_eq!(get("no_listener"), Some(2));
        assert_eq!(get("xsk_rx_dropped"), Some(4));
        assert_eq!(get("truncated"), None, "zero counts are not listed");
        assert_eq!(get("handoff_dropped"), None);
    }
}
