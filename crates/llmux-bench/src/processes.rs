//! The processes under test: mocks, gateways (pinned, or under callgrind) and, optionally,
//! LiteLLM. Each is started on a free loopback port, waited for until it accepts connections,
//! and killed when its handle is dropped. With `taskset` and two or more cores the gateway (and
//! anything compared with it) runs on cpu 0, the mocks on cpu 1 next to the load generator.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub const GATEWAY_CPU: usize = 0;
pub const MOCK_CPU: usize = 1;

pub fn pinning_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        Command::new("taskset")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
            && std::fs::read_to_string("/proc/cpuinfo")
                .is_ok_and(|c| c.lines().filter(|l| l.starts_with("processor")).count() >= 2)
    })
}

/// `program` pinned to `cpu` when pinning is available.
pub fn pinned(program: &Path, cpu: usize) -> Command {
    if pinning_available() {
        let mut command = Command::new("taskset");
        command.arg("-c").arg(cpu.to_string()).arg(program);
        command
    } else {
        Command::new(program)
    }
}

pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// A file in the temp directory, removed on drop.
pub struct TempFile(PathBuf);

impl TempFile {
    /// A new unique path (the file is not created).
    pub fn new(stem: &str, extension: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        Self(std::env::temp_dir().join(format!(
            "llmux-bench-{}-{n}-{stem}.{extension}",
            std::process::id()
        )))
    }

    pub fn with_contents(stem: &str, extension: &str, contents: &str) -> anyhow::Result<Self> {
        let file = Self::new(stem, extension);
        std::fs::write(&file.0, contents)
            .with_context(|| format!("cannot write {}", file.0.display()))?;
        Ok(file)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        // Nothing to do if it is already gone.
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A started server process, killed on drop.
pub struct Process {
    name: String,
    child: Child,
    pub addr: SocketAddr,
    log: TempFile,
    _files: Vec<TempFile>,
}

impl Process {
    /// Spawns `command` (which must listen on `addr`), with its stderr in a log file, and waits
    /// up to `startup` for it to accept connections.
    pub async fn spawn(
        name: &str,
        mut command: Command,
        addr: SocketAddr,
        startup: Duration,
        files: Vec<TempFile>,
    ) -> anyhow::Result<Self> {
        let log = TempFile::new(name, "log");
        let stderr = std::fs::File::create(log.path())
            .with_context(|| format!("cannot create {}", log.path().display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .with_context(|| format!("cannot start {name}: {command:?}"))?;
        let mut process = Self {
            name: name.to_owned(),
            child,
            addr,
            log,
            _files: files,
        };
        process.wait_listening(startup).await?;
        Ok(process)
    }

    async fn wait_listening(&mut self, startup: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + startup;
        while Instant::now() < deadline {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return Ok(());
            }
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited with {status} before listening on {}; its log ends with:\n{}",
                    self.name,
                    self.addr,
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        bail!(
            "{}: nothing listening on {} after {startup:?}; its log ends with:\n{}",
            self.name,
            self.addr,
            self.log_tail()
        )
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines the process wrote to stderr.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log.path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }

    /// Sends `signal` (a `kill` signal name such as `INT`) and waits up to `timeout` for the
    /// process to exit.
    pub async fn signal_and_wait(
        &mut self,
        signal: &str,
        timeout: Duration,
    ) -> anyhow::Result<ExitStatus> {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid().to_string())
            .status()
            .context("cannot run kill")?;
        if !sent.success() {
            bail!("kill -{signal} {} failed", self.pid());
        }
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("{} still running {timeout:?} after SIG{signal}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // Best effort: the process may exit by itself in between.
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// How the mock paces its answers.
#[derive(Debug, Clone, Copy)]
pub struct MockPacing {
    pub chunks: usize,
    pub chunk_delay_ms: u64,
    /// Delay before each answer's head, ms.
    pub latency_ms: u64,
}

/// Starts `llmux mock-upstream` on cpu 1.
pub async fn start_mock(llmux: &Path, pacing: MockPacing) -> anyhow::Result<Process> {
    let addr = free_port()?;
    let mut command = pinned(llmux, MOCK_CPU);
    command
        .args(["mock-upstream", "--listen", &addr.to_string()])
        .args(["--chunks", &pacing.chunks.to_string()])
        .args(["--chunk-delay-ms", &pacing.chunk_delay_ms.to_string()])
        .args(["--latency-ms", &pacing.latency_ms.to_string()])
        .env("LOG_LEVEL", "warn");
    Process::spawn("mock", command, addr, Duration::from_secs(20), Vec::new()).await
}

/// Starts the byte relay (this very binary, `--relay-listen`) on the gateway's core in front
/// of `to`: the floor any proxy process adds (see `relay`).
pub async fn start_relay(to: SocketAddr) -> anyhow::Result<Process> {
    let addr = free_port()?;
    let mut command = pinned(&std::env::current_exe()?, GATEWAY_CPU);
    command
        .args(["--relay-listen", &addr.to_string()])
        .args(["--relay-to", &to.to_string()]);
    Process::spawn("relay", command, addr, Duration::from_secs(10), Vec::new()).await
}

/// How to run a gateway.
#[derive(Debug, Clone, Copy)]
pub enum Launch<'a> {
    /// Natively, on cpu 0.
    Pinned,
    /// Under `valgrind --tool=callgrind`, writing its counts to this file.
    Callgrind(&'a Path),
}

/// Starts `llmux serve` with `config` (YAML).
pub async fn start_gateway(
    llmux: &Path,
    config: &str,
    launch: Launch<'_>,
) -> anyhow::Result<Process> {
    let addr = free_port()?;
    let config = TempFile::with_contents("gateway", "yaml", config)?;
    let (mut command, startup) = match launch {
        Launch::Pinned => (pinned(llmux, GATEWAY_CPU), Duration::from_secs(30)),
        Launch::Callgrind(out) => {
            let valgrind = Path::new("valgrind");
            let mut command = pinned(valgrind, GATEWAY_CPU);
            command
                .arg("--tool=callgrind")
                .arg(format!("--callgrind-out-file={}", out.display()))
                .arg(llmux);
            (command, Duration::from_secs(180))
        }
    };
    command
        .args(["serve", "--config"])
        .arg(config.path())
        .args(["--listen", &addr.to_string()])
        .env("LOG_LEVEL", "warn");
    Process::spawn("gateway", command, addr, startup, vec![config]).await
}
