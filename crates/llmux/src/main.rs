//! The `llmux` binary: parses the command line and wires the crates together. No logic lives
//! here beyond choosing what to start.

mod cli;
mod credentials;
mod keys;
mod reload;

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use llmux_config::{Config, Source};
use llmux_server::{Gateway, ServerOptions, Snapshot};
use llmux_telemetry::logging;

use crate::cli::{Cli, Command, ConfigArgs};

/// jemalloc's thread caches take about half the instructions of glibc's malloc and free, which
/// a request spends mostly on short-lived buffers and futures: -6 % instructions per chat
/// request and less memory per open stream, for +0.6 MiB idle and a higher peak on huge
/// bodies (BENCHMARKS.md, "The allocator"; mimalloc was measured too and kept neither gain).
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// A work-stealing runtime with a worker per core, or a current-thread one when the process
/// may use a single core (`taskset`, a one-CPU container): with nobody to steal from, the
/// multi-thread scheduler only adds bookkeeping to every wake-up (BENCHMARKS.md).
fn runtime_builder() -> tokio::runtime::Builder {
    match std::thread::available_parallelism() {
        Ok(cores) if cores.get() == 1 => tokio::runtime::Builder::new_current_thread(),
        _ => tokio::runtime::Builder::new_multi_thread(),
    }
}

/// `llmux health`: one `GET /health` within two seconds; success is a 200 status line. Plain
/// blocking I/O: it is the whole command.
fn health(addr: SocketAddr) -> anyhow::Result<ExitCode> {
    use std::io::Read as _;
    let limit = Duration::from_secs(2);
    let mut stream = std::net::TcpStream::connect_timeout(&addr, limit)
        .with_context(|| format!("cannot reach {addr}"))?;
    stream.set_read_timeout(Some(limit))?;
    stream.set_write_timeout(Some(limit))?;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")?;
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .with_context(|| format!("{addr} did not answer /health"))?;
    if head.starts_with(b"HTTP/1.1 200") {
        Ok(ExitCode::SUCCESS)
    } else {
        anyhow::bail!("{addr} answered /health with an error status")
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let level = std::env::var("LOG_LEVEL").unwrap_or_else(|_| "info".into());
    let format = std::env::var("LOG_FORMAT")
        .ok()
        .and_then(|f| logging::Format::parse(&f))
        .unwrap_or_default();
    logging::init(&level, format);
    let runtime = match runtime_builder().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config, listen } => serve(&config, listen).await,
            Command::Check { config } => check(&config),
            Command::Credentials { action } => credentials::run(&action, &env),
            Command::Keys { config, action } => keys::run(&source(&config)?, action, &env).await,
            Command::Health { addr } => health(addr),
            Command::MockUpstream {
                listen,
                chunks,
                latency_ms,
                chunk_delay_ms,
            } => {
                let options = llmux_mock::MockOptions {
                    chunks,
                    latency: Duration::from_millis(latency_ms),
                    chunk_delay: Duration::from_millis(chunk_delay_ms),
                };
                let listener = tokio::net::TcpListener::bind(listen)
                    .await
                    .with_context(|| format!("cannot listen on {listen}"))?;
                llmux_mock::run(listener, options)
                    .await
                    .context("mock upstream failed")?;
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn source(args: &ConfigArgs) -> anyhow::Result<Source> {
    Ok(match (&args.config, &args.credentials, &args.models) {
        (Some(file), _, _) => Source::File(file.clone()),
        (None, Some(credentials), Some(models)) => Source::Seed {
            credentials: credentials.clone(),
            models: models.clone(),
        },
        _ => llmux_config::discover(
            &std::env::current_dir().context("cannot read the current directory")?,
        ),
    })
}

fn report(errors: &[llmux_config::ConfigError]) -> anyhow::Error {
    for error in errors {
        eprintln!("config error: {error}");
    }
    anyhow::anyhow!("the configuration has {} error(s)", errors.len())
}

fn check(args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let source = source(args)?;
    let config = llmux_config::load(&source, &env).map_err(|e| report(&e))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "config: {}", config.source)?;
    write!(out, "{}", config.combination_table())?;
    Ok(ExitCode::SUCCESS)
}

async fn serve(args: &ConfigArgs, listen: Option<SocketAddr>) -> anyhow::Result<ExitCode> {
    let source = source(args)?;
    let mut demo_mock = None;
    let config = match llmux_config::load(&source, &env) {
        Ok(config) => config,
        Err(_) if matches!(source, Source::Demo) && !llmux_config::demo_has_keys(&env) => {
            let (config, mock) = start_demo_mock().await?;
            demo_mock = Some(mock);
            config
        }
        Err(errors) => return Err(report(&errors)),
    };
    // Demo mode serving real vendor keys (from the environment) without auth: anyone who can
    // reach the port spends them, so it stays on this machine unless told otherwise.
    let exposed_keys =
        matches!(source, Source::Demo) && demo_mock.is_none() && config.auth.is_none();
    let listen = match (listen, config.listen) {
        (Some(addr), _) | (None, Some(addr)) => {
            if exposed_keys && !addr.ip().is_loopback() {
                tracing::warn!(%addr, "demo mode serves your vendor keys without authentication on a non-loopback address: anyone who can reach it can spend them");
            }
            addr
        }
        (None, None) => {
            let port = env("PORT").unwrap_or_else(|| "8082".into());
            let host = if exposed_keys {
                tracing::info!(
                    "demo mode with real vendor keys and no authentication: listening on 127.0.0.1 only (--listen 0.0.0.0:{port} exposes it)"
                );
                "127.0.0.1"
            } else {
                "0.0.0.0"
            };
            format!("{host}:{port}")
                .parse()
                .with_context(|| format!("PORT={port} is not a valid port"))?
        }
    };
    let options = ServerOptions::from_config(&config);
    tracing::info!(
        source = %config.source,
        credentials = config.credentials.len(),
        models = config.models.len(),
        "configuration loaded"
    );
    let governance = match &config.auth {
        Some(auth) => {
            let governance = llmux_server::Governance::from_config(auth, config.redis.as_ref())
                .await
                .context("cannot open the key store or Redis")?;
            if !governance.enforced() {
                tracing::warn!(
                    "auth is configured but there is no master key and no virtual key yet: the gateway is open until a key exists"
                );
            }
            Some(governance)
        }
        None => {
            tracing::warn!("no `auth:` section: the gateway is open to anyone who can reach it");
            None
        }
    };
    let response_backend = match &config.responses.store {
        Some(url) => Some(
            llmux_store::open_responses(url.expose())
                .await
                .context("cannot open responses.store")?,
        ),
        None => None,
    };
    let snapshot = Snapshot::compile(config).context("cannot prepare the configuration")?;
    let gateway = Gateway::with_parts(snapshot, governance, response_backend)
        .context("cannot start the gateway")?;
    gateway
        .connect_shared_state()
        .await
        .context("cannot connect the shared state in `redis`")?;
    gateway
        .start_request_log()
        .await
        .context("cannot open the request log in `log.database`")?;
    match gateway.start_tracing(|name| std::env::var(name).ok()) {
        Ok(Some(endpoint)) => tracing::info!(%endpoint, "exporting traces over OTLP"),
        Ok(None) => {}
        Err(message) => anyhow::bail!("cannot start trace export: {message}"),
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    // Before "listening": from then on a SIGHUP reloads (the handler is in place).
    let watcher = (!matches!(source, Source::Demo))
        .then(|| llmux_telemetry::spawn_tracked(reload::watch(source.clone(), gateway.clone())));
    tracing::info!(%addr, "listening");
    let drain_timeout = options.drain_timeout;
    let shutdown_gateway = gateway.clone();
    llmux_server::serve(
        listener,
        llmux_server::app(gateway),
        options,
        shutdown_signal(),
    )
    .await;
    // The watcher never ends on its own; stopped, it no longer holds up the drain below.
    if let Some(watcher) = watcher {
        watcher.abort();
    }
    // The trace exporter sends what is queued and ends (its queue outlives every request).
    shutdown_gateway.stop_tracing();
    // One deadline for what is left: the demo mock, then every other tracked task.
    let drained = tokio::time::timeout(drain_timeout, async {
        if let Some(mock) = demo_mock {
            let _ = mock.shutdown().await;
        }
        llmux_telemetry::drain_tracked(drain_timeout).await
    })
    .await
    .unwrap_or(false);
    if !drained {
        tracing::warn!("drain deadline reached with background tasks still running");
    }
    Ok(ExitCode::SUCCESS)
}

/// Demo mode without any vendor key: the built-in mock answers, so the first curl works. The
/// mock serves until it is shut down, after the gateway.
async fn start_demo_mock() -> anyhow::Result<(Config, llmux_mock::MockUpstream)> {
    let mock = llmux_mock::MockUpstream::start(llmux_mock::MockOptions::default())
        .await
        .context("cannot start the built-in mock vendor")?;
    let base = url_for(&mock)?;
    tracing::warn!(
        mock = %mock.url(),
        "DEMO MODE: no config file and no vendor key (OPENAI_API_KEY, GEMINI_API_KEY, ANTHROPIC_API_KEY); \
         answering from the built-in mock vendor, which echoes your last message"
    );
    Ok((llmux_config::mock_demo(&base), mock))
}

fn url_for(mock: &llmux_mock::MockUpstream) -> anyhow::Result<url::Url> {
    url::Url::parse(&format!("{}/v1", mock.url())).context("mock URL")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown requested");
}
