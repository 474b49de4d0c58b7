//! The optional LiteLLM column (`--litellm`): LiteLLM's proxy in a virtualenv under
//! `target/bench-venv`, configured with the same model aliases as the gateway (pointing at the
//! same mocks as OpenAI-compatible bases), started with its default worker count on the gateway's
//! core. Any failure to install or start it is a message, never a failed benchmark.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::processes::{GATEWAY_CPU, Process, TempFile, free_port, pinned};
use crate::sys;

/// A running LiteLLM proxy.
pub struct Litellm {
    pub process: Process,
    pub version: String,
    /// What `litellm --help` says about the worker count, and how many worker processes run.
    pub workers: String,
}

/// Installs (first time only) and starts LiteLLM; `Err` says why it is skipped.
pub async fn start(
    target_dir: &Path,
    fast: SocketAddr,
    paced: SocketAddr,
) -> Result<Litellm, String> {
    let venv = target_dir.join("bench-venv");
    let bin = venv.join("bin");
    let litellm = bin.join("litellm");
    if !litellm.exists() {
        eprintln!(
            "installing litellm[proxy] into {} (pip; this can take minutes)…",
            venv.display()
        );
        let venv_for_install = venv.clone();
        tokio::task::spawn_blocking(move || install(&venv_for_install))
            .await
            .map_err(|e| format!("install task failed: {e}"))??;
    }
    let version = output(
        &bin.join("python"),
        &[
            "-c",
            "import importlib.metadata as m; print(m.version('litellm'))",
        ],
    )
    .unwrap_or_else(|| "unknown".to_owned());
    let help = output(&litellm, &["--help"]).unwrap_or_default();
    // (`output` sets LITELLM_LOCAL_MODEL_COST_MAP too: without it even `--help` tries the network.)
    let workers_help = worker_help(&help);

    let addr = free_port().map_err(|e| format!("no free port: {e}"))?;
    let config = TempFile::with_contents("litellm", "yaml", &config(fast, paced))
        .map_err(|e| e.to_string())?;
    let mut command = pinned(&litellm, GATEWAY_CPU);
    command
        .arg("--config")
        .arg(config.path())
        .args(["--host", "127.0.0.1", "--port", &addr.port().to_string()])
        // Use the cost map shipped in the package instead of fetching it at startup.
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True");
    let process = Process::spawn(
        "litellm",
        command,
        addr,
        Duration::from_secs(240),
        vec![config],
    )
    .await
    .map_err(|e| format!("litellm did not start: {e:#}"))?;
    // Give forked workers (if any) a moment to appear before counting them.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let children = sys::children(process.pid());
    let workers = format!(
        "{} ({} child process{} of the proxy)",
        workers_help,
        children,
        if children == 1 { "" } else { "es" }
    );
    Ok(Litellm {
        process,
        version,
        workers,
    })
}

fn install(venv: &Path) -> Result<(), String> {
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(venv)
        .status()
        .map_err(|e| format!("cannot run python3: {e}"))?;
    if !status.success() {
        return Err(format!("python3 -m venv failed with {status}"));
    }
    let pip: PathBuf = venv.join("bin").join("pip");
    let status = Command::new(&pip)
        .args(["install", "--quiet", "litellm[proxy]"])
        .status()
        .map_err(|e| format!("cannot run {}: {e}", pip.display()))?;
    if !status.success() {
        // A half-installed venv would be taken as installed next time.
        let _ = std::fs::remove_dir_all(venv);
        return Err(format!("pip install 'litellm[proxy]' failed with {status}"));
    }
    Ok(())
}

fn output(program: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The default of `--num_workers` according to `litellm --help`.
fn worker_help(help: &str) -> String {
    let entry: String = help
        .lines()
        .skip_while(|l| !l.contains("--num_workers"))
        .take_while(|l| !l.contains("--max_requests_before_restart"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ");
    match entry.split_once("Default is ") {
        Some((_, rest)) => {
            let default: String = rest.chars().take_while(|c| *c != '.').collect();
            format!("--num_workers default per `litellm --help`: {default}")
        }
        None if entry.is_empty() => "litellm --help does not mention --num_workers".to_owned(),
        None => format!("litellm --help on --num_workers: {entry}"),
    }
}

fn config(fast: SocketAddr, paced: SocketAddr) -> String {
    // LiteLLM refuses to start without a master key; the bench's clients send `Bearer sk-bench`.
    let mut config = String::from("general_settings:\n  master_key: sk-bench\nmodel_list:\n");
    for (name, addr) in [("bench", fast), ("bench-stream", paced)] {
        config.push_str(&format!(
            "  - model_name: {name}\n    litellm_params:\n      model: openai/gpt-4o-mini\n      api_base: http://{addr}/v1\n      api_key: sk-bench\n"
        ));
    }
    config
}
