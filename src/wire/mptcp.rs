//! MPTCP v1 options (RFC 8684 §3): one parsed form per subtype, checked
//! parsing (a wrong length or an impossible flag combination is an error,
//! never a panic) and byte-exact emission.
//!
//! Every MPTCP option is TCP option kind 30 with a 4-bit subtype in the
//! high nibble of the third byte (RFC 8684 §3, figure 3). The TCP option
//! parser keeps them raw ([`MptcpRaw`](super::tcp::MptcpRaw)); the MPTCP
//! layer parses each with [`MptcpOption::parse`].

use super::{Result, WireError};
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// TCP option kind of every MPTCP option (RFC 8684 §8, IANA): 30.
pub use super::tcp::KIND_MPTCP;

/// MPTCP option subtypes (RFC 8684 §3, table 1 / IANA "MPTCP Option Subtypes").
pub const SUBTYPE_MP_CAPABLE: u8 = 0x0;
pub const SUBTYPE_MP_JOIN: u8 = 0x1;
pub const SUBTYPE_DSS: u8 = 0x2;
pub const SUBTYPE_ADD_ADDR: u8 = 0x3;
pub const SUBTYPE_REMOVE_ADDR: u8 = 0x4;
pub const SUBTYPE_MP_PRIO: u8 = 0x5;
pub const SUBTYPE_MP_FAIL: u8 = 0x6;
pub const SUBTYPE_MP_FASTCLOSE: u8 = 0x7;
pub const SUBTYPE_MP_TCPRST: u8 = 0x8;

/// The MPTCP version this module speaks (RFC 8684 §3.1: version 1).
pub const MPTCP_VERSION: u8 = 1;

/// MP_CAPABLE flag bits (RFC 8684 §3.1, "A" is the most significant bit).
pub mod cap_flags {
    /// A: "Checksum Required".
    pub const A: u8 = 0x80;
    /// B: extensibility; MUST be 0 in this version.
    pub const B: u8 = 0x40;
    /// C: "do not attempt to establish new subflows to this address and port".
    pub const C: u8 = 0x20;
    /// H: HMAC-SHA256 as the crypto algorithm (the only one defined).
    pub const H: u8 = 0x01;
}

/// MP_CAPABLE (RFC 8684 §3.1, figure 4). The variant is told by the
/// length: 4 (SYN), 12 (SYN/ACK: sender's key), 20 (third ACK: both keys),
/// 22 (first data: plus the data-level length), 24 (plus the DSS checksum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MpCapable {
    pub version: u8,
    /// Flags A..H (see [`cap_flags`]).
    pub flags: u8,
    /// "Option Sender's Key" (SYN/ACK, ACK, data).
    pub sender_key: Option<u64>,
    /// "Option Receiver's Key" (ACK, data).
    pub receiver_key: Option<u64>,
    /// "Data-Level Length" of the first data (the DSN is implied: IDSN + 1).
    pub data_len: Option<u16>,
    /// DSS checksum of the first data's mapping (when A was negotiated).
    pub checksum: Option<u16>,
}

impl MpCapable {
    pub fn checksum_required(&self) -> bool {
        self.flags & cap_flags::A != 0
    }
    /// H: HMAC-SHA256, the only crypto algorithm of RFC 8684.
    pub fn hmac_sha256(&self) -> bool {
        self.flags & cap_flags::H != 0
    }
    fn len(&self) -> usize {
        match (
            self.sender_key,
            self.receiver_key,
            self.data_len,
            self.checksum,
        ) {
            (None, ..) => 4,
            (Some(_), None, ..) => 12,
            (Some(_), Some(_), None, _) => 20,
            (Some(_), Some(_), Some(_), None) => 22,
            (Some(_), Some(_), Some(_), Some(_)) => 24,
        }
    }
}

/// MP_JOIN (RFC 8684 §3.2, figures 5-7): the three handshake forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpJoin {
    /// Length 12: backup flag, address ID, receiver's token, sender's nonce.
    Syn {
        backup: bool,
        addr_id: u8,
        token: u32,
        nonce: u32,
    },
    /// Length 16: backup flag, address ID, the leftmost 64 bits of the
    /// HMAC, sender's nonce.
    SynAck {
        backup: bool,
        addr_id: u8,
        hmac: u64,
        nonce: u32,
    },
    /// Length 24: the leftmost 160 bits of the HMAC.
    Ack { hmac: [u8; 20] },
}

/// The mapping part of a DSS option (RFC 8684 §3.3, figure 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DssMapping {
    /// Data Sequence Number (4 or 8 bytes on the wire, see `dsn64`).
    pub dsn: u64,
    /// m: the DSN is 8 octets.
    pub dsn64: bool,
    /// Subflow Sequence Number, relative to the subflow's initial sequence
    /// number (RFC 8684 §3.3.1).
    pub ssn: u32,
    /// Data-Level Length (0 = infinite mapping, RFC 8684 §3.7).
    pub len: u16,
    /// DSS checksum, present when negotiated (RFC 8684 §3.3.1).
    pub checksum: Option<u16>,
}

/// DSS (RFC 8684 §3.3, figure 9): Data ACK and/or mapping, DATA_FIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Dss {
    /// A: Data ACK present; the value.
    pub data_ack: Option<u64>,
    /// a: the Data ACK is 8 octets.
    pub ack64: bool,
    /// M: DSN, SSN, Data-Level Length (and checksum) present.
    pub mapping: Option<DssMapping>,
    /// F: DATA_FIN (RFC 8684 §3.3.3), the last octet of the mapping.
    pub data_fin: bool,
}

/// DSS flag bits (RFC 8684 §3.3, figure 9).
mod dss_flags {
    pub const A: u8 = 0x01;
    pub const A64: u8 = 0x02;
    pub const M: u8 = 0x04;
    pub const M64: u8 = 0x08;
    pub const F: u8 = 0x10;
}

impl Dss {
    fn len(&self) -> usize {
        let ack = match self.data_ack {
            Some(_) if self.ack64 => 8,
            Some(_) => 4,
            None => 0,
        };
        let map = match &self.mapping {
            Some(m) => {
                (if m.dsn64 { 8 } else { 4 }) + 4 + 2 + if m.checksum.is_some() { 2 } else { 0 }
            }
            None => 0,
        };
        4 + ack + map
    }
}

/// ADD_ADDR (RFC 8684 §3.4.1, figure 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddAddr {
    /// E: this is the echo of a received ADD_ADDR (and carries no HMAC).
    pub echo: bool,
    pub addr_id: u8,
    pub addr: IpAddr,
    pub port: Option<u16>,
    /// Truncated HMAC (leftmost 64 bits), present exactly when `echo` is not.
    pub hmac: Option<u64>,
}

/// REMOVE_ADDR (RFC 8684 §3.4.2, figure 13): one or more address IDs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoveAddr {
    pub count: u8,
    /// At most 37 IDs fit in a 40-byte option area.
    pub ids: [u8; 37],
}

impl RemoveAddr {
    pub fn ids(&self) -> &[u8] {
        &self.ids[..(self.count as usize).min(self.ids.len())]
    }
}

/// MP_TCPRST flags (RFC 8684 §3.6, figure 16).
pub mod rst_flags {
    /// T: transient error; the subflow may be retried.
    pub const T: u8 = 0x1;
}

/// One MPTCP option, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MptcpOption {
    MpCapable(MpCapable),
    MpJoin(MpJoin),
    Dss(Dss),
    AddAddr(AddAddr),
    RemoveAddr(RemoveAddr),
    /// MP_PRIO (RFC 8684 §3.3.8, figure 11): length 3, the backup flag.
    MpPrio {
        backup: bool,
    },
    /// MP_FAIL (RFC 8684 §3.7, figure 17): length 12, the DSN at which
    /// the checksum failed.
    MpFail {
        dsn: u64,
    },
    /// MP_FASTCLOSE (RFC 8684 §3.5, figure 14): length 12, the option
    /// receiver's key.
    MpFastclose {
        receiver_key: u64,
    },
    /// MP_TCPRST (RFC 8684 §3.6, figure 16): length 4, flags U V W T and a
    /// reason code.
    MpTcpRst {
        flags: u8,
        reason: u8,
    },
    /// A subtype this version does not define (e.g. 0xf MP_EXPERIMENTAL):
    /// skipped, as RFC 8684 §3 asks of unknown subtypes.
    Unknown {
        subtype: u8,
    },
}

fn be16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}
fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}
fn be64(b: &[u8]) -> u64 {
    u64::from_be_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

impl MptcpOption {
    /// Parse one whole option (kind 30, length, body): `opt.len()` must be
    /// the option's length byte. Wrong lengths for a subtype are
    /// `BadLength`; a wrong kind, or flags an RFC 8684 receiver cannot
    /// interpret, `Unsupported`.
    pub fn parse(opt: &[u8]) -> Result<MptcpOption> {
        let [kind, len, b2, rest @ ..] = opt else {
            return Err(WireError::Truncated);
        };
        if *kind != KIND_MPTCP {
            return Err(WireError::Unsupported);
        }
        if *len as usize != opt.len() {
            return Err(WireError::BadLength);
        }
        let subtype = b2 >> 4;
        let low = b2 & 0x0f;
        let n = opt.len();
        Ok(match subtype {
            SUBTYPE_MP_CAPABLE => {
                // RFC 8684 §3.1: "version" in the low nibble; flags next.
                let Some((&flags, body)) = rest.split_first() else {
                    return Err(WireError::BadLength);
                };
                let mut c = MpCapable {
                    version: low,
                    flags,
                    ..MpCapable::default()
                };
                match n {
                    4 => {}
                    12 | 20 | 22 | 24 => {
                        c.sender_key = Some(be64(body));
                        if n >= 20 {
                            c.receiver_key = Some(be64(&body[8..]));
                        }
                        if n >= 22 {
                            c.data_len = Some(be16(&body[16..]));
                        }
                        if n == 24 {
                            c.checksum = Some(be16(&body[18..]));
                        }
                    }
                    _ => return Err(WireError::BadLength),
                }
                MptcpOption::MpCapable(c)
            }
            SUBTYPE_MP_JOIN => {
                let backup = low & 0x1 != 0;
                MptcpOption::MpJoin(match n {
                    12 => MpJoin::Syn {
                        backup,
                        addr_id: rest[0],
                        token: be32(&rest[1..]),
                        nonce: be32(&rest[5..]),
                    },
                    16 => MpJoin::SynAck {
                        backup,
                        addr_id: rest[0],
                        hmac: be64(&rest[1..]),
                        nonce: be32(&rest[9..]),
                    },
                    24 => {
                        let mut hmac = [0; 20];
                        hmac.copy_from_slice(&rest[1..21]);
                        MpJoin::Ack { hmac }
                    }
                    _ => return Err(WireError::BadLength),
                })
            }
            SUBTYPE_DSS => {
                let Some((&flags, mut body)) = rest.split_first() else {
                    return Err(WireError::BadLength);
                };
                let mut d = Dss {
                    // "a" means nothing without "A" (no Data ACK to size).
                    ack64: flags & dss_flags::A64 != 0 && flags & dss_flags::A != 0,
                    data_fin: flags & dss_flags::F != 0,
                    ..Dss::default()
                };
                let mut take = |k: usize| -> Result<&[u8]> {
                    if body.len() < k {
                        return Err(WireError::BadLength);
                    }
                    let (h, t) = body.split_at(k);
                    body = t;
                    Ok(h)
                };
                // Bytes the fixed fields after the flags need; the rest of
                // the length is the checksum (RFC 8684 §3.3).
                let ack_len = match (flags & dss_flags::A != 0, flags & dss_flags::A64 != 0) {
                    (false, _) => 0,
                    (true, false) => 4,
                    (true, true) => 8,
                };
                let map_len = match (flags & dss_flags::M != 0, flags & dss_flags::M64 != 0) {
                    (false, _) => 0,
                    (true, false) => 10,
                    (true, true) => 14,
                };
                let csum_len = (n - 4).checked_sub(ack_len + map_len);
                if flags & dss_flags::A != 0 {
                    d.data_ack = Some(if d.ack64 {
                        be64(take(8)?)
                    } else {
                        be32(take(4)?) as u64
                    });
                }
                if flags & dss_flags::M != 0 {
                    let dsn64 = flags & dss_flags::M64 != 0;
                    let dsn = if dsn64 {
                        be64(take(8)?)
                    } else {
                        be32(take(4)?) as u64
                    };
                    let ssn = be32(take(4)?);
                    let len = be16(take(2)?);
                    // RFC 8684 §3.3: the checksum is there when negotiated;
                    // the option length says which.
                    let checksum = match csum_len {
                        Some(0) => None,
                        Some(2) => Some(be16(take(2)?)),
                        _ => return Err(WireError::BadLength),
                    };
                    d.mapping = Some(DssMapping {
                        dsn,
                        dsn64,
                        ssn,
                        len,
                        checksum,
                    });
                }
                if csum_len != Some(0) && (d.mapping.is_none() || csum_len != Some(2)) {
                    return Err(WireError::BadLength);
                }
                MptcpOption::Dss(d)
            }
            SUBTYPE_ADD_ADDR => {
                let echo = low & 0x1 != 0;
                let Some(&addr_id) = rest.first() else {
                    return Err(WireError::BadLength);
                };
                let body = &rest[1..];
                // RFC 8684 §3.4.1: the layout follows from the length:
                // address (4 or 16), port (2, optional), HMAC (8, unless E).
                let hmac_len = if echo { 0 } else { 8 };
                let (addr, after): (IpAddr, &[u8]) = match body.len().checked_sub(hmac_len) {
                    Some(4) | Some(6) => {
                        let a = Ipv4Addr::new(body[0], body[1], body[2], body[3]);
                        (a.into(), &body[4..])
                    }
                    Some(16) | Some(18) => {
                        let mut a = [0u8; 16];
                        a.copy_from_slice(&body[..16]);
                        (Ipv6Addr::from(a).into(), &body[16..])
                    }
                    _ => return Err(WireError::BadLength),
                };
                let (port, after) = if after.len() == hmac_len + 2 {
                    (Some(be16(after)), &after[2..])
                } else {
                    (None, after)
                };
                let hmac = if echo { None } else { Some(be64(after)) };
                MptcpOption::AddAddr(AddAddr {
                    echo,
                    addr_id,
                    addr,
                    port,
                    hmac,
                })
            }
            SUBTYPE_REMOVE_ADDR => {
                if rest.is_empty() || rest.len() > 37 {
                    return Err(WireError::BadLength);
                }
                let mut r = RemoveAddr {
                    count: rest.len() as u8,
                    ids: [0; 37],
                };
                r.ids[..rest.len()].copy_from_slice(rest);
                MptcpOption::RemoveAddr(r)
            }
            SUBTYPE_MP_PRIO => {
                // RFC 8684 §3.3.8: length 3 (RFC 6824's optional address
                // ID was removed in v1).
                if n != 3 {
                    return Err(WireError::BadLength);
                }
                MptcpOption::MpPrio {
                    backup: low & 0x1 != 0,
                }
            }
            SUBTYPE_MP_FAIL | SUBTYPE_MP_FASTCLOSE => {
                if n != 12 {
                    return Err(WireError::BadLength);
                }
                let v = be64(&rest[1..]);
                if subtype == SUBTYPE_MP_FAIL {
                    MptcpOption::MpFail { dsn: v }
                } else {
                    MptcpOption::MpFastclose { receiver_key: v }
                }
            }
            SUBTYPE_MP_TCPRST => {
                if n != 4 {
                    return Err(WireError::BadLength);
                }
                MptcpOption::MpTcpRst {
                    flags: low,
                    reason: rest[0],
                }
            }
            _ => MptcpOption::Unknown { subtype },
        })
    }

    /// Length of the option as `emit` writes it (0 for `Unknown`).
    pub fn len(&self) -> usize {
        match self {
            MptcpOption::MpCapable(c) => c.len(),
            MptcpOption::MpJoin(MpJoin::Syn { .. }) => 12,
            MptcpOption::MpJoin(MpJoin::SynAck { .. }) => 16,
            MptcpOption::MpJoin(MpJoin::Ack { .. }) => 24,
            MptcpOption::Dss(d) => d.len(),
            MptcpOption::AddAddr(a) => {
                let addr = if a.addr.is_ipv4() { 4 } else { 16 };
                4 + addr + if a.port.is_some() { 2 } else { 0 } + if a.echo { 0 } else { 8 }
            }
            MptcpOption::RemoveAddr(r) => 3 + r.ids().len(),
            MptcpOption::MpPrio { .. } => 3,
            MptcpOption::MpFail { .. } | MptcpOption::MpFastclose { .. } => 12,
            MptcpOption::MpTcpRst { .. } => 4,
            MptcpOption::Unknown { .. } => 0,
        }
    }

    /// Never true for a well-formed option; `len` is 0 only for `Unknown`.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Write the option into `buf[..self.len()]`; returns the length.
    /// Reserved bits are written as zero. `Unknown` writes nothing.
    ///
    /// # Panics
    /// If `buf` is shorter than `self.len()` (a caller bug).
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let n = self.len();
        if n == 0 {
            return 0;
        }
        let buf = &mut buf[..n];
        buf[0] = KIND_MPTCP;
        buf[1] = n as u8;
        let mut at = 2;
        let mut put = |b: &[u8]| {
            buf[at..at + b.len()].copy_from_slice(b);
            at += b.len();
        };
        match self {
            MptcpOption::MpCapable(c) => {
                put(&[(SUBTYPE_MP_CAPABLE << 4) | (c.version & 0xf), c.flags]);
                for k in [c.sender_key, c.receiver_key].into_iter().flatten() {
                    put(&k.to_be_bytes());
                }
                if let (Some(_), Some(_), Some(l)) = (c.sender_key, c.receiver_key, c.data_len) {
                    put(&l.to_be_bytes());
                    if let Some(s) = c.checksum {
                        put(&s.to_be_bytes());
                    }
                }
            }
            MptcpOption::MpJoin(j) => match *j {
                MpJoin::Syn {
                    backup,
                    addr_id,
                    token,
                    nonce,
                } => {
                    put(&[(SUBTYPE_MP_JOIN << 4) | backup as u8, addr_id]);
                    put(&token.to_be_bytes());
                    put(&nonce.to_be_bytes());
                }
                MpJoin::SynAck {
                    backup,
                    addr_id,
                    hmac,
                    nonce,
                } => {
                    put(&[(SUBTYPE_MP_JOIN << 4) | backup as u8, addr_id]);
                    put(&hmac.to_be_bytes());
                    put(&nonce.to_be_bytes());
                }
                MpJoin::Ack { hmac } => {
                    put(&[SUBTYPE_MP_JOIN << 4, 0]);
                    put(&hmac);
                }
            },
            MptcpOption::Dss(d) => {
                let mut flags = 0;
                if d.data_ack.is_some() {
                    flags |= dss_flags::A;
                    if d.ack64 {
                        flags |= dss_flags::A64;
                    }
                }
                if let Some(m) = &d.mapping {
                    flags |= dss_flags::M;
                    if m.dsn64 {
                        flags |= dss_flags::M64;
                    }
                }
                if d.data_fin {
                    flags |= dss_flags::F;
                }
                put(&[SUBTYPE_DSS << 4, flags]);
                if let Some(a) = d.data_ack {
                    if d.ack64 {
                        put(&a.to_be_bytes());
                    } else {
                        put(&(a as u32).to_be_bytes());
                    }
                }
                if let Some(m) = &d.mapping {
                    if m.dsn64 {
                        put(&m.dsn.to_be_bytes());
                    } else {
                        put(&(m.dsn as u32).to_be_bytes());
                    }
                    put(&m.ssn.to_be_bytes());
                    put(&m.len.to_be_bytes());
                    if let Some(c) = m.checksum {
                        put(&c.to_be_bytes());
                    }
                }
            }
            MptcpOption::AddAddr(a) => {
                put(&[(SUBTYPE_ADD_ADDR << 4) | a.echo as u8, a.addr_id]);
                match a.addr {
                    IpAddr::V4(v4) => put(&v4.octets()),
                    IpAddr::V6(v6) => put(&v6.octets()),
                }
                if let Some(p) = a.port {
                    put(&p.to_be_bytes());
                }
                if !a.echo {
                    put(&a.hmac.unwrap_or(0).to_be_bytes());
                }
            }
            MptcpOption::RemoveAddr(r) => {
                put(&[SUBTYPE_REMOVE_ADDR << 4]);
                put(r.ids());
            }
            MptcpOption::MpPrio { backup } => put(&[(SUBTYPE_MP_PRIO << 4) | *backup as u8]),
            MptcpOption::MpFail { dsn } => {
                put(&[SUBTYPE_MP_FAIL << 4, 0]);
                put(&dsn.to_be_bytes());
            }
            MptcpOption::MpFastclose { receiver_key } => {
                put(&[SUBTYPE_MP_FASTCLOSE << 4, 0]);
                put(&receiver_key.to_be_bytes());
            }
            MptcpOption::MpTcpRst { flags, reason } => {
                put(&[(SUBTYPE_MP_TCPRST << 4) | (flags & 0xf), *reason]);
            }
            MptcpOption::Unknown { .. } => {}
        }
        n
    }
}

#[cfg(test)]
mod tests;
