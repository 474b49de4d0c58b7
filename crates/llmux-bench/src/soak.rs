//! `--soak SECONDS`: mixed traffic on every ingress (Chat Completions, Responses, Messages) in
//! front of OpenAI-, Anthropic- and Gemini-format vendors on one mock, streams and whole answers,
//! with 5 % of vendor calls faulted (500s and streams cut mid-way) and 5 % of clients hanging
//! up early, while the gateway's RSS is sampled. PASS when the RSS at the end is within 10 % of
//! the RSS after the first minute (a sixth of the run when shorter than six minutes), the
//! gateway is alive and answers every request shape correctly afterwards, and
//! `llmux_panics_total` is 0.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;

use crate::client::{self, Conn, Rng};
use crate::load::{Framing, Target};
use crate::processes::{Launch, MockPacing, start_gateway, start_mock};
use crate::sys;
use crate::workloads::{self, CHAT, MESSAGES, Mock};

/// Share of client requests that hang up early.
const DISCONNECT_SHARE: f64 = 0.05;
/// Share of vendor calls faulted, half with a 500, half cut after two events.
const FAULT_SHARE: f64 = 0.05;
/// How often the gateway's RSS is read.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// The end RSS may exceed the first-minute RSS by this share at most.
const RSS_TOLERANCE: f64 = 0.10;
/// The mock's pacing: a stream is 10 content events 2 ms apart, every answer starts after 10 ms.
const PACING: MockPacing = MockPacing {
    chunks: 10,
    chunk_delay_ms: 2,
    latency_ms: 10,
};
/// A whole-answer hang-up happens after a delay drawn in `[0, this)` µs (under the mock's
/// latency, so most hang up before the answer).
const HANG_UP_WITHIN_US: usize = 10_000;

/// `responses.capacity` of the soak's gateway.
const RESPONSES_CAPACITY: usize = 200;

/// One request shape of the mix.
struct Shape {
    name: String,
    target: Target,
    /// What a stream carries when the gateway ended it with an error event (a vendor fault
    /// after the answer was committed).
    error_marker: &'static str,
}

fn shapes() -> Vec<Shape> {
    let text = workloads::text(1024);
    let mut shapes = Vec::new();
    for ingress in ["chat", "responses", "messages"] {
        for vendor in ["openai", "anthropic", "gemini"] {
            for stream in [false, true] {
                let model = workloads::alias(vendor, Mock::Fast);
                let (target, error_marker) = match ingress {
                    "chat" => (
                        workloads::openai_chat(CHAT, Some(&model), &text, stream),
                        "{\"error\"",
                    ),
                    "responses" => (
                        workloads::responses(&model, &text, stream),
                        "response.failed",
                    ),
                    _ => (
                        workloads::anthropic_messages(MESSAGES, &model, &text, stream),
                        "event: error",
                    ),
                };
                let what = if stream { "stream" } else { "whole" };
                shapes.push(Shape {
                    name: format!("{ingress}→{vendor} {what}"),
                    target,
                    error_marker,
                });
            }
        }
    }
    shapes
}

/// How one request ended.
enum Outcome {
    Ok,
    /// The gateway reported a vendor failure: a 5xx other than a shed, or a stream that ends
    /// with an error event.
    VendorFault(String),
    /// The client hung up on purpose before the answer ended.
    Disconnect,
    /// Anything else: a shed, a 4xx, a broken or malformed answer, no answer.
    Unexpected(String),
}

/// Counts by outcome.
#[derive(Default)]
struct Tally {
    ok: u64,
    vendor: BTreeMap<String, u64>,
    disconnects: u64,
    /// Hang-ups drawn for whole answers that arrived before the hang-up delay.
    answered_first: u64,
    unexpected: BTreeMap<String, u64>,
    examples: Vec<String>,
    /// (sent, ok) per shape.
    by_shape: Vec<(u64, u64)>,
}

impl Tally {
    fn new(shapes: usize) -> Self {
        Self {
            by_shape: vec![(0, 0); shapes],
            ..Self::default()
        }
    }

    fn record(&mut self, shape: usize, outcome: Outcome) {
        let ok = matches!(outcome, Outcome::Ok);
        if let Some(entry) = self.by_shape.get_mut(shape) {
            entry.0 += 1;
            entry.1 += u64::from(ok);
        }
        match outcome {
            Outcome::Ok => self.ok += 1,
            Outcome::VendorFault(key) => *self.vendor.entry(key).or_default() += 1,
            Outcome::Disconnect => self.disconnects += 1,
            Outcome::Unexpected(message) => self.unexpected(message),
        }
    }

    fn unexpected(&mut self, message: String) {
        let key: String = message.chars().take(80).collect();
        *self.unexpected.entry(key).or_default() += 1;
        if self.examples.len() < 5 {
            self.examples.push(message);
        }
    }

    fn absorb(&mut self, other: Tally) {
        self.ok += other.ok;
        self.disconnects += other.disconnects;
        self.answered_first += other.answered_first;
        for (key, n) in other.vendor {
            *self.vendor.entry(key).or_default() += n;
        }
        for (key, n) in other.unexpected {
            *self.unexpected.entry(key).or_default() += n;
        }
        for example in other.examples {
            if self.examples.len() < 5 {
                self.examples.push(example);
            }
        }
        for (mine, theirs) in self.by_shape.iter_mut().zip(other.by_shape) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
    }

    fn total(&self) -> u64 {
        self.ok
            + self.vendor.values().sum::<u64>()
            + self.disconnects
            + self.unexpected.values().sum::<u64>()
    }
}

/// Runs the soak; returns whether it passed.
pub async fn run(llmux: &Path, seconds: u64, concurrency: usize) -> anyhow::Result<bool> {
    let duration = Duration::from_secs(seconds.max(1));
    let concurrency = concurrency.max(1);
    // The reference RSS: after the first minute, or after a sixth of a run shorter than 6 min.
    let reference_at = Duration::from_secs(60).min(duration / 6);

    let mock = start_mock(llmux, PACING).await?;
    let mut config = workloads::main_config(mock.addr, mock.addr);
    // The Responses store keeps every answer up to its capacity (10,000 by default): bounded
    // growth that would read as a leak until it is full. A small capacity fills in seconds and
    // then evicts all along the run.
    config.push_str(&format!("responses:\n  capacity: {RESPONSES_CAPACITY}\n"));
    let mut gateway = start_gateway(llmux, &config, Launch::Pinned).await?;
    let pid = gateway.pid();

    // Every shape must work before faults are switched on; one that does not is left out.
    let mut mix = Vec::new();
    for shape in shapes() {
        match check(gateway.addr, &shape).await {
            Ok(()) => mix.push(shape),
            Err(why) => println!("soak: {} left out of the mix: {why}", shape.name),
        }
    }
    if mix.is_empty() {
        anyhow::bail!("no request shape works through the gateway");
    }
    let mix = Arc::new(mix);

    // First matching rule wins: 2.5 % get a 500, and 2.5 % of the rest are cut.
    let half = FAULT_SHARE / 2.0;
    for rule in [
        format!(r#"{{"status":500,"probability":{half}}}"#),
        format!(
            r#"{{"cut_after_chunks":2,"probability":{}}}"#,
            half / (1.0 - half)
        ),
    ] {
        client::mock_admin(mock.addr, http::Method::POST, "/__mock/faults", &rule).await?;
    }

    println!(
        "soak: {seconds} s, {concurrency} clients, {} request shapes (ingress→vendor, whole and stream) chosen at random",
        mix.len()
    );
    println!("gateway: default limits, responses.capacity {RESPONSES_CAPACITY}");
    println!(
        "mock: every answer after {} ms, streams of {} content events {} ms apart; {:.1} % of vendor calls faulted (half 500, half cut after 2 events); {:.1} % of client requests hang up early",
        PACING.latency_ms,
        PACING.chunks,
        PACING.chunk_delay_ms,
        FAULT_SHARE * 100.0,
        DISCONNECT_SHARE * 100.0
    );

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::with_capacity(concurrency);
    for id in 0..concurrency {
        let (mix, stop, sent) = (mix.clone(), stop.clone(), sent.clone());
        let addr = gateway.addr;
        clients.push(crate::spawn(async move {
            drive(id as u64, addr, &mix, &stop, &sent).await
        }));
    }

    let started = Instant::now();
    let mut reference_kib = None;
    let mut max_kib = 0;
    let mut samples = Vec::new();
    let mut next_report = Duration::from_secs(30);
    loop {
        let elapsed = started.elapsed();
        if elapsed >= duration {
            break;
        }
        let rss = sys::rss_kib(pid);
        if let Some(rss) = rss {
            max_kib = max_kib.max(rss);
            samples.push((elapsed, rss));
            if reference_kib.is_none() && elapsed >= reference_at {
                reference_kib = Some(rss);
            }
        }
        // The mock records every call; keep it small on a long run.
        if let Err(err) =
            client::mock_admin(mock.addr, http::Method::DELETE, "/__mock/calls", "").await
        {
            eprintln!("soak: cannot clear the mock's calls: {err:#}");
        }
        if elapsed >= next_report {
            eprintln!(
                "soak: {:>4} s, {} requests, gateway RSS {}",
                elapsed.as_secs(),
                sent.load(Ordering::Relaxed),
                rss.map_or_else(|| "gone".to_owned(), mib)
            );
            next_report += Duration::from_secs(30);
        }
        let mut wait = SAMPLE_EVERY.min(duration - elapsed);
        if reference_kib.is_none() && reference_at > elapsed {
            wait = wait.min(reference_at - elapsed);
        }
        tokio::time::sleep(wait).await;
    }
    stop.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut tally = Tally::new(mix.len());
    for task in clients {
        let abort = task.abort_handle();
        match tokio::time::timeout(Duration::from_secs(90), task).await {
            Ok(Ok(t)) => tally.absorb(t),
            Ok(Err(err)) => tally.unexpected(format!("client task failed: {err}")),
            Err(_) => {
                abort.abort();
                tally.unexpected("a client was still waiting 90 s after the end".to_owned());
            }
        }
    }
    let end_kib = sys::rss_kib(pid);
    if let Some(end) = end_kib {
        max_kib = max_kib.max(end);
    }

    let alive = gateway.alive();
    // The final check runs without faults: every shape must answer correctly.
    let cleared = client::mock_admin(mock.addr, http::Method::DELETE, "/__mock/faults", "").await;
    if let Err(err) = &cleared {
        println!("soak: cannot clear the mock's faults: {err:#}");
    }
    let mut final_ok = 0;
    let mut final_failures = Vec::new();
    if alive {
        for shape in mix.iter() {
            match check(gateway.addr, shape).await {
                Ok(()) => final_ok += 1,
                Err(why) => final_failures.push(format!("{}: {why}", shape.name)),
            }
        }
    }
    let (panics, shed) = match client::metrics(gateway.addr).await {
        Ok(text) => (
            client::metric(&text, "llmux_panics_total"),
            client::metric(&text, "llmux_requests_shed_total"),
        ),
        Err(err) => {
            println!("soak: cannot read /metrics: {err}");
            (None, None)
        }
    };

    // The report.
    let total = tally.total();
    let share = |n: u64| 100.0 * n as f64 / total.max(1) as f64;
    let vendor: u64 = tally.vendor.values().sum();
    let unexpected: u64 = tally.unexpected.values().sum();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "requests: {total} in {:.0} s ({:.0}/s)",
        elapsed.as_secs_f64(),
        total as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    let _ = writeln!(
        out,
        "  ok                   {:>9} ({:.2} %)",
        tally.ok,
        share(tally.ok)
    );
    let _ = writeln!(
        out,
        "  vendor-fault errors  {vendor:>9} ({:.2} %)",
        share(vendor)
    );
    for (key, n) in &tally.vendor {
        let _ = writeln!(out, "      {n:>9}  {key}");
    }
    let _ = writeln!(
        out,
        "  client disconnects   {:>9} ({:.2} %; another {} whole answers arrived before the hang-up and are counted by outcome)",
        tally.disconnects,
        share(tally.disconnects),
        tally.answered_first
    );
    let _ = writeln!(
        out,
        "  unexpected errors    {unexpected:>9} ({:.2} %)",
        share(unexpected)
    );
    for (key, n) in &tally.unexpected {
        let _ = writeln!(out, "      {n:>9}  {key}");
    }
    for example in &tally.examples {
        let _ = writeln!(out, "      e.g. {example}");
    }
    let _ = writeln!(out, "by shape (sent / ok):");
    for (shape, (sent, ok)) in mix.iter().zip(&tally.by_shape) {
        let _ = writeln!(out, "  {:<28} {sent:>8} / {ok:>8}", shape.name);
    }
    let trace: Vec<String> = samples
        .iter()
        .step_by((samples.len() / 12).max(1))
        .map(|(t, kib)| format!("{}s {}", t.as_secs(), mib(*kib)))
        .collect();
    let _ = writeln!(out, "gateway RSS samples: {}", trace.join(", "));
    let ratio = match (reference_kib, end_kib) {
        (Some(reference), Some(end)) if reference > 0 => Some(end as f64 / reference as f64),
        _ => None,
    };
    let _ = writeln!(
        out,
        "gateway RSS: after {} s {}, at the end {}, ratio {}, max {}",
        reference_at.as_secs(),
        reference_kib.map_or_else(|| "n/a".to_owned(), mib),
        end_kib.map_or_else(|| "n/a".to_owned(), mib),
        ratio.map_or_else(|| "n/a".to_owned(), |r| format!("{r:.3}")),
        mib(max_kib)
    );
    let _ = writeln!(
        out,
        "gateway alive: {}; final requests (no faults): {final_ok}/{} ok",
        if alive { "yes" } else { "NO" },
        mix.len()
    );
    for failure in &final_failures {
        let _ = writeln!(out, "  failed: {failure}");
    }
    let _ = writeln!(
        out,
        "llmux_panics_total {}; llmux_requests_shed_total {}",
        panics.map_or_else(|| "missing".to_owned(), |v| v.to_string()),
        shed.map_or_else(|| "missing".to_owned(), |v| v.to_string())
    );

    let rss_ok = ratio.is_some_and(|r| r <= 1.0 + RSS_TOLERANCE);
    let final_all_ok = alive && final_ok == mix.len();
    let no_panics = panics == Some(0.0);
    let pass = rss_ok && final_all_ok && no_panics;
    let mut why = Vec::new();
    if !rss_ok {
        why.push(format!(
            "end RSS not within {:.0} % of the reference",
            RSS_TOLERANCE * 100.0
        ));
    }
    if !final_all_ok {
        why.push("the gateway died or a final request failed".to_owned());
    }
    if !no_panics {
        why.push("llmux_panics_total is not 0".to_owned());
    }
    if pass {
        let _ = writeln!(
            out,
            "PASS (end RSS ≤ {:.2}× the reference, alive, every shape answered, no panics)",
            1.0 + RSS_TOLERANCE
        );
    } else {
        let _ = writeln!(out, "FAIL: {}", why.join("; "));
        if !alive {
            let _ = writeln!(out, "gateway log ends with:\n{}", gateway.log_tail());
        }
    }
    print!("{out}");
    Ok(pass)
}

/// One request of `shape` without faults or hang-ups; it must be a correct answer.
async fn check(addr: SocketAddr, shape: &Shape) -> Result<(), String> {
    let mut conn = client::open(addr).await?;
    let mut rng = Rng::seeded(0);
    let outcome = tokio::time::timeout(
        Duration::from_secs(30),
        once(&mut conn, shape, false, &mut rng),
    )
    .await
    .map_err(|_| "no complete answer within 30 s".to_owned())?;
    match outcome.0 {
        Outcome::Ok => Ok(()),
        Outcome::VendorFault(why) | Outcome::Unexpected(why) => Err(why),
        Outcome::Disconnect => Err("hung up".to_owned()),
    }
}

/// One client: a keep-alive connection sending random shapes back to back until `stop`.
async fn drive(
    id: u64,
    addr: SocketAddr,
    mix: &[Shape],
    stop: &AtomicBool,
    sent: &AtomicU64,
) -> Tally {
    let mut rng = Rng::seeded(id + 1);
    let mut tally = Tally::new(mix.len());
    let mut conn: Option<Conn> = None;
    while !stop.load(Ordering::Relaxed) {
        let mut c = match conn.take() {
            Some(c) => c,
            None => match client::open(addr).await {
                Ok(c) => c,
                Err(err) => {
                    tally.unexpected(err);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let index = rng.below(mix.len());
        let Some(shape) = mix.get(index) else {
            break;
        };
        let hang_up = rng.unit() < DISCONNECT_SHARE;
        let (outcome, answered_first) = match tokio::time::timeout(
            Duration::from_secs(60),
            once(&mut c, shape, hang_up, &mut rng),
        )
        .await
        {
            Ok(done) => done,
            Err(_) => (
                Outcome::Unexpected("no complete answer within 60 s".to_owned()),
                false,
            ),
        };
        tally.answered_first += u64::from(answered_first);
        // Reuse the connection only after a clean answer; dropping it closes the socket.
        if matches!(outcome, Outcome::Ok) {
            conn = Some(c);
        }
        tally.record(index, outcome);
        sent.fetch_add(1, Ordering::Relaxed);
    }
    tally
}

/// Sends one request of `shape`. With `hang_up`, a stream is dropped after its first body
/// chunk and a whole answer after a random delay under the mock's latency; the second value
/// says the whole answer came before that delay.
async fn once(conn: &mut Conn, shape: &Shape, hang_up: bool, rng: &mut Rng) -> (Outcome, bool) {
    let request = match shape.target.request() {
        Ok(r) => r,
        Err(err) => return (Outcome::Unexpected(err), false),
    };
    if let Err(err) = conn.sender.ready().await {
        return (Outcome::Unexpected(format!("connection: {err}")), false);
    }
    let stream = matches!(shape.target.framing, Framing::Sse { .. });
    if hang_up && !stream {
        let delay = Duration::from_micros(rng.below(HANG_UP_WITHIN_US) as u64);
        tokio::select! {
            outcome = exchange(conn, request, shape, false) => (outcome, true),
            () = tokio::time::sleep(delay) => (Outcome::Disconnect, false),
        }
    } else {
        (exchange(conn, request, shape, hang_up).await, false)
    }
}

async fn exchange(
    conn: &mut Conn,
    request: hyper::Request<http_body_util::Full<bytes::Bytes>>,
    shape: &Shape,
    hang_up_after_first_chunk: bool,
) -> Outcome {
    let response = match conn.sender.send_request(request).await {
        Ok(r) => r,
        Err(err) => return Outcome::Unexpected(format!("request: {err}")),
    };
    let status = response.status();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(frame) = body.frame().await {
        let frame = match frame {
            Ok(f) => f,
            Err(err) => {
                return Outcome::Unexpected(format!("{status}: body broken: {err}"));
            }
        };
        if let Some(data) = frame.data_ref().filter(|d| !d.is_empty()) {
            bytes.extend_from_slice(data);
            if hang_up_after_first_chunk && status.is_success() {
                return Outcome::Disconnect;
            }
        }
    }
    classify(status.as_u16(), &content_type, &bytes, shape)
}

fn classify(status: u16, content_type: &str, body: &[u8], shape: &Shape) -> Outcome {
    let framing = shape.target.framing;
    if (200..300).contains(&status) {
        if !content_type.starts_with(framing.content_type()) {
            return Outcome::Unexpected(format!(
                "{status} with content-type {content_type:?}, expected {}",
                framing.content_type()
            ));
        }
        return match framing {
            Framing::Sse { terminal } => {
                if memchr::memmem::find(body, shape.error_marker.as_bytes()).is_some() {
                    Outcome::VendorFault("stream ended with an error event".to_owned())
                } else if memchr::memmem::find(body, terminal.as_bytes()).is_some() {
                    Outcome::Ok
                } else {
                    Outcome::Unexpected(format!("{status} stream ended without {terminal:?}"))
                }
            }
            Framing::Json => match serde_json::from_slice::<serde_json::Value>(body) {
                Ok(serde_json::Value::Object(_)) => Outcome::Ok,
                _ => Outcome::Unexpected(format!("{status} body is not a JSON object")),
            },
        };
    }
    // An error envelope: OpenAI's `{"error":{"code"|"type"}}` or Anthropic's
    // `{"type":"error","error":{"type"}}`.
    let envelope = serde_json::from_slice::<serde_json::Value>(body).ok();
    let code = envelope
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(|e| {
            e.get("code")
                .and_then(|c| c.as_str())
                .or_else(|| e.get("type").and_then(|t| t.as_str()))
        })
        .unwrap_or("no envelope")
        .to_owned();
    let key = format!("{status} {code}");
    if status == 503 && code.contains("overloaded") {
        Outcome::Unexpected(format!("{key} (shed)"))
    } else if status >= 500 {
        Outcome::VendorFault(key)
    } else {
        let excerpt = String::from_utf8_lossy(&body[..body.len().min(160)]).into_owned();
        Outcome::Unexpected(format!("{key}: {excerpt}"))
    }
}

pub fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}
