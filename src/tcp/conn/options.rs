//! Option negotiation (RFC 9293 §3.7.1 MSS, RFC 7323 window scale and
//! timestamps, RFC 2018 SACK-permitted, RFC 3168 ECN setup) and the options
//! and window of outgoing segments.

use super::{Connection, DEFAULT_MSS};
use crate::io::Frame;
use crate::tcp::{SeqNumber, TcpFlags, TcpOptions, TcpRepr};
use crate::time::Instant;

/// RFC 7323 §3: the timestamps option takes 10 bytes, 12 with padding.
pub(super) const TS_LEN: usize = 12;

impl<F: Frame> Connection<F> {
    /// Our window-scale shift as announced on SYN.
    pub(super) fn our_wscale(&self) -> u8 {
        Self::clamp_wscale(self.cfg.rcv_wscale())
    }

    /// Record the options of the peer's SYN (passive side, or SYN-SENT
    /// receiving SYN or SYN-ACK). Our SYN offers everything `cfg` enables,
    /// so an option is on when `cfg` enables it and the peer sent it.
    pub(super) fn negotiate(&mut self, syn: &TcpRepr) {
        let o = &syn.options;
        // Floor on the peer's MSS (Linux: tcp_min_snd_mss, default 48;
        // FreeBSD: net.inet.tcp.minmss, 216): a tiny MSS multiplies the
        // packets (and, before frames were counted, the frames) per byte.
        let floor = (self.cfg.min_snd_mss as usize).max(1);
        self.opts.peer_mss = o.mss.map_or(DEFAULT_MSS, |m| (m as usize).max(floor));
        // RFC 7323 §2.2: scaling only when both sides sent the option.
        match o.window_scale {
            Some(ws) => {
                self.opts.ws = true;
                self.opts.snd_wscale = Self::clamp_wscale(ws);
                self.opts.rcv_wscale = self.our_wscale();
            }
            None => {
                self.opts.ws = false;
                self.opts.snd_wscale = 0;
                self.opts.rcv_wscale = 0;
            }
        }
        self.opts.sack = self.cfg.sack && o.sack_permitted;
        self.opts.ts = self.cfg.timestamps && o.timestamps.is_some();
        // RFC 9293 §3.7.1: send MSS = min(peer MSS, ours), less the fixed
        // options: timestamps (RFC 7323 §3.2 sizing) and, with MPTCP, the
        // DSS (RFC 8684 §3.3).
        let mss = self.opts.peer_mss.min(self.cfg.mss as usize);
        self.snd.mss = mss.saturating_sub(self.fixed_opts_len()).max(1);
        self.rcv.mss = self.snd.mss;
        if self.opts.ts {
            if let Some((tsval, _)) = o.timestamps {
                self.rcv.ts_recent = tsval;
                self.rcv.ts_recent_at = self.now;
            }
        }
    }

    /// Set up from a SYN received in LISTEN (or by `accept`).
    pub(super) fn on_passive_syn(&mut self, syn: &TcpRepr, now: Instant) {
        self.now = self.now.max(now);
        self.tuple.remote.set_port(syn.src_port);
        self.state = crate::tcp::State::SynReceived;
        self.rcv.irs = syn.seq;
        self.rcv.queue = crate::tcp::recv::RecvBuffer::new(syn.seq + 1);
        self.mptcp_on_syn(syn);
        self.negotiate(syn);
        // RFC 3168 §6.1.1: an ECN-setup SYN has ECE and CWR.
        self.opts.ecn =
            self.cfg.ecn && syn.flags.contains(TcpFlags::ECE) && syn.flags.contains(TcpFlags::CWR);
        // RFC 7323 §2.2: the window in a SYN is never scaled.
        self.snd.wnd = syn.window as usize;
        self.snd.max_wnd = self.snd.wnd;
        self.snd.wl1 = syn.seq;
        self.snd.wl2 = self.snd.iss;
        self.rcv.adv = syn.seq + 1;
        self.rcv.last_ack_sent = syn.seq + 1;
        self.probe.last_rx = self.now;
        self.syn.pending = true;
    }

    /// The options of a SYN or SYN-ACK we send.
    pub(super) fn syn_options(&mut self, syn_ack: bool) -> TcpOptions {
        let mut o = TcpOptions {
            mss: Some(self.cfg.mss),
            ..TcpOptions::default()
        };
        if !syn_ack || self.opts.ws {
            o.window_scale = Some(self.our_wscale());
        }
        if self.cfg.sack && (!syn_ack || self.opts.sack) {
            o.sack_permitted = true;
        }
        if self.cfg.timestamps && (!syn_ack || self.opts.ts) {
            let ecr = if syn_ack { self.rcv.ts_recent } else { 0 };
            o.timestamps = Some((self.tsval(), ecr));
        }
        self.mptcp_syn_options(&mut o.mptcp);
        o
    }

    /// RFC 7323 §4.1: our TSval clock is milliseconds (SYN cookies rely on
    /// this exact clock).
    pub(super) fn tsval(&self) -> u32 {
        crate::tcp::rtt::tsval_at(self.now)
    }

    /// Options of a synchronized-state segment with `payload` bytes, added
    /// to `o` (which holds at most its MPTCP options; filled in place, not
    /// built and copied, on every segment): the timestamps, then as many
    /// SACK blocks as the option space and the MSS allow. Returns whether
    /// SACK blocks were left out.
    pub(super) fn data_options(&self, o: &mut TcpOptions, payload: usize) -> bool {
        if self.opts.ts {
            o.timestamps = Some((self.tsval(), self.rcv.ts_recent));
        }
        let mut left_out = false;
        if self.opts.sack && (self.rcv.queue.has_ooo() || self.rcv.queue.has_dsack()) {
            // 40 bytes of options; a data segment must also stay within the
            // peer's MSS plus the fixed options. Count the padding: the
            // blocks that fit once the option area is rounded up to 4.
            let fixed = self.fixed_opts_len();
            let allowed = if payload == 0 {
                40
            } else {
                (self.snd.mss + fixed).saturating_sub(payload).min(40)
            };
            let all = self.rcv.queue.sack_blocks(4).len;
            let mut max = 4;
            loop {
                o.sack = self.rcv.queue.sack_blocks(max);
                let l = o.layout();
                // Every block must be emitted (none cut by the 40 bytes)
                // and the padded total must fit.
                if max == 0 || l.len <= allowed && l.sack_blocks == o.sack.len as usize {
                    break;
                }
                max -= 1;
            }
            left_out = o.sack.len < all;
        }
        left_out
    }

    /// The window we could advertise now (bytes), from free receive memory.
    pub(super) fn rcv_window_now(&self) -> usize {
        let w = self.rcv.wnd();
        // RFC 8684 §3.3.4: an MPTCP subflow offers no more than the
        // connection's one receive window.
        let w = if self.mptcp.rx.is_some() {
            self.mptcp_window_cap(w)
        } else {
            w
        };
        // RFC 7323 §2.3: at most 2^14 · 65535.
        let max = 65535usize << self.opts.rcv_wscale;
        w.min(max)
    }

    /// Largest window (empty buffers).
    pub(super) fn rcv_window_max(&self) -> usize {
        self.rcv
            .queue
            .space_to_window(self.rcv.buf)
            .min(65535usize << self.opts.rcv_wscale)
    }

    /// RFC 1122 §4.2.3.3 receiver SWS avoidance: the right edge moves only
    /// by at least min(max window / 2, MSS); RFC 9293 §3.8.6.2.1: it never
    /// moves left. Inline: one call per segment sent, its window's
    /// computation short.
    #[inline]
    pub(super) fn rcv_edge_candidate(&self) -> SeqNumber {
        let nxt = self.rcv.queue.nxt;
        let cur = self.rcv.edge();
        let new = nxt + self.rcv_window_now();
        if new <= cur {
            return cur;
        }
        let thresh = (self.rcv_window_max() / 2).min(self.rcv.mss).max(1);
        if new - cur >= thresh || cur == nxt && new - nxt >= thresh {
            new
        } else {
            cur
        }
    }

    /// The window field of a synchronized-state segment; records the edge.
    #[inline]
    pub(super) fn advertise(&mut self) -> u16 {
        let nxt = self.rcv.queue.nxt;
        let edge = self.rcv_edge_candidate();
        let ws = self.opts.rcv_wscale;
        let wnd = edge - nxt;
        // Round up so the advertised edge never falls below `edge`.
        let field = (wnd.div_ceil(1 << ws)).min(65535);
        self.rcv.adv = nxt + (field << ws);
        if self.rcv.adv < edge {
            self.rcv.adv = edge;
        }
        if self.mptcp.rx.is_some() {
            self.mptcp_note_advertised(field << ws);
        }
        field as u16
    }

    /// The window field of a SYN or SYN-ACK (RFC 7323 §2.2: unscaled).
    pub(super) fn syn_window(&mut self) -> u16 {
        let w = self.rcv.queue.window(self.rcv.buf).min(65535);
        if self.state == crate::tcp::State::SynReceived {
            self.rcv.adv = self.rcv.queue.nxt + w;
        }
        w as u16
    }
}
