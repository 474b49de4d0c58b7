//! `--overload`: a sustainable load, then ten times it. The mock answers whole chat completions
//! after a fixed 50 ms and the gateway runs with `limits.max_in_flight: 256`. First 64 closed-loop
//! clients (well under the limit) measure the sustainable rate; then an open-loop generator
//! offers ten times that rate for the same time: arrivals are scheduled on the clock whatever
//! the answers do, so shed requests do not make the clients retry faster (as a closed loop of
//! 640 clients would, answered at once with a 503) and slow answers do not make them send less
//! (coordinated omission). Reported: offered and sustained rates, the shed share, latency of
//! the admitted and of the shed requests (from each request's scheduled start), gateway RSS.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use http_body_util::BodyExt;

use crate::client::{self, Conn};
use crate::load::{self, Load, Target, micros};
use crate::processes::{Launch, MockPacing, start_gateway, start_mock};
use crate::report::percentile;
use crate::soak::mib;
use crate::sys::{self, CpuMeter, RssSampler};
use crate::workloads::{self, CHAT, Mock};

/// The mock's latency before every answer, ms.
const LATENCY_MS: u64 = 50;
/// The gateway's `limits.max_in_flight`.
const MAX_IN_FLIGHT: usize = 256;
/// Closed-loop clients of the sustainable run (a quarter of the limit).
const BASE_CLIENTS: usize = 64;
/// How many times the sustainable rate is offered.
const FACTOR: f64 = 10.0;
/// Requests the open-loop generator keeps in flight at most; arrivals past it are counted as
/// not sent (the generator's own limit, far above what the gateway admits).
const MAX_OUTSTANDING: usize = 8_000;

/// What the open-loop run saw (latencies in µs, sorted).
#[derive(Default)]
struct Seen {
    /// Arrivals scheduled inside the recorded window.
    offered: u64,
    admitted: Vec<u32>,
    shed: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    not_sent: u64,
    /// The most requests outstanding at once.
    max_outstanding: usize,
    /// Connections opened.
    connections: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub async fn run(llmux: &Path, seconds: u64, ticks: u64) -> anyhow::Result<()> {
    let duration = Duration::from_secs(seconds.max(1));
    let warmup = Duration::from_secs(1).min(duration);
    let mock = start_mock(
        llmux,
        MockPacing {
            chunks: workloads::CHUNKS,
            chunk_delay_ms: 0,
            latency_ms: LATENCY_MS,
        },
    )
    .await?;
    let mut config = workloads::main_config(mock.addr, mock.addr);
    config.push_str(&format!("limits:\n  max_in_flight: {MAX_IN_FLIGHT}\n"));
    let gateway = start_gateway(llmux, &config, Launch::Pinned).await?;
    let pid = gateway.pid();
    let target = workloads::openai_chat(
        CHAT,
        Some(&workloads::alias("openai", Mock::Fast)),
        &workloads::text(1024),
        false,
    );
    let ceiling = MAX_IN_FLIGHT as f64 / (LATENCY_MS as f64 / 1000.0);
    println!(
        "overload: whole chat completions (1 KB), the mock answers each after {LATENCY_MS} ms; gateway limits.max_in_flight {MAX_IN_FLIGHT}, so at most {ceiling:.0} admitted/s; {:?} warm-up + {:?} per run",
        warmup, duration
    );

    eprintln!("overload: 1×, {BASE_CLIENTS} closed-loop clients");
    let idle_kib = sys::rss_kib(pid).unwrap_or(0);
    let rss = RssSampler::start(pid);
    let cpu = CpuMeter::start(pid, ticks);
    let base = load::run(
        gateway.addr,
        &target,
        Load {
            concurrency: BASE_CLIENTS,
            warmup,
            duration,
        },
    )
    .await;
    let base_cpu = cpu.micros();
    let base_rss = rss.finish(pid).await;
    let sustainable = base.throughput();
    if sustainable <= 0.0 {
        anyhow::bail!(
            "the sustainable run completed no request (first error: {})",
            base.first_error.as_deref().unwrap_or("none")
        );
    }

    let rate = sustainable * FACTOR;
    eprintln!("overload: 10×, open loop at {rate:.0} requests/s");
    let shed_before = shed_total(gateway.addr).await;
    let rss = RssSampler::start(pid);
    let cpu = CpuMeter::start(pid, ticks);
    let seen = open_loop(gateway.addr, &target, rate, warmup, duration).await;
    let over_cpu = cpu.micros();
    let over_rss = rss.finish(pid).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after_kib = sys::rss_kib(pid).unwrap_or(0);
    let shed_after = shed_total(gateway.addr).await;

    let secs = duration.as_secs_f64();
    let ms = |sorted: &[u32], p: f64| {
        percentile(sorted, p).map_or_else(|| "n/a".to_owned(), |us| format!("{:.1}", us / 1000.0))
    };
    let busy = |cpu_us: Option<f64>, window: Duration| {
        cpu_us.map_or_else(
            || "n/a".to_owned(),
            |us| format!("{:.0} %", 100.0 * us / 1e6 / window.as_secs_f64()),
        )
    };
    let answered = seen.admitted.len() + seen.shed.len() + seen.errors as usize;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "1×  closed loop, {BASE_CLIENTS} clients: {sustainable:.0} requests/s sustained, {} errors; latency p50 {} ms, p99 {} ms; gateway RSS max {} (idle {}), gateway core busy {}",
        base.errors,
        ms(&base.latency, 0.5),
        ms(&base.latency, 0.99),
        mib(base_rss),
        mib(idle_kib),
        busy(base_cpu, warmup + duration)
    );
    if let Some(err) = &base.first_error {
        let _ = writeln!(out, "    first error: {err}");
    }
    let _ = writeln!(
        out,
        "10× open loop at {rate:.0} requests/s: offered {:.0}/s ({:.1}× sustainable), admitted {:.0}/s ({:.2}× sustainable, {:.0} % of the {ceiling:.0}/s ceiling), shed {:.1} % of answers, {} errors, {} not sent (generator limit {MAX_OUTSTANDING})",
        seen.offered as f64 / secs,
        seen.offered as f64 / secs / sustainable,
        seen.admitted.len() as f64 / secs,
        seen.admitted.len() as f64 / secs / sustainable,
        100.0 * seen.admitted.len() as f64 / secs / ceiling,
        100.0 * seen.shed.len() as f64 / answered.max(1) as f64,
        seen.errors,
        seen.not_sent
    );
    if let Some(err) = &seen.first_error {
        let _ = writeln!(out, "    first error: {err}");
    }
    let _ = writeln!(
        out,
        "    admitted latency p50 {} ms, p99 {} ms (1×: {} / {}); shed answers p50 {} ms, p99 {} ms",
        ms(&seen.admitted, 0.5),
        ms(&seen.admitted, 0.99),
        ms(&base.latency, 0.5),
        ms(&base.latency, 0.99),
        ms(&seen.shed, 0.5),
        ms(&seen.shed, 0.99)
    );
    let _ = writeln!(
        out,
        "    gateway RSS max {} (1×: {}), {} half a second after; gateway core busy {}; {} requests outstanding at most, {} connections opened",
        mib(over_rss),
        mib(base_rss),
        mib(after_kib),
        busy(over_cpu, warmup + duration),
        seen.max_outstanding,
        seen.connections
    );
    let _ = writeln!(
        out,
        "    llmux_requests_shed_total grew by {} during the 10× run (the client counted {} shed in the recorded window)",
        match (shed_before, shed_after) {
            (Some(before), Some(after)) => format!("{:.0}", after - before),
            _ => "n/a".to_owned(),
        },
        seen.shed.len()
    );
    print!("{out}");
    if base.errors > 0 || seen.errors > 0 {
        anyhow::bail!(
            "{} request(s) failed with something other than a shed",
            base.errors as u64 + seen.errors
        );
    }
    Ok(())
}

async fn shed_total(addr: SocketAddr) -> Option<f64> {
    let text = client::metrics(addr).await.ok()?;
    client::metric(&text, "llmux_requests_shed_total")
}

/// Offers `rate` requests per second for `warmup + duration`, each on an idle pooled
/// connection or a new one, and records those scheduled after the warm-up.
async fn open_loop(
    addr: SocketAddr,
    target: &Target,
    rate: f64,
    warmup: Duration,
    duration: Duration,
) -> Seen {
    let target = Arc::new(target.clone());
    let pool: Arc<Mutex<Vec<Conn>>> = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let outstanding = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let record_from = start + warmup;
    let end = record_from + duration;
    let mut scheduled_count: u64 = 0;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        let due = (rate * (now - start).as_secs_f64()) as u64;
        while scheduled_count < due {
            let scheduled = start + Duration::from_secs_f64(scheduled_count as f64 / rate);
            scheduled_count += 1;
            let recording = scheduled >= record_from;
            if recording {
                lock(&seen).offered += 1;
            }
            let in_flight = outstanding.fetch_add(1, Ordering::Relaxed) + 1;
            if in_flight > MAX_OUTSTANDING {
                outstanding.fetch_sub(1, Ordering::Relaxed);
                if recording {
                    lock(&seen).not_sent += 1;
                }
                continue;
            }
            {
                let mut seen = lock(&seen);
                seen.max_outstanding = seen.max_outstanding.max(in_flight);
            }
            let (target, pool, seen, outstanding) = (
                target.clone(),
                pool.clone(),
                seen.clone(),
                outstanding.clone(),
            );
            crate::spawn(async move {
                let result = one(addr, &target, &pool, scheduled).await;
                outstanding.fetch_sub(1, Ordering::Relaxed);
                let mut seen = lock(&seen);
                if let Ok((_, true)) | Err((_, true)) = &result {
                    seen.connections += 1;
                }
                if !recording {
                    return;
                }
                match result {
                    Ok((Answer::Admitted(us), _)) => seen.admitted.push(us),
                    Ok((Answer::Shed(us), _)) => seen.shed.push(us),
                    Err((err, _)) => {
                        seen.errors += 1;
                        if seen.first_error.is_none() {
                            seen.first_error = Some(err);
                        }
                    }
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // Let the last requests finish (each has its own 30 s deadline).
    let deadline = Instant::now() + Duration::from_secs(35);
    while outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    lock(&pool).clear();
    let mut seen = std::mem::take(&mut *lock(&seen));
    let left = outstanding.load(Ordering::Relaxed);
    if left > 0 {
        seen.errors += left as u64;
        seen.first_error.get_or_insert_with(|| {
            format!("{left} request(s) still unanswered 35 s after the run")
        });
    }
    seen.admitted.sort_unstable();
    seen.shed.sort_unstable();
    seen
}

enum Answer {
    Admitted(u32),
    Shed(u32),
}

/// One request: `Ok` with its kind and latency from `scheduled`, or the error; each with
/// whether a new connection was opened.
async fn one(
    addr: SocketAddr,
    target: &Target,
    pool: &Mutex<Vec<Conn>>,
    scheduled: Instant,
) -> Result<(Answer, bool), (String, bool)> {
    let pooled = lock(pool).pop();
    let mut reusable = None;
    if let Some(mut conn) = pooled {
        // A pooled connection the gateway closed is dropped.
        if conn.sender.ready().await.is_ok() {
            reusable = Some(conn);
        }
    }
    let opened = reusable.is_none();
    let mut conn = match reusable {
        Some(conn) => conn,
        None => client::open(addr).await.map_err(|e| (e, opened))?,
    };
    let exchange = async {
        conn.sender
            .ready()
            .await
            .map_err(|e| format!("connection: {e}"))?;
        let response = conn
            .sender
            .send_request(target.request()?)
            .await
            .map_err(|e| format!("request: {e}"))?;
        let status = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("body: {e}"))?
            .to_bytes();
        Ok::<_, String>((status, body))
    };
    let (status, body) = tokio::time::timeout(Duration::from_secs(30), exchange)
        .await
        .map_err(|_| ("no answer within 30 s".to_owned(), opened))?
        .map_err(|e| (e, opened))?;
    let latency = micros(scheduled.elapsed());
    let answer = match status {
        200 if serde_json::from_slice::<serde_json::Value>(&body).is_ok() => {
            Answer::Admitted(latency)
        }
        503 if memchr::memmem::find(&body, b"overloaded").is_some() => Answer::Shed(latency),
        _ => {
            let excerpt = String::from_utf8_lossy(&body[..body.len().min(160)]).into_owned();
            return Err((format!("status {status}: {excerpt}"), opened));
        }
    };
    lock(pool).push(conn);
    Ok((answer, opened))
}
