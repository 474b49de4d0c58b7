//! `llmux-bench`: drives the mock upstream directly (the physical limit on this machine) and
//! llmux in front of the same mock, with the same load generator, and prints ratios measured in
//! the same run. Timings are reported, never asserted; `--smoke` only checks that every workload
//! completed without errors.

#![allow(clippy::print_stdout, reason = "a benchmark reports on stdout")]

mod load;
mod processes;
mod report;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use crate::load::{Workload, run};
use crate::processes::{Gateway, Mock};
use crate::report::Row;

#[derive(Debug, Parser)]
#[command(about)]
struct Args {
    /// A few seconds in total; fails on any error. For CI.
    #[arg(long)]
    smoke: bool,
    /// Seconds per workload measurement.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// The llmux binary (default: target/release/llmux next to this binary).
    #[arg(long)]
    llmux: Option<PathBuf>,
    /// Concurrency levels for the non-streaming workload.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 16, 64, 256])]
    concurrency: Vec<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(bench(args))
}

async fn bench(args: Args) -> anyhow::Result<()> {
    let llmux = match args.llmux {
        Some(path) => path,
        None => std::env::current_exe()?
            .parent()
            .context("binary directory")?
            .join("llmux"),
    };
    let (seconds, levels) = if args.smoke {
        (Duration::from_millis(500), vec![1, 8])
    } else {
        (Duration::from_secs(args.seconds), args.concurrency)
    };
    let mock = Mock::start(&llmux, 20).await?;
    let gateway = Gateway::start(&llmux, &mock).await?;
    println!(
        "llmux-bench: mock on cpu {}, gateway on cpu {} ({}), {:?} per workload",
        processes::MOCK_CPU,
        processes::GATEWAY_CPU,
        if processes::pinning_available() {
            "pinned with taskset"
        } else {
            "not pinned: taskset missing"
        },
        seconds
    );

    let mut rows = Vec::new();
    let mut errors = 0;
    let small = load::chat_body(1024, false);
    let large = load::chat_body(100 * 1024, false);
    let streaming = load::chat_body(1024, true);
    let mut cases: Vec<(String, Vec<u8>, usize, bool)> = levels
        .iter()
        .map(|&c| (format!("chat 1KB c={c}"), small.clone(), c, false))
        .collect();
    cases.push(("chat 100KB c=16".into(), large, 16, false));
    cases.push(("stream 20 chunks c=16".into(), streaming, 16, true));
    for (name, body, concurrency, stream) in cases {
        let workload = Workload {
            path: "/v1/chat/completions",
            body: body.into(),
            concurrency,
            duration: seconds,
            stream,
        };
        let direct = run(mock.addr, &workload).await;
        let proxied = run(gateway.addr, &workload).await;
        errors += direct.errors + proxied.errors;
        rows.push(Row {
            name,
            direct,
            proxied,
        });
    }
    report::print(&rows, gateway.rss_kib());
    if errors > 0 {
        bail!("{errors} request(s) failed");
    }
    Ok(())
}
