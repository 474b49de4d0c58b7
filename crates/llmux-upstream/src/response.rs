//! A vendor's answer as the server crate sees it: status, headers and a body read as `Bytes`
//! chunks straight off the connection's read buffer. The connection goes back to its pool the
//! moment the body's end has been read (or, when the reader stops at its last event, if that
//! end is already buffered when the body is dropped).

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use http::{HeaderMap, StatusCode};
use tokio::io::{AsyncRead, ReadBuf};

use crate::client::{Conn, FIRST_READ, Pool};
use crate::framing::{Decoded, Framing, FramingError};
use crate::wire::Head;

/// Reads grow up to this size while they keep filling the buffer (large bodies).
const LARGEST_READ: usize = 64 * 1024;
/// The per-thread buffer streams are read through.
const SCRATCH_SIZE: usize = 16 * 1024;
/// At most this much of an unread body is drained on drop to save the connection.
const DRAIN_ON_DROP: usize = 16 * 1024;

/// The connection failed, or broke the body's framing, while the body was being read.
/// Carries no text from the vendor.
#[derive(Debug, thiserror::Error)]
#[error("upstream body error")]
pub struct BodyError(#[source] Failure);

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Io(io::Error),
    #[error(transparent)]
    Framing(FramingError),
}

/// An upstream response whose head has arrived; the body is read on demand.
#[derive(Debug)]
pub struct Response {
    status: StatusCode,
    headers: HeaderMap,
    body: Body,
}

impl Response {
    pub(crate) fn new(head: Head, conn: Conn, mut buf: BytesMut, pool: Arc<Pool>) -> Self {
        if buf.is_empty() && !matches!(head.framing, Framing::Length(_)) {
            // A stream reads through scratch space (see `Live::poll_read_through_scratch`).
            buf = BytesMut::new();
        }
        let live = Live {
            conn,
            buf,
            framing: head.framing,
            keep_alive: head.keep_alive,
            read_size: FIRST_READ,
            pool,
        };
        let mut body = Body { live: Some(live) };
        // A body that is already complete (or empty) frees its connection right away.
        body.release_if_done();
        Self {
            status: head.status,
            headers: head.headers,
            body,
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
pub struct Body {
    /// `None` once the body has ended or failed.
    live: Option<Live>,
}

/// A body being read, with the connection it is read from.
#[derive(Debug)]
struct Live {
    /// The connection (with its place in the host's connection cap).
    conn: Conn,
    buf: BytesMut,
    framing: Framing,
    keep_alive: bool,
    /// The next read's size: doubles while reads fill the buffer, up to [`LARGEST_READ`].
    read_size: usize,
    pool: Arc<Pool>,
}

/// One step of reading a body.
enum Step {
    Data(Bytes),
    End,
    Failed(Failure),
}

impl Live {
    /// Decodes what is buffered, reading from the connection when that is not enough.
    fn poll_step(&mut self, cx: &mut Context<'_>) -> Poll<Step> {
        loop {
            match self.framing.decode(&mut self.buf) {
                Ok(Decoded::Data(data)) => {
                    if self.buf.is_empty() && self.streamed() {
                        // Between a stream's events, hold no read buffer at all.
                        self.buf = BytesMut::new();
                    }
                    return Poll::Ready(Step::Data(data));
                }
                Ok(Decoded::End) => return Poll::Ready(Step::End),
                Ok(Decoded::NeedMore) => {}
                Err(err) => return Poll::Ready(Step::Failed(Failure::Framing(err))),
            }
            let read = if self.streamed() {
                self.poll_read_through_scratch(cx)
            } else {
                self.poll_read_into_buffer(cx)
            };
            match read {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    self.keep_alive = false;
                    return Poll::Ready(match self.framing.at_eof() {
                        Ok(_) => Step::End,
                        Err(err) => Step::Failed(Failure::Framing(err)),
                    });
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(err)) => return Poll::Ready(Step::Failed(Failure::Io(err))),
            }
        }
    }

    /// Chunked and until-close bodies are streams (SSE): their events are copied out by the
    /// reader anyway, and a stream may stay open for minutes between events.
    fn streamed(&self) -> bool {
        !matches!(self.framing, Framing::Length(_))
    }

    /// A length-delimited body is read straight into the buffer its chunks are split from.
    fn poll_read_into_buffer(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        self.reserve();
        let spare = self.buf.capacity() - self.buf.len();
        let read = tokio_util::io::poll_read_buf(Pin::new(&mut self.conn.io), cx, &mut self.buf);
        if matches!(read, Poll::Ready(Ok(n)) if n == spare) {
            self.read_size = (self.read_size * 2).min(LARGEST_READ);
        }
        read
    }

    /// A stream is read through the worker thread's scratch buffer and only what arrived is
    /// kept, so an open stream waiting for its next event holds no read buffer (a 4 KiB one
    /// per stream was a fifth of an open stream's memory).
    fn poll_read_through_scratch(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        thread_local! {
            static SCRATCH: RefCell<[u8; SCRATCH_SIZE]> = const { RefCell::new([0; SCRATCH_SIZE]) };
        }
        SCRATCH.with(|scratch| {
            let mut scratch = scratch.borrow_mut();
            let mut read = ReadBuf::new(&mut scratch[..]);
            match Pin::new(&mut self.conn.io).poll_read(cx, &mut read) {
                Poll::Ready(Ok(())) => {
                    let filled = read.filled();
                    self.buf.extend_from_slice(filled);
                    Poll::Ready(Ok(filled.len()))
                }
                Poll::Ready(Err(err)) => Poll::Ready(Err(err)),
                Poll::Pending => Poll::Pending,
            }
        })
    }

    /// Room for the next read: what a length-delimited body still needs (up to
    /// [`LARGEST_READ`]), else `read_size`; a buffer with 1 KiB to spare is read into as it is.
    fn reserve(&mut self) {
        let want = match self.framing {
            Framing::Length(left) => {
                usize::try_from(left).map_or(LARGEST_READ, |l| l.min(LARGEST_READ))
            }
            _ => self.read_size,
        }
        .max(1);
        if self.buf.capacity() - self.buf.len() < want.min(1024) {
            self.buf.reserve(want);
        }
    }

    /// Returns the connection to its pool when the body has ended cleanly, else closes it.
    fn finish(self) {
        if self.keep_alive && self.framing.is_done() && self.buf.is_empty() {
            self.pool.put(self.conn);
        }
    }
}

impl Body {
    /// Whether the body has certainly ended.
    pub fn is_end_stream(&self) -> bool {
        self.live.is_none()
    }

    fn release_if_done(&mut self) {
        if self.live.as_ref().is_some_and(|l| l.framing.is_done())
            && let Some(live) = self.live.take()
        {
            live.finish();
        }
    }
}

impl Stream for Body {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(live) = self.live.as_mut() else {
            return Poll::Ready(None);
        };
        match live.poll_step(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Step::Data(data)) => {
                // Free the connection with the last data, not on the next poll.
                self.release_if_done();
                Poll::Ready(Some(Ok(data)))
            }
            Poll::Ready(Step::End) => {
                if let Some(live) = self.live.take() {
                    live.finish();
                }
                Poll::Ready(None)
            }
            Poll::Ready(Step::Failed(failure)) => {
                self.live = None;
                Poll::Ready(Some(Err(BodyError(failure))))
            }
        }
    }
}

impl Drop for Body {
    /// A reader that stops at a stream's last event leaves the body's end unread. When that end
    /// has already arrived (or arrives without waiting), the connection is still reusable.
    fn drop(&mut self) {
        let Some(mut live) = self.live.take() else {
            return;
        };
        let mut cx = Context::from_waker(Waker::noop());
        let mut drained = 0;
        while drained <= DRAIN_ON_DROP {
            match live.poll_step(&mut cx) {
                Poll::Ready(Step::Data(data)) => drained += data.len(),
                Poll::Ready(Step::End) => return live.finish(),
                Poll::Pending | Poll::Ready(Step::Failed(_)) => return,
            }
        }
    }
}
