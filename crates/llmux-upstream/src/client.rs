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
//!
//! A host has at most `limits.upstream_connections_per_host` connections (a semaphore permit
//! travels with each); a request past the cap waits, up to its connect timeout, for one to be
//! returned or closed.

use std::io::{self, IoSlice};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::connection::{Io, Target};
use crate::response::Response;
use crate::wire::{HeadError, HeadScan};

/// Idle pooled connections are closed after this long.
const POOL_IDLE: Duration = Duration::from_secs(90);
/// How often idle connections are checked for expiry and for the vendor having closed them.
const REAP_EVERY: Duration = Duration::from_secs(15);
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
    /// Every connection this host may have (`limits.upstream_connections_per_host`) stayed busy
    /// for the whole connect timeout.
    #[error("timed out waiting for one of the {0} connections to the vendor host")]
    PoolFull(usize),
}

impl SendError {
    pub(crate) fn is_timeout(&self) -> bool {
        match self {
            Self::ConnectTimeout | Self::PoolFull(_) => true,
            Self::Connect(e) | Self::Io(e) => e.kind() == io::ErrorKind::TimedOut,
            Self::Head(_) => false,
        }
    }
}

/// An open connection and its place in its host's connection cap: the permit goes wherever the
/// connection goes (a response body, the idle list) and is released when it is dropped.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) io: Io,
    _permit: OwnedSemaphorePermit,
}

/// The keep-alive pool of one vendor host. Credentials on the same host share it: a request's
/// credential is in its headers, not in the connection.
#[derive(Debug)]
pub(crate) struct Pool {
    target: Target,
    /// Most recently returned last: the warmest connection is reused first.
    idle: Mutex<Vec<IdleConnection>>,
    reaper_started: AtomicBool,
    /// One permit per connection this host may have open (idle or busy).
    permits: Arc<Semaphore>,
    /// The cap, for messages.
    cap: usize,
    /// Requests waiting for a connection; `returned` is only notified while there are some.
    waiting: AtomicUsize,
    returned: Notify,
}

#[derive(Debug)]
struct IdleConnection {
    conn: Conn,
    since: Instant,
}

impl Pool {
    /// A pool for `target` with at most `connections` open at once (at least one).
    pub(crate) fn new(target: Target, connections: usize) -> Arc<Self> {
        let cap = connections.clamp(1, Semaphore::MAX_PERMITS);
        Arc::new(Self {
            target,
            idle: Mutex::new(Vec::new()),
            reaper_started: AtomicBool::new(false),
            permits: Arc::new(Semaphore::new(cap)),
            cap,
            waiting: AtomicUsize::new(0),
            returned: Notify::new(),
        })
    }

    /// Sends one request (`head` then `body`) and reads the response head.
    ///
    /// A pooled connection is checked for a close by the vendor before it is used. A request
    /// is written at most once per call: it goes on a fresh connection only when a pooled one
    /// failed before accepting any byte of it; once any byte is written, every failure is this
    /// attempt's error (a re-sent generation could be billed twice; the attempt loop decides).
    pub(crate) async fn send(
        self: &Arc<Self>,
        head: &[u8],
        body: &[u8],
        connect_timeout: Duration,
    ) -> Result<Response, SendError> {
        let (mut conn, pooled) = self.checkout(connect_timeout).await?;
        match write_request(&mut conn.io, head, body).await {
            Ok(()) => {}
            Err((0, err)) if pooled && is_stale(&err) => {
                let Conn { io, _permit } = conn;
                drop(io);
                conn = Conn {
                    // Boxed: connecting (TCP, a proxy tunnel, TLS) is a large future that only
                    // new connections need; inline, every request's future would carry it.
                    io: Box::pin(self.target.connect(connect_timeout)).await?,
                    _permit,
                };
                write_request(&mut conn.io, head, body)
                    .await
                    .map_err(|(_, err)| SendError::Io(err))?;
            }
            Err((_, err)) => return Err(SendError::Io(err)),
        }
        self.read_head(conn).await
    }

    /// A connection for one request: the warmest live idle one, else a new one when the cap
    /// allows, else the first to come back or be released within `timeout`.
    async fn checkout(self: &Arc<Self>, timeout: Duration) -> Result<(Conn, bool), SendError> {
        if let Some(conn) = self.take_idle() {
            return Ok((conn, true));
        }
        if let Ok(permit) = Arc::clone(&self.permits).try_acquire_owned() {
            return Ok((self.open(permit, timeout).await?, false));
        }
        self.wait_for_connection(timeout).await
    }

    async fn open(
        &self,
        permit: OwnedSemaphorePermit,
        timeout: Duration,
    ) -> Result<Conn, SendError> {
        Ok(Conn {
            io: Box::pin(self.target.connect(timeout)).await?,
            _permit: permit,
        })
    }

    /// The slow path of [`Self::checkout`], when the host is at its cap.
    async fn wait_for_connection(
        self: &Arc<Self>,
        timeout: Duration,
    ) -> Result<(Conn, bool), SendError> {
        let deadline = tokio::time::Instant::now() + timeout;
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        loop {
            let returned = self.returned.notified();
            tokio::pin!(returned);
            // Registered before looking at the idle list, so a connection put back after the
            // look still wakes this waiter.
            returned.as_mut().enable();
            if let Some(conn) = self.take_idle() {
                return Ok((conn, true));
            }
            tokio::select! {
                permit = Arc::clone(&self.permits).acquire_owned() => {
                    let permit = permit.map_err(|_| SendError::PoolFull(self.cap))?;
                    return Ok((self.open(permit, timeout).await?, false));
                }
                () = &mut returned => {}
                () = tokio::time::sleep_until(deadline) => return Err(SendError::PoolFull(self.cap)),
            }
        }
    }

    /// Reads until a whole response head has arrived.
    async fn read_head(self: &Arc<Self>, mut conn: Conn) -> Result<Response, SendError> {
        let mut buf = BytesMut::with_capacity(FIRST_READ);
        let mut scan = HeadScan::default();
        loop {
            if buf.capacity() == buf.len() {
                buf.reserve(FIRST_READ);
            }
            match conn.io.read_buf(&mut buf).await {
                Ok(0) => return Err(SendError::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(_) => {}
                Err(err) => return Err(SendError::Io(err)),
            }
            match scan.parse(&mut buf) {
                Ok(Some(head)) => return Ok(Response::new(head, conn, buf, Arc::clone(self))),
                Ok(None) => {}
                Err(err) => return Err(SendError::Head(err)),
            }
        }
    }

    /// The warmest idle connection the vendor has not closed; expired and closed ones are
    /// dropped on the way (which releases their permits).
    fn take_idle(&self) -> Option<Conn> {
        loop {
            let connection = {
                let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
                let connection = idle.pop()?;
                if connection.since.elapsed() >= POOL_IDLE {
                    // Everything below it went idle earlier.
                    idle.clear();
                    return None;
                }
                connection
            };
            // The check is a system call: made outside the lock.
            if !connection.conn.io.is_closed() {
                return Some(connection.conn);
            }
        }
    }

    /// A connection whose response was read to its end, ready for another request.
    pub(crate) fn put(self: &Arc<Self>, conn: Conn) {
        {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            idle.push(IdleConnection {
                conn,
                since: Instant::now(),
            });
        }
        if self.waiting.load(Ordering::SeqCst) > 0 {
            self.returned.notify_waiters();
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
                idle.retain(|c| c.since.elapsed() < POOL_IDLE && !c.conn.io.is_closed());
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

/// Counts a request as waiting for a connection while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether a write error means the vendor had closed the connection.
fn is_stale(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::UnexpectedEof
    )
}

/// Writes head and body, gathered into as few writes as the socket allows. On failure, also
/// says how many bytes the connection had accepted.
async fn write_request(io: &mut Io, head: &[u8], body: &[u8]) -> Result<(), (usize, io::Error)> {
    let total = head.len() + body.len();
    let mut written = 0;
    while written < total {
        let n = if written < head.len() {
            io.write_vectored(&[IoSlice::new(&head[written..]), IoSlice::new(body)])
                .await
        } else {
            io.write(&body[written - head.len()..]).await
        }
        .map_err(|err| (written, err))?;
        if n == 0 {
            return Err((written, io::ErrorKind::WriteZero.into()));
        }
        written += n;
    }
    io.flush().await.map_err(|err| (written, err))
}
