//! Value parsers shared by the subcommands.

/// A byte count with an optional binary suffix: `4096`, `64K`, `8M`, `1G`
/// (also `8MB`, `8MiB`).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, suffix) = t.split_at(digits);
    let bad =
        || format!("'{s}' is not a size (use a number with an optional K, M or G suffix, e.g. 8M)");
    let n: u64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match suffix.to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        _ => return Err(bad()),
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("'{s}' is too large"))
}

/// A probability per packet, in [0, 1].
pub fn parse_prob(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "'{s}' is not a probability (use a fraction in [0, 1], e.g. 0.01 for 1%)"
        )),
    }
}

/// Milliseconds, non-negative and at most a minute.
pub fn parse_ms(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..=60_000.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a delay (use milliseconds from 0 to 60000)"
        )),
    }
}

/// A rate in Mbit/s: positive, at most 1 Tbit/s.
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.001..=1e6).contains(&v) => Ok(v),
        _ => Err(format!(
            "'{s}' is not a rate (use Mbit/s from 0.001 to 1000000)"
        )),
    }
}

/// One extra simulated path, `RATE,DELAY[,LOSS]`: Mbit/s, one-way ms and
/// a loss probability (default 0).
pub fn parse_path(s: &str) -> Result<(f64, f64, f64), String> {
    let parts: Vec<&str> = s.split(',').collect();
    let hint = || format!("'{s}' is not a path (use RATE,DELAY[,LOSS], e.g. 10,50,0.01)");
    match parts.as_slice() {
        [r, d] => Ok((parse_rate(r)?, parse_ms(d)?, 0.0)),
        [r, d, l] => Ok((parse_rate(r)?, parse_ms(d)?, parse_prob(l)?)),
        _ => Err(hint()),
    }
}

/// `PATH@MS`: path PATH (1 = the first, from the link flags) goes down at
/// MS milliseconds of virtual time.
pub fn parse_path_down(s: &str) -> Result<(usize, u64), String> {
    let hint = || format!("'{s}' is not PATH@MS (e.g. 2@1500: path 2 goes down at 1.5 s)");
    let (p, t) = s.split_once('@').ok_or_else(hint)?;
    match (p.trim().parse::<usize>(), t.trim().parse::<u64>()) {
        (Ok(p), Ok(t)) if p >= 1 => Ok((p, t)),
        _ => Err(hint()),
    }
}

/// An inclusive range of sizes `A-B` (each with an optional suffix), or
/// one size `A` for `A-A`.
pub fn parse_size_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let (a, b) = (parse_size(a)?, parse_size(b)?);
    if a > b {
        return Err(format!(
            "'{s}' is an empty range (write it low-high, e.g. 100-2K)"
        ));
    }
    Ok((a, b))
}

/// `BYTES/MS`: so many bytes every so many milliseconds.
pub fn parse_pace(s: &str) -> Result<(u64, f64), String> {
    let bad = || format!("'{s}' is not a pace (use BYTES/MS, e.g. 4K/10 for 4 KiB every 10 ms)");
    let (b, t) = s.split_once('/').ok_or_else(bad)?;
    let b = parse_size(b).map_err(|_| bad())?;
    let t = parse_ms(t).map_err(|_| bad())?;
    if b == 0 || t <= 0.0 {
        return Err(bad());
    }
    Ok((b, t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("64K"), Ok(65536));
        assert_eq!(parse_size("8M"), Ok(8 << 20));
        assert_eq!(parse_size("8mib"), Ok(8 << 20));
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        for bad in [
            "",
            "M",
            "1.5M",
            "-1",
            "12Q",
            "1 M x",
            "99999999999999999999",
        ] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn probabilities_and_rates() {
        assert_eq!(parse_prob("0.2"), Ok(0.2));
        assert_eq!(parse_prob("1"), Ok(1.0));
        for bad in ["-0.1", "1.01", "NaN", "x", "inf"] {
            assert!(parse_prob(bad).is_err(), "{bad}");
        }
        assert!(parse_rate("0").is_err());
        assert!(parse_rate("inf").is_err());
        assert_eq!(parse_rate("1.5"), Ok(1.5));
        assert!(parse_ms("-1").is_err());
        assert_eq!(parse_ms("20"), Ok(20.0));
    }

    #[test]
    fn ranges_and_paces() {
        assert_eq!(parse_size_range("100-2K"), Ok((100, 2048)));
        assert_eq!(parse_size_range("64"), Ok((64, 64)));
        assert!(parse_size_range("2K-100").is_err());
        assert!(parse_size_range("1-x").is_err());
        assert_eq!(parse_pace("4K/10"), Ok((4096, 10.0)));
        for bad in ["4K", "0/10", "4K/0", "x/1"] {
            assert!(parse_pace(bad).is_err(), "{bad}");
        }
    }
}

/// `--mptcp-cc`: congestion control across an MPTCP connection's subflows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum MptcpCcArg {
    /// Each subflow on its own (`--cc`), as Linux.
    Uncoupled,
    /// The Linked Increases Algorithm (RFC 6356).
    Lia,
}

impl From<MptcpCcArg> for xdptcp::tcp::MptcpCc {
    fn from(a: MptcpCcArg) -> Self {
        match a {
            MptcpCcArg::Uncoupled => xdptcp::tcp::MptcpCc::Uncoupled,
            MptcpCcArg::Lia => xdptcp::tcp::MptcpCc::Lia,
        }
    }
}

/// `sim --server-addrs`: the simulated server's addresses over several
/// paths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServerAddrsArg {
    /// One address (198.18.0.2) on every path: nothing to announce.
    One,
    /// 198.18.p.2 on path p, announced with ADD_ADDR (RFC 8684 §3.4.1).
    PerPath,
}

impl From<ServerAddrsArg> for xdptcp::io::mem::scenario::ServerAddrs {
    fn from(a: ServerAddrsArg) -> Self {
        match a {
            ServerAddrsArg::One => Self::One,
            ServerAddrsArg::PerPath => Self::PerPath,
        }
    }
}

/// `--mptcp-cc` and `--scheduler`: how an MPTCP connection's subflows
/// share its data and the network, the same on `echo`, `http` and
/// `loadgen` (each needs that command's `--mptcp`).
#[derive(clap::Args, Debug, Clone)]
pub struct MptcpSchedArgs {
    /// With --mptcp: congestion control across a connection's subflows,
    /// each on its own (uncoupled) or coupled (RFC 6356 LIA).
    #[arg(long, requires = "mptcp", value_enum, default_value = "uncoupled")]
    pub mptcp_cc: MptcpCcArg,
    /// With --mptcp: which subflow sends the next chunk of our data:
    /// minrtt (the lowest smoothed RTT with room, with opportunistic
    /// retransmission and penalisation of a slow subflow; the default),
    /// roundrobin, redundant (README, MPTCP).
    #[arg(long, requires = "mptcp", default_value = "minrtt", value_parser = parse_scheduler)]
    pub scheduler: xdptcp::mptcp::sched::SchedKind,
}

pub(super) fn parse_scheduler(s: &str) -> Result<xdptcp::mptcp::sched::SchedKind, String> {
    s.parse()
}

/// The MPTCP options of the servers (`echo`, `http`): the same flags,
/// the same meaning on both.
#[derive(clap::Args, Debug, Clone)]
pub struct MptcpServerArgs {
    /// Accept MPTCP v1 (RFC 8684) as well as plain TCP.
    #[arg(long)]
    pub mptcp: bool,
    /// With --mptcp: ask for the DSS checksum (RFC 8684 §3.3.1).
    #[arg(long, requires = "mptcp")]
    pub mptcp_checksum: bool,
    /// With --mptcp: extra subflows (MP_JOIN) one connection accepts, on
    /// any --iface (data goes both ways over them, ours as --scheduler
    /// decides, see README, MPTCP); beyond, joins are refused with RST +
    /// MP_TCPRST. Default 0: no joins (flag C).
    #[arg(long, requires = "mptcp", default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=8))]
    pub mptcp_subflows: u8,
    /// With --mptcp-subflows above 0: do not announce our other --iface
    /// addresses (ADD_ADDR, RFC 8684 §3.4.1; on by default), so the peer
    /// joins only addresses it knows otherwise.
    #[arg(long, requires = "mptcp")]
    pub mptcp_no_announce: bool,
    #[command(flatten)]
    pub sched: MptcpSchedArgs,
}

impl MptcpServerArgs {
    /// Into the TCP settings of every stack.
    pub fn apply(&self, tcp: &mut xdptcp::tcp::Config) {
        tcp.mptcp = self.mptcp;
        tcp.mptcp_checksum = self.mptcp_checksum;
        tcp.mptcp_max_subflows = self.mptcp_subflows;
        tcp.mptcp_announce = !self.mptcp_no_announce;
        self.sched.apply(tcp);
    }
}

impl MptcpSchedArgs {
    /// Into the TCP settings of every stack.
    pub fn apply(&self, tcp: &mut xdptcp::tcp::Config) {
        tcp.mptcp_cc = self.mptcp_cc.into();
        tcp.mptcp_scheduler = self.scheduler;
    }
}
