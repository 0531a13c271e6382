//! CPU cost of the stack in the simulator: a 4 MiB bulk transfer over a clean
//! 10 Gbit/s link, reported as segments (both directions, data and ACKs)
//! processed per second of CPU time (the thread's user + system time, so
//! other load on the machine does not count). Virtual time plays no part.
//! The cost includes the simulator's copies and generating and checking the
//! data stream, as an application would.

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

/// CPU time of this thread so far (clock ticks of 10 ms), if Linux says.
fn thread_cpu() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name in parentheses; utime and stime are
    // fields 14 and 15 of the line, 12th and 13th after the ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let mut f = rest.split_whitespace().skip(11);
    let ticks: u64 = f.next()?.parse::<u64>().ok()? + f.next()?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn bulk(c: &mut Criterion) {
    let mut g = c.benchmark_group("sim_bulk_4MiB_cpu");
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
            b.iter_custom(|iters| {
                let wall = std::time::Instant::now();
                let cpu0 = thread_cpu();
                for _ in 0..iters {
                    let r = run_bulk(&p);
                    assert!(r.intact);
                }
                match (cpu0, thread_cpu()) {
                    (Some(a), Some(b)) => (b - a).max(Duration::from_nanos(1)),
                    _ => wall.elapsed(),
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bulk);
criterion_main!(benches);
