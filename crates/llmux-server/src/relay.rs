//! The same-protocol SSE relay: upstream OpenAI chunks out to the client as they arrive, with
//! `model` rewritten in every chunk, the usage-only chunk dropped when the client did not ask for
//! it (but counted), and a well-formed ending whatever the upstream does.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use llmux_protocol::error::{ErrorKind, GatewayError};
use llmux_protocol::openai_chat::rewrite_response;
use llmux_protocol::sse::{self, DONE_FRAME};
use llmux_protocol::usage::Usage;
use llmux_telemetry::metrics::{TokenLabels, UpstreamLabels};

use crate::state::Gateway;

type Upstream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// Labels and timing for the metrics recorded when the stream ends.
pub struct StreamContext {
    pub gateway: Arc<Gateway>,
    pub vendor: String,
    pub model: String,
    pub started: Instant,
    pub request_id: String,
}

struct Relay {
    upstream: Upstream,
    decoder: sse::Decoder,
    client_model: Vec<u8>,
    client_wants_usage: bool,
    idle: Duration,
    usage: Option<Usage>,
    finished: bool,
    context: StreamContext,
}

/// Wraps an upstream SSE response into the client's byte stream.
pub fn relay(
    response: reqwest::Response,
    client_model: Vec<u8>,
    client_wants_usage: bool,
    idle: Duration,
    context: StreamContext,
) -> impl Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static {
    let relay = Relay {
        upstream: Box::pin(response.bytes_stream()),
        decoder: sse::Decoder::default(),
        client_model,
        client_wants_usage,
        idle,
        usage: None,
        finished: false,
        context,
    };
    futures_util::stream::unfold(relay, |mut relay| async move {
        let bytes = relay.next_output().await?;
        Some((Ok(bytes), relay))
    })
}

impl Relay {
    /// The next bytes for the client, or `None` once the stream has ended.
    async fn next_output(&mut self) -> Option<Bytes> {
        let mut out = BytesMut::new();
        while !self.finished {
            match tokio::time::timeout(self.idle, self.upstream.next()).await {
                Ok(Some(Ok(chunk))) => {
                    self.decoder.push(&chunk);
                    self.drain(&mut out);
                }
                Ok(None) => {
                    self.decoder.finish();
                    self.drain(&mut out);
                    if !self.finished {
                        self.fail(
                            &mut out,
                            ErrorKind::UpstreamProtocol,
                            "upstream stream ended before [DONE]",
                        );
                    }
                }
                Ok(Some(Err(_))) => {
                    self.fail(
                        &mut out,
                        ErrorKind::UpstreamUnreachable,
                        "upstream connection failed mid-stream",
                    );
                }
                Err(_) => {
                    let message = format!("upstream sent nothing for {} ms", self.idle.as_millis());
                    self.fail(&mut out, ErrorKind::UpstreamTimeout, &message);
                }
            }
            if !out.is_empty() {
                return Some(out.freeze());
            }
        }
        (!out.is_empty()).then(|| out.freeze())
    }

    fn drain(&mut self, out: &mut BytesMut) {
        while let Some(event) = self.decoder.next_event() {
            if event.is_done_marker() {
                out.extend_from_slice(DONE_FRAME);
                self.end();
                return;
            }
            let rewritten = rewrite_response(&event.data, &self.client_model);
            if rewritten.usage.is_some() {
                self.usage = rewritten.usage;
            }
            if rewritten.usage_only && !self.client_wants_usage {
                continue;
            }
            sse::encode_event(out, event.name.as_deref(), &rewritten.body);
        }
    }

    fn fail(&mut self, out: &mut BytesMut, kind: ErrorKind, message: &str) {
        tracing::warn!(request_id = %self.context.request_id, vendor = %self.context.vendor, message, "stream ended with an error");
        let error = GatewayError::new(kind, message);
        sse::encode_event(out, None, &error.to_openai_json());
        out.extend_from_slice(DONE_FRAME);
        self.end();
    }

    fn end(&mut self) {
        self.finished = true;
        let metrics = &self.context.gateway.metrics;
        let labels = UpstreamLabels {
            vendor: self.context.vendor.clone(),
            model: self.context.model.clone(),
        };
        metrics
            .upstream_duration
            .get_or_create(&labels)
            .observe(self.context.started.elapsed().as_secs_f64());
        record_usage(
            &self.context.gateway,
            &self.context.vendor,
            &self.context.model,
            self.usage,
        );
    }
}

/// Adds neutral usage to `llmux_tokens_total`.
pub fn record_neutral_usage(gateway: &Gateway, vendor: &str, model: &str, usage: Option<llmux_protocol::neutral::Usage>) {
    record_usage(
        gateway,
        vendor,
        model,
        usage.map(|u| Usage {
            prompt_tokens: Some(u.input_tokens),
            completion_tokens: Some(u.output_tokens),
            total_tokens: Some(u.total()),
        }),
    );
}

/// Adds reported tokens to `llmux_tokens_total`; unreported usage adds nothing.
pub fn record_usage(gateway: &Gateway, vendor: &str, model: &str, usage: Option<Usage>) {
    let Some(usage) = usage else { return };
    for (direction, count) in [
        ("input", usage.prompt_tokens),
        ("output", usage.completion_tokens),
    ] {
        if let Some(count) = count {
            gateway
                .metrics
                .tokens
                .get_or_create(&TokenLabels {
                    vendor: vendor.to_owned(),
                    model: model.to_owned(),
                    direction,
                })
                .inc_by(count);
        }
    }
}
