//! What the benchmark reads from the operating system: the machine, a process's resident memory
//! and CPU time (from `/proc`), and an RSS sampler that runs alongside a load.

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The machine the run happened on.
#[derive(Debug)]
pub struct Machine {
    pub cpus: usize,
    pub model: String,
    /// `Cpus_allowed_list` of the benchmark process itself (the load generator).
    pub bench_cpus: String,
}

impl Machine {
    pub fn read() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpus = cpuinfo
            .lines()
            .filter(|l| l.starts_with("processor"))
            .count();
        let model = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map_or_else(|| "unknown".to_owned(), |(_, v)| v.trim().to_owned());
        let bench_cpus = status_field(std::process::id(), "Cpus_allowed_list:")
            .unwrap_or_else(|| "unknown".to_owned());
        Self {
            cpus,
            model,
            bench_cpus,
        }
    }
}

fn status_field(pid: u32, name: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(name))
        .map(|l| l[name.len()..].trim().to_owned())
}

fn status_kib(pid: u32, name: &str) -> Option<u64> {
    status_field(pid, name)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Resident memory of `pid`, KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmRSS:")
}

/// The anonymous part of `pid`'s resident memory (heap, stacks: what it owns, unlike the
/// file-backed pages of its code, which the page cache shares), KiB.
pub fn rss_anon_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "RssAnon:")
}

/// Peak resident memory of `pid` since it started, KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_kib(pid, "VmHWM:")
}

/// User plus system CPU time of `pid` (all its threads), in clock ticks.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces; the fields after it are positional. utime and stime
    // are fields 14 and 15, i.e. the 12th and 13th after the name's closing parenthesis.
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Clock ticks per second (`getconf CLK_TCK`, 100 on every Linux we know of).
pub fn clock_ticks_per_second() -> u64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .filter(|&t| t > 0)
        .unwrap_or(100)
}

/// CPU time a process spends over an interval, from its tick counter.
pub struct CpuMeter {
    pid: u32,
    before: Option<u64>,
    ticks_per_second: u64,
}

impl CpuMeter {
    pub fn start(pid: u32, ticks_per_second: u64) -> Self {
        Self {
            pid,
            before: cpu_ticks(pid),
            ticks_per_second,
        }
    }

    /// CPU microseconds used since `start`.
    pub fn micros(&self) -> Option<f64> {
        let spent = cpu_ticks(self.pid)?.checked_sub(self.before?)?;
        Some(spent as f64 * 1e6 / self.ticks_per_second as f64)
    }
}

/// Samples a process's RSS every 50 ms until stopped and keeps the largest value.
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let task = crate::spawn({
            let (stop, max) = (stop.clone(), max.clone());
            async move {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(rss) = rss_kib(pid) {
                        max.fetch_max(rss, Ordering::Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        });
        Self { stop, max, task }
    }

    /// The largest RSS seen, KiB.
    pub async fn finish(self, pid: u32) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        // The sampler only sleeps and reads /proc; its end cannot fail in a way that matters.
        let _ = self.task.await;
        if let Some(rss) = rss_kib(pid) {
            self.max.fetch_max(rss, Ordering::Relaxed);
        }
        self.max.load(Ordering::Relaxed)
    }
}

/// How many processes have `pid` as their parent.
pub fn children(pid: u32) -> usize {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .bytes()
                .all(|b| b.is_ascii_digit())
        })
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // The parent pid is the second field after the command name.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1))
                .and_then(|ppid| ppid.parse::<u32>().ok())
                == Some(pid)
        })
        .count()
}
