//! The load generator: `concurrency` keep-alive HTTP/1.1 connections, each sending requests back
//! to back; after a warm-up, every request that completes inside the measured window is recorded:
//! its latency and, for streams, the time to the first body byte and the gaps between SSE events
//! as the client sees them (all in microseconds). Each answer is checked against the framing the
//! workload expects, so a wrong answer counts as an error rather than as a fast request.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

/// What a successful answer looks like.
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    /// A JSON body (`application/json`).
    Json,
    /// An SSE stream (`text/event-stream`) that contains `terminal` somewhere near its end
    /// (`[DONE]`, `message_stop`, `finishReason`, …).
    Sse { terminal: &'static str },
}

impl Framing {
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Sse { .. } => "text/event-stream",
        }
    }
}

/// One side of a workload: where the request goes and what comes back.
#[derive(Debug, Clone)]
pub struct Target {
    /// Path and query.
    pub path: String,
    pub headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Bytes,
    pub framing: Framing,
}

impl Target {
    pub fn request(&self) -> Result<hyper::Request<Full<Bytes>>, String> {
        let mut builder = hyper::Request::post(self.path.as_str())
            .header("host", "bench")
            .header("content-type", "application/json");
        for (name, value) in &self.headers {
            builder = builder.header(name, value);
        }
        builder
            .body(Full::new(self.body.clone()))
            .map_err(|err| format!("cannot build the request: {err}"))
    }
}

/// How hard and how long to drive a target.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub concurrency: usize,
    /// Requests before this are sent but not recorded (connections, pools and caches warm up).
    pub warmup: Duration,
    pub duration: Duration,
}

/// What a workload measured.
#[derive(Debug, Default)]
pub struct Measured {
    /// Requests completed inside the measured window.
    pub requests: usize,
    /// Every request completed, warm-up and tail included (for CPU per request).
    pub completed: usize,
    pub errors: usize,
    /// The first error seen, for the report.
    pub first_error: Option<String>,
    pub elapsed: Duration,
    /// Whole-request latency, µs, sorted.
    pub latency: Vec<u32>,
    /// Time to first body byte, µs, sorted (streams).
    pub ttfb: Vec<u32>,
    /// Gaps between consecutive SSE events of one stream, µs, sorted (streams).
    pub gaps: Vec<u32>,
}

impl Measured {
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message);
        }
    }

    fn absorb(&mut self, other: Measured) {
        self.requests += other.requests;
        self.completed += other.completed;
        self.errors += other.errors;
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
        self.latency.extend(other.latency);
        self.ttfb.extend(other.ttfb);
        self.gaps.extend(other.gaps);
    }
}

/// The measuring window, shared by the connections of one run.
#[derive(Default)]
struct Window {
    open: AtomicBool,
    closed: AtomicBool,
}

impl Window {
    fn recording(&self) -> bool {
        self.open.load(Ordering::Relaxed) && !self.closed.load(Ordering::Relaxed)
    }

    fn closed(&self) -> bool {
        self.closed.load(Ordering::Relaxed)
    }
}

/// Drives `target` at `addr` with `load`.
pub async fn run(addr: SocketAddr, target: &Target, load: Load) -> Measured {
    let window = Arc::new(Window::default());
    let target = Arc::new(target.clone());
    let mut tasks = Vec::with_capacity(load.concurrency);
    for _ in 0..load.concurrency {
        let window = window.clone();
        let target = target.clone();
        tasks.push(crate::spawn(async move {
            connection(addr, &target, &window).await
        }));
    }
    tokio::time::sleep(load.warmup).await;
    window.open.store(true, Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(load.duration).await;
    window.closed.store(true, Ordering::Relaxed);
    let elapsed = started.elapsed();
    let mut total = Measured::default();
    for task in tasks {
        // A connection finishes its current request after the window closes; a slow stream
        // gets a generous deadline, a hung one is an error.
        let abort = task.abort_handle();
        match tokio::time::timeout(Duration::from_secs(30), task).await {
            Ok(Ok(measured)) => total.absorb(measured),
            Ok(Err(err)) => total.error(format!("load task failed: {err}")),
            Err(_) => {
                abort.abort();
                total.error("a request was still running 30 s after the window closed".into());
            }
        }
    }
    total.elapsed = elapsed;
    total.latency.sort_unstable();
    total.ttfb.sort_unstable();
    total.gaps.sort_unstable();
    total
}

/// Sends one request on a fresh connection and returns the status and the start of the body:
/// used to find out whether a route exists before measuring it.
pub async fn probe(addr: SocketAddr, target: &Target) -> Result<(u16, String), String> {
    let mut sender = connect(addr).await?;
    let request = target.request()?;
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status().as_u16();
    let body = tokio::time::timeout(Duration::from_secs(30), response.into_body().collect())
        .await
        .map_err(|_| "no complete answer within 30 s".to_owned())?
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    let excerpt = String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned();
    Ok((status, excerpt))
}

/// Sends `n` requests one after the other on one keep-alive connection; fails on the first
/// error. Returns the time taken.
pub async fn sequential(addr: SocketAddr, target: &Target, n: usize) -> Result<Duration, String> {
    let mut sender = connect(addr).await?;
    let mut timing = Timing::default();
    let started = Instant::now();
    for _ in 0..n {
        timing.ttfb = None;
        timing.gaps.clear();
        let request = target.request()?;
        exchange(
            &mut sender,
            request,
            target.framing,
            Instant::now(),
            &mut timing,
        )
        .await?;
    }
    Ok(started.elapsed())
}

/// Timings of one request, reused across requests to avoid allocating per request.
#[derive(Default)]
struct Timing {
    ttfb: Option<u32>,
    gaps: Vec<u32>,
}

async fn connection(addr: SocketAddr, target: &Target, window: &Window) -> Measured {
    let mut measured = Measured::default();
    let mut sender = None;
    let mut timing = Timing::default();
    while !window.closed() {
        let connected = match sender.take() {
            Some(s) => Ok(s),
            None => connect(addr).await,
        };
        let mut s = match connected {
            Ok(s) => s,
            Err(err) => {
                measured.error(err);
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let request = match target.request() {
            Ok(r) => r,
            Err(err) => {
                measured.error(err);
                break;
            }
        };
        timing.ttfb = None;
        timing.gaps.clear();
        let start = Instant::now();
        match exchange(&mut s, request, target.framing, start, &mut timing).await {
            Ok(()) => {
                measured.completed += 1;
                if window.recording() {
                    measured.requests += 1;
                    measured.latency.push(micros(start.elapsed()));
                    measured.ttfb.extend(timing.ttfb);
                    measured.gaps.extend_from_slice(&timing.gaps);
                }
                sender = Some(s);
            }
            // The connection is dropped; the next request opens a new one.
            Err(err) => measured.error(err),
        }
    }
    measured
}

async fn exchange(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
    framing: Framing,
    start: Instant,
    timing: &mut Timing,
) -> Result<(), String> {
    sender
        .ready()
        .await
        .map_err(|e| format!("connection: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.into_body().collect().await.map(|b| b.to_bytes());
        let excerpt = body
            .map(|b| String::from_utf8_lossy(&b[..b.len().min(200)]).into_owned())
            .unwrap_or_default();
        return Err(format!("status {status}: {excerpt}"));
    }
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type.starts_with(framing.content_type()) {
        return Err(format!(
            "content-type {content_type:?}, expected {}",
            framing.content_type()
        ));
    }
    let mut body = response.into_body();
    let mut scanner = match framing {
        Framing::Sse { terminal } => Some(SseScanner::new(terminal)),
        Framing::Json => None,
    };
    let mut bytes = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("body: {e}"))?;
        let Some(data) = frame.data_ref().filter(|d| !d.is_empty()) else {
            continue;
        };
        bytes += data.len();
        let Some(scanner) = scanner.as_mut() else {
            continue;
        };
        let now = Instant::now();
        if timing.ttfb.is_none() {
            timing.ttfb = Some(micros(now - start));
        }
        for _ in 0..scanner.feed(data) {
            if let Some(previous) = scanner.last_event.replace(now) {
                timing.gaps.push(micros(now - previous));
            }
        }
    }
    match scanner {
        Some(scanner) if !scanner.terminal_seen => Err(format!(
            "stream ended without {:?}",
            String::from_utf8_lossy(scanner.terminal)
        )),
        None if bytes == 0 => Err("empty body".into()),
        _ => Ok(()),
    }
}

/// Finds SSE event ends (a blank line, `\n\n` or `\r\n\r\n`) and the terminal marker in a body
/// that arrives in arbitrary pieces.
struct SseScanner {
    terminal: &'static [u8],
    terminal_seen: bool,
    /// The last bytes of the body so far (enough to match a separator or the marker across a
    /// frame boundary).
    carry: Vec<u8>,
    /// Scratch space: the carry followed by the start of the current piece.
    seam: Vec<u8>,
    last_event: Option<Instant>,
}

impl SseScanner {
    fn new(terminal: &'static str) -> Self {
        Self {
            terminal: terminal.as_bytes(),
            terminal_seen: false,
            carry: Vec::new(),
            seam: Vec::new(),
            last_event: None,
        }
    }

    /// Feeds the next piece of body; returns how many events it completes.
    fn feed(&mut self, data: &[u8]) -> usize {
        let keep = self.terminal.len().max(3);
        // Only the seam needs the carried bytes: the carry plus the start of `data`.
        self.seam.clear();
        self.seam.extend_from_slice(&self.carry);
        let seam_start = self.seam.len();
        self.seam.extend_from_slice(&data[..data.len().min(keep)]);
        let seam = self.seam.as_slice();
        if !self.terminal_seen {
            self.terminal_seen = memchr::memmem::find(seam, self.terminal).is_some()
                || memchr::memmem::find(data, self.terminal).is_some();
        }
        let mut events = 0;
        for at in memchr::memchr_iter(b'\n', data) {
            // The byte `back` places before this newline, from the previous piece if need be.
            let before = |back: usize| -> Option<u8> {
                if at >= back {
                    data.get(at - back).copied()
                } else {
                    (seam_start + at)
                        .checked_sub(back)
                        .and_then(|i| seam.get(i).copied())
                }
            };
            let ends_event =
                before(1) == Some(b'\n') || (before(1) == Some(b'\r') && before(2) == Some(b'\n'));
            if ends_event {
                events += 1;
            }
        }
        self.carry.clear();
        if data.len() >= keep {
            self.carry.extend_from_slice(&data[data.len() - keep..]);
        } else {
            let from = seam.len().saturating_sub(keep);
            self.carry.extend_from_slice(&seam[from..]);
        }
        events
    }
}

async fn connect(addr: SocketAddr) -> Result<http1::SendRequest<Full<Bytes>>, String> {
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (sender, conn) = http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    crate::spawn(conn);
    Ok(sender)
}

pub fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::SseScanner;

    fn events_and_terminal(pieces: &[&[u8]], terminal: &'static str) -> (usize, bool) {
        let mut scanner = SseScanner::new(terminal);
        let events = pieces.iter().map(|p| scanner.feed(p)).sum();
        (events, scanner.terminal_seen)
    }

    #[test]
    fn counts_events_however_the_body_is_split() {
        let body: &[u8] =
            b"data: {\"a\":1}\n\ndata: {\"b\":2}\r\n\r\nevent: x\ndata: {}\n\ndata: [DONE]\n\n";
        for split in 0..body.len() {
            for second in split..body.len() {
                let pieces = [&body[..split], &body[split..second], &body[second..]];
                assert_eq!(
                    events_and_terminal(&pieces, "[DONE]"),
                    (4, true),
                    "split at {split}, {second}"
                );
            }
        }
    }

    #[test]
    fn a_missing_terminal_is_noticed() {
        let (events, seen) = events_and_terminal(&[b"data: {}\n\n", b"data: {}\n\n"], "[DONE]");
        assert_eq!((events, seen), (2, false));
    }
}
