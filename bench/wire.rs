//! Wire-format micro-benchmarks: the Internet checksum at common sizes, TCP
//! header parse/emit of a data segment with timestamps and SACK, and the
//! full Ethernet + IPv4 + TCP receive parse of a frame.
//!
//! `cargo bench --bench wire` (add `-- --quick` for a short run).

use core::net::Ipv4Addr;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use xdptcp::wire::checksum;
use xdptcp::wire::{
    EtherType, EthernetRepr, IpProtocol, Ipv4Repr, MacAddr, SeqNumber, TcpFlags, TcpRepr,
};

const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const PAYLOAD: usize = 1448;

fn data_segment() -> TcpRepr {
    let mut r = TcpRepr {
        src_port: 8080,
        dst_port: 40000,
        seq: SeqNumber(0x1234_5678),
        ack: SeqNumber(0x9abc_def0),
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window: 501,
        ..TcpRepr::default()
    };
    r.options.timestamps = Some((0x0102_0304, 0x0506_0708));
    r.options
        .sack
        .push(SeqNumber(0x9abd_0000), SeqNumber(0x9abd_1000));
    r.options
        .sack
        .push(SeqNumber(0x9abe_0000), SeqNumber(0x9abe_1000));
    r
}

/// An Ethernet + IPv4 + TCP frame carrying `data_segment()` and 1448 bytes.
fn frame() -> Vec<u8> {
    let tcp = data_segment();
    let tcp_len = tcp.header_len() + PAYLOAD;
    let mut f = vec![0u8; EthernetRepr::HEADER_LEN + Ipv4Repr::HEADER_LEN + tcp_len];
    let (eth, rest) = f.split_at_mut(EthernetRepr::HEADER_LEN);
    EthernetRepr::new(
        MacAddr([2, 0, 0, 0, 0, 2]),
        MacAddr([2, 0, 0, 0, 0, 1]),
        EtherType::Ipv4,
    )
    .emit(eth);
    let (ip, seg) = rest.split_at_mut(Ipv4Repr::HEADER_LEN);
    Ipv4Repr::new(SRC, DST, IpProtocol::Tcp, tcp_len).emit(ip);
    for (i, b) in seg[tcp.header_len()..].iter_mut().enumerate() {
        *b = i as u8;
    }
    tcp.emit(seg, SRC, DST);
    f
}

fn bench_checksum(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum");
    let data: Vec<u8> = (0..9000u32).map(|i| (i * 7 + 3) as u8).collect();
    for len in [64usize, 1500, 9000] {
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(format!("sum/{len}"), |b| {
            b.iter(|| checksum::sum(black_box(&data[..len])))
        });
    }
    g.finish();
}

fn bench_tcp(c: &mut Criterion) {
    let mut g = c.benchmark_group("tcp");
    let r = data_segment();
    let hl = r.header_len();
    // Header only (checksum work excluded): the option codec itself.
    let mut hdr = vec![0u8; hl];
    r.emit_header(&mut hdr);
    g.bench_function("parse_unchecked/ts+sack", |b| {
        b.iter(|| TcpRepr::parse_unchecked(black_box(&hdr)))
    });
    g.bench_function("emit_header/ts+sack", |b| {
        b.iter(|| r.emit_header(black_box(&mut hdr)))
    });
    // Whole segment with a 1448-byte payload: includes the checksum.
    let mut seg = vec![0u8; hl + PAYLOAD];
    r.emit(&mut seg, SRC, DST);
    g.throughput(Throughput::Bytes(seg.len() as u64));
    g.bench_function("parse/ts+sack+1448", |b| {
        b.iter(|| TcpRepr::parse(black_box(&seg), SRC, DST))
    });
    g.bench_function("emit/ts+sack+1448", |b| {
        b.iter(|| r.emit(black_box(&mut seg), SRC, DST))
    });
    g.finish();
}

fn parse_frame(f: &[u8]) -> Option<(TcpRepr, usize)> {
    let eth = EthernetRepr::parse(f).ok()?;
    if eth.ethertype != EtherType::Ipv4 {
        return None;
    }
    let pkt = f.get(EthernetRepr::HEADER_LEN..)?;
    let (ip, hl) = Ipv4Repr::parse(pkt).ok()?;
    if ip.protocol != IpProtocol::Tcp {
        return None;
    }
    let seg = pkt.get(hl..hl + ip.payload_len)?;
    TcpRepr::parse(seg, ip.src, ip.dst).ok()
}

fn bench_frame(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    let f = frame();
    assert!(parse_frame(&f).is_some());
    g.throughput(Throughput::Bytes(f.len() as u64));
    g.bench_function("eth+ipv4+tcp/parse", |b| {
        b.iter(|| parse_frame(black_box(&f)))
    });
    g.finish();
}

criterion_group!(benches, bench_checksum, bench_tcp, bench_frame);
criterion_main!(benches);
