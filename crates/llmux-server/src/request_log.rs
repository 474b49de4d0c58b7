//! The request log's record of one request, filled in by each stage as the request goes
//! (the edge: id, route, client, key, status, where it went; the pipeline: model, attempts, time
//! to first byte; settlement: tokens and cost) and handed to the store's writer when the
//! response body ends, so a stream's record has its real duration and usage. Handing it over
//! is a `try_send` on a bounded channel: a full log drops the record (counted), never a request.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use llmux_config::{LogBodies, RequestLogConfig};
use llmux_store::{AttemptRecord, RequestLog, RequestRecord};

/// The running log and what it keeps.
#[derive(Clone)]
pub struct LogSink {
    /// The store's writer.
    pub log: RequestLog,
    /// Which bodies are kept.
    pub bodies: LogBodies,
    /// The longest body kept.
    pub max_body_bytes: usize,
    /// The last hour's traffic for the dashboard, fed from the same records.
    pub traffic: Arc<crate::traffic::Traffic>,
}

impl LogSink {
    /// The sink for `config`'s `log:` section.
    pub fn new(log: RequestLog, config: &RequestLogConfig) -> Self {
        Self {
            log,
            bodies: config.bodies,
            max_body_bytes: config.max_body_bytes,
            traffic: Arc::default(),
        }
    }
}

impl std::fmt::Debug for LogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSink")
            .field("bodies", &self.bodies)
            .field("dropped", &self.log.dropped())
            .finish_non_exhaustive()
    }
}

/// One request's record while the request runs: kept when the request log or tracing is on
/// (the trace is built from the same record).
pub struct Draft {
    record: Mutex<Option<RequestRecord>>,
    started: Instant,
    /// Which bodies the request log keeps, when it is on. The log itself is the gateway's,
    /// reached when the record is finished (a clone of the sink per request was a handful of
    /// reference counts taken and dropped).
    bodies: Option<LogBodies>,
    /// The trace, when tracing is on (boxed: with the log alone, the draft stays small to move).
    pub trace: Option<Box<crate::trace::Draft>>,
    /// The series the request was answered through, for its price.
    routed: Mutex<Option<Arc<crate::series::Series>>>,
    /// The request body, kept until the status says whether it is wanted.
    body: Mutex<Option<bytes::Bytes>>,
    /// Tokens the vendor reported, for the cost at the end.
    usage: Mutex<Option<(String, llmux_protocol::neutral::Usage)>>,
}

impl Draft {
    /// A record for a request that arrived at (Unix ms, `Instant`), for the log (`sink`)
    /// and/or a `trace`.
    pub fn start(
        sink: Option<&LogSink>,
        trace: Option<Box<crate::trace::Draft>>,
        (arrived_unix_ms, started): (u64, Instant),
        request_id: &str,
        route: &'static str,
        client_addr: Option<std::net::SocketAddr>,
        user_agent: Option<&str>,
    ) -> Arc<Self> {
        let time_ms = i64::try_from(arrived_unix_ms).unwrap_or(i64::MAX);
        // The client's address and agent are the log's, not the trace's.
        let logs = sink.is_some();
        let record = RequestRecord {
            client_addr: client_addr
                .filter(|_| logs)
                .map(|a| ip_text(a.ip()))
                .unwrap_or_default(),
            user_agent: user_agent.filter(|_| logs).map(str::to_owned),
            ..RequestRecord::new(
                time_ms,
                request_id.to_owned(),
                std::borrow::Cow::Borrowed(route),
            )
        };
        Arc::new(Self {
            record: Mutex::new(Some(record)),
            started,
            bodies: sink.map(|sink| sink.bodies),
            trace,
            routed: Mutex::new(None),
            body: Mutex::new(None),
            usage: Mutex::new(None),
        })
    }

    /// Changes the record (a no-op once it was handed over).
    pub fn with(&self, change: impl FnOnce(&mut RequestRecord)) {
        if let Some(record) = self
            .record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            change(record);
        }
    }

    /// Keeps the request body when `log.bodies` or content capture may want it.
    pub fn keep_body(&self, body: &bytes::Bytes) {
        let log = self.bodies.is_some_and(|bodies| bodies != LogBodies::None);
        let capture = self
            .trace
            .as_ref()
            .is_some_and(|t| t.tracing.capture_content.is_some());
        if log || capture {
            *self.body.lock().unwrap_or_else(PoisonError::into_inner) = Some(body.clone());
        }
    }

    /// Whether the request log is on for this request (otherwise the record only feeds its
    /// trace, which needs no attempt entries, client address or user agent).
    pub fn logs(&self) -> bool {
        self.bodies.is_some()
    }

    /// The request was answered through `series`: its vendor, credential and vendor model go
    /// into the record, and its price is the one looked up once for the series.
    pub fn routed(&self, series: &Arc<crate::series::Series>, upstream_model: &str) {
        let [vendor, credential, model] = series.names(upstream_model);
        self.with(|record| {
            record.vendor = Some(vendor);
            record.credential = Some(credential);
            record.upstream_model = Some(model);
        });
        *self.routed.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(series));
    }

    /// One attempt on a combination.
    pub fn attempt(&self, attempt: AttemptRecord) {
        self.with(|record| record.attempts.push(attempt));
    }

    /// The vendor's usage for the answer from `model`.
    pub fn usage(&self, model: &str, usage: llmux_protocol::neutral::Usage) {
        *self.usage.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((model.to_owned(), usage));
    }

    /// Completes the record (total time, tokens, cost, body) and hands it to `gateway`'s log
    /// writer; later calls do nothing.
    pub fn finish(&self, gateway: &crate::state::Gateway) {
        let Some(mut record) = self
            .record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        else {
            return;
        };
        record.total_ms = u32::try_from(self.started.elapsed().as_millis()).unwrap_or(u32::MAX);
        let routed = self
            .routed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some((model, usage)) = self
            .usage
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            record.input_tokens = Some(usage.input_tokens);
            record.output_tokens = Some(usage.output_tokens);
            record.cached_tokens = usage.cached_input_tokens;
            record.reasoning_tokens = usage.reasoning_tokens;
            record.cost_usd = match routed.as_ref().and_then(|s| s.price_of(&model)) {
                // The series' upstream model: its price was looked up once.
                Some(price) => price.map(|price| price.cost(&usage)),
                None => gateway.snapshot.load().config.pricing.cost(&model, &usage),
            };
        }
        let failed = record.status >= 400 || record.error_kind.is_some();
        let body = self
            .body
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(trace) = &self.trace {
            trace.finish(&record, body.as_ref(), routed.as_deref());
        }
        let Some(sink) = self.bodies.and(gateway.request_log.get()) else {
            return;
        };
        let keep = match sink.bodies {
            LogBodies::None => false,
            LogBodies::Errors => failed,
            LogBodies::All => true,
        };
        if keep && let Some(body) = body {
            record.request_body = Some(redacted_body(&body, sink.max_body_bytes));
        }
        sink.traffic.record(&crate::traffic::Sample {
            // When it ended, without reading the clock again.
            now_ms: u64::try_from(record.time_ms)
                .unwrap_or(0)
                .saturating_add(u64::from(record.total_ms)),
            failed,
            vendor: record.vendor.as_deref(),
            model: &record.requested_model,
            key: record.key_name.as_deref().or(record.key_id.as_deref()),
            latency_ms: record.total_ms,
            ttfb_ms: record.ttfb_ms,
            input_tokens: record.input_tokens.unwrap_or(0),
            output_tokens: record.output_tokens.unwrap_or(0),
            cost_usd: record.cost_usd.unwrap_or(0.0),
        });
        sink.log.record(record);
    }
}

/// Finishes the draft when dropped: held by the response body, so a record is written when the
/// body ends, whether it completed, failed or the client went away.
pub struct Finish {
    draft: Arc<Draft>,
    gateway: Arc<crate::state::Gateway>,
}

impl Finish {
    /// Finishes `draft` when this value is dropped.
    pub fn new(draft: Arc<Draft>, gateway: Arc<crate::state::Gateway>) -> Self {
        Self { draft, gateway }
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        self.draft.finish(&self.gateway);
    }
}

impl std::fmt::Debug for Finish {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Finish")
    }
}

/// An address as text. IPv4 by hand: `Display` went through the formatting machinery, 3,400
/// instructions per logged request (a twentieth of the request's own cost).
fn ip_text(ip: std::net::IpAddr) -> String {
    let std::net::IpAddr::V4(v4) = ip else {
        return ip.to_string();
    };
    let mut text = String::with_capacity(15);
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        if octet >= 100 {
            text.push(char::from(b'0' + octet / 100));
        }
        if octet >= 10 {
            text.push(char::from(b'0' + octet / 10 % 10));
        }
        text.push(char::from(b'0' + octet % 10));
    }
    text
}

/// The body as text, cut to `max` bytes at a character boundary, with key-shaped strings
/// masked (bodies may carry credentials a client pasted).
fn redacted_body(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let masked = llmux_telemetry::mask::mask_secrets(&text);
    let mut end = masked.len().min(max);
    while !masked.is_char_boundary(end) {
        end -= 1;
    }
    masked[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_read_as_display_writes_them() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut samples: Vec<std::net::IpAddr> = vec![
            [0, 0, 0, 0].into(),
            [255, 255, 255, 255].into(),
            [10, 0, 100, 9].into(),
            [127, 0, 0, 1].into(),
            std::net::Ipv6Addr::LOCALHOST.into(),
            "2001:db8::8a2e:370:7334".parse().unwrap(),
        ];
        samples.extend((0..1_000).map(|_| std::net::IpAddr::from(rng.u32(..).to_be_bytes())));
        for ip in samples {
            assert_eq!(ip_text(ip), ip.to_string());
        }
    }

    #[test]
    fn bodies_are_cut_at_a_character_boundary_and_secrets_masked() {
        let body = "{\"k\":\"sk-abcdefghijklmnopqrstuvwxyz0123456789\",\"t\":\"ééé\"}";
        let text = redacted_body(body.as_bytes(), 1000);
        assert!(!text.contains("abcdefghijklmnopqrstuvwxyz"), "{text}");
        let cut = redacted_body("ééé".as_bytes(), 3);
        assert_eq!(cut, "é");
    }
}
