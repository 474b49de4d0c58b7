//! Where the agent CLIs run in the tests: a throwaway HOME and working directory, a cleared
//! environment, and — when the kernel lets an unprivileged user make one — a loopback-only
//! network namespace (`unshare -rn`) whose only way out is the gateway.
//!
//! Inside the namespace `loopback_bridge.js` listens on 127.0.0.1:[`PORT`] and forwards each
//! connection to a Unix socket in the sandbox directory (filesystem sockets cross network
//! namespaces); here a relay task connects that socket to the gateway's TCP port. A CLI that
//! tried to reach anything else (telemetry, update checks, the real vendor) finds no network.
#![allow(
    clippy::disallowed_methods,
    reason = "the relay lives on the test runtime, which ends with the test: nothing to drain"
)]

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The gateway's port inside the namespace (the namespace is new and empty, so it is free).
const PORT: u16 = 8082;

/// `loopback_bridge.js`, next to this file.
const BRIDGE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/agents/loopback_bridge.js"
);

/// Whether `unshare -rn` with a loopback interface works here; the reason when not, said once.
fn namespace_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        let probe = std::process::Command::new("unshare")
            .args(["-rn", "sh", "-c", "ip link set lo up"])
            .stdin(Stdio::null())
            .output();
        let why_not = match probe {
            Ok(out) if out.status.success() => return true,
            Ok(out) => String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            Err(err) => format!("cannot run unshare: {err}"),
        };
        eprintln!(
            "note: no loopback-only network namespace ({why_not}); the CLI runs on the host \
             network with its telemetry and update checks turned off"
        );
        false
    })
}

/// One CLI run's directories and network.
pub struct Sandbox {
    root: PathBuf,
    /// The CLI's HOME (empty: no settings, credentials or caches of the machine's user).
    pub home: PathBuf,
    /// The CLI's working directory.
    pub work: PathBuf,
    /// The gateway's URL as the CLI must use it.
    pub gateway_url: String,
    /// The Unix socket relayed to the gateway, when the CLI runs in a namespace.
    socket: Option<PathBuf>,
    relay: Option<tokio::task::JoinHandle<()>>,
}

impl Sandbox {
    /// A fresh sandbox in front of the gateway listening on `gateway_addr` (`127.0.0.1:PORT`).
    pub async fn new(name: &str, gateway_addr: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let root = std::env::temp_dir().join(format!(
            "llmux-{name}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        // A leftover from a killed run with the same pid would hold a stale socket.
        let _ = std::fs::remove_dir_all(&root);
        let home = root.join("home");
        let work = root.join("work");
        std::fs::create_dir_all(&home).expect("sandbox home");
        std::fs::create_dir_all(&work).expect("sandbox work dir");
        if !namespace_available() {
            return Self {
                root,
                home,
                work,
                gateway_url: format!("http://{gateway_addr}"),
                socket: None,
                relay: None,
            };
        }
        let socket = root.join("gateway.sock");
        let listener = tokio::net::UnixListener::bind(&socket).expect("relay socket");
        let gateway = gateway_addr.to_owned();
        let relay = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let gateway = gateway.clone();
                tokio::spawn(async move {
                    if let Ok(mut upstream) = tokio::net::TcpStream::connect(&gateway).await {
                        // Either side closing ends the connection; how is not the test's concern.
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        Self {
            root,
            home,
            work,
            gateway_url: format!("http://127.0.0.1:{PORT}"),
            socket: Some(socket),
            relay: Some(relay),
        }
    }

    /// Writes `contents` to `name` in the working directory and returns its absolute path.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.work.join(name);
        std::fs::write(&path, contents).expect("write sandbox file");
        path
    }

    /// Runs `program args` in the working directory with only `env` (plus PATH, HOME and
    /// TMPDIR) and no stdin, inside the namespace when there is one; panics unless it exits 0
    /// within `limit`. Returns its stdout.
    pub async fn run(
        &self,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        limit: Duration,
    ) -> String {
        let tmp = self.root.join("tmp");
        std::fs::create_dir_all(&tmp).expect("sandbox tmp");
        let mut command = match &self.socket {
            Some(socket) => {
                let mut command = tokio::process::Command::new("unshare");
                command
                    .args(["-rn", "sh", "-c"])
                    .arg(r#"ip link set lo up && exec node "$0" "$@""#)
                    .arg(BRIDGE)
                    .arg(socket)
                    .arg(PORT.to_string())
                    .arg(program);
                command
            }
            None => tokio::process::Command::new(program),
        };
        command
            .args(args)
            .current_dir(&self.work)
            .env_clear()
            // The CLIs' launchers are node scripts (`#!/usr/bin/env node`).
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("TMPDIR", &tmp)
            .env("NO_COLOR", "1")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        let name = program.file_name().unwrap_or_default().to_string_lossy();
        let output = tokio::time::timeout(limit, command.output())
            .await
            .unwrap_or_else(|_| panic!("{name} did not finish within {limit:?}"))
            .unwrap_or_else(|err| panic!("{name} does not run: {err}"));
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "{name} failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(relay) = self.relay.take() {
            relay.abort();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// The JSON lines of a CLI's `--json` / `stream-json` output (other lines are skipped).
pub fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}
