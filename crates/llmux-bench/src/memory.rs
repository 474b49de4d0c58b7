//! Open streams for the memory measurement: a lean raw-TCP client (one socket and nothing else per
//! stream, so the bench itself stays small and fast) that sends a streaming request, waits for the
//! response head and the first event, then keeps the connection open without reading.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::load::Target;

/// Connections being opened at once (below the listen backlog, so nothing is dropped).
const OPENING_AT_ONCE: usize = 128;

/// The streams that opened, and the errors of those that did not.
pub struct OpenStreams {
    pub sockets: Vec<TcpStream>,
    pub errors: usize,
    pub first_error: Option<String>,
}

/// Opens `n` streams of `target` on `addr`.
pub async fn open(addr: SocketAddr, target: &Target, n: usize) -> OpenStreams {
    let mut request = format!(
        "POST {} HTTP/1.1\r\nhost: bench\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        target.path,
        target.body.len()
    )
    .into_bytes();
    for (name, value) in &target.headers {
        request.extend_from_slice(name.as_str().as_bytes());
        request.extend_from_slice(b": ");
        request.extend_from_slice(value.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    request.extend_from_slice(&target.body);
    let request: Arc<[u8]> = request.into();

    let mut open = OpenStreams {
        sockets: Vec::with_capacity(n),
        errors: 0,
        first_error: None,
    };
    let mut opening = JoinSet::new();
    let mut launched = 0;
    loop {
        while launched < n && opening.len() < OPENING_AT_ONCE {
            opening.spawn(open_one(addr, request.clone()));
            launched += 1;
        }
        let Some(done) = opening.join_next().await else {
            break;
        };
        match done {
            Ok(Ok(socket)) => open.sockets.push(socket),
            Ok(Err(err)) => open.error(err),
            Err(err) => open.error(format!("opening task failed: {err}")),
        }
    }
    open
}

impl OpenStreams {
    fn error(&mut self, message: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(message);
        }
    }
}

async fn open_one(addr: SocketAddr, request: Arc<[u8]>) -> Result<TcpStream, String> {
    let opening = async {
        let mut socket = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        socket
            .set_nodelay(true)
            .map_err(|e| format!("TCP_NODELAY: {e}"))?;
        socket
            .write_all(&request)
            .await
            .map_err(|e| format!("write: {e}"))?;
        // Read until the head and the first event are in; the buffer is dropped right after.
        let mut received = Vec::with_capacity(2048);
        let mut buf = [0u8; 2048];
        loop {
            let n = socket
                .read(&mut buf)
                .await
                .map_err(|e| format!("read: {e}"))?;
            if n == 0 {
                return Err("connection closed before the first event".to_owned());
            }
            received.extend_from_slice(&buf[..n]);
            if let Some(head_end) = memchr::memmem::find(&received, b"\r\n\r\n") {
                if !received.starts_with(b"HTTP/1.1 200") {
                    let head = String::from_utf8_lossy(&received[..head_end]).into_owned();
                    return Err(format!("not a 200: {head}"));
                }
                if memchr::memmem::find(&received[head_end..], b"data:").is_some() {
                    return Ok(socket);
                }
            }
            if received.len() > 64 * 1024 {
                return Err("no event in the first 64 KiB".to_owned());
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), opening)
        .await
        .map_err(|_| "stream did not start within 60 s".to_owned())?
}
