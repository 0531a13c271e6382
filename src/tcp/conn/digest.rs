//! A digest of the TCB's parts (send, receive, recovery, timers, probes,
//! path, events; the counters are `stats`) for tests that compare two connections fed
//! the same segments: header prediction against the general path
//! (`tests/tcp_script_predict.rs`). Everything either path may update is
//! in it, so a fast path that skips an update shows as a difference.

use super::Connection;
use crate::io::Frame;

impl<F: Frame> Connection<F> {
    /// The TCB's state as text (not a stable format; for tests).
    #[doc(hidden)]
    pub fn tcb_digest(&self) -> String {
        let s = &self.snd;
        let r = &self.rcv;
        let l = &self.loss;
        format!(
            "state {:?} now {:?}\n\
             snd una {:?} nxt {:?} wnd {} wl1 {:?} wl2 {:?} max_wnd {} mss {} buf {} \
             queue len {} tail {:?} mem {} fin_queued {} write_blocked {} sml {:?} \
             last_data_sent {:?} una_since {:?}\nsb {:?}\n\
             rcv nxt {:?} adv {:?} buf {} avail {} mem {} ooo {} space {:?} mss {} fin {:?} \
             fin_done {} ts_recent {} ts_recent_at {:?} last_ack_sent {:?} ece_echo {} \
             ack_now {} unacked {}\n\
             rtt {:?}\ncc {:?}\nrecovery {:?} recover {:?} dupacks {} rexmit_head {} prr {:?} \
             dsack {:?} rto_tsval {:?} rtx_count {} tlp_high {:?} tlp_pending {} \
             cwr_pending {} ecn_recover {:?}\n\
             timers {:?}\nprobe {:?}\npath {:?}\norphan {:?}\nevents {:?}",
            self.state,
            self.now,
            s.una,
            s.nxt,
            s.wnd,
            s.wl1,
            s.wl2,
            s.max_wnd,
            s.mss,
            s.buf,
            s.queue.len(),
            s.queue.tail(),
            s.queue.mem(),
            s.fin_queued,
            s.write_blocked,
            s.sml,
            s.last_data_sent,
            s.una_since,
            s.sb,
            r.queue.nxt,
            r.adv,
            r.buf,
            r.queue.available(),
            r.queue.mem(),
            r.queue.has_ooo(),
            r.space,
            r.mss,
            r.fin,
            r.fin_done,
            r.ts_recent,
            r.ts_recent_at,
            r.last_ack_sent,
            r.ece_echo,
            r.ack_now,
            r.unacked,
            l.rtt,
            l.cc,
            l.recovery,
            l.recover,
            l.dupacks,
            l.rexmit_head,
            l.prr,
            l.dsack,
            l.rto_tsval,
            l.rtx_count,
            l.tlp_high,
            l.tlp_pending,
            l.cwr_pending,
            l.ecn_recover,
            self.timers,
            self.probe,
            self.path,
            self.orphan,
            self.events,
        )
    }
}
