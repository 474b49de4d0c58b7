//! Open Responses to a `responses: native` credential: the client's body at the vendor's own
//! `{base_url}/responses` with only `model` changed, and the answer — whole, or each streamed
//! event as it arrives — with `model` set back to the client's name and the members the Open
//! Responses specification requires but OpenAI leaves out spliced in
//! ([`llmux_protocol::responses::passthrough`]). OpenAI stores (or not) as the body says; llmux
//! records only whose a stored answer is (and its resource, for `GET`), so tenancy holds.

use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use llmux_protocol::error::ErrorKind;
use llmux_protocol::json_scan;
use llmux_protocol::openai_chat::json_string;
use llmux_protocol::responses::passthrough;
use llmux_protocol::sse::{self, DONE_FRAME};
use llmux_protocol::usage::Usage;
use llmux_router::Target;

use super::ResponsesCall;
use crate::api_error::ApiError;
use crate::egress::answer as proxy;
use crate::pipeline::attempts::Failure;
use crate::pipeline::relay::{Step, Strategy};
use crate::pipeline::{Answer, Call, unix_now};
use crate::state::Gateway;
use crate::trace::facts::AnswerFacts;

/// One attempt on a native credential.
pub(super) async fn attempt(
    request: &ResponsesCall,
    call: &Call<'_>,
    target: &Target<'_>,
) -> Result<Answer, Failure> {
    let (gateway, snapshot) = (call.gateway, call.snapshot);
    let upstream_model = json_string(target.upstream_model);
    // Reasoning another vendor issued (replayed after turns it answered) would be refused.
    let stripped = passthrough::strip_foreign_reasoning(&request.bytes);
    let sent = stripped.as_deref().unwrap_or(&request.bytes);
    let body = passthrough::encode_upstream_request(sent, &upstream_model)
        .map_err(|_| ApiError::not_an_object())?;
    let client_model = json_string(request.model.as_deref().unwrap_or(target.public_name));
    let endpoint = snapshot.endpoint(target)?;
    let stream = request.request.stream;
    let started = Instant::now();
    let mut response = call
        .send(
            target,
            &endpoint.responses_url,
            &body,
            stream,
            &request.client_headers,
        )
        .await?;
    // OpenAI stores the answer (unless `store: false`); llmux records whose it is, so only
    // that owner reads, continues or deletes it through llmux.
    let record = request.store.then(|| Record {
        gateway: Arc::clone(gateway),
        owner: request.owner.clone(),
    });
    if stream {
        let strategy = NativeStream {
            client_model,
            usage: None,
            events: 0,
            record,
        };
        let body = crate::pipeline::relay::open(call, target, started, response, strategy).await?;
        return Ok(Answer::Stream(body));
    }
    let body = proxy::read_whole(snapshot, target, &mut response).await?;
    let rewritten = passthrough::rewrite_resource(&body, &client_model, unix_now());
    if let Some(record) = record {
        record.resource(&rewritten.body);
    }
    let series = crate::series::of(snapshot, target);
    series.observe_upstream(&gateway.metrics, started.elapsed().as_secs_f64());
    series.add_usage(&gateway.metrics, rewritten.usage);
    // Without the vendor's usage, the answer's bytes are llmux's count of the output.
    call.settle.done_or_estimate(
        target.upstream_model,
        rewritten.usage.map(|usage| usage.to_neutral()),
        (body.len() / 4) as u64,
    );
    Ok(Answer::Json(rewritten.body))
}

/// Who asked for a response OpenAI stores, recorded when its resource is known.
struct Record {
    gateway: Arc<Gateway>,
    owner: String,
}

impl Record {
    /// Records the `ResponseResource` JSON `resource` (its `id` says which response).
    fn resource(self, resource: &[u8]) {
        let Ok(members) = json_scan::members(resource) else {
            return;
        };
        let id = json_scan::find(resource, &members, "id")
            .and_then(|m| serde_json::from_slice::<String>(&resource[m.value.clone()]).ok());
        if let Some(id) = id.filter(|id| !id.is_empty()) {
            self.gateway.responses.put_at_vendor(
                id,
                self.owner,
                bytes::Bytes::copy_from_slice(resource),
            );
        }
    }

    /// Records the response carried by a terminal stream event.
    fn event(self, data: &[u8]) {
        let Ok(members) = json_scan::members(data) else {
            return;
        };
        if let Some(response) = json_scan::find(data, &members, "response") {
            self.resource(&data[response.value.clone()]);
        }
    }
}

/// OpenAI's Responses events forwarded as they arrive: the `response` they carry rewritten,
/// `data: [DONE]` after the terminal event (the specification's ending, which OpenAI omits).
struct NativeStream {
    client_model: Vec<u8>,
    usage: Option<Usage>,
    /// Events forwarded: the vendor numbers them from 0, so llmux's own error event is next.
    events: u64,
    /// Where the finished response is recorded, when OpenAI stores it.
    record: Option<Record>,
}

impl Strategy for NativeStream {
    fn event(
        &mut self,
        event: &sse::Event,
        out: &mut BytesMut,
        _sent_content: bool,
        facts: Option<&mut AnswerFacts>,
    ) -> Step {
        if event.is_done_marker() {
            out.extend_from_slice(DONE_FRAME);
            return Step::End;
        }
        let rewritten = passthrough::rewrite_event(&event.data, &self.client_model, unix_now());
        if rewritten.usage.is_some() {
            self.usage = rewritten.usage;
        }
        if rewritten.is_error() {
            // Ended by the relay with llmux's error event (scrubbed), never the vendor's own.
            let message = serde_json::from_slice::<serde_json::Value>(&event.data)
                .ok()
                .and_then(|v| {
                    v.get("message")
                        .or_else(|| v.pointer("/error/message"))
                        .and_then(|m| m.as_str().map(str::to_owned))
                })
                .unwrap_or_else(|| "upstream stream error".into());
            let message = llmux_telemetry::mask::mask_secrets(&message).into_owned();
            return Step::Fail(
                ErrorKind::UpstreamStatus(502),
                format!("upstream stream error: {message}"),
            );
        }
        sse::encode_event(out, event.name.as_deref(), &rewritten.body);
        self.events += 1;
        if rewritten.is_terminal() {
            if let Some(facts) = facts {
                // The terminal event carries the whole response resource.
                facts.note_event_response(&rewritten.body);
            }
            if let Some(record) = self.record.take() {
                record.event(&rewritten.body);
            }
            out.extend_from_slice(DONE_FRAME);
            return Step::End;
        }
        Step::Content
    }

    fn vendor_ended(&mut self, _out: &mut BytesMut) -> Result<(), &'static str> {
        Err("upstream stream ended before the response finished")
    }

    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
        let code = match kind {
            ErrorKind::UpstreamStatus(429) => "rate_limit_exceeded",
            ErrorKind::UpstreamTimeout => "timeout",
            _ => "server_error",
        };
        let data = passthrough::error_event(self.events, "server_error", code, message);
        sse::encode_event(out, Some("error"), &data);
        out.extend_from_slice(DONE_FRAME);
    }

    fn usage(&self) -> Option<Usage> {
        self.usage
    }
}
