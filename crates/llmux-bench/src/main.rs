//! `llmux-bench`: drives the mock upstream directly (the physical limit on this machine) and
//! llmux in front of the same mock, with the same load generator, and prints ratios measured in
//! the same run: throughput, added latency, added time to first byte and inter-chunk gap, CPU per
//! request, routing table sizes, memory (idle, under load, per open stream), instructions per
//! request (callgrind) and, optionally, LiteLLM and Portkey. Timings are reported, never
//! asserted; `--smoke` only checks that every workload completed without errors.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod callgrind;
mod client;
mod litellm;
mod load;
mod memory;
mod otlp_sink;
mod overload;
mod portkey;
mod processes;
mod relay;
mod report;
mod soak;
mod sys;
mod workloads;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Parser;

use crate::load::Load;
use crate::processes::{Launch, MockPacing, Process, start_gateway, start_mock, start_relay};
use crate::report::{Memory, Pair, Report, RoutingRow, Row, Streams};
use crate::sys::{CpuMeter, Machine, RssSampler};
use crate::workloads::{CHUNK_DELAY_MS, CHUNKS, Mock, Spec};

#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// CI: a few workloads, well under a second each; no memory, callgrind or LiteLLM. Fails
    /// only if a request failed.
    #[arg(long)]
    smoke: bool,
    /// Seconds per measurement (each workload is measured directly and through llmux).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Run only the workloads whose name contains this text ("c=64", "stream", "openai→",
    /// "routing", "memory", "instructions", …).
    #[arg(long)]
    only: Option<String>,
    /// Only count instructions per request under callgrind (the stable regression signal).
    #[arg(long)]
    callgrind: bool,
    /// Also measure LiteLLM's proxy (installed into ./target/bench-venv on first use).
    #[arg(long)]
    litellm: bool,
    /// Also measure the Portkey gateway (`@portkey-ai/gateway` on Node, installed into
    /// ./target/bench-portkey with npm on first use).
    #[arg(long)]
    portkey: bool,
    /// Open-stream counts for the memory measurement.
    #[arg(long, value_delimiter = ',', default_values_t = [1000, 5000])]
    streams: Vec<usize>,
    /// Concurrency levels for non-streaming chat.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64, 256])]
    concurrency: Vec<usize>,
    /// Requests of the larger callgrind run (the smaller one sends a tenth as many).
    #[arg(long, default_value_t = 2000)]
    callgrind_requests: usize,
    /// Soak test instead of the benchmark: mixed traffic on every ingress and vendor for this
    /// many seconds, with vendor faults and client hang-ups; fails when the gateway's RSS grew
    /// by more than 10 % after the first minute, it died, or it panicked.
    #[arg(long, value_name = "SECONDS", conflicts_with_all = ["smoke", "overload", "callgrind"])]
    soak: Option<u64>,
    /// Concurrent clients of `--soak`.
    #[arg(long, default_value_t = 32)]
    soak_clients: usize,
    /// Overload test instead of the benchmark: a sustainable load, then ten times it offered
    /// open-loop against `limits.max_in_flight`; reports shedding and admitted latency.
    #[arg(long, conflicts_with_all = ["smoke", "callgrind"])]
    overload: bool,
    /// Seconds of each `--overload` run (1× and 10×).
    #[arg(long, default_value_t = 15)]
    overload_seconds: u64,
    /// The llmux binary (default: llmux next to this binary).
    #[arg(long)]
    llmux: Option<PathBuf>,
    /// Run the gateways with the request log on (metadata only, SQLite in the temp dir), to
    /// measure its cost against a run without.
    #[arg(long)]
    request_log: bool,
    /// Run the gateways with tracing on: spans exported over OTLP/HTTP to a sink in the bench
    /// (export work is counted in the gateway; the sink's is not).
    #[arg(long)]
    tracing: bool,
    /// With `--tracing`: the share of requests traced (`telemetry.sample_ratio`; default all).
    #[arg(long, requires = "tracing")]
    trace_sample_ratio: Option<f64>,
    /// Internal: serve the byte relay (the floor) on this address instead of benchmarking.
    #[arg(long, hide = true, requires = "relay_to")]
    relay_listen: Option<std::net::SocketAddr>,
    /// Internal: where the byte relay forwards to.
    #[arg(long, hide = true)]
    relay_to: Option<std::net::SocketAddr>,
}

/// `tokio::spawn` for the benchmark's own tasks (load generator connections, clients, the byte
/// relay): they are not the gateway's, and there is no shutdown to drain them for.
#[allow(
    clippy::disallowed_methods,
    reason = "llmux_telemetry::spawn_tracked serves the gateway's graceful shutdown"
)]
pub fn spawn<F>(future: F) -> tokio::task::JoinHandle<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(future)
}

/// Which workloads to run.
struct Select {
    only: Option<String>,
    callgrind_only: bool,
}

impl Select {
    fn wants(&self, name: &str) -> bool {
        if self.callgrind_only && !name.starts_with("instructions") {
            return false;
        }
        self.only.as_deref().is_none_or(|only| name.contains(only))
    }
}

/// Everything a measurement needs besides the workload.
struct Env {
    load_warmup: Duration,
    load_duration: Duration,
    ticks: u64,
}

impl Env {
    fn load(&self, concurrency: usize) -> Load {
        Load {
            concurrency,
            warmup: self.load_warmup,
            duration: self.load_duration,
        }
    }
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.request_log {
        let db = std::env::temp_dir().join(format!("llmux-bench-log-{}.db", std::process::id()));
        let _ = workloads::REQUEST_LOG.set(format!(
            "log: {{ database: \"sqlite://{}\" }}\n",
            db.display()
        ));
    }
    if let (Some(listen), Some(to)) = (args.relay_listen, args.relay_to) {
        return relay::run(listen, to);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: Args) -> anyhow::Result<()> {
    if args.tracing {
        let sink = otlp_sink::start().await?;
        let mut telemetry =
            format!("telemetry:\n  otlp: {{ endpoint: \"{sink}\", protocol: http/protobuf }}\n");
        if let Some(ratio) = args.trace_sample_ratio {
            telemetry.push_str(&format!("  sample_ratio: {ratio}\n"));
        }
        let _ = workloads::TRACING.set(telemetry);
    }
    let llmux = match &args.llmux {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("binary directory")?
            .join("llmux"),
    };
    if let Some(seconds) = args.soak {
        print_machine();
        if !soak::run(&llmux, seconds, args.soak_clients).await? {
            bail!("soak FAILED");
        }
        return Ok(());
    }
    if args.overload {
        print_machine();
        return overload::run(&llmux, args.overload_seconds, sys::clock_ticks_per_second()).await;
    }
    let env = if args.smoke {
        Env {
            load_warmup: Duration::from_millis(100),
            load_duration: Duration::from_millis(400),
            ticks: sys::clock_ticks_per_second(),
        }
    } else {
        let duration = Duration::from_secs(args.seconds.max(1));
        Env {
            load_warmup: (duration / 5).min(Duration::from_secs(1)),
            load_duration: duration,
            ticks: sys::clock_ticks_per_second(),
        }
    };
    let select = Select {
        only: args.only.clone(),
        callgrind_only: args.callgrind,
    };
    print_header(&env, args.smoke);

    let fast = start_mock(
        &llmux,
        MockPacing {
            chunks: CHUNKS,
            chunk_delay_ms: 0,
            latency_ms: 0,
        },
    )
    .await?;
    let paced = start_mock(
        &llmux,
        MockPacing {
            chunks: CHUNKS,
            chunk_delay_ms: CHUNK_DELAY_MS,
            latency_ms: 0,
        },
    )
    .await?;

    let mut report = Report::default();
    let mut errors = 0;

    // The main table, all on one gateway.
    let specs: Vec<Spec> = workloads::main(&args.concurrency, args.smoke)
        .into_iter()
        .filter(|s| select.wants(&s.name))
        .collect();
    if !specs.is_empty() {
        let config = workloads::main_config(fast.addr, paced.addr);
        let gateway = start_gateway(&llmux, &config, Launch::Pinned).await?;
        // The floor, in front of each mock (not in smoke runs: CI checks for errors only).
        let relays = if args.smoke {
            None
        } else {
            Some((
                start_relay(fast.addr).await?,
                start_relay(paced.addr).await?,
            ))
        };
        let mut litellm = None;
        if args.litellm && !args.smoke {
            // `scripts/bench` runs from the workspace root.
            let target_dir = std::env::current_dir()?.join("target");
            match litellm::start(&target_dir, fast.addr, paced.addr).await {
                Ok(started) => {
                    report.litellm = Some(Ok((started.version.clone(), started.workers.clone())));
                    litellm = Some(started);
                }
                Err(why) => {
                    eprintln!("LiteLLM skipped: {why}");
                    report.litellm = Some(Err(why));
                }
            }
        }
        let mut portkey = None;
        if args.portkey && !args.smoke {
            let target_dir = std::env::current_dir()?.join("target");
            match portkey::start(&target_dir).await {
                Ok(started) => {
                    report.portkey = Some(Ok(started.version.clone()));
                    portkey = Some(started);
                }
                Err(why) => {
                    eprintln!("Portkey skipped: {why}");
                    report.portkey = Some(Err(why));
                }
            }
        }
        for spec in &specs {
            let mock = match spec.mock {
                Mock::Fast => &fast,
                Mock::Paced => &paced,
            };
            let other = litellm.as_ref().map(|l| &l.process);
            let peer = portkey.as_ref().map(|p| &p.process);
            let relay = relays.as_ref().map(|(fast, paced)| match spec.mock {
                Mock::Fast => fast,
                Mock::Paced => paced,
            });
            let (row, row_errors) = measure(spec, mock, &gateway, other, peer, relay, &env).await;
            errors += row_errors;
            report.rows.push(row);
        }
        if let Some(mut litellm) = litellm {
            // Let it stop its workers; the handle kills it if it does not.
            let _ = litellm
                .process
                .signal_and_wait("TERM", Duration::from_secs(10))
                .await;
        }
    }

    // Routing table sizes, one gateway per size.
    let (sizes, concurrency): (&[(usize, usize)], usize) = if args.smoke {
        (&[(10, 100)], 8)
    } else {
        (&[(1, 10), (10, 100), (100, 100)], 16)
    };
    for &(credentials, models) in sizes {
        let spec = workloads::routing(credentials, models, concurrency);
        if !select.wants(&spec.name) {
            continue;
        }
        let config = workloads::routing_config(fast.addr, credentials, models);
        let started = Instant::now();
        let gateway = start_gateway(&llmux, &config, Launch::Pinned).await?;
        let startup = started.elapsed();
        let idle_kib = sys::rss_kib(gateway.pid()).unwrap_or(0);
        let (row, row_errors) = measure(&spec, &fast, &gateway, None, None, None, &env).await;
        errors += row_errors;
        report.routing.push(RoutingRow {
            combinations: credentials * models,
            row,
            idle_kib,
            startup,
        });
    }

    if !args.smoke {
        errors += memory_section(&llmux, &fast, &paced, &args, &select, &env, &mut report).await?;
        instructions_section(&llmux, &fast, &args, &select, &mut report).await;
    }

    println!("{}", report.render());
    if errors > 0 {
        bail!("{errors} request(s) failed");
    }
    Ok(())
}

fn date() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// The header of `--soak` and `--overload`: date, machine and pinning.
fn print_machine() {
    let machine = Machine::read();
    println!("llmux-bench {}", date());
    println!(
        "machine: {} CPUs, {}; load generator CPUs: {}",
        machine.cpus, machine.model, machine.bench_cpus
    );
    if processes::pinning_available() {
        println!(
            "pinning: gateway on cpu {}, mock on cpu {} with the load generator",
            processes::GATEWAY_CPU,
            processes::MOCK_CPU
        );
    } else {
        println!("pinning: none (taskset missing or a single CPU); processes share all cores");
    }
}

fn print_header(env: &Env, smoke: bool) {
    let machine = Machine::read();
    let date = date();
    println!(
        "llmux-bench {date}{}",
        if smoke {
            " (smoke: timings meaningless)"
        } else {
            ""
        }
    );
    println!(
        "machine: {} CPUs, {}; kernel-visible load generator CPUs: {}",
        machine.cpus, machine.model, machine.bench_cpus
    );
    if processes::pinning_available() {
        println!(
            "pinning: taskset; gateway (and LiteLLM, Portkey) on cpu {}, mocks on cpu {} with the load generator",
            processes::GATEWAY_CPU,
            processes::MOCK_CPU
        );
    } else {
        println!("pinning: none (taskset missing or a single CPU); processes share all cores");
    }
    println!(
        "each measurement: {:?} warm-up, then {:?} recorded; mock streams {CHUNKS} content chunks, {CHUNK_DELAY_MS} ms apart",
        env.load_warmup, env.load_duration
    );
}

/// Measures one workload directly, through the gateway, and through `other` (LiteLLM),
/// `portkey` and the byte `relay` (the floor) when the workload asks for it. Returns the row
/// and its number of failed requests.
async fn measure(
    spec: &Spec,
    mock: &Process,
    gateway: &Process,
    other: Option<&Process>,
    portkey: Option<&Process>,
    relay: Option<&Process>,
    env: &Env,
) -> (Row, usize) {
    let row = |result| Row {
        name: spec.name.clone(),
        stream: spec.streams(),
        same_events: spec.same_events(),
        baseline: spec.baseline.clone(),
        result,
    };
    if spec.probe {
        match load::probe(gateway.addr, &spec.proxied).await {
            Ok((404, _)) => {
                eprintln!("{}: skipped: route not available", spec.name);
                return (row(Err("skipped: route not available".to_owned())), 0);
            }
            Ok((status, _)) if (200..300).contains(&status) => {}
            Ok((status, body)) => {
                let why = format!("FAILED: the probe got {status}: {body}");
                return (row(Err(why)), 1);
            }
            Err(err) => return (row(Err(format!("FAILED: the probe failed: {err}"))), 1),
        }
    }
    eprintln!("measuring {}", spec.name);
    let load = env.load(spec.concurrency);
    let mock_cpu = CpuMeter::start(mock.pid(), env.ticks);
    let direct = load::run(mock.addr, &spec.direct, load).await;
    let mock_cpu_us = mock_cpu.micros();

    let gateway_cpu = CpuMeter::start(gateway.pid(), env.ticks);
    let rss = RssSampler::start(gateway.pid());
    let proxied = load::run(gateway.addr, &spec.proxied, load).await;
    let gateway_cpu_us = gateway_cpu.micros();
    let max_rss_kib = rss.finish(gateway.pid()).await;

    let (litellm, litellm_cpu_us) = match other {
        Some(other) if spec.litellm => {
            eprintln!("measuring {} through LiteLLM", spec.name);
            let cpu = CpuMeter::start(other.pid(), env.ticks);
            let measured = load::run(other.addr, &spec.proxied, load).await;
            (Some(measured), cpu.micros())
        }
        _ => (None, None),
    };
    let (portkey, portkey_cpu_us) = match portkey {
        Some(peer) if spec.litellm => {
            eprintln!("measuring {} through Portkey", spec.name);
            // Portkey routes by headers to the workload's mock and gets the mock's request.
            let target = portkey::target(&spec.direct, mock.addr);
            let cpu = CpuMeter::start(peer.pid(), env.ticks);
            let measured = load::run(peer.addr, &target, load).await;
            (Some(measured), cpu.micros())
        }
        _ => (None, None),
    };
    let floor = match relay {
        Some(relay) if spec.litellm => {
            eprintln!("measuring {} through the byte relay", spec.name);
            let cpu = CpuMeter::start(relay.pid(), env.ticks);
            // The relay forwards to the mock, so it gets the mock's request.
            let measured = load::run(relay.addr, &spec.direct, load).await;
            let cpu_us = cpu.micros();
            Some(report::Floor { measured, cpu_us })
        }
        _ => None,
    };
    // LiteLLM's and Portkey's failures are reported in their tables, not counted against llmux.
    let errors = direct.errors + proxied.errors;
    let pair = Pair {
        direct,
        proxied,
        mock_cpu_us,
        gateway_cpu_us,
        max_rss_kib,
        litellm,
        litellm_cpu_us,
        portkey,
        portkey_cpu_us,
        floor,
    };
    (row(Ok(pair)), errors)
}

/// Fresh gateways started to read the idle RSS from.
const IDLE_STARTS: usize = 7;

/// The median idle RSS of [`IDLE_STARTS`] fresh gateways, and the median of its anonymous part.
/// One start is not enough: most of an idle gateway's RSS is code paged in 64 KiB windows
/// around what start-up touched, and where those windows fall moves with the address the
/// binary is loaded at (ASLR), by ±0.5 MiB.
async fn median_idle_rss(llmux: &Path, config: &str) -> anyhow::Result<(Option<u64>, Option<u64>)> {
    let mut total = Vec::with_capacity(IDLE_STARTS);
    let mut anon = Vec::with_capacity(IDLE_STARTS);
    for _ in 0..IDLE_STARTS {
        let gateway = start_gateway(llmux, config, Launch::Pinned).await?;
        tokio::time::sleep(Duration::from_millis(500)).await;
        total.extend(sys::rss_kib(gateway.pid()));
        anon.extend(sys::rss_anon_kib(gateway.pid()));
    }
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied()
    };
    Ok((median(total), median(anon)))
}

/// Idle and loaded RSS, then KiB per open stream (a fresh gateway per stream count, in front of
/// a mock that waits 10 s between events so every stream stays open). Returns failed requests.
async fn memory_section(
    llmux: &Path,
    fast: &Process,
    paced: &Process,
    args: &Args,
    select: &Select,
    env: &Env,
    report: &mut Report,
) -> anyhow::Result<usize> {
    const LOAD: usize = 64;
    let mut errors = 0;
    let mut memory = Memory {
        load_concurrency: LOAD,
        ..Memory::default()
    };
    let config = workloads::main_config(fast.addr, paced.addr);
    let chat = workloads::openai_chat(
        "/v1/chat/completions",
        Some("bench"),
        &workloads::text(1024),
        false,
    );
    let mut measured = false;
    if select.wants(&format!("memory idle and c={LOAD} load")) {
        eprintln!("measuring memory idle and under c={LOAD} load");
        measured = true;
        (memory.idle_kib, memory.idle_anon_kib) = median_idle_rss(llmux, &config).await?;
        let gateway = start_gateway(llmux, &config, Launch::Pinned).await?;
        let pid = gateway.pid();
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Err(err) = load::sequential(gateway.addr, &chat, 1).await {
            eprintln!("memory: the first request failed: {err}");
            errors += 1;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        memory.after_one_request_kib = sys::rss_kib(pid);
        let sampler = RssSampler::start(pid);
        let loaded = load::run(gateway.addr, &chat, env.load(LOAD)).await;
        memory.under_load_kib = Some(
            sampler
                .finish(pid)
                .await
                .max(sys::peak_rss_kib(pid).unwrap_or(0)),
        );
        if let Some(err) = &loaded.first_error {
            eprintln!(
                "memory: {} request(s) failed under load, first: {err}",
                loaded.errors
            );
        }
        errors += loaded.errors;
        tokio::time::sleep(Duration::from_millis(500)).await;
        memory.after_load_kib = sys::rss_kib(pid);
    }

    let counts: Vec<usize> = args
        .streams
        .iter()
        .copied()
        .filter(|n| select.wants(&format!("memory {n} open streams")))
        .collect();
    if !counts.is_empty() {
        measured = true;
        let slow = start_mock(
            llmux,
            MockPacing {
                chunks: CHUNKS,
                chunk_delay_ms: 10_000,
                latency_ms: 0,
            },
        )
        .await?;
        // Every stream holds a vendor connection and an in-flight slot for its whole length:
        // past the defaults (512 connections per vendor host, 1,024 in flight per core) the
        // extra streams would wait and time out instead of being measured.
        let config = format!(
            "{}limits: {{ upstream_connections_per_host: 20000, max_in_flight: 20000 }}\n",
            workloads::main_config(fast.addr, slow.addr)
        );
        let stream = workloads::openai_chat(
            "/v1/chat/completions",
            Some("bench-stream"),
            &workloads::text(1024),
            true,
        );
        for n in counts {
            eprintln!("measuring memory with {n} open streams");
            let gateway = start_gateway(llmux, &config, Launch::Pinned).await?;
            let pid = gateway.pid();
            tokio::time::sleep(Duration::from_millis(500)).await;
            let idle_kib = sys::rss_kib(pid).unwrap_or(0);
            let open = memory::open(gateway.addr, &stream, n).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            let with_streams_kib = sys::rss_kib(pid).unwrap_or(0);
            if let Some(err) = &open.first_error {
                eprintln!(
                    "memory: {} stream(s) did not open, first: {err}",
                    open.errors
                );
            }
            errors += open.errors;
            memory.streams.push(Streams {
                requested: n,
                opened: open.sockets.len(),
                idle_kib,
                with_streams_kib,
            });
            drop(open);
        }
    }
    if measured {
        report.memory = Some(memory);
    }
    Ok(errors)
}

/// Instructions per request under callgrind, for the main request shapes.
async fn instructions_section(
    llmux: &Path,
    fast: &Process,
    args: &Args,
    select: &Select,
    report: &mut Report,
) {
    let text = workloads::text(1024);
    let chat = |model: &str, stream: bool| {
        workloads::openai_chat("/v1/chat/completions", Some(model), &text, stream)
    };
    let shapes = [
        ("instructions chat 1KB".to_owned(), chat("bench", false)),
        (
            format!("instructions stream {CHUNKS} chunks"),
            chat("bench-stream", true),
        ),
        (
            "instructions openai→anthropic 1KB".to_owned(),
            chat("bench-anthropic", false),
        ),
        (
            "instructions openai→gemini 1KB".to_owned(),
            chat("bench-gemini", false),
        ),
    ];
    let shapes: Vec<_> = shapes
        .into_iter()
        .filter(|(name, _)| select.wants(name))
        .collect();
    if shapes.is_empty() {
        return;
    }
    if !callgrind::valgrind_available() {
        report.instructions = Some(Err("valgrind is not installed".to_owned()));
        return;
    }
    // Both aliases point at the unpaced mock: callgrind slows the gateway enough already, and
    // the stream's events are decoded and rewritten one by one either way.
    let config = workloads::main_config(fast.addr, fast.addr);
    let large = args.callgrind_requests.max(20);
    let small = large / 10;
    let mut counts = Vec::new();
    for (name, target) in shapes {
        eprintln!("counting {name} under callgrind ({small} and {large} requests)");
        match callgrind::count(llmux, &config, &name, &target, small, large).await {
            Ok(count) => counts.push(count),
            Err(err) => {
                report.instructions = Some(Err(format!("{err:#}")));
                return;
            }
        }
    }
    report.instructions = Some(Ok(counts));
}
