//! The results table: absolute figures for context, ratios and added latency as the result.

use std::io::Write;

use crate::load::Measured;

pub struct Row {
    pub name: String,
    pub direct: Measured,
    pub proxied: Measured,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)])
}

pub fn print(rows: &[Row], (rss, peak): (u64, u64)) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\n{:<24} {:>11} {:>11} {:>7} {:>9} {:>9} {:>9} {:>9} {:>6}",
        "workload",
        "direct rps",
        "llmux rps",
        "ratio",
        "+p50 µs",
        "+p99 µs",
        "+p99.9µs",
        "+ttfb µs",
        "errors"
    );
    for row in rows {
        let (d, p) = (&row.direct, &row.proxied);
        let added = |q: f64| percentile(&p.latency, q) - percentile(&d.latency, q);
        let ttfb = if p.ttfb.is_empty() {
            "-".to_owned()
        } else {
            format!("{:.0}", percentile(&p.ttfb, 0.5) - percentile(&d.ttfb, 0.5))
        };
        let _ = writeln!(
            out,
            "{:<24} {:>11.0} {:>11.0} {:>7.3} {:>9.0} {:>9.0} {:>9.0} {:>9} {:>6}",
            row.name,
            d.throughput(),
            p.throughput(),
            p.throughput() / d.throughput().max(1e-9),
            added(0.5),
            added(0.99),
            added(0.999),
            ttfb,
            d.errors + p.errors
        );
    }
    let _ = writeln!(
        out,
        "gateway RSS after the run: {} KiB (peak {} KiB)",
        rss, peak
    );
}
