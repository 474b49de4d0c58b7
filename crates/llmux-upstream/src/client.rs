//! The HTTP/1.1 client behind every vendor call: a keep-alive pool per vendor host and one
//! request/response exchange at a time on each connection, driven by the request's own task.
//!
//! Why not a general client: hyper's gives every connection its own task, a dispatch channel
//! (an 8.7 KB block), and 8 KiB read and write buffers, and hands each request to that task
//! and back — per open stream ~27 KB and two cross-task wake-ups per request. A gateway sends
//! one kind of request (a POST with a known body, or the probe's GET) and reads one response
//! at a time, so the request's task writes the head and body itself, parses the response head
//! (`httparse`) and reads the body: a length-delimited one into a buffer that grows only for
//! large bodies, a stream through per-thread scratch space, so an open stream holds no read
//! buffer between events.
//!
//! HTTP/1.1 only (ALPN offers just `http/1.1`): with HTTP/2 one multiplexed connection per host
//! would carry a gateway's whole traffic to a vendor and queue it past the vendor's
//! concurrent-stream limit; a pool of HTTP/1.1 connections grows with the load instead.
//! No redirects are followed.

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::Uri;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::connection::{Io, Target};
use crate::response::Response;
use crate::wire::{self, HeadError};

/// Idle pooled connections are closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(90);
/// How often idle connections are checked for expiry and for the vendor having closed them.
const REAP_EVERY: Duration = Duration::from_secs(15);
/// Idle connections kept per host; more are closed when they come back.
const MAX_IDLE: usize = 1024;
/// The first read of a response: enough for a vendor's head (1–2 KiB) and a small body.
pub(crate) const FIRST_READ: usize = 4 * 1024;

/// Why no response head arrived.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The TCP connect plus TLS handshake took longer than the connect timeout.
    #[error("timed out")]
    ConnectTimeout,
    /// TCP or TLS could not be established.
    #[error("connection failed")]
    Connect(#[source] io::Error),
    /// The connection failed while the request was written or the head awaited.
    #[error("connection error")]
    Io(#[source] io::Error),
    /// The vendor's response head is not HTTP/1.1.
    #[error("invalid response")]
    Head(#[source] HeadError),
}

impl SendError {
    pub(crate) fn is_timeout(&self) -> bool {
        match self {
            Self::ConnectTimeout => true,
            Self::Connect(e) | Self::Io(e) => e.kind() == io::ErrorKind::TimedOut,
            Self::Head(_) => false,
        }
    }
}

/// The keep-alive pool of one vendor host. Credentials on the same host share it: a request's
/// credential is in its headers, not in the connection.
#[derive(Debug)]
pub(crate) struct Pool {
    target: Target,
    /// Most recently returned last: the warmest connection is reused first.
    idle: Mutex<Vec<IdleConnection>>,
    reaper_started: AtomicBool,
}

#[derive(Debug)]
struct IdleConnection {
    io: Io,
    since: Instant,
}

impl Pool {
    /// A pool for the host of `uri`.
    pub(crate) fn new(uri: &Uri, connect_timeout: Duration) -> Result<Arc<Self>, &'static str> {
        Ok(Arc::new(Self {
            target: Target::new(uri, connect_timeout)?,
            idle: Mutex::new(Vec::new()),
            reaper_started: AtomicBool::new(false),
        }))
    }

    /// Sends one request (`head` then `body`) and reads the response head. A pooled
    /// connection the vendor closed while it sat idle (it fails before any byte of an answer)
    /// is replaced by a fresh one, once.
    pub(crate) async fn send(
        self: &Arc<Self>,
        head: &[u8],
        body: &[u8],
    ) -> Result<Response, SendError> {
        if let Some(io) = self.take_idle() {
            match self.exchange(io, head, body).await {
                Ok(response) => return Ok(response),
                Err(Exchange::Stale) => {}
                Err(Exchange::Failed(err)) => return Err(err),
            }
        }
        let io = self.target.connect().await?;
        match self.exchange(io, head, body).await {
            Ok(response) => Ok(response),
            Err(Exchange::Stale) => Err(SendError::Io(io::ErrorKind::UnexpectedEof.into())),
            Err(Exchange::Failed(err)) => Err(err),
        }
    }

    async fn exchange(
        self: &Arc<Self>,
        mut io: Io,
        head: &[u8],
        body: &[u8],
    ) -> Result<Response, Exchange> {
        write_request(&mut io, head, body)
            .await
            .map_err(Exchange::stale_or(SendError::Io))?;
        let mut buf = BytesMut::with_capacity(FIRST_READ);
        loop {
            if buf.capacity() == buf.len() {
                buf.reserve(FIRST_READ);
            }
            let read = io.read_buf(&mut buf).await;
            let nothing_yet = buf.is_empty();
            match read {
                Ok(0) if nothing_yet => return Err(Exchange::Stale),
                Ok(0) => {
                    return Err(Exchange::Failed(SendError::Io(
                        io::ErrorKind::UnexpectedEof.into(),
                    )));
                }
                Ok(_) => {}
                Err(e) if nothing_yet => return Err(Exchange::stale_or(SendError::Io)(e)),
                Err(e) => return Err(Exchange::Failed(SendError::Io(e))),
            }
            match wire::parse_head(&mut buf) {
                Ok(Some(head)) => return Ok(Response::new(head, io, buf, Arc::clone(self))),
                Ok(None) => {}
                Err(err) => return Err(Exchange::Failed(SendError::Head(err))),
            }
        }
    }

    fn take_idle(&self) -> Option<Io> {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(connection) = idle.pop() {
            if connection.since.elapsed() >= POOL_IDLE {
                // Everything below it went idle earlier.
                idle.clear();
                return None;
            }
            if !connection.io.is_closed() {
                return Some(connection.io);
            }
        }
        None
    }

    /// A connection whose response was read to its end, ready for another request.
    pub(crate) fn put(self: &Arc<Self>, io: Io) {
        {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() >= MAX_IDLE {
                return;
            }
            idle.push(IdleConnection {
                io,
                since: Instant::now(),
            });
        }
        if !self.reaper_started.swap(true, Ordering::Relaxed) {
            self.start_reaper();
        }
    }

    /// Closes connections that expired or that the vendor closed, while the pool lives.
    fn start_reaper(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let pool: Weak<Self> = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut every = tokio::time::interval(REAP_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                let Some(pool) = pool.upgrade() else { return };
                let mut idle = pool.idle.lock().unwrap_or_else(PoisonError::into_inner);
                idle.retain(|c| c.since.elapsed() < POOL_IDLE && !c.io.is_closed());
            }
        });
    }

    /// Idle connections (tests).
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// How an exchange failed: `Stale` when a connection died before any byte of an answer (a
/// pooled connection the vendor had closed), so the request can go on a fresh one.
enum Exchange {
    Stale,
    Failed(SendError),
}

impl Exchange {
    fn stale_or(wrap: fn(io::Error) -> SendError) -> impl Fn(io::Error) -> Self {
        move |err| match err.kind() {
            io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof => Self::Stale,
            _ => Self::Failed(wrap(err)),
        }
    }
}

/// Writes head and body, gathered into as few writes as the socket allows.
async fn write_request(io: &mut Io, head: &[u8], body: &[u8]) -> io::Result<()> {
    let total = head.len() + body.len();
    let mut written = 0;
    while written < total {
        let n = if written < head.len() {
            io.write_vectored(&[IoSlice::new(&head[written..]), IoSlice::new(body)])
                .await?
        } else {
            io.write(&body[written - head.len()..]).await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        written += n;
    }
    io.flush().await
}
