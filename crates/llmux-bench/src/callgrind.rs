//! Instructions per proxied request, counted by `valgrind --tool=callgrind`: the gateway runs
//! under callgrind twice, once serving a small and once a large number of sequential requests
//! (after the same warm-up), and stops on SIGINT (it drains and exits 0). The difference of the two
//! totals divided by the difference of the request counts cancels startup and shutdown. Unlike
//! wall-clock figures this hardly moves between runs on a noisy machine, so it is the regression
//! signal.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::load::{self, Target};
use crate::processes::{Launch, TempFile, start_gateway};

/// Requests sent before counting starts to matter (pools, caches, lazy statics).
const WARMUP: usize = 50;

/// One instruction count.
#[derive(Debug)]
pub struct Count {
    pub name: String,
    /// (requests, total instructions) of the two runs.
    pub small: (usize, u64),
    pub large: (usize, u64),
}

impl Count {
    pub fn per_request(&self) -> f64 {
        let requests = self.large.0.saturating_sub(self.small.0).max(1);
        (self.large.1 as f64 - self.small.1 as f64) / requests as f64
    }
}

pub fn valgrind_available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Counts the instructions per request of `target` through a gateway started with `config`.
pub async fn count(
    llmux: &Path,
    config: &str,
    name: &str,
    target: &Target,
    small: usize,
    large: usize,
) -> anyhow::Result<Count> {
    let small_total = total(llmux, config, target, small)
        .await
        .with_context(|| format!("{name}: callgrind run with {small} requests"))?;
    let large_total = total(llmux, config, target, large)
        .await
        .with_context(|| format!("{name}: callgrind run with {large} requests"))?;
    Ok(Count {
        name: name.to_owned(),
        small: (small, small_total),
        large: (large, large_total),
    })
}

async fn total(llmux: &Path, config: &str, target: &Target, n: usize) -> anyhow::Result<u64> {
    let out = TempFile::new("callgrind", "out");
    let mut gateway = start_gateway(llmux, config, Launch::Callgrind(out.path())).await?;
    load::sequential(gateway.addr, target, WARMUP + n)
        .await
        .map_err(|err| anyhow::anyhow!("request failed under callgrind: {err}"))?;
    let status = gateway
        .signal_and_wait("INT", Duration::from_secs(120))
        .await?;
    if !status.success() {
        bail!(
            "the gateway under callgrind exited with {status}; its log ends with:\n{}",
            gateway.log_tail()
        );
    }
    let counts = std::fs::read_to_string(out.path())
        .with_context(|| format!("cannot read {}", out.path().display()))?;
    keep_profile(out.path(), n);
    parse_total(&counts).context("no `summary:` or `totals:` line in the callgrind output")
}

/// With `LLMUX_BENCH_CALLGRIND_KEEP=<dir>`, copies each profile there as
/// `callgrind.<requests>.<pid>.out` for `callgrind_annotate`, where the figure alone does not say
/// which function grew.
fn keep_profile(profile: &Path, requests: usize) {
    let Some(dir) = std::env::var_os("LLMUX_BENCH_CALLGRIND_KEEP") else {
        return;
    };
    let dir = Path::new(&dir);
    let kept = dir.join(format!("callgrind.{requests}.{}.out", std::process::id()));
    if let Err(err) = std::fs::create_dir_all(dir).and_then(|()| std::fs::copy(profile, &kept)) {
        eprintln!("cannot keep {}: {err}", kept.display());
    }
}

/// The total of the first event (Ir) from a callgrind output file.
fn parse_total(counts: &str) -> Option<u64> {
    counts
        .lines()
        .find_map(|l| {
            l.strip_prefix("summary:")
                .or_else(|| l.strip_prefix("totals:"))
        })
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_the_summary_line() {
        let out = "version: 1\ncmd: llmux serve\nevents: Ir\nsummary: 123456\n\nfn=main\n1 5\ntotals: 123456\n";
        assert_eq!(super::parse_total(out), Some(123456));
        assert_eq!(super::parse_total("events: Ir\n"), None);
    }
}
