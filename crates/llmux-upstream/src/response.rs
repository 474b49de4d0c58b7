//! A vendor's answer as the server crate sees it: status, headers and a body read as `Bytes`
//! chunks, so no HTTP client type leaks out of this crate.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use http::{HeaderMap, StatusCode};
use http_body::Body as _;
use hyper::body::Incoming;

/// The connection failed while the body was being read. Carries no text from the vendor.
#[derive(Debug, thiserror::Error)]
#[error("upstream body error")]
pub struct BodyError(#[source] hyper::Error);

/// An upstream response whose head has arrived; the body is read on demand.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
}

impl Response {
    pub(crate) fn new(response: hyper::Response<Incoming>) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            status: parts.status,
            headers: parts.headers,
            body: Body(body),
        }
    }

    /// The response status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The response headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }

    /// The next chunk of the body, `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        std::future::poll_fn(|cx| Pin::new(&mut self.body).poll_next(cx))
            .await
            .transpose()
    }

    /// The body as a stream of chunks.
    pub fn into_body(self) -> Body {
        self.body
    }
}

/// A response body: a stream of data chunks (trailers are skipped).
#[derive(Debug)]
pub struct Body(Incoming);

impl Body {
    /// Whether the body has certainly ended (its connection can go back to the pool).
    pub fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }
}

impl Stream for Body {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            return match Pin::new(&mut self.0).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => Poll::Ready(Some(Ok(data))),
                    Err(_trailers) => continue,
                },
                Poll::Ready(Some(Err(err))) => Poll::Ready(Some(Err(BodyError(err)))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }
}
