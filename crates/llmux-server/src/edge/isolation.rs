//! Isolation: a bug while handling one request fails that request and nothing else.
//!
//! The release build unwinds (`panic = "unwind"`): a panic in a handler is caught at the edge
//! and becomes a 500 in the request's own envelope; a panic while a response body (a stream)
//! is being produced ends that body with an error, which closes that one response. Both are
//! logged with the request id and counted in `llmux_panics_total`. Every other request and
//! stream on the process keeps going.
//!
//! The response body is also where a request's places are held: its slot in the in-flight
//! limit and its mark on the connection's activity, both released when the body ends or is
//! dropped, whichever comes first.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use bytes::Bytes;
use http::HeaderValue;
use http_body::{Frame, SizeHint};
use llmux_telemetry::metrics::Counter;

use crate::edge::overload::InFlight;
use crate::server::ActiveRequest;

/// What a response body holds until it ends.
#[derive(Debug, Default)]
pub struct Held {
    pub in_flight: Option<InFlight>,
    pub active: Option<ActiveRequest>,
    /// Writes the request's log record when the body ends.
    #[allow(dead_code, reason = "held for its Drop, which writes the record")]
    pub log: Option<crate::request_log::Finish>,
}

/// A response body that turns a panic into the end of this one response.
pub struct Guarded {
    inner: Body,
    /// `None` once the body panicked.
    held: Option<Held>,
    request_id: HeaderValue,
    panics: Counter,
}

impl Guarded {
    /// Wraps `inner`, holding `held` until it ends.
    pub fn new(inner: Body, held: Held, request_id: HeaderValue, panics: Counter) -> Self {
        Self {
            inner,
            held: Some(held),
            request_id,
            panics,
        }
    }
}

impl http_body::Body for Guarded {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if this.held.is_none() {
            return Poll::Ready(None);
        }
        let inner = &mut this.inner;
        match std::panic::catch_unwind(AssertUnwindSafe(|| Pin::new(inner).poll_frame(cx))) {
            Ok(Poll::Ready(None)) => {
                this.held = None;
                Poll::Ready(None)
            }
            Ok(poll) => poll,
            Err(payload) => {
                this.held = None;
                report(&this.panics, &this.request_id, payload.as_ref());
                Poll::Ready(Some(Err(axum::Error::new(
                    "internal error while producing the response",
                ))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Logs and counts a caught panic.
pub fn report(panics: &Counter, request_id: &HeaderValue, payload: &(dyn Any + Send)) {
    panics.inc();
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)");
    tracing::error!(
        request_id = request_id.to_str().unwrap_or("-"),
        panic = message,
        "request failed with an internal error (panic caught; other requests are unaffected)"
    );
}
