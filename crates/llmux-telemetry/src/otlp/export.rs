//! The bounded queue between requests and the collector, and the task that empties it.

use std::sync::Arc;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use http::{HeaderMap, HeaderName, HeaderValue};
use prometheus_client::metrics::counter::Counter;
use tokio::sync::{Notify, mpsc};

use super::encode::encode_request;

/// Traces waiting for export; past this a request's trace is dropped (and counted), never
/// waited for.
const QUEUE: usize = 4096;
/// Traces per export request at most (128: halving this and the request log's batch, from 512
/// and 500 and again from 256 and 250, each took about 1 MiB off the RSS under load at the same
/// instructions per request; BENCHMARKS.md).
const BATCH: usize = 128;
/// A new span buffer's capacity: a server span and one attempt's client span take about 700
/// bytes at the benchmark's model and URL lengths.
const SPAN_BUFFER: usize = 1024;
/// Buffers the export task hands back for reuse (two batches' worth), and the largest one it
/// keeps: a request's spans are written into a buffer an earlier request's export emptied, so
/// the allocator does not free a batch of them at once on the export task and allocate them
/// again one by one on the requests (~600 instructions per traced request; BENCHMARKS.md).
const SPARE_BUFFERS: usize = 2 * BATCH;
const SPARE_MAX_CAPACITY: usize = 4 * SPAN_BUFFER;
/// How long the first trace of a batch waits for others.
const LINGER: Duration = Duration::from_millis(200);
/// One export's deadline: a slow collector delays the next batch, never a request.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// How spans travel to the collector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP/gRPC: unary `TraceService/Export` over HTTP/2.
    Grpc,
    /// OTLP/HTTP: a protobuf `POST` to `/v1/traces`.
    HttpProtobuf,
}

/// Where and how traces are exported.
#[derive(Clone)]
pub struct Exporter {
    /// The collector's base URL (`http://host:4317`); OTLP/HTTP appends `/v1/traces` unless the
    /// path already ends with it.
    pub endpoint: String,
    /// The transport.
    pub protocol: Protocol,
    /// Extra headers sent with every export (API keys: never logged).
    pub headers: Vec<(String, String)>,
    /// `service.name`.
    pub service_name: String,
}

impl std::fmt::Debug for Exporter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exporter")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field(
                "headers",
                &self.headers.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            )
            .field("service_name", &self.service_name)
            .finish()
    }
}

impl Exporter {
    /// The URL spans are posted to.
    fn url(&self) -> String {
        let base = self.endpoint.trim_end_matches('/');
        match self.protocol {
            Protocol::HttpProtobuf if base.ends_with("/v1/traces") => base.to_owned(),
            Protocol::HttpProtobuf => format!("{base}/v1/traces"),
            Protocol::Grpc => {
                format!("{base}/opentelemetry.proto.collector.trace.v1.TraceService/Export")
            }
        }
    }

    /// The headers of every export: the content type, then the configured ones (marked
    /// sensitive so that no debug output shows them).
    fn header_map(&self) -> Result<HeaderMap, String> {
        let mut headers = HeaderMap::new();
        let content_type = match self.protocol {
            Protocol::Grpc => {
                headers.insert(http::header::TE, HeaderValue::from_static("trailers"));
                "application/grpc"
            }
            Protocol::HttpProtobuf => "application/x-protobuf",
        };
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static(content_type),
        );
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("OTLP header name '{name}' is not valid"))?;
            // The value is a secret: the message names only the header.
            let mut value = HeaderValue::from_str(value.trim())
                .map_err(|_| format!("OTLP header '{name}' has an invalid value"))?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        Ok(headers)
    }
}

/// The handle requests use to hand over their traces; cheap to clone.
#[derive(Clone)]
pub struct Tracer {
    queue: mpsc::Sender<Vec<u8>>,
    /// Emptied span buffers, refilled by the export task.
    spare: Arc<ArrayQueue<Vec<u8>>>,
    dropped: Counter,
    stop: Arc<Notify>,
    /// Told when a batch's worth is queued: the export task lingers for that or its timer, not
    /// woken by every trace (a wake-up per trace was ~1,000 instructions per request).
    full: Arc<Notify>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("dropped", &self.dropped.get())
            .finish_non_exhaustive()
    }
}

impl Tracer {
    /// A tracer exporting to `exporter`, and the task that does it (spawn it tracked). Drops
    /// are counted in `dropped` (`llmux_trace_dropped_total`).
    pub fn start(
        exporter: &Exporter,
        dropped: Counter,
    ) -> Result<(Self, impl Future<Output = ()> + Send + 'static), String> {
        // Parsed once: parsing the text at every export was about 7,000 instructions each.
        let url = exporter.url();
        let url = reqwest::Url::parse(&url)
            .map_err(|e| format!("OTLP endpoint '{}' is not a URL: {e}", exporter.endpoint))?;
        let headers = exporter.header_map()?;
        let mut client = reqwest::Client::builder()
            .timeout(EXPORT_TIMEOUT)
            .default_headers(headers);
        if exporter.protocol == Protocol::Grpc {
            client = client.http2_prior_knowledge();
        }
        let client = client.build().map_err(|e| format!("OTLP client: {e}"))?;
        let (queue, receiver) = mpsc::channel(QUEUE);
        let stop = Arc::new(Notify::new());
        let full = Arc::new(Notify::new());
        let spare = Arc::new(ArrayQueue::new(SPARE_BUFFERS));
        let tracer = Self {
            queue,
            spare: Arc::clone(&spare),
            dropped: dropped.clone(),
            stop: Arc::clone(&stop),
            full: Arc::clone(&full),
        };
        let task = run(
            Sender {
                client,
                url,
                protocol: exporter.protocol,
                service_name: exporter.service_name.clone(),
                dropped,
                body_capacity: 0,
                failing: false,
            },
            receiver,
            Wake { stop, full },
            spare,
        );
        Ok((tracer, task))
    }

    /// An empty buffer for one request's spans: one an earlier export emptied, else a new one.
    pub fn buffer(&self) -> Vec<u8> {
        self.spare
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(SPAN_BUFFER))
    }

    /// Hands one request's spans (written with [`super::server_span`] and
    /// [`super::client_span`]) to the exporter, or drops them (counted) when the queue is full.
    pub fn record(&self, spans: Vec<u8>) {
        if self.queue.try_send(spans).is_err() {
            self.dropped.inc();
        } else if self.queue.max_capacity() - self.queue.capacity() >= BATCH {
            self.full.notify_one();
        }
    }

    /// Asks the export task to send what is queued and end (at shutdown).
    pub fn shutdown(&self) {
        self.stop.notify_one();
    }
}

/// What ends the export task's wait besides its timer.
struct Wake {
    /// Shutdown.
    stop: Arc<Notify>,
    /// A batch's worth is queued.
    full: Arc<Notify>,
}

/// Waits for a trace, lingers for more, takes what is queued (up to a batch) and exports it:
/// under load, traces gather in the queue while the previous batch is on its way, so batches
/// grow with the rate.
async fn run(
    mut sender: Sender,
    mut receiver: mpsc::Receiver<Vec<u8>>,
    wake: Wake,
    spare: Arc<ArrayQueue<Vec<u8>>>,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        let mut stopping = tokio::select! {
            received = receiver.recv_many(&mut batch, BATCH) => received == 0,
            () = wake.stop.notified() => true,
        };
        // Linger for more (one export per trace would cost more than the request it traces)
        // until the timer, a full batch or shutdown; the traces that arrive meanwhile wait in
        // the queue without waking this task.
        if !stopping && batch.len() < BATCH {
            tokio::select! {
                () = tokio::time::sleep(LINGER) => {}
                () = wake.full.notified() => {}
                () = wake.stop.notified() => stopping = true,
            }
            while batch.len() < BATCH {
                match receiver.try_recv() {
                    Ok(spans) => batch.push(spans),
                    Err(mpsc::error::TryRecvError::Empty) => break,
                    Err(mpsc::error::TryRecvError::Disconnected) => {
                        stopping = true;
                        break;
                    }
                }
            }
        }
        if stopping {
            receiver.close();
            sender.export(&batch).await;
            batch.clear();
            while receiver.recv_many(&mut batch, BATCH).await > 0 {
                sender.export(&batch).await;
                batch.clear();
            }
            return;
        }
        sender.export(&batch).await;
        give_back(&mut batch, &spare);
    }
}

/// Empties the exported `batch` into `spare` for the next requests (a full pool or an unusually
/// large buffer lets the rest go).
fn give_back(batch: &mut Vec<Vec<u8>>, spare: &ArrayQueue<Vec<u8>>) {
    for mut buffer in batch.drain(..) {
        if buffer.capacity() <= SPARE_MAX_CAPACITY {
            buffer.clear();
            if spare.push(buffer).is_err() {
                break;
            }
        }
    }
}

struct Sender {
    client: reqwest::Client,
    url: reqwest::Url,
    protocol: Protocol,
    service_name: String,
    dropped: Counter,
    /// The last body's size: the next one is allocated at that size.
    body_capacity: usize,
    /// Whether the last export failed: a collector that is down is logged once, not per batch.
    failing: bool,
}

impl Sender {
    async fn export(&mut self, batch: &[Vec<u8>]) {
        if batch.is_empty() {
            return;
        }
        let Ok(body) = self.body(batch) else {
            self.dropped.inc_by(batch.len() as u64);
            tracing::warn!(traces = batch.len(), "a trace batch over 4 GiB was dropped");
            return;
        };
        match self.post(body).await {
            Ok(()) => {
                if self.failing {
                    tracing::info!(endpoint = %self.url, "trace export recovered");
                }
                self.failing = false;
            }
            Err(error) => {
                self.dropped.inc_by(batch.len() as u64);
                if !self.failing {
                    tracing::warn!(endpoint = %self.url, %error, "trace export failed; traces are dropped until it recovers");
                }
                self.failing = true;
            }
        }
    }

    /// The request body for `batch`: the protobuf message, framed for gRPC (uncompressed flag,
    /// big-endian length) in place when that is the protocol. Sized from the previous batch.
    fn body(&mut self, batch: &[Vec<u8>]) -> Result<Vec<u8>, std::num::TryFromIntError> {
        let mut body = Vec::with_capacity(self.body_capacity);
        let framed = self.protocol == Protocol::Grpc;
        if framed {
            body.extend_from_slice(&[0; 5]);
        }
        encode_request(&self.service_name, batch, &mut body);
        if framed {
            let len = u32::try_from(body.len() - 5)?;
            body[1..5].copy_from_slice(&len.to_be_bytes());
        }
        self.body_capacity = body.len();
        Ok(body)
    }

    async fn post(&self, body: Vec<u8>) -> Result<(), String> {
        let response = self
            .client
            .post(self.url.clone())
            .body(body)
            .send()
            .await
            .map_err(|e| without_url(&e))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("collector answered {}", status.as_u16()));
        }
        if self.protocol == Protocol::HttpProtobuf {
            return Ok(());
        }
        // gRPC reports its outcome in `grpc-status`: in the head (trailers-only answers) or in
        // the trailers after the body.
        let response: http::Response<reqwest::Body> = response.into();
        let (head, body) = response.into_parts();
        let mut code = grpc_status(&head.headers);
        if code.is_none() {
            let collected = http_body_util::BodyExt::collect(body)
                .await
                .map_err(|e| without_url(&e))?;
            code = collected.trailers().and_then(grpc_status);
        }
        match code {
            Some(0) => Ok(()),
            Some(code) => Err(format!("collector answered grpc-status {code}")),
            None => Err("collector answered without grpc-status".to_owned()),
        }
    }
}

fn grpc_status(headers: &HeaderMap) -> Option<u32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// A reqwest error's text without its URL (already in the log line's `endpoint`).
fn without_url(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    if let Some(url) = error.url() {
        text = text.replace(url.as_str(), "");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exported_buffers_come_back_empty_up_to_the_pool_size() {
        let spare = ArrayQueue::new(2);
        let mut batch = vec![
            b"first".to_vec(),
            Vec::with_capacity(SPARE_MAX_CAPACITY + 1),
            b"second".to_vec(),
            b"third".to_vec(),
        ];
        give_back(&mut batch, &spare);
        assert!(batch.is_empty());
        assert_eq!(
            spare.len(),
            2,
            "the oversized buffer and the one past the pool are freed"
        );
        while let Some(buffer) = spare.pop() {
            assert!(buffer.is_empty());
            assert!(buffer.capacity() <= SPARE_MAX_CAPACITY);
        }
    }

    /// An endpoint that is not a URL (from `OTEL_EXPORTER_OTLP_ENDPOINT`, which the config's
    /// check does not see) stops the start with a message naming it.
    #[test]
    fn an_endpoint_that_is_not_a_url_is_refused_at_the_start() {
        let exporter = Exporter {
            endpoint: "collector 4318".into(),
            protocol: Protocol::HttpProtobuf,
            headers: Vec::new(),
            service_name: "llmux".into(),
        };
        let Err(message) = Tracer::start(&exporter, Counter::default()) else {
            panic!("started with a bad endpoint");
        };
        assert!(
            message.contains("'collector 4318' is not a URL"),
            "{message}"
        );
    }

    #[test]
    fn a_request_gets_a_given_back_buffer_before_a_new_one() {
        let exporter = Exporter {
            endpoint: "http://127.0.0.1:4318".into(),
            protocol: Protocol::HttpProtobuf,
            headers: Vec::new(),
            service_name: "llmux".into(),
        };
        let (tracer, _task) = Tracer::start(&exporter, Counter::default()).unwrap();
        let mut batch = vec![Vec::with_capacity(3000)];
        give_back(&mut batch, &tracer.spare);
        assert_eq!(tracer.buffer().capacity(), 3000);
        assert_eq!(tracer.buffer().capacity(), SPAN_BUFFER);
    }
}
