//! Test harness: the real gateway (in-process or as the built binary) on 127.0.0.1:0 in front
//! of the real mock upstream. Every test gets its own ports, so tests run in parallel.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests fail by panicking"
)]
#![allow(
    dead_code,
    reason = "each test binary uses a different part of the harness"
)]
#![allow(
    clippy::disallowed_methods,
    reason = "tests spawn their own peers and load on the test runtime, which ends with the test: nothing to drain"
)]

use std::fmt::Display;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use llmux_mock::{Api, MockOptions, MockUpstream, RecordedCall};
use serde_json::{Value, json};

pub struct TestGateway {
    pub url: String,
    pub client: reqwest::Client,
    pub gateway: std::sync::Arc<llmux_server::Gateway>,
}

impl TestGateway {
    /// Starts the gateway in-process with a YAML config.
    pub async fn start(yaml: &str) -> Self {
        let config = llmux_config::from_str(yaml, llmux_config::Format::Yaml, &|_| None)
            .unwrap_or_else(|e| panic!("test config invalid: {e:?}"));
        let server_config = config.clone();
        let governance = match &config.auth {
            Some(auth) => Some(
                llmux_server::Governance::from_config(auth, config.redis.as_ref())
                    .await
                    .expect("governance"),
            ),
            None => None,
        };
        let backend = match &config.responses.store {
            Some(url) => Some(
                llmux_store::open_responses(url.expose())
                    .await
                    .expect("response store"),
            ),
            None => None,
        };
        let snapshot = llmux_server::Snapshot::compile(config).expect("snapshot");
        let gateway =
            llmux_server::Gateway::with_parts(snapshot, governance, backend).expect("gateway");
        gateway.connect_shared_state().await.expect("shared state");
        gateway.start_request_log().await.expect("request log");
        gateway.start_tracing(|_| None).expect("tracing");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let options = llmux_server::ServerOptions {
            drain_timeout: std::time::Duration::from_secs(1),
            ..llmux_server::ServerOptions::from_config(&server_config)
        };
        tokio::spawn(llmux_server::serve(
            listener,
            llmux_server::app(gateway.clone()),
            options,
            std::future::pending(),
        ));
        Self {
            url: format!("http://{addr}"),
            client: reqwest::Client::new(),
            gateway,
        }
    }

    /// Swaps in a new config, as SIGHUP or a file change would.
    pub fn reload(&self, yaml: &str) {
        let config = llmux_config::from_str(yaml, llmux_config::Format::Yaml, &|_| None)
            .expect("valid config");
        self.gateway.reload(config).expect("reload");
    }

    pub fn addr(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .expect("gateway answers")
    }

    pub async fn post_raw(&self, path: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("gateway answers")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .expect("gateway answers")
    }

    /// POSTs `body` and returns the JSON answer, whatever its status.
    pub async fn answer(&self, path: &str, body: &Value) -> Value {
        self.post(path, body)
            .await
            .json()
            .await
            .expect("a JSON answer")
    }

    /// The status of a chat completion request for `model` saying `text`.
    pub async fn chat_status(&self, model: &str, text: &str) -> u16 {
        self.post("/v1/chat/completions", &chat(model, text))
            .await
            .status()
            .as_u16()
    }

    /// A request presenting `key` as a bearer token (none: anonymous), with an optional JSON
    /// body.
    pub async fn send_as(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut builder = self.client.request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            builder = builder.json(body);
        }
        if let Some(key) = key {
            builder = builder.bearer_auth(key);
        }
        builder.send().await.expect("gateway answers")
    }

    /// POSTs `body` presenting `key` (none: anonymous).
    pub async fn post_as(&self, path: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
        self.send_as(reqwest::Method::POST, path, key, Some(body))
            .await
    }

    /// GETs `path` presenting `key`.
    pub async fn get_as(&self, path: &str, key: &str) -> reqwest::Response {
        self.send_as(reqwest::Method::GET, path, Some(key), None)
            .await
    }

    /// GETs an admin path with [`MASTER`]: its status and JSON body.
    pub async fn admin(&self, path: &str) -> (u16, Value) {
        let response = self.get_as(path, MASTER).await;
        let status = response.status().as_u16();
        (status, response.json().await.expect("a JSON answer"))
    }
}

/// The master key of the configs with `auth:` (see [`governed`]).
pub const MASTER: &str = "master-secret-0123456789abcdef";

/// Creates a virtual key with `fields` through the admin API: its id and its secret.
pub async fn create_key(gateway: &TestGateway, fields: Value) -> (String, String) {
    let response = gateway.post_as("/admin/keys", Some(MASTER), &fields).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("created key");
    (
        body["id"].as_str().expect("key id").to_owned(),
        body["key"].as_str().expect("key secret").to_owned(),
    )
}

/// A key's usage as `/admin/keys/{id}/usage` reports it.
pub async fn key_usage(gateway: &TestGateway, id: &str) -> Value {
    gateway.admin(&format!("/admin/keys/{id}/usage")).await.1
}

/// A key's total spend in USD (0 before anything is recorded).
pub async fn spent_total(gateway: &TestGateway, id: &str) -> f64 {
    key_usage(gateway, id).await["spend_usd"]["total"]
        .as_f64()
        .unwrap_or(0.0)
}

/// A config with virtual keys in `database` under [`MASTER`]: a credential on the mock for
/// each `(platform, value)` in `vendors`, the `(vendor, model, name)` entries of `models`, then
/// `extra` sections.
pub fn governed(
    mock: &MockUpstream,
    vendors: &[(&str, &str)],
    models: &[(&str, &str, &str)],
    database: &str,
    extra: &str,
) -> String {
    let url = mock.url();
    let mut yaml = String::from("credentials:\n");
    for (platform, value) in vendors {
        yaml.push_str(&format!(
            "  - {{ platform: {platform}, value: {value}, base_url: \"{url}/v1\" }}\n"
        ));
    }
    yaml.push_str("models:\n");
    for (vendor, model, name) in models {
        yaml.push_str(&format!(
            "  - {{ vendor: {vendor}, model: {model}, name: {name} }}\n"
        ));
    }
    yaml.push_str(&format!(
        "auth: {{ master_key: {MASTER}, database: \"{database}\" }}\n{extra}"
    ));
    yaml
}

/// How often [`eventually`] asks again.
const POLL: Duration = Duration::from_millis(20);

/// Waits for what the gateway does in the background (log writes, stores, replicas syncing,
/// reloads): asks `check` every 20 ms until it answers `Ok`, and returns that value. Past
/// `limit` it panics with the last `Err`, which says what was awaited and what was seen
/// instead. A condition wait, never a fixed sleep.
pub async fn eventually<T, E, F, Fut>(limit: Duration, mut check: F) -> T
where
    E: Display,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + limit;
    loop {
        match check().await {
            Ok(value) => return value,
            Err(last) if Instant::now() >= deadline => {
                panic!("gave up after {limit:?}: {last}")
            }
            Err(_) => tokio::time::sleep(POLL).await,
        }
    }
}

/// One credential per vendor API (OpenAI, Anthropic, Gemini), all on the mock, as the
/// `credentials:` section of a config.
pub fn every_vendor_credentials(mock: &MockUpstream) -> String {
    format!(
        "credentials:
  - {{ platform: openai, value: sk-openai-test-0123456789, base_url: \"{url}/v1\" }}
  - {{ platform: anthropic, value: sk-ant-test-0123456789, base_url: \"{url}/v1\" }}
  - {{ platform: gemini, value: AIzaTestKey0123456789012345678901234, base_url: \"{url}/v1beta\" }}
",
        url = mock.url()
    )
}

/// [`every_vendor_credentials`] with one alias per vendor (`via-openai`, `via-anthropic`,
/// `via-gemini`), then `extra` sections.
pub fn every_vendor(mock: &MockUpstream, extra: &str) -> String {
    format!(
        "{}models:
  - {{ vendor: openai, model: gpt-4o-mini, name: via-openai }}
  - {{ vendor: anthropic, model: claude-sonnet-4-5, name: via-anthropic }}
  - {{ vendor: gemini, model: gemini-2.5-flash, name: via-gemini }}
{extra}",
        every_vendor_credentials(mock)
    )
}

/// The mock's calls since the last clear (which this clears), checked to be `count` calls of
/// `model` on `api`; `via` names the alias in the message.
pub fn vendor_calls(
    mock: &MockUpstream,
    via: &str,
    model: &str,
    api: &Api,
    count: usize,
) -> Vec<RecordedCall> {
    let calls = mock.calls();
    mock.clear_calls();
    let seen: Vec<(&Api, &str)> = calls.iter().map(|c| (&c.api, c.model.as_str())).collect();
    assert!(
        calls.len() == count && calls.iter().all(|c| &c.api == api && c.model == model),
        "{via}: expected {count} call(s) of {model} on {api:?}, the mock saw {seen:?}"
    );
    calls
}

/// Panics with the output of a client's `script` run on `model` unless it succeeded, and shows
/// its stdout (with `--nocapture`: which checks ran).
pub fn assert_script_passed(script: &str, model: &str, output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{script} on {model} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&output.stdout));
}

/// The path in environment variable `var`, which `scripts/test` sets after installing
/// `package` into `target/clients/{dir}`; without it, says the test is skipped.
pub fn installed_client(var: &str, package: &str, dir: &str) -> Option<String> {
    let found = std::env::var(var).ok();
    if found.is_none() {
        eprintln!(
            "skipped: {var} is not set (scripts/test sets it after installing {package} into \
             target/clients/{dir})"
        );
    }
    found
}

pub async fn mock() -> MockUpstream {
    MockUpstream::start(MockOptions::default())
        .await
        .expect("mock starts")
}

pub async fn mock_with(options: MockOptions) -> MockUpstream {
    MockUpstream::start(options).await.expect("mock starts")
}

/// One OpenAI-compatible credential per name in `keys` for `vendor`, all pointing at the mock.
pub fn credentials(mock: &MockUpstream, vendor: &str, keys: &[&str]) -> String {
    keys.iter()
        .map(|k| {
            format!(
                "  - {{ platform: {vendor}, api: openai, value: {k}, base_url: \"{}/v1\" }}\n",
                mock.url()
            )
        })
        .collect()
}

/// A config with one OpenAI credential (`sk-test-abcdefghijklmnopqrstuvwxyz`) and `gpt-4o-mini`
/// aliased `fast`, plus an embedding model.
pub fn basic_config(mock: &MockUpstream) -> String {
    format!(
        "credentials:\n{}models:\n  - {{ vendor: openai, model: gpt-4o-mini, name: fast }}\n  - {{ vendor: openai, model: text-embedding-3-small, kind: embedding }}\n",
        credentials(mock, "openai", &[SECRET])
    )
}

pub const SECRET: &str = "sk-test-abcdefghijklmnopqrstuvwxyz";

pub fn chat(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": text}]})
}

/// Reads an SSE body into its `data:` payloads (the gateway's output framing: LF only).
pub async fn sse_data(response: reqwest::Response) -> Vec<String> {
    let text = response.text().await.expect("stream body");
    assert!(!text.contains('\r'), "gateway SSE must use LF line endings");
    text.split("\n\n")
        .filter(|frame| !frame.is_empty())
        .map(|frame| {
            frame
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

/// Reads an SSE body into named events, (event name, JSON data), one data line each and
/// `[DONE]` as its own entry (LF framing only).
pub async fn named_events(response: reqwest::Response) -> Vec<(String, Value)> {
    let text = response.text().await.expect("stream body");
    assert!(!text.contains('\r'), "LF line endings only");
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|frame| {
            let mut name = String::new();
            let mut data = Vec::new();
            for line in frame.lines() {
                if let Some(n) = line.strip_prefix("event: ") {
                    name = n.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data.push(d);
                }
            }
            assert_eq!(data.len(), 1, "one data line per event: {frame}");
            if data[0] == "[DONE]" {
                return ("[DONE]".to_owned(), Value::Null);
            }
            (name, serde_json::from_str(data[0]).expect("JSON data"))
        })
        .collect()
}

/// The gateway binary, started as a user would, with its stderr captured.
pub struct Binary {
    child: Child,
    pub url: String,
    pub logs: Arc<Mutex<String>>,
}

impl Binary {
    /// Runs `llmux serve` (plus `args`) in `dir` with only `env` set (no inherited vendor keys)
    /// and waits for its "listening" line.
    pub fn serve(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_llmux"));
        command
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("llmux binary starts");
        let stderr = child.stderr.take().expect("stderr");
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line)
                    && v["message"] == "listening"
                {
                    let _ = tx.send(v["addr"].as_str().unwrap_or_default().to_owned());
                }
                let mut logs = sink.lock().expect("logs");
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let addr = rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "gateway did not start; logs:\n{}",
                    logs.lock().expect("logs")
                )
            });
        Self {
            child,
            url: format!("http://{addr}"),
            logs,
        }
    }

    /// Sends a signal (`TERM`, `HUP`, …) to the gateway process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill runs");
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit` (then panics), and returns its status.
    pub async fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        eventually(limit, || {
            let exited = match self.child.try_wait() {
                Ok(Some(status)) => Ok(status),
                Ok(None) => Err("the process is still running".to_owned()),
                Err(e) => Err(format!("cannot wait for the process: {e}")),
            };
            std::future::ready(exited)
        })
        .await
    }

    pub fn logs(&self) -> String {
        self.logs.lock().expect("logs").clone()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still running (it did not abort or exit).
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Runs `llmux serve --config llmux.yaml` with `yaml` written to a fresh directory.
    pub fn with_config(name: &str, yaml: &str) -> Self {
        let dir = temp_dir(name);
        std::fs::write(dir.join("llmux.yaml"), yaml).expect("config written");
        Self::serve(&dir, &["--config", "llmux.yaml"], &[])
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh empty directory under the system temp dir.
pub fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "llmux-test-{name}-{}-{}",
        std::process::id(),
        fastrand_suffix()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn fastrand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

/// A vendor that answers with exactly the bytes a test scripts: each accepted connection reads
/// one request (head and `content-length` body), records it, and writes the next scripted
/// answer (the last one repeats), then closes. For vendors that misbehave in ways the mock
/// never would.
pub struct ScriptedVendor {
    pub url: String,
    pub requests: Arc<Mutex<Vec<String>>>,
}

impl ScriptedVendor {
    pub async fn start(answers: Vec<Vec<u8>>) -> Self {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = requests.clone();
        let answers = Arc::new(answers);
        tokio::spawn(async move {
            let mut served = 0usize;
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let answer = answers[served.min(answers.len() - 1)].clone();
                served += 1;
                let seen = seen.clone();
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    let head_end = loop {
                        let Ok(n) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let length = head
                        .lines()
                        .find_map(|l| {
                            let (name, value) = l.split_once(':')?;
                            name.eq_ignore_ascii_case("content-length")
                                .then(|| value.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + length {
                        let Ok(n) = stream.read(&mut chunk).await else {
                            return;
                        };
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    seen.lock()
                        .expect("requests")
                        .push(String::from_utf8_lossy(&buf).to_string());
                    let _ = stream.write_all(&answer).await;
                    let _ = stream.shutdown().await;
                });
            }
        });
        Self { url, requests }
    }

    pub fn request_count(&self) -> usize {
        self.requests.lock().expect("requests").len()
    }
}

/// An HTTP/1.1 answer with `status`, extra header lines and a body (closes the connection).
pub fn http_answer(status: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n",
        body.len()
    )
    .into_bytes();
    for header in headers {
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// The resident set (`VmRSS`) and its peak (`VmHWM`) of process `pid`, in KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
