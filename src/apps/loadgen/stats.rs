//! Load generator results: per-worker counters and a latency histogram
//! (HdrHistogram, microseconds), merged into one shared record a few times
//! a second (for the progress line) and at the end; the summary, its JSON,
//! the percentile distribution file and an SVG percentile plot.

use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Why a request or connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The target refused the connection (RST to our SYN).
    Refused,
    /// The target reset an open connection.
    Reset,
    /// No answer to a request in time.
    Timeout,
    /// No answer to a SYN in time.
    Handshake,
    /// A response that --verify rejected (content, status, framing).
    Verify,
    /// The peer closed with requests outstanding.
    Closed,
    /// No connection could be opened (no route, ports or table exhausted).
    Connect,
}

pub const ERROR_KINDS: [(ErrorKind, &str); 7] = [
    (ErrorKind::Refused, "refused"),
    (ErrorKind::Reset, "reset"),
    (ErrorKind::Timeout, "timeout"),
    (ErrorKind::Handshake, "handshake"),
    (ErrorKind::Verify, "verify"),
    (ErrorKind::Closed, "closed"),
    (ErrorKind::Connect, "connect"),
];

fn kind_index(k: ErrorKind) -> usize {
    ERROR_KINDS.iter().position(|(x, _)| *x == k).unwrap_or(0)
}

/// A new latency histogram: 1 us to 1 hour, 3 significant digits.
pub fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap())
}

/// One worker's counters since its last flush.
pub struct Local {
    pub requests: u64,
    pub bytes: u64,
    pub errors: [u64; 7],
    pub hist: Histogram<u64>,
}

impl Default for Local {
    fn default() -> Self {
        Local {
            requests: 0,
            bytes: 0,
            errors: [0; 7],
            hist: new_hist(),
        }
    }
}

impl Local {
    pub fn error(&mut self, k: ErrorKind) {
        self.errors[kind_index(k)] += 1;
    }
}

/// What all workers report into.
pub struct Shared {
    pub requests: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: [AtomicU64; 7],
    /// Connections established right now, over all workers.
    pub connections: AtomicU64,
    /// Connections opened in total.
    pub opened: AtomicU64,
    /// Most connections established at once.
    pub peak: AtomicU64,
    pub hist: Mutex<Histogram<u64>>,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            requests: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: Default::default(),
            connections: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            peak: AtomicU64::new(0),
            hist: Mutex::new(new_hist()),
        }
    }
}

impl Shared {
    /// Move `l`'s counts into the shared record.
    pub fn flush(&self, l: &mut Local) {
        self.requests.fetch_add(l.requests, Ordering::Relaxed);
        self.bytes.fetch_add(l.bytes, Ordering::Relaxed);
        for (a, e) in self.errors.iter().zip(l.errors.iter()) {
            a.fetch_add(*e, Ordering::Relaxed);
        }
        if !l.hist.is_empty() {
            if let Ok(mut h) = self.hist.lock() {
                let _ = h.add(&l.hist);
            }
            l.hist.reset();
        }
        l.requests = 0;
        l.bytes = 0;
        l.errors = [0; 7];
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.iter().map(|e| e.load(Ordering::Relaxed)).sum()
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
            mean: (h.mean() * 10.0).round() / 10.0,
        }
    }
}

/// The final result (`--json`).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Summary {
    pub mode: String,
    pub target: String,
    pub requests: u64,
    pub errors: u64,
    pub errors_by_kind: serde_json::Map<String, serde_json::Value>,
    pub rps: f64,
    pub bytes: u64,
    pub throughput_mbps: f64,
    pub connections: u64,
    pub connections_opened: u64,
    /// Most connections established at once.
    pub connections_peak: u64,
    pub duration_s: f64,
    /// Open-loop target rate (requests/s), if any.
    pub rate: Option<f64>,
    pub latency_us: Latency,
}

impl Summary {
    pub fn human(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "loadgen: {} against {}, {} connections ({} open at most), {:.1} s{}",
            self.mode,
            self.target,
            self.connections,
            self.connections_peak,
            self.duration_s,
            self.rate
                .map(|r| format!(", open loop at {r:.0} req/s"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            s,
            "  requests  {:>12}  ({:.1}/s)\n  bytes     {:>12}  ({:.2} Mbit/s)\n  errors    {:>12}{}",
            self.requests,
            self.rps,
            self.bytes,
            self.throughput_mbps,
            self.errors,
            if self.errors > 0 {
                format!(
                    "  ({})",
                    self.errors_by_kind
                        .iter()
                        .filter(|(_, v)| v.as_u64().unwrap_or(0) > 0)
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                String::new()
            }
        );
        let l = &self.latency_us;
        let _ = write!(
            s,
            "  latency   p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (mean {:.1})",
            us(l.p50),
            us(l.p90),
            us(l.p99),
            us(l.p999),
            us(l.max),
            l.mean
        );
        s
    }
}

/// Microseconds, human-sized.
pub fn us(v: u64) -> String {
    if v >= 10_000 {
        format!("{:.2} ms", v as f64 / 1000.0)
    } else {
        format!("{v} us")
    }
}

/// Sub-buckets of a 3-significant-digit histogram (2^ceil(log2(2 * 10^3))).
const SUB_BUCKETS: u32 = 2048;

/// HdrHistogram's percentile distribution format (values in milliseconds,
/// as `HistogramLogProcessor`/`outputPercentileDistribution` write them).
pub fn percentile_file(h: &Histogram<u64>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        let q = v.quantile_iterated_to();
        let inv = if q < 1.0 {
            format!("{:>14.2}", 1.0 / (1.0 - q))
        } else {
            String::new()
        };
        let _ = writeln!(
            s,
            "{:>12.3} {:>2.12} {:>10} {}",
            v.value_iterated_to() as f64 / 1000.0,
            q,
            total,
            inv
        );
    }
    let _ = writeln!(
        s,
        "#[Mean    = {:>12.3}, StdDeviation   = {:>12.3}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    );
    let _ = writeln!(
        s,
        "#[Max     = {:>12.3}, Total count    = {:>12}]",
        h.max() as f64 / 1000.0,
        h.len()
    );
    let _ = writeln!(
        s,
        "#[Buckets = {:>12}, SubBuckets     = {:>12}]",
        h.buckets(),
        SUB_BUCKETS
    );
    s
}

/// A latency-by-percentile plot: x is the percentile on the usual
/// log(1/(1-p)) scale (50%, 90%, 99%, ... to the right), y the latency.
pub fn svg_plot(h: &Histogram<u64>, title: &str) -> String {
    let (w, ht, ml, mb, mt, mr) = (800.0, 480.0, 70.0, 50.0, 40.0, 20.0);
    let pw = w - ml - mr;
    let ph = ht - mt - mb;
    let max_nines = 5.0f64; // up to 99.999%
    let xs = |q: f64| {
        let n = (-(1.0 - q.min(0.999_999)).log10()).clamp(0.0, max_nines);
        ml + pw * n / max_nines
    };
    let ymax = (h.max().max(1) as f64 * 1.1).max(10.0);
    let ys = |v: f64| mt + ph * (1.0 - v / ymax);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{ht}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{ht}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" font-size="15" text-anchor="middle">{}</text>"#,
        w / 2.0,
        xml_escape(title)
    );
    // Axes, grid and labels.
    for (n, label) in [
        (0.0, "0%"),
        (1.0, "90%"),
        (2.0, "99%"),
        (3.0, "99.9%"),
        (4.0, "99.99%"),
        (5.0, "99.999%"),
    ] {
        let x = ml + pw * n / max_nines;
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{mt}" x2="{x:.1}" y2="{:.1}" stroke="#ddd"/><text x="{x:.1}" y="{:.1}" text-anchor="middle">{label}</text>"##,
            mt + ph,
            mt + ph + 18.0
        );
    }
    for i in 0..=5 {
        let v = ymax * f64::from(i) / 5.0;
        let y = ys(v);
        let _ = writeln!(
            s,
            r##"<line x1="{ml}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
            ml + pw,
            ml - 6.0,
            y + 4.0,
            us(v as u64)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">percentile</text>"#,
        ml + pw / 2.0,
        ht - 8.0
    );
    let _ = writeln!(
        s,
        r#"<text x="16" y="{:.1}" transform="rotate(-90 16 {:.1})" text-anchor="middle">latency</text>"#,
        mt + ph / 2.0,
        mt + ph / 2.0
    );
    if !h.is_empty() {
        let mut pts = String::new();
        for v in h.iter_quantiles(10) {
            let q = v.quantile_iterated_to();
            let _ = write!(pts, "{:.1},{:.1} ", xs(q), ys(v.value_iterated_to() as f64));
        }
        let _ = writeln!(
            s,
            r##"<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{pts}"/>"##
        );
    }
    s.push_str("</svg>\n");
    s
}

fn xml_escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_file_and_plot() {
        let mut h = new_hist();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let l = Latency::of(&h);
        assert!((4990..=5010).contains(&l.p50), "{l:?}");
        assert!((9890..=9910).contains(&l.p99), "{l:?}");
        let f = percentile_file(&h);
        assert!(f.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
        assert!(f.contains("#[Max     =       10.007"), "{f}");
        assert!(f.lines().any(|l| l.contains("1.000000000000      10000")));
        let svg = svg_plot(&h, "a <test>");
        assert!(
            svg.starts_with("<svg") && svg.contains("polyline") && svg.contains("&lt;test&gt;")
        );
        assert_eq!(Latency::of(&new_hist()).max, 0);
    }
}
