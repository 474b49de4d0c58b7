//! The Gemini API ingress: `POST /{v1beta,v1,v1alpha}/models/{model}:generateContent`,
//! `:streamGenerateContent` (SSE with `?alt=sse`, a streamed JSON array without it),
//! `:countTokens`, `:embedContent` and `:batchEmbedContents` (on `kind: embedding` models, see
//! [`GeminiEmbed`]), plus `GET /v1beta/models[/{model}]`, with errors in Google's envelope.
//!
//! To a Gemini credential this is the same-protocol byte path: the body goes upstream as
//! received, only the model in the URL changes, and `modelVersion` in the answer is set back to
//! the name the client asked for. Every other vendor is reached through the neutral model.

use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use http::HeaderValue;
use llmux_config::{Api, ModelKind};
use llmux_protocol::error::ErrorKind;
use llmux_protocol::gemini::ingress::{self, ChunkFramer, Framing, embed};
use llmux_protocol::usage::Usage;
use llmux_protocol::{gemini, neutral, sse};
use llmux_router::{Endpoint, Needs, Target};
use serde_json::json;

use crate::api_error::{ApiError, error_response, status_of};
use crate::edge::{Observed, RequestId, Served};
use crate::egress::answer as proxy;
use crate::egress::send::ClientHeaders;
use crate::governance::Caller;
use crate::pipeline::attempts::Failure;
use crate::pipeline::translate::{self, ClientEncoder, NeutralOnce, Translation};
use crate::pipeline::{self, Answer, Call, Crossing, Facts, Ingress, Profile, Received, Translate};
use crate::state::Gateway;

/// The API versions Google's SDKs call.
const VERSIONS: [&str; 3] = ["/v1beta/models/", "/v1/models/", "/v1alpha/models/"];

/// Whether `path` is a Gemini API model path (`/v1beta/models/…` and the same under `/v1/` with
/// an `:action`), whose clients read Google's error envelope.
pub fn is_gemini_path(path: &str) -> bool {
    path == "/v1beta/models"
        || path == "/v1alpha/models"
        || VERSIONS.iter().any(|prefix| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| !path.starts_with("/v1/") || rest.contains(':'))
        })
}

/// An error in Google's envelope, with its HTTP status.
pub fn google_error(error: ApiError) -> Response {
    let status = status_of(error.0.kind);
    let body = ingress::encode_error(status.as_u16(), &error.0.message);
    error_response(&error.0, status, body, "application/json; charset=UTF-8")
}

/// What a model path asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Generate,
    Stream,
    CountTokens,
    Embed,
    BatchEmbed,
}

/// `models/{model}:{action}` from a request path.
fn model_and_action(path: &str) -> Result<(&str, Action), ApiError> {
    let rest = VERSIONS
        .iter()
        .find_map(|prefix| path.strip_prefix(prefix))
        .ok_or_else(|| ApiError::new(ErrorKind::NotFound, format!("unknown route: {path}")))?;
    let (model, action) = rest.rsplit_once(':').ok_or_else(|| {
        ApiError::new(
            ErrorKind::NotFound,
            format!("'{path}' names no method (expected models/{{model}}:generateContent)"),
        )
    })?;
    let action = match action {
        "generateContent" => Action::Generate,
        "streamGenerateContent" => Action::Stream,
        "countTokens" => Action::CountTokens,
        "embedContent" => Action::Embed,
        "batchEmbedContents" => Action::BatchEmbed,
        other => {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                format!("unknown method '{other}' on models/{model}"),
            ));
        }
    };
    if model.is_empty() {
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            "the model name is empty",
        ));
    }
    Ok((model, action))
}

/// The model a request's path names (without a `models/` prefix) and its action.
fn path_model(head: &http::request::Parts) -> Result<(String, Action), ApiError> {
    let (model, action) = model_and_action(head.uri.path())?;
    let model = model.strip_prefix("models/").unwrap_or(model);
    Ok((model.to_owned(), action))
}

/// `POST /…/models/{model}:{action}`, called by the edge: generation through the pipeline,
/// `countTokens` answered here.
pub async fn handle(
    gateway: Arc<Gateway>,
    request_id: RequestId,
    caller: Caller,
    observed: Option<Observed>,
    request: Request,
) -> Served {
    match model_and_action(request.uri().path()) {
        Ok((_, Action::CountTokens)) => (count_tokens(gateway, request).await, None),
        Ok((_, Action::Embed | Action::BatchEmbed)) => {
            pipeline::serve::<GeminiEmbed>(gateway, request_id, caller, observed, request).await
        }
        Ok(_) => pipeline::serve::<Gemini>(gateway, request_id, caller, observed, request).await,
        Err(error) => (google_error(error), None),
    }
}

/// An estimate (about four characters per token), flagged by `x-llmux-token-count: estimated`,
/// as on `/v1/messages/count_tokens` for non-Anthropic models.
async fn count_tokens(gateway: Arc<Gateway>, request: Request) -> Response {
    let result = async {
        let snapshot = gateway.snapshot.load_full();
        let (model, _) = model_and_action(request.uri().path())?;
        let model = model.to_owned();
        let bytes = crate::body::read_request(request.into_body(), &snapshot).await?;
        let decoded = ingress::decode_count_tokens(&bytes, &model)
            .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.0))?;
        Ok::<_, ApiError>(decoded.estimate_input_tokens())
    }
    .await;
    match result {
        Ok(total) => {
            let mut response = proxy::json_response(ingress::encode_count_tokens(total));
            response.headers_mut().insert(
                http::HeaderName::from_static("x-llmux-token-count"),
                HeaderValue::from_static("estimated"),
            );
            response
        }
        Err(error) => google_error(error),
    }
}

/// `GET /v1beta/models`: the configured chat and embedding models in Google's list shape.
pub async fn list_models(State(gateway): State<Arc<Gateway>>) -> Response {
    let snapshot = gateway.snapshot.load_full();
    let mut names: Vec<(&str, ModelKind)> = snapshot
        .config
        .models
        .iter()
        .filter(|m| matches!(m.kind, ModelKind::Chat | ModelKind::Embedding))
        .map(|m| (m.name.as_deref().unwrap_or(&m.model), m.kind))
        .collect();
    names.sort_unstable_by_key(|(name, _)| *name);
    names.dedup_by_key(|(name, _)| *name);
    let models: Vec<_> = names
        .iter()
        .map(|(name, kind)| model_resource(name, *kind))
        .collect();
    Json(json!({ "models": models })).into_response()
}

/// `GET /v1beta/models/{model}`.
pub async fn get_model(State(gateway): State<Arc<Gateway>>, Path(model): Path<String>) -> Response {
    let snapshot = gateway.snapshot.load_full();
    let known = snapshot
        .config
        .models
        .iter()
        .find(|m| m.model == model || m.name.as_deref() == Some(model.as_str()));
    match known {
        Some(known) => Json(model_resource(&model, known.kind)).into_response(),
        None => google_error(ApiError::new(
            ErrorKind::NotFound,
            format!("models/{model} is not found"),
        )),
    }
}

fn model_resource(name: &str, kind: ModelKind) -> serde_json::Value {
    let methods: &[&str] = if kind == ModelKind::Embedding {
        &["embedContent", "batchEmbedContents"]
    } else {
        &["generateContent", "streamGenerateContent", "countTokens"]
    };
    json!({
        "name": format!("models/{name}"),
        "displayName": name,
        "supportedGenerationMethods": methods,
    })
}

/// The Gemini API ingress.
pub struct Gemini;

/// A decoded `generateContent` request.
pub struct GeminiCall {
    bytes: Bytes,
    /// The credentials' `forward_headers` from the client, for the byte path to Gemini.
    client_headers: ClientHeaders,
    /// The model the client named in the path.
    model: String,
    stream: bool,
    framing: Framing,
    needs: Needs,
    max_tokens: Option<u32>,
    input_estimate: u64,
    cached_content: bool,
    /// The neutral form, taken by the first translated attempt (a retry decodes again).
    unused: NeutralOnce,
    response_id: String,
}

impl Ingress for Gemini {
    const PROFILE: Profile = Profile::new("gemini", Api::Gemini, Endpoint::Chat);
    type Request = GeminiCall;

    async fn decode(received: Received<'_>) -> Result<GeminiCall, ApiError> {
        let (model, action) = path_model(received.head)?;
        let stream = action == Action::Stream;
        let sse = received
            .head
            .uri
            .query()
            .is_some_and(|q| q.split('&').any(|pair| pair == "alt=sse"));
        let decoded = ingress::decode_request(&received.bytes, &model, stream)
            .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.0))?;
        let request = decoded.request;
        Ok(GeminiCall {
            needs: translate::needs(&request),
            max_tokens: request.sampling.max_tokens,
            input_estimate: request.estimate_input_tokens(),
            cached_content: decoded.extras.cached_content.is_some(),
            unused: NeutralOnce::new(request),
            client_headers: received.client_headers(&[]),
            bytes: received.bytes,
            model,
            stream,
            framing: if sse {
                Framing::Sse
            } else {
                Framing::JsonArray
            },
            response_id: format!("{:016x}{:08x}", fastrand::u64(..), fastrand::u32(..)),
        })
    }

    fn facts(call: &GeminiCall) -> Facts<'_> {
        let reserve = pipeline::reservation(call.input_estimate, call.max_tokens);
        Facts::new(Some(call.model.as_str()), call.needs, reserve)
    }

    async fn passthrough<'a>(
        request: &'a GeminiCall,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> Result<Answer, Failure> {
        same_protocol(request, call, &target).await
    }

    fn cache() -> Option<crate::pipeline::cache::Hooks<Self>> {
        // A request naming Gemini's own `cachedContent` goes to Gemini as it is, never cached.
        Some(crate::pipeline::cache::Hooks {
            view: |request| {
                (!request.cached_content)
                    .then(|| <Self as Translate>::neutral(request).ok())
                    .flatten()
            },
            ..crate::pipeline::cache::Hooks::translated()
        })
    }
}

impl Translate for Gemini {
    type Encoder = ingress::StreamEncoder;

    fn neutral(request: &GeminiCall) -> Result<neutral::Request, ApiError> {
        request.unused.take_or(|| {
            ingress::decode_request(&request.bytes, &request.model, request.stream)
                .map(|d| d.request)
                .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.0))
        })
    }

    fn encoder(
        request: &GeminiCall,
        _call: &Call<'_>,
        _public_name: &str,
    ) -> ingress::StreamEncoder {
        ingress::StreamEncoder::new(
            request.framing,
            request.model.clone(),
            request.response_id.clone(),
        )
    }

    fn encode_whole(
        request: &GeminiCall,
        answer: &neutral::Response,
        _call: &Call<'_>,
        _public_name: &str,
    ) -> Vec<u8> {
        ingress::encode_response(answer, &request.model, &request.response_id)
    }

    fn refusal(request: &GeminiCall, target: &Target<'_>) -> Option<ApiError> {
        request.cached_content.then(|| {
            ApiError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "cachedContent is a Gemini feature; model '{}' is served by {} here",
                    request.model, target.credential.vendor
                ),
            )
        })
    }
}

/// Gemini client, Gemini vendor: the body as received, the model in the URL; the answer with
/// `modelVersion` set back to the client's name.
async fn same_protocol(
    request: &GeminiCall,
    call: &Call<'_>,
    target: &Target<'_>,
) -> Result<Answer, Failure> {
    let (gateway, snapshot, settle) = (call.gateway, call.snapshot, call.settle);
    let endpoint = snapshot.endpoint(target)?;
    let url = endpoint
        .gemini_url(target.upstream_model, request.stream)
        .map_err(|e| ApiError::new(e.kind(), e.to_string()))?;
    // Reasoning llmux carried for another vendor would be refused by Gemini.
    let body =
        ingress::strip_foreign_reasoning(&request.bytes).unwrap_or_else(|| request.bytes.to_vec());
    let started = Instant::now();
    let mut response = call
        .send(target, &url, &body, request.stream, &request.client_headers)
        .await?;
    if !request.stream {
        let body = proxy::read_whole(snapshot, target, &mut response).await?;
        let usage = gemini::decode_response(&body, 0).ok().and_then(|r| r.usage);
        settle.done(target.upstream_model, usage);
        let series = crate::series::of(snapshot, target);
        series.observe_upstream(&gateway.metrics, started.elapsed().as_secs_f64());
        series.add_neutral_usage(&gateway.metrics, usage);
        let body =
            ingress::rewrite_model_version(&body, &request.model).unwrap_or_else(|| body.to_vec());
        let body = llmux_protocol::utf8::valid_or_replaced_vec(body);
        return Ok(Answer::Json(body));
    }
    let encoder = GeminiPassthrough {
        framer: ChunkFramer::new(request.framing),
        client_model: request.model.clone(),
    };
    let strategy = Translation::new(Api::Gemini, encoder);
    let body = crate::pipeline::relay::open(call, target, started, response, strategy).await?;
    Ok(Answer::Stream(body))
}

/// Gemini chunks forwarded as received (re-framed when the client did not ask for SSE), with
/// `modelVersion` rewritten; decoded by the relay only for usage and errors.
struct GeminiPassthrough {
    framer: ChunkFramer,
    client_model: String,
}

impl ClientEncoder for GeminiPassthrough {
    fn encode(&mut self, _event: &neutral::StreamEvent, _out: &mut BytesMut) {}

    fn finish(&mut self, out: &mut BytesMut) {
        self.framer.end(out);
    }

    fn fail(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
        let status = status_of(kind).as_u16();
        self.framer
            .push(&ingress::encode_error(status, message), out);
        self.framer.end(out);
    }

    fn passthrough(&mut self, event: &sse::Event, out: &mut BytesMut) -> bool {
        let data = ingress::rewrite_model_version(&event.data, &self.client_model)
            .unwrap_or_else(|| event.data.to_vec());
        let data = llmux_protocol::utf8::valid_or_replaced_vec(data);
        self.framer.push(&data, out);
        true
    }
}

/// `:embedContent` and `:batchEmbedContents`, served by `kind: embedding` models: the byte path
/// to a Gemini vendor (each `model` set to the vendor's name), an OpenAI-compatible vendor's
/// `/embeddings` otherwise. Anthropic has no embeddings.
pub struct GeminiEmbed;

/// A decoded embeddings request.
pub struct GeminiEmbedCall {
    bytes: Bytes,
    /// The model the client named in the path.
    model: String,
    decoded: embed::EmbedRequest,
}

impl Ingress for GeminiEmbed {
    const PROFILE: Profile = Profile::new("gemini", Api::Gemini, Endpoint::Embeddings);
    type Request = GeminiEmbedCall;

    async fn decode(received: Received<'_>) -> Result<GeminiEmbedCall, ApiError> {
        let (model, action) = path_model(received.head)?;
        let decoded = embed::decode(&received.bytes, &model, action == Action::BatchEmbed)
            .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.0))?;
        Ok(GeminiEmbedCall {
            bytes: received.bytes,
            model,
            decoded,
        })
    }

    fn facts(call: &GeminiEmbedCall) -> Facts<'_> {
        Facts::new(
            Some(call.model.as_str()),
            Needs::default(),
            call.decoded.estimate_input_tokens(),
        )
    }

    async fn passthrough<'a>(
        request: &'a GeminiEmbedCall,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> Result<Answer, Failure> {
        let snapshot = call.snapshot;
        let endpoint = snapshot.endpoint(&target)?;
        let url = embed_url(endpoint, target.upstream_model, request.decoded.batch)?;
        let body =
            embed::rewrite_models(&request.bytes, request.decoded.batch, target.upstream_model)
                .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.0))?;
        let started = Instant::now();
        let mut response =
            crate::egress::send::send(snapshot, &target, &url, &body, false, call.trace).await?;
        let body = proxy::read_whole(snapshot, &target, &mut response).await?;
        crate::series::of(snapshot, &target)
            .observe_upstream(&call.gateway.metrics, started.elapsed().as_secs_f64());
        // Gemini reports no usage for embeddings: the reservation is settled as estimated.
        call.settle.done(target.upstream_model, None);
        Ok(Answer::Json(llmux_protocol::utf8::valid_or_replaced_vec(
            body.to_vec(),
        )))
    }
}

/// An OpenAI-compatible vendor's `/embeddings`, answered in Gemini's shape.
impl Crossing for GeminiEmbed {
    async fn translated<'a>(
        request: &'a GeminiEmbedCall,
        call: &'a Call<'a>,
        target: Target<'a>,
    ) -> Result<Answer, Failure> {
        if target.credential.api != Api::OpenAi {
            return Err(Failure::from(ApiError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "embeddings need a Gemini or OpenAI-compatible vendor; credential '{}' \
                     speaks the {} API",
                    target.credential.name, target.credential.api
                ),
            )));
        }
        let snapshot = call.snapshot;
        let upstream_body = request
            .decoded
            .to_openai(target.upstream_model)
            .map_err(|e| ApiError::new(ErrorKind::InvalidRequest, e.0))?;
        let started = Instant::now();
        let mut response =
            crate::egress::send::embeddings(snapshot, &target, &upstream_body, call.trace).await?;
        let body = proxy::read_whole(snapshot, &target, &mut response).await?;
        let answer = embed::decode_openai_response(&body, request.decoded.texts.len())
            .map_err(|e| ApiError::new(ErrorKind::UpstreamProtocol, e.0))?;
        let series = crate::series::of(snapshot, &target);
        series.observe_upstream(&call.gateway.metrics, started.elapsed().as_secs_f64());
        series.add_usage(
            &call.gateway.metrics,
            answer.prompt_tokens.map(|input| Usage {
                prompt_tokens: Some(input),
                completion_tokens: None,
                total_tokens: Some(input),
                ..Usage::default()
            }),
        );
        call.settle.done(
            target.upstream_model,
            answer
                .prompt_tokens
                .map(|input| llmux_protocol::neutral::Usage {
                    input_tokens: input,
                    ..Default::default()
                }),
        );
        Ok(Answer::Json(embed::encode_response(
            &answer.vectors,
            request.decoded.batch,
        )))
    }
}

/// Gemini's `models/{model}:embedContent` or `:batchEmbedContents`: the URL `gemini_url` forms
/// (the model checked to be one path segment, escaped), with the method swapped.
fn embed_url(
    endpoint: &llmux_upstream::Endpoint,
    upstream_model: &str,
    batch: bool,
) -> Result<http::Uri, ApiError> {
    let generate = endpoint
        .gemini_url(upstream_model, false)
        .map_err(|e| ApiError::new(e.kind(), e.to_string()))?
        .to_string();
    let base = generate
        .strip_suffix(":generateContent")
        .ok_or_else(|| ApiError::new(ErrorKind::Internal, "unexpected Gemini URL shape"))?;
    let method = if batch {
        ":batchEmbedContents"
    } else {
        ":embedContent"
    };
    http::Uri::try_from(format!("{base}{method}"))
        .map_err(|_| ApiError::new(ErrorKind::Internal, "cannot form the Gemini embed URL"))
}
