//! The optional Portkey column (`--portkey`): the Portkey AI gateway (`@portkey-ai/gateway`
//! from npm, run by Node) installed into `target/bench-portkey`, started on the gateway's core
//! in front of the same mocks. Portkey has no model aliases: every request names its upstream in
//! headers (`x-portkey-provider: openai` and `x-portkey-custom-host: http://<mock>/v1`), so it
//! gets the direct (mock-format) request plus those headers. Any failure to install or start it
//! is a message, never a failed benchmark.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use crate::load::Target;
use crate::processes::{GATEWAY_CPU, Process, free_port, pinned};

/// The gateway version installed; the bench installs exactly this one.
pub const VERSION: &str = "1.15.2";

/// Portkey's own dependency on `@hono/node-server` is `^1.3.3`, which npm resolves to the
/// newest 1.x. From 1.14 on, its `Response` keeps the upstream `fetch` answer's immutable
/// headers, and Portkey's `updateHeaders` then fails every streamed answer with
/// `TypeError: immutable` (HTTP 500 "Something went wrong"; Portkey-AI/gateway#1389, #1550).
/// 1.13.8 copies the headers, and both whole and streamed answers work.
const HONO_NODE_SERVER: &str = "1.13.8";

/// Where the gateway's Node entry point sits under the install directory.
const ENTRY: &str = "node_modules/@portkey-ai/gateway/build/start-server.js";

/// A running Portkey gateway.
pub struct Portkey {
    pub process: Process,
    /// `@portkey-ai/gateway 1.15.2 on Node v20…, …`: what was installed and runs it.
    pub version: String,
}

/// Installs (first time only) and starts the Portkey gateway; `Err` says why it is skipped.
pub async fn start(target_dir: &Path) -> Result<Portkey, String> {
    let dir = target_dir.join("bench-portkey");
    let entry = dir.join(ENTRY);
    if installed_version(&dir).as_deref() != Some(VERSION) {
        eprintln!(
            "installing @portkey-ai/gateway@{VERSION} into {} (npm)…",
            dir.display()
        );
        let dir_for_install = dir.clone();
        tokio::task::spawn_blocking(move || install(&dir_for_install))
            .await
            .map_err(|e| format!("install task failed: {e}"))??;
    }
    let node = output("node", &["--version"]).ok_or("node is not installed")?;
    let version = format!(
        "@portkey-ai/gateway {VERSION} on Node {node} (hono {}, @hono/node-server {})",
        package_version(&dir.join("node_modules/hono")).unwrap_or_else(|| "?".to_owned()),
        package_version(&dir.join("node_modules/@hono/node-server"))
            .unwrap_or_else(|| "?".to_owned()),
    );

    let addr = free_port().map_err(|e| format!("no free port: {e}"))?;
    let mut command = pinned(Path::new("node"), GATEWAY_CPU);
    command
        .arg(&entry)
        .arg(format!("--port={}", addr.port()))
        // No web UI and no log stream routes, only the gateway.
        .arg("--headless")
        .current_dir(&dir);
    let process = Process::spawn(
        "portkey",
        command,
        addr,
        Duration::from_secs(60),
        Vec::new(),
    )
    .await
    .map_err(|e| format!("portkey did not start: {e:#}"))?;
    Ok(Portkey { process, version })
}

/// The request Portkey gets for a workload: the request the mock gets directly (an OpenAI chat
/// completion naming the mock's model), routed by Portkey's headers to `upstream`'s `/v1`.
pub fn target(direct: &Target, upstream: SocketAddr) -> Target {
    let mut target = direct.clone();
    let host = HeaderValue::try_from(format!("http://{upstream}/v1"))
        .unwrap_or_else(|_| HeaderValue::from_static("http://127.0.0.1/v1"));
    target.headers.extend([
        (
            HeaderName::from_static("x-portkey-provider"),
            HeaderValue::from_static("openai"),
        ),
        (HeaderName::from_static("x-portkey-custom-host"), host),
    ]);
    target
}

fn install(dir: &Path) -> Result<(), String> {
    let fail = |why: String| {
        // A half-installed directory would be taken as installed next time.
        let _ = std::fs::remove_dir_all(dir);
        Err(why)
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let manifest = format!(
        "{{\n  \"private\": true,\n  \"dependencies\": {{ \"@portkey-ai/gateway\": \"{VERSION}\" }},\n  \
         \"overrides\": {{ \"@hono/node-server\": \"{HONO_NODE_SERVER}\" }}\n}}\n"
    );
    if let Err(e) = std::fs::write(dir.join("package.json"), manifest) {
        return fail(format!("cannot write package.json: {e}"));
    }
    let status = Command::new("npm")
        .args([
            "install",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
            "--prefix",
        ])
        .arg(dir)
        .status();
    match status {
        Err(e) => fail(format!("cannot run npm: {e}")),
        Ok(status) if !status.success() => fail(format!(
            "npm install @portkey-ai/gateway@{VERSION} failed with {status}"
        )),
        Ok(_) if installed_version(dir).as_deref() != Some(VERSION) => fail(format!(
            "npm install did not leave @portkey-ai/gateway {VERSION} in {}",
            dir.display()
        )),
        Ok(_) => Ok(()),
    }
}

/// The version of the gateway under `dir`, when its entry point is there too.
fn installed_version(dir: &Path) -> Option<String> {
    if !dir.join(ENTRY).exists() {
        return None;
    }
    package_version(&dir.join("node_modules/@portkey-ai/gateway"))
}

fn package_version(package: &Path) -> Option<String> {
    let manifest: PathBuf = package.join("package.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(manifest).ok()?).ok()?;
    Some(json.get("version")?.as_str()?.to_owned())
}

fn output(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}
