//! The load generator: `concurrency` keep-alive HTTP/1.1 connections, each sending requests back
//! to back for a fixed time; per-request latency (and, for streams, time to first byte and the
//! gaps between chunks) recorded in microseconds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;

/// One measured workload.
pub struct Workload {
    pub path: &'static str,
    pub body: Bytes,
    pub concurrency: usize,
    pub duration: Duration,
    pub stream: bool,
}

/// What a workload measured.
#[derive(Debug, Default)]
pub struct Measured {
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    /// Whole-request latency, µs, sorted.
    pub latency: Vec<u32>,
    /// Time to first body byte, µs, sorted (streams).
    pub ttfb: Vec<u32>,
    /// Gaps between body chunks, µs, sorted (streams).
    pub gaps: Vec<u32>,
}

impl Measured {
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// A chat request of about `size` bytes (`stream` asks for SSE).
pub fn chat_body(size: usize, stream: bool) -> Vec<u8> {
    let filler = "lorem ipsum dolor sit amet ".repeat(size / 27 + 1);
    let text = &filler[..size.saturating_sub(120).max(10)];
    serde_json::json!({
        "model": "bench",
        "stream": stream,
        "messages": [{"role": "user", "content": text}]
    })
    .to_string()
    .into_bytes()
}

pub async fn run(addr: SocketAddr, workload: &Workload) -> Measured {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(workload.concurrency);
    for _ in 0..workload.concurrency {
        let stop = stop.clone();
        let body = workload.body.clone();
        let path = workload.path;
        let stream = workload.stream;
        tasks.push(tokio::spawn(async move {
            connection(addr, path, body, stream, &stop).await
        }));
    }
    tokio::time::sleep(workload.duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut total = Measured::default();
    for task in tasks {
        if let Ok(m) = task.await {
            total.requests += m.requests;
            total.errors += m.errors;
            total.latency.extend(m.latency);
            total.ttfb.extend(m.ttfb);
            total.gaps.extend(m.gaps);
        } else {
            total.errors += 1;
        }
    }
    total.elapsed = started.elapsed();
    total.latency.sort_unstable();
    total.ttfb.sort_unstable();
    total.gaps.sort_unstable();
    total
}

async fn connection(
    addr: SocketAddr,
    path: &'static str,
    body: Bytes,
    stream: bool,
    stop: &AtomicBool,
) -> Measured {
    let mut measured = Measured::default();
    let mut sender = None;
    while !stop.load(Ordering::Relaxed) {
        if sender.is_none() {
            sender = connect(addr).await;
            if sender.is_none() {
                measured.errors += 1;
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        }
        let Some(s) = sender.as_mut() else { continue };
        let request = match hyper::Request::post(path)
            .header("host", "bench")
            // The mock checks for a key like the real vendor; the gateway ignores it.
            .header("authorization", "Bearer sk-bench")
            .header("content-type", "application/json")
            .body(Full::new(body.clone()))
        {
            Ok(r) => r,
            Err(_) => {
                measured.errors += 1;
                continue;
            }
        };
        let start = Instant::now();
        match one_request(s, request, stream, start, &mut measured).await {
            Ok(()) => {
                measured.requests += 1;
                measured.latency.push(micros(start.elapsed()));
            }
            Err(()) => {
                measured.errors += 1;
                sender = None;
            }
        }
    }
    measured
}

async fn one_request(
    sender: &mut http1::SendRequest<Full<Bytes>>,
    request: hyper::Request<Full<Bytes>>,
    stream: bool,
    start: Instant,
    measured: &mut Measured,
) -> Result<(), ()> {
    sender.ready().await.map_err(|_| ())?;
    let response = sender.send_request(request).await.map_err(|_| ())?;
    if !response.status().is_success() {
        return Err(());
    }
    let mut body = response.into_body();
    let mut last = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ())?;
        if frame.data_ref().is_some_and(|d| !d.is_empty()) && stream {
            let now = Instant::now();
            match last {
                None => measured.ttfb.push(micros(now - start)),
                Some(previous) => measured.gaps.push(micros(now - previous)),
            }
            last = Some(now);
        }
    }
    Ok(())
}

async fn connect(addr: SocketAddr) -> Option<http1::SendRequest<Full<Bytes>>> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    tcp.set_nodelay(true).ok()?;
    let (sender, conn) = http1::handshake(TokioIo::new(tcp)).await.ok()?;
    tokio::spawn(conn);
    Some(sender)
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}
