//! Packet traces: what each link did with each frame, and a one-line
//! tcpdump-like description of a frame for people reading the trace.

use crate::time::Instant;
use crate::wire::mptcp::MptcpOption;
use crate::wire::{EtherType, EthernetRepr, IpProtocol, Ipv4Repr, TcpRepr};

/// What happened to a frame on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceKind {
    /// Put on the link and will arrive (possibly duplicated/corrupted).
    Sent,
    Lost,
    QueueDrop,
    MtuDrop,
    /// Handed to the receiving node.
    Delivered,
}

/// One trace record; `frame` is the full Ethernet frame.
pub struct TraceRecord<'a> {
    pub at: Instant,
    pub src: usize,
    pub dst: usize,
    pub kind: TraceKind,
    pub frame: &'a [u8],
}

/// Receives every trace record of a run.
pub type Tracer = Box<dyn FnMut(&TraceRecord<'_>)>;

/// `1.2.3.4:80 > 5.6.7.8:1234 [S.] seq 1 ack 2 win 3 len 4 ts 5/6 sack 7-8`,
/// or what could be parsed of a non-TCP or damaged frame.
pub fn describe(frame: &[u8]) -> String {
    let Ok(eth) = EthernetRepr::parse(frame) else {
        return format!("runt frame, {} bytes", frame.len());
    };
    let ip = frame.get(EthernetRepr::HEADER_LEN..).unwrap_or(&[]);
    match eth.ethertype {
        EtherType::Arp => return "ARP".into(),
        EtherType::Ipv4 => {}
        EtherType::Other(t) => return format!("ethertype {t:#06x}"),
    }
    let (iph, hl) = match Ipv4Repr::parse(ip) {
        Ok(x) => x,
        Err(e) => return format!("IPv4 {e:?}"),
    };
    if iph.protocol != IpProtocol::Tcp {
        return format!("{} > {} {:?}", iph.src, iph.dst, iph.protocol);
    }
    // Traces may hold only the headers: check the checksum when the whole
    // segment is there.
    let body = ip.get(hl..).unwrap_or(&[]);
    let body = &body[..body.len().min(iph.payload_len)];
    let whole = body.len() == iph.payload_len;
    let (t, off) = match TcpRepr::parse_unchecked(body) {
        Ok(x) => x,
        Err(e) => return format!("{} > {} TCP {e:?}", iph.src, iph.dst),
    };
    let bad = whole && TcpRepr::parse(body, iph.src, iph.dst).is_err();
    let mut s = format!(
        "{}:{} > {}:{} [{}] seq {} ack {} win {} len {}",
        iph.src,
        t.src_port,
        iph.dst,
        t.dst_port,
        t.flags,
        t.seq.0,
        t.ack.0,
        t.window,
        iph.payload_len.saturating_sub(off)
    );
    if bad {
        s += " BAD-CHECKSUM";
    }
    if let Some((v, e)) = t.options.timestamps {
        s += &format!(" ts {v}/{e}");
    }
    for &(l, r) in t
        .options
        .sack
        .blocks
        .iter()
        .take(t.options.sack.len as usize)
    {
        s += &format!(" sack {}-{}", l.0, r.0);
    }
    for opt in t.options.mptcp.options() {
        s += &mptcp_describe(opt);
    }
    s
}

/// ` dss ack 5 map 6+7@8 fin`, ` join-syn`, ...: MPTCP options, briefly, so a
/// multipath trace shows the data level too.
fn mptcp_describe(opt: &[u8]) -> String {
    let Ok(o) = MptcpOption::parse(opt) else {
        return " mptcp?".into();
    };
    match o {
        MptcpOption::Dss(d) => {
            let mut s = " dss".to_string();
            if let Some(a) = d.data_ack {
                s += &format!(" ack {a}");
            }
            if let Some(m) = d.mapping {
                s += &format!(" map {}+{}@{}", m.dsn, m.len, m.ssn);
            }
            if d.data_fin {
                s += " dfin";
            }
            s
        }
        MptcpOption::MpCapable(_) => " mpc".into(),
        MptcpOption::MpJoin(_) => " join".into(),
        MptcpOption::AddAddr(a) => {
            format!(" add-addr{} {}", if a.echo { "-echo" } else { "" }, a.addr)
        }
        MptcpOption::RemoveAddr(_) => " rm-addr".into(),
        MptcpOption::MpPrio { backup } => format!(" prio {backup}"),
        MptcpOption::MpFail { dsn } => format!(" mp-fail {dsn}"),
        MptcpOption::MpFastclose { .. } => " fastclose".into(),
        MptcpOption::MpTcpRst { reason, .. } => format!(" tcprst {reason}"),
        MptcpOption::Unknown { subtype } => format!(" mptcp-{subtype}"),
    }
}
