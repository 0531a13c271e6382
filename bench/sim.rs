//! CPU cost of the stack in the simulator: a 4 MiB bulk transfer over a clean
//! 10 Gbit/s link, reported as segments (both directions, data and ACKs)
//! processed per second of CPU time. Virtual time plays no part here.

use core::time::Duration;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use xdptcp::io::mem::scenario::{run_bulk, BulkParams};
use xdptcp::io::mem::LinkConfig;

fn params(conns: u32) -> BulkParams {
    BulkParams {
        bytes: (4 << 20) / conns as u64,
        conns,
        link: LinkConfig {
            rate_bps: Some(10_000_000_000),
            delay: Duration::from_micros(50),
            queue_limit: 100_000,
            ..LinkConfig::default()
        },
        ..BulkParams::default()
    }
}

fn bulk(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim_bulk_4MiB");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    for conns in [1u32, 16] {
        let p = params(conns);
        // Deterministic: one run tells how many segments every run moves.
        let r = run_bulk(&p);
        assert!(r.intact, "{:?}", r.error);
        let segments = r.link.tx_packets;
        eprintln!(
            "sim bench: {conns} conn(s): {segments} segments per run ({} data bytes)",
            r.bytes
        );
        g.throughput(Throughput::Elements(segments));
        g.bench_function(format!("{conns}_conns_segments"), |b| {
            b.iter(|| {
                let r = run_bulk(&p);
                assert!(r.intact);
                r.link.tx_packets
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bulk);
criterion_main!(benches);
