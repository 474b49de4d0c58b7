//! The report: per-workload ratios and added latency, the translated-path comparison, routing
//! table sizes, memory, instructions per request, the mock's own figures, the optional LiteLLM
//! and Portkey columns, and the targets with what this run measured against them.

use std::fmt::Write as _;
use std::time::Duration;

use crate::callgrind::Count;
use crate::load::Measured;

/// A workload measured directly and through llmux (and maybe LiteLLM and Portkey).
#[derive(Debug)]
pub struct Pair {
    pub direct: Measured,
    pub proxied: Measured,
    /// CPU time of the mock during the direct run, µs.
    pub mock_cpu_us: Option<f64>,
    /// CPU time of the gateway during the proxied run, µs.
    pub gateway_cpu_us: Option<f64>,
    /// Largest gateway RSS seen during the proxied run, KiB.
    pub max_rss_kib: u64,
    pub litellm: Option<Measured>,
    /// CPU time of the LiteLLM process during its run, µs. With its default single worker it
    /// serves requests in-process; forked workers would not be counted.
    pub litellm_cpu_us: Option<f64>,
    pub portkey: Option<Measured>,
    /// CPU time of the Portkey (Node) process during its run, µs.
    pub portkey_cpu_us: Option<f64>,
    /// The same workload through the byte relay (see `relay`).
    pub floor: Option<Floor>,
}

/// A peer gateway's run of a workload and its CPU µs during it.
type PeerRun<'a> = Option<(&'a Measured, Option<f64>)>;

/// A workload measured through the byte relay, the floor of any proxy process.
#[derive(Debug)]
pub struct Floor {
    pub measured: Measured,
    /// CPU time of the relay process during its run, µs.
    pub cpu_us: Option<f64>,
}

impl Floor {
    fn cpu_per_request(&self) -> Option<f64> {
        self.cpu_us
            .map(|us| us / self.measured.completed.max(1) as f64)
    }
}

pub fn percentile(sorted: &[u32], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted
        .get(rank.min(sorted.len() - 1))
        .map(|&v| f64::from(v))
}

fn added(direct: &[u32], proxied: &[u32], p: f64) -> Option<f64> {
    Some(percentile(proxied, p)? - percentile(direct, p)?)
}

impl Pair {
    pub fn ratio(&self) -> f64 {
        self.proxied.throughput() / self.direct.throughput().max(1e-9)
    }

    pub fn added_latency(&self, p: f64) -> Option<f64> {
        added(&self.direct.latency, &self.proxied.latency, p)
    }

    pub fn added_ttfb(&self, p: f64) -> Option<f64> {
        added(&self.direct.ttfb, &self.proxied.ttfb, p)
    }

    pub fn added_gap(&self, p: f64) -> Option<f64> {
        added(&self.direct.gaps, &self.proxied.gaps, p)
    }

    /// Gateway CPU µs per proxied request (warm-up and tail included on both sides).
    pub fn cpu_per_request(&self) -> Option<f64> {
        Some(self.gateway_cpu_us? / self.proxied.completed.max(1) as f64)
    }

    pub fn mock_cpu_per_request(&self) -> Option<f64> {
        Some(self.mock_cpu_us? / self.direct.completed.max(1) as f64)
    }

    pub fn errors(&self) -> usize {
        self.direct.errors + self.proxied.errors
    }

    /// The added latency a translated row is compared on: TTFB for streams, else the whole
    /// request.
    fn compared_p50(&self, stream: bool) -> Option<f64> {
        if stream {
            self.added_ttfb(0.5)
        } else {
            self.added_latency(0.5)
        }
    }
}

/// One row of the main table.
#[derive(Debug)]
pub struct Row {
    pub name: String,
    pub stream: bool,
    /// Direct and proxied streams carry the same events (gaps are comparable).
    pub same_events: bool,
    pub baseline: Option<String>,
    /// `Err`: why the row was not measured.
    pub result: Result<Pair, String>,
}

impl Row {
    pub fn pair(&self) -> Option<&Pair> {
        self.result.as_ref().ok()
    }
}

/// One routing table size.
#[derive(Debug)]
pub struct RoutingRow {
    pub combinations: usize,
    pub row: Row,
    pub idle_kib: u64,
    pub startup: Duration,
}

/// One open-streams measurement.
#[derive(Debug)]
pub struct Streams {
    pub requested: usize,
    pub opened: usize,
    pub idle_kib: u64,
    pub with_streams_kib: u64,
}

impl Streams {
    pub fn kib_per_stream(&self) -> f64 {
        (self.with_streams_kib as f64 - self.idle_kib as f64) / self.opened.max(1) as f64
    }
}

/// Gateway memory.
#[derive(Debug, Default)]
pub struct Memory {
    pub idle_kib: Option<u64>,
    /// The anonymous part of the idle RSS (median).
    pub idle_anon_kib: Option<u64>,
    pub after_one_request_kib: Option<u64>,
    pub load_concurrency: usize,
    pub under_load_kib: Option<u64>,
    pub after_load_kib: Option<u64>,
    pub streams: Vec<Streams>,
}

/// Everything one run measured.
#[derive(Debug, Default)]
pub struct Report {
    pub rows: Vec<Row>,
    pub routing: Vec<RoutingRow>,
    pub memory: Option<Memory>,
    /// `Err`: why instructions were not counted.
    pub instructions: Option<Result<Vec<Count>, String>>,
    /// `Ok((version, workers))` or why LiteLLM was skipped.
    pub litellm: Option<Result<(String, String), String>>,
    /// `Ok(versions)` or why Portkey was skipped.
    pub portkey: Option<Result<String, String>>,
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:.0}"))
}

fn signed(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_owned(), |v| format!("{v:+.0}"))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

impl Report {
    fn row(&self, name: &str) -> Option<&Pair> {
        self.rows
            .iter()
            .find(|r| r.name == name)
            .and_then(Row::pair)
    }

    /// The whole report as text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.main_table(&mut out);
        self.translated(&mut out);
        self.routing(&mut out);
        self.memory(&mut out);
        self.instructions(&mut out);
        self.mock(&mut out);
        self.floor(&mut out);
        self.litellm(&mut out);
        self.portkey(&mut out);
        self.targets(&mut out);
        out
    }

    fn main_table(&self, out: &mut String) {
        if self.rows.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nPer workload: llmux vs the mock directly. Added = llmux − direct at the same \
             percentile, µs. cpu = gateway CPU µs per request; RSS = gateway max during the row;\n\
             gap n/a: a translated stream has other events than the vendor's, so gaps do not pair up."
        );
        let _ = writeln!(
            out,
            "{:<32} {:>9} {:>9} {:>6} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>7} {:>6} {:>7} {:>6}",
            "workload",
            "direct/s",
            "llmux/s",
            "ratio",
            "+p50",
            "+p99",
            "+p99.9",
            "+ttfb50",
            "+ttfb99",
            "+gap50",
            "+gap99",
            "cpu",
            "RSS MiB",
            "errors"
        );
        for row in &self.rows {
            let Some(p) = row.pair() else {
                let why = row.result.as_ref().err().map_or("", String::as_str);
                let _ = writeln!(out, "{:<32} {why}", row.name);
                continue;
            };
            let gap = |q| {
                if row.same_events {
                    signed(p.added_gap(q))
                } else if row.stream {
                    "n/a".to_owned()
                } else {
                    "-".to_owned()
                }
            };
            let _ = writeln!(
                out,
                "{:<32} {:>9.0} {:>9.0} {:>6.3} {:>7} {:>7} {:>8} {:>7} {:>7} {:>7} {:>7} {:>6} {:>7.1} {:>6}",
                row.name,
                p.direct.throughput(),
                p.proxied.throughput(),
                p.ratio(),
                signed(p.added_latency(0.5)),
                signed(p.added_latency(0.99)),
                signed(p.added_latency(0.999)),
                signed(p.added_ttfb(0.5)),
                signed(p.added_ttfb(0.99)),
                gap(0.5),
                gap(0.99),
                num(p.cpu_per_request()),
                p.max_rss_kib as f64 / 1024.0,
                p.errors()
            );
        }
        for row in &self.rows {
            if let Some(p) = row.pair() {
                for (side, m) in [("direct", &p.direct), ("llmux", &p.proxied)] {
                    if let Some(err) = &m.first_error {
                        let _ = writeln!(
                            out,
                            "  {}: {} {side} error(s), first: {err}",
                            row.name, m.errors
                        );
                    }
                }
            }
        }
    }

    fn translated(&self, out: &mut String) {
        let compared: Vec<_> = self
            .rows
            .iter()
            .filter_map(|r| Some((r, r.baseline.as_deref()?, r.pair()?)))
            .collect();
        if compared.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nTranslated and other-ingress paths vs the same-protocol path (added p50; \
             added TTFB p50 for streams; target ≤ 2×):"
        );
        for (row, baseline, pair) in compared {
            let own = pair.compared_p50(row.stream);
            let base = self.row(baseline).and_then(|b| b.compared_p50(row.stream));
            let ratio = match (own, base) {
                (Some(own), Some(base)) if base > 0.0 => format!("{:.2}×", own / base),
                (_, None) => "n/a (same-protocol row not measured)".to_owned(),
                _ => "n/a (same-protocol added ≤ 0)".to_owned(),
            };
            let _ = writeln!(
                out,
                "  {:<32} {:>6} µs vs {:>6} µs ({baseline}): {ratio}",
                row.name,
                signed(own),
                signed(base),
            );
        }
    }

    fn routing(&self, out: &mut String) {
        if self.routing.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nRouting table size (requests name no model: the whole pool is a candidate):"
        );
        let _ = writeln!(
            out,
            "{:>13} {:>9} {:>9} {:>6} {:>7} {:>7} {:>6} {:>10} {:>9} {:>6}",
            "combinations",
            "direct/s",
            "llmux/s",
            "ratio",
            "+p50",
            "+p99",
            "cpu",
            "idle RSS",
            "start ms",
            "errors"
        );
        for r in &self.routing {
            let Some(p) = r.row.pair() else {
                let why = r.row.result.as_ref().err().map_or("", String::as_str);
                let _ = writeln!(out, "{:>13} {why}", r.combinations);
                continue;
            };
            let _ = writeln!(
                out,
                "{:>13} {:>9.0} {:>9.0} {:>6.3} {:>7} {:>7} {:>6} {:>10} {:>9} {:>6}",
                r.combinations,
                p.direct.throughput(),
                p.proxied.throughput(),
                p.ratio(),
                signed(p.added_latency(0.5)),
                signed(p.added_latency(0.99)),
                num(p.cpu_per_request()),
                mib(r.idle_kib),
                r.startup.as_millis(),
                p.errors()
            );
        }
    }

    fn memory(&self, out: &mut String) {
        let Some(m) = &self.memory else { return };
        let _ = writeln!(out, "\nGateway memory (RSS):");
        let show = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), mib);
        let _ = writeln!(
            out,
            "  idle, just started          {} (median of {} starts; anonymous: {}, the rest is \
             file-backed code and data)",
            show(m.idle_kib),
            crate::IDLE_STARTS,
            show(m.idle_anon_kib)
        );
        let _ = writeln!(
            out,
            "  idle, after one request     {}",
            show(m.after_one_request_kib)
        );
        let _ = writeln!(
            out,
            "  under c={} load (max)       {}",
            m.load_concurrency,
            show(m.under_load_kib)
        );
        let _ = writeln!(
            out,
            "  after that load             {}",
            show(m.after_load_kib)
        );
        for s in &m.streams {
            let _ = writeln!(
                out,
                "  {} open streams ({} opened): {} (idle {}) → {:.1} KiB per open stream",
                s.requested,
                s.opened,
                mib(s.with_streams_kib),
                mib(s.idle_kib),
                s.kib_per_stream()
            );
        }
    }

    fn instructions(&self, out: &mut String) {
        let Some(result) = &self.instructions else {
            return;
        };
        let _ = writeln!(
            out,
            "\nInstructions per proxied request (callgrind Ir; (Ir_large − Ir_small) / (N_large − N_small)):"
        );
        match result {
            Err(why) => {
                let _ = writeln!(out, "  skipped: {why}");
            }
            Ok(counts) => {
                for c in counts {
                    let _ = writeln!(
                        out,
                        "  {:<32} {:>10.0} Ir/request   ({} req: {} Ir, {} req: {} Ir)",
                        c.name,
                        c.per_request(),
                        c.small.0,
                        c.small.1,
                        c.large.0,
                        c.large.1
                    );
                }
            }
        }
    }

    fn mock(&self, out: &mut String) {
        // The same-protocol row where llmux served the most requests says most about who the
        // bottleneck is.
        let busiest = self
            .rows
            .iter()
            .filter(|r| !r.stream && r.baseline.is_none())
            .filter_map(|r| Some((r, r.pair()?)))
            .max_by(|a, b| {
                a.1.proxied
                    .throughput()
                    .total_cmp(&b.1.proxied.throughput())
            });
        let Some((row, p)) = busiest else { return };
        let _ = writeln!(out, "\nThe mock on its own ({}):", row.name);
        let _ = writeln!(
            out,
            "  direct {:.0} requests/s with the load generator on the same core; llmux {:.0}/s",
            p.direct.throughput(),
            p.proxied.throughput()
        );
        if let (Some(mock), Some(gateway)) = (p.mock_cpu_per_request(), p.cpu_per_request()) {
            // How busy each side's core was: the gateway alone on cpu 0; the mock shares cpu 1
            // with the load generator.
            let gateway_busy = gateway * p.proxied.throughput() / 1e4;
            let mock_busy = mock * p.proxied.throughput() / 1e4;
            let verdict = if gateway_busy >= 85.0 {
                "llmux's core was saturated, so the proxied runs measure llmux, not the mock"
            } else {
                "llmux's core was not saturated in this row (too little concurrency, or \
                 something else limited it)"
            };
            let _ = writeln!(
                out,
                "  CPU per request: mock {mock:.1} µs, llmux {gateway:.1} µs ({:.1}×). At llmux's \
                 rate the mock used {mock_busy:.0}% of cpu 1 and llmux {gateway_busy:.0}% of cpu 0: \
                 {verdict}",
                gateway / mock.max(1e-9)
            );
        }
    }

    fn floor(&self, out: &mut String) {
        let rows: Vec<(&Row, &Pair, &Floor)> = self
            .rows
            .iter()
            .filter_map(|r| r.pair().and_then(|p| Some((r, p, p.floor.as_ref()?))))
            .collect();
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nThe floor: a byte relay (no HTTP, TCP_NODELAY, current-thread tokio) on llmux's core in \
             front of the same mock. Added = relay − direct, µs;\nbeyond = llmux's added − the relay's \
             added: what llmux's own work costs on top of being a second process."
        );
        let _ = writeln!(
            out,
            "{:<32} {:>9} {:>9} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "workload",
            "relay/s",
            "ratio",
            "+p50",
            "+p99",
            "+ttfb50",
            "cpu",
            "llmux+50",
            "beyond50",
            "llmux+tt",
            "beyondtt"
        );
        for (row, p, floor) in rows {
            let f = &floor.measured;
            let relay_p50 = added(&p.direct.latency, &f.latency, 0.5);
            let relay_ttfb = added(&p.direct.ttfb, &f.ttfb, 0.5);
            let beyond = |llmux: Option<f64>, relay: Option<f64>| Some(llmux? - relay?);
            let _ = writeln!(
                out,
                "{:<32} {:>9.0} {:>9.3} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                row.name,
                f.throughput(),
                f.throughput() / p.direct.throughput().max(1e-9),
                signed(relay_p50),
                signed(added(&p.direct.latency, &f.latency, 0.99)),
                signed(relay_ttfb),
                num(floor.cpu_per_request()),
                signed(p.added_latency(0.5)),
                signed(beyond(p.added_latency(0.5), relay_p50)),
                signed(p.added_ttfb(0.5)),
                signed(beyond(p.added_ttfb(0.5), relay_ttfb)),
            );
            error_line(out, "relay", f);
        }
    }

    fn litellm(&self, out: &mut String) {
        let Some(info) = &self.litellm else { return };
        let info = match info {
            Ok((version, workers)) => Ok(format!("litellm {version}; {workers}")),
            Err(why) => Err(why.clone()),
        };
        self.peer(out, "LiteLLM", ["litellm", "litel"], info.as_ref(), |p| {
            Some((p.litellm.as_ref()?, p.litellm_cpu_us))
        });
    }

    fn portkey(&self, out: &mut String) {
        let Some(info) = &self.portkey else { return };
        self.peer(out, "Portkey", ["portkey", "portk"], info.as_ref(), |p| {
            Some((p.portkey.as_ref()?, p.portkey_cpu_us))
        });
    }

    /// A peer gateway's table beside llmux's figures: its column name and a five-letter short
    /// form, a line on what runs (or why it was skipped), and its run and CPU µs in a row.
    fn peer(
        &self,
        out: &mut String,
        title: &str,
        [name, short]: [&str; 2],
        info: Result<&String, &String>,
        measured: fn(&Pair) -> PeerRun<'_>,
    ) {
        let _ = writeln!(out, "\n{title} (same mocks, same core as llmux):");
        let info = match info {
            Err(why) => {
                let _ = writeln!(out, "  skipped: {why}");
                return;
            }
            Ok(info) => info,
        };
        let _ = writeln!(out, "  {info}");
        let _ = writeln!(
            out,
            "{:<32} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "workload",
            "direct/s",
            "llmux/s",
            format!("{name}/s"),
            "llmux×",
            format!("{name}×"),
            "llmux+50",
            format!("{short}+50"),
            "llmux+99",
            format!("{short}+99"),
            "llmux+tt",
            format!("{short}+tt"),
            "llmuxcpu",
            format!("{short}cpu")
        );
        for row in &self.rows {
            let Some(p) = row.pair() else { continue };
            let Some((l, cpu_us)) = measured(p) else {
                continue;
            };
            let peer_added = |q| added(&p.direct.latency, &l.latency, q);
            let peer_ttfb = |q| added(&p.direct.ttfb, &l.ttfb, q);
            let _ = writeln!(
                out,
                "{:<32} {:>9.0} {:>9.0} {:>9.0} {:>8.3} {:>8.3} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                row.name,
                p.direct.throughput(),
                p.proxied.throughput(),
                l.throughput(),
                p.ratio(),
                l.throughput() / p.direct.throughput().max(1e-9),
                signed(p.added_latency(0.5)),
                signed(peer_added(0.5)),
                signed(p.added_latency(0.99)),
                signed(peer_added(0.99)),
                signed(p.added_ttfb(0.5)),
                signed(peer_ttfb(0.5)),
                num(p.cpu_per_request()),
                num(cpu_us.map(|us| us / l.completed.max(1) as f64)),
            );
            error_line(out, name, l);
        }
    }

    fn targets(&self, out: &mut String) {
        let mut lines = Vec::new();
        let c64 = self.row("chat 1KB c=64");
        let c1 = self.row("chat 1KB c=1");
        lines.push(at_least(
            "throughput at c=64 ≥ 0.30× direct",
            c64.map(Pair::ratio),
            0.30,
            "×",
        ));
        lines.push(at_most(
            "CPU ≤ 25 µs per request (chat 1KB c=64)",
            c64.and_then(Pair::cpu_per_request),
            25.0,
            " µs",
        ));
        lines.push(at_most(
            "one connection added p50 ≤ 60 µs",
            c1.and_then(|p| p.added_latency(0.5)),
            60.0,
            " µs",
        ));
        lines.extend(c1.and_then(|p| floor_note(p, |m| &m.latency)));
        lines.push(at_most(
            "one connection added p99 ≤ 250 µs",
            c1.and_then(|p| p.added_latency(0.99)),
            250.0,
            " µs",
        ));
        let stream_c1 = self.row(&format!("stream {} chunks c=1", crate::workloads::CHUNKS));
        lines.push(at_most(
            "streaming added TTFB p50 ≤ 100 µs (c=1)",
            stream_c1.and_then(|p| p.added_ttfb(0.5)),
            100.0,
            " µs",
        ));
        lines.extend(stream_c1.and_then(|p| floor_note(p, |m| &m.ttfb)));
        // MB and KB are decimal: 10 MB = 10,000,000 bytes.
        let kib = |mb: f64| mb * 1e6 / 1024.0;
        let memory = self.memory.as_ref();
        lines.push(at_most(
            "idle RSS ≤ 10 MB",
            memory.and_then(|m| m.idle_kib).map(|v| v as f64 / kib(1.0)),
            10.0,
            " MB",
        ));
        lines.push(at_most(
            "RSS at c=64 ≤ 30 MB",
            memory
                .and_then(|m| m.under_load_kib)
                .map(|v| v as f64 / kib(1.0)),
            30.0,
            " MB",
        ));
        lines.push(at_most(
            "≤ 20 KB per open stream (largest N)",
            memory
                .and_then(|m| m.streams.iter().max_by_key(|s| s.requested))
                .map(|s| s.kib_per_stream() * 1024.0 / 1000.0),
            20.0,
            " KB",
        ));
        for row in &self.rows {
            let (Some(baseline), Some(pair)) = (&row.baseline, row.pair()) else {
                continue;
            };
            if !row.name.starts_with("openai→") {
                continue;
            }
            let ratio = match (
                pair.compared_p50(row.stream),
                self.row(baseline).and_then(|b| b.compared_p50(row.stream)),
            ) {
                (Some(own), Some(base)) if base > 0.0 => Some(own / base),
                _ => None,
            };
            lines.push(at_most(
                &format!("{}: within 2× same-protocol", row.name),
                ratio,
                2.0,
                "×",
            ));
        }
        let _ = writeln!(out, "\nTargets (from the issue) against this run:");
        for line in lines {
            let _ = writeln!(out, "  {line}");
        }
    }
}

fn verdict(
    target: &str,
    value: Option<f64>,
    limit: f64,
    unit: &str,
    ok: fn(f64, f64) -> bool,
) -> String {
    match value {
        None => format!("{target:<52} not measured in this run"),
        Some(v) if ok(v, limit) => format!("{target:<52} {v:.2}{unit}: met"),
        Some(v) => format!(
            "{target:<52} {v:.2}{unit}: MISSED by {:.2}{unit} ({:.0}%)",
            (v - limit).abs(),
            (v - limit).abs() / limit * 100.0
        ),
    }
}

/// `  <who> errors: N, first: …` when a comparison run had failures (they are not llmux's).
fn error_line(out: &mut String, who: &str, measured: &Measured) {
    if measured.errors > 0 {
        let _ = writeln!(
            out,
            "  {who} errors: {}, first: {}",
            measured.errors,
            measured.first_error.as_deref().unwrap_or("")
        );
    }
}

/// How much of a p50 the floor (the byte relay) accounts for: `    of which the floor …`.
fn floor_note(pair: &Pair, samples: fn(&Measured) -> &Vec<u32>) -> Option<String> {
    let floor = pair.floor.as_ref()?;
    let relay = added(samples(&pair.direct), samples(&floor.measured), 0.5)?;
    let llmux = added(samples(&pair.direct), samples(&pair.proxied), 0.5)?;
    Some(format!(
        "    of which the floor (a byte relay on the same core) {}: llmux beyond the floor {} µs",
        format_args!("{relay:+.0} µs"),
        format_args!("{:+.0}", llmux - relay)
    ))
}

fn at_most(target: &str, value: Option<f64>, limit: f64, unit: &str) -> String {
    verdict(target, value, limit, unit, |v, l| v <= l)
}

fn at_least(target: &str, value: Option<f64>, limit: f64, unit: &str) -> String {
    verdict(target, value, limit, unit, |v, l| v >= l)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn measured(latency: Vec<u32>) -> Measured {
        Measured {
            latency,
            ..Measured::default()
        }
    }

    fn pair(direct: u32, llmux: u32, relay: Option<u32>) -> Pair {
        Pair {
            direct: measured(vec![direct; 3]),
            proxied: measured(vec![llmux; 3]),
            mock_cpu_us: None,
            gateway_cpu_us: None,
            max_rss_kib: 0,
            litellm: None,
            litellm_cpu_us: None,
            portkey: None,
            portkey_cpu_us: None,
            floor: relay.map(|r| Floor {
                measured: measured(vec![r; 3]),
                cpu_us: None,
            }),
        }
    }

    #[test]
    fn the_floor_note_splits_llmux_added_latency_into_floor_and_beyond() {
        // Direct 40 µs, relay 140 µs, llmux 175 µs: the floor is +100, llmux beyond it +35.
        let note = floor_note(&pair(40, 175, Some(140)), |m| &m.latency).unwrap();
        assert!(note.contains("+100 µs"), "{note}");
        assert!(note.contains("beyond the floor +35 µs"), "{note}");
    }

    #[test]
    fn without_a_floor_run_there_is_no_note() {
        assert_eq!(floor_note(&pair(40, 175, None), |m| &m.latency), None);
    }
}
