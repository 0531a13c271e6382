//! Setting up the interfaces: each one's XDP program, then one UMEM for all
//! of them (sized for every interface's queues), one AF_XDP socket per
//! (interface, queue) over it, and the devices the workers' stacks run on.
//!
//! The kernel lets sockets on other devices and queues share a UMEM
//! (`XDP_SHARED_UMEM`, Linux ≥ 5.10; each (device, queue) with its own fill
//! and completion rings, which every socket here sets up before bind), so a
//! frame received on one interface can leave on another and the stacks of
//! different interfaces can hand frames to each other instead of copying.
//! A device that refuses to share (a shared UMEM binds in its first
//! socket's mode: a NIC in zero-copy next to a veth) gets a UMEM of its
//! own, with a printed line.

use super::{stack_config, IfaceReport, IfaceSpec, RuntimeConfig};
use crate::io::xdp::iface::IfaceInfo;
use crate::io::xdp::netdev;
use crate::io::xdp::{
    AttachedMode, Error, ErrorKind, FrameAccount, SharedUmem, TxChecksum, XdpCounters, XdpDevice,
    XdpMode, XdpProgram, XdpSocket, ZeroCopy,
};
use crate::stack::StackConfig;
use std::sync::Arc;

/// One interface, set up: its program (detached on drop) and devices.
pub(super) struct IfaceSetup {
    pub report: IfaceReport,
    pub umem: Arc<SharedUmem>,
    pub prog: XdpProgram,
    pub devices: Vec<XdpDevice>,
    pub stack_cfg: StackConfig,
    pub rss: Option<Arc<crate::io::xdp::rss::Rss>>,
}

/// An interface whose program is attached, before its sockets.
struct Prepared {
    info: IfaceInfo,
    queues: u32,
    prog: XdpProgram,
    mode: AttachedMode,
    /// Multi-buffer receive (`--rx-multibuf`, or generic mode).
    multibuf: bool,
}

/// Check the interface and attach the XDP program (with the stack's
/// addresses); `queues`: the count the first interface decided.
fn prepare(spec: &IfaceSpec, cfg: &RuntimeConfig, queues: Option<u32>) -> Result<Prepared, Error> {
    let info = IfaceInfo::get(&spec.name)?;
    let queues = queues.unwrap_or(info.rx_queues);
    if queues == 0 || queues > info.rx_queues || queues > crate::io::xdp::prog::MAX_QUEUES {
        return Err(Error::new(
            ErrorKind::TooManyQueues,
            format!(
                "{} has {} queue(s); cannot use {queues}",
                spec.name, info.rx_queues
            ),
        ));
    }
    if queues < info.rx_queues {
        // An AF_XDP socket only sees its own queue: what the NIC (or the veth
        // peer) puts on the others reaches the kernel, which drops it.
        eprintln!(
            "xdptcp: warning: serving {queues} of {}'s {} queues; packets arriving on the others are lost \
             (reduce the channels with `ethtool -L {} combined|rx {queues}`)",
            spec.name, info.rx_queues, spec.name
        );
    }
    for c in spec.addrs() {
        if crate::io::xdp::sys::kernel_owns(c.addr) {
            return Err(Error::new(
                ErrorKind::AddressInUse,
                format!(
                    "{} is configured on a kernel interface; xdptcp needs addresses of its own",
                    c.addr
                ),
            ));
        }
    }
    let mut prog = XdpProgram::load_with(cfg.rx_multibuf)?;
    let mut mode = prog.attach(info.ifindex, cfg.xdp_mode)?;
    // Generic mode hands the program whole GRO/GSO skbs (a veth peer keeps
    // TSO there): without multi-buffer receive every one larger than a
    // frame is dropped and bulk transfer from such a peer stalls. So
    // generic mode always takes them, with the program reloaded as
    // `xdp.frags` (the old one detaches when it drops).
    let multibuf = cfg.rx_multibuf || mode == AttachedMode::Generic;
    if multibuf && !cfg.rx_multibuf {
        drop(prog);
        prog = XdpProgram::load_with(true)?;
        mode = prog.attach(info.ifindex, XdpMode::Generic)?;
    }
    for c in spec.addrs() {
        prog.add_local_addr(c.addr)?;
    }
    Ok(Prepared {
        info,
        queues,
        prog,
        mode,
        multibuf,
    })
}

/// Whether `name` is listed in the environment variable `var` (comma
/// separated): the veth tests' way to make a device refuse what only some
/// hardware refuses.
fn test_hook(var: &str, name: &str) -> bool {
    std::env::var(var).is_ok_and(|v| v.split(',').any(|n| n == name))
}

/// Whether the device can take TX metadata (checksum requests). In copy
/// mode the kernel builds the skb and honours the request whatever the
/// device (`xsk_build_skb`, Linux ≥ 6.8, which the UMEM's registration
/// proved); in zero-copy mode the driver does, if its `xsk-features`
/// (netdev netlink) say `tx-checksum`.
fn takes_tx_metadata(name: &str, ifindex: i32, zero_copy: bool) -> bool {
    if test_hook("XDPTCP_TEST_NO_TX_METADATA", name) {
        return false;
    }
    !zero_copy
        || netdev::dev_features(ifindex as u32)
            .is_some_and(|f| f.xsk & netdev::XSK_TX_CHECKSUM != 0)
}

/// Why interface `i` will not share the first interface's UMEM, if it
/// will not: the test hook, or the first binding zero-copy (its driver
/// can, and `--zero-copy` is not `off`) where this one cannot (the
/// kernel binds a shared UMEM's sockets in its first socket's mode).
/// Unknown features (no netdev netlink) predict nothing: the bind tells.
fn predicted_refusal(
    cfg: &RuntimeConfig,
    first: &Prepared,
    i: usize,
    p: &Prepared,
    spec: &IfaceSpec,
) -> Option<String> {
    if i == 0 {
        return None;
    }
    if test_hook("XDPTCP_TEST_OWN_UMEM", &spec.name) {
        return Some("refused by XDPTCP_TEST_OWN_UMEM".into());
    }
    if cfg.zero_copy == crate::io::xdp::ZeroCopy::Off {
        return None;
    }
    let zc = |p: &Prepared| netdev::dev_features(p.info.ifindex as u32).map(|f| f.zero_copy());
    match (zc(first), zc(p)) {
        (Some(true), Some(false)) => Some(format!(
            "{} binds zero-copy, which {} cannot",
            first.info.name, p.info.name
        )),
        _ => None,
    }
}

/// Bind one socket per queue of `spec` over `umem` (entered in XSKMAP
/// once its device has filled its fill ring).
fn bind_all(
    p: &Prepared,
    spec: &IfaceSpec,
    cfg: &RuntimeConfig,
    umem: &Arc<SharedUmem>,
) -> Result<Vec<XdpSocket>, Error> {
    // A zero-copy bind the driver refuses costs a whole buffer pool first
    // (the kernel allocates one entry per UMEM chunk, then fails: 0.13 s
    // with 4 queues' UMEM): not tried where the driver's features say it
    // cannot (veth).
    let mode = match cfg.zero_copy {
        ZeroCopy::Auto
            if netdev::dev_features(p.info.ifindex as u32).is_some_and(|f| !f.zero_copy()) =>
        {
            ZeroCopy::Off
        }
        m => m,
    };
    let mut socks = Vec::with_capacity(p.queues as usize);
    for q in 0..p.queues {
        let sock = XdpSocket::with_sg(umem, &spec.name, q, mode, p.multibuf)?;
        if let Some(usecs) = cfg.busy_poll {
            sock.set_busy_poll(usecs, crate::io::xdp::socket::BATCH as u32)?;
        }
        socks.push(sock);
    }
    Ok(socks)
}

/// Set every interface up: programs, one UMEM shared by all their queues
/// (or one per interface that refuses to share), sockets, devices.
pub(super) fn setup(cfg: &RuntimeConfig) -> Result<Vec<IfaceSetup>, Error> {
    // Every interface gets the same number of queues (worker w serves queue
    // w of each); the first interface decides the default. An error drops
    // what was set up so far: programs detach.
    let mut prepared: Vec<Prepared> = Vec::with_capacity(cfg.ifaces.len());
    let mut queues = cfg.queues;
    for spec in &cfg.ifaces {
        let p = prepare(spec, cfg, queues)?;
        queues = Some(p.queues);
        prepared.push(p);
    }
    // The impairment link stands for the wire after checksumming (its
    // corruption must reach the peer as such): software checksums then.
    let tx_checksum = match cfg.impair {
        Some(_) => TxChecksum::Software,
        None => cfg.tx_checksum,
    };
    // Who will refuse to share, known before the UMEM is sized: a UMEM
    // whose first socket binds zero-copy shares only in zero-copy.
    let refusal: Vec<Option<String>> = prepared
        .iter()
        .zip(&cfg.ifaces)
        .enumerate()
        .map(|(i, (p, spec))| predicted_refusal(cfg, &prepared[0], i, p, spec))
        .collect();
    // One UMEM for all: as many frames as one per interface would have
    // had together (each interface's queues × --frames), no more.
    let share = |p: &Prepared| p.queues.saturating_mul(cfg.frames_for(p.queues));
    let total = prepared
        .iter()
        .zip(&refusal)
        .filter(|(_, r)| r.is_none())
        .map(|(p, _)| share(p))
        .fold(0u32, u32::saturating_add);
    let shared = SharedUmem::with_checksum(total, tx_checksum)?;
    let mut umems: Vec<Arc<SharedUmem>> = Vec::with_capacity(prepared.len());
    let mut socks: Vec<Vec<XdpSocket>> = Vec::with_capacity(prepared.len());
    for (i, (p, spec)) in prepared.iter().zip(&cfg.ifaces).enumerate() {
        let refused = if let Some(why) = &refusal[i] {
            Some(why.clone())
        } else {
            match bind_all(p, spec, cfg, &shared) {
                Ok(s) => {
                    umems.push(shared.clone());
                    socks.push(s);
                    None
                }
                // The first interface's bind is the UMEM's own: nothing
                // to fall back to.
                Err(e) if i == 0 => return Err(e),
                Err(e) => Some(e.msg),
            }
        };
        if let Some(why) = refused {
            let own = SharedUmem::with_checksum(share(p), tx_checksum)?;
            eprintln!(
                "xdptcp: {} cannot share the UMEM of {} ({why}): it gets its own, {} frames \
                 (its frames are copied, not lent, to the other interfaces' stacks)",
                spec.name,
                cfg.ifaces[0].name,
                own.frames()
            );
            socks.push(bind_all(p, spec, cfg, &own)?);
            umems.push(own);
        }
    }
    decide_tx_metadata(cfg, &prepared, &umems, &socks)?;
    let mut sets = Vec::with_capacity(prepared.len());
    for ((p, spec), (umem, socks)) in prepared
        .into_iter()
        .zip(&cfg.ifaces)
        .zip(umems.iter().zip(socks))
    {
        let devices_on = umems.iter().filter(|u| Arc::ptr_eq(u, umem)).count();
        // Keep two batches per (device, queue) beyond what the fill rings hold.
        umem.set_rx_reserve(devices_on * p.queues as usize * 2 * crate::io::xdp::socket::BATCH);
        let zero_copy = socks.iter().all(XdpSocket::zero_copy);
        let devices: Vec<XdpDevice> = socks
            .into_iter()
            .map(|sock| {
                let mut dev = XdpDevice::new(sock, umem.clone(), p.info.mtu);
                dev.set_rx_multibuf(p.multibuf);
                // Half of each queue's frames wait on its fill ring (at
                // most the ring's 16,384); the rest take the RX backlog a
                // burst leaves unread (up to the RX ring's 32,768), send
                // buffers and received data.
                dev.set_fill_target(cfg.frames_for(p.queues) as usize / 2);
                dev
            })
            .collect();
        // Steered to only now that each fill ring holds frames: a packet
        // arriving on an empty fill ring would be dropped.
        for (q, dev) in devices.iter().enumerate() {
            p.prog.set_socket(q as u32, dev.socket().fd())?;
        }
        let mtu = devices
            .first()
            .map(crate::io::Device::mtu)
            .unwrap_or(p.info.mtu);
        let stack_cfg = stack_config(&p.info, spec, cfg, mtu);
        sets.push(IfaceSetup {
            report: IfaceReport {
                name: spec.name.clone(),
                addr: if spec.extra == 0 {
                    format!("{}/{}", spec.cidr.addr, spec.cidr.prefix)
                } else {
                    let last = spec.addrs().last().map_or(spec.cidr.addr, |c| c.addr);
                    format!("{}-{}/{}", spec.cidr.addr, last, spec.cidr.prefix)
                },
                driver: p.info.driver.clone(),
                accept_partial_checksum: stack_cfg.accept_partial_checksum,
                xdp_mode: p.mode,
                zero_copy,
                tx_checksum: umem.tx_checksum(),
                queues: p.queues,
                umem: umem.id(),
                umem_share: share(&p) as usize,
                xdp: XdpCounters::default(),
                frames_held_at_stop: 0,
                frames: FrameAccount::default(),
            },
            umem: umem.clone(),
            prog: p.prog,
            devices,
            stack_cfg,
            rss: p.info.rss.clone().map(Arc::new),
        });
    }
    if sets.len() > 1 {
        print_umems(&sets);
    }
    Ok(sets)
}

/// TX metadata is the UMEM's (registered once): if one of its devices
/// cannot take it, every device of the UMEM computes checksums in
/// software (`auto`, printed), or the run fails (`offload`, `verify`).
fn decide_tx_metadata(
    cfg: &RuntimeConfig,
    prepared: &[Prepared],
    umems: &[Arc<SharedUmem>],
    socks: &[Vec<XdpSocket>],
) -> Result<(), Error> {
    for (((umem, socks), spec), p) in umems.iter().zip(socks).zip(&cfg.ifaces).zip(prepared) {
        if !umem.tx_metadata() {
            continue;
        }
        let zero_copy = socks.iter().any(XdpSocket::zero_copy);
        if takes_tx_metadata(&spec.name, p.info.ifindex, zero_copy) {
            continue;
        }
        if cfg.tx_checksum != TxChecksum::Auto {
            return Err(Error::new(
                ErrorKind::Usage,
                format!(
                    "{} cannot take TX metadata: --tx-checksum {:?} is impossible \
                     (try --tx-checksum software or auto)",
                    spec.name,
                    umem.tx_checksum()
                ),
            ));
        }
        umem.software_checksums();
        let sharing: Vec<&str> = umems
            .iter()
            .zip(&cfg.ifaces)
            .filter(|(u, _)| Arc::ptr_eq(u, umem))
            .map(|(_, s)| s.name.as_str())
            .collect();
        eprintln!(
            "xdptcp: {} cannot take TX metadata: TCP checksums in software on the whole UMEM ({})",
            spec.name,
            sharing.join(", ")
        );
    }
    Ok(())
}

/// One line per UMEM when there are several interfaces.
fn print_umems(sets: &[IfaceSetup]) {
    let mut seen: Vec<usize> = Vec::new();
    for s in sets {
        if seen.contains(&s.umem.id()) {
            continue;
        }
        seen.push(s.umem.id());
        let names: Vec<&str> = sets
            .iter()
            .filter(|t| t.umem.id() == s.umem.id())
            .map(|t| t.report.name.as_str())
            .collect();
        eprintln!(
            "xdptcp: UMEM {} for {}: {} frames ({} MiB)",
            s.umem.id(),
            names.join(", "),
            s.umem.frames(),
            (s.umem.frames() * crate::io::xdp::umem::FRAME_SIZE) >> 20
        );
    }
}

/// The frames of every UMEM after teardown, once each.
#[derive(Debug, Clone, serde::Serialize)]
pub struct UmemReport {
    pub id: usize,
    /// The interfaces whose sockets share it.
    pub ifaces: Vec<String>,
    pub frames: FrameAccount,
    /// Frames held by the stacks of all its interfaces when the workers
    /// stopped.
    pub frames_held_at_stop: isize,
}

/// One report per distinct UMEM, in the order of their first interface.
pub(super) fn umem_reports(sets: &[IfaceSetup]) -> Vec<UmemReport> {
    let mut out: Vec<UmemReport> = Vec::new();
    for s in sets {
        match out.iter_mut().find(|u| u.id == s.umem.id()) {
            Some(u) => u.ifaces.push(s.report.name.clone()),
            None => out.push(UmemReport {
                id: s.umem.id(),
                ifaces: vec![s.report.name.clone()],
                frames: s.umem.account(),
                frames_held_at_stop: s.report.frames_held_at_stop,
            }),
        }
    }
    out
}
