//! The edge: what happens around every request, in one future — request id, authentication,
//! one log line, one metric, the overhead histogram and `Server-Timing` — and, in between, the
//! proxy handler called directly or axum's router for everything else.
//!
//! It is a service wrapped around the router rather than two `from_fn` layers on it: layers on
//! a router are cloned into every route and each boxes its own future, which cost about fifteen
//! allocations per request.

pub(crate) mod envelope;
pub(crate) mod isolation;
pub(crate) mod overload;

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::response::Response;
use http::{HeaderName, HeaderValue, Method};
use llmux_telemetry::metrics::RequestLabels;
use tower::Service;

use futures_util::FutureExt;
use llmux_protocol::error::ErrorKind;
use std::panic::AssertUnwindSafe;

use crate::api_error::ApiError;
use crate::edge::envelope::Envelope;
use crate::edge::isolation::{Guarded, Held};
use crate::governance::Caller;
use crate::ingress::{Chat, Messages, Responses};
use crate::pipeline::{boxed_in_place, serve};
use crate::request_log::{Draft, Finish};
use crate::routes::{self, Handler};
use crate::series::Series;
use crate::server::{ActiveRequest, Activity};
use crate::state::Gateway;

/// The request's id: the client's `x-request-id` when it is sane, else a fresh one.
#[derive(Debug, Clone)]
pub struct RequestId(pub HeaderValue);

/// A proxied request's response and where it went. The pipeline hands the outcome to the edge
/// beside the response: carried in the response's extensions it cost ~500 instructions per
/// request (a map allocated, hashed into, looked up four times and freed).
pub type Served = (Response, Option<Outcome>);

/// A [`Served`] as a plain response for the router, which carries the outcome to the edge in
/// the response's extensions.
pub fn into_response((mut response, outcome): Served) -> Response {
    if let Some(outcome) = outcome {
        response.extensions_mut().insert(outcome);
    }
    response
}

/// Where a request went, for the edge's log line, request log and metrics (see [`Served`]).
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The target's series and labels (vendor, credential name, public model name).
    pub series: Arc<Series>,
    /// The vendor's model name when the series does not fix it (a passed-through model): the
    /// common case allocates nothing.
    pub passed_model: Option<String>,
    /// Time spent waiting on upstreams, for committed attempts; the rest is the gateway's
    /// overhead.
    pub upstream_time: Option<Duration>,
}

impl Outcome {
    /// The vendor's model name the request went to.
    pub fn upstream_model(&self) -> &str {
        self.series
            .upstream_model()
            .or(self.passed_model.as_deref())
            .unwrap_or_default()
    }
}

// Header names as constants: inserting a `&str` name that is not a standard header copies it
// into a new allocation on every request.
const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

/// The application: the edge around axum's router. Cloned per connection (three `Arc`s).
#[derive(Clone)]
pub struct App {
    gateway: Arc<Gateway>,
    router: Router,
    /// The connection this clone serves, so that its idle time can be measured.
    connection: Option<Arc<Activity>>,
}

impl App {
    /// The edge around `router`, serving `gateway`.
    pub fn new(gateway: Arc<Gateway>, router: Router) -> Self {
        Self {
            gateway,
            router,
            connection: None,
        }
    }

    /// A clone that marks its requests on `connection`.
    pub(crate) fn for_connection(&self, connection: Arc<Activity>) -> Self {
        Self {
            gateway: Arc::clone(&self.gateway),
            router: self.router.clone(),
            connection: Some(connection),
        }
    }
}

impl<B> Service<http::Request<B>> for App
where
    B: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let gateway = self.gateway.clone();
        let router = self.router.clone();
        let active = self.connection.as_ref().map(Activity::begin);
        let peer = self.connection.as_ref().and_then(|c| c.peer);
        boxed_in_place(|| async move {
            Ok(edge(gateway, router, request.map(Body::new), active, peer).await)
        })
    }
}

/// What the pipeline needs to observe a request: the trace context vendors get in
/// `traceparent`, and the request's record for the log and the trace. The edge hands it to the
/// proxy handlers it calls as an argument; only a request for the router carries it in its
/// extensions (an entry there is a map allocated, boxed and hashed into: ~400 instructions).
#[derive(Clone)]
pub struct Observed {
    /// When tracing is on or the client sent a `traceparent`.
    pub trace: Option<Arc<crate::trace::Context>>,
    /// When the request log is on or the trace is recorded.
    pub draft: Option<Arc<Draft>>,
}

async fn edge(
    gateway: Arc<Gateway>,
    mut router: Router,
    request: Request,
    active: Option<ActiveRequest>,
    peer: Option<std::net::SocketAddr>,
) -> Response {
    let started = Instant::now();
    // The wall clock is read once for a request that needs it: its new id carries the time,
    // and so does its record.
    let mut arrived_ms = None;
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .filter(|v| is_sane_id(v.as_bytes()))
        .cloned()
        .unwrap_or_else(|| new_id_at(*arrived_ms.insert(crate::clock::unix_millis())));
    let method = request.method().clone();
    let found = routes::lookup(request.uri().path());
    let route = found.map_or("other", |r| r.label);
    let access = routes::access(request.uri().path(), found);
    let handler = found.map(|r| r.handler);
    let envelope = Envelope::for_path(request.uri().path());
    // Only the log line needs the path after the request is handed on.
    let path = tracing::enabled!(tracing::Level::INFO).then(|| request.uri().path().to_owned());

    // The API routes hold a place in the in-flight limit until their body ends; past the limit
    // a request is refused at once, before any work (authentication included).
    let in_flight = if is_api_route(route) {
        match gateway.load.try_enter() {
            Some(place) => Some(place),
            None => {
                gateway.metrics.shed.inc();
                return finish_shed(&gateway, envelope, &id, route);
            }
        }
    } else {
        None
    };

    // The trace context, when tracing is on or the client sent a `traceparent`.
    let tracing = gateway.tracing.get().filter(|_| in_flight.is_some());
    let trace = crate::trace::Context::at_request(
        request.headers().get(&crate::trace::TRACEPARENT),
        tracing.map(|tracing| &tracing.sampler),
    );
    // The request's record, when the log is on or the trace is recorded (a trace the sampler
    // left out has only its context).
    let log = gateway.request_log.get().filter(|_| in_flight.is_some());
    let trace_draft = tracing
        .zip(trace.as_ref().filter(|context| context.recording))
        .map(|(tracing, context)| {
            Box::new(crate::trace::Draft::start(
                Arc::clone(tracing),
                Arc::clone(context),
                route,
            ))
        });
    let draft = (log.is_some() || trace_draft.is_some()).then(|| {
        let user_agent = request
            .headers()
            .get(http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok());
        Draft::start(
            log,
            trace_draft,
            (
                arrived_ms.unwrap_or_else(crate::clock::unix_millis),
                started,
            ),
            id.to_str().unwrap_or("-"),
            route,
            peer,
            user_agent,
        )
    });
    let observed = (trace.is_some() || draft.is_some()).then(|| Observed {
        trace,
        draft: draft.clone(),
    });

    let handled = AssertUnwindSafe(async {
        match crate::governance::authenticate(
            &gateway,
            access,
            envelope,
            request.headers(),
            request.uri(),
        )
        .await
        {
            Ok(caller) => {
                if let (Some(draft), Caller::Key(key)) = (&draft, &caller) {
                    draft.with(|record| {
                        record.key_id = Some(key.id.clone());
                        record.key_name.clone_from(&key.name);
                    });
                }
                let id = RequestId(id.clone());
                dispatch(
                    gateway.clone(),
                    &mut router,
                    request,
                    handler,
                    id,
                    caller,
                    observed,
                )
                .await
            }
            Err(refusal) => (refusal, None),
        }
    })
    .catch_unwind()
    .await;
    let (mut response, outcome) = match handled {
        Ok(served) => served,
        Err(payload) => {
            crate::edge::isolation::report(&gateway.metrics.panics, &id, payload.as_ref());
            let response = envelope.render(ApiError::new(
                ErrorKind::Internal,
                "internal error while handling this request; it was not completed (other requests are unaffected)",
            ));
            (response, None)
        }
    };
    // Routes served through the router carry their outcome in the extensions.
    let outcome = outcome.or_else(|| response.extensions_mut().remove::<Outcome>());
    if let Some(draft) = &draft {
        let outcome = outcome.as_ref();
        let status = response.status().as_u16();
        if let Some(o) = outcome {
            draft.routed(&o.series, o.upstream_model());
        }
        draft.with(|record| {
            record.status = status;
            if status >= 400 && record.error_kind.is_none() {
                record.error_kind = Some(std::borrow::Cow::Borrowed(status_class(status)));
            }
        });
    }
    let log = draft.map(|draft| Finish::new(draft, Arc::clone(&gateway)));
    let held = Held {
        in_flight,
        active,
        log,
    };
    if held.in_flight.is_some() || held.active.is_some() {
        let panics = gateway.metrics.panics.clone();
        response = response.map(|body| Body::new(Guarded::new(body, held, id.clone(), panics)));
    }

    response.headers_mut().insert(REQUEST_ID, id.clone());
    let upstream_time = outcome.as_ref().and_then(|o| o.upstream_time);
    if let Some(upstream) = upstream_time {
        let total = started.elapsed();
        let overhead = total.saturating_sub(upstream);
        if let Some(o) = &outcome {
            o.series.observe_ttfb(&gateway.metrics, total.as_secs_f64());
            o.series
                .observe_overhead(&gateway.metrics, route, overhead.as_secs_f64());
        }
        if let Ok(value) = server_timing(overhead, upstream) {
            response.headers_mut().insert(SERVER_TIMING, value);
        }
    }
    let status = response.status().as_u16();
    if route != "other" {
        match &outcome {
            Some(o) => o.series.count_request(&gateway.metrics, route, status),
            None => count_unrouted(&gateway, route, status),
        }
    }
    let Some(path) = path else {
        return response;
    };
    llmux_telemetry::access_log::request(&llmux_telemetry::access_log::RequestLine {
        request_id: id.to_str().unwrap_or("-"),
        method: method.as_str(),
        path: &path,
        status,
        routed: outcome.as_ref().map(|o| {
            (
                o.series.vendor(),
                o.series.model(),
                o.upstream_model(),
                o.series.credential(),
            )
        }),
        elapsed: started.elapsed(),
    });
    response
}

/// Hands the request to its handler. The three proxy routes are called directly with the id and
/// the caller: through the router, matching the path, inserting both into the request's
/// extensions and running the handler's extractors cost about a tenth of a proxied request's
/// instructions. Everything else goes through the router.
///
/// Each handler's future gets its own box rather than living inside the edge's: the edge's box
/// would then be as large as the largest handler for every request, and open streams measured
/// 1.7 KiB more each (heap fragmentation around the freed request futures), for 500 fewer
/// instructions per request.
async fn dispatch(
    gateway: Arc<Gateway>,
    router: &mut Router,
    mut request: Request,
    handler: Option<Handler>,
    id: RequestId,
    caller: Caller,
    observed: Option<Observed>,
) -> Served {
    if request.method() == Method::POST {
        match handler {
            Some(Handler::Chat) => {
                return boxed_in_place(|| serve::<Chat>(gateway, id, caller, observed, request))
                    .await;
            }
            Some(Handler::Responses) => {
                // Stored responses belong to their caller (see `Caller::owner`).
                request.extensions_mut().insert(caller.clone());
                return boxed_in_place(|| {
                    serve::<Responses>(gateway, id, caller, observed, request)
                })
                .await;
            }
            Some(Handler::Messages) => {
                return boxed_in_place(|| {
                    serve::<Messages>(gateway, id, caller, observed, request)
                })
                .await;
            }
            Some(Handler::Gemini) => {
                return boxed_in_place(|| {
                    crate::ingress::gemini::handle(gateway, id, caller, observed, request)
                })
                .await;
            }
            _ => {}
        }
    }
    request.extensions_mut().insert(id);
    request.extensions_mut().insert(caller);
    if let Some(observed) = observed {
        request.extensions_mut().insert(observed);
    }
    match router.call(request).await {
        Ok(response) => (response, None),
        Err(never) => match never {},
    }
}

/// `llmux;dur=<ms>, upstream;dur=<ms>` with three decimals, without float formatting (this
/// runs on every proxied request).
fn server_timing(
    overhead: Duration,
    upstream: Duration,
) -> Result<HeaderValue, http::header::InvalidHeaderValue> {
    let mut out = Vec::with_capacity(48);
    out.extend_from_slice(b"llmux;dur=");
    push_millis(&mut out, overhead);
    out.extend_from_slice(b", upstream;dur=");
    push_millis(&mut out, upstream);
    HeaderValue::from_bytes(&out)
}

/// Appends `d` in milliseconds, rounded to the microsecond: `12.345`.
fn push_millis(out: &mut Vec<u8>, d: Duration) {
    // In u64 (`as_nanos` is u128, whose division and formatting cost several times more):
    // microseconds fit u64 for 584,000 years.
    let micros = d
        .as_secs()
        .saturating_mul(1_000_000)
        .saturating_add(u64::from((d.subsec_nanos() + 500) / 1000));
    out.extend_from_slice(itoa::Buffer::new().format(micros / 1000).as_bytes());
    let fraction = micros % 1000;
    out.extend_from_slice(&[
        b'.',
        b'0' + (fraction / 100) as u8,
        b'0' + (fraction / 10 % 10) as u8,
        b'0' + (fraction % 10) as u8,
    ]);
}

/// A bounded error label for a status the gateway answered.
fn status_class(status: u16) -> &'static str {
    match status {
        400 => "invalid_request",
        401 | 403 => "unauthenticated",
        404 => "not_found",
        408 => "request_timeout",
        413 => "payload_too_large",
        429 => "rate_limited",
        500 => "internal",
        502 => "upstream_error",
        503 => "unavailable",
        504 => "upstream_timeout",
        _ if status < 500 => "client_error",
        _ => "server_error",
    }
}

/// Routes that call vendors (or serve what they answered): the ones the in-flight limit covers.
fn is_api_route(route: &str) -> bool {
    matches!(
        route,
        "chat"
            | "embeddings"
            | "responses"
            | "messages"
            | "count_tokens"
            | "gemini"
            | "images_text"
    )
}

/// A request refused by the in-flight limit: 503 with `Retry-After: 1` in its envelope,
/// counted and logged like any request.
fn finish_shed(
    gateway: &Gateway,
    envelope: Envelope,
    id: &HeaderValue,
    route: &'static str,
) -> Response {
    let mut error = ApiError::new(
        ErrorKind::NoCombination,
        "llmux is at its limit of requests in flight (limits.max_in_flight); retry shortly",
    );
    error.0.code = Some("overloaded".into());
    error.0.type_override = Some("overloaded_error".into());
    error.0.retry_after_secs = Some(1);
    let mut response = envelope.render(error);
    response.headers_mut().insert(REQUEST_ID, id.clone());
    count_unrouted(gateway, route, 503);
    response
}

/// Counts a request no vendor answered (vendor and model `none`).
fn count_unrouted(gateway: &Gateway, route: &'static str, status: u16) {
    gateway
        .metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            vendor: "none".to_owned(),
            model: "none".to_owned(),
            status,
        })
        .inc();
}

fn is_sane_id(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.len() <= 128 && bytes.iter().all(|b| b.is_ascii_graphic())
}

/// `req_`, the time in Unix milliseconds as 12 hex digits, and 12 random hex digits.
///
/// Time first, so ids sort by when they were made: the request log's id index then grows at
/// its end like its time key, where random ids landed all over it (a B-tree page split and
/// rebalance per record, half of SQLite's cost of a log row). 48 random bits keep ids of the
/// same millisecond apart.
fn new_id_at(unix_millis: u64) -> HeaderValue {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = *b"req_000000000000000000000000";
    let bits = u128::from(unix_millis & 0xffff_ffff_ffff) << 48
        | u128::from(fastrand::u64(..) & 0xffff_ffff_ffff);
    for (i, byte) in id[4..].iter_mut().enumerate() {
        *byte = HEX[(bits >> (4 * (23 - i)) & 0xf) as usize];
    }
    HeaderValue::from_bytes(&id).unwrap_or(HeaderValue::from_static("req_unknown"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::post;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    fn gateway() -> Arc<Gateway> {
        let config = llmux_config::from_str(
            "credentials:\n  - { platform: openai, value: sk-test-0123456789 }\nmodels:\n  - { vendor: openai, model: gpt-4o-mini }\n",
            llmux_config::Format::Yaml,
            &|_| None,
        )
        .unwrap();
        Gateway::new(crate::state::Snapshot::compile(config).unwrap()).unwrap()
    }

    fn bug(what: &str) -> &'static str {
        panic!("{what}")
    }

    fn panicking_app(gateway: &Arc<Gateway>) -> App {
        let router = Router::new()
            .route(
                "/v1/embeddings",
                post(|| async { bug("a bug in a handler") }),
            )
            .route(
                "/v1/messages/count_tokens",
                post(|| async {
                    let first = futures_util::stream::iter([Ok::<_, Infallible>(
                        bytes::Bytes::from_static(b"data: one\n\n"),
                    )]);
                    let broken = futures_util::stream::poll_fn(
                        |_| -> Poll<Option<Result<bytes::Bytes, Infallible>>> {
                            panic!("a bug while streaming")
                        },
                    );
                    Body::from_stream(futures_util::StreamExt::chain(first, broken))
                }),
            )
            .route(
                "/v1/responses/{id}",
                axum::routing::get(|| async { "fine" }),
            );
        App::new(Arc::clone(gateway), router)
    }

    /// `app`'s response to an empty `method` request on `path`.
    async fn send(app: &App, method: Method, path: &str) -> Response {
        let request = http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(request).await.unwrap()
    }

    async fn json_body(response: Response) -> serde_json::Value {
        let body = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&body).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_handler_fails_only_its_request_in_its_envelope() {
        let gateway = gateway();
        let app = panicking_app(&gateway);
        let response = send(&app, Method::POST, "/v1/embeddings").await;
        assert_eq!(response.status(), 500);
        assert!(response.headers().contains_key("x-request-id"));
        let body = json_body(response).await;
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("internal error"),
            "{body}"
        );
        assert_eq!(gateway.metrics.panics.get(), 1);
        assert_eq!(
            gateway.load.in_flight(),
            0,
            "the panicked request freed its place"
        );

        // The next request on the same app is served.
        let fine = send(&app, Method::GET, "/v1/responses/x").await;
        assert_eq!(fine.status(), 200);
    }

    #[tokio::test]
    async fn a_panic_while_streaming_ends_only_that_stream() {
        let gateway = gateway();
        let app = panicking_app(&gateway);
        let response = send(&app, Method::POST, "/v1/messages/count_tokens").await;
        assert_eq!(response.status(), 200, "the head was already sent");
        let mut body = response.into_body();
        let first = body.frame().await.unwrap().unwrap().into_data().unwrap();
        assert_eq!(first, "data: one\n\n");
        assert_eq!(gateway.load.in_flight(), 1, "a stream holds its place");
        assert!(
            body.frame().await.unwrap().is_err(),
            "the stream ends with an error"
        );
        assert!(body.frame().await.is_none());
        assert_eq!(gateway.metrics.panics.get(), 1);
        assert_eq!(gateway.load.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_panic_on_the_anthropic_route_answers_in_anthropic_s_envelope() {
        let gateway = gateway();
        let router =
            Router::new().route("/v1/messages/count_tokens", post(|| async { bug("a bug") }));
        let app = App::new(Arc::clone(&gateway), router);
        let response = send(&app, Method::POST, "/v1/messages/count_tokens").await;
        assert_eq!(response.status(), 500);
        let body = json_body(response).await;
        assert_eq!(body["type"], "error", "{body}");
    }

    #[test]
    fn new_ids_sort_by_time_and_differ_within_a_millisecond() {
        let earlier = new_id_at(1_796_557_469_000);
        let later = new_id_at(1_796_557_469_001);
        assert!(earlier.as_bytes() < later.as_bytes());
        assert!(earlier.to_str().unwrap().starts_with("req_01a24b2b7548"));
        let same: std::collections::HashSet<_> =
            (0..1000).map(|_| new_id_at(1_796_557_469_000)).collect();
        assert_eq!(same.len(), 1000, "ids of one millisecond collide");
    }

    #[test]
    fn new_ids_are_24_hex_digits() {
        let a = new_id_at(crate::clock::unix_millis());
        let b = new_id_at(crate::clock::unix_millis());
        assert_ne!(a, b);
        for id in [a, b] {
            let id = id.to_str().unwrap();
            assert_eq!(id.len(), 28, "{id}");
            assert!(id.starts_with("req_"));
            assert!(
                id[4..]
                    .bytes()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
            );
        }
    }

    #[test]
    fn server_timing_has_three_decimals() {
        let value =
            server_timing(Duration::from_nanos(1_234_567), Duration::from_secs(12)).unwrap();
        assert_eq!(value, "llmux;dur=1.235, upstream;dur=12000.000");
        let value = server_timing(Duration::ZERO, Duration::from_micros(7)).unwrap();
        assert_eq!(value, "llmux;dur=0.000, upstream;dur=0.007");
    }
}
