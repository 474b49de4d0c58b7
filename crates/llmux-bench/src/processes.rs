//! Starting the mock and the gateway as separate processes, each pinned to its own core when
//! `taskset` is available (gateway on one core; mock and load generator on the other).

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

pub const GATEWAY_CPU: usize = 0;
pub const MOCK_CPU: usize = 1;

pub fn pinning_available() -> bool {
    Command::new("taskset")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
        && std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
}

fn command(binary: &Path, cpu: usize) -> Command {
    if pinning_available() {
        let mut command = Command::new("taskset");
        command.arg("-c").arg(cpu.to_string()).arg(binary);
        command
    } else {
        Command::new(binary)
    }
}

fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

async fn wait_listening(addr: SocketAddr, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if let Some(status) = child.try_wait()? {
            bail!("process exited with {status} before listening on {addr}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("nothing listening on {addr} after 20 s")
}

pub struct Mock {
    child: Child,
    pub addr: SocketAddr,
}

impl Mock {
    pub async fn start(llmux: &Path, chunks: usize) -> anyhow::Result<Self> {
        let addr = free_port()?;
        let mut child = command(llmux, MOCK_CPU)
            .args([
                "mock-upstream",
                "--listen",
                &addr.to_string(),
                "--chunks",
                &chunks.to_string(),
            ])
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run {}", llmux.display()))?;
        wait_listening(addr, &mut child).await?;
        Ok(Self { child, addr })
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Gateway {
    child: Child,
    pub addr: SocketAddr,
    _config: tempfile::TempPath,
}

impl Gateway {
    pub async fn start(llmux: &Path, mock: &Mock) -> anyhow::Result<Self> {
        let addr = free_port()?;
        let config = tempfile::TempPath::write(&format!(
            "credentials:\n  - {{ platform: openai, value: sk-bench, base_url: \"http://{}/v1\" }}\nmodels:\n  - {{ vendor: openai, model: gpt-4o-mini, name: bench }}\n",
            mock.addr
        ))?;
        let mut child = command(llmux, GATEWAY_CPU)
            .args(["serve", "--config"])
            .arg(config.path())
            .args(["--listen", &addr.to_string()])
            .env("LOG_LEVEL", "warn")
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run {}", llmux.display()))?;
        wait_listening(addr, &mut child).await?;
        Ok(Self {
            child,
            addr,
            _config: config,
        })
    }

    /// Current and peak resident memory of the gateway, KiB.
    pub fn rss_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A config file that is removed on drop.
mod tempfile {
    use std::path::{Path, PathBuf};

    pub struct TempPath(PathBuf);

    impl TempPath {
        pub fn write(contents: &str) -> std::io::Result<Self> {
            let path =
                std::env::temp_dir().join(format!("llmux-bench-{}.yaml", std::process::id()));
            std::fs::write(&path, contents)?;
            Ok(Self(path))
        }

        pub fn path(&self) -> &Path {
            &self.0
        }
    }

    impl Drop for TempPath {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}
